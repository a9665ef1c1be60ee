"""The buyer's history report: built from a vehicle's first N events, verifiable by its QR code.

Pure: takes the ``vehicles`` contract's records (the vehicle and its events, oldest first) and
returns a ``VehicleReport``; reading the ledger is the caller's (``agency.vehicle_desk``).

Why the digest covers what it covers: events are append-only and numbered, so "the first N
events of this VIN on this chain" is a fixed set; their transaction ids pin their content (a
tx id is the hash of the signed body). The digest is

    SHA-256(RFC 8785({"v": 1, "chain_id", "vin", "count": N, "height", "tx_ids": [...]}))

with ``height`` the block of the N-th event. A verifier refetches the first N events, recomputes
the digest, and reports authentic or not, plus how many events came after (a report is a
snapshot: newer events do not make it false, they make it old).

Everything in the report comes from the events, not from the vehicle's current record, so a
report of N events says the same thing whenever it is rebuilt. Owners are counted (1 + transfers)
and never named: the report does not even carry their pseudonymous keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from civicledger.crypto.encoding import canonical_json, sha256
from civicledger.errors import CivicError

__all__ = [
    "MAX_REPORT_EVENTS",
    "REPORT_SCHEME",
    "MileagePoint",
    "ReportCheck",
    "ReportClaim",
    "ReportError",
    "VehicleReport",
    "build_report",
    "check_report",
    "parse_payload",
    "report_digest",
]

REPORT_SCHEME = "civic-vehicle-report:"
MAX_REPORT_EVENTS = 10_000
"""A report covers at most this many events (a car's life is far shorter)."""
_PAYLOAD = re.compile(
    r"^civic-vehicle-report:1:(?P<chain>[a-z0-9][a-z0-9-]{1,62}):(?P<vin>[A-HJ-NPR-Z0-9]{17})"
    r":(?P<count>[1-9][0-9]{0,4}):(?P<height>0|[1-9][0-9]{0,15}):(?P<digest>[0-9a-f]{64})$"
)


class ReportError(CivicError):
    """A report payload that is malformed, for another chain, or does not match the ledger.
    Reasons: ``bad_report_payload``, ``wrong_chain``, ``report_not_authentic``,
    ``unknown_vehicle``."""

    reason = "report_not_authentic"


@dataclass(frozen=True)
class MileagePoint:
    """One odometer reading on the timeline."""

    seq: int
    time_ms: int
    km: int
    """What the odometer showed."""
    total_km: int
    """``km`` plus the distance of replaced clusters: the car's total as far as it is known."""
    kind: str
    """The event that carried it (registration, inspection, cluster_replacement, …)."""
    flags: tuple[str, ...]
    """``rollback``, ``implausible_rate``, ``cluster_replacement``."""


@dataclass(frozen=True)
class VehicleReport:
    """A history report of a vehicle's first ``count`` events."""

    chain_id: str
    vin: str
    make: str
    model_year: int
    fuel: str
    count: int
    """How many events the report covers (the first ``count``)."""
    height: int
    """The block of the last covered event."""
    digest: str
    """``report_digest`` of the covered events (hex)."""
    as_of_ms: int
    """Block time of the last covered event."""
    owner_count: int
    mileage: tuple[MileagePoint, ...]
    discrepancies: tuple[MileagePoint, ...]
    """The rollbacks: readings below the previous one (a permanent mark on the car)."""
    accidents: tuple[Mapping[str, Any], ...]
    repairs: tuple[Mapping[str, Any], ...]
    inspections: tuple[Mapping[str, Any], ...]
    encumbrance_history: tuple[Mapping[str, Any], ...]
    open_encumbrances: tuple[str, ...]
    """Ids of liens and seizures not released within the covered events."""
    flags: tuple[str, ...] = field(default=())
    """``flood``, ``total_loss``, ``odometer_discrepancy``, ``implausible_mileage``."""

    @property
    def qr_payload(self) -> str:
        """What the printed QR code carries: enough to refetch and check the events."""
        return (
            f"{REPORT_SCHEME}1:{self.chain_id}:{self.vin}:{self.count}:{self.height}:{self.digest}"
        )

    @property
    def last_km(self) -> int | None:
        return self.mileage[-1].km if self.mileage else None

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (what the API returns)."""
        return {
            "chain_id": self.chain_id,
            "vin": self.vin,
            "make": self.make,
            "model_year": self.model_year,
            "fuel": self.fuel,
            "count": self.count,
            "height": self.height,
            "digest": self.digest,
            "as_of_ms": self.as_of_ms,
            "owner_count": self.owner_count,
            "mileage": [_point_json(p) for p in self.mileage],
            "discrepancies": [_point_json(p) for p in self.discrepancies],
            "accidents": [dict(a) for a in self.accidents],
            "repairs": [dict(r) for r in self.repairs],
            "inspections": [dict(i) for i in self.inspections],
            "encumbrance_history": [dict(e) for e in self.encumbrance_history],
            "open_encumbrances": list(self.open_encumbrances),
            "flags": list(self.flags),
            "qr_payload": self.qr_payload,
        }


def _point_json(point: MileagePoint) -> dict[str, Any]:
    return {
        "seq": point.seq,
        "time_ms": point.time_ms,
        "km": point.km,
        "total_km": point.total_km,
        "kind": point.kind,
        "flags": list(point.flags),
    }


@dataclass(frozen=True)
class ReportClaim:
    """What a report's QR code claims."""

    chain_id: str
    vin: str
    count: int
    height: int
    digest: str


@dataclass(frozen=True)
class ReportCheck:
    """A report found authentic: its claim, and how many events the car has now."""

    claim: ReportClaim
    current_count: int

    @property
    def newer_events(self) -> int:
        """Events recorded after the report was made (0: the report is current)."""
        return self.current_count - self.claim.count


def report_digest(chain_id: str, vin: str, events: Sequence[Mapping[str, Any]]) -> str:
    """The digest of a report over ``events`` (the vehicle's first ``len(events)``). Pure."""
    if not events:
        raise ReportError("a report covers at least one event", reason="bad_report_payload")
    body = {
        "v": 1,
        "chain_id": chain_id,
        "vin": vin,
        "count": len(events),
        "height": int(events[-1]["height"]),
        "tx_ids": [str(e["tx_id"]) for e in events],
    }
    return sha256(canonical_json(body)).hex()


def _check_sequence(vin: str, events: Sequence[Mapping[str, Any]]) -> None:
    if not 1 <= len(events) <= MAX_REPORT_EVENTS:
        raise ReportError(f"{vin} has no events to report", reason="unknown_vehicle")
    for n, event in enumerate(events, start=1):
        if event.get("seq") != n:
            raise ReportError(f"event {n} of {vin} is missing", reason="report_not_authentic")


def build_report(
    chain_id: str, vehicle: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> VehicleReport:
    """The report of ``events`` (the vehicle's first N, oldest first). Pure."""
    vin = str(vehicle["vin"])
    _check_sequence(vin, events)
    mileage: list[MileagePoint] = []
    accidents: list[Mapping[str, Any]] = []
    repairs: list[Mapping[str, Any]] = []
    inspections: list[Mapping[str, Any]] = []
    encumbrances: list[Mapping[str, Any]] = []
    open_ids: dict[str, str] = {}
    flags: set[str] = set()
    owners = 0
    offset = 0
    for event in events:
        kind = str(event["kind"])
        event_flags = tuple(str(f) for f in event.get("flags") or ())
        base = {"seq": event["seq"], "time_ms": event["time_ms"], "by": event.get("by")}
        if kind in ("registration", "transfer"):
            owners += 1
        if kind == "cluster_replacement":
            before, after = int(event["before_km"]), int(event["after_km"])
            mileage.append(
                MileagePoint(
                    event["seq"],
                    event["time_ms"],
                    before,
                    before + offset,
                    kind,
                    tuple(f for f in event_flags if f != "cluster_replacement"),
                )
            )
            offset += before - after
            mileage.append(
                MileagePoint(
                    event["seq"],
                    event["time_ms"],
                    after,
                    after + offset,
                    kind,
                    ("cluster_replacement",),
                )
            )
        elif event.get("odometer_km") is not None:
            km = int(event["odometer_km"])
            mileage.append(
                MileagePoint(event["seq"], event["time_ms"], km, km + offset, kind, event_flags)
            )
        if kind == "accident":
            accidents.append({**base, "accident": event["accident"], "paid_krw": event["paid_krw"]})
            if event["accident"] in ("flood", "total_loss"):
                flags.add(str(event["accident"]))
        elif kind in ("repair", "cluster_replacement"):
            repairs.append({**base, "kind": kind, "parts": list(event.get("parts") or [])})
        elif kind == "inspection":
            inspections.append(
                {
                    **base,
                    "inspection": event["inspection"],
                    "record_hash": event["record_hash"],
                    "odometer_km": event["odometer_km"],
                }
            )
        elif kind in ("lien", "seizure"):
            open_ids[str(event["encumbrance_id"])] = kind
            encumbrances.append({**base, "kind": kind, "encumbrance_id": event["encumbrance_id"]})
        elif kind == "release":
            open_ids.pop(str(event["encumbrance_id"]), None)
            encumbrances.append(
                {**base, "kind": "release", "encumbrance_id": event["encumbrance_id"]}
            )
    discrepancies = tuple(p for p in mileage if "rollback" in p.flags)
    if discrepancies:
        flags.add("odometer_discrepancy")
    if any("implausible_rate" in p.flags for p in mileage):
        flags.add("implausible_mileage")
    last = events[-1]
    return VehicleReport(
        chain_id=chain_id,
        vin=vin,
        make=str(vehicle["make"]),
        model_year=int(vehicle["model_year"]),
        fuel=str(vehicle["fuel"]),
        count=len(events),
        height=int(last["height"]),
        digest=report_digest(chain_id, vin, events),
        as_of_ms=int(last["time_ms"]),
        owner_count=owners,
        mileage=tuple(mileage),
        discrepancies=discrepancies,
        accidents=tuple(accidents),
        repairs=tuple(repairs),
        inspections=tuple(inspections),
        encumbrance_history=tuple(encumbrances),
        open_encumbrances=tuple(sorted(open_ids)),
        flags=tuple(sorted(flags)),
    )


def parse_payload(text: str) -> ReportClaim:
    """Read a report's QR text; ``ReportError`` (``bad_report_payload``) if malformed."""
    found = _PAYLOAD.fullmatch(text.strip())
    if found is None:
        raise ReportError("this is not a vehicle report code", reason="bad_report_payload")
    return ReportClaim(
        chain_id=found["chain"],
        vin=found["vin"],
        count=int(found["count"]),
        height=int(found["height"]),
        digest=found["digest"],
    )


def check_report(
    claim: ReportClaim,
    chain_id: str,
    events: Sequence[Mapping[str, Any]],
    current_count: int,
) -> ReportCheck:
    """Check a claim against the vehicle's first events as the ledger has them now (at least
    ``claim.count`` of them, oldest first) and its current event count. Raises ``ReportError``
    unless the report is authentic. Pure."""
    if claim.chain_id != chain_id:
        raise ReportError(f"the report is from chain {claim.chain_id!r}", reason="wrong_chain")
    covered = list(events[: claim.count])
    if len(covered) < claim.count:
        raise ReportError(
            f"the ledger has only {len(covered)} events of {claim.vin}",
            reason="report_not_authentic",
        )
    _check_sequence(claim.vin, covered)
    if int(covered[-1]["height"]) != claim.height:
        raise ReportError("the report's height does not match", reason="report_not_authentic")
    if report_digest(chain_id, claim.vin, covered) != claim.digest:
        raise ReportError("the report does not match the ledger", reason="report_not_authentic")
    return ReportCheck(claim=claim, current_count=current_count)
