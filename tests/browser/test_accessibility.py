"""axe-core's WCAG 2.1 AA rules on every kind of page: no serious or critical violation.

axe-core comes from npm (tests/browser/axe/package.json; `.ci/run` runs `npm ci` there). It is injected into a
context with `bypass_csp=True`, since the pages' CSP rightly refuses any script but htmx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from tests.browser.conftest import move_slider, open_page

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
TEXT = quote_plus("Data visualization empowers users to")
DOCTOR, DOCTOR2 = quote_plus("The doctor said that he"), quote_plus("The doctor said that she")

PAGES = {
    "front": "/",
    "embedding": f"/?text={TEXT}&view=embedding",
    "attention probs": f"/?text={TEXT}&view=attention&layer=2&head=3&step=probs",
    "attention masked": f"/?text={TEXT}&view=attention&step=masked",
    "attention concat": f"/?text={TEXT}&view=attention&step=concat",
    "mlp": f"/?text={TEXT}&view=mlp&token=3",
    "residual": f"/?text={TEXT}&view=residual",
    "expanded overview": f"/?text={TEXT}&expand=1",
    "projector": f"/?text={TEXT}&present=1",
    "projector panel": f"/?text={TEXT}&present=1&view=attention&layer=2&head=2&step=probs",
    "projector heads": f"/?text={TEXT}&present=1&view=heads&ablate=1.2",  # its grid beside its words
    "projector embedding": f"/?text={TEXT}&present=1&view=embedding",
    "projector kv": f"/?text={TEXT}&present=1&view=kv&layer=2",
    "named panel": f"/?text={TEXT}&view=mlp&token=3&layer=2",
    "slider moved": f"/?text={TEXT}&temperature=3.3&top_k=3",
    "hot and filtered": f"/?text={TEXT}&temperature=3&top_k=5&top_p=0.5&seed=7",
    "tour start": f"/?text={TEXT}&tour=1",
    "tour output": f"/?text={TEXT}&tour=18",
    "chinese": f"/?text={TEXT}&lang=zh-CN&view=mlp",
    "bad input": "/?text=%20&temperature=99",
    "heads switched off": f"/?text={TEXT}&ablate=1.2,2.3&view=attention&step=probs",
    "which heads matter": f"/?text={TEXT}&view=heads&ablate=2.1",
    "compare": f"/?text={DOCTOR}&text2={DOCTOR2}&view=compare&patch=1.5",
    "compare empty": f"/?text={DOCTOR}&view=compare",
    "compare bad patch": f"/?text={DOCTOR}&text2={DOCTOR2}&view=compare&patch=2.9",
    "heads off, chinese": f"/?text={TEXT}&ablate=1.1&view=heads&lang=zh-CN",
    "compare projected": f"/?text={DOCTOR}&text2={DOCTOR2}&view=compare&patch=0.5&present=1",
    "tour head off": f"/?text={TEXT}&tour=22",
    "tour patching": f"/?text={TEXT}&tour=24",
    "api": "/api",
    "attention weights": f"/?text={TEXT}&view=attention&layer=2&head=3&weights=1",
    "embedding weights": f"/?text={TEXT}&view=embedding&weights=1",
    "residual weights": f"/?text={TEXT}&view=residual&weights=1&lang=zh-CN",
    "kv cache": f"/?text={TEXT}&view=kv&layer=2&head=3&gen=262,318",
    "tour kv cache": f"/?text={TEXT}&tour=27",
}


# pages checked after the temperature slider moved (with no request: the stylesheet shows another stop)
MOVED = {"slider moved": "0.2"}


def serious_violations(page: Any) -> list[str]:
    """The serious and critical WCAG 2.1 A/AA violations axe finds, one line each."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_AA,
    )
    return [
        f"{v['id']} ({v['impact']}): {node['target']} {node.get('failureSummary', '')[:200]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
        for node in v["nodes"]
    ]


@pytest.mark.parametrize("name", PAGES)
def test_page_has_no_serious_wcag_violation(server: str, browser: Any, name: str) -> None:
    if not AXE.is_file():
        pytest.skip("axe-core is not installed: run `npm ci --prefix tests/browser/axe`")
    page, _ = open_page(browser, server + PAGES[name], bypass_csp=True)
    if name in MOVED:
        move_slider(page, MOVED[name])
    # figures that play are checked at rest: a part fading in is, for a moment, faint on purpose
    page.evaluate("() => document.getAnimations().forEach(a => a.finish())")
    assert serious_violations(page) == []
    page.context.close()


def test_axe_finds_a_planted_violation(server: str, browser: Any) -> None:
    """The check itself works: grey-on-white text below 4.5:1 is reported."""
    if not AXE.is_file():
        pytest.skip("axe-core is not installed: run `npm ci --prefix tests/browser/axe`")
    page, _ = open_page(browser, server + "/api", bypass_csp=True)
    page.evaluate(
        "() => { const p = document.createElement('p'); p.textContent = 'faint words';"
        " p.style.color = '#bbb'; p.style.background = '#fff'; document.body.prepend(p); }"
    )
    found = serious_violations(page)
    assert any(line.startswith("color-contrast") for line in found), found
    page.context.close()
