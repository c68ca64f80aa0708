"""The guided tour: every step renders for the reference prompts and a random text, and quotes the Trace."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from app.views.ablation import points
from app.views.format import num, percent
from app.views.tour import TOUR, TOUR_STEPS
from app.views.tour_intervene import counterpart
from model import GPT2, Intervention, Trace, sample
from model.sampling import softmax
from tests.teach.conftest import query_of
from tests.web.conftest import Elements, parse


def norm(x: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(x, dtype=np.float64)))


def page_state(page: Elements) -> dict[str, str]:
    """The controls the page shows: block, head, selected token, and the sampling fields (on the compare
    page, which has no overview: its form's fields)."""
    if not page.all("svg", **{"class": "fig sankey"}):
        return {i["name"]: i.get("value", "") for i in page.all("input", name="*")}
    sankey = page.one("svg", **{"class": "fig sankey"})
    chip = next(c for c in page.all("a", data_position="*") if "sel" in c["class"].split())
    inputs = {
        i["name"]: i.get("value", "")
        for i in page.all("input", name="*")
        if i.get("type") != "radio" or "checked" in i  # the temperature slider: its checked stop
    }
    shown = {"layer": sankey["data-layer"], "head": sankey["data-head"], "token": chip["data-position"]}
    return {**inputs, **shown}


def intervened(key: str, trace: Trace, st: dict[str, str], gpt2: GPT2) -> dict[str, float]:
    """The numbers the steps about interventions must quote, from runs made here."""
    ids = list(trace.ids)
    if key == "ablate":
        b, h = int(st["layer"]), int(st["head"])
        assert st["ablate"] == f"{b}.{h}"  # the example head, switched off
        cut = gpt2.engine.trace(ids, Intervention(ablate=frozenset({(b - 1, h - 1)})))
        top = int(trace.logit_order()[0])
        before, after = softmax(trace.logits)[top], softmax(cut.logits)[top]
        return {"block": b, "head": h, "before": before, "after": after}
    if key == "heads":
        if len(ids) > Settings().sweep_tokens:
            return {}  # no sweep for texts this long: the step says so
        sweep = gpt2.head_sweep(ids)
        b, h = divmod(int(np.argmax(np.abs(sweep.change))), trace.config.n_head)
        small = int((np.abs(sweep.change) < 0.01).sum())
        change = sweep.change[b, h]
        return {"prob": sweep.prob, "block": b + 1, "head": h + 1, "change": change, "small": small}
    assert key == "patch"
    assert st["text2"] == counterpart(st["text"]) and st["view"] == "compare"
    ids_b = [t.id for t in gpt2.tokenize(st["text2"])]
    if max(len(ids), len(ids_b)) > Settings().sweep_tokens:
        return {}  # no grid for texts this long: the step says so
    top = int(trace.logit_order()[0])
    b = gpt2.engine.trace(ids_b)
    p_a, p_b = float(softmax(trace.logits)[top]), float(softmax(b.logits)[top])
    if abs(p_a - p_b) < 1e-3:
        return {"prob-a": p_a}
    probs = gpt2.patch_sweep(ids_b, trace, top).probs
    share = (probs - p_b) / (p_a - p_b)
    s, t = np.unravel_index(int(np.argmax(share)), share.shape)
    return {"prob-a": p_a, "prob-b": p_b, "token": int(t) + 1, "share": float(share[s, t])}


def expected(key: str, trace: Trace, st: dict[str, str], cell: tuple[int, int] | None) -> dict[str, float]:
    """The numbers step `key` must quote, computed here from the Trace on their own."""
    n, cfg = trace.n_tokens, trace.config
    b, h, i = int(st["layer"]) - 1, int(st["head"]) - 1, int(st["token"]) - 1
    p = f"block{b}"
    if key == "model":
        return {"tokens": n, "top-prob": float(softmax(trace.logits).max())}
    if key == "tokens":
        return {"tokens": n, "first-id": trace.ids[0], "last-id": trace.ids[-1]}
    if key == "token-embedding":
        row = trace["embed.token"][i]
        return {"x0": row[0], "x1": row[1], "x2": row[2], "norm": norm(row)}
    if key == "position-embedding":
        return {
            "token": trace["embed.token"][i, 0],
            "position": trace["embed.position"][i, 0],
            "sum": trace["embed.sum"][i, 0],
        }
    if key == "residual":
        last = trace[f"block{cfg.n_layer - 1}.resid.out"][i]
        return {"start": norm(trace["embed.sum"][i]), "end": norm(last)}
    if key == "layernorm":
        x = trace["embed.sum"][i].astype(np.float64) if b == 0 else trace[f"block{b - 1}.resid.out"][i]
        return {"mean": float(np.mean(x)), "std": float(np.std(x))}
    if key == "qkv":
        return {x: trace[f"{p}.{x}"][h, i, 0] for x in ("q", "k", "v")}
    if key in ("scores", "scaled", "masked", "probs"):
        assert cell is not None and cell[0] == i and cell[1] <= i
        j = cell[1]
        scores = trace[f"{p}.attn.scores"][h, i]
        return {
            "scores": {"score": scores[j], "top-score": scores[: i + 1].max()},
            "scaled": {"score": scores[j], "scaled": trace[f"{p}.attn.scaled"][h, i, j]},
            "masked": {"visible": n} if i == n - 1 else {"visible": i + 1, "hidden": n - i - 1},
            "probs": {"prob": trace[f"{p}.attn.probs"][h, i, j]},
        }[key]
    if key == "all-heads":
        if n < 2:
            return {}
        probs = trace[f"{p}.attn.probs"].astype(np.float64)
        previous = np.array([np.mean([probs[k, r, r - 1] for r in range(1, n)]) for k in range(cfg.n_head)])
        first = np.array([np.mean([probs[k, r, 0] for r in range(1, n)]) for k in range(cfg.n_head)])
        a = int(np.argmax(previous))
        c = max((k for k in range(cfg.n_head) if k != a), key=lambda k: (first[k], -k), default=a)
        return {"head-previous": a + 1, "previous": previous[a], "head-first": c + 1, "first": first[c]}
    if key == "out":
        before = trace["embed.sum"][i] if b == 0 else trace[f"block{b - 1}.resid.out"][i]
        return {"out": norm(trace[f"{p}.attn.out"][i]), "stream": norm(before)}
    if key == "mlp":
        act, pre = trace[f"{p}.mlp.act"][i], trace[f"{p}.mlp.pre"][i]
        top = int(np.argmax(act))
        return {"active": int((act > 0.5).sum()), "neuron": top, "pre": pre[top], "act": act[top]}
    if key == "watch-attention":
        assert cell is not None and cell[0] == i
        return {"row": i + 1, "score": trace[f"{p}.attn.scores"][h, i, cell[1]]}
    if key == "weights":
        return {"width": cfg.n_embd, "x0": trace[f"{p}.ln1"][i, 0], "q": trace[f"{p}.q"][h, i, 0]}
    if key == "kv-cache":  # `trace` has the generated token
        k0 = trace["block0.k"][0, n - 1, 0]
        return {"computed": 3 * cfg.n_embd * cfg.n_layer, "cached": n - 1, "k0": k0}
    if key == "blocks":
        change = []
        for k in range(cfg.n_layer):
            before = trace["embed.sum"][i] if k == 0 else trace[f"block{k - 1}.resid.out"][i]
            change.append(norm(trace[f"block{k}.resid.out"][i] - before))
        return {"block": int(np.argmax(change)) + 1, "change": max(change)}
    logits = trace.logits
    top = int(np.argmax(logits))
    t = float(st["temperature"])
    top_k = int(st["top_k"]) if st.get("top_k") else None
    top_p = float(st["top_p"]) if st.get("top_p") else None
    s = sample(logits, t, top_k, top_p, seed=int(st["seed"]))
    if key == "logits":
        return {"max": logits[top], "min": logits.min()}
    if key == "temperature":
        at = {x: float(softmax(logits.astype(np.float64) / x)[top]) for x in (t, 0.5, 1.5)}
        return {"temperature": t, "prob": at[t], "prob-cold": at[0.5], "prob-hot": at[1.5]}
    if key == "top-k":
        assert top_k is not None and top_p is None
        return {"mass": s.kept_mass, "prob-all": s.probs_all[top], "prob": s.probs[top]}
    if key == "top-p":
        assert top_p is not None and top_k is None
        return {"kept": s.kept_count, "mass": s.kept_mass}
    if key == "sampling":
        return {"prob": s.probs[s.token], "drawn": s.token}
    assert key == "lens"
    rows = trace.lens(1)
    settled = next(k for k in range(len(rows)) if all(r.ids[0] == rows[-1].ids[0] for r in rows[k:])) + 1
    return {"first": rows[0].probs[0], "last": rows[-1].probs[0], "settled": settled}


def shown(value: float) -> list[str]:
    """The ways the tour may print a number."""
    whole = str(int(value)) if float(value).is_integer() else "?"
    return [num(value, 3), num(value, 4), percent(value), whole, points(value)]


def test_the_tour_has_the_steps_of_the_issue_in_order() -> None:
    keys = [step.key for step in TOUR]
    assert len(keys) == TOUR_STEPS >= 20
    for earlier, later in [
        ("model", "tokens"),
        ("tokens", "token-embedding"),
        ("qkv", "scores"),
        ("scores", "scaled"),
        ("scaled", "masked"),
        ("masked", "probs"),
        ("mlp", "blocks"),
        ("logits", "temperature"),
        ("top-k", "top-p"),
        ("sampling", "lens"),
    ]:
        assert keys.index(earlier) < keys.index(later)


def test_every_step_quotes_the_traces_numbers(client: TestClient, gpt2: GPT2, text: str) -> None:
    trace = gpt2.trace([t.id for t in gpt2.tokenize(text)])
    for number in range(1, TOUR_STEPS + 1):
        r = client.get("/", params={"text": text, "tour": str(number)})
        assert r.status_code == 200, (number, r.text[:500])
        page = parse(r.text)
        card = page.one("aside", id="tour")
        key = TOUR[number - 1].key
        assert (card["data-step"], card["data-key"]) == (str(number), key)
        sentences = [" ".join(s.split()) for s in _texts(r.text, "tour-text")]
        assert 2 <= len(sentences) <= 4, (key, sentences)
        cell = tuple(int(x) - 1 for x in card["data-cell"].split(",")) if "data-cell" in card else None
        told = trace
        if TOUR[number - 1].opens.generate:  # the step generates the greedy next token first
            told = gpt2.trace([*trace.ids, int(trace.logit_order()[0])])
        if key in ("ablate", "heads", "patch"):
            want = intervened(key, trace, page_state(page), gpt2)
        else:
            want = expected(key, told, page_state(page), cell)  # type: ignore[arg-type]
        got = {
            k.removeprefix("data-"): float(v)
            for k, v in card.items()
            if k.startswith("data-") and k not in ("data-step", "data-key", "data-cell", "data-tour-card")
        }
        assert set(got) == set(want), key
        words = " ".join(sentences)
        for name, value in want.items():
            assert got[name] == pytest.approx(float(value), rel=1e-6, abs=1e-9), (key, name)
            assert any(form in words for form in shown(got[name])), (key, name, got[name], words)
        # the card describes one element of the page, outlined and scrolled to
        described = page.all(None, data_tour_target="*")
        assert [a["data-tour-target"] for a in described] == [TOUR[number - 1].element], key
        if cell is not None:  # the square it talks about is outlined in the heatmap
            assert len(page.all("rect", **{"class": "tour-mark"})) == 1


def _texts(html: str, cls: str) -> list[str]:
    """The text of every <p class=cls>."""
    out = []
    for part in html.split(f'<p class="{cls}">')[1:]:
        out.append(parse(part.split("</p>")[0]).all_text)
    return out


def test_attention_steps_choose_a_strong_earlier_token(client: TestClient, gpt2: GPT2) -> None:
    text = "Data visualization empowers users to"
    trace = gpt2.trace([t.id for t in gpt2.tokenize(text)])
    card = parse(client.get("/", params={"text": text, "tour": "11"}).text).one("aside", id="tour")
    i, j = (int(x) - 1 for x in card["data-cell"].split(","))
    assert 1 <= j < i  # neither the first token nor itself
    best = max(
        float(trace[f"block{b}.attn.probs"][h, q, k])
        for b in range(trace.config.n_layer)
        for h in range(trace.config.n_head)
        for q in range(2, trace.n_tokens)
        for k in range(1, q)
    )
    assert float(card["data-prob"]) == pytest.approx(best, rel=1e-6)


def test_next_links_walk_the_whole_tour_without_javascript(client: TestClient) -> None:
    text = "As the spaceship was approaching the"
    url = client.get("/", params={"text": text, "tour": "1"}).url
    for number in range(1, TOUR_STEPS + 1):
        page = parse(client.get(str(url)).text)
        card = page.one("aside", id="tour")
        assert card["data-step"] == str(number)
        links = {a.get("rel"): a for a in page.all("a", rel="*") if a.get("rel") in ("next", "prev")}
        assert ("prev" in links) == (number > 1) and ("next" in links) == (number < TOUR_STEPS)
        assert links.get("next", {}).get("accesskey", "n") == "n"
        if number < TOUR_STEPS:
            nxt = links["next"]["href"]
            assert query_of(nxt)["tour"] == str(number + 1)
            # the link a student follows opens the same view as the bare step link an instructor types
            bare = page_state(parse(client.get("/", params={"text": text, "tour": str(number + 1)}).text))
            followed = page_state(parse(client.get(nxt).text))
            same = ["view", "layer", "head", "step", "token", "expand", "ablate"]
            if 17 <= number + 1 <= 20:  # the sampling steps set top-k and top-p
                same += ["top_k", "top_p"]
            if TOUR[number].opens.view == "compare":  # a page of its own: two prompts, no overview
                same = ["view", "text", "text2", "ablate"]
            assert {k: followed.get(k, "") for k in same} == {k: bare.get(k, "") for k in same}, number + 1
            url = nxt


def test_a_tour_step_keeps_the_students_own_choices(client: TestClient, gpt2: GPT2) -> None:
    text = "IEEE VIS conference highlights the"
    params = {"text": text, "tour": "11", "head": "3", "layer": "2", "token": "5"}
    page = parse(client.get("/", params=params).text)
    assert page_state(page)["head"] == "3" and page_state(page)["layer"] == "2"
    card = page.one("aside", id="tour")
    i, j = (int(x) - 1 for x in card["data-cell"].split(","))
    assert i == 4
    probs = gpt2.trace([t.id for t in gpt2.tokenize(text)])["block1.attn.probs"][2]
    assert float(card["data-prob"]) == pytest.approx(float(probs[i, j]), rel=1e-6)


def test_tour_start_link_and_end_link(client: TestClient) -> None:
    text = "On the deserted planet they discovered a"
    page = parse(client.get("/", params={"text": text}).text)
    start = page.one("a", **{"class": "tour-start"})["href"]
    assert query_of(start)["tour"] == "1"
    tour = client.get(start)
    end = parse(tour.text).one("a", **{"class": "end"})["href"]
    assert "tour" not in query_of(end)
    assert 'id="tour"' not in client.get(end).text


def test_bad_tour_step_gets_a_message_and_the_last_step(client: TestClient) -> None:
    r = client.get("/", params={"text": "Hello", "tour": "99"})
    assert r.status_code == 400  # like every bad control: the page, with a message saying what was used
    assert parse(r.text).one("aside", id="tour")["data-step"] == str(TOUR_STEPS)
    assert f"Tour step must be from 1 to {TOUR_STEPS}" in r.text


def test_a_sampling_control_updates_the_tour_card_live(client: TestClient, gpt2: GPT2) -> None:
    params = {"text": "Data visualization empowers users to", "tour": "17", "temperature": "2"}
    r = client.get("/", params=params, headers={"HX-Request": "true", "HX-Target": "output"})
    card = parse(r.text).one("aside", id="tour")
    assert card["hx-swap-oob"] == "true"  # swapped beside the output panel
    assert float(card["data-temperature"]) == 2.0
    logits = gpt2.trace([t.id for t in gpt2.tokenize(params["text"])]).logits.astype(np.float64)
    assert float(card["data-prob"]) == pytest.approx(float(softmax(logits / 2).max()), rel=1e-6)
    assert parse(r.text).one("div", id="share")["hx-swap-oob"] == "true"
    assert "temperature=2" in parse(r.text).one("input", id="permalink")["value"]
