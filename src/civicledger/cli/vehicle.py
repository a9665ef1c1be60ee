"""``civic vehicle``: a used car's history and its escrowed sale.

The registry's, stations', shops', insurers' and bank's transactions and the parties' offers,
acceptances and withdrawals, each signed with a keystore key (``--key``); the record, the
history, the printable report (PDF with its QR code) and verifying a report by its QR payload.
Runs against the city directory's ledger, or a running node with ``civic vehicle --node URL``
(keys still come from the city directory's keystore; reads and proofs over HTTP).

Documents (inspection records, repair orders, claims) are given as a file, whose SHA-256 goes on
the ledger, or as that digest; bank references and creditors' records are hashed here, so no
account number or name reaches the ledger. The logic is in the ``vehicles`` contract and
``civicledger.agency.vehicle_desk``; see docs/vehicles.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from civicledger.agency.ledger import LedgerAccess
from civicledger.agency.vehicle_desk import VehicleDesk
from civicledger.agency.vehicle_report import report_html, report_lines, report_pdf
from civicledger.city import load_key
from civicledger.cli._common import out, passphrase_from_env, state
from civicledger.cli._ledger import ledger_access
from civicledger.crypto.encoding import sha256
from civicledger.errors import CivicError
from civicledger.services.identity.qr_image import decode_qr_image
from civicledger.services.vehicles.contract import CONTRACT_NAME

app = typer.Typer(
    help="Used cars: register, inspect, repair, accidents, liens, sell in escrow, report.",
    no_args_is_help=True,
)

_Vin = Annotated[str, typer.Argument(metavar="VIN", help="The vehicle's VIN.")]
_Key = Annotated[str, typer.Option("--key", metavar="NAME", help="Keystore key that signs.")]
_Km = Annotated[int | None, typer.Option("--km", help="The odometer reading (km).")]
_Sale = Annotated[int, typer.Argument(metavar="SALE", help="The sale's number.")]
_Pass = Annotated[
    str | None,
    typer.Option("--passphrase-env", metavar="VAR", help="Passphrase of encrypted keys, from VAR."),
]
_HEX = re.compile(r"^[0-9a-f]{64}$")


@app.callback()
def main(
    ctx: typer.Context,
    node: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Use a running node's API instead of the city directory."),
    ] = None,
) -> None:
    """Used cars: history, escrowed sale, reports."""
    ctx.meta["vehicle_node"] = node


def _access(
    ctx: typer.Context, passphrase: str | None = None
) -> AbstractContextManager[LedgerAccess]:
    """The ledger: the city directory's, or the ``--node`` given to ``civic vehicle``."""
    return ledger_access(ctx, ctx.meta.get("vehicle_node"), passphrase)


@contextmanager
def _desk(ctx: typer.Context) -> Iterator[VehicleDesk]:
    with _access(ctx) as ledger:
        yield VehicleDesk(ledger, state(ctx).city.genesis().chain_id)


def _digest(value: str, what: str) -> str:
    """A document's digest: given as 64 hex digits, or the SHA-256 of the file at ``value``."""
    if _HEX.fullmatch(value):
        return value
    path = Path(value)
    if not path.is_file():
        raise CivicError(f"{what}: give a file or its SHA-256 (64 hex)", reason="bad_digest")
    return sha256(path.read_bytes()).hex()


def _reference(kind: str, text: str) -> str:
    """An off-ledger reference (a bank's, a creditor's) as the ledger holds it: hashed."""
    return sha256(f"civicledger/vehicle/{kind}\0{text}".encode()).hex()


def _send(
    ctx: typer.Context, key: str, method: str, args: dict[str, Any], passphrase_env: str | None
) -> None:
    """Sign ``vehicles.METHOD`` with keystore key ``key``, send it, print the result."""
    passphrase = passphrase_from_env(passphrase_env)
    signer = load_key(state(ctx).city.require().keystore, key, passphrase)
    with _access(ctx, passphrase) as ledger:
        result = ledger.send_as(signer, CONTRACT_NAME, method, args)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))


def _with_km(args: dict[str, Any], km: int | None) -> dict[str, Any]:
    return args if km is None else {**args, "odometer_km": km}


# -- the registry --


@app.command("register")
def register(
    ctx: typer.Context,
    vin: _Vin,
    owner: Annotated[str, typer.Option(metavar="DID", help="The first owner's did:key.")],
    make: Annotated[str, typer.Option(help="Maker code, e.g. hyundai.")],
    year: Annotated[int, typer.Option(help="Model year.")],
    key: _Key,
    fuel: Annotated[
        str, typer.Option(help="gasoline, diesel, lpg, hybrid, electric…")
    ] = "gasoline",
    km: Annotated[int, typer.Option("--km", help="The odometer reading (km).")] = 0,
    passphrase_env: _Pass = None,
) -> None:
    """Register VIN with its first owner (registry)."""
    args = {"vin": vin, "owner": owner, "make": make, "model_year": year, "fuel": fuel}
    _send(ctx, key, "register", {**args, "odometer_km": km}, passphrase_env)


@app.command("transfer")
def transfer(
    ctx: typer.Context,
    vin: _Vin,
    to: Annotated[str, typer.Option("--to", metavar="DID", help="The new owner's did:key.")],
    key: _Key,
    sale: Annotated[
        int | None, typer.Option(help="Settle this sale (releases the payment).")
    ] = None,
    km: _Km = None,
    passphrase_env: _Pass = None,
) -> None:
    """Record an ownership transfer; with --sale, settle that sale (registry)."""
    args: dict[str, Any] = {"vin": vin, "new_owner": to}
    if sale is not None:
        args["sale_id"] = sale
    _send(ctx, key, "transfer", _with_km(args, km), passphrase_env)


def _encumber(
    ctx: typer.Context, method: str, vin: str, ident: str, holder: str, key: str, env: str | None
) -> None:
    args = {"vin": vin, "encumbrance_id": ident, "holder_hash": _reference("holder", holder)}
    _send(ctx, key, method, args, env)


_Ident = Annotated[str, typer.Argument(metavar="ID", help="The lien's or seizure's id.")]
_Holder = Annotated[
    str, typer.Option(help="The creditor's or authority's record (hashed before it is sent).")
]


@app.command("lien")
def lien(
    ctx: typer.Context,
    vin: _Vin,
    ident: _Ident,
    holder: _Holder,
    key: _Key,
    passphrase_env: _Pass = None,
) -> None:
    """Record a lien on VIN (registry)."""
    _encumber(ctx, "lien", vin, ident, holder, key, passphrase_env)


@app.command("seize")
def seize(
    ctx: typer.Context,
    vin: _Vin,
    ident: _Ident,
    holder: _Holder,
    key: _Key,
    passphrase_env: _Pass = None,
) -> None:
    """Record a seizure of VIN (registry)."""
    _encumber(ctx, "seize", vin, ident, holder, key, passphrase_env)


@app.command("release")
def release(
    ctx: typer.Context, vin: _Vin, ident: _Ident, key: _Key, passphrase_env: _Pass = None
) -> None:
    """Release a lien or seizure (registry)."""
    _send(ctx, key, "release", {"vin": vin, "encumbrance_id": ident}, passphrase_env)


# -- stations, shops, insurers --


@app.command("inspect")
def inspect(
    ctx: typer.Context,
    vin: _Vin,
    km: Annotated[int, typer.Option("--km", help="The odometer reading (km).")],
    record: Annotated[str, typer.Option(metavar="FILE|SHA256", help="The inspection record.")],
    key: _Key,
    kind: Annotated[
        str, typer.Option(help="performance (성능·상태점검) or periodic.")
    ] = "performance",
    passphrase_env: _Pass = None,
) -> None:
    """Record an inspection with its odometer reading (inspection station)."""
    args = {"vin": vin, "odometer_km": km, "record_hash": _digest(record, "--record"), "kind": kind}
    _send(ctx, key, "inspect", args, passphrase_env)


@app.command("repair")
def repair(
    ctx: typer.Context,
    vin: _Vin,
    work: Annotated[str, typer.Option(metavar="FILE|SHA256", help="The repair order.")],
    key: _Key,
    part: Annotated[list[str] | None, typer.Option(help="A replaced part's code.")] = None,
    km: _Km = None,
    passphrase_env: _Pass = None,
) -> None:
    """Record a repair (repair shop)."""
    args = {"vin": vin, "work_hash": _digest(work, "--work"), "parts": part or []}
    _send(ctx, key, "repair", _with_km(args, km), passphrase_env)


@app.command("cluster")
def cluster(
    ctx: typer.Context,
    vin: _Vin,
    before: Annotated[int, typer.Option(help="The old cluster's last reading (km).")],
    after: Annotated[int, typer.Option(help="The new cluster's first reading (km).")],
    work: Annotated[str, typer.Option(metavar="FILE|SHA256", help="The repair order.")],
    key: _Key,
    passphrase_env: _Pass = None,
) -> None:
    """Record an instrument-cluster replacement: the one legitimate odometer reset."""
    args = {
        "vin": vin,
        "work_hash": _digest(work, "--work"),
        "before_km": before,
        "after_km": after,
    }
    _send(ctx, key, "replace_cluster", args, passphrase_env)


@app.command("accident")
def accident(
    ctx: typer.Context,
    vin: _Vin,
    kind: Annotated[str, typer.Option(help="collision, flood, fire, theft or total_loss.")],
    claim: Annotated[str, typer.Option(metavar="FILE|SHA256", help="The insurance claim.")],
    key: _Key,
    paid: Annotated[int, typer.Option(help="What the insurer paid (KRW).")] = 0,
    km: _Km = None,
    passphrase_env: _Pass = None,
) -> None:
    """Record an accident (insurer)."""
    args = {"vin": vin, "kind": kind, "claim_hash": _digest(claim, "--claim"), "paid_krw": paid}
    _send(ctx, key, "accident", _with_km(args, km), passphrase_env)


# -- the sale --


@app.command("offer")
def offer(
    ctx: typer.Context,
    vin: _Vin,
    buyer: Annotated[str, typer.Option(metavar="DID", help="The buyer's did:key.")],
    price: Annotated[int, typer.Option(help="The price (KRW).")],
    disclosure: Annotated[
        str, typer.Option(metavar="FILE|SHA256", help="The performance inspection record.")
    ],
    key: Annotated[str, typer.Option("--key", metavar="NAME", help="The owner's keystore key.")],
    passphrase_env: _Pass = None,
) -> None:
    """Offer VIN to one buyer, disclosing its inspection record (the owner)."""
    args = {
        "vin": vin,
        "buyer": buyer,
        "price": price,
        "disclosure_hash": _digest(disclosure, "--disclosure"),
    }
    _send(ctx, key, "offer", args, passphrase_env)


@app.command("accept")
def accept(ctx: typer.Context, sale: _Sale, key: _Key, passphrase_env: _Pass = None) -> None:
    """Accept an offer (the buyer)."""
    _send(ctx, key, "accept", {"sale_id": sale}, passphrase_env)


@app.command("deposit")
def deposit(
    ctx: typer.Context,
    sale: _Sale,
    amount: Annotated[int, typer.Option(help="The amount held (KRW): the price.")],
    bank_ref: Annotated[str, typer.Option(help="The bank's reference (hashed before sending).")],
    key: _Key,
    passphrase_env: _Pass = None,
) -> None:
    """Attest the buyer's deposit held in escrow (custodian bank)."""
    args = {"sale_id": sale, "amount": amount, "bank_reference": _reference("bank", bank_ref)}
    _send(ctx, key, "deposit", args, passphrase_env)


@app.command("cancel")
def cancel(ctx: typer.Context, sale: _Sale, key: _Key, passphrase_env: _Pass = None) -> None:
    """Withdraw before settlement (seller, buyer or registry); a held payment is refunded."""
    _send(ctx, key, "cancel", {"sale_id": sale}, passphrase_env)


@app.command("confirm")
def confirm(
    ctx: typer.Context,
    order: Annotated[int, typer.Argument(metavar="ORDER", help="The payout or refund order.")],
    bank_ref: Annotated[str, typer.Option(help="The bank's reference (hashed before sending).")],
    key: _Key,
    passphrase_env: _Pass = None,
) -> None:
    """Confirm a payout or refund order was paid (the bank holding the payment)."""
    args = {"order_id": order, "bank_reference": _reference("bank", bank_ref)}
    _send(ctx, key, "confirm_order", args, passphrase_env)


# -- reading --


@app.command("show")
def show(ctx: typer.Context, vin: _Vin) -> None:
    """The vehicle's record, as JSON."""
    with _desk(ctx) as desk:
        typer.echo(json.dumps(dict(desk.vehicle(vin)), ensure_ascii=False, indent=2))


@app.command("history")
def history(
    ctx: typer.Context,
    vin: _Vin,
    after: Annotated[int, typer.Option(help="Events after this number.")] = 0,
    limit: Annotated[int, typer.Option(help="How many events.")] = 100,
) -> None:
    """A page of the vehicle's events, oldest first, as JSON."""
    with _desk(ctx) as desk:
        desk.vehicle(vin)
        page = desk.events(vin, after=after, limit=limit)
    typer.echo(json.dumps(page, ensure_ascii=False, indent=2))


@app.command("report")
def report(
    ctx: typer.Context,
    vin: _Vin,
    count: Annotated[int | None, typer.Option(help="Report the first COUNT events.")] = None,
    pdf: Annotated[
        Path | None, typer.Option(metavar="FILE", dir_okay=False, help="Write the printable PDF.")
    ] = None,
    html_file: Annotated[
        Path | None,
        typer.Option("--html", metavar="FILE", dir_okay=False, help="Write a printable HTML page."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    lang: Annotated[str, typer.Option(help="ko or en.")] = "en",
) -> None:
    """The history report: owners counted, mileage with flags, accidents; its QR payload."""
    with _desk(ctx) as desk:
        found = desk.report(vin, count=count)
    if pdf is not None:
        pdf.write_bytes(report_pdf(found, found.qr_payload))
    if html_file is not None:
        html_file.write_text(report_html(found, found.qr_payload, lang), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(found.to_json(), ensure_ascii=False, indent=2))
        return
    for line in report_lines(found, lang):
        out().print(line)
    out().print(f"QR: {found.qr_payload}")


@app.command("verify-report")
def verify_report(
    ctx: typer.Context,
    payload: Annotated[
        str | None, typer.Argument(metavar="PAYLOAD", help="The report's QR text.")
    ] = None,
    qr: Annotated[
        Path | None, typer.Option(metavar="IMAGE", exists=True, help="A photo of the QR code.")
    ] = None,
) -> None:
    """Verify a printed report against the ledger (exit 1 with the reason if not authentic)."""
    if qr is not None and payload is None:
        text = decode_qr_image(qr.read_bytes())
    elif payload is not None and qr is None:
        text = payload
    else:
        raise CivicError("give the report's QR text or --qr IMAGE", reason="bad_request")
    with _desk(ctx) as desk:
        check = desk.verify(text.strip())
    out().print(
        f"authentic: {check.claim.vin}, {check.claim.count} events; "
        f"{check.newer_events} newer since"
    )
