"""``/api/v1/currencies``: the treasury view (definition and totals), the wallet view (balance
with lots, history), the merchant view (record, balance, pending settlement orders), daily
figures, and checking or drawing a merchant's payment-request QR.

Payments and every other currency transaction are signed by their signers (a payment by the
payer's wallet key, with ``payment_request.payment_args``) and sent to ``POST /api/v1/tx``;
see docs/currency.md.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from civicledger.agency.currency_desk import CurrencyDesk
from civicledger.agency.desk import IdentityDesk, parse_presentation
from civicledger.agency.enrollment import enroll_holder
from civicledger.api.problems import ApiError, problem_responses
from civicledger.crypto.encoding import canonical_json
from civicledger.errors import CivicError
from civicledger.ledger.genesis import AGENCY_ID_PATTERN
from civicledger.services.currency.contract import (
    CODE_PATTERN,
    CURRENCY_ID_PATTERN,
    MAX_PAGE,
    MAX_TOTAL,
)
from civicledger.services.currency.payment_request import MAX_QR_TEXT, QR_SCHEME, payment_args
from civicledger.services.identity.qr_image import qr_png

__all__ = ["currency_router"]

_DID = r"^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$"
_DAY = r"^\d{4}-\d{2}-\d{2}$"
_QR_TEXT = rf"^{QR_SCHEME}[A-Za-z0-9_-]+$"

CurrencyId = Annotated[str, Path(pattern=CURRENCY_ID_PATTERN)]
Account = Annotated[str, Path(pattern=_DID)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_QR_TEXT, description="The scanned QR text (civic-pay:...).")


class CheckOut(BaseModel):
    request: dict[str, Any]
    """The parsed request: its fields, ``memo_hash`` and the merchant's signature (or null)."""
    signed: bool
    """Whether the merchant's account key signed the request (verified when present)."""
    merchant: dict[str, Any]
    """The merchant's registry record the request was checked against."""
    pay: dict[str, Any] | None
    """The ``currency.pay`` arguments to sign, for a fixed-amount request; null if the payer
    types the amount."""


def _json(value: Any) -> Response:
    return Response(canonical_json(value), media_type="application/json")


class EnrollIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    presentation: str | dict[str, Any] = Field(
        description="A presentation of the currency's holder credential answering `challenge`."
    )
    challenge: str = Field(max_length=200, description="From POST /api/v1/identity/challenges.")
    account: str = Field(pattern=_DID, description="The wallet's key for this currency.")
    enroller: str = Field(
        pattern=AGENCY_ID_PATTERN,
        description="The enrolling agency (role `enroller`); this node must hold its key.",
    )


class EnrollOut(BaseModel):
    currency_id: str
    account: str
    region: str | None


def currency_router(desk: CurrencyDesk, identity: IdentityDesk | None = None) -> APIRouter:
    router = APIRouter(prefix="/currencies", tags=["currency"])

    @router.post(
        "/payment-requests/check",
        response_model=CheckOut,
        responses=problem_responses(400, 404, 422),
    )
    def check_request(body: CheckIn) -> CheckOut:
        """Check a merchant's payment-request QR text: well formed, for this chain, unexpired,
        its signature (if any) by the account key, and the account that of the registered,
        active merchant. Pay it by signing ``pay`` and sending it to POST /api/v1/tx."""
        checked = desk.check_request(body.text, int(time.time() * 1000))
        request = checked.request
        return CheckOut(
            request=request.to_json(),
            signed=request.signature is not None,
            merchant=dict(checked.merchant),
            pay=None if request.amount is None else payment_args(request),
        )

    @router.get(
        "/payment-requests/qr.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **problem_responses(400, 422)},
    )
    def request_qr(
        text: Annotated[
            str, Query(min_length=len(QR_SCHEME) + 1, max_length=MAX_QR_TEXT, pattern=_QR_TEXT)
        ],
    ) -> Response:
        """A PNG QR code of a payment-request text, for a merchant's screen or print."""
        return Response(qr_png(text), media_type="image/png")

    @router.get("/{currency_id}", responses=problem_responses(404, 422))
    def treasury_view(currency_id: CurrencyId) -> Response:
        """The treasury view: the currency's definition and totals (minted, burned, expired,
        supply, reserve, pending and settled payouts)."""
        definition = desk.currency(currency_id)
        return _json({"currency": definition, "totals": desk.totals(currency_id)})

    @router.get("/{currency_id}/accounts/{account}", responses=problem_responses(404, 422))
    def wallet_view(currency_id: CurrencyId, account: Account, lots: Limit = 100) -> Response:
        """The wallet view: an account's balance, what of it is spendable now, and its lots
        (first to expire first)."""
        desk.currency(currency_id)
        return _json(desk.balance(currency_id, account, lots=lots))

    @router.get("/{currency_id}/accounts/{account}/history", responses=problem_responses(404, 422))
    def history(
        currency_id: CurrencyId,
        account: Account,
        after: Annotated[int, Query(ge=0, le=MAX_TOTAL)] = 0,
        limit: Limit = 100,
    ) -> Response:
        """An account's entries, oldest first, paginated with ``after``: ``{"entries", "next"}``."""
        desk.currency(currency_id)
        desk.balance(currency_id, account, lots=1)
        return _json(desk.history(currency_id, account, after=after, limit=limit))

    @router.get("/{currency_id}/merchants", responses=problem_responses(404, 422))
    def merchants(
        currency_id: CurrencyId,
        after: Annotated[str, Query(max_length=64)] = "",
        limit: Limit = 100,
    ) -> Response:
        """Registered merchants by id (the registry serves every currency), paginated with
        ``after``: ``{"merchants", "next"}``."""
        desk.currency(currency_id)
        return _json(desk.merchants(after=after, limit=limit))

    @router.get("/{currency_id}/merchants/{merchant_id}", responses=problem_responses(404, 422))
    def merchant_view(
        currency_id: CurrencyId, merchant_id: Annotated[str, Path(pattern=CODE_PATTERN)]
    ) -> Response:
        """The merchant view: its record, its balance in this currency and its pending
        settlement orders."""
        return _json(desk.merchant_view(currency_id, merchant_id))

    @router.get("/{currency_id}/daily/{day}", responses=problem_responses(404, 422))
    def daily(currency_id: CurrencyId, day: Annotated[str, Path(pattern=_DAY)]) -> Response:
        """One UTC day's figures for reconciliation: minted, spent (by category and region),
        redeemed, settled, expired, and supply and reserve at the day's end."""
        try:
            dt.date.fromisoformat(day)
        except ValueError as e:
            raise ApiError(422, "validation", f"day: not a date: {day!r}") from e
        desk.currency(currency_id)
        figures = desk.daily(currency_id, day)
        if figures is None:
            raise ApiError(404, "not_found", f"nothing happened in {currency_id!r} on {day}")
        return _json(figures)

    if identity is not None:

        @router.post(
            "/{currency_id}/enrollments",
            response_model=EnrollOut,
            status_code=201,
            responses=problem_responses(400, 403, 404, 409, 422, 503),
        )
        def enroll(currency_id: CurrencyId, body: EnrollIn) -> EnrollOut:
            """Enrol a holder: the enroller checks a presentation of the currency's holder
            credential; the ledger gets the account key, a coarse region and a pseudonym of
            the credential (one account per credential and currency)."""
            desk.currency(currency_id)  # an unknown currency is a 404 before anything else
            try:
                identity.ledger.key(body.enroller)
            except CivicError as e:
                raise ApiError(
                    403, "enroller_unavailable", f"this node does not hold {body.enroller}'s key"
                ) from e
            presentation = (
                parse_presentation(body.presentation)
                if isinstance(body.presentation, str)
                else body.presentation
            )
            made = enroll_holder(
                identity.ledger,
                body.enroller,
                currency_id,
                presentation,
                body.account,
                lambda shown, kind: identity.verify(
                    shown, expected_type=kind, challenge=body.challenge
                ),
            )
            return EnrollOut(currency_id=currency_id, account=made.account, region=made.region)

    return router
