"""The ``certificates`` contract, block by block: anchoring needs the issuer right at block time,
statuses are final and live in the issuer's own namespace, the verification log is bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civicledger.contracts.governance import Governance
from civicledger.contracts.registry import ContractRegistry
from civicledger.errors import TxRejected
from civicledger.services.certificates.contract import MAX_VERIFICATIONS, Certificates
from conftest import GENESIS_TIME_MS, City, Ledger, digest, make_city, ok, refused

TYPE = "ResidenceCertificate"
T0 = GENESIS_TIME_MS + 86_400_000


@pytest.fixture
def town(tmp_path: Path) -> Iterator[tuple[City, Ledger]]:
    city = make_city(tmp_path / "city", ContractRegistry([Governance(), Certificates()]))
    chain = city.open_chain()
    ledger = Ledger(city, chain)
    grant = {"agency": "city-hall", "credential_type": TYPE}
    ok(ledger.send(city.root, "governance", "grant_issuer", grant, time_ms=T0))
    yield city, ledger
    chain.close()


def anchor_args(batch_id: str = "b-001", **change: Any) -> dict[str, Any]:
    args = {
        "batch_id": batch_id,
        "root": digest(batch_id),
        "size": 10_000,
        "certificate_type": TYPE,
        "issued_at_ms": T0 + 500,
        "metadata": {"template": "v1"},
    }
    return {**args, **change}


def test_anchor_batch_stores_the_root_and_the_block_time(town: tuple[City, Ledger]) -> None:
    city, ledger = town
    record = ok(
        ledger.send(city.clerk, "certificates", "anchor_batch", anchor_args(), time_ms=T0 + 1000)
    )
    assert record["issuer"] == "city-hall"
    assert record["anchored_ms"] == T0 + 1000
    assert record["size"] == 10_000
    found = ledger.chain.query(
        "certificates", "batch", {"issuer": "city-hall", "batch_id": "b-001"}
    )
    assert found == record
    listed = ledger.chain.query("certificates", "batches", {"issuer": "city-hall"})
    assert [b["batch_id"] for b in listed] == ["b-001"]


@pytest.mark.parametrize(
    ("signer", "change", "time_ms", "reason"),
    [
        ("archivist", {}, T0 + 1000, "not_issuer"),
        ("clerk", {"certificate_type": "GraduationCertificate"}, T0 + 1000, "not_issuer"),
        ("clerk", {"issued_at_ms": T0 + 1000 + 5 * 60_000 + 1}, T0 + 1000, "issued_in_future"),
        ("clerk", {"issued_at_ms": T0 - 7 * 86_400_000}, T0 + 1000, "stale_issue"),
        ("clerk", {"metadata": {"name": "Hong Gildong"}}, T0 + 1000, "bad_metadata"),
    ],
)
def test_anchor_refusals(
    town: tuple[City, Ledger], signer: str, change: dict[str, Any], time_ms: int, reason: str
) -> None:
    city, ledger = town
    key = getattr(city, signer)
    refused(
        ledger.send(key, "certificates", "anchor_batch", anchor_args(**change), time_ms=time_ms),
        reason,
    )


def test_a_batch_id_is_used_once_and_the_right_is_read_at_block_time(
    town: tuple[City, Ledger],
) -> None:
    city, ledger = town
    ok(ledger.send(city.clerk, "certificates", "anchor_batch", anchor_args(), time_ms=T0 + 1000))
    again = anchor_args(root=digest("other"))
    refused(
        ledger.send(city.clerk, "certificates", "anchor_batch", again, time_ms=T0 + 2000),
        "batch_exists",
    )
    grant = {"agency": "city-hall", "credential_type": TYPE}
    ok(ledger.send(city.root, "governance", "revoke_issuer", grant, time_ms=T0 + 3000))
    late = anchor_args("b-002", issued_at_ms=T0 + 3500)
    refused(
        ledger.send(city.clerk, "certificates", "anchor_batch", late, time_ms=T0 + 4000),
        "not_issuer",
    )
    # The earlier batch stays, and the right held when it was anchored is on record.
    held = {"agency": "city-hall", "credential_type": TYPE, "at_time_ms": T0 + 1000}
    assert ledger.chain.query("governance", "may_issue", held) is True
    assert ledger.chain.query("governance", "may_issue", {**held, "at_time_ms": T0 + 4000}) is False


def test_anchoring_needs_an_agency_key(town: tuple[City, Ledger]) -> None:
    city, ledger = town
    with pytest.raises(TxRejected) as refusal:
        ledger.send(city.outsider, "certificates", "anchor_batch", anchor_args())
    assert refusal.value.reason == "unauthorized"


def test_revoke_and_supersede_are_final_and_the_issuers_own(town: tuple[City, Ledger]) -> None:
    city, ledger = town
    ok(ledger.send(city.clerk, "certificates", "anchor_batch", anchor_args(), time_ms=T0 + 1000))
    ok(
        ledger.send(
            city.clerk, "certificates", "anchor_batch", anchor_args("b-002"), time_ms=T0 + 2000
        )
    )
    one, two, three = digest("cert-1"), digest("cert-2"), digest("cert-3")
    send = ledger.send

    def revoke(key: Any, ref: str, batch_id: str = "b-001") -> Any:
        args = {"batch_id": batch_id, "ref": ref, "reason": "address_changed"}
        return send(key, "certificates", "revoke", args)

    refused(revoke(city.clerk, one, "b-404"), "unknown_batch")
    # Another agency has no batch of that id: it cannot write a status for city hall's batch.
    refused(revoke(city.archivist, one), "unknown_batch")
    record = ok(revoke(city.clerk, one))
    assert (record["state"], record["reason"], record["by"]) == ("revoked", "address_changed", None)
    refused(revoke(city.clerk2, one), "already_revoked")

    def supersede(ref: str, new_ref: str) -> Any:
        args = {"batch_id": "b-001", "ref": ref, "new_batch_id": "b-002", "new_ref": new_ref}
        return send(city.clerk, "certificates", "supersede", args)

    refused(supersede(two, two), "same_certificate")
    refused(supersede(two, one), "replacement_not_valid")
    record = ok(supersede(two, three))
    assert record["by"] == {"ref": three, "batch_id": "b-002"}
    refused(supersede(two, digest("cert-4")), "already_superseded")
    refused(revoke(city.clerk, two), "already_superseded")
    status = ledger.chain.query("certificates", "status", {"issuer": "city-hall", "ref": two})
    assert status["state"] == "superseded"
    assert ledger.chain.query("certificates", "status", {"issuer": "archive", "ref": two}) is None
    assert (
        ledger.chain.query("certificates", "status", {"issuer": "city-hall", "ref": three}) is None
    )


def test_the_verification_log_says_who_and_when_and_is_bounded(town: tuple[City, Ledger]) -> None:
    city, ledger = town
    ref = digest("cert-1")
    ok(
        ledger.send(
            city.archivist,
            "certificates",
            "record_verification",
            {"ref": ref, "purpose": "job_application"},
            time_ms=T0 + 5000,
        )
    )
    ok(
        ledger.send(
            city.district,
            "certificates",
            "record_verification",
            {"ref": ref, "purpose": "housing"},
            time_ms=T0 + 6000,
        )
    )
    log = ledger.chain.query("certificates", "verifications", {"ref": ref})
    assert log["count"] == 2
    assert [(e["agency"], e["purpose"], e["time_ms"]) for e in log["entries"]] == [
        ("archive", "job_application", T0 + 5000),
        ("district-office", "housing", T0 + 6000),
    ]
    first = ledger.chain.query("certificates", "verifications", {"ref": ref, "limit": 1})
    assert first["next"] == 1
    rest = ledger.chain.query("certificates", "verifications", {"ref": ref, "after": 1})
    assert [e["seq"] for e in rest["entries"]] == [2]
    assert rest["next"] is None
    with pytest.raises(TxRejected):
        ledger.send(
            city.outsider, "certificates", "record_verification", {"ref": ref, "purpose": "x"}
        )
    bad = {"ref": ref, "purpose": "Free text with a name"}
    with pytest.raises(TxRejected) as refusal:
        ledger.send(city.archivist, "certificates", "record_verification", bad)
    assert refusal.value.reason == "invalid_args"


def test_the_log_stops_at_its_bound(town: tuple[City, Ledger]) -> None:
    city, ledger = town
    ref = digest("busy")
    args = {"ref": ref, "purpose": "audit"}
    for start in range(0, MAX_VERIFICATIONS, 500):
        block = ledger.block(
            *[
                ledger.tx(city.archivist, "certificates", "record_verification", args)
                for _ in range(500)
            ]
        )
        assert all(i.receipt.status == "ok" for i in block.included)
        assert start + 500 <= MAX_VERIFICATIONS
    refused(
        ledger.send(city.archivist, "certificates", "record_verification", args),
        "too_many_verifications",
    )
