"""The installed `glassbox` script run as a user (and the Dockerfile) runs it, in separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.sources.fakehub import FakeHub, closed_port

pytestmark = [pytest.mark.usefixtures("isolated"), pytest.mark.slow]

GUARD_SECONDS = 120  # only to stop a hung server; no timing is asserted


def glassbox(*args: str) -> list[str]:
    """The console script beside this interpreter (as pip installed it), else the module."""
    script = Path(sys.executable).with_name("glassbox")
    return [str(script), *args] if script.is_file() else [sys.executable, "-m", "app.cli", *args]


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        glassbox(*args),
        capture_output=True,
        text=True,
        timeout=GUARD_SECONDS,
        env={**os.environ, **env},
        check=False,
    )


def test_help_and_a_wrong_model_without_a_traceback() -> None:
    helped = run("--help")
    wrong = run("serve", "--model", "not-a-model")

    assert helped.returncode == 0 and "serve" in helped.stdout
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("glassbox: unknown model 'not-a-model'")
    assert "Traceback" not in wrong.stderr and wrong.stderr.count("\n") == 1


def test_the_dockerfile_steps_download_export_then_run_offline(hub: FakeHub, isolated: Path) -> None:
    fetched = run("download", "gpt2", HF_ENDPOINT=hub.url)
    exported = run("export", "--model", "gpt2", HF_HUB_OFFLINE="1")
    again = run("export", "--model", "gpt2", HF_HUB_OFFLINE="1")
    traced = run("trace", "--model", "gpt2", "--json", "what a beautiful day", HF_HUB_OFFLINE="1")

    assert fetched.returncode == 0, fetched.stderr
    assert Path(fetched.stdout.splitlines()[-1]).is_relative_to(isolated / "hf" / "hub")
    assert exported.returncode == 0 and "built in" in exported.stdout
    assert again.returncode == 0 and "already built" in again.stdout
    assert traced.returncode == 0, traced.stderr
    report = json.loads(traced.stdout)
    assert report["source"].endswith("from hub cache)")
    assert [t["id"] for t in report["tokens"]] == [10919, 257, 4950, 1110]


def test_serve_falls_back_and_says_so_on_every_page(isolated: Path) -> None:
    port = closed_port()
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "GLASSBOX_HUB_TIMEOUT": "5"}
    server = subprocess.Popen(
        glassbox("serve", "--port", str(port), "--threads", "1"),
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout or []), daemon=True)
    reader.start()
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/healthz", server)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)
        reader.join(timeout=5)
    log = "".join(lines)

    assert health == 200, log
    assert "serving the fallback" in log and "instead of gpt2" in log and "could not be reached" in log
    assert "This is not gpt2" in page and "glassbox download gpt2" in page
    assert f"http://127.0.0.1:{port}/" in log


def _wait_for(url: str, server: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + GUARD_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except OSError:
            time.sleep(0.3)
    return -1
