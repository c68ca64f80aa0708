"""In chromium: a busy server's answer lands in the messages box and the student's page stays put.

Uses the session's chromium (`browser` in tests/browser/conftest.py); the server here lets no request wait.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from app.loading import Serving
from app.main import create_app
from app.refusals import BUSY_MESSAGE
from app.settings import Settings
from model import GPT2, load_model
from tests.classroom.conftest import TEXT

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def busy_app() -> Iterator[tuple[FastAPI, str]]:
    """A server that runs one model run at a time and lets none wait."""
    gpt2 = GPT2(load_model("tiny"))
    app = create_app(Settings(max_running=1, queue_size=0), Serving(gpt2=gpt2, source="tiny"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_busy_answer_shows_in_the_page_and_keeps_it(busy_app: tuple[FastAPI, str], browser: Any) -> None:
    app, url = busy_app
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.goto(f"{url}/?text={TEXT}")
    chips = page.locator("#tokens .chip").all_inner_texts()

    with app.state.run_queue.slot():  # the model is busy with someone else's run
        page.locator("#text").fill("A sentence nobody has traced yet")
        page.locator("button[value=run]").click()
        page.wait_for_selector("#messages p.error")

    assert page.locator("#messages p.error").inner_text() == BUSY_MESSAGE
    assert page.locator("#tokens .chip").all_inner_texts() == chips  # the page the student had stays
    assert not [m for m in console if "Content Security Policy" in m]
    page.close()


def test_the_busy_page_without_javascript(busy_app: tuple[FastAPI, str], browser: Any) -> None:
    app, url = busy_app
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()

    with app.state.run_queue.slot():
        response = page.goto(f"{url}/?text=Another+sentence+nobody+traced")

    assert response.status == 503
    assert page.locator("h1").inner_text() == "The server is busy"
    assert page.locator("#messages p.error").inner_text() == BUSY_MESSAGE
    page.screenshot(path="/tmp/glassbox-busy.png")
    context.close()
