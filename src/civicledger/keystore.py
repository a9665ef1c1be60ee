"""A directory of named Ed25519 keys, each in its own ``<name>.key.json``, optionally encrypted.

Invariants:

- The directory is created mode 0700 and is refused if group or others may write to it (they
  could replace a key file with one whose seed they know).
- A key file is mode 0600 from the moment it exists: it is written under a temporary name opened
  with ``O_CREAT | O_EXCL`` and mode 0600, synced, then hard-linked to its final name. The link
  is atomic and fails if the name exists, so a key is never overwritten and a reader never sees
  a half-written file.
- A key file with any group or other permission bit, or one that is not a regular file, is
  refused when read.
- With a passphrase, the seed is encrypted with ``SecretBox`` (XSalsa20-Poly1305) under a key
  derived by Argon2id; only the salt, the limits, the nonce and the ciphertext are stored. Without
  one, the seed is stored in base64url and protected only by the file mode.
- A loaded key must match the did:key stored beside it; the did is public and readable without
  the passphrase.

Passphrases are normalised to Unicode NFC before derivation, so the same passphrase typed through
different input methods (composed or decomposed Hangul, say) opens the same key.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from enum import StrEnum
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.secret
import nacl.utils

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, parse_json
from civicledger.crypto.keys import SEED_SIZE, PrivateKey, PublicKey
from civicledger.errors import EncodingError, KeystoreError
from civicledger.files import (
    FileTooLargeError,
    UnsafeFileError,
    read_private_file,
    write_new_file,
)

__all__ = ["FORMAT_VERSION", "Keystore", "KeystoreReason"]

FORMAT_VERSION = 1
"""The ``version`` field written to every key file; others are refused."""

_SUFFIX = ".key.json"
_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_MAX_FILE_SIZE = 64 * 1024

_KDF = "argon2id"
_CIPHER = "xsalsa20poly1305"
_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# Limits read from a file are bounded so a tampered file cannot make ``load`` use gigabytes.
_OPSLIMIT_RANGE = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE)
_MEMLIMIT_RANGE = (nacl.pwhash.argon2id.MEMLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE)


class KeystoreReason(StrEnum):
    """Stable ``reason`` codes carried by the ``KeystoreError``s raised here.

    The ``noqa: S105`` marks below: these are reason codes, not passwords.
    """

    BAD_NAME = "bad_key_name"
    NOT_FOUND = "key_not_found"
    EXISTS = "key_exists"
    PASSPHRASE_REQUIRED = "passphrase_required"  # noqa: S105
    NOT_ENCRYPTED = "key_not_encrypted"
    WRONG_PASSPHRASE = "wrong_passphrase"  # noqa: S105
    BAD_PASSPHRASE = "bad_passphrase"  # noqa: S105
    BAD_SEED = "bad_seed"
    CORRUPT = "corrupt_key_file"
    INSECURE = "insecure_permissions"
    IO = "keystore_io"


def _error(reason: KeystoreReason, message: str) -> KeystoreError:
    return KeystoreError(message, reason=reason.value)


class Keystore:
    """Named keys in one directory; the directory is only created by ``create``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"Keystore({str(self._path)!r})"

    def names(self) -> list[str]:
        """The names of the stored keys, sorted; empty if the directory does not exist yet."""
        try:
            entries = os.listdir(self._path)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise _error(KeystoreReason.IO, f"cannot list keystore {self._path}: {e}") from e
        names = (entry.removesuffix(_SUFFIX) for entry in entries if entry.endswith(_SUFFIX))
        return sorted(name for name in names if _NAME_PATTERN.fullmatch(name))

    def create(
        self, name: str, *, passphrase: str | None = None, seed: bytes | None = None
    ) -> PublicKey:
        """Store a new key (random, or from ``seed``) under ``name``; never overwrites one."""
        path = self._key_path(name)
        if passphrase is not None:
            _passphrase_bytes(passphrase)
        key = self._new_key(seed)
        self._ensure_directory()
        if path.exists():
            raise _error(KeystoreReason.EXISTS, f"key {name!r} already exists in {self._path}")
        document: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "name": name,
            "did": key.public.did,
        }
        if passphrase is None:
            document["seed"] = b64url(key.seed)
        else:
            document["encrypted_seed"] = _encrypt_seed(key.seed, passphrase)
        self._write_new(path, canonical_json(document) + b"\n")
        return key.public

    def load(self, name: str, *, passphrase: str | None = None) -> PrivateKey:
        """The key stored under ``name``, decrypted with ``passphrase`` if it is encrypted."""
        document = self._read(name)
        encrypted = _is_encrypted(name, document)
        if encrypted and passphrase is None:
            raise _error(
                KeystoreReason.PASSPHRASE_REQUIRED,
                f"key {name!r} is encrypted; a passphrase is required",
            )
        if not encrypted and passphrase is not None:
            raise _error(
                KeystoreReason.NOT_ENCRYPTED,
                f"key {name!r} is not encrypted, but a passphrase was given",
            )
        if passphrase is None:
            seed = _decode_plain_seed(name, document)
        else:
            seed = _decrypt_seed(name, document["encrypted_seed"], passphrase)
        try:
            key = PrivateKey.from_seed(seed)
        except EncodingError as e:
            raise _error(KeystoreReason.CORRUPT, f"key file for {name!r}: {e.message}") from e
        if key.public != _stored_public(name, document):
            raise _error(
                KeystoreReason.CORRUPT,
                f"key file for {name!r}: the seed does not match the stored did",
            )
        return key

    def public(self, name: str) -> PublicKey:
        """The public key stored under ``name``; needs no passphrase."""
        return _stored_public(name, self._read(name))

    def is_encrypted(self, name: str) -> bool:
        return _is_encrypted(name, self._read(name))

    def _key_path(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
            raise _error(
                KeystoreReason.BAD_NAME,
                f"invalid key name {name!r}: use 1-64 of a-z 0-9 . _ - starting with a-z or 0-9",
            )
        return self._path / (name + _SUFFIX)

    @staticmethod
    def _new_key(seed: bytes | None) -> PrivateKey:
        if seed is None:
            return PrivateKey.generate()
        try:
            return PrivateKey.from_seed(seed)
        except EncodingError as e:
            raise _error(KeystoreReason.BAD_SEED, f"invalid seed: {e.message}") from e

    def _ensure_directory(self) -> None:
        try:
            self._path.mkdir(mode=0o700, parents=True)
            # The mode given to mkdir is filtered by the umask; make it exactly 0700.
            os.chmod(self._path, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            raise _error(KeystoreReason.IO, f"cannot create keystore {self._path}: {e}") from e
        self._check_directory()

    def _check_directory(self) -> None:
        try:
            info = os.stat(self._path)
        except OSError as e:
            raise _error(KeystoreReason.IO, f"cannot open keystore {self._path}: {e}") from e
        if not stat.S_ISDIR(info.st_mode):
            raise _error(KeystoreReason.IO, f"keystore {self._path} is not a directory")
        if info.st_mode & 0o022:
            raise _error(
                KeystoreReason.INSECURE,
                f"keystore {self._path} is writable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 700 on it",
            )

    def _write_new(self, path: Path, content: bytes) -> None:
        try:
            write_new_file(self._path, path, content)
        except FileExistsError as e:
            raise _error(KeystoreReason.EXISTS, f"key file {path} already exists") from e
        except OSError as e:
            raise _error(KeystoreReason.IO, f"cannot write key file {path}: {e}") from e

    def _read(self, name: str) -> dict[str, Any]:
        path = self._key_path(name)
        self._check_directory()
        try:
            data = read_private_file(path, _MAX_FILE_SIZE)
        except FileNotFoundError as e:
            raise _error(KeystoreReason.NOT_FOUND, f"no key named {name!r} in {self._path}") from e
        except UnsafeFileError as e:
            raise _error(KeystoreReason.INSECURE, f"key file {e}") from e
        except FileTooLargeError as e:
            raise _error(KeystoreReason.CORRUPT, f"key file {e}") from e
        except OSError as e:
            raise _error(KeystoreReason.IO, f"cannot open key file {path}: {e}") from e
        try:
            document = parse_json(data)
        except EncodingError as e:
            raise _error(KeystoreReason.CORRUPT, f"key file {path}: {e.message}") from e
        if not isinstance(document, dict):
            raise _error(KeystoreReason.CORRUPT, f"key file {path} is not a JSON object")
        if document.get("version") != FORMAT_VERSION:
            raise _error(
                KeystoreReason.CORRUPT,
                f"key file {path} has unsupported version {document.get('version')!r}",
            )
        if document.get("name") != name:
            raise _error(
                KeystoreReason.CORRUPT,
                f"key file {path} is for {document.get('name')!r}, not {name!r}",
            )
        return document


def _corrupt(name: str, detail: str) -> KeystoreError:
    return _error(KeystoreReason.CORRUPT, f"key file for {name!r}: {detail}")


def _is_encrypted(name: str, document: dict[str, Any]) -> bool:
    has_plain = "seed" in document
    has_encrypted = "encrypted_seed" in document
    if has_plain == has_encrypted:
        raise _corrupt(name, "must hold exactly one of 'seed' and 'encrypted_seed'")
    return has_encrypted


def _stored_public(name: str, document: dict[str, Any]) -> PublicKey:
    did = document.get("did")
    if not isinstance(did, str):
        raise _corrupt(name, "'did' is missing")
    try:
        return PublicKey.from_did(did)
    except EncodingError as e:
        raise _corrupt(name, e.message) from e


def _decode_b64_field(name: str, container: dict[str, Any], field: str) -> bytes:
    value = container.get(field)
    if not isinstance(value, str):
        raise _corrupt(name, f"{field!r} must be a base64url string")
    try:
        return from_b64url(value)
    except EncodingError as e:
        raise _corrupt(name, f"{field!r}: {e.message}") from e


def _decode_plain_seed(name: str, document: dict[str, Any]) -> bytes:
    return _decode_b64_field(name, document, "seed")


def _passphrase_bytes(passphrase: str) -> bytes:
    if not isinstance(passphrase, str):
        raise _error(KeystoreReason.BAD_PASSPHRASE, "the passphrase must be a string")
    if not passphrase:
        raise _error(KeystoreReason.BAD_PASSPHRASE, "the passphrase must not be empty")
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        _passphrase_bytes(passphrase),
        salt,
        opslimit=opslimit,
        memlimit=memlimit,
    )


def _encrypt_seed(seed: bytes, passphrase: str) -> dict[str, Any]:
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, _OPSLIMIT, _MEMLIMIT))
    ciphertext = box.encrypt(seed, nonce).ciphertext
    return {
        "kdf": _KDF,
        "salt": b64url(salt),
        "opslimit": _OPSLIMIT,
        "memlimit": _MEMLIMIT,
        "cipher": _CIPHER,
        "nonce": b64url(nonce),
        "ciphertext": b64url(ciphertext),
    }


def _bounded_int(name: str, params: dict[str, Any], field: str, bounds: tuple[int, int]) -> int:
    value = params.get(field)
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _corrupt(name, f"{field!r} must be an integer in [{low}, {high}]")
    return value


def _decrypt_seed(name: str, params: Any, passphrase: str) -> bytes:
    if not isinstance(params, dict):
        raise _corrupt(name, "'encrypted_seed' must be an object")
    if params.get("kdf") != _KDF or params.get("cipher") != _CIPHER:
        raise _corrupt(name, f"unsupported kdf or cipher (expected {_KDF}, {_CIPHER})")
    salt = _decode_b64_field(name, params, "salt")
    nonce = _decode_b64_field(name, params, "nonce")
    ciphertext = _decode_b64_field(name, params, "ciphertext")
    opslimit = _bounded_int(name, params, "opslimit", _OPSLIMIT_RANGE)
    memlimit = _bounded_int(name, params, "memlimit", _MEMLIMIT_RANGE)
    if len(salt) != nacl.pwhash.argon2id.SALTBYTES:
        raise _corrupt(name, f"the salt must be {nacl.pwhash.argon2id.SALTBYTES} bytes")
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise _corrupt(name, f"the nonce must be {nacl.secret.SecretBox.NONCE_SIZE} bytes")
    if len(ciphertext) != SEED_SIZE + nacl.secret.SecretBox.MACBYTES:
        raise _corrupt(name, "the ciphertext has the wrong length")
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    try:
        return box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as e:
        raise _error(
            KeystoreReason.WRONG_PASSPHRASE,
            f"cannot decrypt key {name!r}: wrong passphrase or a tampered key file",
        ) from e
