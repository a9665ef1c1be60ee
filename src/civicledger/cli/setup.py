"""``civic init``: a new city directory with keys, genesis and block 0."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from civicledger.city import NODE_KEY, ROOT_KEY, AgencySpec, create_city
from civicledger.cli import _render
from civicledger.cli._common import err, out, passphrase_from_env, state

CITY_HALL_ID = "city-hall"


def _agency(value: str) -> AgencySpec:
    agency_id, sep, name = value.partition(":")
    if not sep or not agency_id.strip() or not name.strip():
        raise typer.BadParameter(f"{value!r} is not ID:NAME", param_hint="--agency")
    return AgencySpec(agency_id.strip(), name.strip())


def init(
    ctx: typer.Context,
    *,
    city: Annotated[str, typer.Option(help="The city's name, e.g. 'Seoul'.")],
    chain_id: Annotated[
        str, typer.Option(help="The chain id (lowercase letters, digits, '-'), e.g. seoul-1.")
    ],
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to create the city [default: the global --dir]."),
    ] = None,
    agency: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ID:NAME",
            help="Another initial agency (repeatable); city-hall (role notary) is always created.",
        ),
    ] = None,
    passphrase_env: Annotated[
        str | None,
        typer.Option(metavar="VAR", help="Encrypt every key with the passphrase in this variable."),
    ] = None,
) -> None:
    """Create a new city: keys (root, node, one per agency), genesis.json and the ledger."""
    root = directory or state(ctx).dir
    extra = [_agency(value) for value in agency or []]
    agencies = [AgencySpec(CITY_HALL_ID, f"{city} City Hall", ("notary",)), *extra]
    passphrase = passphrase_from_env(passphrase_env)
    layout = create_city(
        root, city=city, chain_id=chain_id, agencies=agencies, passphrase=passphrase
    )
    genesis = layout.genesis()
    console = out()
    console.print(
        Text.assemble(
            ("created city ", "bold green"),
            f"{genesis.city} (",
            (genesis.chain_id, "bold"),
            f") in {layout.root}",
        )
    )
    table = Table("key", _render.whole_column("did", 56), "role")
    table.add_row(ROOT_KEY, genesis.root_authorities[0], "root authority")
    table.add_row(NODE_KEY, genesis.producers[0], "block producer (signs blocks and tree heads)")
    for item in genesis.agencies:
        roles = ", ".join(item.roles) or "no roles yet"
        table.add_row(item.id, item.keys[0], f"agency {item.name!r}: {roles}")
    console.print(table)
    console.print(f"genesis  {layout.genesis_path}\nledger   {layout.data_path}")
    if passphrase is None:
        err().print(
            "keys are not encrypted (protected only by file mode 0600); "
            "use --passphrase-env VAR to encrypt them",
            style="yellow",
        )
