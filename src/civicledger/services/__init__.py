"""Civic services: one package per service (contracts, domain types, off-ledger helpers).

Services never import the API, the portal or the CLI.
"""
