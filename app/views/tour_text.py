"""What the tour says along the residual stream: the model, tokens, embeddings, LayerNorm, the MLP, blocks."""

from __future__ import annotations

import numpy as np

from app.i18n import _
from app.views.format import show
from app.views.tokens import character_groups
from app.views.tour_say import Told, q
from model import Token
from model.sampling import softmax


def model(ctx: Told) -> None:
    """What a language model does."""
    trace = ctx.trace
    tok = ctx.tok
    say = ctx.say
    cfg = ctx.trace.config
    n = ctx.trace.n_tokens
    ids = ctx.trace.ids
    probs = softmax(trace.logits)
    top = int(np.argmax(probs))
    say(
        _(
            "GPT-2 reads a text and gives each of the {v} tokens it knows a score for coming next. "
            "One is picked and appended, and the whole computation runs again for the token after."
        ),
        v=cfg.vocab_size,
    )
    say(
        _(
            "Your text is {n} tokens long. After {last}, its top guess is {top}, "
            "with probability {p} (temperature 1)."
        ),
        n=say.i("tokens", n),
        last=q(tok(ids[-1])),
        top=q(tok(top)),
        p=say.p("top-prob", float(probs[top])),
    )
    say(
        _(
            "In the picture, each band is one token's vector flowing through the model "
            "from left to right. "
            "The tour follows it, one step at a time."
        )
    )


def tokens(ctx: Told) -> None:
    """Tokens and ids."""
    tok = ctx.tok
    say = ctx.say
    cfg = ctx.trace.config
    n = ctx.trace.n_tokens
    ids = ctx.trace.ids
    tokens = [tok(t) for t in ids]
    say(
        _(
            "GPT-2 does not read letters. A tokenizer cuts the text into pieces from a fixed list of "
            "{v} tokens and hands over their ids."
        ),
        v=cfg.vocab_size,
    )
    say(
        _("Your text is {n} tokens: {first} has id {a}, and {last} has id {b}."),
        n=say.i("tokens", n),
        first=q(tokens[0]),
        a=say.i("first-id", ids[0]),
        last=q(tokens[-1]),
        b=say.i("last-id", ids[-1]),
    )
    groups = character_groups(tokens)
    split = _split_word(tokens)
    if groups:
        first, last, text = groups[0]
        say(
            _(
                "Many characters, most Chinese ones among them, take two or three tokens, each holding "
                "some of the character's bytes: tokens {a} to {b} together make “{text}”."
            ),
            a=first + 1,
            b=last + 1,
            text=show(text.strip() or text),
        )
    elif split is not None:
        word, pieces = split
        say(
            _(
                "Common words are one token, usually with the space before them (␣). “{word}” is not "
                "in the list, so it is split into {k}: {pieces}."
            ),
            word=word,
            k=len(pieces),
            pieces=" + ".join(pieces),
        )
    else:
        say(
            _(
                "Common words are one token, usually with the space before them (␣); "
                "rare words are split into pieces."
            )
        )


def token_embedding(ctx: Told) -> None:
    """Token embedding."""
    trace = ctx.trace
    say = ctx.say
    cfg = ctx.trace.config
    ids = ctx.trace.ids
    i = ctx.i
    me = ctx.me
    row = trace["embed.token"][i]
    say(
        _("Each id picks one row of the token-embedding table: {v} rows of {c} numbers."),
        v=cfg.vocab_size,
        c=cfg.n_embd,
    )
    say(
        _(
            "{tok} (id {id}) gets the row that starts {x0}, {x1}, {x2}, …; "
            "the length of this vector is {norm}."
        ),
        tok=me,
        id=ids[i],
        x0=say.n("x0", row[0]),
        x1=say.n("x1", row[1]),
        x2=say.n("x2", row[2]),
        norm=say.n("norm", float(np.linalg.norm(row.astype(np.float64)))),
    )
    say(_("Training adjusts these rows so that tokens used in similar ways get similar rows."))


def position_embedding(ctx: Told) -> None:
    """Position embedding."""
    trace = ctx.trace
    say = ctx.say
    cfg = ctx.trace.config
    i = ctx.i
    me = ctx.me
    t0, p0, s0 = (float(trace[name][i, 0]) for name in ("embed.token", "embed.position", "embed.sum"))
    say(
        _(
            "Attention by itself does not see the order of the tokens, so a second table gives each "
            "position its own row ({positions} positions)."
        ),
        positions=cfg.n_positions,
    )
    say(
        _(
            "{tok} is at position {pos}. The two rows are added number by number; "
            "the first number is {t} + {p} = {s}."
        ),
        tok=me,
        pos=i + 1,
        t=say.n("token", t0, 4),
        p=say.n("position", p0, 4),
        s=say.n("sum", s0, 4),
    )
    say(_("This sum, {c} numbers per token, is what enters block 1."), c=cfg.n_embd)


def residual(ctx: Told) -> None:
    """The residual stream."""
    trace = ctx.trace
    say = ctx.say
    cfg = ctx.trace.config
    i = ctx.i
    me = ctx.me
    start = float(np.linalg.norm(trace["embed.sum"][i].astype(np.float64)))
    end = float(np.linalg.norm(trace[f"block{cfg.n_layer - 1}.resid.out"][i].astype(np.float64)))
    say(
        _(
            "The sum starts the token's residual stream. Each attention and each MLP reads the stream "
            "and adds its result to it, instead of replacing it."
        )
    )
    say(
        _("For {tok}, the vector's length goes from {a} after the embedding to {b} after block {n}."),
        tok=me,
        a=say.n("start", start),
        b=say.n("end", end),
        n=cfg.n_layer,
    )
    say(
        _(
            "Because every part only adds, what the embedding put in can reach the end, "
            "and any block can write something new."
        )
    )


def layernorm(ctx: Told) -> None:
    """LayerNorm."""
    trace = ctx.trace
    state = ctx.state
    say = ctx.say
    cfg = ctx.trace.config
    i = ctx.i
    me = ctx.me
    p = f"block{ctx.state.layer - 1}"
    mean, std = trace.ln_stats(f"{p}.ln1")
    say(
        _(
            "Before attention, and again before the MLP, LayerNorm rescales each token's vector: it "
            "subtracts the mean of its {c} numbers and divides by their standard deviation."
        ),
        c=cfg.n_embd,
    )
    say(
        _(
            "Entering block {b}, {tok} has mean {mean} and standard deviation {std}; after LayerNorm "
            "they are about 0 and 1, before a learned scale and shift."
        ),
        b=state.layer,
        tok=me,
        mean=say.n("mean", mean[i], 4),
        std=say.n("std", std[i], 4),
    )
    say(_("This keeps the numbers each part sees in a steady range, however much the stream grows."))


def mlp(ctx: Told) -> None:
    """The MLP and GELU."""
    trace = ctx.trace
    state = ctx.state
    say = ctx.say
    cfg = ctx.trace.config
    i = ctx.i
    me = ctx.me
    p = f"block{ctx.state.layer - 1}"
    pre, act = trace[f"{p}.mlp.pre"][i], trace[f"{p}.mlp.act"][i]
    top = int(np.argmax(act))
    hidden = act.shape[0]
    say(
        _(
            "Next, each token goes through the MLP on its own: its {c} numbers are mapped to {k} "
            "neurons, passed through GELU, and mapped back to {c}; the result is added to the stream."
        ),
        c=cfg.n_embd,
        k=hidden,
    )
    say(
        _(
            "GELU keeps positive values and squashes negative ones to nearly 0. For {tok} in block "
            "{b}, {active} of the {k} neurons end above 0.5; the strongest, neuron {j}, "
            "goes from {x} to {y}."
        ),
        tok=me,
        b=state.layer,
        active=say.i("active", int((act > 0.5).sum())),
        k=hidden,
        j=say.i("neuron", top),
        x=say.n("pre", pre[top], 4),
        y=say.n("act", act[top], 4),
    )


def blocks(ctx: Told) -> None:
    """Repeated blocks."""
    trace = ctx.trace
    say = ctx.say
    cfg = ctx.trace.config
    i = ctx.i
    me = ctx.me
    change = [
        float(
            np.linalg.norm(
                (trace[f"block{k}.resid.out"][i] - trace.ln_input(f"block{k}.ln1")[i]).astype(np.float64)
            )
        )
        for k in range(cfg.n_layer)
    ]
    most = int(np.argmax(change))
    say(
        _(
            "Attention and the MLP, each with a LayerNorm before it and the stream flowing around it, "
            "make one block. This model repeats the block {n} times, each time with its own weights "
            "(GPT-2 small has 12 blocks, the largest GPT-2 has 48)."
        ),
        n=cfg.n_layer,
    )
    say(
        _("For {tok}, block {b} changes the stream the most: it adds a vector of length {d}."),
        tok=me,
        b=say.i("block", most + 1),
        d=say.n("change", change[most]),
    )
    say(_("Click a block in the picture to open it."))


def _split_word(tokens: list[Token]) -> tuple[str, list[str]] | None:
    """The first word of the text made of several tokens, and its pieces."""
    words: list[list[Token]] = []
    for t in tokens:
        starts = (
            not words
            or t.text[:1].isspace()
            or not t.text[:1].isalnum()
            or not words[-1][-1].text[-1:].isalnum()
        )
        if starts:
            words.append([t])
        else:
            words[-1].append(t)
    for w in words:
        if len(w) > 1 and not any(t.partial for t in w):
            return "".join(t.text for t in w).strip(), [f"“{show(t.text)}”" for t in w]
    return None
