"""What the tour's last steps say: attention played, a weight matrix at work, the KV cache after Generate."""

from __future__ import annotations

from app.i18n import _
from app.views.tour_attention import on_square
from app.views.tour_say import Told, q


def _watch_on(ctx: Told, i: int, j: int) -> None:
    """Attention's scores, played."""
    trace, say = ctx.trace, ctx.say
    h, p = ctx.state.head - 1, f"block{ctx.state.layer - 1}"
    say(
        _(
            "This step can play. Watch the scores fill in row by row: each row is one token's query, "
            "compared with the keys of the tokens up to it, and nothing to the right of the diagonal."
        )
    )
    say(
        _(
            "Row {row} is {tok}'s; its square under {other} is {score}, the dot product of their "
            "query and key."
        ),
        row=say.i("row", i + 1),
        tok=ctx.me,
        other=q(ctx.tok(trace.ids[j])),
        score=say.n("score", trace[f"{p}.attn.scores"][h, i, j], 4),
    )
    say(_("Pause stops it, Replay starts it over, and the numbered frames show it one step at a time."))


watch = on_square(_watch_on)


def weights(ctx: Told) -> None:
    """A weight matrix at work: the query made from the normalised vector and W_Q."""
    trace, say, state = ctx.trace, ctx.say, ctx.state
    cfg = trace.config
    h, p, i = state.head - 1, f"block{state.layer - 1}", ctx.i
    say(
        _(
            "The query, key and value are made by learned matrices. Below the panel, the weights open: "
            "{tok}'s normalised vector is multiplied by head {h}'s columns of W_Q, and a bias is added."
        ),
        tok=ctx.me,
        h=state.head,
    )
    say(
        _(
            "Each of the query's numbers adds up {c} products: the first starts with {tok}'s first "
            "number, {x0}, and all {c} together with the bias make {q}."
        ),
        c=say.i("width", cfg.n_embd),
        tok=ctx.me,
        x0=say.n("x0", trace[f"{p}.ln1"][i, 0], 4),
        q=say.n("q", trace[f"{p}.q"][h, i, 0], 4),
    )
    say(_("The squares are the model's real weights, read from its file; hover one for its value."))


def kv_cache(ctx: Told) -> None:
    """The KV cache after Generate."""
    trace, say = ctx.trace, ctx.say
    cfg = trace.config
    n = trace.n_tokens
    new = q(ctx.tok(trace.ids[-1]))
    say(
        _(
            "Generate appended {tok}. To do it, GPT-2 ran this one token only: in each of its {blocks} "
            "blocks, every head made {tok}'s query, key and value, {numbers} numbers in all."
        ),
        tok=new,
        blocks=cfg.n_layer,
        numbers=say.i("computed", 3 * cfg.n_embd * cfg.n_layer),
    )
    say(
        _(
            "The keys and values of the {p} tokens before it were read from the cache, unchanged: a "
            "token never sees the tokens after it, so its key and value never change."
        ),
        p=say.i("cached", n - 1),
    )
    say(
        _("In block 1, head 1, the key of {tok} starts with {k0}: the newest row of the keys shown here."),
        tok=new,
        k0=say.n("k0", trace["block0.k"][0, n - 1, 0], 4),
    )
