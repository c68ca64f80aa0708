"""deploy/ run for real: Debian's nginx with the repository's site file, in front of `glassbox serve`
replicas on loopback ports (bench/cluster.py starts them)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bench.cluster import Cluster, missing_tools
from tests.classroom.conftest import make_client, tiny  # noqa: F401  (apps of the tiny model, for test_headers)


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
