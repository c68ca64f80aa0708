"""The page's controls, read from the URL: every view is a permalink.

`parse_state` never raises on user input: a bad value becomes a message the page shows, and the control
falls back to a sensible value. Layer, head and token positions are counted from 1 here, as on the page.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

from app.i18n import LANGUAGES, _, normalize
from app.service.checks import model_problem, text_problem
from model.sampling import DEFAULT_TEMPERATURE

REFERENCE_PROMPTS = (
    "Data visualization empowers users to",
    "Artificial Intelligence is transforming the",
    "As the spaceship was approaching the",
    "On the deserted planet they discovered a",
    "IEEE VIS conference highlights the",
)
VIEWS = ("embedding", "attention", "mlp", "residual", "kv", "heads")  # the detail panels
COMPARE = "compare"  # view=compare: two prompts side by side (app/service/compare.py), not a detail panel
# The attention panel's walk-through, in the order GPT-2 computes it. One vocabulary: the URL's `step=`, the
# panel's tabs, the tour's attention steps (app/views/tour.py) and the tensors they show (block{i}.q|k|v,
# block{i}.attn.scores|scaled|masked|probs|heads|out; "concat" is attn.heads side by side).
STEPS = ("qkv", "scores", "scaled", "masked", "probs", "heads", "concat", "out")
ACTIONS = ("run", "generate", "greedy", "undo", "clear")

TEMPERATURE = (0.05, 5.0, DEFAULT_TEMPERATURE)  # slider minimum, maximum, default (as the API and CLI)
MAX_SEED = 2**32 - 1
MAX_GENERATED = 64
MAX_ABLATE = 16  # heads switched off at once (ablate=)


@dataclass(frozen=True)
class Limits:
    """What the served model and the server settings allow."""

    n_layer: int
    n_head: int
    vocab_size: int
    max_chars: int
    model: str
    tour_steps: int  # the guided tour's length (app/views/tour.py)


@dataclass(frozen=True)
class State:
    """Every control of the page. `layer`, `head` and `token` are 1-based; `token` None means the last."""

    text: str = REFERENCE_PROMPTS[0]
    gen: tuple[int, ...] = ()  # ids appended by Generate / Greedy, after the text's own tokens
    model: str = ""
    layer: int = 1
    head: int = 1
    token: int | None = None
    temperature: float = TEMPERATURE[2]
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    view: str = "attention"
    step: str = "qkv"
    expand: bool = False
    weights: bool = False  # the open panel shows the weight slices that made its numbers
    present: bool = False
    lang: str = ""  # "" when the URL does not choose one (the browser's Accept-Language decides)
    tour: int | None = None  # the guided tour's step, counted from 1
    ablate: tuple[tuple[int, int], ...] = ()  # heads switched off, (block, head) counted from 1, sorted
    text2: str = ""  # the second prompt of view=compare ("" when none)
    patch: tuple[int, int] | None = None  # view=compare: (site, token) of A's residual copied into B's run
    # the URL's parameter order (a subclass may write its sampling controls otherwise: app/pieces.py)
    _order: ClassVar[tuple[str, ...]] = ()

    def params(self, **changes: object) -> dict[str, str]:
        """The query parameters of this state (with `changes`), in a stable order.

        A page writes dozens of links, each this state with one or two controls changed: the state's own
        parameters are worked out once, and a change re-encodes only the controls it touches."""
        if not changes:
            return dict(self._params)
        if "text" in changes or "gen" in changes:  # gen_for depends on both
            return _encode_all(replace(self, **changes))  # type: ignore[arg-type]
        out = dict(self._params)
        for key, value in changes.items():
            out.pop(key, None)
            encoded = _ENCODE[key](value)
            if encoded is not None:
                out[key] = encoded
        return {key: out[key] for key in self._order or ORDER if key in out}

    @cached_property
    def _params(self) -> dict[str, str]:
        return _encode_all(self)

    def url(self, anchor: str = "", **changes: object) -> str:
        """A permalink to this state (with `changes`), e.g. `state.url(layer=3)`."""
        return to_url(self.params(**changes), anchor)

    def sampling_params(self) -> dict[str, str]:
        """The four sampling controls as the URL writes them, always together and in this order."""
        return {
            "temperature": fmt_float(self.temperature),
            "top_k": "" if self.top_k is None else str(self.top_k),
            "top_p": "" if self.top_p is None else fmt_float(self.top_p),
            "seed": str(self.seed),
        }


def _encode_all(s: State) -> dict[str, str]:
    out = {"text": s.text, "model": s.model, "layer": str(s.layer), "head": str(s.head)}
    out.update(s.sampling_params())
    out["view"] = s.view
    if s.step != "qkv":
        out["step"] = s.step
    if s.token is not None:
        out["token"] = str(s.token)
    if s.ablate:
        out["ablate"] = heads_text(s.ablate)
    if s.text2:
        out["text2"] = s.text2
    if s.patch is not None:
        out["patch"] = f"{s.patch[0]}.{s.patch[1]}"
    if s.gen:
        out["gen"] = ",".join(str(i) for i in s.gen)
        out["gen_for"] = text_digest(s.text)
    if s.expand:
        out["expand"] = "1"
    if s.weights:
        out["weights"] = "1"
    if s.present:
        out["present"] = "1"
    if s.tour is not None:
        out["tour"] = str(s.tour)
    if s.lang:
        out["lang"] = s.lang
    return out


# The sampling controls, always written together, after the head.
SAMPLING = ("temperature", "top_k", "top_p", "seed")
# the URL's parameter order, and how a changed control is written (None: left out of the URL)
ORDER: tuple[str, ...] = ("text", "model", "layer", "head", *SAMPLING, "view", "step", "token", "ablate")
ORDER += ("text2", "patch", "gen")
ORDER += ("gen_for", "expand", "weights", "present", "tour", "lang")
_ENCODE: dict[str, Callable[[Any], str | None]] = {
    "model": str,
    "layer": str,
    "head": str,
    "temperature": lambda v: fmt_float(v),
    "top_k": lambda v: "" if v is None else str(v),
    "top_p": lambda v: "" if v is None else fmt_float(v),
    "seed": str,
    "view": str,
    "step": lambda v: None if v == "qkv" else v,
    "token": lambda v: None if v is None else str(v),
    "ablate": lambda v: heads_text(v) or None,
    "text2": lambda v: v or None,
    "patch": lambda v: None if v is None else f"{v[0]}.{v[1]}",
    "expand": lambda v: "1" if v else None,
    "weights": lambda v: "1" if v else None,
    "present": lambda v: "1" if v else None,
    "tour": lambda v: None if v is None else str(v),
    "lang": lambda v: v or None,
}


@lru_cache(maxsize=4096)
def quote_value(value: str) -> str:
    return quote_plus(value, safe=",")


@lru_cache(maxsize=4096)
def quote_text(text: str) -> str:
    """The text as a browser sends it from htmx (JavaScript's encodeURIComponent, then the URL parser's %27
    for '), so that a text has one spelling in every URL: nginx (deploy/) routes by the bytes of `text=`."""
    return quote(text, safe="!()*")


TEXTS = ("text", "text2")  # written as htmx writes them (quote_text)


def heads_text(heads: tuple[tuple[int, int], ...]) -> str:
    """Heads as the URL writes them: block.head pairs counted from 1, e.g. `3.5,7.1`."""
    return ",".join(f"{block}.{head}" for block, head in heads)


def to_url(params: Mapping[str, str], anchor: str = "") -> str:
    """`/?a=1&b=2#anchor`; each value is quoted once and remembered (a page holds dozens of links)."""
    query = "&".join(
        f"{k}={quote_text(value) if k in TEXTS else quote_value(value)}" for k, value in params.items()
    )
    return f"/?{query}" + (f"#{anchor}" if anchor else "")


@dataclass
class Parsed:
    """The result of reading a URL: the state, what was wrong with it, and a button pressed, if any."""

    state: State
    messages: list[str] = field(default_factory=list)
    action: str | None = None
    text_ok: bool = True  # False: there is no usable text, so nothing can be traced
    text2_ok: bool = True  # False: the second prompt (view=compare) is unusable
    respelled: bool = False  # the URL spelled a control as a form does (patch_block, patch_token): redirect
    given: frozenset[str] = frozenset()  # the controls the URL set (non-empty values)
    slid: frozenset[str] = frozenset()  # the controls set by their slider rather than their typed field


def text_digest(text: str) -> str:
    """A short fingerprint of the text the generated tokens follow: editing the text starts over."""
    return hashlib.blake2s(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def fmt_float(x: float) -> str:
    """Shortest readable form of a control value: 0.8, 1.25, 0.05."""
    return f"{x:.4g}"


def _int(raw: str, name: str, lo: int, hi: int, default: int, messages: list[str]) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        messages.append(
            _("{name} must be a whole number from {lo} to {hi}; using {default}.").format(
                name=name, lo=lo, hi=hi, default=default
            )
        )
        return default
    if not lo <= value <= hi:
        clamped = min(max(value, lo), hi)
        messages.append(
            _("{name} must be from {lo} to {hi}; using {value}.").format(
                name=name, lo=lo, hi=hi, value=clamped
            )
        )
        return clamped
    return value


def _float(raw: str, name: str, lo: float, hi: float, default: float, messages: list[str]) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        messages.append(
            _("{name} must be a number from {lo} to {hi}; using {default}.").format(
                name=name, lo=fmt_float(lo), hi=fmt_float(hi), default=fmt_float(default)
            )
        )
        return default
    if not math.isfinite(value):
        messages.append(
            _("{name} must be a finite number; using {default}.").format(
                name=name, default=fmt_float(default)
            )
        )
        return default
    if not lo <= value <= hi:
        clamped = min(max(value, lo), hi)
        messages.append(
            _("{name} must be from {lo} to {hi}; using {value}.").format(
                name=name, lo=fmt_float(lo), hi=fmt_float(hi), value=fmt_float(clamped)
            )
        )
        return clamped
    return value


def parse_heads(raw: str, limits: Limits, messages: list[str]) -> tuple[tuple[int, int], ...]:
    """`ablate=3.5,7.1`: heads as (block, head) pairs counted from 1, sorted, each once; a malformed or
    out-of-range pair is left out with a message, and past MAX_ABLATE heads the rest are."""
    heads: set[tuple[int, int]] = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        block_text, dot, head_text = part.partition(".")
        try:
            block, head = int(block_text), int(head_text)
        except ValueError:
            messages.append(
                _(
                    "Heads to switch off are written block.head, counted from 1 (e.g. ablate=3.5,7.1); "
                    "{part} is not, so it was left out."
                ).format(part=repr(part[:20]))
            )
            continue
        if not (dot and 1 <= block <= limits.n_layer and 1 <= head <= limits.n_head):
            messages.append(
                _(
                    "There is no head {head} in block {block}: blocks are 1 to {layers} and heads 1 to "
                    "{heads}. It was left out."
                ).format(head=head, block=block, layers=limits.n_layer, heads=limits.n_head)
            )
            continue
        heads.add((block, head))
    if len(heads) > MAX_ABLATE:
        messages.append(
            _("At most {n} heads can be switched off at once; the first {n} were kept.").format(n=MAX_ABLATE)
        )
    return tuple(sorted(heads)[:MAX_ABLATE])


def parse_patch(raw: str, limits: Limits, messages: list[str]) -> tuple[int, int] | None:
    """`patch=4.3`: the residual stream after block 4 (0: the embeddings, entering block 1) at token 3,
    counted from 1; None with a message when malformed or out of range (the token is checked against the
    prompts' lengths once they are tokenized)."""
    site_text, dot, token_text = raw.strip().partition(".")
    try:
        site, token = int(site_text), int(token_text)
    except ValueError:
        site, token = -1, 0
    if not dot or not 0 <= site <= limits.n_layer or not 1 <= token <= 100_000:
        messages.append(
            _(
                "A patch is written block.token (e.g. patch=4.3: after block 4, token 3), with the block "
                "from 0 (the embeddings) to {layers} and tokens counted from 1; {raw} is not, so nothing "
                "was patched."
            ).format(layers=limits.n_layer, raw=repr(raw.strip()[:20]))
        )
        return None
    return site, token


def _flag(raw: str | None) -> bool:
    return raw is not None and raw.strip().lower() in ("1", "true", "yes", "on")


# top-k and top-p each have a typed field (exact values, and what a URL writes) and a slider, sent as
# `<name>_slider` with the position it was drawn at (`<name>_slider_at`): the slider wins when it moved.
SLIDERS = ("top_k", "top_p")


def from_sliders(query: Mapping[str, str]) -> tuple[Mapping[str, str], frozenset[str]]:
    """The query with each moved slider's value in its control's place, and the controls that moved."""
    moved = {
        name: value
        for name in SLIDERS
        if (value := query.get(f"{name}_slider")) is not None and value != query.get(f"{name}_slider_at")
    }
    return ({**query, **moved} if moved else query), frozenset(moved)


def parse_state(query: Mapping[str, str], limits: Limits) -> Parsed:
    """Read the page's controls from a query string; bad values become messages, never exceptions."""
    query, slid = from_sliders(query)
    messages: list[str] = []
    text_ok = True
    raw_text = query.get("text")
    if raw_text is None:
        text = REFERENCE_PROMPTS[0]
    else:
        text = raw_text.replace("\r\n", "\n")
        if (problem := text_problem(text, limits.max_chars)) is not None:
            messages.append(problem.reader())
            text_ok = False

    model = query.get("model", "").strip() or limits.model
    if (problem := model_problem(model, limits.model)) is not None:
        messages.append(problem.reader())
        model = limits.model

    gen: tuple[int, ...] = ()
    if raw_gen := query.get("gen", "").strip():
        try:
            ids = tuple(int(part) for part in raw_gen.split(","))
        except ValueError:
            messages.append(
                _("The generated tokens in the link (gen=…) are not token ids; they were dropped.")
            )
        else:
            if len(ids) > MAX_GENERATED or any(not 0 <= i < limits.vocab_size for i in ids):
                messages.append(
                    _(
                        "gen must list at most {n} token ids from 0 to {top}; "
                        "the generated tokens were dropped."
                    ).format(n=MAX_GENERATED, top=limits.vocab_size - 1)
                )
            else:
                gen = ids
        gen_for = query.get("gen_for", "").strip()
        if gen_for and gen_for != text_digest(text):
            gen = ()  # the text was edited since these tokens were generated: start over from the new text

    def get(name: str) -> str | None:
        raw = query.get(name)
        return raw if raw is not None and raw.strip() != "" else None

    layer = _int(raw, _("Block"), 1, limits.n_layer, 1, messages) if (raw := get("layer")) else 1
    head = _int(raw, _("Head"), 1, limits.n_head, 1, messages) if (raw := get("head")) else 1
    token = _int(raw, _("Token"), 1, 100_000, 1, messages) if (raw := get("token")) else None
    lo, hi, default = TEMPERATURE
    temperature = (
        _float(raw, _("Temperature"), lo, hi, default, messages) if (raw := get("temperature")) else default
    )
    top_k = _int(raw, "top-k", 1, limits.vocab_size, 40, messages) if (raw := get("top_k")) else None
    top_p = _float(raw, "top-p", 0.01, 1.0, 0.9, messages) if (raw := get("top_p")) else None
    seed = _int(raw, _("Seed"), 0, MAX_SEED, 0, messages) if (raw := get("seed")) else 0
    tour = _int(raw, _("Tour step"), 1, limits.tour_steps, 1, messages) if (raw := get("tour")) else None

    ablate = parse_heads(raw, limits, messages) if (raw := get("ablate")) else ()
    text2, text2_ok = "", True
    if (raw := get("text2")) is not None:
        text2 = raw.replace("\r\n", "\n")
        if (problem := text_problem(text2, limits.max_chars)) is not None:
            messages.append(_("Second prompt: {problem}").format(problem=problem.reader()))
            text2_ok = False
    patch_raw, respelled = get("patch"), False
    if patch_raw is None and (block := get("patch_block")) and (token_raw := get("patch_token")):
        patch_raw, respelled = f"{block.strip()}.{token_raw.strip()}", True  # the compare view's form
    patch = parse_patch(patch_raw, limits, messages) if patch_raw else None

    view = (get("view") or "attention").strip().lower()
    if view not in VIEWS and view != COMPARE:
        messages.append(_("There is no panel called {name}; showing attention.").format(name=repr(view[:40])))
        view = "attention"
    step = (get("step") or "qkv").strip().lower()
    if step not in STEPS:
        messages.append(
            _("There is no attention step called {name}; showing the first.").format(name=repr(step[:40]))
        )
        step = "qkv"
    lang = ""
    if raw_lang := get("lang"):
        lang = normalize(raw_lang) or ""
        if not lang:
            names = ", ".join(f"{code} ({name})" for code, (_c, name) in LANGUAGES.items())
            messages.append(
                _("There is no translation called {name}; the languages are {names}.").format(
                    name=repr(raw_lang[:20]), names=names
                )
            )
    action = (get("action") or "").strip().lower() or None
    if action is not None and action not in ACTIONS:
        messages.append(_("Unknown button {name}; nothing was done.").format(name=repr(action[:40])))
        action = None

    state = State(
        text=text,
        gen=gen,
        model=model,
        layer=layer,
        head=head,
        token=token,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        view=view,
        step=step,
        expand=_flag(query.get("expand")),
        weights=_flag(query.get("weights")),
        present=_flag(query.get("present")),
        lang=lang,
        tour=tour,
        ablate=ablate,
        text2=text2,
        patch=patch,
    )
    given = frozenset(key for key, value in query.items() if value.strip())
    return Parsed(
        state=state,
        messages=messages,
        action=action,
        text_ok=text_ok,
        text2_ok=text2_ok,
        given=given,
        respelled=respelled,
        slid=slid,
    )
