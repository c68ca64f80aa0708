"""How fast a temperature change shows up: server time of the fragment, and the round trip in chromium.

GPT-2-small-shaped random weights (12 blocks, 12 heads, 768 wide, the real 50257-token vocabulary), an
8-token prompt, the trace already cached (moving the slider never runs the model). Server time is the route
alone: parse the URL, sample, build the output panel and the overview, render them. The browser round trip
runs from the slider's `input` event to the swapped output panel (it includes htmx's 15 ms debounce), in
Debian's chromium against a real uvicorn server. Medians over repeats of this run.
Budgets: 2 ms on the server, 50 ms in the browser. Last line: `slider_ms=<browser median>`.

    python bench/slider.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import threading
import time

import uvicorn
from fastapi.testclient import TestClient

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from model import GPT2, load_model, sample

TEXT = "Data visualization empowers users to see patterns"  # 8 tokens
HX = {"HX-Request": "true", "HX-Target": "output"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
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


def server_ms(client: TestClient, repeats: int) -> tuple[float, float]:
    """Median ms of the live fragment through the whole ASGI stack, and of the sampling alone."""
    url = f"/?text={TEXT.replace(' ', '+')}&temperature="
    client.get(url + "0.8", headers=HX)  # the trace is computed once, here
    times = []
    for t in temperatures(repeats):
        start = time.perf_counter()
        r = client.get(url + t, headers=HX)
        times.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200
    gpt2: GPT2 = client.app.state.serving.gpt2  # type: ignore[attr-defined]
    logits = gpt2.trace([t.id for t in gpt2.tokenize(TEXT)]).logits
    sampling = []
    for t in temperatures(repeats):
        start = time.perf_counter()
        sample(logits, float(t))
        sampling.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), statistics.median(sampling)


def browser_ms(app: object, repeats: int) -> float:
    """Median ms from the slider's input event to the swapped panel, in chromium."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/?text={TEXT}")
            page.wait_for_load_state("networkidle")
            page.evaluate(ROUND_TRIP, "1.00")  # warm up
            times = [page.evaluate(ROUND_TRIP, t) for t in temperatures(repeats)]
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random-gpt2")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    gpt2 = GPT2(load_model(args.model))
    app = create_app(Settings(), Serving(gpt2=gpt2, source=gpt2.loaded.description))
    with TestClient(app) as client:
        server, sampling = server_ms(client, args.repeats)
    print(f"model {gpt2.name}, vocabulary {gpt2.config.vocab_size}, prompt {len(gpt2.tokenize(TEXT))} tokens")
    print(f"server: live fragment {server:.2f} ms median (budget 2 ms; {server / 2:.2f} times it), of which "
          f"model.sample {sampling:.2f} ms")  # fmt: skip
    rt = browser_ms(app, args.repeats) if shutil.which("chromium") else float("nan")
    print(f"chromium: input event -> swapped panel {rt:.1f} ms median (budget 50 ms; {rt / 50:.2f} times it)")
    print(f"slider_ms={rt:.1f}")


if __name__ == "__main__":
    main()
