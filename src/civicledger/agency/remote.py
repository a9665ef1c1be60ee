"""Reaching a city's ledger over HTTP: a voter's or a trustee's tools on their own machine.

``ClientLedger`` gives ``agency.trustee.Trustee`` and the voting commands the same two calls as
the local ledgers, through ``civicledger.client``: transactions are signed here with the
caller's key and every receipt is proven against the genesis producers before it is believed.
Queries are not proven (the ledger has no state root yet), as everywhere in the client.
"""

from __future__ import annotations

import threading
from typing import Any

from civicledger.agency.ledger import TxFailed
from civicledger.client import CivicClient, Wallet
from civicledger.crypto.keys import PrivateKey

__all__ = ["ClientLedger"]


class ClientLedger:
    """``LedgerAccess`` over a ``CivicClient`` (see the module docstring)."""

    def __init__(self, client: CivicClient) -> None:
        self.client = client
        self._wallets: dict[str, Wallet] = {}
        self._lock = threading.Lock()

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.client.query(contract, method, args).result

    def send_as(self, key: PrivateKey, contract: str, method: str, args: dict[str, Any]) -> Any:
        with self._lock:
            wallet = self._wallets.setdefault(key.public.did, Wallet(self.client, key))
            receipt = wallet.send(contract, method, args)
        if not receipt.ok:
            raise TxFailed(
                receipt.message or f"{contract}.{method} failed", reason=receipt.reason or "failed"
            )
        return receipt.result
