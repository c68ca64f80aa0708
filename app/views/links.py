"""Links between views: a full URL for a plain click, and the changed controls for htmx.

With JavaScript off a link is an ordinary permalink. With htmx, the same link sends the control form's
current values plus only what the link changes (`hx-vals`), so a temperature set with the slider survives
a click on a block or head even though the link's own href was written before the slider moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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
