"""Run the ONNX graph with onnxruntime and turn its outputs into a Trace."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from model import graphcache
from model.config import GPT2Config
from model.graph import build_graph, output_names
from model.graphcache import GRAPH_FILE, graph_dir
from model.intervention import Intervention, graph_inputs
from model.sources import BrokenModel, LoadedModel
from model.trace import LazyTensors, Trace
from model.weights import Weights, fingerprint

log = logging.getLogger(__name__)

# Tensors laid out [T, ...] (tokens first) and [H, T, ...] (heads first): how an appended trace is joined.
_ROWS_FIRST = ("embed.", ".ln1", ".ln2", ".attn.out", ".resid.", ".mlp.", "final.ln")
_HEADS_FIRST = (".q", ".attn.heads")


def graph_path(key: str, cache_dir: Path | None = None) -> Path:
    """The cached graph for the weights whose fingerprint is `key`, under this builder version."""
    return graph_dir(key, cache_dir) / GRAPH_FILE


def check_finite(weights: Weights, source: str) -> None:
    """Raise BrokenModel naming the first parameter that holds NaN or an infinity (GPT-2's never do)."""
    for name, array in weights.items():
        if not np.isfinite(array).all():
            raise BrokenModel(
                f"{source} is corrupt: its parameter {name} holds NaN or infinite numbers. "
                "Download the model again, or give another --model."
            )


def _maker(
    weights: Weights | Callable[[], Weights], config: GPT2Config, source: str
) -> Callable[[], onnx.ModelProto]:
    def make() -> onnx.ModelProto:
        loaded = weights() if callable(weights) else weights
        check_finite(loaded, source)
        return build_graph(loaded, config)

    return make


def ensure_graph(
    weights: Weights | Callable[[], Weights],
    config: GPT2Config,
    cache_dir: Path | None = None,
    key: str | None = None,
    source: str = "the model",
) -> tuple[Path, bool]:
    """Build and cache the graph unless a checked one is cached already. Returns its path and whether it was
    built (model/graphcache.py: atomic, locked, checked against its manifest).

    `weights` may be a function that loads them, so a cached graph never needs them read at all.
    """
    if key is None:
        assert not callable(weights), "pass the key of weights that are loaded lazily"
        key = fingerprint(weights, config)
    graph = graphcache.ensure_graph(_maker(weights, config, source), key, cache_dir)
    return graph.path, graph.built


def ensure_model_graph(loaded: LoadedModel, cache_dir: Path | None = None) -> tuple[Path, bool]:
    """ensure_graph for a loaded model, reading its weights only if the graph must be built."""
    return ensure_graph(
        lambda: loaded.weights, loaded.config, cache_dir, key=loaded.fingerprint, source=loaded.weights_source
    )


class Engine:
    """One onnxruntime session for one model. `trace` and `extend` are safe to call from many threads.

    Every run's logits and logit lens are checked: GPT-2 cannot produce NaN or an infinity there, so one
    means corrupt numbers. A graph found in the cache is then built again from the weights, once; if that
    does not help, or the graph was just built, BrokenModel names the model as corrupt.
    """

    def __init__(
        self,
        weights: Weights | Callable[[], Weights],
        config: GPT2Config,
        *,
        threads: int = 0,
        cache_dir: Path | None = None,
        key: str | None = None,
        source: str = "the model",
    ) -> None:
        self.config = config
        self.source = source
        self.threads = threads
        if key is None:
            assert not callable(weights), "pass the key of weights that are loaded lazily"
            key = fingerprint(weights, config)
        self._make = _maker(weights, config, source)
        self._key, self._cache_dir = key, cache_dir
        graph = graphcache.ensure_graph(self._make, key, cache_dir)
        self.graph_file, self.built, self._build_id = graph.path, graph.built, graph.build_id
        self._healed = False
        self._heal_lock = threading.Lock()
        try:
            self.session = self._open(self.graph_file)
        except Exception as err:  # e.g. INVALID_PROTOBUF: files changed after their check
            if self.built:
                raise
            log.warning(
                "the cached graph %s could not be opened (%s); building it again",
                self.graph_file.parent,
                str(err).splitlines()[0][:200],
            )
            self._rebuild()
        self.names = output_names(config)
        c = config
        self._empty = np.zeros((c.n_head, 0, c.head_dim), np.float32)

    def _open(self, path: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads  # 0: onnxruntime picks one per physical core
        options.inter_op_num_threads = 1
        # idle threads sleep instead of spinning: a server draws pages on the same cores between runs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _rebuild(self) -> None:
        """Build the graph again from the weights (replacing the build this engine runs) and open it."""
        graph = graphcache.ensure_graph(self._make, self._key, self._cache_dir, replace=self._build_id)
        self.session = self._open(graph.path)
        self.graph_file, self.built, self._build_id = graph.path, True, graph.build_id
        self._healed = True

    @classmethod
    def for_model(cls, loaded: LoadedModel, *, threads: int = 0, cache_dir: Path | None = None) -> Engine:
        """An engine for a loaded model; its weights are read only if the graph is not cached yet."""
        return cls(
            lambda: loaded.weights,
            loaded.config,
            threads=threads,
            cache_dir=cache_dir,
            key=loaded.fingerprint,
            source=loaded.weights_source,
        )

    def _outputs(self, feeds: dict[str, np.ndarray], names: list[str] | None = None) -> dict[str, np.ndarray]:
        """One session run fetching `names` (all by default), its scores checked (see the class docstring)."""
        names = names or self.names
        session = self.session
        out = dict(zip(names, session.run(names, feeds), strict=True))
        if _finite(out):
            return out
        with self._heal_lock:
            if self.session is session:  # no other thread has rebuilt it meanwhile
                if self._healed or self.built:
                    raise BrokenModel(self._corrupt())
                log.warning(
                    "%s gave NaN or infinite logits; building its graph again from the weights", self.source
                )
                self._rebuild()
        out = dict(zip(names, self.session.run(names, feeds), strict=True))
        if not _finite(out):
            raise BrokenModel(self._corrupt())
        return out

    def _corrupt(self) -> str:
        return (
            f"{self.source} gives NaN or infinite logits, which GPT-2 cannot produce, even from a graph "
            f"just built ({self.graph_file.parent}): the model is corrupt. Download it again, or give "
            "another --model."
        )

    def check_ids(self, ids: Sequence[int], start: int) -> np.ndarray:
        if len(ids) == 0:
            raise ValueError("there are no tokens to run")
        if start + len(ids) > self.config.n_positions:
            raise ValueError(f"{start + len(ids)} tokens is more than this model's {self.config.n_positions}")
        array = np.asarray(ids, dtype=np.int64)
        if array.min() < 0 or array.max() >= self.config.vocab_size:
            raise ValueError(f"token ids must be in 0..{self.config.vocab_size - 1}")
        return array

    def _feeds(
        self, texts: Sequence[tuple[Trace | None, np.ndarray]], interventions: Sequence[Intervention | None]
    ) -> dict[str, np.ndarray]:
        """The inputs of one graph run for one or more texts, each (prefix or None, its new ids): their new
        tokens side by side, their earlier keys and values side by side, each token allowed to see only its
        own text's earlier tokens, each text's rows with its own intervention."""
        cfg = self.config
        pasts, news, past_at, new_at = _layout(texts)
        n, p = sum(news), sum(pasts)
        mask = np.zeros((n, p + n), dtype=bool)
        for b, nb in enumerate(news):
            rows = slice(new_at[b], new_at[b + 1])
            mask[rows, past_at[b] : past_at[b + 1]] = True
            mask[rows, p + new_at[b] : p + new_at[b + 1]] = np.tri(nb, dtype=bool)  # causal among the new
        feeds: dict[str, np.ndarray] = {
            "input_ids": np.concatenate([ids for _, ids in texts]),
            "position_ids": np.concatenate(
                [np.arange(pb, pb + nb) for pb, nb in zip(pasts, news, strict=True)]
            ),
            "attn_mask": mask,
            "logit_rows": new_at[1:] - 1,  # each text's last token
        }
        for i in range(cfg.n_layer):
            for kv in ("k", "v"):
                parts = [prefix[f"block{i}.{kv}"] for prefix, _ in texts if prefix is not None]
                if len(parts) == 1:  # one text's keys as they are (no copy); several side by side
                    feeds[f"past.{i}.{kv}"] = parts[0]
                else:
                    feeds[f"past.{i}.{kv}"] = np.concatenate(parts, axis=1) if parts else self._empty
        spans = list(zip(new_at[:-1], pasts, news, strict=True))
        return feeds | graph_inputs(cfg, spans, interventions)

    def _run(
        self, texts: Sequence[tuple[Trace | None, np.ndarray]], interventions: Sequence[Intervention | None]
    ) -> list[dict[str, np.ndarray]]:
        """One graph run for one or more texts (see `_feeds`). Returns each text's outputs as a run of that
        text alone would give them (keys and values past + new, attention [H, N, P+N], logits [1, V],
        lens.logits [L, V])."""
        cfg = self.config
        out = self._outputs(self._feeds(texts, interventions))
        if len(texts) == 1:
            return [out]
        r = len(texts)
        pasts, _, past_at, new_at = _layout(texts)
        p = sum(pasts)
        lens = out["lens.logits"].reshape(cfg.n_layer, r, -1)  # block by block, one row per text
        split: list[dict[str, np.ndarray]] = []
        for b in range(r):
            rows = slice(new_at[b], new_at[b + 1])
            keys = np.r_[past_at[b] : past_at[b + 1], p + new_at[b] : p + new_at[b + 1]]
            own: dict[str, np.ndarray] = {"lens.logits": lens[:, b], "logits": lens[-1, b : b + 1]}
            for name, value in out.items():
                if name in own:
                    continue
                if name.endswith((".k", ".v")):  # [H, P+N, D]: this text's earlier keys, then its new ones
                    own[name] = value[:, keys]
                elif ".attn." in name and not name.endswith((".heads", ".out")):  # [H, N, P+N]
                    own[name] = value[:, rows][:, :, keys]
                elif name.endswith(_HEADS_FIRST):  # [H, N, D]
                    own[name] = value[:, rows]
                else:  # [N, ...]
                    own[name] = value[rows]
            split.append(own)
        return split

    def trace(self, ids: Sequence[int], intervention: Intervention | None = None) -> Trace:
        """Run GPT-2 on `ids` and keep every activation, with an intervention if one is given."""
        return self.run_many([(None, ids)], [intervention])[0]

    def extend(self, prefix: Trace, new_ids: Sequence[int]) -> Trace:
        """The trace of prefix.ids + new_ids, computing only the new positions, under the prefix's own
        intervention (see `run_many`)."""
        return self.run_many([(prefix, new_ids)])[0]

    def run_many(
        self,
        texts: Sequence[tuple[Trace | None, Sequence[int]]],
        interventions: Sequence[Intervention | None] | None = None,
    ) -> list[Trace]:
        """The traces of several texts, each a prefix (a trace, or None for a fresh text) plus new ids, from
        one graph run: reading GPT-2's weights from memory is most of a short run's time, and it is done
        once for all of them. `interventions[b]` applies to text b (a text with a prefix keeps the prefix's
        intervention; giving another one is an error).

        Under the causal mask earlier positions cannot change, so a prefix's keys and values are reused; the
        earlier rows of each attention matrix only gain columns for the new keys, which they may not see.
        The prefix's rows are joined to the new ones only when a tensor is first read.
        """
        checked, chosen = self._checked(texts, interventions)
        outs = self._run(checked, chosen)
        traces = []
        for (prefix, array), new, i in zip(checked, outs, chosen, strict=True):
            ids = tuple(int(t) for t in array)
            if prefix is None:
                traces.append(Trace(ids=ids, config=self.config, tensors=new, intervention=i))
            else:
                traces.append(self._joined(prefix, ids, new))
        return traces

    def next_token_logits(
        self,
        texts: Sequence[tuple[Trace | None, Sequence[int]]],
        interventions: Sequence[Intervention | None] | None = None,
    ) -> np.ndarray:
        """Each text's next-token scores [R, V] from one graph run (as `run_many`), fetching nothing else."""
        checked, chosen = self._checked(texts, interventions)
        return self._outputs(self._feeds(checked, chosen), ["logits"])["logits"]

    def _checked(
        self,
        texts: Sequence[tuple[Trace | None, Sequence[int]]],
        interventions: Sequence[Intervention | None] | None,
    ) -> tuple[list[tuple[Trace | None, np.ndarray]], list[Intervention | None]]:
        """The texts with their ids checked, and each one's intervention (empty ones as None)."""
        chosen: list[Intervention | None] = []
        checked = []
        for b, (prefix, ids) in enumerate(texts):
            past = 0 if prefix is None else prefix.n_tokens
            array = self.check_ids(ids, past)
            given = interventions[b] if interventions is not None else None
            if prefix is not None:
                if given and given != prefix.intervention:
                    raise ValueError("a text extends its prefix under the prefix's own intervention")
                given = prefix.intervention
            if given:
                given.check(self.config, past + array.size)
            chosen.append(given or None)
            checked.append((prefix, array))
        return checked, chosen

    def _joined(self, prefix: Trace, ids: tuple[int, ...], new: dict[str, np.ndarray]) -> Trace:
        """The trace of prefix.ids + ids from the new positions' outputs, joined lazily to the prefix's."""
        p = prefix.n_tokens
        ready: dict[str, np.ndarray] = {}
        pending: dict[str, tuple[Callable[[], np.ndarray], int]] = {}
        for name, tail in new.items():
            if name in ("logits", "lens.logits") or name.endswith((".k", ".v")):
                ready[name] = tail  # the last position's scores; keys and values already hold past + new
                continue
            if ".attn." in name and not name.endswith((".heads", ".out")):
                make = self._attention_joiner(name, tail, prefix, new)
                size = tail.nbytes // tail.shape[1] * tail.shape[2]  # [H, T, T]
            else:
                axis = 1 if name.endswith(_HEADS_FIRST) else 0
                assert axis == 1 or any(part in name for part in _ROWS_FIRST), name
                make = partial(_join, prefix, name, tail, axis)
                size = tail.nbytes // tail.shape[axis] * (p + len(ids))
            pending[name] = (make, size)
        tensors = LazyTensors(ready, pending)
        return Trace(prefix.ids + ids, self.config, tensors, intervention=prefix.intervention)

    def _attention_joiner(
        self, name: str, tail: np.ndarray, prefix: Trace, new: dict[str, np.ndarray]
    ) -> Callable[[], np.ndarray]:
        """A function that builds the [H, P+N, P+N] matrix `name` from the prefix's rows and the new rows."""
        h, n, total = tail.shape
        p = total - n
        block = name.split(".")[0]
        k_new = new[f"{block}.k"][:, p:, :]
        sqrt_d = np.float32(np.sqrt(self.config.head_dim))

        def join() -> np.ndarray:
            out = np.empty((h, total, total), np.float32)
            out[:, :p, :p] = prefix[name]
            if name.endswith((".scores", ".scaled")):  # earlier queries against the new keys
                np.matmul(prefix[f"{block}.q"], k_new.transpose(0, 2, 1), out=out[:, :p, p:])
                if name.endswith(".scaled"):
                    out[:, :p, p:] /= sqrt_d
            else:  # masked: the new keys are in the earlier tokens' future; probs: they get nothing
                out[:, :p, p:] = -np.inf if name.endswith(".masked") else 0.0
            out[:, p:, :] = tail
            return out

        return join


def _finite(out: dict[str, np.ndarray]) -> bool:
    """Whether the scores GPT-2 ends with hold only finite numbers (NaN anywhere upstream reaches them)."""
    return all(np.isfinite(out[name]).all() for name in ("logits", "lens.logits") if name in out)


def _layout(
    texts: Sequence[tuple[Trace | None, np.ndarray]],
) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """Earlier and new tokens of each text, and where each text's earlier keys start among the P and its new
    tokens among the N."""
    pasts = [0 if prefix is None else prefix.n_tokens for prefix, _ in texts]
    news = [len(ids) for _, ids in texts]
    return pasts, news, np.cumsum([0, *pasts]), np.cumsum([0, *news])


def _join(prefix: Trace, name: str, tail: np.ndarray, axis: int) -> np.ndarray:
    """The prefix's rows of `name` followed by the new ones."""
    return np.concatenate([prefix[name], tail], axis=axis)
