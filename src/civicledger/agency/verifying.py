"""Verifying from a city directory: its status lists, and challenges that outlive a process.

The CLI issues a challenge in one process (``civic identity challenge``) and verifies the answer
in another (``civic identity verify``), so challenges live in files::

    <city>/identity/_verifier/challenges/   one file per challenge; consumed by renaming, so
                                            single use even across processes

A running node's API keeps its challenges in memory instead (one process).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from civicledger.agency.issuer import (
    IDENTITY_DIR,
    IssuerError,
    list_index,
    published_list,
    read_json,
)
from civicledger.agency.ledger import AgencyLedger
from civicledger.city import CityDir
from civicledger.files import write_new_file
from civicledger.services.identity.verifier import (
    ChallengeError,
    VerifiedCredential,
    Verifier,
)

__all__ = ["ChallengeStore", "StatusListSource", "verify_file"]

_VERIFIER = "_verifier"
"""Not an agency id (those never contain ``_``)."""


class StatusListSource:
    """``fetch(url)`` for a ``Verifier``: list credentials kept in the city directory.

    Keeps an index from list id to the agency whose register holds it, built from every
    agency's ``issuer.sqlite`` and rebuilt when an id is missing (an agency started a new list
    since), so a fetch reads one row of one database. The credential itself is read afresh each
    time: a list's versions change, its id and agency never do. Safe to share between threads.
    """

    def __init__(self, city: CityDir) -> None:
        self.city = city
        self._index: dict[str, str] = {}
        self._lock = threading.Lock()

    def _agency_of(self, url: str) -> str | None:
        with self._lock:
            if url not in self._index:
                self._index = list_index(self.city)
            return self._index.get(url)

    def __call__(self, url: str) -> Any:
        agency = self._agency_of(url)
        if agency is None:
            raise IssuerError(f"no status list {url} in this city directory", reason="unknown_list")
        return published_list(self.city, agency, list_id=url)


class ChallengeStore:
    """Single-use challenges in files, so one process issues and another verifies.

    A challenge is consumed by renaming its file, which only one process can do; the used file
    stays so a replay reads as one.
    """

    def __init__(self, city: CityDir, ttl: timedelta = timedelta(minutes=5)) -> None:
        self.directory = city.root / IDENTITY_DIR / _VERIFIER / "challenges"
        self.ttl_ms = int(ttl.total_seconds() * 1000)

    def _path(self, challenge: str, suffix: str) -> Path:
        return self.directory / (hashlib.sha256(challenge.encode()).hexdigest() + suffix)

    def new(self, domain: str, now: datetime) -> str:
        challenge = secrets.token_urlsafe(24)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        record = {"domain": domain, "expires_ms": int(now.timestamp() * 1000) + self.ttl_ms}
        write_new_file(self.directory, self._path(challenge, ".json"), json.dumps(record).encode())
        return challenge

    def consume(self, challenge: object, domain: str, now_ms: int) -> str:
        if not isinstance(challenge, str) or not challenge:
            raise ChallengeError(
                "the presentation carries no challenge", reason="unknown_challenge"
            )
        fresh, used = self._path(challenge, ".json"), self._path(challenge, ".used")
        try:
            os.rename(fresh, used)
        except FileNotFoundError:
            if used.exists():
                raise ChallengeError(
                    "this challenge was already used", reason="replayed_challenge"
                ) from None
            raise ChallengeError(
                "this verifier did not issue that challenge", reason="unknown_challenge"
            ) from None
        record = read_json(used)
        if record.get("domain") != domain:
            raise ChallengeError(
                "the challenge was issued for another domain", reason="unknown_challenge"
            )
        if now_ms > int(record.get("expires_ms", 0)):
            raise ChallengeError("the challenge has expired", reason="expired_challenge")
        return challenge


class _StoredChallenges:
    """A ``ChallengeBook`` over a ``ChallengeStore``: the CLI issues a challenge in one process
    and verifies the answer in another; only the one challenge given may be answered."""

    def __init__(self, store: ChallengeStore, domain: str, expected: str) -> None:
        self.store, self.domain, self.expected = store, domain, expected

    def new(self, now_ms: int) -> str:
        return self.store.new(self.domain, datetime.fromtimestamp(now_ms / 1000, UTC))

    def consume(self, challenge: object, now_ms: int) -> str:
        if challenge != self.expected:
            raise ChallengeError(
                "the presentation answers another challenge", reason="unknown_challenge"
            )
        return self.store.consume(challenge, self.domain, now_ms)


def verify_file(
    ledger: AgencyLedger,
    presentation: Mapping[str, Any] | str,
    *,
    challenge: str,
    domain: str,
    now: datetime,
    expected_type: str | None = None,
) -> tuple[VerifiedCredential, ...]:
    """Verify a presentation against the local ledger and the city directory's status lists.

    ``challenge`` must be one ``ChallengeStore.new`` issued for ``domain``; it is used up.
    """
    verifier = Verifier(
        ledger.query,
        StatusListSource(ledger.city),
        domain=domain,
        challenges=_StoredChallenges(ChallengeStore(ledger.city), domain, challenge),
    )
    if isinstance(presentation, str):
        return (verifier.verify_sd_jwt(presentation, now=now, expected_type=expected_type),)
    return verifier.verify_presentation(presentation, now=now, expected_type=expected_type)
