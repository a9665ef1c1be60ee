"""An offline gate for one site: it checks visitor passes without the network and queues the
check-ins for the ``visits`` contract.

While online, ``Gate.sync`` verifies the coming period's passes through a ``RecordingLedger``,
which keeps every ledger answer and status list that verification read (the issuer's DID
document at issuance, its ``VisitorPass`` grant, its anchored status list), and stores that
``LedgerSnapshot`` with the time it was taken. Offline, ``Gate.check`` verifies a pass from its
QR payload against the snapshot alone: the holder's presentation must answer one of the gate's
own single-use challenges (``new_challenge``), the pass must be a ``VisitorPass`` inside its
validity window, and the snapshot must be younger than ``max_snapshot_age``. Each accepted check
is appended to a journal before ``check`` returns; back online the caller sends ``pending()`` as
``visits.check_in_batch`` transactions (``batch_args``) and then calls ``mark_uploaded``.

Invariants:

- Offline checks ask nothing but the snapshot: a question it cannot answer (a pass that was not
  synced) is a refusal (``ledger_data_missing``), never a call to the network. So a revocation
  anchored after the sync is seen only at the next sync: ``max_snapshot_age`` bounds that lag.
- Times come from the caller (``now``); nothing here reads the clock.
- A check-in is durable (written and fsync'd) before the gate reports the visitor admitted; a
  line torn by a crash was never reported and is dropped when the journal is next opened.
- The journal and the snapshot are private files (0600) in the gate's own directory; the queue
  carries only what goes on the ledger: site, pseudonym, pass issuer, check time.

Files in the gate's directory:
    snapshot.json   {"version", "taken_at_ms", "answers": [[question, answer]], "documents"}
    queue.jsonl     one JSON object a line: {"check_in": {...}} or {"uploaded": [[site, visit,
                    checked_at_ms]]}; rewritten empty once nothing is pending
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from civicledger.crypto.encoding import canonical_json, parse_json
from civicledger.errors import CivicError, EncodingError
from civicledger.files import fsync_directory, read_private_file, replace_private_file
from civicledger.ledger.genesis import AGENCY_ID_PATTERN
from civicledger.services.identity.credentials import (
    VISITOR_PASS,
    credential_id,
    from_qr_payload,
)
from civicledger.services.identity.resolver import QueryFn
from civicledger.services.identity.vc import parse_datetime, require_aware
from civicledger.services.identity.verifier import (
    FetchFn,
    LedgerSnapshot,
    MemoryChallenges,
    RecordingLedger,
    VerifiedCredential,
    Verifier,
)
from civicledger.services.identity.visits import MAX_BATCH, SITE_PATTERN, visit_pseudonym

__all__ = ["Admission", "Gate", "GateError", "QueuedCheckIn", "SyncReport"]

SNAPSHOT_FILE = "snapshot.json"
QUEUE_FILE = "queue.jsonl"
_SNAPSHOT_VERSION = 1
_MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024
_MAX_QUEUE_BYTES = 256 * 1024 * 1024


class GateError(CivicError):
    """The gate itself cannot check or queue; ``reason`` says why.

    Reasons: ``gate_not_synced``, ``gate_snapshot_stale``, ``gate_clock_behind`` (``now`` is
    before the snapshot was taken), ``not_one_pass`` (a presentation must carry exactly one
    pass), ``gate_snapshot_corrupt``, ``gate_queue_corrupt``, ``gate_storage_failed``.
    """

    reason = "gate_error"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)


@dataclass(frozen=True, slots=True)
class QueuedCheckIn:
    """One accepted check, as it will go on the ledger (no holder, no claims)."""

    site: str
    visit: str
    """``visits.visit_pseudonym`` of the pass's ``credential_id``."""
    pass_issuer: str
    """The did:civic of the agency that issued the pass."""
    checked_at_ms: int
    """The gate's ``now`` when it accepted the pass."""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.site, self.visit, self.checked_at_ms)

    def to_json(self) -> dict[str, Any]:
        """The entry of a ``visits.check_in_batch`` (and of the journal)."""
        return {
            "site": self.site,
            "visit": self.visit,
            "pass_issuer": self.pass_issuer,
            "checked_at_ms": self.checked_at_ms,
        }

    @classmethod
    def from_json(cls, raw: object) -> QueuedCheckIn:
        """A journal entry back; ``ValueError``/``TypeError`` for anything else."""
        if not isinstance(raw, Mapping):
            raise TypeError("a queued check-in is an object")
        if set(raw) != {"site", "visit", "pass_issuer", "checked_at_ms"}:
            raise ValueError("a queued check-in has site, visit, pass_issuer, checked_at_ms")
        site, visit, issuer, at = (
            raw[k] for k in ("site", "visit", "pass_issuer", "checked_at_ms")
        )
        if not all(isinstance(v, str) for v in (site, visit, issuer)) or type(at) is not int:
            raise TypeError("site, visit and pass_issuer are strings, checked_at_ms an integer")
        return cls(site, visit, issuer, at)


@dataclass(frozen=True, slots=True)
class Admission:
    """An accepted pass: what the guard may see, and what was queued for the ledger."""

    check_in: QueuedCheckIn
    credential: VerifiedCredential
    """The verified pass (holder, host, district): stays at the gate, never queued."""


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a sync recorded."""

    taken_at_ms: int
    ready: tuple[str, ...]
    """``credential_id`` of each pass the gate can now check offline."""
    refused: tuple[tuple[str, str], ...]
    """``(credential_id, reason)`` of each pass that failed verification while online."""


def _ms(moment: datetime) -> int:
    require_aware(moment)
    return int(moment.timestamp() * 1000)


class Gate:
    """The offline gate of ``site`` of ``agency``; presentations are made to ``domain``."""

    def __init__(
        self,
        directory: Path,
        *,
        agency: str,
        site: str,
        domain: str,
        max_snapshot_age: timedelta = timedelta(hours=24),
        challenge_ttl: timedelta = timedelta(minutes=2),
    ) -> None:
        if not re.fullmatch(AGENCY_ID_PATTERN, agency):
            raise ValueError(f"{agency[:70]!r} is not an agency id")
        if not re.fullmatch(SITE_PATTERN, site):
            raise ValueError(f"{site[:70]!r} is not a site id")
        if not domain:
            raise ValueError("a gate needs a domain")
        if max_snapshot_age <= timedelta(0) or challenge_ttl <= timedelta(0):
            raise ValueError("max_snapshot_age and challenge_ttl must be positive")
        self.agency, self.site, self.domain = agency, site, domain
        self.directory = Path(directory)
        self._max_age_ms = int(max_snapshot_age.total_seconds() * 1000)
        self._challenges = MemoryChallenges(int(challenge_ttl.total_seconds() * 1000))
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise GateError("gate_storage_failed", f"cannot create {self.directory}: {e}") from e
        self._verifier: Verifier | None = None
        self.taken_at_ms: int | None = None
        """When the current snapshot was taken (ms), or None before the first sync."""
        self._queued: list[QueuedCheckIn] = []
        self._uploaded: set[tuple[str, str, int]] = set()
        self._load_snapshot()
        self._load_queue()

    # -- online ---------------------------------------------------------------------------------

    def sync(
        self,
        query: QueryFn,
        fetch: FetchFn,
        passes: Iterable[Mapping[str, Any]],
        *,
        now: datetime,
    ) -> SyncReport:
        """Verify ``passes`` online and keep what that read as the new snapshot.

        Give every pass the gate should admit until the next sync: the snapshot answers only
        the questions these verifications asked. A pass whose window has not begun is checked
        as of its ``validFrom``. The previous snapshot is kept if storing the new one fails.
        """
        taken_at_ms = _ms(now)
        recording = RecordingLedger(query, fetch)
        online = Verifier(recording.query, recording.fetch, domain=self.domain)
        ready: list[str] = []
        refused: list[tuple[str, str]] = []
        for document in passes:
            try:
                pass_id = credential_id(document)
            except EncodingError as e:
                refused.append(("", e.reason))
                continue
            try:
                valid_from = parse_datetime(document.get("validFrom"), field="validFrom")
                online.verify_credential(
                    document, now=max(now, valid_from), expected_type=VISITOR_PASS.name
                )
            except CivicError as e:
                refused.append((pass_id, e.reason))
                continue
            ready.append(pass_id)
        self._store_snapshot(recording, taken_at_ms)
        snapshot = recording.snapshot()
        self._verifier = Verifier(
            snapshot.query, snapshot.fetch, domain=self.domain, challenges=self._challenges
        )
        self.taken_at_ms = taken_at_ms
        return SyncReport(taken_at_ms, tuple(ready), tuple(refused))

    def batch_args(self, check_ins: Sequence[QueuedCheckIn]) -> dict[str, Any]:
        """The args of a ``visits.check_in_batch`` transaction for ``check_ins``."""
        if not 1 <= len(check_ins) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} check-ins, not {len(check_ins)}")
        return {"agency": self.agency, "check_ins": [c.to_json() for c in check_ins]}

    def pending(self, limit: int | None = None) -> tuple[QueuedCheckIn, ...]:
        """Queued check-ins not yet marked uploaded, oldest first, each once."""
        found: list[QueuedCheckIn] = []
        seen: set[tuple[str, str, int]] = set()
        for check_in in self._queued:
            if check_in.key in self._uploaded or check_in.key in seen:
                continue
            seen.add(check_in.key)
            found.append(check_in)
            if limit is not None and len(found) >= limit:
                break
        return tuple(found)

    def mark_uploaded(self, check_ins: Iterable[QueuedCheckIn]) -> None:
        """Record that the ledger holds ``check_ins`` (recorded now or before: duplicates)."""
        keys = sorted({c.key for c in check_ins} - self._uploaded)
        if not keys:
            return
        self._append({"uploaded": [list(k) for k in keys]})
        self._uploaded.update(keys)
        if not self.pending(limit=1):
            try:
                replace_private_file(self._queue_path, b"")
            except OSError as e:
                raise GateError("gate_storage_failed", f"cannot compact the queue: {e}") from e
            self._queued, self._uploaded = [], set()

    # -- offline --------------------------------------------------------------------------------

    def new_challenge(self, now: datetime) -> str:
        """A fresh challenge for the next visitor's wallet to answer, valid ``challenge_ttl``."""
        return self._challenges.new(_ms(now))

    def check(self, qr_payload: str, *, now: datetime) -> Admission:
        """Check a presentation from its QR payload, offline; queue the check-in if accepted.

        Raises ``GateError`` (not synced, stale snapshot), ``ChallengeError``,
        ``CredentialError``, ``VerificationError``, ``DidResolutionError``,
        ``IssuerNotAuthorized`` or ``StatusError``, as ``Verifier`` does.
        """
        now_ms = _ms(now)
        verifier = self._fresh_verifier(now_ms)
        presentation = from_qr_payload(qr_payload)
        verified = verifier.verify_presentation(
            presentation, now=now, expected_type=VISITOR_PASS.name
        )
        if len(verified) != 1 or verified[0].credential is None:
            raise GateError("not_one_pass", "a visitor shows exactly one pass")
        (shown,) = verified
        assert shown.credential is not None
        check_in = QueuedCheckIn(
            site=self.site,
            visit=visit_pseudonym(credential_id(shown.credential)),
            pass_issuer=shown.issuer,
            checked_at_ms=now_ms,
        )
        self._append({"check_in": check_in.to_json()})
        self._queued.append(check_in)
        return Admission(check_in, shown)

    def _fresh_verifier(self, now_ms: int) -> Verifier:
        if self._verifier is None or self.taken_at_ms is None:
            raise GateError("gate_not_synced", "the gate has never synced with the ledger")
        if now_ms < self.taken_at_ms:
            raise GateError(
                "gate_clock_behind", "the gate's clock is before its snapshot was taken"
            )
        if now_ms - self.taken_at_ms > self._max_age_ms:
            raise GateError(
                "gate_snapshot_stale",
                f"the snapshot is {(now_ms - self.taken_at_ms) // 1000} s old; sync the gate",
            )
        return self._verifier

    # -- storage --------------------------------------------------------------------------------

    @property
    def _snapshot_path(self) -> Path:
        return self.directory / SNAPSHOT_FILE

    @property
    def _queue_path(self) -> Path:
        return self.directory / QUEUE_FILE

    def _store_snapshot(self, recording: RecordingLedger, taken_at_ms: int) -> None:
        document = {
            "version": _SNAPSHOT_VERSION,
            "taken_at_ms": taken_at_ms,
            "answers": [
                [question.decode("utf-8"), answer]
                for question, answer in sorted(recording.answers.items())
            ],
            "documents": recording.documents,
        }
        try:
            replace_private_file(self._snapshot_path, canonical_json(document))
        except (OSError, EncodingError) as e:
            raise GateError("gate_storage_failed", f"cannot store the snapshot: {e}") from e

    def _load_snapshot(self) -> None:
        try:
            data = read_private_file(self._snapshot_path, _MAX_SNAPSHOT_BYTES)
        except FileNotFoundError:
            return
        except OSError as e:
            raise GateError("gate_snapshot_corrupt", str(e)) from e
        try:
            document = parse_json(data)
        except EncodingError as e:
            raise GateError("gate_snapshot_corrupt", f"{self._snapshot_path}: {e}") from e
        if not isinstance(document, dict) or document.get("version") != _SNAPSHOT_VERSION:
            raise GateError("gate_snapshot_corrupt", f"{self._snapshot_path}: unknown format")
        taken, answers, documents = (
            document.get("taken_at_ms"),
            document.get("answers"),
            document.get("documents"),
        )
        if type(taken) is not int or not isinstance(answers, list):
            raise GateError("gate_snapshot_corrupt", f"{self._snapshot_path}: bad fields")
        if not isinstance(documents, dict) or not all(
            isinstance(a, list) and len(a) == 2 and isinstance(a[0], str) for a in answers
        ):
            raise GateError("gate_snapshot_corrupt", f"{self._snapshot_path}: bad fields")
        snapshot = LedgerSnapshot({q.encode("utf-8"): a for q, a in answers}, documents)
        self._verifier = Verifier(
            snapshot.query, snapshot.fetch, domain=self.domain, challenges=self._challenges
        )
        self.taken_at_ms = taken

    def _load_queue(self) -> None:
        try:
            data = read_private_file(self._queue_path, _MAX_QUEUE_BYTES)
        except FileNotFoundError:
            return
        except OSError as e:
            raise GateError("gate_queue_corrupt", str(e)) from e
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            # A crash tore the last line before its fsync: that check was never reported.
            try:
                os.truncate(self._queue_path, len(complete))
            except OSError as e:
                raise GateError("gate_storage_failed", f"cannot repair the queue: {e}") from e
        for number, line in enumerate(complete.splitlines(), start=1):
            try:
                self._replay(parse_json(line))
            except (EncodingError, ValueError, TypeError) as e:
                raise GateError(
                    "gate_queue_corrupt", f"{self._queue_path} line {number}: {e}"
                ) from e

    def _replay(self, entry: object) -> None:
        if isinstance(entry, dict) and set(entry) == {"check_in"}:
            self._queued.append(QueuedCheckIn.from_json(entry["check_in"]))
        elif isinstance(entry, dict) and set(entry) == {"uploaded"}:
            for site, visit, at in entry["uploaded"]:
                self._uploaded.add((str(site), str(visit), int(at)))
        else:
            raise ValueError("not a check_in or uploaded entry")

    def _append(self, entry: Mapping[str, Any]) -> None:
        """Append one line and fsync it (and, for a new file, its directory entry)."""
        line = canonical_json(dict(entry)) + b"\n"
        created = not self._queue_path.exists()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            fd = os.open(self._queue_path, flags, 0o600)
            try:
                written = memoryview(line)
                while written:
                    written = written[os.write(fd, written) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise GateError("gate_storage_failed", f"cannot queue the check-in: {e}") from e
        if created:
            fsync_directory(self.directory)
