"""Temperature, top-k, top-p and seeded draws over the full vocabulary, all reading one ranking: the highest
score first, equal scores by lower id."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import chisquare

from model.sampling import logit_order, ranking, sample, softmax

V = 50257


@pytest.fixture(scope="module")
def logits() -> np.ndarray:
    return (np.random.default_rng(7).standard_normal(V) * 3).astype(np.float32)


def entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def ranked(logits: np.ndarray) -> np.ndarray:
    """The documented ranking, written the slow and obvious way: by score, then by id."""
    return np.lexsort((np.arange(logits.size), -logits.astype(np.float64)))


def walk(logits: np.ndarray, temperature: float, n: int, seed: int) -> int:
    """The documented draw, the obvious way: the first n ranked probabilities end to end, one running total
    over them, and the token under u times their total."""
    ids = ranked(logits)[:n]
    cum = np.cumsum(softmax(logits.astype(np.float64) / temperature)[ids])
    u = np.random.default_rng(seed).random()
    return int(ids[np.searchsorted(cum, u * cum[-1], side="right")])


# -- the ranking and the kept set ---------------------------------------------------------------------------
def test_ranking_puts_equal_scores_in_id_order():
    scores = np.array([2, 2, 2, 1, 1, 0, 2, -1, 0.0, -0.0], np.float32)
    assert ranking(scores).tolist() == [0, 1, 2, 6, 3, 4, 5, 8, 9, 7]  # -0.0 ties with 0.0
    assert ranking(scores.astype(np.float64)).tolist() == ranking(scores).tolist()


def test_ranking_of_a_vocabulary(logits):
    tied = np.round(logits)  # thousands of ties
    for scores in (logits, tied, -tied, np.zeros(V, np.float32)):
        assert ranking(scores).tolist() == ranked(scores).tolist()


def test_a_tie_at_the_top_k_cut_goes_to_the_lower_ids():
    """The audit's case: four tokens share the top score; top-k 2 keeps ids 0 and 1, not any two of them."""
    scores = np.array([2.0, 2, 2, 1, 1, 0, 2, -1])
    assert sample(scores, 1.0, top_k=2).kept.tolist() == [0, 1]
    assert sample(scores, 1.0, top_k=5).kept.tolist() == [0, 1, 2, 6, 3]
    assert sample(scores, 1.0, top_k=1).kept.tolist() == [0] == [int(np.argmax(scores))]


@pytest.mark.parametrize("k", [1, 5, 40, V])
def test_top_k_keeps_exactly_k(logits, k):
    s = sample(logits, 1.0, top_k=k)
    assert s.kept.size == s.kept_count == k
    assert np.count_nonzero(s.probs) == k
    assert s.kept.tolist() == ranked(logits)[:k].tolist()
    assert s.probs.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.999])
def test_top_p_keeps_the_smallest_set_reaching_p(logits, p):
    s = sample(logits, 0.8, top_p=p)
    full = softmax(logits / 0.8)
    order = ranked(logits)
    cum = np.cumsum(full[order])
    expected = int(np.searchsorted(cum, p - 1e-12) + 1)
    assert s.kept.size == expected < V
    assert s.kept_mass >= p - 1e-9
    assert full[s.kept[:-1]].sum() < p  # one fewer would not be enough
    assert s.kept.tolist() == order[: s.kept.size].tolist()


def test_top_p_one_keeps_every_token(logits):
    """The running total reaches 1 - 1e-12 before the last few ids here; top-p 1 still keeps them all."""
    s = sample(logits, 0.8, top_p=1.0)
    assert s.kept_count == V and s.kept_mass == 1.0 and s.filtered is None
    assert np.array_equal(s.probs, s.probs_all)


def test_top_k_then_top_p(logits):
    s = sample(logits, 1.0, top_k=10, top_p=0.5)
    assert 1 <= s.kept.size <= 10
    assert s.kept.tolist() == ranked(logits)[: s.kept.size].tolist()


# -- the draw -----------------------------------------------------------------------------------------------
def test_the_audits_case_draws_the_same_with_and_without_a_filter_that_keeps_everything():
    scores = np.log([0.1, 0.4, 0.2, 0.3])
    plain = [sample(scores, seed=s).token for s in range(8)]
    assert plain == [walk(scores, 1.0, 4, s) for s in range(8)]
    assert plain == [sample(scores, top_p=1.0, seed=s).token for s in range(8)]
    assert plain == [sample(scores, top_k=4, seed=s).token for s in range(8)]
    assert len(set(plain)) > 1


@pytest.mark.parametrize("temperature", [0.3, 0.8, 2.0, 5.0])
def test_the_draw_by_blocks_is_the_walk_down_the_ranking(logits, temperature):
    """Over the whole vocabulary the draw goes block by block; it lands where one running total over the
    ranking lands, in the first block or past it (at 0.3 the first block holds 99.998% of the probability,
    at 0.8 about 82%, at 2 about 13%)."""
    tied = np.round(logits * 4) / 4  # with ties across block edges
    for scores in (logits, tied):
        order = ranking(scores)
        got = [sample(scores, temperature, seed=s, order=order).token for s in range(60)]
        assert got == [walk(scores, temperature, V, s) for s in range(60)]
        past_first_block = np.isin(got, order[256:]).mean()
        assert past_first_block == 0 if temperature == 0.3 else past_first_block > 0.1


@pytest.mark.parametrize(("top_k", "top_p"), [(1000, None), (None, 0.9), (300, 0.95)])
def test_a_filtered_draw_is_the_walk_down_the_kept_ranking(logits, top_k, top_p):
    for seed in range(40):
        s = sample(logits, 2.0, top_k, top_p, seed=seed)
        assert s.token == walk(logits, 2.0, s.kept_count, seed)


SCORES = arrays(
    np.float32,
    st.integers(1, 300),
    elements=st.floats(-30, 30, width=32) | st.sampled_from([0.0, 1.0, 2.5, -4.0]),  # ties, often
)


@given(scores=SCORES, temperature=st.sampled_from([0.05, 0.5, 1.0, 3.0]), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=300, deadline=None)
def test_a_filter_that_keeps_everything_draws_what_no_filter_draws(scores, temperature, seed):
    plain = sample(scores, temperature, seed=seed).token
    assert sample(scores, temperature, top_p=1.0, seed=seed).token == plain
    assert sample(scores, temperature, top_k=scores.size, seed=seed).token == plain
    assert sample(scores, temperature, top_k=scores.size, top_p=1.0, seed=seed).token == plain
    assert plain == walk(scores, temperature, scores.size, seed)


@given(
    scores=SCORES,
    k=st.integers(1, 300),
    temperature=st.sampled_from([0.5, 1.0, 3.0]),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=300, deadline=None)
def test_top_k_keeps_the_k_highest_with_ties_to_the_lower_ids(scores, k, temperature, seed):
    k = min(k, scores.size)
    s = sample(scores, temperature, top_k=k, seed=seed)
    cut = np.sort(scores)[::-1][k - 1]  # the k-th highest score
    above = np.flatnonzero(scores > cut)
    tied = np.flatnonzero(scores == cut)
    assert sorted(s.kept.tolist()) == sorted([*above, *tied[: k - above.size]])  # the lowest tied ids
    assert sample(scores, temperature, top_k=1, seed=seed).kept.tolist() == [int(np.argmax(scores))]
    assert sample(scores, temperature, top_k=1, seed=seed).token == sample(scores, greedy=True).token
    assert s.token == walk(scores, temperature, k, seed)
    rank = {int(t): r for r, t in enumerate(ranked(scores))}
    assert rank[s.token] <= rank[sample(scores, temperature, seed=seed).token]  # a filter moves it up only


@pytest.mark.parametrize(("top_k", "top_p"), [(None, None), (None, 0.8)])
def test_20000_draws_follow_the_distribution(top_k, top_p):
    """Chi-square of 20 000 seeded draws against the kept probabilities: 1000 tokens, a few likely ones and a
    long tail, so many draws pass the first block of the ranking. Ids with fewer than 20 expected draws are
    pooled in runs of the ranking."""
    scores = np.concatenate([[4.0, 3.5, 3.5, 3.0, 2.0], np.random.default_rng(3).standard_normal(995)])
    order = ranking(scores)
    draws = np.array([sample(scores, 1.0, top_k, top_p, seed, order=order).token for seed in range(20_000)])
    s = sample(scores, 1.0, top_k, top_p)
    assert np.isin(draws, s.kept).all()
    assert np.isin(draws, order[256:]).mean() > 0.1
    expected, observed, mass, count = [], [], 0.0, 0
    for i in s.kept:
        mass += s.probs[i] * draws.size
        count += int((draws == i).sum())
        if mass >= 20:
            expected.append(mass)
            observed.append(count)
            mass, count = 0.0, 0
    expected[-1] += mass
    observed[-1] += count
    assert len(expected) > 20
    assert chisquare(observed, np.array(expected) * (len(draws) / sum(expected))).pvalue > 1e-3


# -- everything else ----------------------------------------------------------------------------------------
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
    assert sample(np.array([1.0, 3.0, 3.0]), greedy=True).token == 1  # a tie: the lower id


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
        {"temperature": 5.0, "top_k": 300},
        {"temperature": 1.3, "top_p": 0.9},
        {"temperature": 4.0, "top_p": 0.999},  # a nucleus of thousands of ids
        {"temperature": 0.7, "top_k": 50, "top_p": 0.5},
        {"temperature": 1.0, "greedy": True},
    ],
)
def test_a_precomputed_order_changes_nothing(logits, kwargs):
    """The ranking found once per text gives the same sampling as ranking the scores in each call."""
    order = logit_order(logits)
    assert order.tolist() == ranked(logits).tolist()
    for seed in range(5):
        plain, fast = sample(logits, seed=seed, **kwargs), sample(logits, seed=seed, order=order, **kwargs)
        assert fast.token == plain.token
        np.testing.assert_array_equal(fast.probs, plain.probs)
        assert fast.kept_count == plain.kept_count
        assert fast.kept_top(20).tolist() == plain.kept_top(20).tolist()
        assert fast.top(10).tolist() == plain.top(10).tolist()
