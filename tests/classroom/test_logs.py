"""Nothing a student types is logged or written to disk: access lines keep the path, not the query."""

from __future__ import annotations

import logging
import logging.config
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.logs import HideQuery, logging_config

SECRET = "my secret diary entry"
SERVER = """
import uvicorn
from uvicorn.config import LOGGING_CONFIG
uvicorn.run("app.main:create_app", factory=True, host="127.0.0.1", port={port}, log_config=LOGGING_CONFIG)
"""


def access_line(record_args: tuple[object, ...]) -> str:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', record_args, None
    )
    assert HideQuery().filter(record)
    return record.getMessage()


def test_the_access_filter_drops_the_query() -> None:
    line = access_line(("127.0.0.1:5000", "GET", "/?text=my+secret&temperature=1", "1.1", 200))

    assert line == '127.0.0.1:5000 - "GET / HTTP/1.1" 200'


def test_other_log_lines_pass_unchanged() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, "", 0, "Started server process [%d]", (42,), None
    )

    assert HideQuery().filter(record)
    assert record.getMessage() == "Started server process [42]"


def test_the_logging_config_puts_the_filter_on_the_access_log() -> None:
    config = logging_config()

    assert config["loggers"]["uvicorn.access"]["filters"] == ["hide_query"]
    assert config["filters"]["hide_query"]["()"] is HideQuery
    assert {"app", "model"} <= set(config["loggers"])
    logging.config.dictConfig(config)  # it is a valid configuration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_real_server_logs_no_query_and_writes_no_text(tmp_path: Path) -> None:
    """uvicorn with its own default logging (the filter comes from the app) and the tiny model."""
    port = free_port()
    env = {
        **os.environ,
        "GLASSBOX_MODEL": "tiny",
        "GLASSBOX_FALLBACK": "",
        "GLASSBOX_CACHE": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(port=port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.get(f"{url}/", params={"text": SECRET}).status_code == 200
        assert httpx.get(f"{url}/api/predict", params={"text": SECRET}).status_code == 200
        assert (
            httpx.get(
                f"{url}/", params={"text": SECRET, "action": "generate"}, follow_redirects=True
            ).status_code
            == 200
        )
    finally:
        server.terminate()
        log, _ = server.communicate(timeout=30)

    assert '"GET / HTTP/1.1" 200' in log
    assert '"GET /api/predict HTTP/1.1" 200' in log
    assert "secret" not in log
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"secret" not in path.read_bytes(), path
