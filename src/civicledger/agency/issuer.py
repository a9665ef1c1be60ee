"""An agency's off-ledger issuer service: its DID, its credentials, its status lists.

Everything an issuing agency keeps lives in the city directory, never on the ledger::

    <city>/identity/<agency>/issuer.json          which keystore key signs credentials
    <city>/identity/<agency>/status/<list>.json   a status list: bits, allocated indices (with
                                                   who got them), the signed list credential

Files are 0600 and replaced atomically. The ledger sees the agency's DID document, its issuer
grants and the digest of every version of its status lists (``status_lists.anchor``), never a
claim, a holder or an index.

Invariants:

- An index is recorded as allocated (file written) before the credential carrying it is signed,
  so it is never handed out twice, even after a crash; a lock file serialises processes.
- A list credential is saved (``anchored: false``) before its digest is anchored and marked
  anchored after; an interrupted publication is finished (or redone at the next version) by the
  next call, so the served list always matches an anchor once a call returns.
- Issuance time is never earlier than the head block's time (waiting up to a few seconds if the
  clock is in the same second), so the DID key and the grant the ledger holds are in force at
  the signed issuance time; a credential that would not verify is refused before signing.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

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
    IndexAllocator,
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
    "read_json",
    "revoke_issuer",
    "save_credential",
]

FORMAT_VERSION = 1
DEFAULT_LIST = "revocation-1"
"""The list new credentials get an index in (one revocation list per agency for now)."""
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
    """

    def __init__(
        self,
        ledger: AgencyLedger,
        agency: str,
        *,
        list_base_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: Random | None = None,
    ) -> None:
        self.ledger = ledger
        self.city = ledger.city
        self.agency = agency
        self.did = civic_did(agency)
        self.directory = identity_dir(self.city, agency)
        self._list_base_url = list_base_url
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = rng

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
        with _locked(self.directory):
            key, method = self._signing_key()
            now = self._issuance_time()
            self._preflight(kind.name, method, now)
            state = self._load_or_create_list(DEFAULT_LIST, key, method)
            allocator = IndexAllocator(
                int(state["size"]), used=(int(i) for i in state["allocated"]), rng=self._rng
            )
            index = allocator.allocate()
            entry = StatusEntry.for_index(state["id"], index, "revocation")
            credential = self._build(kind, holder, holder_key, claims, entry, key, method, now)
            state["allocated"][str(index)] = {
                "type": kind.name,
                "holder": holder,
                "issued_at": now.isoformat(),
            }
            # Recorded before the credential leaves this function: the index is never reused.
            self._save_list(state)
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
        records: builtins.list[IssuedRecord] = []
        status_dir = self.directory / "status"
        for path in sorted(status_dir.glob("*.json")) if status_dir.is_dir() else []:
            state = read_json(path)
            for index, record in state.get("allocated", {}).items():
                if holder is not None and record.get("holder") != holder:
                    continue
                records.append(
                    IssuedRecord(
                        list_id=str(state["id"]),
                        index=int(index),
                        credential_type=str(record.get("type")),
                        holder=str(record.get("holder")),
                        issued_at=str(record.get("issued_at")),
                        revoked_at=record.get("revoked_at"),
                    )
                )
        records.sort(key=lambda r: (r.issued_at, r.list_id, r.index), reverse=True)
        return records[:limit]

    def _revoke(self, list_id: str, index: int, purpose: str) -> Revocation:
        with _locked(self.directory):
            key, method = self._signing_key()
            state = self._find_list(list_id)
            if purpose != state["purpose"] or str(index) not in state["allocated"]:
                raise IssuerError(
                    f"index {index} of {list_id} was not issued here", reason="not_issued_here"
                )
            bits = StatusList.decode(state["bits"], state["purpose"])
            if bits.get(index) and state.get("anchored"):
                raise IssuerError("the credential is already revoked", reason="already_revoked")
            if not bits.get(index):
                bits.set(index)
                state["bits"] = bits.encode()
                state["allocated"][str(index)]["revoked_at"] = self._clock().isoformat()
            # Also finishes a revocation whose anchoring was interrupted.
            published = self._publish(state, key, method)
        return Revocation(list_id, index, published)

    def publish_list(self, name: str = DEFAULT_LIST) -> PublishedList:
        """Re-sign list ``name`` and anchor its digest as the next version (or finish one)."""
        with _locked(self.directory):
            key, method = self._signing_key()
            path = self._list_path(name)
            if not path.is_file():
                raise IssuerError(
                    f"{self.agency} has no status list {name!r}", reason="unknown_list"
                )
            return self._publish(read_json(path), key, method)

    def status_list(self, name: str = DEFAULT_LIST) -> dict[str, Any]:
        """The stored record of list ``name`` (off-ledger; includes allocated indices)."""
        path = self._list_path(name)
        if not path.is_file():
            raise IssuerError(f"{self.agency} has no status list {name!r}", reason="unknown_list")
        return read_json(path)

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

    def _list_path(self, name: str) -> Path:
        if not name.replace("-", "").isalnum():
            raise IssuerError(f"{name!r} is not a list name", reason="unknown_list")
        return self.directory / "status" / f"{name}.json"

    def _list_url(self, name: str) -> str:
        if self._list_base_url:
            return self._list_base_url.rstrip("/") + f"/{self.agency}/{name}"
        chain_id = self.city.genesis().chain_id
        return f"urn:civicledger:{chain_id}:status:{self.agency}:{name}"

    def _load_or_create_list(self, name: str, key: PrivateKey, method: str) -> dict[str, Any]:
        path = self._list_path(name)
        if path.is_file():
            state = read_json(path)
            if not state.get("anchored"):
                self._publish(state, key, method)
            return state
        purpose: StatusPurpose = "revocation"
        bits = StatusList(purpose)
        state = {
            "format": FORMAT_VERSION,
            "agency": self.agency,
            "name": name,
            "id": self._list_url(name),
            "purpose": purpose,
            "size": bits.size,
            "bits": bits.encode(),
            "allocated": {},
            "version": 0,
            "anchored": False,
            "digest": None,
            "credential": None,
        }
        self._publish(state, key, method)
        return state

    def _find_list(self, list_id: str) -> dict[str, Any]:
        status_dir = self.directory / "status"
        for path in sorted(status_dir.glob("*.json")) if status_dir.is_dir() else []:
            state = read_json(path)
            if state.get("id") == list_id:
                return state
        raise IssuerError(f"{self.agency} keeps no status list {list_id}", reason="not_issued_here")

    def _save_list(self, state: dict[str, Any]) -> None:
        _write_json(self._list_path(state["name"]), state)

    def _publish(self, state: dict[str, Any], key: PrivateKey, method: str) -> PublishedList:
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
            self._save_list(state)
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
        self._save_list(state)
        args = {
            "agency": self.agency,
            "list_id": state["id"],
            "purpose": state["purpose"],
            "digest": digest,
            "version": version,
        }
        _send(self.ledger, self.agency, STATUS_CONTRACT, "anchor", args)
        state["anchored"] = True
        self._save_list(state)
        return PublishedList(state["id"], version, digest)


def _jwt_payload(sd_jwt: str) -> dict[str, Any]:
    try:
        segment = sd_jwt.strip().split("~", 1)[0].split(".")[1]
        payload = parse_json(from_b64url(segment))
    except (IndexError, EncodingError) as e:
        raise IssuerError("not an SD-JWT credential", reason="not_issued_here") from e
    if not isinstance(payload, dict):
        raise IssuerError("not an SD-JWT credential", reason="not_issued_here")
    return payload
