"""What the tour's last steps say: logits, temperature, top-k, top-p, the draw, and the logit lens."""

from __future__ import annotations

import numpy as np

from app.i18n import _
from app.views.format import num
from app.views.tour_say import Told, q
from model.sampling import softmax


def logits(ctx: Told) -> None:
    """Final LayerNorm and logits."""
    tok = ctx.tok
    say = ctx.say
    cfg = ctx.trace.config
    logits = ctx.trace.logits
    top = int(np.argmax(ctx.trace.logits))
    say(
        _(
            "After the last block comes a final LayerNorm. Then the last token's vector is multiplied "
            "by the token-embedding table of step 3, turned on its side; GPT-2 adds no bias here."
        )
    )
    say(
        _(
            "That gives one score, a logit, for each of the {v} tokens. "
            "The highest is {top}'s, {hi}; the lowest is {lo}."
        ),
        v=cfg.vocab_size,
        top=q(tok(top)),
        hi=say.n("max", logits[top], 4),
        lo=say.n("min", float(logits.min()), 4),
    )


def temperature(ctx: Told) -> None:
    """Temperature."""
    state = ctx.state
    tok = ctx.tok
    say = ctx.say
    logits = ctx.trace.logits
    top = int(np.argmax(ctx.trace.logits))
    t = state.temperature
    at = {x: float(softmax(logits.astype(np.float64) / x)[top]) for x in (t, 0.5, 1.5)}
    say(
        _("Softmax turns the logits into probabilities, after dividing them by the temperature, now {t}."),
        t=say.n("temperature", t),
    )
    say(
        _("At {t}, {top} gets {p}; at 0.5 it would get {lo}, and at 1.5 {hi}."),
        t=num(t),
        top=q(tok(top)),
        p=say.p("prob", at[t]),
        lo=say.p("prob-cold", at[0.5]),
        hi=say.p("prob-hot", at[1.5]),
    )
    say(
        _(
            "A low temperature makes the model surer and more repetitive; "
            "a high one more varied and more random."
        )
    )


def top_k(ctx: Told) -> None:
    """Top-k."""
    state = ctx.state
    s = ctx.sampling
    tok = ctx.tok
    say = ctx.say
    top = int(np.argmax(ctx.trace.logits))
    say(
        _(
            "Top-k keeps only the k likeliest tokens and shares their probability out again so that it "
            "adds up to 100%; every other token gets 0. When logits are equal, the lower id counts as "
            "likelier, so exactly k are kept."
        )
    )
    say(
        _(
            "With k = {k}, the tokens kept held {mass} of the probability; "
            "shared out, {top} goes from {a} to {b}."
        ),
        k=state.top_k or s.kept_count,
        mass=say.p("mass", s.kept_mass),
        top=q(tok(top)),
        a=say.p("prob-all", s.probs_all[top]),
        b=say.p("prob", s.probs[top]),
    )


def top_p(ctx: Told) -> None:
    """Top-p."""
    state = ctx.state
    s = ctx.sampling
    say = ctx.say
    say(
        _(
            "Top-p keeps the fewest likeliest tokens whose probabilities add up to at least p, so the "
            "number kept adapts: few when the model is sure, many when it is not."
        )
    )
    say(
        _("With p = {p}, {n} tokens are kept here, holding {mass} of the probability."),
        p=num(state.top_p or 1.0),
        n=say.i("kept", s.kept_count),
        mass=say.p("mass", s.kept_mass),
    )


def sampling(ctx: Told) -> None:
    """Sampling and the generation loop."""
    state = ctx.state
    s = ctx.sampling
    tok = ctx.tok
    say = ctx.say
    say(
        _(
            "Finally one token is drawn at random, each with its probability: the kept probabilities are "
            "laid end to end, likeliest first, and the seed ({seed}) picks a point along them, so the "
            "same seed draws the same token. This time it is {tok} (id {id}), which had {p}."
        ),
        seed=state.seed + len(state.gen),
        tok=q(tok(s.token)),
        id=say.i("drawn", s.token),
        p=say.p("prob", s.probs[s.token]),
    )
    say(
        _(
            "Press Generate: the drawn token is appended to the text and everything runs again for the "
            "next one. This loop is how GPT-2 writes; Greedy takes the likeliest token "
            "instead of drawing."
        )
    )


def lens(ctx: Told) -> None:
    """The logit lens: the top guess after each block."""
    trace, tok, say = ctx.trace, ctx.tok, ctx.say
    rows = trace.lens(1)
    final = rows[-1].ids[0]
    settled = len(rows)
    while settled > 1 and rows[settled - 2].ids[0] == final:
        settled -= 1
    say(
        _(
            "The logit lens asks what GPT-2 would predict if it stopped early: it applies the final "
            "LayerNorm and the unembedding right after each block."
        )
    )
    say(
        _("After block 1, the top guess is {a} ({pa}); after block {n}, the last, it is {b} ({pb})."),
        a=q(tok(rows[0].ids[0])),
        pa=say.p("first", rows[0].probs[0]),
        n=len(rows),
        b=q(tok(final)),
        pb=say.p("last", rows[-1].probs[0]),
    )
    say(
        _(
            "The final guess is on top from block {k} on. "
            "That is the whole forward pass; the last steps change the model and watch what happens."
        ),
        k=say.i("settled", settled),
    )
