"""The embedded node: every rejection reason, contract failures, block cutting, the data-dir lock.

The rejection table is the contract of issue 2, item 3: each refused transaction raises
``TxRejected`` with its specific reason and leaves the ledger exactly as it was, down to the
signer's nonce; the proof that the nonce is still free is that the signer's next transaction,
sent with it, commits.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from civicledger.contracts.executor import nonce_key
from civicledger.crypto.encoding import b64url, canonical_json
from civicledger.crypto.keys import PrivateKey, signing_message
from civicledger.errors import NodeError, RejectReason, TxRejected
from civicledger.ledger.proofs import verify_inclusion_bundle
from civicledger.ledger.tx import MAX_TX_BYTES, SignedTx
from civicledger.node.chain import CommittedBlock
from civicledger.node.embedded import EmbeddedNode
from civicledger.node.verify import verify_chain
from conftest import GENESIS_TIME_MS, City, digest

Submission = SignedTx | bytes
Build = Callable[[City, EmbeddedNode], Submission]


def _anchor(city: City, key: PrivateKey, nonce: int, doc: str = "doc", **args: Any) -> SignedTx:
    return city.tx(key, "notary", "anchor", {"digest": digest(doc), **args}, nonce=nonce)


def _add(city: City, key: PrivateKey, nonce: int, amount: Any = 1) -> SignedTx:
    return city.tx(key, "tally", "add", {"amount": amount}, nonce=nonce)


def _commit(node: EmbeddedNode, tx: SignedTx) -> None:
    receipt = node.submit(tx, timeout=10)
    assert receipt.ok, receipt


def _flip_signature_bit(tx: SignedTx) -> SignedTx:
    signature = bytearray(tx.signature)
    signature[17] ^= 0x04
    return replace(tx, signature=bytes(signature))


def _with_signature(tx: SignedTx, key: PrivateKey, chain_id: str) -> bytes:
    """Wire bytes of ``tx``'s body with a signature made by ``key`` under ``chain_id``'s domain."""
    signature = key.sign(signing_message(chain_id, "tx", tx.body_bytes))
    return replace(tx, signature=signature).envelope_bytes()


def _wire_with_body(tx: SignedTx, body_json: bytes) -> bytes:
    return b'{"body":' + body_json + b',"signature":"' + b64url(tx.signature).encode() + b'"}'


# -- setups: transactions that must commit before the refused one is sent -------------------------


def _replayed(city: City, node: EmbeddedNode) -> Submission:
    tx = _anchor(city, city.clerk, 1)
    _commit(node, tx)
    return tx


def _lower_nonce(city: City, node: EmbeddedNode) -> Submission:
    _commit(node, _add(city, city.clerk, 1))
    _commit(node, _add(city, city.clerk, 2))
    return _anchor(city, city.clerk, 1)


def _gap_after_commits(city: City, node: EmbeddedNode) -> Submission:
    _commit(node, _add(city, city.clerk, 1))
    return _add(city, city.clerk, 3)


def _deactivated_agency(city: City, node: EmbeddedNode) -> Submission:
    _commit(
        node, city.tx(city.root, "governance", "deactivate_agency", {"agency": "archive"}, nonce=1)
    )
    return _anchor(city, city.archivist, 1)


def _removed_key(city: City, node: EmbeddedNode) -> Submission:
    args = {"agency": "city-hall", "key": city.clerk2.public.did}
    _commit(node, city.tx(city.root, "governance", "remove_key", args, nonce=1))
    return _anchor(city, city.clerk2, 1)


def _revoked_role(city: City, node: EmbeddedNode) -> Submission:
    args = {"agency": "archive", "role": "notary"}
    _commit(node, city.tx(city.root, "governance", "revoke_role", args, nonce=1))
    return _anchor(city, city.archivist, 1)


@dataclass(frozen=True)
class Case:
    name: str
    reason: RejectReason
    signer: str
    """The city key whose nonce must stay unchanged (and stay usable)."""
    build: Build


def _case(name: str, reason: RejectReason, build: Build, signer: str = "clerk") -> Any:
    return pytest.param(Case(name, reason, signer, build), id=name)


def _long_note(city: City) -> SignedTx:
    return city.tx(city.clerk, "tally", "add", {"amount": 1, "note": "x" * MAX_TX_BYTES}, nonce=1)


REJECTIONS = [
    # bad signature
    _case(
        "signature bit flipped",
        RejectReason.BAD_SIGNATURE,
        lambda c, n: _flip_signature_bit(_anchor(c, c.clerk, 1)),
    ),
    _case(
        "signature bit flipped (wire)",
        RejectReason.BAD_SIGNATURE,
        lambda c, n: _flip_signature_bit(_anchor(c, c.clerk, 1)).envelope_bytes(),
    ),
    _case(
        "signed by another key",
        RejectReason.BAD_SIGNATURE,
        lambda c, n: _with_signature(_anchor(c, c.clerk, 1), c.outsider, c.chain_id),
    ),
    _case(
        "signed by root for the clerk",
        RejectReason.BAD_SIGNATURE,
        lambda c, n: _with_signature(_anchor(c, c.clerk, 1), c.root, c.chain_id),
    ),
    _case(
        "signed under another chain's domain",
        RejectReason.BAD_SIGNATURE,
        lambda c, n: _with_signature(_anchor(c, c.clerk, 1), c.clerk, "other-city"),
    ),
    _case(
        "body changed after signing",
        RejectReason.BAD_SIGNATURE,
        lambda c, n: _wire_with_body(
            _anchor(c, c.clerk, 1),
            _anchor(c, c.clerk, 1).body_bytes.replace(b'"nonce":1', b'"nonce":2'),
        ),
    ),
    # wrong chain
    _case(
        "wrong chain id",
        RejectReason.WRONG_CHAIN,
        lambda c, n: c.tx(
            c.clerk, "notary", "anchor", {"digest": digest("d")}, nonce=1, chain_id="other-city"
        ),
    ),
    _case(
        "wrong chain id (wire)",
        RejectReason.WRONG_CHAIN,
        lambda c, n: c.tx(
            c.clerk, "tally", "add", {"amount": 1}, nonce=1, chain_id="testville-staging"
        ).envelope_bytes(),
    ),
    # nonces
    _case("same tx twice", RejectReason.NONCE_REPLAYED, _replayed),
    _case("lower nonce", RejectReason.NONCE_REPLAYED, _lower_nonce),
    _case(
        "nonce gap from start", RejectReason.NONCE_OUT_OF_ORDER, lambda c, n: _anchor(c, c.clerk, 2)
    ),
    _case("nonce gap after commits", RejectReason.NONCE_OUT_OF_ORDER, _gap_after_commits),
    # expiry
    _case(
        "expired long ago",
        RejectReason.EXPIRED,
        lambda c, n: c.tx(c.clerk, "tally", "add", {"amount": 1}, nonce=1, expires_at=0),
    ),
    _case(
        "expires at the head's time",
        RejectReason.EXPIRED,
        lambda c, n: c.tx(
            c.clerk, "tally", "add", {"amount": 1}, nonce=1, expires_at=GENESIS_TIME_MS
        ),
    ),
    _case(
        # Admitted against the genesis head, dropped when the block's (wall-clock) time passes it.
        "expired by block time",
        RejectReason.EXPIRED,
        lambda c, n: c.tx(
            c.clerk, "tally", "add", {"amount": 1}, nonce=1, expires_at=GENESIS_TIME_MS + 1
        ),
    ),
    # unknown contract / method
    _case(
        "unknown contract",
        RejectReason.UNKNOWN_CONTRACT,
        lambda c, n: c.tx(c.clerk, "lottery", "draw", {}, nonce=1),
    ),
    _case(
        "unknown method",
        RejectReason.UNKNOWN_METHOD,
        lambda c, n: c.tx(c.clerk, "notary", "unanchor", {"digest": digest("d")}, nonce=1),
    ),
    _case(
        "query sent as a transaction",
        RejectReason.UNKNOWN_METHOD,
        lambda c, n: c.tx(c.clerk, "notary", "lookup", {"digest": digest("d")}, nonce=1),
    ),
    _case(
        "governance query sent as a transaction",
        RejectReason.UNKNOWN_METHOD,
        lambda c, n: c.tx(c.root, "governance", "agency", {"agency": "archive"}, nonce=1),
        signer="root",
    ),
    # invalid args (strict: nothing is coerced)
    _case(
        "wrong type",
        RejectReason.INVALID_ARGS,
        lambda c, n: c.tx(c.clerk, "notary", "anchor", {"digest": 123}, nonce=1),
    ),
    _case(
        "missing field",
        RejectReason.INVALID_ARGS,
        lambda c, n: c.tx(c.clerk, "notary", "anchor", {"label": "minutes"}, nonce=1),
    ),
    _case(
        "extra field",
        RejectReason.INVALID_ARGS,
        lambda c, n: _anchor(c, c.clerk, 1, owner="alice"),
    ),
    _case("true for an int", RejectReason.INVALID_ARGS, lambda c, n: _add(c, c.clerk, 1, True)),
    _case("string for an int", RejectReason.INVALID_ARGS, lambda c, n: _add(c, c.clerk, 1, "5")),
    _case("int out of range", RejectReason.INVALID_ARGS, lambda c, n: _add(c, c.clerk, 1, 0)),
    _case(
        "pattern mismatch",
        RejectReason.INVALID_ARGS,
        lambda c, n: c.tx(c.clerk, "notary", "anchor", {"digest": digest("d").upper()}, nonce=1),
    ),
    _case(
        "a key that is not a did:key",
        RejectReason.INVALID_ARGS,
        lambda c, n: c.tx(
            c.root,
            "governance",
            "register_agency",
            {"id": "parks", "name": "Parks", "keys": ["did:key:zNope"]},
            nonce=1,
        ),
        signer="root",
    ),
    # unauthorized
    _case(
        "non-root granting a role",
        RejectReason.UNAUTHORIZED,
        lambda c, n: c.tx(
            c.clerk, "governance", "grant_role", {"agency": "city-hall", "role": "auditor"}, nonce=1
        ),
    ),
    _case(
        "non-root registering an agency",
        RejectReason.UNAUTHORIZED,
        lambda c, n: c.tx(
            c.rogue,
            "governance",
            "register_agency",
            {"id": "rogue-office", "name": "Rogue", "keys": [c.rogue.public.did]},
            nonce=1,
        ),
        signer="rogue",
    ),
    _case(
        "adding a key to another agency",
        RejectReason.UNAUTHORIZED,
        lambda c, n: c.tx(
            c.clerk,
            "governance",
            "add_key",
            {"agency": "archive", "key": c.outsider.public.did},
            nonce=1,
        ),
    ),
    _case(
        "agency without the role",
        RejectReason.UNAUTHORIZED,
        lambda c, n: _anchor(c, c.district, 1),
        signer="district",
    ),
    _case(
        "key of no agency",
        RejectReason.UNAUTHORIZED,
        lambda c, n: _anchor(c, c.outsider, 1),
        signer="outsider",
    ),
    _case(
        "key of a deactivated agency",
        RejectReason.UNAUTHORIZED,
        _deactivated_agency,
        signer="archivist",
    ),
    _case("a removed key", RejectReason.UNAUTHORIZED, _removed_key, signer="clerk2"),
    _case("a revoked role", RejectReason.UNAUTHORIZED, _revoked_role, signer="archivist"),
    # size
    # size: the note is valid for the contract, only the ledger's limit refuses it
    _case("oversize (wire)", RejectReason.OVERSIZE, lambda c, n: _long_note(c).envelope_bytes()),
    _case("oversize (object)", RejectReason.OVERSIZE, lambda c, n: _long_note(c)),
    # malformed
    _case("malformed JSON", RejectReason.MALFORMED, lambda c, n: b'{"body": {"nonce": 1},'),
    _case("not an envelope", RejectReason.MALFORMED, lambda c, n: b'{"tx": 1}'),
    _case(
        "duplicate keys",
        RejectReason.MALFORMED,
        lambda c, n: _wire_with_body(
            _anchor(c, c.clerk, 1),
            _anchor(c, c.clerk, 1).body_bytes.replace(b'"nonce":1', b'"nonce":1,"nonce":1'),
        ),
    ),
    _case(
        "float",
        RejectReason.MALFORMED,
        lambda c, n: _wire_with_body(
            _anchor(c, c.clerk, 1),
            _anchor(c, c.clerk, 1).body_bytes.replace(b'"nonce":1', b'"nonce":1.0'),
        ),
    ),
    _case(
        "float in args",
        RejectReason.MALFORMED,
        lambda c, n: _wire_with_body(
            _add(c, c.clerk, 1, 1),
            _add(c, c.clerk, 1, 1).body_bytes.replace(b'"amount":1', b'"amount":1e0'),
        ),
    ),
]


@pytest.mark.parametrize("case", REJECTIONS)
def test_rejected_with_its_reason_and_nothing_written(
    city: City, node: EmbeddedNode, case: Case
) -> None:
    submission = case.build(city, node)
    signer: PrivateKey = getattr(city, case.signer)
    before = city.snapshot()
    nonce = city.nonce(signer)

    with pytest.raises(TxRejected) as caught:
        node.submit(submission, timeout=10)

    assert caught.value.reject_reason is case.reason, caught.value.message
    assert caught.value.reason == case.reason.value
    assert city.snapshot() == before
    assert city.nonce(signer) == nonce
    # The nonce is still free, in the ledger and in the mempool's bookkeeping: the signer's
    # next transaction with it commits, and it is the only thing that was ever added.
    assert node.submit(_add(city, signer, nonce + 1), timeout=10).ok
    assert city.nonce(signer) == nonce + 1
    after = city.snapshot()
    assert (after["txs"], after["height"]) == (before["txs"] + 1, before["height"] + 1)


def test_the_table_covers_every_reason_a_client_can_cause() -> None:
    covered = {param.values[0].reason for param in REJECTIONS}
    # MEMPOOL_FULL is the node's own condition, not the transaction's (tested below).
    assert covered == set(RejectReason) - {RejectReason.MEMPOOL_FULL}


def test_resubmitting_a_pending_tx_is_a_replay(city: City, node: EmbeddedNode) -> None:
    tx = _add(city, city.clerk, 1)
    pending = node.submit_nowait(tx)
    with pytest.raises(TxRejected) as caught:
        node.submit(tx, timeout=10)
    assert caught.value.reject_reason is RejectReason.NONCE_REPLAYED
    assert pending.result(10).ok
    assert city.snapshot()["txs"] == 1


def test_a_drop_frees_the_nonce_for_the_next_submission(city: City, node: EmbeddedNode) -> None:
    """Admission reserves nonce 1; the executor drops the tx; nonce 1 must be usable again."""
    dropped = city.tx(
        city.clerk, "tally", "add", {"amount": 1}, nonce=1, expires_at=GENESIS_TIME_MS + 1
    )
    with pytest.raises(TxRejected):
        node.submit(dropped, timeout=10)
    assert node.submit(_add(city, city.clerk, 1), timeout=10).ok


# -- contract-level failures: recorded, provable, and they change nothing but the nonce ----------


def _root(city: City, method: str, nonce: int, **args: Any) -> SignedTx:
    return city.tx(city.root, "governance", method, args, nonce=nonce)


CONTRACT_FAILURES: list[Any] = [
    pytest.param(
        lambda c, n: (_commit(n, _anchor(c, c.clerk, 1)), _anchor(c, c.archivist, 1))[1],
        "already_anchored",
        "archivist",
        id="double notary.anchor",
    ),
    pytest.param(
        lambda c, n: _root(
            c, "register_agency", 1, id="archive", name="Again", keys=[c.outsider.public.did]
        ),
        "agency_exists",
        "root",
        id="register an existing agency",
    ),
    pytest.param(
        lambda c, n: _root(
            c,
            "register_agency",
            1,
            id="parks",
            name="Parks",
            keys=[c.outsider.public.did, c.clerk.public.did],
        ),
        "key_in_use",
        "root",
        id="register with another agency's key",
    ),
    pytest.param(
        lambda c, n: _root(c, "grant_role", 1, agency="city-hall", role="notary"),
        "role_held",
        "root",
        id="grant a role already held",
    ),
    pytest.param(
        lambda c, n: _root(c, "grant_role", 1, agency="city-hall", role="root"),
        "reserved_role",
        "root",
        id="grant the root role",
    ),
    pytest.param(
        lambda c, n: _root(c, "remove_key", 1, agency="archive", key=c.archivist.public.did),
        "last_key",
        "root",
        id="remove an agency's last key",
    ),
    pytest.param(
        lambda c, n: _root(c, "grant_role", 1, agency="nowhere", role="notary"),
        "unknown_agency",
        "root",
        id="grant to an unknown agency",
    ),
]


@pytest.mark.parametrize(("build", "reason", "signer_name"), CONTRACT_FAILURES)
def test_contract_failure_gets_a_failed_receipt_and_changes_only_the_nonce(
    city: City, node: EmbeddedNode, build: Build, reason: str, signer_name: str
) -> None:
    tx = build(city, node)
    assert isinstance(tx, SignedTx)
    signer: PrivateKey = getattr(city, signer_name)
    before = city.state_rows()
    log_size = city.snapshot()["log_size"]

    receipt = node.submit(tx, timeout=10)

    assert receipt.status == "failed"
    assert receipt.reason == reason
    assert receipt.message
    assert receipt.events == ()
    after = city.state_rows()
    key = nonce_key(signer.public.did)
    assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} == {key}
    assert after[key] == canonical_json(tx.body.nonce)

    stored = node.chain.tx(tx.tx_id)
    assert stored is not None
    assert stored.receipt == receipt
    assert receipt.leaf_index == log_size
    bundle = node.chain.inclusion_proof(tx.tx_id)
    proven_tx, proven = verify_inclusion_bundle(bundle, frozenset(city.genesis.producers))
    assert proven_tx.tx_id == tx.tx_id
    assert (proven.status, proven.reason) == ("failed", reason)


# -- block production ------------------------------------------------------------------------------


def test_blocks_are_cut_by_count(city: City) -> None:
    blocks: list[CommittedBlock] = []
    with city.open_node(max_block_txs=3, block_interval=5.0) as node:
        node.on_block(blocks.append)
        futures = [node.submit_nowait(_add(city, city.clerk, n)) for n in range(1, 7)]
        receipts = [f.result(10) for f in futures]
    assert [len(b.included) for b in blocks] == [3, 3]
    assert [r.height for r in receipts] == [1, 1, 1, 2, 2, 2]
    assert [r.index for r in receipts] == [0, 1, 2, 0, 1, 2]
    assert [r.leaf_index for r in receipts] == list(range(6))


def test_a_partial_block_is_cut_after_the_interval(city: City) -> None:
    with city.open_node(max_block_txs=100, block_interval=0.05) as node:
        futures = [node.submit_nowait(_add(city, city.clerk, n)) for n in (1, 2)]
        assert {f.result(5).height for f in futures} == {1}


def test_close_commits_everything_already_admitted(city: City) -> None:
    node = city.open_node(max_block_txs=1000, block_interval=30.0)
    futures = [node.submit_nowait(_add(city, city.clerk, n)) for n in range(1, 6)]
    node.close()
    assert all(f.result(0).ok for f in futures)
    assert city.nonce(city.clerk) == 5
    with pytest.raises(NodeError, match="shutting down"):
        node.submit_nowait(_add(city, city.clerk, 6))
    node.close()  # a second close is harmless


def test_mempool_full_is_refused_and_writes_nothing(city: City) -> None:
    with city.open_node(max_mempool=2, max_block_txs=1000, block_interval=30.0) as node:
        node.submit_nowait(_add(city, city.clerk, 1))
        node.submit_nowait(_add(city, city.clerk, 2))
        with pytest.raises(TxRejected) as caught:
            node.submit_nowait(_add(city, city.clerk, 3))
        assert caught.value.reject_reason is RejectReason.MEMPOOL_FULL
        assert node.mempool_size == 2
    assert city.nonce(city.clerk) == 2


def test_a_failing_listener_does_not_stop_the_node(city: City) -> None:
    calls: list[int] = []

    def broken(block: CommittedBlock) -> None:
        calls.append(block.header.header.height)
        raise RuntimeError("listener bug")

    with city.open_node() as node:
        node.on_block(broken)
        assert node.submit(_add(city, city.clerk, 1), timeout=10).ok
        assert node.submit(_add(city, city.clerk, 2), timeout=10).ok
    assert calls == [1, 2]


def test_submit_many_checks_in_workers_and_keeps_order(city: City) -> None:
    good = [_add(city, city.clerk, n).envelope_bytes() for n in (1, 2, 3)]
    bad_sig = _flip_signature_bit(_add(city, city.district, 1)).envelope_bytes()
    raws = [good[0], bad_sig, good[1], b"[]", good[2]]
    with city.open_node() as node:
        futures = node.submit_many(raws, chunk=2)
        outcomes: list[Any] = []
        for future in futures:
            error = future.exception(30)
            outcomes.append(
                error.reject_reason if isinstance(error, TxRejected) else future.result().leaf_index
            )
    assert outcomes == [0, RejectReason.BAD_SIGNATURE, 1, RejectReason.MALFORMED, 2]


def test_concurrent_submitters_each_get_their_own_receipts(city: City) -> None:
    signers = [city.clerk, city.clerk2, city.archivist, city.district]
    errors: list[BaseException] = []

    def run(key: PrivateKey) -> None:
        try:
            for n in range(1, 16):
                receipt = node.submit(_add(city, key, n), timeout=10)
                assert receipt.ok
        except BaseException as e:  # noqa: BLE001  (collected and re-raised in the test thread)
            errors.append(e)

    with city.open_node(max_block_txs=3) as node:
        threads = [threading.Thread(target=run, args=(k,)) for k in signers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert [city.nonce(k) for k in signers] == [15] * 4
    assert verify_chain(city.data_dir, registry=city.registry).transactions == 60


# -- the data-directory lock ------------------------------------------------------------------


def test_a_second_node_on_the_same_dir_is_refused_until_the_first_closes(city: City) -> None:
    first = city.open_node()
    try:
        with pytest.raises(NodeError, match="another process is running the node"):
            city.open_node()
        assert first.submit(_add(city, city.clerk, 1), timeout=10).ok  # the refusal broke nothing
    finally:
        first.close()
    with city.open_node() as second:
        assert second.submit(_add(city, city.clerk, 2), timeout=10).ok


_OPEN_IN_CHILD = """
import sys
from pathlib import Path
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import NodeError
from civicledger.node.embedded import EmbeddedNode
try:
    EmbeddedNode(Path(sys.argv[1]), PrivateKey.from_seed(bytes.fromhex(sys.argv[2]))).close()
except NodeError as e:
    print("locked:", e)
    sys.exit(3)
print("opened")
"""


def test_the_lock_holds_across_processes(city: City) -> None:
    argv = [sys.executable, "-c", _OPEN_IN_CHILD, str(city.data_dir), city.producer.seed.hex()]
    with city.open_node():
        held = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert held.returncode == 3, held.stderr
    assert "another process is running the node" in held.stdout
    free = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert (free.returncode, free.stdout.strip()) == (0, "opened"), free.stderr


def test_a_non_producer_key_is_refused_and_releases_the_lock(city: City) -> None:
    with pytest.raises(NodeError, match="not a block producer"):
        EmbeddedNode(city.data_dir, city.rogue, registry=city.registry)
    with city.open_node() as node:
        assert node.submit(_add(city, city.clerk, 1), timeout=10).ok


def test_a_submitter_cancelling_its_future_changes_nothing_for_the_node(city: City) -> None:
    """A cancelled future is the submitter's loss only: the transaction still commits, and the
    writer thread (which resolves futures) keeps going."""
    with city.open_node(block_interval=0.2) as running:
        first = running.submit_nowait(city.tx(city.clerk, "tally", "add", {"amount": 1}, nonce=1))
        assert first.cancel()
        second = running.submit(
            city.tx(city.clerk, "tally", "add", {"amount": 2}, nonce=2), timeout=10
        )
        assert second.ok
        assert running.chain.query("tally", "total", {}) == 3
    assert city.nonce(city.clerk) == 2
