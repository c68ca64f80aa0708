"""A loopback stand-in for the Hugging Face hub's file API, and fixtures that keep every cache in a tmp dir.

huggingface_hub's `hf_hub_download` asks `HEAD {endpoint}/{repo}/resolve/{revision}/{filename}` for the
file's ETag, commit (X-Repo-Commit) and size (Content-Length), then GETs the same URL. A missing file is a
404 with `X-Error-Code: EntryNotFound`, a missing repository one with `RepoNotFound`. That is all it needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from model.config import GPT2Config
from model.weights import Weights, save_safetensors, synthetic_weights

RESOLVE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)")
TINY = GPT2Config(n_layer=2, n_head=4, n_embd=64)


def write_model_dir(directory: Path, config: GPT2Config = TINY, seed: int = 7) -> Weights:
    """A model directory as the hub and transformers lay it out: config.json + model.safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = synthetic_weights(config, seed)
    save_safetensors(weights, directory / "model.safetensors")
    (directory / "config.json").write_text(json.dumps(config.to_hf_dict(), indent=2), encoding="utf-8")
    return weights


def commit_of(repo: str) -> str:
    return hashlib.sha1(repo.encode()).hexdigest()  # 40 hex digits, like a git commit


class FakeHub:
    """Serves `repos` (repo id -> directory of files) on 127.0.0.1 and records every request."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = repos
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        self.requests.append((request.command, request.path))
        match = RESOLVE.fullmatch(unquote(urlsplit(request.path).path))
        if match is None:
            return self._error(request, 404, "RepoNotFound", "")
        repo, filename = match["repo"], match["filename"]
        if repo not in self.repos:
            return self._error(request, 404, "RepoNotFound", "")
        path = self.repos[repo] / filename
        if not path.is_file():
            return self._error(request, 404, "EntryNotFound", commit_of(repo))
        data = path.read_bytes()
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Content-Length", str(len(data)))
        request.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        request.send_header("X-Repo-Commit", commit_of(repo))
        request.end_headers()
        if body:
            request.wfile.write(data)

    @staticmethod
    def _error(request: BaseHTTPRequestHandler, status: int, code: str, commit: str) -> None:
        request.send_response(status)
        request.send_header("X-Error-Code", code)
        request.send_header("X-Error-Message", f"{code}: {request.path}")
        if commit:
            request.send_header("X-Repo-Commit", commit)
        request.send_header("Content-Length", "0")
        request.end_headers()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Fresh Hugging Face and Glassbox caches under tmp_path, no hub settings, no GLASSBOX_* variables.

    huggingface_hub reads HF_HOME when it is imported, so its cache path is patched as well as the variable.
    Variables set behind monkeypatch's back (`glassbox serve` exports its settings) are restored too.
    """
    from huggingface_hub import constants

    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("GLASSBOX_", "HF_")) or name == "TRANSFORMERS_OFFLINE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("GLASSBOX_CACHE", str(tmp_path / "glassbox"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    """A running fake hub holding a tiny GPT-2 under openai-community/gpt2 (no tokenizer files)."""
    write_model_dir(tmp_path / "served" / "gpt2")
    with FakeHub({"openai-community/gpt2": tmp_path / "served" / "gpt2"}) as server:
        yield server
