"""deploy/ run for real: Debian's nginx with the repository's site file, in front of `glassbox serve`
replicas on loopback ports (bench/cluster.py starts them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cluster import Cluster, missing_tools


def need_nginx() -> None:
    """Skip where nginx is not installed; in CI (which installs it) its absence is a failure."""
    if (why := missing_tools()) is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs nginx for tests/deploy, but {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three single-worker replicas of the tiny model behind nginx."""
    need_nginx()
    with Cluster(3, model="tiny", prefix=tmp_path_factory.mktemp("cluster")) as started:
        yield started


def dump_logs(prefix: Path) -> str:
    """The end of every log of a cluster, for a failing assert's message."""
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(prefix.glob("*.log")))
