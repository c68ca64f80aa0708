"""Request -> checked state -> trace: what one request computes before anything is drawn.

`run(serving, parsed, max_tokens)` tokenizes the checked state's text, applies the button pressed
(Generate, Greedy, Undo, Clear) and traces the result; its messages are in the reader's language. The page,
its live updates and the exports all go through it (app/service/page.py, app/service/export.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from app.i18n import _
from app.loading import Serving
from app.service.checks import token_problem
from app.service.intervene import intervention_of
from app.state import MAX_GENERATED, Limits, Parsed, State
from app.views.output import draw
from app.views.tour import TOUR_STEPS
from model import HeadSweep, Token, Trace
from model.trace import tokens_within


@dataclass
class Run:
    """What one request computed: the state after any button, its tokens and trace, and messages. With heads
    switched off (`ablate=`), `trace` is the run with them off and `clean` the run without."""

    state: State
    errors: list[str]
    notices: list[str] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    trace: Trace | None = None
    step_logits: list[Any] = field(default_factory=list)
    clean: Trace | None = None
    sweep: HeadSweep | None = None  # view=heads: each head alone switched off (app/service/intervene.py)
    sweep_problem: str = ""  # why there is no sweep, for the panel
    sweep_busy: bool = False  # the sweep was left out because the server was busy: keep no copy of this


def limits_of(serving: Serving, max_chars: int) -> Limits:
    """What the served model and the settings allow, for `parse_state`."""
    cfg = serving.gpt2.config
    return Limits(
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        vocab_size=cfg.vocab_size,
        max_chars=max_chars,
        model=serving.gpt2.name,
        tour_steps=TOUR_STEPS,
    )


def token_limit(serving: Serving, max_tokens: int, max_trace_mb: int = 0) -> int:
    """The longest text (prompt and generated tokens) this server traces: `max_tokens`, the model's context,
    and the most tokens whose trace fits in `max_trace_mb` (a trace grows with the square of its length:
    GPT-2 small's is 312 MiB at 256 tokens, 3 GiB at 1024)."""
    cfg = serving.gpt2.config
    limit = min(max_tokens, cfg.n_positions)
    return min(limit, tokens_within(cfg, max_trace_mb * 2**20)) if max_trace_mb else limit


def run(serving: Serving, parsed: Parsed, max_tokens: int, max_trace_mb: int = 0) -> Run:
    """Tokenize, apply the button pressed (Generate, Greedy, Undo, Clear) and trace the result."""
    gpt2 = serving.gpt2
    state = parsed.state
    result = Run(state=state, errors=list(parsed.messages))
    if not parsed.text_ok:
        return result
    prompt = gpt2.tokenize(state.text)
    limit = token_limit(serving, max_tokens, max_trace_mb)
    if (problem := token_problem(len(prompt), limit)) is not None:
        result.errors.append(problem.reader())
        return result
    if len(prompt) + len(state.gen) > limit:
        state = replace(state, gen=state.gen[: limit - len(prompt)])
        result.notices.append(
            _("Only {limit} tokens fit; later generated tokens were dropped.").format(limit=limit)
        )

    intervention = intervention_of(state)  # heads switched off: every run of this page has them off
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
            s = draw(gpt2.trace(ids, intervention), state, greedy=action == "greedy")
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
    result.step_logits = [gpt2.trace(ids[:k], intervention).logits for k in range(len(prompt), len(ids))]
    result.trace = gpt2.trace(ids, intervention)
    if intervention is not None:
        result.clean = gpt2.trace(ids)
    return result
