"""The guided tour: 24 steps through GPT-2, each told with the student's own tokens and numbers.

`tour_target(trace, state, n)` is the state step n opens (panel, block, head, token, sampling controls);
`tour_view(trace, state, ...)` explains what that state shows, quoting numbers computed from the Trace. Each
number quoted is also returned exactly (`Tour.numbers`), for data-* attributes and tests. Where the tour
must choose (which head, which token), it picks the head and token with the strongest attention to an
earlier word, so the example is worth looking at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from app.i18n import N_, _
from app.state import State
from app.views import tour_attention, tour_intervene, tour_output, tour_text, tour_watch
from app.views.links import Link, link
from app.views.tour_say import Say, Square, Told
from model import Sampling, Token, Trace


@dataclass(frozen=True)
class Opens:
    """What a tour step opens: its panel and attention step, whether on the tour's example (the block, head
    and token with the strongest attention to an earlier word), the expanded overview, and the sampling
    filter it is about ("" leaves the student's, "none" clears both, "top-k" or "top-p" sets one); the
    panel's weights; whether it first generates a token (the greedy one, unless the student has some)."""

    view: str = "attention"
    step: str = "qkv"
    example: bool = False
    expand: bool = False
    sampling: str = ""
    weights: bool = False
    generate: bool = False
    ablate: bool = False  # switch the example head off


# What a step's card describes, outlined and scrolled into view (`data-tour-target`): the overview's
# picture, the tokens, the open panel's main figure, the LayerNorm tables, the all-heads grid, the output's
# bars, the lens; the output before and after heads were switched off, the compare page's patching grid.
TARGETS = ("overview", "tokens", "figure", "norms", "heads", "output", "lens", "change", "patch")


@dataclass(frozen=True)
class TourStep:
    """One step of the tour: its key (the attention steps' keys are the panel's, app/state.py's STEPS), its
    title, the section of the page it focuses, what it opens, the function that explains it on the
    student's own numbers (returning the attention square it talks about, if any), and the element its card
    describes (one of TARGETS; by default the section it focuses, or the panel's figure)."""

    key: str
    title: str
    focus: str
    opens: Opens
    explain: Callable[[Told], Square | None]
    target: str = ""

    @property
    def element(self) -> str:
        """What the card describes: `target`, else the focused section's own (the panel's main figure)."""
        return self.target or ("figure" if self.focus == "panel" else self.focus)


def on_example(step: str = "qkv", view: str = "attention", expand: bool = False) -> Opens:
    return Opens(view, step, example=True, expand=expand)


text, attention, output, watch = tour_text, tour_attention, tour_output, tour_watch
intervene = tour_intervene
TOUR: tuple[TourStep, ...] = (
    TourStep("model", N_("What a language model does"), "overview", Opens(), text.model),
    TourStep("tokens", N_("Tokens and ids"), "tokens", Opens(), text.tokens),
    TourStep("token-embedding", N_("Token embedding"), "panel", Opens("embedding"), text.token_embedding),
    TourStep(
        "position-embedding", N_("Position embedding"), "panel", Opens("embedding"), text.position_embedding
    ),
    TourStep("residual", N_("The residual stream"), "panel", Opens("residual"), text.residual),
    TourStep("layernorm", N_("LayerNorm"), "panel", Opens("residual"), text.layernorm, "norms"),
    TourStep("qkv", N_("Queries, keys and values"), "panel", on_example("qkv"), attention.qkv),
    TourStep("scores", N_("Attention scores"), "panel", on_example("scores"), attention.scores),
    TourStep("scaled", N_("Scaling"), "panel", on_example("scaled"), attention.scaled),
    TourStep("masked", N_("The causal mask"), "panel", on_example("masked"), attention.masked),
    TourStep("probs", N_("Softmax"), "panel", on_example("probs"), attention.probs),
    TourStep("all-heads", N_("Several heads"), "panel", on_example("probs"), attention.all_heads, "heads"),
    TourStep("out", N_("Attention output and projection"), "panel", on_example("out"), attention.out),
    TourStep("mlp", N_("The MLP and GELU"), "panel", on_example(view="mlp"), text.mlp),
    TourStep("blocks", N_("Repeated blocks"), "overview", on_example(expand=True), text.blocks),
    TourStep("logits", N_("Final LayerNorm and logits"), "output", Opens(), output.logits),
    TourStep("temperature", N_("Temperature"), "output", Opens(sampling="none"), output.temperature),
    TourStep("top-k", N_("Top-k"), "output", Opens(sampling="top-k"), output.top_k),
    TourStep("top-p", N_("Top-p"), "output", Opens(sampling="top-p"), output.top_p),
    TourStep(
        "sampling", N_("Sampling and the generation loop"), "output", Opens(sampling="top-p"), output.sampling
    ),
    TourStep("lens", N_("The logit lens"), "lens", Opens(), output.lens),
    # doing something to the model: a head switched off, which heads matter, a vector patched
    TourStep(
        "ablate",
        N_("Switching a head off"),
        "output",
        Opens(step="probs", example=True, ablate=True),
        intervene.ablate,
        target="change",
    ),
    TourStep("heads", N_("Which heads matter"), "panel", Opens("heads"), intervene.heads),
    TourStep("patch", N_("Patching one vector"), "patch", Opens("compare"), intervene.patch),
    # watching the math happen: attention played, the weights at work, the cache that Generate fills
    TourStep("watch-attention", N_("Watch attention happen"), "panel", on_example("scores"), watch.watch),
    TourStep(
        "weights",
        N_("A weight matrix at work"),
        "panel",
        Opens("attention", "qkv", example=True, weights=True),
        watch.weights,
    ),
    TourStep("kv-cache", N_("The KV cache"), "panel", Opens("kv", generate=True), watch.kv_cache),
)
TOUR_STEPS = len(TOUR)
TOP_K, TOP_P = 5, 0.9  # what the top-k and top-p steps set when the student has not


@dataclass(frozen=True)
class TourLink:
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
    target: str  # the element its card describes (TARGETS), outlined and scrolled into view
    sentences: list[str]
    numbers: list[tuple[str, str]]  # (data-* name, exact value) of every number the sentences quote
    cell: tuple[int, int] | None  # (query, key) of the attention square the step talks about, from 0
    cell_label: str  # the same counted from 1, "query,key" ("" when there is none)
    prev: Link | None
    next: Link | None
    end: Link
    steps: list[TourLink]


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
    opens = TOUR[number - 1].opens
    focus: dict[str, object] = {
        "view": opens.view,
        "layer": 1,
        "head": 1,
        "step": opens.step,
        "token": None,
        "weights": opens.weights,
    }
    if opens.generate and not state.gen:  # the cache after one Generate: the greedy next token
        focus["gen"] = (int(trace.logit_order()[0]),)
    if opens.example:
        f = example or attention_focus(trace)
        focus.update(layer=f.block + 1, head=f.head + 1, token=f.query + 1)
    sampling: dict[str, object] = {}
    if opens.sampling == "none":
        sampling = {"top_k": None, "top_p": None}
    elif opens.sampling == "top-k":
        sampling = {"top_k": state.top_k or TOP_K, "top_p": None}
    elif opens.sampling == "top-p":
        sampling = {"top_k": None, "top_p": state.top_p or TOP_P}
    # the steps about doing something to the model: the example head off, or a second prompt to patch from
    focus["ablate"] = ((focus["layer"], focus["head"]),) if opens.ablate else ()
    if opens.view == "compare":
        focus.update(text2=tour_intervene.counterpart(state.text), patch=None, gen=())
    return replace(state, tour=number, expand=opens.expand, **focus, **sampling)  # type: ignore[arg-type]


def link_to(state: State, target: State, anchor: str = "") -> Link:
    """A link from `state` to `target` that names only the controls that change (see views/links.py)."""
    changes = {
        f.name: getattr(target, f.name)
        for f in fields(State)
        if getattr(target, f.name) != getattr(state, f.name)
    }
    return link(state, anchor, **changes)


def tour_view(trace: Trace, state: State, s: Sampling, tok: Callable[[int], Token], **more: Any) -> Tour:
    """Tour step `state.tour`: its title, two to four sentences on the student's text, and its links.
    `more`: what the steps about interventions read besides the trace (see Told)."""
    number = state.tour or 1
    step = TOUR[number - 1]
    say = Say()
    cell = step.explain(Told(trace, state, s, tok, say, **more))
    example = attention_focus(trace)  # once: it reads every attention pattern of the trace
    targets = [tour_target(trace, state, k + 1, example) for k in range(TOUR_STEPS)]
    steps = [
        TourLink(k + 1, _(t.title), link_to(state, targets[k]), k + 1 == number) for k, t in enumerate(TOUR)
    ]
    return Tour(
        number=number,
        total=TOUR_STEPS,
        key=step.key,
        title=_(step.title),
        focus=step.focus,
        target=step.element,
        sentences=say.sentences,
        numbers=say.numbers,
        cell=cell,
        cell_label=f"{cell[0] + 1},{cell[1] + 1}" if cell else "",
        prev=steps[number - 2].link if number > 1 else None,
        next=steps[number].link if number < TOUR_STEPS else None,
        end=link(state, step.focus, tour=None),
        steps=steps,
    )
