"""JetStream plumbing: stream names and settings, publishing with de-duplication ids, ordered
reading from a sequence. Async (nats-py); ``ClusterNode`` runs it on its own event loop.

A JetStream acknowledgement only says the stream stored the message; it is never finality
(Debian's 2.9.10 cannot fsync every write): finality is a quorum of attestations (``attest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from civicledger.errors import NodeError
from civicledger.node.cluster.blocks import Kind, StreamMessage
from civicledger.node.cluster.config import ClusterConfig

PUBLISH_DEADLINE_S = 30.0
"""How long a publish is retried (a new stream leader is elected in 4-7 s when one dies)."""


def _token(chain_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", chain_id)


@dataclass(frozen=True, slots=True)
class Names:
    """The chain's stream names and subjects."""

    stream: str
    attest_stream: str
    tx: str
    cut: str
    attest: str
    log_filter: str
    """Subject filter of the ordered consumer over the transaction and cut subjects."""

    @classmethod
    def of(cls, chain_id: str, config: ClusterConfig) -> Names:
        base = config.stream or "CIVIC_" + re.sub(r"[^A-Za-z0-9]", "_", chain_id).upper()
        token = _token(chain_id)
        return cls(
            stream=base,
            attest_stream=f"{base}_ATTEST",
            tx=f"civic.{token}.tx",
            cut=f"civic.{token}.cut",
            attest=f"civic.{token}.attest",
            log_filter=f"civic.{token}.*",
        )


async def connect(config: ClusterConfig, name: str) -> NatsClient:
    nc = NatsClient()
    await nc.connect(
        servers=config.nats_urls,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        allow_reconnect=True,
    )
    return nc


def _stream_config(name: str, subjects: list[str], config: ClusterConfig) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=subjects,
        num_replicas=config.replicas,
        duplicate_window=float(config.dedup_window_s),
        deny_delete=True,
        deny_purge=True,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_msgs=config.stream_max_msgs,
        max_age=float(config.stream_max_age_s),
    )


async def ensure_streams(js: JetStreamContext, names: Names, config: ClusterConfig) -> None:
    """Create the chain's two streams unless they exist (a second node finds them made)."""
    for stream, subjects in (
        (names.stream, [names.tx, names.cut]),
        (names.attest_stream, [names.attest]),
    ):
        deadline = time.monotonic() + PUBLISH_DEADLINE_S
        while True:
            try:
                await js.stream_info(stream)
                break
            except NotFoundError:
                pass
            except (NatsError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            try:
                await js.add_stream(_stream_config(stream, subjects, config))
                break
            except (NatsError, TimeoutError) as e:
                # Another node may have created it in between; look again.
                if time.monotonic() > deadline:
                    raise NodeError(f"cannot create stream {stream}: {e}") from e
                await asyncio.sleep(0.5)


async def publish(
    js: JetStreamContext,
    subject: str,
    data: bytes,
    msg_id: str,
    stream: str,
    deadline_s: float = PUBLISH_DEADLINE_S,
) -> PubAck:
    """Publish until acknowledged; retries are safe because of ``Nats-Msg-Id`` de-duplication."""
    deadline = time.monotonic() + deadline_s
    delay = 0.1
    while True:
        try:
            return await js.publish(
                subject, data, stream=stream, timeout=2.0, headers={"Nats-Msg-Id": msg_id}
            )
        except (NatsError, TimeoutError) as e:
            if time.monotonic() > deadline:
                raise NodeError(f"publish to {subject} not acknowledged: {e}") from e
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


def message_time_ms(msg: Msg) -> int:
    """The stream's timestamp of a delivered message, in ms, from its reply subject (exact)."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:
        return int(tokens[7]) // 1_000_000
    if len(tokens) >= 12:
        return int(tokens[9]) // 1_000_000
    raise NodeError(f"not a JetStream delivery: {msg.reply!r}")


def stream_message(msg: Msg, names: Names) -> StreamMessage:
    kind = Kind.TX if msg.subject == names.tx else Kind.CUT
    return StreamMessage(
        seq=msg.metadata.sequence.stream, kind=kind, data=msg.data, time_ms=message_time_ms(msg)
    )


async def subscribe_from(
    js: JetStreamContext,
    subject: str,
    stream: str,
    start_seq: int,
    handler: Callable[[Msg], Awaitable[None]],
) -> JetStreamContext.PushSubscription:
    """An ordered consumer of ``subject`` from ``start_seq`` (the client re-creates it on gaps)."""
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq)
    )
    return await js.subscribe(
        subject, stream=stream, cb=handler, ordered_consumer=True, config=config
    )


async def stream_bounds(js: JetStreamContext, stream: str) -> tuple[int, int]:
    """(first sequence, last sequence) the stream holds now."""
    info = await js.stream_info(stream)
    return info.state.first_seq, info.state.last_seq


async def close(nc: NatsClient) -> None:
    with contextlib.suppress(Exception):
        await nc.drain()


__all__ = [
    "Names",
    "connect",
    "ensure_streams",
    "message_time_ms",
    "publish",
    "stream_bounds",
    "stream_message",
    "subscribe_from",
]
