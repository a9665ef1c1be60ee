"""Used-car history and trade: a vehicle's signed life events and its escrowed sale.

One contract, ``vehicles`` (``contract.Vehicles``), keyed by VIN; ``report`` builds the buyer's
history report off the ledger and the digest its QR code carries. See ``docs/vehicles.md``.

Invariants (tested in ``tests/vehicles/``):

- a vehicle's events are numbered 1, 2, … and never rewritten; the owner count is the number of
  ownership periods (1 + transfers); owners are did:keys, never names;
- an odometer reading below the previous one (except across a recorded cluster replacement) is
  recorded, flagged ``rollback`` and sets a permanent discrepancy mark on the vehicle;
- a car with an open lien or seizure cannot be offered, accepted or transferred;
- escrow: ``deposited == held + released + refunded``, each sale pays out or refunds once.
"""

from civicledger.services.vehicles.contract import CONTRACT_NAME, Vehicles

__all__ = ["CONTRACT_NAME", "Vehicles"]
