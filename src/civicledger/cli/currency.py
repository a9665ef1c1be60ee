"""``civic currency``: distribute a currency to an eligibility list, show a currency.

The logic is in ``civicledger.agency.distribution`` and the ``currency`` contract
(``civicledger.services.currency``); see docs/currency.md.
"""

from __future__ import annotations

import json
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

from civicledger.agency.distribution import CURRENCY_CONTRACT, Distribution, DistributionReport
from civicledger.agency.ledger import CityLedger, NodeLedger
from civicledger.city import NODE_KEY, load_key
from civicledger.cli import _render
from civicledger.cli._common import err, out, passphrase_from_env, state
from civicledger.errors import CivicError
from civicledger.node.embedded import EmbeddedNode

app = typer.Typer(
    help="City-issued currencies: distribute help coin, show a currency.", no_args_is_help=True
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
