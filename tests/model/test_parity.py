"""Every named tensor against transformers' PyTorch GPT-2 (eager attention) with the same weights."""

from __future__ import annotations

import pytest

from model.reference import forward
from tests.model.test_reference import max_diff

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.parity]

TEXT = "Data visualization empowers users to see what a model computes, one number at a time. " * 8


@pytest.mark.slow
@pytest.mark.parametrize("n_tokens", [1, 7, 64])
def test_gpt2_small_shaped_parity(small, small_hf, tokenizer, n_tokens):
    from model.torch_gpt2 import torch_trace

    loaded, engine = small
    ids = tokenizer.encode(TEXT)[:n_tokens]
    assert len(ids) == n_tokens
    ours = engine.trace(ids)
    theirs = torch_trace(small_hf, ids, loaded.config)
    assert sorted(theirs) == sorted(ours.names)
    worst = {name: max_diff(ours[name], theirs[name]) for name in ours.names}
    assert max(worst.values()) <= 1e-4, sorted(worst.items(), key=lambda kv: -kv[1])[:5]


def test_tiny_parity(tiny, tokenizer):
    from model.torch_gpt2 import hf_model, torch_trace

    loaded, engine = tiny
    ids = tokenizer.encode("what a beautiful day")
    theirs = torch_trace(hf_model(loaded.weights, loaded.config), ids, loaded.config)
    ours = engine.trace(ids)
    for name in ours.names:
        assert max_diff(ours[name], theirs[name]) <= 1e-5, name
    # the numpy reference (model/reference.py), the third independent implementation, agrees with both
    cfg = loaded.config
    ref = forward(loaded.weights, ids, cfg.n_layer, cfg.n_head)
    assert sorted(ref) == sorted(ours.names)
    for name in ours.names:
        assert max_diff(ref[name], theirs[name]) <= 1e-5, name


def test_demo_model_parity(graph_cache, tokenizer):
    """The shipped demo model (its fp16 weights, read as float32 by both sides) through both engines."""
    from model.runtime import Engine
    from model.sources import load_model
    from model.torch_gpt2 import hf_model, torch_trace

    loaded = load_model("demo")
    assert loaded.trained and loaded.config.n_layer == 4
    engine = Engine.for_model(loaded, threads=2, cache_dir=graph_cache)
    hf = hf_model(loaded.weights, loaded.config)
    for text in ("Data visualization empowers users to", "On the deserted planet they discovered a"):
        ids = tokenizer.encode(text)
        ours, theirs = engine.trace(ids), torch_trace(hf, ids, loaded.config)
        assert sorted(theirs) == sorted(ours.names)
        worst = {name: max_diff(ours[name], theirs[name]) for name in ours.names}
        assert max(worst.values()) <= 1e-4, sorted(worst.items(), key=lambda kv: -kv[1])[:5]
        assert int(ours.logits.argmax()) == int(theirs["logits"].reshape(-1).argmax())
