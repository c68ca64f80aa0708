"""The heatmap colours, worked out for a whole matrix at once, are exactly the one-value functions'."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.views.colour import diverging, ink, sequential
from app.views.heatmap import Axes, Look, heatmap

VALUES = st.floats(allow_nan=True, allow_infinity=True, width=32)


@given(
    m=arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=VALUES),
    signed=st.booleans(),
    scale=st.none() | st.floats(-1, 100),
)
@settings(max_examples=150, deadline=None)
def test_every_cell_has_the_colour_of_its_value(m: np.ndarray, signed: bool, scale: float | None) -> None:
    h = heatmap("x", m, Axes([""] * m.shape[0], [""] * m.shape[1]), Look(signed=signed, scale=scale))
    finite = m[np.isfinite(m)].astype(np.float64)
    used = scale if scale is not None else (float(np.abs(finite).max()) if signed and finite.size else 1.0)
    kept = [float(v) for v in m.astype(np.float64).reshape(-1) if v != -np.inf]

    assert len(h.squares.fills) == len(kept)
    for fill, square_ink, v in zip(h.squares.fills, h.squares.inks, kept, strict=True):
        assert fill == (diverging(v, used) if signed else sequential(v, used))
        assert square_ink == ink(fill)
