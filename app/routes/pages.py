"""The explainer page. One route, `/`: the full page, or with htmx only the fragment that changed.

request -> parse_state -> tokenize -> trace (cached) -> sampling -> views -> template
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2_fragments import render_block

from app.loading import Serving
from app.state import MAX_GENERATED, REFERENCE_PROMPTS, STEPS, TEMPERATURE, Limits, Parsed, State, parse_state
from app.views.attention import attention_view
from app.views.embedding import embedding_view
from app.views.links import link
from app.views.mlp import mlp_view
from app.views.output import draw, lens_view, output_view
from app.views.overview import overview_view
from app.views.residual import residual_view
from app.views.tokens import chips
from model import Token, Trace

router = APIRouter()

PANELS = {
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
        result.errors.append("This text gives no tokens; type some words.")
        return result
    if len(prompt) > limit:
        result.errors.append(
            f"The text is {len(prompt)} tokens long; this server takes at most {limit}. "
            "Shorten it and try again."
        )
        return result
    if len(prompt) + len(state.gen) > limit:
        state = replace(state, gen=state.gen[: limit - len(prompt)])
        result.notices.append(f"Only {limit} tokens fit; later generated tokens were dropped.")

    action = parsed.action
    if action in ("generate", "greedy"):
        ids = [t.id for t in prompt] + list(state.gen)
        if len(ids) >= limit:
            result.notices.append(f"The text has reached {limit} tokens, the most this server runs.")
        elif len(state.gen) >= MAX_GENERATED:
            result.notices.append(
                f"{MAX_GENERATED} tokens have been generated, the most one page keeps. "
                "Press Run with the text you like to go on from there."
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
            f"There is no token {state.token}: the text has {len(ids)}. Showing the last one."
        )
        state = replace(state, token=None)
    result.state = state
    result.tokens = prompt + [gpt2.tokenizer.token(i) for i in state.gen]
    # the logits before each generated token, shortest prefix first, so each trace extends the one before
    result.step_logits = [gpt2.trace(ids[:k]).logits for k in range(len(prompt), len(ids))]
    result.trace = gpt2.trace(ids)
    return result


def context(request: Request, r: Run) -> dict[str, Any]:
    """Everything the page template prints."""
    serving: Serving = request.app.state.serving
    gpt2 = serving.gpt2
    state = r.state
    ctx: dict[str, Any] = {
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
        "trace": r.trace,
        "oob": False,
    }
    if r.trace is None:
        return ctx
    tok = gpt2.tokenizer.token
    s = draw(r.trace, state)
    ctx.update(
        chips=chips(r.tokens, state, len(state.gen)),
        overview=overview_view(r.trace, state, s, tok),
        output=output_view(r.trace, state, s, tok),
        lens=lens_view(r.trace, state, tok, r.step_logits),
        panel=PANELS[state.view](r.trace, state, tok),
        views=[(v, link(state, "panel", view=v), v == state.view) for v in PANELS],
    )
    return ctx


def live_context(request: Request, r: Run) -> dict[str, Any]:
    """Only what a sampling control changes: the output panel and the overview's probability ribbons."""
    ctx: dict[str, Any] = {
        "state": r.state,
        "errors": r.errors,
        "notices": r.notices,
        "oob": True,
        "trace": r.trace,
    }
    if r.trace is not None:
        tok = request.app.state.serving.gpt2.tokenizer.token
        s = draw(r.trace, r.state)
        ctx.update(
            overview=overview_view(r.trace, r.state, s, tok),
            output=output_view(r.trace, r.state, s, tok),
            expand_link=r.state.url("overview", expand=not r.state.expand),
        )
    return ctx


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> Response:
    """The explainer. Every control is a query parameter; see app/state.py."""
    app = request.app
    settings = app.state.settings
    serving: Serving = app.state.serving
    parsed = parse_state(request.query_params, limits_of(serving, settings.max_chars))
    r = run(serving, parsed, settings.max_tokens)
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
    headers["Vary"] = "HX-Request, HX-Target"
    return HTMLResponse(html, status_code=status, headers=headers)


@router.get("/api", response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    """The JSON API as a plain page, from the OpenAPI schema (the Swagger UI at /docs needs a CDN)."""
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
