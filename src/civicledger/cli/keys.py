"""``civic key``: the city directory's keystore."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from civicledger.cli import _render
from civicledger.cli._common import out, passphrase_from_env, state

app = typer.Typer(help="Manage the keys in the city's keystore.", no_args_is_help=True)


@app.command("new")
def new(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Key name: 1-64 of a-z 0-9 . _ -")],
    passphrase_env: Annotated[
        str | None,
        typer.Option(metavar="VAR", help="Encrypt the key with the passphrase in this variable."),
    ] = None,
) -> None:
    """Create a new Ed25519 key; prints its did:key (register it with governance to use it)."""
    layout = state(ctx).city.require()
    passphrase = passphrase_from_env(passphrase_env)
    public = layout.keystore.create(name, passphrase=passphrase)
    console = out()
    console.print(Text.assemble(("created key ", "bold green"), name))
    console.print(public.did)


@app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """List the keys: name, did:key and whether the key file is encrypted."""
    keystore = state(ctx).city.require().keystore
    table = Table("name", _render.whole_column("did", 56), "encrypted")
    for name in keystore.names():
        encrypted = "yes" if keystore.is_encrypted(name) else "no"
        table.add_row(name, keystore.public(name).did, encrypted)
    out().print(table)
