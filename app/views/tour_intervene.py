"""What the tour's steps about doing something to the model say: a head switched off, which heads matter,
and patching one vector of a prompt into another's run (issue 17)."""

from __future__ import annotations

import re

import numpy as np

from app.i18n import _
from app.views.ablation import points
from app.views.compare import MIN_GAP, site_name
from app.views.format import exact
from app.views.tour_say import Told, q
from model.sampling import softmax

# The patching step's second prompt is the student's with one word changed: the first word of the first
# tier found (whole words, any case), else the first word becomes "The" (or "A" when it is "The").
SWAPS = (
    {
        "he": "she",
        "she": "he",
        "his": "her",
        "her": "his",
        "him": "her",
        "man": "woman",
        "woman": "man",
        "boy": "girl",
        "girl": "boy",
        "king": "queen",
        "queen": "king",
    },
    {"is": "was", "was": "is", "are": "were", "were": "are"},
    {"the": "a", "a": "the", "an": "the"},
)
_WORD = re.compile(r"[A-Za-z]+")


def counterpart(text: str) -> str:
    """The student's text with one word changed, for the patching step's prompt B."""
    words = list(_WORD.finditer(text))
    for tier in SWAPS:
        for m in words:
            new = tier.get(m.group().lower())
            if new is not None:
                return text[: m.start()] + _cased(new, m.group()) + text[m.end() :]
    if words:
        first = words[0]
        new = "A" if first.group() == "The" else "The"
        return text[: first.start()] + new + text[first.end() :]
    return "The " + text


def _cased(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def ablate(ctx: Told) -> None:
    """One head switched off: the prediction with it off beside the original."""
    say = ctx.say
    state = ctx.state
    tok = ctx.tok
    block, head = state.ablate[0] if state.ablate else (state.layer, state.head)
    say(
        _(
            "Now do something to the model: head {h} of block {b}, the one the attention steps looked "
            "at, is switched off. Its attention probabilities are multiplied by 0, so it passes nothing "
            "on, and every panel shows GPT-2 without it."
        ),
        h=say.i("head", head),
        b=say.i("block", block),
    )
    if ctx.clean is None:
        return
    before, after = softmax(ctx.clean.logits), softmax(ctx.trace.logits)
    top = int(ctx.clean.logit_order()[0])
    now = int(ctx.trace.logit_order()[0])
    say(
        _("With every head on, GPT-2 gave {top} {p}; with this head off it gives it {p2} ({change})."),
        top=q(tok(top)),
        p=say.p("before", float(before[top])),
        p2=say.p("after", float(after[top])),
        change=points(float(after[top] - before[top])),
    )
    if now != top:
        say(_("Its likeliest next token is now {new}."), new=q(tok(now)))
    say(
        _(
            "The output panel lists each candidate before and after; the strip at the top switches the head "
            "back on."
        )
    )


def heads(ctx: Told) -> None:
    """Which heads matter: each head switched off alone."""
    say = ctx.say
    cfg = ctx.trace.config
    n = cfg.n_layer * cfg.n_head
    say(
        _(
            "One head is one experiment. This panel runs all of them: each of the {n} heads switched "
            "off alone, one run of the model each, and the change in the probability of the likeliest "
            "next token."
        ),
        n=n,
    )
    sweep = ctx.sweep
    if sweep is None:
        say(_("This text has no sweep now; the panel says why."))
        return
    k = int(np.argmax(np.abs(sweep.change)))
    b, h = divmod(k, cfg.n_head)
    change = float(sweep.change[b, h])
    say.numbers.append(("change", exact(change)))
    small = int((np.abs(sweep.change) < 0.01).sum())
    say(
        _("For {top} ({p}), the head that matters most is head {h} of block {b}: without it, {change}."),
        top=q(ctx.tok(sweep.token)),
        p=say.p("prob", sweep.prob),
        h=say.i("head", h + 1),
        b=say.i("block", b + 1),
        change=points(change),
    )
    say(
        _(
            "{k} of the {n} heads change it by less than one percentage point. Click a square to "
            "switch one off."
        ),
        k=say.i("small", small),
        n=n,
    )


def patch(ctx: Told) -> None:
    """Patching: one vector of prompt A copied into prompt B's run."""
    say = ctx.say
    state = ctx.state
    tok = ctx.tok
    say(
        _(
            "Patching finds where a difference is carried. Prompt A is your text; prompt B is the same "
            "with one word changed: “{b}”."
        ),
        b=state.text2,
    )
    say(
        _(
            "GPT-2 runs B again, but one vector of B's residual stream, at one block and one token, is "
            "replaced by A's. If B's prediction then moves to A's, that vector carried the difference."
        )
    )
    grid, other = ctx.grid, ctx.other
    if grid is None or other is None:
        say(_("This pair has no grid now; the page says why. Pick a block and a token to patch one by one."))
        return
    top = grid.token
    p_a, p_b = float(softmax(ctx.trace.logits)[top]), float(softmax(other.logits)[top])
    if abs(p_a - p_b) < MIN_GAP:
        say(
            _("A and B give {top} nearly the same probability ({p}), so there is little to restore here."),
            top=q(tok(top)),
            p=say.p("prob-a", p_a),
        )
        return
    share = (grid.probs - p_b) / (p_a - p_b)  # [L+1, P]
    s, t = np.unravel_index(int(np.argmax(share)), share.shape)
    say(
        _(
            "For A's likeliest next token {top} ({pa} in A, {pb} in B), the patch that restores the "
            "most is {where} at token {t}: {share} of the difference. Click any square to see that patch."
        ),
        top=q(tok(top)),
        pa=say.p("prob-a", p_a),
        pb=say.p("prob-b", p_b),
        where=site_name(int(s)),
        t=say.i("token", int(t) + 1),
        share=say.p("share", float(share[s, t])),
    )
