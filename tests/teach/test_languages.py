"""Languages: complete, current catalogs; lang= and Accept-Language; Chinese text shown as characters."""

from __future__ import annotations

import gettext
import io
import re
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from app.i18n import negotiate, normalize
from app.paths import TRANSLATIONS_DIR
from app.views.tour import TOUR_STEPS
from tests.teach.conftest import query_of
from tests.web.conftest import parse

ROOT = Path(__file__).resolve().parents[2]
POT = TRANSLATIONS_DIR / "messages.pot"
ZH_PO = TRANSLATIONS_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
ZH_MO = ZH_PO.with_suffix(".mo")
TEXT = "Data visualization empowers users to"
CJK = re.compile("[\u4e00-\u9fff]")


def ids(path: Path) -> set[object]:
    with path.open("rb") as f:
        return {m.id for m in read_po(f) if m.id}


def test_the_template_lists_every_message_in_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    fresh = tmp_path / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", "babel.cfg", "-o", str(fresh), "."])
    assert ids(fresh) == ids(POT), "run the extract and update commands of translations/README.md"


def test_chinese_translates_every_message() -> None:
    with ZH_PO.open("rb") as f:
        catalog = read_po(f)
    assert {m.id for m in catalog if m.id} == ids(POT)
    for m in catalog:
        if not m.id:
            continue
        assert not m.fuzzy, m.id
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert all(s.strip() for s in strings), f"no translation for {m.id!r}"
        source = " ".join(m.id) if isinstance(m.id, tuple) else m.id
        for pattern in (r"\{\w+\}", r"%\(\w+\)[sd]"):  # the same placeholders, or formatting fails
            assert {*re.findall(pattern, source)} == {*re.findall(pattern, " ".join(strings))}, m.id


def test_the_compiled_catalog_is_the_current_one() -> None:
    with ZH_PO.open("rb") as f:
        buffer = io.BytesIO()
        write_mo(buffer, read_po(f))
    fresh = gettext.GNUTranslations(io.BytesIO(buffer.getvalue()))
    with ZH_MO.open("rb") as f:
        committed = gettext.GNUTranslations(f)
    assert fresh._catalog == committed._catalog, "run pybabel compile (translations/README.md)"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR,zh;q=0.5", "zh-CN"),
        ("fr-FR", "en"),
        ("", "en"),
        ("zh-Hans", "zh-CN"),
        ("en;q=0.2, zh-TW;q=0.8", "zh-CN"),
        ("zh;q=0", "en"),
    ],
)
def test_accept_language(header: str, lang: str) -> None:
    assert negotiate(header) == lang


def test_language_codes() -> None:
    assert normalize("zh_CN") == normalize("zh") == normalize("ZH-cn") == "zh-CN"
    assert normalize("en-US") == "en" and normalize("klingon") is None


def test_lang_in_the_url_chooses_chinese_and_links_keep_it(client: TestClient) -> None:
    r = client.get("/", params={"text": TEXT, "lang": "zh-CN"})
    assert r.status_code == 200
    assert '<html lang="zh-CN"' in r.text
    page = parse(r.text)
    assert "词元" in page.all_text and "注意力" in page.all_text and "残差流" in page.all_text
    assert page.one("input", name="lang")["value"] == "zh-CN"  # the form carries it
    for a in page.all("a", hx_get="/"):
        assert query_of(a["href"]).get("lang") == "zh-CN"
    assert "Vary" in r.headers and "Accept-Language" in r.headers["Vary"]


def test_accept_language_chooses_when_the_url_does_not(client: TestClient) -> None:
    zh = client.get("/", params={"text": TEXT}, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN"' in zh.text and "选择下一个词元" in zh.text
    assert all("lang" not in query_of(a["href"]) for a in parse(zh.text).all("a", hx_get="/"))
    en = client.get("/", params={"text": TEXT, "lang": "en"}, headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en"' in en.text and "Choosing the next token" in en.text


def test_unknown_language_gets_a_message(client: TestClient) -> None:
    r = client.get("/", params={"text": TEXT, "lang": "tlh"})
    assert r.status_code == 400 and "There is no translation called" in r.text and "简体中文" in r.text


def test_every_tour_step_in_chinese(client: TestClient) -> None:
    english = client.get("/", params={"text": TEXT, "tour": "1"}).text
    assert "What a language model does" in english
    for number in range(1, TOUR_STEPS + 1):
        r = client.get("/", params={"text": TEXT, "tour": str(number), "lang": "zh-CN"})
        assert r.status_code == 200
        card = r.text.split('<aside id="tour"')[1].split("</aside>")[0]
        sentences = re.findall(r'<p class="tour-text">(.*?)</p>', card, re.S)
        assert 2 <= len(sentences) <= 4
        assert all(CJK.search(s) for s in sentences), sentences


def test_chinese_characters_are_shown_whole_beside_their_bytes(client: TestClient) -> None:
    r = client.get("/", params={"text": "你好，世界 and GPT"})  # noqa: RUF001
    assert "\ufffd" not in r.text  # never a replacement character
    page = parse(r.text)
    wholes = [s["data-text"] for s in page.all("span", data_text="*")]
    assert wholes == ["你", "好", "，", "世", "界"]  # noqa: RUF001
    chips = page.all("a", data_id="*", data_position="*")
    assert chips[0]["data-id"] == "19526" and "&lt;E4&gt;&lt;BD&gt;" in r.text  # escaped in HTML


def test_exports_speak_the_language_too(client: TestClient) -> None:
    svg = client.get("/export/attention.svg", params={"text": TEXT, "lang": "zh-CN", "step": "probs"}).text
    assert "<title>注意力 · 第 1 块 · 第 1 个头 · 第 5 步：softmax</title>" in svg  # noqa: RUF001
    png = client.get("/export/tokens.png", params={"text": "你好，世界", "lang": "zh-CN"})  # noqa: RUF001
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    csv_zh = client.get("/export/embedding.csv", params={"text": TEXT, "lang": "zh-CN"}).text
    assert csv_zh.splitlines()[0].startswith("position,token,id,0,1")  # column names stay machine-readable
