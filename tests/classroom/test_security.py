"""Security headers on every answer, no inline code anywhere, and hostile text shown literally."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from app.main import CSP
from app.state import text_digest
from app.views.format import show
from tests.classroom.conftest import HX, TEXT, MakeClient
from tests.web.conftest import parse

EVIL = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "&amp; &lt;b&gt; &#60;",
    "right-to-left \u202eevil\u202c override",
    "nul \x00 byte",
    "x' onmouseover='alert(1)",
    "{{ 7*7 }} {% raw %}",
]


def check_headers(r) -> None:  # type: ignore[no-untyped-def]
    assert r.headers["Content-Security-Policy"] == CSP
    assert "default-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert r.headers["X-Frame-Options"] == "DENY"


def test_every_kind_of_answer_has_the_headers(make_client: MakeClient) -> None:
    client = make_client(max_url=2000, rate_limit=0.001, rate_burst=14)
    answers = [
        client.get("/", params={"text": TEXT}),
        client.get("/", params={"text": TEXT, "view": "mlp"}, headers=HX),
        client.get("/", params={"text": TEXT, "temperature": "2"}, headers={**HX, "HX-Target": "output"}),
        client.get("/", params={"text": TEXT, "temperature": "x"}),  # 400
        client.get("/api"),
        client.get("/api/predict", params={"text": TEXT}),
        client.get("/api/predict", params={"text": ""}),  # 400
        client.get("/api/predict", params={"text": TEXT, "seed": "-1"}),  # 422
        client.get("/api/stats"),
        client.get("/openapi.json"),
        client.get("/no/such/page"),  # 404
        client.post("/", content=b"x"),  # 405
        client.get("/", params={"text": "x" * 2000}),  # 414
        client.get("/static/style.css"),
    ]
    while (r := client.get("/api/stats")).status_code != 429:
        pass
    answers.append(r)  # 429

    assert [a.status_code for a in answers] == [
        200,
        200,
        200,
        400,
        200,
        200,
        400,
        422,
        200,
        200,
        404,
        405,
        414,
        200,
        429,
    ]
    for a in answers:
        check_headers(a)


def test_htmx_is_configured_for_the_csp(client: TestClient) -> None:
    meta = parse(client.get("/").text).one("meta", name="htmx-config")
    config = json.loads(meta["content"])

    assert config["includeIndicatorStyles"] is False  # htmx would add an inline <style> otherwise
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False


def pages(client: TestClient) -> list[str]:
    """Every kind of HTML the app sends: each view and step, fragments, generated tokens, refusals."""
    html = [client.get("/").text, client.get("/api").text]
    for view in ("embedding", "attention", "mlp", "residual"):
        html.append(client.get("/", params={"text": TEXT, "view": view}).text)
    for step in ("qkv", "scores", "scaled", "masked", "probs", "heads", "concat", "out"):
        html.append(client.get("/", params={"text": TEXT, "step": step}, headers=HX).text)
    html.append(
        client.get(
            "/", params={"text": TEXT, "temperature": "1.7"}, headers={**HX, "HX-Target": "output"}
        ).text
    )
    gen = client.get("/", params={"text": TEXT, "action": "generate"}, follow_redirects=True)
    html += [gen.text, client.get("/", params={"text": ""}).text, client.get("/no/such/page").text]
    html.append(client.get("/", params={"text": "x" * 10_000}).text)  # the 414 page
    return html


def test_no_inline_script_style_or_event_handler_anywhere(client: TestClient) -> None:
    for html in pages(client):
        page = parse(html)
        for tag, attrs in page.tags:
            assert tag != "style", "an inline <style> element"
            assert "style" not in attrs, f"an inline style on <{tag}>"
            assert not [a for a in attrs if a.startswith("on")], f"an inline handler on <{tag}>"
            assert not [a for a in attrs if a.startswith(("hx-on", "data-hx-on"))], f"hx-on on <{tag}>"
            if tag == "script":
                assert attrs.get("src", "").startswith("/static/"), "a script that is not a same-origin file"
            for name in ("href", "src", "action", "hx-get"):
                assert not attrs.get(name, "").strip().lower().startswith("javascript:")
            assert not attrs.get("hx-vals", "").startswith(("js:", "javascript:"))
        assert "<script>" not in html.lower()


@pytest.mark.parametrize("text", EVIL)
def test_hostile_text_is_shown_literally(client: TestClient, text: str) -> None:
    r = client.get("/", params={"text": text})
    api = client.get("/api/predict", params={"text": text})

    assert r.status_code == 200
    page = parse(r.text)
    assert page.one("input", id="text")["value"] == text  # the text box holds exactly what was typed
    assert not [a for _, a in page.tags if any(k.startswith("on") for k in a)]
    assert not page.all("img")
    assert "<script>alert" not in r.text
    assert api.status_code == 200
    gpt2 = client.app.state.serving.gpt2  # type: ignore[attr-defined]
    assert gpt2.tokenizer.decode([t["id"] for t in api.json()["tokens"]]) == text


def test_markup_in_generated_token_strings_is_escaped(client: TestClient) -> None:
    gpt2 = client.app.state.serving.gpt2  # type: ignore[attr-defined]
    ids = gpt2.tokenizer.encode('"><img src=x onerror=alert(1)><script>')
    params = {"text": TEXT, "gen": ",".join(map(str, ids)), "gen_for": text_digest(TEXT)}

    r = client.get("/", params=params)

    assert r.status_code == 200
    assert "<img" not in r.text and "<script>" not in r.text
    for t in gpt2.tokenizer.tokens(ids):
        assert f'<span class="t">{escape(show(t.label))}</span>' in r.text  # each chip, escaped


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("text=%ED%A0%80abc", "\ufffd\ufffd\ufffdabc"),  # a lone surrogate, as UTF-8 would encode it
        ("text=abc%FF%FE", "abc\ufffd\ufffd"),  # bytes that are not UTF-8 at all
        ("text=a%00b", "a\x00b"),
        ("text=%26amp%3B", "&amp;"),
    ],
)
def test_undecodable_bytes_in_the_url_are_replaced_not_crashed(
    client: TestClient, query: str, shown: str
) -> None:
    for headers in ({}, HX, {**HX, "HX-Target": "output"}):
        r = client.get(f"/?{query}", headers=headers)
        assert r.status_code == 200
    api = client.get(f"/api/predict?{query}")
    assert api.status_code == 200
    assert "".join(t["text"] for t in api.json()["tokens"]) == shown


def test_odd_paths_are_404_not_500(client: TestClient) -> None:
    for path in ("/%ED%A0%80", "/%00", "/api/%FF", "/static/..%2f..%2fetc/passwd", "/" + "a" * 3000):
        assert client.get(path).status_code == 404


def test_line_breaks_in_the_text_never_reach_a_header(client: TestClient) -> None:
    r = client.get("/", params={"text": "one\r\nSet-Cookie: owned=1", "view": "mlp"}, headers=HX)

    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    assert "\n" not in r.headers["HX-Push-Url"] and "\r" not in r.headers["HX-Push-Url"]


def test_a_forged_host_never_reaches_the_share_box(make_client: MakeClient) -> None:
    """A Host header that does not name this server gives relative permalinks, not links to that host."""
    client = make_client()
    r = client.get("/", params={"text": "hello"}, headers={"Host": "evil.example"})
    assert r.status_code == 200 and "evil.example" not in r.text
    box = parse(r.text).one("input", id="permalink")
    assert box["value"].startswith("/?text=hello&")
    svg = client.get("/export/overview.svg", params={"text": "hello"}, headers={"Host": "evil.example"})
    assert svg.status_code == 200 and "evil.example" not in svg.text
    # a host this server was told it answers to is used as it is
    named = make_client(allowed_hosts="glassbox.school.example")
    box = parse(named.get("/", headers={"Host": "glassbox.school.example:8000"}).text).one(
        "input", id="permalink"
    )
    assert box["value"].startswith("http://glassbox.school.example:8000/?text=")


def test_public_url_makes_every_permalink(make_client: MakeClient) -> None:
    client = make_client(public_url="https://glassbox.example.edu/")
    for host in ("evil.example", "localhost", "127.0.0.1:8000"):
        r = client.get("/", params={"text": "hello"}, headers={"Host": host})
        box = parse(r.text).one("input", id="permalink")
        assert box["value"].startswith("https://glassbox.example.edu/?text=hello&")
