"""Data Integrity eddsa-jcs-2022: the W3C vc-di-eddsa test vectors, then adversarial tables."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import base58
import pytest

from civicledger.crypto.encoding import canonical_json, sha256
from civicledger.crypto.keys import PrivateKey, PublicKey
from civicledger.services.identity.data_integrity import (
    add_proof,
    hash_data,
    issue_credential,
    sign_presentation,
    verify_credential,
    verify_presentation,
)
from civicledger.services.identity.vc import (
    VC_V2_CONTEXT,
    CredentialError,
    CredentialReason,
    check_credential,
)

VECTORS = Path(__file__).parent / "vectors"
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _vector(name: str) -> str:
    return (VECTORS / name).read_text(encoding="utf-8")


def _spec_key() -> PrivateKey:
    """The spec's key pair: privateKeyMultibase is multicodec ed25519-priv (0x8026) + seed."""
    pair = json.loads(_vector("eddsa-jcs-2022-keypair.json"))
    secret = base58.b58decode(pair["privateKeyMultibase"][1:])
    assert secret[:2] == b"\x80\x26"
    key = PrivateKey.from_seed(secret[2:])
    assert key.public.did == "did:key:" + pair["publicKeyMultibase"]
    return key


SIGNED = json.loads(_vector("eddsa-jcs-2022-signed.json"))
SPEC_VM = SIGNED["proof"]["verificationMethod"]


def _spec_resolver(method: str) -> PublicKey:
    assert method == SPEC_VM
    return _spec_key().public


# --- W3C vectors ---------------------------------------------------------------------------


def test_vector_document_canonical_form_and_hash() -> None:
    unsecured = {k: v for k, v in SIGNED.items() if k != "proof"}
    assert canonical_json(unsecured) == _vector("eddsa-jcs-2022-canonDoc.txt").encode()
    assert sha256(canonical_json(unsecured)).hex() == _vector("eddsa-jcs-2022-docHash.txt")


def test_vector_did_key_proof_config_and_combined_hash() -> None:
    unsecured = {k: v for k, v in SIGNED.items() if k != "proof"}
    config = {k: v for k, v in SIGNED["proof"].items() if k != "proofValue"}
    config["verificationMethod"] = _spec_key().public.did + "#" + _spec_key().public.did[8:]
    assert canonical_json(config) == _vector("eddsa-jcs-2022-didkey-proofCanon.txt").encode()
    combined = _vector("eddsa-jcs-2022-didkey-combinedHash.txt")
    assert hash_data(config, unsecured).hex() == combined


def test_vector_signed_credential_verifies() -> None:
    verified = verify_credential(SIGNED, now=NOW, resolver=_spec_resolver)
    assert verified.public_key == _spec_key().public
    assert verified.controller == "https://vc.example/issuers/5678"
    assert verified.created == datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)


def test_vector_reproduced_byte_for_byte() -> None:
    unsecured = {k: v for k, v in SIGNED.items() if k != "proof"}
    secured = add_proof(
        unsecured,
        _spec_key(),
        verification_method=SPEC_VM,
        created=datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC),
    )
    assert secured == SIGNED
    assert secured["proof"]["proofValue"] == SIGNED["proof"]["proofValue"]


def test_proof_config_carries_context() -> None:
    unsecured = {k: v for k, v in SIGNED.items() if k != "proof"}
    secured = add_proof(unsecured, _spec_key(), verification_method=SPEC_VM, created=NOW)
    assert secured["proof"]["@context"] == SIGNED["@context"]


def test_proof_without_context_is_acaPy_style_and_does_not_match_spec() -> None:
    """ACA-Py omits @context from the proof config; the spec's signature then fails."""
    tampered = copy.deepcopy(SIGNED)
    del tampered["proof"]["@context"]
    with pytest.raises(CredentialError) as info:
        verify_credential(tampered, now=NOW, resolver=_spec_resolver)
    assert info.value.reason == "bad_proof_signature"


# --- our own issuance ------------------------------------------------------------------------

ISSUER = PrivateKey.from_seed(bytes(range(32)))
ISSUER_VM = f"{ISSUER.public.did}#{ISSUER.public.did[len('did:key:') :]}"
HOLDER = PrivateKey.from_seed(bytes(range(1, 33)))
HOLDER_VM = f"{HOLDER.public.did}#{HOLDER.public.did[len('did:key:') :]}"


def _credential(**changes: Any) -> dict[str, Any]:
    credential: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT],
        "type": ["VerifiableCredential", "ResidentCredential"],
        "issuer": ISSUER.public.did,
        "validFrom": "2025-01-01T00:00:00Z",
        "validUntil": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": HOLDER.public.did, "district": "mapo-gu"},
    }
    credential.update(changes)
    return {k: v for k, v in credential.items() if v is not None}


def _issued(**changes: Any) -> dict[str, Any]:
    return issue_credential(_credential(**changes), ISSUER, verification_method=ISSUER_VM, now=NOW)


def test_issue_and_verify_with_did_key() -> None:
    verified = verify_credential(_issued(), now=NOW)
    assert verified.public_key == ISSUER.public
    assert verified.proof_purpose == "assertionMethod"


def test_non_did_key_method_needs_a_resolver() -> None:
    with pytest.raises(CredentialError) as info:
        verify_credential(SIGNED, now=NOW)
    assert info.value.reason == "unresolvable_key"


def _set(path: tuple[str, ...], value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for name in path[:-1]:
            target = target[name]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


_DELETE = object()
OTHER = PrivateKey.from_seed(bytes(32))
OTHER_VM = f"{OTHER.public.did}#{OTHER.public.did[len('did:key:') :]}"

BAD_SECURED = [
    (
        "subject changed",
        _set(("credentialSubject", "district"), "gangnam-gu"),
        "bad_proof_signature",
    ),
    ("validUntil extended", _set(("validUntil",), "2030-01-01T00:00:00Z"), "bad_proof_signature"),
    (
        "proof created changed",
        _set(("proof", "created"), "2025-05-01T00:00:00Z"),
        "bad_proof_signature",
    ),
    (
        "other cryptosuite",
        _set(("proof", "cryptosuite"), "eddsa-rdfc-2022"),
        "unsupported_cryptosuite",
    ),
    (
        "other proof type",
        _set(("proof", "type"), "Ed25519Signature2020"),
        "unsupported_cryptosuite",
    ),
    ("wrong purpose", _set(("proof", "proofPurpose"), "authentication"), "wrong_proof_purpose"),
    ("no proof", _set(("proof",), _DELETE), "malformed_proof"),
    ("proof set", _set(("proof",), []), "malformed_proof"),
    ("proofValue base64", _set(("proof", "proofValue"), "uAAAA"), "malformed_proof"),
    (
        "proofValue short",
        _set(("proof", "proofValue"), "z3yMApqCuCjXDWPrbjfR5mjCPTHqFG8Pux1TxQrEM"),
        "malformed_proof",
    ),
    ("proofValue huge", _set(("proof", "proofValue"), "z" + "2" * 5000), "malformed_proof"),
    ("someone else's key", _set(("proof", "verificationMethod"), OTHER_VM), "bad_proof_signature"),
    (
        "did:key fragment differs",
        _set(("proof", "verificationMethod"), ISSUER.public.did + "#key-1"),
        "unresolvable_key",
    ),
    ("challenge on a credential", _set(("proof", "challenge"), "abc"), "wrong_challenge"),
    ("created in the future", _set(("proof", "created"), "2030-01-01T00:00:00Z"), "not_yet_valid"),
    ("proof expired", _set(("proof", "expires"), "2025-02-01T00:00:00Z"), "expired"),
    (
        "context not a prefix",
        _set(("proof", "@context"), ["https://example.org/other"]),
        "malformed_proof",
    ),
    (
        "first context wrong",
        _set(("@context",), ["https://www.w3.org/2018/credentials/v1"]),
        "malformed_credential",
    ),
    ("not a VerifiableCredential", _set(("type",), ["ResidentCredential"]), "malformed_credential"),
    ("no issuer", _set(("issuer",), _DELETE), "malformed_credential"),
    ("no subject", _set(("credentialSubject",), _DELETE), "malformed_credential"),
    ("validFrom without zone", _set(("validFrom",), "2025-01-01T00:00:00"), "malformed_credential"),
]


@pytest.mark.parametrize(
    ("change", "reason"), [c[1:] for c in BAD_SECURED], ids=[c[0] for c in BAD_SECURED]
)
def test_bad_secured_credentials(change: Any, reason: str) -> None:
    secured = _issued()
    verify_credential(secured, now=NOW)
    change(secured)
    with pytest.raises(CredentialError) as info:
        verify_credential(secured, now=NOW)
    assert info.value.reason == reason


def test_issuer_must_control_the_key() -> None:
    forged = add_proof(_credential(), OTHER, verification_method=OTHER_VM, created=NOW)
    with pytest.raises(CredentialError) as info:
        verify_credential(forged, now=NOW)
    assert info.value.reason == "issuer_mismatch"
    with pytest.raises(CredentialError) as info:
        issue_credential(_credential(), OTHER, verification_method=OTHER_VM, now=NOW)
    assert info.value.reason == "issuer_mismatch"


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), "not_yet_valid"),
        (datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), "expired"),
    ],
)
def test_validity_period_uses_the_given_time(now: datetime, reason: str) -> None:
    with pytest.raises(CredentialError) as info:
        check_credential(_credential(), now=now)
    assert info.value.reason == reason
    assert isinstance(info.value.credential_reason, CredentialReason)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_credential(_credential(), now=datetime(2025, 6, 1))


def _presentation(credential: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": [VC_V2_CONTEXT],
        "type": ["VerifiablePresentation"],
        "holder": HOLDER.public.did,
        "verifiableCredential": [credential],
    }


def test_presentation_with_challenge_and_domain() -> None:
    vp = sign_presentation(
        _presentation(_issued()),
        HOLDER,
        verification_method=HOLDER_VM,
        now=NOW,
        challenge="c-123",
        domain="https://library.seoul.go.kr",
    )
    assert vp["proof"]["proofPurpose"] == "authentication"
    result = verify_presentation(
        vp, now=NOW, challenge="c-123", domain="https://library.seoul.go.kr"
    )
    assert result.holder.public_key == HOLDER.public
    assert [c.public_key for c in result.credentials] == [ISSUER.public]


@pytest.mark.parametrize(
    ("challenge", "domain", "reason"),
    [
        ("c-999", "https://library.seoul.go.kr", "wrong_challenge"),
        ("c-123", "https://evil.example", "wrong_domain"),
    ],
)
def test_presentation_replayed_elsewhere(challenge: str, domain: str, reason: str) -> None:
    vp = sign_presentation(
        _presentation(_issued()),
        HOLDER,
        verification_method=HOLDER_VM,
        now=NOW,
        challenge="c-123",
        domain="https://library.seoul.go.kr",
    )
    with pytest.raises(CredentialError) as info:
        verify_presentation(vp, now=NOW, challenge=challenge, domain=domain)
    assert info.value.reason == reason


def test_presentation_by_someone_other_than_holder() -> None:
    vp = sign_presentation(
        _presentation(_issued()),
        OTHER,
        verification_method=OTHER_VM,
        now=NOW,
        challenge="c",
        domain="d",
    )
    with pytest.raises(CredentialError) as info:
        verify_presentation(vp, now=NOW, challenge="c", domain="d")
    assert info.value.reason == "issuer_mismatch"


def test_presentation_with_tampered_credential() -> None:
    credential = _issued()
    credential["credentialSubject"]["district"] = "gangnam-gu"
    vp = sign_presentation(
        _presentation(credential),
        HOLDER,
        verification_method=HOLDER_VM,
        now=NOW,
        challenge="c",
        domain="d",
    )
    with pytest.raises(CredentialError) as info:
        verify_presentation(vp, now=NOW, challenge="c", domain="d")
    assert info.value.reason == "bad_proof_signature"


def test_resolver_errors_become_credential_errors() -> None:
    def resolver(method: str) -> PublicKey:
        return PublicKey.from_did("did:key:nope")

    with pytest.raises(CredentialError) as info:
        verify_credential(SIGNED, now=NOW, resolver=resolver)
    assert info.value.reason == "unresolvable_key"


def test_time_is_rendered_in_utc_seconds() -> None:
    seoul = datetime(2025, 6, 1, 9, 0, 0, 500, tzinfo=UTC) + timedelta(hours=0)
    secured = add_proof(_credential(), ISSUER, verification_method=ISSUER_VM, created=seoul)
    assert secured["proof"]["created"] == "2025-06-01T09:00:00Z"


def test_an_issuer_may_sign_a_credential_valid_from_tomorrow_but_not_an_expired_one() -> None:
    key = PrivateKey.from_seed(bytes(32))
    did = key.public.did
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    pass_for_tomorrow = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential", "VisitorPass"],
        "issuer": did,
        "validFrom": "2026-11-25T09:00:00Z",
        "validUntil": "2026-11-25T18:00:00Z",
        "credentialSubject": {"id": "did:example:visitor"},
    }
    method = f"{did}#{did.removeprefix('did:key:')}"
    signed = issue_credential(pass_for_tomorrow, key, verification_method=method, now=now)
    with pytest.raises(CredentialError) as early:
        verify_credential(signed, now=now)
    assert early.value.reason == "not_yet_valid"
    verify_credential(signed, now=now + timedelta(days=1))
    with pytest.raises(CredentialError) as late:
        issue_credential(
            pass_for_tomorrow, key, verification_method=method, now=now + timedelta(days=2)
        )
    assert late.value.reason == "expired"
