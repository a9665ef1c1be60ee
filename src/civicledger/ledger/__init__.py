"""Transactions, blocks, receipts, the SQLite store, state hashing and the transparency log."""
