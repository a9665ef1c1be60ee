"""W3C Bitstring Status List v1.0: revocation and suspension of credentials, pure code.

An issuer keeps one bitstring per status purpose; a credential carries a
``BitstringStatusListEntry`` naming its list (``statusListCredential``) and its position
(``statusListIndex``). The issuer publishes the list as a ``BitstringStatusListCredential``
whose ``encodedList`` is the multibase (``u``) base64url, unpadded, of the GZIP of the bitstring,
and anchors the SHA-256 of that credential's RFC 8785 bytes on the ledger at every update (the
``status_lists`` contract, ``status_registry.py``). A verifier that checks a credential's status
against a list whose digest equals an anchored one can later prove which list it checked: the
anchoring transaction has an inclusion proof.

Invariants:

- A list holds at least ``MIN_BITS`` (131,072) bits, a whole number of bytes; bit ``i`` is the
  ``i mod 8``-th bit, counting from the most significant, of byte ``i // 8`` (the spec's order:
  index 0 is the left-most bit of the first byte).
- Decoding never inflates more than ``max_bits / 8`` bytes, whatever the compressed input claims
  (a decompression bomb is refused after at most that much work), and accepts exactly one GZIP
  member with nothing after it.
- Indices are handed out at random (so a list's bits say nothing about issuance order) and never
  twice by the same ``IndexAllocator``.

Signing the list credential belongs to the caller (the data-integrity module): pass ``sign``.
This module does no I/O and reads no clock.
"""

from __future__ import annotations

import re
import secrets
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from random import Random
from typing import Any, Literal, get_args

from civicledger.crypto.encoding import JsonValue, b64url, canonical_json, from_b64url, sha256
from civicledger.errors import CivicError, EncodingError

__all__ = [
    "DEFAULT_MAX_BITS",
    "ENTRY_TYPE",
    "LIST_CREDENTIAL_TYPE",
    "LIST_TYPE",
    "MIN_BITS",
    "VC_V2_CONTEXT",
    "CredentialStatus",
    "IndexAllocator",
    "StatusEntry",
    "StatusError",
    "StatusList",
    "StatusPurpose",
    "check_status",
    "list_credential_digest",
    "status_list_credential",
]

StatusPurpose = Literal["revocation", "suspension"]
PURPOSES: tuple[str, ...] = get_args(StatusPurpose)

MIN_BITS = 131_072
"""The spec's minimum list size (16 KiB): enough credentials per list for herd privacy."""
DEFAULT_MAX_BITS = 1 << 24
"""The largest list we decode unless told otherwise: 2 MiB of bitstring, 16,777,216 credentials."""

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
"""The VC 2.0 context already defines the Bitstring Status List terms."""
LIST_CREDENTIAL_TYPE = "BitstringStatusListCredential"
LIST_TYPE = "BitstringStatusList"
ENTRY_TYPE = "BitstringStatusListEntry"

_MULTIBASE_BASE64URL = "u"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_INDEX_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,17})$")
"""Base 10, no sign, no leading zeros (one string per index), at most 18 digits."""
_ENTRY_FIELDS = frozenset(
    {"id", "type", "statusPurpose", "statusListIndex", "statusListCredential"}
)
_URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+$")
"""An absolute URI: a scheme, a colon, no whitespace (the verifier dereferences it, not us)."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class StatusError(CivicError):
    """A status entry or status list cannot be trusted or used; ``reason`` says why.

    Reasons: ``malformed_status_entry``, ``malformed_status_list``, ``status_list_too_large``,
    ``status_list_too_small``, ``status_list_mismatch`` (not the anchored list, or not the list
    the entry names), ``status_purpose_mismatch``, ``status_index_out_of_range``,
    ``status_index_in_use``, ``status_list_full``.
    """

    reason = "status_error"


@dataclass(frozen=True)
class CredentialStatus:
    """What one status list says about one credential."""

    revoked: bool
    """True if a ``revocation`` list has the credential's bit set (permanent)."""
    suspended: bool
    """True if a ``suspension`` list has the credential's bit set (may be lifted)."""
    list_digest: str
    """The anchored digest (hex) of the list that was checked: the verifier's evidence."""
    list_id: str = ""
    """The list the credential's entry names (``statusListCredential``)."""
    index: int = -1
    """The credential's index in that list: with ``list_id`` and the issuer, unique to one
    credential (a registrar derives per-poll pseudonyms from it)."""


class StatusList:
    """A mutable bitstring for one purpose, as the issuer keeps it between publications."""

    def __init__(self, purpose: StatusPurpose, size: int = MIN_BITS) -> None:
        _check_purpose(purpose)
        _check_size(size)
        self.purpose: StatusPurpose = purpose
        self._bits = bytearray(size // 8)

    @classmethod
    def from_bytes(cls, purpose: StatusPurpose, data: bytes) -> StatusList:
        """A list whose bitstring is ``data`` (checked for size like any other list)."""
        made = cls(purpose, len(data) * 8)
        made._bits[:] = data
        return made

    @property
    def size(self) -> int:
        """Number of bits (credential slots)."""
        return len(self._bits) * 8

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def get(self, index: int) -> bool:
        byte, mask = self._locate(index)
        return bool(self._bits[byte] & mask)

    def set(self, index: int, value: bool = True) -> None:
        byte, mask = self._locate(index)
        if value:
            self._bits[byte] |= mask
        else:
            self._bits[byte] &= ~mask & 0xFF

    def clear(self, index: int) -> None:
        self.set(index, False)

    def set_indices(self) -> list[int]:
        """Every index whose bit is set, ascending."""
        return [
            i * 8 + bit
            for i, byte in enumerate(self._bits)
            if byte
            for bit in range(8)
            if byte & (0x80 >> bit)
        ]

    def encode(self) -> str:
        """The ``encodedList``: ``u`` + base64url (no padding) of the GZIP of the bitstring.

        ``mtime=0`` keeps the output a function of the bits alone, so republishing an unchanged
        list gives the same digest.
        """
        compressor = zlib.compressobj(9, zlib.DEFLATED, _GZIP_WBITS)
        compressed = compressor.compress(bytes(self._bits)) + compressor.flush()
        return _MULTIBASE_BASE64URL + b64url(compressed)

    @classmethod
    def decode(
        cls, encoded: str, purpose: StatusPurpose, *, max_bits: int = DEFAULT_MAX_BITS
    ) -> StatusList:
        """Parse an ``encodedList``, refusing anything over ``max_bits`` before inflating it."""
        _check_purpose(purpose)
        if max_bits < MIN_BITS or max_bits % 8:
            raise ValueError(f"max_bits must be a multiple of 8 and at least {MIN_BITS}")
        max_bytes = max_bits // 8
        # GZIP never expands incompressible data by more than a few bytes per 16 KiB block.
        max_chars = 1 + (max_bytes + max_bytes // 1000 + 1024) * 4 // 3
        if not isinstance(encoded, str) or not encoded.startswith(_MULTIBASE_BASE64URL):
            raise StatusError(
                "encodedList must be a string starting with the multibase prefix 'u'",
                reason="malformed_status_list",
            )
        if len(encoded) > max_chars:
            raise StatusError(
                f"encodedList is {len(encoded)} characters, more than {max_chars}",
                reason="status_list_too_large",
            )
        try:
            compressed = from_b64url(encoded[1:])
        except EncodingError as e:
            raise StatusError(f"encodedList: {e.message}", reason="malformed_status_list") from e
        bits = _gunzip(compressed, max_bytes)
        _check_size(len(bits) * 8, max_bits)
        made = cls(purpose, len(bits) * 8)
        made._bits[:] = bits
        return made

    def _locate(self, index: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"a status index is an int, not {type(index).__name__}")
        if not 0 <= index < self.size:
            raise StatusError(
                f"index {index} is outside a list of {self.size} bits",
                reason="status_index_out_of_range",
            )
        return index // 8, 0x80 >> (index % 8)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusList):
            return NotImplemented
        return self.purpose == other.purpose and self._bits == other._bits

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def __repr__(self) -> str:
        return f"StatusList({self.purpose!r}, size={self.size}, set={len(self.set_indices())})"


class IndexAllocator:
    """Hands out a list's indices at random, each at most once.

    The issuer persists ``used`` (off the ledger: it links indices to credentials) and passes
    it back when it reloads. ``rng`` defaults to the operating system's CSPRNG; tests inject a
    seeded ``random.Random``.
    """

    def __init__(self, size: int, *, used: Iterable[int] = (), rng: Random | None = None) -> None:
        _check_size(size)
        self.size = size
        self._used: set[int] = set()
        self._pool: list[int] | None = None
        """The free indices, built once the list is half full."""
        self._rng: Random = rng if rng is not None else secrets.SystemRandom()
        for index in used:
            self.reserve(index)

    @property
    def used(self) -> frozenset[int]:
        return frozenset(self._used)

    @property
    def free(self) -> int:
        return self.size - len(self._used)

    def reserve(self, index: int) -> None:
        """Mark ``index`` taken (already given to a credential)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise StatusError(
                f"index {index!r} is outside a list of {self.size} bits",
                reason="status_index_out_of_range",
            )
        if index in self._used:
            raise StatusError(f"index {index} is already in use", reason="status_index_in_use")
        self._used.add(index)
        self._pool = None

    def allocate(self) -> int:
        """A fresh index chosen uniformly among the free ones."""
        if not self.free:
            raise StatusError(f"all {self.size} indices are in use", reason="status_list_full")
        if len(self._used) * 2 <= self.size:
            # At most half taken: each draw succeeds with probability >= 1/2.
            while True:
                index = self._rng.randrange(self.size)
                if index not in self._used:
                    break
        else:
            # Mostly taken: draw from the free indices themselves (swap-remove, O(1) per draw).
            if self._pool is None:
                self._pool = [i for i in range(self.size) if i not in self._used]
            slot = self._rng.randrange(len(self._pool))
            index = self._pool[slot]
            self._pool[slot] = self._pool[-1]
            self._pool.pop()
        self._used.add(index)
        return index


@dataclass(frozen=True)
class StatusEntry:
    """A credential's ``credentialStatus`` entry of type ``BitstringStatusListEntry``."""

    status_list_credential: str
    """URL of the ``BitstringStatusListCredential``."""
    index: int
    """Position of the credential's bit (``statusListIndex``, a base-10 string on the wire)."""
    purpose: StatusPurpose
    id: str | None = None
    """Optional id of the entry; ``for_index`` uses ``<list URL>#<index>``."""

    def __post_init__(self) -> None:
        _check_purpose(self.purpose)
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise StatusError(
                f"statusListIndex must be a non-negative integer, not {self.index!r}",
                reason="malformed_status_entry",
            )
        if not _is_url(self.status_list_credential):
            raise StatusError(
                "statusListCredential must be an absolute URL", reason="malformed_status_entry"
            )

    @classmethod
    def for_index(cls, list_url: str, index: int, purpose: StatusPurpose) -> StatusEntry:
        return cls(list_url, index, purpose, id=f"{list_url}#{index}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": ENTRY_TYPE,
            "statusPurpose": self.purpose,
            "statusListIndex": str(self.index),
            "statusListCredential": self.status_list_credential,
        }
        if self.id is not None:
            out["id"] = self.id
        return out

    @classmethod
    def from_json(cls, value: JsonValue) -> StatusEntry:
        """Parse an entry; anything unexpected is refused (we support one bit per status)."""
        if not isinstance(value, dict):
            raise StatusError("a status entry is a JSON object", reason="malformed_status_entry")
        unknown = set(value) - _ENTRY_FIELDS
        if unknown:
            raise StatusError(
                f"unsupported status entry fields: {sorted(unknown)}",
                reason="malformed_status_entry",
            )
        if value.get("type") != ENTRY_TYPE:
            raise StatusError(f"type must be {ENTRY_TYPE!r}", reason="malformed_status_entry")
        purpose = value.get("statusPurpose")
        if purpose not in PURPOSES:
            raise StatusError(
                f"statusPurpose must be one of {PURPOSES}", reason="malformed_status_entry"
            )
        index = value.get("statusListIndex")
        if not isinstance(index, str) or not _INDEX_PATTERN.match(index):
            raise StatusError(
                "statusListIndex must be a base-10 integer string without leading zeros",
                reason="malformed_status_entry",
            )
        entry_id = value.get("id")
        if entry_id is not None and not isinstance(entry_id, str):
            raise StatusError("id must be a string", reason="malformed_status_entry")
        url = value.get("statusListCredential")
        if not isinstance(url, str):
            raise StatusError(
                "statusListCredential must be a string", reason="malformed_status_entry"
            )
        return cls(url, int(index), purpose, id=entry_id)


def status_list_credential(
    status_list: StatusList,
    *,
    credential_id: str,
    issuer: str,
    valid_from: str | None = None,
    valid_until: str | None = None,
    sign: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``BitstringStatusListCredential`` publishing ``status_list``, signed by ``sign``.

    Times are XML Schema dateTime strings chosen by the caller (this module reads no clock).
    """
    if not _is_url(credential_id):
        raise ValueError("credential_id must be an absolute URL")
    document: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", LIST_CREDENTIAL_TYPE],
        "issuer": issuer,
        "credentialSubject": {
            "id": f"{credential_id}#list",
            "type": LIST_TYPE,
            "statusPurpose": status_list.purpose,
            "encodedList": status_list.encode(),
        },
    }
    if valid_from is not None:
        document["validFrom"] = valid_from
    if valid_until is not None:
        document["validUntil"] = valid_until
    return sign(document) if sign is not None else document


def list_credential_digest(list_credential: JsonValue) -> str:
    """The anchor digest: SHA-256 (hex) of the RFC 8785 bytes of the (signed) list credential."""
    return sha256(canonical_json(list_credential)).hex()


def check_status(
    entry: StatusEntry,
    list_credential: JsonValue,
    anchored_digest: str,
    *,
    max_bits: int = DEFAULT_MAX_BITS,
) -> CredentialStatus:
    """What ``list_credential`` says about ``entry``, provided it is the anchored list.

    Raises ``StatusError`` if the list is not the one whose digest was anchored (stale, forged
    or altered in transit), is not the list the entry names, has another purpose, or cannot be
    decoded, or if the entry's index is outside it. The caller verifies the list credential's
    own proof and picks ``anchored_digest`` (``status_lists.latest`` or ``as_of``).
    """
    if not isinstance(anchored_digest, str) or not _HEX64.match(anchored_digest):
        raise ValueError("anchored_digest must be 64 lowercase hex digits")
    try:
        actual = list_credential_digest(list_credential)
    except EncodingError as e:
        raise StatusError(f"list credential: {e.message}", reason="malformed_status_list") from e
    if actual != anchored_digest:
        raise StatusError(
            f"list credential digest {actual} is not the anchored {anchored_digest}",
            reason="status_list_mismatch",
        )
    subject = _list_subject(list_credential)
    if list_credential["id"] != entry.status_list_credential:
        raise StatusError(
            f"entry names {entry.status_list_credential!r}, list is {list_credential['id']!r}",
            reason="status_list_mismatch",
        )
    if subject["statusPurpose"] != entry.purpose:
        raise StatusError(
            f"entry is for {entry.purpose!r}, list is for {subject['statusPurpose']!r}",
            reason="status_purpose_mismatch",
        )
    status_list = StatusList.decode(subject["encodedList"], entry.purpose, max_bits=max_bits)
    bit = status_list.get(entry.index)
    return CredentialStatus(
        revoked=bit and entry.purpose == "revocation",
        suspended=bit and entry.purpose == "suspension",
        list_digest=actual,
        list_id=entry.status_list_credential,
        index=entry.index,
    )


def _list_subject(document: JsonValue) -> dict[str, Any]:
    """The ``credentialSubject`` of a well-formed list credential, or ``StatusError``."""
    if not isinstance(document, dict):
        raise StatusError("a list credential is a JSON object", reason="malformed_status_list")
    types = document.get("type")
    if not isinstance(types, list) or LIST_CREDENTIAL_TYPE not in types:
        raise StatusError(
            f"type must include {LIST_CREDENTIAL_TYPE!r}", reason="malformed_status_list"
        )
    if not isinstance(document.get("id"), str):
        raise StatusError("a list credential needs an id", reason="malformed_status_list")
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict) or subject.get("type") != LIST_TYPE:
        raise StatusError(
            f"credentialSubject.type must be {LIST_TYPE!r}", reason="malformed_status_list"
        )
    if subject.get("statusPurpose") not in PURPOSES:
        raise StatusError(
            f"credentialSubject.statusPurpose must be one of {PURPOSES}",
            reason="malformed_status_list",
        )
    if not isinstance(subject.get("encodedList"), str):
        raise StatusError(
            "credentialSubject.encodedList is missing", reason="malformed_status_list"
        )
    return subject


def _gunzip(compressed: bytes, max_bytes: int) -> bytes:
    """Inflate one GZIP member, stopping as soon as the output would exceed ``max_bytes``."""
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        out = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as e:
        raise StatusError(f"encodedList is not GZIP: {e}", reason="malformed_status_list") from e
    if len(out) > max_bytes:
        raise StatusError(
            f"encodedList inflates to more than {max_bytes} bytes",
            reason="status_list_too_large",
        )
    if not inflater.eof:
        raise StatusError("encodedList is a truncated GZIP stream", reason="malformed_status_list")
    if inflater.unused_data:
        raise StatusError(
            "encodedList has data after its GZIP member", reason="malformed_status_list"
        )
    return out


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise StatusError(
            f"status purpose must be one of {PURPOSES}, not {purpose!r}",
            reason="malformed_status_list",
        )


def _check_size(bits: int, max_bits: int | None = None) -> None:
    if bits % 8:
        raise StatusError(
            f"a list holds whole bytes, not {bits} bits", reason="malformed_status_list"
        )
    if bits < MIN_BITS:
        raise StatusError(
            f"a list holds at least {MIN_BITS} bits, not {bits}", reason="status_list_too_small"
        )
    if max_bits is not None and bits > max_bits:
        raise StatusError(
            f"a list of {bits} bits is over the limit of {max_bits}",
            reason="status_list_too_large",
        )


def _is_url(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 2048 and bool(_URL_PATTERN.match(value))
