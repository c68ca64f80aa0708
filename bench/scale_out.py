"""One machine, N cores: `glassbox serve --workers N` against nginx in front of N single-worker replicas.

Runs bench/classroom.py both ways, one after the other and `--rounds` times in turn (the same students, the
same seed), and prints them side by side with the ratio replicas / workers: p95 over the dynamic requests,
errors and 503s, the trace, piece and page cache hit rates summed over processes, nginx's own cache, model
runs, CPU per student and peak memory. The rounds show how much the machine's other load moves the numbers.

    python bench/scale_out.py [--n 2] [--students 170] [--rounds 2] [--threads 1] [--model random-gpt2]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (label, pattern on classroom.py's output); each pattern's first group is the number shown
METRICS = (
    ("p50 ms", r"^all\s+\d+\s+([\d.]+)"),
    ("p95 ms", r"^p95_ms=([\d.]+)"),
    ("p99 ms", r"^all\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)"),
    ("errors", r"errors=(\d+)$"),
    ("503 answers", r"^503 answers: (\d+)"),
    ("trace cache hit %", r"^trace cache .*?hit rate ([\d.]+)%"),
    ("model runs", r"^trace cache .*?hits, (\d+) model runs"),
    ("piece cache hit %", r"^piece cache: hit rate ([\d.]+)%"),
    ("page cache hit %", r"^page cache: hit rate ([\d.]+)%"),
    ("nginx cache hit %", r"^nginx cache: hit rate ([\d.]+)%"),
    ("CPU per student ms", r"^server CPU per student: (\d+) ms"),
    ("server cores busy", r"server CPU [\d.]+ s \(([\d.]+) cores\)"),
    ("peak RSS MB", r"^server peak RSS: (\d+) MB"),
    ("load avg before", r"load average before ([\d.]+)"),
)


def classroom(args: argparse.Namespace, *shape: str) -> dict[str, float]:
    """Run bench/classroom.py once; the metrics it printed."""
    cmd = [
        sys.executable,
        str(HERE / "classroom.py"),
        "--students",
        str(args.students),
        "--arrive",
        str(args.arrive),
        "--seconds",
        str(args.seconds),
        "--model",
        args.model,
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
        *shape,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    log = args.logs / f"{len(list(args.logs.iterdir())) + 1}-{'-'.join(shape).lstrip('-')}.txt"
    log.write_text(out)
    print("$ " + " ".join(cmd[1:]) + f"\n  -> {log}", flush=True)
    found = {label: re.search(pattern, out, re.M) for label, pattern in METRICS}
    return {label: float(m.group(1)) for label, m in found.items() if m}


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2, help="worker processes, or replicas behind nginx")
    p.add_argument("--students", type=int, default=170)
    p.add_argument("--arrive", type=float, default=60)
    p.add_argument("--seconds", type=float, default=90)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default="random-gpt2")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.logs = Path(tempfile.mkdtemp(prefix="glassbox-scale-out-"))  # each run's whole output

    runs: list[tuple[dict[str, float], dict[str, float]]] = []
    for _ in range(args.rounds):
        workers = classroom(args, "--workers", str(args.n))
        replicas = classroom(args, "--replicas", str(args.n))
        runs.append((workers, replicas))

    head = "".join(f"{f'workers {i + 1}':>12}{f'nginx {i + 1}':>12}{'ratio':>8}" for i in range(len(runs)))
    print(
        f"\n{args.students} students over {args.arrive:.0f} s, {args.model}, threads {args.threads}: "
        f"--workers {args.n} against nginx + {args.n} replicas, {len(runs)} round(s)"
    )
    print(f"{'':<20}{head}")
    for label, _pattern in METRICS:
        row = ""
        for workers, replicas in runs:
            w, r = workers.get(label), replicas.get(label)
            ratio = f"{r / w:.2f}" if w and r is not None else "-"
            row += f"{cell(w):>12}{cell(r):>12}{ratio:>8}"
        print(f"{label:<20}{row}")


if __name__ == "__main__":
    main()
