"""/docs in Chromium with the network cut off: Swagger UI renders from the server alone, within the CSP."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

SHOTS = "/tmp/glassbox-shots"


def test_swagger_ui_renders_offline_within_the_csp(browser: Any, server: str) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    outside: list[str] = []

    def only_this_server(route: Any) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:  # the internet is not there
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    ctx.route("**/*", only_this_server)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{server}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    page.locator(".opblock-summary", has_text="/api/predict").first.click()
    page.wait_for_selector("text=temperature", timeout=10_000)
    page.screenshot(path=f"{SHOTS}/docs-offline.png", full_page=False)
    ctx.close()

    assert {"/api/trace", "/api/predict", "/healthz"} <= {p.strip().replace("\u200b", "") for p in paths}
    assert outside == []
    # Only decorative data: icons in Swagger UI's stylesheet meet the CSP (no img-src data:); nothing else
    blocked = [e for e in errors if "blocked" in e or "Refused" in e or "Content Security Policy" in e]
    assert all(e.startswith("Loading the image 'data:image/svg+xml") for e in blocked), blocked
    assert len(errors) == len(blocked), errors
