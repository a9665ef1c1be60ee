"""How an agency's off-ledger services reach the ledger: read, and sign-and-commit.

Two ways, one interface: the CLI opens the city's embedded node for each write
(``CityLedger``: nothing else may hold the node then), while a running node (``civic node run``,
the HTTP API, the portal) lends its own (``NodeLedger``), so issuing through the API never opens
a second writer on the same database.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from civicledger.city import NODE_KEY, CityDir, Signer, load_key
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError, NodeError
from civicledger.ledger.receipt import Receipt
from civicledger.node.chain import Chain
from civicledger.node.embedded import EmbeddedNode
from civicledger.node.protocol import Node

__all__ = ["AgencyLedger", "CityLedger", "LedgerAccess", "NodeLedger", "TxFailed"]

RECEIPT_TIMEOUT_S = 60.0
_LOCK_STRIPES = 64


class TxFailed(CivicError):  # noqa: N818  (reads as the verdict, like TxRejected)
    """A transaction an agency service sent was refused or failed; ``reason`` is the ledger's."""

    reason = "tx_failed"


class LedgerAccess(Protocol):
    """Reading and writing the ledger with keys the caller holds: all a voter's or a trustee's
    tools need, locally (``CityLedger``, ``NodeLedger``) or over HTTP (``agency.remote``)."""

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        """A contract query at the head (as ``Chain.query``)."""

    def send_as(self, key: PrivateKey, contract: str, method: str, args: dict[str, Any]) -> Any:
        """Sign with ``key``, commit, return the result; ``TxFailed`` if refused or failed."""


class AgencyLedger(LedgerAccess, Protocol):
    """What an agency service needs of the ledger: also its city directory and keystore."""

    city: CityDir

    def head_time_ms(self) -> int:
        """The head block's time."""

    def key(self, name: str) -> PrivateKey:
        """Keystore key ``name`` of the city directory (unlocked with the ledger's passphrase)."""

    def send(self, signer: str, contract: str, method: str, args: dict[str, Any]) -> Any:
        """Sign with keystore key ``signer``, commit, return the result; ``TxFailed`` if not ok."""


def _result(receipt: Receipt, contract: str, method: str) -> Any:
    if not receipt.ok:
        raise TxFailed(
            receipt.message or f"{contract}.{method} failed", reason=receipt.reason or "failed"
        )
    return receipt.result


class CityLedger:
    """The city directory's ledger for one-shot tools: a read-only chain per read, the embedded
    node opened (and closed) per write."""

    def __init__(self, city: CityDir, passphrase: str | None = None) -> None:
        self.city = city
        self._passphrase = passphrase

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        chain = Chain(self.city.require().data_path)
        try:
            return chain.query(contract, method, args)
        finally:
            chain.close()

    def head_time_ms(self) -> int:
        chain = Chain(self.city.require().data_path)
        try:
            return chain.head.header.time_ms
        finally:
            chain.close()

    def key(self, name: str) -> PrivateKey:
        return load_key(self.city.require().keystore, name, self._passphrase)

    def send(self, signer: str, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.send_as(self.key(signer), contract, method, args)

    def send_as(self, key: PrivateKey, contract: str, method: str, args: dict[str, Any]) -> Any:
        layout = self.city.require()
        with EmbeddedNode(layout.data_path, self.key(NODE_KEY)) as node:
            tx = Signer(key.public.did, key, node.chain).sign(contract, method, args)
            try:
                receipt = node.submit(tx, timeout=RECEIPT_TIMEOUT_S)
            except TimeoutError as e:
                raise NodeError(
                    f"no receipt for {tx.tx_id_hex} within {RECEIPT_TIMEOUT_S:g} s"
                ) from e
        return _result(receipt, contract, method)


class NodeLedger:
    """A running node's ledger, shared with its API and portal.

    Writes by one signer are serialised here (the next nonce is read from the chain, so two
    concurrent writes by one key would collide); different signers mostly proceed in parallel
    (locks are striped by signer).
    """

    def __init__(self, city: CityDir, node: Node, passphrase: str | None = None) -> None:
        self.city = city
        self.node = node
        self._passphrase = passphrase
        # Striped: one lock per signer would grow with every voter key ever seen.
        self._locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.node.chain.query(contract, method, args)

    def head_time_ms(self) -> int:
        return self.node.chain.head.header.time_ms

    def key(self, name: str) -> PrivateKey:
        return load_key(self.city.require().keystore, name, self._passphrase)

    def send(self, signer: str, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.send_as(self.key(signer), contract, method, args)

    def send_as(self, key: PrivateKey, contract: str, method: str, args: dict[str, Any]) -> Any:
        signer = key.public.did
        with self._locks[hash(signer) % _LOCK_STRIPES]:
            tx = Signer(signer, key, self.node.chain).sign(contract, method, args)
            try:
                receipt = self.node.submit(tx, timeout=RECEIPT_TIMEOUT_S)
            except TimeoutError as e:
                raise NodeError(
                    f"no receipt for {tx.tx_id_hex} within {RECEIPT_TIMEOUT_S:g} s"
                ) from e
        return _result(receipt, contract, method)
