"""``civic poll``, in-process through the real ``civic`` app: a secret poll from creation to the
verified result (2 of 3 trustees), with registration from a wallet, a vote change, refusals,
and ``civic poll verify``."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from cli_helpers import Civic, assert_one_error_line, new_runner
from typer.testing import Result

from civicledger.keystore import Keystore
from civicledger.services.identity.wallet import Wallet
from identity_samples import RESIDENT

POLL = "library-hours"


@pytest.fixture
def civic() -> Civic:
    return new_runner()


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def _definition(path: Path, trustees: list[str]) -> Path:
    path.write_text(
        json.dumps(
            {
                "poll_id": POLL,
                "question": {"ko": "도서관 운영 시간", "en": "Library opening hours"},
                "options": [
                    {"ko": "오전", "en": "Mornings"},
                    {"ko": "저녁", "en": "Evenings"},
                    {"ko": "주말", "en": "Weekends"},
                ],
                "min_selections": 1,
                "max_selections": 1,
                "mode": "secret",
                "eligibility": {"credential_type": "ResidentCard", "min_age": 19},
                "registrar": "election-office",
                "opens_ms": 0,
                "closes_ms": 0,
                "rules": {"ko": "주민 투표", "en": "Residents' poll"},
                "trustees": trustees,
                "threshold": 2,
            }
        )
    )
    return path


def test_secret_poll_from_the_command_line(civic: Civic, tmp_path: Path) -> None:
    city = tmp_path / "city"
    base = ("--dir", city)
    _ok(civic(*base, "init", "--city", "Testville", "--chain-id", "testville-1"))
    _ok(civic(*base, "identity", "did", "create", "--agency", "city-hall"))
    _ok(civic(*base, "identity", "grant", "--agency", "city-hall", "--type", "ResidentCard"))
    registrar = Keystore(city / "keys").create("election-office").did
    agency = {"id": "election-office", "name": "Election Office", "keys": [registrar]}
    _ok(civic(*base, "tx", "send", "governance", "register_agency", "--key", "root",
              "--args", json.dumps(agency)))  # fmt: skip
    role = {"agency": "city-hall", "role": "poll_officer"}
    _ok(civic(*base, "tx", "send", "governance", "grant_role", "--key", "root",
              "--args", json.dumps(role)))  # fmt: skip

    wallet = tmp_path / "wallet"
    _ok(civic("wallet", "create", "--wallet", wallet))
    card = tmp_path / "card.sd-jwt"
    _ok(civic(*base, "identity", "issue", "ResidentCard", "--agency", "city-hall",
              "--holder", Wallet.open(wallet).holder, "--claims", json.dumps(RESIDENT),
              "--out", card))  # fmt: skip
    credential = _ok(civic("wallet", "receive", card, "--wallet", wallet)).stdout.split()[1]

    trustees = []
    for n in (1, 2, 3):
        made = _ok(civic("poll", "trustee", "init", tmp_path / f"t{n}"))
        trustees.append(re.search(r"did:key:\S+", made.stdout).group(0))  # type: ignore[union-attr]
    definition = _definition(tmp_path / "poll.json", trustees)
    _ok(civic(*base, "poll", "create", definition, "--key", "city-hall",
              "--opens-in", "6", "--duration", "5"))  # fmt: skip
    for step in ("join", "deal", "ack"):
        for n in (1, 2, 3):
            _ok(civic(*base, "poll", "trustee", step, POLL, "--trustee", tmp_path / f"t{n}"))

    refused = civic(*base, "poll", "register", POLL, "--credential", credential,
                    "--wallet", wallet, "--disclose", "district")  # fmt: skip
    assert_one_error_line(refused, "missing_claim")  # the poll needs age_over_19
    registered = _ok(civic(*base, "poll", "register", POLL, "--credential", credential,
                           "--wallet", wallet, "--disclose", "age_over_19"))  # fmt: skip
    assert "pseudonym" in registered.stdout
    assert_one_error_line(
        civic(*base, "poll", "register", POLL, "--credential", credential,
              "--wallet", wallet, "--disclose", "age_over_19"),
        "already_registered",
    )  # fmt: skip
    early = civic(*base, "poll", "vote", POLL, "--choice", "1", "--wallet", wallet)
    assert_one_error_line(early, "poll_not_open")

    shown = json.loads(_ok(civic(*base, "poll", "show", POLL)).stdout)
    _wait_until(shown["poll"]["opens_ms"])
    _ok(civic(*base, "poll", "vote", POLL, "--choice", "1", "--wallet", wallet))
    changed = _ok(civic(*base, "poll", "vote", POLL, "--choice", "2", "--wallet", wallet))
    code = re.search(r"tracking code\s+([0-9a-f]{64})", changed.stdout)
    assert code is not None, changed.stdout
    proof_file = tmp_path / "ballot.proof.json"
    tracked = _ok(civic(*base, "poll", "track", POLL, "--wallet", wallet, "--out", proof_file))
    assert code.group(1) in tracked.stdout  # the counted ballot is the last one cast
    assert "inclusion proof verified" in tracked.stdout
    _ok(civic(*base, "proof", "verify", proof_file, "--genesis", city / "genesis.json"))
    stranger = tmp_path / "stranger"
    _ok(civic("wallet", "create", "--wallet", stranger))
    assert_one_error_line(
        civic(*base, "poll", "track", POLL, "--wallet", stranger), "not_registered"
    )
    two = civic(*base, "poll", "vote", POLL, "--choice", "0", "--choice", "2", "--wallet", wallet)
    assert_one_error_line(two, "invalid_choices")
    assert json.loads(_ok(civic(*base, "poll", "show", POLL)).stdout)["tally"] is None

    _wait_until(shown["poll"]["closes_ms"])
    for n in (1, 3):
        _ok(civic(*base, "poll", "trustee", "decrypt", POLL, "--trustee", tmp_path / f"t{n}"))
    published = _ok(civic(*base, "poll", "trustee", "publish", POLL, "--trustee", tmp_path / "t1"))
    assert "[0, 0, 1]" in published.stdout  # only the last vote counts
    verified = _ok(civic(*base, "poll", "verify", POLL))
    assert "failed" not in verified.stdout
    assert "[0, 0, 1]" in verified.stdout


def _wait_until(moment_ms: int) -> None:
    delay = (moment_ms + 50) / 1000 - time.time()
    if delay > 0:
        time.sleep(delay)
