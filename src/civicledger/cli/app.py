"""The ``civic`` command: parses options, calls the library, prints with Rich. No logic here.

Every ``CivicError`` a command raises becomes one red line on stderr,
``error: <reason>: <message>``, and exit code 1; usage errors exit 2 (Click's convention).
Tracebacks are never shown for errors we raise on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from civicledger.cli import (
    certificate,
    cluster,
    currency,
    demo,
    donation,
    identity,
    keys,
    ledger,
    node,
    poll,
    proof,
    setup,
    tx,
    vehicle,
    wallet,
    works,
)
from civicledger.cli._common import DEFAULT_DIR, CliState, error_line
from civicledger.errors import CivicError

__all__ = ["app", "main"]


class _CivicGroup(TyperGroup):
    """The root group: turns our errors into one line and exit code 1, wherever they arise."""

    # ``ctx`` is typed Any: Typer may run on Click or on its own vendored copy of it.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CivicError as e:
            error_line(e.reason, e.message)
            raise typer.Exit(1) from None
        except OSError as e:
            # A file the user named (an --out path, a genesis file) could not be used.
            where = f" {e.filename}" if e.filename else ""
            error_line("io", f"{e.strerror or e}{':' if where else ''}{where}")
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_CivicGroup,
    name="civic",
    help="CivicLedger: the ledger a city runs its public services on.",
    no_args_is_help=True,
    add_completion=False,
    # Locals in a traceback could include a passphrase; never render them.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            envvar="CIVIC_DIR",
            help="The city directory (genesis.json, keys/, data/).",
            show_default=True,
        ),
    ] = DEFAULT_DIR,
) -> None:
    source = ctx.get_parameter_source("directory")
    given = source is not None and source.name == "COMMANDLINE"
    ctx.obj = CliState(directory, dir_given=given)


app.command("init")(setup.init)
app.add_typer(keys.app, name="key")
app.add_typer(tx.app, name="tx")
app.command("query")(ledger.query)
app.add_typer(ledger.block_app, name="block")
app.add_typer(proof.app, name="proof")
app.command("verify")(ledger.verify)
app.add_typer(node.app, name="node")
app.add_typer(cluster.app, name="cluster")
app.command("demo")(demo.demo)
app.add_typer(wallet.app, name="wallet")
app.add_typer(identity.app, name="identity")
app.add_typer(poll.app, name="poll")
app.add_typer(currency.app, name="currency")
app.add_typer(certificate.app, name="certificate")
app.add_typer(works.app, name="works")
app.add_typer(donation.app, name="donation")
app.add_typer(vehicle.app, name="vehicle")


def main() -> None:
    """Entry point of the ``civic`` script."""
    app(prog_name="civic")
