"""The holder wallet: receive, list and present both credential formats, bound to a verifier."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from civicledger.crypto.keys import PrivateKey, PublicKey
from civicledger.errors import KeystoreError
from civicledger.services.identity import data_integrity, sdjwt
from civicledger.services.identity.vc import VC_V2_CONTEXT, CredentialError, CredentialReason
from civicledger.services.identity.wallet import (
    CredentialFormat,
    Wallet,
    WalletError,
    WalletReason,
    load_credential,
)

ISSUER = PrivateKey.from_seed(bytes(range(32)))
ISSUER_VM = f"{ISSUER.public.did}#{ISSUER.public.did[len('did:key:') :]}"
SD_ISSUER = "did:web:seoul.go.kr"
VCT = "https://seoul.go.kr/credentials/resident-card"
STRANGER = PrivateKey.from_seed(b"\x09" * 32)
NOW = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
CHALLENGE = "c-91f3a0"
DOMAIN = "https://library.mapo.go.kr"
CLAIMS = {"given_name": "Ji-woo", "birthdate": "2001-03-14", "district": "mapo-gu"}


def di_credential(subject: str, **changes: Any) -> dict[str, Any]:
    credential: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT],
        "type": ["VerifiableCredential", "ResidentCredential"],
        "issuer": ISSUER.public.did,
        "validFrom": "2025-01-01T00:00:00Z",
        "validUntil": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": subject, "district": "mapo-gu", "name": "Ji-woo"},
    }
    credential.update(changes)
    return data_integrity.issue_credential(
        credential, ISSUER, verification_method=ISSUER_VM, now=NOW
    )


def sd_credential(holder: PublicKey) -> str:
    return sdjwt.issue_sd_jwt_vc(
        CLAIMS,
        issuer_key=ISSUER,
        issuer=SD_ISSUER,
        vct=VCT,
        holder=holder,
        disclosable=["given_name", "birthdate", "district"],
        issued_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=365),
    )


def holder_key(wallet: Wallet) -> PublicKey:
    return PublicKey.from_did(wallet.holder)


def sd_issuers(iss: str) -> PublicKey:
    assert iss == SD_ISSUER
    return ISSUER.public


@pytest.fixture
def wallet(tmp_path: Path) -> Wallet:
    return Wallet.create(tmp_path / "wallet")


# -- create and open --------------------------------------------------------------------------


def test_create_makes_a_private_directory_and_a_did_key(tmp_path: Path) -> None:
    created = Wallet.create(tmp_path / "w")
    assert created.holder.startswith("did:key:z6Mk")
    assert stat.S_IMODE(os.stat(tmp_path / "w").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "w" / "credentials").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "w" / "holder.key.json").st_mode) == 0o600
    assert Wallet.open(tmp_path / "w").holder == created.holder


def test_create_twice_is_refused(wallet: Wallet) -> None:
    with pytest.raises(WalletError) as caught:
        Wallet.create(wallet.path)
    assert caught.value.reason == WalletReason.WALLET_EXISTS


def test_open_without_a_wallet(tmp_path: Path) -> None:
    with pytest.raises(WalletError) as caught:
        Wallet.open(tmp_path / "nothing")
    assert caught.value.reason == WalletReason.NO_WALLET


def test_passphrase_encrypts_the_holder_key(tmp_path: Path) -> None:
    secured = Wallet.create(tmp_path / "w", passphrase="correct horse")
    assert "seed" not in json.loads((tmp_path / "w" / "holder.key.json").read_text())
    credential_id = secured.receive(di_credential(secured.holder), now=NOW).id
    with pytest.raises(KeystoreError) as caught:
        secured.present(credential_id, challenge=CHALLENGE, domain=DOMAIN, now=NOW)
    assert caught.value.reason == "passphrase_required"
    presentation = secured.present(
        credential_id, challenge=CHALLENGE, domain=DOMAIN, now=NOW, passphrase="correct horse"
    )
    assert isinstance(presentation, dict)


# -- receive and list -------------------------------------------------------------------------


def test_receive_and_list_show_no_claim_values(wallet: Wallet) -> None:
    di = wallet.receive(di_credential(wallet.holder), now=NOW)
    sd = wallet.receive(sd_credential(holder_key(wallet)), now=NOW)
    listed = {summary.id: summary for summary in wallet.list()}
    assert set(listed) == {di.id, sd.id}
    assert listed[di.id].format is CredentialFormat.DATA_INTEGRITY
    assert listed[di.id].types == ("VerifiableCredential", "ResidentCredential")
    assert listed[di.id].issuer == ISSUER.public.did
    assert listed[di.id].valid_until == "2026-01-01T00:00:00Z"
    assert listed[sd.id].format is CredentialFormat.SD_JWT
    assert listed[sd.id].types == (VCT,)
    assert listed[sd.id].issuer == SD_ISSUER
    assert listed[sd.id].valid_from == "2025-05-31T09:00:00Z"
    assert listed[sd.id].disclosable == ("birthdate", "district", "given_name")
    shown = repr(wallet.list())
    for value in ("Ji-woo", "2001-03-14", "mapo-gu"):
        assert value not in shown


def test_receiving_twice_keeps_one_copy(wallet: Wallet) -> None:
    credential = di_credential(wallet.holder)
    first = wallet.receive(credential, now=NOW)
    assert wallet.receive(credential, now=NOW) == first
    assert len(wallet.list()) == 1


def test_credential_files_are_private(wallet: Wallet) -> None:
    summary = wallet.receive(di_credential(wallet.holder), now=NOW)
    path = wallet.path / "credentials" / f"{summary.id}.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(WalletError) as caught:
        wallet.list()
    assert caught.value.reason == WalletReason.INSECURE


def test_a_group_writable_wallet_is_refused(wallet: Wallet) -> None:
    wallet.receive(di_credential(wallet.holder), now=NOW)
    os.chmod(wallet.path / "credentials", 0o770)
    with pytest.raises(WalletError) as caught:
        wallet.list()
    assert caught.value.reason == WalletReason.INSECURE


def test_a_tampered_credential_file_is_refused(wallet: Wallet) -> None:
    summary = wallet.receive(di_credential(wallet.holder), now=NOW)
    path = wallet.path / "credentials" / f"{summary.id}.json"
    stored = json.loads(path.read_text())
    stored["credential"]["credentialSubject"]["district"] = "gangnam-gu"
    path.write_text(json.dumps(stored))
    with pytest.raises(WalletError) as caught:
        wallet.list()
    assert caught.value.reason == WalletReason.CORRUPT


def test_di_for_another_holder_is_refused(wallet: Wallet) -> None:
    with pytest.raises(WalletError) as caught:
        wallet.receive(di_credential(STRANGER.public.did), now=NOW)
    assert caught.value.reason == WalletReason.NOT_FOR_THIS_HOLDER
    assert wallet.list() == []


def test_di_with_a_second_subject_not_the_holder_is_refused(wallet: Wallet) -> None:
    subjects = [{"id": wallet.holder}, {"id": STRANGER.public.did}]
    with pytest.raises(WalletError) as caught:
        wallet.receive(di_credential(wallet.holder, credentialSubject=subjects), now=NOW)
    assert caught.value.reason == WalletReason.NOT_FOR_THIS_HOLDER


def test_sd_jwt_bound_to_another_key_is_refused(wallet: Wallet) -> None:
    with pytest.raises(WalletError) as caught:
        wallet.receive(sd_credential(STRANGER.public), now=NOW)
    assert caught.value.reason == WalletReason.NOT_FOR_THIS_HOLDER


@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        ("not-a-jwt~", WalletReason.UNSUPPORTED_CREDENTIAL),
        ("a.b.c", WalletReason.UNSUPPORTED_CREDENTIAL),
        (42, WalletReason.UNSUPPORTED_CREDENTIAL),
    ],
)
def test_malformed_credentials_are_refused(
    wallet: Wallet, credential: Any, reason: WalletReason
) -> None:
    with pytest.raises(WalletError) as caught:
        wallet.receive(credential, now=NOW)
    assert caught.value.reason == reason


def test_unsecured_or_expired_credentials_are_refused(wallet: Wallet) -> None:
    unsecured = di_credential(wallet.holder)
    del unsecured["proof"]
    with pytest.raises(WalletError) as caught:
        wallet.receive(unsecured, now=NOW)
    assert caught.value.reason == WalletReason.UNSUPPORTED_CREDENTIAL
    with pytest.raises(CredentialError) as expired:
        wallet.receive(di_credential(wallet.holder), now=NOW + timedelta(days=365))
    assert expired.value.reason == CredentialReason.EXPIRED
    with pytest.raises(CredentialError) as expired_jwt:
        wallet.receive(sd_credential(holder_key(wallet)), now=NOW + timedelta(days=400))
    assert expired_jwt.value.reason == CredentialReason.EXPIRED


def test_load_credential_reads_both_formats() -> None:
    assert load_credential(b' {"a": 1}\n') == {"a": 1}
    assert load_credential(b"eyJ.eyJ.sig~\n") == "eyJ.eyJ.sig~"
    with pytest.raises(WalletError) as caught:
        load_credential(b"[1]")
    assert caught.value.reason == WalletReason.UNSUPPORTED_CREDENTIAL


# -- present ----------------------------------------------------------------------------------


def test_di_presentation_is_bound_to_challenge_and_domain(wallet: Wallet) -> None:
    credential = di_credential(wallet.holder)
    credential_id = wallet.receive(credential, now=NOW).id
    presentation = wallet.present(credential_id, challenge=CHALLENGE, domain=DOMAIN, now=NOW)
    assert isinstance(presentation, dict)
    proof = presentation["proof"]
    assert proof["proofPurpose"] == "authentication"
    assert (proof["challenge"], proof["domain"]) == (CHALLENGE, DOMAIN)
    assert presentation["holder"] == wallet.holder
    assert presentation["verifiableCredential"] == [credential]
    verified = data_integrity.verify_presentation(
        presentation, now=NOW, challenge=CHALLENGE, domain=DOMAIN
    )
    assert verified.holder.controller == wallet.holder
    assert verified.credentials[0].controller == ISSUER.public.did


@pytest.mark.parametrize(
    ("challenge", "domain", "reason"),
    [
        ("another-challenge", DOMAIN, CredentialReason.WRONG_CHALLENGE),
        (CHALLENGE, "https://evil.example", CredentialReason.WRONG_DOMAIN),
    ],
)
def test_di_presentation_cannot_be_replayed_elsewhere(
    wallet: Wallet, challenge: str, domain: str, reason: CredentialReason
) -> None:
    credential_id = wallet.receive(di_credential(wallet.holder), now=NOW).id
    presentation = wallet.present(credential_id, challenge=CHALLENGE, domain=DOMAIN, now=NOW)
    assert isinstance(presentation, dict)
    with pytest.raises(CredentialError) as caught:
        data_integrity.verify_presentation(
            presentation, now=NOW, challenge=challenge, domain=domain
        )
    assert caught.value.credential_reason == reason


def test_sd_jwt_presentation_discloses_only_what_was_asked(wallet: Wallet) -> None:
    credential_id = wallet.receive(sd_credential(holder_key(wallet)), now=NOW).id
    presentation = wallet.present(
        credential_id, challenge=CHALLENGE, domain=DOMAIN, now=NOW, disclose=["district"]
    )
    assert isinstance(presentation, str)
    verified = sdjwt.verify_presentation(
        presentation, issuer_key=sd_issuers, now=NOW, audience=DOMAIN, nonce=CHALLENGE
    )
    assert verified.claims["district"] == "mapo-gu"
    assert "given_name" not in verified.claims
    assert "birthdate" not in verified.claims
    assert verified.holder == holder_key(wallet)


@pytest.mark.parametrize(
    ("audience", "nonce", "reason"),
    [
        ("https://evil.example", CHALLENGE, CredentialReason.WRONG_AUDIENCE),
        (DOMAIN, "another-challenge", CredentialReason.WRONG_NONCE),
    ],
)
def test_sd_jwt_presentation_cannot_be_replayed_elsewhere(
    wallet: Wallet, audience: str, nonce: str, reason: CredentialReason
) -> None:
    credential_id = wallet.receive(sd_credential(holder_key(wallet)), now=NOW).id
    presentation = wallet.present(credential_id, challenge=CHALLENGE, domain=DOMAIN, now=NOW)
    assert isinstance(presentation, str)
    with pytest.raises(CredentialError) as caught:
        sdjwt.verify_presentation(
            presentation, issuer_key=sd_issuers, now=NOW, audience=audience, nonce=nonce
        )
    assert caught.value.credential_reason == reason


@pytest.mark.parametrize(
    ("credential_id", "challenge", "domain", "disclose", "reason"),
    [
        ("0" * 32, CHALLENGE, DOMAIN, [], WalletReason.UNKNOWN_CREDENTIAL),
        ("../holder.key", CHALLENGE, DOMAIN, [], WalletReason.UNKNOWN_CREDENTIAL),
        (None, "", DOMAIN, [], WalletReason.BAD_CHALLENGE),
        (None, CHALLENGE, " ", [], WalletReason.BAD_DOMAIN),
        ("sd", CHALLENGE, DOMAIN, ["nationality"], WalletReason.UNKNOWN_CLAIM),
        ("di", CHALLENGE, DOMAIN, ["district"], WalletReason.DISCLOSURE_NOT_SUPPORTED),
    ],
)
def test_bad_presentation_requests(
    wallet: Wallet,
    credential_id: str | None,
    challenge: str,
    domain: str,
    disclose: list[str],
    reason: WalletReason,
) -> None:
    ids = {
        "di": wallet.receive(di_credential(wallet.holder), now=NOW).id,
        "sd": wallet.receive(sd_credential(holder_key(wallet)), now=NOW).id,
    }
    chosen = ids.get(credential_id or "di", credential_id)
    assert chosen is not None
    with pytest.raises(WalletError) as caught:
        wallet.present(chosen, challenge=challenge, domain=domain, now=NOW, disclose=disclose)
    assert caught.value.reason == reason
