"""``/api/v1/certificates`` over real HTTP: verify a PDF or a QR text (genuine, altered, forged,
revoked), record a verification with a desk token and read it in the holder's log, read
batches, download an issued PDF; every refusal is problem+json with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from api_helpers import assert_problem

from civicledger.agency.certificate_issuer import CertificateIssuer, IssuedBatch
from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import NodeLedger
from civicledger.agency.tokens import create_token
from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, load_key
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.certificates.document import bundle_to_qr
from civicledger.services.certificates.pdf import MAX_PDF_BYTES
from identity_samples import issuing_city

TYPE = "GraduationCertificate"
PDF = {"content-type": "application/pdf"}


@dataclass
class Served:
    http: httpx.Client
    issuer: CertificateIssuer
    batch: IssuedBatch
    hall_token: str
    archive_token: str

    def pdf(self, index: int) -> bytes:
        return self.issuer.pdf(self.batch.certificate_ids[index])

    def verify_pdf(self, data: bytes, **params: str) -> httpx.Response:
        return self.http.post(
            "/api/v1/certificates/verify/pdf", content=data, headers=PDF, params=params
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("api-certs")
    layout = issuing_city(root / "city", [("city-hall", TYPE)], more_agencies=["archive"])
    now = datetime.now(UTC)
    hall_token, _ = create_token(layout, "city-hall", "certificates desk", now)
    archive_token, _ = create_token(layout, "archive", "hiring desk", now)
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        ledger = NodeLedger(layout, node)
        issuer = CertificateIssuer(ledger, "city-hall", font="core")
        people = [
            {"name": f"Graduate {i}", "degree": "BSc", "school": "Seoul Univ."} for i in range(3)
        ]
        batch = issuer.issue(TYPE, people, batch_id="b-grad-2026")
        issuer.revoke(batch.certificate_ids[2], "degree_withdrawn")
        app = create_app(node, identity=IdentityDesk(ledger, domain="https://certs.example"))
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
            yield Served(http, issuer, batch, hall_token, archive_token)


def verdicts(body: dict[str, object]) -> list[tuple[object, object]]:
    return [(body[k]["outcome"], body[k]["reason"]) for k in ("integrity", "authority", "status")]  # type: ignore[index]


def test_a_genuine_pdf_gets_three_passes_and_records_nothing(served: Served) -> None:
    answer = served.verify_pdf(served.pdf(0))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert verdicts(body) == [("pass", None)] * 3
    assert body["ok"] is True
    assert body["recorded"] is None
    assert body["certificate"]["fields"]["name"] == "Graduate 0"
    log = served.http.get(f"/api/v1/certificates/log/{body['ref']}").json()
    assert log == {"entries": [], "count": 0, "next": None}


def test_altered_forged_and_revoked(served: Served) -> None:
    genuine = served.pdf(1)
    altered = served.verify_pdf(genuine + b"%tampered\n").json()
    assert verdicts(altered)[0] == ("fail", "pdf_altered")
    revoked = served.verify_pdf(served.pdf(2)).json()
    assert verdicts(revoked) == [("pass", None), ("pass", None), ("fail", "revoked")]
    assert revoked["status"]["detail"]["reason"] == "degree_withdrawn"
    bundle = served.issuer.bundle(served.batch.certificate_ids[1])
    forged = bundle.model_copy(
        update={"document": bundle.document.model_copy(update={"fields": {"name": "Mallory"}})}
    )
    qr = served.http.post("/api/v1/certificates/verify/qr", json={"text": bundle_to_qr(forged)})
    assert verdicts(qr.json()) == [
        ("fail", "not_in_batch"),
        ("not_checked", "integrity_failed"),
        ("not_checked", "integrity_failed"),
    ]
    good = served.http.post("/api/v1/certificates/verify/qr", json={"text": bundle_to_qr(bundle)})
    assert good.json()["ok"] is True
    assert good.json()["source"] == "qr"


def _forged_qr(served: Served) -> str:
    bundle = served.issuer.bundle(served.batch.certificate_ids[1])
    fields = {"name": "Mallory"}
    forged = bundle.model_copy(
        update={"document": bundle.document.model_copy(update={"fields": fields})}
    )
    return bundle_to_qr(forged)


def test_an_agency_records_its_check_and_the_holder_sees_it(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.archive_token}"}
    answer = served.http.post(
        "/api/v1/certificates/verify/pdf",
        content=served.pdf(1),
        headers={**PDF, **auth},
        params={"purpose": "job_application"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["recorded"]["agency"] == "archive"
    log = served.http.get(f"/api/v1/certificates/log/{body['ref']}").json()
    assert [(e["agency"], e["purpose"]) for e in log["entries"]] == [("archive", "job_application")]
    tampered = served.http.post(
        "/api/v1/certificates/verify/qr",
        json={"text": _forged_qr(served)},
        headers=auth,
        params={"purpose": "job_application"},
    ).json()
    assert tampered["integrity"]["outcome"] == "fail"
    assert tampered["recorded"] is None
    # The tampered copy names the genuine certificate's reference; its log did not grow.
    assert tampered["ref"] == body["ref"]
    assert served.http.get(f"/api/v1/certificates/log/{body['ref']}").json()["count"] == 1
    no_purpose = served.http.post(
        "/api/v1/certificates/verify/pdf", content=served.pdf(1), headers={**PDF, **auth}
    )
    assert_problem(no_purpose, 422, "validation")
    bad_token = {"Authorization": "Bearer nope"}
    assert_problem(
        served.http.post(
            "/api/v1/certificates/verify/pdf", content=served.pdf(1), headers={**PDF, **bad_token}
        ),
        401,
        "unauthenticated",
    )


def test_reads_and_the_issuer_download(served: Served) -> None:
    batch = served.http.get("/api/v1/certificates/batches/city-hall/b-grad-2026").json()
    assert (batch["size"], batch["root"], batch["certificate_type"]) == (3, served.batch.root, TYPE)
    listed = served.http.get("/api/v1/certificates/batches/city-hall").json()
    assert [b["batch_id"] for b in listed] == ["b-grad-2026"]
    assert_problem(
        served.http.get("/api/v1/certificates/batches/city-hall/b-nope"), 404, "unknown_batch"
    )
    certificate_id = served.batch.certificate_ids[0]
    hall = {"Authorization": f"Bearer {served.hall_token}"}
    pdf = served.http.get(f"/api/v1/certificates/issued/{certificate_id}.pdf", headers=hall)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert served.verify_pdf(pdf.content).json()["ok"] is True
    archive = {"Authorization": f"Bearer {served.archive_token}"}
    other = served.http.get(f"/api/v1/certificates/issued/{certificate_id}.pdf", headers=archive)
    assert_problem(other, 404, "unknown_certificate")
    assert_problem(
        served.http.get(f"/api/v1/certificates/issued/{certificate_id}.pdf"), 401, "unauthenticated"
    )


@pytest.mark.parametrize(
    ("content", "headers", "status", "reason"),
    [
        (b"hello", PDF, 400, "bad_pdf"),
        (b"%PDF-1.7\n", {"content-type": "image/png"}, 415, "unsupported_media_type"),
        # Over the API's default 64 KiB body limit, under the upload path's own limit.
        (b"%PDF-" + b"0" * (1024 * 1024), PDF, 400, "bad_pdf"),
        (b"%PDF-" + b"0" * MAX_PDF_BYTES, PDF, 413, "payload_too_large"),
    ],
)
def test_pdf_refusals(
    served: Served, content: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    answer = served.http.post("/api/v1/certificates/verify/pdf", content=content, headers=headers)
    assert_problem(answer, status, reason)


def test_qr_refusals(served: Served) -> None:
    assert_problem(
        served.http.post("/api/v1/certificates/verify/qr", json={"text": "civic-pay:x"}),
        400,
        "bad_certificate",
    )
    assert_problem(
        served.http.post("/api/v1/certificates/verify/qr", json={"text": "x" * 3000}),
        422,
        "validation",
    )
    assert_problem(served.http.get("/api/v1/certificates/log/not-a-ref"), 422, "validation")
