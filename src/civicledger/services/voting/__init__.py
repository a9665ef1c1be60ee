"""Secret-ballot polls: the cryptography (pure) and, beside it, the poll service.

The cryptographic modules take bytes and integers in and give results out; they do no I/O and
read no clock:

- ``group``: the prime-order subgroup of Ed25519 (libsodium through PyNaCl), scalars mod ``L``.
- ``elgamal``: exponential ElGamal ciphertexts, homomorphic addition.
- ``proofs``: Fiat-Shamir range proofs (disjunctive Chaum-Pedersen) and DLEQ proofs, each bound
  to an explicit context.
- ``ballot``: an encrypted ballot with its proofs, its context and its tracking code.
- ``dkg``: the trustees' joint-Feldman key generation, partial decryptions, Lagrange combination.
- ``dlog``: the small discrete logarithm that turns a decrypted tally point into a count.

See ``docs/voting.md`` (section "Cryptography").
"""
