"""SD-JWT VC (RFC 9901 SD-JWT with the IETF SD-JWT VC profile): issue, present, verify.

Built on the OpenWallet Foundation ``sd-jwt`` package for disclosures, digests, the issuer JWS
and claim reassembly, with what it leaves out added here:

- it checks no time claims: ``exp``, ``nbf`` and ``iat`` are checked here against ``now``;
- its holder stamps the Key Binding JWT with the clock and its verifier checks a KB-JWT only
  as ES256: the KB-JWT is made and checked here (EdDSA, ``iat`` within ``max_kb_age``);
- it silently ignores a disclosure no digest refers to (a tampered one): refused here;
- it does not pin the issuer JWS algorithm or ``typ``: both are pinned here.

Pure: no clock, no network. Salts come from the OS CSPRNG (inside the library) at issuance.

Invariants:

- ``verify_presentation`` returns only claims that are always visible or were disclosed and
  whose digests the issuer signed; every failure raises ``CredentialError`` with a
  ``CredentialReason``.
- Only Ed25519 is accepted, for the issuer and for the holder's key binding.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jwcrypto.common import JWException  # type: ignore[import-untyped]
from jwcrypto.jwk import JWK  # type: ignore[import-untyped]
from jwcrypto.jws import JWS, InvalidJWSSignature  # type: ignore[import-untyped]
from sd_jwt.common import SDObj  # type: ignore[import-untyped]
from sd_jwt.holder import SDJWTHolder  # type: ignore[import-untyped]
from sd_jwt.issuer import SDJWTIssuer  # type: ignore[import-untyped]
from sd_jwt.verifier import SDJWTVerifier  # type: ignore[import-untyped]

from civicledger.crypto.encoding import b64url, from_b64url, sha256
from civicledger.crypto.keys import PrivateKey, PublicKey
from civicledger.errors import CivicError, EncodingError
from civicledger.services.identity.vc import CredentialError, CredentialReason, require_aware

__all__ = [
    "KB_JWT_TYPE",
    "SD_JWT_VC_TYPE",
    "IssuerKeyResolver",
    "VerifiedSdJwtVc",
    "disclosure_digest",
    "issue_sd_jwt_vc",
    "jwk_from_private_key",
    "jwk_from_public_key",
    "present",
    "public_key_from_jwk",
    "verify_presentation",
]

SD_JWT_VC_TYPE = "dc+sd-jwt"
"""The ``typ`` of an SD-JWT VC; ``vc+sd-jwt`` (earlier drafts) is accepted on verification."""
KB_JWT_TYPE = "kb+jwt"
_ACCEPTED_TYPES = frozenset({SD_JWT_VC_TYPE, "vc+sd-jwt"})
_SIGNING_ALG = "EdDSA"
_ACCEPTED_ALGS = frozenset({"EdDSA", "Ed25519"})
_RESERVED_CLAIMS = frozenset({"iss", "iat", "exp", "nbf", "vct", "cnf", "status", "_sd", "_sd_alg"})
_SEPARATOR = "~"

IssuerKeyResolver = Callable[[str], PublicKey]
"""Maps an ``iss`` value to the issuer's Ed25519 key, or raises (an unknown issuer is refused)."""

# Everything the sd-jwt and jwcrypto packages raise on malformed input.
_LIBRARY_ERRORS = (JWException, ValueError, KeyError, TypeError, IndexError, AttributeError)


@dataclass(frozen=True, slots=True)
class VerifiedSdJwtVc:
    """What a verified SD-JWT VC presentation establishes."""

    issuer: str
    """The ``iss`` claim, whose key signed the SD-JWT."""
    vct: str
    """The credential type (``vct``)."""
    claims: Mapping[str, Any]
    """Always-visible and disclosed claims only (``_sd``, ``_sd_alg`` removed)."""
    holder: PublicKey | None
    """The ``cnf`` key that signed the Key Binding JWT; ``None`` if binding was not required."""
    issued_at: int
    """``iat`` of the SD-JWT, seconds since the epoch."""


def _error(reason: CredentialReason, message: str) -> CredentialError:
    return CredentialError(reason, message)


def _epoch(moment: datetime) -> int:
    require_aware(moment)
    return int(moment.timestamp())


def jwk_from_public_key(key: PublicKey) -> JWK:
    """The OKP Ed25519 JWK (RFC 8037) of ``key``."""
    return JWK(kty="OKP", crv="Ed25519", x=b64url(key.raw))


def jwk_from_private_key(key: PrivateKey) -> JWK:
    """The private OKP Ed25519 JWK (RFC 8037) of ``key``: ``d`` is the RFC 8032 seed."""
    return JWK(kty="OKP", crv="Ed25519", x=b64url(key.public.raw), d=b64url(key.seed))


def public_key_from_jwk(jwk: object) -> PublicKey:
    """The Ed25519 key of a public OKP JWK given as a JSON object; anything else is refused."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise _error(CredentialReason.UNSUPPORTED_ALGORITHM, "key is not an OKP Ed25519 JWK")
    if "d" in jwk:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, "a public JWK must not carry d")
    x = jwk.get("x")
    try:
        return PublicKey(from_b64url(x if isinstance(x, str) else ""))
    except EncodingError as e:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"bad Ed25519 JWK: {e}") from e


def disclosure_digest(disclosure: str) -> str:
    """base64url(SHA-256(ASCII of the disclosure string)), RFC 9901 section 4.2.3."""
    if not disclosure.isascii():
        raise _error(CredentialReason.MALFORMED_DISCLOSURE, "a disclosure is ASCII base64url")
    return b64url(sha256(disclosure.encode("ascii")))


def issue_sd_jwt_vc(
    claims: Mapping[str, Any],
    *,
    issuer_key: PrivateKey,
    issuer: str,
    vct: str,
    holder: PublicKey,
    disclosable: Collection[str],
    issued_at: datetime,
    expires_at: datetime,
    not_before: datetime | None = None,
) -> str:
    """An SD-JWT VC (compact, ending in ``~``) whose top-level ``disclosable`` claims are hidden
    behind salted digests; ``iss``, ``vct``, ``iat``, ``exp``, ``nbf`` and ``cnf`` stay visible."""
    reserved = _RESERVED_CLAIMS.intersection(claims)
    if reserved:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"reserved claims: {sorted(reserved)}")
    missing = set(disclosable) - set(claims)
    if missing:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"no such claims: {sorted(missing)}")
    if expires_at <= issued_at:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, "expires_at must follow issued_at")
    user_claims: dict[Any, Any] = {
        "iss": issuer,
        "vct": vct,
        "iat": _epoch(issued_at),
        "exp": _epoch(expires_at),
    }
    if not_before is not None:
        user_claims["nbf"] = _epoch(not_before)
    for name, value in claims.items():
        user_claims[SDObj(name) if name in disclosable else name] = value
    try:
        issued = SDJWTIssuer(
            user_claims,
            jwk_from_private_key(issuer_key),
            holder_key=jwk_from_public_key(holder),
            sign_alg=_SIGNING_ALG,
            extra_header_parameters={"typ": SD_JWT_VC_TYPE},
        )
    except _LIBRARY_ERRORS as e:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"cannot issue: {e}") from e
    return str(issued.sd_jwt_issuance)


def present(
    sd_jwt: str,
    *,
    disclose: Collection[str],
    holder_key: PrivateKey,
    audience: str,
    nonce: str,
    now: datetime,
) -> str:
    """The holder's presentation: only the ``disclose`` claims, then a KB-JWT over them.

    The KB-JWT binds ``audience`` (the verifier), ``nonce`` (its challenge), ``iat`` = ``now``
    and ``sd_hash`` (the digest of everything before it), signed by ``holder_key``.
    """
    try:
        holder = SDJWTHolder(sd_jwt)
        holder.create_presentation(dict.fromkeys(disclose, True))
    except _LIBRARY_ERRORS as e:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"not an SD-JWT: {e}") from e
    without_kb = str(holder.sd_jwt_presentation)
    if not without_kb.endswith(_SEPARATOR):
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, "SD-JWT must end with '~'")
    payload = {
        "aud": audience,
        "nonce": nonce,
        "iat": _epoch(now),
        "sd_hash": disclosure_digest(without_kb),
    }
    kb = JWS(payload=json.dumps(payload))
    kb.add_signature(
        jwk_from_private_key(holder_key),
        alg=_SIGNING_ALG,
        protected=json.dumps({"alg": _SIGNING_ALG, "typ": KB_JWT_TYPE}),
    )
    return without_kb + str(kb.serialize(compact=True))


def _decode_segment(segment: str, what: str) -> Any:
    try:
        value = json.loads(from_b64url(segment))
    except (EncodingError, ValueError) as e:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"{what} is not JSON") from e
    return value


def _check_header(jwt: str, expected_types: frozenset[str], what: str) -> None:
    parts = jwt.split(".")
    if len(parts) != 3:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"{what} is not a compact JWS")
    header = _decode_segment(parts[0], f"{what} header")
    if not isinstance(header, dict):
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"{what} header is not an object")
    if header.get("alg") not in _ACCEPTED_ALGS:
        raise _error(CredentialReason.UNSUPPORTED_ALGORITHM, f"{what} alg must be EdDSA (Ed25519)")
    if header.get("typ") not in expected_types:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"{what} typ is not accepted")


def _parse_disclosure(disclosure: str) -> list[Any]:
    try:
        value = json.loads(from_b64url(disclosure))
    except (EncodingError, ValueError) as e:
        raise _error(
            CredentialReason.MALFORMED_DISCLOSURE, "disclosure is not base64url JSON"
        ) from e
    if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[0], str):
        raise _error(
            CredentialReason.MALFORMED_DISCLOSURE, "disclosure is not [salt, (name,) value]"
        )
    if len(value) == 3 and (not isinstance(value[1], str) or value[1] in ("_sd", "...")):
        raise _error(CredentialReason.MALFORMED_DISCLOSURE, "disclosure claim name is invalid")
    return value


def _collect_digests(value: Any, into: set[str]) -> None:
    """Every digest a payload (or disclosed value) refers to, in ``_sd`` or ``{"...": d}``."""
    if isinstance(value, dict):
        sd = value.get("_sd", [])
        if isinstance(sd, list):
            into.update(d for d in sd if isinstance(d, str))
        if len(value) == 1 and isinstance(value.get("..."), str):
            into.add(value["..."])
        for item in value.values():
            _collect_digests(item, into)
    elif isinstance(value, list):
        for item in value:
            _collect_digests(item, into)


def _check_times(payload: Mapping[str, Any], now: int, leeway: int) -> int:
    for name in ("iat", "exp", "nbf"):
        if name in payload and (type(payload[name]) is not int):
            raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"{name} must be an integer")
    if "iat" not in payload or "exp" not in payload:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, "iat and exp are required")
    iat: int = payload["iat"]
    if iat > now + leeway:
        raise _error(CredentialReason.NOT_YET_VALID, "SD-JWT issued in the future")
    if "nbf" in payload and payload["nbf"] > now + leeway:
        raise _error(CredentialReason.NOT_YET_VALID, "SD-JWT is not valid yet (nbf)")
    if payload["exp"] <= now - leeway:
        raise _error(CredentialReason.EXPIRED, "SD-JWT has expired")
    return iat


def _verify_key_binding(
    kb_jwt: str,
    without_kb: str,
    cnf: object,
    *,
    audience: str,
    nonce: str,
    now: int,
    leeway: int,
    max_age: int,
) -> PublicKey:
    if not isinstance(cnf, Mapping) or "jwk" not in cnf:
        raise _error(CredentialReason.BAD_KEY_BINDING, "SD-JWT has no cnf.jwk holder key")
    holder = public_key_from_jwk(cnf["jwk"])
    _check_header(kb_jwt, frozenset({KB_JWT_TYPE}), "KB-JWT")
    jws = JWS()
    try:
        jws.deserialize(kb_jwt)
        jws.verify(jwk_from_public_key(holder))
    except InvalidJWSSignature as e:
        raise _error(CredentialReason.BAD_KEY_BINDING, "KB-JWT signature does not verify") from e
    except _LIBRARY_ERRORS as e:
        raise _error(CredentialReason.BAD_KEY_BINDING, f"KB-JWT is malformed: {e}") from e
    payload = _decode_segment(kb_jwt.split(".")[1], "KB-JWT payload")
    if not isinstance(payload, dict):
        raise _error(CredentialReason.BAD_KEY_BINDING, "KB-JWT payload is not an object")
    if payload.get("aud") != audience:
        raise _error(CredentialReason.WRONG_AUDIENCE, "KB-JWT aud is not this verifier")
    if payload.get("nonce") != nonce:
        raise _error(CredentialReason.WRONG_NONCE, "KB-JWT nonce is not this verifier's")
    iat = payload.get("iat")
    if type(iat) is not int:
        raise _error(CredentialReason.BAD_KEY_BINDING, "KB-JWT iat must be an integer")
    if iat > now + leeway or iat < now - max_age:
        raise _error(CredentialReason.STALE_KEY_BINDING, "KB-JWT iat is outside the window")
    if payload.get("sd_hash") != disclosure_digest(without_kb):
        raise _error(
            CredentialReason.BAD_KEY_BINDING, "KB-JWT sd_hash does not match the presentation"
        )
    return holder


def _parse_disclosures(disclosures: list[str]) -> tuple[list[str], list[list[Any]]]:
    digests = [disclosure_digest(d) for d in disclosures]
    if len(set(digests)) != len(digests):
        raise _error(CredentialReason.MALFORMED_DISCLOSURE, "a disclosure is repeated")
    return digests, [_parse_disclosure(d) for d in disclosures]


def _verify_issuer_jwt(
    issuer_jwt: str, without_kb: str, issuer_key: IssuerKeyResolver
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The issuer-signed payload and the reassembled claims, once the issuer's JWS verifies."""
    _check_header(issuer_jwt, _ACCEPTED_TYPES, "SD-JWT")
    unverified = _decode_segment(issuer_jwt.split(".")[1], "SD-JWT payload")
    if not isinstance(unverified, dict) or not isinstance(unverified.get("iss"), str):
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, "SD-JWT payload has no iss")
    try:
        issuer_jwk = jwk_from_public_key(issuer_key(unverified["iss"]))
    except CredentialError:
        raise
    except CivicError as e:
        raise _error(CredentialReason.UNRESOLVABLE_KEY, str(e)) from e
    try:
        verifier = SDJWTVerifier(without_kb, lambda _iss, _header: issuer_jwk)
        claims = verifier.get_verified_payload()
    except InvalidJWSSignature as e:
        raise _error(
            CredentialReason.BAD_PROOF_SIGNATURE, "SD-JWT signature does not verify"
        ) from e
    except _LIBRARY_ERRORS as e:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"SD-JWT rejected: {e}") from e
    # The library verified the issuer JWS above, so this payload is the signed one.
    return unverified, dict(claims)


def _check_referenced(
    payload: Mapping[str, Any], digests: list[str], parsed: list[list[Any]]
) -> None:
    """Every presented disclosure must be one the issuer signed a digest of (RFC 9901 7.1)."""
    referenced: set[str] = set()
    _collect_digests(payload, referenced)
    for disclosure in parsed:
        _collect_digests(disclosure[-1], referenced)
    for digest in digests:
        if digest not in referenced:
            raise _error(
                CredentialReason.UNREFERENCED_DISCLOSURE,
                "a disclosure is not referenced by the issuer's digests (altered or foreign)",
            )


def verify_presentation(
    presentation: str,
    *,
    issuer_key: IssuerKeyResolver,
    now: datetime,
    audience: str | None,
    nonce: str | None,
    require_key_binding: bool = True,
    expected_vct: str | None = None,
    max_kb_age: timedelta = timedelta(minutes=5),
    leeway: timedelta = timedelta(seconds=30),
) -> VerifiedSdJwtVc:
    """Verify an SD-JWT VC presentation at ``now`` (RFC 9901 section 7.1 and 7.3).

    The issuer's key comes from ``issuer_key(iss)``. With ``require_key_binding`` (the default)
    a KB-JWT signed by the ``cnf`` key, for ``audience`` and ``nonce``, issued within
    ``max_kb_age`` of ``now``, is required; a KB-JWT that is present is always checked.
    """
    now_s = _epoch(now)
    leeway_s = int(leeway.total_seconds())
    if not isinstance(presentation, str) or _SEPARATOR not in presentation:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, "not a compact SD-JWT")
    if not presentation.isascii():
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, "an SD-JWT is ASCII")
    issuer_jwt, *disclosures, kb_jwt = presentation.split(_SEPARATOR)
    without_kb = presentation[: len(presentation) - len(kb_jwt)]
    digests, parsed = _parse_disclosures(disclosures)
    payload, claims = _verify_issuer_jwt(issuer_jwt, without_kb, issuer_key)
    _check_referenced(payload, digests, parsed)
    iat = _check_times(payload, now_s, leeway_s)
    vct = payload.get("vct")
    if not isinstance(vct, str) or not vct:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, "vct is required")
    if expected_vct is not None and vct != expected_vct:
        raise _error(CredentialReason.MALFORMED_CREDENTIAL, f"vct is not {expected_vct}")

    holder = None
    if kb_jwt or require_key_binding:
        if not kb_jwt:
            raise _error(CredentialReason.MISSING_KEY_BINDING, "presentation has no KB-JWT")
        if audience is None or nonce is None:
            raise ValueError("audience and nonce are needed to check key binding")
        holder = _verify_key_binding(
            kb_jwt,
            without_kb,
            payload.get("cnf"),
            audience=audience,
            nonce=nonce,
            now=now_s,
            leeway=leeway_s,
            max_age=int(max_kb_age.total_seconds()),
        )
    return VerifiedSdJwtVc(
        issuer=payload["iss"], vct=vct, claims=claims, holder=holder, issued_at=iat
    )
