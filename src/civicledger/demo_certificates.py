"""The demo city's anti-forgery certificates (증명서 발급 / 위·변조), end to end: plain functions
that return data.

Runs on any demo Seoul after ``run_scenario`` (it needs only root and the node key; it registers
its own agencies, all named ``certificate-*``). Root registers a residents' service office, a
university and a hiring desk, and gives the first two the issuer right for their certificate
type; the office issues 1,000 residence certificates in one anchoring transaction, the
university 3 graduation certificates; the hiring desk verifies a PDF (three verdicts) and
records that it did; an altered PDF and a forged certificate are refused; the office revokes
one certificate and reissues another; the holder reads who verified hers; the university may
not issue residence certificates. Sample PDFs are written to ``<city>/certificates/demo/`` to
try on the portal's verify page.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypdf import PdfReader, PdfWriter

from civicledger.agency.certificate_desk import CertificateDesk
from civicledger.agency.certificate_issuer import CertificateIssuer
from civicledger.agency.ledger import CityLedger
from civicledger.city import CityDir
from civicledger.demo_steps import PartStep, run_step
from civicledger.errors import CivicError
from civicledger.services.certificates.document import Bundle, InclusionProof
from civicledger.services.certificates.pdf import render_pdf
from civicledger.services.certificates.verify import Report

__all__ = ["OFFICE", "DemoCertificates", "run_certificates"]

OFFICE = "certificate-office"
UNIVERSITY = "certificate-university"
HIRING = "certificate-hiring"
RESIDENCE = "ResidenceCertificate"
GRADUATION = "GraduationCertificate"
BATCH_SIZE = 1_000
_YEAR_MS = 365 * 86_400_000
_AGENCIES = (
    (OFFICE, "망원동 주민센터 Mangwon-dong residents' service office (demo)"),
    (UNIVERSITY, "서울시립대학교 University of Seoul (demo)"),
    (HIRING, "서울시 인사과 Seoul city hiring desk (demo)"),
)
_RESIDENTS = (
    {"name": "김서연", "birth_date": "1994-03-08", "address": "서울시 마포구 망원로 12"},
    {"name": "박지훈", "birth_date": "1988-11-21", "address": "서울시 마포구 월드컵로 45"},
    {"name": "이민지", "birth_date": "2000-06-30", "address": "서울시 마포구 포은로 7"},
)
_GRADUATES = (
    {
        "name": "김서연",
        "degree": "공학사 BEng",
        "school": "서울시립대학교",
        "graduated_on": "2017-02-20",
    },
    {
        "name": "최유나",
        "degree": "문학사 BA",
        "school": "서울시립대학교",
        "graduated_on": "2019-02-22",
    },
    {
        "name": "정하준",
        "degree": "이학사 BSc",
        "school": "서울시립대학교",
        "graduated_on": "2021-02-19",
    },
)
PERSONAL = ("김서연", "박지훈", "이민지", "최유나", "정하준", "망원로 12", "1994-03-08")
"""Strings a privacy scan of the demo ledger must never find."""


@dataclass
class DemoCertificates:
    steps: list[PartStep] = field(default_factory=list)
    batches: dict[str, str] = field(default_factory=dict)
    """Batch id -> its Merkle root (hex)."""
    pdfs: dict[str, Path] = field(default_factory=dict)
    """Sample PDFs: ``good``, ``altered``, ``revoked``, ``superseded``, ``reissued``."""
    log_count: int = -1


def run_certificates(layout: CityDir, *, passphrase: str | None = None) -> DemoCertificates:
    """Run the certificates part of the demo; raises if a step that must work does not."""
    return _Flow(layout, passphrase).run()


def _refuse_unless_ok(report: Report) -> str:
    for verdict in (report.integrity, report.authority, report.status):
        if not verdict.ok:
            raise CivicError(
                f"the certificate did not verify: {verdict.reason}", reason=str(verdict.reason)
            )
    return "integrity, issuer authority and status: all pass"


class _Flow:
    def __init__(self, layout: CityDir, passphrase: str | None) -> None:
        self.layout = layout
        self.ledger = CityLedger(layout, passphrase)
        self.desk = CertificateDesk(self.ledger, layout.genesis().chain_id)
        self.office = CertificateIssuer(self.ledger, OFFICE)
        self.university = CertificateIssuer(self.ledger, UNIVERSITY)
        self.out = DemoCertificates()
        self.directory = layout.root / "certificates" / "demo"
        self.ids: dict[str, str] = {}

    def step(self, title: str, action: Callable[[], str], *, refused: bool = False) -> None:
        run_step("certificates", self.out.steps, title, action, refused=refused)

    def now(self) -> int:
        return int(time.time() * 1000)

    def run(self) -> DemoCertificates:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.step(
            "root registers a residents' office, a university and a hiring desk", self._agencies
        )
        self.step(
            f"the office issues {BATCH_SIZE:,} residence certificates in one transaction",
            self._issue_residence,
        )
        self.step("the university issues 3 graduation certificates", self._issue_graduation)
        self.step(
            "the hiring desk verifies 김서연's residence PDF and records it", self._verify_good
        )
        self.step(
            "an altered PDF (the address edited) is refused", self._verify_altered, refused=True
        )
        self.step(
            "a forged certificate (never anchored) is refused", self._verify_forged, refused=True
        )
        self.step("the office revokes 박지훈's certificate (address changed)", self._revoke)
        self.step(
            "the hiring desk is shown the revoked certificate", self._verify_revoked, refused=True
        )
        self.step(
            "the office reissues 이민지's certificate with a corrected address", self._reissue
        )
        self.step("김서연 sees who verified her certificate", self._log)
        self.step(
            "the university tries to issue a residence certificate",
            self._wrong_issuer,
            refused=True,
        )
        return self.out

    def _agencies(self) -> str:
        keystore = self.layout.keystore
        for agency_id, name in _AGENCIES:
            if agency_id not in keystore.names():
                keystore.create(agency_id)
            agency = {"id": agency_id, "name": name, "keys": [keystore.public(agency_id).did]}
            self.ledger.send("root", "governance", "register_agency", agency)
        for agency_id, kind in ((OFFICE, RESIDENCE), (UNIVERSITY, GRADUATION)):
            grant = {"agency": agency_id, "credential_type": kind}
            self.ledger.send("root", "governance", "grant_issuer", grant)
        return f"{OFFICE}: {RESIDENCE}; {UNIVERSITY}: {GRADUATION}; {HIRING} verifies"

    def _save(self, name: str, data: bytes) -> None:
        path = self.directory / f"{name}.pdf"
        path.write_bytes(data)
        self.out.pdfs[name] = path

    def _issue_residence(self) -> str:
        people = [*_RESIDENTS]
        people += [
            {"name": f"주민 {i:04d}", "birth_date": "1990-01-01", "address": "서울시 마포구"}
            for i in range(len(people), BATCH_SIZE)
        ]
        started = time.monotonic()
        batch = self.office.issue(
            RESIDENCE, people, batch_id="residence-2026-001", valid_until_ms=self.now() + _YEAR_MS
        )
        took = time.monotonic() - started
        self.ids.update(zip(("seoyeon", "jihoon", "minji"), batch.certificate_ids, strict=False))
        self.out.batches[batch.batch_id] = batch.root
        self._save("good", self.office.pdf(self.ids["seoyeon"]))
        return f"root {batch.root[:16]}… at block {batch.height} ({took:.2f} s for {batch.size:,})"

    def _issue_graduation(self) -> str:
        batch = self.university.issue(GRADUATION, list(_GRADUATES), batch_id="graduation-2026-02")
        self.out.batches[batch.batch_id] = batch.root
        return f"root {batch.root[:16]}… at block {batch.height}"

    def _verify_good(self) -> str:
        report = self.desk.verify_pdf(self.out.pdfs["good"].read_bytes(), self.now())
        detail = _refuse_unless_ok(report)
        self.desk.record(HIRING, report.ref, "job_application")
        return detail + "; recorded (job_application)"

    def _verify_altered(self) -> str:
        bundle = self.office.bundle(self.ids["seoyeon"])
        fields = {**bundle.document.fields, "address": "서울시 강남구 압구정로 1"}
        edited = bundle.model_copy(
            update={"document": bundle.document.model_copy(update={"fields": fields})}
        )
        # A forger edits the visible address but keeps the genuine embedded document.
        data = _with_attachment_of(render_pdf(edited), self.office.pdf(self.ids["seoyeon"]))
        self._save("altered", data)
        return _refuse_unless_ok(self.desk.verify_pdf(data, self.now()))

    def _verify_forged(self) -> str:
        genuine = self.office.bundle(self.ids["seoyeon"])
        fields = {**genuine.document.fields, "name": "홍길동"}
        forged = Bundle(
            document=genuine.document.model_copy(update={"fields": fields}),
            proof=InclusionProof(
                batch_id=genuine.proof.batch_id,
                index=genuine.proof.index,
                size=genuine.proof.size,
                path=genuine.proof.path,
            ),
        )
        return _refuse_unless_ok(self.desk.verify_pdf(render_pdf(forged), self.now()))

    def _revoke(self) -> str:
        record = self.office.revoke(self.ids["jihoon"], "address_changed")
        self._save("revoked", self.office.pdf(self.ids["jihoon"]))
        return f"status revoked at block {record['height']} (the ledger gets a salted reference)"

    def _verify_revoked(self) -> str:
        report = self.desk.verify_pdf(self.out.pdfs["revoked"].read_bytes(), self.now())
        return _refuse_unless_ok(report)

    def _reissue(self) -> str:
        old = self.ids["minji"]
        batch = self.office.reissue(old, {"address": "서울시 마포구 포은로 7-1"})
        self.out.batches[batch.batch_id] = batch.root
        self._save("superseded", self.office.pdf(old))
        self._save("reissued", self.office.pdf(batch.certificate_ids[0]))
        report = self.desk.verify_pdf(self.out.pdfs["superseded"].read_bytes(), self.now())
        if report.status.reason != "superseded":
            raise CivicError("the old certificate is not superseded", reason="demo_error")
        return f"old: superseded; new: {batch.certificate_ids[0][:12]}… in {batch.batch_id}"

    def _log(self) -> str:
        ref = self.office.bundle(self.ids["seoyeon"]).ref
        log: dict[str, Any] = self.desk.log(ref)
        self.out.log_count = int(log["count"])
        who = ", ".join(f"{e['agency']} ({e['purpose']})" for e in log["entries"])
        return f"{log['count']} verification(s): {who}"

    def _wrong_issuer(self) -> str:
        self.university.issue(RESIDENCE, [_RESIDENTS[0]], batch_id="residence-bogus")
        return "issued"


def _with_attachment_of(visible: bytes, genuine: bytes) -> bytes:
    """``visible``'s pages with ``genuine``'s embedded certificate: what a forger who edits
    the text of a real PDF produces."""
    attachment = PdfReader(io.BytesIO(genuine)).attachments["certificate.json"][0]
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(visible)))
    writer._root_object.pop("/Names", None)
    writer.add_attachment("certificate.json", attachment)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()
