"""Checked state -> the two runs of `view=compare` -> the compare page.

Prompt A is `text`, prompt B `text2`; both run with the heads `ablate=` switches off, if any. `patch=s.t`
copies A's residual stream at site s (0: the embeddings; s: after block s) and token t (from 1, counted from
the start in both prompts, so it must exist in both) into B's run. The grid patches every site and every
position both prompts have, packed and bounded (app/service/intervene.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from app import i18n
from app.i18n import _
from app.service.answer import VARY, Answer
from app.service.checks import token_problem
from app.service.intervene import SweepRefused, ablated, patch_grid, patched
from app.service.run import token_limit
from app.service.site import Site
from app.state import REFERENCE_PROMPTS, Parsed, State
from app.views.compare import Comparison, compare_view
from app.views.output import draw
from app.views.tour import tour_view
from model import Intervention, PatchSweep, Trace

# pairs to start from: one word changed
EXAMPLES = (
    ("The doctor said that he", "The doctor said that she"),
    ("The Eiffel Tower is in the city of", "The Colosseum is in the city of"),
    (
        "When Mary and John went to the store, John gave a drink to",
        "When Mary and John went to the store, Mary gave a drink to",
    ),
)


@dataclass
class Pair:
    """What one compare request computed: the state, its messages, and the runs that could be made."""

    state: State
    errors: list[str]
    a: Trace | None = None
    b: Trace | None = None
    patched: Trace | None = None
    sweep: PatchSweep | None = None
    grid_problem: str = ""
    busy: bool = False  # the grid was left out because the server was busy: keep no copy of the answer
    notes: list[str] = field(default_factory=list)


def run_pair(site: Site, parsed: Parsed) -> Pair:
    """Trace both prompts (and B with the patch, and the grid), or say why not."""
    gpt2 = site.serving.gpt2
    state = parsed.state
    pair = Pair(state=state, errors=list(parsed.messages))
    if not parsed.text_ok or not parsed.text2_ok or not state.text2:
        return pair
    limit = token_limit(site.serving, site.settings.max_tokens, site.settings.max_trace_mb)
    ids_a = [t.id for t in gpt2.tokenize(state.text)]
    ids_b = [t.id for t in gpt2.tokenize(state.text2)]
    if (problem := token_problem(len(ids_a), limit)) is not None:
        pair.errors.append(problem.reader())
    if (problem := token_problem(len(ids_b), limit)) is not None:
        pair.errors.append(_("Second prompt: {problem}").format(problem=problem.reader()))
    if pair.errors and not (ids_a and ids_b and max(len(ids_a), len(ids_b)) <= limit):
        return pair
    off = ablated(state)
    base = Intervention(ablate=off) if off else None
    pair.a, pair.b = gpt2.trace(ids_a, base), gpt2.trace(ids_b, base)
    shared = min(len(ids_a), len(ids_b))
    if state.patch is not None:
        where, token = state.patch
        if token > shared:
            pair.errors.append(
                _(
                    "There is no token {token} in both prompts: A has {a} tokens and B {b}. A patch copies "
                    "A's vector at a position into B's run at the same position (counted from the start), "
                    "so it goes at a position both have: 1 to {shared}."
                ).format(token=token, a=len(ids_a), b=len(ids_b), shared=shared)
            )
            pair.state = state = replace(state, patch=None)
        else:
            pair.patched = gpt2.trace(ids_b, patched(pair.a, where, token - 1, off))
    top = int(pair.a.logit_order()[0])
    try:
        pair.sweep = patch_grid(gpt2, site.sweeps, ids_b, pair.a, top, off)
    except SweepRefused as err:
        pair.grid_problem = err.reader()
        pair.busy = err.kind == "busy"
    return pair


def compare_context(site: Site, pair: Pair, base: str) -> dict[str, Any]:
    state = pair.state
    tok = site.serving.gpt2.tokenizer.token
    comparison: Comparison | None = None
    tour = None
    if pair.a is not None and pair.b is not None:
        comparison = compare_view(state, pair.a, pair.b, tok, pair.patched, pair.sweep, pair.grid_problem)
        if state.tour is not None:  # the tour's step about patching (app/views/tour_intervene.py)
            tour = tour_view(pair.a, state, draw(pair.a, state), tok, other=pair.b, grid=pair.sweep)
    hidden = {k: v for k, v in state.params().items() if k not in ("text", "text2", "layer", "head", "patch")}
    patch_hidden = {k: v for k, v in state.params().items() if k != "patch"}
    return {
        "state": state,
        "errors": pair.errors,
        "notices": pair.notes,
        "oob": False,
        "c": comparison,
        "tour": tour,
        "model": site.serving.gpt2,
        "trained": site.serving.trained,
        "banner": site.banner,
        "permalink": base + state.url(),
        "hidden": hidden,
        "patch_hidden": patch_hidden,
        "examples": [(a, b, state.url(text=a, text2=b, patch=None, gen=())) for a, b in EXAMPLES],
        "prompts": REFERENCE_PROMPTS,
        "n_layer": site.serving.gpt2.config.n_layer,
        "n_head": site.serving.gpt2.config.n_head,
        "sweep_tokens": site.sweeps.max_tokens,
        "explainer": state.url(view="attention", patch=None),
        "languages": [
            (code, name, state.url(lang=code), code == i18n.current())
            for code, (_catalog, name) in i18n.LANGUAGES.items()
        ],
    }


def compare_page(site: Site, parsed: Parsed, lang: str, target: str | None, base: str) -> Answer:
    """The compare view for a checked state, in `lang`. An htmx request is sent to the full page (the
    compare view is a page of its own, not a fragment of the explainer)."""
    with i18n.use(lang):
        pair = run_pair(site, parsed)
        url = pair.state.url()
        if parsed.respelled and not pair.errors:
            return Answer(redirect=url)  # the patch form's fields become the permalink's patch=
        if target is not None:
            return Answer(status=200, headers={"HX-Redirect": url})
        html = site.templates.get_template("compare.html").render(compare_context(site, pair, base))
    headers = {"Vary": VARY}
    if pair.busy:
        headers["Cache-Control"] = "no-store"
    return Answer(html=html, status=400 if pair.errors else 200, headers=headers)
