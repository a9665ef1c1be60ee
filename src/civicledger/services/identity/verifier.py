"""End-to-end verification of the city's credentials: one call, verified claims or one reason.

A ``Verifier`` checks a presentation (SD-JWT VC or Data Integrity) against the ledger, which it
reads only through ``query(contract, method, args)`` (``Chain.query`` in-process,
``CivicClient.query`` over HTTP) and status-list credentials through ``fetch(url) -> dict``. The
first failed check raises, in this order:

    challenge     ``ChallengeError``: ``unknown_challenge``, ``replayed_challenge``,
                  ``expired_challenge``; a challenge is good for one attempt, pass or fail.
    type          ``VerificationError`` ``unknown_credential_type``: not a city type.
    issuer key    ``DidResolutionError`` (``not_found``, ``not_valid_at_time``, ``revoked``,
                  ``deactivated``, ...): the key must be valid at the credential's issuance.
    signatures    ``CredentialError``: issuer proof, holder proof or key binding, disclosures
                  (``unreferenced_disclosure``), validity period (``expired``,
                  ``not_yet_valid``), audience/domain.
    holder        ``VerificationError`` ``wrong_holder``: the presentation's signer is not the
                  credential's subject (for SD-JWT the ``cnf`` key must sign the KB-JWT, so a
                  stranger's key fails as ``bad_key_binding``).
    issuer right  ``IssuerNotAuthorized``: no governance grant for the type at issuance time
                  (an agency's deactivation ends its grants).
    status        ``StatusError`` (list not anchored, not the anchored one, ...) or
                  ``VerificationError`` ``revoked`` / ``suspended`` / ``missing_status``.

Invariants:

- Issuance time is what the issuer signed (DI ``proof.created``, SD-JWT ``iat``), read before
  the signature is checked only to pick the key; a forged time fails the signature.
- Fail closed: a revocable type without status, an unanchored list, an unknown type, a failed
  query are all refusals.
- ``now`` is passed in; the only state is the challenge book, guarded by a lock.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from civicledger.crypto.encoding import canonical_json, from_b64url, parse_json
from civicledger.crypto.keys import PublicKey
from civicledger.errors import CivicError, EncodingError
from civicledger.services.identity import data_integrity, sdjwt
from civicledger.services.identity.credentials import (
    CREDENTIAL_TYPES,
    CredentialType,
    type_of_vct,
)
from civicledger.services.identity.did_registry import agency_of_did
from civicledger.services.identity.issuers import check_issuer
from civicledger.services.identity.resolver import (
    DidResolutionError,
    QueryFn,
    Resolver,
    query_result,
)
from civicledger.services.identity.status_list import (
    CredentialStatus,
    StatusEntry,
    StatusError,
    check_status,
)
from civicledger.services.identity.status_registry import CONTRACT_NAME as STATUS_CONTRACT
from civicledger.services.identity.vc import (
    CredentialError,
    CredentialReason,
    issuer_id,
    parse_datetime,
    require_aware,
)

__all__ = [
    "ChallengeError",
    "FetchFn",
    "LedgerSnapshot",
    "RecordingLedger",
    "VerificationError",
    "VerifiedCredential",
    "Verifier",
]

FetchFn = Callable[[str], Any]
"""``fetch(url)``: the JSON document (a status-list credential) published at ``url``."""


class VerificationError(CivicError):
    """A presentation failed a check of the verifier's own; ``reason`` says which.

    Reasons: ``unknown_credential_type``, ``wrong_holder``, ``missing_status``, ``revoked``,
    ``suspended``, ``ledger_data_missing`` (offline, the snapshot lacks an answer).
    """

    reason = "verification_failed"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)


class ChallengeError(CivicError):
    """The presentation's challenge (nonce) is not one this verifier issued and has not used.

    Reasons: ``unknown_challenge``, ``replayed_challenge``, ``expired_challenge``.
    """

    reason = "challenge_error"


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    """What a verified presentation establishes about one credential."""

    credential_type: str
    """The city type (``ResidentCard``, ...), granted to the issuer at issuance."""
    issuer: str
    """The issuing agency's DID."""
    holder: str
    """The DID of the holder who signed the presentation (``did:key`` for a citizen)."""
    claims: Mapping[str, Any]
    """Disclosed claims (SD-JWT) or the credential subject (DI), without ``credentialStatus``."""
    issued_at_ms: int
    """The issuance time the issuer signed, in ms."""
    status: CredentialStatus | None
    """The status-list check, with the anchored digest checked; None if not revocable."""
    credential: Mapping[str, Any] | None = None
    """The DI credential itself (None for SD-JWT), e.g. to issue a pass against it."""


def _ms(moment: datetime) -> int:
    require_aware(moment)
    return int(moment.timestamp() * 1000)


def _malformed(message: str) -> CredentialError:
    return CredentialError(CredentialReason.MALFORMED_CREDENTIAL, message)


def _unverified_segment(jwt: str, what: str) -> dict[str, Any]:
    """The payload of a compact JWS, unverified: only to pick keys and challenges."""
    parts = jwt.split(".")
    if len(parts) != 3:
        raise _malformed(f"{what} is not a compact JWS")
    try:
        payload = parse_json(from_b64url(parts[1]))
    except EncodingError as e:
        raise _malformed(f"{what} payload is not JSON") from e
    if not isinstance(payload, dict):
        raise _malformed(f"{what} payload is not an object")
    return payload


class ChallengeBook(Protocol):
    """Where a verifier's single-use challenges live: in memory (``MemoryChallenges``) or in a
    store shared between processes (the CLI's file store in ``issuer.py``)."""

    def new(self, now_ms: int) -> str: ...

    def consume(self, challenge: object, now_ms: int) -> str:
        """Use ``challenge`` up; raise ``ChallengeError`` if unknown, used or expired."""
        ...


@dataclass
class MemoryChallenges:
    """Challenges issued (with expiry) and used (kept until well after expiry)."""

    ttl_ms: int
    issued: dict[str, int] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new(self, now_ms: int) -> str:
        challenge = secrets.token_urlsafe(24)
        with self.lock:
            self._prune(now_ms)
            self.issued[challenge] = now_ms + self.ttl_ms
        return challenge

    def consume(self, challenge: object, now_ms: int) -> str:
        if not isinstance(challenge, str) or not challenge:
            raise ChallengeError(
                "the presentation carries no challenge", reason="unknown_challenge"
            )
        with self.lock:
            self._prune(now_ms)
            if challenge in self.used:
                raise ChallengeError("this challenge was already used", reason="replayed_challenge")
            expiry = self.issued.pop(challenge, None)
            if expiry is None:
                raise ChallengeError(
                    "this verifier did not issue that challenge", reason="unknown_challenge"
                )
            self.used[challenge] = expiry
        if now_ms > expiry:
            raise ChallengeError("the challenge has expired", reason="expired_challenge")
        return challenge

    def _prune(self, now_ms: int) -> None:
        # Used challenges outlive their expiry by a ttl, so a late replay still reads as one;
        # after that it is refused as unknown, which is just as final.
        horizon = now_ms - self.ttl_ms
        for book in (self.issued, self.used):
            for challenge in [c for c, expiry in book.items() if expiry < horizon]:
                del book[challenge]


class Verifier:
    """Verifies presentations made to ``domain`` (the SD-JWT audience, the DI proof domain)."""

    def __init__(
        self,
        query: QueryFn,
        fetch: FetchFn,
        *,
        domain: str,
        challenge_ttl: timedelta = timedelta(minutes=5),
        challenges: ChallengeBook | None = None,
    ) -> None:
        if not domain:
            raise ValueError("a verifier needs a domain")
        self.domain = domain
        self._query = query
        self._fetch = fetch
        self._resolver = Resolver(query)
        self._challenges = challenges or MemoryChallenges(int(challenge_ttl.total_seconds() * 1000))

    def new_challenge(self, now: datetime) -> str:
        """A fresh challenge for one presentation, valid for ``challenge_ttl``."""
        return self._challenges.new(_ms(now))

    # -- SD-JWT VC ------------------------------------------------------------------------------

    def verify_sd_jwt(
        self,
        presentation: str,
        *,
        now: datetime,
        expected_type: str | None = None,
        status_as_of_ms: int | None = None,
    ) -> VerifiedCredential:
        """Verify an SD-JWT VC presentation with a KB-JWT for this verifier's challenge."""
        if not isinstance(presentation, str) or "~" not in presentation:
            raise _malformed("not a compact SD-JWT")
        parts = presentation.split("~")
        payload = _unverified_segment(parts[0], "SD-JWT")
        kb_payload = _unverified_segment(parts[-1], "KB-JWT") if parts[-1] else {}
        kind = type_of_vct(str(payload.get("vct", "")))
        self._expect(kind, expected_type)
        nonce = self._challenges.consume(kb_payload.get("nonce"), _ms(now))
        issuer, iat = payload.get("iss"), payload.get("iat")
        if not isinstance(issuer, str) or type(iat) is not int:
            raise _malformed("SD-JWT needs iss and an integer iat")
        issued_ms = iat * 1000
        verified = self._verify_sd_jwt_signed(
            presentation, self._assertion_keys(issuer, issued_ms), now, kind, nonce
        )
        if verified.holder is None:
            raise CredentialError(CredentialReason.MISSING_KEY_BINDING, "no holder key binding")
        check_issuer(self._query, verified.issuer, kind.name, issued_ms)
        claims = dict(verified.claims)
        status = self._status(
            claims.pop("credentialStatus", None), verified.issuer, kind, now, status_as_of_ms
        )
        for reserved in ("iss", "iat", "exp", "nbf", "vct", "cnf"):
            claims.pop(reserved, None)
        return VerifiedCredential(
            credential_type=kind.name,
            issuer=verified.issuer,
            holder=verified.holder.did,
            claims=claims,
            issued_at_ms=issued_ms,
            status=status,
        )

    def _verify_sd_jwt_signed(
        self,
        presentation: str,
        keys: list[PublicKey],
        now: datetime,
        kind: CredentialType,
        nonce: str,
    ) -> sdjwt.VerifiedSdJwtVc:
        """Try each assertion key the issuer had at issuance (a JWS names none)."""
        failure: CredentialError | None = None
        for key in keys:
            try:
                return sdjwt.verify_presentation(
                    presentation,
                    issuer_key=lambda _iss, key=key: key,  # type: ignore[misc]
                    now=now,
                    audience=self.domain,
                    nonce=nonce,
                    expected_vct=kind.vct,
                )
            except CredentialError as e:
                if e.credential_reason is not CredentialReason.BAD_PROOF_SIGNATURE:
                    raise
                failure = e
        assert failure is not None  # _assertion_keys never returns an empty list
        raise failure

    def _assertion_keys(self, did: str, at_ms: int) -> list[PublicKey]:
        resolution = self._resolver.resolve(did, at_ms)
        methods = resolution["didDocument"].get("assertionMethod", [])
        if resolution["didDocumentMetadata"].get("deactivated") is True:
            raise DidResolutionError("deactivated", f"{did} was deactivated at {at_ms}")
        if not isinstance(methods, list) or not methods:
            raise DidResolutionError("unknown_method", f"{did} had no assertion key at {at_ms}")
        return [self._resolver.verification_key(m, at_ms) for m in methods]

    # -- Data Integrity ---------------------------------------------------------------------------

    def verify_presentation(
        self,
        presentation: Mapping[str, Any],
        *,
        now: datetime,
        expected_type: str | None = None,
        status_as_of_ms: int | None = None,
    ) -> tuple[VerifiedCredential, ...]:
        """Verify a DI presentation signed by its holder with this verifier's challenge."""
        if not isinstance(presentation, Mapping) or not isinstance(
            presentation.get("proof"), Mapping
        ):
            raise CredentialError(CredentialReason.MALFORMED_PROOF, "presentation has no proof")
        challenge = self._challenges.consume(presentation["proof"].get("challenge"), _ms(now))
        credentials = presentation.get("verifiableCredential")
        if not isinstance(credentials, list) or not credentials:
            raise _malformed("a presentation must carry at least one credential")
        keys: dict[str, PublicKey] = {}
        plans = []
        for credential in credentials:
            if not isinstance(credential, Mapping):
                raise _malformed("an embedded credential must be an object")
            kind, issued_ms, method = self._plan(credential, expected_type)
            keys[method] = self._resolver.verification_key(method, issued_ms)
            plans.append((credential, kind, issued_ms))
        now_ms = _ms(now)

        def resolve(method: str) -> PublicKey:
            if method in keys:
                return keys[method]
            return self._resolver.verification_key(method, now_ms, purpose="authentication")

        verified = data_integrity.verify_presentation(
            presentation, now=now, challenge=challenge, domain=self.domain, resolver=resolve
        )
        holder = verified.holder.controller
        return tuple(
            self._finish(credential, kind, issued_ms, holder, now, status_as_of_ms)
            for credential, kind, issued_ms in plans
        )

    def verify_credential(
        self,
        credential: Mapping[str, Any],
        *,
        now: datetime,
        expected_type: str | None = None,
        status_as_of_ms: int | None = None,
    ) -> VerifiedCredential:
        """Verify a DI credential on its own (no holder proof): for an issuer's or gate's sync.

        The result's ``holder`` is the credential's subject, which nobody proved to be present.
        """
        kind, issued_ms, method = self._plan(credential, expected_type)
        key = self._resolver.verification_key(method, issued_ms)
        data_integrity.verify_credential(credential, now=now, resolver=lambda _m: key)
        subject = credential["credentialSubject"]
        return self._finish(credential, kind, issued_ms, subject.get("id"), now, status_as_of_ms)

    def _plan(
        self, credential: Mapping[str, Any], expected_type: str | None
    ) -> tuple[CredentialType, int, str]:
        """The city type, the signed issuance time (ms) and the issuer's verification method."""
        types = credential.get("type")
        names = [t for t in types if t in CREDENTIAL_TYPES] if isinstance(types, list) else []
        if len(names) != 1 or CREDENTIAL_TYPES[names[0]].sd_jwt:
            raise VerificationError(
                "unknown_credential_type", f"{str(types)[:80]} is not a DI credential type"
            )
        kind = CREDENTIAL_TYPES[names[0]]
        self._expect(kind, expected_type)
        proof = credential.get("proof")
        if not isinstance(proof, Mapping) or not isinstance(proof.get("verificationMethod"), str):
            raise CredentialError(CredentialReason.MALFORMED_PROOF, "credential has no proof")
        if "created" not in proof:
            raise CredentialError(CredentialReason.MALFORMED_PROOF, "proof has no created time")
        issued = parse_datetime(proof["created"], field="proof.created")
        return kind, _ms(issued), proof["verificationMethod"]

    def _finish(
        self,
        credential: Mapping[str, Any],
        kind: CredentialType,
        issued_ms: int,
        holder: object,
        now: datetime,
        status_as_of_ms: int | None,
    ) -> VerifiedCredential:
        """Holder, issuer right and status of a credential whose proof verified."""
        subject = credential.get("credentialSubject")
        if not isinstance(subject, Mapping) or not isinstance(holder, str):
            raise _malformed("a city credential has one subject object with an id")
        if subject.get("id") != holder:
            raise VerificationError(
                "wrong_holder", f"presented by {holder[:80]}, issued to another subject"
            )
        issuer = issuer_id(credential)
        check_issuer(self._query, issuer, kind.name, issued_ms)
        status = self._status(
            credential.get("credentialStatus"), issuer, kind, now, status_as_of_ms
        )
        return VerifiedCredential(
            credential_type=kind.name,
            issuer=issuer,
            holder=holder,
            claims=dict(subject),
            issued_at_ms=issued_ms,
            status=status,
            credential=credential,
        )

    @staticmethod
    def _expect(kind: CredentialType, expected_type: str | None) -> None:
        if expected_type is not None and kind.name != expected_type:
            raise VerificationError(
                "unknown_credential_type", f"expected a {expected_type}, got a {kind.name}"
            )

    # -- status -----------------------------------------------------------------------------------

    def _status(
        self,
        raw: object,
        issuer: str,
        kind: CredentialType,
        now: datetime,
        as_of_ms: int | None,
    ) -> CredentialStatus | None:
        """Check the credential's status entry against the list whose digest the issuer anchored."""
        if raw is None:
            if kind.revocable:
                raise VerificationError(
                    "missing_status", f"a {kind.name} must carry a credentialStatus"
                )
            return None
        entry = StatusEntry.from_json(raw)
        args: dict[str, Any] = {
            "agency": agency_of_did(issuer),
            "list_id": entry.status_list_credential,
        }
        method = "latest"
        if as_of_ms is not None:
            method, args["time_ms"] = "as_of", as_of_ms
        try:
            anchored = query_result(self._query(STATUS_CONTRACT, method, args))
        except CivicError as e:
            raise StatusError(
                f"could not read the status list anchor: {e.message}", reason="status_query_failed"
            ) from e
        if not isinstance(anchored, Mapping) or not isinstance(anchored.get("digest"), str):
            raise StatusError(
                f"{issuer} anchored no list {entry.status_list_credential}",
                reason="status_list_unanchored",
            )
        try:
            list_credential = self._fetch(entry.status_list_credential)
        except (CivicError, OSError) as e:
            raise StatusError(
                f"could not fetch {entry.status_list_credential}: {e}",
                reason="status_list_unavailable",
            ) from e
        status = check_status(entry, list_credential, anchored["digest"])
        self._check_list_issuer(list_credential, issuer, now)
        if status.revoked:
            raise VerificationError("revoked", "the credential has been revoked")
        if status.suspended:
            raise VerificationError("suspended", "the credential is suspended")
        return status

    def _check_list_issuer(
        self, list_credential: Mapping[str, Any], issuer: str, now: datetime
    ) -> None:
        """The list must be the credential issuer's own, signed with a key valid when made."""
        if issuer_id(list_credential) != issuer:
            raise StatusError(
                "the status list is not the credential issuer's", reason="status_list_mismatch"
            )
        proof = list_credential.get("proof")
        if not isinstance(proof, Mapping) or "created" not in proof:
            raise StatusError("the status list is not signed", reason="malformed_status_list")
        created = _ms(parse_datetime(proof["created"], field="proof.created"))
        data_integrity.verify_credential(
            list_credential,
            now=now,
            resolver=lambda method: self._resolver.verification_key(method, created),
        )


class RecordingLedger:
    """Wraps ``query`` and ``fetch``, keeping every answer, so a gate can later go offline.

    Give its ``query`` and ``fetch`` to an online ``Verifier``; verifying the day's passes
    records exactly the ledger answers and lists their offline checks will ask for.
    """

    def __init__(self, query: QueryFn, fetch: FetchFn) -> None:
        self._inner_query = query
        self._inner_fetch = fetch
        self.answers: dict[bytes, Any] = {}
        self.documents: dict[str, Any] = {}

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        answer = query_result(self._inner_query(contract, method, args))
        self.answers[canonical_json([contract, method, args])] = answer
        return answer

    def fetch(self, url: str) -> Any:
        document = self._inner_fetch(url)
        self.documents[url] = document
        return document

    def snapshot(self) -> LedgerSnapshot:
        return LedgerSnapshot(dict(self.answers), dict(self.documents))


class LedgerSnapshot:
    """Answers recorded by a ``RecordingLedger``; any other question fails closed."""

    def __init__(self, answers: Mapping[bytes, Any], documents: Mapping[str, Any]) -> None:
        self._answers = dict(answers)
        self._documents = dict(documents)

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        key = canonical_json([contract, method, args])
        if key not in self._answers:
            raise VerificationError(
                "ledger_data_missing", f"offline: no recorded answer for {contract}.{method}"
            )
        return self._answers[key]

    def fetch(self, url: str) -> Any:
        if url not in self._documents:
            raise VerificationError("ledger_data_missing", f"offline: {url} was not fetched")
        return self._documents[url]
