"""``civic wallet create/receive/list/present``, in-process, through the real ``civic`` app."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import Civic, assert_one_error_line, new_runner
from typer.testing import Result

from civicledger.crypto.keys import PrivateKey, PublicKey
from civicledger.services.identity import data_integrity, sdjwt
from civicledger.services.identity.vc import VC_V2_CONTEXT
from civicledger.services.identity.wallet import Wallet

ISSUER = PrivateKey.from_seed(bytes(range(32)))
ISSUER_VM = f"{ISSUER.public.did}#{ISSUER.public.did[len('did:key:') :]}"
SD_ISSUER = "did:web:seoul.go.kr"
VCT = "https://seoul.go.kr/credentials/resident-card"
# The CLI reads the clock, so credentials are valid around the real now.
NOW = datetime.now(UTC).replace(microsecond=0)
CHALLENGE = "c-91f3a0"
DOMAIN = "https://library.mapo.go.kr"


@pytest.fixture
def civic() -> Civic:
    """The real ``civic`` app, in-process."""
    return new_runner()


@pytest.fixture
def wallet_dir(tmp_path: Path, civic: Civic) -> Path:
    path = tmp_path / "wallet"
    result = civic("wallet", "create", "--wallet", path)
    assert result.exit_code == 0, result.output
    return path


def holder_of(path: Path) -> str:
    return Wallet.open(path).holder


def write_di(tmp_path: Path, subject: str) -> Path:
    credential = data_integrity.issue_credential(
        {
            "@context": [VC_V2_CONTEXT],
            "type": ["VerifiableCredential", "ResidentCredential"],
            "issuer": ISSUER.public.did,
            "validFrom": "2025-01-01T00:00:00Z",
            "credentialSubject": {"id": subject, "district": "mapo-gu"},
        },
        ISSUER,
        verification_method=ISSUER_VM,
        now=NOW,
    )
    path = tmp_path / "resident.json"
    path.write_text(json.dumps(credential, indent=2))
    return path


def write_sd(tmp_path: Path, holder: str) -> Path:
    credential = sdjwt.issue_sd_jwt_vc(
        {"given_name": "Ji-woo", "district": "mapo-gu"},
        issuer_key=ISSUER,
        issuer=SD_ISSUER,
        vct=VCT,
        holder=PublicKey.from_did(holder),
        disclosable=["given_name", "district"],
        issued_at=NOW - timedelta(minutes=1),
        expires_at=NOW + timedelta(days=30),
    )
    path = tmp_path / "card.sd-jwt"
    path.write_text(credential + "\n")
    return path


def received_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("received ")
    return first.removeprefix("received ")


def test_create_prints_the_holder_did(tmp_path: Path, civic: Civic) -> None:
    result = civic("wallet", "create", "--wallet", tmp_path / "w")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == holder_of(tmp_path / "w")
    assert stat.S_IMODE(os.stat(tmp_path / "w").st_mode) == 0o700


def test_create_twice_is_one_error_line(wallet_dir: Path, civic: Civic) -> None:
    assert_one_error_line(civic("wallet", "create", "--wallet", wallet_dir), "wallet_exists")


def test_wallet_dir_from_environment(tmp_path: Path, civic: Civic) -> None:
    path = tmp_path / "from-env"
    assert civic("wallet", "create", env={"CIVIC_WALLET": str(path)}).exit_code == 0
    result = civic("wallet", "list", env={"CIVIC_WALLET": str(path)})
    assert result.exit_code == 0, result.output
    assert holder_of(path) in result.stdout


def test_no_wallet(tmp_path: Path, civic: Civic) -> None:
    assert_one_error_line(civic("wallet", "list", "--wallet", tmp_path / "none"), "no_wallet")


def test_receive_list_and_present_di(tmp_path: Path, wallet_dir: Path, civic: Civic) -> None:
    holder = holder_of(wallet_dir)
    credential_id = received_id(
        civic("wallet", "receive", write_di(tmp_path, holder), "--wallet", wallet_dir)
    )
    listed = civic("wallet", "list", "--wallet", wallet_dir)
    assert listed.exit_code == 0, listed.output
    assert credential_id in listed.stdout
    assert "ResidentCredential" in listed.stdout
    assert "mapo-gu" not in listed.stdout

    out = tmp_path / "vp.json"
    args = ["--challenge", CHALLENGE, "--domain", DOMAIN, "--wallet", wallet_dir]
    result = civic("wallet", "present", credential_id, *args, "--out", out)
    assert result.exit_code == 0, result.output
    presentation = json.loads(out.read_text())
    verified = data_integrity.verify_presentation(
        presentation, now=datetime.now(UTC), challenge=CHALLENGE, domain=DOMAIN
    )
    assert verified.holder.controller == holder


def test_present_sd_jwt_to_stdout(tmp_path: Path, wallet_dir: Path, civic: Civic) -> None:
    sd = write_sd(tmp_path, holder_of(wallet_dir))
    credential_id = received_id(civic("wallet", "receive", sd, "--wallet", wallet_dir))
    listed = civic("wallet", "list", "--wallet", wallet_dir)
    assert "district, given_name" in listed.stdout
    assert "Ji-woo" not in listed.stdout
    result = civic(
        "wallet", "present", credential_id, "--challenge", CHALLENGE, "--domain", DOMAIN,
        "--disclose", "district", "--wallet", wallet_dir,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    verified = sdjwt.verify_presentation(
        result.stdout.strip(),
        issuer_key=lambda _iss: ISSUER.public,
        now=datetime.now(UTC),
        audience=DOMAIN,
        nonce=CHALLENGE,
    )
    assert dict(verified.claims).get("district") == "mapo-gu"
    assert "given_name" not in verified.claims


def test_receive_for_another_holder(tmp_path: Path, wallet_dir: Path, civic: Civic) -> None:
    stranger = PrivateKey.from_seed(b"\x09" * 32).public.did
    result = civic("wallet", "receive", write_di(tmp_path, stranger), "--wallet", wallet_dir)
    assert_one_error_line(result, "not_for_this_holder")


def test_present_unknown_credential(wallet_dir: Path, civic: Civic) -> None:
    result = civic(
        "wallet", "present", "0" * 32, "--challenge", CHALLENGE, "--domain", DOMAIN,
        "--wallet", wallet_dir,
    )  # fmt: skip
    assert_one_error_line(result, "unknown_credential")


def test_encrypted_wallet_needs_its_passphrase(tmp_path: Path, civic: Civic) -> None:
    path = tmp_path / "secured"
    env = {"WALLET_PASS": "correct horse"}
    created = civic(
        "wallet", "create", "--wallet", path, "--passphrase-env", "WALLET_PASS", env=env
    )
    assert created.exit_code == 0, created.output
    credential_id = received_id(
        civic("wallet", "receive", write_di(tmp_path, holder_of(path)), "--wallet", path)
    )
    args = ["present", credential_id, "--challenge", CHALLENGE, "--domain", DOMAIN]
    assert_one_error_line(civic("wallet", *args, "--wallet", path), "passphrase_required")
    unset = civic("wallet", *args, "--wallet", path, "--passphrase-env", "NOT_SET_ANYWHERE")
    assert unset.exit_code == 2
    result = civic("wallet", *args, "--wallet", path, "--passphrase-env", "WALLET_PASS", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["proof"]["challenge"] == CHALLENGE
