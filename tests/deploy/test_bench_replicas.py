"""bench/classroom.py --replicas: the students go through nginx, and the bench counts nginx's cache too."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.assets import linked_files
from tests.deploy.conftest import need_nginx

ROOT = Path(__file__).parents[2]


@pytest.mark.nginx
@pytest.mark.slow
def test_three_students_through_nginx_get_every_page_and_share_its_copies(tmp_path: Path) -> None:
    need_nginx()
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
        "--replicas",
        "2",
        "--cache-dir",
        str(tmp_path),
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr

    assert "nginx in front of 2 single-worker replicas" in out
    answers = 54 + 3 * linked_files()  # each student: 18 dynamic requests and the files the page links
    assert f"status counts: {{'200': {answers}}}; students cut off at the deadline: 0" in out
    # every answer passed through nginx; the stylesheets and htmx the first student fetched, the others
    # got from nginx's copy
    front = re.search(r"nginx cache: hit rate [\d.]+% \((\d+) answers from nginx's copy, of (\d+);", out)
    assert front and int(front.group(2)) == answers and int(front.group(1)) >= 4
    runs = re.search(r"trace cache \(2 worker\(s\)\): hit rate [\d.]+% \(\d+ hits, (\d+) model runs\)", out)
    assert runs and 1 <= int(runs.group(1)) <= 3 + 6  # one run per text and generated token, cluster-wide
    assert re.fullmatch(r"p95_ms=\d+\.\d errors=0", out.strip().splitlines()[-1])
