"""``civic currency``, in-process through the real ``civic`` app: a help-coin distribution with
its progress bar, run again (nothing minted twice), a bad list refused, and ``show``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import Civic, assert_one_error_line, civic_command, new_runner, run_civic

from civicledger.agency.ledger import CityLedger, NodeLedger
from civicledger.city import NODE_KEY, AgencySpec, CityDir, Signer, create_city, load_key
from civicledger.crypto.keys import PrivateKey
from civicledger.node.embedded import EmbeddedNode

CURRENCY = "help-coin"


@pytest.fixture
def civic() -> Civic:
    return new_runner()


def _city_with_holders(root: Path, holders: int) -> tuple[CityDir, list[str]]:
    """A city whose treasury defined ``help-coin`` with reserve, and ``holders`` enrolled."""
    layout = create_city(
        root,
        city="Testville",
        chain_id="testville-1",
        agencies=[
            AgencySpec("treasury-office", "City Treasury", ("treasury",)),
            AgencySpec("custodian-bank", "Custodian Bank", ("custodian_bank",)),
            AgencySpec("welfare-office", "Welfare Office", ("enroller",)),
        ],
    )
    accounts = [PrivateKey.generate().public.did for _ in range(holders)]
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        ledger = NodeLedger(layout, node)
        ledger.send(
            "treasury-office",
            "currency",
            "define",
            {
                "currency_id": CURRENCY,
                "name": {"ko": "도움코인", "en": "Help coin"},
                "symbol": "HELP",
                "kind": "general",
                "holder_credential": "ResidentCard",
                "spend_categories": ["grocery"],
                "spend_regions": ["sangdang"],
                "p2p": False,
                "lot_ttl_days": 90,
                "balance_cap": 1_000_000,
                "monthly_purchase_cap": 500_000,
                "purchase_bonus_bp": 0,
            },
        )
        ledger.send(
            "custodian-bank",
            "currency",
            "attest_reserve",
            {"currency_id": CURRENCY, "amount": 10**9, "reference": "cd" * 32},
        )
        enroller = Signer("welfare-office", ledger.key("welfare-office"), node.chain)
        futures = [
            node.submit_nowait(
                enroller.sign(
                    "currency",
                    "enroll",
                    {"currency_id": CURRENCY, "account": a, "region": "sangdang"},
                )
            )
            for a in accounts
        ]
        assert all(f.result(60).ok for f in futures)
    return layout, accounts


def _fields(stdout: str) -> dict[str, str]:
    """The ``label  value`` lines after the first line."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines()[1:])


def test_distribute_then_show(civic: Civic, tmp_path: Path) -> None:
    layout, accounts = _city_with_holders(tmp_path / "city", 700)
    listing = tmp_path / "list.csv"
    listing.write_text("account,amount\n" + "".join(f"{a},50000\n" for a in accounts))
    base = ("--dir", layout.root)
    job = tmp_path / "job"

    first = civic(*base, "currency", "distribute", CURRENCY, listing,
                  "--key", "treasury-office", "--job", job)  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "700/700" in first.stderr
    assert _fields(first.stdout) == {
        "recipients": "700",
        "amount": "35,000,000 KRW",
        "batches": "2",
        "minted now": "2",
        "done before": "0",
    }

    again = civic(*base, "currency", "distribute", CURRENCY, listing,
                  "--key", "treasury-office", "--job", job)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert (_fields(again.stdout)["minted now"], _fields(again.stdout)["done before"]) == ("0", "2")

    shown = civic(*base, "currency", "show", CURRENCY)
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.stdout)
    assert record["definition"]["symbol"] == "HELP"
    assert record["totals"]["minted"] == record["totals"]["supply"] == 700 * 50_000


def test_a_bad_list_is_one_error_line(civic: Civic, tmp_path: Path) -> None:
    layout, accounts = _city_with_holders(tmp_path / "city", 2)
    listing = tmp_path / "list.csv"
    listing.write_text(f"account,amount\n{accounts[0]},10\n{accounts[1]},ten\n")
    result = civic("--dir", layout.root, "currency", "distribute", CURRENCY, listing,
                   "--key", "treasury-office", "--job", tmp_path / "job")  # fmt: skip
    line = assert_one_error_line(result, "bad_eligibility_list")
    assert "line 3" in line
    assert not (tmp_path / "job").exists()


def test_show_an_unknown_currency(civic: Civic, tmp_path: Path) -> None:
    layout, _ = _city_with_holders(tmp_path / "city", 0)
    result = civic("--dir", layout.root, "currency", "show", "no-such-coin")
    assert_one_error_line(result, "unknown_currency")


def test_a_killed_distribution_continues_and_mints_nothing_twice(tmp_path: Path) -> None:
    """A real ``civic`` process killed (SIGKILL) once its first batch is recorded; the same
    command run again finishes the job, and the totals are exact."""
    layout, accounts = _city_with_holders(tmp_path / "city", 8_000)
    listing = tmp_path / "list.csv"
    listing.write_text("account,amount\n" + "".join(f"{a},1000\n" for a in accounts))
    job = tmp_path / "job"
    command = ["--dir", str(layout.root), "currency", "distribute", CURRENCY, str(listing),
               "--key", "treasury-office", "--job", str(job)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "CIVIC_DIR"}
    progress = job / "progress.json"
    with subprocess.Popen(
        [*civic_command(), *command], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as first:  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and first.poll() is None:
            if progress.exists() and json.loads(progress.read_text())["done"]:
                break
            time.sleep(0.002)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    recorded = len(json.loads(progress.read_text())["done"])
    assert recorded >= 1
    again = run_civic(*command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    fields = _fields(again.stdout)
    assert int(fields["done before"]) >= recorded
    assert int(fields["minted now"]) > 0, "the first run was killed too late to test anything"
    assert int(fields["done before"]) + int(fields["minted now"]) == int(fields["batches"])
    totals = CityLedger(layout).query("currency", "totals", {"currency_id": CURRENCY})
    assert totals["minted"] == totals["supply"] == 8_000 * 1_000
