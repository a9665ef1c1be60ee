"""A citizen's holder wallet: one ``did:key``, the credentials issued to it, and presentations
bound to a verifier's challenge and domain so a captured presentation cannot be replayed.

The wallet lives in a directory of its own, off the ledger (no personal data goes on chain)::

    WALLET/holder.key.json          the holder's Ed25519 key, a ``Keystore`` file (optionally
                                    encrypted with a passphrase)
    WALLET/credentials/<id>.json    one received credential each

Invariants:

- The wallet directory and ``credentials/`` are mode 0700 and refused if group or others may
  write to them; every file is mode 0600 from the moment it exists, written under a temporary
  name with ``O_CREAT | O_EXCL`` and hard-linked to its final name (atomic, never overwritten),
  as ``Keystore`` does for keys. Files with group or other bits, or symbolic links, are refused.
- A credential is stored only if it is addressed to this holder: a Data Integrity VC whose every
  ``credentialSubject.id`` is the holder's did, or an SD-JWT VC whose ``cnf.jwk`` is the holder's
  key. Its id is derived from its content, so receiving the same credential twice is harmless.
- ``list`` returns summaries (format, type, issuer, validity, the names of disclosable claims),
  never claim values.
- Every presentation is bound to a non-empty ``challenge`` and ``domain``: for Data Integrity a
  Verifiable Presentation with an ``authentication`` proof carrying both; for SD-JWT a Key
  Binding JWT with ``aud`` = domain and ``nonce`` = challenge, over only the chosen disclosures.
- Time is passed in (``now``); nothing here reads the clock.

The wallet checks shape, addressing and validity at ``now``, not the issuer's signature: that is
the verifier's job, with the trust anchors it chooses.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from civicledger.crypto.encoding import canonical_json, from_b64url, parse_json
from civicledger.crypto.keys import PrivateKey, PublicKey
from civicledger.errors import CivicError, EncodingError, KeystoreError
from civicledger.files import (
    FileTooLargeError,
    UnsafeFileError,
    read_private_file,
    write_new_file,
)
from civicledger.keystore import Keystore, KeystoreReason
from civicledger.services.identity import data_integrity, sdjwt
from civicledger.services.identity.credentials import credential_id as id_of_credential
from civicledger.services.identity.vc import (
    VC_V2_CONTEXT,
    CredentialError,
    CredentialReason,
    check_credential,
    format_datetime,
    issuer_id,
    require_aware,
)

__all__ = [
    "FORMAT_VERSION",
    "CredentialFormat",
    "CredentialSummary",
    "Wallet",
    "WalletError",
    "WalletReason",
    "load_credential",
]

FORMAT_VERSION = 1
"""The ``version`` field of every stored credential file; others are refused."""

HOLDER_KEY_NAME = "holder"
_CREDENTIALS = "credentials"
_SUFFIX = ".json"
_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_MAX_FILE_SIZE = 1024 * 1024
_SEPARATOR = "~"


class WalletReason(StrEnum):
    """Stable ``reason`` codes carried by the ``WalletError``s raised here."""

    WALLET_EXISTS = "wallet_exists"
    NO_WALLET = "no_wallet"
    NOT_FOR_THIS_HOLDER = "not_for_this_holder"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    UNSUPPORTED_CREDENTIAL = "unsupported_credential"
    UNKNOWN_CLAIM = "unknown_claim"
    DISCLOSURE_NOT_SUPPORTED = "disclosure_not_supported"
    BAD_CHALLENGE = "bad_challenge"
    BAD_DOMAIN = "bad_domain"
    CORRUPT = "corrupt_wallet_file"
    INSECURE = "insecure_permissions"
    IO = "wallet_io"
    BAD_REQUEST = "bad_wallet_request"


class WalletError(CivicError):
    """The wallet refused an operation or found its own files unusable; see ``WalletReason``."""

    reason = WalletReason.IO.value

    def __init__(self, reason: WalletReason, message: str) -> None:
        super().__init__(message, reason=reason.value)
        self.wallet_reason = reason


class CredentialFormat(StrEnum):
    """How a stored credential is secured."""

    DATA_INTEGRITY = "di"
    """A W3C VC 2.0 JSON document with an eddsa-jcs-2022 Data Integrity proof."""
    SD_JWT = "sd-jwt"
    """An SD-JWT VC in compact form (issuer JWT and disclosures, ending in ``~``)."""


@dataclass(frozen=True, slots=True)
class CredentialSummary:
    """What ``Wallet.list`` shows of a credential: never the claim values."""

    id: str
    """The wallet's id for the credential: 32 hex digits derived from its content."""
    format: CredentialFormat
    """How the credential is secured, which decides how it is presented."""
    types: tuple[str, ...]
    """The VC ``type`` list, or the SD-JWT VC ``vct`` as a single entry."""
    issuer: str
    """The issuer's identifier (``issuer`` / ``iss``)."""
    valid_from: str | None
    """``validFrom``, or the SD-JWT's ``nbf`` (else ``iat``), as a UTC date-time; if any."""
    valid_until: str | None
    """``validUntil``, or the SD-JWT's ``exp``, as a UTC date-time; if any."""
    disclosable: tuple[str, ...]
    """Names of the claims that can be disclosed one by one (SD-JWT only), sorted."""


def _error(reason: WalletReason, message: str) -> WalletError:
    return WalletError(reason, message)


def load_credential(data: bytes) -> dict[str, Any] | str:
    """A credential as received in a file: a JSON object (Data Integrity VC) or a compact SD-JWT.

    Surrounding whitespace is ignored; anything else is refused as ``unsupported_credential``.
    """
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, "credential is not UTF-8 text") from e
    if text.startswith(("{", "[")):
        try:
            value = parse_json(text.encode("utf-8"))
        except EncodingError as e:
            raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, f"not JSON: {e.message}") from e
        if not isinstance(value, dict):
            raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, "credential is not a JSON object")
        return value
    return text


# --- reading credentials (pure) --------------------------------------------------------------


def _subject_ids(credential: Mapping[str, Any]) -> list[object]:
    subject = credential.get("credentialSubject")
    subjects = subject if isinstance(subject, list) else [subject]
    return [s.get("id") if isinstance(s, Mapping) else None for s in subjects]


def _check_data_integrity(credential: Mapping[str, Any], holder: str, now: datetime) -> None:
    check_credential(credential, now=now)
    if not isinstance(credential.get("proof"), Mapping):
        raise _error(
            WalletReason.UNSUPPORTED_CREDENTIAL, "credential has no Data Integrity proof object"
        )
    if any(subject != holder for subject in _subject_ids(credential)):
        raise _error(
            WalletReason.NOT_FOR_THIS_HOLDER,
            f"credentialSubject.id is not this wallet's holder {holder}",
        )


def _jwt_payload(sd_jwt: str) -> dict[str, Any]:
    """The issuer JWT's payload, unverified (the verifier checks the signature)."""
    if not sd_jwt.isascii() or not sd_jwt.endswith(_SEPARATOR):
        raise _error(
            WalletReason.UNSUPPORTED_CREDENTIAL,
            "not an SD-JWT VC as issued (ASCII, ending in '~', without a key binding JWT)",
        )
    parts = sd_jwt.split(_SEPARATOR, 1)[0].split(".")
    if len(parts) != 3:
        raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, "SD-JWT issuer part is not a JWS")
    try:
        payload = json.loads(from_b64url(parts[1]))
    except (EncodingError, ValueError) as e:
        raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, "SD-JWT payload is not JSON") from e
    if not isinstance(payload, dict):
        raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, "SD-JWT payload is not an object")
    for name in ("iss", "vct"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, f"SD-JWT has no {name}")
    for name in ("iat", "exp", "nbf"):
        if name in payload and type(payload[name]) is not int:
            raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, f"SD-JWT {name} is not an integer")
    return payload


def _disclosable(sd_jwt: str) -> tuple[str, ...]:
    """The claim names of the top-level disclosures the issuer handed over."""
    names = []
    for disclosure in sd_jwt.split(_SEPARATOR)[1:-1]:
        try:
            value = json.loads(from_b64url(disclosure))
        except (EncodingError, ValueError) as e:
            raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, "a disclosure is not JSON") from e
        if not isinstance(value, list) or len(value) != 3 or not isinstance(value[1], str):
            raise _error(
                WalletReason.UNSUPPORTED_CREDENTIAL, "a disclosure is not [salt, name, value]"
            )
        names.append(value[1])
    return tuple(sorted(names))


def _check_sd_jwt(sd_jwt: str, holder: PublicKey, now: datetime) -> None:
    payload = _jwt_payload(sd_jwt)
    _disclosable(sd_jwt)
    moment = int(now.timestamp())
    if "exp" in payload and payload["exp"] <= moment:
        raise CredentialError(CredentialReason.EXPIRED, "SD-JWT has expired")
    cnf = payload.get("cnf")
    if not isinstance(cnf, Mapping) or "jwk" not in cnf:
        raise _error(WalletReason.NOT_FOR_THIS_HOLDER, "SD-JWT has no cnf.jwk holder key")
    try:
        bound = sdjwt.public_key_from_jwk(cnf["jwk"])
    except CivicError as e:
        raise _error(WalletReason.NOT_FOR_THIS_HOLDER, f"SD-JWT cnf key: {e.message}") from e
    if bound != holder:
        raise _error(
            WalletReason.NOT_FOR_THIS_HOLDER, f"SD-JWT is bound to a key other than {holder.did}"
        )


def _epoch_text(payload: Mapping[str, Any], name: str) -> str | None:
    if name not in payload:
        return None
    return format_datetime(datetime.fromtimestamp(payload[name], tz=UTC))


def _summary(credential_id: str, stored: Mapping[str, Any]) -> CredentialSummary:
    form = CredentialFormat(stored["format"])
    credential = stored["credential"]
    if form is CredentialFormat.SD_JWT:
        payload = _jwt_payload(credential)
        return CredentialSummary(
            id=credential_id,
            format=form,
            types=(payload["vct"],),
            issuer=payload["iss"],
            valid_from=_epoch_text(payload, "nbf" if "nbf" in payload else "iat"),
            valid_until=_epoch_text(payload, "exp"),
            disclosable=_disclosable(credential),
        )
    kind = credential.get("type")
    types = tuple(str(t) for t in kind) if isinstance(kind, list) else (str(kind),)
    return CredentialSummary(
        id=credential_id,
        format=form,
        types=types,
        issuer=issuer_id(credential),
        valid_from=credential.get("validFrom"),
        valid_until=credential.get("validUntil"),
        disclosable=(),
    )


def _require_binding(challenge: str, domain: str) -> None:
    if not isinstance(challenge, str) or not challenge.strip():
        raise _error(WalletReason.BAD_CHALLENGE, "a presentation needs the verifier's challenge")
    if not isinstance(domain, str) or not domain.strip():
        raise _error(WalletReason.BAD_DOMAIN, "a presentation needs the verifier's domain")


# --- the wallet ------------------------------------------------------------------------------


class Wallet:
    """A holder wallet in one directory; ``create`` makes it, ``open`` finds an existing one."""

    def __init__(self, path: Path, holder: PublicKey) -> None:
        self._path = path
        self._holder = holder

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, passphrase: str | None = None) -> Wallet:
        """Make a wallet with a new holder key, encrypted with ``passphrase`` if one is given."""
        root = Path(path)
        keystore = Keystore(root)
        if HOLDER_KEY_NAME in keystore.names():
            raise _error(WalletReason.WALLET_EXISTS, f"a wallet already exists in {root}")
        try:
            holder = keystore.create(HOLDER_KEY_NAME, passphrase=passphrase)
        except KeystoreError as e:
            if e.reason == KeystoreReason.EXISTS.value:
                raise _error(
                    WalletReason.WALLET_EXISTS, f"a wallet already exists in {root}"
                ) from e
            raise
        wallet = cls(root, holder)
        wallet._credentials_dir(create=True)
        return wallet

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Wallet:
        """The wallet in ``path``; ``no_wallet`` if there is none."""
        root = Path(path)
        keystore = Keystore(root)
        if HOLDER_KEY_NAME not in keystore.names():
            raise _error(
                WalletReason.NO_WALLET,
                f"no wallet in {root}; create one with `civic wallet create`",
            )
        return cls(root, keystore.public(HOLDER_KEY_NAME))

    @property
    def path(self) -> Path:
        return self._path

    @property
    def holder(self) -> str:
        """The holder's did:key; public, readable without the passphrase."""
        return self._holder.did

    def __repr__(self) -> str:
        return f"Wallet({str(self._path)!r}, holder={self.holder!r})"

    def receive(self, credential: Mapping[str, Any] | str, *, now: datetime) -> CredentialSummary:
        """Store ``credential`` if it is addressed to this holder and valid at ``now``.

        A Data Integrity VC is a JSON object; an SD-JWT VC a compact string. Receiving the same
        credential again returns its existing summary.
        """
        require_aware(now)
        if isinstance(credential, str):
            form = CredentialFormat.SD_JWT
            _check_sd_jwt(credential, self._holder, now)
            value: Any = credential
        elif isinstance(credential, Mapping):
            form = CredentialFormat.DATA_INTEGRITY
            _check_data_integrity(credential, self.holder, now)
            value = dict(credential)
        else:
            raise _error(
                WalletReason.UNSUPPORTED_CREDENTIAL,
                "a credential is a JSON object (Data Integrity) or a compact SD-JWT string",
            )
        try:
            credential_id = id_of_credential(value)
        except EncodingError as e:
            raise _error(WalletReason.UNSUPPORTED_CREDENTIAL, e.message) from e
        stored = {"version": FORMAT_VERSION, "format": form.value, "credential": value}
        path = self._credential_path(credential_id)
        directory = self._credentials_dir(create=True)
        if not path.exists():
            _write_new(directory, path, canonical_json(stored) + b"\n")
        return self._summary_of(credential_id)

    def list(self) -> builtins.list[CredentialSummary]:
        """Summaries of every stored credential, sorted by id; no claim values."""
        directory = self._credentials_dir(create=False)
        try:
            entries = os.listdir(directory)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise _error(WalletReason.IO, f"cannot list {directory}: {e}") from e
        ids = (entry.removesuffix(_SUFFIX) for entry in entries if entry.endswith(_SUFFIX))
        return [self._summary_of(i) for i in sorted(ids) if _ID_PATTERN.fullmatch(i)]

    def present(
        self,
        credential_id: str,
        *,
        challenge: str,
        domain: str,
        now: datetime,
        disclose: Collection[str] = (),
        passphrase: str | None = None,
    ) -> dict[str, Any] | str:
        """A presentation of one credential for the verifier at ``domain`` with ``challenge``.

        Data Integrity: a VC 2.0 Verifiable Presentation (``holder`` = this did) with an
        ``authentication`` proof carrying ``challenge`` and ``domain``; ``disclose`` must be
        empty (the whole credential is shown). SD-JWT: only the ``disclose`` claims, then a
        KB-JWT with ``aud`` = ``domain`` and ``nonce`` = ``challenge``.
        """
        require_aware(now)
        _require_binding(challenge, domain)
        stored = self._read(credential_id)
        credential = stored["credential"]
        key = Keystore(self._path).load(HOLDER_KEY_NAME, passphrase=passphrase)
        if key.public != self._holder:
            raise _error(WalletReason.CORRUPT, "the holder key changed while the wallet was open")
        if stored["format"] == CredentialFormat.SD_JWT.value:
            unknown = sorted(set(disclose) - set(_disclosable(credential)))
            if unknown:
                raise _error(
                    WalletReason.UNKNOWN_CLAIM,
                    f"credential {credential_id} has no disclosable claim {', '.join(unknown)}",
                )
            return sdjwt.present(
                credential,
                disclose=disclose,
                holder_key=key,
                audience=domain,
                nonce=challenge,
                now=now,
            )
        if disclose:
            raise _error(
                WalletReason.DISCLOSURE_NOT_SUPPORTED,
                "a Data Integrity credential is presented whole; --disclose is for SD-JWT VCs",
            )
        presentation = {
            "@context": [VC_V2_CONTEXT],
            "type": ["VerifiablePresentation"],
            "holder": self.holder,
            "verifiableCredential": [credential],
        }
        multibase = self.holder.removeprefix("did:key:")
        return data_integrity.sign_presentation(
            presentation,
            key,
            verification_method=f"{self.holder}#{multibase}",
            now=now,
            challenge=challenge,
            domain=domain,
        )

    # --- files --------------------------------------------------------------------------------

    def poll_key(self, poll_id: str, *, passphrase: str | None = None) -> PrivateKey:
        """This wallet's voting key for one poll: derived from the holder key and the poll id,
        so it is the same every time (a vote can be changed later) yet no two polls' keys can
        be linked to each other or to the holder's did:key by anyone without the holder key."""
        if not isinstance(poll_id, str) or not poll_id or len(poll_id) > 128:
            raise _error(WalletReason.BAD_REQUEST, "a poll id is a non-empty string")
        holder = Keystore(self._path).load(HOLDER_KEY_NAME, passphrase=passphrase)
        seed = hmac.new(
            holder.seed, b"civicledger/poll-key/v1\0" + poll_id.encode("utf-8"), hashlib.sha256
        ).digest()
        return PrivateKey.from_seed(seed)

    def currency_key(self, currency_id: str, *, passphrase: str | None = None) -> PrivateKey:
        """This wallet's account key for one currency (its did:key is the account a treasury
        enrols, a merchant registers, or a payment is signed by): derived from the holder key
        and the currency id like ``poll_key`` but under its own domain tag, so it is stable
        (the same account every time) and unlinkable to the holder's did:key, to the wallet's
        poll keys and to its accounts in other currencies without the holder key."""
        if not isinstance(currency_id, str) or not currency_id or len(currency_id) > 128:
            raise _error(WalletReason.BAD_REQUEST, "a currency id is a non-empty string")
        holder = Keystore(self._path).load(HOLDER_KEY_NAME, passphrase=passphrase)
        seed = hmac.new(
            holder.seed,
            b"civicledger/currency-key/v1\0" + currency_id.encode("utf-8"),
            hashlib.sha256,
        ).digest()
        return PrivateKey.from_seed(seed)

    def _credentials_dir(self, *, create: bool) -> Path:
        directory = self._path / _CREDENTIALS
        if create:
            try:
                directory.mkdir(mode=0o700)
                # The mode given to mkdir is filtered by the umask; make it exactly 0700.
                os.chmod(directory, 0o700)
            except FileExistsError:
                pass
            except OSError as e:
                raise _error(WalletReason.IO, f"cannot create {directory}: {e}") from e
        for each in (self._path, directory):
            try:
                info = os.lstat(each)
            except FileNotFoundError:
                if each == directory and not create:
                    return directory
                raise _error(WalletReason.NO_WALLET, f"{each} does not exist") from None
            except OSError as e:
                raise _error(WalletReason.IO, f"cannot open {each}: {e}") from e
            if not stat.S_ISDIR(info.st_mode):
                raise _error(WalletReason.INSECURE, f"{each} is not a directory")
            if info.st_mode & 0o022:
                raise _error(
                    WalletReason.INSECURE,
                    f"{each} is writable by group or others "
                    f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 700 on it",
                )
        return directory

    def _credential_path(self, credential_id: str) -> Path:
        if not isinstance(credential_id, str) or not _ID_PATTERN.fullmatch(credential_id):
            raise _error(
                WalletReason.UNKNOWN_CREDENTIAL,
                f"{str(credential_id)[:80]!r} is not a credential id (32 hex digits)",
            )
        return self._path / _CREDENTIALS / (credential_id + _SUFFIX)

    def _summary_of(self, credential_id: str) -> CredentialSummary:
        stored = self._read(credential_id)
        try:
            return _summary(credential_id, stored)
        except CivicError as e:
            raise _error(WalletReason.CORRUPT, f"credential {credential_id}: {e}") from e

    def _read(self, credential_id: str) -> dict[str, Any]:
        path = self._credential_path(credential_id)
        self._credentials_dir(create=False)
        try:
            data = read_private_file(path, _MAX_FILE_SIZE)
        except FileNotFoundError as e:
            raise _error(
                WalletReason.UNKNOWN_CREDENTIAL, f"no credential {credential_id} in {self._path}"
            ) from e
        except UnsafeFileError as e:
            raise _error(WalletReason.INSECURE, str(e)) from e
        except FileTooLargeError as e:
            raise _error(WalletReason.CORRUPT, str(e)) from e
        except OSError as e:
            raise _error(WalletReason.IO, f"cannot open {path}: {e}") from e
        try:
            stored = parse_json(data)
        except EncodingError as e:
            raise _error(WalletReason.CORRUPT, f"{path}: {e.message}") from e
        if not isinstance(stored, dict) or stored.get("version") != FORMAT_VERSION:
            raise _error(WalletReason.CORRUPT, f"{path} is not a version {FORMAT_VERSION} file")
        form = stored.get("format")
        credential = stored.get("credential")
        is_jwt = form == CredentialFormat.SD_JWT.value and isinstance(credential, str)
        is_di = form == CredentialFormat.DATA_INTEGRITY.value and isinstance(credential, dict)
        if not (is_jwt or is_di):
            raise _error(WalletReason.CORRUPT, f"{path} holds no credential of a known format")
        if not isinstance(credential, str | dict) or id_of_credential(credential) != credential_id:
            raise _error(WalletReason.CORRUPT, f"{path} does not hold credential {credential_id}")
        return stored


def _write_new(directory: Path, path: Path, content: bytes) -> None:
    try:
        write_new_file(directory, path, content)
    except FileExistsError:
        # The same content-addressed credential arrived concurrently; it is already stored.
        return
    except OSError as e:
        raise _error(WalletReason.IO, f"cannot write {path}: {e}") from e
