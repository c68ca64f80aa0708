"""GPT-2's weights read from disk when a page asks for a slice of them: memory-mapped, never kept.

The cached ONNX graph (model/graphcache.py) stores every weight of more than 1 KB in `weights.bin` as
external data; `model.onnx` loaded without that data says where each one starts. A read maps only the rows
it needs (np.memmap), copies the slice asked for and lets the mapping go, so a worker's memory grows by the
slices it keeps, not by the weights' size (onnxruntime already holds them once). Small tensors (a tiny
model's LayerNorm gains) are stored inside model.onnx itself and are read from there.

Names follow the activations' scheme (docs/architecture.md's tensor table): `block{i}.attn.w_q` is the query
third of GPT-2's `h.{i}.attn.c_attn.weight`, and so on. Conv1D weights are [in, out], so a token's row
times the matrix is the layer's output: ln1 [C] @ w_q [C, C] + b_q [C] = q [C] (all heads side by side).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from model.config import GPT2Config

MAX_READ = 1 << 22  # numbers one read may return (16 MB of float32): a page asks for far fewer


@dataclass(frozen=True)
class WeightSpec:
    """A weight under the activations' naming: where it sits in GPT-2's parameters, and its shape."""

    name: str  # e.g. block3.attn.w_q
    source: str  # GPT-2's parameter, e.g. h.3.attn.c_attn.weight
    start: int  # its first column (first element of a vector) in `source`
    shape: tuple[int, ...]
    what: str  # one line for the docs and the API


def weight_specs(config: GPT2Config) -> dict[str, WeightSpec]:
    """Every weight of the model by its name, in the order of the forward pass."""
    c, v, p = config.n_embd, config.vocab_size, config.n_positions
    specs = [
        WeightSpec(
            "embed.wte", "wte.weight", 0, (v, c), "token embedding; its transpose is the output layer"
        ),
        WeightSpec("embed.wpe", "wpe.weight", 0, (p, c), "position embedding"),
    ]
    for i in range(config.n_layer):
        b, h = f"block{i}", f"h.{i}"
        specs += [
            WeightSpec(f"{b}.ln1.gamma", f"{h}.ln_1.weight", 0, (c,), "LayerNorm gain before attention"),
            WeightSpec(f"{b}.ln1.beta", f"{h}.ln_1.bias", 0, (c,), "LayerNorm bias before attention"),
        ]
        for k, x in enumerate("qkv"):
            specs += [
                WeightSpec(
                    f"{b}.attn.w_{x}",
                    f"{h}.attn.c_attn.weight",
                    k * c,
                    (c, c),
                    f"makes {x} from ln1, every head's columns side by side",
                ),
                WeightSpec(f"{b}.attn.b_{x}", f"{h}.attn.c_attn.bias", k * c, (c,), f"bias of {x}"),
            ]
        specs += [
            WeightSpec(
                f"{b}.attn.w_o", f"{h}.attn.c_proj.weight", 0, (c, c), "output projection of the heads"
            ),
            WeightSpec(f"{b}.attn.b_o", f"{h}.attn.c_proj.bias", 0, (c,), "its bias"),
            WeightSpec(f"{b}.ln2.gamma", f"{h}.ln_2.weight", 0, (c,), "LayerNorm gain before the MLP"),
            WeightSpec(f"{b}.ln2.beta", f"{h}.ln_2.bias", 0, (c,), "LayerNorm bias before the MLP"),
            WeightSpec(f"{b}.mlp.w_in", f"{h}.mlp.c_fc.weight", 0, (c, 4 * c), "the MLP's expansion"),
            WeightSpec(f"{b}.mlp.b_in", f"{h}.mlp.c_fc.bias", 0, (4 * c,), "its bias"),
            WeightSpec(
                f"{b}.mlp.w_out", f"{h}.mlp.c_proj.weight", 0, (4 * c, c), "the MLP's projection back"
            ),
            WeightSpec(f"{b}.mlp.b_out", f"{h}.mlp.c_proj.bias", 0, (c,), "its bias"),
        ]
    specs += [
        WeightSpec("final.ln.gamma", "ln_f.weight", 0, (c,), "final LayerNorm gain"),
        WeightSpec("final.ln.beta", "ln_f.bias", 0, (c,), "final LayerNorm bias"),
    ]
    return {s.name: s for s in specs}


@dataclass(frozen=True)
class _Stored:
    """Where one of GPT-2's parameters lies: a file and a byte offset, or (small ones) its numbers."""

    shape: tuple[int, ...]
    file: Path | None
    offset: int
    inline: np.ndarray | None


Index = slice | np.ndarray | list[int] | int


class MappedWeights:
    """GPT-2's weights on disk, read a slice at a time. Safe to use from many threads (each read maps its
    own rows and lets them go)."""

    def __init__(self, stored: dict[str, _Stored], config: GPT2Config) -> None:
        self._stored = stored
        self.config = config
        self.specs = weight_specs(config)

    @classmethod
    def from_graph(cls, graph_file: Path, config: GPT2Config) -> MappedWeights:
        """The weights of a cached graph: model.onnx's initializers, their data left on disk."""
        model = onnx.load(str(graph_file), load_external_data=False)
        stored: dict[str, _Stored] = {}
        for t in model.graph.initializer:
            if t.data_type != TensorProto.FLOAT:
                continue  # the graph's own constants (shapes, indices)
            shape = tuple(int(d) for d in t.dims)
            if t.data_location == TensorProto.EXTERNAL:
                info = {e.key: e.value for e in t.external_data}
                path = graph_file.parent / info["location"]
                stored[t.name] = _Stored(shape, path, int(info.get("offset", 0)), None)
            else:
                stored[t.name] = _Stored(shape, None, 0, numpy_helper.to_array(t).astype(np.float32))
        missing = [s.source for s in weight_specs(config).values() if s.source not in stored]
        if missing:
            raise ValueError(f"{graph_file} lacks the weights {', '.join(missing[:3])}")
        return cls(stored, config)

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of a weight (KeyError naming the known ones for a name that is not one)."""
        return self.spec(name).shape

    def spec(self, name: str) -> WeightSpec:
        if name not in self.specs:
            raise KeyError(f"no weight called {name!r}; they look like 'block0.attn.w_q' or 'embed.wpe'")
        return self.specs[name]

    def read(self, name: str, rows: Index = slice(None), cols: Index = slice(None)) -> np.ndarray:
        """The float32 numbers of weight `name` at `rows` (and, for a matrix, `cols`): a copy, the file's
        mapping gone when it returns. A vector takes only `rows`."""
        spec = self.spec(name)
        stored = self._stored[spec.source]
        if len(spec.shape) == 1:
            picked = _positions(rows, spec.shape[0]) + spec.start  # [n] in the source vector
            return self._rows(stored, picked, None).reshape(-1)
        r = _positions(rows, spec.shape[0])
        c = _positions(cols, spec.shape[1]) + spec.start
        if r.size * c.size > MAX_READ:
            raise ValueError(f"{r.size} x {c.size} numbers is more than one read gives ({MAX_READ})")
        return self._rows(stored, r, c)

    def _rows(self, stored: _Stored, rows: np.ndarray, cols: np.ndarray | None) -> np.ndarray:
        """stored[rows][:, cols] as a float32 copy, mapping only the rows from the first to the last asked."""
        if stored.inline is not None:
            whole = stored.inline
            return np.array(whole[rows] if cols is None else whole[np.ix_(rows, cols)], np.float32)
        if rows.size == 0:
            return np.zeros((0,) if cols is None else (0, cols.size), np.float32)
        assert stored.file is not None
        width = stored.shape[1] if len(stored.shape) == 2 else 1
        lo, hi = int(rows.min()), int(rows.max()) + 1
        mapped = np.memmap(
            stored.file, dtype="<f4", mode="r", offset=stored.offset + 4 * lo * width, shape=(hi - lo, width)
        )
        part = (
            mapped[rows - lo] if cols is None else mapped[np.ix_(rows - lo, cols)]
        )  # fancy indexing: a copy
        del mapped  # the last reference to the mapping: it is unmapped, its pages leave this process
        return np.array(part, dtype=np.float32)


def _positions(index: Index, n: int) -> np.ndarray:
    """An index (slice, list, array or int) as the positions it picks among n; IndexError past the end."""
    if isinstance(index, slice):
        return np.arange(n, dtype=np.int64)[index]
    picked = np.atleast_1d(np.asarray(index, dtype=np.int64))
    if picked.size and (picked.min() < 0 or picked.max() >= n):
        raise IndexError(f"positions must be in 0..{n - 1}")
    return picked


_lock = threading.Lock()


@lru_cache(maxsize=4)
def _open(graph_file: Path, config: GPT2Config) -> MappedWeights:
    return MappedWeights.from_graph(graph_file, config)


def mapped_weights(graph_file: Path, config: GPT2Config) -> MappedWeights:
    """The weights of the graph at `graph_file`, its index read once per graph (a rebuilt graph is a new
    file: model/graphcache.py)."""
    with _lock:
        return _open(graph_file, config)
