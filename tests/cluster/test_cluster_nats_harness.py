"""The NATS harness itself: real ``nats-server`` processes, an R3 stream, leader loss, rejoin."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.js.api import StreamConfig
from nats.js.errors import NoStreamResponseError

from civicledger.node.cluster.nats_servers import NatsCluster, free_ports
from nats_fixtures import nats_cluster_fixture, nats_single_fixture  # noqa: F401  (fixtures)

pytestmark = pytest.mark.cluster

STREAM = "CIVIC_HARNESS"
SUBJECT = "civic.harness.tx"


def _stream_config(replicas: int) -> StreamConfig:
    return StreamConfig(
        name=STREAM,
        subjects=[SUBJECT],
        num_replicas=replicas,
        duplicate_window=120.0,
        deny_delete=True,
        deny_purge=True,
    )


async def _retry(call: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``call`` until it succeeds, for up to 30 s (a leader election takes a few seconds)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await call()
        except (TimeoutError, NoStreamResponseError, nats.errors.Error):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _publish(urls: list[str], ids: range, *, replicas: int = 3) -> list[Any]:
    """Publish one acked message per id (retrying while a leader is being elected)."""
    nc = await nats.connect(servers=urls, connect_timeout=2, max_reconnect_attempts=-1)
    try:
        js = nc.jetstream(timeout=2.0)
        await _retry(lambda: js.add_stream(_stream_config(replicas)))
        acks = []
        for i in ids:
            acks.append(
                await _retry(
                    lambda i=i: js.publish(SUBJECT, b"m%d" % i, headers={"Nats-Msg-Id": f"id-{i}"})
                )
            )
        return acks
    finally:
        await nc.close()


def _stream_msgs(cluster: NatsCluster, name: str) -> int:
    doc = cluster.jsz(name, accounts="true", streams="true")
    for account in doc.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail.get("name") == STREAM:
                return int(detail["state"]["messages"])
    return -1


def test_free_ports_avoid_nats_defaults() -> None:
    ports = free_ports(30)
    assert len(set(ports)) == 30
    assert not {4222, 6222, 8222} & set(ports)


def test_single_server_takes_r1_stream(nats_single: NatsCluster) -> None:
    acks = asyncio.run(_publish(nats_single.urls, range(5), replicas=1))
    assert [a.seq for a in acks] == [1, 2, 3, 4, 5]
    assert nats_single.stream_leader(STREAM) == nats_single.names()[0]
    assert nats_single.pid(nats_single.names()[0]) is not None


def test_three_servers_r3_stream_acks_and_deduplicates(nats_cluster: NatsCluster) -> None:
    assert len(nats_cluster.urls) == 3
    assert len({nats_cluster.pid(n) for n in nats_cluster.names()}) == 3
    acks = asyncio.run(_publish(nats_cluster.urls, range(20)))
    assert [a.seq for a in acks] == list(range(1, 21))
    again = asyncio.run(_publish(nats_cluster.urls, range(5)))
    assert all(a.duplicate for a in again)
    assert [a.seq for a in again] == [1, 2, 3, 4, 5]
    assert nats_cluster.stream_leader(STREAM) in nats_cluster.names()


def test_killing_stream_leader_elects_another_and_publishes_resume(
    nats_cluster: NatsCluster,
) -> None:
    asyncio.run(_publish(nats_cluster.urls, range(10)))
    leader = nats_cluster.stream_leader(STREAM)
    nats_cluster.kill(leader)
    assert not nats_cluster.running(leader)
    new_leader = nats_cluster.stream_leader(STREAM, timeout=30)
    assert new_leader != leader
    live = [nats_cluster.url(n) for n in nats_cluster.names() if n != leader]
    acks = asyncio.run(_publish(live, range(10, 20)))
    assert [a.seq for a in acks] == list(range(11, 21))


def test_restarted_server_rejoins_and_catches_up(nats_cluster: NatsCluster) -> None:
    asyncio.run(_publish(nats_cluster.urls, range(10)))
    leader = nats_cluster.stream_leader(STREAM)
    follower = next(n for n in nats_cluster.names() if n != leader)
    old_pid = nats_cluster.pid(follower)
    nats_cluster.kill(follower)
    live = [nats_cluster.url(n) for n in nats_cluster.names() if n != follower]
    asyncio.run(_publish(live, range(10, 30)))
    nats_cluster.restart(follower)
    assert nats_cluster.pid(follower) != old_pid
    deadline = time.monotonic() + 30
    while _stream_msgs(nats_cluster, follower) != 30:
        assert time.monotonic() < deadline, "restarted server did not catch up"
        time.sleep(0.2)
    assert _stream_msgs(nats_cluster, follower) == 30
