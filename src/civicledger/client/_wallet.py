"""``Wallet``: a private key and its next nonce; it signs locally and sends through a client.

Invariants:

- The private key never leaves the process: only signed envelopes are sent.
- ``_next`` is None (unknown: ask the node before signing) or the nonce the next transaction
  signed here gets. It is taken from ``GET /nonce/{did}`` once, then counted locally, so several
  transactions can be signed back to back; after any refusal or error it is forgotten and asked
  again, because a refused transaction consumes no nonce. A *failed* receipt did consume it.
- The nonce the node reports is not proven. A node that lies about it can only get our
  transactions refused, or hold one back and submit it later while it has not expired; the
  expiry (``expires_in_s``) bounds that window.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from civicledger.errors import CivicError
from civicledger.ledger.tx import DEFAULT_EXPIRY_S, SignedTx, expiry_from_now, sign_tx

if TYPE_CHECKING:
    from civicledger.client._client import CivicClient
    from civicledger.crypto.keys import PrivateKey
    from civicledger.ledger.receipt import Receipt


class Wallet:
    """Signs transactions with one key and submits them through a ``CivicClient``."""

    def __init__(self, client: CivicClient, key: PrivateKey) -> None:
        self.client = client
        self._key = key
        self._next: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Wallet({self.did!r})"

    @property
    def did(self) -> str:
        return self._key.public.did

    def resync(self) -> None:
        """Forget the local nonce; the next transaction asks the node for it."""
        with self._lock:
            self._next = None

    def sign(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        expires_in_s: int = DEFAULT_EXPIRY_S,
    ) -> SignedTx:
        """Sign the next transaction of this key (taking its nonce), without sending it."""
        if expires_in_s < 1:
            raise ValueError("expires_in_s must be at least 1")
        with self._lock:
            nonce = self._next
            if nonce is None:
                nonce = self.client.next_nonce(self.did)
            tx = sign_tx(
                self._key,
                chain_id=self.client.chain_id,
                nonce=nonce,
                contract=contract,
                method=method,
                args=args,
                expires_at=expiry_from_now(expires_in_s),
            )
            self._next = nonce + 1
            return tx

    def send(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        expires_in_s: int = DEFAULT_EXPIRY_S,
        verify: bool = True,
    ) -> Receipt:
        """Sign, submit and return the receipt (proven with ``verify``, the default).

        A refusal raises TxRejected with the node's reason; the nonce is then re-read before
        the next transaction. A failed receipt is returned: check ``receipt.ok``.
        """
        tx = self.sign(contract, method, args, expires_in_s=expires_in_s)
        try:
            return self.client.submit(tx, verify=verify)
        except CivicError:
            self.resync()
            raise
