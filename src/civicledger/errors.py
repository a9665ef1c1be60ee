"""One exception tree for CivicLedger; every rejection carries a stable reason code.

    CivicError                      base; ``reason`` is a stable machine-readable code
    ├── EncodingError               bytes that are not what they claim (JSON, base58, did:key)
    ├── SignatureError              a signature does not verify
    ├── ProofError                  a Merkle inclusion/consistency proof or tree head is wrong
    ├── KeystoreError               a key file is missing, unreadable or the passphrase is wrong
    ├── TxRejected                  a transaction refused before it could change anything;
    │                               ``reason`` is one of ``RejectReason``
    ├── ContractError               a contract refused a transaction while executing it;
    │                               the tx is recorded with a failed receipt, state is unchanged
    ├── LedgerError                 the store or chain is inconsistent (a bug or tampering)
    │   └── ChainVerificationError  ``civic verify`` found a mismatch
    ├── GenesisError                a genesis file is invalid
    └── NodeError                   the node is closed, locked by another process, or timed out

Layers above add their own subclasses next to their code: ``api.problems.ApiError`` (an HTTP
error with its status, e.g. a body over the limit), ``web.i18n.CatalogError`` (a portal
section's messages are inconsistent), and in ``services.identity``: ``vc.CredentialError`` (a
credential, presentation or proof refused), ``resolver.DidResolutionError``,
``issuers.IssuerNotAuthorized``, ``status_list.StatusError``, ``wallet.WalletError`` and
``verifier.VerificationError`` / ``verifier.ChallengeError``; in ``services.voting``:
``group.GroupError`` (``bad_group_element``), ``proofs.ProofFormatError`` (``malformed_proof``),
``ballot.BallotError``, ``dkg.DkgError`` and ``dlog.DlogError`` (``result_out_of_range``).

Low-level errors (``sqlite3.Error``, ``nacl.exceptions.BadSignatureError``, ``KeyError``) are
wrapped into these with ``raise ... from``.
"""

from __future__ import annotations

from enum import StrEnum


class CivicError(Exception):
    """Base of every error CivicLedger raises on purpose."""

    reason: str = "civic_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.reason


class EncodingError(CivicError):
    reason = "bad_encoding"


class SignatureError(CivicError):
    reason = "bad_signature"


class ProofError(CivicError):
    reason = "bad_proof"


class KeystoreError(CivicError):
    reason = "keystore"


class RejectReason(StrEnum):
    """Why a transaction was refused; stable codes shown to clients and in metrics."""

    MALFORMED = "malformed"
    OVERSIZE = "oversize"
    BAD_SIGNATURE = "bad_signature"
    WRONG_CHAIN = "wrong_chain"
    NONCE_REPLAYED = "nonce_replayed"
    NONCE_OUT_OF_ORDER = "nonce_out_of_order"
    EXPIRED = "expired"
    UNKNOWN_CONTRACT = "unknown_contract"
    UNKNOWN_METHOD = "unknown_method"
    INVALID_ARGS = "invalid_args"
    UNAUTHORIZED = "unauthorized"
    MEMPOOL_FULL = "mempool_full"


class TxRejected(CivicError):  # noqa: N818  (reads as what happened: "tx rejected")
    """Refused before execution: nothing about the transaction is written."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message, reason=reason.value)
        self.reject_reason = reason


class ContractError(CivicError):
    """Raised by contract code; the transaction gets a failed receipt with this reason."""

    reason = "contract_error"


class LedgerError(CivicError):
    reason = "ledger_error"


class ChainVerificationError(LedgerError):
    reason = "chain_verification"


class GenesisError(CivicError):
    reason = "bad_genesis"


class NodeError(CivicError):
    reason = "node_error"
