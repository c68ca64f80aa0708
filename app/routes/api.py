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
from app.service.intervene import patched
from app.service.run import limits_of, token_limit
from app.service.site import Site
from app.state import MAX_ABLATE, heads_text, parse_heads, parse_patch
from model import GPT2, Intervention, Token, Trace, sample
from model.sampling import DEFAULT_TEMPERATURE, check_controls

router = APIRouter()

MAX_VALUES = 4_000_000  # numbers one /api/trace answer may hold


class TokenOut(BaseModel):
    position: int = Field(description="counted from 0")
    id: int
    text: str = Field(description="the token decoded alone (may hold U+FFFD for part of a character)")
    label: str = Field(description="what the page shows: the text, or its bytes when the text is not whole")


class Done(BaseModel):
    """What was done to the model for this answer (issue 17), as the request asked."""

    ablate: str = Field(description="heads switched off, block.head counted from 1 ('' when none)")
    patch: str | None = Field(
        description="site.token of the residual copied from patch_from (null when none): site 0 is "
        "embed.sum, site s is block{s-1}.resid.out (blocks from 0 in tensor names); the token from 1"
    )
    patch_from: str | None = Field(description="the text whose vector was patched in (null when none)")


class TraceOut(BaseModel):
    model: str
    trained: bool = Field(description="false: the weights are random and the predictions are noise")
    intervention: Done
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
    intervention: Done
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


def _intervention(
    site: Site, gpt2: GPT2, ids: list[int], ablate: str, patch: str | None, patch_from: str | None
) -> tuple[Intervention | None, Done]:
    """The intervention the query asks for, with the page's rules; HTTP 400 with a sentence when it is bad:
    malformed or out of range heads, more than MAX_ABLATE, a patch without its text (or the reverse), a
    patch position that is not in both texts."""
    limits = limits_of(site.serving, site.settings.max_chars)
    problems: list[str] = []
    heads = parse_heads(ablate, limits, problems) if ablate.strip() else ()
    where = parse_patch(patch, limits, problems) if patch is not None and patch.strip() else None
    if problems:
        raise HTTPException(400, " ".join(problems))
    off = frozenset((b - 1, h - 1) for b, h in heads)
    done = Done(ablate=heads_text(heads), patch=None, patch_from=None)
    if where is None and patch_from is None:
        return (Intervention(ablate=off) if off else None), done
    if where is None or patch_from is None:
        raise HTTPException(
            400, "patch and patch_from go together: the site.token to patch and the text to take it from"
        )
    try:
        _model, source_tokens = _tokens(site, patch_from, None)
    except HTTPException as err:
        raise HTTPException(400, f"patch_from: {err.detail}") from err
    shared = min(len(ids), len(source_tokens))
    site_, token = where
    if token > shared:
        raise HTTPException(
            400,
            f"patch position {token} is past the end: text has {len(ids)} tokens and patch_from "
            f"{len(source_tokens)}; positions count from 1 at the start of both, up to {shared}",
        )
    source = gpt2.trace([t.id for t in source_tokens], Intervention(ablate=off) if off else None)
    done = Done(ablate=done.ablate, patch=f"{site_}.{token}", patch_from=patch_from)
    return patched(source, site_, token - 1, off), done


Text = Annotated[
    str, Query(description="the text GPT-2 reads", examples=["Data visualization empowers users to"])
]
ModelName = Annotated[str | None, Query(description="must name the served model, if given")]
Ablate = Annotated[
    str,
    Query(
        description=f"heads to switch off (their attention probabilities multiplied by 0), block.head "
        f"counted from 1 as on the page, comma-separated, at most {MAX_ABLATE}; e.g. '3.5,7.1' is "
        "block2.attn head 4 and block6.attn head 0 in tensor names"
    ),
]
PatchSite = Annotated[
    str | None,
    Query(
        description="with patch_from: copy patch_from's residual stream vector at site.token into this "
        "text's run; site 0 is embed.sum, site s is block{s-1}.resid.out; the token counted from 1 at the "
        "start of both texts, so it must exist in both (e.g. '4.3')"
    ),
]
PatchFrom = Annotated[str | None, Query(description="the text the patched vector comes from (prompt A)")]


@router.get("/api/trace", response_model=TraceOut, tags=["api"])
def api_trace(
    site: SiteDep,
    text: Text,
    model: ModelName = None,
    names: Annotated[
        str, Query(description="comma-separated tensor names or globs, e.g. 'embed.*,block0.attn.probs'")
    ] = "*",
    ablate: Ablate = "",
    patch: PatchSite = None,
    patch_from: PatchFrom = None,
) -> StreamingResponse:
    """Every named activation of one forward pass (or those `names` selects), with the heads `ablate`
    switches off and the vector `patch` copies in, if any."""
    gpt2, tokens = _tokens(site, text, model)
    ids = [t.id for t in tokens]
    intervention, done = _intervention(site, gpt2, ids, ablate, patch, patch_from)
    trace = gpt2.trace(ids, intervention)
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
        intervention=done,
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
    ablate: Ablate = "",
    patch: PatchSite = None,
    patch_from: PatchFrom = None,
) -> PredictOut:
    """The next-token distribution after the text: temperature, top-k, top-p, softmax, a seeded draw.

    Every step reads one ranking: highest logit first, equal logits by lower id. Top-k and top-p keep a start
    of it; the draw lays the kept probabilities end to end in that order and takes the token under a point
    the seed picks. So a filter that keeps every token draws what no filter draws.

    With `ablate`, the heads it names are switched off; with `patch` and `patch_from`, one residual vector
    of patch_from's run replaces this text's (the compare view's patch: text is prompt B, patch_from A)."""
    gpt2, tokens = _tokens(site, text, model)
    try:
        check_controls(temperature, top_k, top_p, gpt2.config.vocab_size)
    except ValueError as err:
        raise HTTPException(422, str(err)) from err
    ids = [t.id for t in tokens]
    intervention, done = _intervention(site, gpt2, ids, ablate, patch, patch_from)
    trace = gpt2.trace(ids, intervention)
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
        intervention=done,
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
