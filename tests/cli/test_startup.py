"""`glassbox serve` refusing to start: one to three lines naming the problem and what to do, exit code 2.

Each case runs the installed command in its own process, as a teacher would, and counts its output lines.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_commands import glassbox
from tests.sources.fakehub import closed_port, write_model_dir

pytestmark = [pytest.mark.usefixtures("isolated"), pytest.mark.slow]

GUARD_SECONDS = 120  # only to stop a hung server; no timing is asserted


def serve(*args: str, **env: str) -> tuple[int, list[str]]:
    """Exit code and output lines (stdout and stderr together) of `glassbox serve` that should not start."""
    done = subprocess.run(
        glassbox("serve", "--port", str(closed_port()), "--threads", "1", *args),
        capture_output=True,
        text=True,
        timeout=GUARD_SECONDS,
        env={**os.environ, **env},
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


def assert_short_refusal(code: int, lines: list[str], *words: str) -> None:
    text = "\n".join(lines)
    assert code == 2, text
    assert 1 <= len(lines) <= 3, text
    assert "Traceback" not in text
    assert lines[-1].startswith("glassbox: "), text
    for word in words:
        assert word in lines[-1], text


def test_offline_without_a_fallback() -> None:
    code, lines = serve(HF_HUB_OFFLINE="1", GLASSBOX_FALLBACK="")

    assert_short_refusal(
        code, lines, "not in the Hugging Face cache", "HF_HUB_OFFLINE is set", "--model demo"
    )


def _header_length(path: Path) -> int:
    return 8 + int(struct.unpack("<Q", path.read_bytes()[:8])[0])


def _edit_config(**changes: object) -> Callable[[Path], None]:
    """Set config.json's fields; a field set to ... is removed."""

    def edit(directory: Path) -> None:
        config = json.loads((directory / "config.json").read_text())
        config.update(changes)
        config = {k: v for k, v in config.items() if v is not ...}
        (directory / "config.json").write_text(json.dumps(config))

    return edit


def _drop_tensor(directory: Path) -> None:
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(directory / "model.safetensors"))
    del weights["h.1.mlp.c_fc.weight"]
    save_file(weights, str(directory / "model.safetensors"))


def _nan_data(directory: Path) -> None:
    """Every weight's bytes 0xFF (NaN) behind an intact header: the file keeps its size and its shapes."""
    path = directory / "model.safetensors"
    data = bytearray(path.read_bytes())
    start = _header_length(path)
    data[start:] = b"\xff" * (len(data) - start)
    path.write_bytes(bytes(data))


BROKEN: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "truncated safetensors": (
        lambda d: os.truncate(d / "model.safetensors", (d / "model.safetensors").stat().st_size // 2),
        ("model.safetensors is damaged or incomplete",),
    ),
    "garbage safetensors": (
        lambda d: (d / "model.safetensors").write_bytes(os.urandom(50_000)),
        ("model.safetensors is damaged or incomplete",),
    ),
    "config.json not JSON": (
        lambda d: (d / "config.json").write_text('{"n_layer": 2,'),
        ("config.json is not valid JSON",),
    ),
    "config.json missing a size": (_edit_config(n_embd=...), ("config.json has no n_embd",)),
    "a size of the wrong type": (_edit_config(n_layer="12"), ("n_layer is '12'",)),
    "absurd sizes": (_edit_config(n_head=0), ("n_head is 0", "whole number from 1")),
    "huge sizes": (_edit_config(n_embd=10**12), ("n_embd is 1000000000000",)),
    "a tensor missing": (_drop_tensor, ("lacks the tensor 'h.1.mlp.c_fc.weight'",)),
    "NaN weights, right size": (_nan_data, ("is corrupt", "holds NaN or infinite numbers")),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_model_directory_is_named_and_not_replaced_by_the_fallback(
    case: str, tmp_path: Path
) -> None:
    damage, words = BROKEN[case]
    directory = tmp_path / "my-model"
    write_model_dir(directory)
    damage(directory)

    code, lines = serve("--model", str(directory))

    assert_short_refusal(code, lines, str(directory), *words)
    assert "Fix or replace it" in lines[-1] or "Download the model again" in lines[-1]
    assert not any("fallback" in line and "serving" in line for line in lines)
