"""The guided tour: 21 steps through GPT-2, each told with the student's own tokens and numbers.

`tour_target(trace, state, n)` is the state step n opens (panel, block, head, token, sampling controls);
`tour_view(trace, state, ...)` explains what that state shows, quoting numbers computed from the Trace. Each
number quoted is also returned exactly (`Tour.numbers`), for data-* attributes and tests. Where the tour
must choose (which head, which token), it picks the head and token with the strongest attention to an
earlier word, so the example is worth looking at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from app.i18n import N_, _
from app.state import TOUR_STEPS, State
from app.views.links import Link, link
from app.views.tour_attention import explain_attention
from app.views.tour_output import explain_lens, explain_output
from app.views.tour_say import Say
from app.views.tour_text import explain_stream
from model import Sampling, Token, Trace

# (key, title, the section the step is about)
STEPS: tuple[tuple[str, str, str], ...] = (
    ("model", N_("What a language model does"), "overview"),
    ("tokens", N_("Tokens and ids"), "tokens"),
    ("token-embedding", N_("Token embedding"), "panel"),
    ("position-embedding", N_("Position embedding"), "panel"),
    ("residual", N_("The residual stream"), "panel"),
    ("layernorm", N_("LayerNorm"), "panel"),
    ("qkv", N_("Queries, keys and values"), "panel"),
    ("scores", N_("Attention scores"), "panel"),
    ("scaling", N_("Scaling"), "panel"),
    ("mask", N_("The causal mask"), "panel"),
    ("softmax", N_("Softmax"), "panel"),
    ("heads", N_("Several heads"), "panel"),
    ("projection", N_("Attention output and projection"), "panel"),
    ("mlp", N_("The MLP and GELU"), "panel"),
    ("blocks", N_("Repeated blocks"), "overview"),
    ("logits", N_("Final LayerNorm and logits"), "output"),
    ("temperature", N_("Temperature"), "output"),
    ("top-k", N_("Top-k"), "output"),
    ("top-p", N_("Top-p"), "output"),
    ("sampling", N_("Sampling and the generation loop"), "output"),
    ("lens", N_("The logit lens"), "lens"),
)
assert len(STEPS) == TOUR_STEPS
# the attention panel's step each attention step of the tour opens
ATTENTION_STEPS = {
    "qkv": "qkv",
    "scores": "scores",
    "scaling": "scaled",
    "mask": "masked",
    "softmax": "probs",
    "heads": "probs",
    "projection": "out",
}
TOP_K, TOP_P = 5, 0.9  # what the top-k and top-p steps set when the student has not


@dataclass(frozen=True)
class StepLink:
    number: int
    title: str
    link: Link
    current: bool


@dataclass(frozen=True)
class Tour:
    number: int  # counted from 1
    total: int
    key: str
    title: str
    focus: str  # id of the section the step is about
    sentences: list[str]
    numbers: list[tuple[str, str]]  # (data-* name, exact value) of every number the sentences quote
    cell: tuple[int, int] | None  # (query, key) of the attention square the step talks about, from 0
    cell_label: str  # the same counted from 1, "query,key" ("" when there is none)
    prev: Link | None
    next: Link | None
    end: Link
    steps: list[StepLink]


@dataclass(frozen=True)
class Focus:
    """Where the attention steps look: block, head, query token and key token, counted from 0."""

    block: int
    head: int
    query: int
    key: int


def attention_focus(trace: Trace) -> Focus:
    """The (block, head, query) whose attention to one earlier token is strongest, and that token.

    The first token and the token itself are left out when there is another choice: most heads of a
    trained GPT-2 rest on the first token when they find nothing, and that says little.
    """
    return trace.derived.get("attention_focus", lambda: _attention_focus(trace), lambda _focus: 100)


def _attention_focus(trace: Trace) -> Focus:
    n = trace.n_tokens
    if n == 1:
        return Focus(0, 0, 0, 0)
    query, key = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    allowed = key < query
    if n > 2:
        allowed &= key >= 1
    best: tuple[float, Focus] = (-1.0, Focus(0, 0, n - 1, n - 2))
    for b in range(trace.config.n_layer):
        p = np.where(allowed, trace[f"block{b}.attn.probs"], -1.0)  # [H, T, T]
        h, i, j = np.unravel_index(int(np.argmax(p)), p.shape)
        if float(p[h, i, j]) > best[0]:
            best = (float(p[h, i, j]), Focus(b, int(h), int(i), int(j)))
    return best[1]


def tour_target(trace: Trace, state: State, number: int, example: Focus | None = None) -> State:
    """The state tour step `number` opens: always the same panel, block, head and token for a text, so a
    bare `tour=N` link and the Next button show the same view. Sampling controls are set only by the steps
    about them, and a top-k or top-p the student chose is kept."""
    key = STEPS[number - 1][0]
    f = example or attention_focus(trace)
    chosen = {"layer": f.block + 1, "head": f.head + 1, "token": f.query + 1}
    focus: dict[str, object] = {"view": "attention", "layer": 1, "head": 1, "step": "qkv", "token": None}
    if key in ("token-embedding", "position-embedding"):
        focus["view"] = "embedding"
    elif key in ("residual", "layernorm"):
        focus["view"] = "residual"
    elif key in ATTENTION_STEPS:
        focus.update(chosen, step=ATTENTION_STEPS[key])
    elif key == "mlp":
        focus.update(chosen, view="mlp")
    elif key == "blocks":
        focus.update(chosen)
    sampling: dict[str, object] = {}
    if key == "temperature":
        sampling = {"top_k": None, "top_p": None}
    elif key == "top-k":
        sampling = {"top_k": state.top_k or TOP_K, "top_p": None}
    elif key in ("top-p", "sampling"):
        sampling = {"top_k": None, "top_p": state.top_p or TOP_P}
    return replace(state, tour=number, expand=key == "blocks", **focus, **sampling)  # type: ignore[arg-type]


def link_to(state: State, target: State, anchor: str = "") -> Link:
    """A link from `state` to `target` that names only the controls that change (see views/links.py)."""
    changes = {
        f.name: getattr(target, f.name)
        for f in fields(State)
        if getattr(target, f.name) != getattr(state, f.name)
    }
    return link(state, anchor, **changes)


def tour_view(trace: Trace, state: State, s: Sampling, tok: Callable[[int], Token]) -> Tour:
    """Tour step `state.tour`: its title, two to four sentences on the student's text, and its links."""
    number = state.tour or 1
    key, title, focus = STEPS[number - 1]
    say = Say()
    cell = _explain(key, trace, state, s, tok, say)
    example = attention_focus(trace)  # once: it reads every attention pattern of the trace
    targets = [tour_target(trace, state, k + 1, example) for k in range(TOUR_STEPS)]
    anchors = [f for _k, _t, f in STEPS]
    steps = [
        StepLink(k + 1, _(t), link_to(state, targets[k]), k + 1 == number)
        for k, (_key, t, _f) in enumerate(STEPS)
    ]
    return Tour(
        number=number,
        total=TOUR_STEPS,
        key=key,
        title=_(title),
        focus=focus,
        sentences=say.sentences,
        numbers=say.numbers,
        cell=cell,
        cell_label=f"{cell[0] + 1},{cell[1] + 1}" if cell else "",
        prev=steps[number - 2].link if number > 1 else None,
        next=steps[number].link if number < TOUR_STEPS else None,
        end=link(state, anchors[number - 1], tour=None),
        steps=steps,
    )


def _explain(
    key: str, trace: Trace, state: State, s: Sampling, tok: Callable[[int], Token], say: Say
) -> tuple[int, int] | None:
    """Let the module of step `key` say its sentences; the attention square it talks about, if any."""
    if key in ATTENTION_STEPS:
        return explain_attention(key, trace, state, tok, say)
    if key == "lens":
        explain_lens(trace, tok, say)
    elif key in ("logits", "temperature", "top-k", "top-p", "sampling"):
        explain_output(key, trace, state, s, tok, say)
    else:
        explain_stream(key, trace, state, tok, say)
    return None
