"""The JSON API: the same numbers the page draws. Bad input gets a 4xx with a `detail` sentence."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.deps import SiteDep
from app.service.checks import model_problem, text_problem, token_problem
from app.service.run import token_limit
from app.service.site import Site
from model import GPT2, Token, Trace, sample
from model.sampling import DEFAULT_TEMPERATURE, check_controls

router = APIRouter()

MAX_VALUES = 4_000_000  # numbers one /api/trace answer may hold


class TokenOut(BaseModel):
    position: int = Field(description="counted from 0")
    id: int
    text: str = Field(description="the token decoded alone (may hold U+FFFD for part of a character)")
    label: str = Field(description="what the page shows: the text, or its bytes when the text is not whole")


class TraceOut(BaseModel):
    model: str
    trained: bool = Field(description="false: the weights are random and the predictions are noise")
    tokens: list[TokenOut]
    ids: list[int]
    shapes: dict[str, list[int]] = Field(description="every tensor of the trace and its shape")
    tensors: dict[str, Any] = Field(
        description="the tensors asked for, as nested lists; masked entries (-inf) are null"
    )


# How model/sampling.py ranks tokens; top-k, top-p and the draw all read this order.
RANKING = "highest logit first, equal logits by lower id"
TOP_K = "keep the first k of the ranking: exactly k, a tie at the cut going to the lower id"
TOP_P = "keep the shortest start of the ranking that holds this much probability; 1 keeps every token"


class Candidate(BaseModel):
    rank: int = Field(description=f"place in the ranking ({RANKING}), from 1")
    id: int
    text: str
    label: str
    logit: float
    scaled: float = Field(description="logit ÷ temperature")
    prob_all: float = Field(description="softmax over the whole vocabulary, before top-k / top-p")
    prob: float = Field(description="after top-k / top-p, renormalised; 0 when filtered out")
    kept: bool


class PredictOut(BaseModel):
    model: str
    trained: bool
    tokens: list[TokenOut]
    temperature: float
    top_k: int | None
    top_p: float | None
    seed: int
    kept_count: int = Field(description="how many tokens top-k / top-p keep")
    kept_mass: float = Field(description="their share of the probability before renormalising")
    sampled: Candidate
    top: list[Candidate]


class Health(BaseModel):
    status: str
    model: str
    trained: bool
    fallback: bool


def _tokens(site: Site, text: str, model: str | None) -> tuple[GPT2, list[Token]]:
    """The page's checks (app/service/checks.py) on the text and model name, then tokenize; HTTP 400 with
    the API's sentence when they are unusable."""
    gpt2 = site.serving.gpt2
    problem = model_problem(model or "", gpt2.name) or text_problem(text, site.settings.max_chars)
    if problem is None:
        tokens = gpt2.tokenize(text)
        limit = token_limit(site.serving, site.settings.max_tokens, site.settings.max_trace_mb)
        problem = token_problem(len(tokens), limit)
    if problem is not None:
        raise HTTPException(400, problem.english())
    return gpt2, tokens


def _token_out(tokens: list[Token]) -> list[TokenOut]:
    return [TokenOut(position=i, id=t.id, text=t.text, label=t.label) for i, t in enumerate(tokens)]


def _jsonable(a: np.ndarray) -> Any:
    """Nested lists of floats; -inf and NaN become null (JSON has no infinities)."""
    a = np.asarray(a)
    bad = ~np.isfinite(a)
    if not bad.any():
        return a.astype(np.float64).tolist()
    b = a.astype(object)
    b[bad] = None
    return b.tolist()


Text = Annotated[
    str, Query(description="the text GPT-2 reads", examples=["Data visualization empowers users to"])
]
ModelName = Annotated[str | None, Query(description="must name the served model, if given")]


@router.get("/api/trace", response_model=TraceOut, tags=["api"])
def api_trace(
    site: SiteDep,
    text: Text,
    model: ModelName = None,
    names: Annotated[
        str, Query(description="comma-separated tensor names or globs, e.g. 'embed.*,block0.attn.probs'")
    ] = "*",
) -> StreamingResponse:
    """Every named activation of one forward pass (or those `names` selects)."""
    gpt2, tokens = _tokens(site, text, model)
    trace = gpt2.trace([t.id for t in tokens])
    patterns = [p.strip() for p in names.split(",") if p.strip()]
    chosen = [n for n in trace.names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if not chosen:
        raise HTTPException(
            400,
            f"no tensor matches {names[:100]!r}; names look like 'embed.sum', "
            "'block0.attn.probs' or 'block*.mlp.act'",
        )
    size = sum(trace[n].size for n in chosen)
    if size > MAX_VALUES:
        raise HTTPException(400, f"that is {size} numbers; ask for at most {MAX_VALUES} with `names`")
    head = TraceOut(
        model=gpt2.name,
        trained=gpt2.loaded.trained,
        tokens=_token_out(tokens),
        ids=[t.id for t in tokens],
        shapes={n: list(trace[n].shape) for n in trace.names},
        tensors={},
    )
    # Streamed, a block of numbers at a time: a reader that does not read holds back the writing, not tens
    # of megabytes of JSON built for it (the answer has the form TraceOut describes).
    return StreamingResponse(_trace_json(head, trace, chosen), media_type="application/json")


def _trace_json(head: TraceOut, trace: Trace, names: list[str]) -> Iterator[bytes]:
    """TraceOut as JSON, its tensors written block by block (-inf and NaN as null)."""
    start = head.model_dump_json()
    yield start[: -len("{}}")].encode() + b"{"  # everything up to the tensors' opening brace
    for k, name in enumerate(names):
        yield ("," if k else "").encode() + json.dumps(name).encode() + b":"
        yield from _json_blocks(trace[name])
    yield b"}}"


def _json_blocks(a: np.ndarray, rows: int = 4096) -> Iterator[bytes]:
    """A nested JSON list of `a`, in pieces of about `rows` innermost rows' worth each."""
    if a.ndim <= 1 or a.size <= rows * max(a.shape[-1], 1):
        yield json.dumps(_jsonable(a), allow_nan=False, separators=(",", ":")).encode()
        return
    yield b"["
    for k in range(a.shape[0]):
        if k:
            yield b","
        yield from _json_blocks(a[k], rows)
    yield b"]"


@router.get("/api/predict", response_model=PredictOut, tags=["api"])
def api_predict(
    site: SiteDep,
    text: Text,
    model: ModelName = None,
    temperature: Annotated[float, Query(ge=0.01, le=100, description="logits are divided by it")] = (
        DEFAULT_TEMPERATURE
    ),
    top_k: Annotated[int | None, Query(ge=1, description=TOP_K)] = None,
    top_p: Annotated[float | None, Query(gt=0, le=1, description=TOP_P)] = None,
    seed: Annotated[
        int, Query(ge=0, le=2**32 - 1, description="picks the draw's point: same seed, same draw")
    ] = 0,
    n: Annotated[int, Query(ge=1, le=100, description="how many candidates to list")] = 10,
    greedy: Annotated[bool, Query(description="take the first of the ranking instead of drawing")] = False,
) -> PredictOut:
    """The next-token distribution after the text: temperature, top-k, top-p, softmax, a seeded draw.

    Every step reads one ranking: highest logit first, equal logits by lower id. Top-k and top-p keep a start
    of it; the draw lays the kept probabilities end to end in that order and takes the token under a point
    the seed picks. So a filter that keeps every token draws what no filter draws."""
    gpt2, tokens = _tokens(site, text, model)
    try:
        check_controls(temperature, top_k, top_p, gpt2.config.vocab_size)
    except ValueError as err:
        raise HTTPException(422, str(err)) from err
    trace = gpt2.trace([t.id for t in tokens])
    s = sample(trace.logits, temperature, top_k, top_p, seed=seed, greedy=greedy, order=trace.logit_order())

    def candidate(rank: int, i: int) -> Candidate:
        t = gpt2.tokenizer.token(i)
        return Candidate(
            rank=rank,
            id=i,
            text=t.text,
            label=t.label,
            logit=float(trace.logits[i]),
            scaled=float(s.scaled[i]),
            prob_all=float(s.probs_all[i]),
            prob=float(s.probs[i]),
            kept=bool(s.probs[i] > 0),
        )

    return PredictOut(
        model=gpt2.name,
        trained=gpt2.loaded.trained,
        tokens=_token_out(tokens),
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        kept_count=s.kept_count,
        kept_mass=s.kept_mass,
        sampled=candidate(s.rank(s.token), s.token),
        top=[candidate(r + 1, int(i)) for r, i in enumerate(s.top(n))],
    )


@router.get("/healthz", response_model=Health, tags=["health"])
@router.head("/healthz", include_in_schema=False)
def healthz(site: SiteDep) -> Health:
    """For load balancers and container probes (GET or HEAD): the model is loaded, and a check trace at
    startup gave finite numbers (the server answers nothing before that)."""
    serving = site.serving
    return Health(status="ok", model=serving.gpt2.name, trained=serving.trained, fallback=serving.fallback)
