"""What the service commands share to reach the ledger: the ``--node`` and ``--key`` options, the
city directory's ledger or a node's over HTTP, signing with a keystore key, hashed references.

One place, so every service's commands reach a remote node the same proven way and hash an
off-ledger reference the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.text import Text

from civicledger.agency.ledger import CityLedger, LedgerAccess
from civicledger.agency.remote import ClientLedger
from civicledger.city import load_key
from civicledger.cli._common import out, passphrase_from_env, state
from civicledger.client import CivicClient
from civicledger.crypto.encoding import sha256
from civicledger.errors import CivicError

__all__ = ["KeyName", "NodeUrl", "done", "ledger_access", "reference_hash", "send_signed"]

NodeUrl = Annotated[
    str | None,
    typer.Option(
        "--node",
        metavar="URL",
        help="Reach the city's node over HTTP (receipts proven against DIR/genesis.json) "
        "instead of opening the ledger in DIR.",
    ),
]
KeyName = Annotated[str, typer.Option("--key", metavar="KEY", help="The signer's keystore key.")]


@contextmanager
def ledger_access(
    ctx: typer.Context, node: str | None, passphrase: str | None = None
) -> Iterator[LedgerAccess]:
    """The ledger: the city directory's, or a node's over HTTP anchored in its genesis."""
    if node is None:
        yield CityLedger(state(ctx).city.require(), passphrase)
        return
    with CivicClient(node, state(ctx).city.genesis()) as client:
        yield ClientLedger(client)


def send_signed(
    ctx: typer.Context,
    node: str | None,
    key_name: str,
    contract: str,
    method: str,
    args: dict[str, Any],
    passphrase_env: str | None,
) -> Any:
    """Send ``CONTRACT.METHOD`` signed by the keystore key ``key_name``; return its result."""
    passphrase = passphrase_from_env(passphrase_env)
    key = load_key(state(ctx).city.require().keystore, key_name, passphrase)
    with ledger_access(ctx, node, passphrase) as ledger:
        return ledger.send_as(key, contract, method, args)


def reference_hash(text: str, what: str = "reference") -> str:
    """The SHA-256 (hex) of an off-ledger record (a bank's transfer, a receipt, an account):
    only the hash goes on the ledger."""
    if not text.strip():
        raise CivicError(f"the {what} is a non-empty text", reason="bad_reference")
    return sha256(text.encode("utf-8")).hex()


def done(verb: str, what: str) -> None:
    out().print(Text.assemble((f"{verb} ", "bold green"), what))
