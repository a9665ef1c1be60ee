"""``civic demo``: a demo Seoul, created, exercised, proven and verified in a few seconds.

The scenario itself is ``civicledger.demo``; this module only prints it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Protocol

import typer
from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from civicledger.agency.desk import node_desk
from civicledger.agency.tokens import create_token
from civicledger.api.server import BackgroundServer, listen, serve, socket_url
from civicledger.city import NODE_KEY, CityDir, load_key
from civicledger.cli import _render
from civicledger.cli._common import out, state
from civicledger.cli.ledger import verify_with_progress
from civicledger.cli.node import DEFAULT_HOST, DEFAULT_PORT, Host
from civicledger.demo import (
    DemoActivity,
    DemoProofs,
    DemoSummary,
    Step,
    consistency_base,
    create_demo_city,
    proof_target,
    prove,
    run_scenario,
    summarize,
)
from civicledger.demo_certificates import DemoCertificates, run_certificates
from civicledger.demo_currency import DemoCurrency, run_currency
from civicledger.demo_donations import DemoDonations, run_donations
from civicledger.demo_identity import DemoIdentity, run_identity
from civicledger.demo_vehicles import DemoVehicles, run_vehicles
from civicledger.demo_voting import DemoVoting, run_voting
from civicledger.demo_works import DemoWorks, run_works
from civicledger.node.embedded import EmbeddedNode
from civicledger.web.site import create_site


def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Create the demo city here and keep it [default: a temporary dir]."
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary city directory afterwards.")
    ] = False,
    serve_portal: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Afterwards, serve the API and portal on HOST:PORT until Ctrl-C.",
        ),
    ] = True,
    host: Host = DEFAULT_HOST,
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="TCP port; if taken, a free one is used (0: always a free one)."
        ),
    ] = DEFAULT_PORT,
    serve_seconds: Annotated[
        float | None,
        typer.Option(min=0, metavar="SECONDS", help="Stop serving after this long."),
    ] = None,
) -> None:
    """Run a demo city (Seoul): transactions, proofs, verification, then its live portal."""
    cli = state(ctx)
    chosen = directory or (cli.dir if cli.dir_given else None)
    console = out()
    with _demo_root(chosen, keep) as root:
        layout = create_demo_city(root)
        genesis = layout.genesis()
        console.print(Rule(f"CivicLedger demo: {genesis.city}"))
        console.print(
            f"created city {genesis.chain_id} in {layout.root}: "
            "keys root, node, city-hall, gangnam-gu, mapo-gu; genesis.json; block 0"
        )

        console.print(Rule("transactions"))
        steps = run_scenario(layout)
        _print_steps(console, steps)

        console.print(Rule("identity"))
        _print_identity(console, run_identity(layout))

        console.print(Rule("polls (mVoting)"))
        _print_voting(console, run_voting(layout))

        console.print(Rule("local currency (help coin)"))
        _print_currency(console, run_currency(layout))

        console.print(Rule("certificates (anti-forgery documents)"))
        _print_certificates(console, run_certificates(layout))

        console.print(Rule("used cars (vehicle history and trade)"))
        _print_vehicles(console, run_vehicles(layout))

        console.print(Rule("donations (fund-flow history)"))
        _print_donations(console, run_donations(layout))

        console.print(Rule("public works (direct payment of subcontractors)"))
        _print_works(console, run_works(layout))

        console.print(Rule("the ledger"))
        _print_summary(console, summarize(layout))

        console.print(Rule("proofs, checked offline against genesis.json"))
        target = proof_target(steps)
        proofs = prove(layout, target.tx_id, old_height=consistency_base(steps))
        _print_proofs(console, proofs)

        console.print(Rule("full chain verification (civic verify)"))
        _render.verify_report(console, verify_with_progress(layout))

        if chosen is not None or keep:
            _print_next_steps(console, layout, target.tx_id)
        if serve_portal:
            _serve(console, layout, host, port, serve_seconds)


def _serve(console: Console, layout: CityDir, host: str, port: int, seconds: float | None) -> None:
    """Serve the demo city's node, API and portal while a little activity keeps it moving."""
    sock = listen(host, port, any_port_if_taken=True)
    url = socket_url(sock)
    # A desk token so the reader can issue and revoke from the portal's identity pages.
    desk_token, _ = create_token(layout, "city-hall", "demo desk", datetime.now(UTC))
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        activity = DemoActivity(node, layout).start()
        try:
            console.print(Rule("the portal"))
            console.print(
                _render.fields(
                    [
                        ("portal", f"{url}/"),
                        ("verify a proof", f"{url}/verify"),
                        ("identity", f"{url}/identity (present, verify, issue, revoke)"),
                        ("desk token", f"{desk_token} (city hall; for issue and revoke)"),
                        ("polls", f"{url}/polls (live dashboards)"),
                        ("currency", f"{url}/currency (help coin)"),
                        ("certificates", f"{url}/certificates (verify a PDF or QR code)"),
                        ("used cars", f"{url}/vehicles (history reports)"),
                        ("donations", f"{url}/donations (trace a donation)"),
                        ("public works", f"{url}/works (direct payment)"),
                        ("API", f"{url}/api/v1 (OpenAPI: {url}/docs)"),
                        ("metrics", f"{url}/metrics"),
                    ]
                )
            )
            console.print("city hall anchors a record every 2 s. Ctrl-C stops the demo.")
            console.file.flush()  # the URL must show now, even when stdout is a pipe
            site = create_site(node, identity=node_desk(layout, node, served_at=url))
            if seconds is None:
                serve(site, sock)
            else:
                with BackgroundServer(site, sock=sock):
                    time.sleep(seconds)
        finally:
            activity.stop()
    console.print(f"stopped; {activity.sent} more records were anchored while serving")


@contextmanager
def _demo_root(chosen: Path | None, keep: bool) -> Iterator[Path]:
    """The city directory: ``chosen`` (always kept) or a new temporary one (removed unless kept)."""
    if chosen is not None:
        yield chosen
        return
    scratch = Path(tempfile.mkdtemp(prefix="civic-demo-"))
    try:
        yield scratch / "seoul"
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)


def _print_steps(console: Console, steps: list[Step]) -> None:
    table = Table("#", "step", "signer", "outcome", "block", "detail")
    for number, step in enumerate(steps, 1):
        if step.outcome == "ok" and step.receipt is not None:
            detail = ", ".join(f"{e.contract}.{e.name}" for e in step.receipt.events)
        else:
            detail = f"{step.reason}: {step.message}"
        table.add_row(
            str(number),
            step.title,
            step.signer,
            _render.status_text(step.outcome),
            str(step.receipt.height) if step.receipt else "-",
            detail,
        )
    console.print(table)
    ok = sum(step.outcome == "ok" for step in steps)
    console.print(
        f"{ok} ok, {len(steps) - ok} not: a failed transaction is recorded with its reason and "
        "changes no state; a rejected one is not recorded at all"
    )


class _DemoStep(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def detail(self) -> str: ...


def _print_part(console: Console, steps: Sequence[_DemoStep], footer: str) -> None:
    """One part of the demo (identity, polls, currency): its steps, then what stays off the
    ledger."""
    table = Table("#", "step", "outcome", "detail")
    for number, step in enumerate(steps, 1):
        detail = step.detail if step.reason is None else f"{step.reason}: {step.detail}"
        table.add_row(str(number), step.title, _render.status_text(step.outcome), detail)
    console.print(table)
    console.print(footer)


def _print_identity(console: Console, identity: DemoIdentity) -> None:
    _print_part(
        console,
        identity.steps,
        f"wallets (did:key, personal data) in {identity.wallets}: off the ledger, which holds "
        "only DID documents, issuer grants and status-list digests",
    )


def _print_voting(console: Console, voting: DemoVoting) -> None:
    _print_part(
        console,
        voting.steps,
        "the ledger holds per-poll pseudonyms and voting keys, never who voted; secret ballots "
        "are encrypted to the trustees' joint key, which no one holds",
    )


def _print_currency(console: Console, currency: DemoCurrency) -> None:
    _print_part(
        console,
        currency.steps,
        "holders' accounts are per-currency wallet keys; the ledger never sees who holds them",
    )


def _print_certificates(console: Console, certificates: DemoCertificates) -> None:
    pdfs = next(iter(certificates.pdfs.values())).parent if certificates.pdfs else None
    _print_part(
        console,
        certificates.steps,
        "the ledger holds each batch's Merkle root and salted references, never a document; "
        f"sample PDFs to upload at /certificates are in {pdfs}",
    )


def _print_vehicles(console: Console, vehicles: DemoVehicles) -> None:
    _print_part(
        console,
        vehicles.steps,
        "owners are keys the vehicle registry knows, never names; the buyer's report counts "
        "them and carries a QR code that checks it against the ledger",
    )


def _print_donations(console: Console, donations: DemoDonations) -> None:
    _print_part(
        console,
        donations.steps,
        "donors are commitments to a receipt secret only they hold, beneficiaries are keyed "
        "pseudonyms; a donation is traced to help-coin spending by merchant category",
    )


def _print_works(console: Console, works: DemoWorks) -> None:
    _print_part(
        console,
        works.steps,
        "workers and bank accounts are keyed hashes; each wage went straight to the worker's "
        "own account in the release transaction",
    )


def _print_summary(console: Console, summary: DemoSummary) -> None:
    console.print(
        _render.fields(
            [
                ("city", summary.city),
                ("chain", summary.chain_id),
                ("blocks", f"{summary.height + 1} (heights 0-{summary.height})"),
                ("transactions", str(summary.transactions)),
            ]
        )
    )
    table = Table("agency", "name", "roles", "registered at block")
    for agency in summary.agencies:
        table.add_row(
            agency["id"],
            agency["name"],
            ", ".join(agency["roles"]) or "-",
            str(agency["registered_at"]),
        )
    console.print(table)


def _print_proofs(console: Console, proofs: DemoProofs) -> None:
    body, receipt = proofs.tx.body, proofs.receipt
    head = proofs.inclusion.tree_head.tree_head
    console.print(Text("inclusion proof verified", style="bold green"))
    console.print(
        _render.fields(
            [
                ("transaction", proofs.tx.tx_id_hex),
                ("call", f"{body.contract}.{body.method}"),
                ("status", _render.status_text(receipt.status)),
                ("block", str(receipt.height)),
                ("leaf index", f"{proofs.inclusion.leaf_index} of tree size {head.tree_size}"),
                ("audit path", f"{len(proofs.inclusion.path)} hashes"),
                ("signed by", f"{head.signer} (a genesis producer)"),
            ]
        )
    )
    old, new = proofs.consistency.old_head.tree_head, proofs.consistency.new_head.tree_head
    console.print(Text("consistency proof verified", style="bold green"))
    console.print(
        _render.fields(
            [
                ("older log", _render.tree_head(old)),
                ("newer log", _render.tree_head(new)),
                ("proof", f"{len(proofs.consistency.proof)} hashes: nothing was rewritten"),
            ]
        )
    )


def _print_next_steps(console: Console, layout: CityDir, tx_id: str) -> None:
    where = f"civic --dir {layout.root}"
    console.print(Rule("the demo city is kept"))
    console.print(
        f"{where} block show\n"
        f"{where} query governance agencies\n"
        f"{where} proof {tx_id} --out proof.json\n"
        f"{where} proof verify proof.json\n"
        f"{where} verify"
    )
