"""The verifier's three verdicts against a real chain, for QR bundles and PDFs: genuine, forged
(never anchored), altered (document or PDF), wrong chain, revoked, superseded, expired."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from civicledger.agency.certificate_issuer import merkle_paths
from civicledger.contracts.governance import Governance
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.encoding import canonical_json, sha256
from civicledger.crypto.merkle import inclusion_ranges, root_from_leaf_hashes, verify_inclusion
from civicledger.errors import CivicError
from civicledger.node.chain import Chain
from civicledger.services.certificates import pdf as pdf_module
from civicledger.services.certificates.contract import Certificates
from civicledger.services.certificates.document import (
    MAX_QR_TEXT,
    MAX_TREE_SIZE,
    Bundle,
    CertificateDocument,
    CertificateFormatError,
    InclusionProof,
    bundle_from_qr,
    bundle_to_qr,
    certificate_leaf,
)
from civicledger.services.certificates.pdf import HANGUL_FONT, PdfError, read_pdf, render_pdf
from civicledger.services.certificates.verify import Report, verify_bundle, verify_pdf
from civicledger.services.identity.qr_image import decode_qr_image
from conftest import CHAIN_ID, GENESIS_TIME_MS, City, Ledger, make_city, ok

TYPE = "ResidenceCertificate"
T0 = GENESIS_TIME_MS + 86_400_000
DAY = 86_400_000
NOW = T0 + 10 * DAY


def document(index: int, **change: Any) -> CertificateDocument:
    fields = {
        "certificate_id": f"cert-{index:08d}",
        "certificate_type": TYPE,
        "issuer": "city-hall",
        "chain_id": CHAIN_ID,
        "issued_at_ms": T0,
        "valid_until_ms": T0 + 30 * DAY,
        "fields": {"name": f"Resident {index}", "address": "Seoul, Mapo-gu"},
        "salt": sha256(f"salt-{index}".encode()).hex()[:32],
    }
    return CertificateDocument(**{**fields, **change})


@dataclass
class Town:
    city: City
    ledger: Ledger
    bundles: list[Bundle]

    @property
    def chain(self) -> Chain:
        return self.ledger.chain

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.chain.query(contract, method, args)

    def check(self, bundle: Bundle, now_ms: int = NOW) -> Report:
        return verify_bundle(bundle, self.query, chain_id=CHAIN_ID, now_ms=now_ms)

    def check_pdf(self, data: bytes, now_ms: int = NOW) -> Report:
        return verify_pdf(data, self.query, chain_id=CHAIN_ID, now_ms=now_ms)


def anchor(
    ledger: Ledger, city: City, batch_id: str, docs: list[CertificateDocument]
) -> list[Bundle]:
    root, paths = merkle_paths([certificate_leaf(d) for d in docs])
    args = {
        "batch_id": batch_id,
        "root": root.hex(),
        "size": len(docs),
        "certificate_type": TYPE,
        "issued_at_ms": T0,
    }
    ok(ledger.send(city.clerk, "certificates", "anchor_batch", args, time_ms=T0 + 1000))
    return [
        Bundle(
            document=d,
            proof=InclusionProof(
                batch_id=batch_id, index=i, size=len(docs), path=[p.hex() for p in path]
            ),
        )
        for i, (d, path) in enumerate(zip(docs, paths, strict=True))
    ]


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    city = make_city(
        tmp_path_factory.mktemp("verify") / "city", ContractRegistry([Governance(), Certificates()])
    )
    chain = city.open_chain()
    ledger = Ledger(city, chain)
    grant = {"agency": "city-hall", "credential_type": TYPE}
    ok(ledger.send(city.root, "governance", "grant_issuer", grant, time_ms=T0))
    bundles = anchor(ledger, city, "b-main", [document(i) for i in range(5)])
    yield Town(city, ledger, bundles)
    chain.close()


def outcomes(report: Report) -> tuple[tuple[str, str | None], ...]:
    return tuple((v.outcome, v.reason) for v in (report.integrity, report.authority, report.status))


PASS = ("pass", None)
SKIPPED = ("not_checked", "integrity_failed")


# -- Merkle paths and the QR text -------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=300))
def test_every_path_leads_to_the_reference_root(size: int) -> None:
    leaves = [sha256(i.to_bytes(4, "big")) for i in range(size)]
    root, paths = merkle_paths(leaves)
    assert root == root_from_leaf_hashes(leaves)
    for index in {0, size // 2, size - 1}:
        verify_inclusion(leaves[index], index, size, paths[index], root)


def test_the_qr_text_round_trips_and_fits_a_large_document() -> None:
    fields = {f"field_{i}": "가" * 30 for i in range(6)}
    doc = document(1, fields=fields)
    bundle = Bundle(
        document=doc,
        proof=InclusionProof(batch_id="b-x", index=0, size=1_000_000, path=["ab" * 32] * 20),
    )
    text = bundle_to_qr(bundle)
    assert len(text) <= MAX_QR_TEXT
    assert bundle_from_qr(text) == bundle
    with pytest.raises(CertificateFormatError):
        bundle_from_qr(text[:-3] + "!!!")
    with pytest.raises(CertificateFormatError):
        bundle_from_qr("civic-pay:abc")
    too_big = document(1, fields={f"field_{i}": "가" * 200 for i in range(16)})
    big = Bundle(document=too_big, proof=bundle.proof)
    with pytest.raises(CertificateFormatError) as refusal:
        bundle_to_qr(big)
    assert refusal.value.reason == "qr_too_large"


# -- QR bundles ---------------------------------------------------------------------------------


def test_a_genuine_certificate_passes_all_three(town: Town) -> None:
    report = town.check(town.bundles[0])
    assert outcomes(report) == (PASS, PASS, PASS)
    assert report.ok
    assert report.status.detail["state"] == "valid"
    assert report.authority.detail == {"issuer": "city-hall", "at_time_ms": T0 + 1000}


def test_a_forged_certificate_fails_integrity(town: Town) -> None:
    genuine = town.bundles[1]
    forged_doc = document(1, fields={"name": "Someone Else", "address": "Seoul, Mapo-gu"})
    cases = {
        "not_in_batch": genuine.model_copy(update={"document": forged_doc}),
        "unknown_batch": genuine.model_copy(
            update={"proof": genuine.proof.model_copy(update={"batch_id": "b-never"})}
        ),
        "batch_mismatch": genuine.model_copy(update={"document": document(1, issued_at_ms=T0 + 1)}),
        "wrong_chain": genuine.model_copy(update={"document": document(1, chain_id="busan-1")}),
    }
    for reason, bundle in cases.items():
        assert outcomes(town.check(bundle)) == (("fail", reason), SKIPPED, SKIPPED), reason


def test_expiry_is_the_verifiers_clock_against_the_document(town: Town) -> None:
    bundle = town.bundles[2]
    assert town.check(bundle, now_ms=T0 + 30 * DAY - 1).status.ok
    report = town.check(bundle, now_ms=T0 + 30 * DAY)
    assert (report.status.outcome, report.status.reason) == ("fail", "expired")
    assert report.integrity.ok
    assert report.authority.ok


def test_a_revoked_and_a_superseded_certificate(town: Town) -> None:
    revoked, old = town.bundles[3], town.bundles[4]
    args = {"batch_id": "b-main", "ref": revoked.ref, "reason": "address_changed"}
    ok(town.ledger.send(town.city.clerk, "certificates", "revoke", args, time_ms=T0 + 2000))
    report = town.check(revoked)
    assert outcomes(report)[:2] == (PASS, PASS)
    assert (report.status.reason, report.status.detail["reason"]) == ("revoked", "address_changed")
    (new,) = anchor(town.ledger, town.city, "b-reissue", [document(99)])
    args = {"batch_id": "b-main", "ref": old.ref, "new_batch_id": "b-reissue", "new_ref": new.ref}
    ok(town.ledger.send(town.city.clerk, "certificates", "supersede", args, time_ms=T0 + 3000))
    report = town.check(old)
    assert report.status.reason == "superseded"
    assert report.status.detail["by"] == {"ref": new.ref, "batch_id": "b-reissue"}
    assert town.check(new).ok


def test_authority_fails_when_the_ledger_says_the_issuer_lacked_the_right(town: Town) -> None:
    """Unreachable through the contract (it refuses such anchors); the verifier still checks,
    as a replica of another implementation might not: a ledger view whose governance answers
    no."""

    def without_rights(contract: str, method: str, args: dict[str, Any]) -> Any:
        if (contract, method) == ("governance", "may_issue"):
            return False
        return town.query(contract, method, args)

    report = verify_bundle(town.bundles[0], without_rights, chain_id=CHAIN_ID, now_ms=NOW)
    assert outcomes(report) == (PASS, ("fail", "issuer_not_authorized"), PASS)


# -- PDFs ---------------------------------------------------------------------------------------


def test_a_genuine_pdf_passes_and_renders_deterministically(town: Town) -> None:
    data = render_pdf(town.bundles[0], "core")
    assert render_pdf(town.bundles[0], "core") == data
    bundle, font = read_pdf(data)
    assert (bundle, font) == (town.bundles[0], "core")
    report = town.check_pdf(data)
    assert outcomes(report) == (PASS, PASS, PASS)
    assert report.source == "pdf"


def _swap_attachment(data: bytes, bundle: Bundle) -> bytes:
    reader = PdfReader(io.BytesIO(data))
    writer = PdfWriter(clone_from=reader)
    writer._root_object.pop("/Names", None)  # Drop the forged attachment.
    attachment = {"bundle": bundle.to_json(), "render": {"version": 1, "font": "core"}}
    writer.add_attachment("certificate.json", canonical_json(attachment))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_an_altered_pdf_fails_integrity_but_still_names_its_document(town: Town) -> None:
    genuine = render_pdf(town.bundles[0], "core")
    at = genuine.index(b"stream\n") + 30  # Inside the page's (compressed) content stream.
    flipped = genuine[:at] + bytes([genuine[at] ^ 0x01]) + genuine[at + 1 :]
    # A forger's copy: the visible name changed, the genuine bundle embedded.
    fake = document(1, fields={"name": "Kim Forger", "address": "Seoul, Mapo-gu"})
    forged = render_pdf(town.bundles[1].model_copy(update={"document": fake}), "core")
    altered_text = _swap_attachment(forged, town.bundles[1])
    for data in (altered_text, flipped, genuine + b"\n% appended\n"):
        report = town.check_pdf(data)
        assert report.integrity.reason == "pdf_altered"
        assert report.authority.ok
        assert report.status.ok
    assert read_pdf(altered_text)[0] == town.bundles[1]


def test_a_forged_pdf_that_was_never_anchored_fails_integrity(town: Town) -> None:
    fake = Bundle(
        document=document(7),
        proof=InclusionProof(batch_id="b-main", index=0, size=5, path=town.bundles[0].proof.path),
    )
    report = town.check_pdf(render_pdf(fake, "core"))
    assert outcomes(report) == (("fail", "not_in_batch"), SKIPPED, SKIPPED)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a pdf", "bad_pdf"),
        (b"%PDF-1.4 garbage", "bad_pdf"),
        (b"%PDF-" + b"0" * (2 * 1024 * 1024), "too_large"),
    ],
)
def test_files_that_are_no_certificate(town: Town, data: bytes, reason: str) -> None:
    with pytest.raises(CivicError) as refusal:
        town.check_pdf(data)
    assert refusal.value.reason == reason


def test_a_pdf_without_a_certificate(town: Town) -> None:
    pdf = FPDF()
    pdf.add_page()
    with pytest.raises(PdfError) as refusal:
        town.check_pdf(bytes(pdf.output()))
    assert refusal.value.reason == "no_certificate"


@pytest.mark.skipif(not HANGUL_FONT.is_file(), reason="the Nanum font is not installed")
def test_the_hangul_rendering_verifies_too(town: Town) -> None:
    data = render_pdf(town.bundles[0], "nanum")
    assert read_pdf(data)[1] == "nanum"
    assert town.check_pdf(data).ok


def test_the_printed_qr_code_carries_the_bundle(town: Town) -> None:
    reader = PdfReader(io.BytesIO(render_pdf(town.bundles[0], "core")))
    (image,) = reader.pages[0].images
    assert bundle_from_qr(decode_qr_image(image.data)) == town.bundles[0]
    text = reader.pages[0].extract_text()
    assert "Resident 0" in text
    assert town.bundles[0].ref in text


def test_a_hangul_pdf_cannot_be_checked_without_the_font(
    town: Town, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A verifier must render with the issuer's font: without it the PDF is not compared (the
    QR code still is)."""
    if not HANGUL_FONT.is_file():
        pytest.skip("the Nanum font is not installed")
    data = render_pdf(town.bundles[0], "nanum")
    monkeypatch.setattr(pdf_module, "HANGUL_FONT", tmp_path / "missing.ttf")
    assert pdf_module.default_font_mode() == "core"
    with pytest.raises(PdfError) as refusal:
        town.check_pdf(data)
    assert refusal.value.reason == "cannot_render"


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True),
        st.text(min_size=1, max_size=30),
        max_size=4,
    ),
    st.integers(min_value=1, max_value=MAX_TREE_SIZE),
)
def test_any_document_round_trips_through_the_qr_text(fields: dict[str, str], size: int) -> None:
    doc = document(3, fields=fields)
    depth = len(inclusion_ranges(size - 1, size))
    proof = InclusionProof(batch_id="b-any", index=size - 1, size=size, path=["cd" * 32] * depth)
    bundle = Bundle(document=doc, proof=proof)
    assert bundle_from_qr(bundle_to_qr(bundle)) == bundle
    assert certificate_leaf(bundle_from_qr(bundle_to_qr(bundle)).document) == certificate_leaf(doc)
