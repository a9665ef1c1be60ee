"""RFC 9457 problem details: every error the API returns, with a stable ``reason``.

Our own errors carry a reason code already (``CivicError.reason``); this module only maps a
reason to an HTTP status and renders the body. Anything unexpected becomes a 500 problem with
no internal detail, and is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from civicledger.errors import CivicError, RejectReason, TxRejected

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://civicledger.org/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

_STATUS_BY_REASON: dict[str, int] = {
    RejectReason.UNAUTHORIZED: 403,
    RejectReason.NONCE_REPLAYED: 409,
    RejectReason.NONCE_OUT_OF_ORDER: 409,
    RejectReason.OVERSIZE: 413,
    RejectReason.MEMPOOL_FULL: 503,
    "payload_too_large": 413,
    # identity desk (civicledger.agency)
    "unauthenticated": 401,
    "issuer_not_authorized": 403,
    "not_our_credential": 403,
    "unknown_list": 404,
    "not_issued_here": 404,
    "no_did": 409,
    "already_revoked": 409,
    "clock_behind": 503,
    "too_many_challenges": 503,
    # polls desk
    "unknown_poll": 404,
    "wrong_registrar": 403,
    "not_eligible": 403,
    "already_registered": 409,
    "voter_key_in_use": 409,
    # This node does not hold the key of the agency asked to act: it may not act for it.
    "registrar_unavailable": 403,
    "enroller_unavailable": 403,
    "credential_enrolled": 409,
    "already_enrolled": 409,
    # currency desk (payment requests: bad_payment_request, wrong_chain, amount_* are 400)
    "unknown_currency": 404,
    "unknown_account": 404,
    "unknown_merchant": 404,
    "merchant_suspended": 409,
    "account_mismatch": 409,
    # donations desk (trace_too_large and the ledger's refusals stay 400)
    "unknown_charity": 404,
    "unknown_campaign": 404,
    "unknown_donation": 404,
    "unknown_disbursement": 404,
    "unknown_donor": 404,
    "unknown_batch": 404,
    # vehicles desk (bad_report_payload and the ledger's refusals stay 400)
    "unknown_vehicle": 404,
    "unknown_sale": 404,
    "unknown_record": 404,
    # works desk
    "unknown_works_contract": 404,
    "unknown_stage": 404,
    # certificates desk (unknown_batch above; bad_pdf, no_certificate, bad_certificate: 400)
    "unknown_certificate": 404,
    "recorder_unavailable": 403,
    "cannot_render": 503,
    "expired_request": 400,
    "request_timeout": 408,
    "not_found": 404,
    "validation": 422,
    "node_error": 503,
    # cluster (civicledger.node.cluster)
    "node_diverged": 503,
    "not_a_cluster": 404,
    "stream_truncated": 503,
    "internal_error": 500,
    "ledger_error": 500,
}
"""Every other reason (the remaining rejections, bad_proof, bad_request...) is a 400."""

_TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not authorized",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid parameters",
    500: "Internal error",
    503: "Unavailable",
}

_RETRY_AFTER_S = "1"


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[PROBLEM_TYPE_BASE + "nonce_replayed"])
    title: str
    status: int
    detail: str
    reason: str
    """Stable machine-readable code; for refused transactions one of RejectReason."""
    errors: list[dict[str, Any]] | None = None
    """Which parameters were invalid, for 422 answers."""


class ApiError(CivicError):
    """An HTTP-level error raised by a route or middleware, with its own status."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)
        self.status = status
        self.detail = detail


def status_for(reason: str) -> int:
    return _STATUS_BY_REASON.get(reason, 400)


def problem_response(
    status: int,
    reason: str,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    problem = Problem(
        type=PROBLEM_TYPE_BASE + reason,
        title=title or _TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        reason=reason,
        errors=errors,
    )
    headers = {"Retry-After": _RETRY_AFTER_S} if status == 503 else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries declaring problem+json bodies for ``statuses``."""
    return {
        status: {
            "model": Problem,
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CivicError, _civic_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _civic_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CivicError)
    status = status_for(exc.reason)
    title = (
        "Transaction rejected" if isinstance(exc, TxRejected) and request.method == "POST" else None
    )
    if status >= 500:
        log.warning("request failed: %s: %s", exc.reason, exc.message)
    return problem_response(status, exc.reason, exc.message, title=title)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem_response(exc.status, exc.reason, exc.detail)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(first['loc'])}: {first['msg']}"
    return problem_response(422, "validation", detail, errors=errors)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return problem_response(exc.status_code, reason, str(exc.detail))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal_error", "the server failed to answer; it is logged")
