"""Which model to serve: the one asked for, or a fallback with a banner that says why and how to get GPT-2.

Resolution, announced in one log line: a hub model already in the Hugging Face cache is used as it is; one
that is not is downloaded (huggingface_hub shows a progress bar); when the hub cannot be reached (within
`hub_timeout`, or at once under HF_HUB_OFFLINE=1) the fallback is served instead: the embedded demo model,
or the synthetic `tiny` model with untrained weights when the demo model is not installed.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import model.sources
from app.settings import Settings
from model import GPT2
from model.sources import (
    ACCEPTED,
    SYNTHETIC,
    WEIGHT_FILES,
    BrokenModel,
    LoadedModel,
    ModelUnavailable,
    cached_hub_dir,
    hub_offline,
    hub_repo,
    load_model,
    return_freed_memory,
)

log = logging.getLogger(__name__)

LAST_RESORT = "tiny"  # always there: seeded random weights, no files needed


@dataclass
class Serving:
    """The model a server process runs, and what the pages and the startup log say about it."""

    gpt2: GPT2
    source: str  # e.g. "gpt2 (12 layers, 12 heads, 768 wide; from hub cache)"
    fallback: bool = False
    fallback_reason: str | None = None  # why the requested model could not be had
    build_seconds: float = 0.0  # building (first run) or finding the ONNX graph, opening it, the check trace
    threads: int = 0  # onnxruntime threads per run; 0 lets it pick one per core
    requested: str = ""
    graph_built: bool = False

    @property
    def trained(self) -> bool:
        return self.gpt2.loaded.trained


def check_model_spec(spec: str) -> None:
    """Raise ValueError, in one sentence saying what is accepted, unless `spec` can name a model."""
    spec = spec.strip()
    if spec in SYNTHETIC or spec == "demo":
        return
    path = Path(spec).expanduser()
    if spec and path.is_dir():
        missing = [f for f in WEIGHT_FILES if not (path / f).is_file()]
        if missing:
            raise ValueError(f"{spec!r} has no {' or '.join(missing)}; Glassbox takes {ACCEPTED}.")
        return
    if not spec or hub_repo(spec) is None:
        raise ValueError(f"unknown model {spec!r}: Glassbox takes {ACCEPTED}.")


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def resolve(spec: str, timeout: float) -> LoadedModel:
    """`model.sources.load_model`, first saying in one log line where the model will come from."""
    spec = spec.strip()
    local = spec in SYNTHETIC or spec == "demo" or Path(spec).expanduser().is_dir()
    repo = None if local else hub_repo(spec)
    if spec in SYNTHETIC:
        log.info("model %s: synthetic weights, seeded and untrained (its predictions are noise)", spec)
    elif spec == "demo":
        log.info("model demo: the small demo model shipped in this installation (%s)", model.sources.DEMO_DIR)
    elif repo is None:
        if not local:
            raise ValueError(f"unknown model {spec!r}: Glassbox takes {ACCEPTED}.")
        log.info("model %s: reading the local directory %s", spec, Path(spec).expanduser().resolve())
    elif (cached := cached_hub_dir(repo)) is not None:
        log.info("model %s: found %s in the Hugging Face cache (%s)", spec, repo, cached)
    elif hub_offline():
        log.info("model %s: %s is not in the Hugging Face cache and HF_HUB_OFFLINE is set", spec, repo)
    else:
        log.info(
            "model %s: not in the Hugging Face cache; downloading %s from %s (giving up after %g s "
            "without an answer)",
            spec,
            repo,
            hub_endpoint(),
            timeout,
        )
    return load_model(spec, timeout)


def _load_fallback(name: str, timeout: float) -> tuple[LoadedModel, str]:
    """The fallback model, or the synthetic one when even that cannot be had; and a note saying which."""
    try:
        loaded = load_model(name, timeout)
    except (ModelUnavailable, ValueError) as err:
        if name == LAST_RESORT:
            raise
        return load_model(LAST_RESORT, timeout), f" ({name} is unavailable too: {err})"
    return loaded, ""


def choose_model(settings: Settings) -> tuple[LoadedModel, str | None]:
    """The model to serve, and why it is a fallback (None when it is the one asked for)."""
    try:
        return resolve(settings.model, settings.hub_timeout), None
    except ModelUnavailable as err:
        if not settings.fallback or isinstance(err, BrokenModel):
            raise  # files that are there but broken are the teacher's to fix, not to hide behind a fallback
        loaded, note = _load_fallback(settings.fallback, settings.hub_timeout)
        untrained = "" if loaded.trained else " (untrained weights)"
        log.warning(
            "serving the fallback %s%s instead of %s%s, with a notice on every page. Why: %s",
            loaded.name,
            untrained,
            settings.model,
            note,
            err,
        )
        return loaded, str(err)


def prepare(settings: Settings) -> None:
    """Download the model, build its graph and run the check trace once, before several worker processes
    all look for them, so that a model that cannot be served stops `glassbox serve` with one message."""
    loaded, _ = choose_model(settings)
    gpt2 = GPT2(loaded, threads=1, cache_bytes=0)
    gpt2.self_check()
    del gpt2
    return_freed_memory()  # the workers hold their own copies; this process only watches them


def load_for_serving(settings: Settings) -> Serving:
    """Load the model named by the settings, or the fallback; build (or find) its graph; say what happened."""
    loaded, reason = choose_model(settings)
    start = time.perf_counter()
    gpt2 = GPT2(loaded, threads=settings.threads, cache_bytes=settings.cache_mb * 2**20)
    gpt2.self_check()  # a graph giving NaN is built again once, else BrokenModel: /healthz never says ok
    serving = Serving(
        gpt2=gpt2,
        source=loaded.description,
        fallback=reason is not None,
        fallback_reason=reason,
        build_seconds=time.perf_counter() - start,
        threads=settings.threads,
        requested=settings.model,
        graph_built=gpt2.engine.built,
    )
    for line in startup_lines(serving, settings):
        log.info("%s", line)
    return serving


def open_url(settings: Settings) -> str:
    """The address to type in a browser."""
    if settings.host in ("0.0.0.0", "::", ""):
        return f"http://localhost:{settings.port}/ (students: http://{socket.gethostname()}:{settings.port}/)"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}/"


def startup_lines(serving: Serving, settings: Settings) -> list[str]:
    """What a teacher needs to see at startup: the URL, the model and its origin, graph time, threads."""
    graph = "built (first run)" if serving.graph_built else "found in the cache"
    threads = f"{serving.threads} per run" if serving.threads else f"one per core ({os.cpu_count()} cores)"
    untrained = "" if serving.trained else "; its weights are untrained, so its predictions are noise"
    return [
        f"serving {serving.source} at {open_url(settings)}{untrained}",
        f"ONNX graph {graph} and loaded in {serving.build_seconds:.1f} s ({serving.gpt2.engine.graph_file}); "
        f"onnxruntime threads: {threads}; worker processes: {settings.workers}",
    ]


def banner_text(serving: Serving) -> str | None:
    """The notice every page shows while a fallback model is served; None when serving what was asked."""
    if not serving.fallback:
        return None
    name = serving.gpt2.name
    if serving.trained:
        what = f"the small {name} model, trained on little text, so its predictions are rough"
    else:
        what = f"{name}, a model with random, untrained weights, so its predictions are noise"
    return (
        f"This is not {serving.requested}: it could not be loaded, so Glassbox is serving {what}. "
        "To get GPT-2: run “glassbox download gpt2” on a connected machine; or start Glassbox with "
        "“--model /path/to/dir”, a folder holding config.json and model.safetensors; or copy the "
        "Hugging Face cache (~/.cache/huggingface) from a machine that has the model."
    )
