"""``civic identity``: an agency's DID, issuer grants, credentials and status lists; a verifier.

The logic is in ``civicledger.agency``; this module parses, reads the clock once per
command and prints. Issuer records and status lists stay in ``DIR/identity/`` (off the ledger).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from civicledger.agency import issuer as service
from civicledger.agency import tokens
from civicledger.agency.ledger import CityLedger
from civicledger.agency.verifying import ChallengeStore, verify_file
from civicledger.cli import _render
from civicledger.cli._common import json_object, out, passphrase_from_env, state
from civicledger.services.identity.wallet import load_credential

app = typer.Typer(
    help="Agency identity: DIDs, issuer grants, credentials, status lists; verify.",
    no_args_is_help=True,
)
did_app = typer.Typer(help="The agency's did:civic.", no_args_is_help=True)
app.add_typer(did_app, name="did")
token_app = typer.Typer(
    help="Access tokens for the agency's desk on a running node (issue/revoke over HTTP).",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")

_Agency = Annotated[str, typer.Option("--agency", metavar="ID", help="The agency's id.")]
_PassphraseEnv = Annotated[
    str | None,
    typer.Option(metavar="VAR", help="Passphrase of encrypted keys, from this variable."),
]
_Type = Annotated[
    str,
    typer.Option(
        "--type", metavar="TYPE", help="ResidentCard, FamilyLoveCard, Qualification, VisitorPass."
    ),
]


@did_app.command("create")
def did_create(
    ctx: typer.Context,
    agency: _Agency,
    key: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Keystore key to assert with (default: the agency's)."),
    ] = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Create did:civic:<agency> on the ledger with a keystore key as its assertion key."""
    passphrase = passphrase_from_env(passphrase_env)
    did = service.create_did(CityLedger(state(ctx).city, passphrase), agency, key_name=key)
    out().print(Text.assemble(("created ", "bold green"), did))


@app.command("grant")
def grant(
    ctx: typer.Context,
    agency: _Agency,
    credential_type: _Type,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Let an agency issue a credential type (signed by the root key)."""
    passphrase = passphrase_from_env(passphrase_env)
    service.grant_issuer(CityLedger(state(ctx).city, passphrase), agency, credential_type)
    out().print(Text.assemble(("granted ", "bold green"), f"{agency} may issue {credential_type}"))


@app.command("revoke-grant")
def revoke_grant(
    ctx: typer.Context,
    agency: _Agency,
    credential_type: _Type,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """End an agency's right to issue a credential type (signed by the root key)."""
    passphrase = passphrase_from_env(passphrase_env)
    service.revoke_issuer(CityLedger(state(ctx).city, passphrase), agency, credential_type)
    out().print(
        Text.assemble(
            ("revoked grant ", "bold green"), f"{agency} may no longer issue {credential_type}"
        )
    )


@app.command("issue")
def issue(
    ctx: typer.Context,
    credential_type: Annotated[str, typer.Argument(metavar="TYPE", help="e.g. ResidentCard.")],
    agency: _Agency,
    holder: Annotated[str, typer.Option(metavar="DID", help="The holder's DID (a did:key).")],
    claims: Annotated[str, typer.Option(metavar="JSON", help="The claims object.")],
    output: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Write to this new file instead of stdout."),
    ] = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Issue a credential: allocate a status index, sign with the agency's DID key."""
    arguments = json_object(claims, "--claims")
    passphrase = passphrase_from_env(passphrase_env)
    issuer = service.IssuerService(CityLedger(state(ctx).city, passphrase), agency)
    issued = issuer.issue(credential_type, holder, arguments)
    if output is None:
        typer.echo(_credential_text(issued.credential), nl=False)
        return
    service.save_credential(output, issued.credential)
    out().print(
        Text.assemble(
            ("issued ", "bold green"), f"{issued.credential_type} to {holder} in {output}"
        )
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="CREDENTIAL_FILE", exists=True, dir_okay=False)],
    agency: _Agency,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Revoke a credential this agency issued: set its bit, re-sign and anchor the list."""
    credential = load_credential(file.read_bytes())
    passphrase = passphrase_from_env(passphrase_env)
    issuer = service.IssuerService(CityLedger(state(ctx).city, passphrase), agency)
    revoked = issuer.revoke(credential)
    console = out()
    console.print(Text.assemble(("revoked ", "bold green"), f"index {revoked.index}"))
    console.print(
        _render.fields(
            [
                ("list", revoked.list_id),
                ("version", str(revoked.published.version)),
                ("digest", revoked.published.digest),
            ]
        )
    )


@app.command("publish-list")
def publish_list(
    ctx: typer.Context,
    agency: _Agency,
    name: Annotated[str, typer.Option(metavar="LIST", help="The list's name.")] = (
        service.DEFAULT_LIST
    ),
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Re-sign a status list and anchor its digest as the next version."""
    passphrase = passphrase_from_env(passphrase_env)
    published = service.IssuerService(CityLedger(state(ctx).city, passphrase), agency).publish_list(
        name
    )
    out().print(
        Text.assemble(
            ("anchored ", "bold green"),
            f"{published.list_id} v{published.version} {published.digest}",
        )
    )


@app.command("challenge")
def challenge(
    ctx: typer.Context,
    domain: Annotated[str, typer.Option(help="The verifier's domain (audience).")],
) -> None:
    """Issue a single-use challenge for one presentation to DOMAIN (kept in DIR/identity)."""
    layout = state(ctx).city.require()
    typer.echo(ChallengeStore(layout).new(domain, datetime.now(UTC)))


@app.command("verify")
def verify(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="PRESENTATION_FILE", exists=True, dir_okay=False)],
    challenge: Annotated[str, typer.Option(help="From `civic identity challenge`.")],
    domain: Annotated[str, typer.Option(help="The verifier's domain (audience).")],
) -> None:
    """Verify a presentation against the local ledger; prints the verified claims as JSON."""
    presentation = load_credential(file.read_bytes())
    verified = verify_file(
        CityLedger(state(ctx).city.require()),
        presentation,
        challenge=challenge,
        domain=domain,
        now=datetime.now(UTC),
    )
    result: list[dict[str, Any]] = [
        {
            "type": item.credential_type,
            "issuer": item.issuer,
            "holder": item.holder,
            "claims": dict(item.claims),
            "status_list_digest": item.status.list_digest if item.status else None,
        }
        for item in verified
    ]
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))


def _credential_text(credential: dict[str, Any] | str) -> str:
    if isinstance(credential, str):
        return credential + "\n"
    return json.dumps(credential, ensure_ascii=False, indent=2) + "\n"


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    agency: _Agency,
    label: Annotated[str, typer.Option(help="Who or what uses it, e.g. 'desk 3, 1F'.")],
) -> None:
    """Create a desk token; it is printed once (only its SHA-256 is kept)."""
    token, made = tokens.create_token(state(ctx).city.require(), agency, label, datetime.now(UTC))
    console = out()
    console.print(Text.assemble(("created token ", "bold green"), f"{made.id} ({made.label})"))
    console.print("Keep it secret; it cannot be shown again. Use it as: Authorization: Bearer …")
    typer.echo(token)


@token_app.command("list")
def token_list(ctx: typer.Context, agency: _Agency) -> None:
    """The agency's desk tokens (ids and labels; never the tokens)."""
    table = Table("id", "label", "created", "revoked")
    for made in tokens.list_tokens(state(ctx).city.require(), agency):
        table.add_row(made.id, made.label, made.created_at, made.revoked_at or "-")
    out().print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[
        str, typer.Argument(metavar="ID", help="From `civic identity token list`.")
    ],
    agency: _Agency,
) -> None:
    """Revoke a desk token; a running node refuses it from the next request on."""
    revoked = tokens.revoke_token(state(ctx).city.require(), agency, token_id, datetime.now(UTC))
    out().print(Text.assemble(("revoked token ", "bold green"), f"{revoked.id} ({revoked.label})"))
