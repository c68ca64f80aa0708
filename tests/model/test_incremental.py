"""Appending tokens to a traced prefix gives the same Trace as tracing the whole text."""

from __future__ import annotations

import numpy as np
import pytest

from model.cache import TraceCache
from model.gpt2 import GPT2
from model.sources import synthetic_model
from tests.model.test_reference import max_diff

TEXT = "As the spaceship was approaching the moon, the crew"


@pytest.mark.parametrize("split", [1, 5, 9])
def test_extend_equals_full_trace(tiny, tokenizer, split):
    _, engine = tiny
    ids = tokenizer.encode(TEXT)
    full = engine.trace(ids)
    extended = engine.extend(engine.trace(ids[:split]), ids[split:])
    assert extended.ids == full.ids
    assert extended.nbytes == full.nbytes  # the cache's accounting, before any tensor is joined
    assert sorted(extended.names) == sorted(full.names)
    for name in full.names:
        assert extended[name].shape == full[name].shape, name
        assert max_diff(extended[name], full[name]) <= 1e-5, name


def test_extend_one_token_at_a_time(tiny, tokenizer):
    _, engine = tiny
    ids = tokenizer.encode(TEXT)
    trace = engine.trace(ids[:1])
    for token in ids[1:]:
        trace = engine.extend(trace, [token])
    full = engine.trace(ids)
    for name in full.names:
        assert max_diff(trace[name], full[name]) <= 1e-5, name


def test_extend_refuses_past_the_context(tiny):
    _, engine = tiny
    trace = engine.trace([1] * 1020)
    with pytest.raises(ValueError, match="more than this model's 1024"):
        engine.extend(trace, [2] * 5)


@pytest.mark.slow
def test_extend_matches_on_gpt2_small_shapes(small, tokenizer):
    _, engine = small
    ids = (tokenizer.encode(TEXT) * 8)[:64]
    assert len(ids) == 64
    full = engine.trace(ids)
    extended = engine.extend(engine.trace(ids[:63]), ids[63:])
    for name in full.names:
        assert max_diff(extended[name], full[name]) <= 1e-5, name


def test_gpt2_facade_caches_and_extends(graph_cache, tokenizer):
    gpt2 = GPT2(synthetic_model("tiny"), threads=1, cache_dir=graph_cache)
    ids = tokenizer.encode("what a beautiful day")
    first = gpt2.trace(ids[:3])
    assert gpt2.trace(ids[:3]) is first  # second request: cache hit, same object
    longer = gpt2.trace(ids)  # extends the cached prefix
    assert gpt2.cache.hits == 1 and gpt2.cache.misses == 2
    np.testing.assert_allclose(longer["block1.attn.probs"][:, :3, :3], first["block1.attn.probs"], atol=1e-6)


def test_cache_is_bounded_by_bytes(tiny, tokenizer):
    _, engine = tiny
    traces = [engine.trace(tokenizer.encode(t)) for t in ["one", "two words", "three more words"]]
    budget = traces[1].nbytes + traces[2].nbytes
    cache = TraceCache(budget)
    for i, trace in enumerate(traces):
        cache.get(i, lambda trace=trace: trace)
    assert cache.nbytes <= budget
    assert cache.peek(0) is None and cache.peek(2) is traces[2]  # least recently used went first


def test_cache_single_flight(tiny):
    import threading

    _, engine = tiny
    cache = TraceCache(2**30)
    calls = []
    gate = threading.Event()

    def compute():
        calls.append(1)
        gate.wait(5)
        return engine.trace([10919, 257])

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", compute))) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 8
    assert all(r is results[0] for r in results)


def test_texts_packed_into_one_run_get_their_own_traces(tiny, tokenizer):
    """Several texts in one graph run (fresh ones and extended ones, of different lengths) give each the
    trace a run of its own gives: every tensor, the keys and values, the attention with its mask, the lens."""
    _, engine = tiny
    a = tokenizer.encode(TEXT)
    b = tokenizer.encode("The old lighthouse keeper")
    c = tokenizer.encode("A")
    prefix_a, prefix_b = engine.trace(a[:6]), engine.trace(b[:2])
    jobs = [(prefix_a, a[6:7]), (None, c), (prefix_b, b[2:]), (None, a), (prefix_a, a[6:])]
    packed = engine.run_many(jobs)
    alone = [engine.extend(p, ids) if p is not None else engine.trace(ids) for p, ids in jobs]
    full = [engine.trace(a[:7]), engine.trace(c), engine.trace(b), engine.trace(a), engine.trace(a)]
    for got, solo, whole in zip(packed, alone, full, strict=True):
        assert got.ids == solo.ids == whole.ids
        assert got.nbytes == whole.nbytes
        assert sorted(got.names) == sorted(whole.names)
        for name in whole.names:
            assert got[name].shape == whole[name].shape, name
            assert max_diff(got[name], solo[name]) <= 1e-5, name
            assert max_diff(got[name], whole[name]) <= 1e-5, name
        masked = got["block0.attn.masked"]
        assert np.isneginf(masked[0][np.triu_indices(got.n_tokens, 1)]).all()  # causal, within its own text
        assert np.isfinite(masked[0][np.tril_indices(got.n_tokens)]).all()
    assert [r.ids[0] for r in packed[3].lens(1)] == [r.ids[0] for r in full[3].lens(1)]
