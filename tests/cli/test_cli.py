"""The `glassbox` command: help texts, trace, export, download and serve's settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from app import cli
from app.settings import Settings
from model import GPT2
from model.sources import synthetic_model

pytestmark = pytest.mark.usefixtures("isolated")

DATA = "Data visualization empowers users to"
DATA_IDS = [6601, 32704, 795, 30132, 2985, 284]
DATA_LABELS = ["Data", " visualization", " em", "powers", " users", " to"]
Capture = pytest.CaptureFixture[str]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def help_text(capsys: Capture, *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_main_help_lists_every_command(capsys: Capture) -> None:
    text = help_text(capsys)

    for command in ("serve", "trace", "export", "download"):
        assert command in text
    assert "glassbox serve" in text


def test_serve_help_names_every_setting_and_its_variable(capsys: Capture) -> None:
    text = " ".join(help_text(capsys, "serve").split())  # argparse wraps lines

    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in text
        assert f"GLASSBOX_{name.upper()}" in text
    assert "HF_HUB_OFFLINE" in text and "fallback" in text


def test_subcommand_helps_say_what_they_do(capsys: Capture) -> None:
    assert "10 most likely next tokens" in help_text(capsys, "trace")
    assert "--json" in help_text(capsys, "trace")
    assert "whether it was built now or found" in " ".join(help_text(capsys, "export").split())
    assert "Hugging Face hub" in help_text(capsys, "download")


def test_trace_json_has_the_tokens_and_ten_sorted_predictions(capsys: Capture) -> None:
    code, out, _ = run(capsys, "trace", "--model", "tiny", "--json", DATA)

    assert code == 0
    report = json.loads(out)
    assert report["model"] == "tiny" and report["trained"] is False
    assert [t["id"] for t in report["tokens"]] == DATA_IDS
    assert [t["label"] for t in report["tokens"]] == DATA_LABELS
    predictions = report["predictions"]
    probs = [p["probability"] for p in predictions]
    assert len(predictions) == 10 and len({p["id"] for p in predictions}) == 10
    assert all(0 < p <= 1 for p in probs)
    assert probs == sorted(probs, reverse=True)


def test_trace_probabilities_are_the_softmax_of_the_last_logits(capsys: Capture) -> None:
    _, out, _ = run(capsys, "trace", "--model", "tiny", "--json", DATA)
    logits = GPT2(synthetic_model("tiny")).trace(DATA_IDS).logits.astype(np.float64)
    expected = np.exp(logits - logits.max())
    expected /= expected.sum()

    predictions = json.loads(out)["predictions"]

    assert [p["id"] for p in predictions] == list(np.argsort(-expected, kind="stable")[:10])
    probs = [p["probability"] for p in predictions]
    np.testing.assert_allclose(probs, np.sort(expected)[::-1][:10], rtol=1e-6)


def test_trace_prints_a_readable_table(capsys: Capture) -> None:
    code, out, _ = run(capsys, "trace", "--model", "tiny", DATA)

    assert code == 0
    assert "tiny (2 layers, 4 heads, 64 wide; from synthetic)" in out
    assert "untrained" in out
    assert "6 tokens" in out and "32704  ' visualization'" in out
    assert "most likely next tokens" in out


@pytest.mark.parametrize(
    "command",
    [
        ["trace", "--model", "gpt3", "hello"],
        ["export", "--model", "gpt3"],
        ["serve", "--model", "gpt3"],
        ["download", "gpt3"],
    ],
)
def test_a_wrong_model_is_one_sentence_and_exit_2(capsys: Capture, command: list[str]) -> None:
    code, out, err = run(capsys, *command)

    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("glassbox: unknown model 'gpt3': Glassbox takes a Hugging Face GPT-2 name")
    assert "config.json and model.safetensors" in err and "'demo', 'tiny' or 'random-gpt2'" in err


def test_an_empty_text_is_a_usage_error(capsys: Capture) -> None:
    code, _, err = run(capsys, "trace", "--model", "tiny", "")

    assert code == 2 and "empty" in err


def test_export_builds_the_graph_once(capsys: Capture, isolated: Path) -> None:
    code1, first, _ = run(capsys, "export", "--model", "tiny")
    code2, second, _ = run(capsys, "export", "--model", "tiny")

    assert (code1, code2) == (0, 0)
    assert "built in" in first and "already built" in second
    path = Path(first.splitlines()[-1])
    assert path == Path(second.splitlines()[-1])
    assert path.is_file() and path.is_relative_to(isolated / "glassbox")
    assert (path.parent / "weights.bin").is_file()


def test_a_graph_overwritten_with_0xff_is_rebuilt_on_the_next_start(capsys: Capture, caplog) -> None:
    _, exported, _ = run(capsys, "export", "--model", "tiny")
    _, before, _ = run(capsys, "trace", "--model", "tiny", "--json", DATA)
    weights = Path(exported.splitlines()[-1]).parent / "weights.bin"
    size = weights.stat().st_size
    weights.write_bytes(b"\xff" * size)  # every float NaN, the file the same size

    code, after, _ = run(capsys, "trace", "--model", "tiny", "--json", DATA)

    assert code == 0
    assert json.loads(after)["predictions"] == json.loads(before)["predictions"]
    assert weights.stat().st_size == size
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "weights.bin does not match the SHA-256 in its manifest" in warnings[0]


def test_download_of_a_builtin_model_needs_nothing(capsys: Capture) -> None:
    code, out, _ = run(capsys, "download", "tiny")

    assert code == 0 and "needs no download" in out


def test_download_without_a_hub_says_what_to_do(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.sources.fakehub import closed_port

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")

    code, _, err = run(capsys, "download", "gpt2")

    assert code == 2
    assert err.count("\n") == 2 and "could not be reached: the connection was refused" in err
    assert "glassbox serve --model demo" in err
    assert "--model /path" not in err  # `download` has no such option


def test_trace_without_a_hub_suggests_the_demo_model(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    code, _, err = run(capsys, "trace", "--model", "gpt2", "hello")

    assert code == 2
    assert err.count("\n") == 1 and "HF_HUB_OFFLINE is set" in err and "--model demo" in err


def test_download_puts_the_model_in_the_hub_cache(capsys, hub, isolated: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)

    code, out, _ = run(capsys, "download", "gpt2")
    again_code, again, _ = run(capsys, "download", "gpt2")

    assert code == 0
    snapshot = Path(out.splitlines()[-1])
    assert snapshot.is_relative_to(isolated / "hf" / "hub")
    assert (snapshot / "config.json").is_file() and (snapshot / "model.safetensors").is_file()
    assert again_code == 0 and "already in the Hugging Face cache" in again


def test_serve_hands_flags_and_variables_to_every_worker(capsys, isolated: Path, monkeypatch) -> None:
    import uvicorn

    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append((a, kw)))
    monkeypatch.setenv("GLASSBOX_THREADS", "1")
    monkeypatch.setenv("GLASSBOX_PORT", "9000")

    code = cli.main(["serve", "--model", "tiny", "--port", "9123", "--workers", "2", "--host", "0.0.0.0"])

    assert code == 0
    ((args, kwargs),) = calls
    assert args == ("app.main:create_app",)
    assert kwargs["factory"] is True
    assert (kwargs["host"], kwargs["port"], kwargs["workers"]) == ("0.0.0.0", 9123, 2)
    assert {"app", "model"} <= set(kwargs["log_config"]["loggers"])
    # each worker builds its app with Settings() from the environment: it must see the same settings
    assert Settings() == Settings(model="tiny", port=9123, workers=2, host="0.0.0.0", threads=1)
    assert os.environ["GLASSBOX_PORT"] == "9123"
    # with several workers the graph is built once, before they start
    assert len(list((isolated / "glassbox" / "graphs").glob("*/model.onnx"))) == 1


def test_serve_refuses_bad_settings(capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSBOX_WORKERS", "many")

    code, _, err = run(capsys, "serve", "--port", "70000")

    assert code == 2
    assert err.startswith("glassbox: invalid setting (")
    assert "port:" in err and "workers:" in err


def test_serve_refuses_a_port_in_use_before_loading_anything(capsys: Capture) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code, _, err = run(capsys, "serve", "--model", "tiny", "--port", str(port))

    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
