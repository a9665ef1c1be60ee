"""Access tokens for an agency's issuing desk over HTTP (issue, revoke, list what was issued).

Issuing and revoking sign with the agency's key, which stays in the node's keystore; a token
only lets a desk ask the node to do so. Tokens are shown once and kept as SHA-256 digests::

    <city>/identity/<agency>/tokens.json   {"format": 1, "tokens": [{"id", "label",
                                            "sha256", "created_at", "revoked_at"}]}

A token reads ``civ_<agency>_<random>``: the agency part only says where to look; what
authenticates is the random part, compared by digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from civicledger.agency.issuer import _locked, _write_json, identity_dir, read_json
from civicledger.city import CityDir
from civicledger.errors import CivicError
from civicledger.ledger.genesis import AGENCY_ID_PATTERN

__all__ = [
    "AccessToken",
    "TokenError",
    "authenticate",
    "create_token",
    "list_tokens",
    "revoke_token",
]

FORMAT_VERSION = 1
_PREFIX = "civ_"
_TOKEN_RE = re.compile(r"^civ_(?P<agency>[a-z0-9-]{1,64})_(?P<secret>[A-Za-z0-9_-]{43})$")
_AGENCY_RE = re.compile(AGENCY_ID_PATTERN)
_MAX_LABEL = 100


class TokenError(CivicError):
    """A token is missing, malformed, unknown or revoked (``reason``: ``unauthenticated``),
    or a token operation was asked wrongly (``bad_token_request``)."""

    reason = "unauthenticated"


@dataclass(frozen=True)
class AccessToken:
    id: str
    label: str
    created_at: str
    revoked_at: str | None


def _path(city: CityDir, agency: str) -> Path:
    return identity_dir(city, agency) / "tokens.json"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _records(city: CityDir, agency: str) -> list[dict[str, object]]:
    path = _path(city, agency)
    if not path.is_file():
        return []
    tokens = read_json(path).get("tokens", [])
    return [t for t in tokens if isinstance(t, dict)] if isinstance(tokens, list) else []


def create_token(city: CityDir, agency: str, label: str, now: datetime) -> tuple[str, AccessToken]:
    """A new token for ``agency``'s desk; the token itself is returned once and never stored."""
    if not label.strip() or len(label) > _MAX_LABEL:
        raise TokenError(
            f"a token needs a label of 1-{_MAX_LABEL} characters", reason="bad_token_request"
        )
    token = f"{_PREFIX}{agency}_{secrets.token_urlsafe(32)}"
    if not _TOKEN_RE.fullmatch(token):
        raise TokenError(f"{agency!r} is not an agency id", reason="bad_token_request")
    record: dict[str, object] = {
        "id": secrets.token_hex(4),
        "label": label.strip(),
        "sha256": _digest(token),
        "created_at": now.isoformat(),
        "revoked_at": None,
    }
    directory = identity_dir(city, agency)
    with _locked(directory):
        records = _records(city, agency)
        records.append(record)
        _write_json(_path(city, agency), {"format": FORMAT_VERSION, "tokens": records})
    return token, AccessToken(str(record["id"]), label.strip(), now.isoformat(), None)


def list_tokens(city: CityDir, agency: str) -> list[AccessToken]:
    return [
        AccessToken(
            str(r.get("id")),
            str(r.get("label")),
            str(r.get("created_at")),
            None if r.get("revoked_at") is None else str(r.get("revoked_at")),
        )
        for r in _records(city, agency)
    ]


def revoke_token(city: CityDir, agency: str, token_id: str, now: datetime) -> AccessToken:
    with _locked(identity_dir(city, agency)):
        records = _records(city, agency)
        for record in records:
            if record.get("id") == token_id and record.get("revoked_at") is None:
                record["revoked_at"] = now.isoformat()
                _write_json(_path(city, agency), {"format": FORMAT_VERSION, "tokens": records})
                return AccessToken(
                    token_id, str(record["label"]), str(record["created_at"]), now.isoformat()
                )
    raise TokenError(f"{agency} has no active token {token_id!r}", reason="bad_token_request")


def authenticate(city: CityDir, token: str | None) -> str:
    """The agency ``token`` speaks for, or ``TokenError``. Reads the file each time, so a token
    revoked from the CLI stops working at once on a running node."""
    match = _TOKEN_RE.fullmatch(token or "")
    if match is None or not _AGENCY_RE.fullmatch(match["agency"]):
        raise TokenError("a valid agency access token is required (Authorization: Bearer ...)")
    agency = match["agency"]
    digest = _digest(token or "")
    found = False
    for record in _records(city, agency):
        expected = str(record.get("sha256", ""))
        if hmac.compare_digest(expected, digest) and record.get("revoked_at") is None:
            found = True
    if not found:
        raise TokenError("the access token is unknown or revoked")
    return agency
