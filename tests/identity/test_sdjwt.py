"""SD-JWT VC: the spec's disclosure vectors, a resident card, the attacks a verifier must stop."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jwcrypto.jwk import JWK  # type: ignore[import-untyped]
from jwcrypto.jws import JWS  # type: ignore[import-untyped]

from civicledger.crypto.encoding import b64url, from_b64url
from civicledger.crypto.keys import PrivateKey, PublicKey
from civicledger.services.identity.sdjwt import (
    disclosure_digest,
    issue_sd_jwt_vc,
    jwk_from_private_key,
    jwk_from_public_key,
    present,
    public_key_from_jwk,
    verify_presentation,
)
from civicledger.services.identity.vc import CredentialError, CredentialReason

VECTORS = json.loads((Path(__file__).parent / "vectors" / "sd-jwt-disclosures.json").read_text())

ISSUER = PrivateKey.from_seed(b"\x07" * 32)
HOLDER = PrivateKey.from_seed(b"\x08" * 32)
ISS = "did:web:seoul.go.kr"
VCT = "https://seoul.go.kr/credentials/resident-card"
ISSUED = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
NOW = ISSUED + timedelta(days=30)
AUD = "https://library.mapo.go.kr"
NONCE = "n-4f1c2a"
CLAIMS = {
    "given_name": "Ji-woo",
    "birthdate": "2001-03-14",
    "address": {"street_address": "Worldcup-ro 212", "locality": "Mapo-gu, Seoul"},
    "district": "mapo-gu",
    "age_over_19": True,
}
DISCLOSABLE = ["birthdate", "address", "district", "age_over_19", "given_name"]


def _issuers(iss: str) -> PublicKey:
    if iss != ISS:
        raise CredentialError(CredentialReason.UNRESOLVABLE_KEY, f"unknown issuer {iss}")
    return ISSUER.public


def _decode(disclosure: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(disclosure + "=" * (-len(disclosure) % 4)))


# --- spec vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["digests"], ids=lambda c: c["sha-256"][:8])
def test_spec_disclosure_digests(case: dict[str, str]) -> None:
    assert disclosure_digest(case["disclosure"]) == case["sha-256"]


@pytest.mark.parametrize("case", VECTORS["encodings"], ids=lambda c: c["disclosure"][:12])
def test_spec_disclosure_encodings(case: dict[str, Any]) -> None:
    # The spec's Python-style JSON (", " separators, UTF-8) gives exactly its disclosure string.
    encoded = b64url(json.dumps(case["array"], ensure_ascii=False).encode("utf-8"))
    assert encoded == case["disclosure"]
    assert _decode(case["disclosure"]) == case["array"]


def test_spec_equivalent_encodings_decode_alike_but_digest_differently() -> None:
    same = VECTORS["equivalent_encodings"]
    digests = {disclosure_digest(d) for d in same["disclosures"]}
    assert len(digests) == len(same["disclosures"])
    for disclosure in same["disclosures"]:
        assert _decode(disclosure) == same["array"]


# --- keys ------------------------------------------------------------------------------------


def test_jwk_round_trip() -> None:
    public = jwk_from_public_key(HOLDER.public).export_public(as_dict=True)
    assert public == {"kty": "OKP", "crv": "Ed25519", "x": b64url(HOLDER.public.raw)}
    assert public_key_from_jwk(public) == HOLDER.public
    private = jwk_from_private_key(HOLDER).export_private(as_dict=True)
    assert from_b64url(private["d"]) == HOLDER.seed


@pytest.mark.parametrize(
    ("jwk", "reason"),
    [
        ({"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}, "unsupported_algorithm"),
        ({"kty": "OKP", "crv": "X25519", "x": b64url(b"\x01" * 32)}, "unsupported_algorithm"),
        ({"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x01" * 31)}, "malformed_credential"),
        (
            {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x01" * 32), "d": "AA"},
            "malformed_credential",
        ),
        ("not a jwk", "unsupported_algorithm"),
    ],
)
def test_bad_holder_jwks(jwk: Any, reason: str) -> None:
    with pytest.raises(CredentialError) as info:
        public_key_from_jwk(jwk)
    assert info.value.reason == reason


# --- the resident card -----------------------------------------------------------------------


def _issue(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "issuer_key": ISSUER,
        "issuer": ISS,
        "vct": VCT,
        "holder": HOLDER.public,
        "disclosable": DISCLOSABLE,
        "issued_at": ISSUED,
        "expires_at": ISSUED + timedelta(days=365),
    }
    args.update(overrides)
    return issue_sd_jwt_vc(CLAIMS, **args)


def _present(sd_jwt: str, disclose: list[str] | None = None, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "disclose": ["age_over_19", "district"] if disclose is None else disclose,
        "holder_key": HOLDER,
        "audience": AUD,
        "nonce": NONCE,
        "now": NOW,
    }
    args.update(overrides)
    return present(sd_jwt, **args)


def _verify(presentation: str, **overrides: Any) -> Any:
    args: dict[str, Any] = {"issuer_key": _issuers, "now": NOW, "audience": AUD, "nonce": NONCE}
    args.update(overrides)
    return verify_presentation(presentation, **args)


SD_JWT = _issue()


def test_issued_payload_hides_every_disclosable_claim() -> None:
    jwt = SD_JWT.split("~")[0]
    header = json.loads(from_b64url(jwt.split(".")[0]))
    payload = json.loads(from_b64url(jwt.split(".")[1]))
    assert header == {"alg": "EdDSA", "typ": "dc+sd-jwt"}
    assert payload["iss"] == ISS
    assert payload["vct"] == VCT
    assert payload["cnf"] == {
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64url(HOLDER.public.raw)}
    }
    assert payload["_sd_alg"] == "sha-256"
    assert len(payload["_sd"]) == len(DISCLOSABLE)
    for name in DISCLOSABLE:
        assert name not in payload
    assert "2001-03-14" not in json.dumps(payload)


def test_age_and_district_only() -> None:
    presentation = _present(SD_JWT)
    shown = [_decode(d)[1] for d in presentation.split("~")[1:-1]]
    assert sorted(shown) == ["age_over_19", "district"]
    assert "2001-03-14" not in presentation
    assert "Worldcup" not in str([_decode(d) for d in presentation.split("~")[1:-1]])
    verified = _verify(presentation)
    assert verified.claims["age_over_19"] is True
    assert verified.claims["district"] == "mapo-gu"
    for hidden in ("birthdate", "address", "given_name"):
        assert hidden not in verified.claims
    assert verified.holder == HOLDER.public
    assert verified.issuer == ISS
    assert verified.vct == VCT


def test_full_disclosure_reassembles_the_claims() -> None:
    verified = _verify(_present(SD_JWT, DISCLOSABLE))
    for name, value in CLAIMS.items():
        assert verified.claims[name] == value


def _replace_disclosure(presentation: str, name: str, value: Any) -> str:
    parts = presentation.split("~")
    for index, disclosure in enumerate(parts[1:-1], start=1):
        salt, claim, _ = _decode(disclosure)
        if claim == name:
            parts[index] = b64url(json.dumps([salt, claim, value]).encode())
    return "~".join(parts)


def test_tampered_disclosure_is_refused_even_without_key_binding() -> None:
    presentation = _present(SD_JWT)
    without_kb = presentation[: presentation.rindex("~") + 1]
    tampered = _replace_disclosure(without_kb, "district", "gangnam-gu")
    assert tampered != without_kb
    with pytest.raises(CredentialError) as info:
        _verify(tampered, require_key_binding=False)
    assert info.value.reason == "unreferenced_disclosure"


def test_tampered_disclosure_with_key_binding() -> None:
    tampered = _replace_disclosure(_present(SD_JWT), "age_over_19", False)
    with pytest.raises(CredentialError) as info:
        _verify(tampered)
    assert info.value.reason == "unreferenced_disclosure"


def test_disclosure_from_another_credential_is_refused() -> None:
    other = _issue()
    foreign = next(d for d in other.split("~")[1:-1] if _decode(d)[1] == "birthdate")
    parts = _present(SD_JWT).split("~")
    presentation = "~".join([parts[0], *parts[1:-1], foreign, ""])
    with pytest.raises(CredentialError) as info:
        _verify(presentation, require_key_binding=False)
    assert info.value.reason == "unreferenced_disclosure"


def test_added_disclosure_breaks_sd_hash() -> None:
    full = _present(SD_JWT, DISCLOSABLE)
    birth = next(d for d in full.split("~")[1:-1] if _decode(d)[1] == "birthdate")
    parts = _present(SD_JWT).split("~")
    presentation = "~".join([parts[0], *parts[1:-1], birth, parts[-1]])
    with pytest.raises(CredentialError) as info:
        _verify(presentation)
    assert info.value.reason == "bad_key_binding"


def test_dropped_key_binding() -> None:
    presentation = _present(SD_JWT)
    without_kb = presentation[: presentation.rindex("~") + 1]
    with pytest.raises(CredentialError) as info:
        _verify(without_kb)
    assert info.value.reason == "missing_key_binding"
    assert _verify(without_kb, require_key_binding=False).holder is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"audience": "https://evil.example"}, "wrong_audience"),
        ({"nonce": "n-other"}, "wrong_nonce"),
        ({"now": NOW + timedelta(minutes=6)}, "stale_key_binding"),
        ({"now": NOW - timedelta(minutes=1)}, "stale_key_binding"),
        ({"now": ISSUED + timedelta(days=366)}, "expired"),
        ({"now": ISSUED - timedelta(hours=1)}, "not_yet_valid"),
        ({"expected_vct": "https://seoul.go.kr/credentials/other"}, "malformed_credential"),
    ],
    ids=["aud", "nonce", "kb-too-old", "kb-from-future", "expired", "not-yet-issued", "vct"],
)
def test_verifier_context_mismatch(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(CredentialError) as info:
        _verify(_present(SD_JWT), **overrides)
    assert info.value.reason == reason


def test_expired_credential_presented_fresh() -> None:
    expired = _issue(expires_at=ISSUED + timedelta(days=1))
    with pytest.raises(CredentialError) as info:
        _verify(_present(expired))
    assert info.value.reason == "expired"


def test_not_before_in_the_future() -> None:
    later = _issue(not_before=NOW + timedelta(days=1))
    with pytest.raises(CredentialError) as info:
        _verify(_present(later))
    assert info.value.reason == "not_yet_valid"


def test_key_binding_by_another_key() -> None:
    presentation = _present(SD_JWT, holder_key=PrivateKey.from_seed(b"\x09" * 32))
    with pytest.raises(CredentialError) as info:
        _verify(presentation)
    assert info.value.reason == "bad_key_binding"


def test_unknown_issuer() -> None:
    presentation = _present(_resign(lambda p: p.update(iss="did:web:evil.example")))
    with pytest.raises(CredentialError) as info:
        _verify(presentation)
    assert info.value.reason == "unresolvable_key"


def test_wrong_issuer_key() -> None:
    with pytest.raises(CredentialError) as info:
        _verify(_present(SD_JWT), issuer_key=lambda iss: HOLDER.public)
    assert info.value.reason == "bad_proof_signature"


def _resign(payload_change: Any, header: dict[str, Any] | None = None) -> str:
    """Re-sign the issuer JWT (with the real issuer key) after changing its payload."""
    jwt, *rest = SD_JWT.split("~")
    payload = json.loads(from_b64url(jwt.split(".")[1]))
    payload_change(payload)
    jws = JWS(payload=json.dumps(payload))
    protected = header or {"alg": "EdDSA", "typ": "dc+sd-jwt"}
    jws.add_signature(jwk_from_private_key(ISSUER), alg="EdDSA", protected=json.dumps(protected))
    return "~".join([jws.serialize(compact=True), *rest])


@pytest.mark.parametrize(
    ("change", "header", "reason"),
    [
        (lambda p: p.pop("exp"), None, "malformed_credential"),
        (lambda p: p.update(exp=True), None, "malformed_credential"),
        (lambda p: p.update(iat=str(p["iat"])), None, "malformed_credential"),
        (lambda p: p.pop("vct"), None, "malformed_credential"),
        (lambda p: p.update(_sd_alg="sha-512"), None, "malformed_credential"),
        (lambda p: None, {"alg": "EdDSA", "typ": "JWT"}, "malformed_credential"),
        (lambda p: p.update(iss=ISS), {"alg": "EdDSA", "typ": "vc+sd-jwt"}, None),
    ],
    ids=["no-exp", "bool-exp", "string-iat", "no-vct", "sd-alg", "typ-jwt", "legacy-typ-ok"],
)
def test_bad_issuer_payloads(
    change: Any, header: dict[str, Any] | None, reason: str | None
) -> None:
    presentation = _present(_resign(change, header))
    if reason is None:
        assert _verify(presentation).issuer == ISS
        return
    with pytest.raises(CredentialError) as info:
        _verify(presentation)
    assert info.value.reason == reason


def test_hs256_issuer_jwt_is_refused() -> None:
    jwt, *rest = SD_JWT.split("~")
    secret = JWK(kty="oct", k=b64url(ISSUER.public.raw))
    jws = JWS(payload=from_b64url(jwt.split(".")[1]).decode())
    jws.add_signature(
        secret, alg="HS256", protected=json.dumps({"alg": "HS256", "typ": "dc+sd-jwt"})
    )
    with pytest.raises(CredentialError) as info:
        _verify("~".join([jws.serialize(compact=True), *rest]), require_key_binding=False)
    assert info.value.reason == "unsupported_algorithm"


@pytest.mark.parametrize(
    ("presentation", "reason"),
    [
        ("", "malformed_credential"),
        ("no-tilde", "malformed_credential"),
        ("a.b~", "malformed_credential"),
        (SD_JWT.split("~")[0] + "~!!!~", "malformed_disclosure"),
        (SD_JWT.split("~")[0] + "~" + b64url(b'{"a": 1}') + "~", "malformed_disclosure"),
        (SD_JWT.split("~")[0] + "~" + b64url(b'["s", "_sd", 1]') + "~", "malformed_disclosure"),
    ],
    ids=["empty", "no-tilde", "two-segments", "not-b64", "not-array", "reserved-name"],
)
def test_malformed_presentations(presentation: str, reason: str) -> None:
    with pytest.raises(CredentialError) as info:
        _verify(presentation, require_key_binding=False)
    assert info.value.reason == reason


def test_repeated_disclosure_is_refused() -> None:
    parts = _present(SD_JWT).split("~")
    presentation = "~".join([parts[0], parts[1], parts[1], ""])
    with pytest.raises(CredentialError) as info:
        _verify(presentation, require_key_binding=False)
    assert info.value.reason == "malformed_disclosure"


@pytest.mark.parametrize(
    ("claims", "overrides"),
    [
        ({"iss": "x"}, {}),
        ({"_sd": []}, {}),
        ({"district": "x"}, {"disclosable": ["birthdate"]}),
        (CLAIMS, {"expires_at": ISSUED}),
    ],
    ids=["reserved-iss", "reserved-sd", "unknown-disclosable", "exp-not-after-iat"],
)
def test_bad_issuance(claims: dict[str, Any], overrides: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "issuer_key": ISSUER,
        "issuer": ISS,
        "vct": VCT,
        "holder": HOLDER.public,
        "disclosable": [],
        "issued_at": ISSUED,
        "expires_at": ISSUED + timedelta(days=1),
    }
    args.update(overrides)
    with pytest.raises(CredentialError) as info:
        issue_sd_jwt_vc(claims, **args)
    assert info.value.reason == "malformed_credential"
