"""The currency desk a running node offers over HTTP: read the ``currency`` contract, check
a merchant's payment-request QR.

Payments, redemptions and every other currency transaction are signed by their signers (the
payer's wallet key, the treasury's, the bank's) and sent to ``POST /api/v1/tx``; the desk only
reads. Unknown currencies, accounts and merchants raise ``CurrencyDeskError`` with a reason the
API maps to 404.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from civicledger.agency.ledger import LedgerAccess
from civicledger.errors import CivicError
from civicledger.services.currency.contract import CODE_PATTERN, CONTRACT_NAME, MAX_PAGE
from civicledger.services.currency.payment_request import PaymentRequest, from_qr_payload

__all__ = ["CheckedRequest", "CurrencyDesk", "CurrencyDeskError"]

_MAX_ORDER_PAGES = 10
"""The merchant view scans at most this many pages of settlement orders for its pending ones."""
_AFTER_LAST_CODE_CHAR = "~"
"""Sorts after every character of a merchant id (``[a-z0-9_-]``)."""


class CurrencyDeskError(CivicError):
    """A read of something the ledger does not have, or a payment request that does not fit
    the merchant registry. Reasons: ``unknown_currency``, ``unknown_account``,
    ``unknown_merchant``, ``merchant_suspended``, ``account_mismatch``."""

    reason = "currency_desk"


@dataclass(frozen=True)
class CheckedRequest:
    """A parsed payment request and the merchant record it was checked against."""

    request: PaymentRequest
    merchant: Mapping[str, Any]
    """The merchant's record in the ``currency`` contract (registered, active, same account)."""


class CurrencyDesk:
    def __init__(self, ledger: LedgerAccess, chain_id: str) -> None:
        self.ledger = ledger
        self.chain_id = chain_id

    def _query(self, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.query(CONTRACT_NAME, method, args)

    def currency(self, currency_id: str) -> Mapping[str, Any]:
        found = self._query("currency", {"currency_id": currency_id})
        if not isinstance(found, Mapping):
            raise CurrencyDeskError(
                f"there is no currency {currency_id!r}", reason="unknown_currency"
            )
        return found

    def totals(self, currency_id: str) -> Any:
        return self._query("totals", {"currency_id": currency_id})

    def balance(self, currency_id: str, account: str, *, lots: int = 100) -> Mapping[str, Any]:
        found = self._query(
            "balance", {"currency_id": currency_id, "account": account, "limit": lots}
        )
        if not isinstance(found, Mapping):
            raise CurrencyDeskError(
                f"{account[:60]} has no account in {currency_id!r}", reason="unknown_account"
            )
        return found

    def history(self, currency_id: str, account: str, *, after: int = 0, limit: int = 100) -> Any:
        args = {"currency_id": currency_id, "account": account, "after": after, "limit": limit}
        return self._query("history", args)

    def merchants(self, *, after: str = "", limit: int = 100) -> Any:
        return self._query("merchants", {"after": after, "limit": limit})

    def merchant(self, merchant_id: str) -> Mapping[str, Any]:
        """One merchant's record. The contract pages merchants by id with an exclusive
        ``after``: starting just after the id's predecessor (its last character lowered, then a
        character above the id alphabet) the first record is this id's, if it exists."""
        if re.fullmatch(CODE_PATTERN, merchant_id) is None:
            raise CurrencyDeskError(
                f"there is no merchant {merchant_id[:70]!r}", reason="unknown_merchant"
            )
        before = merchant_id[:-1] + chr(ord(merchant_id[-1]) - 1) + _AFTER_LAST_CODE_CHAR
        page = self.merchants(after=before, limit=1)["merchants"]
        if not page or page[0].get("merchant_id") != merchant_id:
            raise CurrencyDeskError(
                f"there is no merchant {merchant_id!r}", reason="unknown_merchant"
            )
        return dict(page[0])

    def pending_orders(self, currency_id: str, merchant_id: str) -> dict[str, Any]:
        """The merchant's pending settlement orders: ``{"orders", "next"}`` (``next`` is set
        when the scan stopped early; ask ``orders`` from there)."""
        found: list[Any] = []
        after = 0
        for _ in range(_MAX_ORDER_PAGES):
            page = self.orders(currency_id, after=after, limit=MAX_PAGE, status="pending")
            found.extend(o for o in page["orders"] if o["merchant"] == merchant_id)
            if page["next"] is None:
                return {"orders": found, "next": None}
            after = page["next"]
        return {"orders": found, "next": after}

    def orders(
        self, currency_id: str, *, after: int = 0, limit: int = 100, status: str | None = None
    ) -> Any:
        args = {"currency_id": currency_id, "after": after, "limit": limit, "status": status}
        return self._query("orders", args)

    def merchant_view(self, currency_id: str, merchant_id: str) -> dict[str, Any]:
        """The merchant view: its record, its balance in the currency (zero before its first
        payment) and its pending settlement orders."""
        self.currency(currency_id)
        record = self.merchant(merchant_id)
        found = self._query(
            "balance", {"currency_id": currency_id, "account": record["account"], "limit": 1}
        )
        balance = 0 if not isinstance(found, Mapping) else found["balance"]
        return {
            "merchant": record,
            "balance": balance,
            "pending_orders": self.pending_orders(currency_id, merchant_id),
        }

    def daily(self, currency_id: str, day: str) -> Mapping[str, Any] | None:
        """One UTC day's figures, or ``None`` if nothing happened that day."""
        days = self._query(
            "daily", {"currency_id": currency_id, "from_day": day, "to_day": day, "limit": 1}
        )
        return days[0] if days else None

    def check_request(self, payload: str, now_ms: int) -> CheckedRequest:
        """Read a payment-request QR text and check it against the merchant registry: the
        currency exists, the merchant is registered and active, and the request's account is
        the merchant's account."""
        request = from_qr_payload(payload, chain_id=self.chain_id, now_ms=now_ms)
        self.currency(request.currency_id)
        record = self.merchant(request.merchant_id)
        if record.get("status") != "active":
            raise CurrencyDeskError(
                f"merchant {request.merchant_id!r} is suspended", reason="merchant_suspended"
            )
        if record.get("account") != request.account:
            raise CurrencyDeskError(
                f"the request's account is not merchant {request.merchant_id!r}'s account",
                reason="account_mismatch",
            )
        return CheckedRequest(request, record)
