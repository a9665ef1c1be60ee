"""Keyed pseudonyms for the people a works contract pays, computed off the ledger.

A worker appears on the ledger only as ``worker_pseudonym`` (HMAC-SHA256 under the payroll's
secret of the worker's id) and the worker's own bank account only as ``account_reference``
(HMAC-SHA256 under the custodian bank's secret of bank code and account number). Keyed, not
plain, hashes: a resident id or an account number has so few possibilities that a plain hash
could be reversed by trying them all. The worker is told both values (on the pay slip, by text
message) and checks their wages with either.
"""

from __future__ import annotations

import hashlib
import hmac

from civicledger.errors import CivicError

__all__ = ["account_reference", "bank_reference", "worker_pseudonym"]

_MIN_SECRET = 16


def _mac(secret: bytes, domain: str, *parts: str) -> str:
    if len(secret) < _MIN_SECRET:
        raise CivicError(
            f"a pseudonym secret has at least {_MIN_SECRET} bytes", reason="weak_secret"
        )
    message = "\0".join((f"CivicLedger/works/{domain}/v1", *parts)).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def worker_pseudonym(secret: bytes, contract_id: str, worker_id: str) -> str:
    """The worker's pseudonym in one works contract (unlinkable across contracts)."""
    return _mac(secret, "worker", contract_id, worker_id)


def account_reference(secret: bytes, bank_code: str, account_number: str) -> str:
    """The reference of a bank account, as the custodian bank computes it."""
    return _mac(secret, "account", bank_code, account_number.replace("-", ""))


def bank_reference(secret: bytes, transfer_id: str) -> str:
    """The single-use reference of one bank transfer (a deposit or a payout)."""
    return _mac(secret, "transfer", transfer_id)
