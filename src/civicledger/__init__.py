"""CivicLedger: a permissioned ledger on which a city runs its public services."""

__version__ = "0.1.0"
