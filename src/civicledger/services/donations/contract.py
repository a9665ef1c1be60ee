"""The ``donations`` contract: charities, campaigns, donations and disbursements, traceable.

Roles: ``charity_registrar`` (an agency) registers, suspends and reinstates charities and
suspends or resumes campaigns. A charity's own keys (did:key, listed in its record) open and
close its campaigns, disburse and link help-coin funding. Donations are attested by the
campaign's bank: a key of the agency the campaign names, which must hold the currency
service's ``custodian_bank`` role, with a single-use bank reference hash (the bank saw the
money arrive; the ledger never sees the account).

No personal data: a donor appears only as an optional commitment (SHA-256 of a donor-held
receipt secret, see ``trace.donor_commitment``), a beneficiary only as a pseudonym (the
charity's keyed hash), receipts and registration numbers only as hashes.

Allocation is FIFO: a disbursement takes its money from the campaign's donations in the order
they were recorded, each donation's unallocated remainder first; ``fifo_next`` points at the
oldest donation with money left. Each share is written twice (on the disbursement's record and
under the donation) so a donation's path can be read either way.

Invariants (property-tested): per campaign ``donated == disbursed + balance``, ``balance >= 0``;
the donations before ``fifo_next`` are fully allocated and the ones after it untouched; the
shares of a disbursement sum to its amount; a donation's shares sum to its ``allocated``.

State (under ``donations/``):
    charity/<charity_id>                    name, registration number hash, keys, status
    charity_key/<did>                       the charity whose key this is
    campaign/<campaign_id>                  definition, status and running totals
    donation/<campaign>/<seq,12>            amount, allocated, donor commitment, bank
    disbursement/<campaign>/<seq,12>        amount, kind, purpose, receipt, shares, funding
    share/<campaign>/<donation,12>/<disb,12>  the amount of one donation in one disbursement
    funding/<campaign>/<disb,12>            a help-coin disbursement's mint entries
    donor/<commitment>                      where a committed donation is
    used/<kind>/<hash>                      single-use bank references (bank) and receipts
    batch_link/<currency>/<batch_id>        the disbursement a mint batch was linked to
"""

from __future__ import annotations

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
from civicledger.crypto.encoding import sha256
from civicledger.ledger.genesis import AGENCY_ID_PATTERN
from civicledger.services.currency.contract import (
    CONTRACT_NAME as CURRENCY_CONTRACT,
)
from civicledger.services.currency.contract import (
    CURRENCY_ID_PATTERN,
    CUSTODIAN_ROLE,
)

__all__ = [
    "CHARITY_REGISTRAR_ROLE",
    "CONTRACT_NAME",
    "MAX_AMOUNT",
    "MAX_LINK",
    "MAX_SHARES",
    "Donations",
    "reserve_reference",
]

CONTRACT_NAME = "donations"
CHARITY_REGISTRAR_ROLE = "charity_registrar"

CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MAX_AMOUNT = 10**12
MAX_TOTAL = 2**53 - 1
MAX_TIME_MS = 2**53 - 1
MAX_KEYS = 8
MAX_SHARES = 200
"""Donations one disbursement may draw from (``too_many_shares`` above: split it)."""
MAX_LINK = 200
"""Mint entries one help-coin funding link may name (so the transaction stays under 32 KiB)."""
MAX_PAGE = 1000
DAY_MS = 86_400_000
KINDS = ("cash", "goods", "help_coin")

Krw = Annotated[int, Field(ge=1, le=MAX_AMOUNT)]
TimeMs = Annotated[int, Field(ge=0, le=MAX_TIME_MS)]


def reserve_reference(disbursement_tx_id: str) -> str:
    """The bank reference a help-coin disbursement's reserve deposit must carry.

    Derived from the disbursement's transaction id, so it cannot exist before the disbursement
    and no other deposit can claim it (the currency contract refuses a reused reference).
    """
    return sha256(b"civicledger/donations/reserve/v1\0" + disbursement_tx_id.encode()).hex()


# -- argument models ----------------------------------------------------------------------------


class Text(Args):
    ko: str = Field(min_length=1, max_length=300)
    en: str = Field(min_length=1, max_length=300)


class CharityRef(Args):
    charity_id: str = Field(pattern=CODE_PATTERN)


class RegisterCharity(CharityRef):
    name: Text
    registration_number_hash: str = Field(pattern=HASH_PATTERN)
    keys: list[DidKey] = Field(min_length=1, max_length=MAX_KEYS)

    @field_validator("keys")
    @classmethod
    def _unique(cls, keys: list[str]) -> list[str]:
        if len(set(keys)) != len(keys):
            raise ValueError("keys repeat")
        return keys


class CampaignRef(Args):
    campaign_id: str = Field(pattern=CODE_PATTERN)


class OpenCampaign(CampaignRef):
    charity_id: str = Field(pattern=CODE_PATTERN)
    title: Text
    purpose: Text
    goal: Krw
    starts_ms: TimeMs
    ends_ms: TimeMs
    """Donations are accepted in ``[starts_ms, ends_ms)``."""
    disburse_days: int = Field(default=365, ge=0, le=3650)
    """Disbursements are accepted until ``ends_ms`` plus this many days."""
    bank: str = Field(pattern=AGENCY_ID_PATTERN)
    """The agency (holding ``custodian_bank``) that receives the money and attests donations."""
    help_coin: str | None = Field(default=None, pattern=CURRENCY_ID_PATTERN)
    """A currency of the ``currency`` contract this campaign may fund."""

    @model_validator(mode="after")
    def _period(self) -> OpenCampaign:
        if self.ends_ms <= self.starts_ms:
            raise ValueError("ends_ms must be after starts_ms")
        return self


class Donate(CampaignRef):
    amount: Krw
    bank_reference: str = Field(pattern=HASH_PATTERN)
    """SHA-256 of the bank's transfer record: single use across all campaigns."""
    donor_commitment: str | None = Field(default=None, pattern=HASH_PATTERN)
    """SHA-256 of a donor-held receipt secret; ``None`` for an anonymous donation."""


class Disburse(CampaignRef):
    amount: Krw
    kind: Literal["cash", "goods", "help_coin"]
    purpose: Text
    receipt_hash: str = Field(pattern=HASH_PATTERN)
    """SHA-256 of the receipt or invoice kept by the charity: single use."""
    beneficiary: str | None = Field(default=None, pattern=HASH_PATTERN)
    """The charity's keyed pseudonym of the beneficiary (required for cash and goods)."""

    @model_validator(mode="after")
    def _beneficiary(self) -> Disburse:
        if self.kind != "help_coin" and self.beneficiary is None:
            raise ValueError("a cash or goods disbursement names a beneficiary pseudonym")
        return self


class MintEntry(Args):
    account: DidKey
    seq: int = Field(ge=1, le=MAX_TOTAL)
    """The ``minted`` entry's sequence number in the holder's currency history."""


class LinkFunding(CampaignRef):
    seq: int = Field(ge=1, le=MAX_TOTAL)
    """The help-coin disbursement."""
    batch_id: str = Field(pattern=CODE_PATTERN)
    """The currency mint batch its reserve deposit paid for."""
    mints: list[MintEntry] = Field(min_length=1, max_length=MAX_LINK)

    @field_validator("mints")
    @classmethod
    def _distinct(cls, mints: list[MintEntry]) -> list[MintEntry]:
        if len({(m.account, m.seq) for m in mints}) != len(mints):
            raise ValueError("mint entries repeat")
        return mints


class Page(Args):
    after: str = Field(default="", max_length=64)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class SeqPage(CampaignRef):
    after: int = Field(default=0, ge=0, le=MAX_TOTAL)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class SeqRef(CampaignRef):
    seq: int = Field(ge=1, le=MAX_TOTAL)


class BatchRef(Args):
    currency_id: str = Field(pattern=CURRENCY_ID_PATTERN)
    batch_id: str = Field(pattern=CODE_PATTERN)


class DonorRef(Args):
    donor_commitment: str = Field(pattern=HASH_PATTERN)


# -- keys ---------------------------------------------------------------------------------------


def _donation_key(campaign: str, seq: int) -> str:
    return f"donation/{campaign}/{seq:012d}"


def _disbursement_key(campaign: str, seq: int) -> str:
    return f"disbursement/{campaign}/{seq:012d}"


def _share_key(campaign: str, donation: int, disbursement: int) -> str:
    return f"share/{campaign}/{donation:012d}/{disbursement:012d}"


def _funding_key(campaign: str, seq: int) -> str:
    return f"funding/{campaign}/{seq:012d}"


# -- the contract -------------------------------------------------------------------------------


class Donations(Contract):
    name = CONTRACT_NAME

    # -- charities --

    @transaction(RegisterCharity, policy=has_role(CHARITY_REGISTRAR_ROLE))
    def register_charity(self, ctx: TxContext, args: RegisterCharity) -> dict[str, Any]:
        """Register a charity with its registration number's hash and its signing keys."""
        if ctx.get(f"charity/{args.charity_id}") is not None:
            ctx.fail("charity_exists", f"charity {args.charity_id!r} already exists")
        for key in args.keys:
            if ctx.get(f"charity_key/{key}") is not None:
                ctx.fail("key_in_use", f"{key[:60]} already signs for a charity")
        record = {
            **args.model_dump(),
            "status": "active",
            "registered_by": ctx.signer,
            "registered_ms": ctx.time_ms,
            "campaigns": 0,
        }
        ctx.put(f"charity/{args.charity_id}", record)
        for key in args.keys:
            ctx.put(f"charity_key/{key}", args.charity_id)
        ctx.emit("charity_registered", charity_id=args.charity_id)
        return record

    @transaction(CharityRef, policy=has_role(CHARITY_REGISTRAR_ROLE))
    def suspend_charity(self, ctx: TxContext, args: CharityRef) -> dict[str, Any]:
        """Suspend a charity: its campaigns take no donations and make no disbursements."""
        return self._set_charity_status(ctx, args.charity_id, "suspended")

    @transaction(CharityRef, policy=has_role(CHARITY_REGISTRAR_ROLE))
    def reinstate_charity(self, ctx: TxContext, args: CharityRef) -> dict[str, Any]:
        """Lift a charity's suspension."""
        return self._set_charity_status(ctx, args.charity_id, "active")

    # -- campaigns --

    @transaction(OpenCampaign, policy=PUBLIC)
    def open_campaign(self, ctx: TxContext, args: OpenCampaign) -> dict[str, Any]:
        """A charity (signed by one of its keys) opens a campaign with its bank and period."""
        charity = self._charity(ctx, args.charity_id)
        self._check_charity_signer(ctx, charity)
        if charity["status"] != "active":
            ctx.fail("charity_suspended", f"charity {args.charity_id!r} is suspended")
        if ctx.get(f"campaign/{args.campaign_id}") is not None:
            ctx.fail("campaign_exists", f"campaign {args.campaign_id!r} already exists")
        if args.ends_ms <= ctx.time_ms:
            ctx.fail("bad_period", "the campaign would end before it is opened")
        if not ctx.authority.agency_has_role(args.bank, CUSTODIAN_ROLE):
            ctx.fail("bank_not_custodian", f"agency {args.bank!r} is not a custodian bank")
        if (
            args.help_coin is not None
            and ctx.read(CURRENCY_CONTRACT, f"def/{args.help_coin}") is None
        ):
            ctx.fail("unknown_currency", f"there is no currency {args.help_coin!r}")
        record = {
            **args.model_dump(),
            "status": "open",
            "opened_ms": ctx.time_ms,
            "closed_ms": None,
            "donated": 0,
            "disbursed": 0,
            "balance": 0,
            "donations": 0,
            "disbursements": 0,
            "fifo_next": 1,
            "tx_id": ctx.tx_id,
        }
        ctx.put(f"campaign/{args.campaign_id}", record)
        charity["campaigns"] += 1
        ctx.put(f"charity/{args.charity_id}", charity)
        ctx.emit("campaign_opened", campaign_id=args.campaign_id, charity_id=args.charity_id)
        return record

    @transaction(CampaignRef, policy=PUBLIC)
    def close_campaign(self, ctx: TxContext, args: CampaignRef) -> dict[str, Any]:
        """The charity closes its campaign for good; what is left stays visible as balance."""
        campaign = self._campaign(ctx, args.campaign_id)
        self._check_charity_signer(ctx, self._charity(ctx, campaign["charity_id"]))
        if campaign["status"] == "closed":
            ctx.fail("campaign_closed", f"campaign {args.campaign_id!r} is already closed")
        campaign["status"], campaign["closed_ms"] = "closed", ctx.time_ms
        ctx.put(f"campaign/{args.campaign_id}", campaign)
        ctx.emit("campaign_closed", campaign_id=args.campaign_id, balance=campaign["balance"])
        return campaign

    @transaction(CampaignRef, policy=has_role(CHARITY_REGISTRAR_ROLE))
    def suspend_campaign(self, ctx: TxContext, args: CampaignRef) -> dict[str, Any]:
        """The registrar stops a campaign (an investigation, say) until it is resumed."""
        campaign = self._campaign(ctx, args.campaign_id)
        if campaign["status"] != "open":
            ctx.fail(f"campaign_{campaign['status']}", f"campaign is {campaign['status']}")
        campaign["status"] = "suspended"
        ctx.put(f"campaign/{args.campaign_id}", campaign)
        ctx.emit("campaign_suspended", campaign_id=args.campaign_id)
        return campaign

    @transaction(CampaignRef, policy=has_role(CHARITY_REGISTRAR_ROLE))
    def resume_campaign(self, ctx: TxContext, args: CampaignRef) -> dict[str, Any]:
        """Lift a campaign's suspension."""
        campaign = self._campaign(ctx, args.campaign_id)
        if campaign["status"] != "suspended":
            ctx.fail("campaign_not_suspended", f"campaign is {campaign['status']}")
        campaign["status"] = "open"
        ctx.put(f"campaign/{args.campaign_id}", campaign)
        ctx.emit("campaign_resumed", campaign_id=args.campaign_id)
        return campaign

    # -- money in and out --

    @transaction(Donate, policy=has_role(CUSTODIAN_ROLE))
    def donate(self, ctx: TxContext, args: Donate) -> dict[str, Any]:
        """The campaign's bank records a donation it received (single-use bank reference)."""
        campaign = self._campaign(ctx, args.campaign_id)
        if ctx.authority.agency_of(ctx.signer) != campaign["bank"]:
            ctx.fail("wrong_bank", f"only {campaign['bank']!r} attests this campaign's donations")
        self._check_live(ctx, campaign, until=campaign["ends_ms"])
        if campaign["donated"] + args.amount > MAX_TOTAL:
            ctx.fail("total_overflow", "the campaign's total would exceed the largest integer")
        self._use(ctx, "bank", args.bank_reference, "bank reference")
        campaign["donations"] += 1
        seq = campaign["donations"]
        if args.donor_commitment is not None:
            donor_key = f"donor/{args.donor_commitment}"
            if ctx.get(donor_key) is not None:
                ctx.fail("duplicate_donor_commitment", "this receipt secret was already used")
            ctx.put(donor_key, {"campaign_id": args.campaign_id, "seq": seq})
        donation = {
            "campaign_id": args.campaign_id,
            "seq": seq,
            "amount": args.amount,
            "allocated": 0,
            "donor_commitment": args.donor_commitment,
            "bank_reference": args.bank_reference,
            "time_ms": ctx.time_ms,
            "height": ctx.height,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_donation_key(args.campaign_id, seq), donation)
        campaign["donated"] += args.amount
        campaign["balance"] += args.amount
        ctx.put(f"campaign/{args.campaign_id}", campaign)
        ctx.emit("donated", campaign_id=args.campaign_id, seq=seq, amount=args.amount)
        return donation

    @transaction(Disburse, policy=PUBLIC)
    def disburse(self, ctx: TxContext, args: Disburse) -> dict[str, Any]:
        """The charity spends from the campaign; the money is allocated FIFO over donations."""
        campaign = self._campaign(ctx, args.campaign_id)
        self._check_charity_signer(ctx, self._charity(ctx, campaign["charity_id"]))
        self._check_live(
            ctx, campaign, until=campaign["ends_ms"] + campaign["disburse_days"] * DAY_MS
        )
        if args.amount > campaign["balance"]:
            ctx.fail(
                "insufficient_campaign_balance",
                f"{args.amount} asked; the campaign holds {campaign['balance']}",
            )
        currency_id = None
        if args.kind == "help_coin":
            currency_id = campaign["help_coin"]
            if currency_id is None:
                ctx.fail("help_coin_not_allowed", "this campaign funds no help coin")
        self._use(ctx, "receipt", args.receipt_hash, "receipt")
        campaign["disbursements"] += 1
        seq = campaign["disbursements"]
        shares = self._allocate(ctx, campaign, seq, args.amount)
        reference = reserve_reference(ctx.tx_id) if currency_id is not None else None
        record = {
            "campaign_id": args.campaign_id,
            "seq": seq,
            "amount": args.amount,
            "kind": args.kind,
            "purpose": args.purpose.model_dump(),
            "receipt_hash": args.receipt_hash,
            "beneficiary": args.beneficiary,
            "currency_id": currency_id,
            "reserve_reference": reference,
            "funding": None,
            "shares": shares,
            "time_ms": ctx.time_ms,
            "height": ctx.height,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_disbursement_key(args.campaign_id, seq), record)
        campaign["disbursed"] += args.amount
        campaign["balance"] -= args.amount
        ctx.put(f"campaign/{args.campaign_id}", campaign)
        ctx.emit(
            "disbursed", campaign_id=args.campaign_id, seq=seq, amount=args.amount, kind=args.kind
        )
        return record

    @transaction(LinkFunding, policy=PUBLIC)
    def link_funding(self, ctx: TxContext, args: LinkFunding) -> dict[str, Any]:
        """Tie a help-coin disbursement to the mint batch its reserve deposit paid for.

        Checked against the currency contract's state: the reserve deposit carrying the
        disbursement's reserve reference was attested, the batch exists, is not tied to another
        disbursement, and the named ``minted`` history entries are that batch's and add up to
        the disbursement (which must equal the batch's amount).
        """
        campaign = self._campaign(ctx, args.campaign_id)
        self._check_charity_signer(ctx, self._charity(ctx, campaign["charity_id"]))
        key = _disbursement_key(args.campaign_id, args.seq)
        record = ctx.get(key)
        if record is None:
            ctx.fail("unknown_disbursement", f"no disbursement {args.seq} in this campaign")
        if record["kind"] != "help_coin":
            ctx.fail("not_help_coin", "only a help-coin disbursement funds a mint batch")
        if record["funding"] is not None:
            ctx.fail("already_linked", "this disbursement is already linked to a batch")
        cur = record["currency_id"]
        deposit = ctx.read(
            CURRENCY_CONTRACT, f"reference/{cur}/reserve/{record['reserve_reference']}"
        )
        if deposit is None:
            ctx.fail("reserve_not_attested", "the bank has not attested this reserve deposit")
        batch = ctx.read(CURRENCY_CONTRACT, f"batch/{cur}/{args.batch_id}")
        if batch is None:
            ctx.fail("unknown_batch", f"no mint batch {args.batch_id!r} in {cur!r}")
        link_key = f"batch_link/{cur}/{args.batch_id}"
        if ctx.get(link_key) is not None:
            ctx.fail("batch_already_linked", "this batch already accounts for a disbursement")
        if batch["amount"] != record["amount"]:
            ctx.fail(
                "funding_mismatch",
                f"the batch minted {batch['amount']}; the disbursement is {record['amount']}",
            )
        mints = []
        for mint in args.mints:
            entry = ctx.read(CURRENCY_CONTRACT, f"history/{cur}/{mint.account}/{mint.seq:012d}")
            if entry is None or entry["kind"] != "minted" or entry["tx_id"] != batch["tx_id"]:
                ctx.fail(
                    "funding_mismatch",
                    f"entry {mint.seq} of {mint.account[:60]} is not this batch's",
                )
            mints.append({"account": mint.account, "seq": mint.seq, "amount": entry["change"]})
        if sum(m["amount"] for m in mints) != record["amount"]:
            ctx.fail("funding_mismatch", "the named mint entries do not add up to the disbursement")
        funding = {
            "batch_id": args.batch_id,
            "batch_tx_id": batch["tx_id"],
            "reserve_tx_id": deposit["tx_id"],
            "recipients": len(mints),
        }
        record = {**record, "funding": funding}
        ctx.put(key, record)
        ctx.put(_funding_key(args.campaign_id, args.seq), mints)
        ctx.put(link_key, {"campaign_id": args.campaign_id, "seq": args.seq})
        ctx.emit(
            "funding_linked", campaign_id=args.campaign_id, seq=args.seq, batch_id=args.batch_id
        )
        return record

    # -- queries --

    @query(CharityRef)
    def charity(self, ctx: QueryContext, args: CharityRef) -> Any:
        """A charity's record, or null."""
        return ctx.get(f"charity/{args.charity_id}")

    @query(Page)
    def charities(self, ctx: QueryContext, args: Page) -> dict[str, Any]:
        """Charities by id: ``{"charities", "next"}``."""
        after = f"charity/{args.after}" if args.after else ""
        page = [record for _, record in ctx.scan("charity/", args.limit, after)]
        cursor = page[-1]["charity_id"] if len(page) == args.limit else None
        return {"charities": page, "next": cursor}

    @query(CampaignRef)
    def campaign(self, ctx: QueryContext, args: CampaignRef) -> Any:
        """A campaign with its totals, or null."""
        return ctx.get(f"campaign/{args.campaign_id}")

    @query(Page)
    def campaigns(self, ctx: QueryContext, args: Page) -> dict[str, Any]:
        """Campaigns by id: ``{"campaigns", "next"}``."""
        after = f"campaign/{args.after}" if args.after else ""
        page = [record for _, record in ctx.scan("campaign/", args.limit, after)]
        cursor = page[-1]["campaign_id"] if len(page) == args.limit else None
        return {"campaigns": page, "next": cursor}

    @query(SeqPage)
    def donations(self, ctx: QueryContext, args: SeqPage) -> dict[str, Any]:
        """A campaign's donations in order: ``{"donations", "next"}``."""
        after = _donation_key(args.campaign_id, args.after) if args.after else ""
        page = [d for _, d in ctx.scan(f"donation/{args.campaign_id}/", args.limit, after)]
        cursor = page[-1]["seq"] if len(page) == args.limit else None
        return {"donations": page, "next": cursor}

    @query(SeqPage)
    def disbursements(self, ctx: QueryContext, args: SeqPage) -> dict[str, Any]:
        """A campaign's disbursements in order: ``{"disbursements", "next"}``."""
        after = _disbursement_key(args.campaign_id, args.after) if args.after else ""
        page = [d for _, d in ctx.scan(f"disbursement/{args.campaign_id}/", args.limit, after)]
        cursor = page[-1]["seq"] if len(page) == args.limit else None
        return {"disbursements": page, "next": cursor}

    @query(SeqRef)
    def donation(self, ctx: QueryContext, args: SeqRef) -> Any:
        """One donation with its FIFO shares ``[{disbursement, amount}]``, or null."""
        donation = ctx.get(_donation_key(args.campaign_id, args.seq))
        if donation is None:
            return None
        prefix = f"share/{args.campaign_id}/{args.seq:012d}/"
        shares = [
            {"disbursement": int(key.rsplit("/", 1)[1]), "amount": amount}
            for key, amount in ctx.scan(prefix, MAX_PAGE)
        ]
        return {**donation, "shares": shares}

    @query(SeqRef)
    def disbursement(self, ctx: QueryContext, args: SeqRef) -> Any:
        """One disbursement with its help-coin mint entries (``mints``), or null."""
        record = ctx.get(_disbursement_key(args.campaign_id, args.seq))
        if record is None:
            return None
        return {**record, "mints": ctx.get(_funding_key(args.campaign_id, args.seq)) or []}

    @query(DonorRef)
    def donor(self, ctx: QueryContext, args: DonorRef) -> Any:
        """Where the donation with this donor commitment is: ``{campaign_id, seq}`` or null."""
        return ctx.get(f"donor/{args.donor_commitment}")

    @query(SeqRef)
    def reserve_deposit(self, ctx: QueryContext, args: SeqRef) -> Any:
        """The currency contract's record of a help-coin disbursement's reserve deposit
        (``{tx_id, height}``), or null while the bank has not attested it."""
        record = ctx.get(_disbursement_key(args.campaign_id, args.seq))
        if record is None or record["reserve_reference"] is None:
            return None
        cur, ref = record["currency_id"], record["reserve_reference"]
        return ctx.read(CURRENCY_CONTRACT, f"reference/{cur}/reserve/{ref}")

    @query()
    def head_time(self, ctx: QueryContext, args: Args) -> int:
        """The head block's time: what a trace counts as "now" for lots past their expiry."""
        return ctx.time_ms

    @query(BatchRef)
    def mint_batch(self, ctx: QueryContext, args: BatchRef) -> Any:
        """A currency mint batch's record (its ``tx_id`` finds its history entries) and the
        disbursement it is linked to (``linked``), or null."""
        batch = ctx.read(CURRENCY_CONTRACT, f"batch/{args.currency_id}/{args.batch_id}")
        if batch is None:
            return None
        return {**batch, "linked": ctx.get(f"batch_link/{args.currency_id}/{args.batch_id}")}

    # -- helpers --

    @staticmethod
    def _charity(ctx: TxContext, charity_id: str) -> dict[str, Any]:
        charity = ctx.get(f"charity/{charity_id}")
        if charity is None:
            ctx.fail("unknown_charity", f"no charity {charity_id!r}")
        return dict(charity)

    @staticmethod
    def _campaign(ctx: TxContext, campaign_id: str) -> dict[str, Any]:
        campaign = ctx.get(f"campaign/{campaign_id}")
        if campaign is None:
            ctx.fail("unknown_campaign", f"no campaign {campaign_id!r}")
        return dict(campaign)

    @staticmethod
    def _check_charity_signer(ctx: TxContext, charity: dict[str, Any]) -> None:
        if ctx.signer not in charity["keys"]:
            ctx.fail("wrong_signer", f"the signer is not a key of {charity['charity_id']!r}")

    def _check_live(self, ctx: TxContext, campaign: dict[str, Any], *, until: int) -> None:
        """Open, its charity active, and the block time in ``[starts_ms, until)``."""
        if campaign["status"] != "open":
            ctx.fail(f"campaign_{campaign['status']}", f"the campaign is {campaign['status']}")
        if self._charity(ctx, campaign["charity_id"])["status"] != "active":
            ctx.fail("charity_suspended", "the campaign's charity is suspended")
        if not campaign["starts_ms"] <= ctx.time_ms < until:
            ctx.fail("outside_period", "the block time is outside the campaign's period")

    def _set_charity_status(self, ctx: TxContext, charity_id: str, status: str) -> dict[str, Any]:
        charity = self._charity(ctx, charity_id)
        if charity["status"] == status:
            ctx.fail(f"charity_{status}", f"charity {charity_id!r} is already {status}")
        charity["status"] = status
        ctx.put(f"charity/{charity_id}", charity)
        ctx.emit(f"charity_{status}", charity_id=charity_id)
        return charity

    @staticmethod
    def _use(ctx: TxContext, kind: str, value: str, what: str) -> None:
        key = f"used/{kind}/{value}"
        if ctx.get(key) is not None:
            ctx.fail(f"duplicate_{kind}", f"this {what} was already used")
        ctx.put(key, {"tx_id": ctx.tx_id, "height": ctx.height})

    @staticmethod
    def _allocate(
        ctx: TxContext, campaign: dict[str, Any], disbursement: int, amount: int
    ) -> list[dict[str, int]]:
        """Take ``amount`` from the oldest donations with money left (FIFO) and record shares.

        The caller checked ``amount <= balance``, and the balance is exactly the unallocated
        remainder of the donations from ``fifo_next`` on, so the loop always finishes.
        """
        cid = campaign["campaign_id"]
        shares: list[dict[str, int]] = []
        needed = amount
        seq = campaign["fifo_next"]
        while needed:
            if len(shares) == MAX_SHARES:
                ctx.fail("too_many_shares", f"more than {MAX_SHARES} donations; split it")
            key = _donation_key(cid, seq)
            donation = dict(ctx.get(key))
            taken = min(needed, donation["amount"] - donation["allocated"])
            donation["allocated"] += taken
            needed -= taken
            ctx.put(key, donation)
            ctx.put(_share_key(cid, seq, disbursement), taken)
            shares.append({"donation": seq, "amount": taken})
            if donation["allocated"] == donation["amount"]:
                seq += 1
        campaign["fifo_next"] = seq
        return shares
