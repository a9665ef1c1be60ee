"""Ledger throughput against this machine's physical limit, measured in the same run.

Prints:
- the raw single-core Ed25519 verify rate with libsodium (the fastest binding here);
- committed tx/s through the embedded node (N signed notary anchors, all rules on, fsync'd
  SQLite commits) and a line with the ratio of the two (target >= 0.5);
- inclusion and consistency proof generation time on a log of >= 1,000,000 leaves;
- peak memory (this process and its verify workers).

Usage: python bench/ledger_throughput.py [--txs 50000] [--leaves 1000000]
Figures are printed, never asserted: timings vary with the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nacl.bindings

from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.genesis import Genesis, GenesisAgency
from civicledger.ledger.tlog import TransparencyLog
from civicledger.ledger.tx import sign_tx
from civicledger.node.chain import Chain
from civicledger.node.embedded import EmbeddedNode

CHAIN_ID = "bench-city"


def raw_verify_rate(count: int = 20_000) -> float:
    """Single-core libsodium Ed25519 verifications per second (detached sig + 200-byte message)."""
    key = PrivateKey.generate()
    pk = key.public.raw
    messages = [os.urandom(200) for _ in range(count)]
    signed = [key.sign(m) + m for m in messages]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for sm in signed:
            nacl.bindings.crypto_sign_open(sm, pk)
        best = max(best, count / (time.perf_counter() - start))
    return best


def make_city(root_dir: Path, signers: int) -> tuple[Path, PrivateKey, list[PrivateKey]]:
    root, node_key = PrivateKey.generate(), PrivateKey.generate()
    clerks = [PrivateKey.generate() for _ in range(signers)]
    per_agency = 100
    agencies = tuple(
        GenesisAgency(
            id=f"district-{i // per_agency:02d}",
            name=f"District office {i // per_agency}",
            keys=tuple(c.public.did for c in clerks[i : i + per_agency]),
            roles=("notary",),
        )
        for i in range(0, signers, per_agency)
    )
    genesis = Genesis(
        chain_id=CHAIN_ID,
        city="Bench City",
        time_ms=int(time.time() * 1000),
        root_authorities=(root.public.did,),
        producers=(node_key.public.did,),
        agencies=agencies,
    )
    data = root_dir / "data"
    Chain.create(data, genesis, node_key).close()
    return data, node_key, clerks


def sign_anchors(clerks: Sequence[PrivateKey], count: int, tag: bytes = b"doc") -> list[bytes]:
    """Wire envelopes of ``count`` notary anchors; transaction ``i`` is signer ``i % S``'s
    ``i // S + 1``-th, so sending them in order (with fewer in flight than signers) never
    sends a nonce before the one it follows has been admitted."""
    signers = len(clerks)
    expires = int(time.time() * 1000) + 3_600_000
    return [
        sign_tx(
            clerks[i % signers],
            chain_id=CHAIN_ID,
            nonce=i // signers + 1,
            contract="notary",
            method="anchor",
            args={"digest": hashlib.sha256(tag + b"-%d" % i).hexdigest(), "label": "permit"},
            expires_at=expires,
        ).envelope_bytes()
        for i in range(count)
    ]


def committed_rate(txs: int, signers: int) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory(prefix="civic-bench-") as tmp:
        data, node_key, clerks = make_city(Path(tmp), signers)
        sign_start = time.perf_counter()
        raws = sign_anchors(clerks, txs)
        print(
            f"signed {txs} transactions (client side, not timed) in "
            f"{time.perf_counter() - sign_start:.1f} s"
        )
        with EmbeddedNode(data, node_key) as node:
            for f in node.submit_many(raws[:500]):  # start the workers outside the timing
                f.result()
            start = time.perf_counter()
            futures = node.submit_many(raws[500:])
            receipts = [f.result() for f in futures]
            elapsed = time.perf_counter() - start
            ok = sum(r.ok for r in receipts)
            height = node.chain.height
        return (len(raws) - 500) / elapsed, ok, height


def proof_times(leaves: int, samples: int = 2000) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory(prefix="civic-bench-log-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "log.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        log = TransparencyLog(conn)
        start = time.perf_counter()
        batch = 10_000
        for first in range(0, leaves, batch):
            conn.execute("BEGIN")
            log.append_leaves([b"leaf-%d" % i for i in range(first, min(first + batch, leaves))])
            conn.execute("COMMIT")
        append_s = time.perf_counter() - start
        rng = random.Random(7)
        size = log.size
        inclusion = []
        for _ in range(samples):
            index = rng.randrange(size)
            t = time.perf_counter()
            log.inclusion_proof(index, size)
            inclusion.append(time.perf_counter() - t)
        consistency = []
        for _ in range(samples):
            old = rng.randrange(1, size)
            t = time.perf_counter()
            log.consistency_proof(old, size)
            consistency.append(time.perf_counter() - t)
        conn.close()
        return (
            append_s,
            statistics.median(inclusion) * 1e3,
            max(inclusion) * 1e3,
            statistics.median(consistency) * 1e3,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=50_000)
    parser.add_argument("--signers", type=int, default=400)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores")
    verify = raw_verify_rate()
    print(f"raw Ed25519 verify, libsodium, 1 core: {verify:,.0f} /s")
    rate, ok, height = committed_rate(args.txs, args.signers)
    print(
        f"committed through the embedded node: {rate:,.0f} tx/s ({ok} ok receipts, {height} blocks)"
    )
    print(f"ratio committed tx/s / raw single-core verify rate: {rate / verify:.2f} (target 0.50)")
    append_s, inc_med, inc_max, cons_med = proof_times(args.leaves)
    print(f"log of {args.leaves:,} leaves appended in {append_s:.1f} s")
    print(
        f"inclusion proof at {args.leaves:,} leaves: median {inc_med:.3f} ms, max {inc_max:.3f} ms"
    )
    print(f"consistency proof at {args.leaves:,} leaves: median {cons_med:.3f} ms")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory: {own:.0f} MiB (node process), {children:.0f} MiB (largest verify worker)")


if __name__ == "__main__":
    main()
