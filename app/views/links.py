"""Links between views: a full URL for a plain click, and the changed controls for htmx.

With JavaScript off a link is an ordinary permalink. With htmx, the same link sends the control form's
current values plus only what the link changes (`hx-vals`), so a temperature set with the slider survives
a click on a block or head even though the link's own href was written before the slider moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote_plus

from app.state import State, to_url


@dataclass(frozen=True)
class Link:
    href: str
    vals: str  # JSON object of the controls this link changes


def link(state: State, anchor: str = "", **changes: object) -> Link:
    """A link to `state` with `changes` applied; `anchor` scrolls to a panel."""
    new = state.params(**changes)
    vals = {key: new.get(key, "qkv" if key == "step" else "") for key in changes}
    return Link(href=to_url(new, anchor), vals=json.dumps(vals, ensure_ascii=False))


@dataclass(frozen=True)
class Downloads:
    """A panel's export links: its figure as SVG and PNG, its numbers as CSV (one per tensor) and JSON."""

    panel: str
    svg: str
    png: str
    json: str
    csvs: list[tuple[str, str]]  # (tensor name, link)


def export_href(state: State, panel: str, fmt: str, tensor: str | None = None) -> str:
    """`/export/<panel>.<fmt>?<this state's controls>`."""
    query = state.url().removeprefix("/?")
    extra = f"&tensor={quote_plus(tensor)}" if tensor else ""
    return f"/export/{panel}.{fmt}?{query}{extra}"


def downloads(state: State, panel: str, tensors: list[str]) -> Downloads:
    """The download links of `panel`; the first CSV is its main tensor, the one a plain CSV link gives."""
    csvs = [(name, export_href(state, panel, "csv", name if k else None)) for k, name in enumerate(tensors)]
    return Downloads(
        panel=panel,
        svg=export_href(state, panel, "svg"),
        png=export_href(state, panel, "png"),
        json=export_href(state, panel, "json"),
        csvs=csvs,
    )
