"""The ``vehicles`` contract: a used car's life history and its escrowed sale.

Roles (governance roles granted by root): ``vehicle_registry`` (the registration office) registers
vehicles, records ownership transfers (and settles sales), liens, seizures and their release;
``vehicle_inspector`` (inspection stations) records inspections with an odometer reading and the
performance/condition inspection record (성능·상태점검기록부) by hash; ``vehicle_repairer``
records repairs and instrument-cluster replacements; ``vehicle_insurer`` records accidents, flood
damage and total losses; ``custodian_bank`` (the currency service's role) attests a buyer's
deposit and confirms payouts. Offers, acceptances and withdrawals are signed by the parties' own
keys.

Personal data: the ledger key is the VIN (car-history services show it publicly). Owners appear
only as did:keys the registry links to a person off the ledger (one fresh key per car and owner,
so keys do not link one person's cars); documents (inspection records, repair orders, claims,
bank references, creditors) only as SHA-256 digests.

Odometer rules (why each): readings never decrease except across a recorded cluster
replacement, whose ``before_km`` closes the old cluster and ``after_km`` opens the new one. A
lower reading (a rollback) is *recorded and flagged*, never refused: refusing would let the
tampered car disappear from the history, while recording it leaves the evidence and sets a
permanent ``discrepancies`` mark on the vehicle that nothing clears (transfers and sales keep
it). The baseline then moves to the new reading, so later honest readings are not all flagged
again. A reading rising faster than ``MAX_KM_PER_DAY`` (plus ``GRACE_KM`` of slack for readings
close together) is flagged ``implausible_rate`` on its event.

Escrow invariant (property-tested): ``deposited == held + released + refunded``; ``held`` is the
sum of the prices of funded, unsettled sales; every payout or refund order is for exactly one
sale's price, and at most one per sale.

State (under ``vehicles/``):
    vehicle/<vin>               the record: owner, owner_count, odometer, discrepancies, flags,
                                encumbrances, open sale, event count
    event/<vin>/<seq,8>         the vehicle's events, 1-based, oldest first (never rewritten)
    record/<record_hash>        an inspection record: vin, seq, time, odometer, kind
    sale/<sale_id,12>           a sale: offered → accepted → funded → settled | cancelled
    order/<order_id,12>         a payout (seller) or refund (buyer) order: pending → paid
    reference/<hash>            a used bank reference (single use)
    escrow                      deposited, held, released, refunded, paid, counters
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

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
    "DISCLOSURE_MAX_AGE_MS",
    "GRACE_KM",
    "INSPECTOR_ROLE",
    "INSURER_ROLE",
    "MAX_KM",
    "MAX_KM_PER_DAY",
    "MAX_PAGE",
    "REGISTRY_ROLE",
    "REPAIRER_ROLE",
    "VIN_PATTERN",
    "Vehicles",
]

CONTRACT_NAME = "vehicles"
REGISTRY_ROLE = "vehicle_registry"
INSPECTOR_ROLE = "vehicle_inspector"
REPAIRER_ROLE = "vehicle_repairer"
INSURER_ROLE = "vehicle_insurer"

VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"
"""ISO 3779: 17 characters, no I, O or Q."""
CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MAX_KM = 9_999_999
"""A seven-digit odometer."""
MAX_KM_PER_DAY = 1_000
"""Faster than this between two readings is implausible (a car driven ~42 km/h for 24 h)."""
GRACE_KM = 500
"""Slack added to the rate bound, so two readings hours apart are not flagged for a day trip."""
DISCLOSURE_MAX_AGE_MS = 120 * 86_400_000
"""An inspection record older than 120 days (its validity for a dealer sale) cannot be
disclosed in an offer."""
MAX_PRICE = 10**12
MAX_ENCUMBRANCES = 32
MAX_DISCREPANCIES = 100
"""Marks kept in detail; beyond this only ``discrepancy_count`` grows (the mark stays)."""
MAX_PAGE = 1000
MAX_ID = 2**53 - 1
DAY_MS = 86_400_000

Vin = Annotated[str, Field(pattern=VIN_PATTERN)]
Digest = Annotated[str, Field(pattern=HASH_PATTERN)]
Km = Annotated[int, Field(ge=0, le=MAX_KM)]
Code = Annotated[str, Field(pattern=CODE_PATTERN)]


# -- argument models ----------------------------------------------------------------------------


class VinRef(Args):
    vin: Vin


class Register(VinRef):
    owner: DidKey
    """The first owner's key (the registry links it to the person off the ledger)."""
    make: Code
    model_year: int = Field(ge=1900, le=2100)
    fuel: Literal["gasoline", "diesel", "lpg", "hybrid", "electric", "hydrogen", "other"]
    odometer_km: Km = 0


class Inspect(VinRef):
    odometer_km: Km
    record_hash: Digest
    """SHA-256 of the inspection record (for ``performance``: the 성능·상태점검기록부)."""
    kind: Literal["periodic", "performance"]


class Repair(VinRef):
    work_hash: Digest
    """SHA-256 of the repair order."""
    parts: list[Code] = Field(default_factory=list, max_length=32)
    odometer_km: Km | None = None


class ReplaceCluster(VinRef):
    work_hash: Digest
    before_km: Km
    """The old cluster's last reading."""
    after_km: Km
    """The new cluster's first reading."""


class Accident(VinRef):
    kind: Literal["collision", "flood", "fire", "theft", "total_loss"]
    claim_hash: Digest
    """SHA-256 of the insurance claim."""
    paid_krw: int = Field(default=0, ge=0, le=MAX_PRICE)
    odometer_km: Km | None = None


class Encumber(VinRef):
    encumbrance_id: Code
    holder_hash: Digest
    """SHA-256 of the creditor's or the seizing authority's record (no names)."""


class Release(VinRef):
    encumbrance_id: Code


class Transfer(VinRef):
    new_owner: DidKey
    sale_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    """Settle this sale (its buyer must be ``new_owner``); ``None``: a transfer without escrow
    (inheritance, a gift), refused while a sale is open."""
    odometer_km: Km | None = None


class Offer(VinRef):
    buyer: DidKey
    price: int = Field(ge=1, le=MAX_PRICE)
    disclosure_hash: Digest
    """The inspection record the seller discloses: a ``performance`` inspection of this car."""


class SaleRef(Args):
    sale_id: int = Field(ge=1, le=MAX_ID)


class Deposit(SaleRef):
    amount: int = Field(ge=1, le=MAX_PRICE)
    bank_reference: Digest


class ConfirmOrder(Args):
    order_id: int = Field(ge=1, le=MAX_ID)
    bank_reference: Digest


class EventsPage(VinRef):
    after: int = Field(default=0, ge=0, le=MAX_ID)
    """Events with a sequence number above this (the ``next`` of the previous page)."""
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class RecordRef(Args):
    record_hash: Digest


class OrdersPage(Args):
    after: int = Field(default=0, ge=0, le=MAX_ID)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    status: Literal["pending", "paid"] | None = None


class SalesPage(Args):
    after: int = Field(default=0, ge=0, le=MAX_ID)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


# -- keys and pure helpers ----------------------------------------------------------------------


def _vehicle_key(vin: str) -> str:
    return f"vehicle/{vin}"


def _event_key(vin: str, seq: int) -> str:
    return f"event/{vin}/{seq:08d}"


def _sale_key(sale_id: int) -> str:
    return f"sale/{sale_id:012d}"


def _order_key(order_id: int) -> str:
    return f"order/{order_id:012d}"


def _new_escrow() -> dict[str, int]:
    return {
        "deposited": 0,
        "held": 0,
        "released": 0,
        "refunded": 0,
        "paid": 0,
        "sale_seq": 0,
        "order_seq": 0,
    }


def odometer_flags(odometer: dict[str, Any], km: int, time_ms: int) -> list[str]:
    """The flags a reading of ``km`` at ``time_ms`` earns against the vehicle's ``odometer``
    state (``last_km``, ``last_ms`` or ``None`` before the first reading). Pure."""
    last_km, last_ms = odometer.get("last_km"), odometer.get("last_ms")
    if last_km is None or last_ms is None:
        return []
    if km < last_km:
        return ["rollback"]
    elapsed = max(time_ms - last_ms, 0)
    if (km - last_km) * DAY_MS > MAX_KM_PER_DAY * elapsed + GRACE_KM * DAY_MS:
        return ["implausible_rate"]
    return []


# -- the contract -------------------------------------------------------------------------------


class Vehicles(Contract):
    name = CONTRACT_NAME

    # -- the registry --

    @transaction(Register, policy=has_role(REGISTRY_ROLE))
    def register(self, ctx: TxContext, args: Register) -> dict[str, Any]:
        """Register a vehicle with its first owner and, if given, its odometer reading."""
        if ctx.get(_vehicle_key(args.vin)) is not None:
            ctx.fail("vehicle_exists", f"vehicle {args.vin} is already registered")
        vehicle: dict[str, Any] = {
            "vin": args.vin,
            "make": args.make,
            "model_year": args.model_year,
            "fuel": args.fuel,
            "owner": args.owner,
            "owner_count": 1,
            "registered_ms": ctx.time_ms,
            "events": 0,
            "odometer": {"last_km": None, "last_ms": None, "offset_km": 0, "clusters": 1},
            "discrepancy_count": 0,
            "discrepancies": [],
            "flags": [],
            "accidents": 0,
            "encumbrances": {},
            "sale": None,
        }
        self._append(ctx, vehicle, "registration", {"owner": args.owner}, args.odometer_km)
        ctx.emit("vehicle_registered", vin=args.vin)
        return vehicle

    @transaction(Transfer, policy=has_role(REGISTRY_ROLE))
    def transfer(self, ctx: TxContext, args: Transfer) -> dict[str, Any]:
        """Record an ownership transfer; with ``sale_id``, settle that sale: the held payment
        is released to the seller (a payout order the bank confirms) in the same transaction."""
        vehicle = self._vehicle(ctx, args.vin)
        self._unencumbered(ctx, vehicle)
        if args.new_owner == vehicle["owner"]:
            ctx.fail("same_owner", "the new owner is the current owner")
        data: dict[str, Any] = {"owner": args.new_owner}
        if args.sale_id is None:
            if vehicle["sale"] is not None:
                ctx.fail("sale_pending", f"sale {vehicle['sale']} of this car is open")
        else:
            sale = self._sale(ctx, args.sale_id)
            if sale["vin"] != args.vin:
                ctx.fail("sale_mismatch", f"sale {args.sale_id} is not of {args.vin}")
            if sale["status"] != "funded":
                ctx.fail("sale_not_funded", f"sale {args.sale_id} is {sale['status']}")
            if sale["buyer"] != args.new_owner:
                ctx.fail("buyer_mismatch", "the new owner is not the sale's buyer")
            order = self._order(ctx, sale, "payout", sale["seller"])
            sale.update(status="settled", closed_ms=ctx.time_ms, order_id=order["order_id"])
            ctx.put(_sale_key(sale["sale_id"]), sale)
            vehicle["sale"] = None
            data["sale_id"] = sale["sale_id"]
            data["price"] = sale["price"]
        vehicle["owner"] = args.new_owner
        vehicle["owner_count"] += 1
        event = self._append(ctx, vehicle, "transfer", data, args.odometer_km)
        ctx.emit("vehicle_transferred", vin=args.vin, seq=event["seq"])
        return event

    @transaction(Encumber, policy=has_role(REGISTRY_ROLE))
    def lien(self, ctx: TxContext, args: Encumber) -> dict[str, Any]:
        """Record a lien (저당): the car cannot be sold or transferred until it is released."""
        return self._encumber(ctx, args, "lien")

    @transaction(Encumber, policy=has_role(REGISTRY_ROLE))
    def seize(self, ctx: TxContext, args: Encumber) -> dict[str, Any]:
        """Record a seizure (압류), e.g. for unpaid taxes: as binding as a lien."""
        return self._encumber(ctx, args, "seizure")

    @transaction(Release, policy=has_role(REGISTRY_ROLE))
    def release(self, ctx: TxContext, args: Release) -> dict[str, Any]:
        """Release a lien or a seizure."""
        vehicle = self._vehicle(ctx, args.vin)
        found = vehicle["encumbrances"].pop(args.encumbrance_id, None)
        if found is None:
            ctx.fail("unknown_encumbrance", f"no open lien or seizure {args.encumbrance_id!r}")
        data = {"encumbrance_id": args.encumbrance_id, "encumbrance": found["kind"]}
        event = self._append(ctx, vehicle, "release", data, None)
        ctx.emit("encumbrance_released", vin=args.vin, encumbrance_id=args.encumbrance_id)
        return event

    # -- inspection stations, repair shops, insurers --

    @transaction(Inspect, policy=has_role(INSPECTOR_ROLE))
    def inspect(self, ctx: TxContext, args: Inspect) -> dict[str, Any]:
        """Record an inspection with its odometer reading and its record's digest."""
        vehicle = self._vehicle(ctx, args.vin)
        if ctx.get(f"record/{args.record_hash}") is not None:
            ctx.fail("duplicate_record", "this inspection record is already on the ledger")
        data = {"record_hash": args.record_hash, "inspection": args.kind}
        event = self._append(ctx, vehicle, "inspection", data, args.odometer_km)
        record = {
            "vin": args.vin,
            "seq": event["seq"],
            "kind": args.kind,
            "time_ms": ctx.time_ms,
            "odometer_km": args.odometer_km,
            "inspector": ctx.authority.agency_of(ctx.signer),
        }
        ctx.put(f"record/{args.record_hash}", record)
        ctx.emit("vehicle_inspected", vin=args.vin, seq=event["seq"], flags=event["flags"])
        return event

    @transaction(Repair, policy=has_role(REPAIRER_ROLE))
    def repair(self, ctx: TxContext, args: Repair) -> dict[str, Any]:
        """Record a repair (the order by digest, replaced parts by code)."""
        vehicle = self._vehicle(ctx, args.vin)
        data = {"work_hash": args.work_hash, "parts": list(args.parts)}
        event = self._append(ctx, vehicle, "repair", data, args.odometer_km)
        ctx.emit("vehicle_repaired", vin=args.vin, seq=event["seq"])
        return event

    @transaction(ReplaceCluster, policy=has_role(REPAIRER_ROLE))
    def replace_cluster(self, ctx: TxContext, args: ReplaceCluster) -> dict[str, Any]:
        """Record an instrument-cluster replacement: the one legitimate odometer reset. The old
        cluster's last reading is checked like any reading; the distance it showed is carried
        in ``offset_km`` so the car's total stays known."""
        vehicle = self._vehicle(ctx, args.vin)
        if args.after_km > args.before_km:
            ctx.fail("bad_cluster_reading", "a new cluster cannot show more than the old one")
        odometer = vehicle["odometer"]
        flags = [*odometer_flags(odometer, args.before_km, ctx.time_ms), "cluster_replacement"]
        data = {"work_hash": args.work_hash, "before_km": args.before_km, "after_km": args.after_km}
        event = self._append(ctx, vehicle, "cluster_replacement", data, None, flags=flags)
        if "rollback" in flags:
            self._mark(vehicle, event, odometer.get("last_km"), args.before_km)
        odometer.update(
            last_km=args.after_km,
            last_ms=ctx.time_ms,
            offset_km=odometer["offset_km"] + args.before_km - args.after_km,
            clusters=odometer["clusters"] + 1,
        )
        self._save(ctx, vehicle)
        ctx.emit("cluster_replaced", vin=args.vin, seq=event["seq"])
        return event

    @transaction(Accident, policy=has_role(INSURER_ROLE))
    def accident(self, ctx: TxContext, args: Accident) -> dict[str, Any]:
        """Record an accident, flood, fire, theft or total loss (카히스토리's insurance data)."""
        vehicle = self._vehicle(ctx, args.vin)
        vehicle["accidents"] += 1
        if args.kind in ("flood", "total_loss") and args.kind not in vehicle["flags"]:
            vehicle["flags"] = sorted([*vehicle["flags"], args.kind])
        data = {"accident": args.kind, "claim_hash": args.claim_hash, "paid_krw": args.paid_krw}
        event = self._append(ctx, vehicle, "accident", data, args.odometer_km)
        ctx.emit("vehicle_accident", vin=args.vin, seq=event["seq"], kind=args.kind)
        return event

    # -- the sale --

    @transaction(Offer, policy=PUBLIC)
    def offer(self, ctx: TxContext, args: Offer) -> dict[str, Any]:
        """The owner offers the car to one buyer at a price, disclosing a recent performance
        inspection record of this car."""
        vehicle = self._vehicle(ctx, args.vin)
        if ctx.signer != vehicle["owner"]:
            ctx.fail("not_owner", "only the current owner's key may offer the car")
        if args.buyer == vehicle["owner"]:
            ctx.fail("self_sale", "the buyer is the owner")
        if vehicle["sale"] is not None:
            ctx.fail("sale_pending", f"sale {vehicle['sale']} of this car is open")
        self._unencumbered(ctx, vehicle)
        record = ctx.get(f"record/{args.disclosure_hash}")
        if record is None:
            ctx.fail("unknown_disclosure", "no inspection recorded this record")
        if record["vin"] != args.vin or record["kind"] != "performance":
            ctx.fail("disclosure_mismatch", "the record is not a performance inspection of it")
        if ctx.time_ms - record["time_ms"] > DISCLOSURE_MAX_AGE_MS:
            ctx.fail("stale_disclosure", "the inspection record is older than 120 days")
        escrow = self._escrow(ctx)
        escrow["sale_seq"] += 1
        sale = {
            "sale_id": escrow["sale_seq"],
            "vin": args.vin,
            "seller": ctx.signer,
            "buyer": args.buyer,
            "price": args.price,
            "disclosure_hash": args.disclosure_hash,
            "disclosure_seq": record["seq"],
            "status": "offered",
            "offered_ms": ctx.time_ms,
            "accepted_ms": None,
            "funded_ms": None,
            "closed_ms": None,
            "bank": None,
            "order_id": None,
        }
        vehicle["sale"] = sale["sale_id"]
        ctx.put(_sale_key(sale["sale_id"]), sale)
        ctx.put("escrow", escrow)
        self._save(ctx, vehicle)
        ctx.emit("sale_offered", vin=args.vin, sale_id=sale["sale_id"], price=args.price)
        return sale

    @transaction(SaleRef, policy=PUBLIC)
    def accept(self, ctx: TxContext, args: SaleRef) -> dict[str, Any]:
        """The buyer accepts the offer and its disclosure (liens are checked again)."""
        sale = self._sale(ctx, args.sale_id)
        if ctx.signer != sale["buyer"]:
            ctx.fail("not_buyer", "only the buyer's key may accept")
        if sale["status"] != "offered":
            ctx.fail("sale_not_offered", f"sale {args.sale_id} is {sale['status']}")
        self._unencumbered(ctx, self._vehicle(ctx, sale["vin"]))
        sale.update(status="accepted", accepted_ms=ctx.time_ms)
        ctx.put(_sale_key(args.sale_id), sale)
        ctx.emit("sale_accepted", vin=sale["vin"], sale_id=args.sale_id)
        return sale

    @transaction(Deposit, policy=has_role(CUSTODIAN_ROLE))
    def deposit(self, ctx: TxContext, args: Deposit) -> dict[str, Any]:
        """The custodian bank holds the buyer's payment for the sale (the bank's reference
        by digest, used once)."""
        sale = self._sale(ctx, args.sale_id)
        if sale["status"] != "accepted":
            ctx.fail("sale_not_accepted", f"sale {args.sale_id} is {sale['status']}")
        if args.amount != sale["price"]:
            ctx.fail("wrong_amount", f"the deposit must be the price, {sale['price']} KRW")
        self._use_reference(ctx, args.bank_reference)
        escrow = self._escrow(ctx)
        escrow["deposited"] += args.amount
        escrow["held"] += args.amount
        ctx.put("escrow", escrow)
        bank = ctx.authority.agency_of(ctx.signer)
        sale.update(status="funded", funded_ms=ctx.time_ms, bank=bank)
        ctx.put(_sale_key(args.sale_id), sale)
        ctx.emit("sale_funded", vin=sale["vin"], sale_id=args.sale_id, amount=args.amount)
        return sale

    @transaction(SaleRef, policy=PUBLIC)
    def cancel(self, ctx: TxContext, args: SaleRef) -> dict[str, Any]:
        """Withdraw before settlement: the seller, the buyer, or the registry (e.g. when a lien
        appeared). A funded sale's payment goes back to the buyer (a refund order)."""
        sale = self._sale(ctx, args.sale_id)
        parties = (sale["seller"], sale["buyer"])
        if ctx.signer not in parties and not ctx.authority.has_role(ctx.signer, REGISTRY_ROLE):
            ctx.fail("not_party", "only the seller, the buyer or the registry may cancel")
        if sale["status"] in ("settled", "cancelled"):
            ctx.fail("sale_closed", f"sale {args.sale_id} is {sale['status']}")
        if sale["status"] == "funded":
            order = self._order(ctx, sale, "refund", sale["buyer"])
            sale["order_id"] = order["order_id"]
        sale.update(status="cancelled", closed_ms=ctx.time_ms, cancelled_by=ctx.signer)
        ctx.put(_sale_key(args.sale_id), sale)
        vehicle = self._vehicle(ctx, sale["vin"])
        vehicle["sale"] = None
        self._save(ctx, vehicle)
        ctx.emit("sale_cancelled", vin=sale["vin"], sale_id=args.sale_id)
        return sale

    @transaction(ConfirmOrder, policy=has_role(CUSTODIAN_ROLE))
    def confirm_order(self, ctx: TxContext, args: ConfirmOrder) -> dict[str, Any]:
        """The bank that holds the payment confirms it paid a payout or refund order."""
        order = ctx.get(_order_key(args.order_id))
        if order is None:
            ctx.fail("unknown_order", f"no order {args.order_id}")
        order = dict(order)
        if order["status"] == "paid":
            ctx.fail("already_paid", f"order {args.order_id} is already paid")
        if ctx.authority.agency_of(ctx.signer) != order["bank"]:
            ctx.fail("wrong_bank", "only the bank holding the payment may confirm it")
        self._use_reference(ctx, args.bank_reference)
        escrow = self._escrow(ctx)
        escrow["paid"] += order["amount"]
        ctx.put("escrow", escrow)
        order.update(status="paid", paid_ms=ctx.time_ms)
        ctx.put(_order_key(args.order_id), order)
        ctx.emit("order_paid", order_id=args.order_id, kind=order["kind"])
        return order

    # -- queries --

    @query(VinRef)
    def vehicle(self, ctx: QueryContext, args: VinRef) -> Any:
        """The vehicle's record, or null."""
        return ctx.get(_vehicle_key(args.vin))

    @query(EventsPage)
    def events(self, ctx: QueryContext, args: EventsPage) -> dict[str, Any]:
        """The vehicle's events, oldest first: ``{"events", "next"}``."""
        after = _event_key(args.vin, args.after) if args.after else ""
        page = [event for _, event in ctx.scan(f"event/{args.vin}/", args.limit, after)]
        cursor = page[-1]["seq"] if len(page) == args.limit else None
        return {"events": page, "next": cursor}

    @query(RecordRef)
    def record(self, ctx: QueryContext, args: RecordRef) -> Any:
        """An inspection record by its digest, or null: what a buyer checks a disclosure by."""
        return ctx.get(f"record/{args.record_hash}")

    @query(SaleRef)
    def sale(self, ctx: QueryContext, args: SaleRef) -> Any:
        """A sale, or null."""
        return ctx.get(_sale_key(args.sale_id))

    @query(SalesPage)
    def sales(self, ctx: QueryContext, args: SalesPage) -> dict[str, Any]:
        """Sales by id: ``{"sales", "next"}``."""
        after = _sale_key(args.after) if args.after else ""
        page = [sale for _, sale in ctx.scan("sale/", args.limit, after)]
        cursor = page[-1]["sale_id"] if len(page) == args.limit else None
        return {"sales": page, "next": cursor}

    @query(OrdersPage)
    def orders(self, ctx: QueryContext, args: OrdersPage) -> dict[str, Any]:
        """Payout and refund orders by id, optionally of one status: ``{"orders", "next"}``."""
        after = _order_key(args.after) if args.after else ""
        scanned = list(ctx.scan("order/", args.limit, after))
        page = [o for _, o in scanned if args.status is None or o["status"] == args.status]
        cursor = scanned[-1][1]["order_id"] if len(scanned) == args.limit else None
        return {"orders": page, "next": cursor}

    @query()
    def escrow(self, ctx: QueryContext, args: Args) -> dict[str, Any]:
        """The escrow totals: deposited, held, released, refunded, paid."""
        found = ctx.get("escrow")
        return dict(found) if found is not None else _new_escrow()

    # -- helpers --

    @staticmethod
    def _vehicle(ctx: TxContext, vin: str) -> dict[str, Any]:
        found = ctx.get(_vehicle_key(vin))
        if found is None:
            ctx.fail("unknown_vehicle", f"no vehicle {vin}")
        vehicle = dict(found)
        vehicle["odometer"] = dict(vehicle["odometer"])
        vehicle["encumbrances"] = dict(vehicle["encumbrances"])
        vehicle["discrepancies"] = list(vehicle["discrepancies"])
        vehicle["flags"] = list(vehicle["flags"])
        return vehicle

    @staticmethod
    def _sale(ctx: TxContext, sale_id: int) -> dict[str, Any]:
        found = ctx.get(_sale_key(sale_id))
        if found is None:
            ctx.fail("unknown_sale", f"no sale {sale_id}")
        return dict(found)

    @staticmethod
    def _escrow(ctx: TxContext) -> dict[str, Any]:
        found = ctx.get("escrow")
        return dict(found) if found is not None else _new_escrow()

    @staticmethod
    def _save(ctx: TxContext, vehicle: dict[str, Any]) -> None:
        ctx.put(_vehicle_key(vehicle["vin"]), vehicle)

    @staticmethod
    def _unencumbered(ctx: TxContext, vehicle: dict[str, Any]) -> None:
        if vehicle["encumbrances"]:
            kinds = sorted({e["kind"] for e in vehicle["encumbrances"].values()})
            ctx.fail("vehicle_encumbered", f"{vehicle['vin']} has an open {' and '.join(kinds)}")

    @staticmethod
    def _use_reference(ctx: TxContext, reference: str) -> None:
        key = f"reference/{reference}"
        if ctx.get(key) is not None:
            ctx.fail("duplicate_reference", "this bank reference was already used")
        ctx.put(key, {"tx_id": ctx.tx_id, "height": ctx.height})

    @staticmethod
    def _mark(vehicle: dict[str, Any], event: dict[str, Any], before: Any, reading: int) -> None:
        """Set the permanent discrepancy mark (nothing ever removes one)."""
        vehicle["discrepancy_count"] += 1
        if len(vehicle["discrepancies"]) < MAX_DISCREPANCIES:
            vehicle["discrepancies"].append(
                {
                    "seq": event["seq"],
                    "kind": "rollback",
                    "previous_km": before,
                    "reading_km": reading,
                    "time_ms": event["time_ms"],
                    "tx_id": event["tx_id"],
                }
            )

    def _append(
        self,
        ctx: TxContext,
        vehicle: dict[str, Any],
        kind: str,
        data: dict[str, Any],
        km: int | None,
        *,
        flags: list[str] | None = None,
    ) -> dict[str, Any]:
        """Append an event (checking its reading, if any) and save the vehicle."""
        odometer = vehicle["odometer"]
        if flags is None:
            flags = [] if km is None else odometer_flags(odometer, km, ctx.time_ms)
        vehicle["events"] += 1
        event = {
            "seq": vehicle["events"],
            "kind": kind,
            "time_ms": ctx.time_ms,
            "height": ctx.height,
            "tx_id": ctx.tx_id,
            "by": ctx.authority.agency_of(ctx.signer),
            "odometer_km": km,
            "flags": flags,
            **data,
        }
        if km is not None:
            if "rollback" in flags:
                self._mark(vehicle, event, odometer["last_km"], km)
            odometer.update(last_km=km, last_ms=ctx.time_ms)
        ctx.put(_event_key(vehicle["vin"], event["seq"]), event)
        self._save(ctx, vehicle)
        return event

    def _encumber(self, ctx: TxContext, args: Encumber, kind: str) -> dict[str, Any]:
        vehicle = self._vehicle(ctx, args.vin)
        if args.encumbrance_id in vehicle["encumbrances"]:
            ctx.fail("encumbrance_exists", f"{args.encumbrance_id!r} is already open")
        if len(vehicle["encumbrances"]) >= MAX_ENCUMBRANCES:
            ctx.fail("too_many_encumbrances", f"{args.vin} has {MAX_ENCUMBRANCES} open already")
        data = {"encumbrance_id": args.encumbrance_id, "holder_hash": args.holder_hash}
        event = self._append(ctx, vehicle, kind, data, None)
        vehicle["encumbrances"][args.encumbrance_id] = {"kind": kind, "seq": event["seq"]}
        self._save(ctx, vehicle)
        ctx.emit("vehicle_encumbered", vin=args.vin, kind=kind, encumbrance_id=args.encumbrance_id)
        return event

    def _order(self, ctx: TxContext, sale: dict[str, Any], kind: str, to: str) -> dict[str, Any]:
        """Move a sale's held payment out of escrow into a payout or refund order."""
        escrow = self._escrow(ctx)
        escrow["order_seq"] += 1
        escrow["held"] -= sale["price"]
        escrow["released" if kind == "payout" else "refunded"] += sale["price"]
        order = {
            "order_id": escrow["order_seq"],
            "kind": kind,
            "sale_id": sale["sale_id"],
            "vin": sale["vin"],
            "to": to,
            "amount": sale["price"],
            "bank": sale["bank"],
            "status": "pending",
            "created_ms": ctx.time_ms,
            "paid_ms": None,
        }
        ctx.put(_order_key(order["order_id"]), order)
        ctx.put("escrow", escrow)
        return order
