"""The ONNX engine against an independent numpy GPT-2 on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from model.graph import output_names
from model.reference import forward

PROMPTS = ["Data visualization empowers users to", "what a beautiful day", "a"]


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference; -inf entries must match exactly."""
    assert a.shape == b.shape
    finite = np.isfinite(b)
    assert np.array_equal(np.isfinite(a), finite)
    diff = np.subtract(a, b, out=np.zeros(a.shape, np.float64), where=finite)
    return float(np.abs(diff).max())


@pytest.mark.parametrize("text", PROMPTS)
def test_every_tensor_matches_numpy_reference(tiny, tokenizer, text):
    loaded, engine = tiny
    ids = tokenizer.encode(text)
    trace = engine.trace(ids)
    ref = forward(loaded.weights, ids, loaded.config.n_layer, loaded.config.n_head)
    assert sorted(trace.names) == sorted(output_names(loaded.config))
    for name in trace.names:
        assert max_diff(trace[name], ref[name]) <= 1e-5, name


def test_shapes_follow_the_tensor_table(tiny, tokenizer):
    loaded, engine = tiny
    c = loaded.config
    trace = engine.trace(tokenizer.encode("what a beautiful day"))
    t = 4
    assert trace["embed.sum"].shape == (t, c.n_embd)
    assert trace["block1.q"].shape == (c.n_head, t, c.head_dim)
    assert trace["block1.attn.probs"].shape == (c.n_head, t, t)
    assert trace["block0.mlp.act"].shape == (t, 4 * c.n_embd)
    assert trace["logits"].shape == (1, c.vocab_size)
    assert trace["lens.logits"].shape == (c.n_layer, c.vocab_size)


def test_causal_mask_and_softmax(tiny, tokenizer):
    _, engine = tiny
    trace = engine.trace(tokenizer.encode("Data visualization empowers users to"))
    probs, masked = trace["block0.attn.probs"], trace["block0.attn.masked"]
    future = np.triu(np.ones(probs.shape[1:], bool), k=1)
    assert np.all(probs[:, future] == 0) and np.all(np.isneginf(masked[:, future]))
    assert np.allclose(probs.sum(-1), 1, atol=1e-6)
    assert np.allclose(probs[:, 0, 0], 1)  # the first token can only look at itself


def test_layer_norm_statistics(tiny, tokenizer):
    _, engine = tiny
    trace = engine.trace(tokenizer.encode("what a beautiful day"))
    mean, std = trace.ln_stats("block1.ln1")
    x = trace["block0.resid.out"]
    np.testing.assert_allclose(mean, x.mean(-1), atol=1e-6)
    np.testing.assert_allclose(std, x.std(-1), rtol=1e-5)
    assert trace.ln_input("block0.ln1") is trace["embed.sum"]
    assert trace.ln_input("block1.ln2") is trace["block1.resid.mid"]


def test_logit_lens_last_row_is_the_prediction(tiny, tokenizer):
    _, engine = tiny
    trace = engine.trace(tokenizer.encode("what a beautiful day"))
    np.testing.assert_allclose(trace["lens.logits"][-1], trace.logits, atol=1e-5)
    rows = trace.lens(5)
    assert [r.block for r in rows] == [0, 1]
    assert rows[-1].ids[0] == int(np.argmax(trace.logits))
    assert all(a >= b for r in rows for a, b in zip(r.probs, r.probs[1:], strict=False))
    for row, z in zip(rows, trace["lens.logits"].astype(np.float64), strict=True):  # softmax in float64
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        assert row.ids == [int(i) for i in np.argsort(-p, kind="stable")[:5]]
        np.testing.assert_allclose(row.probs, p[row.ids], rtol=1e-6)


def test_bad_ids_are_refused(tiny):
    _, engine = tiny
    with pytest.raises(ValueError, match="no tokens"):
        engine.trace([])
    with pytest.raises(ValueError, match=r"0\.\.50256"):
        engine.trace([50257])
    with pytest.raises(ValueError, match="more than"):
        engine.trace([1] * 1025)
