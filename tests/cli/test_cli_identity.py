"""``civic identity``, in-process: an agency issues from its city directory, a wallet presents,
a verifier on the same directory checks, the agency revokes.

Every command runs through the real ``civic`` app.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cli_helpers import Civic, assert_one_error_line, new_runner
from typer.testing import Result

from civicledger.services.identity.wallet import Wallet

DOMAIN = "https://library.testville.example"
CLAIMS = {
    "given_name": "Minji",
    "family_name": "Kimura-Park",
    "birthdate": "1990-04-17",
    "address": "12 Maple Lane, Apt 3, Testville",
    "district": "Riverside",
}


@pytest.fixture
def civic() -> Civic:
    """The real ``civic`` app, in-process."""
    return new_runner()


@pytest.fixture
def city_dir(tmp_path: Path, civic: Civic) -> Path:
    root = tmp_path / "city"
    result = civic("--dir", root, "init", "--city", "Testville", "--chain-id", "testville-1")
    assert result.exit_code == 0, result.output
    for args in (
        ("did", "create", "--agency", "city-hall"),
        ("grant", "--agency", "city-hall", "--type", "ResidentCard"),
    ):
        result = civic("--dir", root, "identity", *args)
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def wallet_dir(tmp_path: Path, civic: Civic) -> Path:
    path = tmp_path / "wallet"
    result = civic("wallet", "create", "--wallet", path)
    assert result.exit_code == 0, result.output
    return path


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def _present(civic: Civic, city_dir: Path, wallet_dir: Path, credential_id: str, out: Path) -> str:
    challenge = _ok(civic("--dir", city_dir, "identity", "challenge", "--domain", DOMAIN))
    nonce = challenge.stdout.strip()
    _ok(
        civic(
            "wallet", "present", credential_id, "--challenge", nonce, "--domain", DOMAIN,
            "--disclose", "district", "--out", out, "--wallet", wallet_dir,
        )
    )  # fmt: skip
    return nonce


def test_issue_present_verify_revoke(
    civic: Civic, city_dir: Path, wallet_dir: Path, tmp_path: Path
) -> None:
    holder = Wallet.open(wallet_dir).holder
    card = tmp_path / "card.sd-jwt"
    issued = civic(
        "--dir", city_dir, "identity", "issue", "ResidentCard", "--agency", "city-hall",
        "--holder", holder, "--claims", json.dumps(CLAIMS), "--out", card,
    )  # fmt: skip
    _ok(issued)
    assert "issued ResidentCard" in issued.stdout
    assert stat.S_IMODE(card.stat().st_mode) == 0o600
    status = city_dir / "identity" / "city-hall" / "status" / "revocation-1.json"
    assert stat.S_IMODE(status.stat().st_mode) == 0o600

    received = _ok(civic("wallet", "receive", card, "--wallet", wallet_dir))
    credential_id = received.stdout.split()[1]
    shown = tmp_path / "shown.txt"
    nonce = _present(civic, city_dir, wallet_dir, credential_id, shown)
    verified = _ok(
        civic(
            "--dir", city_dir, "identity", "verify", shown, "--challenge", nonce,
            "--domain", DOMAIN,
        )
    )  # fmt: skip
    (result,) = json.loads(verified.stdout)
    assert result["type"] == "ResidentCard"
    assert result["issuer"] == "did:civic:city-hall"
    assert result["holder"] == holder
    assert result["claims"] == {"district": "Riverside"}

    replay = civic(
        "--dir", city_dir, "identity", "verify", shown, "--challenge", nonce, "--domain", DOMAIN
    )
    assert_one_error_line(replay, "replayed_challenge")

    revoked = _ok(civic("--dir", city_dir, "identity", "revoke", card, "--agency", "city-hall"))
    assert "revoked index" in revoked.stdout
    nonce = _present(civic, city_dir, wallet_dir, credential_id, shown)
    refused = civic(
        "--dir", city_dir, "identity", "verify", shown, "--challenge", nonce, "--domain", DOMAIN
    )
    assert_one_error_line(refused, "revoked")
    again = civic("--dir", city_dir, "identity", "revoke", card, "--agency", "city-hall")
    assert_one_error_line(again, "already_revoked")

    published = _ok(civic("--dir", city_dir, "identity", "publish-list", "--agency", "city-hall"))
    assert "v3" in published.stdout


def test_issue_to_stdout_and_errors(civic: Civic, city_dir: Path, wallet_dir: Path) -> None:
    holder = Wallet.open(wallet_dir).holder
    base = ("--dir", city_dir, "identity")
    printed = _ok(
        civic(
            *base, "issue", "ResidentCard", "--agency", "city-hall", "--holder", holder,
            "--claims", json.dumps(CLAIMS),
        )
    )  # fmt: skip
    assert printed.stdout.strip().endswith("~")
    assert "Minji" not in printed.stdout  # disclosures are base64url, claims never in clear

    bad = civic(
        *base, "issue", "ResidentCard", "--agency", "city-hall", "--holder", holder,
        "--claims", '{"given_name": "A"}',
    )  # fmt: skip
    assert_one_error_line(bad, "bad_claims")
    not_granted = civic(
        *base, "issue", "Qualification", "--agency", "city-hall", "--holder", holder,
        "--claims", '{"qualification": "q", "license_number": "n"}',
    )  # fmt: skip
    assert_one_error_line(not_granted, "issuer_not_authorized")
    usage = civic(
        *base, "issue", "ResidentCard", "--agency", "city-hall", "--holder", holder,
        "--claims", "[1]",
    )  # fmt: skip
    assert usage.exit_code == 2
    assert_one_error_line(civic(*base, "did", "create", "--agency", "city-hall"), "did_exists")
    granted = civic(*base, "grant", "--agency", "city-hall", "--type", "ResidentCard")
    assert_one_error_line(granted, "already_granted")
    _ok(civic(*base, "revoke-grant", "--agency", "city-hall", "--type", "ResidentCard"))
    after = civic(
        *base, "issue", "ResidentCard", "--agency", "city-hall", "--holder", holder,
        "--claims", json.dumps(CLAIMS),
    )  # fmt: skip
    assert_one_error_line(after, "issuer_not_authorized")
    unknown = civic(
        *base, "verify", city_dir / "genesis.json", "--challenge", "nope", "--domain", DOMAIN
    )
    assert_one_error_line(unknown, "malformed_proof")
    no_city = civic("--dir", city_dir.parent / "nowhere", "identity", "challenge", "--domain", "d")
    assert_one_error_line(no_city, "no_city")
