"""Temperature, top-k, top-p and seeded draws over the full vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from model.sampling import logit_order, sample, softmax

V = 50257


@pytest.fixture(scope="module")
def logits() -> np.ndarray:
    return (np.random.default_rng(7).standard_normal(V) * 3).astype(np.float32)


def entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


@pytest.mark.parametrize("k", [1, 5, 40, V])
def test_top_k_keeps_exactly_k(logits, k):
    s = sample(logits, 1.0, top_k=k)
    assert s.kept.size == k
    assert np.count_nonzero(s.probs) == k
    assert set(s.kept.tolist()) == set(np.argsort(-logits)[:k].tolist())
    assert s.probs.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.999, 1.0])
def test_top_p_keeps_the_smallest_set_reaching_p(logits, p):
    s = sample(logits, 0.8, top_p=p)
    full = softmax(logits / 0.8)
    order = np.argsort(-full, kind="stable")
    cum = np.cumsum(full[order])
    expected = int(np.searchsorted(cum, p - 1e-12) + 1)
    assert s.kept.size == min(expected, V)
    assert s.kept_mass >= p - 1e-9
    assert full[s.kept[:-1]].sum() < p  # one fewer would not be enough
    assert np.array_equal(np.sort(s.kept), np.sort(order[: s.kept.size]))


def test_top_k_then_top_p(logits):
    s = sample(logits, 1.0, top_k=10, top_p=0.5)
    assert 1 <= s.kept.size <= 10
    assert set(s.kept.tolist()) <= set(np.argsort(-logits)[:10].tolist())


def test_entropy_rises_with_temperature(logits):
    values = [entropy(sample(logits, t).probs) for t in (0.05, 0.3, 0.8, 1.5, 5.0, 100.0)]
    assert values == sorted(values) and values[0] < values[-1]


@pytest.mark.parametrize("t", [0.01, 100.0])
def test_extreme_temperatures_are_stable(logits, t):
    s = sample(logits, t, seed=1)
    assert np.all(np.isfinite(s.probs)) and s.probs.sum() == pytest.approx(1.0)
    if t == 0.01:
        assert s.token == int(np.argmax(logits))  # near 0 behaves as greedy
    else:
        assert s.probs.max() < 2.0 / V  # near uniform


def test_same_seed_same_token(logits):
    draws = {sample(logits, 1.5, seed=42).token for _ in range(5)}
    assert len(draws) == 1
    assert len({sample(logits, 1.5, seed=s).token for s in range(50)}) > 1


def test_greedy_takes_the_top_token(logits):
    assert sample(logits, 3.0, greedy=True, seed=9).token == int(np.argmax(logits))


def test_draws_follow_the_distribution():
    logits = np.log(np.array([0.5, 0.3, 0.2] + [1e-12] * 7))
    counts = np.bincount([sample(logits, 1.0, seed=s).token for s in range(3000)], minlength=10)
    np.testing.assert_allclose(counts[:3] / 3000, [0.5, 0.3, 0.2], atol=0.03)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": 1, "top_k": 0}, "top-k"),
        ({"temperature": 1, "top_k": V + 1}, "top-k"),
        ({"temperature": 1, "top_p": 0}, "top-p"),
        ({"temperature": 1, "top_p": 1.5}, "top-p"),
    ],
)
def test_bad_controls_are_refused(logits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample(logits, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 0.8},
        {"temperature": 0.05, "top_k": 3},
        {"temperature": 5.0, "top_k": 300},  # more than the order holds: falls back to a partial sort
        {"temperature": 1.3, "top_p": 0.9},
        {"temperature": 4.0, "top_p": 0.999},  # a nucleus wider than the order
        {"temperature": 0.7, "top_k": 50, "top_p": 0.5},
        {"temperature": 1.0, "greedy": True},
    ],
)
def test_a_precomputed_order_changes_nothing(logits, kwargs):
    """The logit order found once per text gives the same sampling as sorting the probabilities each time."""
    order = logit_order(logits)
    assert order.tolist() == np.argsort(-logits, kind="stable")[:256].tolist()
    for seed in range(5):
        plain, fast = sample(logits, seed=seed, **kwargs), sample(logits, seed=seed, order=order, **kwargs)
        assert fast.token == plain.token
        np.testing.assert_array_equal(fast.probs, plain.probs)
        assert fast.kept_count == plain.kept_count
        assert fast.kept_top(20).tolist() == plain.kept_top(20).tolist()
        assert fast.top(10).tolist() == plain.top(10).tolist()
