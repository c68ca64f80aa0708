"""A worker's memory under hostile load, next to README's plan of about 1.6 GB a worker.

Each scenario runs against a fresh `glassbox serve` (random-gpt2 by default: GPT-2 small's shapes) in its own
process, and prints that worker's peak resident memory (VmHWM) and its memory at the end, next to the plan:
  views:   18 texts of 32 tokens x 64 attention views (every block and head, steps in turn), 8 at once: the
           pictures drawn from each trace are kept with it and counted in the trace cache's budget
  exports: 60 distinct 256-token PNG exports of the attention map on 20 threads: exports wait in a lane of
           their own, one render at a time, capped at 2048 x 2048 pixels
  unread:  30 sockets asking for a 4-million-number /api/trace answer and never reading it: the answer is
           streamed, so an unread one holds back the writing instead of tens of MB each
Last line: `peak_rss_mb=<the largest peak> plan_mb=1600`.

    python bench/memory.py [--model random-gpt2] [--only views|exports|unread] [--views 64] [--texts 18]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import httpx

PLAN_MB = 1600  # README: about 1.6 GB per worker
WORDS = ("river", "signal", "lantern", "orbit", "velvet", "harbor", "cinder", "meadow", "quartz", "echo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def text_of(seed: int, words: int) -> str:
    """A text of `words` words (a few more tokens) that no other seed gives."""
    return " ".join(f"{WORDS[(seed * 7 + k * 3) % len(WORDS)]}{seed if k == 0 else ''}" for k in range(words))


def text_of_tokens(seed: int, tokens: int) -> str:
    """A text of exactly `tokens` GPT-2 tokens (or one fewer) that no other seed gives."""
    from model.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(None)  # GPT-2's own files, as every model here uses
    words = tokens
    while len(tok.encode(text := text_of(seed, words))) > tokens:
        words -= 1
    return text


def build_graph(model: str, cache_dir: str | None) -> None:
    """Build the model's ONNX graph here, once, so no server's peak is the build's (about 2 GB)."""
    from model.runtime import ensure_model_graph
    from model.sources import load_model

    ensure_model_graph(load_model(model), Path(cache_dir) if cache_dir else None)


class Server:
    """`glassbox serve` in a process of its own, with its worker's memory read from /proc."""

    def __init__(self, model: str, cache_dir: str | None, *flags: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "app.cli", "serve", "--model", model, "--fallback", "", "--port"]
        env = {**os.environ, **({"GLASSBOX_CACHE": cache_dir} if cache_dir else {})}
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [*cmd, str(self.port), *flags], stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"the server exited: {self.log.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit("the server did not start")

    def memory_mb(self) -> tuple[float, float]:
        """(now, peak) resident memory of the worker, in MB."""
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
            if ":" in line
        )
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def views(base: str, texts: int, per_text: int) -> tuple[int, dict[int, int]]:
    """Every text's attention views (blocks, heads and steps in turn), 8 requests at once."""
    steps = ("qkv", "scores", "scaled", "masked", "probs", "heads", "concat", "out")
    urls = []
    for t in range(texts):
        text = text_of(t, 32)
        for k in range(per_text):
            params = {"text": text, "view": "attention", "layer": 1 + k % 12, "head": 1 + (k // 12) % 12}
            params["step"] = steps[k % len(steps)]
            urls.append(f"{base}/?{urlencode(params)}")
    return fetch_all(urls, 8)


def exports(base: str, n: int, threads: int, tokens: int) -> tuple[int, dict[int, int]]:
    """`n` distinct long-text PNG exports on `threads` threads."""
    texts = [text_of_tokens(k, tokens) for k in range(n)]
    urls = [f"{base}/export/attention.png?{urlencode({'text': t, 'step': 'probs'})}" for t in texts]
    return fetch_all(urls, threads, timeout=600)


def fetch_all(urls: list[str], threads: int, timeout: float = 120) -> tuple[int, dict[int, int]]:
    statuses: dict[int, int] = {}
    said: set[str] = set()
    with httpx.Client(timeout=timeout) as client, ThreadPoolExecutor(threads) as pool:
        for r in pool.map(client.get, urls):
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code >= 400 and len(said) < 3 and r.text[:200] not in said:
                said.add(r.text[:200])
                print(f"  {r.status_code}: {r.text[:200]!r}")
    return len(urls), statuses


def unread(server: Server, sockets: int, tokens: int, hold: float) -> tuple[int, dict[int, int]]:
    """`sockets` clients asking for a big /api/trace answer and reading nothing for `hold` seconds."""
    query = urlencode({"text": text_of(1, tokens), "names": "block0.attn.*"})  # about 3 million numbers
    whole = httpx.get(f"{server.base}/api/trace?{query}", timeout=300)  # traced now, and its size known
    before, _ = server.memory_mb()
    open_ = []
    for _ in range(sockets):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /api/trace?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        open_.append(s)
    time.sleep(hold)
    during, _ = server.memory_mb()
    for s in open_:
        s.close()
    size = len(whole.content) / 2**20
    print(
        f"  one answer: {whole.status_code}, {size:.0f} MB; RSS {before:.0f} MB before the {sockets} unread"
    )
    print(
        f"  clients, {during:.0f} MB after {hold:g} s of them (buffered whole: {sockets * size:.0f} MB more)"
    )
    return sockets + 1, {whole.status_code: 1}


def scenario(
    name: str, args: argparse.Namespace, run: Callable[[Server], tuple[int, dict[int, int]]], *flags: str
) -> float:
    server = Server(args.model, args.cache_dir, *flags)
    try:
        start_mb, _ = server.memory_mb()
        t0 = time.perf_counter()
        n, statuses = run(server)
        seconds = time.perf_counter() - t0
        now, peak = server.memory_mb()
    finally:
        server.stop()
    memory = f"RSS after loading {start_mb:.0f} MB, peak {peak:.0f} MB, at the end {now:.0f} MB"
    plan = f"plan {PLAN_MB} MB per worker; peak / plan {peak / PLAN_MB:.2f}"
    print(
        f"{name:8} {n:5d} requests in {seconds:6.1f} s, statuses {statuses or '-'}: {memory} ({plan})",
        flush=True,
    )
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random-gpt2")
    parser.add_argument("--only", choices=("views", "exports", "unread"))
    parser.add_argument("--texts", type=int, default=18)
    parser.add_argument("--views", type=int, default=64)
    parser.add_argument("--exports", type=int, default=60)
    parser.add_argument("--export-tokens", type=int, default=256)
    parser.add_argument("--sockets", type=int, default=30)
    parser.add_argument("--hold", type=float, default=10.0, help="seconds the unread sockets stay open")
    parser.add_argument("--cache-dir", default=None, help="GLASSBOX_CACHE for the servers (the built graph)")
    args = parser.parse_args()
    runs: dict[str, Callable[[Server], tuple[int, dict[int, int]]]] = {
        "views": lambda s: views(s.base, args.texts, args.views),
        "exports": lambda s: exports(s.base, args.exports, 20, args.export_tokens),
        "unread": lambda s: unread(s, args.sockets, 200, args.hold),
    }
    build_graph(args.model, args.cache_dir)
    # every export waits its turn rather than being refused, so all of them render: the worst case for memory
    flags = {"exports": ("--export-queue", "64", "--queue-timeout", "600")}
    peaks = [
        scenario(name, args, run, *flags.get(name, ()))
        for name, run in runs.items()
        if args.only in (None, name)
    ]
    print(f"peak_rss_mb={max(peaks):.0f} plan_mb={PLAN_MB}")


if __name__ == "__main__":
    main()
