"""``civic wallet``: a citizen's holder wallet (``services.identity.wallet``), off the ledger.

The wallet directory is ``--wallet`` (env ``CIVIC_WALLET``, default ``./wallet``), independent of
the city directory. The clock is read here, once per command, and passed to the library.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from civicledger.cli import _render
from civicledger.cli._common import out, passphrase_from_env
from civicledger.files import write_new_file
from civicledger.services.identity.credentials import to_qr_payload
from civicledger.services.identity.qr_image import qr_png
from civicledger.services.identity.wallet import Wallet, load_credential

DEFAULT_WALLET = Path("wallet")

app = typer.Typer(
    help="A holder wallet: receive credentials, present them to a verifier.",
    no_args_is_help=True,
)

_WalletDir = Annotated[
    Path,
    typer.Option(
        "--wallet",
        envvar="CIVIC_WALLET",
        metavar="DIR",
        help="The wallet directory.",
        show_default=True,
    ),
]
_PassphraseEnv = Annotated[
    str | None,
    typer.Option(metavar="VAR", help="The holder key's passphrase is in this variable."),
]


@app.command("create")
def create(wallet: _WalletDir = DEFAULT_WALLET, passphrase_env: _PassphraseEnv = None) -> None:
    """Create a wallet with a new holder did:key (encrypted if --passphrase-env is given)."""
    passphrase = passphrase_from_env(passphrase_env)
    created = Wallet.create(wallet, passphrase=passphrase)
    console = out()
    console.print(Text.assemble(("created wallet ", "bold green"), str(created.path)))
    console.print(created.holder)


@app.command("receive")
def receive(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="A Data Integrity VC (JSON) or an SD-JWT VC."
        ),
    ],
    wallet: _WalletDir = DEFAULT_WALLET,
) -> None:
    """Store a credential issued to this wallet's holder."""
    credential = load_credential(file.read_bytes())
    summary = Wallet.open(wallet).receive(credential, now=datetime.now(UTC))
    console = out()
    console.print(Text.assemble(("received ", "bold green"), summary.id))
    console.print(
        _render.fields(
            [
                ("format", summary.format.value),
                ("type", ", ".join(summary.types)),
                ("issuer", summary.issuer),
            ]
        )
    )


@app.command("list")
def list_credentials(wallet: _WalletDir = DEFAULT_WALLET) -> None:
    """List the stored credentials: id, format, type, issuer, validity (no claim values)."""
    opened = Wallet.open(wallet)
    console = out()
    console.print(Text.assemble(("holder ", "bold"), opened.holder))
    table = Table(
        _render.whole_column("id", 32),
        "format",
        "type",
        "issuer",
        "valid from",
        "valid until",
        "disclosable",
    )
    for summary in opened.list():
        table.add_row(
            summary.id,
            summary.format.value,
            ", ".join(summary.types),
            summary.issuer,
            summary.valid_from or "-",
            summary.valid_until or "-",
            ", ".join(summary.disclosable) or "-",
        )
    console.print(table)


@app.command("present")
def present(
    credential_id: Annotated[str, typer.Argument(metavar="ID", help="From `civic wallet list`.")],
    challenge: Annotated[str, typer.Option(help="The verifier's challenge (nonce).")],
    domain: Annotated[str, typer.Option(help="The verifier's domain (audience).")],
    disclose: Annotated[
        list[str] | None,
        typer.Option(metavar="CLAIM", help="Disclose this SD-JWT claim; repeatable."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Write here instead of stdout.")
    ] = None,
    qr: Annotated[
        Path | None,
        typer.Option(
            metavar="PNG", help="Also write the presentation as a QR code image (new file)."
        ),
    ] = None,
    wallet: _WalletDir = DEFAULT_WALLET,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Present a credential to one verifier, bound to its challenge and domain."""
    passphrase = passphrase_from_env(passphrase_env)
    presentation = Wallet.open(wallet).present(
        credential_id,
        challenge=challenge,
        domain=domain,
        now=datetime.now(UTC),
        disclose=disclose or (),
        passphrase=passphrase,
    )
    if isinstance(presentation, str):
        text = presentation + "\n"
    else:
        text = json.dumps(presentation, ensure_ascii=False, indent=2) + "\n"
    if qr is not None:
        payload = presentation if isinstance(presentation, str) else to_qr_payload(presentation)
        write_new_file(qr.parent, qr, qr_png(payload))
        out().print(f"wrote the presentation's QR code to {qr}")
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    out().print(f"wrote presentation of {credential_id} for {domain} to {output}")
