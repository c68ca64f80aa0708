"""The weights as JSON: their names (the activations' scheme) and a bounded slice of one, read from disk."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from app.deps import SiteDep
from model.mapped import WeightSpec

router = APIRouter()

MAX_WEIGHT_VALUES = 65_536  # numbers one slice may hold


class WeightOut(BaseModel):
    name: str = Field(description="e.g. block0.attn.w_q (blocks counted from 0)")
    shape: list[int]
    source: str = Field(description="GPT-2's parameter it is (part of), e.g. h.0.attn.c_attn.weight")
    start: int = Field(description="where it starts in that parameter's last axis (w_k: at n_embd)")
    what: str


class WeightsOut(BaseModel):
    model: str
    weights: list[WeightOut]


class SliceOut(BaseModel):
    model: str
    name: str
    shape: list[int] = Field(description="the whole weight's shape")
    rows: list[int] = Field(description="[start, stop) of the first axis")
    cols: list[int] | None = Field(description="[start, stop) of the second axis; null for a vector")
    values: list[float] | list[list[float]]


def _out(spec: WeightSpec) -> WeightOut:
    return WeightOut(
        name=spec.name, shape=list(spec.shape), source=spec.source, start=spec.start, what=spec.what
    )


@router.get("/api/weights", response_model=WeightsOut, tags=["api"])
def api_weights(site: SiteDep) -> WeightsOut:
    """Every weight of the served model, named as the activations are (docs/architecture.md's table)."""
    gpt2 = site.serving.gpt2
    return WeightsOut(model=gpt2.name, weights=[_out(s) for s in gpt2.weights_on_disk.specs.values()])


def _span(raw: str, n: int, what: str) -> tuple[int, int]:
    """'a:b' (or 'a', or ':b', 'a:') as [start, stop) within n; HTTP 400 with a sentence otherwise."""
    start, colon, stop = raw.strip().partition(":")
    try:
        a = int(start) if start.strip() else 0
        b = (int(stop) if stop.strip() else n) if colon else a + 1
    except ValueError:
        raise HTTPException(400, f"{what} must look like 0:16 (start:stop), not {raw[:40]!r}") from None
    if not 0 <= a < b <= n:
        raise HTTPException(400, f"{what} {raw[:40]!r} is not within 0:{n} (start below stop)")
    return a, b


@router.get("/api/weights/{name}", response_model=SliceOut, tags=["api"])
def api_weight_slice(
    site: SiteDep,
    name: Annotated[str, Path(description="a weight's name, e.g. block0.attn.w_q or embed.wpe")],
    rows: Annotated[str, Query(description="start:stop of the first axis")] = "0:16",
    cols: Annotated[str, Query(description="start:stop of the second axis (matrices only)")] = "0:16",
) -> SliceOut:
    """Part of one weight, read from the weights on disk: at most 65,536 numbers."""
    gpt2 = site.serving.gpt2
    stored = gpt2.weights_on_disk
    if name not in stored.specs:
        raise HTTPException(404, f"no weight called {name[:60]!r}; /api/weights lists them")
    shape = stored.shape(name)
    r = _span(rows, shape[0], "rows")
    c = _span(cols, shape[1], "cols") if len(shape) == 2 else None
    size = (r[1] - r[0]) * ((c[1] - c[0]) if c else 1)
    if size > MAX_WEIGHT_VALUES:
        raise HTTPException(400, f"that is {size} numbers; ask for at most {MAX_WEIGHT_VALUES}")
    values = stored.read(name, slice(*r), slice(*c) if c else slice(None))
    return SliceOut(
        model=gpt2.name,
        name=name,
        shape=list(shape),
        rows=list(r),
        cols=list(c) if c else None,
        values=values.astype(float).tolist(),
    )
