"""The demo city's donations, end to end: plain functions that return data.

Run on a demo Seoul after the help coin (``civicledger.demo_currency``: currency
``seoul-help-coin``, custodian bank ``seoul-bank``, city hall the treasury, the voters' wallets
enrolled, two merchants). Root registers a charity registry agency (``donation-registry``), which
registers a charity whose signing key is in the city keystore; the charity opens a winter
campaign that may fund the help coin; the bank records three donations (two with a donor
receipt secret, one anonymous) and refuses a reused bank reference; the charity gives goods to a
household (a keyed pseudonym on the ledger), is refused a disbursement above the campaign's
balance, and funds 300,000 KRW of help coin: the bank attests the reserve deposit under the
disbursement's reserve reference, city hall mints it to three residents and the charity links
the mint batch; residents shop; a donor traces their donation by the receipt secret down to the
merchant categories where the coin was spent.

Personal data (donors' names and bank accounts, the household's id) stays here: the ledger gets
hashes, commitments and pseudonyms only (``tests/cli/test_demo_donations.py`` scans for them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from civicledger.agency.donation_desk import DonationDesk, link_funding
from civicledger.agency.ledger import CityLedger
from civicledger.city import CityDir
from civicledger.demo_currency import BANK, COIN
from civicledger.demo_steps import PartStep, run_step
from civicledger.errors import CivicError
from civicledger.services.donations.trace import beneficiary_pseudonym, donor_commitment
from civicledger.services.identity.wallet import Wallet

__all__ = [
    "BENEFICIARY",
    "CAMPAIGN",
    "CHARITY",
    "DONORS",
    "DemoDonations",
    "run_donations",
]

REGISTRY = "donation-registry"
CHARITY = "donation-warm-hands"
CHARITY_KEY = "donation-warm-hands"
CAMPAIGN = "donation-winter-2026"
BATCH = "donation-winter-1"
_HALL = "city-hall"
_DAY_MS = 86_400_000
DONORS = (
    # (name, bank account, amount, receipt secret or None for anonymous)
    ("김지원", "110-482-339104", 300_000, "WARM-7Q4K-2026-A1"),
    ("박서준", "356-1102-8841-73", 200_000, None),
    ("이하은", "1002-845-220917", 500_000, "WARM-9XZP-2026-C3"),
)
"""The donors as their bank knows them; the ledger sees only amounts and commitments."""
BENEFICIARY = "강서구 화곡동 저소득 가구 2026-0117"
"""A household the charity helps, as its case file names it (never on the ledger)."""
_HOLDERS = ("voter-1", "voter-2", "voter-3")
_COIN_EACH = 100_000


@dataclass
class DemoDonations:
    steps: list[PartStep] = field(default_factory=list)
    campaign: dict[str, Any] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=dict)
    """The first donor's trace (by the receipt secret)."""
    coin: dict[str, Any] = field(default_factory=dict)
    """What the campaign's help coin became (the campaign trace's total)."""


def run_donations(layout: CityDir, *, passphrase: str | None = None) -> DemoDonations:
    """Run the donations part of the demo; raises if a step that must work does not."""
    return _Flow(layout, passphrase).run()


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Flow:
    def __init__(self, layout: CityDir, passphrase: str | None) -> None:
        self.layout = layout
        self.ledger = CityLedger(layout, passphrase)
        self.desk = DonationDesk(self.ledger)
        self.out = DemoDonations()
        root = layout.root / "wallets"
        found = sorted(root.iterdir()) if root.is_dir() else []
        self.wallets = {p.name: Wallet.open(p) for p in found if p.is_dir()}
        self.coin_seq = 0
        self.reserve_reference = ""

    def step(self, title: str, action: Callable[[], str], *, refused: bool = False) -> None:
        run_step("donations", self.out.steps, title, action, refused=refused)

    def charity(self, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.send_as(self.ledger.key(CHARITY_KEY), "donations", method, args)

    def run(self) -> DemoDonations:
        missing = [n for n in (*_HOLDERS, "gangnam-bakery", "mapo-market") if n not in self.wallets]
        if missing:
            raise CivicError(
                f"the donations demo needs the help-coin demo's wallets ({missing[0]})",
                reason="demo_error",
            )
        self.step("root registers the charity registry", self._registry)
        self.step("the registry registers the charity Warm Hands", self._register_charity)
        self.step("Warm Hands opens a winter campaign (may fund the help coin)", self._open)
        for number, (_, _, amount, secret) in enumerate(DONORS):
            kind = "anonymous" if secret is None else "with a receipt secret"
            self.step(
                f"the bank records a {amount:,} KRW donation ({kind})",
                lambda n=number: self._donate(n),  # type: ignore[misc]
            )
        self.step(
            "the bank records the same transfer twice",
            lambda: self._donate(0),
            refused=True,
        )
        self.step("Warm Hands gives 150,000 KRW of heating oil to a household", self._goods)
        self.step(
            "Warm Hands tries to disburse 2,000,000 KRW (above the campaign's balance)",
            self._too_much,
            refused=True,
        )
        self.step("Warm Hands funds 300,000 KRW of help coin", self._fund)
        self.step("the bank attests the reserve deposit; city hall mints it", self._mint)
        self.step("Warm Hands links the disbursement to the mint batch", self._link)
        self.step("residents shop with the coin", self._shop)
        self.step("a donor traces their donation by the receipt secret", self._trace)
        return self.out

    # -- actions -------------------------------------------------------------------------------

    def _registry(self) -> str:
        keystore = self.layout.keystore
        for name in (REGISTRY, CHARITY_KEY):
            if name not in keystore.names():
                keystore.create(name)
        agency = {
            "id": REGISTRY,
            "name": "서울시 기부금품 모집 등록처 Seoul charity registry (demo)",
            "keys": [keystore.public(REGISTRY).did],
        }
        self.ledger.send("root", "governance", "register_agency", agency)
        role = {"agency": REGISTRY, "role": "charity_registrar"}
        self.ledger.send("root", "governance", "grant_role", role)
        return f"{REGISTRY}: charity_registrar"

    def _register_charity(self) -> str:
        args = {
            "charity_id": CHARITY,
            "name": {"ko": "따뜻한 손 나눔회", "en": "Warm Hands Sharing Society"},
            "registration_number_hash": _hash("기부금품 모집 등록 제2026-서울-0417호"),
            "keys": [self.layout.keystore.public(CHARITY_KEY).did],
        }
        self.ledger.send(REGISTRY, "donations", "register_charity", args)
        return "registration number on the ledger as a hash; one signing key"

    def _open(self) -> str:
        now = self.ledger.head_time_ms()
        args = {
            "campaign_id": CAMPAIGN,
            "charity_id": CHARITY,
            "title": {"ko": "2026 겨울나기 난방비", "en": "Heating through the 2026 winter"},
            "purpose": {
                "ko": "저소득 가구의 난방비와 생필품",
                "en": "Heating and daily needs for low-income households",
            },
            "goal": 2_000_000,
            "starts_ms": now - _DAY_MS,
            "ends_ms": now + 60 * _DAY_MS,
            "disburse_days": 90,
            "bank": BANK,
            "help_coin": COIN,
        }
        self.charity("open_campaign", args)
        return f"goal 2,000,000 KRW; donations through {BANK}; may fund {COIN}"

    def _donate(self, number: int) -> str:
        name, account, amount, secret = DONORS[number]
        args = {
            "campaign_id": CAMPAIGN,
            "amount": amount,
            "bank_reference": _hash(f"{account} {name} → Warm Hands, transfer #{number + 1}"),
            "donor_commitment": None if secret is None else donor_commitment(secret),
        }
        record = self.ledger.send(BANK, "donations", "donate", args)
        return f"donation {record['seq']}"

    def _goods(self) -> str:
        secret = self.ledger.key(CHARITY_KEY).seed
        args = {
            "campaign_id": CAMPAIGN,
            "amount": 150_000,
            "kind": "goods",
            "purpose": {"ko": "난방유 200리터", "en": "200 litres of heating oil"},
            "receipt_hash": _hash("주유소 세금계산서 2026-11-25 #88"),
            "beneficiary": beneficiary_pseudonym(secret, BENEFICIARY),
        }
        record = self.charity("disburse", args)
        shares = ", ".join(f"#{s['donation']}: {s['amount']:,}" for s in record["shares"])
        return f"drawn FIFO from donations {shares}"

    def _too_much(self) -> str:
        args = {
            "campaign_id": CAMPAIGN,
            "amount": 2_000_000,
            "kind": "cash",
            "purpose": {"ko": "과다 집행", "en": "Too much"},
            "receipt_hash": _hash("never paid"),
            "beneficiary": beneficiary_pseudonym(self.ledger.key(CHARITY_KEY).seed, BENEFICIARY),
        }
        self.charity("disburse", args)
        return "disbursed"

    def _fund(self) -> str:
        args = {
            "campaign_id": CAMPAIGN,
            "amount": _COIN_EACH * len(_HOLDERS),
            "kind": "help_coin",
            "purpose": {"ko": "저소득 가구 도움코인", "en": "Help coin for low-income households"},
            "receipt_hash": _hash("도움코인 충전 요청서 2026-11-25"),
        }
        record = self.charity("disburse", args)
        self.coin_seq = int(record["seq"])
        self.reserve_reference = str(record["reserve_reference"])
        return f"disbursement {record['seq']}; reserve reference {self.reserve_reference[:12]}..."

    def _accounts(self) -> list[str]:
        return [self.wallets[name].currency_key(COIN).public.did for name in _HOLDERS]

    def _mint(self) -> str:
        deposit = {
            "currency_id": COIN,
            "amount": _COIN_EACH * len(_HOLDERS),
            "reference": self.reserve_reference,
        }
        self.ledger.send(BANK, "currency", "attest_reserve", deposit)
        items = [{"to": a, "amount": _COIN_EACH, "reason": "donation"} for a in self._accounts()]
        batch = {"currency_id": COIN, "items": items, "batch_id": BATCH}
        self.ledger.send(_HALL, "currency", "mint_batch", batch)
        return f"{len(items)} residents get {_COIN_EACH:,} KRW each (batch {BATCH})"

    def _link(self) -> str:
        key = self.ledger.key(CHARITY_KEY)
        link_funding(self.ledger, key, CAMPAIGN, self.coin_seq, BATCH, self._accounts())
        return "checked against the reserve deposit and the batch's mint entries"

    def _shop(self) -> str:
        bakery = self.wallets["gangnam-bakery"].currency_key(COIN).public.did
        market = self.wallets["mapo-market"].currency_key(COIN).public.did
        for name, to, amount in (("voter-1", bakery, 100_000), ("voter-3", market, 90_000)):
            payer = self.wallets[name].currency_key(COIN)
            args = {"currency_id": COIN, "to": to, "amount": amount}
            self.ledger.send_as(payer, "currency", "pay", args)
        return "voter-1 100,000 KRW at the bakery, voter-3 90,000 KRW at the market"

    def _trace(self) -> str:
        self.out.trace = self.desk.trace_donor(str(DONORS[0][3]))
        whole = self.desk.trace_campaign(CAMPAIGN)
        self.out.campaign = whole["campaign"]
        self.out.coin = whole["coin"]
        spent = ", ".join(f"{c} {a:,}" for c, a in self.out.coin["spent"].items())
        return (
            f"campaign coin: spent {spent}; unspent {self.out.coin['unspent']:,} KRW "
            f"({'exact' if self.out.coin['exact'] else 'approximate'})"
        )
