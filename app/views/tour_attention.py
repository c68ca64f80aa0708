"""What the tour's attention steps say: Q, K and V, scores, scaling, the mask, softmax, heads, projection.

One function per step, named as the attention panel names its steps (app/state.py's STEPS)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.i18n import _
from app.views.format import num
from app.views.tour_say import Square, Told, q
from model import Trace


def qkv(ctx: Told) -> None:
    """Queries, keys and values."""
    trace = ctx.trace
    state = ctx.state
    say = ctx.say
    cfg = ctx.trace.config
    i = ctx.i
    me = ctx.me
    h = ctx.state.head - 1
    p = f"block{ctx.state.layer - 1}"
    qv, kv, vv = (float(trace[f"{p}.{x}"][h, i, 0]) for x in ("q", "k", "v"))
    say(
        _(
            "Attention lets a token gather information from the tokens before it. From each token's "
            "normalised vector, three learned matrices make a query (what it looks for), a key (what "
            "it offers) and a value (what it passes on)."
        )
    )
    say(
        _(
            "Each head gets {d} numbers of each. In block {b}, head {h}, the query of {tok} starts "
            "with {q}, its key with {k} and its value with {v}."
        ),
        d=cfg.head_dim,
        b=state.layer,
        h=state.head,
        tok=me,
        q=say.n("q", qv),
        k=say.n("k", kv),
        v=say.n("v", vv),
    )


def all_heads(ctx: Told) -> None:
    """Several heads: what two of them attend to, on average."""
    trace = ctx.trace
    state = ctx.state
    say = ctx.say
    cfg = ctx.trace.config
    n = ctx.trace.n_tokens
    p = f"block{ctx.state.layer - 1}"
    say(
        _(
            "A block has {n} heads that work side by side, each with its own matrices, so each can "
            "look for something different."
        ),
        n=cfg.n_head,
    )
    if n >= 2:
        probs = trace[f"{p}.attn.probs"].astype(np.float64)  # [H, T, T]
        rows = np.arange(1, n)
        previous = probs[:, rows, rows - 1].mean(axis=1)  # [H]: share on the token just before
        first = probs[:, rows, 0].mean(axis=1)  # [H]: share on the first token
        a = int(np.argmax(previous))
        c = next((int(x) for x in np.argsort(-first, kind="stable") if int(x) != a), a)
        say(
            _(
                "In block {b}, head {a} puts {pa} of its attention, on average, on the token just "
                "before; head {c} puts {pc} on the first token."
            ),
            b=state.layer,
            a=say.i("head-previous", a + 1),
            pa=say.p("previous", previous[a]),
            c=say.i("head-first", c + 1),
            pc=say.p("first", first[c]),
        )
    say(_("The small pictures under the panel show every head's pattern; pick one to see it large."))


def out(ctx: Told) -> None:
    """Attention output and projection."""
    trace = ctx.trace
    state = ctx.state
    say = ctx.say
    cfg = ctx.trace.config
    i = ctx.i
    me = ctx.me
    p = f"block{ctx.state.layer - 1}"
    out = float(np.linalg.norm(trace[f"{p}.attn.out"][i].astype(np.float64)))
    stream = float(np.linalg.norm(trace.ln_input(f"{p}.ln1")[i].astype(np.float64)))
    say(
        _(
            "Each head's output is the average of the value vectors, weighted by its shares: {d} "
            "numbers per token. The {h} outputs are put side by side ({h} × {d} = {c}) and one more "  # noqa: RUF001
            "learned matrix mixes them."
        ),
        d=cfg.head_dim,
        h=cfg.n_head,
        c=cfg.n_embd,
    )
    say(
        _(
            "The result is added to the residual stream: in block {b}, an output of length {a} joins "
            "the stream of {tok}, of length {r}."
        ),
        b=state.layer,
        a=say.n("out", out),
        tok=me,
        r=say.n("stream", stream),
    )
    say(
        _(
            "In training, GPT-2 also used dropout: at random, some of these numbers were set to zero at "
            "each step, so the model could not lean on any single one. Here the model only runs, so dropout "
            "is off and every number is used."
        )
    )


def _scores_on(ctx: Told, i: int, j: int) -> None:
    """Attention scores, told on one square: query token i, key token j."""
    trace = ctx.trace
    tok = ctx.tok
    say = ctx.say
    cfg = ctx.trace.config
    me = ctx.me
    h = ctx.state.head - 1
    p = f"block{ctx.state.layer - 1}"
    other = q(ctx.tok(ctx.trace.ids[j]))
    scores = trace[f"{p}.attn.scores"][h, i]
    best = int(np.argmax(scores[: i + 1]))
    say(
        _(
            "To decide where to look, the query of {tok} is compared with the key of every token by a "
            "dot product: the {d} pairs of numbers are multiplied and added up."
        ),
        tok=me,
        d=cfg.head_dim,
    )
    say(
        _(
            "Its score with {other} is {s}. Among the tokens up to itself, its highest score, {top}, "
            "is with {best}."
        ),
        other=other,
        s=say.n("score", scores[j], 4),
        top=say.n("top-score", scores[best], 4),
        best=q(tok(trace.ids[best])),
    )
    say(_("Scores above the diagonal belong to later tokens; the next steps deal with them."))


def _scaled_on(ctx: Told, i: int, j: int) -> None:
    """Scaling, told on one square."""
    trace = ctx.trace
    say = ctx.say
    cfg = ctx.trace.config
    me = ctx.me
    h = ctx.state.head - 1
    p = f"block{ctx.state.layer - 1}"
    other = q(ctx.tok(ctx.trace.ids[j]))
    raw, scaled = float(trace[f"{p}.attn.scores"][h, i, j]), float(trace[f"{p}.attn.scaled"][h, i, j])
    root = num(float(np.sqrt(cfg.head_dim)), 4)
    say(
        _(
            "The scores are divided by √{d} ≈ {r}. Otherwise they would grow with the size of the "
            "head, and softmax would put nearly everything on a single token."
        ),
        d=cfg.head_dim,
        r=root,
    )
    say(
        _("For {tok} and {other}: {a} ÷ {r} = {b}."),
        tok=me,
        other=other,
        a=say.n("score", raw, 4),
        r=root,
        b=say.n("scaled", scaled, 4),
    )


def _masked_on(ctx: Told, i: int, j: int) -> None:
    """The causal mask, told on one square."""
    say = ctx.say
    n = ctx.trace.n_tokens
    me = ctx.me
    say(
        _(
            "GPT-2 may not look ahead: each token sees only itself and the tokens before it. The "
            "scores for later tokens are set to −∞, drawn as blank squares above the diagonal."  # noqa: RUF001
        )
    )
    if i == n - 1:
        say(
            _("{tok} is the last of the {n} tokens, so it sees all of them."),
            tok=me,
            n=say.i("visible", n),
        )
    else:
        say(
            _("{tok} is token {i} of {n}: it sees {i} tokens, and {hidden} are hidden from it."),
            tok=me,
            i=say.i("visible", i + 1),
            n=n,
            hidden=say.i("hidden", n - i - 1),
        )
    say(_("Thanks to the mask, GPT-2 learns in training to predict every next token of a text at once."))


def _probs_on(ctx: Told, i: int, j: int) -> None:
    """Softmax, told on one square."""
    trace = ctx.trace
    state = ctx.state
    say = ctx.say
    me = ctx.me
    h = ctx.state.head - 1
    p = f"block{ctx.state.layer - 1}"
    other = q(ctx.tok(ctx.trace.ids[j]))
    say(
        _(
            "Softmax turns each row of scores into shares that add up to 100%: each score is "
            "exponentiated and divided by the row's total, and −∞ becomes exactly 0."  # noqa: RUF001
        )
    )
    say(
        _("{tok} gives {pct} of its attention to {other} in head {h} of block {b}."),
        tok=me,
        pct=say.p("prob", float(trace[f"{p}.attn.probs"][h, i, j])),
        other=other,
        h=state.head,
        b=state.layer,
    )
    say(_("That share decides how much of the value of {other} reaches {tok}."), other=other, tok=me)


def on_square(tell: Callable[[Told, int, int], None]) -> Callable[[Told], Square]:
    """A step told on one attention square: the selected query token and the earlier token its head
    attends to most; the square is returned so the panel marks it."""

    def explain(ctx: Told) -> Square:
        i = ctx.i
        j = _key_of(ctx.trace, ctx.state.layer - 1, ctx.state.head - 1, i)
        tell(ctx, i, j)
        return (i, j)

    return explain


scores = on_square(_scores_on)
scaled = on_square(_scaled_on)
masked = on_square(_masked_on)
probs = on_square(_probs_on)


def _key_of(trace: Trace, block: int, head: int, query: int) -> int:
    """The earlier token `query` attends to most in this head (not itself or the first, when it can)."""
    row = trace[f"block{block}.attn.probs"][head, query]
    candidates = list(range(1, query)) or list(range(query)) or [query]
    return max(candidates, key=lambda j: float(row[j]))
