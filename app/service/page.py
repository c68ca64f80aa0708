"""Checked state -> trace -> page model: everything the explainer page prints, and its pieces.

`page(site, parsed, lang, target, base)` is the whole page route without HTTP: run the checked state
(app/service/run.py), open a bare tour link at its step, and build what the template prints. The page's big
parts (tokens, overview, panel, lens) are drawn once per text, view and language for every sampling and kept
(app/pieces.py); the rest is drawn per request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from jinja2_fragments import render_block
from markupsafe import Markup

from app import i18n
from app.i18n import _
from app.pieces import MARK, fill, marked
from app.service.answer import VARY, Answer
from app.service.compare import compare_page
from app.service.intervene import add_sweep
from app.service.run import Run, run
from app.service.site import Site
from app.state import COMPARE, REFERENCE_PROMPTS, STEPS, Parsed, State, fmt_float
from app.views.ablation import before_after, head_switches, lens_pairs, overview_change, strip_view
from app.views.attention import attention_view
from app.views.embedding import embedding_view
from app.views.format import show
from app.views.heads import heads_view
from app.views.kv import kv_view
from app.views.links import Downloads, downloads, link
from app.views.mlp import mlp_view
from app.views.motion import player
from app.views.numbers import table_names
from app.views.output import draw, draw_stops, lens_view, output_stages
from app.views.overview import fan_stages, layout, overview_view
from app.views.present import opens_panel, turns
from app.views.residual import residual_view
from app.views.slider import STOPS, TOP_K_SLIDER, TOP_P_SLIDER, chosen, slider_positions, stops_for
from app.views.tokens import chip_groups, chips, end_of_text_note
from app.views.tour import Tour, link_to, tour_target, tour_view
from app.views.weights import weights_view
from model import Token
from model.mapped import MappedWeights

# The detail panels, by the name the URL gives them (`view=`).
DETAIL_VIEWS: dict[str, Callable[..., Any]] = {
    "embedding": embedding_view,
    "attention": attention_view,
    "mlp": mlp_view,
    "residual": residual_view,
    "heads": heads_view,  # with the run's sweep: see `detail_panel`
    "kv": kv_view,
}
# the controls a tour step sets: a URL that gives none of them gets the step's own
TOUR_CONTROLS = frozenset({"view", "layer", "head", "step", "token", "expand", "weights", "top_k", "top_p"})
TOUR_CONTROLS |= {"ablate", "text2"}
# The big parts of a page that do not depend on the sampling controls: drawn once per text, view and
# language, and shared by every student who opens them (their links carry each student's own controls).
PIECES = ("tokens", "overview", "panel", "lens")
FAN_HOLE = f"<!--fan {secrets.token_hex(8)}-->"  # where the overview's ribbons go


def page(site: Site, parsed: Parsed, lang: str, target: str | None, base: str) -> Answer:
    """The explainer for a checked state, in `lang`. `target` is htmx's target ("output" for a live
    sampling change, another id for a partial page, None for a full page); `base` is the address permalinks
    start with ("" for relative ones: app/hosts.py)."""
    with i18n.use(lang):
        limits = (site.settings.max_tokens, site.settings.max_trace_mb)
        r = run(site.serving, parsed, *limits)
        if r.trace is not None and r.state.tour is not None and not parsed.given & TOUR_CONTROLS:
            # a bare tour link opens what the step shows
            opened = tour_target(r.trace, r.state, r.state.tour)
            if opened.view == COMPARE:  # the step about patching: two prompts, a page of their own
                return compare_page(site, replace(parsed, state=opened), lang, target, base)
            if opened.ablate != r.state.ablate or opened.gen != r.state.gen:
                # a step that switches a head off (or back on), or generates a token: run again
                r = run(site.serving, replace(parsed, state=opened, action=None), *limits)
            r.state = opened
        url = r.state.url()
        if parsed.action and target is None and not r.errors and not r.notices:
            return Answer(redirect=url)  # a button press becomes a permalink
        if target != "output":
            add_sweep(site.serving.gpt2, site.sweeps, r, r.state.view)  # the heads panel's (view=heads)
        env = site.templates
        if target == "output":  # top-k, top-p or the seed moved: the output panel at every temperature
            html = render_block(
                env, "page.html", "live", {**live_context(site, r, base), "slid": parsed.slid}
            )
            headers = {"HX-Replace-Url": url}
        elif target == "share":  # the temperature slider settled: its picture is already shown
            html = render_block(env, "page.html", "settle", settle_context(site, r, base))
            headers = {"HX-Replace-Url": url}
        elif target is not None:
            html = render_block(env, "page.html", "page", context(site, r, base))
            headers = {"HX-Push-Url": url}
        else:
            # a link opened in full that names a panel scrolls to it (the focus goes there: no script)
            html = env.get_template("page.html").render({**context(site, r, base), "scroll_to_panel": True})
            headers = {}
    # every request header the answer depends on, so a shared cache (deploy/) keeps one copy of each
    headers["Vary"] = VARY
    if r.sweep_busy:  # drawn without its sweep for now: no cache keeps this answer
        headers["Cache-Control"] = "no-store"
    return Answer(html=html, status=400 if r.errors else 200, headers=headers)


def common_context(site: Site, r: Run, base: str) -> dict[str, Any]:
    """What both the full page and a live update print: the permalink, the tour card, the language."""
    state = r.state
    ctx: dict[str, Any] = {
        "state": state,
        "params": state.params(),
        "positions": slider_positions(state.top_k, state.top_p),
        "slid": frozenset(),  # the filters set by their slider (a live answer sends their typed field back)
        "top_k_slider": (*TOP_K_SLIDER, 1),  # min, max, step
        "top_p_slider": TOP_P_SLIDER,
        "strip": strip_view(state),
        "errors": r.errors,
        "notices": r.notices,
        "trace": r.trace,
        "permalink": base + state.url(),
        "tour": None,
        "languages": [
            (code, name, state.url(lang=code), code == i18n.current())
            for code, (_catalog, name) in i18n.LANGUAGES.items()
        ],
    }
    if r.trace is not None:
        ctx["tour_start"] = link_to(state, tour_target(r.trace, state, 1))
        if state.tour is not None:
            tok = site.serving.gpt2.tokenizer.token
            s = draw(r.trace, state)
            ctx["tour"] = tour_view(r.trace, state, s, tok, clean=r.clean, sweep=r.sweep)
    return ctx


def context(site: Site, r: Run, base: str) -> dict[str, Any]:
    """Everything the page template prints."""
    gpt2 = site.serving.gpt2
    state = r.state
    ctx = common_context(site, r, base)
    ctx.update(
        {
            "model": gpt2,
            "source": site.serving.source,
            "trained": site.serving.trained,
            "banner": site.banner,
            "prompts": [(p, link(state, "", text=p, gen=(), token=None)) for p in REFERENCE_PROMPTS],
            "steps": STEPS,
            "present_link": state.url(present=not state.present),
            "opens_panel": opens_panel(state) and state.tour is None,
            "scroll_to_panel": False,
            "turns": turns(state, gpt2.config.n_layer, gpt2.config.n_head),
            "expand_link": state.url("overview", expand=not state.expand),
            "oob": False,
        }
    )
    ctx["stops"] = stops_for(state.temperature)
    ctx["chosen_stop"] = chosen(ctx["stops"], state.temperature)
    if r.trace is None:
        return ctx
    drawn = sampling_pieces(site, r)
    ctx.update(
        output=output_context(site, r),
        before_after=ablated_output(site, r),
        stage=drawn["stage"],
        pieces=pieces(site, r, drawn["fan"], ctx["tour"]),
        exports=exports(state, r.trace.config, ("output",)),
    )
    return ctx


def output_context(site: Site, r: Run) -> dict[str, Any]:
    """What the output panel prints around its pre-drawn stage: the last token, the vocabulary size, and the
    sampling of the stop the page opens on (for its data attributes)."""
    assert r.trace is not None
    tok = site.serving.gpt2.tokenizer.token
    s = draw(r.trace, r.state)
    return {
        "last_label": show(tok(r.trace.ids[-1]).label),
        "vocab": int(r.trace.logits.size),
        "temperature": fmt_float(r.state.temperature),
        "sampled_id": s.token,
        "kept_count": s.kept_count,
        "kept_mass": s.kept_mass,
    }


def sampling_pieces(site: Site, r: Run) -> dict[str, Markup]:
    """The output panel's stage and the overview's fan at every stop of the temperature slider, drawn once
    per text (with its generated tokens), top-k, top-p and seed, in the reader's language, and shared by
    every student who opens them: moving the slider then asks nothing of the server."""
    trace, state = r.trace, r.state
    assert trace is not None
    tok = site.serving.gpt2.tokenizer.token

    def draw_all() -> dict[str, str]:
        drawn = draw_stops(trace, state)
        stages = output_stages(trace, state, tok, drawn)
        fan = fan_stages(drawn.stops, drawn.samplings, tok, layout(trace.n_tokens))
        chain = player("chain", _("from logits to the next token"), 5)
        stage = site.templates.get_template("output_stage.html").render(stages=stages, chain=chain)
        return {"fan": str(fan.svg()), "stage": stage}

    extra = None if state.temperature in STOPS else state.temperature
    key = (
        *(
            "sampling",
            i18n.current(),
            state.model,
            state.text,
            state.gen,
            state.ablate,
            state.patch,
            state.text2,
        ),
        *(state.top_k, state.top_p, state.seed, extra),
    )
    kept = site.pieces
    made = draw_all() if kept is None or MARK in state.text else kept.get(key, draw_all)  # as app/pieces.py
    return {name: Markup(markup) for name, markup in made.items()}


def piece_context(
    r: Run,
    state: State,
    fan: Markup,
    tok: Callable[[int], Token],
    tour: Tour | None,
    stored: MappedWeights,
) -> dict[str, Any]:
    """What the pieces print, for `state`."""
    trace = r.trace
    assert trace is not None
    all_chips = chips(r.tokens, state, len(state.gen))
    if state.view == "attention":
        panel = attention_view(trace, state, tok, mark=tour.cell if tour is not None else None)
    else:
        panel = detail_panel(r, state, tok)
    return {
        "state": state,
        "tour": tour,
        "oob": False,
        "chips": all_chips,
        "chip_groups": chip_groups(r.tokens, all_chips),
        # after Generate, the drawn token slides into the text (static/motion.css "enter")
        "arrive": player("arrive", _("the drawn token joins the text"), 2) if state.gen else None,
        "end_of_text": end_of_text_note(state.text),
        "overview": overview_view(trace, state, fan, tok),
        "lens": lens_view(trace, state, tok, r.step_logits),
        "lens_pairs": lens_pairs(r.clean, trace, tok) if r.clean is not None else None,
        # issue 17's hooks: a switch per head of the open block, the overview's line with heads off
        "head_switches": head_switches(state, trace.config.n_head),
        "overview_change": overview_change(r.clean, trace, state, tok) if r.clean is not None else None,
        "panel": panel,
        "weights": weights_view(trace, state, stored, tok),
        "views": [(v, link(state, "panel", view=v), v == state.view) for v in DETAIL_VIEWS],
        "exports": exports(state, trace.config, ("overview", "tokens", "lens", "panel")),
    }


def detail_panel(r: Run, state: State, tok: Callable[[int], Token], view: str | None = None) -> Any:
    """The view-model of detail panel `view` (by default the open one); the heads panel reads the run's
    sweep."""
    assert r.trace is not None
    view = view or state.view
    if view == "heads":
        return heads_view(r.trace, state, tok, r.sweep, r.sweep_problem)
    return DETAIL_VIEWS[view](r.trace, state, tok)


def pieces(site: Site, r: Run, fan: Markup, tour: Tour | None) -> dict[str, Markup]:
    """The pieces of the page for this request, each as markup.

    Drawn for the state with its sampling controls left as a mark (app/pieces.py) and kept in the site's
    piece cache (the text and any generated tokens are part of the state); a request fills in its own
    controls and its own ribbons (`fan`, from `sampling_pieces`). A tour step marks cells and quotes
    numbers of its own: it is drawn for the request alone, as is everything when the piece cache is off."""
    assert r.trace is not None
    env = site.templates
    tok = site.serving.gpt2.tokenizer.token
    stored = site.serving.gpt2.weights_on_disk
    state = r.state
    kept = site.pieces
    if tour is not None or kept is None or MARK in state.text or r.sweep_busy:
        ctx = piece_context(r, state, fan, tok, tour, stored)
        return {name: Markup(env.get_template(f"{name}.html").render(ctx)) for name in PIECES}

    mark = marked(state)

    def draw_marked() -> dict[str, str]:
        ctx = piece_context(r, mark, Markup(FAN_HOLE), tok, None, stored)
        return {name: env.get_template(f"{name}.html").render(ctx) for name in PIECES}

    drawn = kept.get((i18n.current(), mark), draw_marked)
    out = {name: Markup(fill(markup, state)) for name, markup in drawn.items()}
    out["overview"] = Markup(str.replace(out["overview"], FAN_HOLE, str(fan), 1))
    return out


def exports(
    state: State, cfg: Any, panels: tuple[str, ...] = ("overview", "tokens", "output", "lens", "panel")
) -> dict[str, Downloads]:
    """The download links of the given panels; "panel" is the open detail panel."""
    out = {}
    for key in panels:
        panel = state.view if key == "panel" else key
        out[key] = downloads(state, panel, table_names(panel, state, cfg))
    return out


def ablated_output(site: Site, r: Run) -> Any:
    """The output with heads switched off beside the original (None when every head is on), at the state's
    temperature and filters."""
    if r.clean is None or r.trace is None:
        return None
    tok = site.serving.gpt2.tokenizer.token
    return before_after(draw(r.clean, r.state), draw(r.trace, r.state), r.state, tok)


def live_context(site: Site, r: Run, base: str) -> dict[str, Any]:
    """What top-k, top-p or the seed change: the output panel and the overview's ribbons at every
    temperature, their download links, the permalink, the tour. The rest of the overview does not depend on
    sampling and is left as it is."""
    ctx = settle_context(site, r, base)
    ctx["vocab"] = site.serving.gpt2.config.vocab_size  # the top-k field's bound, with or without a trace
    if r.trace is not None:
        drawn = sampling_pieces(site, r)
        fan = Markup(str(drawn["fan"]).replace('<svg id="fan"', '<svg id="fan" hx-swap-oob="true"', 1))
        ctx.update(fan=fan, stage=drawn["stage"], output=output_context(site, r))
    return ctx


def settle_context(site: Site, r: Run, base: str) -> dict[str, Any]:
    """What the temperature slider changes once it settles (its picture is already on the page): the
    permalink, the download links that carry the controls, the messages and the tour."""
    ctx = common_context(site, r, base)
    ctx["oob"] = True
    ctx["before_after"] = None
    if r.trace is not None:
        ctx["exports"] = exports(r.state, r.trace.config, ("overview", "output"))
        ctx["before_after"] = ablated_output(site, r)  # at the temperature the slider settled on
    return ctx
