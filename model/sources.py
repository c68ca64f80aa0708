"""Where a model's weights come from: the Hugging Face hub, a local directory, or made up for tests.

`load_model(spec)` accepts a hub name (`gpt2`, `distilgpt2`, `gpt2-medium` or any `owner/name`), a path
to a directory with config.json + model.safetensors, `demo` (the small trained model shipped inside the
package) or `tiny` / `random-gpt2` (seeded untrained weights for tests).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from model.config import GPT2Config
from model.tokenizer import Tokenizer
from model.weights import (
    Weights,
    check_safetensors,
    file_fingerprint,
    fingerprint,
    load_safetensors,
    synthetic_weights,
)

log = logging.getLogger(__name__)

HUB_ALIASES = {
    "gpt2": "openai-community/gpt2",
    "distilgpt2": "distilbert/distilgpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
}
SYNTHETIC = {
    "tiny": GPT2Config(n_layer=2, n_head=4, n_embd=64),
    "random-gpt2": GPT2Config(),  # GPT-2 small's shapes, random weights
}
DEMO_DIR = Path(__file__).parent / "demo"
WEIGHT_FILES = ("config.json", "model.safetensors")
TOKENIZER_FILES = ("vocab.json", "merges.txt")
ACCEPTED = (
    "a Hugging Face GPT-2 name (gpt2, distilgpt2, gpt2-medium or owner/name), a directory holding "
    "config.json and model.safetensors, 'demo', 'tiny' or 'random-gpt2'"
)


class ModelUnavailable(RuntimeError):
    """The model cannot be had (hub unreachable, files missing); the message says what happened."""


class BrokenModel(ModelUnavailable):
    """The model's files are there but unusable (damaged, incomplete, not GPT-2, NaN); the message names the
    file and says what to do."""


@dataclass
class LoadedModel:
    """A model ready to build: its name, where it came from, config, tokenizer and weights.

    File-backed weights are read only when asked for (`weights`), not kept: once the ONNX graph is
    cached, serving never holds a second copy of them in Python.
    """

    name: str
    origin: str  # "hub cache", "hub download", "local directory", "embedded demo", "synthetic"
    config: GPT2Config
    tokenizer: Tokenizer
    weights_file: Path | None = None
    in_memory: Weights | None = field(default=None, repr=False)
    trained: bool = True
    regenerate: Callable[[], Weights] | None = field(default=None, repr=False)  # seeded synthetic weights

    @property
    def weights(self) -> Weights:
        """The weights as float32 arrays (read from disk, or drawn again from their seed, on each call when
        not held in memory)."""
        if self.in_memory is not None:
            return self.in_memory
        if self.regenerate is not None:
            return self.regenerate()
        assert self.weights_file is not None
        return load_safetensors(self.weights_file, self.config)

    def release(self) -> None:
        """Drop weights held in memory that can be drawn again from their seed (once the graph is built,
        serving never reads them: ~500 MB less per worker for GPT-2-small-shaped random weights)."""
        if self.regenerate is not None and self.in_memory is not None:
            self.fingerprint  # noqa: B018 - computed while the weights are still here
            self.in_memory = None
            return_freed_memory()

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the config and the weights: the key of the cached graph."""
        if self.in_memory is not None:
            return fingerprint(self.in_memory, self.config)
        assert self.weights_file is not None
        return file_fingerprint(self.weights_file, self.config)

    @property
    def weights_source(self) -> str:
        """The weights named for a message: their file, or the model's name when they are made up."""
        return str(self.weights_file) if self.weights_file is not None else f"the model {self.name}"

    @property
    def description(self) -> str:
        c = self.config
        shape = f"{c.n_layer} layers, {c.n_head} heads, {c.n_embd} wide"
        return f"{self.name} ({shape}; from {self.origin})"


def load_dir(
    directory: Path,
    name: str | None = None,
    origin: str = "local directory",
    advice: str = "Fix or replace it, or give another --model.",
) -> LoadedModel:
    """A model from a directory with config.json + model.safetensors (+ optional vocab.json, merges.txt).

    Raises BrokenModel, naming the file and the fault and ending with `advice`, for a config.json that is
    not GPT-2's (bad JSON, missing or absurd sizes) and a model.safetensors that is damaged, incomplete or
    lacks a tensor; only the file's header is read here.
    """
    missing = [f for f in WEIGHT_FILES if not (directory / f).is_file()]
    if missing:
        raise ModelUnavailable(f"{directory} has no {' or '.join(missing)}; a model directory needs both")
    weights_file = directory / "model.safetensors"
    try:
        config = GPT2Config.from_json(directory / "config.json")
        check_safetensors(weights_file, config)
        tokenizer = Tokenizer.from_dir(directory)
    except (ValueError, OSError) as err:
        raise BrokenModel(f"{err}. {advice}") from err
    except Exception as err:  # the tokenizers library's own errors for damaged vocab.json / merges.txt
        raise BrokenModel(f"{directory}: {err}. {advice}") from err
    if tokenizer.vocab_size > config.vocab_size:
        raise BrokenModel(
            f"{directory / 'config.json'}: vocab_size is {config.vocab_size}, fewer than the "
            f"tokenizer's {tokenizer.vocab_size} tokens. {advice}"
        )
    return LoadedModel(name or directory.name, origin, config, tokenizer, weights_file)


def return_freed_memory() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise: ~300 MB of the weights)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the process reuses the memory instead
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def synthetic_model(name: str = "tiny", config: GPT2Config | None = None, seed: int = 0) -> LoadedModel:
    """Seeded random weights with the real GPT-2 tokenizer; their predictions are noise."""
    config = config or SYNTHETIC[name]
    weights = synthetic_weights(config, seed)
    return LoadedModel(
        name,
        "synthetic",
        config,
        Tokenizer.from_dir(None),
        in_memory=weights,
        trained=False,
        regenerate=lambda: synthetic_weights(config, seed),
    )


def hub_repo(spec: str) -> str | None:
    """The hub repository a name stands for, or None if it is not a hub name."""
    if spec in HUB_ALIASES:
        return HUB_ALIASES[spec]
    owner, _, repo = spec.partition("/")
    if owner and repo and "/" not in repo and not spec.startswith((".", "/", "~")):
        return spec
    return None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cached_hub_dir(repo: str) -> Path | None:
    """The snapshot directory of `repo` if its weights are already in the Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    paths = [try_to_load_from_cache(repo, f) for f in WEIGHT_FILES]
    if all(isinstance(p, str) for p in paths):
        return Path(str(paths[0])).parent
    return None


def _unreachable(repo: str, reason: str) -> ModelUnavailable:
    return ModelUnavailable(f"{repo} is not in the Hugging Face cache on this machine and {reason}")


def what_failed(err: BaseException, timeout: float) -> str:
    """What a failed connection met, in a few words: a failed name lookup, a refusal, no answer in time."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return f"looking up the host's name failed (DNS: {seen.strerror or seen})"
        if isinstance(seen, ConnectionRefusedError):
            return "the connection was refused (nothing listens there)"
        if isinstance(seen, TimeoutError) or "Timeout" in type(seen).__name__:
            return f"no answer within {timeout:g} s"
        if isinstance(seen, OSError) and seen.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "there is no network route to it"
        seen = seen.__cause__ or seen.__context__
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


def _check_reachable(repo: str, endpoint: str | None, timeout: float) -> None:
    """One request for config.json's metadata, without retries, so an absent hub is known within `timeout`."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    try:
        get_hf_file_metadata(hf_hub_url(repo, "config.json", endpoint=endpoint), timeout=timeout)
    except HfHubHTTPError:
        return  # the hub answered (not found, gated, busy...): the download itself reports what it said
    except Exception as err:  # refused, no DNS, timed out: nothing answers there
        where = endpoint or "the Hugging Face hub"
        raise _unreachable(repo, f"{where} could not be reached: {what_failed(err, timeout)}") from err


def download(repo: str, timeout: float = 10.0) -> Path:
    """Fetch a hub model's weights (+ tokenizer files if it has them) into the Hugging Face cache.

    Honours HF_HOME, HF_ENDPOINT and HF_HUB_OFFLINE; a hub that does not answer within `timeout`
    seconds raises ModelUnavailable instead of hanging.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    endpoint = os.environ.get("HF_ENDPOINT") or None
    offline = hub_offline()
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout)))
    where = endpoint or "the Hugging Face hub"
    if not offline:
        _check_reachable(repo, endpoint, timeout)  # huggingface_hub itself retries for ~25 s before giving up
    try:
        paths = [
            hf_hub_download(repo, f, endpoint=endpoint, etag_timeout=timeout, local_files_only=offline)
            for f in WEIGHT_FILES
        ]
    except LocalEntryNotFoundError as err:
        reason = (
            "HF_HUB_OFFLINE is set"
            if offline
            else f"{where} could not be reached: {what_failed(err, timeout)}"
        )
        raise _unreachable(repo, reason) from err
    except (HfHubHTTPError, OSError) as err:
        raise ModelUnavailable(f"could not fetch {repo} from {where}: {err}") from err
    for f in TOKENIZER_FILES:  # optional: GPT-2's own tokenizer is bundled
        try:
            hf_hub_download(repo, f, endpoint=endpoint, etag_timeout=timeout, local_files_only=offline)
        except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError):
            log.info("%s has no %s; using GPT-2's bundled tokenizer", repo, f)
    return Path(paths[0]).parent


def load_model(spec: str, timeout: float = 10.0) -> LoadedModel:
    """Resolve a model name or path (see module docstring). Raises ModelUnavailable or ValueError."""
    spec = spec.strip()
    if spec in SYNTHETIC:
        return synthetic_model(spec)
    if spec == "demo":
        if not (DEMO_DIR / "model.safetensors").is_file():
            raise ModelUnavailable("the embedded demo model is not part of this installation")
        return load_dir(DEMO_DIR, "demo", "embedded demo", "Reinstall Glassbox.")
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_dir(path)
    repo = hub_repo(spec)
    if repo is None:
        raise ValueError(f"unknown model {spec!r}: use {ACCEPTED}")
    if (cached := cached_hub_dir(repo)) is None:
        cached, origin = download(repo, timeout), "hub download"
    else:
        origin = "hub cache"
    advice = f"Delete {cached.parent.parent} and run 'glassbox download {spec}' again."
    return load_dir(cached, spec, origin, advice)
