"""The temperature slider: its stops, their stylesheet rules, and every stop's numbers on the page."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.paths import STATIC_DIR
from app.state import TEMPERATURE
from app.views.slider import EXTRA, MAX_STOPS, STOPS, css_rules, stops_for
from model import GPT2, sample
from tests.web.conftest import HX, fan_group, parse, stop_rows

TEXT = "Data visualization empowers users to"


def test_the_stops_span_the_range_in_even_ratios() -> None:
    assert tuple(sorted(STOPS)) == STOPS and STOPS[0] == TEMPERATURE[0] and STOPS[-1] == TEMPERATURE[1]
    assert TEMPERATURE[2] in STOPS  # the default is a stop
    ratios = [b / a for a, b in itertools.pairwise(STOPS)]
    assert all(1.1 < r <= 2.0 for r in ratios), ratios


def test_a_links_own_temperature_gets_the_extra_stop_in_its_place() -> None:
    stops = stops_for(1.7)
    assert [s.value for s in stops] == sorted([*STOPS, 1.7])  # the arrow keys walk them in order
    extra = next(s for s in stops if s.value == 1.7)
    assert extra.index == EXTRA and extra.cls == f"s{EXTRA}"
    # every standard stop keeps its index, so parts drawn for one page match another page's radios
    assert [(s.index, s.value) for s in stops if s.index != EXTRA] == list(enumerate(STOPS))
    assert [s.value for s in stops_for(1.0)] == list(STOPS)


def test_the_stylesheet_has_the_rules_of_every_stop() -> None:
    css = (STATIC_DIR / "slider.css").read_text()
    assert css.endswith(css_rules())  # written from app/views/slider.py: run css_rules() if this fails
    assert f"#temperature-s{MAX_STOPS - 1}:checked" in css and f"#temperature-s{MAX_STOPS}:" not in css


@pytest.mark.parametrize("filters", [{}, {"top_k": "3"}, {"top_p": "0.01", "seed": "4"}])
def test_every_stop_shows_the_samplers_numbers(
    client: TestClient, gpt2: GPT2, filters: dict[str, str]
) -> None:
    html = client.get("/", params={"text": TEXT, "temperature": "1.7", **filters}).text
    logits = gpt2.trace([t.id for t in gpt2.tokenize(TEXT)]).logits
    top_k = int(filters["top_k"]) if "top_k" in filters else None
    top_p = float(filters["top_p"]) if "top_p" in filters else None
    seed = int(filters.get("seed", "0"))
    radios = parse(html).all("input", name="temperature")
    assert [r["value"] for r in radios] == [s.text for s in stops_for(1.7)]
    assert [r["value"] for r in radios if "checked" in r] == ["1.7"]
    for stop in stops_for(1.7):
        s = sample(logits, stop.value, top_k, top_p, seed=seed)
        rows = stop_rows(html, stop.text)
        assert [i for i, _p, _a in rows[:10]] == [int(i) for i in s.top(10)]
        for i, prob, prob_all in rows:
            assert prob == pytest.approx(s.probs[i], rel=1e-9, abs=1e-15)
            assert prob_all == pytest.approx(s.probs_all[i], rel=1e-9)
        if s.token not in s.top(10):  # the drawn token's own row, shown at this stop only
            assert rows[-1][0] == s.token
        fan = fan_group(html, stop.text)
        drawn = [int(c["data-id"]) for c in fan.all("rect", data_id="*") if "sampled" in c["class"]]
        assert drawn == [s.token]


def test_the_bars_are_shares_of_the_likeliest_with_a_mark_at_temperature_one(
    client: TestClient, gpt2: GPT2
) -> None:
    html = client.get("/", params={"text": TEXT, "temperature": "5", "top_k": "4"}).text
    logits = gpt2.trace([t.id for t in gpt2.tokenize(TEXT)]).logits
    hot, one = sample(logits, 5.0, 4), sample(logits, 1.0, 4)
    cls = parse(html).one("input", name="temperature", value="5")["id"].removeprefix("temperature-")
    widths = [float(r["width"]) for r in parse(html).all("rect", **{"class": "frame f3 grow"})]
    marks = [float(r["x"]) + 1 for r in parse(html).all("rect", **{"class": "t1"})]
    k = [s.text for s in stops_for(5.0)].index("5")
    n = len(stops_for(5.0))
    top = hot.order[0]
    for row, i in enumerate(hot.top(4)):  # kept rows: each bar its share of the likeliest, at T = 5 and 1
        assert widths[row * n + k] == pytest.approx(200 * hot.probs[i] / hot.probs[top], abs=0.01)
        mark = 200 * one.probs[i] / one.probs[top]
        assert marks[row * n + k] == pytest.approx(min(max(mark, 1), 199), abs=0.01)  # kept on the track
    assert widths[k] == 200.0  # the likeliest fills its track, however flat the distribution
    assert widths[4 * n + k] == 0  # the fifth is cut by top-k 4 ...
    assert f'<span class="at {cls} cut first-cut"' in html  # ... and the cut line is drawn above it


def test_the_settled_slider_updates_the_permalink_and_downloads_only(client: TestClient) -> None:
    params = {"text": TEXT, "temperature": "2.5", "top_k": "5", "seed": "3"}
    r = client.get("/", params=params, headers={**HX, "HX-Target": "share"})
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<div id="share"')  # the swap's target, not out of band
    assert "temperature=2.5&top_k=5&top_p=&seed=3" in r.headers["HX-Replace-Url"]
    page = parse(r.text)
    assert "temperature=2.5&top_k=5" in page.one("input", id="permalink")["value"]
    for panel in ("overview", "output"):
        downloads = page.one("p", id=f"{panel}-downloads")
        assert downloads["hx-swap-oob"] == "true"
    assert all("temperature=2.5" in a["href"] for a in page.all("a", download="*"))
    assert page.all("section") == [] and "<svg" not in r.text  # the picture is already on the page
    assert len(r.content) < 6000


def test_the_slider_is_a_radio_group_inside_the_form(client: TestClient) -> None:
    html = client.get("/", params={"text": TEXT}).text
    form = html[html.index('<form id="controls"') : html.index("</form>")]
    group = parse(form).one("fieldset", hx_trigger="*")
    assert group["hx-target"] == "#share" and "change delay:" in group["hx-trigger"]
    assert len(parse(form).all("input", type="radio", name="temperature")) == len(STOPS)
    for stop in stops_for(1.0):
        assert f'<label for="temperature-{stop.cls}"' in form


def test_the_fan_opens_the_output_panel_on_the_same_page(client: TestClient) -> None:
    html = client.get("/", params={"text": TEXT, "temperature": "0.5"}).text
    start = html.index('<svg id="fan"')
    link = parse(html[start : html.index("</svg>", start)]).one("a", href="*")
    assert link["href"] == "#output"  # no temperature in it to go stale when the slider moves
    assert "aria-label" not in link  # named by what the shown stop draws: its candidates and their numbers


def test_no_inline_script_or_style(client: TestClient) -> None:
    html = client.get("/", params={"text": TEXT, "temperature": "3.3", "top_k": "2"}).text
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert all(tag != "script" or "src" in a for tag, a in parse(html).tags)
    assert Path(STATIC_DIR / "slider.css").is_file()


def test_a_moved_filter_slider_wins_over_its_typed_field(client: TestClient) -> None:
    base = {"text": TEXT, "top_k": "3", "top_k_slider": "3", "top_k_slider_at": "3", "top_p": ""}
    moved = {**base, "top_k_slider": "12"}  # the slider moved; the typed field still says 3
    r = client.get("/", params=moved, headers={**HX, "HX-Target": "output"})
    assert "top_k=12&" in r.headers["HX-Replace-Url"]
    page = parse(r.text)
    assert page.one("input", id="top_k")["value"] == "12"  # the typed field follows, out of band
    assert page.one("input", id="top_k_slider_at")["value"] == "12"
    assert page.all("input", id="top_k_slider") == []  # the slider in the reader's hand is left alone
    typed = {**base, "top_k": "40"}  # the typed field changed; the slider did not
    r = client.get("/", params=typed, headers={**HX, "HX-Target": "output"})
    assert "top_k=40&" in r.headers["HX-Replace-Url"]
    assert parse(r.text).one("input", id="top_k_slider")["value"] == "40"
    assert parse(r.text).all("input", id="top_k") == []
    # without JavaScript the form sends both, and Apply's answer is the permalink
    r = client.get(
        "/",
        params={**moved, "top_p_slider": "0.3", "top_p_slider_at": "1", "action": "run"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "top_k=12&top_p=0.3&" in r.headers["location"]
    assert "slider" not in r.headers["location"]


def test_the_filter_sliders_sit_where_the_filter_is(client: TestClient) -> None:
    page = parse(client.get("/", params={"text": TEXT, "top_k": "500", "top_p": "0.33"}).text)
    assert page.one("input", id="top_k_slider")["value"] == "50"  # past its end: at the end
    assert page.one("input", id="top_p_slider")["value"] == "0.35"  # to its step of 0.05
    page = parse(client.get("/", params={"text": TEXT}).text)  # off: the right end
    assert (page.one("input", id="top_k_slider")["value"], page.one("input", id="top_p_slider")["value"]) == (
        "50",
        "1",
    )
