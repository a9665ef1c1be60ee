"""The portal's certificate pages over a real served city: the verify page takes a PDF, a photo
of its QR code or the pasted QR text and shows the three verdicts separately (in Korean and
English, with translated reasons); the holder's log page lists who verified a certificate."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from portal_helpers import html_lang

from civicledger.agency.certificate_issuer import CertificateIssuer
from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import NodeLedger
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, load_key
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.certificates.document import bundle_to_qr
from civicledger.services.identity.qr_image import qr_png
from civicledger.web import create_site
from civicledger.web.certificates import VERIFY_PATH
from identity_samples import issuing_city

TYPE = "ResidenceCertificate"
HOSTILE = "<script>alert(1)</script>"


@dataclass
class CertCity:
    """A served city whose city hall issued three residence certificates: ``good``, ``revoked``
    (reason ``address_changed``) and ``hostile`` (a field holding markup)."""

    url: str
    issuer: CertificateIssuer
    ids: dict[str, str]
    pdfs: dict[str, bytes]
    ledger: NodeLedger

    def altered(self) -> bytes:
        """The good PDF with one byte of its page content changed."""
        data = self.pdfs["good"]
        at = data.index(b"stream\n") + 30
        return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@contextmanager
def served_certificate_city(root: Path) -> Iterator[CertCity]:
    layout = issuing_city(root / "city", [("city-hall", TYPE)], more_agencies=["archive"])
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        ledger = NodeLedger(layout, node)
        issuer = CertificateIssuer(ledger, "city-hall")
        people = [
            {"name": "홍길동", "birth_date": "1990-04-17", "address": "서울시 마포구 월드컵로 1"},
            {"name": "이서연", "birth_date": "2001-12-31", "address": "서울시 강남구 테헤란로 5"},
            {"name": HOSTILE, "birth_date": "1999-09-09"},
        ]
        batch = issuer.issue(TYPE, people, batch_id="b-portal", valid_until_ms=4_102_444_800_000)
        ids = dict(zip(("good", "revoked", "hostile"), batch.certificate_ids, strict=True))
        issuer.revoke(ids["revoked"], "address_changed")
        pdfs = {name: issuer.pdf(cid) for name, cid in ids.items()}
        desk = IdentityDesk(ledger, domain="https://certs.portal.example")
        with BackgroundServer(create_site(node, identity=desk)) as server:
            yield CertCity(server.url, issuer, ids, pdfs, ledger)


@dataclass
class Town:
    city: CertCity
    client: httpx.Client

    def verify(
        self, file: tuple[str, bytes, str] | None = None, text: str = "", lang: str = "en"
    ) -> str:
        files = {"file": file} if file else {"file": ("", b"", "application/octet-stream")}
        answer = self.client.post(
            VERIFY_PATH, params={"lang": lang}, data={"text": text}, files=files
        )
        assert answer.status_code == 200, answer.text[:2000]
        assert html_lang(answer.text) == lang
        return answer.text


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    with (
        served_certificate_city(tmp_path_factory.mktemp("cert-portal")) as city,
        httpx.Client(base_url=city.url, timeout=60) as client,
    ):
        yield Town(city, client)


def verdict(page: str, name: str) -> tuple[str, str]:
    found = re.search(
        rf'id="verdict-{name}" data-outcome="([a-z_]+)" data-reason="([a-z_]*)"', page
    )
    assert found is not None, name
    return found.group(1), found.group(2)


def verdicts(page: str) -> list[tuple[str, str]]:
    return [verdict(page, n) for n in ("integrity", "authority", "status")]


def test_the_verify_page_in_korean_and_english(town: Town) -> None:
    ko = town.client.get("/certificates").text
    assert html_lang(ko) == "ko"
    assert "증명서 위·변조 확인" in ko
    en = town.client.get("/certificates", params={"lang": "en"}).text
    assert "Verify a certificate" in en
    assert 'id="verify-form"' in en


def test_a_good_pdf_passes_all_three(town: Town) -> None:
    page = town.verify(("good.pdf", town.city.pdfs["good"], "application/pdf"), lang="ko")
    assert verdicts(page) == [("pass", "")] * 3
    assert 'data-ok="true"' in page
    assert "확인됨" in page
    assert '<dt>성명</dt><dd class="field" data-field="name">홍길동</dd>' in page
    assert page.index('data-field="name"') < page.index('data-field="birth_date"')
    assert 'data-state="valid"' in page


def test_an_altered_pdf_fails_integrity(town: Town) -> None:
    page = town.verify(("altered.pdf", town.city.altered(), "application/pdf"))
    assert verdict(page, "integrity") == ("fail", "pdf_altered")
    assert "its visible text or its content was changed" in page
    assert 'data-ok="false"' in page


def test_a_revoked_pdf_shows_its_reason(town: Town) -> None:
    page = town.verify(("revoked.pdf", town.city.pdfs["revoked"], "application/pdf"), lang="ko")
    assert verdicts(page)[:2] == [("pass", "")] * 2
    assert verdict(page, "status") == ("fail", "revoked")
    assert "발급기관이 이 증명서를 취소했습니다." in page
    assert '<code id="status-reason">address_changed</code>' in page


def test_the_qr_code_as_text_or_as_a_photo(town: Town) -> None:
    text = bundle_to_qr(town.city.issuer.bundle(town.city.ids["good"]))
    assert verdicts(town.verify(text=text)) == [("pass", "")] * 3
    photo = town.verify(("qr.png", qr_png(text), "image/png"))
    assert verdicts(photo) == [("pass", "")] * 3
    assert 'data-source="qr"' in photo


def test_markup_in_a_field_is_shown_as_text(town: Town) -> None:
    page = town.verify(("h.pdf", town.city.pdfs["hostile"], "application/pdf"))
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("file", "text", "reason"),
    [
        (None, "", "bad_request"),
        (("x.pdf", b"%PDF-1.4 nothing", "application/pdf"), "", "bad_pdf"),
        (("x.png", b"not an image", "image/png"), "", "bad_qr_image"),
        (("x.pdf", b"%PDF-1.4", "application/pdf"), "civic-cert:x", "bad_request"),
        (None, "civic-cert:AAAA", "bad_certificate"),
    ],
)
def test_inputs_that_are_no_certificate(
    town: Town, file: tuple[str, bytes, str] | None, text: str, reason: str
) -> None:
    page = town.verify(file, text)
    assert f'data-reason="{reason}"' in page
    assert 'id="refusal"' in page


def test_the_holder_sees_who_verified(town: Town) -> None:
    bundle = town.city.issuer.bundle(town.city.ids["good"])
    town.city.ledger.send(
        "archive", "certificates", "record_verification", {"ref": bundle.ref, "purpose": "hiring"}
    )
    page = town.client.get("/certificates/log", params={"ref": bundle.ref, "lang": "en"}).text
    assert 'data-count="1"' in page
    assert '<tr data-agency="archive">' in page
    assert "<code>hiring</code>" in page
    bad = town.client.get("/certificates/log", params={"ref": "nope"}).text
    assert 'id="bad-ref"' in bad
    empty = town.client.get("/certificates/log", params={"ref": "0" * 64}).text
    assert 'data-count="0"' in empty
