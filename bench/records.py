"""Certificates anchored per second in batches of 10,000, and verifications per second, against
this machine's raw SHA-256 and Ed25519 rates measured in the same run.

On a fresh city whose registry office holds the issuer right, prints:
- the raw single-core rates: SHA-256 of a 300-byte message (hashlib), Ed25519 verify (libsodium);
- certificates issued per second through ``agency.certificate_issuer`` in batches of 10,000:
  building the documents (random ids and salts), leaf hashes, the Merkle tree and every
  inclusion path, the register (SQLite), and one ``anchor_batch`` transaction per batch
  committed by the embedded node; the ratio to the raw SHA-256 rate (a certificate costs about
  two SHA-256 compressions of the tree plus its share of everything else);
- verifications per second of QR bundles (parse, leaf, path, three ledger reads) and of PDFs
  (read the attachment, re-render, compare; core font and Hangul font), and their ratio to
  the raw Ed25519 verify rate (a useful unit: a verification costs this many signature
  checks).

Usage: python bench/records.py [--batches 3] [--verify 2000] [--pdfs 40]
Figures are printed, never asserted: timings vary with the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from ledger_throughput import raw_verify_rate

from civicledger.agency.certificate_desk import CertificateDesk
from civicledger.agency.certificate_issuer import CertificateIssuer
from civicledger.agency.ledger import CityLedger, NodeLedger
from civicledger.city import NODE_KEY, AgencySpec, create_city, load_key
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.certificates.document import bundle_to_qr
from civicledger.services.certificates.pdf import HANGUL_FONT, render_pdf

BATCH = 10_000
OFFICE = "registry-office"
TYPE = "ResidenceCertificate"


def raw_sha256_rate(count: int = 200_000) -> float:
    """Single-core SHA-256 digests per second of a 300-byte message (about a leaf's size)."""
    messages = [os.urandom(300) for _ in range(1000)]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for i in range(count):
            hashlib.sha256(messages[i % 1000]).digest()
        best = max(best, count / (time.perf_counter() - start))
    return best


def _people(batch: int) -> list[dict[str, str]]:
    return [
        {"name": f"Resident {batch}-{i}", "birth_date": "1990-01-01", "address": "Seoul"}
        for i in range(BATCH)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3, help="batches of 10,000 to issue")
    parser.add_argument("--verify", type=int, default=2000, help="QR verifications to time")
    parser.add_argument("--pdfs", type=int, default=40, help="PDF verifications to time")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    sha = raw_sha256_rate()
    ed = raw_verify_rate()
    rows: list[tuple[str, str, str]] = [
        ("raw SHA-256 (300 B), single core", f"{sha:,.0f}/s", "baseline"),
        ("raw Ed25519 verify, single core", f"{ed:,.0f}/s", "baseline"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        layout = create_city(
            Path(tmp) / "city",
            city="Bench City",
            chain_id="bench-records",
            agencies=[AgencySpec(OFFICE, "Registry Office")],
        )
        CityLedger(layout).send(
            "root", "governance", "grant_issuer", {"agency": OFFICE, "credential_type": TYPE}
        )
        with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
            ledger = NodeLedger(layout, node)
            issuer = CertificateIssuer(ledger, OFFICE, font="core")
            desk = CertificateDesk(ledger, node.chain.chain_id)
            people = [_people(b) for b in range(args.batches)]
            ids: list[str] = []
            start = time.perf_counter()
            for b in range(args.batches):
                batch = issuer.issue(TYPE, people[b], batch_id=f"bench-{b:04d}")
                ids.extend(batch.certificate_ids)
            took = time.perf_counter() - start
            issued = args.batches * BATCH
            rate = issued / took
            rows.append(
                (
                    f"certificates issued+anchored, {args.batches} batches of {BATCH:,}",
                    f"{rate:,.0f}/s",
                    f"{rate / sha:.3f} of raw SHA-256; {took / args.batches:.2f} s a batch",
                )
            )
            step = max(1, len(ids) // args.verify)
            texts = [bundle_to_qr(issuer.bundle(i)) for i in ids[::step][: args.verify]]
            now = int(time.time() * 1000)
            start = time.perf_counter()
            for text in texts:
                assert desk.verify_qr(text, now).ok
            qr_rate = len(texts) / (time.perf_counter() - start)
            rows.append(
                (
                    f"QR verifications ({len(texts):,}, 3 ledger reads each)",
                    f"{qr_rate:,.0f}/s",
                    f"{qr_rate / ed:.3f} of raw Ed25519 verify",
                )
            )
            fonts = ["core"] + (["nanum"] if HANGUL_FONT.is_file() else [])
            for font in fonts:
                pdfs = [
                    render_pdf(issuer.bundle(i), font)  # type: ignore[arg-type]
                    for i in ids[:: max(1, len(ids) // args.pdfs)][: args.pdfs]
                ]
                start = time.perf_counter()
                for data in pdfs:
                    assert desk.verify_pdf(data, now).ok
                pdf_rate = len(pdfs) / (time.perf_counter() - start)
                rows.append(
                    (
                        f"PDF verifications ({len(pdfs)}, re-render with the {font} font)",
                        f"{pdf_rate:,.1f}/s",
                        f"{pdf_rate / ed:.5f} of raw Ed25519 verify",
                    )
                )
    print(f"\n{'measure':<62} {'figure':>12}  ratio")
    for label, figure, note in rows:
        print(f"{label:<62} {figure:>12}  {note}")


if __name__ == "__main__":
    main()
