"""The certificate office end to end on a served node: issue a batch in one transaction, hand
out PDFs, verify them at the desk, revoke, reissue, record verifications; nothing personal on
the ledger, and a refused anchor leaves nothing in the register."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from civicledger.agency.certificate_desk import CertificateDesk, CertificateDeskError
from civicledger.agency.certificate_issuer import (
    CertificateIssuer,
    CertificateIssuerError,
)
from civicledger.agency.ledger import NodeLedger, TxFailed
from civicledger.city import NODE_KEY, CityDir, load_key
from civicledger.errors import CivicError, NodeError
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.certificates.document import bundle_to_qr
from identity_samples import issuing_city

TYPE = "ResidenceCertificate"
PEOPLE = [
    {"name": "홍길동", "birth_date": "1990-04-17", "address": "서울시 마포구 월드컵로 1"},
    {"name": "Minji Kimura-Park", "birth_date": "1985-01-02", "address": "12 Maple Lane"},
    {"name": "이서연", "birth_date": "2001-12-31", "address": "서울시 강남구 테헤란로 5"},
]
PERSONAL = ["홍길동", "Kimura-Park", "1990-04-17", "Maple Lane", "테헤란로"]


@dataclass
class Office:
    layout: CityDir
    node: EmbeddedNode
    ledger: NodeLedger
    issuer: CertificateIssuer
    desk: CertificateDesk


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    root = tmp_path_factory.mktemp("cert-office")
    layout = issuing_city(root / "city", [("city-hall", TYPE)], more_agencies=["archive"])
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        ledger = NodeLedger(layout, node)
        issuer = CertificateIssuer(ledger, "city-hall", font="core")
        desk = CertificateDesk(ledger, node.chain.chain_id)
        yield Office(layout, node, ledger, issuer, desk)


def now(office: Office) -> int:
    return office.ledger.head_time_ms()


def test_a_batch_is_one_transaction_and_each_pdf_verifies(office: Office) -> None:
    height = office.node.chain.head.header.height
    batch = office.issuer.issue(TYPE, PEOPLE, batch_id="b-issue-1")
    assert batch.size == 3
    assert batch.height == height + 1
    record = office.desk.batch("city-hall", "b-issue-1")
    assert (record["root"], record["size"]) == (batch.root, 3)
    for certificate_id in batch.certificate_ids:
        report = office.desk.verify_pdf(office.issuer.pdf(certificate_id), now(office))
        assert report.ok, report.to_json()
        qr = office.desk.verify_qr(bundle_to_qr(office.issuer.bundle(certificate_id)), now(office))
        assert qr.ok
        assert qr.source == "qr"
    names = [c["name"] for c in office.issuer.certificates("b-issue-1")]
    assert names == [p["name"] for p in PEOPLE]
    register = office.layout.root / "certificates" / "city-hall" / "register.sqlite"
    assert stat.S_IMODE(register.stat().st_mode) == 0o600


def test_revoke_and_reissue_through_the_office(office: Office) -> None:
    batch = office.issuer.issue(TYPE, PEOPLE[:2], batch_id="b-issue-2")
    first, second = batch.certificate_ids
    office.issuer.revoke(first, "issued_in_error")
    report = office.desk.verify_pdf(office.issuer.pdf(first), now(office))
    assert report.integrity.ok
    assert (report.status.reason, report.status.detail["reason"]) == ("revoked", "issued_in_error")
    with pytest.raises(TxFailed) as again:
        office.issuer.revoke(first, "issued_in_error")
    assert again.value.reason == "already_revoked"
    new = office.issuer.reissue(second, {"address": "서울시 종로구 세종대로 110"})
    old_report = office.desk.verify_pdf(office.issuer.pdf(second), now(office))
    new_bundle = office.issuer.bundle(new.certificate_ids[0])
    assert old_report.status.reason == "superseded"
    assert old_report.status.detail["by"]["ref"] == new_bundle.ref
    assert new_bundle.document.fields["address"] == "서울시 종로구 세종대로 110"
    assert office.desk.verify_pdf(office.issuer.pdf(new.certificate_ids[0]), now(office)).ok


def test_the_holder_sees_who_verified(office: Office) -> None:
    batch = office.issuer.issue(TYPE, PEOPLE[:1], batch_id="b-issue-3")
    bundle = office.issuer.bundle(batch.certificate_ids[0])
    office.desk.record("archive", bundle.ref, "job_application")
    log = office.desk.log(bundle.ref)
    assert [(e["agency"], e["purpose"]) for e in log["entries"]] == [("archive", "job_application")]
    with pytest.raises(CertificateDeskError) as refusal:
        office.desk.record("no-such-agency", bundle.ref, "job_application")
    assert refusal.value.reason == "recorder_unavailable"


def test_refusals_leave_the_register_clean(office: Office) -> None:
    with pytest.raises(TxFailed) as refusal:
        CertificateIssuer(office.ledger, "archive").issue(TYPE, PEOPLE, batch_id="b-archive")
    assert refusal.value.reason == "not_issuer"
    archive = CertificateIssuer(office.ledger, "archive")
    with closing(sqlite3.connect(archive.directory / "register.sqlite")) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone() == (0,)
    huge = [{f"field_{i}": "가" * 200 for i in range(16)}]
    with pytest.raises(CivicError) as too_large:
        office.issuer.issue(TYPE, huge, batch_id="b-huge")
    assert too_large.value.reason == "qr_too_large"
    with pytest.raises(CertificateIssuerError) as unknown:
        office.issuer.bundle("0" * 32)
    assert unknown.value.reason == "unknown_certificate"
    with pytest.raises(CertificateIssuerError) as empty:
        office.issuer.issue(TYPE, [])
    assert empty.value.reason == "bad_batch"
    with pytest.raises(CertificateDeskError):
        office.desk.batch("city-hall", "b-never")


def test_a_batch_of_ten_thousand_anchors_in_one_transaction(office: Office) -> None:
    people = [{"name": f"Resident {i}", "birth_date": "2000-01-01"} for i in range(10_000)]
    batch = office.issuer.issue(TYPE, people, batch_id="b-ten-thousand")
    assert batch.size == 10_000
    first = office.issuer.bundle(batch.certificate_ids[0])
    last = office.issuer.bundle(batch.certificate_ids[-1])
    assert len(first.proof.path) == 14
    assert office.desk.verify_qr(bundle_to_qr(first), now(office)).ok
    report = office.desk.verify_qr(bundle_to_qr(last), now(office))
    assert report.ok


def test_nothing_personal_reaches_the_ledger(office: Office) -> None:
    db = Path(office.layout.data_path) / "ledger.sqlite"
    candidates = list(Path(office.layout.data_path).glob("*.sqlite")) or [db]
    blob = b""
    for path in candidates:
        with closing(sqlite3.connect(path)) as conn:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                for row in conn.execute(f"SELECT * FROM {table}"):
                    blob += repr(row).encode() + b"".join(v for v in row if isinstance(v, bytes))
    assert blob
    for text in PERSONAL:
        assert text.encode() not in blob, text
        assert text.encode("unicode_escape") not in blob, text


class _LostReceipts:
    """The office's ledger, but the next ``anchor_batch`` has an unknown outcome: sent and
    committed with its receipt lost (``commit=True``), or never delivered (``commit=False``);
    both surface as ``NodeError``, as a timeout does."""

    def __init__(self, ledger: NodeLedger, *, commit: bool) -> None:
        self.inner, self.commit, self.city = ledger, commit, ledger.city
        self.armed = True

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.inner.query(contract, method, args)

    def head_time_ms(self) -> int:
        return self.inner.head_time_ms()

    def key(self, name: str) -> Any:
        return self.inner.key(name)

    def send_as(self, key: Any, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.inner.send_as(key, contract, method, args)

    def send(self, signer: str, contract: str, method: str, args: dict[str, Any]) -> Any:
        if self.armed and method == "anchor_batch":
            self.armed = False
            if self.commit:
                self.inner.send(signer, contract, method, args)
            raise NodeError("no receipt within 60 s")
        return self.inner.send(signer, contract, method, args)


@pytest.mark.parametrize("commit", [True, False])
def test_an_anchor_with_an_unknown_outcome_is_finished_later(office: Office, commit: bool) -> None:
    flaky = CertificateIssuer(_LostReceipts(office.ledger, commit=commit), "city-hall", font="core")
    batch_id = f"b-lost-{int(commit)}"
    with pytest.raises(NodeError):
        flaky.issue(TYPE, PEOPLE[:2], batch_id=batch_id)
    ids = [c["certificate_id"] for c in flaky.certificates(batch_id)]
    assert len(ids) == 2
    with pytest.raises(CertificateIssuerError) as pending:
        flaky.bundle(ids[0])
    assert pending.value.reason == "not_anchored"
    assert flaky.anchor_pending() == [batch_id]
    assert flaky.anchor_pending() == []
    report = office.desk.verify_pdf(flaky.pdf(ids[1]), now(office))
    assert report.ok, report.to_json()
