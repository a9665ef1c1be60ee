"""City-issued money: local currency, purpose-restricted vouchers and activity reward points.

One contract, ``currency`` (``contract.Currency``), holds every token a city issues; see
``docs/currency.md``. Amounts are integer KRW (1 unit = 1 won), never floats, each in
``1..10**12``; time is block time.

Invariants, for every currency after every transaction (property-tested in
``tests/currency/test_currency_properties.py``):

- ``supply == minted - burned - expired``;
- ``sum of all account balances == supply`` (a holder's balance is the sum of its lots'
  remainders, expired or not until ``expire`` or a spend sweeps them);
- no balance and no lot remainder is negative;
- ``reserve >= supply + pending_settlement``, hence ``reserve >= supply``: a mint needs reserve,
  a redemption moves value from supply to pending settlement and ``settle`` takes it out of the
  reserve;
- caps and spending rules hold: a holder's balance never exceeds ``balance_cap`` through a credit,
  its KRW purchases in a UTC month never exceed ``monthly_purchase_cap``, holders pay only allowed
  and active merchants (or other holders when ``p2p``), a lot is never spent at or after its
  expiry, and no account holds more than ``MAX_LOTS`` lots.
"""

from civicledger.services.currency.contract import CONTRACT_NAME, Currency

__all__ = ["CONTRACT_NAME", "Currency"]
