"""Help-coin distribution (``agency.distribution``) against a real embedded node: a full run,
an interrupted run resumed without minting twice, a crash between commit and progress write,
a malformed list refused with its line numbers, and a job directory reused for another list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from currency_helpers import check_invariants, definition

from civicledger.agency.distribution import (
    Distribution,
    DistributionError,
    EligibilityError,
    batch_id,
    plan_batches,
    read_eligibility,
)
from civicledger.agency.ledger import CityLedger, NodeLedger, TxFailed
from civicledger.city import NODE_KEY, AgencySpec, CityDir, Signer, create_city, load_key
from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.tx import MAX_TX_BYTES, sign_tx
from civicledger.node.embedded import EmbeddedNode

CURRENCY = "help-coin"
AMOUNT = 100_000
TREASURY = "treasury-office"


def _city(root: Path) -> CityDir:
    return create_city(
        root,
        city="Testville",
        chain_id="testville-1",
        agencies=[
            AgencySpec(TREASURY, "City Treasury", ("treasury",)),
            AgencySpec("custodian-bank", "Custodian Bank", ("custodian_bank",)),
            AgencySpec("welfare-office", "Welfare Office", ("enroller",)),
        ],
    )


def _many(ledger: NodeLedger, signer_name: str, method: str, args: list[dict[str, Any]]) -> None:
    """Send many transactions of one signer at once (one nonce sequence) and wait for all."""
    node = ledger.node
    signer = Signer(signer_name, ledger.key(signer_name), node.chain)
    futures = [node.submit_nowait(signer.sign("currency", method, a)) for a in args]
    receipts = [f.result(60) for f in futures]
    assert all(r.ok for r in receipts), next(r for r in receipts if not r.ok)


def _prepare(ledger: NodeLedger, holders: int, reserve: int) -> list[str]:
    """Define the currency, attest ``reserve`` and enrol ``holders`` fresh accounts."""
    ledger.send(TREASURY, "currency", "define", definition())
    ledger.send(
        "custodian-bank",
        "currency",
        "attest_reserve",
        {"currency_id": CURRENCY, "amount": reserve, "reference": "ab" * 32},
    )
    accounts = [PrivateKey.generate().public.did for _ in range(holders)]
    enrolments = [{"currency_id": CURRENCY, "account": a, "region": "north"} for a in accounts]
    _many(ledger, "welfare-office", "enroll", enrolments)
    return accounts


def _csv(path: Path, accounts: list[str], amount: int = AMOUNT) -> Path:
    path.write_text(
        "account,amount\n" + "".join(f"{a},{amount + i % 7}\n" for i, a in enumerate(accounts))
    )
    return path


def _expected(accounts: list[str], amount: int = AMOUNT) -> int:
    return sum(amount + i % 7 for i in range(len(accounts)))


def _balance(ledger: NodeLedger | CityLedger, account: str) -> int:
    found = ledger.query("currency", "balance", {"currency_id": CURRENCY, "account": account})
    return int(found["balance"] if isinstance(found, dict) else found)


def _totals(ledger: NodeLedger | CityLedger) -> dict[str, Any]:
    found = ledger.query("currency", "totals", {"currency_id": CURRENCY})
    assert isinstance(found, dict)
    return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[NodeLedger]:
    layout = _city(tmp_path / "city")
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        yield NodeLedger(layout, node)


def test_a_distribution_mints_every_row_once(served: NodeLedger, tmp_path: Path) -> None:
    accounts = _prepare(served, 1_200, reserve=10**10)
    seen: list[tuple[int, int]] = []
    job = Distribution(served, TREASURY, CURRENCY, tmp_path / "job")
    report = job.run_file(_csv(tmp_path / "list.csv", accounts), lambda d, t: seen.append((d, t)))
    # A batch is bounded by the 32 KiB transaction size: 378 did:key items, not 500.
    assert (report.batches, report.recipients, report.sent) == (4, 1_200, 4)
    assert (report.already_done, report.found_done) == (0, 0)
    assert report.amount == _expected(accounts)
    assert seen == [(0, 1_200), (378, 1_200), (756, 1_200), (1_134, 1_200), (1_200, 1_200)]
    assert [_balance(served, a) for a in accounts[:3]] == [AMOUNT, AMOUNT + 1, AMOUNT + 2]
    assert _balance(served, accounts[-1]) == AMOUNT + (len(accounts) - 1) % 7
    totals = _totals(served)
    assert totals["minted"] == totals["supply"] == _expected(accounts)
    check_invariants(served.node.chain, CURRENCY)
    again = job.run_file(tmp_path / "list.csv")
    assert (again.sent, again.already_done, again.job_id) == (0, 4, report.job_id)
    assert _totals(served)["minted"] == _expected(accounts)


class _StopError(Exception):
    pass


def test_an_interrupted_distribution_resumes_without_minting_twice(
    served: NodeLedger, tmp_path: Path
) -> None:
    accounts = _prepare(served, 1_200, reserve=10**10)
    listing = _csv(tmp_path / "list.csv", accounts)
    job = Distribution(served, TREASURY, CURRENCY, tmp_path / "job")

    def stop_after_first_batch(done: int, total: int) -> None:
        if done > 0:
            raise _StopError

    with pytest.raises(_StopError):
        job.run_file(listing, stop_after_first_batch)
    progress = json.loads((tmp_path / "job" / "progress.json").read_text())
    assert progress["done"] == [0]
    # Batches pipelined behind the first may have been committed but are not recorded: the
    # resumed run finds them done on the ledger.
    resumed = job.run_file(listing)
    assert resumed.already_done == 1
    assert resumed.sent + resumed.found_done == 3
    assert _totals(served)["minted"] == _expected(accounts)
    assert {_balance(served, a) for a in accounts[::7]} == {AMOUNT}
    check_invariants(served.node.chain, CURRENCY)


def test_a_crash_between_commit_and_progress_write_is_safe(
    served: NodeLedger, tmp_path: Path
) -> None:
    accounts = _prepare(served, 1_200, reserve=10**10)
    listing = _csv(tmp_path / "list.csv", accounts)
    job = Distribution(served, TREASURY, CURRENCY, tmp_path / "job")
    first = job.run_file(listing)
    # Forget the progress of batches 1 to 3, as if the process died right after their commits.
    path = tmp_path / "job" / "progress.json"
    progress = json.loads(path.read_text())
    path.write_text(json.dumps({**progress, "done": [0]}))
    again = job.run_file(listing)
    assert (again.job_id, again.already_done, again.found_done, again.sent) == (
        first.job_id,
        1,
        3,
        0,
    )
    assert _totals(served)["minted"] == _expected(accounts)


def test_one_at_a_time_through_a_city_ledger(tmp_path: Path) -> None:
    """The CLI-style ledger (the node opened per write) takes the one-by-one path."""
    layout = _city(tmp_path / "city")
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        accounts = _prepare(NodeLedger(layout, node), 600, reserve=10**10)
    ledger = CityLedger(layout)
    report = Distribution(ledger, TREASURY, CURRENCY, tmp_path / "job").run_file(
        _csv(tmp_path / "list.csv", accounts)
    )
    assert (report.batches, report.sent) == (2, 2)
    assert _totals(ledger)["minted"] == _expected(accounts)
    assert _balance(ledger, accounts[5]) == AMOUNT + 5


def test_a_refused_batch_stops_the_run_and_keeps_what_was_done(
    served: NodeLedger, tmp_path: Path
) -> None:
    accounts = _prepare(served, 700, reserve=500 * AMOUNT)
    with pytest.raises(TxFailed) as refused:
        Distribution(served, TREASURY, CURRENCY, tmp_path / "job").run_file(
            _csv(tmp_path / "list.csv", accounts, amount=AMOUNT)
        )
    assert refused.value.reason == "reserve_exceeded"
    assert json.loads((tmp_path / "job" / "progress.json").read_text())["done"] == [0]
    assert _totals(served)["minted"] == _expected(accounts[:378])


def test_a_malformed_list_is_refused_with_line_numbers_and_nothing_minted(
    served: NodeLedger, tmp_path: Path
) -> None:
    accounts = _prepare(served, 5, reserve=10**10)
    rows = [
        "account,amount",
        f"{accounts[0]},1000",
        f"{accounts[1]},12.5",
        "did:key:zNotAKey,1000",
        "",
        f"{accounts[2]},-3",
        f"{accounts[3]},1000,extra",
        f"{accounts[0]},2000",
        f"{accounts[4]},0",
    ]
    listing = tmp_path / "list.csv"
    listing.write_text("\n".join(rows) + "\n")
    with pytest.raises(EligibilityError) as refused:
        Distribution(served, TREASURY, CURRENCY, tmp_path / "job").run_file(listing)
    assert [line for line, _ in refused.value.problems] == [3, 4, 6, 7, 8, 9]
    assert "line 8: account already listed on line 2" in refused.value.message
    assert refused.value.reason == "bad_eligibility_list"
    assert not (tmp_path / "job").exists()
    assert _totals(served)["minted"] == 0


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [
        (b"", 1, "header"),
        (b"account,amount\n", 1, "no recipients"),
        (b"who,what\n", 1, "header"),
        (b"account,amount\n\xff,1\n", 2, "UTF-8"),
        (b"account,amount\ndid:key:z6Mk,1\n", 2, "did:key"),
        (b"account,amount\n%s,1000000000001\n", 2, "out of range"),
        (b"account,amount\n%s,\xef\xbc\x91\n", 2, "positive integer"),
    ],
)
def test_bad_lists(data: bytes, line: int, fragment: str) -> None:
    if b"%s" in data:
        data = data % PrivateKey.generate().public.did.encode()
    with pytest.raises(EligibilityError) as refused:
        read_eligibility(data)
    assert refused.value.problems[0][0] == line
    assert fragment in refused.value.problems[0][1]


def test_another_list_in_the_same_job_directory_is_refused(
    served: NodeLedger, tmp_path: Path
) -> None:
    accounts = _prepare(served, 3, reserve=10**10)
    job = Distribution(served, TREASURY, CURRENCY, tmp_path / "job")
    job.run_file(_csv(tmp_path / "a.csv", accounts))
    with pytest.raises(DistributionError) as refused:
        job.run_file(_csv(tmp_path / "b.csv", accounts[:2]))
    assert refused.value.reason == "job_mismatch"
    other = Distribution(served, TREASURY, "other-coin", tmp_path / "job")
    with pytest.raises(DistributionError):
        other.run_file(tmp_path / "a.csv")


def test_the_largest_batches_fit_in_a_transaction() -> None:
    """Every batch of the widest rows (13-digit amounts), signed with the longest currency id,
    stays under the wire limit; rows stay in file order."""
    accounts = [PrivateKey.generate().public.did for _ in range(1_001)]
    rows = "".join(f"{a},{10**12}\n" for a in accounts)
    batches = plan_batches(read_eligibility(b"account,amount\n" + rows.encode()))
    assert len(batches) == 3
    assert [r.line for b in batches for r in b] == list(range(2, 1_003))
    key = PrivateKey.generate()
    for index, batch in enumerate(batches):
        args = {
            "currency_id": "c" * 63,
            "items": [{"to": r.account, "amount": r.amount} for r in batch],
            "batch_id": batch_id("ff" * 16, index),
        }
        tx = sign_tx(
            key,
            chain_id="c" * 64,
            nonce=2**53 - 1,
            contract="currency",
            method="mint_batch",
            args=args,
            expires_at=2**53 - 1,
        )
        assert len(tx.envelope_bytes()) <= MAX_TX_BYTES


def test_batch_ids_are_deterministic_and_distinct() -> None:
    assert batch_id("00" * 16, 0) == batch_id("00" * 16, 0)
    ids = {batch_id(job, i) for job in ("00" * 16, "11" * 16) for i in range(100)}
    assert len(ids) == 200
    assert all(len(i) == 48 for i in ids)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"version": 2, "job_id": "00000000000000000000000000000000", "currency_id": "help-coin",'
        b' "list_sha256": "x", "batches": 1, "done": []}',
        b'{"version": 1, "job_id": "../../etc", "currency_id": "help-coin",'
        b' "list_sha256": "x", "batches": 1, "done": []}',
        b'{"version": 1, "job_id": "00000000000000000000000000000000", "currency_id": "help-coin",'
        b' "list_sha256": "x", "batches": 1, "done": [5]}',
    ],
)
def test_a_damaged_progress_file_is_refused(tmp_path: Path, content: bytes) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "progress.json").write_bytes(content)
    (job / "progress.json").chmod(0o600)
    listing = tmp_path / "list.csv"
    listing.write_text(f"account,amount\n{PrivateKey.generate().public.did},5\n")
    ledger = CityLedger(CityDir(tmp_path / "no-city"))
    with pytest.raises(DistributionError) as refused:
        Distribution(ledger, TREASURY, CURRENCY, job).run_file(listing)
    assert refused.value.reason == "bad_job"
