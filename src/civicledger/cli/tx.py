"""``civic tx send``: sign a transaction with a keystore key and commit it on the embedded node."""

from __future__ import annotations

from typing import Annotated

import typer

from civicledger.city import DEFAULT_EXPIRY_S, NODE_KEY, Signer, load_key
from civicledger.cli import _render
from civicledger.cli._common import error_line, json_object, out, passphrase_from_env, state
from civicledger.errors import NodeError
from civicledger.node.embedded import EmbeddedNode

_RECEIPT_TIMEOUT_S = 60.0

app = typer.Typer(help="Send transactions.", no_args_is_help=True)


@app.command("send")
def send(
    ctx: typer.Context,
    contract: Annotated[str, typer.Argument(help="Contract name, e.g. governance, notary.")],
    method: Annotated[str, typer.Argument(help="Transaction method, e.g. register_agency.")],
    *,
    key: Annotated[str, typer.Option(help="Name of the signing key in the keystore.")],
    args: Annotated[str, typer.Option("--args", metavar="JSON", help="Arguments object.")] = "{}",
    expires_in: Annotated[
        int,
        typer.Option(min=1, metavar="SECONDS", help="Refuse inclusion after this many seconds."),
    ] = DEFAULT_EXPIRY_S,
    passphrase_env: Annotated[
        str | None,
        typer.Option(metavar="VAR", help="Passphrase of encrypted keys, from this variable."),
    ] = None,
) -> None:
    """Sign, submit and wait for the receipt. Exit 0 if ok, 1 if failed or rejected."""
    arguments = json_object(args, "--args")
    layout = state(ctx).city.require()
    passphrase = passphrase_from_env(passphrase_env)
    signing_key = load_key(layout.keystore, key, passphrase)
    node_key = load_key(layout.keystore, NODE_KEY, passphrase)
    with EmbeddedNode(layout.data_path, node_key) as node:
        tx = Signer(key, signing_key, node.chain).sign(
            contract, method, arguments, expires_in_s=expires_in
        )
        try:
            receipt = node.submit(tx, timeout=_RECEIPT_TIMEOUT_S)
        except TimeoutError as e:
            raise NodeError(
                f"no receipt for {tx.tx_id_hex} within {_RECEIPT_TIMEOUT_S:g} s; "
                "it may still be committed (check with `civic block show`)"
            ) from e
    _render.receipt(out(), receipt)
    if not receipt.ok:
        error_line(receipt.reason or "failed", receipt.message or "the transaction failed")
        raise typer.Exit(1)
