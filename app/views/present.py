"""The lecture hall's view of the page: what a link opens on, and the projector's big previous/next buttons.

A link that names a panel (`view=`, `step=`, `layer=`, `head=`, `token=` other than the front page's) opens
with that panel first, right under the controls, so it is in the first screen at 1440x900 and up; in the
projector view (`present=1`) the figure it names fills the screen. Otherwise the page opens on the overview.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.i18n import _
from app.state import STEPS, State
from app.views.links import Link, link


@dataclass(frozen=True)
class Turn:
    """One big previous/next button: what it moves, its access key, and where it goes (None at an end)."""

    label: str
    key: str
    link: Link | None
    forward: bool


def opens_panel(state: State) -> bool:
    """Does this state name a panel (rather than the front page's overview)?"""
    return (
        state.view != "attention"
        or state.step != "qkv"
        or state.layer != 1
        or state.head != 1
        or state.token is not None
    )


def turns(state: State, n_layer: int, n_head: int) -> list[Turn]:
    """Previous and next step, block and head: the projector's buttons. Steps open the attention panel."""
    step = STEPS.index(state.step) if state.view == "attention" else -1
    before, after = STEPS[max(step - 1, 0)], STEPS[min(step + 1, len(STEPS) - 1)]

    def to(ok: bool, **changes: object) -> Link | None:
        return link(state, "panel", **changes) if ok else None

    return [
        Turn(_("step"), "j", to(step > 0, view="attention", step=before), False),
        Turn(_("step"), "k", to(step < len(STEPS) - 1, view="attention", step=after), True),
        Turn(_("block"), "u", to(state.layer > 1, layer=state.layer - 1), False),
        Turn(_("block"), "i", to(state.layer < n_layer, layer=state.layer + 1), True),
        Turn(_("head"), "h", to(state.head > 1, head=state.head - 1), False),
        Turn(_("head"), "l", to(state.head < n_head, head=state.head + 1), True),
    ]
