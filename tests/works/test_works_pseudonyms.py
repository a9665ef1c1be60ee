"""The keyed hashes that stand for workers and accounts: stable, keyed, separated by purpose
and by contract, and refused with a short secret."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from civicledger.errors import CivicError
from civicledger.services.works.pseudonyms import (
    account_reference,
    bank_reference,
    worker_pseudonym,
)

SECRET = b"0123456789abcdef0123456789abcdef"


def test_a_pseudonym_is_an_hmac_under_its_domain() -> None:
    expected = hmac.new(
        SECRET, b"CivicLedger/works/worker/v1\0road-1\0P-0001", hashlib.sha256
    ).hexdigest()
    assert worker_pseudonym(SECRET, "road-1", "P-0001") == expected


def test_contracts_secrets_and_purposes_separate() -> None:
    one = worker_pseudonym(SECRET, "road-1", "P-0001")
    assert one == worker_pseudonym(SECRET, "road-1", "P-0001")
    assert one != worker_pseudonym(SECRET, "road-2", "P-0001")
    assert one != worker_pseudonym(SECRET[::-1], "road-1", "P-0001")
    assert account_reference(SECRET, "088", "road-1") != bank_reference(SECRET, "088\0road-1")
    # The plain SHA-256 of the account number is not the reference (it could be brute-forced).
    assert (
        account_reference(SECRET, "088", "110-234-567890")
        != hashlib.sha256(b"110234567890").hexdigest()
    )


def test_account_numbers_with_or_without_hyphens_are_one_account() -> None:
    assert account_reference(SECRET, "088", "110-234-567890") == account_reference(
        SECRET, "088", "110234567890"
    )


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(CivicError, match="16 bytes") as raised:
        worker_pseudonym(b"short", "road-1", "P-0001")
    assert raised.value.reason == "weak_secret"
