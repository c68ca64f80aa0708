"""Interventions in the engine: heads switched off and vectors patched in, as graph inputs whose defaults
change nothing; packed runs, the trace cache and the sweep of every head."""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model.gpt2 import GPT2, MAX_PACK, MAX_PACK_CELLS
from model.graph import build_graph
from model.intervention import Intervention, Patch
from model.sources import synthetic_model
from tests.model.test_reference import max_diff

TEXT = "As the spaceship was approaching the moon, the crew"
OTHER = "On the deserted planet they discovered a strange old"
INTERVENTION_INPUTS = (
    "head_mask",
    "patch.resid.mask",
    "patch.resid.values",
    "patch.heads.mask",
    "patch.heads.values",
)


def off(*heads: tuple[int, int]) -> Intervention:
    return Intervention(ablate=frozenset(heads))


def plain_session(engine, weights, config, directory: Path) -> ort.InferenceSession:
    """The graph without intervention inputs (builder version 2's graph, byte for byte), in a session set up
    as the engine's."""
    path = directory / "plain.onnx"
    onnx.save_model(
        build_graph(weights, config, interventions=False),
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="plain.bin",
        size_threshold=1024,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = engine.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def assert_bit_identical(engine, plain: ort.InferenceSession, texts) -> None:
    """Every output of a run without interventions equals, bit for bit, the graph without their inputs."""
    checked, chosen = engine._checked(texts, None)
    feeds = engine._feeds(checked, chosen)
    assert feeds["head_mask"].shape[-1] == 1 and feeds["patch.resid.values"].shape[1] == 1  # one row each
    ours = engine.session.run(engine.names, feeds)
    theirs = plain.run(engine.names, {k: v for k, v in feeds.items() if k not in INTERVENTION_INPUTS})
    for name, a, b in zip(engine.names, ours, theirs, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), name


def test_no_intervention_is_bit_identical_to_the_graph_without_them(tiny, tokenizer, tmp_path):
    loaded, engine = tiny
    plain = plain_session(engine, loaded.weights, loaded.config, tmp_path)
    ids, other = tokenizer.encode(TEXT), tokenizer.encode(OTHER)
    prefix = engine.trace(ids[:5])
    assert_bit_identical(engine, plain, [(None, ids)])  # a fresh text
    assert_bit_identical(engine, plain, [(prefix, ids[5:])])  # an extension
    assert_bit_identical(engine, plain, [(None, other), (prefix, ids[5:6]), (None, ids[:2])])  # packed


# -- what an intervention does ----------------------------------------------------------------------------
def test_a_head_switched_off_has_zero_probabilities_and_output(tiny, tokenizer):
    loaded, engine = tiny
    ids = tokenizer.encode(TEXT)
    clean, cut = engine.trace(ids), engine.trace(ids, off((1, 2), (0, 0)))
    assert cut.intervention == off((0, 0), (1, 2)) and clean.intervention is None
    for block, head in ((1, 2), (0, 0)):
        assert not cut[f"block{block}.attn.probs"][head].any()
        assert not cut[f"block{block}.attn.heads"][head].any()
    np.testing.assert_array_equal(cut["block0.q"], clean["block0.q"])  # before the cut, nothing changes
    np.testing.assert_array_equal(cut["block0.attn.probs"][1:], clean["block0.attn.probs"][1:])  # other heads
    assert max_diff(cut["block1.ln1"], clean["block1.ln1"]) > 1e-3  # after it, block 1 reads another stream
    # attn.out is c_proj of the heads side by side: the heads that are off add nothing
    w = loaded.weights
    merged = cut["block1.attn.heads"].transpose(1, 0, 2).reshape(len(ids), -1)
    expected = merged @ w["h.1.attn.c_proj.weight"] + w["h.1.attn.c_proj.bias"]
    np.testing.assert_allclose(cut["block1.attn.out"], expected, atol=1e-5)
    assert cut.logits.tolist() != clean.logits.tolist()


@pytest.mark.parametrize(
    ("tensor", "head"), [("embed.sum", None), ("block0.resid.out", None), ("block0.attn.heads", 3)]
)
def test_a_patch_puts_the_other_runs_vector_in_place(tiny, tokenizer, tensor, head):
    _, engine = tiny
    ids, other = tokenizer.encode(TEXT), tokenizer.encode(OTHER)
    source, clean = engine.trace(other), engine.trace(ids)
    patch = Patch.from_trace(source, tensor, position=4, source_position=6, head=head)
    got = engine.trace(ids, Intervention(patch=(patch,)))
    row = got[tensor][4] if head is None else got[tensor][head, 4]
    want = source[tensor][6] if head is None else source[tensor][head, 6]
    np.testing.assert_array_equal(row, want)
    for name in ("block1.resid.out", "final.ln"):  # before the patched token: exactly the clean run
        np.testing.assert_array_equal(got[name][:4], clean[name][:4])
        assert max_diff(got[name][4:], clean[name][4:]) > 1e-4  # from it on: changed
    assert got.logits.tolist() != clean.logits.tolist()


def test_patching_in_a_texts_own_vector_changes_nothing(tiny, tokenizer):
    _, engine = tiny
    ids = tokenizer.encode(TEXT)
    clean = engine.trace(ids)
    same = Intervention(patch=(Patch.from_trace(clean, "block0.resid.out", 3),))
    patched = engine.trace(ids, same)
    for name in clean.names:
        np.testing.assert_array_equal(patched[name], clean[name], err_msg=name)


# -- packing, extending, caching --------------------------------------------------------------------------
def test_texts_with_different_interventions_share_one_run(tiny, tokenizer):
    """Each text of a packed run gets what a run of its own gives, whatever the others' interventions."""
    _, engine = tiny
    a, b = tokenizer.encode(TEXT), tokenizer.encode(OTHER)
    source = engine.trace(b)
    patched = Intervention(
        ablate=frozenset({(1, 1)}),
        patch=(
            Patch.from_trace(source, "embed.sum", 2),
            Patch.from_trace(source, "block0.attn.heads", 5, head=2),
        ),
    )
    prefix = engine.trace(a[:6], off((0, 3)))
    jobs = [(None, a), (None, a), (prefix, a[6:]), (None, b[:7]), (None, a)]
    interventions = [off((0, 1)), None, None, patched, patched]
    packed = engine.run_many(jobs, interventions)
    alone = [
        engine.trace(a, off((0, 1))),
        engine.trace(a),
        engine.trace(a, off((0, 3))),
        engine.trace(b[:7], patched),
        engine.trace(a, patched),
    ]
    for got, want in zip(packed, alone, strict=True):
        assert got.ids == want.ids and got.intervention == want.intervention
        for name in want.names:
            assert max_diff(got[name], want[name]) <= 1e-5, name


def test_an_extension_keeps_its_prefixs_intervention(tiny, tokenizer):
    _, engine = tiny
    ids = tokenizer.encode(TEXT)
    cut = off((1, 0))
    extended = engine.extend(engine.trace(ids[:4], cut), ids[4:])
    full = engine.trace(ids, cut)
    assert extended.intervention == cut
    for name in full.names:
        assert max_diff(extended[name], full[name]) <= 1e-5, name
    with pytest.raises(ValueError, match="prefix's own intervention"):
        engine.run_many([(engine.trace(ids[:4]), ids[4:])], [cut])


def test_an_intervened_trace_is_its_own_cache_entry(graph_cache, tokenizer):
    gpt2 = GPT2(synthetic_model("tiny"), threads=1, cache_dir=graph_cache)
    ids = tokenizer.encode("what a beautiful day")
    clean = gpt2.trace(ids)
    cut = gpt2.trace(ids, off((0, 2)))
    assert cut is not clean and cut.intervention == off((0, 2))
    assert gpt2.trace(ids, off((0, 2))) is cut  # an equal intervention: the same entry
    assert gpt2.trace(ids, Intervention()) is clean  # an empty one is none
    assert gpt2.cache.misses == 2 and gpt2.cache.hits == 2
    longer = gpt2.trace([*ids, 13], off((0, 2)))  # extends the intervened prefix, not the clean one
    assert gpt2.cache.misses == 3
    whole = gpt2.engine.trace([*ids, 13], off((0, 2)))
    assert max_diff(longer["block1.resid.out"], whole["block1.resid.out"]) <= 1e-5


def test_a_patch_of_the_last_token_runs_the_whole_text(graph_cache, tokenizer):
    """No prefix can hold a patch of the new token: the clean prefix in the cache is not extended."""
    gpt2 = GPT2(synthetic_model("tiny"), threads=1, cache_dir=graph_cache)
    ids = tokenizer.encode(TEXT)
    source = gpt2.trace(tokenizer.encode(OTHER))
    gpt2.trace(ids[:-1])
    patch = Intervention(patch=(Patch.from_trace(source, "block0.resid.out", len(ids) - 1, 0),))
    got = gpt2.trace(ids, patch)
    np.testing.assert_array_equal(got["block0.resid.out"][-1], source["block0.resid.out"][0])
    whole = gpt2.engine.trace(ids, patch)
    for name in whole.names:
        np.testing.assert_array_equal(got[name], whole[name], err_msg=name)


def test_intervened_traces_are_single_flight(graph_cache, tokenizer):
    gpt2 = GPT2(synthetic_model("tiny"), threads=1, cache_dir=graph_cache)
    ids = tokenizer.encode(TEXT)
    runs = []
    gate = threading.Event()

    def slow_gate(done):
        @contextmanager
        def held():
            runs.append(1)
            gate.wait(5)
            yield True

        return held()

    gpt2.gate = SimpleNamespace(slot=slow_gate)  # a Gate (model/gpt2.py)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(gpt2.trace(ids, off((1, 3))))) for _ in range(6)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(runs) == 1 and len(results) == 6 and all(r is results[0] for r in results)


def test_intervened_and_clean_texts_waiting_together_share_one_run(graph_cache, tokenizer):
    """GPT2's run queue packs what waits together, whatever each text's intervention."""
    gpt2 = GPT2(synthetic_model("tiny"), threads=1, cache_dir=graph_cache)
    source = gpt2.engine.trace(tokenizer.encode(OTHER))
    asks = [
        (tokenizer.encode(TEXT), None),
        (tokenizer.encode(TEXT), off((0, 1), (1, 3))),
        (
            tokenizer.encode("what a beautiful day"),
            Intervention(patch=(Patch.from_trace(source, "block0.resid.out", 2),)),
        ),
    ]
    slot = threading.Lock()
    slot.acquire()  # the model is busy until every text waits

    @contextmanager
    def gate(done):
        with slot:
            yield not done()

    gpt2.gate = SimpleNamespace(slot=gate)  # a Gate (model/gpt2.py)
    results: dict[int, object] = {}
    threads = [
        threading.Thread(target=lambda k=k, a=a: results.update({k: gpt2.trace(*a)}))
        for k, a in enumerate(asks)
    ]
    for t in threads:
        t.start()
    while len(gpt2._waiting) < len(asks):
        time.sleep(0.01)
    slot.release()
    for t in threads:
        t.join()
    assert (gpt2.runs, gpt2.texts) == (1, 3)
    for k, (ids, intervention) in enumerate(asks):
        alone = gpt2.engine.trace(ids, intervention)
        for name in alone.names:
            assert max_diff(results[k][name], alone[name]) <= 1e-5, name


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda s: off((2, 0)), "no head 0 in block 2"),
        (lambda s: off((0, 4)), "heads 0..3"),
        (lambda s: Intervention(patch=(Patch.from_trace(s, "block0.resid.out", 11),)), "position 11"),
        (lambda s: Intervention(patch=(Patch("block0.ln1", 0, bytes(256)),)), "cannot be patched"),
        (lambda s: Intervention(patch=(Patch("block2.resid.out", 0, bytes(256)),)), "blocks are 0..1"),
        (lambda s: Intervention(patch=(Patch("embed.sum", 0, bytes(12)),)), "takes 64 numbers, not 3"),
        (lambda s: Intervention(patch=(Patch("block0.attn.heads", 0, bytes(64)),)), "which head"),
    ],
)
def test_bad_interventions_are_refused_with_a_reason(tiny, tokenizer, make, message):
    _, engine = tiny
    ids = tokenizer.encode("what a beautiful day")
    source = engine.trace(tokenizer.encode(TEXT))
    with pytest.raises(ValueError, match=message):
        engine.trace(ids, make(source))


# -- the sweep of every head ------------------------------------------------------------------------------
@pytest.mark.parametrize(("words", "per_run"), [(4, None), (4, 1), (40, None)])
def test_the_head_sweep_is_every_single_ablation(graph_cache, tokenizer, words, per_run):
    """Packed or one at a time, each head's change is what a run with only that head off gives; the runs
    follow the packing bounds (up to MAX_PACK texts, at most MAX_PACK_CELLS attention cells)."""
    gpt2 = GPT2(synthetic_model("tiny"), threads=1, cache_dir=graph_cache)
    ids = tokenizer.encode(" ".join(["the crew"] * 40))[:words]
    sweep = gpt2.head_sweep(ids, per_run=per_run)
    c = gpt2.config
    clean = gpt2.engine.trace(ids)
    z = clean.logits.astype(np.float64)
    assert sweep.token == int(np.argmax(z))
    assert sweep.prob == pytest.approx(float(np.exp(z[sweep.token] - z.max()) / np.exp(z - z.max()).sum()))
    for block in range(c.n_layer):
        for head in range(c.n_head):
            alone = gpt2.engine.trace(ids, off((block, head))).logits.astype(np.float64)
            p = np.exp(alone[sweep.token] - alone.max()) / np.exp(alone - alone.max()).sum()
            assert sweep.change[block, head] == pytest.approx(p - sweep.prob, abs=1e-6)
    per = per_run or min(MAX_PACK, math.isqrt(MAX_PACK_CELLS) // len(ids))
    assert sweep.runs == math.ceil(c.n_layer * c.n_head / per)
    assert sweep.runs == (8 if per_run == 1 else 1 if len(ids) == 4 else 3)
    assert np.abs(sweep.change).max() > 1e-3 * sweep.prob  # the heads do something


# -- the sweep of every patch -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source_text", "ablate"), [(OTHER, frozenset()), ("what a beautiful", frozenset({(1, 2)}))]
)
def test_the_patch_sweep_is_every_single_patch(graph_cache, tokenizer, source_text, ablate):
    """Each site and position of the grid is what one run with that one vector patched in gives (and the
    heads switched off in it too); positions go as far as both texts have tokens."""
    gpt2 = GPT2(synthetic_model("tiny"), threads=1, cache_dir=graph_cache)
    ids = tokenizer.encode(TEXT)
    source = gpt2.engine.trace(tokenizer.encode(source_text), off(*ablate) if ablate else None)
    token = int(source.logit_order()[0])
    sweep = gpt2.patch_sweep(ids, source, token, ablate=ablate)
    c = gpt2.config
    positions = min(len(ids), source.n_tokens)
    assert sweep.probs.shape == (c.n_layer + 1, positions) and sweep.token == token
    tensors = ["embed.sum", *(f"block{b}.resid.out" for b in range(c.n_layer))]
    for site, tensor in enumerate(tensors):
        for p in range(positions):
            one = Intervention(ablate=ablate, patch=(Patch.from_trace(source, tensor, p),))
            z = gpt2.engine.trace(ids, one).logits.astype(np.float64)
            want = np.exp(z[token] - z.max()) / np.exp(z - z.max()).sum()
            assert sweep.probs[site, p] == pytest.approx(want, abs=1e-6), (tensor, p)
    per = min(MAX_PACK, math.isqrt(MAX_PACK_CELLS) // len(ids))
    assert sweep.runs == math.ceil((c.n_layer + 1) * positions / per)
    if source.n_tokens == len(ids):  # the last position after the last block decides the prediction alone
        z = source.logits.astype(np.float64)
        assert sweep.probs[-1, -1] == pytest.approx(np.exp(z[token] - z.max()) / np.exp(z - z.max()).sum())


def test_sweeps_wait_behind_other_runs(graph_cache, tokenizer):
    """Every graph run of a sweep asks the gate for a background slot (app/limits.py lets waiting pages
    go first); a plain trace asks for an ordinary one."""
    gpt2 = GPT2(synthetic_model("tiny"), threads=1, cache_dir=graph_cache)
    asked: list[bool] = []

    @contextmanager
    def gate(done=None, *, background=False):
        asked.append(background)
        yield True

    gpt2.gate = SimpleNamespace(slot=gate)  # a Gate (model/gpt2.py)
    ids = tokenizer.encode("what a beautiful day")
    sweep = gpt2.head_sweep(ids)
    assert asked == [False] + [True] * sweep.runs  # the clean trace, then the sweep's runs
