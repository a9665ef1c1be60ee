"""``civic currency attest`` (reward points from attested activity) and ``civic currency
expire`` (the daily sweep returning expired value to the issuer), through the real app."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import Civic, assert_one_error_line, new_city, new_runner
from test_cli_currency_flow import DEFINITION
from typer.testing import Result

from civicledger.services.identity.wallet import Wallet

POINTS = "eco-points"


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def test_activity_points_and_an_empty_sweep(tmp_path: Path) -> None:
    civic: Civic = new_runner()
    city = new_city(civic, tmp_path / "city")
    base = ("--dir", city)
    for role in ("treasury", "custodian_bank", "enroller", "activity_attestor"):
        _ok(civic(*base, "tx", "send", "governance", "grant_role", "--key", "root",
                  "--args", json.dumps({"agency": "city-hall", "role": role})))  # fmt: skip
    definition = {
        **DEFINITION,
        "currency_id": POINTS,
        "kind": "points",
        "activity_rates": {"volunteer_hour": 700, "kwh_saved": 50},
    }
    path = tmp_path / "points.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    _ok(civic(*base, "currency", "define", path, "--key", "city-hall"))
    _ok(civic(*base, "currency", "reserve", POINTS, "100000", "--reference", "budget line 7",
              "--key", "city-hall"))  # fmt: skip
    wallet = tmp_path / "volunteer"
    _ok(civic("wallet", "create", "--wallet", wallet))
    account = Wallet.open(wallet).currency_key(POINTS).public.did
    _ok(civic(*base, "currency", "enroll", POINTS, account, "--key", "city-hall"))

    _ok(civic(*base, "currency", "attest", POINTS, account, "volunteer_hour", "3",
              "--reference", "centre log 2026-11-25 #12", "--key", "city-hall"))  # fmt: skip
    _ok(civic(*base, "currency", "attest", POINTS, account, "kwh_saved", "40",
              "--reference", "meter reading 2026-11", "--key", "city-hall"))  # fmt: skip
    shown = json.loads(
        _ok(civic(*base, "currency", "balance", POINTS, "--wallet", wallet, "--json")).stdout
    )
    assert shown["balance"] == 3 * 700 + 40 * 50
    again = civic(*base, "currency", "attest", POINTS, account, "kwh_saved", "40",
                  "--reference", "meter reading 2026-11", "--key", "city-hall")  # fmt: skip
    assert_one_error_line(again, "duplicate_reference")  # one record earns once
    unknown = civic(*base, "currency", "attest", POINTS, account, "gardening", "1",
                    "--reference", "x", "--key", "city-hall")  # fmt: skip
    assert_one_error_line(unknown, "unknown_activity")

    # Nothing has expired yet (lots last days): the sweep visits every holder and returns 0.
    swept = _ok(civic(*base, "currency", "expire", POINTS, "--key", "city-hall"))
    assert "0 KRW from 0 account(s)" in swept.stdout
    totals = json.loads(_ok(civic(*base, "currency", "show", POINTS)).stdout)["totals"]
    assert (totals["minted"], totals["expired"], totals["supply"]) == (4_100, 0, 4_100)
