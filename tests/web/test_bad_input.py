"""Whatever a user types into the URL or the form gets a message on the page, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import HX, parse

TEXT = "Data visualization empowers users to"


def messages(html: str) -> str:
    page = parse(html)
    assert page.one("div", id="messages")
    start = html.index('id="messages"')
    return html[start : html.index("</div>", start)]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"temperature": "abc"}, "Temperature must be a number"),
        ({"temperature": "0"}, "Temperature must be from 0.05 to 5"),
        ({"temperature": "99"}, "Temperature must be from 0.05 to 5"),
        ({"temperature": "nan"}, "Temperature must be a finite number"),
        ({"temperature": "inf"}, "Temperature must be a finite number"),
        ({"top_k": "0"}, "top-k must be from 1"),
        ({"top_k": "-3"}, "top-k must be from 1"),
        ({"top_k": "2.5"}, "top-k must be a whole number"),
        ({"top_p": "1.5"}, "top-p must be from 0.01 to 1"),
        ({"top_p": "0"}, "top-p must be from 0.01 to 1"),
        ({"seed": "-1"}, "Seed must be from 0"),
        ({"seed": "1e99"}, "Seed must be a whole number"),
        ({"layer": "0"}, "Block must be from 1 to 2"),
        ({"layer": "99"}, "Block must be from 1 to 2"),
        ({"head": "x"}, "Head must be a whole number from 1 to 4"),
        ({"view": "secret"}, "There is no panel called"),
        ({"step": "<b>"}, "There is no attention step called"),
        ({"token": "99"}, "There is no token 99"),
        ({"gen": "1,two"}, "are not token ids"),
        ({"gen": "99999999"}, "gen must list at most"),
        ({"model": "gpt2-xl"}, "This server runs the model"),
        ({"action": "explode"}, "Unknown button"),
    ],
)
def test_bad_controls_get_a_message_and_a_page(client: TestClient, params: dict[str, str], says: str) -> None:
    r = client.get("/", params={"text": TEXT, **params})
    assert r.status_code == 400
    assert says in messages(r.text)
    assert parse(r.text).one("section", id="output")  # the page still works with a fallback value


def test_bad_control_in_a_live_update(client: TestClient) -> None:
    r = client.get("/", params={"text": TEXT, "top_k": "0"}, headers={**HX, "HX-Target": "output"})
    assert r.status_code == 400  # htmx is configured to swap 4xx: the message shows
    assert "top-k must be from 1" in r.text
    assert parse(r.text).one("div", id="messages")["hx-swap-oob"] == "true"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Type some text"),
        ("   \n ", "Type some text"),
        ("x" * 401, "The text has 401 characters; this server takes at most 400"),
        ("word " * 60, "this server takes at most 40"),
    ],
)
def test_unusable_text_gets_a_message(client: TestClient, text: str, says: str) -> None:
    r = client.get("/", params={"text": text})
    assert r.status_code == 400
    assert says in messages(r.text)
    assert parse(r.text).one("form", id="controls")
    assert not parse(r.text).all("section", id="output")


@pytest.mark.parametrize(
    "text",
    [
        "naïve café 東京 🙂",  # multi-byte characters split into byte-level tokens
        "\u202eevil\u202c right-to-left override",
        "nul \x00 and bell \x07 and tab\t",
        "e\u0301\u0301\u0301 combining marks",
        "\ufeffbyte order mark",
        "\U0001f3f3\ufe0f\u200d\U0001f308 zero-width joiner",
    ],
)
def test_odd_unicode_is_shown_not_crashed(client: TestClient, text: str) -> None:
    r = client.get("/", params={"text": text})
    assert r.status_code == 200
    for view in ("embedding", "attention", "mlp", "residual"):
        assert client.get("/", params={"text": text, "view": view}).status_code == 200


def test_partial_characters_show_their_bytes(client: TestClient) -> None:
    html = client.get("/", params={"text": "東京"}).text
    assert "&lt;E6&gt;" in html or "<E6>" in parse(html).all_text


def test_lone_surrogate_in_url_is_harmless(client: TestClient) -> None:
    r = client.get("/?text=%ED%A0%80abc")
    assert r.status_code in (200, 400)


def test_markup_is_escaped_everywhere(client: TestClient) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'"
    r = client.get("/", params={"text": evil, "step": "<svg onload=alert(3)>"})
    assert r.status_code == 400  # the step is unknown; the text itself is fine
    assert "<script>alert" not in r.text
    assert "<img src=x" not in r.text
    assert "<svg onload" not in r.text
    assert "&lt;script&gt;" in r.text


def test_markup_in_generated_links_stays_inert(client: TestClient) -> None:
    r = client.get("/", params={"text": "x' onmouseover='alert(1)"})
    assert r.status_code == 200
    for tag, attrs in parse(r.text).tags:
        assert "onmouseover" not in attrs, tag
