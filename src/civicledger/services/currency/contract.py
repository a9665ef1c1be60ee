"""The ``currency`` contract: define, back, issue, spend, redeem and expire city tokens.

Roles (governance roles granted by root): ``treasury`` defines currencies and mints against the
reserve; ``custodian_bank`` attests reserve deposits, KRW purchases and settlement payouts;
``merchant_registrar`` registers and suspends merchants; ``enroller`` enrols holders (after
checking their credential off the ledger); ``activity_attestor`` attests activity that earns
reward points. Payments and redemptions are signed by the paying account's own key.

Holders' value lives in lots ``{lot_id, amount, remaining, expires_ms}``; spending takes from the
lots that expire first (ties by lot id: the lot key sorts by expiry, then id) and first sweeps the
payer's lots that have expired, whose remainder leaves the supply (``expired``), as ``expire``
does for anyone. Value paid from one holder to another keeps its lots' expiry. Merchants hold a
plain balance that never expires.

Invariants (see the package docstring): ``supply == minted - burned - expired``; the balances sum
to the supply; nothing is negative; ``reserve >= supply + pending_settlement``; caps and spending
rules hold. Every refusal happens before any write is kept (a failed transaction's writes are
discarded by the executor), so a refusal never leaves a half-applied change.

State (under ``currency/``):
    def/<cur>                               the definition
    totals/<cur>                            minted, burned, expired, supply, reserve, bonus_funded,
                                            pending_settlement, settled, counters
    account/<cur>/<did>                     {kind: holder|merchant, region, balance, lots,
                                            month, purchased, history}
    enrolled/<did>/<cur>                    marks a holder key (a merchant key may not be one)
    lot/<cur>/<did>/<expires_ms,16>/<id,12> a holder's lot
    history/<cur>/<did>/<seq,12>            the account's entries, oldest first
    merchant/<merchant_id>                  {business_number_hash, category, region, account,
                                            status}
    merchant_account/<did>                  the merchant id whose account this key is
    order/<cur>/<order_id,12>               a settlement order (pending, then paid)
    batch/<cur>/<batch_id>                  a finished mint batch (``batch_done`` on a resend)
    reference/<cur>/<kind>/<reference>      a used bank or attestor reference (no double counting)
    day/<cur>/<YYYY-MM-DD>                  the day's figures for reconciliation (UTC)
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from civicledger.contracts.base import (
    HASH_PATTERN,
    PUBLIC,
    Args,
    Contract,
    DidKey,
    QueryContext,
    TxContext,
    has_role,
    query,
    transaction,
)
from civicledger.contracts.governance import CREDENTIAL_TYPE_PATTERN

__all__ = [
    "ACTIVITY_ATTESTOR_ROLE",
    "CONTRACT_NAME",
    "CUSTODIAN_ROLE",
    "ENROLLER_ROLE",
    "MAX_AMOUNT",
    "MAX_BATCH",
    "MAX_LOTS",
    "MAX_PAGE",
    "MERCHANT_REGISTRAR_ROLE",
    "TREASURY_ROLE",
    "Currency",
]

CONTRACT_NAME = "currency"
TREASURY_ROLE = "treasury"
CUSTODIAN_ROLE = "custodian_bank"
MERCHANT_REGISTRAR_ROLE = "merchant_registrar"
ENROLLER_ROLE = "enroller"
ACTIVITY_ATTESTOR_ROLE = "activity_attestor"

CURRENCY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""Categories, regions, activities, mint reasons, merchant and batch ids."""
SYMBOL_PATTERN = r"^[A-Z0-9]{1,12}$"
MAX_AMOUNT = 10**12
"""The largest amount (KRW) of one operation."""
MAX_TOTAL = 2**53 - 1
"""Totals stay JSON-safe integers."""
MAX_TIME_MS = 2**53 - 1
MAX_BATCH = 500
MAX_LOTS = 1000
"""Live lots per holder account (``too_many_lots`` above)."""
MAX_PAGE = 1000
MAX_LIST = 100
"""Categories, regions and activities of a definition."""
DAY_MS = 86_400_000
BASIS_POINTS = 10_000

Krw = Annotated[int, Field(ge=1, le=MAX_AMOUNT)]
"""An amount of one operation in won: an integer in ``1..MAX_AMOUNT``."""


# -- argument models ----------------------------------------------------------------------------


def _codes(values: list[str], what: str) -> list[str]:
    for value in values:
        if re.fullmatch(CODE_PATTERN, value) is None:
            raise ValueError(f"{value[:70]!r} is not a {what} code")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} codes repeat")
    return values


class Text(Args):
    ko: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)


class CurrencyRef(Args):
    currency_id: str = Field(pattern=CURRENCY_ID_PATTERN)


class Define(CurrencyRef):
    name: Text
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    kind: Literal["general", "voucher", "points"]
    holder_credential: str = Field(pattern=CREDENTIAL_TYPE_PATTERN)
    spend_categories: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    """Merchant categories holders may pay; empty means any."""
    spend_regions: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    """Merchant regions holders may pay in; empty means any."""
    p2p: bool = False
    lot_ttl_days: int | None = Field(default=None, ge=1, le=36_500)
    """How long minted value stays spendable; ``None``: it never expires."""
    balance_cap: int | None = Field(default=None, ge=1, le=MAX_AMOUNT)
    monthly_purchase_cap: int | None = Field(default=None, ge=1, le=MAX_AMOUNT)
    purchase_bonus_bp: int = Field(default=0, ge=0, le=BASIS_POINTS)
    activity_rates: dict[str, int] = Field(default_factory=dict, max_length=MAX_LIST)
    """Points minted per unit of each activity (``{"volunteer_hour": 700}``)."""

    @field_validator("spend_categories")
    @classmethod
    def _categories(cls, values: list[str]) -> list[str]:
        return _codes(values, "category")

    @field_validator("spend_regions")
    @classmethod
    def _regions(cls, values: list[str]) -> list[str]:
        return _codes(values, "region")

    @field_validator("activity_rates")
    @classmethod
    def _rates(cls, rates: dict[str, int]) -> dict[str, int]:
        _codes(list(rates), "activity")
        for activity, rate in rates.items():
            if not 1 <= rate <= MAX_AMOUNT:
                raise ValueError(f"the rate of {activity!r} is not in 1..{MAX_AMOUNT}")
        return rates


class AttestReserve(CurrencyRef):
    amount: Krw
    reference: str = Field(pattern=HASH_PATTERN)


class Mint(CurrencyRef):
    to: DidKey
    amount: Krw
    reason: str = Field(pattern=CODE_PATTERN)


class BatchItem(Args):
    to: DidKey
    amount: Krw
    reason: str = Field(default="distribution", pattern=CODE_PATTERN)


class MintBatch(CurrencyRef):
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)
    batch_id: str = Field(pattern=CODE_PATTERN)


class Enroll(CurrencyRef):
    account: DidKey
    region: str | None = Field(default=None, pattern=CODE_PATTERN)
    holder_ref: str | None = Field(default=None, pattern=HASH_PATTERN)
    """The enroller's pseudonym of the holder's credential in this currency (an HMAC only the
    enroller can compute): one credential, one account per currency, whatever wallet asks."""


class RegisterMerchant(Args):
    merchant_id: str = Field(pattern=CODE_PATTERN)
    business_number_hash: str = Field(pattern=HASH_PATTERN)
    category: str = Field(pattern=CODE_PATTERN)
    region: str = Field(pattern=CODE_PATTERN)
    account: DidKey


class MerchantRef(Args):
    merchant_id: str = Field(pattern=CODE_PATTERN)


class Purchase(CurrencyRef):
    account: DidKey
    amount: Krw
    bank_reference: str = Field(pattern=HASH_PATTERN)


class Pay(CurrencyRef):
    to: DidKey
    amount: Krw
    memo_hash: str | None = Field(default=None, pattern=HASH_PATTERN)


class Redeem(CurrencyRef):
    amount: Krw
    payout_reference_hash: str = Field(pattern=HASH_PATTERN)


class Settle(CurrencyRef):
    order_id: int = Field(ge=1, le=MAX_TOTAL)
    bank_reference: str = Field(pattern=HASH_PATTERN)


class Expire(CurrencyRef):
    account: DidKey
    limit: int = Field(default=MAX_PAGE, ge=1, le=MAX_PAGE)


class AttestActivity(CurrencyRef):
    account: DidKey
    activity: str = Field(pattern=CODE_PATTERN)
    quantity: int = Field(ge=1, le=MAX_AMOUNT)
    reference: str = Field(pattern=HASH_PATTERN)


class AccountRef(CurrencyRef):
    account: str = Field(max_length=128)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    """How many lots to list."""


class HistoryPage(CurrencyRef):
    account: str = Field(max_length=128)
    after: int = Field(default=0, ge=0, le=MAX_TOTAL)
    """Entries with a sequence number above this (the ``next`` of the previous page)."""
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class AccountsPage(CurrencyRef):
    after: str = Field(default="", max_length=128)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class MerchantsPage(Args):
    after: str = Field(default="", max_length=64)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class OrdersPage(CurrencyRef):
    after: int = Field(default=0, ge=0, le=MAX_TOTAL)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    status: Literal["pending", "paid"] | None = None


class DailyRange(CurrencyRef):
    from_day: str = Field(default="0000-00-00", pattern=r"^\d{4}-\d{2}-\d{2}$")
    to_day: str = Field(default="9999-99-99", pattern=r"^\d{4}-\d{2}-\d{2}$")
    limit: int = Field(default=366, ge=1, le=MAX_PAGE)

    @model_validator(mode="after")
    def _ordered(self) -> DailyRange:
        if self.from_day > self.to_day:
            raise ValueError("from_day is after to_day")
        return self


# -- keys and small pure helpers ----------------------------------------------------------------


def _def_key(cur: str) -> str:
    return f"def/{cur}"


def _totals_key(cur: str) -> str:
    return f"totals/{cur}"


def _account_key(cur: str, did: str) -> str:
    return f"account/{cur}/{did}"


def _lot_prefix(cur: str, did: str) -> str:
    return f"lot/{cur}/{did}/"


def _lot_key(cur: str, did: str, expires_ms: int, lot_id: int) -> str:
    return f"{_lot_prefix(cur, did)}{expires_ms:016d}/{lot_id:012d}"


def _history_key(cur: str, did: str, seq: int) -> str:
    return f"history/{cur}/{did}/{seq:012d}"


def _order_key(cur: str, order_id: int) -> str:
    return f"order/{cur}/{order_id:012d}"


def _day_of(time_ms: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=time_ms // DAY_MS)).isoformat()


def _month_of(time_ms: int) -> str:
    return _day_of(time_ms)[:7]


def _new_totals() -> dict[str, Any]:
    return {
        "minted": 0,
        "burned": 0,
        "expired": 0,
        "supply": 0,
        "reserve": 0,
        "bonus_funded": 0,
        "pending_settlement": 0,
        "settled": 0,
        "holders": 0,
        "lot_seq": 0,
        "order_seq": 0,
    }


def _new_day(day: str) -> dict[str, Any]:
    return {
        "day": day,
        "minted": 0,
        "spent": 0,
        "spent_by_category": {},
        "spent_by_region": {},
        "b2b": 0,
        "p2p": 0,
        "redeemed": 0,
        "settled": 0,
        "expired": 0,
        "supply": 0,
        "reserve": 0,
    }


def _new_account(did: str, kind: str, region: str | None, now_ms: int) -> dict[str, Any]:
    return {
        "account": did,
        "kind": kind,
        "region": region,
        "balance": 0,
        "lot_count": 0,
        "month": _month_of(now_ms),
        "purchased": 0,
        "history": 0,
        "created_ms": now_ms,
    }


# -- the contract -------------------------------------------------------------------------------


class Currency(Contract):
    name = CONTRACT_NAME

    # -- definition and reserve --

    @transaction(Define, policy=has_role(TREASURY_ROLE))
    def define(self, ctx: TxContext, args: Define) -> dict[str, Any]:
        """Define a currency, voucher or points scheme with its spending rules and caps."""
        if ctx.get(_def_key(args.currency_id)) is not None:
            ctx.fail("currency_exists", f"currency {args.currency_id!r} already exists")
        record = {
            **args.model_dump(),
            "defined_by": ctx.signer,
            "defined_ms": ctx.time_ms,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_def_key(args.currency_id), record)
        ctx.put(_totals_key(args.currency_id), _new_totals())
        ctx.emit("currency_defined", currency_id=args.currency_id, kind=args.kind)
        return record

    @transaction(AttestReserve, policy=has_role(CUSTODIAN_ROLE))
    def attest_reserve(self, ctx: TxContext, args: AttestReserve) -> dict[str, Any]:
        """The custodian bank holds ``amount`` more KRW for the currency."""
        self._definition(ctx, args.currency_id)
        totals = self._totals(ctx, args.currency_id)
        self._use_reference(ctx, args.currency_id, "reserve", args.reference)
        self._grow_reserve(ctx, totals, args.amount)
        self._save_totals(ctx, args.currency_id, totals)
        ctx.emit("reserve_attested", currency_id=args.currency_id, amount=args.amount)
        return totals

    # -- issuing --

    @transaction(Mint, policy=has_role(TREASURY_ROLE))
    def mint(self, ctx: TxContext, args: Mint) -> dict[str, Any]:
        """Mint ``amount`` to an enrolled holder against the reserve."""
        definition = self._definition(ctx, args.currency_id)
        totals = self._totals(ctx, args.currency_id)
        self._check_reserve(ctx, totals, args.amount)
        lot = self._issue(ctx, definition, totals, args.to, args.amount, args.reason)
        self._save_totals(ctx, args.currency_id, totals, minted=args.amount)
        return lot

    @transaction(MintBatch, policy=has_role(TREASURY_ROLE))
    def mint_batch(self, ctx: TxContext, args: MintBatch) -> dict[str, Any]:
        """Mint to up to 500 holders at once, all or nothing; a finished ``batch_id`` is refused."""
        definition = self._definition(ctx, args.currency_id)
        batch_key = f"batch/{args.currency_id}/{args.batch_id}"
        if ctx.get(batch_key) is not None:
            ctx.fail("batch_done", f"batch {args.batch_id!r} was already minted")
        totals = self._totals(ctx, args.currency_id)
        amount = sum(item.amount for item in args.items)
        self._check_reserve(ctx, totals, amount)
        for item in args.items:
            self._issue(ctx, definition, totals, item.to, item.amount, item.reason, emit=False)
        self._save_totals(ctx, args.currency_id, totals, minted=amount)
        record = {
            "batch_id": args.batch_id,
            "items": len(args.items),
            "amount": amount,
            "height": ctx.height,
            "tx_id": ctx.tx_id,
        }
        ctx.put(batch_key, record)
        ctx.emit("batch_minted", currency_id=args.currency_id, batch_id=args.batch_id)
        return record

    @transaction(Purchase, policy=has_role(CUSTODIAN_ROLE))
    def purchase(self, ctx: TxContext, args: Purchase) -> dict[str, Any]:
        """A holder paid ``amount`` KRW: mint it and the city-funded bonus, both backed."""
        definition = self._definition(ctx, args.currency_id)
        totals = self._totals(ctx, args.currency_id)
        account = self._holder(ctx, args.currency_id, args.account)
        month = _month_of(ctx.time_ms)
        purchased = account["purchased"] if account["month"] == month else 0
        cap = definition["monthly_purchase_cap"]
        if cap is not None and purchased + args.amount > cap:
            ctx.fail(
                "monthly_cap",
                f"{purchased} bought this month; {args.amount} more exceeds the cap of {cap}",
            )
        self._use_reference(ctx, args.currency_id, "purchase", args.bank_reference)
        bonus = args.amount * definition["purchase_bonus_bp"] // BASIS_POINTS
        self._grow_reserve(ctx, totals, args.amount + bonus)
        totals["bonus_funded"] += bonus
        account["month"], account["purchased"] = month, purchased + args.amount
        ctx.put(_account_key(args.currency_id, args.account), account)
        lot = self._issue(ctx, definition, totals, args.account, args.amount + bonus, "purchase")
        self._save_totals(ctx, args.currency_id, totals, minted=args.amount + bonus)
        return {**lot, "bonus": bonus}

    @transaction(AttestActivity, policy=has_role(ACTIVITY_ATTESTOR_ROLE))
    def attest_activity(self, ctx: TxContext, args: AttestActivity) -> dict[str, Any]:
        """Mint reward points for attested activity at the currency's per-activity rate."""
        definition = self._definition(ctx, args.currency_id)
        rate = definition["activity_rates"].get(args.activity)
        if rate is None:
            ctx.fail("unknown_activity", f"{args.activity!r} earns nothing in this currency")
        amount = rate * args.quantity
        if amount > MAX_AMOUNT:
            ctx.fail("amount_too_large", f"{amount} points exceed {MAX_AMOUNT}")
        totals = self._totals(ctx, args.currency_id)
        self._check_reserve(ctx, totals, amount)
        self._use_reference(ctx, args.currency_id, "activity", args.reference)
        lot = self._issue(ctx, definition, totals, args.account, amount, args.activity)
        self._save_totals(ctx, args.currency_id, totals, minted=amount)
        return lot

    # -- holders and merchants --

    @transaction(Enroll, policy=has_role(ENROLLER_ROLE))
    def enroll(self, ctx: TxContext, args: Enroll) -> dict[str, Any]:
        """Enrol a holder's key (its credential was checked off the ledger) with a coarse region."""
        self._definition(ctx, args.currency_id)
        if ctx.get(_account_key(args.currency_id, args.account)) is not None:
            ctx.fail("already_enrolled", "this account already exists in this currency")
        if ctx.get(f"merchant_account/{args.account}") is not None:
            ctx.fail("account_is_merchant", "a merchant's account cannot be a holder")
        if args.holder_ref is not None:
            ref_key = f"holder_ref/{args.currency_id}/{args.holder_ref}"
            if ctx.get(ref_key) is not None:
                ctx.fail("credential_enrolled", "this credential already has an account here")
            ctx.put(ref_key, args.account)
        account = _new_account(args.account, "holder", args.region, ctx.time_ms)
        ctx.put(_account_key(args.currency_id, args.account), account)
        ctx.put(f"enrolled/{args.account}/{args.currency_id}", True)
        totals = self._totals(ctx, args.currency_id)
        totals["holders"] += 1
        ctx.put(_totals_key(args.currency_id), totals)
        ctx.emit("holder_enrolled", currency_id=args.currency_id, account=args.account)
        return account

    @transaction(RegisterMerchant, policy=has_role(MERCHANT_REGISTRAR_ROLE))
    def register_merchant(self, ctx: TxContext, args: RegisterMerchant) -> dict[str, Any]:
        """Register a merchant (every currency), its category, region and account key."""
        if ctx.get(f"merchant/{args.merchant_id}") is not None:
            ctx.fail("merchant_exists", f"merchant {args.merchant_id!r} already exists")
        if ctx.get(f"merchant_account/{args.account}") is not None:
            ctx.fail("account_in_use", "this key is already a merchant's account")
        if next(ctx.scan(f"enrolled/{args.account}/", 1), None) is not None:
            ctx.fail("account_in_use", "this key is an enrolled holder's account")
        record = {
            **args.model_dump(),
            "status": "active",
            "registered_ms": ctx.time_ms,
            "registered_by": ctx.signer,
            "suspended_ms": None,
        }
        ctx.put(f"merchant/{args.merchant_id}", record)
        ctx.put(f"merchant_account/{args.account}", args.merchant_id)
        ctx.emit("merchant_registered", merchant_id=args.merchant_id, category=args.category)
        return record

    @transaction(MerchantRef, policy=has_role(MERCHANT_REGISTRAR_ROLE))
    def suspend_merchant(self, ctx: TxContext, args: MerchantRef) -> dict[str, Any]:
        """Suspend a merchant: it can no longer be paid nor pay (it may still redeem)."""
        record = ctx.get(f"merchant/{args.merchant_id}")
        if record is None:
            ctx.fail("unknown_merchant", f"no merchant {args.merchant_id!r}")
        if record["status"] == "suspended":
            ctx.fail("merchant_suspended", f"merchant {args.merchant_id!r} is already suspended")
        record["status"], record["suspended_ms"] = "suspended", ctx.time_ms
        ctx.put(f"merchant/{args.merchant_id}", record)
        ctx.emit("merchant_suspended", merchant_id=args.merchant_id)
        return dict(record)

    # -- spending --

    @transaction(Pay, policy=PUBLIC)
    def pay(self, ctx: TxContext, args: Pay) -> dict[str, Any]:
        """Pay from the signer: holder→merchant, merchant→merchant, holder→holder (p2p)."""
        cur = args.currency_id
        definition = self._definition(ctx, cur)
        totals = self._totals(ctx, cur)
        if args.to == ctx.signer:
            ctx.fail("self_payment", "an account cannot pay itself")
        payer_merchant = self._merchant_of(ctx, ctx.signer)
        payer = ctx.get(_account_key(cur, ctx.signer))
        if payer is None and payer_merchant is not None:
            payer = _new_account(ctx.signer, "merchant", payer_merchant["region"], ctx.time_ms)
        if payer is None:
            ctx.fail("not_enrolled", "the signer has no account in this currency")
        payee_merchant = self._merchant_of(ctx, args.to)
        self._check_route(ctx, definition, payer_merchant, payee_merchant)
        portions = None
        if payer_merchant is None:
            portions = self._take_lots(ctx, cur, payer, args.amount, totals)
        elif payer["balance"] < args.amount:
            ctx.fail("insufficient_funds", f"the balance {payer['balance']} is too small")
        else:
            payer["balance"] -= args.amount
        payee = self._receiver(ctx, cur, args.to, payee_merchant)
        self._credit(ctx, definition, totals, payee, args.amount, portions)
        self._record(ctx, cur, payer, "paid", -args.amount, args.to)
        self._record(ctx, cur, payee, "received", args.amount, ctx.signer)
        if payee_merchant is None:
            self._save_totals(ctx, cur, totals, p2p=args.amount)
        elif payer_merchant is None:
            spent = (payee_merchant["category"], payee_merchant["region"])
            self._save_totals(ctx, cur, totals, spent=spent, amount=args.amount)
        else:
            self._save_totals(ctx, cur, totals, b2b=args.amount)
        ctx.emit("paid", currency_id=cur, to=args.to, amount=args.amount)
        return {
            "from": ctx.signer,
            "to": args.to,
            "amount": args.amount,
            "balance": payer["balance"],
        }

    @transaction(Redeem, policy=PUBLIC)
    def redeem(self, ctx: TxContext, args: Redeem) -> dict[str, Any]:
        """A merchant burns ``amount`` and gets a pending settlement order for its KRW payout."""
        cur = args.currency_id
        self._definition(ctx, cur)
        merchant_id = ctx.get(f"merchant_account/{ctx.signer}")
        if merchant_id is None:
            ctx.fail("not_merchant", "only a merchant's account may redeem")
        account = ctx.get(_account_key(cur, ctx.signer))
        balance = 0 if account is None else account["balance"]
        if account is None or balance < args.amount:
            ctx.fail("insufficient_funds", f"the balance {balance} is too small")
        totals = self._totals(ctx, cur)
        account["balance"] -= args.amount
        totals["order_seq"] += 1
        order = {
            "order_id": totals["order_seq"],
            "merchant": merchant_id,
            "account": ctx.signer,
            "amount": args.amount,
            "payout_reference_hash": args.payout_reference_hash,
            "created_ms": ctx.time_ms,
            "status": "pending",
            "settled_ms": None,
            "bank_reference": None,
        }
        ctx.put(_order_key(cur, order["order_id"]), order)
        totals["burned"] += args.amount
        totals["supply"] -= args.amount
        totals["pending_settlement"] += args.amount
        self._record(ctx, cur, account, "redeemed", -args.amount, None)
        self._save_totals(ctx, cur, totals, redeemed=args.amount)
        ctx.emit("redeemed", currency_id=cur, order_id=order["order_id"], amount=args.amount)
        return order

    @transaction(Settle, policy=has_role(CUSTODIAN_ROLE))
    def settle(self, ctx: TxContext, args: Settle) -> dict[str, Any]:
        """The bank paid a settlement order out: mark it paid and reduce the reserve by it."""
        cur = args.currency_id
        self._definition(ctx, cur)
        order = ctx.get(_order_key(cur, args.order_id))
        if order is None:
            ctx.fail("unknown_order", f"no settlement order {args.order_id}")
        if order["status"] != "pending":
            ctx.fail("already_settled", f"order {args.order_id} is already paid")
        self._use_reference(ctx, cur, "settlement", args.bank_reference)
        totals = self._totals(ctx, cur)
        order.update(status="paid", settled_ms=ctx.time_ms, bank_reference=args.bank_reference)
        ctx.put(_order_key(cur, args.order_id), order)
        totals["reserve"] -= order["amount"]
        totals["pending_settlement"] -= order["amount"]
        totals["settled"] += order["amount"]
        self._save_totals(ctx, cur, totals, settled=order["amount"])
        ctx.emit("settled", currency_id=cur, order_id=args.order_id, amount=order["amount"])
        return dict(order)

    @transaction(Expire, policy=PUBLIC)
    def expire(self, ctx: TxContext, args: Expire) -> dict[str, Any]:
        """Return up to ``limit`` expired lots of an account to the issuer (anyone may call)."""
        cur = args.currency_id
        self._definition(ctx, cur)
        account = ctx.get(_account_key(cur, args.account))
        if account is None or account["kind"] != "holder":
            ctx.fail("not_enrolled", "the account is not a holder of this currency")
        totals = self._totals(ctx, cur)
        amount = lots = 0
        for key, lot in ctx.scan(_lot_prefix(cur, args.account), args.limit):
            if lot["expires_ms"] > ctx.time_ms:
                break
            amount += self._expire_lot(ctx, key, lot, account, totals)
            lots += 1
        if amount:
            self._record(ctx, cur, account, "expired", -amount, None)
            self._save_totals(ctx, cur, totals)
            ctx.emit("expired", currency_id=cur, account=args.account, amount=amount)
        return {"account": args.account, "expired": amount, "lots": lots}

    # -- queries --

    @query(CurrencyRef)
    def currency(self, ctx: QueryContext, args: CurrencyRef) -> Any:
        """The definition, or null."""
        return ctx.get(_def_key(args.currency_id))

    @query(CurrencyRef)
    def totals(self, ctx: QueryContext, args: CurrencyRef) -> Any:
        """Minted, burned, expired, supply, reserve, bonus_funded, pending and settled, or null."""
        return ctx.get(_totals_key(args.currency_id))

    @query(AccountRef)
    def balance(self, ctx: QueryContext, args: AccountRef) -> Any:
        """An account's balance, what of it is spendable now, and its first lots (or null)."""
        account = ctx.get(_account_key(args.currency_id, args.account))
        if account is None:
            return None
        lots = [lot for _, lot in ctx.scan(_lot_prefix(args.currency_id, args.account), MAX_LOTS)]
        expired = sum(lot["remaining"] for lot in lots if lot["expires_ms"] <= ctx.time_ms)
        return {
            **account,
            "spendable": account["balance"] - expired,
            "expired_pending": expired,
            "lots": lots[: args.limit],
        }

    @query(AccountsPage)
    def accounts(self, ctx: QueryContext, args: AccountsPage) -> dict[str, Any]:
        """Every account of the currency with its balance, by key: ``{"accounts", "next"}``."""
        prefix = f"account/{args.currency_id}/"
        after = prefix + args.after if args.after else ""
        page = [account for _, account in ctx.scan(prefix, args.limit, after)]
        cursor = page[-1]["account"] if len(page) == args.limit else None
        return {"accounts": page, "next": cursor}

    @query(HistoryPage)
    def history(self, ctx: QueryContext, args: HistoryPage) -> dict[str, Any]:
        """An account's entries, oldest first: ``{"entries", "next"}``."""
        prefix = f"history/{args.currency_id}/{args.account}/"
        after = _history_key(args.currency_id, args.account, args.after) if args.after else ""
        page = [entry for _, entry in ctx.scan(prefix, args.limit, after)]
        cursor = page[-1]["seq"] if len(page) == args.limit else None
        return {"entries": page, "next": cursor}

    @query(MerchantsPage)
    def merchants(self, ctx: QueryContext, args: MerchantsPage) -> dict[str, Any]:
        """Registered merchants by id: ``{"merchants", "next"}``."""
        after = f"merchant/{args.after}" if args.after else ""
        page = [record for _, record in ctx.scan("merchant/", args.limit, after)]
        cursor = page[-1]["merchant_id"] if len(page) == args.limit else None
        return {"merchants": page, "next": cursor}

    @query(OrdersPage)
    def orders(self, ctx: QueryContext, args: OrdersPage) -> dict[str, Any]:
        """Settlement orders by id, optionally of one status: ``{"orders", "next"}``."""
        after = _order_key(args.currency_id, args.after) if args.after else ""
        scanned = list(ctx.scan(f"order/{args.currency_id}/", args.limit, after))
        page = [o for _, o in scanned if args.status is None or o["status"] == args.status]
        cursor = scanned[-1][1]["order_id"] if len(scanned) == args.limit else None
        return {"orders": page, "next": cursor}

    @query(DailyRange)
    def daily(self, ctx: QueryContext, args: DailyRange) -> list[Any]:
        """Per UTC day with activity: minted, spent (by category, region), redeemed, expired, …"""
        prefix = f"day/{args.currency_id}/"
        after = f"{prefix}{args.from_day}" if args.from_day != "0000-00-00" else ""
        days = [day for _, day in ctx.scan(prefix, args.limit, after)]
        first = ctx.get(f"{prefix}{args.from_day}")
        if first is not None:
            days = [first, *days][: args.limit]
        return [day for day in days if day["day"] <= args.to_day]

    # -- helpers --

    @staticmethod
    def _definition(ctx: TxContext, cur: str) -> dict[str, Any]:
        definition = ctx.get(_def_key(cur))
        if definition is None:
            ctx.fail("unknown_currency", f"no currency {cur!r}")
        return dict(definition)

    @staticmethod
    def _totals(ctx: TxContext, cur: str) -> dict[str, Any]:
        return dict(ctx.get(_totals_key(cur)))

    @staticmethod
    def _holder(ctx: TxContext, cur: str, did: str) -> dict[str, Any]:
        account = ctx.get(_account_key(cur, did))
        if account is None or account["kind"] != "holder":
            ctx.fail("not_enrolled", f"{did[:60]} is not an enrolled holder of {cur!r}")
        return dict(account)

    @staticmethod
    def _merchant_of(ctx: TxContext, did: str) -> dict[str, Any] | None:
        merchant_id = ctx.get(f"merchant_account/{did}")
        return None if merchant_id is None else dict(ctx.get(f"merchant/{merchant_id}"))

    def _receiver(
        self, ctx: TxContext, cur: str, did: str, merchant: dict[str, Any] | None
    ) -> dict[str, Any]:
        account = ctx.get(_account_key(cur, did))
        if account is not None:
            return dict(account)
        if merchant is not None:
            return _new_account(did, "merchant", merchant["region"], ctx.time_ms)
        return ctx.fail("not_enrolled", f"{did[:60]} has no account in {cur!r}")

    @staticmethod
    def _check_route(
        ctx: TxContext,
        definition: dict[str, Any],
        payer_merchant: dict[str, Any] | None,
        payee_merchant: dict[str, Any] | None,
    ) -> None:
        """Who may pay whom: the spending rules, checked before any value moves."""
        if payer_merchant is not None:
            if payer_merchant["status"] != "active":
                ctx.fail("merchant_suspended", "the paying merchant is suspended")
            if payee_merchant is None:
                ctx.fail("merchant_not_allowed", "a merchant's account may pay only merchants")
        if payee_merchant is None:
            if not definition["p2p"]:
                ctx.fail("p2p_not_allowed", "this currency does not allow holder-to-holder pay")
            return
        if payee_merchant["status"] != "active":
            ctx.fail(
                "merchant_suspended", f"merchant {payee_merchant['merchant_id']!r} is suspended"
            )
        if payer_merchant is not None:
            return
        categories, regions = definition["spend_categories"], definition["spend_regions"]
        if categories and payee_merchant["category"] not in categories:
            ctx.fail("merchant_not_allowed", f"category {payee_merchant['category']!r} is excluded")
        if regions and payee_merchant["region"] not in regions:
            ctx.fail("merchant_not_allowed", f"region {payee_merchant['region']!r} is excluded")

    @staticmethod
    def _check_reserve(ctx: TxContext, totals: dict[str, Any], amount: int) -> None:
        backed = totals["supply"] + totals["pending_settlement"] + amount
        if backed > totals["reserve"]:
            ctx.fail(
                "reserve_exceeded",
                f"minting {amount} would need {backed} of reserve; {totals['reserve']} is attested",
            )

    @staticmethod
    def _grow_reserve(ctx: TxContext, totals: dict[str, Any], amount: int) -> None:
        if totals["reserve"] + amount > MAX_TOTAL:
            ctx.fail("total_overflow", "the reserve would exceed the largest safe integer")
        totals["reserve"] += amount

    @staticmethod
    def _use_reference(ctx: TxContext, cur: str, kind: str, reference: str) -> None:
        key = f"reference/{cur}/{kind}/{reference}"
        if ctx.get(key) is not None:
            ctx.fail("duplicate_reference", f"this {kind} reference was already used")
        ctx.put(key, {"tx_id": ctx.tx_id, "height": ctx.height})

    def _issue(
        self,
        ctx: TxContext,
        definition: dict[str, Any],
        totals: dict[str, Any],
        did: str,
        amount: int,
        reason: str,
        *,
        emit: bool = True,
    ) -> dict[str, Any]:
        """Mint ``amount`` into a new lot of holder ``did`` (the caller checked the reserve).

        A batch emits one ``batch_minted`` event instead of one ``minted`` per item.
        """
        cur = definition["currency_id"]
        account = self._holder(ctx, cur, did)
        lots = self._credit(ctx, definition, totals, account, amount, None)
        totals["minted"] += amount
        totals["supply"] += amount
        self._record(ctx, cur, account, "minted", amount, reason)
        if emit:
            ctx.emit("minted", currency_id=cur, to=did, amount=amount, reason=reason)
        return lots[0]

    def _credit(
        self,
        ctx: TxContext,
        definition: dict[str, Any],
        totals: dict[str, Any],
        account: dict[str, Any],
        amount: int,
        portions: list[tuple[int, int]] | None,
    ) -> list[dict[str, Any]]:
        """Add ``amount`` to ``account`` and save it; return the holder's new lots.

        A merchant's balance is plain. A holder gets one new lot per ``portions`` entry
        ``(expires_ms, amount)`` when value comes from another holder (its expiry travels with
        it), else one lot expiring after the currency's TTL.
        """
        cur = definition["currency_id"]
        created: list[dict[str, Any]] = []
        if account["kind"] == "holder":
            cap = definition["balance_cap"]
            if cap is not None and account["balance"] + amount > cap:
                ctx.fail("balance_cap", f"{account['account'][:60]} would hold more than {cap}")
            pieces = portions or [(_lot_expiry(definition, ctx.time_ms), amount)]
            created = [
                self._new_lot(ctx, cur, account, totals, expires_ms, piece)
                for expires_ms, piece in pieces
            ]
        account["balance"] += amount
        ctx.put(_account_key(cur, account["account"]), account)
        return created

    @staticmethod
    def _new_lot(
        ctx: TxContext,
        cur: str,
        account: dict[str, Any],
        totals: dict[str, Any],
        expires_ms: int,
        amount: int,
    ) -> dict[str, Any]:
        if account["lot_count"] >= MAX_LOTS:
            ctx.fail("too_many_lots", f"{account['account'][:60]} already holds {MAX_LOTS} lots")
        totals["lot_seq"] += 1
        lot = {
            "lot_id": totals["lot_seq"],
            "amount": amount,
            "remaining": amount,
            "expires_ms": expires_ms,
            "created_ms": ctx.time_ms,
        }
        ctx.put(_lot_key(cur, account["account"], expires_ms, lot["lot_id"]), lot)
        account["lot_count"] += 1
        return lot

    def _take_lots(
        self,
        ctx: TxContext,
        cur: str,
        account: dict[str, Any],
        amount: int,
        totals: dict[str, Any],
    ) -> list[tuple[int, int]]:
        """Spend ``amount`` from the holder's lots, earliest expiry first, sweeping expired ones.

        Returns the ``(expires_ms, taken)`` portions; fails ``insufficient_funds``.
        """
        portions: list[tuple[int, int]] = []
        needed, expired = amount, 0
        for key, lot in ctx.scan(_lot_prefix(cur, account["account"]), MAX_LOTS):
            if lot["expires_ms"] <= ctx.time_ms:
                expired += self._expire_lot(ctx, key, lot, account, totals)
                continue
            taken = min(needed, lot["remaining"])
            lot["remaining"] -= taken
            needed -= taken
            portions.append((lot["expires_ms"], taken))
            if lot["remaining"]:
                ctx.put(key, lot)
            else:
                ctx.delete(key)
                account["lot_count"] -= 1
            if not needed:
                break
        if needed:
            ctx.fail("insufficient_funds", f"{amount - needed} of {amount} is spendable")
        if expired:
            self._record(ctx, cur, account, "expired", -expired, None)
        account["balance"] -= amount
        return portions

    def _expire_lot(
        self,
        ctx: TxContext,
        key: str,
        lot: dict[str, Any],
        account: dict[str, Any],
        totals: dict[str, Any],
    ) -> int:
        ctx.delete(key)
        account["lot_count"] -= 1
        account["balance"] -= lot["remaining"]
        totals["expired"] += lot["remaining"]
        totals["supply"] -= lot["remaining"]
        totals.setdefault("_expired_now", 0)
        totals["_expired_now"] += lot["remaining"]
        return int(lot["remaining"])

    @staticmethod
    def _record(
        ctx: TxContext,
        cur: str,
        account: dict[str, Any],
        kind: str,
        change: int,
        counterparty: str | None,
    ) -> None:
        """Append to the account's history and save the account."""
        account["history"] += 1
        entry = {
            "seq": account["history"],
            "kind": kind,
            "change": change,
            "balance": account["balance"],
            "counterparty": counterparty,
            "time_ms": ctx.time_ms,
            "height": ctx.height,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_history_key(cur, account["account"], account["history"]), entry)
        ctx.put(_account_key(cur, account["account"]), account)

    @staticmethod
    def _save_totals(
        ctx: TxContext,
        cur: str,
        totals: dict[str, Any],
        *,
        minted: int = 0,
        redeemed: int = 0,
        settled: int = 0,
        b2b: int = 0,
        p2p: int = 0,
        spent: tuple[str, str] | None = None,
        amount: int = 0,
    ) -> None:
        """Save the totals and fold this transaction's figures into today's record."""
        expired = totals.pop("_expired_now", 0)
        ctx.put(_totals_key(cur), totals)
        day_key = f"day/{cur}/{_day_of(ctx.time_ms)}"
        day = ctx.get(day_key) or _new_day(_day_of(ctx.time_ms))
        day["minted"] += minted
        day["redeemed"] += redeemed
        day["settled"] += settled
        day["expired"] += expired
        day["b2b"] += b2b
        day["p2p"] += p2p
        if spent is not None:
            category, region = spent
            day["spent"] += amount
            day["spent_by_category"][category] = day["spent_by_category"].get(category, 0) + amount
            day["spent_by_region"][region] = day["spent_by_region"].get(region, 0) + amount
        day["supply"], day["reserve"] = totals["supply"], totals["reserve"]
        ctx.put(day_key, day)


def _lot_expiry(definition: dict[str, Any], now_ms: int) -> int:
    ttl = definition["lot_ttl_days"]
    return MAX_TIME_MS if ttl is None else min(MAX_TIME_MS, now_ms + ttl * DAY_MS)
