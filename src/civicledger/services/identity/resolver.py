"""DID resolution for verifiers, off the ledger: ``did:key`` locally, ``did:civic`` by query.

A citizen's ``did:key`` is its own document (the did:key method: one Multikey method whose
fragment is the key's multibase), so resolving it needs no ledger and writes nothing anywhere.
An agency's ``did:civic`` is resolved by the ``did_registry`` contract through a ``query``
callable, ``query(contract, method, args) -> result``: ``Chain.query`` in-process, or
``CivicClient.query`` over HTTP (its ``UnprovenResult`` is unwrapped; note that answer is not
proven, so trust the node you ask).

``Resolver.verification_key`` is what a credential verifier calls; it raises
``DidResolutionError`` for every reason a key must not be used (fail closed), never returns a
verdict. Keys removed with ``revoked`` are refused at every time; a deactivated DID's keys are
refused from the deactivation on, and keys valid before still verify what they signed then.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from civicledger.crypto.keys import PublicKey
from civicledger.errors import CivicError
from civicledger.services.identity.did_registry import (
    DID_CIVIC_PREFIX,
    DID_CONTEXT,
    DID_CONTRACT,
    MAX_TIME_MS,
    agency_of_did,
)

__all__ = ["DidResolutionError", "QueryFn", "Resolver", "did_key_document", "query_result"]

QueryFn = Callable[[str, str, dict[str, Any]], Any]
"""``query(contract, method, args)``: a read-only contract query at the ledger's head."""

Purpose = Literal["assertionMethod", "authentication"]

_FRAGMENT_RE = re.compile(r"[A-Za-z0-9._~-]{1,128}")


class DidResolutionError(CivicError):
    """A DID or verification method cannot be resolved to a usable key.

    ``code`` says which check failed: ``malformed``, ``unsupported_method``, ``not_found``,
    ``deactivated``, ``unknown_method``, ``revoked``, ``not_valid_at_time``, ``wrong_purpose``,
    ``bad_answer`` (the node answered something that is not a valid document) or
    ``query_failed``.
    """

    reason = "did_resolution"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@runtime_checkable
class _HasResult(Protocol):
    """``civicledger.client.UnprovenResult``, matched by shape (services do not import client)."""

    @property
    def result(self) -> Any: ...


def did_key_document(did: str) -> dict[str, Any]:
    """The did:key method's document for an Ed25519 ``did:key``; pure, no ledger."""
    try:
        key = PublicKey.from_did(did)
    except CivicError as e:
        raise DidResolutionError("malformed", f"not an Ed25519 did:key: {did[:80]!r}") from e
    method_id = f"{key.did}#{key.did[len('did:key:') :]}"
    refs = [method_id]
    return {
        "@context": list(DID_CONTEXT),
        "id": key.did,
        "verificationMethod": [
            {
                "id": method_id,
                "type": "Multikey",
                "controller": key.did,
                "publicKeyMultibase": key.did[len("did:key:") :],
            }
        ],
        "authentication": refs,
        "assertionMethod": refs,
        "capabilityInvocation": refs,
        "capabilityDelegation": refs,
    }


class Resolver:
    """Resolves ``did:key`` and ``did:civic`` DIDs and their verification methods."""

    def __init__(self, query: QueryFn, *, contract: str = DID_CONTRACT) -> None:
        self._query = query
        self._contract = contract

    def resolve(self, did: str, at_time_ms: int | None = None) -> dict[str, Any]:
        """DID resolution: ``{"didDocument", "didDocumentMetadata"}``; raises if not found.

        A deactivated DID resolves (with ``deactivated: true`` and no keys), as DID Core wants.
        """
        if not isinstance(did, str):
            raise DidResolutionError("malformed", "a DID must be a string")
        if at_time_ms is not None and not 0 <= at_time_ms <= MAX_TIME_MS:
            raise DidResolutionError("malformed", f"time {at_time_ms} is out of range")
        if did.startswith("did:key:"):
            return {"didDocument": did_key_document(did), "didDocumentMetadata": {}}
        if not did.startswith(DID_CIVIC_PREFIX):
            raise DidResolutionError(
                "unsupported_method", f"only did:key and did:civic are resolved: {did[:80]!r}"
            )
        try:
            agency_of_did(did)
        except ValueError as e:
            raise DidResolutionError("malformed", str(e)) from e
        if at_time_ms is None:
            answer = self._ask("resolve", {"did": did})
        else:
            answer = self._ask("resolve_at", {"did": did, "time_ms": at_time_ms})
        if answer is None:
            when = "" if at_time_ms is None else f" at {at_time_ms}"
            raise DidResolutionError("not_found", f"{did} does not exist{when}")
        return _checked(did, answer)

    def verification_key(
        self,
        verification_method_id: str,
        at_time_ms: int | None = None,
        *,
        purpose: Purpose = "assertionMethod",
    ) -> PublicKey:
        """The public key of ``did#fragment``, valid for ``purpose`` at ``at_time_ms``.

        ``at_time_ms`` is when the signature was made (a credential's issuance time); ``None``
        means now. Raises ``DidResolutionError`` for an unknown DID, a deactivated one, an
        unknown fragment, a revoked key or a key not valid at that time.
        """
        did, fragment = _split(verification_method_id)
        resolution = self.resolve(did, at_time_ms)
        document = resolution["didDocument"]
        metadata = resolution["didDocumentMetadata"]
        if verification_method_id in metadata.get("revokedMethods", []):
            raise DidResolutionError(
                "revoked", f"{verification_method_id} was revoked; no signature by it is valid"
            )
        if metadata.get("deactivated") is True:
            raise DidResolutionError("deactivated", f"{did} is deactivated")
        method = next(
            (m for m in document["verificationMethod"] if m["id"] == verification_method_id),
            None,
        )
        if method is None:
            raise self._missing(did, fragment, verification_method_id, at_time_ms)
        if verification_method_id not in document.get(purpose, []):
            raise DidResolutionError(
                "wrong_purpose", f"{verification_method_id} is not an {purpose} method"
            )
        try:
            return PublicKey.from_did("did:key:" + method["publicKeyMultibase"])
        except CivicError as e:
            raise DidResolutionError(
                "bad_answer", f"{verification_method_id} has no valid Ed25519 key"
            ) from e

    def _missing(
        self, did: str, fragment: str, method_id: str, at_time_ms: int | None
    ) -> DidResolutionError:
        """Why a method is not in the document: never there, or not valid at that time."""
        if did.startswith(DID_CIVIC_PREFIX) and fragment.startswith("key-"):
            record = self._ask("verification_method", {"did": did, "method": "#" + fragment})
            if isinstance(record, dict):
                return DidResolutionError(
                    "not_valid_at_time",
                    f"{method_id} is valid from {record.get('validFromMs')} until "
                    f"{record.get('validUntilMs')}, not at {at_time_ms}",
                )
        return DidResolutionError("unknown_method", f"{did} has no verification method {method_id}")

    def _ask(self, method: str, args: dict[str, Any]) -> Any:
        try:
            answer = self._query(self._contract, method, args)
        except CivicError as e:
            raise DidResolutionError(
                "query_failed", f"{self._contract}.{method} failed: {e.reason}: {e.message}"
            ) from e
        return query_result(answer)


def query_result(answer: Any) -> Any:
    """A query's result: ``Chain.query``'s as is, ``CivicClient.query``'s ``.result``."""
    return answer.result if isinstance(answer, _HasResult) else answer


def _split(method_id: str) -> tuple[str, str]:
    if not isinstance(method_id, str) or method_id.count("#") != 1:
        raise DidResolutionError(
            "malformed", f"a verification method id is did#fragment: {str(method_id)[:80]!r}"
        )
    did, fragment = method_id.split("#")
    if not _FRAGMENT_RE.fullmatch(fragment):
        raise DidResolutionError("malformed", f"bad fragment in {method_id[:80]!r}")
    return did, fragment


def _checked(did: str, answer: Any) -> dict[str, Any]:
    """The node's answer, if it is shaped like a resolution of ``did`` (it is not proven)."""
    if not isinstance(answer, dict):
        raise DidResolutionError("bad_answer", f"the answer for {did} is not an object")
    document = answer.get("didDocument")
    metadata = answer.get("didDocumentMetadata")
    if not isinstance(document, dict) or not isinstance(metadata, dict):
        raise DidResolutionError("bad_answer", f"the answer for {did} is not a DID resolution")
    if document.get("id") != did:
        raise DidResolutionError("bad_answer", f"asked for {did}, got {document.get('id')!r}")
    if not isinstance(document.get("verificationMethod"), list):
        raise DidResolutionError("bad_answer", f"the document of {did} lists no methods")
    if not isinstance(metadata.get("revokedMethods", []), list):
        raise DidResolutionError("bad_answer", f"the revoked methods of {did} are not a list")
    if not isinstance(metadata.get("deactivated", False), bool):
        raise DidResolutionError("bad_answer", f"whether {did} is deactivated is not a boolean")
    return answer
