"""``/api/v1/identity``: DIDs, issuer grants, status lists, challenges, verification; and, for
an agency's staff with an access token, issuing and revoking.

Thin over ``civicledger.agency.desk.IdentityDesk``. A failed verification is an answer, not an
error: 200 with ``verified: false`` and the reason. Holders present from their own wallets: no
route ever takes or holds a holder's key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from civicledger.agency.desk import IdentityDesk, parse_presentation
from civicledger.agency.issuer import IssuedRecord
from civicledger.api.problems import ApiError, problem_responses
from civicledger.crypto.encoding import canonical_json
from civicledger.errors import CivicError
from civicledger.ledger.genesis import AGENCY_ID_PATTERN
from civicledger.services.identity.credentials import MAX_QR_PAYLOAD
from civicledger.services.identity.issuers import CREDENTIAL_TYPE_PATTERN
from civicledger.services.identity.qr_image import MAX_IMAGE_BYTES, decode_qr_image, qr_png
from civicledger.services.identity.verifier import VerifiedCredential

__all__ = ["IDENTITY_QR_PATH", "identity_router", "verification_answer"]

IDENTITY_QR_PATH = "/identity/qr/decode"
"""Takes an image body, so the app gives it a bigger body limit (``MAX_IMAGE_BYTES``)."""
_LIST_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
_DID = r"^did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,200}$"
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp")

_bearer = HTTPBearer(
    auto_error=False, description="An agency desk token (`civic identity token create`)."
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChallengeOut(BaseModel):
    challenge: str
    domain: str
    """The audience the presentation must be bound to (SD-JWT ``aud``, DI proof ``domain``)."""
    expires_at: str


class VerifyIn(Strict):
    presentation: str | dict[str, Any] = Field(
        description="A DI presentation (JSON object or its text), a compact SD-JWT with key "
        "binding, or the QR payload of a DI presentation."
    )
    expected_type: str | None = Field(default=None, pattern=CREDENTIAL_TYPE_PATTERN)
    challenge: str | None = Field(
        default=None,
        max_length=200,
        description="The challenge this verifier handed out for this presentation; if given, "
        "a presentation answering any other challenge is refused.",
    )


class StatusEvidence(BaseModel):
    revoked: bool
    suspended: bool
    list_digest: str
    """The digest of the status list that was checked, as anchored on the ledger."""


class VerifiedOut(BaseModel):
    type: str
    issuer: str
    holder: str
    claims: dict[str, Any]
    issued_at_ms: int
    status: StatusEvidence | None


class VerifyOut(BaseModel):
    verified: bool
    reason: str | None = None
    message: str | None = None
    credentials: list[VerifiedOut] = []


class IssueIn(Strict):
    credential_type: str = Field(pattern=CREDENTIAL_TYPE_PATTERN, examples=["ResidentCard"])
    holder: str = Field(pattern=_DID, description="The holder's did:key (from its wallet).")
    claims: dict[str, Any]


class IssueOut(BaseModel):
    credential_type: str
    format: Literal["vc+sd-jwt", "vc-di"]
    credential: str | dict[str, Any]
    list_id: str
    index: int


class RevokeIn(Strict):
    credential: str | dict[str, Any] | None = None
    list_id: str | None = Field(default=None, max_length=300)
    index: int | None = Field(default=None, ge=0, le=2**24)


class RevokeOut(BaseModel):
    list_id: str
    index: int
    version: int
    digest: str


class IssuedOut(BaseModel):
    records: list[dict[str, Any]]


class QrOut(BaseModel):
    text: str


def verification_answer(verified: tuple[VerifiedCredential, ...]) -> VerifyOut:
    return VerifyOut(
        verified=True,
        credentials=[
            VerifiedOut(
                type=v.credential_type,
                issuer=v.issuer,
                holder=v.holder,
                claims=dict(v.claims),
                issued_at_ms=v.issued_at_ms,
                status=None
                if v.status is None
                else StatusEvidence(
                    revoked=v.status.revoked,
                    suspended=v.status.suspended,
                    list_digest=v.status.list_digest,
                ),
            )
            for v in verified
        ],
    )


def _record(record: IssuedRecord) -> dict[str, Any]:
    return {
        "list_id": record.list_id,
        "index": record.index,
        "credential_type": record.credential_type,
        "holder": record.holder,
        "issued_at": record.issued_at,
        "revoked_at": record.revoked_at,
    }


def _staff_agency(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The agency whose desk token the request carries (401 otherwise)."""
    desk: IdentityDesk = request.app.state.identity
    return desk.authenticate(credentials.credentials if credentials is not None else None)


Staff = Annotated[str, Depends(_staff_agency)]


def _json(value: Any) -> Response:
    return Response(canonical_json(value), media_type="application/json")


def identity_router(desk: IdentityDesk) -> APIRouter:
    router = APIRouter(prefix="/identity", tags=["identity"])

    @router.get("/dids/{did}", responses=problem_responses(400, 404, 422))
    def resolve(did: Annotated[str, Path(pattern=_DID)]) -> Response:
        """DID resolution (did:civic from the ledger, did:key computed)."""
        try:
            return _json(desk.resolve(did))
        except CivicError as e:
            code = getattr(e, "code", "")
            status = 404 if code in ("not_found", "unsupported_method", "malformed") else 400
            raise ApiError(status, f"did_{code or 'resolution'}", e.message) from e

    @router.get("/issuers", responses=problem_responses(422))
    def issuers(
        agency: Annotated[str | None, Query(pattern=AGENCY_ID_PATTERN)] = None,
        after: Annotated[str, Query(max_length=200)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        """Which agency may issue which credential type, with each grant's history."""
        return _json({"grants": desk.grants(agency=agency, after=after, limit=limit)})

    @router.get("/status/{agency}/{name}", responses=problem_responses(404, 422))
    def status_list(
        agency: Annotated[str, Path(pattern=AGENCY_ID_PATTERN)],
        name: Annotated[str, Path(pattern=_LIST_NAME)],
    ) -> Response:
        """An agency's signed Bitstring Status List credential, as last anchored."""
        return _json(desk.status_list(agency, name))

    @router.post(
        "/challenges",
        response_model=ChallengeOut,
        status_code=201,
        responses=problem_responses(503),
    )
    def new_challenge() -> ChallengeOut:
        """A single-use challenge for one presentation to this node's verifier."""
        made = desk.new_challenge()
        return ChallengeOut(
            challenge=made.challenge, domain=made.domain, expires_at=made.expires_at.isoformat()
        )

    @router.post("/verify", response_model=VerifyOut, responses=problem_responses(413, 422))
    def verify(body: VerifyIn) -> VerifyOut:
        """Verify a presentation answering one of this node's challenges (used up either way)."""
        try:
            presentation = (
                parse_presentation(body.presentation)
                if isinstance(body.presentation, str)
                else body.presentation
            )
            verified = desk.verify(
                presentation, expected_type=body.expected_type, challenge=body.challenge
            )
        except CivicError as e:
            return VerifyOut(verified=False, reason=e.reason, message=e.message)
        return verification_answer(verified)

    @router.post(
        "/qr/decode",
        response_model=QrOut,
        responses=problem_responses(400, 413, 415),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    t: {"schema": {"type": "string", "format": "binary"}} for t in _IMAGE_TYPES
                },
            }
        },
    )
    async def decode_qr(request: Request) -> QrOut:
        """The text of the QR code in an image (e.g. a photo of a presentation's QR code)."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _IMAGE_TYPES:
            raise ApiError(415, "unsupported_media_type", f"send one of {', '.join(_IMAGE_TYPES)}")
        data = await request.body()
        if len(data) > MAX_IMAGE_BYTES:
            raise ApiError(413, "payload_too_large", "the image is too large")
        return QrOut(text=decode_qr_image(data))

    @router.get(
        "/qr.png",
        responses={200: {"content": {"image/png": {}}}, **problem_responses(400, 422)},
        response_class=Response,
    )
    def qr_image(text: Annotated[str, Query(min_length=1, max_length=MAX_QR_PAYLOAD)]) -> Response:
        """A PNG QR code of ``text`` (a challenge, a credential's QR payload, ...)."""
        return Response(qr_png(text), media_type="image/png")

    # -- staff -----------------------------------------------------------------------------

    @router.post(
        "/credentials",
        response_model=IssueOut,
        status_code=201,
        responses=problem_responses(400, 401, 403, 409, 422, 503),
    )
    def issue(body: IssueIn, agency: Staff) -> IssueOut:
        """Issue a credential signed by the token's agency (SD-JWT VC or Data Integrity VC)."""
        issued = desk.issue(agency, body.credential_type, body.holder, body.claims)
        return IssueOut(
            credential_type=issued.credential_type,
            format="vc+sd-jwt" if isinstance(issued.credential, str) else "vc-di",
            credential=issued.credential,
            list_id=issued.list_id,
            index=issued.index,
        )

    @router.get("/credentials", response_model=IssuedOut, responses=problem_responses(401, 422))
    def issued(
        agency: Staff,
        holder: Annotated[str | None, Query(pattern=_DID)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> IssuedOut:
        """What the token's agency issued (off-ledger register), newest first."""
        return IssuedOut(
            records=[_record(r) for r in desk.issued(agency, holder=holder, limit=limit)]
        )

    @router.post(
        "/revocations",
        response_model=RevokeOut,
        status_code=201,
        responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
    )
    def revoke(body: RevokeIn, agency: Staff) -> RevokeOut:
        """Revoke a credential the token's agency issued (by the credential, or list and index);
        the list is re-signed and its new digest anchored before this answers."""
        if body.credential is not None:
            credential = (
                parse_presentation(body.credential)
                if isinstance(body.credential, str)
                else body.credential
            )
            revoked = desk.revoke(agency, credential)
        elif body.list_id is not None and body.index is not None:
            revoked = desk.revoke_index(agency, body.list_id, body.index)
        else:
            raise ApiError(400, "bad_request", "give either credential, or list_id and index")
        return RevokeOut(
            list_id=revoked.list_id,
            index=revoked.index,
            version=revoked.published.version,
            digest=revoked.published.digest,
        )

    return router
