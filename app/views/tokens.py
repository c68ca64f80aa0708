"""The token chips: one per token, with its id; the selected one is marked in every view.

A byte-level token can hold part of a multi-byte character (most Chinese characters take two or three
tokens). Such chips show their bytes, e.g. <E4><B8>, and consecutive ones are grouped under the whole
character they make together, so the page never shows a row of U+FFFD.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.i18n import _
from app.state import State
from app.views.format import show
from app.views.links import Link, link
from model import Token
from model.tokenizer import END_OF_TEXT, END_OF_TEXT_ID

MAX_GROUP = 8  # tokens one character group may span (a UTF-8 character has at most 4 bytes)


@dataclass(frozen=True)
class Chip:
    position: int  # counted from 1
    id: int
    label: str  # whitespace made visible
    partial: bool  # a piece of a multi-byte character, shown as bytes
    generated: bool
    selected: bool
    link: Link
    title: str


@dataclass(frozen=True)
class ChipGroup:
    """One chip, or consecutive partial chips with the whole characters their bytes make together."""

    chips: list[Chip]
    whole: str | None = None  # the characters, shown under the group; None for an ordinary chip
    title: str = ""


def selected_index(state: State, n_tokens: int) -> int:
    """The selected token, counted from 0 (the last one unless the URL picks another)."""
    if state.token is None or not 1 <= state.token <= n_tokens:
        return n_tokens - 1
    return state.token - 1


def character_groups(tokens: Sequence[Token]) -> list[tuple[int, int, str]]:
    """(first, last, text) of each run of tokens whose bytes only decode together; indices from 0."""
    groups = []
    i, n = 0, len(tokens)
    while i < n:
        if not tokens[i].partial:
            i += 1
            continue
        joined = b""
        found = None
        for j in range(i, min(n, i + MAX_GROUP)):
            joined += tokens[j].raw
            try:
                found = (i, j, joined.decode("utf-8"))
                break
            except UnicodeDecodeError:
                continue
        if found is None:  # bytes that never make a character (e.g. a generated stray byte)
            i += 1
            continue
        groups.append(found)
        i = found[1] + 1
    return groups


def whole_text(text: str) -> str:
    """The characters of a group as shown beside it: surrounding spaces dropped, the rest made visible."""
    return show(text.strip() or text)


def end_of_text_note(text: str) -> str | None:
    """What the panel says when the text holds GPT-2's end-of-text marker, and why it reads it as it does."""
    if END_OF_TEXT not in text:
        return None
    return _(
        "“{marker}” in your text is read as its characters, several ordinary tokens, not as GPT-2's "
        "end-of-text token (id {id}): typed text is always plain text here, so typing cannot insert the "
        "marker that separated documents in GPT-2's training."
    ).format(marker=END_OF_TEXT, id=END_OF_TEXT_ID)


def chips(tokens: Sequence[Token], state: State, n_generated: int) -> list[Chip]:
    """One chip per token; the last `n_generated` came from Generate or Greedy."""
    chosen = selected_index(state, len(tokens))
    first_generated = len(tokens) - n_generated
    out = []
    for i, t in enumerate(tokens):
        title = _("token {position}, id {id}").format(position=i + 1, id=t.id)
        if i >= first_generated:
            title += _(", generated")
        if t.partial:
            title += _(", part of a character")
        out.append(
            Chip(
                position=i + 1,
                id=t.id,
                label=show(t.label),
                partial=t.partial,
                generated=i >= first_generated,
                selected=i == chosen,
                link=link(state, "tokens", token=i + 1),
                title=title,
            )
        )
    return out


def chip_groups(tokens: Sequence[Token], all_chips: Sequence[Chip]) -> list[ChipGroup]:
    """The chips in order, partial ones grouped with the characters they make."""
    out: list[ChipGroup] = []
    i = 0
    for first, last, text in character_groups(tokens):
        out += [ChipGroup([c]) for c in all_chips[i:first]]
        whole = whole_text(text)
        title = _("tokens {first} to {last} together are the bytes of {text}").format(
            first=first + 1, last=last + 1, text=f"“{whole}”"
        )
        out.append(ChipGroup(list(all_chips[first : last + 1]), whole, title))
        i = last + 1
    out += [ChipGroup([c]) for c in all_chips[i:]]
    return out
