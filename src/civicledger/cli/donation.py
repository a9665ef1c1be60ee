"""``civic donation``: register charities, open campaigns, record donations (the bank) and
disbursements (the charity), link help-coin funding, show a campaign's ledger and trace money.

Everything runs against the city directory's ledger, or a running node with ``--node URL``.
Off-ledger texts (registration numbers, bank records, receipts, beneficiaries) are hashed here;
only hashes and pseudonyms are sent. The logic is in ``civicledger.agency.donation_desk`` and
the ``donations`` contract; see docs/donations.md.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from civicledger.agency.donation_desk import DonationDesk, link_funding
from civicledger.agency.ledger import CityLedger, LedgerAccess
from civicledger.agency.remote import ClientLedger
from civicledger.city import load_key
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
from civicledger.crypto.keys import PrivateKey
from civicledger.services.donations.contract import CONTRACT_NAME, MAX_AMOUNT
from civicledger.services.donations.trace import beneficiary_pseudonym, donor_commitment

app = typer.Typer(
    help="Donations (기부금 관리): charities, campaigns, donations, disbursements, traces.",
    no_args_is_help=True,
)
charity_app = typer.Typer(help="The charity registry (charity_registrar).", no_args_is_help=True)
campaign_app = typer.Typer(help="A charity's campaigns.", no_args_is_help=True)
app.add_typer(charity_app, name="charity")
app.add_typer(campaign_app, name="campaign")

_DAY_MS = 86_400_000
_PassphraseEnv = Annotated[
    str | None, typer.Option(metavar="VAR", help="Passphrase of the key, from this variable.")
]
_Campaign = Annotated[str, typer.Argument(metavar="CAMPAIGN", help="The campaign's id.")]
_Amount = Annotated[int, typer.Argument(metavar="AMOUNT", min=1, max=MAX_AMOUNT, help="Won.")]
_Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a tree.")]


def _access(ctx: typer.Context, node: str | None, passphrase: str | None) -> Iterator[LedgerAccess]:
    if node is None:
        yield CityLedger(state(ctx).city.require(), passphrase)
        return
    with CivicClient(node, state(ctx).city.genesis()) as client:
        yield ClientLedger(client)


def _key(
    ctx: typer.Context, name: str, passphrase_env: str | None
) -> tuple[PrivateKey, str | None]:
    passphrase = passphrase_from_env(passphrase_env)
    return load_key(state(ctx).city.require().keystore, name, passphrase), passphrase


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


@charity_app.command("register")
def register_charity(
    ctx: typer.Context,
    charity_id: Annotated[str, typer.Argument(metavar="CHARITY")],
    name_ko: Annotated[str, typer.Option(help="The organisation's name in Korean.")],
    name_en: Annotated[str, typer.Option(help="The organisation's name in English.")],
    registration_number: Annotated[
        str, typer.Option(metavar="NUMBER", help="Its registration number; only the hash is sent.")
    ],
    charity_key: Annotated[
        list[str],
        typer.Option(metavar="KEY", help="Keystore key the charity signs with (repeatable)."),
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Register CHARITY with its signing keys (signed by the charity registrar)."""
    keystore = state(ctx).city.require().keystore
    args = {
        "charity_id": charity_id,
        "name": {"ko": name_ko, "en": name_en},
        "registration_number_hash": reference_hash(registration_number, "registration number"),
        "keys": [keystore.public(name).did for name in charity_key],
    }
    send_signed(ctx, node, key, CONTRACT_NAME, "register_charity", args, passphrase_env)
    done("registered", f"charity {charity_id}")


@campaign_app.command("open")
def open_campaign(
    ctx: typer.Context,
    campaign_id: _Campaign,
    charity: Annotated[str, typer.Option(metavar="CHARITY", help="The charity's id.")],
    title_ko: Annotated[str, typer.Option()],
    title_en: Annotated[str, typer.Option()],
    purpose_ko: Annotated[str, typer.Option()],
    purpose_en: Annotated[str, typer.Option()],
    goal: Annotated[int, typer.Option(min=1, max=MAX_AMOUNT, help="The goal in won.")],
    bank: Annotated[str, typer.Option(metavar="AGENCY", help="The custodian bank's agency.")],
    key: KeyName,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Donations for N days.")] = 30,
    disburse_days: Annotated[
        int, typer.Option(min=0, max=3650, help="Disbursements N days after.")
    ] = 365,
    help_coin: Annotated[
        str | None, typer.Option(metavar="CURRENCY", help="A help coin it may fund.")
    ] = None,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Open CAMPAIGN now for DAYS days (signed by a key of the charity)."""
    signer, passphrase = _key(ctx, key, passphrase_env)
    with ledger_access(ctx, node, passphrase) as ledger:
        now = int(ledger.query(CONTRACT_NAME, "head_time", {}))
        args = {
            "campaign_id": campaign_id,
            "charity_id": charity,
            "title": {"ko": title_ko, "en": title_en},
            "purpose": {"ko": purpose_ko, "en": purpose_en},
            "goal": goal,
            "starts_ms": now,
            "ends_ms": now + days * _DAY_MS,
            "disburse_days": disburse_days,
            "bank": bank,
            "help_coin": help_coin,
        }
        ledger.send_as(signer, CONTRACT_NAME, "open_campaign", args)
    done("opened", f"campaign {campaign_id}")


@campaign_app.command("close")
def close_campaign(
    ctx: typer.Context,
    campaign_id: _Campaign,
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Close CAMPAIGN for good (signed by a key of its charity)."""
    send_signed(
        ctx,
        node,
        key,
        CONTRACT_NAME,
        "close_campaign",
        {"campaign_id": campaign_id},
        passphrase_env,
    )
    done("closed", f"campaign {campaign_id}")


@app.command("donate")
def donate(
    ctx: typer.Context,
    campaign_id: _Campaign,
    amount: _Amount,
    bank_reference: Annotated[
        str, typer.Option(metavar="REF", help="The bank's transfer record; only its hash is sent.")
    ],
    key: KeyName,
    anonymous: Annotated[
        bool, typer.Option(help="No receipt secret: the donation cannot be traced by its donor.")
    ] = False,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Record a donation the bank received (signed by the campaign's bank). Prints the donor's
    receipt secret: the donor keeps it to trace the donation; the ledger has only its hash."""
    secret = None if anonymous else secrets.token_urlsafe(18)
    args = {
        "campaign_id": campaign_id,
        "amount": amount,
        "bank_reference": reference_hash(bank_reference, "bank reference"),
        "donor_commitment": None if secret is None else donor_commitment(secret),
    }
    record = send_signed(ctx, node, key, CONTRACT_NAME, "donate", args, passphrase_env)
    done("donated", f"{amount:,} KRW to {campaign_id} (donation {record['seq']})")
    if secret is not None:
        out().print(Text.assemble(("receipt secret ", "bold"), secret))


@app.command("disburse")
def disburse(
    ctx: typer.Context,
    campaign_id: _Campaign,
    amount: _Amount,
    kind: Annotated[str, typer.Option(metavar="cash|goods|help_coin")],
    purpose_ko: Annotated[str, typer.Option()],
    purpose_en: Annotated[str, typer.Option()],
    receipt: Annotated[
        str, typer.Option(metavar="TEXT", help="The receipt or invoice; only its hash is sent.")
    ],
    key: KeyName,
    beneficiary: Annotated[
        str | None,
        typer.Option(metavar="ID", help="The beneficiary's id; only a keyed pseudonym is sent."),
    ] = None,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Disburse AMOUNT from CAMPAIGN (signed by a key of its charity); allocated FIFO over
    the campaign's donations."""
    signer, passphrase = _key(ctx, key, passphrase_env)
    args = {
        "campaign_id": campaign_id,
        "amount": amount,
        "kind": kind,
        "purpose": {"ko": purpose_ko, "en": purpose_en},
        "receipt_hash": reference_hash(receipt, "receipt"),
        "beneficiary": None
        if beneficiary is None
        else beneficiary_pseudonym(signer.seed, beneficiary),
    }
    with ledger_access(ctx, node, passphrase) as ledger:
        record = ledger.send_as(signer, CONTRACT_NAME, "disburse", args)
    done("disbursed", f"{amount:,} KRW from {campaign_id} (disbursement {record['seq']})")
    if record["reserve_reference"] is not None:
        out().print(Text.assemble(("reserve reference ", "bold"), record["reserve_reference"]))


@app.command("link")
def link(
    ctx: typer.Context,
    campaign_id: _Campaign,
    seq: Annotated[int, typer.Argument(metavar="DISBURSEMENT", min=1)],
    batch: Annotated[str, typer.Option(metavar="BATCH", help="The currency mint batch id.")],
    account: Annotated[
        list[str], typer.Option(metavar="DID", help="A holder the batch minted to (repeatable).")
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Link a help-coin disbursement to the mint batch its reserve deposit paid for."""
    signer, passphrase = _key(ctx, key, passphrase_env)
    with ledger_access(ctx, node, passphrase) as ledger:
        link_funding(ledger, signer, campaign_id, seq, batch, account)
    done("linked", f"disbursement {seq} of {campaign_id} to batch {batch}")


@app.command("show")
def show(
    ctx: typer.Context,
    campaign_id: Annotated[
        str | None, typer.Argument(metavar="[CAMPAIGN]", help="One campaign's ledger.")
    ] = None,
    node: NodeUrl = None,
) -> None:
    """Every campaign, or one campaign's ledger of donations and disbursements, as JSON."""
    with ledger_access(ctx, node, None) as ledger:
        desk = DonationDesk(ledger)
        _echo(
            {"campaigns": desk.campaigns()} if campaign_id is None else desk.ledger_of(campaign_id)
        )


@app.command("trace")
def trace(
    ctx: typer.Context,
    receipt: Annotated[
        str | None, typer.Option(metavar="SECRET", help="A donor's receipt secret (or its hash).")
    ] = None,
    campaign: Annotated[str | None, typer.Option(metavar="CAMPAIGN")] = None,
    as_json: _Json = False,
    node: NodeUrl = None,
) -> None:
    """Trace a donation by its receipt secret, or a whole campaign, down to help-coin spending
    by merchant category."""
    if (receipt is None) == (campaign is None):
        raise typer.BadParameter("give exactly one of --receipt and --campaign")
    with ledger_access(ctx, node, None) as ledger:
        desk = DonationDesk(ledger)
        found = desk.trace_donor(receipt) if receipt is not None else None
        whole = desk.trace_campaign(campaign) if campaign is not None else None
    if as_json:
        _echo(found if found is not None else whole)
    elif found is not None:
        out().print(_donation_tree(found))
    elif whole is not None:
        out().print(_campaign_tree(whole))


def _coin_lines(node: Tree, coin: dict[str, Any]) -> None:
    basis = "exact" if coin["exact"] else "proportional"
    branch = node.add(f"help coin {coin['minted']:,} KRW to {coin['holders']} holders ({basis})")
    for category, amount in coin["spent"].items():
        branch.add(f"spent at {category}: {amount:,} KRW")
    branch.add(f"unspent: {coin['unspent']:,} KRW")
    branch.add(f"expired: {coin['expired']:,} KRW")


def _donation_tree(found: dict[str, Any]) -> Tree:
    donation = found["donation"]
    tree = Tree(
        f"donation {donation['seq']} to {donation['campaign_id']}: {donation['amount']:,} KRW"
    )
    for branch in found["branches"]:
        record = branch["disbursement"]
        node = tree.add(
            f"{branch['share']:,} KRW in disbursement {record['seq']} ({record['kind']}): "
            f"{record['purpose']['en']}"
        )
        if branch["coin"] is not None:
            _coin_lines(node, branch["coin"])
    if found["unallocated"]:
        tree.add(f"not yet disbursed: {found['unallocated']:,} KRW")
    return tree


def _campaign_tree(whole: dict[str, Any]) -> Tree:
    campaign = whole["campaign"]
    tree = Tree(
        f"campaign {campaign['campaign_id']}: raised {campaign['donated']:,}, "
        f"disbursed {campaign['disbursed']:,}, balance {campaign['balance']:,} KRW"
    )
    for row in whole["disbursements"]:
        record = row["disbursement"]
        node = tree.add(
            f"disbursement {record['seq']} ({record['kind']}) {record['amount']:,} KRW: "
            f"{record['purpose']['en']}"
        )
        if row["coin"] is not None:
            _coin_lines(node, row["coin"])
    return tree
