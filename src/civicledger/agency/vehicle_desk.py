"""The vehicle desk: read the ``vehicles`` contract, build and verify history reports.

Shared by the CLI (over ``CityLedger``), the API and the portal (over a running node's
``NodeLedger``), so a report printed by one and verified by another agree. Writes are signed by
their signers and sent as transactions; ``send`` only signs with a keystore key of the city
directory for the CLI. Unknown vehicles and sales raise ``VehicleDeskError`` with a reason the
API maps to 404.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from civicledger.agency.ledger import LedgerAccess
from civicledger.errors import CivicError
from civicledger.services.vehicles.contract import CONTRACT_NAME, MAX_PAGE, VIN_PATTERN
from civicledger.services.vehicles.report import (
    MAX_REPORT_EVENTS,
    ReportCheck,
    VehicleReport,
    build_report,
    check_report,
    parse_payload,
)

__all__ = ["VehicleDesk", "VehicleDeskError"]

_VIN = re.compile(VIN_PATTERN)


class VehicleDeskError(CivicError):
    """A read of something the ledger does not have. Reasons: ``unknown_vehicle``,
    ``unknown_sale``, ``too_many_events``."""

    reason = "vehicle_desk"


class VehicleDesk:
    def __init__(self, ledger: LedgerAccess, chain_id: str) -> None:
        self.ledger = ledger
        self.chain_id = chain_id

    def _query(self, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.query(CONTRACT_NAME, method, args)

    def vehicle(self, vin: str) -> Mapping[str, Any]:
        found = self._query("vehicle", {"vin": vin}) if _VIN.fullmatch(vin) else None
        if not isinstance(found, Mapping):
            raise VehicleDeskError(f"no vehicle {vin[:40]!r}", reason="unknown_vehicle")
        return found

    def events(self, vin: str, *, after: int = 0, limit: int = 100) -> Any:
        return self._query("events", {"vin": vin, "after": after, "limit": limit})

    def first_events(self, vin: str, count: int) -> list[Mapping[str, Any]]:
        """The vehicle's first ``count`` events (fewer if it has fewer), page by page."""
        if count > MAX_REPORT_EVENTS:
            raise VehicleDeskError(
                f"a report covers at most {MAX_REPORT_EVENTS} events", reason="too_many_events"
            )
        found: list[Mapping[str, Any]] = []
        after = 0
        while len(found) < count:
            page = self.events(vin, after=after, limit=min(MAX_PAGE, count - len(found)))
            found.extend(page["events"])
            if page["next"] is None:
                break
            after = page["next"]
        return found

    def report(self, vin: str, *, count: int | None = None) -> VehicleReport:
        """The history report of the vehicle's first ``count`` events (default: all)."""
        vehicle = self.vehicle(vin)
        total = int(vehicle["events"])
        count = total if count is None else min(count, total)
        return build_report(self.chain_id, vehicle, self.first_events(vin, count))

    def verify(self, payload: str) -> ReportCheck:
        """Check a report's QR text against the ledger: authentic (raises ``ReportError``
        otherwise) and how many events came since."""
        claim = parse_payload(payload)
        vehicle = self.vehicle(claim.vin)
        return check_report(
            claim, self.chain_id, self.first_events(claim.vin, claim.count), int(vehicle["events"])
        )

    def sale(self, sale_id: int) -> Mapping[str, Any]:
        found = self._query("sale", {"sale_id": sale_id}) if sale_id >= 1 else None
        if not isinstance(found, Mapping):
            raise VehicleDeskError(f"no sale {sale_id}", reason="unknown_sale")
        return found

    def record(self, record_hash: str) -> Any:
        """An inspection record by digest (what a buyer checks a disclosure by), or None."""
        return self._query("record", {"record_hash": record_hash})

    def escrow(self) -> Any:
        return self._query("escrow", {})

    def orders(self, *, after: int = 0, limit: int = 100, status: str | None = None) -> Any:
        return self._query("orders", {"after": after, "limit": limit, "status": status})
