"""Ed25519 keys, signatures and did:key identifiers (RFC 8032 via libsodium; pure, no I/O).

Invariants:

- A ``PublicKey`` always holds exactly 32 bytes. Whether those bytes are a usable curve point is
  left to verification: libsodium refuses small-order and non-canonical keys there, and checking
  the point up front would nearly double the cost of every verification.
- A did:key is the only textual form of a public key: ``did:key:z`` + base58btc(0xed 0x01 + key).
  ``PublicKey.from_did(k.did) == k`` for every key, and only canonical strings are accepted, so a
  key has exactly one identifier.
- Verification raises ``SignatureError``; nothing here returns a boolean verdict, except
  ``verify_batch`` which returns the indices that failed so a caller can reject each of them.
- Every signature CivicLedger makes is over ``signing_message(chain_id, purpose, payload)``, so a
  signature for one chain or one purpose can never be replayed as another.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import base58
import nacl.bindings
import nacl.exceptions
import nacl.utils

from civicledger.errors import EncodingError, SignatureError

__all__ = [
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "PrivateKey",
    "PublicKey",
    "signing_message",
    "verify_batch",
]

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64

_DID_KEY_PREFIX = "did:key:"
_MULTIBASE_BASE58BTC = "z"
_ED25519_PUB_MULTICODEC = b"\xed\x01"
"""The multicodec ``ed25519-pub`` (0xed) as an unsigned varint."""

# A did:key for an Ed25519 key is 48 base58 characters after the "z"; the bound keeps a hostile
# string from reaching base58's quadratic decoder. The character class is the Bitcoin alphabet,
# checked here because ``base58.b58decode`` silently strips trailing whitespace.
_DID_KEY_PATTERN = re.compile(r"did:key:z([1-9A-HJ-NP-Za-km-z]{1,64})")

_DOMAIN_TAG = b"CivicLedger/v1\x00"

# Errors PyNaCl raises for a signature or key that does not verify. Its ValueError and TypeError
# subclass both its CryptoError and the builtins.
_NACL_VERIFY_ERRORS = (nacl.exceptions.CryptoError, ValueError, TypeError)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key; equal keys compare and hash equal."""

    raw: bytes
    """The 32-byte compressed Edwards point, as in RFC 8032 §5.1.5."""

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes):
            raise EncodingError(f"public key must be bytes, not {type(self.raw).__name__}")
        if len(self.raw) != PUBLIC_KEY_SIZE:
            raise EncodingError(
                f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, got {len(self.raw)}"
            )

    def __repr__(self) -> str:
        return f"PublicKey({self.did!r})"

    @property
    def did(self) -> str:
        """The did:key identifier; computed on each call so nothing mutable is cached."""
        encoded = base58.b58encode(_ED25519_PUB_MULTICODEC + self.raw).decode("ascii")
        return _DID_KEY_PREFIX + _MULTIBASE_BASE58BTC + encoded

    @classmethod
    def from_did(cls, did: str) -> PublicKey:
        """Parse a did:key holding an Ed25519 key; anything else raises ``EncodingError``."""
        if not isinstance(did, str):
            raise EncodingError(f"a did must be a string, not {type(did).__name__}")
        match = _DID_KEY_PATTERN.fullmatch(did)
        if match is None:
            raise EncodingError(f"not a base58btc did:key: {did[:80]!r}")
        decoded = base58.b58decode(match.group(1))
        if not decoded.startswith(_ED25519_PUB_MULTICODEC):
            raise EncodingError(f"did:key is not an ed25519-pub key: {did[:80]!r}")
        # Leading "1"s decode to zero bytes and fail the prefix check above, so a string that
        # passes both checks is the one canonical encoding of its key.
        return cls(decoded[len(_ED25519_PUB_MULTICODEC) :])

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise ``SignatureError`` unless ``signature`` is this key's signature of ``message``."""
        if len(signature) != SIGNATURE_SIZE:
            raise SignatureError(
                f"an Ed25519 signature is {SIGNATURE_SIZE} bytes, got {len(signature)}"
            )
        try:
            nacl.bindings.crypto_sign_open(signature + message, self.raw)
        except _NACL_VERIFY_ERRORS as e:
            raise SignatureError(f"signature does not verify for {self.did}") from e


class PrivateKey:
    """An Ed25519 signing key, kept as its 32-byte RFC 8032 seed.

    Its ``repr`` shows only the public did:key, so a key that ends up in a log or a traceback does
    not leak. Python cannot wipe memory, so the seed lives as long as this object does.
    """

    __slots__ = ("_public", "_secret", "_seed")

    _seed: bytes
    _secret: bytes
    _public: PublicKey

    def __init__(self, seed: bytes) -> None:
        """Prefer ``from_seed`` or ``generate``; this is the same as ``from_seed``."""
        if not isinstance(seed, bytes):
            raise EncodingError(f"a seed must be bytes, not {type(seed).__name__}")
        if len(seed) != SEED_SIZE:
            raise EncodingError(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(seed)}")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        self._seed = seed
        self._secret = secret
        self._public = PublicKey(public)

    @classmethod
    def generate(cls) -> PrivateKey:
        """A new key from the operating system's CSPRNG (libsodium ``randombytes``)."""
        return cls(nacl.utils.random(SEED_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """The key whose RFC 8032 private key (seed) is ``seed``; deterministic."""
        return cls(seed)

    @property
    def seed(self) -> bytes:
        """The 32-byte seed; whoever holds it can sign as this key."""
        return self._seed

    @property
    def public(self) -> PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032 §5.1.6)."""
        return nacl.bindings.crypto_sign(message, self._secret)[:SIGNATURE_SIZE]

    def __repr__(self) -> str:
        return f"PrivateKey(public={self._public.did!r})"


def _check_label(field: str, value: str) -> bytes:
    if not isinstance(value, str):
        raise EncodingError(f"{field} must be a string, not {type(value).__name__}")
    if not value:
        raise EncodingError(f"{field} must not be empty")
    if not value.isascii():
        raise EncodingError(f"{field} must be ASCII: {value[:40]!r}")
    if "\x00" in value:
        raise EncodingError(f"{field} must not contain NUL: {value[:40]!r}")
    return value.encode("ascii")


def signing_message(chain_id: str, purpose: str, payload: bytes) -> bytes:
    """The bytes actually signed: a domain tag, the purpose and the chain, then the payload.

    ``b"CivicLedger/v1\\x00" + purpose + b"\\x00" + chain_id + b"\\x00" + payload``. Labels are
    non-empty ASCII without NUL, so the NUL separators make the encoding injective: no choice of
    (chain_id, purpose, payload) produces the same bytes as another.
    """
    purpose_bytes = _check_label("purpose", purpose)
    chain_bytes = _check_label("chain_id", chain_id)
    return b"".join((_DOMAIN_TAG, purpose_bytes, b"\x00", chain_bytes, b"\x00", payload))


def verify_batch(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[int]:
    """Verify ``(public_key_raw, message, signature)`` triples; return the indices that failed.

    An empty list means every item verified. A malformed key or signature counts as a failure
    rather than raising, so one bad item cannot hide the verdict on the others. libsodium runs
    without the GIL, so callers may verify disjoint chunks in threads on several cores.
    """
    failed: list[int] = []
    for index, (public_raw, message, signature) in enumerate(items):
        if len(public_raw) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
            failed.append(index)
            continue
        try:
            nacl.bindings.crypto_sign_open(signature + message, public_raw)
        except _NACL_VERIFY_ERRORS:
            failed.append(index)
    return failed
