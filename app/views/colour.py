"""Colour scales: computed here so templates only print them.

Signed values use a blue-white-orange diverging scale, probabilities a light-to-dark yellow-green-blue
sequential one; both stay distinguishable for the common kinds of colour blindness, and text on them is black
or white, whichever reads better (`ink`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

Color = tuple[int, int, int]

DIVERGING: tuple[Color, ...] = (
    (33, 82, 156),
    (125, 166, 214),
    (246, 246, 242),
    (238, 170, 108),
    (166, 78, 12),
)
SEQUENTIAL: tuple[Color, ...] = (
    (250, 250, 225),
    (200, 232, 180),
    (88, 182, 192),
    (36, 100, 166),
    (16, 40, 110),
)
SELECTED = "#0072b2"  # the selected token's stream and marks
SAMPLED = "#d55e00"  # the token the draw picked
STREAM = "#c5cbd3"
MINUS, TIMES = "\u2212", "\u00d7"  # typographic minus and times for people


def _mix(stops: Sequence[Color], t: float) -> str:
    """Linear interpolation along colour stops, t in [0, 1] -> '#rrggbb'."""
    t = min(max(float(t), 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    f = t - i
    a, b = stops[i], stops[i + 1]
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))


_HEX_ARRAY = np.array([f"{i:02x}" for i in range(256)])
_HASH_HEX = np.char.add("#", _HEX_ARRAY)  # '#00' … '#ff': a colour's first two digits


def mix_many(stops: Sequence[Color], t: np.ndarray) -> tuple[list[str], list[str]]:
    """`_mix` and `ink` for many t at once: the same arithmetic in numpy, so the same colours, faster."""
    t = np.clip(t, 0.0, 1.0) * (len(stops) - 1)
    i = np.minimum(t.astype(np.int64), len(stops) - 2)
    colours = np.asarray(stops, dtype=np.float64)
    a, b = colours[i], colours[i + 1]  # [N, 3] each
    rgb = np.round(a + (b - a) * (t - i)[:, None]).astype(np.int64)  # [N, 3]
    r, g, bl = rgb.T / 255
    light = (0.2126 * r + 0.7152 * g + 0.0722 * bl > 0.5).tolist()
    fills = np.char.add(
        np.char.add(_HASH_HEX[rgb[:, 0]], _HEX_ARRAY[rgb[:, 1]]), _HEX_ARRAY[rgb[:, 2]]
    ).tolist()
    return fills, ["#111111" if on else "#ffffff" for on in light]


def diverging(value: float, scale: float) -> str:
    """Colour of a signed value; ±scale reach the ends of the scale."""
    if scale <= 0 or not np.isfinite(value):
        return _mix(DIVERGING, 0.5)
    return _mix(DIVERGING, 0.5 + 0.5 * value / scale)


def sequential(value: float, top: float = 1.0) -> str:
    """Colour of a value in [0, top], e.g. a probability."""
    if top <= 0 or not np.isfinite(value):
        return _mix(SEQUENTIAL, 0.0)
    return _mix(SEQUENTIAL, value / top)


def ink(fill: str) -> str:
    """Black or white text, whichever reads better on `fill`."""
    r, g, b = (int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#111111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "#ffffff"


LEVELS = 48  # colour levels of a compact heatmap


@functools.lru_cache(maxsize=8)
def palette(stops: tuple[Color, ...]) -> list[str]:
    """The LEVELS colours of a compact heatmap on one scale."""
    return mix_many(stops, np.arange(LEVELS) / (LEVELS - 1))[0]
