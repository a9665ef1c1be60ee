"""A block that cannot be written (a real SQLite "database or disk is full") loses nothing.

Fault injection on the node's own SQLite connection, not a mock: ``max_page_count`` makes every
write past the current size fail exactly as a full disk does.
"""

from __future__ import annotations

import pytest

from civicledger.errors import NodeError
from civicledger.node.verify import verify_chain
from conftest import City, digest


def _fill_disk(node_chain: object, full: bool) -> None:
    conn = node_chain._conn  # type: ignore[attr-defined]  # the writer's connection: fault injection
    if full:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
    else:
        conn.execute("PRAGMA max_page_count = 1073741823")


def test_a_block_that_cannot_be_written_fails_its_submitters_and_the_node_recovers(
    city: City,
) -> None:
    with city.open_node() as node:
        assert node.submit(
            city.tx(city.clerk, "notary", "anchor", {"digest": digest("first")}, nonce=1)
        ).ok
        before = city.snapshot()

        _fill_disk(node.chain, full=True)
        doomed = [
            node.submit_nowait(
                city.tx(city.clerk, "notary", "anchor", {"digest": digest(f"d{i}")}, nonce=2 + i)
            )
            for i in range(3)
        ] + [
            node.submit_nowait(
                city.tx(city.archivist, "notary", "anchor", {"digest": digest("x")}, nonce=1)
            )
        ]
        for future in doomed:
            with pytest.raises(NodeError, match="could not be"):
                future.result(timeout=30)
        assert city.snapshot() == before, "a failed block left something behind"

        _fill_disk(node.chain, full=False)
        # The nonces were not consumed: the same transactions go through now.
        retried = node.submit(
            city.tx(city.clerk, "notary", "anchor", {"digest": digest("d0")}, nonce=2)
        )
        assert retried.ok
        assert node.submit(
            city.tx(city.archivist, "notary", "anchor", {"digest": digest("x")}, nonce=1)
        ).ok
        assert node.chain.head.header.log_size == 3

    report = verify_chain(city.data_dir, registry=city.registry)
    assert report.transactions == 3
    assert city.nonce(city.clerk) == 2
