"""Interventions against transformers' PyTorch GPT-2 with the same weights, changed by hooks of its own:
a head switched off by zeroing its D columns of the input of its block's attn.c_proj (a forward pre-hook),
a patch by replacing the vector in the output of the module that computes it (the embedding's dropout, a
block) or in that same input of attn.c_proj (one head's output)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from model.intervention import Intervention, Patch
from tests.model.test_intervention import OTHER, TEXT, assert_bit_identical, plain_session
from tests.model.test_reference import max_diff

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.parity]


@contextmanager
def intervened(hf, config, intervention: Intervention) -> Iterator[None]:
    """transformers' model with `intervention` done by hooks that run before any other hook."""
    tr, d = hf.transformer, config.head_dim
    handles = []

    def put(x, position: int, vector: np.ndarray, columns: slice = slice(None)):
        x = x.clone()
        x[0, position, columns] = torch.from_numpy(vector.copy())
        return x

    def replace_output(patches):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            for p in patches:
                hidden = put(hidden, p.position, p.vector)
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        return hook

    def replace_heads(block: int):
        def hook(module, args):
            x = args[0].clone()  # [1, T, C]: the heads side by side
            for b, h in intervention.ablate:
                if b == block:
                    x[..., h * d : (h + 1) * d] = 0.0
            for p in intervention.patch:
                if p.site() == ("heads", block):
                    x = put(x, p.position, p.vector, slice(p.head * d, (p.head + 1) * d))
            return (x, *args[1:])

        return hook

    for site in range(config.n_layer + 1):
        patches = [p for p in intervention.patch if p.site() == ("resid", site)]
        if patches:
            module = tr.drop if site == 0 else tr.h[site - 1]
            handles.append(module.register_forward_hook(replace_output(patches), prepend=True))
    for block in range(config.n_layer):
        handles.append(tr.h[block].attn.c_proj.register_forward_pre_hook(replace_heads(block), prepend=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def compare(engine, hf, loaded, ids: list[int], intervention: Intervention) -> dict[str, float]:
    """Max abs difference of every tensor, ours against transformers' with the same intervention."""
    from model.torch_gpt2 import torch_trace

    config = loaded.config
    ours = engine.trace(ids, intervention)
    with intervened(hf, config, intervention):
        theirs = torch_trace(hf, ids, config)
    for b, h in intervention.ablate:  # transformers returns the softmax; ours is after the head mask
        theirs[f"block{b}.attn.probs"][h] = 0.0
    clean = torch_trace(hf, ids, config)
    assert max_diff(theirs["logits"], clean["logits"]) > 1e-4  # the hooks did something
    assert sorted(theirs) == sorted(ours.names)
    return {name: max_diff(ours[name], theirs[name]) for name in ours.names}


def interventions(engine, tokenizer, config) -> dict[str, Intervention]:
    """Heads off, the residual stream patched at the embedding and after a block, one head's output."""
    source = engine.trace(tokenizer.encode(OTHER))
    last = config.n_layer - 1
    return {
        "heads off": Intervention(ablate=frozenset({(0, 1), (last, 0), (last, config.n_head - 1)})),
        "residual": Intervention(
            patch=(
                Patch.from_trace(source, "embed.sum", 3, 5),
                Patch.from_trace(source, f"block{last - 1}.resid.out", 7),
            )
        ),
        "a head's output": Intervention(
            ablate=frozenset({(0, 2)}),
            patch=(
                Patch.from_trace(source, "block0.attn.heads", 4, 4, head=2),  # a head off, then patched
                Patch.from_trace(source, f"block{last - 1}.attn.heads", 6, 2, head=1),
            ),
        ),
    }


@pytest.mark.parametrize("kind", ["heads off", "residual", "a head's output"])
def test_tiny_interventions_match_transformers(tiny, tokenizer, kind):
    from model.torch_gpt2 import hf_model

    loaded, engine = tiny
    hf = hf_model(loaded.weights, loaded.config)
    worst = compare(
        engine, hf, loaded, tokenizer.encode(TEXT), interventions(engine, tokenizer, loaded.config)[kind]
    )
    assert max(worst.values()) <= 1e-5, sorted(worst.items(), key=lambda kv: -kv[1])[:5]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["heads off", "residual", "a head's output"])
def test_gpt2_small_shaped_interventions_match_transformers(small, small_hf, tokenizer, kind):
    loaded, engine = small
    ids = tokenizer.encode(TEXT)
    worst = compare(engine, small_hf, loaded, ids, interventions(engine, tokenizer, loaded.config)[kind])
    print(f"{kind}: max abs diff {max(worst.values()):.2e}")
    assert max(worst.values()) <= 1e-4, sorted(worst.items(), key=lambda kv: -kv[1])[:5]


@pytest.mark.slow
def test_gpt2_small_shaped_without_interventions_is_bit_identical(small, tokenizer, tmp_path):
    loaded, engine = small
    plain = plain_session(engine, loaded.weights, loaded.config, tmp_path)
    ids, other = tokenizer.encode(TEXT), tokenizer.encode(OTHER)
    assert_bit_identical(engine, plain, [(None, ids)])
    assert_bit_identical(engine, plain, [(engine.trace(ids[:6]), ids[6:]), (None, other)])
