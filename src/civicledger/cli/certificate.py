"""``civic certificate``: issue certificates in Merkle batches (from CSV or JSON), write their
PDFs, resume an interrupted anchoring, revoke, reissue, verify a PDF or a QR text, read who
verified a certificate, show one.

Runs against the city directory's ledger with the agency's keystore key (named like the
agency). The logic is in ``civicledger.agency.certificate_issuer`` and
``civicledger.services.certificates``; see docs/certificates.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from civicledger.agency.certificate_desk import CertificateDesk
from civicledger.agency.certificate_issuer import CertificateIssuer
from civicledger.agency.ledger import CityLedger
from civicledger.cli._common import out, passphrase_from_env, state
from civicledger.errors import CivicError
from civicledger.services.certificates.document import REF_PATTERN
from civicledger.services.certificates.pdf import read_pdf
from civicledger.services.certificates.verify import Report
from civicledger.services.identity.qr_image import decode_qr_image

app = typer.Typer(
    help="Anti-forgery certificates: issue in batches, revoke, reissue, verify, log.",
    no_args_is_help=True,
)

_DAY_MS = 86_400_000
_MAX_INPUT_BYTES = 64 * 1024 * 1024
_Agency = Annotated[
    str, typer.Option(metavar="AGENCY", help="The issuing agency (its keystore key).")
]
_PassphraseEnv = Annotated[
    str | None,
    typer.Option(metavar="VAR", help="Passphrase of encrypted keys, from this variable."),
]
_CertificateId = Annotated[str, typer.Argument(metavar="CERTIFICATE_ID")]


def _ledger(ctx: typer.Context, passphrase_env: str | None) -> CityLedger:
    return CityLedger(state(ctx).city.require(), passphrase_from_env(passphrase_env))


def _holders(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV (header = field names) or a JSON list of objects of strings."""
    data = path.read_bytes()
    if len(data) > _MAX_INPUT_BYTES:
        raise CivicError(f"{path} is over 64 MiB", reason="bad_input")
    text = data.decode("utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            rows: Any = json.loads(text)
        except ValueError as e:
            raise CivicError(f"{path}: not JSON: {e}", reason="bad_input") from e
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and all(isinstance(v, str) for v in r.values()) for r in rows
    ):
        raise CivicError(f"{path}: expected a list of objects of strings", reason="bad_input")
    return [{k: v for k, v in r.items() if v} for r in rows]


def _write_pdfs(issuer: CertificateIssuer, ids: tuple[str, ...], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for certificate_id in ids:
        (directory / f"{certificate_id}.pdf").write_bytes(issuer.pdf(certificate_id))


@app.command("issue")
def issue(
    ctx: typer.Context,
    certificate_type: Annotated[str, typer.Argument(metavar="TYPE")],
    holders: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", exists=True, dir_okay=False, help="CSV (header: field names) or JSON."
        ),
    ],
    agency: _Agency,
    valid_days: Annotated[
        int | None, typer.Option(min=1, max=36_500, help="Days until the documents expire.")
    ] = None,
    batch_id: Annotated[str | None, typer.Option(help="The batch's id (default: random).")] = None,
    pdf_dir: Annotated[
        Path | None, typer.Option("--pdf-dir", help="Write each document's PDF here.")
    ] = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Issue one certificate per row of FILE and anchor them in one transaction."""
    issuer = CertificateIssuer(_ledger(ctx, passphrase_env), agency)
    now = int(time.time() * 1000)
    until = None if valid_days is None else now + valid_days * _DAY_MS
    batch = issuer.issue(
        certificate_type, _holders(holders), valid_until_ms=until, batch_id=batch_id
    )
    if pdf_dir is not None:
        _write_pdfs(issuer, batch.certificate_ids, pdf_dir)
    out().print(
        f"anchored batch {batch.batch_id}: {batch.size} {certificate_type} at block "
        f"{batch.height}, root {batch.root}"
    )
    for certificate_id in batch.certificate_ids[:20]:
        out().print(certificate_id)
    if batch.size > 20:
        out().print(f"... and {batch.size - 20} more")


@app.command("resume")
def resume(ctx: typer.Context, agency: _Agency, passphrase_env: _PassphraseEnv = None) -> None:
    """Finish batches whose anchoring timed out (anchored already: marked; else anchored)."""
    done = CertificateIssuer(_ledger(ctx, passphrase_env), agency).anchor_pending()
    out().print(f"{len(done)} batch(es) anchored: {', '.join(done) or '-'}")


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    certificate_id: _CertificateId,
    agency: _Agency,
    reason: Annotated[str, typer.Option(help="A reason code, e.g. issued_in_error.")],
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Revoke a certificate the agency issued (the ledger gets its reference and the reason)."""
    record = CertificateIssuer(_ledger(ctx, passphrase_env), agency).revoke(certificate_id, reason)
    out().print(f"revoked {certificate_id} ({reason}) at block {record['height']}")


@app.command("reissue")
def reissue(
    ctx: typer.Context,
    certificate_id: _CertificateId,
    agency: _Agency,
    set_fields: Annotated[
        list[str] | None, typer.Option("--set", metavar="FIELD=VALUE", help="A changed field.")
    ] = None,
    pdf_dir: Annotated[Path | None, typer.Option("--pdf-dir")] = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Issue a corrected copy and mark the old certificate superseded by it."""
    changes: dict[str, str] = {}
    for item in set_fields or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise CivicError(f"--set {item!r}: expected FIELD=VALUE", reason="bad_input")
        changes[name] = value
    issuer = CertificateIssuer(_ledger(ctx, passphrase_env), agency)
    batch = issuer.reissue(certificate_id, changes)
    if pdf_dir is not None:
        _write_pdfs(issuer, batch.certificate_ids, pdf_dir)
    out().print(f"reissued {certificate_id} as {batch.certificate_ids[0]} (batch {batch.batch_id})")


def _print_report(report: Report) -> None:
    table = Table("check", "outcome", "reason", title=f"certificate {report.ref}")
    for name in ("integrity", "authority", "status"):
        verdict = getattr(report, name)
        table.add_row(name, verdict.outcome, verdict.reason or "")
    out().print(table)
    doc = report.bundle.document
    out().print(
        f"{doc.certificate_type} issued by {doc.issuer}, batch {report.bundle.proof.batch_id}"
    )
    if report.status.detail.get("reason"):
        out().print(f"status reason: {report.status.detail['reason']}")


@app.command("verify")
def verify(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(metavar="FILE", dir_okay=False, help="A certificate PDF or a QR image."),
    ] = None,
    text: Annotated[str | None, typer.Option(help="The QR text (civic-cert:...).")] = None,
    record_as: Annotated[
        str | None, typer.Option(metavar="AGENCY", help="Record the check as this agency's.")
    ] = None,
    purpose: Annotated[str | None, typer.Option(help="Why (with --record-as).")] = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Check a certificate: integrity, issuer authority at issue time, status. Exit 1 (with the
    first failing reason) unless all three pass."""
    if (file is None) == (text is None):
        raise CivicError("give a FILE or --text, not both", reason="bad_input")
    ledger = _ledger(ctx, passphrase_env)
    desk = CertificateDesk(ledger, ledger.city.genesis().chain_id)
    now = int(time.time() * 1000)
    if file is not None:
        data = file.read_bytes()
        if data.startswith(b"%PDF-"):
            report = desk.verify_pdf(data, now)
        else:
            report = desk.verify_qr(decode_qr_image(data), now)
    else:
        report = desk.verify_qr(text or "", now)
    _print_report(report)
    if record_as is not None:
        if purpose is None:
            raise CivicError("--record-as needs --purpose", reason="bad_input")
        if report.integrity.ok:
            entry = desk.record(record_as, report.ref, purpose)
            out().print(f"recorded: {record_as} verified it ({purpose}) at block {entry['height']}")
        else:
            out().print("not recorded: the document's integrity failed")
    if not report.ok:
        failed = next(v for v in (report.integrity, report.authority, report.status) if not v.ok)
        raise CivicError("the certificate did not verify", reason=failed.reason or "failed")


@app.command("log")
def log(
    ctx: typer.Context,
    certificate: Annotated[
        str, typer.Argument(metavar="REF_OR_PDF", help="The reference number, or the PDF.")
    ],
) -> None:
    """Who verified a certificate and when (the holder's view)."""
    ref = certificate.strip().lower()
    if re.fullmatch(REF_PATTERN, ref) is None:
        ref = read_pdf(Path(certificate).read_bytes())[0].ref
    ledger = CityLedger(state(ctx).city.require())
    found = CertificateDesk(ledger, ledger.city.genesis().chain_id).log(ref, limit=1000)
    table = Table("#", "agency", "purpose", "time (UTC)", title=f"{found['count']} verifications")
    for entry in found["entries"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry["time_ms"] // 1000))
        table.add_row(str(entry["seq"]), entry["agency"], entry["purpose"], when)
    out().print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    certificate_id: _CertificateId,
    agency: _Agency,
    pdf: Annotated[Path | None, typer.Option(help="Write the certificate's PDF here.")] = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """One certificate from the agency's register: the document, its proof, its reference."""
    issuer = CertificateIssuer(_ledger(ctx, passphrase_env), agency)
    bundle = issuer.bundle(certificate_id)
    out().print(json.dumps({**bundle.to_json(), "ref": bundle.ref}, ensure_ascii=False, indent=2))
    if pdf is not None:
        pdf.write_bytes(issuer.pdf(certificate_id))
        out().print(f"wrote {pdf}")
