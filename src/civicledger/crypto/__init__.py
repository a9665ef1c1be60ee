"""Pure cryptography and encoding: keys, signatures, did:key, canonical JSON, hashing, Merkle.

Nothing here does I/O or reads the clock.
"""
