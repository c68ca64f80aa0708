"""A lecture hall at once: 300 virtual students on one server over loopback, for about 90 seconds.

Starts `glassbox serve` in a subprocess (GPT-2-small-shaped random weights by default: the real model's
cost), waits until it answers, then lets students arrive over the first 60 s. Each student, as a browser
with htmx would:
  1. opens the page with one of the five reference prompts (70 %) or a fresh text of their own (30 %),
     and fetches its stylesheet and htmx once;
  2. moves the temperature slider ten times across its stops, in five strokes of two: no request per
     move, one small request (HX-Target share) each time it rests, 0.6 s after a stroke;
  3. opens five panels (embedding, MLP, residual stream, attention at another block and another head);
  4. presses Generate twice.
Think times between steps are random (seeded), so requests interleave as in a room. Everything stops by
itself: students still busy at the deadline are cancelled and counted as errors.

Prints p50/p95/p99 per kind of request, status counts, the server's trace cache hit rate and model queue,
its peak resident memory (VmHWM, summed over worker processes) and CPU time. Budgets on 2 cores: p95 under
250 ms over the dynamic requests (static files excluded), 0 errors, 0 answers 503. Last line exactly
`p95_ms=<number> errors=<int>`.

With `--replicas N`, the students go through Debian's nginx running deploy/'s site file in front of N
single-worker servers (bench/cluster.py) instead of one server with `--workers`; the CPU counted is the
replicas' and nginx's, and nginx's own cache hits are counted from its X-Cache-Status header.
bench/scale_out.py runs both ways in one run and prints them side by side.

    python bench/classroom.py [--students 300] [--arrive 60] [--seconds 90] [--workers 1 | --replicas N]
                              [--threads 0] [--pace 1]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import httpx
from cluster import Cluster  # bench/cluster.py, next to this script

from app.state import REFERENCE_PROMPTS

KINDS = ("page", "slider", "panel", "generate", "static")
SETTLE = 0.6  # seconds the temperature slider rests before its one request (templates/controls.html)
FRONT = "nginx-cache"  # statuses counted under this name are nginx's X-Cache-Status, not HTTP statuses
BUDGET_MS = 250
SUBJECTS = (
    "My grandmother",
    "The old lighthouse keeper",
    "A curious robot",
    "Our chemistry teacher",
    "The tired student",
    "A small green frog",
    "The city council",
    "Every good story",
)
VERBS = (
    "always wanted to",
    "suddenly decided to",
    "was never allowed to",
    "quietly learned how to",
    "could not believe how to",
    "finally remembered to",
)


class Reply(NamedTuple):
    """What the student got back: the status, the headers htmx reads and the body (gzip as sent)."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        gzipped = self.headers.get("Content-Encoding") == "gzip"
        return (zlib.decompress(self.body, 16 + zlib.MAX_WBITS) if gzipped else self.body).decode()


class Student:
    """One browser: its current page state (the URL's query) and the timings it saw."""

    def __init__(
        self,
        base: str,
        rng: random.Random,
        timings: dict[str, list[float]],
        statuses: Counter[str],
        pace: float = 1.0,
    ) -> None:
        # its own connection, as each browser has. aiohttp parses HTTP in C: the load generator shares the
        # server's cores, so its CPU per request is taken from the server it measures. Bodies are read in
        # full but left compressed, except the first page, whose form the student reads.
        self.base = base
        self.client = aiohttp.ClientSession(
            base_url=base,
            connector=aiohttp.TCPConnector(limit=1),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=30),
            headers={"Accept-Encoding": "gzip"},
        )
        self.rng = rng
        self.timings = timings
        self.statuses = statuses
        self.pace = pace  # think times are multiplied by this (0: no thinking, for a quick check)
        self.state: dict[str, str] = {}
        self.hidden: list[str] = []  # the page's hidden state fields, which htmx includes

    def fresh_text(self) -> str:
        r = self.rng
        return f"{r.choice(SUBJECTS)} from room {r.randint(1, 999)} {r.choice(VERBS)}"

    async def get(
        self, kind: str, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> Reply | None:
        start = time.perf_counter()
        try:
            try:
                r = await self._get(url, params, headers)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                # the server closed an idle keep-alive connection as we reused it: browsers send a GET again
                self.statuses["retried on a new connection"] += 1
                r = await self._get(url, params, headers)
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            self.statuses[f"{kind} {type(err).__name__}"] += 1
            return None
        self.timings[kind].append((time.perf_counter() - start) * 1000)
        self.statuses[f"{kind} {r.status_code}"] += 1
        if cached := r.headers.get("X-Cache-Status"):  # nginx in front (--replicas): was it its copy?
            self.statuses[f"{FRONT} {cached}"] += 1
        return r

    async def _get(self, url: str, params: dict[str, str] | None, headers: dict[str, str] | None) -> Reply:
        async with self.client.get(url, params=params, headers=headers) as r:
            return Reply(r.status, r.headers, await r.read())

    def follow(self, r: Reply | None) -> None:
        """Take the state from the URL htmx pushes or replaces, as the browser's address bar does."""
        url = r and (r.headers.get("HX-Push-Url") or r.headers.get("HX-Replace-Url"))
        if url:
            self.state = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))

    def included(self, **changes: str) -> dict[str, str]:
        """What htmx sends: the committed text, the hidden state fields and the sampling controls."""
        fields = ("text", *self.hidden, "temperature", "top_k", "top_p", "seed")
        return {**{f: self.state.get(f, "") for f in fields}, **changes}

    def hx(self, target: str, trigger: str) -> dict[str, str]:
        return {
            "HX-Request": "true",
            "HX-Target": target,
            "HX-Trigger": trigger,
            "HX-Current-URL": f"{self.base}/?{urlencode(self.state)}",
        }

    async def think(self, lo: float, hi: float) -> None:
        await asyncio.sleep(self.rng.uniform(lo, hi) * self.pace)

    async def session(self) -> None:
        rng = self.rng
        text = rng.choice(REFERENCE_PROMPTS) if rng.random() < 0.7 else self.fresh_text()
        reply = await self.get("page", "/", params={"text": text})
        if reply is None or reply.status_code != 200:
            return
        page = reply.text
        # the values htmx will include, as the page holds them: its hidden fields and sampling controls
        fields = page[page.find('id="state-fields"') :]
        hidden = re.findall(
            r'<input type="hidden" name="([^"]+)" value="([^"]*)"', fields[: fields.find("</div>")]
        )
        self.hidden = [name for name, _ in hidden]
        self.state = {"text": text, **{n: html.unescape(v) for n, v in hidden}}
        for name in ("temperature", "top_k", "top_p", "seed"):
            value = re.search(rf'<input id="{name}" name="{name}"[^>]*? value="([^"]*)"', page)
            self.state[name] = html.unescape(value.group(1)) if value else ""
        for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', page):
            await self.get("static", asset)

        # the temperature slider's stops, as the page draws them (radios; every stop's output is on the page)
        stops = re.findall(r'<input type="radio" name="temperature" id="[^"]+" value="([^"]+)"', page) or [
            "1"
        ]
        await self.think(1.0, 3.0)  # reads the page, reaches for the slider
        for _ in range(5):  # ten moves in five strokes of two; the slider rests after each stroke
            for quick in (True, False):
                # a move asks the server nothing: the stylesheet shows the stop's output
                self.state["temperature"] = rng.choice(stops)
                if quick:
                    await self.think(0.15, 0.4)
            # it rests (htmx: change delay:600ms): one request updates the permalink and the share box
            await asyncio.sleep(SETTLE * self.pace)
            self.follow(await self.get("slider", "/", self.included(), self.hx("share", "temperature")))
            await self.think(0.4, 1.5)

        # another block and head than the first: GPT-2 small's 12 and 12, or what the page says the model has
        shape = re.search(r"(\d+) blocks \u00b7 (\d+) heads", page)
        blocks, heads = (int(shape.group(1)), int(shape.group(2))) if shape else (12, 12)
        layer, head = str(rng.randint(min(2, blocks), blocks)), str(rng.randint(min(2, heads), heads))
        clicks = [
            {"view": "embedding"},
            {"view": "mlp"},
            {"view": "residual"},
            {"view": "attention", "layer": layer},
            {"head": head},
        ]
        for vals in clicks:
            await self.think(0.8, 2.5)
            self.follow(await self.get("panel", "/", self.included(**vals), self.hx("page", "panel")))

        for _ in range(2):
            await self.think(0.8, 2.0)
            params = self.included(action="generate", text=self.state.get("text", text))
            self.follow(await self.get("generate", "/", params, self.hx("page", "controls")))


async def classroom(
    base: str, students: int, arrive: float, seconds: float, seed: int, pace: float = 1.0
) -> tuple[dict[str, list[float]], Counter[str], int]:
    """Run every student; return the timings per kind, status counts and how many were cut off."""
    timings: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    rng = random.Random(seed)
    starts = sorted(rng.uniform(0, arrive) for _ in range(students))

    async def one(n: int, at: float) -> None:
        await asyncio.sleep(at)
        student = Student(base, random.Random(rng.random() + n), timings, statuses, pace)
        try:
            await student.session()
        finally:
            await student.client.close()

    tasks = [asyncio.create_task(one(n, at)) for n, at in enumerate(starts)]
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failed = sum(1 for t in done if t.exception() is not None)
    return timings, statuses, len(pending) + failed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def process_tree(pid: int) -> list[int]:
    """The server and its worker processes."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.is_file() else []
    return [pid] + [p for k in kids for p in process_tree(k)]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_stats(base: str, workers: int) -> list[dict[str, Any]]:
    """/api/stats of every worker process (each new connection may reach another one)."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(20 * workers):
        stats = httpx.get(f"{base}/api/stats", timeout=10).json()
        seen[stats["pid"]] = stats
        if len(seen) == workers:
            break
    return list(seen.values())


def print_stats(workers: list[dict[str, Any]], cpu: float, students: int, arrive: float) -> None:
    """Trace cache, page cache and model queue, summed over the workers; the server's CPU per student."""

    def total(part: str, key: str) -> float:
        return sum(w[part][key] for w in workers if w.get(part))

    hits, misses = total("cache", "hits"), total("cache", "misses")
    print(
        f"trace cache ({len(workers)} worker(s)): hit rate {hits / max(1, hits + misses):.1%} ({hits:.0f} "
        f"hits, {misses:.0f} model runs), {total('cache', 'entries'):.0f} traces, "
        f"{total('cache', 'bytes') / 2**20:.0f} MB"
    )
    hits, misses = total("pages", "hits"), total("pages", "misses")
    print(
        f"page cache: hit rate {hits / max(1, hits + misses):.1%} ({hits:.0f} pages sent again, "
        f"{misses:.0f} drawn), {total('pages', 'bytes') / 2**20:.0f} MB"
    )
    hits, misses = total("pieces", "hits"), total("pieces", "misses")
    print(
        f"piece cache: hit rate {hits / max(1, hits + misses):.1%} ({hits:.0f} pages from drawn parts, "
        f"{misses:.0f} drawn), {total('pieces', 'bytes') / 2**20:.0f} MB"
    )
    print(
        f"model queue: {total('queue', 'runs'):.0f} runs tracing {total('queue', 'texts'):.0f} texts, mean "
        f"{max(w['queue']['mean_run_ms'] for w in workers)} ms (slowest worker), refused "
        f"{total('queue', 'refused'):.0f}, timed out {total('queue', 'timed_out'):.0f}"
    )
    each, model = cpu / max(1, students), total("queue", "run_cpu_s") / max(1, students)
    # what the arrivals ask of the machine: a queue stays short only while this is well under its cores
    print(
        f"server CPU per student: {each * 1000:.0f} ms, of which model runs {model * 1000:.0f} ms; "
        f"{students} students over {arrive:.0f} s ask for {each * students / arrive:.2f} cores of "
        f"{os.cpu_count()}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: argparse.Namespace, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--model",
        args.model,
        "--fallback",
        "",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
    ]
    env = {**os.environ, "GLASSBOX_CACHE": str(args.cache_dir)} if args.cache_dir else dict(os.environ)
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 300) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer within {timeout:.0f} s")


class Servers:
    """What the students reach: one `glassbox serve --workers N`, or nginx in front of `--replicas N`."""

    def __init__(self, args: argparse.Namespace, logs: Path) -> None:
        self.args = args
        self.logs = logs
        self.cluster: Cluster | None = None
        self.server: subprocess.Popen[bytes] | None = None
        if args.replicas:
            self.cluster = Cluster(
                args.replicas, model=args.model, threads=args.threads, nginx_workers="auto", prefix=logs
            )
            self.base = self.cluster.base
            self.shape = f"nginx in front of {args.replicas} single-worker replicas"
        else:
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self.shape = f"{args.workers} worker(s)"

    def start(self) -> float:
        """Start and wait until the students may come; the seconds it took."""
        start = time.perf_counter()
        if self.cluster is not None:  # the graph built once first, as `serve --workers N` does
            export = [sys.executable, "-m", "app.cli", "export", "--model", self.args.model]
            subprocess.run(export, check=True, capture_output=True)
            self.cluster.start()
            return time.perf_counter() - start
        self.server = start_server(self.args, self.port, self.logs / "server.log")
        return wait_ready(self.base, self.server)

    def groups(self) -> dict[str, list[int]]:
        """The processes serving, by part: the server and its workers, or each replica and nginx."""
        if self.cluster is not None:
            parts = {f"replica {i + 1}": r.proc for i, r in enumerate(self.cluster.replicas)}
            parts["nginx"] = self.cluster.nginx
            return {name: process_tree(proc.pid) for name, proc in parts.items() if proc is not None}
        assert self.server is not None
        return {"server": process_tree(self.server.pid)}

    def pids(self) -> list[int]:
        return [p for pids in self.groups().values() for p in pids]

    def stats(self) -> list[dict[str, Any]]:
        if self.cluster is not None:
            return [r.stats() for r in self.cluster.replicas]
        return worker_stats(self.base, self.args.workers)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        elif self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=300)
    p.add_argument("--arrive", type=float, default=60, help="seconds over which students arrive")
    p.add_argument("--seconds", type=float, default=90, help="hard stop for the whole class")
    p.add_argument("--model", default="random-gpt2")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--replicas", type=int, default=0, help="N single-worker servers behind nginx instead")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads per run (0: one per core)")
    p.add_argument("--cache-dir", type=Path, default=None, help="GLASSBOX_CACHE for the built graph")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pace", type=float, default=1.0, help="think times x this (0: none, for a quick check)")
    args = p.parse_args()
    if args.cache_dir:
        os.environ["GLASSBOX_CACHE"] = str(args.cache_dir)

    servers = Servers(args, Path(tempfile.mkdtemp(prefix="glassbox-classroom-")))
    try:
        ready = servers.start()
        print(
            f"server ready in {ready:.1f} s ({args.model}, {servers.shape}, threads "
            f"{args.threads or 'one per core'}); logs: {servers.logs}"
        )
        parts_before = {k: sum(cpu_seconds(p) for p in v) for k, v in servers.groups().items()}
        pids = servers.pids()
        cpu_before = sum(cpu_seconds(p) for p in pids)
        load_before = os.getloadavg()[0]
        start, own_cpu = time.perf_counter(), time.process_time()
        timings, statuses, cut = asyncio.run(
            classroom(servers.base, args.students, args.arrive, args.seconds, args.seed, args.pace)
        )
        wall, own_cpu = time.perf_counter() - start, time.process_time() - own_cpu
        pids = servers.pids()
        cpu = sum(cpu_seconds(p) for p in pids) - cpu_before
        parts = {k: sum(cpu_seconds(p) for p in v) - parts_before[k] for k, v in servers.groups().items()}
        peaks = [round(status_kb(p, "VmHWM") / 1024) for p in pids]
        workers = servers.stats()
    finally:
        servers.stop()

    print(
        f"\n{args.students} students in {wall:.1f} s; server CPU {cpu:.1f} s ({cpu / wall:.2f} cores), "
        f"this client's {own_cpu:.1f} s; load average before {load_before:.2f}, after "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(f"\n{'kind':<10}{'count':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    dynamic = [t for k in KINDS if k != "static" for t in timings[k]]
    for kind, values in [*((k, timings[k]) for k in KINDS), ("all", dynamic)]:
        cells = [percentile(values, q) for q in (50, 95, 99, 100)]
        print(f"{kind:<10}{len(values):>7}" + "".join(f"{c:>10.1f}" for c in cells))
    retried = statuses.pop("retried on a new connection", 0)
    front = {k.split(" ", 1)[1]: statuses.pop(k) for k in list(statuses) if k.startswith(FRONT)}
    codes = Counter(key.split(" ", 1)[1] for key in statuses.elements())
    busy = codes.get("503", 0)
    errors = sum(n for code, n in codes.items() if code not in ("200", "503")) + cut  # 503s: counted apart
    print(
        f"\nstatus counts: {dict(sorted(codes.items()))}; students cut off at the deadline: {cut}; "
        f"requests sent again after the server closed an idle connection: {retried}"
    )
    print(f"503 answers: {busy}")
    if front:
        hits = front.get("HIT", 0)
        print(
            f"nginx cache: hit rate {hits / sum(front.values()):.1%} ({hits} answers from nginx's copy, of "
            f"{sum(front.values())}; {front})"
        )
    print_stats(workers, cpu, args.students, args.arrive)
    if len(parts) > 1:  # how the work fell on the replicas (the hash sends each text to one) and on nginx
        print("CPU by part: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in parts.items()))
    print(f"server peak RSS: {sum(peaks)} MB over {len(pids)} process(es) {peaks}")
    p95 = percentile(dynamic, 95)
    verdict = "met" if p95 < BUDGET_MS and errors == 0 and busy == 0 else "MISSED"
    print(f"budget p95 < {BUDGET_MS} ms, 0 errors, 0 503: {verdict}")
    print(f"p95_ms={p95:.1f} errors={errors}")


if __name__ == "__main__":
    main()
