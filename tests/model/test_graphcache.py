"""The graph cache on a bad day: damaged files rebuilt, nothing appended, NaN never served, racing builds."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from model import graphcache
from model.graphcache import GRAPH_FILE, MANIFEST_FILE, WEIGHTS_FILE, check_graph, graph_dir
from model.reference import forward
from model.runtime import Engine
from model.sources import BrokenModel, synthetic_model

IDS = [10919, 257, 4950, 1110]  # "what a beautiful day"
GUARD_SECONDS = 300  # only to stop a hung process; no timing is asserted


def tiny_engine(cache: Path) -> Engine:
    return Engine.for_model(synthetic_model("tiny"), threads=1, cache_dir=cache)


def assert_matches_reference(engine: Engine) -> None:
    """The engine's logits and last residual equal an independent numpy forward pass of the same weights."""
    loaded = synthetic_model("tiny")
    c = loaded.config
    expected = forward(loaded.weights, IDS, c.n_layer, c.n_head)
    trace = engine.trace(IDS)
    np.testing.assert_allclose(trace["logits"][0], expected["logits"][-1], atol=1e-4)
    last = f"block{c.n_layer - 1}.resid.out"
    np.testing.assert_allclose(trace[last], expected[last], atol=1e-4)


def sizes(directory: Path) -> dict[str, int]:
    return {name: (directory / name).stat().st_size for name in (GRAPH_FILE, WEIGHTS_FILE)}


def rewrite_manifest(directory: Path) -> None:
    """Make the manifest agree with the files as they are now (corruption its check cannot see)."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    for name, entry in manifest["files"].items():
        entry["size"] = (directory / name).stat().st_size
        entry["sha256"] = graphcache.file_sha256(directory / name)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path, dict[str, int]]:
    """A tiny graph built into an empty cache: the cache, the graph's directory, its files' sizes."""
    engine = tiny_engine(tmp_path)
    assert engine.built
    directory = engine.graph_file.parent
    assert check_graph(directory) is None
    return tmp_path, directory, sizes(directory)


def test_a_graph_is_built_once_with_a_manifest_and_then_found(built) -> None:
    cache, directory, first = built
    manifest = json.loads((directory / MANIFEST_FILE).read_text())

    again = tiny_engine(cache)

    assert not again.built
    assert {name: entry["size"] for name, entry in manifest["files"].items()} == first
    assert sorted(p.name for p in directory.parent.iterdir()) == [directory.name, f"{directory.name}.lock"]
    assert_matches_reference(again)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: (d / GRAPH_FILE).write_bytes(os.urandom(4096)), id="random model.onnx"),
        pytest.param(lambda d: (d / GRAPH_FILE).unlink(), id="model.onnx deleted"),
        pytest.param(
            lambda d: os.truncate(d / WEIGHTS_FILE, (d / WEIGHTS_FILE).stat().st_size // 2),
            id="weights.bin truncated",
        ),
        pytest.param(
            lambda d: (d / WEIGHTS_FILE).write_bytes(b"\xff" * (d / WEIGHTS_FILE).stat().st_size),
            id="weights.bin 0xFF, same size",
        ),
        pytest.param(lambda d: (d / MANIFEST_FILE).write_text("{"), id="manifest garbled"),
    ],
)
def test_a_damaged_graph_is_rebuilt_with_one_warning(built, damage, caplog: pytest.LogCaptureFixture) -> None:
    cache, directory, first = built
    damage(directory)

    with caplog.at_level(logging.WARNING, logger="model"):
        engine = tiny_engine(cache)

    assert engine.built
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "is damaged" in warnings[0] and "building it again" in warnings[0]
    assert sizes(directory) == first  # written afresh: nothing appended to an old weights.bin
    assert check_graph(directory) is None
    assert_matches_reference(engine)


def test_a_killed_build_leaves_nothing_the_next_one_uses(tmp_path: Path) -> None:
    loaded = synthetic_model("tiny")
    directory = graph_dir(loaded.fingerprint, tmp_path)
    partial = directory.parent / f".{directory.name}.killed.tmp"
    partial.mkdir(parents=True)
    (partial / WEIGHTS_FILE).write_bytes(b"\0" * 1000)  # what onnx would have appended to

    engine = tiny_engine(tmp_path)

    assert engine.built and not partial.exists()
    assert_matches_reference(engine)


def test_nan_from_a_cached_graph_rebuilds_it_once(built, caplog: pytest.LogCaptureFixture) -> None:
    cache, directory, first = built
    (directory / WEIGHTS_FILE).write_bytes(b"\xff" * first[WEIGHTS_FILE])  # every float NaN
    rewrite_manifest(directory)  # damage the manifest's check cannot see
    engine = tiny_engine(cache)
    assert not engine.built

    with caplog.at_level(logging.WARNING, logger="model"):
        assert_matches_reference(engine)  # the first run gave NaN; the graph was rebuilt and run again

    assert engine.built
    assert any("NaN or infinite logits" in r.getMessage() for r in caplog.records)
    assert sizes(directory) == first and check_graph(directory) is None


def test_nan_weights_are_named_and_never_served(tmp_path: Path) -> None:
    loaded = synthetic_model("tiny")
    weights = loaded.weights
    weights["h.1.mlp.c_fc.weight"][3, 5] = np.nan

    with pytest.raises(BrokenModel, match=r"h\.1\.mlp\.c_fc\.weight holds NaN or infinite numbers"):
        Engine(weights, loaded.config, threads=1, cache_dir=tmp_path)

    assert not any(tmp_path.rglob(GRAPH_FILE))


def test_a_graph_still_giving_nan_after_its_rebuild_is_named_corrupt(built) -> None:
    cache, directory, first = built
    (directory / WEIGHTS_FILE).write_bytes(b"\xff" * first[WEIGHTS_FILE])
    rewrite_manifest(directory)
    loaded = synthetic_model("tiny")
    bad = {name: array.copy() for name, array in loaded.weights.items()}
    bad["wte.weight"][:] = np.inf  # the weights it would be rebuilt from are corrupt as well
    engine = Engine(
        lambda: bad,
        loaded.config,
        threads=1,
        cache_dir=cache,
        key=loaded.fingerprint,
        source="the model tiny",
    )

    with pytest.raises(BrokenModel, match=r"the model tiny is corrupt: its parameter wte\.weight"):
        engine.trace(IDS)


RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from model.runtime import Engine
    from model.sources import synthetic_model

    cache, go = Path(sys.argv[1]), Path(sys.argv[2])
    loaded = synthetic_model("tiny")
    loaded.fingerprint
    while not go.exists():  # both processes are ready: start building at the same moment
        time.sleep(0.005)
    engine = Engine.for_model(loaded, threads=1, cache_dir=cache)
    print("built" if engine.built else "found")
    """
)


@pytest.mark.slow
def test_two_processes_starting_on_an_empty_cache_give_one_correct_graph(tmp_path: Path) -> None:
    cache, go = tmp_path / "cache", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(cache), str(go)],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    go.touch()
    results = [r.communicate(timeout=GUARD_SECONDS) for r in racers]

    assert [r.returncode for r in racers] == [0, 0], results
    assert sorted(out.strip() for out, _ in results) == ["built", "found"]
    (directory,) = [p for p in (cache / "graphs").iterdir() if p.is_dir()]
    assert check_graph(directory) is None
    solo = tiny_engine(tmp_path / "solo")
    assert sizes(directory) == sizes(solo.graph_file.parent)
    engine = tiny_engine(cache)
    assert not engine.built
    assert_matches_reference(engine)  # parity after the race
