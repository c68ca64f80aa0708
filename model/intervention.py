"""Do something to the model: switch attention heads off, or patch in a vector that another run computed.

An `Intervention` is a frozen value (hashable), so an intervened trace is its own entry in the trace cache.
The graph takes interventions as inputs whose defaults change nothing (model/graph.py); `graph_inputs` turns
the interventions of the texts of one run into those inputs. Each new token's row has its own, so texts with
different interventions still share one run.

- Ablation: head h of block b multiplies its attention probabilities by 0, as transformers' `head_mask` did,
  so its output (`block{b}.attn.heads[h]`) is zero and adds nothing to `block{b}.attn.out`.
- Patching: the vector of `embed.sum` or `block{b}.resid.out` (the residual stream: entering block 0, and
  after block b) at one token, or of one head's output `block{b}.attn.heads[h]` at one token, is replaced by a
  given vector, typically the one another text's run computed there (`Patch.from_trace`). Everything after
  it is computed from the replaced vector; the named tensor shows the replaced one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from model.config import GPT2Config

if TYPE_CHECKING:
    from model.trace import Trace

_RESID = re.compile(r"embed\.sum|block(\d+)\.resid\.out")
_HEADS = re.compile(r"block(\d+)\.attn\.heads")


@dataclass(frozen=True)
class Patch:
    """Replace one vector of a run: `tensor` at token `position` (from 0) becomes `value`."""

    tensor: str  # "embed.sum" or "block{b}.resid.out" (the residual stream), or "block{b}.attn.heads"
    position: int
    value: bytes = field(repr=False)  # the vector, float32 [C] ([D] for one head), as bytes: hashable
    head: int | None = None  # which head of "block{b}.attn.heads", from 0

    @classmethod
    def from_trace(
        cls,
        source: Trace,
        tensor: str,
        position: int,
        source_position: int | None = None,
        head: int | None = None,
    ) -> Patch:
        """The patch that puts `source`'s vector of `tensor` at `source_position` (by default `position`)
        into another run at `position`."""
        at = position if source_position is None else source_position
        if not 0 <= at < source.n_tokens:
            raise ValueError(f"the source text has {source.n_tokens} tokens; there is no position {at}")
        values = source[tensor]
        if head is None:
            vector = values[at]  # [C]
        else:
            if not 0 <= head < values.shape[0]:
                raise ValueError(f"there is no head {head} (heads are 0..{values.shape[0] - 1})")
            vector = values[head, at]  # [D]
        return cls(tensor, position, np.ascontiguousarray(vector, np.float32).tobytes(), head)

    @property
    def vector(self) -> np.ndarray:
        return np.frombuffer(self.value, np.float32)

    def site(self) -> tuple[str, int]:
        """("resid", s) with s = 0 for embed.sum and b + 1 for block{b}.resid.out, or ("heads", b)."""
        if m := _RESID.fullmatch(self.tensor):
            return "resid", 0 if m.group(1) is None else int(m.group(1)) + 1
        if m := _HEADS.fullmatch(self.tensor):
            return "heads", int(m.group(1))
        raise ValueError(
            f"{self.tensor!r} cannot be patched; patch embed.sum, block<b>.resid.out or block<b>.attn.heads"
        )


@dataclass(frozen=True)
class Intervention:
    """Heads switched off and vectors patched in, for one run of one text. Blocks and heads from 0."""

    ablate: frozenset[tuple[int, int]] = frozenset()  # (block, head)
    patch: tuple[Patch, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ablate or self.patch)

    def check(self, config: GPT2Config, n_tokens: int) -> None:
        """Raise ValueError, with a sentence a user can act on, unless this fits a text of n_tokens tokens."""
        c = config
        for block, head in sorted(self.ablate):
            if not (0 <= block < c.n_layer and 0 <= head < c.n_head):
                raise ValueError(
                    f"there is no head {head} in block {block}: blocks are 0..{c.n_layer - 1} and heads "
                    f"0..{c.n_head - 1}"
                )
        for p in self.patch:
            kind, site = p.site()
            if site >= c.n_layer + (kind == "resid"):
                raise ValueError(f"{p.tensor}: this model's blocks are 0..{c.n_layer - 1}")
            if not 0 <= p.position < n_tokens:
                raise ValueError(f"the text has {n_tokens} tokens: position {p.position} is past them")
            if kind == "heads" and not (p.head is not None and 0 <= p.head < c.n_head):
                raise ValueError(f"{p.tensor}: say which head to patch, 0..{c.n_head - 1}")
            if kind == "resid" and p.head is not None:
                raise ValueError(f"{p.tensor} is the residual stream: it has no heads")
            size = c.head_dim if kind == "heads" else c.n_embd
            if p.vector.size != size:
                raise ValueError(f"a patch of {p.tensor} takes {size} numbers, not {p.vector.size}")


NONE = Intervention()


def graph_inputs(
    config: GPT2Config, spans: Sequence[tuple[int, int, int]], interventions: Sequence[Intervention | None]
) -> dict[str, np.ndarray]:
    """The intervention inputs of one graph run (see model/graph.py). Text b's new tokens are the rows
    spans[b] = (first row, earlier tokens P, new tokens n) of the run's N rows, its positions P..P+n-1.

    A patch at one of a text's earlier tokens is not applied here: that token's vectors come from the
    prefix's trace, which must have been run with the same intervention."""
    c = config
    n = sum(count for _, _, count in spans)
    L, H, C, D = c.n_layer, c.n_head, c.n_embd, c.head_dim
    ablating = any(i is not None and i.ablate for i in interventions)
    patches = [(b, p) for b, i in enumerate(interventions) if i is not None for p in i.patch]
    resid = [(b, p) for b, p in patches if p.site()[0] == "resid"]
    heads = [(b, p) for b, p in patches if p.site()[0] == "heads"]
    # unused inputs are one row, broadcast over every token: nothing to fill, nothing to copy
    feeds = {
        "head_mask": np.ones((L, H, n if ablating else 1), np.float32),  # [L, H, N or 1]
        "patch.resid.mask": np.zeros((L + 1, n), bool),  # [L+1, N]
        "patch.resid.values": np.zeros((L + 1, n if resid else 1, C), np.float32),  # [L+1, N or 1, C]
        "patch.heads.mask": np.zeros((L, H, n), bool),  # [L, H, N]
        "patch.heads.values": np.zeros((L, H, n if heads else 1, D), np.float32),  # [L, H, N or 1, D]
    }
    for (first, _, count), i in zip(spans, interventions, strict=True):
        for block, head in i.ablate if i is not None else ():
            feeds["head_mask"][block, head, first : first + count] = 0.0
    for b, p in patches:
        first, past, count = spans[b]
        if p.position < past:
            continue  # in the prefix's trace already
        if p.position >= past + count:
            raise ValueError(f"a patch at position {p.position} is past the text's {past + count} tokens")
        row = first + p.position - past
        kind, site = p.site()
        if kind == "resid":
            feeds["patch.resid.mask"][site, row] = True
            feeds["patch.resid.values"][site, row] = p.vector
        else:
            feeds["patch.heads.mask"][site, p.head, row] = True
            feeds["patch.heads.values"][site, p.head, row] = p.vector
    return feeds
