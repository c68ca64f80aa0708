"""Built ONNX graphs on disk: one directory per weights key, written whole or not at all, checked at load.

A graph directory holds `model.onnx`, `weights.bin` (its tensors, as ONNX external data) and `manifest.json`
(each file's size and SHA-256). It is built in a fresh temporary directory beside it, then renamed into place,
under a lock file per key: two processes starting at once build it once, and a kill mid-build leaves only a
temporary directory, which the next build removes. Nothing is ever appended to an old `weights.bin` (onnx
appends external data to an existing file). At load the files are checked against the manifest; a graph
that fails the check is built again, after one warning line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import onnx
from filelock import FileLock, Timeout

from model.graph import BUILDER_VERSION

log = logging.getLogger(__name__)

GRAPH_FILE = "model.onnx"
WEIGHTS_FILE = "weights.bin"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
CHUNK = 1 << 22  # bytes hashed at a time (hashlib releases the interpreter's lock on big updates)


@dataclass(frozen=True)
class Graph:
    """A checked graph on disk: its model.onnx, whether this call built it, and the build's id."""

    path: Path
    built: bool
    build_id: str


def default_cache_dir() -> Path:
    """Where built graphs live: $GLASSBOX_CACHE, else $XDG_CACHE_HOME/glassbox, else ~/.cache/glassbox."""
    if env := os.environ.get("GLASSBOX_CACHE"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "glassbox"


def graph_dir(key: str, cache_dir: Path | None = None) -> Path:
    """The directory of the graph for the weights whose fingerprint is `key`, under this builder version."""
    return (cache_dir or default_cache_dir()) / "graphs" / f"gpt2-{key}-v{BUILDER_VERSION}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(directory: Path) -> dict[str, object] | None:
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def check_graph(directory: Path) -> str | None:
    """None when the files in `directory` match its manifest (size and SHA-256); else what is wrong."""
    if not directory.is_dir():
        return "missing"
    manifest = read_manifest(directory)
    if manifest is None:
        return f"{MANIFEST_FILE} is missing or unreadable"
    files = manifest.get("files")
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
        return f"{MANIFEST_FILE} is not one this version writes"
    for name in (GRAPH_FILE, WEIGHTS_FILE):
        entry = files.get(name)
        path = directory / name
        if not isinstance(entry, dict) or not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != entry.get("size"):
            return f"{name} is {size} bytes, its manifest says {entry.get('size')}"
        if file_sha256(path) != entry.get("sha256"):
            return f"{name} does not match the SHA-256 in its manifest"
    return None


def ensure_graph(
    make: Callable[[], onnx.ModelProto], key: str, cache_dir: Path | None = None, replace: str | None = None
) -> Graph:
    """The checked graph for `key`, built by `make()` if it is missing or fails its check.

    `replace`: the build id of a graph found wrong when run (NaN in its outputs); if that build is still the
    one on disk it is built again, once, even though its files match their manifest.
    """
    directory = graph_dir(key, cache_dir)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        problem = check_graph(directory)
        manifest = read_manifest(directory) if problem is None else None
        if manifest is not None and manifest.get("build") != replace:
            return Graph(directory / GRAPH_FILE, False, str(manifest.get("build")))
        if problem is None:
            log.warning("the cached graph %s gave NaN or infinite numbers; building it again", directory)
        elif problem != "missing":
            log.warning("the cached graph %s is damaged (%s); building it again", directory, problem)
        build_id = _build(make, directory, key)
    return Graph(directory / GRAPH_FILE, True, build_id)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold the lock of one graph key (a file beside its directory), saying so when another process has it."""
    lock = FileLock(f"{directory}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another process that is building or checking %s", directory.name)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _build(make: Callable[[], onnx.ModelProto], directory: Path, key: str) -> str:
    """Write the graph into a fresh temporary directory, then rename it into place (the lock held)."""
    for stale in directory.parent.glob(f".{directory.name}.*"):  # a build that was killed, an old copy
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    tmp.chmod(0o755)  # as a plain mkdir would make it (mkdtemp's is private to its owner)
    try:
        model = make()
        # weights go beside the graph as external data, so models past protobuf's 2 GB limit also work
        onnx.save_model(
            model,
            str(tmp / GRAPH_FILE),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=WEIGHTS_FILE,
            size_threshold=1024,
        )
        build_id = uuid.uuid4().hex
        files = {
            name: {"size": (tmp / name).stat().st_size, "sha256": file_sha256(tmp / name)}
            for name in (GRAPH_FILE, WEIGHTS_FILE)
        }
        manifest = {
            "format": MANIFEST_FORMAT,
            "key": key,
            "builder": BUILDER_VERSION,
            "build": build_id,
            "files": files,
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        old = directory.parent / f".{directory.name}.{build_id}.old"
        if directory.exists():
            directory.rename(old)  # a process that opened the old files keeps them until it closes them
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return build_id
