"""The status_lists contract, through a real Chain: anchoring, versions, ownership, proofs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from civicledger.contracts.governance import Governance
from civicledger.contracts.notary import Notary
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.encoding import load_trusted_json
from civicledger.errors import RejectReason, TxRejected
from civicledger.ledger.proofs import verify_inclusion_bundle
from civicledger.node.chain import Chain
from civicledger.services.identity.status_list import (
    StatusEntry,
    StatusError,
    StatusList,
    check_status,
    list_credential_digest,
    status_list_credential,
)
from civicledger.services.identity.status_registry import StatusListRegistry
from conftest import City, Ledger, digest, make_city

LIST_URL = "https://city-hall.testville.example/status/revocation/1"
ISSUER = "did:web:city-hall.testville.example"


@pytest.fixture
def city(tmp_path: Path) -> City:
    """``testville`` running the status list registry beside the built-in contracts."""
    return make_city(
        tmp_path / "city", ContractRegistry([Governance(), Notary(), StatusListRegistry()])
    )


def _args(version: int, doc_digest: str, **change: Any) -> dict[str, Any]:
    args = {
        "agency": "city-hall",
        "list_id": LIST_URL,
        "purpose": "revocation",
        "digest": doc_digest,
        "version": version,
    }
    return {**args, **change}


def _latest(chain: Chain, agency: str = "city-hall", list_id: str = LIST_URL) -> Any:
    return chain.query("status_lists", "latest", {"agency": agency, "list_id": list_id})


def _block_time(chain: Chain, height: int) -> int:
    block = chain.block(height)
    assert block is not None
    return block.header.time_ms


def _contract_rows(city: City) -> dict[str, bytes]:
    return {k: v for k, v in city.state_rows().items() if k.startswith("status_lists/")}


def test_anchoring_sequence_and_history(city: City, chain: Chain, ledger: Ledger) -> None:
    digests = [digest(f"list v{v}") for v in (1, 2, 3)]
    receipts = [ledger.send(city.clerk, "status_lists", "anchor", _args(1, digests[0]))]
    receipts.append(ledger.send(city.clerk2, "status_lists", "anchor", _args(2, digests[1])))
    receipts.append(ledger.send(city.clerk, "status_lists", "anchor", _args(3, digests[2])))
    assert [r.status for r in receipts] == ["ok", "ok", "ok"]
    assert [(e.name, e.data) for e in receipts[1].events] == [
        (
            "status_list_anchored",
            {"agency": "city-hall", "list_id": LIST_URL, "version": 2, "digest": digests[1]},
        )
    ]
    heights = [r.height for r in receipts]
    times = [_block_time(chain, h) for h in heights]
    assert heights == sorted(heights)
    assert len(set(times)) == 3

    latest = _latest(chain)
    assert latest == {
        "agency": "city-hall",
        "list_id": LIST_URL,
        "purpose": "revocation",
        "digest": digests[2],
        "version": 3,
        "height": heights[2],
        "time_ms": times[2],
        "tx_id": receipts[2].tx_id,
    }
    ref = {"agency": "city-hall", "list_id": LIST_URL}
    for version in (1, 2, 3):
        record = chain.query("status_lists", "at", {**ref, "version": version})
        assert (record["digest"], record["height"]) == (digests[version - 1], heights[version - 1])
    assert chain.query("status_lists", "at", {**ref, "version": 4}) is None

    def as_of(time_ms: int) -> Any:
        record = chain.query("status_lists", "as_of", {**ref, "time_ms": time_ms})
        return None if record is None else record["version"]

    assert as_of(times[0] - 1) is None
    assert [as_of(t) for t in times] == [1, 2, 3]
    assert [as_of(t + 1) for t in times] == [1, 2, 3]
    assert as_of(2**53 - 1) == 3
    assert _latest(chain, list_id=LIST_URL + "/other") is None


def test_many_versions_as_of_binary_search(city: City, chain: Chain, ledger: Ledger) -> None:
    base = chain.head.header.time_ms
    for version in range(1, 12):
        tx = ledger.tx(city.clerk, "status_lists", "anchor", _args(version, digest(f"{version}")))
        ledger.block(tx, time_ms=base + 1000 * version)
    ref = {"agency": "city-hall", "list_id": LIST_URL}
    for version in range(1, 12):
        for offset in (0, 999):
            record = chain.query(
                "status_lists", "as_of", {**ref, "time_ms": base + 1000 * version + offset}
            )
            assert record["version"] == version
            assert record["digest"] == digest(f"{version}")


def test_two_versions_in_one_block(city: City, chain: Chain, ledger: Ledger) -> None:
    first = ledger.tx(city.clerk, "status_lists", "anchor", _args(1, digest("a")))
    second = ledger.tx(city.clerk2, "status_lists", "anchor", _args(2, digest("b")))
    block = ledger.block(first, second)
    assert [i.receipt.status for i in block.included] == ["ok", "ok"]
    assert _latest(chain)["version"] == 2
    time_ms = block.header.header.time_ms
    record = chain.query(
        "status_lists", "as_of", {"agency": "city-hall", "list_id": LIST_URL, "time_ms": time_ms}
    )
    assert record["version"] == 2


@pytest.mark.parametrize(
    ("versions", "refused"),
    [
        ([2], 2),  # a new list starts at 1
        ([1, 1], 1),  # no repeat
        ([1, 3], 3),  # no gap
        ([1, 2, 1], 1),  # no going back
    ],
)
def test_wrong_version_fails_and_changes_nothing(
    city: City, chain: Chain, ledger: Ledger, versions: list[int], refused: int
) -> None:
    for version in versions[:-1]:
        assert ledger.send(city.clerk, "status_lists", "anchor", _args(version, digest("x"))).ok
    before = _contract_rows(city)
    receipt = ledger.send(city.clerk, "status_lists", "anchor", _args(refused, digest("y")))
    assert (receipt.status, receipt.reason) == ("failed", "wrong_version")
    assert _contract_rows(city) == before
    expected = len(versions) - 1
    latest = _latest(chain)
    assert (None if latest is None else latest["version"]) == (expected or None)


def test_a_list_keeps_its_purpose(city: City, ledger: Ledger) -> None:
    assert ledger.send(city.clerk, "status_lists", "anchor", _args(1, digest("a"))).ok
    receipt = ledger.send(
        city.clerk, "status_lists", "anchor", _args(2, digest("b"), purpose="suspension")
    )
    assert (receipt.status, receipt.reason) == ("failed", "purpose_changed")


@pytest.mark.parametrize("signer", ["archivist", "district", "root", "outsider", "rogue"])
def test_only_the_owning_agency_may_anchor(
    city: City, chain: Chain, ledger: Ledger, signer: str
) -> None:
    assert ledger.send(city.clerk, "status_lists", "anchor", _args(1, digest("genuine"))).ok
    before = city.snapshot()
    with pytest.raises(TxRejected) as caught:
        ledger.send(getattr(city, signer), "status_lists", "anchor", _args(2, digest("forged")))
    assert caught.value.reject_reason is RejectReason.UNAUTHORIZED
    assert city.snapshot() == before
    assert _latest(chain)["digest"] == digest("genuine")


def test_agencies_have_separate_namespaces(city: City, chain: Chain, ledger: Ledger) -> None:
    # The archive may use the same list id, but only under its own name: it cannot squat it.
    archive = _args(1, digest("archive"), agency="archive")
    assert ledger.send(city.archivist, "status_lists", "anchor", archive).ok
    assert _latest(chain) is None
    assert ledger.send(city.clerk, "status_lists", "anchor", _args(1, digest("hall"))).ok
    assert _latest(chain)["digest"] == digest("hall")
    assert _latest(chain, agency="archive")["digest"] == digest("archive")


def test_deactivated_agency_cannot_anchor(city: City, ledger: Ledger) -> None:
    assert ledger.send(city.root, "governance", "deactivate_agency", {"agency": "city-hall"}).ok
    with pytest.raises(TxRejected) as caught:
        ledger.send(city.clerk, "status_lists", "anchor", _args(1, digest("late")))
    assert caught.value.reject_reason is RejectReason.UNAUTHORIZED


@pytest.mark.parametrize(
    "change",
    [
        {"digest": "AB" * 32},
        {"digest": "ab" * 31},
        {"version": 0},
        {"version": "1"},
        {"purpose": "refresh"},
        {"list_id": ""},
        {"list_id": "has space"},
        {"list_id": "x" * 513},
        {"agency": "City Hall"},
        {"holder": "Kim Minji"},
    ],
)
def test_invalid_arguments_are_rejected(city: City, ledger: Ledger, change: dict[str, Any]) -> None:
    with pytest.raises(TxRejected) as caught:
        ledger.send(city.clerk, "status_lists", "anchor", {**_args(1, digest("x")), **change})
    assert caught.value.reject_reason is RejectReason.INVALID_ARGS


def test_only_ids_and_digests_are_stored(city: City, ledger: Ledger) -> None:
    assert ledger.send(city.clerk, "status_lists", "anchor", _args(1, digest("a"))).ok
    rows = _contract_rows(city)
    assert len(rows) == 2
    for value in rows.values():
        record = load_trusted_json(value)
        assert set(record) == {
            "agency",
            "list_id",
            "purpose",
            "digest",
            "version",
            "height",
            "time_ms",
            "tx_id",
        }


def test_revocation_end_to_end_with_proof(city: City, chain: Chain, ledger: Ledger) -> None:
    """Issue, revoke, re-anchor; a verifier detects a stale list and proves what it checked."""
    status_list = StatusList("revocation")
    entry = StatusEntry.for_index(LIST_URL, 94_567, "revocation")

    def publish(version: int) -> tuple[dict[str, Any], Any]:
        document = status_list_credential(
            status_list,
            credential_id=LIST_URL,
            issuer=ISSUER,
            sign=lambda d: {**d, "proof": {"type": "DataIntegrityProof", "v": version}},
        )
        args = _args(version, list_credential_digest(document))
        return document, ledger.send(city.clerk, "status_lists", "anchor", args)

    first, first_receipt = publish(1)
    status_list.set(entry.index)
    second, second_receipt = publish(2)
    assert first_receipt.ok
    assert second_receipt.ok

    latest = _latest(chain)
    status = check_status(entry, second, latest["digest"])
    assert status.revoked
    assert not status.suspended
    assert status.list_digest == latest["digest"]

    # A stale copy of version 1 (from a cache, or a holder hiding the revocation) is caught.
    with pytest.raises(StatusError) as caught:
        check_status(entry, first, latest["digest"])
    assert caught.value.reason == "status_list_mismatch"

    # Checked at a time when version 1 was current, the old list is the right one.
    ref = {"agency": "city-hall", "list_id": LIST_URL}
    then = chain.query(
        "status_lists",
        "as_of",
        {**ref, "time_ms": _block_time(chain, first_receipt.height)},
    )
    assert not check_status(entry, first, then["digest"]).revoked

    # The verifier's evidence: the anchoring transaction's inclusion proof, checked offline.
    bundle = chain.inclusion_proof(bytes.fromhex(latest["tx_id"]))
    tx, receipt = verify_inclusion_bundle(bundle, frozenset(city.genesis.producers))
    assert (tx.body.contract, tx.body.method) == ("status_lists", "anchor")
    assert tx.body.args["digest"] == status.list_digest
    assert receipt.ok
    assert receipt.result["version"] == 2
