"""W3C Data Integrity proofs with the ``eddsa-jcs-2022`` cryptosuite (vc-di-eddsa, section 3.3).

The signed bytes are ``SHA-256(JCS(proofConfig)) || SHA-256(JCS(unsecuredDocument))`` and the
signature is Ed25519, carried as ``proofValue`` = multibase base58btc (``z...``). Pure: documents
are JSON dicts, keys come from ``civicledger.crypto.keys``, time is passed in.

Invariants:

- The proof configuration carries the document's ``@context`` (the spec requires it; ACA-Py omits
  it and so cannot interoperate). On verification, a proof ``@context`` must be a prefix of the
  document's ``@context``, and the document is hashed with the proof's ``@context``, exactly as
  the spec's verification algorithm says.
- Verification raises ``CredentialError`` (reason in ``CredentialReason``) and returns what it
  established (the key and its controller); there is no boolean verdict.
- A ``did:key`` verification method (``did:key:z6Mk...#z6Mk...``) is resolved here; any other is
  resolved by the caller's ``Resolver`` (the DID registry). Without one it is refused.
- Only a single proof is supported; a proof set (a list) is refused rather than half-checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import base58

from civicledger.crypto.encoding import canonical_json, sha256
from civicledger.crypto.keys import SIGNATURE_SIZE, PrivateKey, PublicKey
from civicledger.errors import CivicError, EncodingError, SignatureError
from civicledger.services.identity.vc import (
    CredentialError,
    CredentialReason,
    check_credential,
    check_presentation,
    format_datetime,
    issuer_id,
    parse_datetime,
    require_aware,
)

__all__ = [
    "CRYPTOSUITE",
    "PROOF_TYPE",
    "Resolver",
    "VerifiedPresentation",
    "VerifiedProof",
    "add_proof",
    "hash_data",
    "issue_credential",
    "resolve_did_key",
    "sign_presentation",
    "verify_credential",
    "verify_presentation",
    "verify_proof",
]

CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_TYPE = "DataIntegrityProof"
ASSERTION_METHOD = "assertionMethod"
AUTHENTICATION = "authentication"

Resolver = Callable[[str], PublicKey]
"""Maps a verification method id (``did:web:...#key-1``) to its Ed25519 key, or raises."""

# A 64-byte signature is at most 88 base58 characters; the bound keeps a hostile string away
# from base58's quadratic decoder.
_PROOF_VALUE_PATTERN = re.compile(r"z([1-9A-HJ-NP-Za-km-z]{1,90})")
_DID_KEY_VM_PATTERN = re.compile(
    r"(did:key:(z[1-9A-HJ-NP-Za-km-z]{1,64}))#(z[1-9A-HJ-NP-Za-km-z]+)"
)


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a verified proof establishes."""

    verification_method: str
    """The verification method id the proof names, e.g. ``did:key:z6Mk...#z6Mk...``."""
    controller: str
    """The method id without its fragment: the DID (or URL) that controls the key."""
    public_key: PublicKey
    """The key the signature verified under."""
    proof_purpose: str
    """``assertionMethod`` for credentials, ``authentication`` for presentations."""
    created: datetime | None
    """The proof's ``created`` time, if it had one."""


@dataclass(frozen=True, slots=True)
class VerifiedPresentation:
    """A presentation whose holder proof and every credential proof verified."""

    holder: VerifiedProof
    """The holder's ``authentication`` proof over the presentation."""
    credentials: tuple[VerifiedProof, ...]
    """The issuer proof of each embedded credential, in order."""


def _malformed(message: str) -> CredentialError:
    return CredentialError(CredentialReason.MALFORMED_PROOF, message)


def hash_data(proof_config: Mapping[str, Any], document: Mapping[str, Any]) -> bytes:
    """The 64 bytes eddsa-jcs-2022 signs: SHA-256 of each JCS serialisation, config first."""
    try:
        return sha256(canonical_json(dict(proof_config))) + sha256(canonical_json(dict(document)))
    except EncodingError as e:
        raise CredentialError(
            CredentialReason.MALFORMED_CREDENTIAL, f"document cannot be canonicalised: {e}"
        ) from e


def resolve_did_key(verification_method: str) -> PublicKey:
    """The key of a ``did:key:<mb>#<mb>`` verification method; the fragment must repeat the key."""
    match = _DID_KEY_VM_PATTERN.fullmatch(verification_method)
    if match is None or match.group(2) != match.group(3):
        raise CredentialError(
            CredentialReason.UNRESOLVABLE_KEY,
            f"not a did:key verification method: {verification_method[:100]!r}",
        )
    try:
        return PublicKey.from_did(match.group(1))
    except EncodingError as e:
        raise CredentialError(CredentialReason.UNRESOLVABLE_KEY, str(e)) from e


def _resolve(verification_method: str, resolver: Resolver | None) -> PublicKey:
    if verification_method.startswith("did:key:"):
        return resolve_did_key(verification_method)
    if resolver is None:
        raise CredentialError(
            CredentialReason.UNRESOLVABLE_KEY,
            f"no resolver for verification method {verification_method[:100]!r}",
        )
    try:
        return resolver(verification_method)
    except CredentialError:
        raise
    except CivicError as e:
        raise CredentialError(CredentialReason.UNRESOLVABLE_KEY, str(e)) from e


def _encode_proof_value(signature: bytes) -> str:
    return "z" + base58.b58encode(signature).decode("ascii")


def _decode_proof_value(value: object) -> bytes:
    if not isinstance(value, str):
        raise _malformed("proofValue must be a string")
    match = _PROOF_VALUE_PATTERN.fullmatch(value)
    if match is None:
        raise _malformed(f"proofValue is not multibase base58btc: {value[:40]!r}")
    signature = bytes(base58.b58decode(match.group(1)))
    if len(signature) != SIGNATURE_SIZE or _encode_proof_value(signature) != value:
        raise _malformed("proofValue is not a canonical 64-byte Ed25519 signature")
    return signature


def add_proof(
    document: Mapping[str, Any],
    key: PrivateKey,
    *,
    verification_method: str,
    created: datetime,
    proof_purpose: str = ASSERTION_METHOD,
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """A copy of ``document`` with an eddsa-jcs-2022 ``proof`` by ``key`` (vc-di-eddsa 3.3.1)."""
    if "proof" in document:
        raise _malformed("document already has a proof; proof sets are not supported")
    config: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": format_datetime(created),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if challenge is not None:
        config["challenge"] = challenge
    if domain is not None:
        config["domain"] = domain
    if "@context" in document:
        config["@context"] = document["@context"]
    unsecured = dict(document)
    signature = key.sign(hash_data(config, unsecured))
    return {**unsecured, "proof": {**config, "proofValue": _encode_proof_value(signature)}}


def _check_proof_options(
    proof: Mapping[str, Any],
    *,
    proof_purpose: str,
    now: datetime,
    challenge: str | None,
    domain: str | None,
) -> tuple[str, datetime | None]:
    """The proof's verification method and creation time, once its options are acceptable."""
    if proof.get("type") != PROOF_TYPE:
        raise CredentialError(
            CredentialReason.UNSUPPORTED_CRYPTOSUITE, f"proof type is not {PROOF_TYPE}"
        )
    if proof.get("cryptosuite") != CRYPTOSUITE:
        raise CredentialError(
            CredentialReason.UNSUPPORTED_CRYPTOSUITE,
            f"cryptosuite {str(proof.get('cryptosuite'))[:40]!r} is not {CRYPTOSUITE}",
        )
    if proof.get("proofPurpose") != proof_purpose:
        raise CredentialError(
            CredentialReason.WRONG_PROOF_PURPOSE, f"proof purpose is not {proof_purpose}"
        )
    method = proof.get("verificationMethod")
    if not isinstance(method, str) or not method:
        raise _malformed("verificationMethod must be a string")
    if proof.get("challenge") != challenge:
        raise CredentialError(CredentialReason.WRONG_CHALLENGE, "proof challenge does not match")
    if proof.get("domain") != domain:
        raise CredentialError(CredentialReason.WRONG_DOMAIN, "proof domain does not match")
    created = None
    if "created" in proof:
        created = parse_datetime(proof["created"], field="proof.created")
        if created > now:
            raise CredentialError(CredentialReason.NOT_YET_VALID, "proof created in the future")
    if "expires" in proof and parse_datetime(proof["expires"], field="proof.expires") < now:
        raise CredentialError(CredentialReason.EXPIRED, "proof has expired")
    return method, created


def verify_proof(
    document: Mapping[str, Any],
    *,
    proof_purpose: str,
    now: datetime,
    resolver: Resolver | None = None,
    challenge: str | None = None,
    domain: str | None = None,
) -> VerifiedProof:
    """Verify ``document``'s eddsa-jcs-2022 proof (vc-di-eddsa 3.3.2); raise ``CredentialError``.

    ``challenge`` and ``domain``, when given, must equal the proof's; a proof that carries them
    when the caller expects none is refused too, so a presentation made for one verifier is not
    accepted where nobody asked for it.
    """
    require_aware(now)
    proof = document.get("proof")
    if isinstance(proof, list):
        raise _malformed("proof sets are not supported")
    if not isinstance(proof, Mapping):
        raise _malformed("document has no proof object")
    method, created = _check_proof_options(
        proof, proof_purpose=proof_purpose, now=now, challenge=challenge, domain=domain
    )
    signature = _decode_proof_value(proof.get("proofValue"))

    config = {name: value for name, value in proof.items() if name != "proofValue"}
    unsecured = {name: value for name, value in document.items() if name != "proof"}
    if "@context" in config:
        proof_context = config["@context"]
        document_context = unsecured.get("@context")
        if not isinstance(proof_context, list) or not isinstance(document_context, list):
            raise _malformed("@context of proof and document must be lists")
        if document_context[: len(proof_context)] != proof_context:
            raise _malformed("document @context does not start with the proof's @context")
        unsecured["@context"] = proof_context

    public_key = _resolve(method, resolver)
    try:
        public_key.verify(hash_data(config, unsecured), signature)
    except SignatureError as e:
        raise CredentialError(
            CredentialReason.BAD_PROOF_SIGNATURE, f"proof signature does not verify for {method}"
        ) from e
    return VerifiedProof(
        verification_method=method,
        controller=method.split("#", 1)[0],
        public_key=public_key,
        proof_purpose=proof_purpose,
        created=created,
    )


def issue_credential(
    credential: Mapping[str, Any],
    key: PrivateKey,
    *,
    verification_method: str,
    now: datetime,
) -> dict[str, Any]:
    """Check ``credential`` is a VC 2.0 credential not yet expired at ``now`` and secure it.

    Its ``validFrom`` may lie in the future (a visitor pass for tomorrow's appointment).
    """
    check_credential(credential, now=now, allow_not_yet_valid=True)
    if verification_method.split("#", 1)[0] != issuer_id(credential):
        raise CredentialError(
            CredentialReason.ISSUER_MISMATCH, "verification method is not controlled by the issuer"
        )
    return add_proof(credential, key, verification_method=verification_method, created=now)


def verify_credential(
    credential: Mapping[str, Any],
    *,
    now: datetime,
    resolver: Resolver | None = None,
) -> VerifiedProof:
    """Verify a secured VC 2.0 credential at ``now``: shape, validity period, issuer and proof.

    The proof's verification method must belong to the issuer (its id before ``#`` equals the
    issuer's id); a key of anyone else, however valid, does not make a credential.
    """
    check_credential(credential, now=now)
    verified = verify_proof(credential, proof_purpose=ASSERTION_METHOD, now=now, resolver=resolver)
    if verified.controller != issuer_id(credential):
        raise CredentialError(
            CredentialReason.ISSUER_MISMATCH,
            f"proof by {verified.controller[:100]!r}, not by the issuer",
        )
    return verified


def sign_presentation(
    presentation: Mapping[str, Any],
    key: PrivateKey,
    *,
    verification_method: str,
    now: datetime,
    challenge: str,
    domain: str,
) -> dict[str, Any]:
    """Secure a VC 2.0 presentation with the holder's ``authentication`` proof."""
    check_presentation(presentation)
    return add_proof(
        presentation,
        key,
        verification_method=verification_method,
        created=now,
        proof_purpose=AUTHENTICATION,
        challenge=challenge,
        domain=domain,
    )


def verify_presentation(
    presentation: Mapping[str, Any],
    *,
    now: datetime,
    challenge: str,
    domain: str,
    resolver: Resolver | None = None,
) -> VerifiedPresentation:
    """Verify the holder's proof (with the verifier's ``challenge`` and ``domain``) and each
    embedded credential. If the presentation names a ``holder``, the proof must be theirs."""
    check_presentation(presentation)
    holder = verify_proof(
        presentation,
        proof_purpose=AUTHENTICATION,
        now=now,
        resolver=resolver,
        challenge=challenge,
        domain=domain,
    )
    named = presentation.get("holder")
    if isinstance(named, Mapping):
        named = named.get("id")
    if named is not None and named != holder.controller:
        raise CredentialError(
            CredentialReason.ISSUER_MISMATCH, "presentation proof is not by its holder"
        )
    credentials = []
    for credential in presentation.get("verifiableCredential", []):
        if not isinstance(credential, Mapping):
            raise CredentialError(
                CredentialReason.MALFORMED_CREDENTIAL, "an embedded credential must be an object"
            )
        credentials.append(verify_credential(credential, now=now, resolver=resolver))
    return VerifiedPresentation(holder=holder, credentials=tuple(credentials))
