"""``civic poll``: create polls, register and vote from a wallet, run a trustee's steps, verify.

Everything runs against the city directory's ledger (``CityLedger``); the logic is in
``civicledger.agency`` (registrar, trustee) and ``civicledger.services.voting``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from civicledger.agency.ledger import CityLedger, LedgerAccess
from civicledger.agency.poll_audit import verify_poll_in_city
from civicledger.agency.registrar import POLLS_CONTRACT, Registrar
from civicledger.agency.trustee import Trustee
from civicledger.agency.verifying import ChallengeStore, verify_file
from civicledger.cli import _render
from civicledger.cli._common import json_object, out, passphrase_from_env, state
from civicledger.cli._ledger import NodeUrl, ledger_access
from civicledger.cli.proof import prove_tx
from civicledger.errors import CivicError
from civicledger.services.identity.wallet import Wallet
from civicledger.services.voting import group
from civicledger.services.voting.ballot import (
    EncryptedBallot,
    ballot_context,
    encrypt_ballot,
    tracking_code,
)

app = typer.Typer(
    help="Policy polls: create, register, vote, trustees' steps, verify.", no_args_is_help=True
)
trustee_app = typer.Typer(help="A secret poll's trustee.", no_args_is_help=True)
app.add_typer(trustee_app, name="trustee")

_PollId = Annotated[str, typer.Argument(metavar="POLL", help="The poll's id.")]
_PassphraseEnv = Annotated[
    str | None,
    typer.Option(metavar="VAR", help="Passphrase of the key, from this variable."),
]
_WalletDir = Annotated[
    Path, typer.Option("--wallet", metavar="DIR", envvar="CIVIC_WALLET", help="The wallet.")
]
_TrusteeDir = Annotated[
    Path, typer.Option("--trustee", metavar="DIR", help="The trustee's directory.")
]


def _ledger(ctx: typer.Context, passphrase: str | None = None) -> CityLedger:
    return CityLedger(state(ctx).city.require(), passphrase)


def _poll(ledger: LedgerAccess, poll_id: str) -> dict[str, Any]:
    record = ledger.query(POLLS_CONTRACT, "poll", {"poll_id": poll_id})
    if not isinstance(record, dict):
        raise CivicError(f"there is no poll {poll_id!r}", reason="unknown_poll")
    return record


@app.command("create")
def create(
    ctx: typer.Context,
    definition: Annotated[
        Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="JSON args.")
    ],
    key: Annotated[str, typer.Option(help="Keystore key of a poll officer's agency.")],
    opens_in: Annotated[
        int | None, typer.Option(metavar="SECONDS", help="Set opens_ms to now + this.")
    ] = None,
    duration: Annotated[
        int | None, typer.Option(metavar="SECONDS", help="Set closes_ms to opens_ms + this.")
    ] = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Create a poll from a JSON file of ``polls.create`` arguments (see docs/voting.md)."""
    args = json_object(definition.read_text(encoding="utf-8"), "FILE")
    if opens_in is not None:
        args["opens_ms"] = int(time.time() * 1000) + opens_in * 1000
    if duration is not None:
        args["closes_ms"] = int(args["opens_ms"]) + duration * 1000
    ledger = _ledger(ctx, passphrase_from_env(passphrase_env))
    ledger.send(key, POLLS_CONTRACT, "create", args)
    out().print(Text.assemble(("created ", "bold green"), f"poll {args.get('poll_id')}"))


@app.command("list")
def list_polls(ctx: typer.Context) -> None:
    """The city's polls."""
    polls = _ledger(ctx).query(POLLS_CONTRACT, "polls", {"limit": 1000})
    items = polls.get("polls", []) if isinstance(polls, dict) else polls
    table = Table("poll", "mode", "status", "phase", "registered", "voted", "question")
    for poll in items:
        table.add_row(
            str(poll["poll_id"]),
            str(poll["mode"]),
            str(poll.get("status", "")),
            str(poll.get("phase", "")),
            str(poll.get("registered", "")),
            str(poll.get("voted", "")),
            str(poll["question"]["en"]),
        )
    out().print(table)


@app.command("show")
def show(ctx: typer.Context, poll_id: _PollId) -> None:
    """A poll with its live turnout and tally (or, for a secret poll, its verified result)."""
    ledger = _ledger(ctx)
    poll = _poll(ledger, poll_id)
    turnout = ledger.query(POLLS_CONTRACT, "turnout", {"poll_id": poll_id})
    tally = ledger.query(POLLS_CONTRACT, "tally", {"poll_id": poll_id})
    typer.echo(
        json.dumps({"poll": poll, "turnout": turnout, "tally": tally}, ensure_ascii=False, indent=2)
    )


@app.command("register")
def register(
    ctx: typer.Context,
    poll_id: _PollId,
    credential: Annotated[str, typer.Option(metavar="ID", help="From `civic wallet list`.")],
    wallet: _WalletDir = Path("wallet"),
    disclose: Annotated[
        list[str] | None,
        typer.Option(metavar="CLAIM", help="Claims the poll's conditions need; repeatable."),
    ] = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Register to vote: present the credential to the poll's registrar (in this city
    directory), which records a per-poll pseudonym and the wallet's key for this poll."""
    passphrase = passphrase_from_env(passphrase_env)
    ledger = _ledger(ctx)
    poll = _poll(ledger, poll_id)
    agency = str(poll["registrar"])
    holder = Wallet.open(wallet)
    domain = f"urn:civicledger:{state(ctx).city.genesis().chain_id}:registrar:{agency}"
    now = datetime.now(UTC)
    challenge = ChallengeStore(ledger.city).new(domain, now)
    shown = holder.present(
        credential,
        challenge=challenge,
        domain=domain,
        now=now,
        disclose=disclose or (),
        passphrase=passphrase,
    )
    voter_key = holder.poll_key(poll_id, passphrase=passphrase).public.did
    made = Registrar(ledger, agency).register(
        poll_id,
        shown,
        voter_key,
        lambda presentation, credential_type: verify_file(
            ledger,
            presentation,
            challenge=challenge,
            domain=domain,
            now=datetime.now(UTC),
            expected_type=credential_type,
        ),
    )
    out().print(
        _render.fields(
            [
                ("registered", poll_id),
                ("pseudonym", made.pseudonym),
                ("district", made.district),
                ("voter key", made.voter_key),
            ]
        )
    )


@app.command("vote")
def vote(
    ctx: typer.Context,
    poll_id: _PollId,
    choice: Annotated[
        list[int] | None, typer.Option(metavar="N", help="An option's number (0-based).")
    ] = None,
    wallet: _WalletDir = Path("wallet"),
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Vote (again, to change it) with the wallet's key for this poll. A secret ballot is
    encrypted here, with its proofs; its tracking code is printed."""
    with ledger_access(ctx, node) as ledger:
        _vote(ctx, ledger, poll_id, choice, wallet, passphrase_from_env(passphrase_env))


def _vote(
    ctx: typer.Context,
    ledger: LedgerAccess,
    poll_id: str,
    choice: list[int] | None,
    wallet: Path,
    passphrase: str | None,
) -> None:
    poll = _poll(ledger, poll_id)
    key = Wallet.open(wallet).poll_key(poll_id, passphrase=passphrase)
    choices = sorted(set(choice or []))
    if poll["mode"] == "open":
        ledger.send_as(key, POLLS_CONTRACT, "cast", {"poll_id": poll_id, "choices": choices})
        out().print(Text.assemble(("voted ", "bold green"), f"{poll_id}: {choices}"))
        return
    if poll.get("public_key") is None:
        raise CivicError("the trustees' key ceremony has not finished", reason="key_not_ready")
    if poll["chain_id"] != state(ctx).city.genesis().chain_id:
        raise CivicError("the poll is bound to another chain", reason="wrong_chain")
    selections = [1 if i in choices else 0 for i in range(len(poll["options"]))]
    context = ballot_context(poll["chain_id"], poll_id, key.public.did)
    ballot, _ = encrypt_ballot(
        group.point_from_hex(poll["public_key"]),
        selections,
        min_selections=int(poll["min_selections"]),
        max_selections=int(poll["max_selections"]),
        context=context,
    )
    ledger.send_as(
        key, POLLS_CONTRACT, "cast_secret", {"poll_id": poll_id, "ballot": ballot.to_json()}
    )
    out().print(
        _render.fields(
            [("voted", f"{poll_id} (encrypted)"), ("tracking code", tracking_code(ballot, context))]
        )
    )


@app.command("track")
def track(
    ctx: typer.Context,
    poll_id: _PollId,
    wallet: _WalletDir = Path("wallet"),
    output: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Also write the inclusion proof here."),
    ] = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Find the ballot that counts for this wallet, prove it is on the ledger (against the
    genesis producers) and check it is the one the tracking code names."""
    passphrase = passphrase_from_env(passphrase_env)
    layout = state(ctx).city.require()
    ledger = CityLedger(layout)
    poll = _poll(ledger, poll_id)
    voter = Wallet.open(wallet).poll_key(poll_id, passphrase=passphrase).public.did
    pseudonym = ledger.query(POLLS_CONTRACT, "pseudonym", {"poll_id": poll_id, "voter_key": voter})
    if not isinstance(pseudonym, str):
        raise CivicError("this wallet is not registered for the poll", reason="not_registered")
    counted = ledger.query(POLLS_CONTRACT, "ballot", {"poll_id": poll_id, "pseudonym": pseudonym})
    if not isinstance(counted, dict):
        raise CivicError("this wallet has not voted in the poll", reason="no_ballot")
    tx, receipt = prove_tx(layout, str(counted["tx_id"]), output)
    if tx.body.signer != voter or receipt.status != "ok":
        raise CivicError("the proven transaction is not this wallet's ballot", reason="bad_proof")
    rows = [
        ("poll", poll_id),
        ("pseudonym", pseudonym),
        ("transaction", str(counted["tx_id"])),
        ("block", str(counted["height"])),
        ("included", "yes: inclusion proof verified against the genesis producers"),
        ("counted", "yes: it is the latest ballot of this pseudonym, the one the tally uses"),
    ]
    if poll["mode"] == "secret":
        ballot = EncryptedBallot.from_json(tx.body.args["ballot"])
        code = tracking_code(ballot, ballot_context(poll["chain_id"], poll_id, voter))
        if code != counted.get("tracking_code"):
            raise CivicError("the ballot's tracking code does not match", reason="bad_proof")
        rows.insert(2, ("tracking code", code))
    else:
        rows.insert(2, ("choices", str(tx.body.args["choices"])))
    out().print(_render.fields(rows))


@app.command("verify")
def verify(ctx: typer.Context, poll_id: _PollId) -> None:
    """Recompute the poll from the ledger alone and print the report; exit 1 if a check fails."""
    report = verify_poll_in_city(state(ctx).city.require(), poll_id)
    table = Table("check", "result", "detail")
    for check in report.checks:
        table.add_row(check.name, _render.status_text("ok" if check.ok else "failed"), check.detail)
    console = out()
    console.print(table)
    if report.result is not None:
        console.print(f"recomputed result: {report.result}")
    if not report.ok:
        raise typer.Exit(1)


# -- trustees --------------------------------------------------------------------------------


@trustee_app.command("init")
def trustee_init(
    directory: Annotated[Path, typer.Argument(metavar="DIR")],
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Make a trustee directory: a signing key (its did:key goes in the poll) and a box key."""
    made = Trustee.create(directory, passphrase=passphrase_from_env(passphrase_env))
    out().print(_render.fields([("trustee", made.did), ("directory", str(directory))]))


def _trustee_command(step: str, summary: str, done: Callable[[str, Any], str]) -> None:
    """Register ``civic poll trustee STEP POLL --trustee DIR [--node URL]``; the five steps
    differ only in the ``Trustee`` method they call and what they print."""

    def command(
        ctx: typer.Context,
        poll_id: _PollId,
        trustee: _TrusteeDir,
        node: NodeUrl = None,
        passphrase_env: _PassphraseEnv = None,
    ) -> None:
        with ledger_access(ctx, node) as ledger:
            action = getattr(Trustee.open(trustee), step)
            result = action(ledger, poll_id, passphrase=passphrase_from_env(passphrase_env))
        out().print(Text.assemble((f"{step} ", "bold green"), done(poll_id, result)))

    command.__doc__ = summary
    trustee_app.command(step)(command)


_trustee_command(
    "join", "Post this trustee's box key (the ceremony's first round).", lambda p, _: p
)
_trustee_command(
    "deal",
    "Post commitments, a proof of possession and the others' sealed shares.",
    lambda p, _: p,
)
_trustee_command(
    "ack",
    "Check the shares received and post the complaints (none: the key can be made).",
    lambda p, c: f"{p}: complaints against {c}" if c else f"{p}: all shares verified",
)
_trustee_command(
    "decrypt",
    "After closing: post partial decryptions of the totals, with proofs.",
    lambda p, _: f"{p}: partial decryptions posted",
)
_trustee_command(
    "publish",
    "Combine k partial decryptions and publish the counts (checked by the contract).",
    lambda p, counts: f"{p}: {counts}",
)
