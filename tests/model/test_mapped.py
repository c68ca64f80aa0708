"""Weights read from the cached graph on disk (model/mapped.py): the same numbers as GPT-2's parameters under
the activations' names, a slice at a time, with nothing left mapped after a read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model import mapped
from model.mapped import MappedWeights, weight_specs


def mappings_of(path: Path) -> int:
    """How many of this process's memory mappings are of the file `path`."""
    return sum(str(path) in line for line in Path("/proc/self/maps").read_text().splitlines())


def test_every_weight_is_its_slice_of_gpt2s_parameters(tiny) -> None:
    loaded, engine = tiny
    stored = MappedWeights.from_graph(engine.graph_file, loaded.config)
    w = loaded.weights
    c = loaded.config.n_embd
    assert set(stored.specs) == set(weight_specs(loaded.config))
    for name, spec in stored.specs.items():
        whole = w[spec.source]
        want = whole[spec.start : spec.start + spec.shape[0]] if whole.ndim == 1 else whole[:, spec.start :]
        want = want[:, : spec.shape[1]] if whole.ndim == 2 else want
        assert np.array_equal(stored.read(name), want), name
    # the third column block of c_attn is the values'; the heads' columns are side by side in it
    assert np.array_equal(
        stored.read("block1.attn.w_v", cols=[0, 5]), w["h.1.attn.c_attn.weight"][:, [2 * c, 2 * c + 5]]
    )
    assert np.array_equal(stored.read("block0.attn.b_k", [3]), w["h.0.attn.c_attn.bias"][[c + 3]])
    assert stored.read("embed.wte", 50256).shape == (1, c)  # one row by its index
    assert np.array_equal(stored.read("embed.wte", [7, 2], slice(0, 4)), w["wte.weight"][[7, 2], :4])


def test_reading_maps_only_for_the_read(tiny) -> None:
    loaded, engine = tiny
    stored = MappedWeights.from_graph(engine.graph_file, loaded.config)
    data = engine.graph_file.parent / "weights.bin"
    before = mappings_of(data)
    rows = stored.read("embed.wte", [0, 50000])  # rows far apart: a mapping that spans them, then none
    assert rows.shape == (2, loaded.config.n_embd) and rows.base is None  # a copy, not a view of the file
    assert mappings_of(data) == before


def test_bad_reads_say_what_is_wrong(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded, engine = tiny
    stored = MappedWeights.from_graph(engine.graph_file, loaded.config)
    with pytest.raises(KeyError, match="no weight called"):
        stored.read("block0.attn.w_x")
    with pytest.raises(IndexError, match=r"0\.\.63"):
        stored.read("block0.ln1.gamma", [64])
    monkeypatch.setattr(mapped, "MAX_READ", 1000)
    with pytest.raises(ValueError, match="more than one read gives"):
        stored.read("embed.wte", slice(0, 20))  # 20 rows of 64


def test_a_graph_without_a_weight_is_refused(tiny, tmp_path: Path) -> None:
    import onnx

    loaded, engine = tiny
    model = onnx.load(str(engine.graph_file), load_external_data=False)
    kept = [t for t in model.graph.initializer if t.name != "h.1.mlp.c_fc.weight"]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    onnx.save(model, str(tmp_path / "model.onnx"))
    with pytest.raises(ValueError, match=r"lacks the weights h\.1\.mlp\.c_fc\.weight"):
        MappedWeights.from_graph(tmp_path / "model.onnx", loaded.config)
