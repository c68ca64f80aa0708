"""A model whose numbers go bad while serving: a clear error naming it, never NaN answered as 200."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from model import GPT2
from model.graphcache import MANIFEST_FILE, WEIGHTS_FILE, file_sha256
from model.sources import synthetic_model


@pytest.fixture
def corrupt(tmp_path: Path) -> Iterator[TestClient]:
    """The tiny model served from a fresh graph whose weights.bin (and manifest) became 0xFF after startup."""
    gpt2 = GPT2(synthetic_model("tiny"), threads=1, cache_dir=tmp_path)
    gpt2.self_check()
    directory = gpt2.engine.graph_file.parent
    weights = directory / WEIGHTS_FILE
    weights.write_bytes(b"\xff" * weights.stat().st_size)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["files"][WEIGHTS_FILE]["sha256"] = file_sha256(weights)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    gpt2.engine.session = gpt2.engine._open(gpt2.engine.graph_file)  # as if a worker had opened it so
    app = create_app(Settings(), Serving(gpt2=gpt2, source=gpt2.loaded.description))
    with TestClient(app) as client:
        yield client


def test_nan_from_a_graph_just_built_is_a_clear_error(corrupt: TestClient) -> None:
    api = corrupt.get("/api/predict", params={"text": "what a beautiful day"})
    page = corrupt.get("/", params={"text": "what a beautiful day"})

    assert api.status_code == 500
    detail = api.json()["detail"]
    assert (
        detail.startswith("the model tiny gives NaN or infinite logits") and "the model is corrupt" in detail
    )
    assert page.status_code == 500 and "the model is corrupt" in page.text
    assert "Traceback" not in page.text


def test_nan_from_a_cached_graph_is_rebuilt_and_answered(corrupt: TestClient, tmp_path: Path) -> None:
    found = GPT2(
        synthetic_model("tiny"), threads=1, cache_dir=tmp_path
    )  # the corrupted graph, from the cache
    assert not found.engine.built
    app = create_app(Settings(), Serving(gpt2=found, source=found.loaded.description))

    with TestClient(app) as client:
        api = client.get("/api/predict", params={"text": "what a beautiful day", "n": 3})

    assert api.status_code == 200 and found.engine.built
    fresh = GPT2(synthetic_model("tiny"), threads=1, cache_dir=tmp_path / "fresh")
    expected = fresh.trace([10919, 257, 4950, 1110]).logits
    assert api.json()["top"][0]["logit"] == pytest.approx(float(expected.max()), abs=1e-4)
