"""City directories: the files one node of a city needs, and signing from its keystore.

A city directory holds everything one node of a city needs::

    <city>/
      genesis.json    the chain's genesis, RFC 8785 JSON (shareable: it is the trust anchor)
      keys/           a Keystore: ``root`` (root authority), ``node`` (block producer),
                      and one key per agency, named by the agency's id
      data/           the node's ledger (``ledger.sqlite``) and its ``node.lock``
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError, GenesisError, KeystoreError
from civicledger.keystore import Keystore, KeystoreReason
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.tx import DEFAULT_EXPIRY_S, SignedTx, expiry_from_now, sign_tx
from civicledger.node.chain import Chain

__all__ = [
    "DEFAULT_EXPIRY_S",
    "NODE_KEY",
    "ROOT_KEY",
    "AgencySpec",
    "CityDir",
    "Signer",
    "create_city",
    "load_key",
]

ROOT_KEY = "root"
"""Keystore name of the city's root authority key."""
NODE_KEY = "node"
"""Keystore name of this node's block-producer key."""
_RESERVED_KEY_NAMES = frozenset({ROOT_KEY, NODE_KEY})

# -- city directories ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AgencySpec:
    """An agency to put in genesis; its key is created under its id in the keystore."""

    id: str
    name: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class CityDir:
    """The layout of a city directory; construction touches nothing on disk."""

    root: Path

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    @property
    def keys_path(self) -> Path:
        return self.root / "keys"

    @property
    def data_path(self) -> Path:
        return self.root / "data"

    @property
    def keystore(self) -> Keystore:
        return Keystore(self.keys_path)

    def exists(self) -> bool:
        """Whether any part of a city is here (so creating one would overwrite something)."""
        return any(p.exists() for p in (self.genesis_path, self.keys_path, self.data_path))

    def require(self) -> CityDir:
        """Raise ``CivicError`` (reason ``no_city``) unless a city was initialised here."""
        if not self.genesis_path.is_file():
            raise CivicError(
                f"no city at {self.root} (no genesis.json); create one with `civic init` "
                "or point --dir / CIVIC_DIR at one",
                reason="no_city",
            )
        if not self.data_path.is_dir():
            raise CivicError(f"city {self.root} has no data directory", reason="no_city")
        return self

    def genesis(self) -> Genesis:
        return Genesis.load(self.require().genesis_path)


def load_key(keystore: Keystore, name: str, passphrase: str | None) -> PrivateKey:
    """Load ``name``, using ``passphrase`` only if that key is encrypted.

    One passphrase can then be given for a set of keys of which only some are encrypted.
    """
    if keystore.is_encrypted(name):
        if passphrase is None:
            raise KeystoreError(
                f"key {name!r} is encrypted; give its passphrase (--passphrase-env VAR)",
                reason=KeystoreReason.PASSPHRASE_REQUIRED.value,
            )
        return keystore.load(name, passphrase=passphrase)
    return keystore.load(name)


def create_city(
    root: Path,
    *,
    city: str,
    chain_id: str,
    agencies: Sequence[AgencySpec],
    passphrase: str | None = None,
    time_ms: int | None = None,
) -> CityDir:
    """Create keys, genesis and the ledger (block 0) of a new city in ``root``.

    Refuses a directory that already holds any part of a city. Everything is validated before
    the first file is written; if a later step fails, what this call created is removed again.
    """
    layout = CityDir(Path(root))
    if layout.exists():
        raise CivicError(
            f"a city already exists at {layout.root}; refusing to overwrite it",
            reason="city_exists",
        )
    for agency in agencies:
        if agency.id in _RESERVED_KEY_NAMES:
            raise CivicError(
                f"agency id {agency.id!r} is reserved for a key name", reason="bad_agency"
            )
    root_key, node_key = PrivateKey.generate(), PrivateKey.generate()
    agency_keys = {agency.id: PrivateKey.generate() for agency in agencies}
    genesis = _genesis(
        chain_id=chain_id,
        city=city,
        time_ms=int(time.time() * 1000) if time_ms is None else time_ms,
        root_authorities=[root_key.public.did],
        producers=[node_key.public.did],
        agencies=[
            {
                "id": agency.id,
                "name": agency.name,
                "keys": [agency_keys[agency.id].public.did],
                "roles": list(agency.roles),
            }
            for agency in agencies
        ],
    )
    created_root = not layout.root.exists()
    try:
        keystore = layout.keystore
        for name, key in [(ROOT_KEY, root_key), (NODE_KEY, node_key), *agency_keys.items()]:
            keystore.create(name, passphrase=passphrase, seed=key.seed)
        layout.genesis_path.write_bytes(genesis.canonical_bytes() + b"\n")
        Chain.create(layout.data_path, genesis, node_key).close()
    except BaseException:
        _remove_city(layout, created_root)
        raise
    return layout


def _genesis(**fields: Any) -> Genesis:
    """A validated Genesis; invalid fields raise ``GenesisError`` naming the first one."""
    try:
        return Genesis.model_validate_json(json.dumps(fields))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise GenesisError(f"genesis {where}: {first['msg']}") from e


def _remove_city(layout: CityDir, created_root: bool) -> None:
    if created_root:
        shutil.rmtree(layout.root, ignore_errors=True)
        return
    for path in (layout.keys_path, layout.data_path):
        shutil.rmtree(path, ignore_errors=True)
    layout.genesis_path.unlink(missing_ok=True)


# -- signing -----------------------------------------------------------------------------------


class Signer:
    """A key with its next nonce, so several transactions can be pending at once.

    The next nonce starts at the chain's last nonce + 1 and is re-read from the chain after a
    rejection, because a rejected transaction consumes no nonce.
    """

    def __init__(self, name: str, key: PrivateKey, chain: Chain) -> None:
        self.name = name
        self.key = key
        self._chain = chain
        self._next = chain.last_nonce(key.public.did) + 1

    @property
    def did(self) -> str:
        return self.key.public.did

    def sign(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        expires_in_s: int = DEFAULT_EXPIRY_S,
    ) -> SignedTx:
        tx = sign_tx(
            self.key,
            chain_id=self._chain.chain_id,
            nonce=self._next,
            contract=contract,
            method=method,
            args=args,
            expires_at=expiry_from_now(expires_in_s),
        )
        self._next += 1
        return tx

    def resync(self) -> None:
        self._next = self._chain.last_nonce(self.did) + 1
