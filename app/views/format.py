"""Numbers and token labels for people (and exact numbers for machines): every view formats through here."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from markupsafe import Markup

from app.i18n import _
from app.views import markup

MINUS, TIMES = "\u2212", "\u00d7"  # typographic minus and times for people


def num(x: float, digits: int = 3) -> str:
    """A number for people: 3 significant digits, a real minus sign, minus infinity for the mask. A zero has
    no sign (-0.0, e.g. a switched-off head's output, reads 0)."""
    x = float(x)
    if x == 0:
        return "0"
    if not math.isfinite(x):  # math, not numpy: thousands of calls on a page
        return _("not a number") if math.isnan(x) else (f"{MINUS}∞" if x < 0 else "∞")
    text = f"{x:.{digits}g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}{TIMES}10{str(int(exp)).translate(_SUPERSCRIPT)}"
    return text.replace("-", MINUS)


def exact(x: float) -> str:
    """A number for machines (data-* attributes): float32 precision, '-inf' for the mask."""
    x = float(x)
    return "-inf" if x == -math.inf else f"{x:.9g}"


def percent(p: float) -> str:
    """A probability as a percentage with sensible precision."""
    p = float(p) * 100
    if p >= 10:
        return f"{p:.1f}%"
    if p >= 0.1:
        return f"{p:.2f}%"
    if p == 0:
        return "0%"
    return f"{p:.2g}%".replace("e-0", "e-")


_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)

_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def show(label: str) -> str:
    """A token label with its whitespace and control characters made visible."""
    out = []
    for ch in label:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"U+{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def short(label: str, n: int = 14) -> str:
    """A visible label cut to n characters."""
    text = show(label)
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass(frozen=True)
class Table:
    """The numbers behind a picture, for the "show numbers" disclosure."""

    caption: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    selected_row: int | None = None

    @cached_property
    def body(self) -> Markup:
        """The table's head and body rows as HTML (app/views/markup.py), written once per table."""
        return markup.table_body(self)


def table(
    caption: str,
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    selected_row: int | None = None,
) -> Table:
    """A matrix as rows of 4-digit numbers."""
    m = np.asarray(matrix, dtype=np.float64)
    rows = [(row_labels[r], [num(v, 4) for v in m[r]]) for r in range(m.shape[0])]
    return Table(caption=caption, columns=list(col_labels), rows=rows, selected_row=selected_row)
