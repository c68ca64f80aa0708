"""A link's parameters, worked out from the state's own, are exactly those of the changed state."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from app.state import STEPS, VIEWS, State, _encode_all

CONTROLS = {
    "model": st.sampled_from(["", "tiny", "gpt2"]),
    "layer": st.integers(1, 12),
    "head": st.integers(1, 12),
    "token": st.none() | st.integers(1, 40),
    "temperature": st.floats(0.05, 5.0),
    "top_k": st.none() | st.integers(1, 50257),
    "top_p": st.none() | st.floats(0.01, 1.0),
    "seed": st.integers(0, 2**32 - 1),
    "view": st.sampled_from(VIEWS),
    "step": st.sampled_from(STEPS),
    "expand": st.booleans(),
    "present": st.booleans(),
    "tour": st.none() | st.integers(1, 21),
    "lang": st.sampled_from(["", "en", "zh-CN"]),
    "text": st.text(max_size=20),
    "gen": st.lists(st.integers(0, 50256), max_size=3).map(tuple),
}
states = st.builds(State, **CONTROLS)
changes = st.sets(st.sampled_from(sorted(CONTROLS)), min_size=1, max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: CONTROLS[k] for k in keys})
)


@given(state=states, change=changes)
@settings(max_examples=400, deadline=None)
def test_params_with_changes_equal_the_changed_states_params(state: State, change: dict[str, object]) -> None:
    assert change
    expected = _encode_all(replace(state, **change))  # type: ignore[arg-type]
    got = state.params(**change)
    assert got == expected
    assert list(got) == list(expected)  # the same order, so the same URL
    assert state.url(**change) == replace(state, **change).url()  # type: ignore[arg-type]
