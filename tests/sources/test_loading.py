"""What the server runs: the model asked for, or a fallback with a banner; and the settings that decide it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import model.sources
from app.loading import banner_text, check_model_spec, load_for_serving
from app.settings import Settings
from model.sources import ModelUnavailable
from tests.sources.fakehub import FakeHub, closed_port, write_model_dir

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    return endpoint


@pytest.fixture
def no_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model.sources, "DEMO_DIR", tmp_path / "no-demo-here")


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_model_dir(tmp_path / "demo")
    monkeypatch.setattr(model.sources, "DEMO_DIR", tmp_path / "demo")


def test_tiny_is_served_as_asked_without_a_banner() -> None:
    serving = load_for_serving(Settings(model="tiny", threads=1, cache_mb=8))

    assert serving.fallback is False and serving.fallback_reason is None
    assert banner_text(serving) is None
    assert serving.gpt2.name == "tiny"
    assert serving.threads == 1
    assert serving.gpt2.cache.max_bytes == 8 * 2**20
    assert serving.source.startswith("tiny (2 layers, 4 heads, 64 wide")


def test_unreachable_hub_falls_back_to_the_demo_model(no_hub: str, demo: None) -> None:
    serving = load_for_serving(Settings(model="gpt2", hub_timeout=5))

    assert serving.fallback is True
    assert serving.gpt2.name == "demo" and serving.trained
    assert serving.fallback_reason is not None and f"{no_hub} could not be reached" in serving.fallback_reason
    banner = banner_text(serving)
    assert banner is not None
    assert "This is not gpt2" in banner and "demo" in banner
    assert "“glassbox download gpt2”" in banner
    assert "“--model /path/to/dir”" in banner
    assert "Hugging Face cache" in banner
    assert "untrained" not in banner


def test_without_the_demo_model_the_untrained_one_is_served_and_said_so(no_hub: str, no_demo: None) -> None:
    serving = load_for_serving(Settings(model="gpt2", hub_timeout=5))

    assert serving.fallback is True
    assert serving.gpt2.name == "tiny" and not serving.trained
    banner = banner_text(serving)
    assert banner is not None and "untrained" in banner and "“glassbox download gpt2”" in banner


def test_offline_mode_falls_back_without_asking_the_hub(hub: FakeHub, monkeypatch, no_demo: None) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    serving = load_for_serving(Settings(model="gpt2"))

    assert serving.fallback is True
    assert serving.fallback_reason is not None and "HF_HUB_OFFLINE" in serving.fallback_reason
    assert hub.requests == []


def test_a_cached_model_is_served_without_the_hub(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    first = load_for_serving(Settings(model="gpt2"))
    hub_requests = len(hub.requests)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")

    again = load_for_serving(Settings(model="gpt2"))

    assert "from hub download" in first.source and first.graph_built
    assert "from hub cache" in again.source and not again.graph_built  # the graph was cached too
    assert (first.fallback, again.fallback) == (False, False)
    assert len(hub.requests) == hub_requests


def test_an_empty_fallback_means_fail(no_hub: str) -> None:
    with pytest.raises(ModelUnavailable, match="could not be reached"):
        load_for_serving(Settings(model="gpt2", fallback="", hub_timeout=5))


@pytest.mark.parametrize("spec", ["gpt2", "demo", "openai-community/gpt2", "tiny", "random-gpt2"])
def test_model_names_that_are_accepted(spec: str) -> None:
    check_model_spec(spec)


@pytest.mark.parametrize("spec", ["gpt3", "", "/no/such/dir", "./relative/missing", "a/b/c"])
def test_model_names_that_are_refused_in_one_sentence(spec: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_model_spec(spec)

    message = str(caught.value)
    assert message.startswith("unknown model") and message.count(". ") == 0 and message.endswith(".")
    assert "config.json and model.safetensors" in message and "'tiny'" in message


def test_a_directory_without_weights_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    with pytest.raises(ValueError, match=r"has no config\.json or model\.safetensors"):
        check_model_spec(str(tmp_path / "empty"))


def test_settings_come_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MODEL": "tiny",
        "FALLBACK": "",
        "HOST": "0.0.0.0",
        "PORT": "9001",
        "WORKERS": "3",
        "THREADS": "2",
        "HUB_TIMEOUT": "2.5",
        "CACHE_MB": "64",
    }.items():
        monkeypatch.setenv(f"GLASSBOX_{name}", value)

    s = Settings()

    assert (s.model, s.fallback, s.host, s.port, s.workers, s.threads) == ("tiny", "", "0.0.0.0", 9001, 3, 2)
    assert (s.hub_timeout, s.cache_mb) == (2.5, 64)
    assert Settings(port=9002).port == 9002  # an explicit value (a flag) wins over the variable


def test_bad_environment_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSBOX_PORT", "70000")

    with pytest.raises(ValidationError, match="port"):
        Settings()
