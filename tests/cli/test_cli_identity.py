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

from civicledger.agency.tokens import TokenError, authenticate, list_tokens
from civicledger.city import CityDir
from civicledger.services.identity.qr_image import decode_qr_image
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
    status = city_dir / "identity" / "city-hall" / "issuer.sqlite"
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


def test_desk_tokens_are_shown_once_listed_without_secret_and_revocable(
    civic: Civic, city_dir: Path
) -> None:
    base = ("--dir", city_dir, "identity", "token")
    created = _ok(civic(*base, "create", "--agency", "city-hall", "--label", "front desk"))
    token = created.stdout.strip().splitlines()[-1]
    layout = CityDir(city_dir)
    assert authenticate(layout, token) == "city-hall"
    stored = (city_dir / "identity" / "city-hall" / "tokens.json").read_text()
    assert token not in stored  # only its digest is kept
    assert stat.S_IMODE((city_dir / "identity" / "city-hall" / "tokens.json").stat().st_mode) == (
        0o600
    )
    listed = _ok(civic(*base, "list", "--agency", "city-hall"))
    assert "front desk" in listed.stdout
    assert token not in listed.stdout
    (token_id,) = [t.id for t in list_tokens(layout, "city-hall")]
    _ok(civic(*base, "revoke", token_id, "--agency", "city-hall"))
    with pytest.raises(TokenError):
        authenticate(layout, token)
    assert_one_error_line(
        civic(*base, "revoke", token_id, "--agency", "city-hall"), "bad_token_request"
    )
    assert_one_error_line(
        civic(*base, "create", "--agency", "city-hall", "--label", " "), "bad_token_request"
    )


def test_present_writes_a_qr_code_that_decodes_to_the_presentation(
    civic: Civic, city_dir: Path, wallet_dir: Path, tmp_path: Path
) -> None:
    holder = Wallet.open(wallet_dir).holder
    card = tmp_path / "card.sd-jwt"
    _ok(
        civic(
            "--dir", city_dir, "identity", "issue", "ResidentCard", "--agency", "city-hall",
            "--holder", holder, "--claims", json.dumps(CLAIMS), "--out", card,
        )
    )  # fmt: skip
    credential_id = _ok(civic("wallet", "receive", card, "--wallet", wallet_dir)).stdout.split()[1]
    nonce = _ok(civic("--dir", city_dir, "identity", "challenge", "--domain", DOMAIN)).stdout
    shown, image = tmp_path / "shown.txt", tmp_path / "shown.png"
    _ok(
        civic(
            "wallet", "present", credential_id, "--challenge", nonce.strip(), "--domain", DOMAIN,
            "--disclose", "district", "--out", shown, "--qr", image, "--wallet", wallet_dir,
        )
    )  # fmt: skip
    assert decode_qr_image(image.read_bytes()) == shown.read_text().strip()
    again = civic(
        "wallet", "present", credential_id, "--challenge", "x", "--domain", DOMAIN,
        "--qr", image, "--wallet", wallet_dir,
    )  # fmt: skip
    assert again.exit_code != 0  # never overwrites an existing image
