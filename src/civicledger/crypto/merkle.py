"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and compact ranges.

The hashing is that of RFC 6962 and RFC 9162 §2.1.1, with SHA-256:

    MTH({})      = SHA-256()
    MTH({d0})    = SHA-256(0x00 || d0)
    MTH(D[0:n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   k = largest power of two < n

Everything here is pure: bytes and integers in, bytes out, no I/O. Proof *generation* takes a
``SubtreeHash`` callable so that a storage-backed log can answer it from stored nodes in
O(log n); the pure reference ``root_from_leaf_hashes`` is for tests and small inputs.

Verification follows the iterative algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 and fails
closed: it returns nothing on success and raises ``ProofError`` with a specific message on
any mismatch, including hashes of the wrong length and proofs of the wrong length.

Invariants of ``CompactRange``: it holds exactly one hash per set bit of ``size``, namely the
roots of the maximal complete aligned subtrees covering leaves ``[0, size)``, largest (leftmost)
first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from civicledger.crypto.encoding import sha256
from civicledger.errors import EncodingError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "StoredNode",
    "SubtreeHash",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT = sha256(b"")
"""MTH of the empty tree: SHA-256 of the empty string."""

SubtreeHash = Callable[[int, int], bytes]
"""``subtree(start, end)`` returns the MTH of leaves ``[start, end)``, with ``start < end``."""

StoredNode = tuple[int, int, bytes]
"""``(level, index, hash)`` of a complete aligned subtree: leaves ``[index << level,
(index + 1) << level)``; level 0 holds the leaf hashes."""


def leaf_hash(data: bytes) -> bytes:
    """Hash of a leaf: SHA-256(0x00 || data)."""
    return sha256(_LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: SHA-256(0x01 || left || right)."""
    return sha256(_NODE_PREFIX + left + right)


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {size}")


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{what} must be a non-negative integer, got {value!r}")


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, straight from the recursive definition (a reference)."""
    for i, h in enumerate(hashes):
        _check_hash(h, f"leaf hash {i}")
    if not hashes:
        return EMPTY_ROOT
    return _mth(hashes, 0, len(hashes))


def _mth(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return hashes[start]
    mid = start + _split(end - start)
    return node_hash(_mth(hashes, start, mid), _mth(hashes, mid, end))


# Proof generation.


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose MTHs form PATH(index, D[0:size]), in proof order.

    RFC 9162 §2.1.3.1. The ranges depend only on ``(index, size)``, so a store can fetch them
    in one go; every range but those ending at ``size`` is a complete aligned subtree.
    """
    _check_count(index, "leaf index")
    _check_count(size, "tree size")
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PROOF(old_size, D[0:new_size]), in proof order.

    RFC 9162 §2.1.4.1 (SUBPROOF). Empty when ``old_size`` is 0 or equals ``new_size``.
    """
    _check_count(old_size, "old size")
    _check_count(new_size, "new size")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, new_size, old_size, True
    while m != hi - lo:
        mid = lo + _split(hi - lo)
        if lo + m <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            m -= mid - lo
            lo = mid
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """The audit path for leaf ``index`` in the tree of ``size`` leaves (RFC 9162 §2.1.3.1)."""
    return [subtree(start, end) for start, end in inclusion_ranges(index, size)]


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """The consistency proof from ``old_size`` to ``new_size`` (RFC 9162 §2.1.4.1)."""
    return [subtree(start, end) for start, end in consistency_ranges(old_size, new_size)]


# Proof verification.


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` proves ``leaf_hash`` at ``index`` to be under (RFC 9162 §2.1.3.2).

    Raises ``ProofError`` if the arguments or the path are malformed; the caller must still
    compare the result with a trusted root, which ``verify_inclusion`` does.
    """
    _check_count(index, "leaf index")
    _check_count(size, "tree size")
    _check_hash(leaf_hash, "leaf hash")
    for i, p in enumerate(path):
        _check_hash(p, f"inclusion path element {i}")
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    expected = len(inclusion_ranges(index, size))
    if len(path) != expected:
        raise ProofError(
            f"inclusion path has {len(path)} hashes, expected {expected} for leaf {index} of {size}"
        )
    fn, sn = index, size - 1
    r = leaf_hash
    for p in path:
        if sn == 0:
            raise ProofError("inclusion path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion path is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """Raise ``ProofError`` unless ``path`` proves ``leaf_hash`` is leaf ``index`` of ``root``."""
    _check_hash(root, "root")
    computed = root_from_inclusion(leaf_hash, index, size, path)
    if computed != root:
        raise ProofError(f"inclusion path for leaf {index} of {size} does not lead to the root")


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Raise ``ProofError`` unless ``proof`` shows tree ``old_root`` is a prefix of ``new_root``.

    RFC 9162 §2.1.4.2. Equal sizes need an empty proof and equal roots. An old size of 0 needs
    an empty proof and ``old_root == EMPTY_ROOT`` (stricter than some verifiers, which ignore the
    old root there: an empty tree has exactly one root).
    """
    _check_count(old_size, "old size")
    _check_count(new_size, "new size")
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for i, p in enumerate(proof):
        _check_hash(p, f"consistency proof element {i}")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("root of the empty tree is not SHA-256 of the empty string")
        return
    expected = len(consistency_ranges(old_size, new_size))
    if len(proof) != expected:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes, expected {expected} "
            f"from {old_size} to {new_size}"
        )
    fr, sr = _roots_from_consistency(old_size, new_size, old_root, proof)
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the old root (size {old_size})")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root (size {new_size})")


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Steps 2-7 of RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``: the two roots proved."""
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the new tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the new tree is deep")
    return fr, sr


# Compact ranges.


class CompactRange:
    """The frontier of a tree: the roots of its maximal complete subtrees, leftmost first.

    Appending a leaf needs no storage reads, and ``append`` reports every node it completes
    so that a store can persist the hash of every complete aligned subtree.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        """Build the range of a tree of ``size`` leaves from its peak hashes, leftmost first.

        The peaks are the nodes ``CompactRange.peaks(size)``, e.g. as read from storage.
        """
        hash_list = list(hashes)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise EncodingError(f"tree size must be a non-negative integer, got {size!r}")
        if len(hash_list) != size.bit_count():
            raise EncodingError(
                f"a tree of size {size} has {size.bit_count()} peaks, got {len(hash_list)}"
            )
        for i, h in enumerate(hash_list):
            if not isinstance(h, bytes) or len(h) != HASH_SIZE:
                raise EncodingError(f"peak {i} is not a {HASH_SIZE}-byte hash")
        self._size = size
        self._hashes = hash_list

    @staticmethod
    def peaks(size: int) -> list[tuple[int, int]]:
        """``(level, index)`` of the maximal complete subtrees of a tree of ``size`` leaves."""
        out: list[tuple[int, int]] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, start >> level))
                start += 1 << level
        return out

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The peak hashes, leftmost (largest subtree) first."""
        return tuple(self._hashes)

    def copy(self) -> CompactRange:
        clone = CompactRange.__new__(CompactRange)
        clone._size = self._size
        clone._hashes = list(self._hashes)
        return clone

    def append(self, leaf: bytes) -> list[StoredNode]:
        """Add one leaf hash; return the nodes it completes, the leaf itself first."""
        if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
            raise EncodingError(f"leaf hash must be {HASH_SIZE} bytes")
        out: list[StoredNode] = []
        self._push(leaf, out)
        return out

    def extend(self, leaves: Iterable[bytes]) -> list[StoredNode]:
        """Add many leaf hashes; return every node they complete, in completion order."""
        out: list[StoredNode] = []
        for leaf in leaves:
            if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
                raise EncodingError(f"leaf hash must be {HASH_SIZE} bytes")
            self._push(leaf, out)
        return out

    def _push(self, leaf: bytes, out: list[StoredNode]) -> None:
        hashes = self._hashes
        index = self._size
        h = leaf
        level = 0
        out.append((0, index, h))
        while index & 1:
            h = node_hash(hashes.pop(), h)
            index >>= 1
            level += 1
            out.append((level, index, h))
        hashes.append(h)
        self._size += 1

    def root(self) -> bytes:
        """MTH of the covered leaves: the peaks folded right to left."""
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # Mutable, so not hashable.

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, peaks={len(self._hashes)})"
