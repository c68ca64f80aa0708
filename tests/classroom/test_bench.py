"""bench/classroom.py itself: its students get real pages, follow htmx's state and count every request."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.assets import linked_files

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
def test_three_students_without_thinking_get_every_page_they_ask_for(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "bench/classroom.py",
        "--students",
        "3",
        "--arrive",
        "1",
        "--seconds",
        "120",
        "--model",
        "tiny",
        "--pace",
        "0",
        "--cache-dir",
        str(tmp_path),
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    counts = {k: int(n) for k, n in re.findall(r"^(page|slider|panel|generate|static)\s+(\d+)\s", out, re.M)}
    # each student: one page and the files it links (stylesheets, htmx), ten slider moves, five panels,
    # two Generates
    files = linked_files()
    assert files >= 4  # three stylesheets at least, and htmx
    assert counts == {"page": 3, "slider": 30, "panel": 15, "generate": 6, "static": 3 * files}
    assert f"status counts: {{'200': {54 + 3 * files}}}; students cut off at the deadline: 0" in out
    assert "503 answers: 0" in out
    hits = re.search(r"trace cache \(1 worker\(s\)\): hit rate [\d.]+% \((\d+) hits, (\d+) model runs\)", out)
    assert hits and 1 <= int(hits.group(2)) <= 3 + 6  # at most one run per text and per generated token
    cpu = re.search(r"CPU per student: (\d+) ms, of which model runs (\d+) ms; 3 students over 1 s", out)
    assert cpu and int(cpu.group(1)) > 0 and int(cpu.group(2)) <= int(cpu.group(1))
    assert re.fullmatch(r"p95_ms=\d+\.\d errors=0", out.strip().splitlines()[-1])
