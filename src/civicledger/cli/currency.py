"""``civic currency``: distribute a currency to an eligibility list, show a currency, its daily
reconciliation report and its fraud flags.

The logic is in ``civicledger.agency.distribution``, ``civicledger.agency.currency_report`` and
the ``currency`` contract (``civicledger.services.currency``); see docs/currency.md.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from civicledger.agency.currency_report import daily_report, fraud_flags
from civicledger.agency.distribution import CURRENCY_CONTRACT, Distribution, DistributionReport
from civicledger.agency.ledger import CityLedger, NodeLedger
from civicledger.city import NODE_KEY, load_key
from civicledger.cli import _render
from civicledger.cli._common import err, out, passphrase_from_env, state
from civicledger.errors import CivicError
from civicledger.node.embedded import EmbeddedNode

app = typer.Typer(
    help="City-issued currencies: distribute help coin, show a currency, report, flag fraud.",
    no_args_is_help=True,
)

_CurrencyId = Annotated[str, typer.Argument(metavar="CURRENCY", help="The currency's id.")]


@app.command("distribute")
def distribute(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    eligibility: Annotated[
        Path,
        typer.Argument(
            metavar="LIST.csv", exists=True, dir_okay=False, help="CSV with account,amount rows."
        ),
    ],
    key: Annotated[str, typer.Option(metavar="TREASURY_KEY", help="Keystore key of the treasury.")],
    job: Annotated[
        Path,
        typer.Option(
            metavar="DIR",
            help="The job's directory (its progress); the same DIR resumes an interrupted run.",
        ),
    ],
    passphrase_env: Annotated[
        str | None,
        typer.Option(metavar="VAR", help="Passphrase of encrypted keys, from this variable."),
    ] = None,
) -> None:
    """Mint CURRENCY to every row of LIST.csv in batches (up to ~380 a transaction), with a
    progress bar.

    Interrupted (Ctrl-C, a crash), run the same command again: batches already minted are
    skipped, none is minted twice.
    """
    layout = state(ctx).city.require()
    passphrase = passphrase_from_env(passphrase_env)
    node_key = load_key(layout.keystore, NODE_KEY, passphrase)
    columns = (
        TextColumn("distributing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("recipients"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with (
            EmbeddedNode(layout.data_path, node_key) as node,
            Progress(*columns, console=err(), transient=True) as bar,
        ):
            task = bar.add_task("distribute", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            ledger = NodeLedger(layout, node, passphrase)
            report = Distribution(ledger, key, currency_id, job).run_file(eligibility, advance)
            # The bar stays on screen after a full run; after an error it goes, leaving the
            # one error line.
            bar.live.transient = False
    except KeyboardInterrupt:
        err().print(
            Text("interrupted: run the same command again to continue", style="bold yellow")
        )
        raise typer.Exit(130) from None
    _report(report)


def _report(report: DistributionReport) -> None:
    out().print(Text.assemble(("distributed ", "bold green"), f"job {report.job_id}"))
    out().print(
        _render.fields(
            [
                ("recipients", f"{report.recipients:,}"),
                ("amount", f"{report.amount:,} KRW"),
                ("batches", str(report.batches)),
                ("minted now", str(report.sent)),
                ("done before", str(report.already_done + report.found_done)),
            ]
        )
    )


@app.command("show")
def show(ctx: typer.Context, currency_id: _CurrencyId) -> None:
    """The currency's definition and totals, as JSON."""
    ledger = CityLedger(state(ctx).city.require())
    args = {"currency_id": currency_id}
    definition: Any = ledger.query(CURRENCY_CONTRACT, "currency", args)
    if definition is None:
        raise CivicError(f"there is no currency {currency_id!r}", reason="unknown_currency")
    totals = ledger.query(CURRENCY_CONTRACT, "totals", args)
    typer.echo(
        json.dumps({"definition": definition, "totals": totals}, ensure_ascii=False, indent=2)
    )


_DAY_MS = 86_400_000


def _utc_day(value: str | None) -> str:
    if value is None:
        return dt.datetime.now(dt.UTC).date().isoformat()
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as e:
        raise CivicError(f"{value[:40]!r} is not a YYYY-MM-DD day", reason="bad_day") from e


@app.command("report")
def report(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    day: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="The UTC day; today by default.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="json|csv", help="The output format.")
    ] = "json",
    out_file: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", dir_okay=False, help="Write here, not to stdout."),
    ] = None,
) -> None:
    """The daily reconciliation report of CURRENCY: minted, spent by category and region,
    redeemed, settled, expired, outstanding supply and reserve, with its checks.

    The report is written even when a check fails; the command then exits with an error.
    """
    if fmt not in ("json", "csv"):
        raise CivicError(f"--format is json or csv, not {fmt[:20]!r}", reason="bad_format")
    ledger = CityLedger(state(ctx).city.require())
    reconciled = daily_report(ledger, currency_id, _utc_day(day))
    text = reconciled.to_json() if fmt == "json" else reconciled.to_csv()
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        out_file.write_text(text, encoding="utf-8")
    reconciled.require_ok()


@app.command("flags")
def flags(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    since_days: Annotated[
        int, typer.Option(min=1, max=366, metavar="N", help="Look at the last N days.")
    ] = 7,
    links: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="JSON {holder: [accounts it controls]} known off the ledger.",
        ),
    ] = None,
) -> None:
    """Fraud flags of CURRENCY over the last N days (cash-out rings, fake-purchase bursts), as
    JSON; leads for an auditor, not verdicts."""
    controlled = _links(links) if links is not None else None
    ledger = CityLedger(state(ctx).city.require())
    since_ms = int(time.time() * 1000) - since_days * _DAY_MS
    found = fraud_flags(ledger, currency_id, since_ms, controlled=controlled)
    typer.echo(json.dumps([asdict(flag) for flag in found], ensure_ascii=False, indent=2))


def _links(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CivicError(f"cannot read {path}: {e}", reason="bad_links") from e
    valid = isinstance(data, dict) and all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in data.values()
    )
    if not valid:
        raise CivicError(f"{path} is not a JSON object of account lists", reason="bad_links")
    return {str(k): list(v) for k, v in data.items()}
