"""The donations desk: read the ``donations`` contract and trace money down to help-coin spending.

Shared by the API, the portal, the CLI and the demo. Reads go through ``LedgerAccess.query``
only; the trace arithmetic is ``services.donations.trace`` (pure). Writes are ordinary signed
transactions (``donations.*``); the one helper here, ``link_funding``, finds the mint entries a
help-coin disbursement paid for before the charity signs the link.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from civicledger.agency.ledger import LedgerAccess
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError
from civicledger.services.currency.contract import CONTRACT_NAME as CURRENCY
from civicledger.services.donations.contract import CONTRACT_NAME, MAX_PAGE
from civicledger.services.donations.trace import (
    CoinFlow,
    coin_flow,
    donor_commitment,
    follow_lot,
    scale_flow,
)

__all__ = ["DonationDesk", "DonationDeskError", "link_funding"]

_MAX_PAGES = 20
"""Pages (of ``MAX_PAGE``) read of one list before a trace gives up (``trace_too_large``)."""


class DonationDeskError(CivicError):
    """A read of something the ledger does not have. Reasons: ``unknown_charity``,
    ``unknown_campaign``, ``unknown_donation``, ``unknown_disbursement``, ``unknown_donor``,
    ``unknown_batch``, ``trace_too_large``."""

    reason = "donation_desk"


class DonationDesk:
    def __init__(self, ledger: LedgerAccess) -> None:
        self.ledger = ledger

    def _query(self, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.query(CONTRACT_NAME, method, args)

    def _pages(self, contract: str, method: str, args: dict[str, Any], field: str) -> list[Any]:
        found: list[Any] = []
        after: Any = args.pop("after")
        for _ in range(_MAX_PAGES):
            page = self.ledger.query(contract, method, {**args, "after": after, "limit": MAX_PAGE})
            found.extend(page[field])
            if page["next"] is None:
                return found
            after = page["next"]
        raise DonationDeskError(
            f"more than {_MAX_PAGES} pages of {field}", reason="trace_too_large"
        )

    # -- plain reads --

    def charities(self) -> list[Any]:
        return self._pages(CONTRACT_NAME, "charities", {"after": ""}, "charities")

    def charity(self, charity_id: str) -> Mapping[str, Any]:
        found = self._query("charity", {"charity_id": charity_id})
        if not isinstance(found, Mapping):
            raise DonationDeskError(f"there is no charity {charity_id!r}", reason="unknown_charity")
        return found

    def campaigns(self) -> list[Any]:
        return self._pages(CONTRACT_NAME, "campaigns", {"after": ""}, "campaigns")

    def campaign(self, campaign_id: str) -> Mapping[str, Any]:
        found = self._query("campaign", {"campaign_id": campaign_id})
        if not isinstance(found, Mapping):
            raise DonationDeskError(
                f"there is no campaign {campaign_id!r}", reason="unknown_campaign"
            )
        return found

    def donations(self, campaign_id: str) -> list[Any]:
        self.campaign(campaign_id)
        args = {"campaign_id": campaign_id, "after": 0}
        return self._pages(CONTRACT_NAME, "donations", args, "donations")

    def disbursements(self, campaign_id: str) -> list[Any]:
        self.campaign(campaign_id)
        args = {"campaign_id": campaign_id, "after": 0}
        return self._pages(CONTRACT_NAME, "disbursements", args, "disbursements")

    def donation(self, campaign_id: str, seq: int) -> Mapping[str, Any]:
        found = self._query("donation", {"campaign_id": campaign_id, "seq": seq})
        if not isinstance(found, Mapping):
            raise DonationDeskError(
                f"there is no donation {seq} in {campaign_id!r}", reason="unknown_donation"
            )
        return found

    def disbursement(self, campaign_id: str, seq: int) -> Mapping[str, Any]:
        found = self._query("disbursement", {"campaign_id": campaign_id, "seq": seq})
        if not isinstance(found, Mapping):
            raise DonationDeskError(
                f"there is no disbursement {seq} in {campaign_id!r}",
                reason="unknown_disbursement",
            )
        return found

    def find_donor(self, reference: str) -> Mapping[str, Any]:
        """The donation a donor's receipt secret (or its 64-hex commitment) points at."""
        commitment = reference.lower()
        if len(commitment) != 64 or any(c not in "0123456789abcdef" for c in commitment):
            commitment = donor_commitment(reference)
        found = self._query("donor", {"donor_commitment": commitment})
        if not isinstance(found, Mapping):
            raise DonationDeskError("no donation carries this receipt", reason="unknown_donor")
        return self.donation(found["campaign_id"], found["seq"])

    def ledger_of(self, campaign_id: str) -> dict[str, Any]:
        """A campaign with its donations and disbursements (the campaign's public ledger)."""
        return {
            "campaign": dict(self.campaign(campaign_id)),
            "donations": self.donations(campaign_id),
            "disbursements": self.disbursements(campaign_id),
        }

    # -- tracing --

    def history(self, currency_id: str, account: str) -> list[Any]:
        args = {"currency_id": currency_id, "account": account, "after": 0}
        return self._pages(CURRENCY, "history", args, "entries")

    def _merchant_categories(self) -> dict[str, str]:
        merchants = self._pages(CURRENCY, "merchants", {"after": ""}, "merchants")
        return {m["account"]: m["category"] for m in merchants}

    def disbursement_flow(self, record: Mapping[str, Any]) -> CoinFlow | None:
        """What became of a linked help-coin disbursement's coin (``None`` if not linked)."""
        if record["kind"] != "help_coin" or record.get("funding") is None:
            return None
        cur = record["currency_id"]
        definition = self.ledger.query(CURRENCY, "currency", {"currency_id": cur})
        now_ms = int(self._query("head_time", {}))
        categories = self._merchant_categories()
        flows = [
            follow_lot(
                self.history(cur, mint["account"]),
                mint["seq"],
                definition["lot_ttl_days"],
                categories,
                now_ms,
            )
            for mint in record["mints"]
        ]
        return coin_flow(flows)

    def trace_donation(self, campaign_id: str, seq: int) -> dict[str, Any]:
        """One donation's tree: its FIFO shares, each disbursement and (help coin) what the
        share paid for at merchants, by category (proportional within a disbursement)."""
        return self._trace(self.donation(campaign_id, seq), {})

    def trace_donor(self, reference: str) -> dict[str, Any]:
        """``trace_donation`` for the donation a receipt secret (or commitment) points at."""
        return self._trace(self.find_donor(reference), {})

    def _trace(self, donation: Mapping[str, Any], cache: dict[int, Any]) -> dict[str, Any]:
        campaign_id = donation["campaign_id"]
        branches = []
        for share in donation["shares"]:
            record = cache.get(share["disbursement"])
            if record is None:
                found = self.disbursement(campaign_id, share["disbursement"])
                record = {"record": found, "flow": self.disbursement_flow(found)}
                cache[share["disbursement"]] = record
            flow: CoinFlow | None = record["flow"]
            part = None
            if flow is not None:
                part = scale_flow(flow, share["amount"], record["record"]["amount"]).as_dict()
            branches.append(
                {
                    "share": share["amount"],
                    "disbursement": _public(record["record"]),
                    "coin": part,
                }
            )
        unallocated = donation["amount"] - donation["allocated"]
        return {"donation": dict(donation), "unallocated": unallocated, "branches": branches}

    def trace_campaign(self, campaign_id: str) -> dict[str, Any]:
        """Every disbursement of a campaign with its help-coin flow (exact where linked)."""
        campaign = dict(self.campaign(campaign_id))
        rows = []
        total = CoinFlow()
        for record in self.disbursements(campaign_id):
            full = self.disbursement(campaign_id, record["seq"])
            flow = self.disbursement_flow(full)
            if flow is not None:
                total.add(flow)
            rows.append(
                {"disbursement": _public(full), "coin": None if flow is None else flow.as_dict()}
            )
        return {"campaign": campaign, "disbursements": rows, "coin": total.as_dict()}


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    """A disbursement without its per-holder mint entries (the trace shows counts only)."""
    return {k: v for k, v in record.items() if k != "mints"}


def link_funding(
    ledger: LedgerAccess,
    charity_key: PrivateKey,
    campaign_id: str,
    seq: int,
    batch_id: str,
    accounts: list[str],
) -> Any:
    """Find the ``minted`` entries of mint batch ``batch_id`` in ``accounts``' histories (the
    treasury knows whom it minted to) and have the charity link the disbursement to them."""
    desk = DonationDesk(ledger)
    record = desk.disbursement(campaign_id, seq)
    cur = record["currency_id"]
    if cur is None:
        raise DonationDeskError("this disbursement funds no help coin", reason="not_help_coin")
    batch = ledger.query(CONTRACT_NAME, "mint_batch", {"currency_id": cur, "batch_id": batch_id})
    if batch is None:
        raise DonationDeskError(f"no mint batch {batch_id!r} in {cur!r}", reason="unknown_batch")
    mints = [
        {"account": account, "seq": entry["seq"]}
        for account in dict.fromkeys(accounts)
        for entry in desk.history(cur, account)
        if entry["kind"] == "minted" and entry["tx_id"] == batch["tx_id"]
    ]
    args = {"campaign_id": campaign_id, "seq": seq, "batch_id": batch_id, "mints": mints}
    return ledger.send_as(charity_key, CONTRACT_NAME, "link_funding", args)
