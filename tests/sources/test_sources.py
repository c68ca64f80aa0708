"""Where weights come from: a local directory, the hub (a loopback stand-in), the cache, or nowhere."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from model.sources import ModelUnavailable, cached_hub_dir, load_model
from tests.sources.fakehub import TINY, FakeHub, closed_port, write_model_dir

pytestmark = pytest.mark.usefixtures("isolated")

GUARD_SECONDS = 30  # only to catch a hang; no timing is asserted


def assert_same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_local_directory_round_trip(tmp_path: Path) -> None:
    saved = write_model_dir(tmp_path / "my-model")

    loaded = load_model(str(tmp_path / "my-model"))

    assert loaded.origin == "local directory"
    assert loaded.name == "my-model"
    assert loaded.config == TINY
    assert_same_weights(loaded.weights, saved)
    assert loaded.tokenizer.encode("what a beautiful day") == [10919, 257, 4950, 1110]


def test_directory_without_weights_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text(json.dumps(TINY.to_hf_dict()))

    with pytest.raises(ModelUnavailable, match=r"no model\.safetensors"):
        load_model(str(tmp_path / "half"))


def test_download_from_a_hub_over_http(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)

    loaded = load_model("gpt2")

    assert loaded.origin == "hub download"
    assert loaded.config == TINY
    assert_same_weights(loaded.weights, load_model(str(tmp_path / "served" / "gpt2")).weights)
    fetched = {(method, path.rsplit("/", 1)[-1]) for method, path in hub.requests}
    assert {("GET", "config.json"), ("GET", "model.safetensors")} <= fetched
    assert ("GET", "vocab.json") not in fetched  # the hub said 404: GPT-2's bundled tokenizer is used
    snapshot = cached_hub_dir("openai-community/gpt2")
    assert snapshot is not None and snapshot.is_relative_to(tmp_path / "hf" / "hub")


def test_a_cached_model_needs_no_network(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    first = load_model("gpt2")
    asked = len(hub.requests)

    again = load_model("gpt2")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    offline = load_model("gpt2")

    assert (again.origin, offline.origin) == ("hub cache", "hub cache")
    assert len(hub.requests) == asked
    assert_same_weights(again.weights, first.weights)


def test_an_unreachable_hub_fails_fast_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)

    start = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        load_model("gpt2", timeout=5)

    assert time.monotonic() - start < GUARD_SECONDS
    message = str(caught.value)
    assert f"{endpoint} could not be reached: the connection was refused" in message
    assert message.startswith("openai-community/gpt2 is not in the Hugging Face cache")


def test_a_failed_name_lookup_is_called_that(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://no-such-host.invalid")

    with pytest.raises(ModelUnavailable) as caught:
        load_model("gpt2", timeout=5)

    assert "http://no-such-host.invalid could not be reached: looking up the host's name failed (DNS" in str(
        caught.value
    )


def test_a_hub_that_never_answers_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")

        with pytest.raises(ModelUnavailable) as caught:
            load_model("gpt2", timeout=1)

    assert str(caught.value).endswith("could not be reached: no answer within 1 s")


def test_offline_mode_fails_at_once_without_asking(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(ModelUnavailable, match="HF_HUB_OFFLINE is set"):
        load_model("gpt2")

    assert hub.requests == []


def test_a_repository_the_hub_does_not_have(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)

    with pytest.raises(ModelUnavailable, match="could not fetch someone/not-there"):
        load_model("someone/not-there")


def test_tokenizer_files_from_the_hub_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from model.tokenizer import bundled_files

    repo = tmp_path / "with-tokenizer"
    write_model_dir(repo)
    vocab, merges = bundled_files()
    (repo / "vocab.json").write_bytes(vocab.read_bytes())
    (repo / "merges.txt").write_bytes(merges.read_bytes())
    with FakeHub({"someone/gpt2-tok": repo}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        loaded = load_model("someone/gpt2-tok")

    snapshot = cached_hub_dir("someone/gpt2-tok")
    assert snapshot is not None
    assert (snapshot / "vocab.json").is_file() and (snapshot / "merges.txt").is_file()
    assert loaded.tokenizer.encode("what a beautiful day") == [10919, 257, 4950, 1110]


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown model 'gpt3'"):
        load_model("gpt3")


def test_synthetic_weights_are_dropped_once_served_and_drawn_again_alike(tmp_path: Path) -> None:
    from model import GPT2
    from model.sources import synthetic_model

    loaded = synthetic_model("tiny", seed=3)
    before = {k: v.copy() for k, v in loaded.weights.items()}
    key = loaded.fingerprint
    gpt2 = GPT2(loaded, cache_dir=tmp_path)
    assert loaded.in_memory is None  # the graph holds them now
    again = loaded.weights
    assert again.keys() == before.keys()
    for name, value in before.items():
        np.testing.assert_array_equal(again[name], value)
    assert loaded.fingerprint == key
    assert gpt2.trace([464, 2068]).logits.shape == (loaded.config.vocab_size,)
