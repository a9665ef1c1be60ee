"""The demo city's certificates part on a fresh demo Seoul: every step (the refusals shown on
purpose with their reasons), the sample PDFs, and a scan of the whole ledger for the holders'
personal data (``tests/ledger_scan.py``, as the other parts)."""

from __future__ import annotations

import time

import pytest

from civicledger.agency.certificate_desk import CertificateDesk
from civicledger.agency.ledger import CityLedger
from civicledger.city import CityDir
from civicledger.demo_certificates import PERSONAL, DemoCertificates, run_certificates
from civicledger.services.certificates.pdf import read_pdf
from conftest import DemoCityTemplate
from ledger_scan import found, ledger_blobs

EXPECTED = [
    ("root registers a residents' office, a university and a hiring desk", "ok", None),
    ("the office issues 1,000 residence certificates in one transaction", "ok", None),
    ("the university issues 3 graduation certificates", "ok", None),
    ("the hiring desk verifies 김서연's residence PDF and records it", "ok", None),
    ("an altered PDF (the address edited) is refused", "refused", "pdf_altered"),
    ("a forged certificate (never anchored) is refused", "refused", "not_in_batch"),
    ("the office revokes 박지훈's certificate (address changed)", "ok", None),
    ("the hiring desk is shown the revoked certificate", "refused", "revoked"),
    ("the office reissues 이민지's certificate with a corrected address", "ok", None),
    ("김서연 sees who verified her certificate", "ok", None),
    ("the university tries to issue a residence certificate", "refused", "not_issuer"),
]


@pytest.fixture(scope="module")
def demo(
    demo_city_template: DemoCityTemplate, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CityDir, DemoCertificates]:
    """The certificates part runs where the demo runs it: on the demo city after the help coin."""
    layout = demo_city_template.fresh(tmp_path_factory.mktemp("demo") / "seoul")
    return layout, run_certificates(layout)


def test_every_step(demo: tuple[CityDir, DemoCertificates]) -> None:
    _, part = demo
    assert [(s.title, s.outcome, s.reason) for s in part.steps] == EXPECTED
    assert part.log_count == 1
    assert "certificate-hiring (job_application)" in part.steps[9].detail
    # The two issues and the reissue's batch of one.
    assert {"residence-2026-001", "graduation-2026-02"} < set(part.batches)
    assert len(part.batches) == 3


def test_the_sample_pdfs_verify_as_the_steps_said(
    demo: tuple[CityDir, DemoCertificates],
) -> None:
    layout, part = demo
    ledger = CityLedger(layout)
    desk = CertificateDesk(ledger, layout.genesis().chain_id)
    now = int(time.time() * 1000)
    outcome = {name: desk.verify_pdf(path.read_bytes(), now) for name, path in part.pdfs.items()}
    assert outcome["good"].ok
    assert outcome["reissued"].ok
    assert outcome["altered"].integrity.reason == "pdf_altered"
    assert outcome["revoked"].status.reason == "revoked"
    assert outcome["superseded"].status.reason == "superseded"


def test_no_personal_data_on_the_demo_ledger(
    demo: tuple[CityDir, DemoCertificates],
) -> None:
    layout, part = demo
    ledger = ledger_blobs(layout)
    assert found(PERSONAL, ledger) == []
    # The scan sees what is there: the batch roots are public.
    assert found(list(part.batches.values()), ledger) == list(part.batches.values())
    # The holder's copy does hold it (in the PDF's embedded document).
    assert read_pdf(part.pdfs["good"].read_bytes())[0].document.fields["name"] == "김서연"
