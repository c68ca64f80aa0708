"""How fast a temperature change shows up: server time of the fragment, and the round trip in chromium.

GPT-2-small-shaped random weights (12 blocks, 12 heads, 768 wide, the real 50257-token vocabulary), an
8-token prompt, the trace already cached (moving the slider never runs the model). Server time is the route
alone (parse the URL, sample, build the output panel and the overview's ribbons, render them), and the same
request through every middleware in-process (no sockets; the page cache off). The browser round trip runs
from the slider's `input` event to the swapped output panel (no debounce: htmx sends on each input event and
drops answers it no longer needs), in Debian's chromium against `glassbox serve` in its own process. Medians
over repeats of this run.
Budgets: 2 ms on the server, 50 ms in the browser. Last line: `slider_ms=<browser median>`.

    python bench/slider.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

from classroom import free_port, wait_ready  # bench/classroom.py, next to this script
from starlette.requests import Request

from app import deps
from app.loading import Serving
from app.main import create_app
from app.routes.pages import page
from app.settings import Settings
from model import GPT2, load_model, sample


def now(coroutine: Any) -> Any:
    """The value of a coroutine that awaits nothing (app/deps.py's dependencies), without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the dependency awaited something")


def route(request: Request) -> Any:
    """The page route with its dependencies worked out as FastAPI would (app/deps.py)."""
    site = now(deps.site(request))
    lang = now(deps.language(request))
    parsed = now(deps.parsed(request, site, lang))
    return page(site, parsed, lang, now(deps.htmx_target(request)), now(deps.base(request, site)))


TEXT = "Data visualization empowers users to see patterns"  # 8 tokens
HX = {"HX-Request": "true", "HX-Target": "output"}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Test-harness only (the product ships no JavaScript): move the slider, resolve when htmx has swapped.
ROUND_TRIP = """async (value) => {
  const slider = document.getElementById('temperature');
  const done = new Promise(r => document.body.addEventListener('htmx:afterSettle', r, {once: true}));
  const start = performance.now();
  slider.value = value;
  slider.dispatchEvent(new Event('input', {bubbles: true}));
  await done;
  return performance.now() - start;
}"""


def temperatures(n: int) -> list[str]:
    return [f"{0.3 + 0.05 * (i % 60):.2f}" for i in range(n)]


def server_ms(app: Any, repeats: int) -> tuple[float, float, float]:
    """Median ms of the live fragment: the route alone, the whole ASGI stack in-process (every middleware,
    no sockets), and the sampling alone."""
    url = f"text={TEXT.replace(' ', '+')}&temperature="
    headers = [(b"host", b"bench"), (b"accept-encoding", b"gzip")] + [
        (k.lower().encode(), v.encode()) for k, v in HX.items()
    ]

    def scope(t: str) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "query_string": (url + t).encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("bench", 80),
            "app": app,
        }

    async def call(t: str) -> int:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope(t), receive, send)
        return int(sent[0]["status"])

    async def stack() -> list[float]:
        started: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await started.put({"type": "lifespan.startup"})
        done = asyncio.Event()

        async def lifespan_send(message: dict[str, Any]) -> None:
            done.set()

        life = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, started.get, lifespan_send)
        )
        await done.wait()
        assert await call("0.8") == 200  # the trace is computed once, here
        times = []
        for t in temperatures(repeats):
            start = time.perf_counter()
            assert await call(t) == 200
            times.append((time.perf_counter() - start) * 1000)
        life.cancel()
        return times

    stack_times = asyncio.run(stack())
    route_times = []
    for t in temperatures(repeats):
        request = Request(scope(t))
        start = time.perf_counter()
        route(request)
        route_times.append((time.perf_counter() - start) * 1000)
    gpt2: GPT2 = app.state.serving.gpt2
    trace = gpt2.trace([t.id for t in gpt2.tokenize(TEXT)])
    sampling = []
    for t in temperatures(repeats):
        start = time.perf_counter()
        sample(trace.logits, float(t), order=trace.logit_order())
        sampling.append((time.perf_counter() - start) * 1000)
    return statistics.median(route_times), statistics.median(stack_times), statistics.median(sampling)


def browser_ms(model: str, repeats: int) -> float:
    """Median ms from the slider's input event to the swapped panel, in chromium, against `glassbox serve`
    in a process of its own (as deployed: the browser's driver does not share the server's interpreter)."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    cmd = [sys.executable, "-m", "app.cli", "serve", "--model", model, "--fallback", "", "--port", str(port)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            tab = browser.new_page(viewport={"width": 1440, "height": 900})
            tab.goto(f"http://127.0.0.1:{port}/?text={TEXT}")
            tab.wait_for_load_state("networkidle")
            tab.evaluate(ROUND_TRIP, "1.00")  # warm up
            times = [tab.evaluate(ROUND_TRIP, t) for t in temperatures(repeats)]
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random-gpt2")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    gpt2 = GPT2(load_model(args.model))
    app = create_app(Settings(page_cache_mb=0), Serving(gpt2=gpt2, source=gpt2.loaded.description))
    route, stack, sampling = server_ms(app, args.repeats)
    print(f"model {gpt2.name}, vocabulary {gpt2.config.vocab_size}, prompt {len(gpt2.tokenize(TEXT))} tokens")
    print(
        f"server: live fragment {route:.2f} ms median in the route (budget 2 ms; {route / 2:.2f} times), "
        f"{stack:.2f} ms through every middleware; model.sample {sampling:.2f} ms"
    )
    rt = browser_ms(args.model, args.repeats) if shutil.which("chromium") else float("nan")
    print(f"chromium: input event -> swapped panel {rt:.1f} ms median (budget 50 ms; {rt / 50:.2f} times it)")
    print(f"slider_ms={rt:.1f}")


if __name__ == "__main__":
    main()
