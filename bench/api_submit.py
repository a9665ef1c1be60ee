"""API submit throughput from a second process on loopback, against in-process submits.

Every API figure comes with its ratio to in-process baselines measured in the same run on the
same machine (with no server running), so the ratios are what to compare:
- ``nowait``, the in-process submit rate: this process submits N pre-signed wire transactions
  one by one from one thread with ``EmbeddedNode.submit_nowait`` (the stateless check in the
  caller's thread, as ``POST /tx`` does), then waits for every receipt. Column ``/nowait``.
- ``many``, the node's bulk path (what ``POST /txs`` calls): the same N in one
  ``EmbeddedNode.submit_many`` call, signatures checked in the node's verify worker processes.
  Column ``/many``.
Each baseline runs before and after the API runs; the ratios use the mean of the two.

The API: a server process runs a fresh city's node and ``create_app`` under uvicorn on
127.0.0.1; this process is the load generator, over keep-alive connections with one request
in flight per connection:
- ``tx``: ``POST /api/v1/tx``, one envelope per request;
- ``txs``: ``POST /api/v1/txs``, NDJSON bodies of B envelopes (each connection signs with its
  own signers, so concurrent batches never interleave one signer's nonces);
each with ``wait=true`` (a 200 is a durable receipt, or one outcome per line) and
``wait=false`` (202 on admission; for ``txs``, once handed to the node, before the checks).
A ``wait=false`` run ends when the signed tree head's size shows every transaction committed.

Printed per mode, batch size and connection count: committed tx/s, its two ratios, request
latency p50/p99, and CPU time per transaction in each server thread, in the node's verify
worker processes and in the load generator (where the time goes). Every receipt or line is
checked ``ok``, the log size against the count sent, and at the end the server's metrics. On
a 2-core machine the server process, its verify workers and the load generator compete for
the cores during the API runs; the baselines run alone.

Usage: python bench/api_submit.py [--txs 6000] [--seconds 5] [--concurrency 1,8,32]
       [--batch-sizes 500,2000] [--batch-concurrency 1,2,4] [--batch-txs 8000]
       [--client httpx|raw]
An empty list (``--concurrency ''``) skips those runs. ``--client raw`` replaces httpx with a
minimal HTTP/1.1 client on asyncio streams, to show how much of the API figure is the load
generator's own cost. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import uvicorn

from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.tx import sign_tx
from civicledger.node.embedded import EmbeddedNode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger_throughput import CHAIN_ID, make_city, sign_anchors  # bench/ is not a package

WARMUP_TXS = 500
"""Sent (and committed) before any timing, in-process and over the API (single submits)."""
BATCH_WARMUP_TXS = 1000
"""Sent as one batch before the batch runs: two chunks, so both verify workers start."""
BATCH_SIGNERS = 400
"""Signers for the batch runs, split evenly between the connections."""
STALL_WARNING_S = 0.02
"""A single ``wait=false`` submit needs < 1 ms of work: a p50 above this on one connection
means something waits (before 19d0ed0: the 40 ms delayed-ACK stall, see docs/benchmarks.md)."""
THREAD_GROUPS = ("civic-http", "civic-producer", "civic-writer", "AnyIO worker", "MainThread")
"""Threads whose CPU time is reported, by name prefix: the uvicorn event loop, the block
producer, the block writer, the threadpool of synchronous routes, and the process's main thread."""


# -- shared helpers ---------------------------------------------------------------------------


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's live threads, summed by name prefix, plus 'process'
    (this process) and 'workers' (its live child processes: the node's verify workers)."""
    out = {"process": time.process_time(), "workers": children_cpu()}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            seconds = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except OSError:
            continue  # the thread ended in between
        group = next((g for g in THREAD_GROUPS if thread.name.startswith(g)), "other")
        out[group] = out.get(group, 0.0) + seconds
    return out


def children_cpu() -> float:
    """CPU seconds of this process's live multiprocessing children (Linux /proc; else 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for child in multiprocessing.active_children():
        try:
            stat = Path(f"/proc/{child.pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # fields 14 and 15: utime, stime
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def cpu_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def sign_all(clerks: Sequence[PrivateKey], count: int) -> list[bytes]:
    return sign_anchors(clerks, count, b"api-doc")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def int_list(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item.strip()]


# -- the in-process baselines -----------------------------------------------------------------


@dataclass
class Baseline:
    txs: int
    nowait: float
    """Committed tx/s through ``submit_nowait`` from one thread."""
    admit: float
    """Admitted tx/s: how fast ``submit_nowait`` itself returned."""
    many: float
    """Committed tx/s through one ``submit_many`` call."""
    cpu_nowait: dict[str, float]
    cpu_many: dict[str, float]


def in_process_baseline(txs: int, signers: int) -> Baseline:
    with tempfile.TemporaryDirectory(prefix="civic-bench-api-base-") as tmp:
        data, node_key, clerks = make_city(Path(tmp), signers)
        raws = sign_all(clerks, 2 * (WARMUP_TXS + txs))  # in nonce order: four slices, in turn
        warm_nowait, nowait, warm_many, many = (
            raws[i : i + n]
            for i, n in zip(
                (0, WARMUP_TXS, WARMUP_TXS + txs, 2 * WARMUP_TXS + txs),
                (WARMUP_TXS, txs, WARMUP_TXS, txs),
                strict=True,
            )
        )
        with EmbeddedNode(data, node_key) as node:
            for future in [node.submit_nowait(raw) for raw in warm_nowait]:
                future.result()
            cpu_before = thread_cpu()
            start = time.perf_counter()
            futures = [node.submit_nowait(raw) for raw in nowait]
            admitted = time.perf_counter() - start
            receipts = [f.result() for f in futures]
            elapsed_nowait = time.perf_counter() - start
            cpu_nowait = cpu_delta(thread_cpu(), cpu_before)

            # Two chunks, so that both verify workers are started before the timing.
            for future in node.submit_many(warm_many, chunk=WARMUP_TXS // 2):
                future.result()
            cpu_before = thread_cpu()
            start = time.perf_counter()
            receipts += [f.result() for f in node.submit_many(many)]
            elapsed_many = time.perf_counter() - start
            cpu_many = cpu_delta(thread_cpu(), cpu_before)
            size = node.chain.tree_head().tree_head.tree_size
        bad = sum(not r.ok for r in receipts)
        if bad or size != len(raws):
            raise SystemExit(f"baseline: {bad} receipts not ok, log size {size} != {len(raws)}")
        return Baseline(
            txs, txs / elapsed_nowait, txs / admitted, txs / elapsed_many, cpu_nowait, cpu_many
        )


# -- the server process -----------------------------------------------------------------------


def server_process(data_dir: str, seed: bytes, conn: Connection) -> None:
    """Run in a spawned process: the node and its API until told to stop (or the parent dies)."""
    with EmbeddedNode(Path(data_dir), PrivateKey.from_seed(seed)) as node:
        with BackgroundServer(create_app(node)) as server:
            conn.send(server.url)
            while True:
                try:
                    message = conn.recv()
                except EOFError:
                    break
                if message == "cpu":
                    conn.send(thread_cpu())
                else:
                    break
        with contextlib.suppress(OSError):  # unless the parent is gone
            conn.send(node.chain.tree_head().tree_head.tree_size)


@dataclass
class Server:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    url: str

    def cpu(self) -> dict[str, float]:
        self.conn.send("cpu")
        cpu: dict[str, float] = self.conn.recv()
        return cpu

    def stop(self) -> int | None:
        """Stop the server and its node; the final log size, or None if it did not answer."""
        size = None
        try:
            self.conn.send("stop")
            if self.conn.poll(30):
                size = self.conn.recv()
        except (OSError, EOFError):
            pass
        self.process.join(30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        self.conn.close()
        return size


def start_server(data_dir: Path, node_key: PrivateKey) -> Server:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    # Not a daemon: a daemon may not start processes, and the node's verify workers
    # (``submit_many``) are processes. It stops when told to, or when its pipe closes.
    process = context.Process(target=server_process, args=(str(data_dir), node_key.seed, theirs))
    process.start()
    theirs.close()
    if ours.poll(60):
        try:
            return Server(process, ours, ours.recv())
        except EOFError:
            pass  # the process died before it listened; its traceback is on stderr
    process.terminate()
    process.join(10)
    ours.close()
    raise SystemExit("the server process did not start")


# -- load generators --------------------------------------------------------------------------

Post = Callable[[bytes], Awaitable[tuple[int, bytes]]]
"""Send one request body, return (HTTP status, body)."""

JSON = "application/json"
NDJSON = "application/x-ndjson"


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the lightest load we can make,
    to tell the server's cost from httpx's. It assumes what uvicorn sends (Content-Length)."""

    def __init__(self, host: str, port: int, target: str, content_type: str) -> None:
        self.host, self.port = host, port
        self.head = (
            f"POST {target} HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"content-type: {content_type}\r\ncontent-length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.head + b"%d\r\n\r\n" % len(body) + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


class LoadClient:
    """``connections`` keep-alive connections to one target, through httpx or the raw client."""

    def __init__(
        self, kind: str, url: str, target: str, content_type: str, connections: int
    ) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(limits=limits, timeout=120.0)
        self.url, self.target, self.content_type = url, target, content_type
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.raw = (
            [RawConnection(host, int(port), target, content_type) for _ in range(connections)]
            if kind == "raw"
            else None
        )

    def post(self, connection: int) -> Post:
        if self.raw is not None:
            return self.raw[connection].post

        async def post(body: bytes) -> tuple[int, bytes]:
            response = await self.http.post(
                self.url + self.target, content=body, headers={"content-type": self.content_type}
            )
            return response.status_code, response.content

        return post

    async def tree_size(self) -> int:
        response = await self.http.get(f"{self.url}/api/v1/tree-head")
        response.raise_for_status()
        size: int = response.json()["tree_head"]["tree_size"]
        return size

    async def close(self) -> None:
        for conn in self.raw or ():
            await conn.close()
        await self.http.aclose()


@dataclass
class TxSource:
    """The pre-signed transactions of single submits, handed out in order across all runs."""

    raws: list[bytes]
    position: int = 0

    def take(self) -> bytes | None:
        if self.position >= len(self.raws):
            return None
        self.position += 1
        return self.raws[self.position - 1]


@dataclass
class Batch:
    body: bytes
    nonces: list[tuple[int, int]]
    """(signer, nonce) of each line."""


class BatchSigners:
    """The batch runs' signers and their next nonces; each connection gets its own signers."""

    def __init__(self, clerks: Sequence[PrivateKey]) -> None:
        self.clerks = clerks
        self.nonces = [0] * len(clerks)
        self.signed = 0

    def streams(self, connections: int, per_connection: int, size: int) -> list[list[Batch]]:
        """Per connection, ``per_connection`` transactions in batches of ``size``."""
        expires = int(time.time() * 1000) + 3_600_000
        out = []
        for conn in range(connections):
            mine = range(conn, len(self.clerks), connections)
            lines, nonces = [], []
            for k in range(per_connection):
                signer = mine[k % len(mine)]
                self.nonces[signer] += 1
                self.signed += 1
                digest = hashlib.sha256(b"api-batch-%d" % self.signed).hexdigest()
                lines.append(
                    sign_tx(
                        self.clerks[signer],
                        chain_id=CHAIN_ID,
                        nonce=self.nonces[signer],
                        contract="notary",
                        method="anchor",
                        args={"digest": digest, "label": "permit"},
                        expires_at=expires,
                    ).envelope_bytes()
                )
                nonces.append((signer, self.nonces[signer]))
            out.append(
                [
                    Batch(b"\n".join(lines[i : i + size]), nonces[i : i + size])
                    for i in range(0, per_connection, size)
                ]
            )
        return out

    def unsend(self, batch: Batch) -> None:
        """A batch was not sent: its nonces are free again (for the next run)."""
        for signer, nonce in batch.nonces:
            self.nonces[signer] = min(self.nonces[signer], nonce - 1)


@dataclass
class RunResult:
    mode: str
    connections: int
    size: int = 1
    """Transactions per request."""
    sent: int = 0
    elapsed: float = 0.0
    """From the first request to the last commit (wait=false: seen in the tree head)."""
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    server_cpu: dict[str, float] = field(default_factory=dict)
    client_cpu: float = 0.0


async def await_committed(client: LoadClient, result: RunResult, expected: int) -> None:
    """Poll the tree head until it holds ``expected`` leaves (or stops growing for 20 s)."""
    size, progress_at = -1, time.perf_counter()
    while True:
        now_size = await client.tree_size()
        if now_size >= expected:
            break
        if now_size != size:
            size, progress_at = now_size, time.perf_counter()
        elif time.perf_counter() - progress_at > 20:
            result.errors.append(f"not all committed: the log stopped at {size} of {expected}")
            break
        await asyncio.sleep(0.01)


async def finish_run(client: LoadClient, result: RunResult, start: float, expected: int) -> None:
    await await_committed(client, result, expected)
    result.elapsed = time.perf_counter() - start
    size = await client.tree_size()
    if size != expected:
        result.errors.append(f"log size {size} != {expected} expected")


async def single_run(
    url: str,
    source: TxSource,
    *,
    wait: bool,
    connections: int,
    max_txs: int,
    seconds: float,
    committed_before: int,
    client_kind: str,
) -> RunResult:
    """``POST /tx``: send up to ``max_txs`` (dispatching for at most ``seconds``)."""
    result = RunResult(f"tx wait={'true' if wait else 'false'}", connections)
    target = f"/api/v1/tx?wait={'true' if wait else 'false'}"
    expected_status = 200 if wait else 202
    client = LoadClient(client_kind, url, target, JSON, connections)

    async def worker(index: int, deadline: float) -> None:
        post = client.post(index)
        while result.sent < max_txs and time.perf_counter() < deadline:
            raw = source.take()
            if raw is None:
                return
            result.sent += 1
            t0 = time.perf_counter()
            status, body = await post(raw)
            result.latencies.append(time.perf_counter() - t0)
            if status != expected_status:
                result.errors.append(f"HTTP {status}: {body[:200]!r}")
            elif wait and json.loads(body)["receipt"]["status"] != "ok":
                result.errors.append(f"receipt not ok: {body[:200]!r}")

    try:
        cpu_client = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(worker(i, start + seconds) for i in range(connections)))
        await finish_run(client, result, start, committed_before + result.sent)
        result.client_cpu = time.process_time() - cpu_client
    finally:
        await client.close()
    return result


async def batch_run(
    url: str,
    streams: list[list[Batch]],
    signers: BatchSigners,
    *,
    wait: bool,
    size: int,
    seconds: float,
    committed_before: int,
    client_kind: str,
) -> RunResult:
    """``POST /txs``: each connection sends its batches in turn (until ``seconds`` have passed:
    the batches left are given back to ``signers``)."""
    result = RunResult(f"txs wait={'true' if wait else 'false'}", len(streams), size)
    target = f"/api/v1/txs?wait={'true' if wait else 'false'}"
    expected_status = 200 if wait else 202
    client = LoadClient(client_kind, url, target, NDJSON, len(streams))

    async def worker(index: int, deadline: float) -> None:
        post = client.post(index)
        batches = streams[index]
        for k, batch in enumerate(batches):
            if time.perf_counter() >= deadline:
                for unsent in batches[k:]:
                    signers.unsend(unsent)
                return
            result.sent += len(batch.nonces)
            t0 = time.perf_counter()
            status, body = await post(batch.body)
            result.latencies.append(time.perf_counter() - t0)
            if status != expected_status:
                result.errors.append(f"HTTP {status}: {body[:200]!r}")
            elif wait:
                outcomes = json.loads(body)["results"]
                statuses = Counter(item["status"] for item in outcomes)
                if statuses["ok"] != len(batch.nonces) or len(outcomes) != len(batch.nonces):
                    bad = next((o for o in outcomes if o["status"] != "ok"), None)
                    result.errors.append(f"batch outcomes {dict(statuses)}, e.g. {bad}")
            elif json.loads(body) != {"accepted": len(batch.nonces)}:
                result.errors.append(f"unexpected 202: {body[:200]!r}")

    try:
        cpu_client = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(worker(i, start + seconds) for i in range(len(streams))))
        await finish_run(client, result, start, committed_before + result.sent)
        result.client_cpu = time.process_time() - cpu_client
    finally:
        await client.close()
    return result


async def read_metrics(url: str, committed: int) -> dict[str, float]:
    """The server's transaction counters, once they count ``committed`` (or after 5 s): the
    node runs its block listeners (metrics) just after the block's receipts and tree head."""
    give_up = time.perf_counter() + 5
    async with httpx.AsyncClient() as client:
        while True:
            response = await client.get(f"{url}/metrics")
            response.raise_for_status()
            out = {}
            for line in response.text.splitlines():
                if line.startswith("civicledger_transactions_"):
                    name, _, value = line.rpartition(" ")
                    out[name] = float(value)
            counted = sum(v for k, v in out.items() if "committed_total" in k)
            if counted >= committed or time.perf_counter() > give_up:
                return out
            await asyncio.sleep(0.05)


# -- the API runs -----------------------------------------------------------------------------


def api_runs(
    args: argparse.Namespace, server: Server, source: TxSource, batch: BatchSigners
) -> tuple[list[RunResult], int]:
    """Every API run in turn; the results and the number of transactions committed."""
    results: list[RunResult] = []
    committed = 0

    def timed(run: Callable[[], Awaitable[RunResult]]) -> RunResult:
        nonlocal committed
        cpu_before = server.cpu()
        result = asyncio.run(run())
        result.server_cpu = cpu_delta(server.cpu(), cpu_before)
        committed += result.sent
        if result.errors:
            print(
                f"  {result.mode} B={result.size} x{result.connections}: "
                f"{len(result.errors)} errors: {result.errors[:3]}"
            )
        return result

    if args.concurrency:
        warm = timed(
            lambda: single_run(
                server.url,
                source,
                wait=False,
                connections=8,
                max_txs=WARMUP_TXS,
                seconds=60,
                committed_before=committed,
                client_kind=args.client,
            )
        )
        if warm.errors:
            raise SystemExit("warm-up failed")
        for wait in (True, False):
            for conns in args.concurrency:
                results.append(
                    timed(
                        lambda wait=wait, conns=conns: single_run(
                            server.url,
                            source,
                            wait=wait,
                            connections=conns,
                            max_txs=args.txs,
                            seconds=args.seconds,
                            committed_before=committed,
                            client_kind=args.client,
                        )
                    )
                )
    if args.batch_sizes and args.batch_concurrency:
        # Starts the server's verify workers (two chunks: two workers).
        warm = timed(
            lambda: batch_run(
                server.url,
                batch.streams(1, BATCH_WARMUP_TXS, BATCH_WARMUP_TXS),
                batch,
                wait=True,
                size=BATCH_WARMUP_TXS,
                seconds=60,
                committed_before=committed,
                client_kind=args.client,
            )
        )
        if warm.errors:
            raise SystemExit("batch warm-up failed")
        for wait in (True, False):
            for size in args.batch_sizes:
                for conns in args.batch_concurrency:
                    # Whole batches on every connection: at least --batch-txs in all.
                    per_conn = math.ceil(args.batch_txs / conns / size) * size
                    streams = batch.streams(conns, per_conn, size)  # signed before the timing
                    results.append(
                        timed(
                            lambda wait=wait, size=size, streams=streams: batch_run(
                                server.url,
                                streams,
                                batch,
                                wait=wait,
                                size=size,
                                seconds=args.seconds,
                                committed_before=committed,
                                client_kind=args.client,
                            )
                        )
                    )
    return results, committed


# -- reporting --------------------------------------------------------------------------------


def per_tx_us(cpu: dict[str, float], key: str, txs: int) -> str:
    return f"{cpu.get(key, 0.0) / txs * 1e6:5.0f}"


def print_layout(server: Server, args: argparse.Namespace) -> None:
    conns = sorted({*args.concurrency, *args.batch_concurrency})
    print("process layout:")
    print(
        f"  baselines: this process (pid {os.getpid()}) alone: the submitting thread, the "
        "node's producer and writer threads, and (submit_many) its 2 verify worker processes; "
        "no server running"
    )
    print(
        f"  API: server process (pid {server.process.pid}): node (producer, writer threads; "
        f"verify worker processes for /txs) + FastAPI/uvicorn on thread civic-http at "
        f"{server.url}"
    )
    print(
        f"       load process (pid {os.getpid()}, this one): {args.client} client, one asyncio "
        f"loop, {'/'.join(map(str, conns))} keep-alive connections"
    )
    print(f"       all share {os.cpu_count()} cores (node and HTTP share one GIL)")


def print_baseline(when: str, base: Baseline) -> None:
    def cpu(of: dict[str, float], submitter: bool) -> str:
        parts = [
            *([f"submitter {per_tx_us(of, 'MainThread', base.txs).strip()}"] if submitter else []),
            f"producer {per_tx_us(of, 'civic-producer', base.txs).strip()}",
            f"writer {per_tx_us(of, 'civic-writer', base.txs).strip()}",
            f"process {per_tx_us(of, 'process', base.txs).strip()}",
            *([] if submitter else [f"workers {per_tx_us(of, 'workers', base.txs).strip()}"]),
        ]
        return ", ".join(parts)

    print(
        f"in-process baselines, {when} ({base.txs} txs each, all ok, log size checked):\n"
        f"  submit_nowait: {base.nowait:,.0f} tx/s committed (admission alone "
        f"{base.admit:,.0f} tx/s); CPU µs/tx: {cpu(base.cpu_nowait, True)}\n"
        f"  submit_many:   {base.many:,.0f} tx/s committed; CPU µs/tx: "
        f"{cpu(base.cpu_many, False)}"
    )


def print_results(nowait: float, many: float, results: Sequence[RunResult]) -> None:
    print(
        "\nmode            B conns   txs    tx/s /nowait /many  lat p50  lat p99 | server CPU "
        "µs/tx: http  prod  writ  work  proc | client µs/tx"
    )
    for r in results:
        if not r.sent:
            continue
        lat = sorted(r.latencies)
        rate = r.sent / r.elapsed
        cpu = r.server_cpu
        print(
            f"{r.mode:<14} {r.size:>4} {r.connections:>4} {r.sent:>5} {rate:>7,.0f} "
            f"{rate / nowait:>7.2f} {rate / many:>5.2f}"
            f" {percentile(lat, 0.5) * 1e3:>6.1f}ms {percentile(lat, 0.99) * 1e3:>6.1f}ms |"
            f"                  {per_tx_us(cpu, 'civic-http', r.sent)} "
            f"{per_tx_us(cpu, 'civic-producer', r.sent)} {per_tx_us(cpu, 'civic-writer', r.sent)} "
            f"{per_tx_us(cpu, 'workers', r.sent)} {per_tx_us(cpu, 'process', r.sent)} | "
            f"{r.client_cpu / r.sent * 1e6:>6.0f}"
        )
    print(
        "tx/s: committed. /nowait = tx/s / in-process submit_nowait tx/s (the in-process submit "
        "rate); /many = tx/s / in-process submit_many tx/s (the node's bulk path); each the mean "
        "of its two baselines.\nB: transactions per request. Latency: per request (a 202's for "
        "wait=false). wait=true: one request in flight per connection, so tx/s <= connections "
        "x B / latency. wait=false: tx/s counts until the tree head shows every transaction "
        "committed.\nCPU: http = uvicorn loop thread, prod/writ = block producer/writer threads, "
        "work = verify worker processes (nice 10), proc = the server process (without workers)."
    )
    single = [r for r in results if r.mode == "tx wait=false" and r.connections == 1 and r.sent]
    if single and statistics.median(single[0].latencies) > STALL_WARNING_S:
        print(
            f"warning: POST /tx?wait=false on one connection took "
            f"{statistics.median(single[0].latencies) * 1e3:.0f} ms (p50) for < 1 ms of work. "
            "Before 19d0ed0 this was a 40 ms stall (accepted sockets without TCP_NODELAY, see "
            "docs/benchmarks.md): check api/server.py::listen, or how busy the machine is."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=6000, help="per baseline and per tx run")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="stop dispatching an API run after this"
    )
    parser.add_argument(
        "--concurrency", type=int_list, default="1,8,32", help="tx runs: connections"
    )
    parser.add_argument(
        "--batch-sizes", type=int_list, default="500,2000", help="txs runs: lines per batch"
    )
    parser.add_argument(
        "--batch-concurrency", type=int_list, default="1,2,4", help="txs runs: connections"
    )
    parser.add_argument(
        "--batch-txs", type=int, default=8000, help="per txs run (rounded up to whole batches)"
    )
    parser.add_argument("--signers", type=int, default=400, help="for the tx runs")
    parser.add_argument("--client", choices=("httpx", "raw"), default="httpx")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the server process is stopped and temp dirs removed.
    signal.signal(signal.SIGTERM, _terminated)
    # Fewer in flight than signers: see sign_all.
    signers = max(args.signers, 4 * max(args.concurrency, default=1))
    started = time.perf_counter()

    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, uvicorn "
        f"{uvicorn.__version__} ({'httptools' if _has('httptools') else 'h11'}, "
        f"{'uvloop' if _has('uvloop') else 'asyncio'} loop), httpx {httpx.__version__}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes take cores too)")
    base_before = in_process_baseline(args.txs, signers)
    print_baseline("before the API runs", base_before)

    with tempfile.TemporaryDirectory(prefix="civic-bench-api-") as tmp:
        data, node_key, clerks = make_city(Path(tmp), signers + BATCH_SIGNERS)
        sign_start = time.perf_counter()
        singles = 2 * len(args.concurrency) * args.txs
        source = TxSource(sign_all(clerks[:signers], WARMUP_TXS + singles if singles else 0))
        batch = BatchSigners(clerks[signers:])
        print(
            f"signed {len(source.raws)} transactions for the tx runs (not timed) in "
            f"{time.perf_counter() - sign_start:.1f} s; the txs runs sign theirs before each run"
        )
        server = start_server(data, node_key)
        final_size = None
        try:
            print_layout(server, args)
            results, committed = api_runs(args, server, source, batch)
            metrics = asyncio.run(read_metrics(server.url, committed))
        finally:
            final_size = server.stop()

    base_after = in_process_baseline(args.txs, signers)
    print_baseline("after the API runs", base_after)
    nowait = (base_before.nowait + base_after.nowait) / 2
    many = (base_before.many + base_after.many) / 2
    print(
        f"load average after: {os.getloadavg()[0]:.2f}; baselines for the ratios (the means): "
        f"submit_nowait {nowait:,.0f} tx/s, submit_many {many:,.0f} tx/s"
    )
    print_results(nowait, many, results)
    ok = metrics.get('civicledger_transactions_committed_total{status="ok"}', 0)
    failed = metrics.get('civicledger_transactions_committed_total{status="failed"}', 0)
    rejected = sum(v for k, v in metrics.items() if "rejected_total" in k)
    errors = sum(len(r.errors) for r in results)
    verdict = (
        "all committed ok"
        if ok == committed == final_size and not failed and not rejected and not errors
        else "MISMATCH"
    )
    print(
        f"check: sent {committed} over the API (warm-ups included); server metrics: {ok:.0f} ok, "
        f"{failed:.0f} failed, {rejected:.0f} rejected; final log size {final_size}; {errors} "
        f"errors: {verdict}"
    )
    print(f"whole run: {time.perf_counter() - started:.0f} s")
    if verdict != "all committed ok":
        raise SystemExit(1)


def _terminated(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
