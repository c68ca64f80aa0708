"""Every limit a classroom server needs, each with the exact status and sentence a student gets."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app import i18n
from app.i18n import _
from app.refusals import URL_MESSAGE
from app.settings import Settings
from tests.classroom.conftest import HX, TEXT, MakeClient, messages

LONG_257 = "a" + " a" * 256  # 257 tokens


# ---- prompt length: characters and tokens ----


def test_the_token_cap_is_256_by_default_and_at_most_1024() -> None:
    assert Settings().max_tokens == 256
    assert Settings(max_tokens=1024).max_tokens == 1024
    with pytest.raises(ValidationError):
        Settings(max_tokens=1025)


def test_a_prompt_over_the_token_cap_gets_a_message(client: TestClient) -> None:
    r = client.get("/", params={"text": LONG_257})

    assert r.status_code == 400
    assert messages(r.text) == [
        "The text is 257 tokens long; this server takes at most 256. Shorten it and try again."
    ]


def test_the_token_cap_is_configurable(make_client: MakeClient) -> None:
    client = make_client(max_tokens=300)

    assert client.get("/", params={"text": LONG_257}).status_code == 200
    r = client.get("/api/predict", params={"text": LONG_257 + " a" * 50})
    assert r.status_code == 400
    assert r.json() == {"detail": "text is 307 tokens; the most is 300"}


def test_the_api_says_the_token_cap(client: TestClient) -> None:
    r = client.get("/api/trace", params={"text": LONG_257, "names": "logits"})

    assert r.status_code == 400
    assert r.json() == {"detail": "text is 257 tokens; the most is 256"}


def test_a_prompt_over_the_character_cap_gets_a_message(make_client: MakeClient) -> None:
    client = make_client(max_chars=100)

    page = client.get("/", params={"text": "x" * 101})
    api = client.get("/api/predict", params={"text": "x" * 101})

    assert page.status_code == 400
    assert messages(page.text) == [
        "The text has 101 characters; this server takes at most 100. Shorten it and try again."
    ]
    assert api.status_code == 400
    assert api.json() == {"detail": "text has 101 characters; the most is 100"}


# ---- every control ----


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"temperature": "hot"}, "Temperature must be a number from 0.05 to 5; using 1."),
        ({"temperature": "0"}, "Temperature must be from 0.05 to 5; using 0.05."),
        ({"temperature": "7"}, "Temperature must be from 0.05 to 5; using 5."),
        ({"temperature": "nan"}, "Temperature must be a finite number; using 1."),
        ({"top_k": "0"}, "top-k must be from 1 to 50257; using 1."),
        ({"top_k": "99999"}, "top-k must be from 1 to 50257; using 50257."),
        ({"top_k": "ten"}, "top-k must be a whole number from 1 to 50257; using 40."),
        ({"top_p": "2"}, "top-p must be from 0.01 to 1; using 1."),
        ({"top_p": "-1"}, "top-p must be from 0.01 to 1; using 0.01."),
        ({"top_p": "most"}, "top-p must be a number from 0.01 to 1; using 0.9."),
        ({"seed": "-5"}, "Seed must be from 0 to 4294967295; using 0."),
        ({"seed": "4294967296"}, "Seed must be from 0 to 4294967295; using 4294967295."),
        ({"seed": "lucky"}, "Seed must be a whole number from 0 to 4294967295; using 0."),
        ({"layer": "0"}, "Block must be from 1 to 2; using 1."),
        ({"layer": "3"}, "Block must be from 1 to 2; using 2."),
        ({"layer": "one"}, "Block must be a whole number from 1 to 2; using 1."),
        ({"head": "0"}, "Head must be from 1 to 4; using 1."),
        ({"head": "5"}, "Head must be from 1 to 4; using 4."),
        ({"head": "1.5"}, "Head must be a whole number from 1 to 4; using 1."),
    ],
)
def test_every_control_is_checked(client: TestClient, params: dict[str, str], says: str) -> None:
    page = client.get("/", params={"text": TEXT, **params})
    live = client.get("/", params={"text": TEXT, **params}, headers={**HX, "HX-Target": "output"})

    assert page.status_code == 400
    assert messages(page.text) == [says]
    assert live.status_code == 400
    assert messages(live.text) == [says]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"temperature": "0"}, "Input should be greater than or equal to 0.01"),
        ({"temperature": "1e-320"}, "Input should be greater than or equal to 0.01"),  # overflowed
        ({"temperature": "101"}, "Input should be less than or equal to 100"),
        ({"top_k": "0"}, "Input should be greater than or equal to 1"),
        ({"top_p": "1.5"}, "Input should be less than or equal to 1"),
        ({"seed": "-1"}, "Input should be greater than or equal to 0"),
        ({"n": "1000"}, "Input should be less than or equal to 100"),
    ],
)
def test_the_api_checks_every_control(client: TestClient, params: dict[str, str], says: str) -> None:
    r = client.get("/api/predict", params={"text": TEXT, **params})

    assert r.status_code == 422
    assert [e["msg"] for e in r.json()["detail"]] == [says]


def test_top_k_past_the_vocabulary_is_refused_by_the_api(client: TestClient) -> None:
    r = client.get("/api/predict", params={"text": TEXT, "top_k": "60000"})

    assert r.status_code == 422
    assert "50257" in r.json()["detail"]


# ---- request size ----


def test_an_overlong_address_gets_414_with_a_page(make_client: MakeClient) -> None:
    client = make_client(max_url=1000)

    r = client.get("/", params={"text": "x" * 1000})

    assert r.status_code == 414
    assert messages(r.text) == [
        "This address is 1006 bytes long; this server takes at most 1000. Shorten the text (a character "
        "outside English can take up to 12 bytes in an address)."
    ]
    assert "Retry-After" not in r.headers


def test_an_overlong_address_gets_414_as_json_from_the_api(make_client: MakeClient) -> None:
    client = make_client(max_url=1000)

    r = client.get("/api/predict", params={"text": "東" * 200})  # 9 bytes per character once quoted

    assert r.status_code == 414
    assert r.json() == {
        "detail": "This address is 1817 bytes long; this server takes at most 1000. Shorten the text (a "
        "character outside English can take up to 12 bytes in an address)."
    }


def test_a_refusal_page_speaks_the_readers_language(make_client: MakeClient) -> None:
    client = make_client(max_url=1000)

    page = client.get("/", params={"text": "x" * 1000}, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    asked = client.get("/", params={"text": "x" * 989, "lang": "zh-CN"})  # the address's own lang= wins
    came_from = {**HX, "HX-Current-URL": "http://testserver/?text=hi&lang=zh-CN"}
    fragment = client.get("/", params={"text": "x" * 1000}, headers=came_from)
    api = client.get("/api/predict", params={"text": "x" * 1000}, headers={"Accept-Language": "zh-CN"})

    assert page.status_code == fragment.status_code == api.status_code == 414
    with i18n.use("zh-CN"):
        chinese, title = _(URL_MESSAGE).format(size=1006, most=1000), _("That is too long")
    assert re.search("[\u4e00-\u9fff]", chinese + title)
    assert chinese != URL_MESSAGE.format(size=1006, most=1000)
    assert messages(page.text) == [chinese]
    assert messages(asked.text) == [chinese] and asked.status_code == 414
    assert f"<h1>{title}</h1>" in page.text and '<html lang="zh-CN"' in page.text
    assert messages(fragment.text) == [chinese]
    assert api.json()["detail"].startswith("This address is 1017 bytes long")  # the API answers in English


def test_the_default_address_limit_fits_the_default_text_limit_in_ascii(client: TestClient) -> None:
    r = client.get("/", params={"text": "x" * 4000})

    assert r.status_code == 400  # reaches the page, which says the text is too long in tokens
    assert messages(r.text)[0].startswith("The text is ")


def test_a_request_body_is_refused(client: TestClient) -> None:
    r = client.request("GET", "/api/predict", params={"text": TEXT}, content=b"x" * 2000)

    assert r.status_code == 413
    assert r.json() == {
        "detail": "The request body is larger than 1024 bytes; "
        "Glassbox takes its input from the address only."
    }


def test_a_chunked_body_is_refused(client: TestClient) -> None:
    r = client.request("GET", "/", content=iter([b"x" * 10]))  # no length: sent chunked

    assert r.status_code == 413


# ---- rate limit ----


def test_there_is_no_rate_limit_by_default(client: TestClient) -> None:
    codes = {client.get("/api/predict", params={"text": TEXT}).status_code for _ in range(80)}

    assert codes == {200}


def test_a_client_over_the_rate_limit_gets_429(make_client: MakeClient) -> None:
    client = make_client(rate_limit=0.5, rate_burst=3)

    codes = [client.get("/api/predict", params={"text": TEXT}).status_code for _ in range(3)]
    refused = client.get("/api/predict", params={"text": TEXT})
    page = client.get("/", params={"text": TEXT})

    assert codes == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.json() == {
        "detail": "Too many requests from your address in a short time. Please wait a moment and try again."
    }
    assert page.status_code == 429
    assert messages(page.text) == [
        "Too many requests from your address in a short time. Please wait a moment and try again."
    ]
    assert client.get("/healthz").status_code == 200  # probes and assets are never limited
    assert client.get("/static/style.css").status_code == 200


def test_the_rate_limit_is_per_client() -> None:
    from app.limits import RateLimiter

    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=2, clock=lambda: now[0])

    assert [limiter.take("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 1.0]
    assert limiter.take("10.0.0.2") == 0.0  # another student is not held back
    now[0] = 1.0
    assert limiter.take("10.0.0.1") == 0.0  # one token back after a second
