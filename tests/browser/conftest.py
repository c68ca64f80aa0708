"""Browser tests: a real uvicorn server (tiny model) in a thread, driven by Debian's chromium."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from model import GPT2, load_model

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The app on a loopback port; yields its base URL."""
    gpt2 = GPT2(load_model("tiny"))
    app = create_app(Settings(), Serving(gpt2=gpt2, source=gpt2.loaded.description))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


def slow_motion(page: Any, rate: float = 0.05) -> None:
    """Play this page's CSS animations at `rate` of their speed (Chrome's DevTools protocol), from its next
    navigation on: a test that looks at a playing figure still finds it playing on a loaded machine."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Animation.enable")
    cdp.send("Animation.setPlaybackRate", {"playbackRate": rate})


def open_page(browser: Any, url: str, slow: bool = False, **context: Any) -> tuple[Any, list[str]]:
    """A new 1280x900 page at `url`, and the list its console and page errors are collected into; `slow`
    plays its animations slowly (slow_motion)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
    page = ctx.new_page()
    if slow:
        slow_motion(page)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, errors


# The output panel's numbers at the temperature the slider shows (static/slider.css hides the other stops).
SHOWN_PROBS = """() => [...document.querySelectorAll('#output td.p .at')]
    .filter(e => getComputedStyle(e).visibility === 'visible').map(e => Number(e.dataset.prob))"""


def shown_count(page: Any, selector: str) -> int:
    """How many elements matching `selector` are shown (not hidden by the slider's stylesheet)."""
    return int(
        page.evaluate(
            "s => [...document.querySelectorAll(s)].filter(e => getComputedStyle(e).visibility === 'visible'"
            " && e.getClientRects().length).length",
            selector,
        )
    )


def move_slider(page: Any, temperature: str) -> None:
    """Click the temperature slider's stop at `temperature`, as a student does."""
    radio = page.locator(f'input[name=temperature][value="{temperature}"]')
    page.locator(f"label[for={radio.get_attribute('id')}]").click()
