"""The token chips: one per token, with its id; the selected one is marked in every view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.state import State
from app.views.common import show
from app.views.links import Link, link
from model import Token


@dataclass(frozen=True)
class Chip:
    position: int  # counted from 1
    id: int
    label: str  # whitespace made visible
    partial: bool  # a piece of a multi-byte character, shown as bytes
    generated: bool
    selected: bool
    link: Link


def selected_index(state: State, n_tokens: int) -> int:
    """The selected token, counted from 0 (the last one unless the URL picks another)."""
    if state.token is None or not 1 <= state.token <= n_tokens:
        return n_tokens - 1
    return state.token - 1


def chips(tokens: Sequence[Token], state: State, n_generated: int) -> list[Chip]:
    """One chip per token; the last `n_generated` came from Generate or Greedy."""
    chosen = selected_index(state, len(tokens))
    first_generated = len(tokens) - n_generated
    return [
        Chip(
            position=i + 1,
            id=t.id,
            label=show(t.label),
            partial=t.partial,
            generated=i >= first_generated,
            selected=i == chosen,
            link=link(state, "tokens", token=i + 1),
        )
        for i, t in enumerate(tokens)
    ]
