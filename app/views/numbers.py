"""The numbers behind each panel's figure, as tables named after docs/architecture.md's tensors (CSV, JSON).

A table is one 2-D slice of a Trace tensor (e.g. `block1.attn.probs`, head 3: [T, T]) with labelled rows;
derived quantities say so in their name, e.g. `norm(block0.mlp.out)` is the length of each token's vector.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from app.i18n import _
from app.state import State
from app.views.residual import stages
from app.views.tokens import selected_index
from app.views.weights import weight_tables
from model import GPT2Config, Sampling, Token, Trace

PANELS = (
    "overview",
    "tokens",
    "embedding",
    "attention",
    "mlp",
    "residual",
    "output",
    "lens",
    "kv",
    "weights",
    "heads",
)
TOP_ROWS = 10  # next-token candidates listed, as in the output panel
Cell = str | int | float


@dataclass(frozen=True)
class DataTable:
    name: str  # a tensor name from docs/architecture.md, or a quantity of one: norm(block0.mlp.out)
    description: str  # which slice of the tensor, and what rows and columns are
    shape: list[int]  # the whole tensor's shape in the Trace
    index: list[str]  # the names of the row-label columns, e.g. position, token, id
    rows: list[list[Cell]]  # one list of labels per row
    columns: list[str]
    values: np.ndarray  # [len(rows), len(columns)]


def table_names(panel: str, state: State, cfg: GPT2Config) -> list[str]:
    """The names of a panel's tables, in order, without computing them (for the download links)."""
    b = f"block{state.layer - 1}"
    if panel == "overview":
        return [f"{b}.attn.probs", f"norm({b}.mlp.out)", "logits"]
    if panel == "tokens":
        return ["ids"]
    if panel == "embedding":
        return ["embed.token", "embed.position", "embed.sum"]
    if panel == "attention":
        if state.step == "qkv":
            return [f"{b}.q", f"{b}.k", f"{b}.v"]
        if state.step == "concat":
            return [f"norm({b}.attn.heads)"]
        if state.step == "out":
            return [f"{b}.attn.out"]
        return [f"{b}.attn.{state.step}"]
    if panel == "mlp":
        return [f"{b}.mlp.act", f"{b}.mlp.pre", f"{b}.mlp.out"]
    if panel == "residual":
        return ["norm(residual)", f"{b}.ln1", f"{b}.ln2", "final.ln"]
    if panel == "output":
        return ["logits", "clean.logits"] if state.ablate else ["logits"]  # clean: every head on
    if panel == "lens":
        return ["lens.logits"]
    if panel == "heads":
        return ["head_sweep"]
    if panel == "kv":
        return [f"{b}.k", f"{b}.v"]
    if panel == "weights":  # the weights behind the open panel (app/views/weight_numbers.py)
        return weight_tables(state, cfg)
    raise ValueError(panel)


def _token_rows(trace: Trace, tok: Callable[[int], Token]) -> list[list[Cell]]:
    return [[i + 1, tok(t).label, t] for i, t in enumerate(trace.ids)]


def _per_token(
    name: str,
    values: np.ndarray,
    description: str,
    trace: Trace,
    tok: Callable[[int], Token],
    columns: Sequence[str] | None = None,
) -> DataTable:
    """A [T, N] slice with one row per token."""
    values = np.asarray(values)
    cols = list(columns) if columns is not None else [str(c) for c in range(values.shape[1])]
    shape = list(trace[name].shape) if name in trace else list(values.shape)
    return DataTable(
        name, description, shape, ["position", "token", "id"], _token_rows(trace, tok), cols, values
    )


def _candidates(s: Sampling) -> tuple[list[int], list[int]]:
    """The output panel's rows: the likeliest ids before filtering, and the drawn one if not among them."""
    ids = [int(i) for i in s.top(TOP_ROWS)]
    ranks = list(range(1, len(ids) + 1))
    if s.token not in ids:
        ids.append(s.token)
        ranks.append(s.rank(s.token))
    return ids, ranks


def panel_tables(
    panel: str, trace: Trace, state: State, s: Sampling, tok: Callable[[int], Token]
) -> list[DataTable]:
    """Every table of `panel` for this trace and state; names as `table_names` gives them."""
    cfg = trace.config
    n = trace.n_tokens
    b, h = state.layer - 1, state.head - 1
    p = f"block{b}"
    chosen = selected_index(state, n)
    head = _("head {head} of {n}").format(head=state.head, n=cfg.n_head)
    labels = [tok(i).label for i in trace.ids]
    keys = [f"{j + 1}:{labels[j]}" for j in range(n)]

    if panel == "overview":
        probs = trace[f"{p}.attn.probs"][h][chosen]  # [T]
        out = np.linalg.norm(trace[f"{p}.mlp.out"].astype(np.float64), axis=-1)
        return [
            DataTable(
                f"{p}.attn.probs",
                _("{head}, the row of token {i}: how much it reads from each token").format(
                    head=head, i=chosen + 1
                ),
                list(trace[f"{p}.attn.probs"].shape),
                ["position", "token", "id"],
                _token_rows(trace, tok),
                ["probability"],
                probs.reshape(-1, 1),
            ),
            _per_token(
                f"norm({p}.mlp.out)",
                out.reshape(-1, 1),
                _("length of each token's MLP output"),
                trace,
                tok,
                ["length"],
            ),
            _logits_table(trace, s, tok, ["logits", "prob"]),
        ]
    if panel == "tokens":
        rows: list[list[Cell]] = [[i + 1, tok(t).label, tok(t).raw.hex(" ")] for i, t in enumerate(trace.ids)]
        return [
            DataTable(
                "ids",
                _("the token ids GPT-2 reads; bytes in hexadecimal"),
                [n],
                ["position", "token", "bytes"],
                rows,
                ["id"],
                np.asarray(trace.ids, dtype=np.int64).reshape(-1, 1),
            )
        ]
    if panel == "embedding":
        return [
            _per_token(
                name, trace[name], _("one row per token, all {c} numbers").format(c=cfg.n_embd), trace, tok
            )
            for name in ("embed.token", "embed.position", "embed.sum")
        ]
    if panel == "attention":
        step = state.step
        if step == "qkv":
            return [_per_token(f"{p}.{x}", trace[f"{p}.{x}"][h], head, trace, tok) for x in ("q", "k", "v")]
        if step == "concat":
            norms = np.linalg.norm(trace[f"{p}.attn.heads"].astype(np.float64), axis=-1).T  # [T, H]
            return [
                _per_token(
                    f"norm({p}.attn.heads)",
                    norms,
                    _("length of each head's output, per token"),
                    trace,
                    tok,
                    [f"head {k + 1}" for k in range(cfg.n_head)],
                )
            ]
        if step == "out":
            return [
                _per_token(f"{p}.attn.out", trace[f"{p}.attn.out"], _("all heads, projected"), trace, tok)
            ]
        if step == "heads":
            return [_per_token(f"{p}.attn.heads", trace[f"{p}.attn.heads"][h], head, trace, tok)]
        name = f"{p}.attn.{step}"
        desc = _("{head}; rows: tokens reading (queries), columns: tokens read (keys)").format(head=head)
        return [_per_token(name, trace[name][h], desc, trace, tok, keys)]
    if panel == "mlp":
        return [
            _per_token(f"{p}.mlp.act", trace[f"{p}.mlp.act"], _("after GELU"), trace, tok),
            _per_token(f"{p}.mlp.pre", trace[f"{p}.mlp.pre"], _("before GELU"), trace, tok),
            _per_token(f"{p}.mlp.out", trace[f"{p}.mlp.out"], _("back to the stream's width"), trace, tok),
        ]
    if panel == "residual":
        names = [name for name, _label in stages(cfg.n_layer)]
        norms = np.stack([np.linalg.norm(trace[x].astype(np.float64), axis=-1) for x in names], axis=1)
        tables = [
            _per_token(
                "norm(residual)",
                norms,
                _("length of each token's vector after every step"),
                trace,
                tok,
                names,
            )
        ]
        for ln in (f"{p}.ln1", f"{p}.ln2", "final.ln"):
            mean, std = trace.ln_stats(ln)
            tables.append(
                _per_token(
                    ln,
                    np.stack([mean, std], axis=1),
                    _("mean and standard deviation of each token's vector, before this LayerNorm"),
                    trace,
                    tok,
                    ["mean", "std"],
                )
            )
        return tables
    if panel == "output":
        return [_logits_table(trace, s, tok, ["logits", "logits/temperature", "prob_all", "prob"])]
    if panel == "kv":
        generated = min(len(state.gen), n - 1)
        desc = _("{head}; one row per token, the first {p} from the prompt, then {g} generated").format(
            head=head, p=n - generated, g=generated
        )
        return [_per_token(f"{p}.{x}", trace[f"{p}.{x}"][h], desc, trace, tok) for x in ("k", "v")]
    if panel == "lens":
        lens_rows = trace.lens(1)
        return [
            DataTable(
                "lens.logits",
                _(
                    "after each block: the top next token (final LayerNorm and unembedding applied early; "
                    "temperature 1, no filter)"
                ),
                list(trace["lens.logits"].shape),
                ["block", "token", "id"],
                [[r.block + 1, tok(r.ids[0]).label, r.ids[0]] for r in lens_rows],
                ["probability"],
                np.asarray([[r.probs[0]] for r in lens_rows]),
            )
        ]
    raise ValueError(panel)


def clean_logits_table(clean: Trace, s: Sampling, tok: Callable[[int], Token]) -> DataTable:
    """The output's table for the run with every head on, when the page switches some off (`ablate=`)."""
    table = _logits_table(clean, s, tok, ["logits", "logits/temperature", "prob_all", "prob"])
    description = _("the run with every head on, before ablate= switched some off: ") + table.description
    return replace(table, name="clean.logits", description=description)


def _logits_table(trace: Trace, s: Sampling, tok: Callable[[int], Token], columns: list[str]) -> DataTable:
    ids, ranks = _candidates(s)
    logits = trace.logits
    every = {
        "logits": logits.astype(np.float64),
        "logits/temperature": s.scaled,
        "prob_all": s.probs_all,
        "prob": s.probs,
    }
    values = np.asarray([[float(every[c][i]) for c in columns] for i in ids])
    return DataTable(
        "logits",
        _(
            "the likeliest next tokens at the last position; rank: highest logit first, equal logits by "
            "lower id (top-k, top-p and the draw read this order); prob_all: softmax over the whole "
            "vocabulary, prob: after top-k and top-p"
        ),
        [int(logits.size)],
        ["rank", "token", "id"],
        [[r, tok(i).label, i] for r, i in zip(ranks, ids, strict=True)],
        columns,
        values,
    )


def _number(x: Any) -> Any:
    """A value for JSON: ints stay ints, infinities and NaN become null."""
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return x if np.isfinite(x) else None


def to_json(table: DataTable) -> dict[str, Any]:
    """A table as JSON: -inf (the causal mask) becomes null."""
    return {
        "name": table.name,
        "description": table.description,
        "shape": table.shape,
        "index": table.index,
        "rows": table.rows,
        "columns": table.columns,
        "values": [[_number(v) for v in row] for row in table.values],
    }


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula (OWASP)


def _csv_value(x: Any) -> str:
    if isinstance(x, str):
        # a spreadsheet would run a cell such as =HYPERLINK(…) or -> from a shared link's text: keep it text
        return "'" + x if x.startswith(FORMULA_STARTS) else x
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    return "-inf" if x == -np.inf else f"{x:.9g}"


def to_csv(table: DataTable) -> str:
    """One header line (row labels, then the columns), then one line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_csv_value(v) for v in table.index + table.columns])
    for labels, values in zip(table.rows, table.values, strict=True):
        writer.writerow([*(_csv_value(v) for v in labels), *(_csv_value(v) for v in values)])
    return out.getvalue()
