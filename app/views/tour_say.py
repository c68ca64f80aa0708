"""How the tour's sentences are written: tokens in quotes, numbers printed and kept exactly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from app.state import State
from app.views.format import exact, num, percent, show
from app.views.tokens import selected_index
from model import HeadSweep, PatchSweep, Sampling, Token, Trace

Square = tuple[int, int]  # (query, key) of an attention square, counted from 0


def q(tok: Token) -> str:
    """A token quoted in a sentence: “day” (its leading space dropped, bytes of a partial character kept)."""
    label = tok.label.strip() or tok.label
    return f"“{show(label)}”"


class Say:
    """Collects a step's sentences and the exact value of every number they quote."""

    def __init__(self) -> None:
        self.sentences: list[str] = []
        self.numbers: list[tuple[str, str]] = []

    def __call__(self, template: str, **values: object) -> None:
        self.sentences.append(template.format(**values) if values else template)

    def n(self, name: str, value: float, digits: int = 3) -> str:
        self.numbers.append((name, exact(value)))
        return num(value, digits)

    def p(self, name: str, value: float) -> str:
        self.numbers.append((name, exact(value)))
        return percent(value)

    def i(self, name: str, value: int) -> str:
        self.numbers.append((name, str(int(value))))
        return str(int(value))


@dataclass
class Told:
    """What a tour step's explanation reads (the trace, the state, the draw, the tokenizer) and the Say it
    writes its sentences to."""

    trace: Trace
    state: State
    sampling: Sampling
    tok: Callable[[int], Token]
    say: Say
    # the steps about doing something to the model (app/views/tour_intervene.py) also read:
    clean: Trace | None = None  # the run with every head on, when the page switches some off
    sweep: HeadSweep | None = None  # each head switched off alone (view=heads)
    other: Trace | None = None  # prompt B's run (view=compare); `trace` is prompt A's
    grid: PatchSweep | None = None  # every patch of A into B

    @cached_property
    def i(self) -> int:
        """The selected token's position, from 0."""
        return selected_index(self.state, self.trace.n_tokens)

    @cached_property
    def me(self) -> str:
        """The selected token, quoted."""
        return q(self.tok(self.trace.ids[self.i]))
