"""Prometheus metrics of one node: height, committed tx/s, mempool size, rejections by reason.

Each app gets its own ``CollectorRegistry`` (several apps in one test process must not share
counters). Counters are updated from the node's writer thread and from request handlers;
``prometheus_client`` metrics are thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from civicledger.errors import TxRejected
from civicledger.ledger.receipt import Receipt
from civicledger.node.chain import CommittedBlock
from civicledger.node.cluster.node import FINALITY_BUCKETS_S, ClusterNode
from civicledger.node.protocol import Node

# The ``*_created`` timestamp series only double the output; nobody here graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeMetrics:
    def __init__(self, node: Node, *, rate_window_s: float = 10.0) -> None:
        self.registry = CollectorRegistry()
        self._window_s = rate_window_s
        self._recent: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()
        self.height = Gauge(
            "civicledger_block_height", "Height of the latest durable block", registry=self.registry
        )
        self.height.set(node.chain.height)
        mempool = Gauge(
            "civicledger_mempool_size",
            "Transactions admitted and waiting for a block",
            registry=self.registry,
        )
        mempool.set_function(lambda: node.mempool_size)
        rate = Gauge(
            "civicledger_transactions_per_second",
            f"Committed transactions per second over the last {rate_window_s:g} s",
            registry=self.registry,
        )
        rate.set_function(self.tx_rate)
        self.committed = Counter(
            "civicledger_transactions_committed",
            "Transactions committed, by receipt status (failed ones are recorded too)",
            ["status"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "civicledger_transactions_rejected",
            "Transactions submitted through the API and refused (at admission or when their block"
            " was made), by reason",
            ["reason"],
            registry=self.registry,
        )
        for status in ("ok", "failed"):
            self.committed.labels(status)
        if isinstance(node, ClusterNode):
            self.registry.register(ClusterCollector(node))

    def on_block(self, block: CommittedBlock) -> None:
        """Called from the writer thread after each durable block."""
        self.height.set(block.header.header.height)
        ok = sum(1 for item in block.included if item.receipt.ok)
        self.committed.labels("ok").inc(ok)
        self.committed.labels("failed").inc(len(block.included) - ok)
        now = time.monotonic()
        with self._lock:
            self._recent.append((now, len(block.included)))
            self._trim(now)

    def on_rejected(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def watch(self, future: Future[Receipt]) -> None:
        """Count the transaction as rejected if it is dropped later, whoever still waits for it.

        The callback runs on the thread that resolves the future (the node's); it only counts.
        """
        future.add_done_callback(self._count_if_rejected)

    def _count_if_rejected(self, future: Future[Receipt]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, TxRejected):
            self.rejected.labels(error.reason).inc()

    def tx_rate(self) -> float:
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            return sum(count for _, count in self._recent) / self._window_s

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - self._window_s:
            self._recent.popleft()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ClusterCollector(Collector):
    """A cluster node's figures, read from the node at each scrape."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        stats = node.stats
        yield GaugeMetricFamily(
            "civic_cluster_stream_seq", "Stream sequence of the last cut applied", node.stream_seq
        )
        yield GaugeMetricFamily(
            "civic_cluster_final_height",
            "Highest block attested by a quorum of agencies",
            node.final_height,
        )
        yield CounterMetricFamily(
            "civic_cluster_attestations", "Attestations read and stored", stats.attestations
        )
        yield CounterMetricFamily(
            "civic_cluster_divergences",
            "Attestations of a header other than this node's (or equivocations)",
            stats.divergences,
        )
        yield GaugeMetricFamily(
            "civic_cluster_faulty_peers",
            "Peers reported faulty",
            len({f.node for f in node.faulty}),
        )
        yield GaugeMetricFamily(
            "civic_cluster_diverged",
            "1 while this node diverged and refuses to serve",
            0 if node.serving else 1,
        )
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip(FINALITY_BUCKETS_S, stats.finality_counts, strict=True):
            cumulative += count
            buckets.append((repr(bound), cumulative))
        buckets.append(("+Inf", stats.finality_count))
        yield HistogramMetricFamily(
            "civic_cluster_finality_seconds",
            "Time from this node's commit of a block to its quorum of attestations",
            buckets=buckets,
            sum_value=stats.finality_sum,
        )
