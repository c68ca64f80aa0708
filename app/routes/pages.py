"""The explainer page. One route, `/`: the full page, or with htmx only the fragment that changed.

request -> parse_state -> tokenize -> trace (cached) -> sampling -> views -> template
The page's big parts (tokens, overview, panel, lens) are views + templates drawn once per text, view and
language for every sampling (`pieces`, app/pieces.py); the rest is drawn per request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2_fragments import render_block
from markupsafe import Markup

from app import i18n
from app.i18n import _
from app.loading import Serving
from app.pieces import PieceCache
from app.state import (
    MAX_GENERATED,
    REFERENCE_PROMPTS,
    SAMPLING_MARK,
    STEPS,
    TEMPERATURE,
    Limits,
    Parsed,
    State,
    parse_state,
)
from app.views.attention import attention_view
from app.views.embedding import embedding_view
from app.views.links import Downloads, downloads, link
from app.views.mlp import mlp_view
from app.views.numbers import table_names
from app.views.output import draw, lens_view, output_view
from app.views.overview import Fan, fan_view, layout, overview_view
from app.views.residual import residual_view
from app.views.tokens import chip_groups, chips, end_of_text_note
from app.views.tour import link_to, tour_target, tour_view
from model import Sampling, Token, Trace

router = APIRouter()

PANELS: dict[str, Callable[..., Any]] = {
    "embedding": embedding_view,
    "attention": attention_view,
    "mlp": mlp_view,
    "residual": residual_view,
}


@dataclass
class Run:
    """What one request computed: the state after any button, its tokens and trace, and messages."""

    state: State
    errors: list[str]
    notices: list[str] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    trace: Trace | None = None
    step_logits: list[Any] = field(default_factory=list)


def limits_of(serving: Serving, max_chars: int) -> Limits:
    cfg = serving.gpt2.config
    return Limits(
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        vocab_size=cfg.vocab_size,
        max_chars=max_chars,
        model=serving.gpt2.name,
    )


def language_of(request: Request) -> str:
    """`lang=` in the URL, else the browser's Accept-Language, else English."""
    asked = request.query_params.get("lang", "")
    return i18n.normalize(asked) or i18n.negotiate(request.headers.get("accept-language"))


def run(serving: Serving, parsed: Parsed, max_tokens: int) -> Run:
    """Tokenize, apply the button pressed (Generate, Greedy, Undo, Clear) and trace the result."""
    gpt2 = serving.gpt2
    state = parsed.state
    result = Run(state=state, errors=list(parsed.messages))
    if not parsed.text_ok:
        return result
    prompt = gpt2.tokenize(state.text)
    limit = min(max_tokens, gpt2.config.n_positions)
    if not prompt:
        result.errors.append(_("This text gives no tokens; type some words."))
        return result
    if len(prompt) > limit:
        result.errors.append(
            _(
                "The text is {n} tokens long; this server takes at most {limit}. Shorten it and try again."
            ).format(n=len(prompt), limit=limit)
        )
        return result
    if len(prompt) + len(state.gen) > limit:
        state = replace(state, gen=state.gen[: limit - len(prompt)])
        result.notices.append(
            _("Only {limit} tokens fit; later generated tokens were dropped.").format(limit=limit)
        )

    action = parsed.action
    if action in ("generate", "greedy"):
        ids = [t.id for t in prompt] + list(state.gen)
        if len(ids) >= limit:
            result.notices.append(
                _("The text has reached {limit} tokens, the most this server runs.").format(limit=limit)
            )
        elif len(state.gen) >= MAX_GENERATED:
            result.notices.append(
                _(
                    "{n} tokens have been generated, the most one page keeps. "
                    "Press Run with the text you like to go on from there."
                ).format(n=MAX_GENERATED)
            )
        else:
            s = draw(gpt2.trace(ids), state, greedy=action == "greedy")
            state = replace(state, gen=(*state.gen, s.token), token=None)
    elif action == "undo":
        state = replace(state, gen=state.gen[:-1], token=None)
    elif action == "clear":
        state = replace(state, gen=(), token=None)

    ids = [t.id for t in prompt] + list(state.gen)
    if state.token is not None and state.token > len(ids):
        result.errors.append(
            _("There is no token {token}: the text has {n}. Showing the last one.").format(
                token=state.token, n=len(ids)
            )
        )
        state = replace(state, token=None)
    result.state = state
    result.tokens = prompt + [gpt2.tokenizer.token(i) for i in state.gen]
    # the logits before each generated token, shortest prefix first, so each trace extends the one before
    result.step_logits = [gpt2.trace(ids[:k]).logits for k in range(len(prompt), len(ids))]
    result.trace = gpt2.trace(ids)
    return result


# the controls a tour step sets: a URL that gives none of them gets the step's own
TOUR_CONTROLS = frozenset({"view", "layer", "head", "step", "token", "expand", "top_k", "top_p"})


def permalink(request: Request, state: State) -> str:
    return str(request.base_url).rstrip("/") + state.url()


def common_context(request: Request, r: Run) -> dict[str, Any]:
    """What both the full page and a live update print: the permalink, the tour card, the language."""
    state = r.state
    ctx: dict[str, Any] = {
        "state": state,
        "errors": r.errors,
        "notices": r.notices,
        "trace": r.trace,
        "permalink": permalink(request, state),
        "tour": None,
        "languages": [
            (code, name, state.url(lang=code), code == i18n.current())
            for code, (_catalog, name) in i18n.LANGUAGES.items()
        ],
    }
    if r.trace is not None:
        ctx["tour_start"] = link_to(state, tour_target(r.trace, state, 1))
        if state.tour is not None:
            tok = request.app.state.serving.gpt2.tokenizer.token
            ctx["tour"] = tour_view(r.trace, state, draw(r.trace, state), tok)
    return ctx


def context(request: Request, r: Run) -> dict[str, Any]:
    """Everything the page template prints."""
    serving: Serving = request.app.state.serving
    gpt2 = serving.gpt2
    state = r.state
    ctx = common_context(request, r)
    ctx.update(
        {
            "state": state,
            "params": state.params(),
            "errors": r.errors,
            "notices": r.notices,
            "model": gpt2,
            "source": serving.source,
            "trained": serving.trained,
            "banner": request.app.state.banner,
            "prompts": [(p, link(state, "", text=p, gen=(), token=None)) for p in REFERENCE_PROMPTS],
            "temperature_range": TEMPERATURE,
            "steps": STEPS,
            "present_link": state.url(present=not state.present),
            "expand_link": state.url("overview", expand=not state.expand),
            "oob": False,
        }
    )
    if r.trace is None:
        return ctx
    tok = gpt2.tokenizer.token
    s = draw(r.trace, state)
    ctx.update(
        output=output_view(r.trace, state, s, tok),
        pieces=pieces(request, r, s, ctx["tour"]),
        exports=exports(state, r.trace.config, ("output",)),
    )
    return ctx


# The big parts of a page that do not depend on the sampling controls: drawn once per text, view and
# language, and shared by every student who opens them (their links carry each student's own controls).
PIECES = ("tokens", "overview", "panel", "lens")
FAN_HOLE = f"<!--fan {secrets.token_hex(8)}-->"  # where the overview's ribbons go


def piece_context(
    r: Run, state: State, fan: Fan | Markup, tok: Callable[[int], Token], tour: Any
) -> dict[str, Any]:
    """What the pieces print, for `state`."""
    trace = r.trace
    assert trace is not None
    all_chips = chips(r.tokens, state, len(state.gen))
    if state.view == "attention":
        panel = attention_view(trace, state, tok, mark=tour.cell if tour is not None else None)
    else:
        panel = PANELS[state.view](trace, state, tok)
    return {
        "state": state,
        "tour": tour,
        "oob": False,
        "chips": all_chips,
        "chip_groups": chip_groups(r.tokens, all_chips),
        "end_of_text": end_of_text_note(state.text),
        "overview": overview_view(trace, state, fan, tok),
        "lens": lens_view(trace, state, tok, r.step_logits),
        "panel": panel,
        "views": [(v, link(state, "panel", view=v), v == state.view) for v in PANELS],
        "exports": exports(state, trace.config, ("overview", "tokens", "lens", "panel")),
    }


def pieces(request: Request, r: Run, s: Sampling, tour: Any) -> dict[str, Markup]:
    """The pieces of the page for this request, each as markup.

    Drawn for the state with its sampling controls left as a mark (`State.marked`) and kept in the
    app's PieceCache (the text and any generated tokens are part of the state); a request fills in its
    own controls and its own ribbons. A tour step marks cells and quotes numbers of its own: it is drawn
    for the request alone, as is everything when the piece cache is off."""
    assert r.trace is not None
    env = request.app.state.templates
    tok = request.app.state.serving.gpt2.tokenizer.token
    state = r.state
    fan = fan_view(state, s, tok, layout(r.trace.n_tokens))
    kept: PieceCache | None = request.app.state.piece_cache
    if tour is not None or kept is None or SAMPLING_MARK in state.text:
        ctx = piece_context(r, state, fan, tok, tour)
        return {name: Markup(env.get_template(f"{name}.html").render(ctx)) for name in PIECES}

    marked = state.marked()

    def draw_marked() -> dict[str, str]:
        ctx = piece_context(r, marked, Markup(FAN_HOLE), tok, None)
        return {name: env.get_template(f"{name}.html").render(ctx) for name in PIECES}

    drawn = kept.get((i18n.current(), marked), draw_marked)
    query = state.sampling_query()
    out = {name: Markup(markup.replace(SAMPLING_MARK, query)) for name, markup in drawn.items()}
    out["overview"] = Markup(str.replace(out["overview"], FAN_HOLE, str(fan.svg()), 1))
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


def live_context(request: Request, r: Run) -> dict[str, Any]:
    """What a sampling control changes: the output panel, the overview's ribbons and their download links,
    the permalink, the tour. The rest of the overview does not depend on sampling and is left as it is."""
    ctx = common_context(request, r)
    ctx["oob"] = True
    if r.trace is not None:
        tok = request.app.state.serving.gpt2.tokenizer.token
        s = draw(r.trace, r.state)
        ctx.update(
            fan=fan_view(r.state, s, tok, layout(r.trace.n_tokens)),
            output=output_view(r.trace, r.state, s, tok),
            exports=exports(r.state, r.trace.config, ("overview", "output")),
        )
    return ctx


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> Response:
    """The explainer. Every control is a query parameter; see app/state.py."""
    with i18n.use(language_of(request)):
        return _page(request)


def _page(request: Request) -> Response:
    app = request.app
    settings = app.state.settings
    serving: Serving = app.state.serving
    parsed = parse_state(request.query_params, limits_of(serving, settings.max_chars))
    r = run(serving, parsed, settings.max_tokens)
    if r.trace is not None and r.state.tour is not None and not parsed.given & TOUR_CONTROLS:
        r.state = tour_target(r.trace, r.state, r.state.tour)  # a bare tour link opens what the step shows
    htmx = request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers
    url = r.state.url()
    if parsed.action and not htmx and not r.errors and not r.notices:
        return RedirectResponse(url, status_code=303)  # a button press becomes a permalink
    status = 400 if r.errors else 200
    env = app.state.templates
    if htmx and request.headers.get("HX-Target") == "output":
        html = render_block(env, "page.html", "live", live_context(request, r))
        headers = {"HX-Replace-Url": url}
    elif htmx:
        html = render_block(env, "page.html", "page", context(request, r))
        headers = {"HX-Push-Url": url}
    else:
        html = env.get_template("page.html").render(context(request, r))
        headers = {}
    # every request header the answer depends on, so a shared cache (deploy/) keeps one copy of each
    headers["Vary"] = "HX-Request, HX-Target, HX-History-Restore-Request, Accept-Language"
    return HTMLResponse(html, status_code=status, headers=headers)


@router.api_route("/api", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    """The JSON API as a plain page, from the OpenAPI schema (with no script at all, unlike /docs)."""
    schema = request.app.openapi()
    endpoints = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            params = [
                (
                    p["name"],
                    p.get("required", False),
                    p.get("description", ""),
                    p.get("schema", {}).get("default"),
                )
                for p in op.get("parameters", [])
            ]
            endpoints.append((method.upper(), path, op.get("summary", ""), op.get("description", ""), params))
    html = request.app.state.templates.get_template("api.html").render(
        endpoints=endpoints, info=schema["info"]
    )
    return HTMLResponse(html)
