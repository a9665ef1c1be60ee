"""``civic currency report`` and ``flags`` through the real ``civic`` app."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from cli_helpers import assert_one_error_line, new_runner
from test_cli_currency import CURRENCY, _city_with_holders


def test_report_as_json_and_csv_then_flags(tmp_path: Path) -> None:
    civic = new_runner()
    layout, _ = _city_with_holders(tmp_path / "city", 2)
    base = ("--dir", layout.root)

    shown = civic(*base, "currency", "report", CURRENCY)
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert report["ok"] is True
    assert report["reserve"] == report["totals"]["reserve"] == 10**9
    assert [c["name"] for c in report["checks"]][:2] == ["supply_identity", "reserve_backing"]

    out = tmp_path / "report.csv"
    written = civic(*base, "currency", "report", CURRENCY, "--day", report["day"],
                    "--format", "csv", "--out", out)  # fmt: skip
    assert written.exit_code == 0, written.output
    rows = {
        (r["section"], r["key"]): int(r["value"])
        for r in csv.DictReader(out.read_text().splitlines())
    }
    assert rows["day", "reserve"] == 10**9
    assert rows["check", "supply_identity"] == 1

    flags = civic(*base, "currency", "flags", CURRENCY, "--since-days", "2")
    assert flags.exit_code == 0, flags.output
    assert json.loads(flags.stdout) == []


def test_report_refusals_are_one_error_line(tmp_path: Path) -> None:
    civic = new_runner()
    layout, _ = _city_with_holders(tmp_path / "city", 0)
    base = ("--dir", layout.root)
    assert_one_error_line(civic(*base, "currency", "report", "no-such-coin"), "unknown_currency")
    bad_day = civic(*base, "currency", "report", CURRENCY, "--day", "2024-13-01")
    assert_one_error_line(bad_day, "bad_day")
    bad_format = civic(*base, "currency", "report", CURRENCY, "--format", "xml")
    assert_one_error_line(bad_format, "bad_format")
