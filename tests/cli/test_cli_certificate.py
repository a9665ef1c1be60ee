"""``civic certificate`` in-process: issue from CSV with PDFs, verify (ok, altered, revoked,
superseded), record a verification and read the holder's log, show, and the refusals as one
error line each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import Civic, assert_one_error_line, new_runner

from civicledger.services.certificates.document import bundle_from_json, bundle_to_qr
from identity_samples import issuing_city

TYPE = "ResidenceCertificate"
CSV = "name,birth_date,address\n홍길동,1990-04-17,서울시 마포구\nKim Minji,1985-01-02,Seoul\n"


@pytest.fixture(scope="module")
def civic() -> Civic:
    return new_runner()


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-certs")
    issuing_city(root / "city", [("city-hall", TYPE)], more_agencies=["archive"])
    return root


def test_issue_verify_log_revoke_reissue(civic: Civic, city: Path) -> None:
    d = city / "city"
    people = city / "people.csv"
    people.write_text(CSV, encoding="utf-8")
    pdfs = city / "pdfs"
    issued = civic(
        "--dir",
        d,
        "certificate",
        "issue",
        TYPE,
        people,
        "--agency",
        "city-hall",
        "--batch-id",
        "b-cli",
        "--valid-days",
        "90",
        "--pdf-dir",
        pdfs,
    )
    assert issued.exit_code == 0, issued.output
    assert "anchored batch b-cli: 2 ResidenceCertificate" in issued.stdout
    first, second = issued.stdout.strip().splitlines()[1:3]
    good = pdfs / f"{first}.pdf"
    assert good.is_file()

    checked = civic("--dir", d, "certificate", "verify", good)
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.count("pass") == 3

    recorded = civic(
        "--dir", d, "certificate", "verify", good, "--record-as", "archive", "--purpose", "hiring"
    )
    assert recorded.exit_code == 0, recorded.output
    assert "recorded: archive verified it (hiring)" in recorded.stdout
    log = civic("--dir", d, "certificate", "log", good)
    assert log.exit_code == 0, log.output
    assert "1 verifications" in log.stdout
    assert "archive" in log.stdout
    assert "hiring" in log.stdout

    altered = city / "altered.pdf"
    altered.write_bytes(good.read_bytes() + b"%edited\n")
    assert_one_error_line(civic("--dir", d, "certificate", "verify", altered), "pdf_altered")

    resumed = civic("--dir", d, "certificate", "resume", "--agency", "city-hall")
    assert resumed.exit_code == 0, resumed.output
    assert "0 batch(es) anchored" in resumed.stdout
    shown = civic("--dir", d, "certificate", "show", first, "--agency", "city-hall")
    assert shown.exit_code == 0, shown.output
    bundle_json = json.loads(shown.stdout)
    assert bundle_json["document"]["fields"]["name"] == "홍길동"
    text = bundle_to_qr(bundle_from_json({k: bundle_json[k] for k in ("document", "proof")}))
    assert civic("--dir", d, "certificate", "verify", "--text", text).exit_code == 0

    revoked = civic(
        "--dir",
        d,
        "certificate",
        "revoke",
        first,
        "--agency",
        "city-hall",
        "--reason",
        "issued_in_error",
    )
    assert revoked.exit_code == 0, revoked.output
    result = civic("--dir", d, "certificate", "verify", good)
    assert_one_error_line(result, "revoked")
    assert "issued_in_error" in result.stdout

    reissued = civic(
        "--dir",
        d,
        "certificate",
        "reissue",
        second,
        "--agency",
        "city-hall",
        "--set",
        "address=Busan",
        "--pdf-dir",
        pdfs,
    )
    assert reissued.exit_code == 0, reissued.output
    new_id = reissued.stdout.split(" as ")[1].split()[0]
    assert_one_error_line(
        civic("--dir", d, "certificate", "verify", pdfs / f"{second}.pdf"), "superseded"
    )
    assert civic("--dir", d, "certificate", "verify", pdfs / f"{new_id}.pdf").exit_code == 0


def test_refusals(civic: Civic, city: Path) -> None:
    d = city / "city"
    people = city / "few.json"
    people.write_text(json.dumps([{"name": "A"}]), encoding="utf-8")
    refused = civic("--dir", d, "certificate", "issue", TYPE, people, "--agency", "archive")
    assert_one_error_line(refused, "not_issuer")
    assert_one_error_line(civic("--dir", d, "certificate", "verify"), "bad_input")
    bad = city / "bad.json"
    bad.write_text('{"name": 1}', encoding="utf-8")
    assert_one_error_line(
        civic("--dir", d, "certificate", "issue", TYPE, bad, "--agency", "city-hall"), "bad_input"
    )
    not_pdf = city / "x.pdf"
    not_pdf.write_bytes(b"%PDF-1.4 nothing here")
    assert_one_error_line(civic("--dir", d, "certificate", "verify", not_pdf), "bad_pdf")
    assert_one_error_line(
        civic("--dir", d, "certificate", "show", "0" * 32, "--agency", "city-hall"),
        "unknown_certificate",
    )
    assert_one_error_line(
        civic(
            "--dir",
            d,
            "certificate",
            "revoke",
            "0" * 32,
            "--agency",
            "city-hall",
            "--reason",
            "Bad Reason",
        ),
        "bad_reason",
    )
