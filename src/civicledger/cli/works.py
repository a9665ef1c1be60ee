"""``civic works``: public works with direct payment of subcontractors (대금e바로).

Each command signs one ``works`` transaction with a keystore key (``--key``): the ordering
department creates a contract and approves stages, the bank deposits into escrow and confirms
payouts, the prime registers subcontractors and claims stages, each party registers its split,
the site supervisor verifies work and approves. ``show``, ``alerts`` and ``payments`` read.
``pseudonym`` and ``account-ref`` compute, off the ledger, the keyed hashes that stand for a
worker and a bank account in a split file. Everything runs against the city directory's
ledger, or a running node with ``--node URL``. The logic is in the ``works`` contract
(``civicledger.services.works``); see docs/works.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from civicledger.agency.ledger import CityLedger, LedgerAccess
from civicledger.agency.remote import ClientLedger
from civicledger.agency.works_desk import WorksDesk
from civicledger.cli._common import out, passphrase_from_env, state
from civicledger.cli._ledger import (
    KeyName,
    NodeUrl,
    done,
    ledger_access,
    reference_hash,
    send_signed,
)
from civicledger.client import CivicClient
from civicledger.crypto.encoding import parse_json
from civicledger.errors import CivicError, EncodingError
from civicledger.services.works.contract import CONTRACT_NAME, MAX_AMOUNT, MAX_STAGES
from civicledger.services.works.pseudonyms import account_reference, worker_pseudonym

app = typer.Typer(
    help="Public works: escrow, split, verified work, two approvals, direct payment, alerts.",
    no_args_is_help=True,
)
contract_app = typer.Typer(help="Works contracts (ordering department).", no_args_is_help=True)
app.add_typer(contract_app, name="contract")

_DID = re.compile(r"^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$")

_ContractId = Annotated[str, typer.Argument(metavar="CONTRACT", help="The contract's id.")]
_Stage = Annotated[int, typer.Argument(metavar="STAGE", min=1, max=MAX_STAGES, help="1, 2, ...")]
_Amount = Annotated[int, typer.Argument(metavar="AMOUNT", min=1, max=MAX_AMOUNT, help="Won.")]
_PassphraseEnv = Annotated[
    str | None,
    typer.Option(metavar="VAR", help="Passphrase of the key, from this variable."),
]


def _access(ctx: typer.Context, node: str | None, passphrase: str | None) -> Iterator[LedgerAccess]:
    if node is None:
        yield CityLedger(state(ctx).city.require(), passphrase)
        return
    with CivicClient(node, state(ctx).city.genesis()) as client:
        yield ClientLedger(client)


def _did(ctx: typer.Context, value: str) -> str:
    """A did:key as given, or the did:key of keystore key ``value``."""
    if _DID.fullmatch(value):
        return value
    return state(ctx).city.require().keystore.public(value).did


def _secret(variable: str) -> bytes:
    value = passphrase_from_env(variable)
    if value is None or len(value.encode()) < 16:
        raise CivicError(f"${variable} must hold a secret of 16 bytes or more", reason="bad_secret")
    return value.encode()


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _stage(contract_id: str, stage: int, **more: Any) -> dict[str, Any]:
    return {"contract_id": contract_id, "stage": stage, **more}


# -- the ordering department ----------------------------------------------------------------------


@contract_app.command("create")
def create(
    ctx: typer.Context,
    contract_id: _ContractId,
    title_ko: Annotated[str, typer.Option(help="What is built, in Korean.")],
    title_en: Annotated[str, typer.Option(help="What is built, in English.")],
    prime: Annotated[str, typer.Option(metavar="KEY|DID", help="The prime contractor.")],
    prime_account: Annotated[
        str, typer.Option(metavar="REF", help="The prime's account reference (see account-ref).")
    ],
    supervisor: Annotated[str, typer.Option(metavar="KEY|DID", help="The site supervisor.")],
    stage: Annotated[
        list[int], typer.Option(metavar="AMOUNT", min=1, max=MAX_AMOUNT, help="Repeat per stage.")
    ],
    key: KeyName,
    deadline_days: Annotated[int, typer.Option(min=1, max=90, help="Days to pay a claim.")] = 5,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Create a works contract; its total is the sum of the stages (ordering department)."""
    args = {
        "contract_id": contract_id,
        "title": {"ko": title_ko, "en": title_en},
        "prime": _did(ctx, prime),
        "prime_account_ref": prime_account,
        "supervisor": _did(ctx, supervisor),
        "total": sum(stage),
        "stages": stage,
        "deadline_days": deadline_days,
    }
    send_signed(ctx, node, key, CONTRACT_NAME, "create_contract", args, passphrase_env)
    done("created", f"works contract {contract_id}: {sum(stage):,} KRW in {len(stage)} stages")


@app.command("approve")
def approve(
    ctx: typer.Context,
    contract_id: _ContractId,
    stage: _Stage,
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Approve a claimed stage (the ordering department or the site supervisor)."""
    found = send_signed(
        ctx, node, key, CONTRACT_NAME, "approve", _stage(contract_id, stage), passphrase_env
    )
    done("approved", f"stage {stage}; approvals: {', '.join(sorted(found['approvals']))}")


@app.command("release")
def release(
    ctx: typer.Context,
    contract_id: _ContractId,
    stage: _Stage,
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Release a stage approved by both: one payout order per party, in one transaction."""
    found = send_signed(
        ctx, node, key, CONTRACT_NAME, "release", _stage(contract_id, stage), passphrase_env
    )
    done("released", f"stage {stage}: {len(found['payouts'])} payout orders")
    _payout_table(found["payouts"])


# -- the bank ----------------------------------------------------------------------------------


@app.command("deposit")
def deposit(
    ctx: typer.Context,
    contract_id: _ContractId,
    amount: _Amount,
    reference: Annotated[
        str, typer.Option(metavar="REF", help="The bank's deposit record; only its hash is sent.")
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """The bank received AMOUNT into the contract's escrow (custodian bank)."""
    args = {
        "contract_id": contract_id,
        "amount": amount,
        "bank_reference": reference_hash(reference),
    }
    found = send_signed(ctx, node, key, CONTRACT_NAME, "deposit", args, passphrase_env)
    done("deposited", f"{amount:,} KRW; escrow holds {found['held']:,} KRW")


@app.command("payout")
def payout(
    ctx: typer.Context,
    contract_id: _ContractId,
    stage: _Stage,
    seq: Annotated[list[int], typer.Argument(metavar="SEQ...", help="Payout orders paid.")],
    reference: Annotated[
        str,
        typer.Option(
            metavar="REF", help="The transfer batch's record; each order gets REF/SEQ's hash."
        ),
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """The bank transferred these payout orders to their accounts (custodian bank)."""
    items = [{"seq": n, "bank_reference": reference_hash(f"{reference}/{n}")} for n in seq]
    found = send_signed(
        ctx,
        node,
        key,
        CONTRACT_NAME,
        "confirm_payouts",
        _stage(contract_id, stage, items=items),
        passphrase_env,
    )
    done("paid", f"{len(items)} orders; stage {stage} is {found['status']}")


# -- the prime, the subcontractors, the supervisor ----------------------------------------------


@app.command("subcontract")
def subcontract(
    ctx: typer.Context,
    contract_id: _ContractId,
    party_id: Annotated[str, typer.Argument(metavar="PARTY", help="The subcontractor's id.")],
    party_key: Annotated[str, typer.Argument(metavar="KEY|DID", help="Its signing key.")],
    amount: _Amount,
    account: Annotated[str, typer.Option(metavar="REF", help="Its account reference.")],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Register a subcontractor with its subcontract AMOUNT (the prime)."""
    args = {
        "contract_id": contract_id,
        "party_id": party_id,
        "key": _did(ctx, party_key),
        "account_ref": account,
        "amount": amount,
    }
    send_signed(ctx, node, key, CONTRACT_NAME, "register_subcontractor", args, passphrase_env)
    done("registered", f"subcontractor {party_id}: {amount:,} KRW")


@app.command("split")
def split(
    ctx: typer.Context,
    contract_id: _ContractId,
    stage: _Stage,
    party_id: Annotated[str, typer.Argument(metavar="PARTY", help="prime, or a subcontractor.")],
    lines: Annotated[
        Path,
        typer.Argument(
            metavar="LINES.json", exists=True, dir_okay=False, help="A JSON list of split lines."
        ),
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Register the party's split lines for STAGE (signed by the party itself)."""
    try:
        parsed = parse_json(lines.read_bytes())
    except (OSError, EncodingError) as e:
        raise CivicError(f"cannot read {lines}: {e}", reason="bad_lines") from e
    if not isinstance(parsed, list):
        raise CivicError(f"{lines} is not a JSON list of lines", reason="bad_lines")
    args = _stage(contract_id, stage, party_id=party_id, lines=parsed)
    found = send_signed(ctx, node, key, CONTRACT_NAME, "register_split", args, passphrase_env)
    done("split", f"stage {stage}: {found['lines']} lines, {found['split_total']:,} KRW")


@app.command("verify")
def verify(
    ctx: typer.Context,
    contract_id: _ContractId,
    stage: _Stage,
    work: Annotated[int, typer.Option(min=0, max=MAX_AMOUNT, help="Verified value of work.")],
    key: KeyName,
    line: Annotated[
        list[str] | None,
        typer.Option(metavar="LINE=QTY", help="Verified days (labour) or KRW; repeat."),
    ] = None,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Record the work verified on site for STAGE (the site supervisor)."""
    verified = []
    for item in line or []:
        line_id, _, quantity = item.partition("=")
        if not quantity.isdigit():
            raise typer.BadParameter(f"{item[:40]!r} is not LINE=QUANTITY", param_hint="--line")
        verified.append({"line_id": line_id, "quantity": int(quantity)})
    args = _stage(contract_id, stage, work_amount=work, lines=verified)
    send_signed(ctx, node, key, CONTRACT_NAME, "verify_work", args, passphrase_env)
    done("verified", f"stage {stage}: {work:,} KRW of work, {len(verified)} lines")


@app.command("claim")
def claim(
    ctx: typer.Context,
    contract_id: _ContractId,
    stage: _Stage,
    amount: _Amount,
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Claim AMOUNT for STAGE, within the verified work (the prime)."""
    found = send_signed(
        ctx,
        node,
        key,
        CONTRACT_NAME,
        "claim",
        _stage(contract_id, stage, amount=amount),
        passphrase_env,
    )
    done("claimed", f"stage {stage}: {amount:,} KRW; due at block time {found['due_ms']}")


@app.command("flag-late")
def flag_late(
    ctx: typer.Context,
    contract_id: _ContractId,
    stage: _Stage,
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Record that STAGE was not paid by its deadline (anyone)."""
    found = send_signed(
        ctx, node, key, CONTRACT_NAME, "flag_late", _stage(contract_id, stage), passphrase_env
    )
    done("flagged", f"stage {stage} late by {found['late_ms'] // 1000:,} s")


# -- reading -------------------------------------------------------------------------------------


@app.command("show")
def show(ctx: typer.Context, contract_id: _ContractId, node: NodeUrl = None) -> None:
    """The contract: escrow, stages with split, approvals and payout orders, alerts (JSON)."""
    with ledger_access(ctx, node, None) as ledger:
        _echo_json(WorksDesk(ledger).contract_view(contract_id))


@app.command("alerts")
def alerts(ctx: typer.Context, node: NodeUrl = None) -> None:
    """Late-payment alerts, and the stages overdue now."""
    with ledger_access(ctx, node, None) as ledger:
        desk = WorksDesk(ledger)
        flagged = desk.alerts()["alerts"]
        overdue = desk.overdue()
    table = Table("contract", "stage", "due (ms)", "flagged (ms)", "late (s)", "state then")
    for a in flagged:
        table.add_row(
            a["contract_id"],
            str(a["stage"]),
            str(a["due_ms"]),
            str(a["flagged_ms"]),
            f"{a['late_ms'] // 1000:,}",
            a["status_when_flagged"],
        )
    out().print(table)
    out().print(f"{len(flagged)} alerts; {len(overdue)} stages overdue now")
    for entry in overdue:
        out().print(f"overdue: {entry['contract_id']} stage {entry['stage']}")


@app.command("payments")
def payments(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="A worker pseudonym or account ref.")],
    node: NodeUrl = None,
) -> None:
    """A worker's payments by pseudonym or account reference."""
    with ledger_access(ctx, node, None) as ledger:
        found = WorksDesk(ledger).payments(ref)
    _payout_table(found["payouts"])
    out().print(f"ordered {found['ordered']:,} KRW; paid {found['paid']:,} KRW")


def _payout_table(orders: list[dict[str, Any]]) -> None:
    table = Table("contract", "stage", "seq", "party", "kind", "line", "amount", "status")
    for o in orders:
        table.add_row(
            o["contract_id"],
            str(o["stage"]),
            str(o["seq"]),
            o["party_id"],
            o["kind"],
            o["line_id"] or "-",
            f"{o['amount']:,}",
            o["status"],
        )
    out().print(table)


@app.command("pseudonym")
def pseudonym(
    contract_id: _ContractId,
    worker_id: Annotated[str, typer.Argument(metavar="WORKER_ID", help="The payroll's id.")],
    secret_env: Annotated[str, typer.Option(metavar="VAR", help="The payroll secret's variable.")],
) -> None:
    """A worker's pseudonym in CONTRACT (computed here; nothing is sent)."""
    typer.echo(worker_pseudonym(_secret(secret_env), contract_id, worker_id))


@app.command("account-ref")
def account_ref(
    bank_code: Annotated[str, typer.Argument(metavar="BANK", help="The bank's code.")],
    account: Annotated[str, typer.Argument(metavar="ACCOUNT", help="The account number.")],
    secret_env: Annotated[str, typer.Option(metavar="VAR", help="The bank secret's variable.")],
) -> None:
    """A bank account's reference (computed here; nothing is sent)."""
    typer.echo(account_reference(_secret(secret_env), bank_code, account))
