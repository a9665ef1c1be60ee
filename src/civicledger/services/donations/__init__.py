"""Charity campaigns, donations and disbursements on the ledger, traceable down to help coin.

One contract, ``donations`` (``contract.Donations``), see ``docs/donations.md``; ``trace.py``
turns query results into a donation's or a campaign's flow (pure functions, no I/O).
Amounts are integer KRW; time is block time; donors and beneficiaries appear only as
commitments and pseudonyms.
"""

from civicledger.services.donations.contract import CONTRACT_NAME, Donations

__all__ = ["CONTRACT_NAME", "Donations"]
