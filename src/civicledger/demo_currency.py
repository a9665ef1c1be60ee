"""The demo city's help coin, end to end: plain functions that return data.

Run on a demo Seoul after the polls (``civicledger.demo_voting``, whose six voters hold resident
cards in ``<city>/wallets/voter-N``). Root registers a custodian bank and gives city hall the
treasury and enroller roles and Gangnam-gu the merchant registrar role; city hall defines the
help coin, the bank attests the reserve, city hall enrols the voters (each presents a resident
card; the ledger gets an account key, a district code and a pseudonym of the card) and pays them
100,000 KRW each in a resumable distribution; two merchants are registered; residents pay by
the merchants' signed payment-request QR codes, one cannot afford a payment and one tries to pay
another resident (not allowed for this coin); a merchant redeems and the bank settles; the day's
reconciliation report balances and no fraud is flagged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from civicledger.agency.currency_report import daily_report, fraud_flags
from civicledger.agency.distribution import Distribution
from civicledger.agency.enrollment import enroll_holder
from civicledger.agency.ledger import CityLedger
from civicledger.agency.verifying import ChallengeStore, verify_file
from civicledger.city import CityDir
from civicledger.demo_steps import PartStep, run_step
from civicledger.errors import CivicError
from civicledger.services.currency.payment_request import (
    PaymentRequest,
    from_qr_payload,
    payment_args,
)
from civicledger.services.identity.credentials import RESIDENT_CARD
from civicledger.services.identity.wallet import Wallet

__all__ = ["COIN", "CurrencyStep", "DemoCurrency", "run_currency"]

COIN = "seoul-help-coin"
BANK = "seoul-bank"
_HALL = "city-hall"
_DISTRICT = "gangnam-gu"
_GRANT = 100_000
_MERCHANTS = (
    ("gangnam-bakery", "food", "gangnam-gu", "강남 동네빵집 Gangnam bakery"),
    ("mapo-market", "market", "mapo-gu", "망원시장 가게 Mangwon market stall"),
)


CurrencyStep = PartStep


@dataclass
class DemoCurrency:
    steps: list[CurrencyStep] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    report_ok: bool = False
    flags: int = -1
    accounts: dict[str, str] = field(default_factory=dict)
    """Wallet name -> its account key in the help coin (on the ledger; not the holder DID)."""


def run_currency(layout: CityDir, *, passphrase: str | None = None) -> DemoCurrency:
    """Run the help-coin part of the demo; raises if a step that must work does not."""
    return _Flow(layout, passphrase).run()


def _reference(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Flow:
    def __init__(self, layout: CityDir, passphrase: str | None) -> None:
        self.layout = layout
        self.ledger = CityLedger(layout, passphrase)
        self.chain_id = layout.genesis().chain_id
        self.out = DemoCurrency()
        root = layout.root / "wallets"
        self.voters = {
            p.name: Wallet.open(p) for p in sorted(root.glob("voter-[0-9]")) if p.is_dir()
        }
        self.merchants: dict[str, Wallet] = {}

    def step(self, title: str, action: Callable[[], str], *, refused: bool = False) -> None:
        run_step("currency", self.out.steps, title, action, refused=refused)

    def send(self, signer: str, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.send(signer, "currency", method, args)

    def run(self) -> DemoCurrency:
        if not self.voters:
            raise CivicError(
                "the currency demo needs the voting demo's wallets", reason="demo_error"
            )
        self.step("root registers the custodian bank and grants the money roles", self._roles)
        self.step(
            "city hall defines the help coin (KRW-backed, local merchants only)", self._define
        )
        self.step(
            "the bank attests 1,000,000 KRW of reserve",
            lambda: self._reserve(1_000_000, "deposit 2026-11-25 #1"),
        )
        for name in self.voters:
            self.step(
                f"city hall enrols {name} (presents a resident card)",
                lambda n=name: self._enroll(n),  # type: ignore[misc]
            )
        self.step(
            f"city hall pays {len(self.voters)} residents {_GRANT:,} KRW each (resumable job)",
            self._distribute,
        )
        self.step("Gangnam-gu registers two merchants", self._merchants)
        self.step(
            "voter-1 pays the bakery 12,000 KRW by its QR code",
            lambda: self._pay_by_qr("voter-1", "gangnam-bakery", 12_000),
        )
        self.step(
            "voter-3 pays the market stall 30,000 KRW by its QR code",
            lambda: self._pay_by_qr("voter-3", "mapo-market", 30_000),
        )
        self.step(
            "voter-2 tries to pay 150,000 KRW (more than the balance)",
            lambda: self._pay_by_qr("voter-2", "gangnam-bakery", 150_000),
            refused=True,
        )
        self.step(
            "voter-4 tries to pay another resident (not allowed for the help coin)",
            self._p2p,
            refused=True,
        )
        self.step("the bakery redeems 10,000 KRW; the bank settles", self._redeem)
        self.step("today's reconciliation report and fraud flags", self._report)
        return self.out

    # -- actions -------------------------------------------------------------------------------

    def _roles(self) -> str:
        keystore = self.layout.keystore
        if BANK not in keystore.names():
            keystore.create(BANK)
        key = keystore.public(BANK)
        agency = {"id": BANK, "name": "서울은행 Seoul custodian bank (demo)", "keys": [key.did]}
        self.ledger.send("root", "governance", "register_agency", agency)
        for agency_id, role in (
            (_HALL, "treasury"),
            (_HALL, "enroller"),
            (BANK, "custodian_bank"),
            (_DISTRICT, "merchant_registrar"),
        ):
            self.ledger.send(
                "root", "governance", "grant_role", {"agency": agency_id, "role": role}
            )
        return f"{BANK}: custodian_bank; city-hall: treasury, enroller; {_DISTRICT}: merchants"

    def _define(self) -> str:
        definition = {
            "currency_id": COIN,
            "name": {"ko": "서울 도움코인", "en": "Seoul help coin"},
            "symbol": "SHC",
            "kind": "general",
            "holder_credential": "ResidentCard",
            "spend_categories": ["food", "market"],
            "spend_regions": ["gangnam-gu", "mapo-gu", "jongno-gu"],
            "p2p": False,
            "lot_ttl_days": 90,
            "balance_cap": 500_000,
            "monthly_purchase_cap": 300_000,
            "purchase_bonus_bp": 1_000,
            "activity_rates": {},
        }
        self.send(_HALL, "define", definition)
        return "food and market merchants in three districts; lots expire after 90 days"

    def _reserve(self, amount: int, reference: str) -> str:
        args = {"currency_id": COIN, "amount": amount, "reference": _reference(reference)}
        self.send(BANK, "attest_reserve", args)
        return f"reserve +{amount:,} KRW"

    def _enroll(self, name: str) -> str:
        wallet = self.voters[name]
        cards = [c for c in wallet.list() if RESIDENT_CARD.vct in c.types]
        domain = f"urn:civicledger:{self.chain_id}:enroller:{_HALL}"
        now = datetime.now(UTC)
        challenge = ChallengeStore(self.layout).new(domain, now)
        shown = wallet.present(
            cards[0].id, challenge=challenge, domain=domain, now=now, disclose=["district"]
        )
        account = wallet.currency_key(COIN).public.did
        made = enroll_holder(
            self.ledger,
            _HALL,
            COIN,
            shown,
            account,
            lambda presentation, kind: verify_file(
                self.ledger,
                presentation,
                challenge=challenge,
                domain=domain,
                now=datetime.now(UTC),
                expected_type=kind,
            ),
        )
        self.out.accounts[name] = account
        return f"account {account[:24]}...; region {made.region}"

    def _distribute(self) -> str:
        rows = ["account,amount", *(f"{a},{_GRANT}" for a in self.out.accounts.values())]
        job = Distribution(self.ledger, _HALL, COIN, self.layout.root / "jobs" / "help-coin-1")
        report = job.run(("\n".join(rows) + "\n").encode())
        return (
            f"{report.recipients} recipients in {report.batches} batch(es), {report.amount:,} KRW"
        )

    def _merchants(self) -> str:
        root = self.layout.root / "wallets"
        for merchant_id, category, region, label in _MERCHANTS:
            wallet = Wallet.create(root / merchant_id)
            self.merchants[merchant_id] = wallet
            args = {
                "merchant_id": merchant_id,
                "business_number_hash": _reference(f"business number of {label}"),
                "category": category,
                "region": region,
                "account": wallet.currency_key(COIN).public.did,
            }
            self.send(_DISTRICT, "register_merchant", args)
        return ", ".join(label for *_, label in _MERCHANTS)

    def _pay_by_qr(self, name: str, merchant_id: str, amount: int) -> str:
        merchant_key = self.merchants[merchant_id].currency_key(COIN)
        request = PaymentRequest(
            currency_id=COIN,
            merchant_id=merchant_id,
            account=merchant_key.public.did,
            amount=amount,
            memo="demo purchase",
            expires_ms=int(time.time() * 1000) + 120_000,
            chain_id=self.chain_id,
        ).signed(merchant_key)
        shown = request.to_qr_payload()
        # The payer's wallet reads the QR, checks it, and signs the payment itself.
        read = from_qr_payload(shown, chain_id=self.chain_id, now_ms=int(time.time() * 1000))
        read.verify_signature()
        payer = self.voters[name].currency_key(COIN)
        self.ledger.send_as(payer, "currency", "pay", payment_args(read, amount))
        return f"{amount:,} KRW to {merchant_id} (QR of {len(shown)} characters, signed)"

    def _p2p(self) -> str:
        payer = self.voters["voter-4"].currency_key(COIN)
        args = {"currency_id": COIN, "to": self.out.accounts["voter-5"], "amount": 1_000}
        self.ledger.send_as(payer, "currency", "pay", args)
        return "paid"

    def _redeem(self) -> str:
        bakery = self.merchants["gangnam-bakery"].currency_key(COIN)
        args = {
            "currency_id": COIN,
            "amount": 10_000,
            "payout_reference_hash": _reference("bakery payout account"),
        }
        order = self.ledger.send_as(bakery, "currency", "redeem", args)
        order_id = int(order["order_id"]) if isinstance(order, dict) else 1
        settle = {
            "currency_id": COIN,
            "order_id": order_id,
            "bank_reference": _reference(f"transfer for order {order_id}"),
        }
        self.send(BANK, "settle", settle)
        return f"order {order_id}: 10,000 KRW paid out; the reserve shrinks by as much"

    def _report(self) -> str:
        day = datetime.now(UTC).date().isoformat()
        report = daily_report(self.ledger, COIN, day)
        flags = fraud_flags(self.ledger, COIN, int(time.time() * 1000) - 86_400_000)
        totals = self.ledger.query("currency", "totals", {"currency_id": COIN})
        self.out.totals = dict(totals)
        self.out.report_ok = report.ok
        self.out.flags = len(flags)
        if not report.ok:
            raise CivicError("the reconciliation report does not balance", reason="report_failed")
        return (
            f"supply {totals['supply']:,} = minted {totals['minted']:,} - redeemed "
            f"{totals['burned']:,} - expired {totals['expired']:,}; reserve {totals['reserve']:,}; "
            f"{len(flags)} fraud flags"
        )
