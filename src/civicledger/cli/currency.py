"""``civic currency``: distribute a currency to an eligibility list, show a currency, its daily
reconciliation report and its fraud flags; the treasury's, bank's, registrar's and enroller's
transactions (keystore keys); a holder's account, balance and payments, and a merchant's
payment requests and redemptions (the wallet's per-currency key).

Everything runs against the city directory's ledger, or a running node with ``--node URL``.

The logic is in ``civicledger.agency.distribution``, ``civicledger.agency.currency_report`` and
the ``currency`` contract (``civicledger.services.currency``); see docs/currency.md.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from civicledger.agency.currency_desk import CurrencyDesk
from civicledger.agency.currency_report import daily_report, fraud_flags
from civicledger.agency.distribution import CURRENCY_CONTRACT, Distribution, DistributionReport
from civicledger.agency.ledger import CityLedger, LedgerAccess, NodeLedger
from civicledger.agency.remote import ClientLedger
from civicledger.city import NODE_KEY, load_key
from civicledger.cli import _render
from civicledger.cli._common import err, json_object, out, passphrase_from_env, state
from civicledger.cli._ledger import (
    KeyName,
    NodeUrl,
    done,
    ledger_access,
    reference_hash,
    send_signed,
)
from civicledger.client import CivicClient
from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.currency.contract import MAX_AMOUNT, MAX_TIME_MS
from civicledger.services.currency.payment_request import PaymentRequest, payment_args
from civicledger.services.identity.qr_image import decode_qr_image, qr_png
from civicledger.services.identity.wallet import Wallet

app = typer.Typer(
    help="City-issued currencies: define, fund, mint, pay, redeem, settle, report, flag fraud.",
    no_args_is_help=True,
)

_CurrencyId = Annotated[str, typer.Argument(metavar="CURRENCY", help="The currency's id.")]


@app.command("distribute")
def distribute(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    eligibility: Annotated[
        Path,
        typer.Argument(
            metavar="LIST.csv", exists=True, dir_okay=False, help="CSV with account,amount rows."
        ),
    ],
    key: Annotated[str, typer.Option(metavar="TREASURY_KEY", help="Keystore key of the treasury.")],
    job: Annotated[
        Path,
        typer.Option(
            metavar="DIR",
            help="The job's directory (its progress); the same DIR resumes an interrupted run.",
        ),
    ],
    passphrase_env: Annotated[
        str | None,
        typer.Option(metavar="VAR", help="Passphrase of encrypted keys, from this variable."),
    ] = None,
) -> None:
    """Mint CURRENCY to every row of LIST.csv in batches (up to ~380 a transaction), with a
    progress bar.

    Interrupted (Ctrl-C, a crash), run the same command again: batches already minted are
    skipped, none is minted twice.
    """
    layout = state(ctx).city.require()
    passphrase = passphrase_from_env(passphrase_env)
    node_key = load_key(layout.keystore, NODE_KEY, passphrase)
    columns = (
        TextColumn("distributing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("recipients"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with (
            EmbeddedNode(layout.data_path, node_key) as node,
            Progress(*columns, console=err(), transient=True) as bar,
        ):
            task = bar.add_task("distribute", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            ledger = NodeLedger(layout, node, passphrase)
            report = Distribution(ledger, key, currency_id, job).run_file(eligibility, advance)
            # The bar stays on screen after a full run; after an error it goes, leaving the
            # one error line.
            bar.live.transient = False
    except KeyboardInterrupt:
        err().print(
            Text("interrupted: run the same command again to continue", style="bold yellow")
        )
        raise typer.Exit(130) from None
    _report(report)


def _report(report: DistributionReport) -> None:
    out().print(Text.assemble(("distributed ", "bold green"), f"job {report.job_id}"))
    out().print(
        _render.fields(
            [
                ("recipients", f"{report.recipients:,}"),
                ("amount", f"{report.amount:,} KRW"),
                ("batches", str(report.batches)),
                ("minted now", str(report.sent)),
                ("done before", str(report.already_done + report.found_done)),
            ]
        )
    )


@app.command("show")
def show(ctx: typer.Context, currency_id: _CurrencyId) -> None:
    """The currency's definition and totals, as JSON."""
    ledger = CityLedger(state(ctx).city.require())
    args = {"currency_id": currency_id}
    definition: Any = ledger.query(CURRENCY_CONTRACT, "currency", args)
    if definition is None:
        raise CivicError(f"there is no currency {currency_id!r}", reason="unknown_currency")
    totals = ledger.query(CURRENCY_CONTRACT, "totals", args)
    typer.echo(
        json.dumps({"definition": definition, "totals": totals}, ensure_ascii=False, indent=2)
    )


_DAY_MS = 86_400_000


def _utc_day(value: str | None) -> str:
    if value is None:
        return dt.datetime.now(dt.UTC).date().isoformat()
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as e:
        raise CivicError(f"{value[:40]!r} is not a YYYY-MM-DD day", reason="bad_day") from e


@app.command("report")
def report(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    day: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="The UTC day; today by default.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="json|csv", help="The output format.")
    ] = "json",
    out_file: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", dir_okay=False, help="Write here, not to stdout."),
    ] = None,
) -> None:
    """The daily reconciliation report of CURRENCY: minted, spent by category and region,
    redeemed, settled, expired, outstanding supply and reserve, with its checks.

    The report is written even when a check fails; the command then exits with an error.
    """
    if fmt not in ("json", "csv"):
        raise CivicError(f"--format is json or csv, not {fmt[:20]!r}", reason="bad_format")
    ledger = CityLedger(state(ctx).city.require())
    reconciled = daily_report(ledger, currency_id, _utc_day(day))
    text = reconciled.to_json() if fmt == "json" else reconciled.to_csv()
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        out_file.write_text(text, encoding="utf-8")
    reconciled.require_ok()


@app.command("flags")
def flags(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    since_days: Annotated[
        int, typer.Option(min=1, max=366, metavar="N", help="Look at the last N days.")
    ] = 7,
    links: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="JSON {holder: [accounts it controls]} known off the ledger.",
        ),
    ] = None,
) -> None:
    """Fraud flags of CURRENCY over the last N days (cash-out rings, fake-purchase bursts), as
    JSON; leads for an auditor, not verdicts."""
    controlled = _links(links) if links is not None else None
    ledger = CityLedger(state(ctx).city.require())
    since_ms = int(time.time() * 1000) - since_days * _DAY_MS
    found = fraud_flags(ledger, currency_id, since_ms, controlled=controlled)
    typer.echo(json.dumps([asdict(flag) for flag in found], ensure_ascii=False, indent=2))


def _links(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CivicError(f"cannot read {path}: {e}", reason="bad_links") from e
    valid = isinstance(data, dict) and all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in data.values()
    )
    if not valid:
        raise CivicError(f"{path} is not a JSON object of account lists", reason="bad_links")
    return {str(k): list(v) for k, v in data.items()}


# -- treasury, bank, registrar and enroller: signed with keystore keys --------------------------

_PassphraseEnv = Annotated[
    str | None,
    typer.Option(metavar="VAR", help="Passphrase of the key or wallet, from this variable."),
]
_WalletDir = Annotated[
    Path, typer.Option("--wallet", metavar="DIR", envvar="CIVIC_WALLET", help="The wallet.")
]
_Amount = Annotated[int, typer.Argument(metavar="AMOUNT", min=1, max=MAX_AMOUNT, help="Won.")]
_Account = Annotated[str, typer.Argument(metavar="ACCOUNT", help="The account's did:key.")]

merchant_app = typer.Typer(
    help="The merchant registry and a merchant's view.", no_args_is_help=True
)
app.add_typer(merchant_app, name="merchant")


def _access(ctx: typer.Context, node: str | None, passphrase: str | None) -> Iterator[LedgerAccess]:
    """The ledger: the city directory's, or a node's over HTTP anchored in its genesis."""
    if node is None:
        yield CityLedger(state(ctx).city.require(), passphrase)
        return
    with CivicClient(node, state(ctx).city.genesis()) as client:
        yield ClientLedger(client)


@app.command("define")
def define(
    ctx: typer.Context,
    definition: Annotated[
        Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="JSON args.")
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Define a currency from a JSON file of ``currency.define`` arguments (treasury)."""
    args = json_object(definition.read_text(encoding="utf-8"), "FILE")
    send_signed(ctx, node, key, CURRENCY_CONTRACT, "define", args, passphrase_env)
    done("defined", f"currency {args.get('currency_id')}")


@app.command("reserve")
def reserve(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    amount: _Amount,
    reference: Annotated[
        str, typer.Option(metavar="REF", help="The bank's deposit record; only its hash is sent.")
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Attest that the custodian bank's KRW reserve for CURRENCY grew by AMOUNT (bank)."""
    args = {"currency_id": currency_id, "amount": amount, "reference": reference_hash(reference)}
    send_signed(ctx, node, key, CURRENCY_CONTRACT, "attest_reserve", args, passphrase_env)
    done("reserved", f"{amount:,} KRW for {currency_id}")


@app.command("mint")
def mint(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    account: _Account,
    amount: _Amount,
    key: KeyName,
    reason: Annotated[str, typer.Option(metavar="CODE", help="Why (a code).")] = "grant",
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Mint AMOUNT of CURRENCY to an enrolled ACCOUNT, against the reserve (treasury)."""
    args = {"currency_id": currency_id, "to": account, "amount": amount, "reason": reason}
    send_signed(ctx, node, key, CURRENCY_CONTRACT, "mint", args, passphrase_env)
    done("minted", f"{amount:,} {currency_id} to {account}")


@app.command("enroll")
def enroll(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    account: _Account,
    key: KeyName,
    region: Annotated[
        str | None, typer.Option(metavar="R", help="The holder's coarse region code.")
    ] = None,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Enrol ACCOUNT as a holder of CURRENCY (enroller).

    ACCOUNT is the holder's `civic currency account`; the enroller checks the holder's
    credential off the ledger first."""
    args = {"currency_id": currency_id, "account": account, "region": region}
    send_signed(ctx, node, key, CURRENCY_CONTRACT, "enroll", args, passphrase_env)
    done("enrolled", f"{account} in {currency_id}")


@app.command("attest")
def attest(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    account: _Account,
    activity: Annotated[str, typer.Argument(help="An activity the currency rewards.")],
    quantity: Annotated[int, typer.Argument(min=1, help="Units (hours, kWh saved, ...).")],
    reference: Annotated[
        str, typer.Option(metavar="REF", help="The attestor's record; only its hash is sent.")
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Attest an activity (volunteer hours, energy saved) that earns reward points
    (activity attestor); the currency's rate for the activity sets the points."""
    args = {
        "currency_id": currency_id,
        "account": account,
        "activity": activity,
        "quantity": quantity,
        "reference": reference_hash(reference),
    }
    result = send_signed(ctx, node, key, CURRENCY_CONTRACT, "attest_activity", args, passphrase_env)
    minted = result.get("amount") if isinstance(result, dict) else None
    done("attested", f"{quantity} {activity} for {account}" + (f": {minted:,}" if minted else ""))


@app.command("expire")
def expire(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Return every expired lot's unspent value to the issuer: pages through the holders and
    sends ``expire`` for each one holding expired value (anyone may; run it daily)."""
    passphrase = passphrase_from_env(passphrase_env)
    signer = load_key(state(ctx).city.require().keystore, key, passphrase)
    swept = accounts = 0
    with ledger_access(ctx, node, passphrase) as ledger:
        after = ""
        while True:
            page = ledger.query(
                CURRENCY_CONTRACT, "accounts", {"currency_id": currency_id, "after": after}
            )
            for account in page["accounts"]:
                balance = ledger.query(
                    CURRENCY_CONTRACT,
                    "balance",
                    {"currency_id": currency_id, "account": account["account"], "limit": 1},
                )
                if balance and balance.get("expired_pending", 0) > 0:
                    ledger.send_as(
                        signer,
                        CURRENCY_CONTRACT,
                        "expire",
                        {"currency_id": currency_id, "account": account["account"]},
                    )
                    swept += int(balance["expired_pending"])
                    accounts += 1
            if page.get("next") is None:
                break
            after = str(page["next"])
    done("expired", f"{swept:,} KRW from {accounts} account(s) returned to the issuer")


@app.command("settle")
def settle(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    order_id: Annotated[int, typer.Argument(metavar="ORDER", min=1, help="The order's id.")],
    reference: Annotated[
        str, typer.Option(metavar="REF", help="The bank's payout record; only its hash is sent.")
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Mark a merchant's settlement ORDER paid; the reserve shrinks by its amount (bank)."""
    args = {
        "currency_id": currency_id,
        "order_id": order_id,
        "bank_reference": reference_hash(reference),
    }
    result = send_signed(ctx, node, key, CURRENCY_CONTRACT, "settle", args, passphrase_env)
    paid = result.get("amount") if isinstance(result, dict) else None
    done("settled", f"order {order_id}" + (f": {paid:,} KRW" if isinstance(paid, int) else ""))


@merchant_app.command("register")
def merchant_register(
    ctx: typer.Context,
    merchant_id: Annotated[str, typer.Argument(metavar="MERCHANT_ID")],
    business_number: Annotated[
        str,
        typer.Option(metavar="N", help="Business registration number; hashed here, never sent."),
    ],
    category: Annotated[str, typer.Option(metavar="C", help="The merchant category code.")],
    region: Annotated[str, typer.Option(metavar="R", help="The merchant region code.")],
    account: Annotated[
        str,
        typer.Option(metavar="DID", help="The merchant's account (its wallet's currency key)."),
    ],
    key: KeyName,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Register a merchant, shared by every currency (merchant registrar)."""
    number = "".join(ch for ch in business_number if ch.isalnum())
    args = {
        "merchant_id": merchant_id,
        "business_number_hash": reference_hash(number or business_number),
        "category": category,
        "region": region,
        "account": account,
    }
    send_signed(ctx, node, key, CURRENCY_CONTRACT, "register_merchant", args, passphrase_env)
    done("registered", f"merchant {merchant_id}")


@merchant_app.command("show")
def merchant_show(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    merchant_id: Annotated[str, typer.Argument(metavar="MERCHANT_ID")],
    node: NodeUrl = None,
) -> None:
    """The merchant view, as JSON: its record, balance in CURRENCY and pending settlements."""
    with ledger_access(ctx, node, None) as ledger:
        view = CurrencyDesk(ledger, state(ctx).city.genesis().chain_id).merchant_view(
            currency_id, merchant_id
        )
    typer.echo(json.dumps(view, ensure_ascii=False, indent=2))


# -- holders and merchants: signed with the wallet's currency key -------------------------------


def _currency_key(wallet: Path, currency_id: str, passphrase_env: str | None) -> PrivateKey:
    return Wallet.open(wallet).currency_key(
        currency_id, passphrase=passphrase_from_env(passphrase_env)
    )


@app.command("account")
def account(
    currency_id: _CurrencyId,
    wallet: _WalletDir = Path("wallet"),
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """The wallet's account (did:key) in CURRENCY, for enrolment or merchant registration."""
    typer.echo(_currency_key(wallet, currency_id, passphrase_env).public.did)


@app.command("balance")
def balance(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    wallet: _WalletDir = Path("wallet"),
    history: Annotated[
        int, typer.Option(min=0, max=100, metavar="N", help="Show the last N history entries.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """The wallet's balance in CURRENCY, its lots and last history entries.

    Spendable is the balance less expired lots not yet collected; lots are listed first to
    expire first."""
    did = _currency_key(wallet, currency_id, passphrase_env).public.did
    with ledger_access(ctx, node, None) as ledger:
        desk = CurrencyDesk(ledger, state(ctx).city.genesis().chain_id)
        desk.currency(currency_id)
        found = desk.balance(currency_id, did)
        count = int(found.get("history", 0))
        entries: list[Any] = []
        if history:
            page = desk.history(currency_id, did, after=max(0, count - history), limit=history)
            entries = list(page["entries"])
    if as_json:
        view = {
            "account": did,
            "balance": found["balance"],
            "spendable": found["spendable"],
            "expired_pending": found["expired_pending"],
            "lots": found["lots"],
            "history": entries,
        }
        typer.echo(json.dumps(view, ensure_ascii=False, indent=2))
        return
    console = out()
    console.print(
        _render.fields(
            [
                ("account", did),
                ("spendable", f"{found['spendable']:,}"),
                ("balance", f"{found['balance']:,}"),
                ("expired", f"{found['expired_pending']:,}"),
            ]
        )
    )
    if found["lots"]:
        lots = Table("lot", "remaining", "expires (UTC)")
        for lot in found["lots"]:
            lots.add_row(str(lot["lot_id"]), f"{lot['remaining']:,}", _when(lot["expires_ms"]))
        console.print(lots)
    if entries:
        table = Table("#", "when (UTC)", "kind", "change", "balance", "counterparty")
        for entry in entries:
            table.add_row(
                str(entry["seq"]),
                _when(entry["time_ms"]),
                str(entry["kind"]),
                f"{entry['change']:+,}",
                f"{entry['balance']:,}",
                str(entry.get("counterparty") or ""),
            )
        console.print(table)


def _when(time_ms: object) -> str:
    if not isinstance(time_ms, int) or time_ms >= MAX_TIME_MS:
        return "never"
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _request_text(text: str | None, image: Path | None) -> str:
    if (text is None) == (image is None):
        raise CivicError("give one of --request or --request-image", reason="bad_payment_request")
    if image is not None:
        try:
            data = image.read_bytes()
        except OSError as e:
            raise CivicError(f"cannot read {image}: {e}", reason="bad_payment_request") from e
        return decode_qr_image(data)
    assert text is not None
    return text.strip()


@app.command("pay")
def pay(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    request: Annotated[
        str | None, typer.Option(metavar="QRTEXT", help="The request's civic-pay: text.")
    ] = None,
    request_image: Annotated[
        Path | None,
        typer.Option(metavar="PNG", exists=True, dir_okay=False, help="A photo of the QR code."),
    ] = None,
    wallet: _WalletDir = Path("wallet"),
    amount: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_AMOUNT, help="Won: required for an open request."),
    ] = None,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Pay a merchant's payment request (QR text or image) from the wallet.

    The request is checked first: this chain, unexpired, signed by the merchant's account key,
    and that account is the registered, active merchant's."""
    text = _request_text(request, request_image)
    key = _currency_key(wallet, currency_id, passphrase_env)
    chain_id = state(ctx).city.genesis().chain_id
    with ledger_access(ctx, node, None) as ledger:
        checked = CurrencyDesk(ledger, chain_id).check_request(text, int(time.time() * 1000))
        asked = checked.request
        asked.verify_signature()
        if asked.currency_id != currency_id:
            raise CivicError(
                f"the request is for {asked.currency_id!r}, not {currency_id!r}",
                reason="currency_mismatch",
            )
        args = payment_args(asked, amount)
        result = ledger.send_as(key, CURRENCY_CONTRACT, "pay", args)
    rows = [("paid", f"{args['amount']:,} {currency_id}"), ("merchant", asked.merchant_id)]
    if asked.memo:
        rows.append(("memo", asked.memo))
    if isinstance(result, dict) and isinstance(result.get("balance"), int):
        rows.append(("balance", f"{result['balance']:,}"))
    out().print(_render.fields(rows))


@app.command("pay-to")
def pay_to(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    to: _Account,
    amount: _Amount,
    wallet: _WalletDir = Path("wallet"),
    memo: Annotated[
        str | None, typer.Option(metavar="M", help="A note; only its hash is sent.")
    ] = None,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Pay ACCOUNT directly: holder to holder (if p2p is allowed) or merchant to merchant."""
    key = _currency_key(wallet, currency_id, passphrase_env)
    args: dict[str, Any] = {"currency_id": currency_id, "to": to, "amount": amount}
    if memo:
        args["memo_hash"] = sha256(memo.encode("utf-8")).hex()
    with ledger_access(ctx, node, None) as ledger:
        result = ledger.send_as(key, CURRENCY_CONTRACT, "pay", args)
    rows = [("paid", f"{amount:,} {currency_id}"), ("to", to)]
    if isinstance(result, dict) and isinstance(result.get("balance"), int):
        rows.append(("balance", f"{result['balance']:,}"))
    out().print(_render.fields(rows))


@app.command("request")
def request_payment(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    merchant_id: Annotated[str, typer.Option(metavar="ID", help="The merchant's id.")],
    wallet: _WalletDir = Path("wallet"),
    amount: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_AMOUNT, help="Won; without it the payer types the amount."),
    ] = None,
    memo: Annotated[str, typer.Option(metavar="M", help="Shown to the payer.")] = "",
    expires_in: Annotated[
        int, typer.Option(min=1, max=86_400, metavar="S", help="Valid for S seconds.")
    ] = 300,
    qr: Annotated[
        Path | None,
        typer.Option(metavar="PNG", dir_okay=False, help="Also write the QR code here."),
    ] = None,
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Make a signed payment request: prints its civic-pay: text, --qr writes its QR code.

    The request is signed by the merchant's account key, its wallet's currency key, which must
    be the account the merchant is registered with."""
    key = _currency_key(wallet, currency_id, passphrase_env)
    chain_id = state(ctx).city.genesis().chain_id
    with ledger_access(ctx, node, None) as ledger:
        record = CurrencyDesk(ledger, chain_id).merchant(merchant_id)
    if record.get("account") != key.public.did:
        raise CivicError(
            f"this wallet's account is not merchant {merchant_id!r}'s account",
            reason="account_mismatch",
        )
    asked = PaymentRequest(
        currency_id=currency_id,
        merchant_id=merchant_id,
        account=key.public.did,
        amount=amount,
        memo=memo,
        expires_ms=int(time.time() * 1000) + expires_in * 1000,
        chain_id=chain_id,
    ).signed(key)
    text = asked.to_qr_payload()
    if qr is not None:
        try:
            qr.write_bytes(qr_png(text))
        except OSError as e:
            raise CivicError(f"cannot write {qr}: {e}", reason="io_error") from e
    typer.echo(text)


@app.command("redeem")
def redeem(
    ctx: typer.Context,
    currency_id: _CurrencyId,
    amount: _Amount,
    payout_reference: Annotated[
        str, typer.Option(metavar="REF", help="The KRW payout account; only its hash is sent.")
    ],
    wallet: _WalletDir = Path("wallet"),
    node: NodeUrl = None,
    passphrase_env: _PassphraseEnv = None,
) -> None:
    """Redeem AMOUNT of the merchant's balance for KRW (a settlement order).

    The amount is burnt at once; the custodian bank pays the order (`civic currency settle`)."""
    key = _currency_key(wallet, currency_id, passphrase_env)
    args = {
        "currency_id": currency_id,
        "amount": amount,
        "payout_reference_hash": reference_hash(payout_reference),
    }
    with ledger_access(ctx, node, None) as ledger:
        order = ledger.send_as(key, CURRENCY_CONTRACT, "redeem", args)
    rows = [("redeemed", f"{amount:,} {currency_id}")]
    if isinstance(order, dict):
        rows.append(("order", str(order.get("order_id"))))
    out().print(_render.fields(rows))
