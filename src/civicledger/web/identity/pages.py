"""The identity pages, thin over the node's ``IdentityDesk`` (``request.app.state.identity``).

The JSON API under ``/api/v1/identity`` calls the same desk, so a page and an endpoint cannot
disagree: a refused presentation is an answer (the verdict, with the desk's stable reason), and a
staff error carries the reason and the HTTP status the API would give.

Invariants:

- An access token typed into a form is used for that one request and never written back: not
  into a page (password inputs are rendered empty), not into a log line, not into a link.
- Holders present from their own wallets: no page asks for or receives a holder's key.
- Issued credentials hold personal data and the node keeps no copy (the agency's register keeps
  type, holder and status index only), so the issue page's answer is the one copy to hand over.
- Without a desk (a node serving the ledger only) every page says so, with status 503.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from starlette.datastructures import FormData

from civicledger.agency.desk import IdentityDesk, parse_presentation
from civicledger.agency.issuer import IssuedCredential
from civicledger.errors import CivicError
from civicledger.services.identity.credentials import (
    CREDENTIAL_TYPES,
    MAX_QR_PAYLOAD,
    to_qr_payload,
)
from civicledger.services.identity.qr_image import MAX_IMAGE_BYTES, qr_svg
from civicledger.services.identity.verifier import VerifiedCredential
from civicledger.web.forms import (
    PageInputError,
    Refusal,
    form_reader,
    refusal,
    text_field,
    upload,
)
from civicledger.web.portal import render
from civicledger.web.sections import PortalSection, package_section

__all__ = [
    "CLAIM_FIELDS",
    "EXPLAINED_REASONS",
    "VERIFY_BODY_LIMIT",
    "VERIFY_PATH",
    "ClaimField",
    "Refusal",
    "section",
]

SLUG = "identity"
VERIFY_PATH = f"/{SLUG}/verify"
VERIFY_BODY_LIMIT = MAX_IMAGE_BYTES + 256 * 1024
"""The verify form carries a photo of a QR code (at most ``MAX_IMAGE_BYTES``) and some text."""
_MAX_FORM_FIELDS = 64
_MAX_INDEX = 2**24
_DID = re.compile(r"^did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,200}$")
_INDEX = re.compile(r"^(0|[1-9][0-9]{0,8})$")
_GRANTS_SHOWN = 100


@dataclass(frozen=True)
class ClaimField:
    """One claim an issuing form asks for; its label is the message ``identity.claim.<name>``."""

    name: str
    kind: Literal["text", "date", "dates"]
    """``dates``: several ISO dates, one a line or separated by commas."""


CLAIM_FIELDS: Mapping[str, tuple[ClaimField, ...]] = {
    "ResidentCard": (
        ClaimField("given_name", "text"),
        ClaimField("family_name", "text"),
        ClaimField("birthdate", "date"),
        ClaimField("address", "text"),
        ClaimField("district", "text"),
    ),
    "FamilyLoveCard": (ClaimField("children_birthdates", "dates"),),
    "Qualification": (
        ClaimField("qualification", "text"),
        ClaimField("license_number", "text"),
    ),
    "VisitorPass": (ClaimField("host", "text"), ClaimField("district", "text")),
}
"""The claims each credential type needs, in form order (the issuer checks them again; a test
keeps this in step with ``agency.issuer``)."""

EXPLAINED_REASONS = frozenset(
    {
        # verification
        "bad_proof_signature",
        "issuer_not_authorized",
        "revoked",
        "suspended",
        "expired",
        "not_yet_valid",
        "replayed_challenge",
        "unknown_challenge",
        "expired_challenge",
        "wrong_audience",
        "wrong_domain",
        "wrong_nonce",
        "wrong_challenge",
        "bad_key_binding",
        "missing_key_binding",
        "stale_key_binding",
        "unreferenced_disclosure",
        "malformed_disclosure",
        "bad_qr_image",
        "malformed_credential",
        "malformed_proof",
        "unknown_credential_type",
        "wrong_holder",
        "missing_status",
        "status_list_unanchored",
        "status_list_mismatch",
        "did_resolution",
        # staff
        "unauthenticated",
        "bad_claims",
        "not_our_credential",
        "not_issued_here",
        "already_revoked",
        "unknown_list",
        "no_did",
        "clock_behind",
        "too_many_challenges",
        # the pages' own
        "bad_request",
        "too_large",
    }
)
"""Reasons with a translated explanation (``identity.reason.<reason>``); any other reason is
shown with a general one, next to its code and the desk's message."""


def _refusal(error: CivicError) -> Refusal:
    return refusal(error, "identity", EXPLAINED_REASONS)


# -- plumbing ----------------------------------------------------------------------------------


def _desk(request: Request) -> IdentityDesk | None:
    desk = getattr(request.app.state, "identity", None)
    return desk if isinstance(desk, IdentityDesk) else None


def _unavailable(request: Request) -> HTMLResponse:
    return render(request, "identity/unavailable.html", status_code=503)


Form = Annotated[FormData, Depends(form_reader(_MAX_FORM_FIELDS))]


def _expected_type(form: FormData) -> str | None:
    value = text_field(form, "expected_type")
    if not value:
        return None
    if value not in CREDENTIAL_TYPES:
        raise PageInputError(f"{value[:64]!r} is not a credential type of the city")
    return value


def _token(form: FormData) -> str:
    """The access token as typed (not stripped of anything but surrounding blanks)."""
    return text_field(form, "token")


def _types() -> list[str]:
    return list(CREDENTIAL_TYPES)


# -- the pages ---------------------------------------------------------------------------------

router = APIRouter()


@router.get("", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    """Who may issue which credential type (with each grant's history) and the other pages."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    grants = desk.grants(limit=_GRANTS_SHOWN)
    context = {
        "grants": grants if isinstance(grants, list) else [],
        "grants_shown": _GRANTS_SHOWN,
        "domain": desk.domain,
        "types": _types(),
    }
    return render(request, "identity/index.html", context)


@router.get("/present", response_class=HTMLResponse)
def present_page(request: Request) -> HTMLResponse:
    """A fresh single-use challenge, its QR code, the holder's command and the answer form."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    try:
        challenge = desk.new_challenge()
    except CivicError as e:
        refusal = _refusal(e)
        return render(
            request, "identity/present.html", {"refusal": refusal}, status_code=refusal.status
        )
    context = {
        "refusal": None,
        "challenge": challenge,
        "expires_ms": int(challenge.expires_at.timestamp() * 1000),
        "qr": Markup(qr_svg(challenge.challenge)),  # noqa: S704  (segno's SVG of our own nonce)
        "command": holder_command(challenge.challenge, challenge.domain),
        "types": _types(),
    }
    return render(request, "identity/present.html", context)


def holder_command(challenge: str, domain: str) -> str:
    """What the holder runs to answer (``civic wallet present``; ``--qr`` for the photo)."""
    return shlex.join(
        [
            "civic", "wallet", "present", "CREDENTIAL_ID",
            "--challenge", challenge,
            "--domain", domain,
            "--qr", "presentation.png",
        ]
    )  # fmt: skip


def _verify_context(**values: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "types": _types(),
        "verified": None,
        "refusal": None,
        "challenge": "",
        "expected_type": "",
        "source": None,
    }
    context.update(values)
    return context


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request) -> HTMLResponse:
    """Paste a presentation or upload a photo of its QR code."""
    if _desk(request) is None:
        return _unavailable(request)
    return render(request, "identity/verify.html", _verify_context())


@router.post("/verify", response_class=HTMLResponse)
def verify_submit(request: Request, form: Form) -> HTMLResponse:
    """The verdict: the verified credentials, or the refusal with its reason. Like the API, a
    refusal is an answer (200); the challenge is used up either way."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    challenge = text_field(form, "challenge")[:200]
    try:
        expected_type = _expected_type(form)
        image = upload(form, "qr_image")
        text = text_field(form, "presentation")
        if image is not None and text:
            raise PageInputError("give either the presentation's text or its QR image")
        if image is not None:
            source = "image"
            presentation = desk.read_qr_image(image)
        else:
            source = "text"
            presentation = parse_presentation(text)
        verified = desk.verify(
            presentation, expected_type=expected_type, challenge=challenge or None
        )
    except CivicError as e:
        context = _verify_context(
            refusal=_refusal(e),
            challenge=challenge,
            expected_type=text_field(form, "expected_type"),
        )
        return render(request, "identity/verify.html", context)
    context = _verify_context(
        verified=[_verified_view(v) for v in verified],
        challenge=challenge,
        expected_type=expected_type or "",
        source=source,
    )
    return render(request, "identity/verify.html", context)


def _verified_view(verified: VerifiedCredential) -> dict[str, Any]:
    return {
        "type": verified.credential_type,
        "issuer": verified.issuer,
        "holder": verified.holder,
        "claims": [
            (name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
            for name, value in sorted(verified.claims.items())
        ],
        "issued_at_ms": verified.issued_at_ms,
        "status": verified.status,
    }


# -- staff: issue ------------------------------------------------------------------------------


def _issue_context(**values: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "types": _types(),
        "fields": CLAIM_FIELDS,
        "chosen_type": _types()[0],
        "holder": "",
        "values": {},
        "valid_until": "",
        "refusal": None,
        "issued": None,
    }
    context.update(values)
    return context


@router.get("/issue", response_class=HTMLResponse)
def issue_page(request: Request) -> HTMLResponse:
    """The issuing form for an agency's staff (access token, type, holder, claims)."""
    if _desk(request) is None:
        return _unavailable(request)
    return render(request, "identity/issue.html", _issue_context())


def _claims(form: FormData, credential_type: str) -> dict[str, Any]:
    """The claims of ``credential_type`` as typed; the issuer checks every value."""
    claims: dict[str, Any] = {}
    for spec in CLAIM_FIELDS.get(credential_type, ()):
        raw = text_field(form, f"claim-{credential_type}-{spec.name}")
        claims[spec.name] = (
            [part for part in re.split(r"[\s,]+", raw) if part] if spec.kind == "dates" else raw
        )
    valid_until = text_field(form, "valid_until")
    if valid_until:
        claims["valid_until"] = f"{valid_until}T23:59:59Z"
    return claims


@router.post("/issue", response_class=HTMLResponse)
def issue_submit(request: Request, form: Form) -> HTMLResponse:
    """Authenticate the token, issue, and hand over the credential (text, file and QR code)."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    credential_type = text_field(form, "credential_type")
    holder = text_field(form, "holder")
    values = {
        f"{credential_type}-{spec.name}": text_field(form, f"claim-{credential_type}-{spec.name}")
        for spec in CLAIM_FIELDS.get(credential_type, ())
    }
    keep = {
        "chosen_type": credential_type if credential_type in CLAIM_FIELDS else _types()[0],
        "holder": holder,
        "values": values,
        "valid_until": text_field(form, "valid_until"),
    }
    try:
        agency = desk.authenticate(_token(form))
        if credential_type not in CREDENTIAL_TYPES:
            raise PageInputError("choose a credential type", reason="bad_claims")
        if not _DID.fullmatch(holder):
            raise PageInputError("the holder must be a DID (did:key:...)", reason="bad_claims")
        issued = desk.issue(agency, credential_type, holder, _claims(form, credential_type))
    except CivicError as e:
        refusal = _refusal(e)
        context = _issue_context(refusal=refusal, **keep)
        return render(request, "identity/issue.html", context, status_code=refusal.status)
    context = _issue_context(issued=_issued_view(issued, agency), **keep)
    return render(request, "identity/issue.html", context)


def _issued_view(issued: IssuedCredential, agency: str) -> dict[str, Any]:
    credential = issued.credential
    if isinstance(credential, str):
        text, media, suffix, payload = credential, "text/plain", "sd-jwt", credential
    else:
        text = json.dumps(credential, ensure_ascii=False, indent=2)
        media, suffix = "application/json", "json"
        try:
            payload = to_qr_payload(credential)
        except CivicError:
            payload = ""
    qr = Markup(qr_svg(payload)) if payload and len(payload) <= MAX_QR_PAYLOAD else None  # noqa: S704
    return {
        "agency": agency,
        "credential_type": issued.credential_type,
        "format": "vc+sd-jwt" if isinstance(credential, str) else "vc-di",
        "text": text,
        "download": f"data:{media};charset=utf-8," + quote(text + "\n", safe=""),
        "filename": f"{issued.credential_type}-{issued.index}.{suffix}",
        "qr": qr,
        "list_id": issued.list_id,
        "index": issued.index,
    }


# -- staff: revoke -----------------------------------------------------------------------------


def _revoke_context(**values: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "holder": "",
        "list_id": "",
        "index": "",
        "records": None,
        "refusal": None,
        "revoked": None,
    }
    context.update(values)
    return context


@router.get("/revoke", response_class=HTMLResponse)
def revoke_page(request: Request) -> HTMLResponse:
    """The revoking form: a credential pasted, or one chosen from the agency's register."""
    if _desk(request) is None:
        return _unavailable(request)
    return render(request, "identity/revoke.html", _revoke_context())


def _entry(form: FormData) -> tuple[str, int] | None:
    """The list id and index to revoke, from a register row (``<index>@<list id>``) or the two
    fields; None if neither was given."""
    chosen = text_field(form, "entry")
    if chosen:
        index_text, _, list_id = chosen.partition("@")
    else:
        index_text, list_id = text_field(form, "index"), text_field(form, "list_id")
    if not index_text and not list_id:
        return None
    if not _INDEX.fullmatch(index_text) or int(index_text) > _MAX_INDEX or not list_id:
        raise PageInputError("give a status list id and an index (0 to 16777216)")
    if len(list_id) > 300:
        raise PageInputError("a status list id is at most 300 characters")
    return list_id, int(index_text)


@router.post("/revoke", response_class=HTMLResponse)
def revoke_submit(request: Request, form: Form) -> HTMLResponse:
    """``action=list`` shows the token's agency's register (optionally for one holder);
    otherwise revoke, re-sign the list and anchor its new digest before answering."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    holder = text_field(form, "holder")
    keep = {
        "holder": holder,
        "list_id": text_field(form, "list_id"),
        "index": text_field(form, "index"),
    }
    try:
        agency = desk.authenticate(_token(form))
        if text_field(form, "action") == "list":
            if holder and not _DID.fullmatch(holder):
                raise PageInputError("the holder must be a DID (did:key:...)")
            records = desk.issued(agency, holder=holder or None, limit=100)
            context = _revoke_context(records=records, agency=agency, **keep)
            return render(request, "identity/revoke.html", context)
        pasted = text_field(form, "credential")
        entry = _entry(form)
        if pasted and entry is not None:
            raise PageInputError("give either the credential or its list and index, not both")
        if pasted:
            revoked = desk.revoke(agency, parse_presentation(pasted))
        elif entry is not None:
            revoked = desk.revoke_index(agency, *entry)
        else:
            raise PageInputError("give the credential, or its status list id and index")
    except CivicError as e:
        refusal = _refusal(e)
        context = _revoke_context(refusal=refusal, **keep)
        return render(request, "identity/revoke.html", context, status_code=refusal.status)
    return render(request, "identity/revoke.html", _revoke_context(revoked=revoked, **keep))


def section() -> PortalSection:
    """The identity pages at ``/identity``; ``install_portal`` adds them when a desk is set."""
    return package_section("civicledger.web.identity", router, nav_order=20)
