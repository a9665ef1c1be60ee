"""The identity desk a running node offers over HTTP and in its portal.

One object both the JSON API and the portal call, so a page and an endpoint can never disagree:

- public: resolve DIDs, list issuer grants, serve agencies' signed status lists, hand out
  single-use challenges for the node's verifier domain and verify presentations against them
  (pasted text, a QR payload, or a photo of the QR code);
- for an agency's staff, with an access token (``agency.tokens``): issue, revoke, and list what
  was issued. The agency's signing key never leaves the node's keystore; a holder's key never
  reaches the node at all (holders present from their own wallet).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from civicledger.agency.issuer import (
    IssuedCredential,
    IssuedRecord,
    IssuerService,
    Revocation,
    published_list,
)
from civicledger.agency.ledger import AgencyLedger, NodeLedger
from civicledger.agency.tokens import authenticate
from civicledger.agency.verifying import StatusListSource
from civicledger.city import CityDir
from civicledger.crypto.encoding import from_b64url, parse_json
from civicledger.errors import CivicError, EncodingError
from civicledger.node.protocol import Node
from civicledger.services.identity.credentials import MAX_QR_PAYLOAD
from civicledger.services.identity.qr_image import decode_qr_image
from civicledger.services.identity.resolver import Resolver
from civicledger.services.identity.vc import CredentialError, CredentialReason
from civicledger.services.identity.verifier import (
    ChallengeError,
    MemoryChallenges,
    VerifiedCredential,
    Verifier,
)

__all__ = ["Challenge", "DeskError", "IdentityDesk", "node_desk", "parse_presentation"]

MAX_PRESENTATION_CHARS = 48 * 1024
"""A presentation pasted or posted: DI presentations with a few credentials fit easily."""
_GRANTS_QUERY = ("governance", "issuer_grants")


class DeskError(CivicError):
    """The desk cannot take a request (``too_many_challenges``)."""

    reason = "desk_error"


@dataclass(frozen=True)
class Challenge:
    challenge: str
    domain: str
    expires_at: datetime


def _malformed(message: str) -> CredentialError:
    return CredentialError(CredentialReason.MALFORMED_CREDENTIAL, message)


def parse_presentation(text: str) -> dict[str, Any] | str:
    """A presentation from text as people paste it: DI JSON, a compact SD-JWT, or the
    base64url QR payload of a DI presentation."""
    text = text.strip()
    if not text:
        raise _malformed("no presentation was given")
    if len(text) > MAX_PRESENTATION_CHARS:
        raise _malformed(f"a presentation is at most {MAX_PRESENTATION_CHARS} characters")
    if text.startswith("{"):
        try:
            value = parse_json(text.encode("utf-8"))
        except EncodingError as e:
            raise _malformed(f"not JSON: {e.message}") from e
        if not isinstance(value, dict):
            raise _malformed("a presentation is a JSON object")
        return value
    if "~" in text:
        return text  # SD-JWT: issuer JWT ~ disclosures ~ key-binding JWT
    if len(text) <= MAX_QR_PAYLOAD:
        try:
            value = parse_json(from_b64url(text))
        except EncodingError:
            value = None
        if isinstance(value, dict):
            return value
    raise _malformed("not a presentation: expected JSON, an SD-JWT, or a QR payload")


class _OnlyChallenge:
    """A ``ChallengeBook`` view that accepts only ``expected`` of the shared book's challenges."""

    def __init__(self, book: MemoryChallenges, expected: str) -> None:
        self._book, self._expected = book, expected

    def new(self, now_ms: int) -> str:
        return self._book.new(now_ms)

    def consume(self, challenge: object, now_ms: int) -> str:
        if challenge != self._expected:
            raise ChallengeError(
                "the presentation answers another challenge than the one asked here",
                reason="unknown_challenge",
            )
        return self._book.consume(challenge, now_ms)


class IdentityDesk:
    """The node's identity desk; see the module docstring.

    ``domain`` is the verifier's domain (audience) presentations must be bound to: the portal's
    public origin in production. ``list_base_url`` makes new status lists' ids https URLs this
    node serves (``<base>/<agency>/<list>``); without it they are URNs.
    """

    def __init__(
        self,
        ledger: AgencyLedger,
        *,
        domain: str,
        list_base_url: str | None = None,
        challenge_ttl: timedelta = timedelta(minutes=5),
        max_open_challenges: int = 10_000,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.domain = domain
        self.list_base_url = list_base_url
        self.challenge_ttl = challenge_ttl
        self.max_open_challenges = max_open_challenges
        self._clock = clock or (lambda: datetime.now(UTC))
        self._challenges = MemoryChallenges(int(challenge_ttl.total_seconds() * 1000))
        self._status_lists = StatusListSource(ledger.city)
        self._verifier = Verifier(
            ledger.query,
            self._status_lists,
            domain=domain,
            challenges=self._challenges,
        )

    def now(self) -> datetime:
        return self._clock()

    # -- public --------------------------------------------------------------------------------

    def resolve(self, did: str) -> dict[str, Any]:
        """DID resolution for did:key and did:civic (``DidResolutionError`` if it fails)."""
        return Resolver(self.ledger.query).resolve(did)

    def grants(self, *, agency: str | None = None, after: str = "", limit: int = 100) -> Any:
        args: dict[str, Any] = {"after": after, "limit": limit}
        if agency is not None:
            args["agency"] = agency
        return self.ledger.query(*_GRANTS_QUERY, args)

    def status_list(self, agency: str, name: str) -> dict[str, Any]:
        """Agency ``agency``'s signed status list ``name`` as last anchored (never the
        issuer's register of who holds which index)."""
        return published_list(self.ledger.city, agency, name=name)

    def new_challenge(self) -> Challenge:
        now = self.now()
        if len(self._challenges.issued) >= self.max_open_challenges:
            raise DeskError(
                "too many open challenges; try again in a few minutes",
                reason="too_many_challenges",
            )
        challenge = self._verifier.new_challenge(now)
        return Challenge(challenge, self.domain, now + self.challenge_ttl)

    def verify(
        self,
        presentation: Mapping[str, Any] | str,
        *,
        expected_type: str | None = None,
        challenge: str | None = None,
    ) -> tuple[VerifiedCredential, ...]:
        """Verify a presentation answering one of this desk's challenges (used up either way:
        a presentation is tried once). Raises ``VerificationError`` or ``ChallengeError``.

        ``challenge``: the one challenge this request handed out (a counter's page); a
        presentation answering another open challenge of the node is then refused
        (``unknown_challenge``) and that other challenge stays open.
        """
        now = self.now()
        verifier = self._verifier
        if challenge is not None:
            verifier = Verifier(
                self.ledger.query,
                self._status_lists,
                domain=self.domain,
                challenges=_OnlyChallenge(self._challenges, challenge),
            )
        if isinstance(presentation, str):
            return (verifier.verify_sd_jwt(presentation, now=now, expected_type=expected_type),)
        return verifier.verify_presentation(
            dict(presentation), now=now, expected_type=expected_type
        )

    @staticmethod
    def read_qr_image(data: bytes) -> dict[str, Any] | str:
        """The presentation in a photo or screenshot of its QR code."""
        return parse_presentation(decode_qr_image(data))

    # -- for an agency's staff -----------------------------------------------------------------

    def authenticate(self, token: str | None) -> str:
        """The agency a desk token belongs to (``TokenError`` if none)."""
        return authenticate(self.ledger.city, token)

    def _issuer(self, agency: str) -> IssuerService:
        return IssuerService(
            self.ledger, agency, list_base_url=self.list_base_url, clock=self._clock
        )

    def issue(
        self, agency: str, credential_type: str, holder: str, claims: Mapping[str, Any]
    ) -> IssuedCredential:
        return self._issuer(agency).issue(credential_type, holder, claims)

    def revoke(self, agency: str, credential: Mapping[str, Any] | str) -> Revocation:
        return self._issuer(agency).revoke(credential)

    def revoke_index(self, agency: str, list_id: str, index: int) -> Revocation:
        return self._issuer(agency).revoke_index(list_id, index)

    def issued(
        self, agency: str, *, holder: str | None = None, limit: int = 100
    ) -> list[IssuedRecord]:
        return self._issuer(agency).issued(holder=holder, limit=limit)


def node_desk(
    city: CityDir,
    node: Node,
    *,
    served_at: str,
    public_url: str | None = None,
    passphrase: str | None = None,
) -> IdentityDesk:
    """The desk of a node serving ``city`` at ``served_at`` (its URL).

    ``public_url`` (the address residents use, e.g. ``https://id.seoul.go.kr``) becomes the
    verifier domain and the base of new status lists' URLs; without it the domain is
    ``served_at`` and lists keep URN ids.
    """
    base = (public_url or "").rstrip("/")
    return IdentityDesk(
        NodeLedger(city, node, passphrase),
        domain=base or served_at.rstrip("/"),
        list_base_url=f"{base}/api/v1/identity/status" if base else None,
    )
