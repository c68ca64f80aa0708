"""How the tour's sentences are written: tokens in quotes, numbers printed and kept exactly."""

from __future__ import annotations

from app.views.format import exact, num, percent, show
from model import Token


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
