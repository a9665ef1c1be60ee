"""A Python client of a CivicLedger node's HTTP API that trusts the node for nothing it can check.

Trust is anchored in the city's published genesis, passed in by the caller: tree heads must be
signed by its producers, receipts are proven by inclusion proofs, every newer tree head by a
consistency proof with the last one verified. Transactions are signed in this process; private
keys are never sent. Contract queries and nonces are the node's word (no state proofs yet).
See docs/client.md.

    genesis = Genesis.load(Path("genesis.json"))
    with CivicClient("https://ledger.example.city", genesis) as client:
        wallet = Wallet(client, key)
        receipt = wallet.send("notary", "anchor", {"digest": digest, "label": "budget"})
"""

from civicledger.client._client import CivicClient
from civicledger.client._finality import Finality, verify_attestations
from civicledger.client._results import BlockPage, ProvenTx, UnprovenResult, VerifiedBlock
from civicledger.client._sse import ServerEvent
from civicledger.client._wallet import Wallet

__all__ = [
    "BlockPage",
    "CivicClient",
    "Finality",
    "ProvenTx",
    "ServerEvent",
    "UnprovenResult",
    "VerifiedBlock",
    "Wallet",
    "verify_attestations",
]
