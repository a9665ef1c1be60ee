"""The client's view of the log: the newest tree head it has verified, and how that may move.

Invariants (python-tuf's trusted metadata set in spirit):

- Every tree head held or remembered here was signed by a producer named in the caller's
  genesis, for the genesis chain id. Nothing the node says about who may sign is consulted.
- The held head only moves forward, and only to a head that an RFC 9162 consistency proof shows
  to extend it. Once a client has seen a log, no node can show it a shorter or rewritten one:
  a newest head below the held one is a rollback, two different heads for one height a fork.
- A head older than the held one is accepted only once proven to be a prefix of the held head;
  history can be read, never rewritten. Proven heads are remembered (a bounded number), so the
  same head is not proven twice and a second, different head for a remembered height is a fork.
- The very first head is trusted on its signature alone (there is nothing to compare it with);
  persisting the held head between runs (``_state.py``) is what closes that window.

Pure: no I/O and no clock. The caller asks ``required_proof`` which consistency bundle to fetch
and hands it to ``accept``.
"""

from __future__ import annotations

from civicledger.errors import CivicError, ProofError
from civicledger.ledger.block import SignedTreeHead, TreeHead
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.proofs import ConsistencyBundle, verify_consistency_bundle

MAX_REMEMBERED_HEADS = 4096
"""Older proven heads kept for quick re-checks; the oldest entry is forgotten first."""


class TrustedLog:
    """The newest verified tree head, plus older heads proven to be its prefixes."""

    def __init__(self, genesis: Genesis, head: SignedTreeHead | None = None) -> None:
        self.chain_id = genesis.chain_id
        self.producers = frozenset(genesis.producers)
        self._head: SignedTreeHead | None = None
        self._known: dict[int, TreeHead] = {}
        if head is not None:
            self.check_signed(head)
            self._head = head
            self._remember(head.tree_head)

    @property
    def head(self) -> SignedTreeHead | None:
        """The newest tree head verified so far (None before the first)."""
        return self._head

    def check_signed(self, signed: SignedTreeHead) -> TreeHead:
        """Raise ProofError unless a genesis producer signed this head for the genesis chain."""
        head = signed.tree_head
        if head.chain_id != self.chain_id:
            raise ProofError(f"tree head is for chain {head.chain_id!r}, not {self.chain_id!r}")
        try:
            signed.verify(self.producers)
        except CivicError as e:
            raise ProofError(str(e)) from e
        return head

    def required_proof(
        self, signed: SignedTreeHead, *, latest: bool
    ) -> tuple[SignedTreeHead, SignedTreeHead] | None:
        """The (old, new) pair a consistency proof must cover before ``signed`` is accepted.

        ``latest`` says the node gave ``signed`` as its newest head, so anything below the held
        head is a rollback; otherwise ``signed`` was asked for by height and may be older.
        None means nothing needs proving (first head, or already proven). Raises ProofError for
        a bad signature, a rollback or a fork.
        """
        head = self.check_signed(signed)
        if self._head is None:
            return None
        held = self._head.tree_head
        known = self._known.get(head.height)
        # Cluster nodes each sign the same head: only the signer may differ between them.
        if known is not None and known.model_copy(update={"signer": head.signer}) != head:
            raise ProofError(
                f"two different tree heads for height {head.height}: the node shows a fork"
            )
        if latest and (head.height < held.height or head.tree_size < held.tree_size):
            raise ProofError(
                f"the node's newest tree head (height {head.height}, size {head.tree_size}) is "
                f"older than one already verified (height {held.height}, size "
                f"{held.tree_size}): a rollback"
            )
        if known is not None:
            return None
        if head.height > held.height:
            if head.tree_size < held.tree_size:
                raise ProofError(
                    f"tree head at height {head.height} has a smaller log ({head.tree_size}) "
                    f"than height {held.height} ({held.tree_size})"
                )
            return self._head, signed
        if head.tree_size > held.tree_size:
            raise ProofError(
                f"tree head at height {head.height} has a larger log ({head.tree_size}) "
                f"than the later height {held.height} ({held.tree_size})"
            )
        return signed, self._head

    def accept(
        self, signed: SignedTreeHead, proof: ConsistencyBundle | None, *, latest: bool
    ) -> bool:
        """Accept ``signed`` given the proof ``required_proof`` asked for.

        Returns True if the held head changed (so a caller persisting it should save it).
        """
        need = self.required_proof(signed, latest=latest)
        if self._head is None:
            self._head = signed
            self._remember(signed.tree_head)
            return True
        if need is None:
            return False
        old, new = need
        if proof is None:
            raise ProofError(
                f"a consistency proof from height {old.tree_head.height} "
                f"to {new.tree_head.height} is needed"
            )
        if proof.old_head.tree_head != old.tree_head or proof.new_head.tree_head != new.tree_head:
            raise ProofError(
                "the consistency proof is not between the tree heads asked for "
                f"(heights {old.tree_head.height} and {new.tree_head.height})"
            )
        verify_consistency_bundle(proof, self.producers)
        self._remember(old.tree_head)
        self._remember(new.tree_head)
        if new is signed:
            self._head = signed
            return True
        return False

    def check_known(self, head: TreeHead) -> None:
        """Raise ProofError if ``head`` contradicts a proven head of the same height.

        For heads that come without a signature of their own, such as the one a signed block
        header commits to: it is checked only where this view already knows the height.
        """
        known = self._known.get(head.height)
        # Cluster nodes each sign the same head: only the signer may differ between them.
        if known is not None and known.model_copy(update={"signer": head.signer}) != head:
            raise ProofError(
                f"block {head.height} commits to a log other than the verified tree head's"
            )

    def _remember(self, head: TreeHead) -> None:
        self._known[head.height] = head
        while len(self._known) > MAX_REMEMBERED_HEADS:
            oldest = next(iter(self._known))
            if self._head is not None and oldest == self._head.tree_head.height:
                self._known[oldest] = self._known.pop(oldest)
                continue
            del self._known[oldest]
