"""Fixtures for the engine's tests: a tiny model and a GPT-2-small-shaped one, graphs in a tmp cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.config import GPT2Config
from model.runtime import Engine
from model.sources import synthetic_model
from model.tokenizer import Tokenizer


@pytest.fixture(scope="session")
def graph_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("glassbox-cache")


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_dir(None)


@pytest.fixture(scope="session")
def tiny(graph_cache: Path):
    loaded = synthetic_model("tiny")
    return loaded, Engine(loaded.weights, loaded.config, threads=2, cache_dir=graph_cache)


@pytest.fixture(scope="session")
def small(graph_cache: Path):
    """GPT-2 small's shapes (12 layers, 12 heads, 768 wide) with seeded random weights."""
    loaded = synthetic_model("random-gpt2", GPT2Config(), seed=1)
    return loaded, Engine(loaded.weights, loaded.config, threads=2, cache_dir=graph_cache)


@pytest.fixture(scope="module")
def small_hf(small):
    """transformers' PyTorch GPT-2 holding the `small` model's weights (needs torch)."""
    torch = pytest.importorskip("torch")
    from model.torch_gpt2 import hf_model

    loaded, _ = small
    torch.set_num_threads(2)
    return hf_model(loaded.weights, loaded.config)
