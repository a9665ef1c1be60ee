"""Help-coin distribution: mint to an eligibility list in batches, resumable after a crash.

The treasury hands the city's help coin (or any ``currency``) to a list of enrolled holders:

1. the list (CSV ``account,amount``; did:key accounts, positive integer KRW) is read and every
   row validated before anything is sent; one bad row refuses the whole file, and the error
   names every bad line (``EligibilityError``);
2. the rows are cut, in file order, into batches of at most ``BATCH_SIZE`` items whose items
   take at most ``BATCH_ITEM_BYTES`` of JSON (a transaction is at most 32 KiB on the wire, so
   a batch of did:key recipients holds about 380 items, not the contract's 500); batch ``i``'s
   id is the first 48 hex digits (192 bits; the contract takes ids of up to 63 characters) of
   ``SHA-256("civicledger/distribution/v1\\0" || job_id || "\\0" || i)``, so the same job
   always sends the same batches under the same ids;
3. each batch is one ``currency.mint_batch(currency_id, items, batch_id)`` signed by the
   treasury key; after its receipt the batch's index is added to ``progress.json`` in the job
   directory (written atomically: a crash leaves the old file or the new one).

Invariants (why a restart never mints twice): the job id and the list's digest are written to
the job directory before the first batch is sent, so a restart with the same job directory
sends the same batch ids; the contract records every batch id and refuses a repeated one with
``batch_done``, which this module counts as done. A crash between a commit and the progress
write therefore costs one refused transaction, never a second mint. Another list in the same
job directory is refused (``job_mismatch``); the same list in a new job directory is a new
distribution (next month's help coin) and mints again.

On a ``NodeLedger`` batches are signed ahead and several are in flight at once (pipelined);
the treasury key should then sign nothing else on that node meanwhile (a colliding nonce is
refused, which stops the run; run it again to finish). Elsewhere each batch waits for its
receipt before the next is sent.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NewType

from civicledger.agency.ledger import RECEIPT_TIMEOUT_S, AgencyLedger, NodeLedger, TxFailed
from civicledger.city import Signer
from civicledger.crypto.keys import PublicKey
from civicledger.errors import CivicError, EncodingError
from civicledger.files import read_private_file, replace_private_file
from civicledger.ledger.receipt import Receipt

__all__ = [
    "BATCH_SIZE",
    "CURRENCY_CONTRACT",
    "Distribution",
    "DistributionError",
    "DistributionReport",
    "EligibilityError",
    "Krw",
    "ProgressFn",
    "Recipient",
    "batch_id",
    "plan_batches",
    "read_eligibility",
]

Krw = NewType("Krw", int)
"""An amount of won (1 unit = 1 KRW); never a float."""

CURRENCY_CONTRACT = "currency"
BATCH_SIZE = 500
"""The most items ``currency.mint_batch`` takes."""
BATCH_ITEM_BYTES = 31_000
"""The most JSON bytes of one batch's items: the rest of the transaction (signer, ids,
signature, envelope) fits in the remaining 1.7 KiB of the 32 KiB wire limit."""
MAX_AMOUNT = 10**12
"""The largest amount the currency contract takes in one item."""
MAX_LIST_BYTES = 64 * 1024 * 1024
PIPELINE_DEPTH = 4
"""Batches in flight at once on a NodeLedger: enough to fill a block while the next is signed."""
PROGRESS_FILE = "progress.json"
_PROGRESS_MAX_BYTES = 16 * 1024 * 1024
_BATCH_DOMAIN = b"civicledger/distribution/v1\0"
_BATCH_ID_HEX = 48
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_HEADER = ["account", "amount"]
_SHOWN_PROBLEMS = 20
_BATCH_DONE = "batch_done"

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``, in recipients, after each batch is recorded (and once at the
start with what an earlier run already did)."""


class EligibilityError(CivicError):
    """An eligibility list with bad rows; ``problems`` holds ``(line, message)`` for each."""

    reason = "bad_eligibility_list"

    def __init__(self, problems: Sequence[tuple[int, str]]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(f"line {line}: {message}" for line, message in problems[:_SHOWN_PROBLEMS])
        more = len(problems) - _SHOWN_PROBLEMS
        super().__init__(
            f"{len(problems)} bad row(s), nothing sent: {shown}"
            + (f"; and {more} more" if more > 0 else "")
        )


class DistributionError(CivicError):
    """The job directory does not fit this distribution (``job_mismatch``) or is unreadable
    (``bad_job``)."""

    reason = "bad_job"


@dataclass(frozen=True)
class Recipient:
    """One validated row of an eligibility list."""

    account: str
    """The holder's account in the currency: a did:key (enrolled beforehand)."""
    amount: Krw
    """What the holder receives, in won (positive)."""
    line: int
    """The row's line in the file, for messages."""

    def __post_init__(self) -> None:
        PublicKey.from_did(self.account)
        if not 0 < self.amount <= MAX_AMOUNT:
            raise EncodingError(f"amount out of range: {self.amount}")


@dataclass(frozen=True)
class DistributionReport:
    """What one run did; ``sent + already_done + found_done == batches`` after a full run."""

    job_id: str
    batches: int
    recipients: int
    amount: Krw
    """Total won of the list."""
    sent: int
    """Batches minted by this run."""
    already_done: int
    """Batches the progress file recorded as done before this run."""
    found_done: int
    """Batches the ledger refused as ``batch_done`` (committed by a run that crashed before
    recording them)."""


def batch_id(job_id: str, index: int) -> str:
    """The ledger id of batch ``index`` of job ``job_id`` (48 hex digits)."""
    digest = hashlib.sha256(_BATCH_DOMAIN + job_id.encode("ascii") + b"\0%d" % index)
    return digest.hexdigest()[:_BATCH_ID_HEX]


def _item(recipient: Recipient) -> dict[str, Any]:
    return {"to": recipient.account, "amount": recipient.amount}


def plan_batches(recipients: Sequence[Recipient]) -> list[tuple[Recipient, ...]]:
    """Cut the recipients, in order, into batches of at most ``BATCH_SIZE`` items and
    ``BATCH_ITEM_BYTES`` of items; the same list always gives the same batches."""
    batches: list[tuple[Recipient, ...]] = []
    current: list[Recipient] = []
    size = 0
    for recipient in recipients:
        cost = len(json.dumps(_item(recipient), separators=(",", ":"))) + 1
        if current and (len(current) == BATCH_SIZE or size + cost > BATCH_ITEM_BYTES):
            batches.append(tuple(current))
            current, size = [], 0
        current.append(recipient)
        size += cost
    if current:
        batches.append(tuple(current))
    return batches


def read_eligibility(data: bytes) -> tuple[Recipient, ...]:
    """Parse and validate a whole eligibility list (CSV with the header ``account,amount``).

    Raises ``EligibilityError`` naming every bad line: not UTF-8, a missing or wrong header,
    a wrong number of fields, an account that is not an Ed25519 did:key, an amount that is
    not a positive integer of won, an account listed twice, or an empty list. Blank lines are
    skipped.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise EligibilityError([(1 + data[: e.start].count(b"\n"), "not UTF-8")]) from e
    rows = csv.reader(text.splitlines())
    problems: list[tuple[int, str]] = []
    header = next(rows, None)
    if header is None or [h.strip() for h in header] != _HEADER:
        problems.append((1, f"the first line must be the header {','.join(_HEADER)}"))
    recipients: list[Recipient] = []
    first_seen: dict[str, int] = {}
    for row in rows:
        line = rows.line_num
        if not any(field.strip() for field in row):
            continue
        found = _row(row, line, first_seen)
        if isinstance(found, str):
            problems.append((line, found))
        else:
            first_seen[found.account] = line
            recipients.append(found)
    if not recipients and not problems:
        problems.append((1, "the list has no recipients"))
    if problems:
        raise EligibilityError(problems)
    return tuple(recipients)


def _row(row: list[str], line: int, first_seen: dict[str, int]) -> Recipient | str:
    """The recipient in ``row``, or what is wrong with it."""
    if len(row) != len(_HEADER):
        return f"expected 2 fields (account,amount), got {len(row)}"
    account, amount_text = (field.strip() for field in row)
    try:
        PublicKey.from_did(account)
    except EncodingError:
        return f"account is not an Ed25519 did:key: {account[:80]!r}"
    if not (amount_text.isascii() and amount_text.isdigit()):
        return f"amount must be a positive integer of won: {amount_text[:40]!r}"
    amount = int(amount_text)
    if not 0 < amount <= MAX_AMOUNT:
        return f"amount out of range: {amount_text[:40]}"
    if account in first_seen:
        return f"account already listed on line {first_seen[account]}"
    return Recipient(account, Krw(amount), line)


@dataclass
class _Job:
    """The job directory's ``progress.json``."""

    job_id: str
    currency_id: str
    list_sha256: str
    batches: int
    done: set[int]

    def to_bytes(self) -> bytes:
        record = {
            "version": 1,
            "job_id": self.job_id,
            "currency_id": self.currency_id,
            "list_sha256": self.list_sha256,
            "batches": self.batches,
            "done": sorted(self.done),
        }
        return json.dumps(record, indent=1).encode("utf-8") + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, path: Path) -> _Job:
        try:
            record = json.loads(data)
            version = record["version"]
            job = cls(
                job_id=str(record["job_id"]),
                currency_id=str(record["currency_id"]),
                list_sha256=str(record["list_sha256"]),
                batches=int(record["batches"]),
                done={int(i) for i in record["done"]},
            )
        except (ValueError, KeyError, TypeError) as e:
            raise DistributionError(f"{path} is not a distribution progress file") from e
        if (
            version != 1
            or _JOB_ID.fullmatch(job.job_id) is None
            or not job.done <= set(range(job.batches))
        ):
            raise DistributionError(f"{path} is not a distribution progress file (version 1)")
        return job


class Distribution:
    """Mints a currency to an eligibility list for the treasury, batch by batch, resumably.

    One job directory holds one distribution (one list); ``run`` again after an interruption
    continues where the ledger and the progress file say it stopped.
    """

    def __init__(
        self, ledger: AgencyLedger, treasury_key_name: str, currency_id: str, job_dir: Path
    ) -> None:
        self.ledger = ledger
        self.treasury_key_name = treasury_key_name
        self.currency_id = currency_id
        self.job_dir = Path(job_dir)

    @property
    def progress_path(self) -> Path:
        return self.job_dir / PROGRESS_FILE

    def run_file(self, path: Path, progress: ProgressFn | None = None) -> DistributionReport:
        """Distribute the list in ``path`` (see ``run``)."""
        with path.open("rb") as handle:
            data = handle.read(MAX_LIST_BYTES + 1)
        if len(data) > MAX_LIST_BYTES:
            raise EligibilityError([(1, f"the list is larger than {MAX_LIST_BYTES} bytes")])
        return self.run(data, progress)

    def run(self, list_bytes: bytes, progress: ProgressFn | None = None) -> DistributionReport:
        """Validate the whole list, then mint every batch not yet done; returns what it did.

        Raises ``EligibilityError`` (nothing sent), ``DistributionError`` (the job directory
        holds another distribution), ``TxFailed`` (the ledger refused a batch for another
        reason than ``batch_done``: ``reserve_exceeded``, ``not_enrolled``, ``balance_cap``, …;
        batches before it stay done) or whatever ``progress`` raises.
        """
        recipients = read_eligibility(list_bytes)
        batches = plan_batches(recipients)
        job = self._open_job(hashlib.sha256(list_bytes).hexdigest(), len(batches))
        total = len(recipients)
        already_done = len(job.done)
        done_count = sum(len(batches[i]) for i in job.done)
        counts = {"sent": 0, "found_done": 0}
        if progress is not None:
            progress(done_count, total)

        def record(index: int, outcome: str) -> None:
            nonlocal done_count
            job.done.add(index)
            replace_private_file(self.progress_path, job.to_bytes())
            counts[outcome] += 1
            done_count += len(batches[index])
            if progress is not None:
                progress(done_count, total)

        todo = [i for i in range(len(batches)) if i not in job.done]
        if isinstance(self.ledger, NodeLedger):
            self._run_pipelined(job, batches, todo, record)
        else:
            for index in todo:
                record(index, self._send_one(job, batches[index], index))
        return DistributionReport(
            job_id=job.job_id,
            batches=len(batches),
            recipients=total,
            amount=Krw(sum(r.amount for r in recipients)),
            sent=counts["sent"],
            already_done=already_done,
            found_done=counts["found_done"],
        )

    def _open_job(self, list_sha256: str, batches: int) -> _Job:
        """The job recorded in the job directory, or a new one (written before any send)."""
        path = self.progress_path
        try:
            data = read_private_file(path, _PROGRESS_MAX_BYTES)
        except FileNotFoundError:
            job = _Job(secrets.token_hex(16), self.currency_id, list_sha256, batches, set())
            replace_private_file(path, job.to_bytes())
            return job
        except OSError as e:
            raise DistributionError(f"cannot read {path}: {e}") from e
        job = _Job.from_bytes(data, path)
        if job.currency_id != self.currency_id or job.list_sha256 != list_sha256:
            raise DistributionError(
                f"{self.job_dir} holds the distribution of another list or currency "
                f"({job.currency_id}, list SHA-256 {job.list_sha256[:16]}…); "
                "use a new job directory for a new distribution",
                reason="job_mismatch",
            )
        if job.batches != batches:
            raise DistributionError(f"{path} records {job.batches} batches, not {batches}")
        return job

    def _args(self, job: _Job, batch: Sequence[Recipient], index: int) -> dict[str, Any]:
        return {
            "currency_id": self.currency_id,
            "items": [_item(r) for r in batch],
            "batch_id": batch_id(job.job_id, index),
        }

    def _send_one(self, job: _Job, batch: Sequence[Recipient], index: int) -> str:
        try:
            self.ledger.send(
                self.treasury_key_name,
                CURRENCY_CONTRACT,
                "mint_batch",
                self._args(job, batch, index),
            )
        except TxFailed as e:
            if e.reason == _BATCH_DONE:
                return "found_done"
            raise
        return "sent"

    def _run_pipelined(
        self,
        job: _Job,
        batches: Sequence[Sequence[Recipient]],
        todo: Sequence[int],
        record: Callable[[int, str], None],
    ) -> None:
        """Keep up to ``PIPELINE_DEPTH`` batches in flight on the lent node; record in order.

        A refusal stops signing; the batches already in flight are awaited and recorded before
        the first refusal is raised.
        """
        assert isinstance(self.ledger, NodeLedger)
        node = self.ledger.node
        key = self.ledger.key(self.treasury_key_name)
        signer = Signer(self.treasury_key_name, key, node.chain)
        flight: deque[tuple[int, Future[Receipt]]] = deque()
        pending = iter(todo)
        failure: BaseException | None = None

        def fill() -> None:
            while len(flight) < PIPELINE_DEPTH:
                index = next(pending, None)
                if index is None:
                    return
                tx = signer.sign(
                    CURRENCY_CONTRACT, "mint_batch", self._args(job, batches[index], index)
                )
                flight.append((index, node.submit_nowait(tx)))

        try:
            fill()
        except CivicError as e:
            failure = e
        while flight:
            index, future = flight.popleft()
            try:
                outcome = _outcome(future.result(RECEIPT_TIMEOUT_S))
            except (CivicError, TimeoutError) as e:
                failure = failure or e
                continue
            # What ``record`` raises (the progress callback's error) stops the run at once;
            # batches still in flight are then found done by the next run.
            record(index, outcome)
            if failure is None:
                try:
                    fill()
                except CivicError as e:
                    failure = e
        if failure is not None:
            raise failure


def _outcome(receipt: Receipt) -> str:
    if receipt.ok:
        return "sent"
    if receipt.reason == _BATCH_DONE:
        return "found_done"
    raise TxFailed(
        receipt.message or "currency.mint_batch failed", reason=receipt.reason or "failed"
    )
