"""Fixtures that start real ``nats-server`` processes on free loopback ports.

Import them into a test module and mark the module ``pytest.mark.cluster``: ``from nats_fixtures
import nats_cluster`` (the fixture's own name), or, to keep ruff's F811 quiet when a test takes the
fixture as a parameter, ``from nats_fixtures import nats_cluster_fixture`` (the same fixture under
another module name). There is deliberately no ``tests/cluster/conftest.py``: a second module named
``conftest`` would shadow ``tests/conftest.py`` for every suite that does ``from conftest import
City``. Without ``nats-server`` they skip with the reason, unless ``CI`` is set: there they fail, so
the CI entry can never pass by skipping everything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from civicledger.node.cluster.nats_servers import NatsCluster, NatsServerMissing, find_nats_server

__all__ = [
    "nats_cluster",
    "nats_cluster_fixture",
    "nats_single",
    "nats_single_fixture",
    "require_nats_server",
]


def require_nats_server() -> str:
    """The ``nats-server`` path; skips the test when it is absent (fails instead under ``CI``)."""
    try:
        return find_nats_server()
    except NatsServerMissing as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e.message} (CI is set, so this fails instead of skipping)")
        pytest.skip(e.message)


def _started(root: Path, size: int) -> Iterator[NatsCluster]:
    require_nats_server()
    cluster = NatsCluster(root, size)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(name="nats_single")
def nats_single_fixture(tmp_path: Path) -> Iterator[NatsCluster]:
    """One JetStream server (use ``num_replicas=1`` streams on it)."""
    yield from _started(tmp_path / "nats-single", 1)


@pytest.fixture(name="nats_cluster")
def nats_cluster_fixture(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three clustered JetStream servers with a meta leader elected."""
    yield from _started(tmp_path / "nats-cluster", 3)


nats_single = nats_single_fixture
"""The same fixture under its fixture name, for ``from nats_fixtures import nats_single``."""
nats_cluster = nats_cluster_fixture
"""The same fixture under its fixture name, for ``from nats_fixtures import nats_cluster``."""
