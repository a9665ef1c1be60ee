"""The client against the real API: a test city's node served by uvicorn over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_helpers import RecordingTransport, Served, serve_city

from civicledger.api.settings import ApiSettings
from civicledger.client import CivicClient, Wallet
from civicledger.crypto.encoding import canonical_json
from civicledger.errors import GenesisError, NodeError, RejectReason, TxRejected
from civicledger.ledger.proofs import InclusionBundle, load_bundle, verify_inclusion_bundle
from conftest import City, digest


@pytest.fixture
def served(city: City) -> Iterator[Served]:
    with serve_city(city) as s:
        yield s


@pytest.fixture
def client(served: Served) -> Iterator[CivicClient]:
    with served.client() as c:
        yield c


def anchor_args(label: str) -> dict[str, Any]:
    return {"digest": digest(label), "label": label}


def test_a_wallet_sends_and_gets_proven_receipts_and_the_view_follows_the_chain(
    served: Served, client: CivicClient
) -> None:
    clerk = Wallet(client, served.city.clerk)
    receipts = [clerk.send("notary", "anchor", anchor_args(f"doc {i}")) for i in range(4)]
    assert all(r.ok for r in receipts)
    assert [r.leaf_index for r in receipts] == [0, 1, 2, 3]
    assert served.city.nonce(served.city.clerk) == 4
    held = client.trusted_head
    assert held is not None
    assert held.tree_head.tree_size == 4
    assert held == served.node.chain.tree_head()

    first = client.prove(receipts[0].tx_id)
    assert first.receipt == receipts[0]
    assert first.tree_head == held
    old = client.prove(receipts[0].tx_id, height=receipts[0].height)
    assert old.tree_head.tree_head.tree_size == 1

    found = client.query("notary", "lookup", {"digest": digest("doc 2")})
    assert found.result["tx_id"] == receipts[2].tx_id  # the node's word, until proven:
    assert client.prove(found.result["tx_id"]).receipt.result == found.result

    bundle = load_bundle(first.bundle.model_dump_json().encode())  # as `civic proof verify`
    assert isinstance(bundle, InclusionBundle)
    producers = frozenset(served.city.genesis.producers)
    assert verify_inclusion_bundle(bundle, producers)[1] == first.receipt


def test_every_refusal_reaches_the_caller_with_its_reason(
    served: Served, client: CivicClient
) -> None:
    city = served.city
    assert client.submit(city.tx(city.clerk, "notary", "anchor", anchor_args("a"), nonce=1)).ok

    replayed = city.tx(city.clerk, "notary", "anchor", anchor_args("b"), nonce=1)
    with pytest.raises(TxRejected) as raised:
        client.submit(replayed)
    assert raised.value.reject_reason is RejectReason.NONCE_REPLAYED

    gap = city.tx(city.clerk, "notary", "anchor", anchor_args("b"), nonce=5)
    with pytest.raises(TxRejected) as raised:
        client.submit(gap)
    assert raised.value.reject_reason is RejectReason.NONCE_OUT_OF_ORDER

    with pytest.raises(TxRejected) as raised:
        Wallet(client, city.outsider).send("notary", "anchor", anchor_args("c"))
    assert raised.value.reject_reason is RejectReason.UNAUTHORIZED
    assert raised.value.message  # the node's detail is kept

    with pytest.raises(TxRejected) as raised:
        Wallet(client, city.outsider).send("notary", "no_such_method", {})
    assert raised.value.reject_reason is RejectReason.UNKNOWN_METHOD

    with pytest.raises(TxRejected) as raised:
        Wallet(client, city.outsider).send("tally", "add", {"amount": "three"})
    assert raised.value.reject_reason is RejectReason.INVALID_ARGS

    tx = city.tx(city.outsider, "tally", "add", {"amount": 1}, nonce=1)
    forged = dataclasses.replace(tx, signature=bytes(64))
    with pytest.raises(TxRejected) as raised:
        client.submit(forged)
    assert raised.value.reject_reason is RejectReason.BAD_SIGNATURE

    other_chain = city.tx(city.outsider, "tally", "add", {"amount": 1}, nonce=1, chain_id="x-1")
    with pytest.raises(TxRejected) as raised:
        client.submit(other_chain)  # refused here, before sending
    assert raised.value.reject_reason is RejectReason.WRONG_CHAIN

    expired = city.tx(city.outsider, "tally", "add", {"amount": 1}, nonce=1, expires_at=1)
    with pytest.raises(TxRejected) as raised:
        client.submit(expired)
    assert raised.value.reject_reason is RejectReason.EXPIRED
    assert city.nonce(city.outsider) == 0


def test_the_wallet_resyncs_its_nonce_after_a_refusal(served: Served, client: CivicClient) -> None:
    city = served.city
    wallet = Wallet(client, city.clerk)
    assert wallet.send("notary", "anchor", anchor_args("one")).ok
    # Another program holding the same key takes the wallet's next nonce.
    served.node.submit(city.tx(city.clerk, "notary", "anchor", anchor_args("two"), nonce=2))
    with pytest.raises(TxRejected) as raised:
        wallet.send("notary", "anchor", anchor_args("three"))
    assert raised.value.reject_reason is RejectReason.NONCE_REPLAYED
    receipt = wallet.send("notary", "anchor", anchor_args("three"))
    assert receipt.ok
    assert city.nonce(city.clerk) == 3


def test_a_failed_receipt_is_proven_and_returned(served: Served, client: CivicClient) -> None:
    wallet = Wallet(client, served.city.clerk)
    assert wallet.send("notary", "anchor", anchor_args("same")).ok
    failed = wallet.send("notary", "anchor", anchor_args("same"))
    assert (failed.status, failed.reason) == ("failed", "already_anchored")
    assert client.verified_receipt(failed.tx_id) == failed


def test_a_pending_answer_is_polled_to_the_receipt(city: City) -> None:
    recorder = RecordingTransport()
    with (
        serve_city(city, ApiSettings(wait_timeout_s=0.0), block_interval=0.2) as served,
        served.client(poll_interval=0.02, transport=recorder) as client,
    ):
        receipt = Wallet(client, city.outsider).send("tally", "add", {"amount": 3})
    assert receipt.ok
    assert receipt.result == 3
    assert ("POST", "/api/v1/tx", 202) in recorder.log
    polls = [status for _, path, status in recorder.log if path.endswith(receipt.tx_id)]
    assert polls[-1] == 200
    assert 404 in polls


def test_blocks_are_verified_whole_even_over_several_pages(city: City) -> None:
    txs = [city.tx(city.outsider, "tally", "add", {"amount": 1}, nonce=n) for n in range(1, 151)]
    # The block timer starts with the first transaction: 2 s is ample to admit all 150 into it.
    with serve_city(city, block_interval=2.0) as served, served.client() as client:
        futures = [served.node.submit_nowait(tx) for tx in txs]
        (height,) = {f.result(30).height for f in futures}
        block = client.block(height)
        assert [tx.tx_id_hex for tx, _ in block.txs] == [tx.tx_id_hex for tx in txs]
        assert [r.result for _, r in block.txs] == list(range(1, 151))
        page = client.blocks(limit=5)
        assert page.headers[0] == block.signed_header
        assert client.trusted_head == served.node.chain.tree_head()


def test_queries_and_nonces_are_read(served: Served, client: CivicClient) -> None:
    wallet = Wallet(client, served.city.outsider)
    for amount in (2, 3):
        wallet.send("tally", "add", {"amount": amount})
    answer = client.query("tally", "total")
    assert answer.result == 5
    assert answer.height == served.node.chain.height
    assert client.next_nonce(wallet.did) == 3
    with pytest.raises(TxRejected) as raised:  # a query of a method that does not exist
        client.query("tally", "nothing")
    assert raised.value.reject_reason is RejectReason.UNKNOWN_METHOD


def test_events_replay_blocks_with_verified_tree_heads(served: Served, client: CivicClient) -> None:
    wallet = Wallet(client, served.city.outsider)
    for amount in (1, 2, 3):
        wallet.send("tally", "add", {"amount": amount}, verify=False)
    fresh = served.client()
    events = fresh.events(contract="tally", last_event_id="0")
    seen: list[tuple[str, Any]] = []
    try:
        while len(seen) < 6:
            event = next(events)
            seen.append((event.event, event.data.get("height")))
    finally:
        events.close()
        fresh.close()
    assert seen == [
        ("block", 1),
        ("event", 1),
        ("block", 2),
        ("event", 2),
        ("block", 3),
        ("event", 3),
    ]
    assert fresh.trusted_head == served.node.chain.tree_head(3)


def test_a_client_of_another_city_is_refused(served: Served) -> None:
    genesis = served.city.genesis
    renamed = genesis.model_copy(update={"city": "Elsewhere"})
    with CivicClient(served.url, renamed) as client, pytest.raises(GenesisError, match="differs"):
        client.tree_head()
    other_chain = genesis.model_copy(update={"chain_id": "elsewhere"})
    with CivicClient(served.url, other_chain) as client, pytest.raises(GenesisError, match="runs"):
        Wallet(client, served.city.clerk).send("notary", "anchor", anchor_args("x"))


def test_the_view_persists_across_runs(served: Served, tmp_path: Path) -> None:
    head_file = tmp_path / "head.json"
    with served.client(head_file=head_file) as first:
        Wallet(first, served.city.outsider).send("tally", "add", {"amount": 1})
    with served.client(head_file=head_file) as second:
        Wallet(second, served.city.outsider).send("tally", "add", {"amount": 1})
        assert second.trusted_head == served.node.chain.tree_head()
    stored = head_file.read_bytes()
    assert canonical_json(served.node.chain.tree_head().model_dump(mode="json")) in stored


def test_an_unreachable_node_is_a_node_error(city: City) -> None:
    with serve_city(city) as served:
        url = served.url
    with CivicClient(url, city.genesis, timeout=2) as client, pytest.raises(NodeError) as raised:
        client.tree_head()
    assert raised.value.reason == "unreachable"
