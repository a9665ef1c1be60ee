"""``Wallet.currency_key``: one stable account key per currency, unlinkable to the holder's
did:key, the wallet's poll keys and its accounts in other currencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from civicledger.errors import KeystoreError
from civicledger.services.identity.wallet import Wallet, WalletError


def test_currency_key_is_stable_and_separate(tmp_path: Path) -> None:
    wallet = Wallet.create(tmp_path / "w")
    key = wallet.currency_key("help-coin")
    assert key.public.did.startswith("did:key:")
    assert Wallet.open(tmp_path / "w").currency_key("help-coin").seed == key.seed
    others = {
        wallet.holder,
        wallet.currency_key("eco-points").public.did,
        wallet.poll_key("help-coin").public.did,
        Wallet.create(tmp_path / "other").currency_key("help-coin").public.did,
    }
    assert key.public.did not in others
    assert len(others) == 4


def test_currency_key_needs_the_passphrase_and_an_id(tmp_path: Path) -> None:
    wallet = Wallet.create(tmp_path / "w", passphrase="correct horse")
    key = wallet.currency_key("help-coin", passphrase="correct horse")
    assert wallet.currency_key("help-coin", passphrase="correct horse").seed == key.seed
    with pytest.raises(KeystoreError):
        wallet.currency_key("help-coin")
    with pytest.raises(WalletError):
        wallet.currency_key("")
