"""The ``works`` contract: direct payment of subcontractors on public works (Seoul's 대금e바로).

Who does what (roles are governance roles granted by root):

- an ordering department (role ``works_orderer``) creates a works contract: the prime
  contractor's key and account reference, the site supervisor's key, the total in KRW, the stage
  amounts and the payment deadline in days (default 5);
- the custodian bank (role ``custodian_bank``, the currency service's) attests each escrow
  deposit with a single-use bank reference, and later confirms each payout order with its own;
- the prime registers its subcontractors (key, account reference, subcontract amount); the prime
  and each subcontractor register their own split lines per stage: ``subcontract`` (a
  subcontractor's own share), ``materials``, ``equipment`` (a supplier's account reference and an
  amount) and ``labour`` (a worker's pseudonym, the worker's own account reference, a daily wage
  and the days claimed);
- the site supervisor verifies the stage's work: its value and, per line, the verified days
  (labour) or amount (others); the prime then claims the stage, which is refused if any line or
  the claimed amount is above the verified work;
- the stage is released only after two approvals, each its own signed transaction: the ordering
  department's and the site supervisor's. The release pays every party directly in the same
  transaction: one payout order per line to its payee's account reference, the rest of the
  claim to the prime;
- a claim made at block time ``T`` must be fully paid by ``T + deadline``; after that anyone may
  send ``flag_late``, which records an alert that stays on the record after payment (a final
  confirmation after the deadline records one itself).

Invariants, per works contract, after every transaction (property-tested in
``tests/works/test_works_properties.py``):

- ``deposited == released + held`` and ``0 <= held``: a release never takes more than the escrow
  holds (``escrow_insufficient``);
- ``deposited <= total``, ``released <= total``, ``paid <= released``; a stage's payouts sum to its
  claim and a claim never exceeds its stage amount;
- each line is paid by exactly one payout order; a stage is released at most once; a payout
  order is confirmed at most once and every bank reference is used once.

No personal data: parties are keys (did:key), workers are pseudonyms (a keyed hash the prime's
payroll computes, see ``pseudonyms.py``), accounts are keyed hashes; names stay off the ledger.

State (under ``works/``):
    contract/<cid>                         the works contract and its escrow figures
    stage/<cid>/<n,3>                      a stage: amount, status, claim, approvals, due time
    party/<cid>/<party_id>                 the prime (``prime``) and each subcontractor
    line/<cid>/<n,3>/<line_id>             a split line of a stage
    worker/<cid>/<n,3>/<pseudonym>         index: a worker's labour line in a stage (one each)
    verified/<cid>/<n,3>                   the supervisor's verification of a stage
    payout/<cid>/<n,3>/<seq,4>             a payout order (pending, then paid)
    payee/<ref>/<cid>/<n,3>/<seq,4>        index: payouts by worker pseudonym or account reference
    open/<cid>/<n,3>                       index: claimed stages not yet fully paid (with due time)
    alert/<cid>/<n,3>                      a late-payment alert (never removed)
    reference/<ref>                        a used bank reference
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
from civicledger.services.currency.contract import CUSTODIAN_ROLE

__all__ = [
    "CONTRACT_NAME",
    "CUSTODIAN_ROLE",
    "DAY_MS",
    "ID_PATTERN",
    "LINE_KINDS",
    "MAX_LINES_PER_STAGE",
    "MAX_LINES_PER_TX",
    "MAX_PAGE",
    "MAX_STAGES",
    "MAX_SUBCONTRACTORS",
    "ORDERER_ROLE",
    "PRIME",
    "Works",
]

CONTRACT_NAME = "works"
ORDERER_ROLE = "works_orderer"
PRIME = "prime"
"""The party id of the prime contractor in every works contract."""

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""Contract, party and line ids."""
LINE_KINDS = ("subcontract", "materials", "equipment", "labour")
MAX_AMOUNT = 10**13
"""The largest total of one works contract (KRW)."""
MAX_TOTAL = 2**53 - 1
MAX_STAGES = 60
MAX_SUBCONTRACTORS = 100
MAX_LINES_PER_TX = 60
"""A split transaction's lines (a labour line is about 300 bytes; the tx limit is 32 KiB)."""
MAX_LINES_PER_STAGE = 200
"""All parties' lines of one stage: the release writes one payout per line in one transaction
and returns them all in its receipt, so this bounds both."""
MAX_CONFIRM = 100
MAX_PAGE = 500
MAX_DAILY_WAGE = 10_000_000
MAX_DAYS = 366
DAY_MS = 86_400_000
DEFAULT_DEADLINE_DAYS = 5

Krw = Annotated[int, Field(ge=1, le=MAX_AMOUNT)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Hash = Annotated[str, Field(pattern=HASH_PATTERN)]
StageNo = Annotated[int, Field(ge=1, le=MAX_STAGES)]


# -- argument models ----------------------------------------------------------------------------


class Text(Args):
    ko: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)


class ContractRef(Args):
    contract_id: Id


class StageRef(ContractRef):
    stage: StageNo


class CreateContract(ContractRef):
    title: Text
    """What is built (a road, a school roof): no personal data."""
    prime: DidKey
    prime_account_ref: Hash
    supervisor: DidKey
    total: Krw
    stages: list[Krw] = Field(min_length=1, max_length=MAX_STAGES)
    """Each stage's amount, in order; they must add up to ``total``."""
    deadline_days: int = Field(default=DEFAULT_DEADLINE_DAYS, ge=1, le=90)


class Deposit(ContractRef):
    amount: Krw
    bank_reference: Hash


class RegisterSubcontractor(ContractRef):
    party_id: Id
    key: DidKey
    account_ref: Hash
    amount: Krw
    """The subcontract amount: the most all of this party's lines may add up to."""


class Line(Args):
    line_id: Id
    kind: Literal["subcontract", "materials", "equipment", "labour"]
    payee_ref: Hash
    """The account reference the line is paid to: the supplier's, the subcontractor's, or, for
    labour, the worker's own account (never the employer's)."""
    amount: Krw | None = None
    """For subcontract, materials and equipment lines: the amount claimed."""
    worker: Hash | None = None
    """For labour: the worker's pseudonym."""
    daily_wage: int | None = Field(default=None, ge=1, le=MAX_DAILY_WAGE)
    days: int | None = Field(default=None, ge=1, le=MAX_DAYS)
    """For labour: the days claimed."""

    @model_validator(mode="after")
    def _shape(self) -> Line:
        labour = (self.worker, self.daily_wage, self.days)
        if self.kind == "labour":
            if None in labour or self.amount is not None:
                raise ValueError("a labour line has worker, daily_wage and days, no amount")
        elif self.amount is None or labour != (None, None, None):
            raise ValueError(f"a {self.kind} line has an amount and no worker, wage or days")
        return self

    @property
    def value(self) -> int:
        """What the line pays, in KRW."""
        if self.daily_wage is not None and self.days is not None:
            return self.daily_wage * self.days
        return self.amount or 0


class RegisterSplit(StageRef):
    party_id: Id
    lines: list[Line] = Field(min_length=1, max_length=MAX_LINES_PER_TX)

    @field_validator("lines")
    @classmethod
    def _unique(cls, lines: list[Line]) -> list[Line]:
        if len({line.line_id for line in lines}) != len(lines):
            raise ValueError("line ids repeat")
        return lines


class Verified(Args):
    line_id: Id
    quantity: int = Field(ge=0, le=MAX_AMOUNT)
    """Verified days for a labour line, verified KRW for any other."""


class VerifyWork(StageRef):
    work_amount: int = Field(ge=0, le=MAX_AMOUNT)
    """The value of the stage's work the supervisor saw done."""
    lines: list[Verified] = Field(default_factory=list, max_length=MAX_LINES_PER_STAGE)

    @field_validator("lines")
    @classmethod
    def _unique(cls, lines: list[Verified]) -> list[Verified]:
        if len({line.line_id for line in lines}) != len(lines):
            raise ValueError("line ids repeat")
        return lines


class Claim(StageRef):
    amount: Krw
    """The stage amount claimed: the lines are paid out of it, the rest goes to the prime."""


class Confirmation(Args):
    seq: int = Field(ge=1, le=MAX_LINES_PER_STAGE + 1)
    bank_reference: Hash


class ConfirmPayouts(StageRef):
    items: list[Confirmation] = Field(min_length=1, max_length=MAX_CONFIRM)


class Page(Args):
    after: str = Field(default="", max_length=200)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class PayeeRef(Args):
    ref: Hash
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


# -- keys ---------------------------------------------------------------------------------------


def _contract_key(cid: str) -> str:
    return f"contract/{cid}"


def _stage_key(cid: str, stage: int) -> str:
    return f"stage/{cid}/{stage:03d}"


def _party_key(cid: str, party_id: str) -> str:
    return f"party/{cid}/{party_id}"


def _line_prefix(cid: str, stage: int) -> str:
    return f"line/{cid}/{stage:03d}/"


def _worker_key(cid: str, stage: int, worker: str) -> str:
    return f"worker/{cid}/{stage:03d}/{worker}"


def _verified_key(cid: str, stage: int) -> str:
    return f"verified/{cid}/{stage:03d}"


def _payout_prefix(cid: str, stage: int) -> str:
    return f"payout/{cid}/{stage:03d}/"


def _open_key(cid: str, stage: int) -> str:
    return f"open/{cid}/{stage:03d}"


def _alert_key(cid: str, stage: int) -> str:
    return f"alert/{cid}/{stage:03d}"


# -- the contract -------------------------------------------------------------------------------


class Works(Contract):
    name = CONTRACT_NAME

    # -- setting up --

    @transaction(CreateContract, policy=has_role(ORDERER_ROLE))
    def create_contract(self, ctx: TxContext, args: CreateContract) -> dict[str, Any]:
        """Create a works contract with its stages; the signer's agency is its orderer."""
        if ctx.get(_contract_key(args.contract_id)) is not None:
            ctx.fail("contract_exists", f"works contract {args.contract_id!r} already exists")
        if sum(args.stages) != args.total:
            ctx.fail(
                "stages_mismatch", f"the stages add up to {sum(args.stages)}, not {args.total}"
            )
        if args.prime == args.supervisor:
            ctx.fail("supervisor_is_prime", "the site supervisor cannot be the prime contractor")
        orderer = ctx.authority.agency_of(ctx.signer)
        if ctx.authority.agency_of(args.supervisor) == orderer:
            # The release needs two independent signatures: one agency cannot give both.
            ctx.fail("supervisor_is_orderer", "the supervisor cannot be a key of the orderer")
        record = {
            "contract_id": args.contract_id,
            "title": args.title.model_dump(),
            "orderer": orderer,
            "prime": args.prime,
            "supervisor": args.supervisor,
            "total": args.total,
            "stage_count": len(args.stages),
            "deadline_days": args.deadline_days,
            "deposited": 0,
            "released": 0,
            "held": 0,
            "paid": 0,
            "subcontracted": 0,
            "created_ms": ctx.time_ms,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_contract_key(args.contract_id), record)
        for number, amount in enumerate(args.stages, start=1):
            ctx.put(_stage_key(args.contract_id, number), _new_stage(number, amount))
        ctx.put(
            _party_key(args.contract_id, PRIME),
            {
                "party_id": PRIME,
                "kind": "prime",
                "key": args.prime,
                "account_ref": args.prime_account_ref,
                "amount": args.total,
                "split_total": 0,
            },
        )
        ctx.emit("works_created", contract_id=args.contract_id, total=args.total)
        return record

    @transaction(Deposit, policy=has_role(CUSTODIAN_ROLE))
    def deposit(self, ctx: TxContext, args: Deposit) -> dict[str, Any]:
        """The custodian bank received ``amount`` into the contract's escrow."""
        record = self._contract(ctx, args.contract_id)
        if record["deposited"] + args.amount > record["total"]:
            ctx.fail(
                "deposit_exceeds_total",
                f"the escrow would hold more than the contract total {record['total']}",
            )
        self._use_reference(ctx, args.bank_reference)
        record["deposited"] += args.amount
        record["held"] += args.amount
        ctx.put(_contract_key(args.contract_id), record)
        ctx.emit("escrow_deposited", contract_id=args.contract_id, amount=args.amount)
        return record

    @transaction(RegisterSubcontractor, policy=PUBLIC)
    def register_subcontractor(self, ctx: TxContext, args: RegisterSubcontractor) -> dict[str, Any]:
        """The prime registers a subcontractor: its key, account reference and amount."""
        record = self._contract(ctx, args.contract_id)
        if ctx.signer != record["prime"]:
            ctx.fail("not_prime", "only the prime contractor registers subcontractors")
        if ctx.get(_party_key(args.contract_id, args.party_id)) is not None:
            ctx.fail("party_exists", f"party {args.party_id!r} is already registered")
        parties = [p for _, p in ctx.scan(f"party/{args.contract_id}/", MAX_SUBCONTRACTORS + 2)]
        if args.key == record["supervisor"] or any(p["key"] == args.key for p in parties):
            ctx.fail("key_in_use", "a subcontractor needs its own key")
        if record["subcontracted"] + args.amount > record["total"]:
            ctx.fail("subcontracts_exceed_total", "subcontracts would exceed the contract total")
        if len(parties) > MAX_SUBCONTRACTORS:
            ctx.fail("too_many_parties", f"at most {MAX_SUBCONTRACTORS} subcontractors")
        party = {
            "party_id": args.party_id,
            "kind": "sub",
            "key": args.key,
            "account_ref": args.account_ref,
            "amount": args.amount,
            "split_total": 0,
        }
        ctx.put(_party_key(args.contract_id, args.party_id), party)
        record["subcontracted"] += args.amount
        ctx.put(_contract_key(args.contract_id), record)
        ctx.emit("subcontractor_registered", contract_id=args.contract_id, party_id=args.party_id)
        return party

    @transaction(RegisterSplit, policy=PUBLIC)
    def register_split(self, ctx: TxContext, args: RegisterSplit) -> dict[str, Any]:
        """A party (the prime or a subcontractor, signing itself) adds its lines to a stage."""
        cid = args.contract_id
        self._contract(ctx, cid)
        stage = self._stage(ctx, cid, args.stage)
        party = ctx.get(_party_key(cid, args.party_id))
        if party is None:
            ctx.fail("unknown_party", f"no party {args.party_id!r} in {cid!r}")
        if ctx.signer != party["key"]:
            ctx.fail("not_party", f"only {args.party_id!r}'s key registers its split")
        if stage["status"] != "open":
            ctx.fail("stage_claimed", f"stage {args.stage} is already claimed")
        self._check_lines(ctx, args, party)
        added = sum(line.value for line in args.lines)
        if stage["lines"] + len(args.lines) > MAX_LINES_PER_STAGE:
            ctx.fail("too_many_lines", f"a stage holds at most {MAX_LINES_PER_STAGE} lines")
        if stage["split_total"] + added > stage["amount"]:
            ctx.fail(
                "split_exceeds_stage",
                f"the stage's lines would add up to more than its amount {stage['amount']}",
            )
        if party["kind"] == "sub" and party["split_total"] + added > party["amount"]:
            ctx.fail(
                "split_exceeds_subcontract",
                f"{args.party_id!r}'s lines would exceed its subcontract {party['amount']}",
            )
        for line in args.lines:
            entry = {**line.model_dump(), "party_id": args.party_id, "value": line.value}
            ctx.put(_line_prefix(cid, args.stage) + line.line_id, entry)
            if line.worker is not None:
                ctx.put(_worker_key(cid, args.stage, line.worker), {"line_id": line.line_id})
        stage["lines"] += len(args.lines)
        stage["split_total"] += added
        party["split_total"] += added
        ctx.put(_stage_key(cid, args.stage), stage)
        ctx.put(_party_key(cid, args.party_id), party)
        ctx.emit("split_registered", contract_id=cid, stage=args.stage, party_id=args.party_id)
        return stage

    # -- verification, claim, approvals, release --

    @transaction(VerifyWork, policy=PUBLIC)
    def verify_work(self, ctx: TxContext, args: VerifyWork) -> dict[str, Any]:
        """The site supervisor records the work verified on site for a stage (until claimed)."""
        cid = args.contract_id
        record = self._contract(ctx, cid)
        stage = self._stage(ctx, cid, args.stage)
        if ctx.signer != record["supervisor"]:
            ctx.fail("not_supervisor", "only the contract's site supervisor verifies work")
        if stage["status"] != "open":
            ctx.fail("stage_claimed", f"stage {args.stage} is already claimed")
        if args.work_amount > stage["amount"]:
            ctx.fail("verified_above_stage", f"stage {args.stage} is worth {stage['amount']}")
        for item in args.lines:
            if ctx.get(_line_prefix(cid, args.stage) + item.line_id) is None:
                ctx.fail("unknown_line", f"no line {item.line_id!r} in stage {args.stage}")
        verification = {
            "work_amount": args.work_amount,
            "lines": {item.line_id: item.quantity for item in args.lines},
            "supervisor": ctx.signer,
            "verified_ms": ctx.time_ms,
        }
        ctx.put(_verified_key(cid, args.stage), verification)
        ctx.emit("work_verified", contract_id=cid, stage=args.stage, work=args.work_amount)
        return verification

    @transaction(Claim, policy=PUBLIC)
    def claim(self, ctx: TxContext, args: Claim) -> dict[str, Any]:
        """The prime claims a stage: every line and the amount within the verified work."""
        cid = args.contract_id
        record = self._contract(ctx, cid)
        stage = self._stage(ctx, cid, args.stage)
        if ctx.signer != record["prime"]:
            ctx.fail("not_prime", "only the prime contractor claims a stage")
        if stage["status"] != "open":
            ctx.fail("stage_claimed", f"stage {args.stage} is already claimed")
        verification = ctx.get(_verified_key(cid, args.stage))
        if verification is None:
            ctx.fail("work_not_verified", f"the supervisor has not verified stage {args.stage}")
        if args.amount > stage["amount"]:
            ctx.fail("claim_exceeds_stage", f"stage {args.stage} is worth {stage['amount']}")
        if args.amount > verification["work_amount"]:
            ctx.fail(
                "claim_exceeds_verified_work",
                f"{args.amount} claimed, {verification['work_amount']} verified",
            )
        if stage["split_total"] > args.amount:
            ctx.fail("split_exceeds_claim", "the lines add up to more than the claim")
        verified = verification["lines"]
        for _, line in ctx.scan(_line_prefix(cid, args.stage), MAX_LINES_PER_STAGE):
            seen = int(verified.get(line["line_id"], 0))
            if line["kind"] == "labour" and line["days"] > seen:
                ctx.fail(
                    "labour_days_exceed_verified",
                    f"line {line['line_id']!r} claims {line['days']} days, {seen} verified",
                )
            if line["kind"] != "labour" and line["amount"] > seen:
                ctx.fail(
                    "claim_exceeds_verified_work",
                    f"line {line['line_id']!r} claims {line['amount']}, {seen} verified",
                )
        due_ms = ctx.time_ms + record["deadline_days"] * DAY_MS
        stage.update(status="claimed", claim=args.amount, claimed_ms=ctx.time_ms, due_ms=due_ms)
        ctx.put(_stage_key(cid, args.stage), stage)
        ctx.put(
            _open_key(cid, args.stage), {"contract_id": cid, "stage": args.stage, "due_ms": due_ms}
        )
        ctx.emit("stage_claimed", contract_id=cid, stage=args.stage, amount=args.amount)
        return stage

    @transaction(StageRef, policy=PUBLIC)
    def approve(self, ctx: TxContext, args: StageRef) -> dict[str, Any]:
        """The ordering department or the site supervisor approves a claimed stage."""
        cid = args.contract_id
        record = self._contract(ctx, cid)
        stage = self._stage(ctx, cid, args.stage)
        if ctx.signer == record["supervisor"]:
            who = "supervisor"
        elif ctx.authority.agency_of(ctx.signer) == record["orderer"] and ctx.authority.has_role(
            ctx.signer, ORDERER_ROLE
        ):
            who = "orderer"
        else:
            ctx.fail("not_approver", "only the ordering department or the supervisor approves")
        if stage["status"] != "claimed":
            ctx.fail("not_claimed", f"stage {args.stage} is {stage['status']}, not claimed")
        if who in stage["approvals"]:
            ctx.fail("already_approved", f"the {who} already approved stage {args.stage}")
        stage["approvals"][who] = {"signer": ctx.signer, "at_ms": ctx.time_ms, "tx_id": ctx.tx_id}
        ctx.put(_stage_key(cid, args.stage), stage)
        ctx.emit("stage_approved", contract_id=cid, stage=args.stage, by=who)
        return stage

    @transaction(StageRef, policy=PUBLIC)
    def release(self, ctx: TxContext, args: StageRef) -> dict[str, Any]:
        """Release a stage approved by both signers: one payout order per line, the rest of the
        claim to the prime, all in this transaction (anyone may send it)."""
        cid = args.contract_id
        record = self._contract(ctx, cid)
        stage = self._stage(ctx, cid, args.stage)
        if stage["status"] in ("released", "paid"):
            ctx.fail("already_released", f"stage {args.stage} was already released")
        if stage["status"] != "claimed":
            ctx.fail("not_claimed", f"stage {args.stage} is not claimed")
        for who in ("orderer", "supervisor"):
            if who not in stage["approvals"]:
                ctx.fail("missing_approval", f"stage {args.stage} lacks the {who}'s approval")
        if stage["claim"] > record["held"]:
            ctx.fail(
                "escrow_insufficient", f"the escrow holds {record['held']} of {stage['claim']}"
            )
        # No total check is needed here: each stage is released once and its claim is at most
        # its amount, and the amounts add up to the total (checked at creation).
        orders: list[dict[str, Any]] = []
        for _, line in ctx.scan(_line_prefix(cid, args.stage), MAX_LINES_PER_STAGE):
            orders.append(
                {
                    "party_id": line["party_id"],
                    "line_id": line["line_id"],
                    "kind": line["kind"],
                    "payee_ref": line["payee_ref"],
                    "worker": line.get("worker"),
                    "amount": line["value"],
                }
            )
        rest = stage["claim"] - stage["split_total"]
        if rest > 0:
            prime = ctx.get(_party_key(cid, PRIME))
            orders.append(
                {
                    "party_id": PRIME,
                    "line_id": None,
                    "kind": "prime",
                    "payee_ref": prime["account_ref"],
                    "worker": None,
                    "amount": rest,
                }
            )
        for seq, order in enumerate(orders, start=1):
            order.update(
                contract_id=cid,
                stage=args.stage,
                seq=seq,
                status="pending",
                released_ms=ctx.time_ms,
                paid_ms=None,
                bank_reference=None,
            )
            ctx.put(f"{_payout_prefix(cid, args.stage)}{seq:04d}", order)
            tail = f"{cid}/{args.stage:03d}/{seq:04d}"
            ctx.put(f"payee/{order['payee_ref']}/{tail}", {"seq": seq})
            if order["worker"] is not None:
                ctx.put(f"payee/{order['worker']}/{tail}", {"seq": seq})
        record["released"] += stage["claim"]
        record["held"] -= stage["claim"]
        stage.update(status="released", released_ms=ctx.time_ms, payouts=len(orders))
        ctx.put(_contract_key(cid), record)
        ctx.put(_stage_key(cid, args.stage), stage)
        ctx.emit(
            "stage_released",
            contract_id=cid,
            stage=args.stage,
            amount=stage["claim"],
            payouts=len(orders),
        )
        return {"stage": stage, "payouts": orders}

    @transaction(ConfirmPayouts, policy=has_role(CUSTODIAN_ROLE))
    def confirm_payouts(self, ctx: TxContext, args: ConfirmPayouts) -> dict[str, Any]:
        """The bank transferred these payout orders to their accounts; the last one of a stage
        completes it (and records a late alert if the deadline had passed)."""
        cid = args.contract_id
        record = self._contract(ctx, cid)
        stage = self._stage(ctx, cid, args.stage)
        if stage["status"] not in ("released", "paid"):
            ctx.fail("not_released", f"stage {args.stage} has no payout orders yet")
        if len({item.seq for item in args.items}) != len(args.items):
            ctx.fail("duplicate_payout", "a payout order appears twice")
        amount = 0
        for item in args.items:
            key = f"{_payout_prefix(cid, args.stage)}{item.seq:04d}"
            order = ctx.get(key)
            if order is None:
                ctx.fail("unknown_payout", f"no payout order {item.seq} in stage {args.stage}")
            if order["status"] == "paid":
                ctx.fail("already_paid", f"payout order {item.seq} is already paid")
            self._use_reference(ctx, item.bank_reference)
            order.update(status="paid", paid_ms=ctx.time_ms, bank_reference=item.bank_reference)
            ctx.put(key, order)
            amount += order["amount"]
        stage["paid_count"] += len(args.items)
        stage["paid"] += amount
        record["paid"] += amount
        if stage["paid_count"] == stage["payouts"]:
            stage.update(status="paid", paid_ms=ctx.time_ms)
            ctx.delete(_open_key(cid, args.stage))
            if ctx.time_ms > stage["due_ms"] and ctx.get(_alert_key(cid, args.stage)) is None:
                self._alert(ctx, cid, stage)
        ctx.put(_stage_key(cid, args.stage), stage)
        ctx.put(_contract_key(cid), record)
        ctx.emit("payouts_confirmed", contract_id=cid, stage=args.stage, amount=amount)
        return stage

    @transaction(StageRef, policy=PUBLIC)
    def flag_late(self, ctx: TxContext, args: StageRef) -> dict[str, Any]:
        """Anyone records that a claimed stage was not paid by its deadline (block time)."""
        cid = args.contract_id
        self._contract(ctx, cid)
        stage = self._stage(ctx, cid, args.stage)
        if stage["due_ms"] is None:
            ctx.fail("not_claimed", f"stage {args.stage} is not claimed")
        if ctx.get(_alert_key(cid, args.stage)) is not None:
            ctx.fail("already_flagged", f"stage {args.stage} is already flagged late")
        if stage["status"] == "paid" or ctx.time_ms <= stage["due_ms"]:
            ctx.fail("not_late", f"stage {args.stage} is not late")
        return self._alert(ctx, cid, stage)

    # -- queries --

    @query(ContractRef)
    def contract(self, ctx: QueryContext, args: ContractRef) -> Any:
        """The works contract with its escrow figures, or null."""
        return ctx.get(_contract_key(args.contract_id))

    @query(Page)
    def contracts(self, ctx: QueryContext, args: Page) -> dict[str, Any]:
        """Works contracts by id: ``{"contracts", "next"}``."""
        after = _contract_key(args.after) if args.after else ""
        page = [record for _, record in ctx.scan("contract/", args.limit, after)]
        cursor = page[-1]["contract_id"] if len(page) == args.limit else None
        return {"contracts": page, "next": cursor}

    @query(ContractRef)
    def stages(self, ctx: QueryContext, args: ContractRef) -> list[Any]:
        """Every stage of a contract, in order."""
        return [s for _, s in ctx.scan(f"stage/{args.contract_id}/", MAX_STAGES)]

    @query(ContractRef)
    def parties(self, ctx: QueryContext, args: ContractRef) -> list[Any]:
        """The prime and the subcontractors, by party id."""
        return [p for _, p in ctx.scan(f"party/{args.contract_id}/", MAX_SUBCONTRACTORS + 1)]

    @query(StageRef)
    def stage(self, ctx: QueryContext, args: StageRef) -> Any:
        """A stage with its lines, verification, payout orders and alert, or null."""
        found = ctx.get(_stage_key(args.contract_id, args.stage))
        if found is None:
            return None
        cid, n = args.contract_id, args.stage
        return {
            **found,
            "split": [line for _, line in ctx.scan(_line_prefix(cid, n), MAX_LINES_PER_STAGE)],
            "verification": ctx.get(_verified_key(cid, n)),
            "payout_orders": [
                o for _, o in ctx.scan(_payout_prefix(cid, n), MAX_LINES_PER_STAGE + 1)
            ],
            "alert": ctx.get(_alert_key(cid, n)),
        }

    @query(PayeeRef)
    def payments(self, ctx: QueryContext, args: PayeeRef) -> list[Any]:
        """Payout orders to a worker's pseudonym or an account reference (a worker checks
        their wages with either), oldest contract first."""
        found = []
        for key, _ in ctx.scan(f"payee/{args.ref}/", args.limit):
            cid, stage, seq = key.split("/")[2:5]
            order = ctx.get(f"payout/{cid}/{stage}/{seq}")
            if order is not None:
                found.append(order)
        return found

    @query(Page)
    def alerts(self, ctx: QueryContext, args: Page) -> dict[str, Any]:
        """Late-payment alerts by contract and stage: ``{"alerts", "next"}``."""
        after = f"alert/{args.after}" if args.after else ""
        scanned = list(ctx.scan("alert/", args.limit, after))
        cursor = scanned[-1][0].removeprefix("alert/") if len(scanned) == args.limit else None
        return {"alerts": [a for _, a in scanned], "next": cursor}

    @query(Page)
    def overdue(self, ctx: QueryContext, args: Page) -> list[Any]:
        """Claimed stages not fully paid whose deadline passed by the head block's time."""
        after = f"open/{args.after}" if args.after else ""
        return [
            entry
            for _, entry in ctx.scan("open/", args.limit, after)
            if entry["due_ms"] < ctx.time_ms
        ]

    # -- helpers --

    @staticmethod
    def _contract(ctx: TxContext, cid: str) -> dict[str, Any]:
        record = ctx.get(_contract_key(cid))
        if record is None:
            ctx.fail("unknown_works_contract", f"no works contract {cid!r}")
        return dict(record)

    @staticmethod
    def _stage(ctx: TxContext, cid: str, number: int) -> dict[str, Any]:
        stage = ctx.get(_stage_key(cid, number))
        if stage is None:
            ctx.fail("unknown_stage", f"works contract {cid!r} has no stage {number}")
        return {**stage, "approvals": dict(stage["approvals"])}

    @staticmethod
    def _check_lines(ctx: TxContext, args: RegisterSplit, party: dict[str, Any]) -> None:
        """Refuse a line that exists, a subcontract share not paid to the subcontractor
        itself, a wage paid to a party's account (it goes to the worker's own) or a worker
        listed twice in a stage (one worker's days claimed twice)."""
        cid, number = args.contract_id, args.stage
        labour = [line for line in args.lines if line.kind == "labour"]
        workers = [str(line.worker) for line in labour]
        if len(set(workers)) != len(workers):
            ctx.fail("duplicate_worker", "a worker appears twice in this split")
        accounts = set()
        if labour:
            scanned = ctx.scan(f"party/{cid}/", MAX_SUBCONTRACTORS + 1)
            accounts = {p["account_ref"] for _, p in scanned}
        for line in args.lines:
            if ctx.get(_line_prefix(cid, number) + line.line_id) is not None:
                ctx.fail("line_exists", f"line {line.line_id!r} is already in stage {number}")
            if line.kind == "subcontract" and party["kind"] != "sub":
                ctx.fail("bad_line", "only a subcontractor registers a subcontract line")
            if line.kind == "subcontract" and line.payee_ref != party["account_ref"]:
                ctx.fail("bad_line", "a subcontract line pays the subcontractor's own account")
            if line.kind == "labour" and line.payee_ref in accounts:
                ctx.fail("wage_to_party_account", "a wage goes to the worker's own account")
        for worker in workers:
            if ctx.get(_worker_key(cid, number, worker)) is not None:
                ctx.fail("duplicate_worker", f"this worker is already in stage {number}")

    @staticmethod
    def _use_reference(ctx: TxContext, reference: str) -> None:
        if ctx.get(f"reference/{reference}") is not None:
            ctx.fail("duplicate_reference", "this bank reference was already used")
        ctx.put(f"reference/{reference}", {"tx_id": ctx.tx_id})

    @staticmethod
    def _alert(ctx: TxContext, cid: str, stage: dict[str, Any]) -> dict[str, Any]:
        alert = {
            "contract_id": cid,
            "stage": stage["stage"],
            "due_ms": stage["due_ms"],
            "flagged_ms": ctx.time_ms,
            "late_ms": ctx.time_ms - stage["due_ms"],
            "status_when_flagged": stage["status"],
            "flagged_by": ctx.signer,
        }
        ctx.put(_alert_key(cid, stage["stage"]), alert)
        ctx.emit("payment_late", contract_id=cid, stage=stage["stage"], due_ms=stage["due_ms"])
        return alert


def _new_stage(number: int, amount: int) -> dict[str, Any]:
    return {
        "stage": number,
        "amount": amount,
        "status": "open",
        "lines": 0,
        "split_total": 0,
        "claim": None,
        "claimed_ms": None,
        "due_ms": None,
        "approvals": {},
        "released_ms": None,
        "payouts": 0,
        "paid_count": 0,
        "paid": 0,
        "paid_ms": None,
    }
