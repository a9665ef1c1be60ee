"""An agency's off-ledger issuer service: its DID, its credentials, its status lists.

Everything an issuing agency keeps lives in the city directory, never on the ledger::

    <city>/identity/<agency>/issuer.json     which keystore key signs credentials
    <city>/identity/<agency>/issuer.sqlite   the agency's register (SQLite, WAL, 0600):
        lists(name, id, purpose, size, bits, version, anchored, digest, credential,
              allocated_count)
            one row per status list: its encoded bitstring, the signed list credential of
            its current version and whether that version's digest is anchored yet;
        allocations(list, idx, credential_type, holder, issued_at, revoked_at)
            one row per issued credential, primary key (list, idx), indexed by holder;
            the table's rowid is the issuance order
    <city>/identity/<agency>/tokens.json     desk access tokens (``agency.tokens``)
    <city>/identity/<agency>/.lock           the cross-process lock (``_locked``)

Files are 0600 (SQLite gives its ``-wal`` and ``-shm`` files the database's mode) in a 0700
directory. The ledger sees the agency's DID document, its issuer grants and the digest of every
version of its status lists (``status_lists.anchor``), never a claim, a holder or an index.

Issuing is O(1) in the number already issued: an index is drawn uniformly at random from the
current list (the injectable ``rng``) and checked against the primary key; a list takes
credentials until it is half full, then the next one (``revocation-2``, ...) is created and
anchored like the first, so a draw succeeds with probability at least 1/2 and every list's
herd is half its size (65,536 credentials at the spec's minimum). Issuing never decodes or
re-encodes a bitstring: only revoking and publishing do.

Durability: ``synchronous=FULL`` with WAL, as the ledger's own database (``ledger/store.py``).
WAL with ``NORMAL`` survives a process crash but may lose the last commits on power loss; a lost
allocation row would let its index be handed out again after the credential carrying it had
left, and revoking either credential would then revoke both. One fsync of the WAL per issuance
is the price.

Invariants:

- An index is recorded as allocated (its row committed) before the credential carrying it
  leaves ``issue``, so it is never handed out twice, even after a crash; ``_locked`` (a lock
  file) serialises processes and the SQLite write transaction is ``IMMEDIATE``.
- A list credential is saved (``anchored`` false) before its digest is anchored and marked
  anchored after; an interrupted publication is finished (or redone at the next version) by the
  next call, so the served list always matches an anchor once a call returns.
- Issuance time is never earlier than the head block's time (waiting up to a few seconds if the
  clock is in the same second), so the DID key and the grant the ledger holds are in force at
  the signed issuance time; a credential that would not verify is refused before signing.
- A directory still in the pre-SQLite layout (``status/*.json``) is refused
  (``bad_issuer_state``), never silently started afresh beside it: new lists would reuse the
  old lists' ids and indices.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any, Literal

from civicledger.agency.ledger import AgencyLedger, TxFailed
from civicledger.city import ROOT_KEY, CityDir
from civicledger.crypto.encoding import from_b64url, parse_json
from civicledger.crypto.keys import PrivateKey, PublicKey
from civicledger.errors import CivicError, EncodingError
from civicledger.files import replace_private_file, write_new_file
from civicledger.services.identity import credentials as cred
from civicledger.services.identity.data_integrity import issue_credential
from civicledger.services.identity.did_registry import DID_CONTRACT, civic_did
from civicledger.services.identity.issuers import (
    GRANT_CONTRACT,
    GRANT_METHOD,
    REVOKE_METHOD,
    check_issuer,
)
from civicledger.services.identity.resolver import Resolver
from civicledger.services.identity.sdjwt import issue_sd_jwt_vc
from civicledger.services.identity.status_list import (
    MIN_BITS,
    StatusEntry,
    StatusList,
    StatusPurpose,
    list_credential_digest,
    status_list_credential,
)
from civicledger.services.identity.status_registry import CONTRACT_NAME as STATUS_CONTRACT
from civicledger.services.identity.vc import CredentialError, parse_datetime

__all__ = [
    "DEFAULT_LIST",
    "IssuedCredential",
    "IssuedRecord",
    "IssuerError",
    "IssuerService",
    "PublishedList",
    "Revocation",
    "create_did",
    "grant_issuer",
    "identity_dir",
    "list_index",
    "published_list",
    "read_json",
    "required_claims",
    "revoke_issuer",
    "save_credential",
    "use_signing_key",
]

FORMAT_VERSION = 1
LIST_PREFIX = "revocation-"
DEFAULT_LIST = LIST_PREFIX + "1"
"""An agency's first list; new credentials go to its latest one (``revocation-<n>``)."""
ISSUER_DB = "issuer.sqlite"
_OLD_STATUS_DIR = "status"
_MAX_CLOCK_WAIT_S = 5.0
IDENTITY_DIR = "identity"
_VALIDITY: Mapping[str, timedelta] = {
    cred.RESIDENT_CARD.name: timedelta(days=365),
    cred.FAMILY_LOVE_CARD.name: timedelta(days=365),
    cred.QUALIFICATION.name: timedelta(days=3 * 365),
    cred.VISITOR_PASS.name: timedelta(days=1),
}
"""Default validity by type, when the claims give no ``valid_until``."""
_CLAIMS: Mapping[str, frozenset[str]] = {
    cred.RESIDENT_CARD.name: frozenset(
        {"given_name", "family_name", "birthdate", "address", "district"}
    ),
    cred.FAMILY_LOVE_CARD.name: frozenset({"children_birthdates"}),
    cred.QUALIFICATION.name: frozenset({"qualification", "license_number"}),
    cred.VISITOR_PASS.name: frozenset({"host", "district"}),
}
_OPTIONAL_CLAIMS = frozenset({"valid_from", "valid_until"})


def required_claims(credential_type: str) -> frozenset[str]:
    """The claim names ``IssuerService.issue`` needs for a type (forms build their fields from
    this); ``valid_from`` and ``valid_until`` are optional for every type."""
    return _CLAIMS.get(credential_type, frozenset())


class IssuerError(CivicError):
    """The issuer service cannot do what was asked; ``reason`` says why.

    Reasons: ``bad_claims``, ``no_did``, ``unknown_list``, ``not_our_credential``,
    ``not_issued_here``, ``already_revoked``, ``clock_behind``, ``bad_issuer_state``, or the
    reason of a failed transaction (``did_exists``, ``already_granted``, ...).
    """

    reason = "issuer_error"


def identity_dir(city: CityDir, agency: str) -> Path:
    """``<city>/identity/<agency>``: the agency's off-ledger issuer records."""
    civic_did(agency)  # refuses a malformed agency id (no path tricks)
    return city.root / IDENTITY_DIR / agency


# -- files -------------------------------------------------------------------------------------


def _write_json(path: Path, value: Any) -> None:
    replace_private_file(
        path, json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    )


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_bytes())
    except ValueError as e:
        raise IssuerError(f"{path} is not JSON: {e}", reason="bad_issuer_state") from e
    if not isinstance(value, dict):
        raise IssuerError(f"{path} is not a JSON object", reason="bad_issuer_state")
    return value


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One process at a time changes an agency's records."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- the register (SQLite) ---------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lists (
    name TEXT PRIMARY KEY,              -- revocation-1, revocation-2, ...
    id TEXT NOT NULL UNIQUE,            -- the list credential's URL or URN
    purpose TEXT NOT NULL,
    size INTEGER NOT NULL,              -- bits
    bits TEXT NOT NULL,                 -- the encodedList as it is now
    version INTEGER NOT NULL,           -- of the saved credential (0: never signed)
    anchored INTEGER NOT NULL,          -- 1 once that version's digest is on the ledger
    digest TEXT,
    credential TEXT,                    -- the signed list credential, JSON
    allocated_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS allocations (
    list TEXT NOT NULL REFERENCES lists(name),
    idx INTEGER NOT NULL,
    credential_type TEXT NOT NULL,
    holder TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    revoked_at TEXT,
    PRIMARY KEY (list, idx)
);
CREATE INDEX IF NOT EXISTS allocations_holder ON allocations(holder);
"""
_LIST_COLUMNS = (
    "name, id, purpose, size, bits, version, anchored, digest, credential, allocated_count"
)
_ISSUED = """
SELECT l.id, a.idx, a.credential_type, a.holder, a.issued_at, a.revoked_at
FROM allocations AS a JOIN lists AS l ON l.name = a.list
ORDER BY a.rowid DESC LIMIT ?
"""
_ISSUED_TO = """
SELECT l.id, a.idx, a.credential_type, a.holder, a.issued_at, a.revoked_at
FROM allocations AS a JOIN lists AS l ON l.name = a.list
WHERE a.holder = ?
ORDER BY a.rowid DESC LIMIT ?
"""


def _store_error(path: Path, e: sqlite3.Error) -> IssuerError:
    return IssuerError(f"issuer register {path}: {e}", reason="bad_issuer_state")


def _refuse_old_layout(directory: Path) -> None:
    old = directory / _OLD_STATUS_DIR
    if old.is_dir() and any(old.glob("*.json")):
        raise IssuerError(
            f"{old} holds status lists in the old one-JSON-file-per-list layout, which this "
            f"version no longer reads (it keeps them in {ISSUER_DB}); there is no migration. "
            "Re-create the city directory (or this agency's identity directory together with "
            "its DID) with this version; do not just delete the files, since new lists would "
            "reuse the old lists' ids and hand their indices out again",
            reason="bad_issuer_state",
        )


@contextlib.contextmanager
def _open_store(directory: Path, *, create: bool) -> Iterator[sqlite3.Connection]:
    """A connection to the agency's register, closed on exit.

    ``create`` makes the file (0600, before SQLite opens it) and its tables; without it a
    missing register raises ``unknown_list`` and the connection refuses writes.
    """
    _refuse_old_layout(directory)
    path = directory / ISSUER_DB
    if not create and not path.is_file():
        raise IssuerError(f"{directory.name} has no status lists", reason="unknown_list")
    try:
        if create:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
            os.close(os.open(path, flags, 0o600))
        conn = sqlite3.connect(path, isolation_level=None)
    except (OSError, sqlite3.Error) as e:
        raise IssuerError(f"cannot open {path}: {e}", reason="bad_issuer_state") from e
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        if create:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        else:
            conn.execute("PRAGMA query_only=ON")
        yield conn
    except sqlite3.Error as e:
        raise _store_error(path, e) from e
    finally:
        conn.close()


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed (durably) on exit, rolled back on an exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_ListWhere = Literal["WHERE name = ?", "WHERE id = ?", "ORDER BY rowid DESC LIMIT 1"]


def _fetch_list(
    conn: sqlite3.Connection, where: _ListWhere, args: tuple[Any, ...] = ()
) -> dict[str, Any] | None:
    """One ``lists`` row as a dict (``credential`` parsed), or None."""
    row = conn.execute(
        f"SELECT {_LIST_COLUMNS} FROM lists {where}",  # noqa: S608  (fixed clauses only)
        args,
    ).fetchone()
    if row is None:
        return None
    state = dict(zip(_LIST_COLUMNS.split(", "), row, strict=True))
    state["anchored"] = bool(state["anchored"])
    if state["credential"] is not None:
        state["credential"] = json.loads(state["credential"])
    return state


def published_list(
    city: CityDir, agency: str, *, name: str | None = None, list_id: str | None = None
) -> dict[str, Any]:
    """The signed credential of ``agency``'s list ``name`` (or the list whose id is
    ``list_id``) as last saved: what a desk serves and a verifier fetches. Never the register
    of who holds which index; ``unknown_list`` if there is no such signed list."""
    if (name is None) == (list_id is None):
        raise ValueError("give exactly one of name and list_id")
    column, value = ("name", name) if name is not None else ("id", list_id)
    with _open_store(identity_dir(city, agency), create=False) as conn:
        row = conn.execute(
            f"SELECT credential FROM lists WHERE {column} = ?",  # noqa: S608  (a fixed name)
            (value,),
        ).fetchone()
    if row is None or row[0] is None:
        raise IssuerError(f"{agency} publishes no status list {value!r}", reason="unknown_list")
    credential: dict[str, Any] = json.loads(row[0])
    return credential


def list_index(city: CityDir) -> dict[str, str]:
    """Every status list id in the city directory and the agency keeping it."""
    index: dict[str, str] = {}
    root = city.root / IDENTITY_DIR
    for path in sorted(root.glob(f"*/{ISSUER_DB}")):
        agency = path.parent.name
        with _open_store(path.parent, create=False) as conn:
            for (list_id,) in conn.execute("SELECT id FROM lists"):
                index[str(list_id)] = agency
    return index


def save_credential(path: Path, credential: Mapping[str, Any] | str) -> None:
    """Write an issued credential to a new 0600 file (it holds personal data); never overwrites."""
    if isinstance(credential, str):
        content = credential.encode("utf-8") + b"\n"
    else:
        content = json.dumps(credential, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    write_new_file(path.parent, path, content)


# -- the ledger --------------------------------------------------------------------------------


def _send(
    ledger: AgencyLedger, signer: str, contract: str, method: str, args: dict[str, Any]
) -> Any:
    """Commit through ``ledger``; a refused or failed transaction is an ``IssuerError``."""
    try:
        return ledger.send(signer, contract, method, args)
    except TxFailed as e:
        raise IssuerError(e.message, reason=e.reason) from e


def create_did(ledger: AgencyLedger, agency: str, *, key_name: str | None = None) -> str:
    """Create ``did:civic:<agency>`` whose assertion key is keystore key ``key_name``.

    ``key_name`` defaults to the agency's own key (named by its id); the transaction is signed
    by the agency's key. Records the signing key in ``issuer.json``. Returns the DID.
    """
    name = key_name or agency
    directory = identity_dir(ledger.city, agency)
    public = ledger.key(name).public
    _send(ledger, agency, DID_CONTRACT, "create", {"agency": agency, "keys": [public.did]})
    with _locked(directory):
        _write_json(directory / "issuer.json", {"format": FORMAT_VERSION, "key": name})
    return civic_did(agency)


def use_signing_key(city: CityDir, agency: str, key_name: str) -> None:
    """Record that ``agency`` issues with keystore key ``key_name`` (an assertion key of its
    existing ``did:civic``), for a DID created some other way than ``create_did``."""
    directory = identity_dir(city, agency)
    with _locked(directory):
        _write_json(directory / "issuer.json", {"format": FORMAT_VERSION, "key": key_name})


def grant_issuer(ledger: AgencyLedger, agency: str, credential_type: str) -> dict[str, Any]:
    """Root lets ``agency`` issue ``credential_type`` (``governance.grant_issuer``)."""
    args = {"agency": agency, "credential_type": credential_type}
    result: dict[str, Any] = _send(ledger, ROOT_KEY, GRANT_CONTRACT, GRANT_METHOD, args)
    return result


def revoke_issuer(ledger: AgencyLedger, agency: str, credential_type: str) -> dict[str, Any]:
    """Root ends ``agency``'s right to issue ``credential_type`` (``governance.revoke_issuer``)."""
    args = {"agency": agency, "credential_type": credential_type}
    result: dict[str, Any] = _send(ledger, ROOT_KEY, GRANT_CONTRACT, REVOKE_METHOD, args)
    return result


# -- issuing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCredential:
    credential: dict[str, Any] | str
    """A Data Integrity VC (JSON object) or a compact SD-JWT VC."""
    credential_type: str
    list_id: str
    index: int


@dataclass(frozen=True)
class PublishedList:
    list_id: str
    version: int
    digest: str


@dataclass(frozen=True)
class IssuedRecord:
    """One allocated status index: the issuer's off-ledger register entry."""

    list_id: str
    index: int
    credential_type: str
    holder: str
    issued_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class Revocation:
    list_id: str
    index: int
    published: PublishedList


def _claims_error(message: str) -> IssuerError:
    return IssuerError(message, reason="bad_claims")


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value.strip():
        raise _claims_error(f"claim {name!r} must be a non-empty string")
    return value


def _date(value: object, name: str) -> date:
    if not isinstance(value, str):
        raise _claims_error(f"{name} must be an ISO date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise _claims_error(f"{name} must be an ISO date (YYYY-MM-DD), not {value!r}") from e


def _moment(claims: Mapping[str, Any], name: str) -> datetime | None:
    if name not in claims:
        return None
    try:
        return parse_datetime(claims[name], field=name)
    except CredentialError as e:
        raise _claims_error(e.message) from e


class IssuerService:
    """One agency issuing from a city directory: ``issue``, ``revoke``, ``publish_list``.

    ``clock`` (default: the system clock, UTC) and ``rng`` (default: the OS CSPRNG, for index
    allocation) are injectable for tests. ``list_base_url`` names new lists; the default is a
    URN the CLI's verifier resolves from the city directory (a portal can serve https URLs).
    ``list_size`` is the number of bits of lists created from now on (at least the spec's
    ``MIN_BITS``; ``StatusList`` refuses fewer); each takes ``list_size // 2`` credentials.
    """

    def __init__(
        self,
        ledger: AgencyLedger,
        agency: str,
        *,
        list_base_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: Random | None = None,
        list_size: int = MIN_BITS,
    ) -> None:
        StatusList("revocation", list_size)  # refuses a size the spec does not allow
        self.ledger = ledger
        self.city = ledger.city
        self.agency = agency
        self.did = civic_did(agency)
        self.directory = identity_dir(self.city, agency)
        self._list_base_url = list_base_url
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng: Random = rng if rng is not None else secrets.SystemRandom()
        self._list_size = list_size

    # -- public --------------------------------------------------------------------------------

    def issue(
        self, credential_type: str, holder: str, claims: Mapping[str, Any]
    ) -> IssuedCredential:
        """Allocate a status index, build the credential of ``credential_type`` and sign it."""
        kind = cred.CREDENTIAL_TYPES.get(credential_type)
        if kind is None:
            raise _claims_error(
                f"unknown credential type {credential_type!r}; "
                f"one of {', '.join(cred.CREDENTIAL_TYPES)}"
            )
        self._check_claim_names(kind.name, claims)
        holder_key = self._holder_key(holder) if kind.sd_jwt else None
        with _locked(self.directory), _open_store(self.directory, create=True) as conn:
            key, method = self._signing_key()
            now = self._issuance_time()
            self._preflight(kind.name, method, now)
            state = self._current_list(conn, key, method)
            index = self._draw_index(conn, state)
            entry = StatusEntry.for_index(state["id"], index, "revocation")
            credential = self._build(kind, holder, holder_key, claims, entry, key, method, now)
            # Recorded before the credential leaves this function: the index is never reused.
            with _transaction(conn):
                conn.execute(
                    "INSERT INTO allocations (list, idx, credential_type, holder, issued_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (state["name"], index, kind.name, holder, now.isoformat()),
                )
                conn.execute(
                    "UPDATE lists SET allocated_count = allocated_count + 1 WHERE name = ?",
                    (state["name"],),
                )
        return IssuedCredential(credential, kind.name, state["id"], index)

    def revoke(self, credential: Mapping[str, Any] | str) -> Revocation:
        """Set the credential's revocation bit, re-sign its list and anchor the new digest."""
        issuer, raw_status = self._status_of(credential)
        if issuer != self.did:
            raise IssuerError(
                f"the credential was issued by {issuer[:80]}, not {self.did}",
                reason="not_our_credential",
            )
        try:
            entry = StatusEntry.from_json(raw_status)
        except CivicError as e:
            raise IssuerError(e.message, reason="not_issued_here") from e
        return self._revoke(entry.status_list_credential, entry.index, entry.purpose)

    def revoke_index(self, list_id: str, index: int) -> Revocation:
        """Revoke by status index, for staff who find a credential in ``issued`` rather than
        holding a copy of it."""
        return self._revoke(list_id, index, "revocation")

    def issued(self, *, holder: str | None = None, limit: int = 100) -> builtins.list[IssuedRecord]:
        """What this agency issued (newest first), optionally to one holder: the off-ledger
        register a desk uses to find a credential to revoke. Never on the ledger."""
        if not (self.directory / ISSUER_DB).is_file():
            _refuse_old_layout(self.directory)
            return []
        with _open_store(self.directory, create=False) as conn:
            if holder is None:
                rows = conn.execute(_ISSUED, (max(0, limit),)).fetchall()
            else:
                rows = conn.execute(_ISSUED_TO, (holder, max(0, limit))).fetchall()
        return [
            IssuedRecord(
                list_id=str(list_id),
                index=int(index),
                credential_type=str(credential_type),
                holder=str(holder_),
                issued_at=str(issued_at),
                revoked_at=revoked_at,
            )
            for list_id, index, credential_type, holder_, issued_at, revoked_at in rows
        ]

    def _revoke(self, list_id: str, index: int, purpose: str) -> Revocation:
        with _locked(self.directory), _open_store(self.directory, create=True) as conn:
            key, method = self._signing_key()
            state = _fetch_list(conn, "WHERE id = ?", (list_id,))
            if state is None:
                raise IssuerError(
                    f"{self.agency} keeps no status list {list_id}", reason="not_issued_here"
                )
            allocated = conn.execute(
                "SELECT 1 FROM allocations WHERE list = ? AND idx = ?", (state["name"], index)
            ).fetchone()
            if purpose != state["purpose"] or allocated is None:
                raise IssuerError(
                    f"index {index} of {list_id} was not issued here", reason="not_issued_here"
                )
            bits = StatusList.decode(state["bits"], state["purpose"])
            if bits.get(index) and state["anchored"]:
                raise IssuerError("the credential is already revoked", reason="already_revoked")
            if not bits.get(index):
                bits.set(index)
                state.update(bits=bits.encode(), anchored=False)
                with _transaction(conn):
                    conn.execute(
                        "UPDATE allocations SET revoked_at = ? WHERE list = ? AND idx = ?",
                        (self._clock().isoformat(), state["name"], index),
                    )
                    self._save_list(conn, state)
            # Also finishes a revocation whose anchoring was interrupted.
            published = self._publish(conn, state, key, method)
        return Revocation(list_id, index, published)

    def publish_list(self, name: str = DEFAULT_LIST) -> PublishedList:
        """Re-sign list ``name`` and anchor its digest as the next version (or finish one)."""
        _check_list_name(name)
        with _locked(self.directory), _open_store(self.directory, create=True) as conn:
            key, method = self._signing_key()
            return self._publish(conn, self._load_list(conn, name), key, method)

    def status_list(self, name: str = DEFAULT_LIST) -> dict[str, Any]:
        """The stored record of list ``name`` (off-ledger): ``name``, ``id``, ``purpose``,
        ``size``, ``bits``, ``version``, ``anchored``, ``digest``, ``credential`` and
        ``allocated_count``; who holds which index is in ``issued``."""
        _check_list_name(name)
        with _open_store(self.directory, create=False) as conn:
            return self._load_list(conn, name)

    # -- keys and time -------------------------------------------------------------------------

    def _signing_key(self) -> tuple[PrivateKey, str]:
        """The keystore key named in ``issuer.json`` and its method id in the DID document."""
        config_path = self.directory / "issuer.json"
        name = self.agency
        if config_path.is_file():
            name = str(read_json(config_path).get("key", name))
        try:
            document = Resolver(self.ledger.query).resolve(self.did)["didDocument"]
        except CivicError as e:
            raise IssuerError(
                f"{self.did} cannot be resolved ({e.message}); create it with "
                "`civic identity did create`",
                reason="no_did",
            ) from e
        key = self.ledger.key(name)
        multibase = key.public.did[len("did:key:") :]
        for entry in document.get("verificationMethod", []):
            if entry.get("publicKeyMultibase") == multibase and entry.get("id") in document.get(
                "assertionMethod", []
            ):
                return key, str(entry["id"])
        raise IssuerError(
            f"keystore key {name!r} is not an assertion key of {self.did}", reason="no_did"
        )

    def _issuance_time(self) -> datetime:
        """Now, in a whole second not before the head block (waiting out the same second)."""
        head_ms = self.ledger.head_time_ms()
        for _attempt in range(2):
            now = self._clock()
            whole_ms = int(now.timestamp()) * 1000
            if whole_ms >= head_ms:
                return now
            # Issuance times are whole seconds: wait for the first one not before the head.
            wait = -(-head_ms // 1000) - now.timestamp()
            if wait > _MAX_CLOCK_WAIT_S:
                break
            time.sleep(wait + 0.01)
        raise IssuerError(
            f"the clock is behind the ledger's head block time {head_ms}", reason="clock_behind"
        )

    def _preflight(self, credential_type: str, method: str, now: datetime) -> None:
        """Refuse to sign what no verifier would accept: no grant, or a key not valid now."""
        at_ms = int(now.timestamp()) * 1000
        check_issuer(self.ledger.query, self.did, credential_type, at_ms)
        Resolver(self.ledger.query).verification_key(method, at_ms)

    # -- claims --------------------------------------------------------------------------------

    @staticmethod
    def _check_claim_names(kind: str, claims: Mapping[str, Any]) -> None:
        if not isinstance(claims, Mapping):
            raise _claims_error("claims must be a JSON object")
        required = _CLAIMS[kind]
        missing = sorted(required - set(claims))
        unknown = sorted(set(claims) - required - _OPTIONAL_CLAIMS)
        if missing or unknown:
            parts = [f"missing {missing}"] if missing else []
            parts += [f"unknown {unknown}"] if unknown else []
            raise _claims_error(
                f"{kind} claims: {'; '.join(parts)} (expected {sorted(required)}, "
                f"optional {sorted(_OPTIONAL_CLAIMS)})"
            )

    @staticmethod
    def _holder_key(holder: str) -> PublicKey:
        try:
            return PublicKey.from_did(holder)
        except CivicError as e:
            raise _claims_error(f"an SD-JWT holder must be a did:key, not {holder[:80]!r}") from e

    def _build(
        self,
        kind: cred.CredentialType,
        holder: str,
        holder_key: PublicKey | None,
        claims: Mapping[str, Any],
        entry: StatusEntry,
        key: PrivateKey,
        method: str,
        now: datetime,
    ) -> dict[str, Any] | str:
        valid_from = _moment(claims, "valid_from") or now
        valid_until = _moment(claims, "valid_until") or valid_from + _VALIDITY[kind.name]
        try:
            if kind.sd_jwt:
                assert holder_key is not None
                if kind is cred.RESIDENT_CARD:
                    body, disclosable = cred.resident_card_claims(
                        given_name=_text(claims, "given_name"),
                        family_name=_text(claims, "family_name"),
                        birthdate=_date(claims["birthdate"], "birthdate"),
                        address=_text(claims, "address"),
                        district=_text(claims, "district"),
                        status=entry,
                        on=now.date(),
                    )
                else:
                    children = claims["children_birthdates"]
                    if not isinstance(children, list):
                        raise _claims_error("children_birthdates must be a list of ISO dates")
                    body, disclosable = cred.family_love_card_claims(
                        children_birthdates=[_date(c, "children_birthdates") for c in children],
                        status=entry,
                        on=now.date(),
                    )
                return issue_sd_jwt_vc(
                    body,
                    issuer_key=key,
                    issuer=self.did,
                    vct=kind.vct,
                    holder=holder_key,
                    disclosable=disclosable,
                    issued_at=now,
                    expires_at=valid_until,
                    not_before=valid_from if "valid_from" in claims else None,
                )
            if kind is cred.QUALIFICATION:
                unsigned = cred.qualification_credential(
                    issuer=self.did,
                    holder=holder,
                    qualification=_text(claims, "qualification"),
                    license_number=_text(claims, "license_number"),
                    valid_from=valid_from,
                    valid_until=valid_until,
                    status=entry,
                )
            else:
                unsigned = cred.visitor_pass_credential(
                    issuer=self.did,
                    visitor=holder,
                    host=_text(claims, "host"),
                    district=_text(claims, "district"),
                    valid_from=valid_from,
                    valid_until=valid_until,
                    status=entry,
                )
            return issue_credential(unsigned, key, verification_method=method, now=now)
        except CredentialError as e:
            raise _claims_error(e.message) from e

    @staticmethod
    def _status_of(credential: Mapping[str, Any] | str) -> tuple[str, Any]:
        """The issuer and ``credentialStatus`` a credential carries (signature not checked)."""
        if isinstance(credential, str):
            payload = _jwt_payload(credential)
            issuer, status = payload.get("iss"), payload.get("credentialStatus")
        else:
            issuer, status = credential.get("issuer"), credential.get("credentialStatus")
            if isinstance(issuer, Mapping):
                issuer = issuer.get("id")
        if not isinstance(issuer, str) or status is None:
            raise IssuerError("not a city credential with a status", reason="not_issued_here")
        return issuer, status

    # -- status lists --------------------------------------------------------------------------

    def _list_url(self, name: str) -> str:
        if self._list_base_url:
            return self._list_base_url.rstrip("/") + f"/{self.agency}/{name}"
        chain_id = self.city.genesis().chain_id
        return f"urn:civicledger:{chain_id}:status:{self.agency}:{name}"

    def _load_list(self, conn: sqlite3.Connection, name: str) -> dict[str, Any]:
        state = _fetch_list(conn, "WHERE name = ?", (name,))
        if state is None:
            raise IssuerError(f"{self.agency} has no status list {name!r}", reason="unknown_list")
        return state

    def _current_list(
        self, conn: sqlite3.Connection, key: PrivateKey, method: str
    ) -> dict[str, Any]:
        """The list new credentials go to: the newest, finished if its publication was
        interrupted; a new one (created and anchored) if there is none or it is half full."""
        state = _fetch_list(conn, "ORDER BY rowid DESC LIMIT 1")
        if state is not None and not state["anchored"]:
            self._publish(conn, state, key, method)
        if state is not None and 2 * state["allocated_count"] < state["size"]:
            return state
        number = 1 if state is None else int(state["name"].removeprefix(LIST_PREFIX)) + 1
        name = f"{LIST_PREFIX}{number}"
        purpose: StatusPurpose = "revocation"
        bits = StatusList(purpose, self._list_size)
        state = {
            "name": name,
            "id": self._list_url(name),
            "purpose": purpose,
            "size": bits.size,
            "bits": bits.encode(),
            "version": 0,
            "anchored": False,
            "digest": None,
            "credential": None,
            "allocated_count": 0,
        }
        with _transaction(conn):
            conn.execute(
                "INSERT INTO lists (name, id, purpose, size, bits, version, anchored, digest,"
                " credential, allocated_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._list_values(state),
            )
        self._publish(conn, state, key, method)
        return state

    def _draw_index(self, conn: sqlite3.Connection, state: Mapping[str, Any]) -> int:
        """A free index of a list at most half full, uniformly at random: each draw is free
        with probability at least 1/2, so this reads two rows on average."""
        size = int(state["size"])
        while True:
            index = self._rng.randrange(size)
            taken = conn.execute(
                "SELECT 1 FROM allocations WHERE list = ? AND idx = ?", (state["name"], index)
            ).fetchone()
            if taken is None:
                return index

    @staticmethod
    def _list_values(state: Mapping[str, Any]) -> tuple[Any, ...]:
        credential = state["credential"]
        return (
            state["name"],
            state["id"],
            state["purpose"],
            state["size"],
            state["bits"],
            state["version"],
            int(state["anchored"]),
            state["digest"],
            None if credential is None else json.dumps(credential, ensure_ascii=False),
            state["allocated_count"],
        )

    def _save_list(self, conn: sqlite3.Connection, state: Mapping[str, Any]) -> None:
        """Write the list's bits and publication (never its allocation count, which only
        ``issue`` changes)."""
        _name, _id, _purpose, _size, bits, version, anchored, digest, credential, _count = (
            self._list_values(state)
        )
        conn.execute(
            "UPDATE lists SET bits = ?, version = ?, anchored = ?, digest = ?, credential = ?"
            " WHERE name = ?",
            (bits, version, anchored, digest, credential, state["name"]),
        )

    def _save_publication(self, conn: sqlite3.Connection, state: Mapping[str, Any]) -> None:
        with _transaction(conn):
            self._save_list(conn, state)

    def _publish(
        self, conn: sqlite3.Connection, state: dict[str, Any], key: PrivateKey, method: str
    ) -> PublishedList:
        """Sign the list as it is now and anchor it as the next version on the ledger."""
        latest = self.ledger.query(
            STATUS_CONTRACT, "latest", {"agency": self.agency, "list_id": state["id"]}
        )
        latest_version = int(latest["version"]) if isinstance(latest, dict) else 0
        credential = state.get("credential")
        if (
            not state.get("anchored")
            and isinstance(latest, dict)
            and isinstance(credential, dict)
            and latest.get("digest") == state.get("digest")
            and latest_version == state.get("version")
            and credential["credentialSubject"]["encodedList"] == state["bits"]
        ):
            # An earlier publication was anchored but not marked so: finish it.
            state["anchored"] = True
            self._save_publication(conn, state)
            return PublishedList(state["id"], latest_version, latest["digest"])
        now = self._issuance_time()
        bits = StatusList.decode(state["bits"], state["purpose"])
        document = status_list_credential(
            bits,
            credential_id=state["id"],
            issuer=self.did,
            sign=lambda d: issue_credential(d, key, verification_method=method, now=now),
        )
        digest = list_credential_digest(document)
        version = latest_version + 1
        state.update(credential=document, digest=digest, version=version, anchored=False)
        self._save_publication(conn, state)
        args = {
            "agency": self.agency,
            "list_id": state["id"],
            "purpose": state["purpose"],
            "digest": digest,
            "version": version,
        }
        _send(self.ledger, self.agency, STATUS_CONTRACT, "anchor", args)
        state["anchored"] = True
        self._save_publication(conn, state)
        return PublishedList(state["id"], version, digest)


def _check_list_name(name: str) -> None:
    if not name.replace("-", "").isalnum():
        raise IssuerError(f"{name!r} is not a list name", reason="unknown_list")


def _jwt_payload(sd_jwt: str) -> dict[str, Any]:
    try:
        segment = sd_jwt.strip().split("~", 1)[0].split(".")[1]
        payload = parse_json(from_b64url(segment))
    except (IndexError, EncodingError) as e:
        raise IssuerError("not an SD-JWT credential", reason="not_issued_here") from e
    if not isinstance(payload, dict):
        raise IssuerError("not an SD-JWT credential", reason="not_issued_here")
    return payload
