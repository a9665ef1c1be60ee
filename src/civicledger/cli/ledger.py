"""Reading the ledger: ``civic query``, ``civic block show`` and ``civic verify``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from civicledger.city import CityDir
from civicledger.cli import _render
from civicledger.cli._common import err, json_object, out, state
from civicledger.errors import LedgerError
from civicledger.node.chain import Chain
from civicledger.node.verify import VerifyReport, verify_chain

block_app = typer.Typer(help="Inspect blocks.", no_args_is_help=True)


@contextmanager
def open_chain(layout: CityDir) -> Iterator[Chain]:
    """The city's ledger, read-only in practice; works while a node holds the data dir lock."""
    chain = Chain(layout.require().data_path)
    try:
        yield chain
    finally:
        chain.close()


def query(
    ctx: typer.Context,
    contract: Annotated[str, typer.Argument(help="Contract name, e.g. governance.")],
    method: Annotated[str, typer.Argument(help="Query method, e.g. agencies.")],
    args: Annotated[str, typer.Option("--args", metavar="JSON", help="Arguments object.")] = "{}",
) -> None:
    """Run a read-only query against the latest block; prints its JSON result."""
    arguments = json_object(args, "--args")
    with open_chain(state(ctx).city) as chain:
        result = chain.query(contract, method, arguments)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True))


@block_app.command("show")
def show(
    ctx: typer.Context,
    height: Annotated[
        int | None, typer.Argument(min=0, help="Block height [default: the latest block].")
    ] = None,
) -> None:
    """Print a block's header fields and its transactions."""
    with open_chain(state(ctx).city) as chain:
        signed = chain.head if height is None else chain.block(height)
        if signed is None:
            raise LedgerError(
                f"no block at height {height}; the head is {chain.height}", reason="no_such_block"
            )
        txs = chain.block_txs(signed.header.height)
    console = out()
    _render.header(console, signed.header)
    console.print()
    _render.transactions(console, txs)


def verify(ctx: typer.Context) -> None:
    """Re-check every hash and signature and re-execute the chain from genesis."""
    layout = state(ctx).city.require()
    report = verify_with_progress(layout)
    _render.verify_report(out(), report)


def verify_with_progress(layout: CityDir) -> VerifyReport:
    """``verify_chain`` with a Rich progress bar on stderr (stdout stays for the report).

    The bar stays on screen when verification succeeds and is removed when it fails, so a
    failure is the one error line.
    """
    columns = (
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("blocks"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err(), transient=True) as progress:
        task = progress.add_task("verify", total=None)

        def advance(height: int, head: int) -> None:
            progress.update(task, completed=height, total=head)

        report = verify_chain(layout.data_path, progress=advance)
        progress.update(task, completed=report.height, total=report.height)
        progress.live.transient = False
        return report
