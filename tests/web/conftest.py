"""Web tests: the app with the tiny synthetic model injected, so nothing is downloaded."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from model import GPT2, load_model

HX = {"HX-Request": "true"}


@pytest.fixture(scope="session")
def gpt2() -> GPT2:
    return GPT2(load_model("tiny"))


@pytest.fixture(scope="session")
def app(gpt2: GPT2) -> FastAPI:
    settings = Settings(max_chars=400, max_tokens=40)
    return create_app(settings, Serving(gpt2=gpt2, source=gpt2.loaded.description))


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


class Elements(HTMLParser):
    """Every start tag of a page as (tag, attributes), plus its text: sharp asserts without a DOM library."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str | None = None, **has: str) -> list[dict[str, str]]:
        """Attributes of the `tag` elements having `has` (data_prob means data-prob; "*" any value)."""
        want = {k.replace("_", "-"): v for k, v in has.items()}
        return [
            a
            for t, a in self.tags
            if (tag is None or t == tag) and all(k in a and (v == "*" or a[k] == v) for k, v in want.items())
        ]

    def one(self, tag: str | None = None, **has: str) -> dict[str, str]:
        found = self.all(tag, **has)
        assert len(found) == 1, f"expected one {tag} with {has}, found {len(found)}"
        return found[0]

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(html: str) -> Elements:
    return Elements(html)


def stop_class(html: str, temperature: str) -> str:
    """The class (`s<index>`) of the temperature slider's stop whose value is `temperature`."""
    radio = parse(html).one("input", name="temperature", value=temperature)
    return radio["id"].removeprefix("temperature-")


def stop_rows(html: str, temperature: str) -> list[tuple[int, float, float]]:
    """(token id, probability, probability before the filter) of each row of the output table, as drawn
    for the slider's stop at `temperature`."""
    cls = stop_class(html, temperature)
    rows, current = [], -1
    for tag, a in parse(html).tags:
        if tag == "tr" and "data-id" in a:
            current = int(a["data-id"])
        elif tag == "span" and "data-prob" in a and a.get("class", "").split()[:2] == ["at", cls]:
            rows.append((current, float(a["data-prob"]), float(a["data-prob-all"])))
    return rows


def fan_group(html: str, temperature: str) -> Elements:
    """The overview's fan as drawn for the slider's stop at `temperature`."""
    cls = stop_class(html, temperature)
    start = html.index(f'<g class="at {cls}"', html.index('<svg id="fan"'))
    return parse(html[start : html.index("</g>", start)])
