"""Run the ONNX graph with onnxruntime and turn its outputs into a Trace."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from model.config import GPT2Config
from model.graph import BUILDER_VERSION, build_graph, output_names
from model.sources import LoadedModel
from model.trace import Trace
from model.weights import Weights, fingerprint

log = logging.getLogger(__name__)

# Tensors laid out [T, ...] (tokens first) and [H, T, ...] (heads first): how an appended trace is joined.
_ROWS_FIRST = ("embed.", ".ln1", ".ln2", ".attn.out", ".resid.", ".mlp.", "final.ln")
_HEADS_FIRST = (".q", ".attn.heads")


def default_cache_dir() -> Path:
    """Where built graphs live: $GLASSBOX_CACHE, else $XDG_CACHE_HOME/glassbox, else ~/.cache/glassbox."""
    if env := os.environ.get("GLASSBOX_CACHE"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "glassbox"


def graph_path(key: str, cache_dir: Path | None = None) -> Path:
    """The cached graph for the weights whose fingerprint is `key`, under this builder version."""
    return (cache_dir or default_cache_dir()) / "graphs" / f"gpt2-{key}-v{BUILDER_VERSION}" / "model.onnx"


def ensure_graph(weights: Weights | Callable[[], Weights], config: GPT2Config, cache_dir: Path | None = None,
                 key: str | None = None) -> tuple[Path, bool]:  # fmt: skip
    """Build and cache the graph unless it is cached already. Returns its path and whether it was built.

    `weights` may be a function that loads them, so a cached graph never needs them read at all.
    """
    if key is None:
        assert not callable(weights), "pass the key of weights that are loaded lazily"
        key = fingerprint(weights, config)
    path = graph_path(key, cache_dir)
    if path.is_file() and (path.parent / "weights.bin").is_file():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    model = build_graph(weights() if callable(weights) else weights, config)
    tmp = path.parent / f"model.{os.getpid()}.tmp"
    # weights go beside the graph as external data, so models past protobuf's 2 GB limit also work
    onnx.save_model(model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=1024)  # fmt: skip
    tmp.replace(path)
    return path, True


def ensure_model_graph(loaded: LoadedModel, cache_dir: Path | None = None) -> tuple[Path, bool]:
    """ensure_graph for a loaded model, reading its weights only if the graph must be built."""
    return ensure_graph(lambda: loaded.weights, loaded.config, cache_dir, key=loaded.fingerprint)


class Engine:
    """One onnxruntime session for one model. `trace` and `extend` are safe to call from many threads."""

    def __init__(self, weights: Weights | Callable[[], Weights], config: GPT2Config, *, threads: int = 0,
                 cache_dir: Path | None = None, key: str | None = None) -> None:  # fmt: skip
        self.config = config
        self.graph_file, self.built = ensure_graph(weights, config, cache_dir, key)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime picks one per physical core
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.threads = threads
        self.session = ort.InferenceSession(str(self.graph_file), options, providers=["CPUExecutionProvider"])
        self.names = output_names(config)
        c = config
        self._empty = np.zeros((c.n_head, 0, c.head_dim), np.float32)

    @classmethod
    def for_model(cls, loaded: LoadedModel, *, threads: int = 0, cache_dir: Path | None = None) -> Engine:
        """An engine for a loaded model; its weights are read only if the graph is not cached yet."""
        return cls(lambda: loaded.weights, loaded.config, threads=threads, cache_dir=cache_dir,
                   key=loaded.fingerprint)  # fmt: skip

    def _check_ids(self, ids: Sequence[int], start: int) -> np.ndarray:
        if len(ids) == 0:
            raise ValueError("there are no tokens to run")
        if start + len(ids) > self.config.n_positions:
            raise ValueError(f"{start + len(ids)} tokens is more than this model's {self.config.n_positions}")
        array = np.asarray(ids, dtype=np.int64)
        if array.min() < 0 or array.max() >= self.config.vocab_size:
            raise ValueError(f"token ids must be in 0..{self.config.vocab_size - 1}")
        return array

    def _run(self, ids: np.ndarray, start: int, past: Trace | None) -> dict[str, np.ndarray]:
        feeds: dict[str, np.ndarray] = {
            "input_ids": ids,
            "position_ids": np.arange(start, start + len(ids), dtype=np.int64),
        }
        for i in range(self.config.n_layer):
            feeds[f"past.{i}.k"] = past[f"block{i}.k"] if past is not None else self._empty
            feeds[f"past.{i}.v"] = past[f"block{i}.v"] if past is not None else self._empty
        return dict(zip(self.names, self.session.run(self.names, feeds), strict=True))

    def trace(self, ids: Sequence[int]) -> Trace:
        """Run GPT-2 on `ids` and keep every activation."""
        array = self._check_ids(ids, 0)
        return Trace(ids=tuple(int(i) for i in array), config=self.config, tensors=self._run(array, 0, None))

    def extend(self, prefix: Trace, new_ids: Sequence[int]) -> Trace:
        """The trace of prefix.ids + new_ids, computing only the new positions.

        Under the causal mask earlier positions cannot change, so their keys and values are reused; the
        earlier rows of each attention matrix only gain columns for the new keys, which they may not see.
        """
        p = prefix.n_tokens
        array = self._check_ids(new_ids, p)
        new = self._run(array, p, prefix)
        d = self.config.head_dim
        tensors: dict[str, np.ndarray] = {}
        for name, tail in new.items():
            if name in ("logits", "lens.logits"):
                tensors[name] = tail
            elif name.endswith((".k", ".v")):
                tensors[name] = tail  # already past + new
            elif name.endswith(".attn.scores") or name.endswith(".attn.scaled"):
                block = name.split(".")[0]
                old_q, k_new = prefix[f"{block}.q"], new[f"{block}.k"][:, p:, :]
                cols = np.matmul(old_q, k_new.transpose(0, 2, 1))  # [H, P, N]: earlier queries, new keys
                if name.endswith("scaled"):
                    cols = cols / np.float32(np.sqrt(d))
                tensors[name] = np.concatenate([np.concatenate([prefix[name], cols], axis=2), tail], axis=1)
            elif name.endswith(".attn.masked") or name.endswith(".attn.probs"):
                fill = -np.inf if name.endswith("masked") else 0.0
                old = prefix[name]
                pad = np.full((old.shape[0], p, len(array)), fill, np.float32)
                tensors[name] = np.concatenate([np.concatenate([old, pad], axis=2), tail], axis=1)
            elif name.endswith(_HEADS_FIRST):
                tensors[name] = np.concatenate([prefix[name], tail], axis=1)
            else:
                assert any(part in name for part in _ROWS_FIRST), name
                tensors[name] = np.concatenate([prefix[name], tail], axis=0)
        return Trace(ids=prefix.ids + tuple(int(i) for i in array), config=self.config, tensors=tensors)
