"""The client against a lying node: every falsified answer must raise, every honest one pass.

The node is ``FakeNode`` (client_helpers.py) behind ``httpx.MockTransport``: it serves genuine
proofs, heads and blocks from a real chain, and each test rewrites one answer the way a
malicious or compromised server could. Verifiers that were only ever run against honest servers
have shipped accepting falsified proofs: immudb's client SDKs did (GHSA-672p-m5jq-mrh8), and its
Python SDK skipped a part of the dual proof for years (codenotary/immudb-py#87). So each check
the client makes has a test here that fails if the check is removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_helpers import FakeNode, problem, resign_head

from civicledger.client import CivicClient, Wallet
from civicledger.crypto import merkle
from civicledger.crypto.encoding import canonical_json
from civicledger.errors import (
    EncodingError,
    GenesisError,
    NodeError,
    ProofError,
    RejectReason,
    TxRejected,
)
from civicledger.ledger.block import SignedBlockHeader, SignedTreeHead
from civicledger.ledger.receipt import log_leaf_bytes
from civicledger.ledger.tx import tx_from_json
from civicledger.node.chain import Chain
from conftest import City, Ledger, digest

CityFactory = Callable[[Path], City]


def anchor_args(label: str) -> dict[str, Any]:
    return {"digest": digest(label), "label": label}


def grow(city: City, chain: Chain, labels: list[str]) -> list[str]:
    """One block per label (a clerk's anchor, then an outsider's tally); their tx ids."""
    ledger = Ledger(city, chain)
    tx_ids = []
    for label in labels:
        block = ledger.block(
            ledger.tx(city.clerk, "notary", "anchor", anchor_args(label)),
            ledger.tx(city.outsider, "tally", "add", {"amount": len(label)}),
        )
        assert not block.dropped
        tx_ids += [item.prepared.tx.tx_id_hex for item in block.included]
    return tx_ids


BLOCKS = ["alpha", "beta", "gamma"]


@pytest.fixture
def fake(city: City, chain: Chain) -> FakeNode:
    """A node whose chain holds three blocks of two transactions each."""
    grow(city, chain, BLOCKS)
    return FakeNode(city, chain)


@pytest.fixture
def tx_ids(fake: FakeNode) -> list[str]:
    return [tx.tx_id_hex for h in (1, 2, 3) for tx, _ in _block_txs(fake.chain, h)]


@pytest.fixture
def client(fake: FakeNode) -> Iterator[CivicClient]:
    with fake.client() as c:
        yield c


def _block_txs(chain: Chain, height: int) -> list[tuple[Any, Any]]:
    return [(s.tx, s.receipt) for s in chain.block_txs(height)]


@pytest.fixture
def copies(city: City, city_factory: CityFactory, tmp_path: Path) -> Iterator[Callable[..., Chain]]:
    """Other chains of the same genesis and producer: replays of a prefix, or forks."""
    opened: list[Chain] = []

    def make(labels: list[str]) -> Chain:
        other = city_factory(tmp_path / f"copy-{len(opened)}")
        assert other.genesis == city.genesis
        chain = other.open_chain()
        opened.append(chain)
        grow(other, chain, labels)
        return chain

    yield make
    for chain in opened:
        chain.close()


# -- an honest node --------------------------------------------------------------------------


def test_an_honest_node_proves_every_transaction_and_each_new_head_is_proven_consistent(
    fake: FakeNode, client: CivicClient, tx_ids: list[str]
) -> None:
    for tx_id in tx_ids:
        proven = client.prove(tx_id)
        assert proven.tx.tx_id_hex == tx_id
        stored = fake.chain.tx(bytes.fromhex(tx_id))
        assert stored is not None
        assert proven.receipt == stored.receipt
        assert client.verified_receipt(tx_id) == stored.receipt
    assert client.trusted_head == fake.chain.tree_head()
    assert not any(p.endswith("/consistency") for p in fake.paths())

    grow(fake.city, fake.chain, ["delta", "epsilon"])
    head = client.tree_head()
    assert head == fake.chain.tree_head() == client.trusted_head
    assert fake.paths()[-1] == "/api/v1/consistency"
    assert fake.requests[-1].url.params == httpx.QueryParams({"old": "3", "new": "5"})
    assert client.tree_head() == head  # the same head again needs no proof
    assert fake.paths()[-1] == "/api/v1/tree-head"


def test_an_older_head_is_accepted_only_as_a_proven_prefix_of_the_held_one(
    fake: FakeNode, client: CivicClient, tx_ids: list[str]
) -> None:
    client.tree_head()
    proven = client.prove(tx_ids[0], height=1)
    assert proven.tree_head.tree_head.height == 1
    assert fake.requests[-1].url.params == httpx.QueryParams({"old": "1", "new": "3"})
    assert client.trusted_head == fake.chain.tree_head()
    assert client.tree_head(height=1) == fake.chain.tree_head(1)
    assert fake.paths()[-1] == "/api/v1/tree-head"  # height 1 is remembered as proven


# -- falsified inclusion proofs -----------------------------------------------------------------


def _flip(hex_hash: str) -> str:
    return ("0" if hex_hash[0] != "0" else "1") + hex_hash[1:]


def _forged_and_signed_by(key_name: str) -> Callable[[FakeNode], Callable[[Any], Any]]:
    """A forged receipt with a tree head recomputed to match it, signed by ``key_name``.

    All the mathematics holds; only the signer can give the forgery away.
    """

    def make(fake: FakeNode) -> Callable[[Any], Any]:
        def rewrite(doc: Any) -> Any:
            doc["entry"]["receipt"]["status"] = "failed"
            doc["entry"]["receipt"]["reason"] = "forged"
            tx = tx_from_json(doc["entry"]["tx"])
            receipt = canonical_json(doc["entry"]["receipt"])
            leaf = merkle.leaf_hash(log_leaf_bytes(tx.envelope_bytes(), receipt))
            path = [bytes.fromhex(h) for h in doc["path"]]
            root = merkle.root_from_inclusion(leaf, doc["leaf_index"], doc["tree_size"], path)
            key = getattr(fake.city, key_name)
            head = fake.chain.tree_head(3)
            doc["tree_head"] = resign_head(head, key, root_hash=root.hex(), signer=key.public.did)
            return doc

        return rewrite

    return make


def _stranger_claiming_producer(fake: FakeNode) -> Callable[[Any], Any]:
    """The forgery's tree head, signed by a stranger but naming the producer as its signer."""
    forge = _forged_and_signed_by("rogue")(fake)
    producer = fake.city.producer.public.did

    def rewrite(doc: Any) -> Any:
        doc = forge(doc)
        head = SignedTreeHead.model_validate_json(canonical_json(doc["tree_head"]))
        doc["tree_head"] = resign_head(head, fake.city.rogue, signer=producer)
        return doc

    return rewrite


def _simple(rewrite: Callable[[Any], Any]) -> Callable[[FakeNode], Callable[[Any], Any]]:
    """A rewrite that needs nothing from the node."""
    return lambda _: rewrite


def _set(doc: Any, path: str, value: Any) -> Any:
    """``doc`` with the field at the dotted ``path`` set to ``value``."""
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[last] = value
    return doc


INCLUSION_LIES: dict[str, tuple[Callable[[FakeNode], Callable[[Any], Any]], str | None]] = {
    "receipt status": (
        _simple(lambda d: _set(d, "entry.receipt.status", "failed")),
        "does not lead to the root",
    ),
    "receipt events": (_simple(lambda d: _set(d, "entry.receipt.events", [])), "root"),
    "receipt leaf index": (
        _simple(lambda d: _set(d, "entry.receipt.leaf_index", 1)),
        "root",
    ),
    "tx args": (
        _simple(lambda d: _set(d, "entry.tx.body.args.label", "forged")),
        "does not lead to the root",
    ),
    "tx signature": (
        _simple(lambda d: _set(d, "entry.tx.signature", "A" * 86)),
        None,
    ),
    "path element": (
        _simple(lambda d: _set(d, "path", [_flip(d["path"][0]), *d["path"][1:]])),
        "root",
    ),
    "path too short": (_simple(lambda d: _set(d, "path", d["path"][:-1])), "hashes, expected"),
    "path too long": (_simple(lambda d: _set(d, "path", [*d["path"], "00" * 32])), "expected"),
    "leaf index": (_simple(lambda d: _set(d, "leaf_index", d["leaf_index"] + 1)), None),
    "tree size": (_simple(lambda d: _set(d, "tree_size", d["tree_size"] + 1)), "tree size"),
    "root hash, signature kept": (
        _simple(lambda d: _set(d, "tree_head.tree_head.root_hash", "ab" * 32)),
        "signature",
    ),
    "extra entry field": (_simple(lambda d: _set(d, "entry.note", "hi")), "entry"),
    "extra bundle field": (_simple(lambda d: _set(d, "note", "hi")), "note"),
    "consistency kind": (
        _simple(lambda d: _set(d, "kind", "civicledger/consistency-proof/v1")),
        None,
    ),
    "forged, head signed by a stranger": (_forged_and_signed_by("rogue"), "not trusted"),
    "forged, head signed by the root authority": (_forged_and_signed_by("root"), "not trusted"),
    "forged, stranger's head claiming the producer": (_stranger_claiming_producer, "signature"),
}


@pytest.mark.parametrize("lie", list(INCLUSION_LIES))
def test_every_falsified_inclusion_proof_raises_proof_error(
    fake: FakeNode, client: CivicClient, tx_ids: list[str], lie: str
) -> None:
    make, message = INCLUSION_LIES[lie]
    fake.rewrite["proof"] = make(fake)
    with pytest.raises(ProofError, match=message):
        client.prove(tx_ids[0])
    assert client.trusted_head is None


def test_the_forged_proof_is_refused_only_because_of_its_signer(
    fake: FakeNode, client: CivicClient, tx_ids: list[str]
) -> None:
    """Signed by the real producer, the same forgery would pass: the genesis is the anchor."""
    fake.rewrite["proof"] = _forged_and_signed_by("producer")(fake)
    proven = client.prove(tx_ids[0])
    assert proven.receipt.reason == "forged"


def test_a_proof_of_another_transaction_than_asked_is_refused(
    fake: FakeNode, client: CivicClient, tx_ids: list[str]
) -> None:
    other = fake.chain.inclusion_proof(bytes.fromhex(tx_ids[1]))
    fake.rewrite["proof"] = lambda _: other.model_dump(mode="json")
    with pytest.raises(ProofError, match=f"asked for a proof of {tx_ids[0]}"):
        client.prove(tx_ids[0])


def test_a_proof_at_another_height_than_asked_is_refused(
    fake: FakeNode, client: CivicClient, tx_ids: list[str]
) -> None:
    latest = fake.chain.inclusion_proof(bytes.fromhex(tx_ids[0]))
    fake.rewrite["proof"] = lambda _: latest.model_dump(mode="json")
    with pytest.raises(ProofError, match="asked for a proof at height 1, got one at 3"):
        client.prove(tx_ids[0], height=1)


def test_a_head_signed_by_the_producer_for_another_chain_is_refused(
    fake: FakeNode, client: CivicClient, tx_ids: list[str]
) -> None:
    head = fake.chain.tree_head()
    fake.rewrite["tree_head"] = lambda _: resign_head(
        head, fake.city.producer, chain_id="elsewhere"
    )
    with pytest.raises(ProofError, match="chain 'elsewhere'"):
        client.tree_head()


# -- receipts from POST ---------------------------------------------------------------------------


def test_a_submitted_receipt_that_differs_from_the_proven_one_is_refused(
    fake: FakeNode, client: CivicClient
) -> None:
    def lie(doc: Any) -> Any:
        doc["receipt"]["status"] = "failed"
        doc["receipt"]["reason"] = "already_anchored"
        return doc

    fake.rewrite["submit"] = lie
    wallet = Wallet(client, fake.city.clerk)
    with pytest.raises(ProofError, match="differs from the receipt in the log"):
        wallet.send("notary", "anchor", anchor_args("contested"))
    tx = fake.chain.block_txs(4)[0]
    assert tx.receipt.ok  # the node lied: the log says it succeeded


def test_without_verify_the_nodes_word_is_taken_and_with_it_the_log_is(
    fake: FakeNode, client: CivicClient
) -> None:
    fake.rewrite["submit"] = lambda doc: doc | {"receipt": doc["receipt"] | {"result": 41}}
    wallet = Wallet(client, fake.city.outsider)
    unverified = wallet.send("tally", "add", {"amount": 5}, verify=False)
    assert unverified.result == 41
    fake.rewrite.clear()
    verified = wallet.send("tally", "add", {"amount": 5})
    assert verified.result == sum(map(len, BLOCKS)) + 5 + 5


def test_a_receipt_for_another_transaction_is_refused(fake: FakeNode, client: CivicClient) -> None:
    fake.rewrite["submit"] = lambda doc: doc | {"tx_id": "ab" * 32}
    with pytest.raises(NodeError, match="answered for transaction") as raised:
        Wallet(client, fake.city.outsider).send("tally", "add", {"amount": 1})
    assert raised.value.reason == "bad_response"


def test_a_pending_transaction_is_polled_until_its_receipt_appears(
    fake: FakeNode, client: CivicClient
) -> None:
    fake.pending = 3
    receipt = Wallet(client, fake.city.outsider).send("tally", "add", {"amount": 2})
    assert receipt.ok
    polls = [r for r in fake.requests if r.url.path == f"/api/v1/tx/{receipt.tx_id}"]
    assert len(polls) == 4


def test_a_polled_record_of_another_transaction_is_refused(
    fake: FakeNode, client: CivicClient, tx_ids: list[str]
) -> None:
    stored = fake.chain.tx(bytes.fromhex(tx_ids[0]))
    assert stored is not None
    fake.pending = 1
    fake.rewrite["tx"] = lambda doc: doc | {"tx": stored.tx.to_json()}
    with pytest.raises(NodeError, match="asked for") as raised:
        Wallet(client, fake.city.outsider).send("tally", "add", {"amount": 2})
    assert raised.value.reason == "bad_response"


def test_a_transaction_still_pending_at_the_deadline_is_a_timeout(fake: FakeNode) -> None:
    fake.pending = 10**6
    outsider = fake.city.outsider
    nonce = fake.chain.last_nonce(outsider.public.did) + 1
    with fake.client(commit_timeout=0.0) as client, pytest.raises(NodeError) as raised:
        client.submit(fake.city.tx(outsider, "tally", "add", {"amount": 1}, nonce=nonce))
    assert raised.value.reason == "timeout"
    assert "may still be committed" in raised.value.message


# -- genesis ---------------------------------------------------------------------------------------


GENESIS_LIES: dict[str, Callable[[City], Any]] = {
    "another chain": lambda c: c.genesis.model_copy(update={"chain_id": "otherville"}).model_dump(
        mode="json"
    ),
    "another producer": lambda c: c.genesis.model_copy(
        update={"producers": (c.rogue.public.did,)}
    ).model_dump(mode="json"),
    "one agency fewer": lambda c: c.genesis.model_copy(
        update={"agencies": c.genesis.agencies[:-1]}
    ).model_dump(mode="json"),
    "not a genesis": lambda c: {"chain_id": c.chain_id},
    "not JSON": lambda _: httpx.Response(200, content=b"<html>hello</html>"),
}


@pytest.mark.parametrize("lie", list(GENESIS_LIES))
def test_a_node_serving_another_genesis_is_refused_before_anything_else(
    fake: FakeNode, client: CivicClient, tx_ids: list[str], lie: str
) -> None:
    served = GENESIS_LIES[lie](fake.city)
    fake.rewrite["genesis"] = lambda _: served
    with pytest.raises(GenesisError):
        client.prove(tx_ids[0])
    with pytest.raises(GenesisError):
        client.tree_head()
    assert set(fake.paths()) == {"/api/v1/genesis"}


def test_a_node_of_another_chain_is_named_in_the_error(fake: FakeNode, client: CivicClient) -> None:
    fake.rewrite["genesis"] = lambda _: GENESIS_LIES["another chain"](fake.city)
    with pytest.raises(GenesisError, match="runs chain 'otherville', not 'testville'"):
        client.tree_head()


# -- rollbacks and forks ------------------------------------------------------------------------


def test_a_node_rolled_back_to_a_shorter_log_is_refused(
    fake: FakeNode, client: CivicClient, tx_ids: list[str], copies: Callable[..., Chain]
) -> None:
    client.tree_head()
    replay = copies(BLOCKS[:2])
    assert replay.tree_head(2) == fake.chain.tree_head(2)  # an exact replay of the prefix
    fake.switch(replay)
    with pytest.raises(ProofError, match="rollback"):
        client.tree_head()
    with pytest.raises(ProofError, match="rollback"):
        client.prove(tx_ids[0])
    assert client.trusted_head is not None
    assert client.trusted_head.tree_head.height == 3


def test_a_fork_at_the_held_height_is_refused(
    fake: FakeNode, client: CivicClient, copies: Callable[..., Chain]
) -> None:
    client.tree_head()
    fork = copies([*BLOCKS[:2], "forged"])
    fake.switch(fork)
    with pytest.raises(ProofError, match="fork"):
        client.tree_head()


def test_a_fork_that_grew_longer_is_refused(
    fake: FakeNode, client: CivicClient, copies: Callable[..., Chain]
) -> None:
    client.tree_head()
    fork = copies([*BLOCKS[:2], "forged", "more", "even more"])
    fake.switch(fork)
    with pytest.raises(ProofError, match="not between the tree heads asked for"):
        client.tree_head()
    held = client.trusted_head
    assert held is not None
    fake.rewrite["consistency"] = lambda doc: doc | {"old_head": held.model_dump(mode="json")}
    with pytest.raises(ProofError, match="root"):
        client.tree_head()
    assert client.trusted_head == held


def test_a_forked_history_is_refused_when_an_older_height_is_asked_for(
    fake: FakeNode, client: CivicClient, tx_ids: list[str], copies: Callable[..., Chain]
) -> None:
    client.tree_head()
    fork = copies([BLOCKS[0], "forged", "more"])
    fake.switch(fork)
    with pytest.raises(ProofError):
        client.prove(tx_ids[0], height=2)
    with pytest.raises(ProofError):
        client.tree_head(height=2)


CONSISTENCY_LIES: dict[str, Callable[[Any], Any]] = {
    "proof element": lambda d: d | {"proof": [_flip(d["proof"][0]), *d["proof"][1:]]},
    "proof too short": lambda d: d | {"proof": d["proof"][:-1]},
    "no proof": lambda d: d | {"proof": []},
    "heads swapped": lambda d: d | {"old_head": d["new_head"], "new_head": d["old_head"]},
    "inclusion proof instead": lambda d: {"kind": "civicledger/inclusion-proof/v1"},
}


@pytest.mark.parametrize("lie", list(CONSISTENCY_LIES))
def test_every_falsified_consistency_proof_raises_proof_error(
    fake: FakeNode, client: CivicClient, lie: str
) -> None:
    client.tree_head()
    grow(fake.city, fake.chain, ["delta", "epsilon"])
    fake.rewrite["consistency"] = CONSISTENCY_LIES[lie]
    with pytest.raises(ProofError):
        client.tree_head()
    held = client.trusted_head
    assert held is not None
    assert held.tree_head.height == 3


def test_a_consistency_proof_from_another_height_is_refused(
    fake: FakeNode, client: CivicClient
) -> None:
    client.tree_head()
    grow(fake.city, fake.chain, ["delta"])
    genuine = fake.chain.consistency_proof(1).model_dump(mode="json")  # valid, but from 1
    fake.rewrite["consistency"] = lambda _: genuine
    with pytest.raises(ProofError, match="not between the tree heads asked for"):
        client.tree_head()


def test_a_tree_head_for_another_height_than_asked_is_refused(
    fake: FakeNode, client: CivicClient
) -> None:
    latest = fake.chain.tree_head().model_dump(mode="json")
    fake.rewrite["tree_head"] = lambda _: latest
    with pytest.raises(ProofError, match="asked for the tree head at 1, got 3"):
        client.tree_head(height=1)


# -- the trusted head on disk -------------------------------------------------------------------


def test_the_held_head_survives_a_restart_and_still_catches_a_rollback(
    fake: FakeNode, tmp_path: Path, copies: Callable[..., Chain]
) -> None:
    head_file = tmp_path / "state" / "trusted-head.json"
    with fake.client(head_file=head_file) as first:
        first.tree_head()
    assert head_file.exists()
    fake.switch(copies(BLOCKS[:2]))
    with fake.client(head_file=head_file) as second:
        assert second.trusted_head is not None
        assert second.trusted_head.tree_head.height == 3
        with pytest.raises(ProofError, match="rollback"):
            second.tree_head()
    with fake.client() as forgetful:  # without the file: trust on first use
        assert forgetful.tree_head().tree_head.height == 2


def test_the_head_file_moves_forward_with_the_view(fake: FakeNode, tmp_path: Path) -> None:
    head_file = tmp_path / "head.json"
    with fake.client(head_file=head_file) as client:
        client.tree_head()
        grow(fake.city, fake.chain, ["delta"])
        client.tree_head()
    with fake.client(head_file=head_file) as again:
        assert again.trusted_head == fake.chain.tree_head(4)


def test_a_head_file_that_is_not_trustworthy_is_an_error_not_a_fresh_start(
    fake: FakeNode, tmp_path: Path
) -> None:
    head_file = tmp_path / "head.json"
    with fake.client(head_file=head_file) as client:
        client.tree_head()
    original = head_file.read_text()

    head_file.write_text(original.replace(fake.city.genesis.hash().hex(), "00" * 32))
    with pytest.raises(GenesisError, match="another genesis"):
        fake.client(head_file=head_file)

    head_file.write_text("{not json")
    with pytest.raises(ProofError, match="trusted head file"):
        fake.client(head_file=head_file)

    rogue_head = resign_head(fake.chain.tree_head(), fake.city.rogue)
    doc = {
        "kind": "civicledger/trusted-head/v1",
        "genesis_hash": fake.city.genesis.hash().hex(),
        "tree_head": rogue_head,
    }
    head_file.write_bytes(canonical_json(doc))
    with pytest.raises(ProofError, match="tree head signature"):
        fake.client(head_file=head_file)


# -- blocks -------------------------------------------------------------------------------------


def test_an_honest_block_is_verified_with_all_its_transactions(
    fake: FakeNode, client: CivicClient
) -> None:
    block = client.block(2)
    assert block.header == fake.chain.block(2).header  # type: ignore[union-attr]
    assert [r for _, r in block.txs] == [s.receipt for s in fake.chain.block_txs(2)]
    assert block.tree_head == fake.chain.tree_head(2)
    assert client.trusted_head == fake.chain.tree_head(2)


def test_a_block_of_more_than_one_page_is_read_page_by_page(
    fake: FakeNode, client: CivicClient
) -> None:
    ledger = fake.ledger
    fake.ledger.block(
        *(ledger.tx(fake.city.outsider, "tally", "add", {"amount": 1}) for _ in range(130))
    )
    block = client.block(4)
    assert len(block.txs) == 130
    pages = [r.url.params["offset"] for r in fake.requests if r.url.path == "/api/v1/blocks/4"]
    assert pages == ["0", "100"]


def _resigned_header(fake: FakeNode, height: int, **changes: Any) -> dict[str, Any]:
    signed = fake.chain.block(height)
    assert signed is not None
    header = signed.header.model_copy(update=changes)
    key = fake.city.rogue if "producer" in changes else fake.city.producer
    return SignedBlockHeader.sign(header, key).model_dump(mode="json")


def _receipts_swapped_by_the_producer(fake: FakeNode) -> Callable[[Any], Any]:
    """Block 2 with its two receipts swapped and a header the producer re-signed to match.

    The roots then hold: only the receipt-to-transaction binding gives it away.
    """

    def rewrite(doc: Any) -> Any:
        first, second = doc["txs"]
        first["receipt"], second["receipt"] = second["receipt"], first["receipt"]
        receipts = [canonical_json(item["receipt"]) for item in doc["txs"]]
        root = merkle.root_from_leaf_hashes([merkle.leaf_hash(r) for r in receipts])
        return doc | {"header": _resigned_header(fake, 2, receipts_root=root.hex())}

    return rewrite


BLOCK_LIES: dict[str, Callable[[FakeNode], Callable[[Any], Any]]] = {
    "receipts swapped, header re-signed by the producer": _receipts_swapped_by_the_producer,
    "tx args": lambda f: lambda d: _set(d, "txs.0.tx.body.args.label", "forged"),
    "receipt": lambda f: lambda d: _set(d, "txs.1.receipt.result", 1),
    "tx left out": lambda f: lambda d: d | {"txs": d["txs"][1:]},
    "txs reordered": lambda f: lambda d: d | {"txs": d["txs"][::-1]},
    "tx from another block": lambda f: (
        lambda d: d | {"txs": [d["txs"][0], f._block(3, httpx.QueryParams())["txs"][1]]}
    ),
    "header by a stranger": lambda f: (
        lambda d: d | {"header": _resigned_header(f, 2, producer=f.city.rogue.public.did)}
    ),
    "header re-signed with other roots": lambda f: (
        lambda d: d | {"header": _resigned_header(f, 2, tx_root="00" * 32)}
    ),
    "header of another block": lambda f: lambda d: d | {"header": _resigned_header(f, 3)},
    "tree head of another block": lambda f: (
        lambda d: d | {"tree_head": f.chain.tree_head(3).model_dump(mode="json")}
    ),
}


@pytest.mark.parametrize("lie", list(BLOCK_LIES))
def test_every_falsified_block_raises_proof_error(
    fake: FakeNode, client: CivicClient, lie: str
) -> None:
    fake.rewrite["block"] = BLOCK_LIES[lie](fake)
    with pytest.raises(ProofError):
        client.block(2)


def test_block_headers_are_signed_and_linked(fake: FakeNode, client: CivicClient) -> None:
    page = client.blocks(limit=2)
    assert [h.header.height for h in page.headers] == [3, 2]
    assert page.next_before == 2
    rest = client.blocks(before=2)
    assert [h.header.height for h in rest.headers] == [1, 0]
    assert rest.next_before is None


BLOCK_LIST_LIES: dict[str, Callable[[FakeNode], Callable[[Any], Any]]] = {
    "a block left out": lambda f: lambda d: d | {"blocks": [d["blocks"][0], *d["blocks"][2:]]},
    "a header by a stranger": lambda f: (
        lambda d: (
            d
            | {
                "blocks": [
                    _resigned_header(f, 3, producer=f.city.rogue.public.did),
                    *d["blocks"][1:],
                ]
            }
        )
    ),
    "a header re-signed with another parent": lambda f: (
        lambda d: d | {"blocks": [_resigned_header(f, 3, prev_hash="00" * 32), *d["blocks"][1:]]}
    ),
}


@pytest.mark.parametrize("lie", list(BLOCK_LIST_LIES))
def test_every_falsified_block_list_raises_proof_error(
    fake: FakeNode, client: CivicClient, lie: str
) -> None:
    fake.rewrite["blocks"] = BLOCK_LIST_LIES[lie](fake)
    with pytest.raises(ProofError):
        client.blocks()


def test_a_listed_header_that_contradicts_a_verified_head_is_refused(
    fake: FakeNode, client: CivicClient, copies: Callable[..., Chain]
) -> None:
    client.tree_head()
    fork = copies([*BLOCKS[:2], "forged"])
    fake.switch(fork)
    with pytest.raises(ProofError, match="commits to a log other than"):
        client.blocks()


# -- events -----------------------------------------------------------------------------------


def test_block_events_carry_verified_tree_heads(fake: FakeNode, client: CivicClient) -> None:
    events = list(client.events())
    blocks = [(e.id, e.data["tree_head"]) for e in events if e.event == "block"]
    assert blocks == [(str(h), fake.chain.tree_head(h).model_dump(mode="json")) for h in (1, 2, 3)]
    anchored = [e.data["data"]["digest"] for e in events if e.data.get("name") == "anchored"]
    assert anchored == [digest(label) for label in BLOCKS]  # contract events: the node's word
    assert client.trusted_head == fake.chain.tree_head(3)
    resumed = list(client.events(last_event_id="2"))
    assert {e.id for e in resumed} == {"3"}
    assert fake.requests[-1].headers["last-event-id"] == "2"


def test_a_block_event_with_a_strangers_tree_head_is_refused(
    fake: FakeNode, client: CivicClient
) -> None:
    def lie(data: dict[str, Any]) -> dict[str, Any]:
        if data["height"] == 2:
            head = fake.chain.tree_head(2)
            data["tree_head"] = resign_head(
                head, fake.city.rogue, signer=fake.city.rogue.public.did
            )
        return data

    fake.rewrite["event_block"] = lie
    seen: list[str | None] = []
    with pytest.raises(ProofError, match="not trusted"):
        seen.extend(event.id for event in client.events())
    assert set(seen) == {"1"}  # block 1 and its events, then the forged head stops the stream


# -- answers that are not what they claim -----------------------------------------------------


def test_answers_that_are_not_strict_json_are_bad_responses(
    fake: FakeNode, client: CivicClient
) -> None:
    for body in (b'{"height": 1.5}', b'{"a": 1, "a": 2}', b"[", b"NaN"):

        def answer(_: Any, body: bytes = body) -> httpx.Response:
            return httpx.Response(200, content=body)

        fake.rewrite["tree_head"] = answer
        with pytest.raises(NodeError) as raised:
            client.tree_head()
        assert raised.value.reason == "bad_response"


def test_an_answer_larger_than_the_limit_is_not_read(fake: FakeNode) -> None:
    fake.rewrite["query"] = lambda doc: doc | {"result": "x" * 100_000}
    with fake.client(max_body_bytes=50_000) as client, pytest.raises(NodeError, match="larger"):
        client.query("tally", "total")


def test_queries_are_returned_as_the_nodes_unproven_word(
    fake: FakeNode, client: CivicClient
) -> None:
    answer = client.query("tally", "total", {})
    assert (answer.height, answer.result) == (3, sum(map(len, BLOCKS)))
    assert fake.requests[-1].url.params["args"] == "{}"
    fake.rewrite["query"] = lambda doc: doc | {"result": 10**6}
    assert client.query("tally", "total").result == 10**6  # nothing to check it against


def test_arguments_that_would_change_the_url_are_refused_locally(client: CivicClient) -> None:
    for bad in ("../genesis", "AB" * 32, "ab" * 31, "ab" * 32 + "/proof"):
        with pytest.raises(EncodingError):
            client.prove(bad)
    with pytest.raises(EncodingError):
        client.query("tally/../x", "total")


# -- the wallet ----------------------------------------------------------------------------------


def test_the_wallet_asks_for_its_nonce_once_then_counts(
    fake: FakeNode, client: CivicClient
) -> None:
    wallet = Wallet(client, fake.city.clerk)
    for label in ("one", "two", "three"):
        assert wallet.send("notary", "anchor", anchor_args(label)).ok
    nonce_asks = [p for p in fake.paths() if p.startswith("/api/v1/nonce/")]
    assert nonce_asks == [f"/api/v1/nonce/{wallet.did}"]
    assert fake.chain.last_nonce(wallet.did) == 6  # three from the fixture's blocks


def test_the_wallet_resyncs_after_a_refusal(fake: FakeNode, client: CivicClient) -> None:
    wallet = Wallet(client, fake.city.outsider)
    assert wallet.send("tally", "add", {"amount": 1}).ok
    # Someone else with the same key uses the next nonce behind the wallet's back.
    fake.ledger.send(fake.city.outsider, "tally", "add", {"amount": 1})
    with pytest.raises(TxRejected) as raised:
        wallet.send("tally", "add", {"amount": 1})
    assert raised.value.reject_reason is RejectReason.NONCE_REPLAYED
    assert wallet.send("tally", "add", {"amount": 1}).ok
    nonce_asks = [p for p in fake.paths() if p.startswith("/api/v1/nonce/")]
    assert len(nonce_asks) == 2


def test_a_failed_receipt_is_returned_and_consumes_the_nonce(
    fake: FakeNode, client: CivicClient
) -> None:
    wallet = Wallet(client, fake.city.clerk)
    failed = wallet.send("notary", "anchor", anchor_args("alpha"))  # anchored in block 1
    assert (failed.status, failed.reason) == ("failed", "already_anchored")
    assert wallet.send("notary", "anchor", anchor_args("omega")).ok
    assert len([p for p in fake.paths() if p.startswith("/api/v1/nonce/")]) == 1


def test_transactions_that_cannot_be_accepted_are_refused_without_sending(
    fake: FakeNode, client: CivicClient
) -> None:
    city = fake.city
    other_chain = city.tx(
        city.outsider, "tally", "add", {"amount": 1}, nonce=1, chain_id="elsewhere"
    )
    with pytest.raises(TxRejected) as raised:
        client.submit(other_chain)
    assert raised.value.reject_reason is RejectReason.WRONG_CHAIN
    big = city.tx(city.outsider, "tally", "add", {"amount": 1, "note": "x" * 40_000}, nonce=1)
    with pytest.raises(TxRejected) as raised:
        client.submit(big)
    assert raised.value.reject_reason is RejectReason.OVERSIZE
    assert fake.requests == []


def test_a_lying_nonce_answer_is_a_bad_response(fake: FakeNode, client: CivicClient) -> None:
    fake.rewrite["nonce"] = lambda doc: doc | {"next_nonce": doc["last_nonce"] + 5}
    with pytest.raises(NodeError, match="inconsistent"):
        Wallet(client, fake.city.clerk).sign("notary", "anchor", anchor_args("x"))


# -- transport failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ConnectError("connection refused"), "unreachable"),
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (httpx.RemoteProtocolError("peer closed connection"), "unreachable"),
    ],
)
def test_transport_failures_are_node_errors(
    city: City, failure: httpx.HTTPError, reason: str
) -> None:
    def fail(_: httpx.Request) -> httpx.Response:
        raise failure

    with (
        CivicClient(
            "http://node.test", city.genesis, transport=httpx.MockTransport(fail)
        ) as client,
        pytest.raises(NodeError) as raised,
    ):
        client.tree_head()
    assert raised.value.reason == reason


def test_a_busy_node_refusing_a_transaction_is_a_rejection_with_its_reason(
    fake: FakeNode, client: CivicClient
) -> None:
    fake.refusal = problem(503, "mempool_full", "the mempool is full")
    with pytest.raises(TxRejected) as raised:
        Wallet(client, fake.city.outsider).send("tally", "add", {"amount": 1})
    assert raised.value.reject_reason is RejectReason.MEMPOOL_FULL
    assert raised.value.message == "the mempool is full"
