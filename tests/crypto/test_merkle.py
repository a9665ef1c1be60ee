"""RFC 9162 Merkle hashing, proofs and compact ranges against the published test vectors.

Vectors (hex) are copied from transparency-dev/merkle, the Go implementation behind Trillian:
- ``testonly/constants.go``: the 8 leaf inputs, the hash of every complete subtree
  (``NodeHashes``), the roots for sizes 0..8 (``RootHashes``) and the compact ranges
  (``CompactTrees``);
- ``proof/verify_test.go``: known inclusion proofs and consistency proofs, and the corruptions
  (``corruptInclusionProof``, ``corruptConsistencyProof``) every verifier must reject;
- ``proof/proof_test.go``: which nodes make up inclusion and consistency proofs in trees of up
  to 95 leaves (``TestInclusion``, ``TestConsistency``).
The same roots, paths and proofs are in google/certificate-transparency
``cpp/merkletree/merkle_tree_test.cc`` (``kSHA256Roots``, ``kSHA256Paths``, ``kSHA256Proofs``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicledger.crypto.encoding import sha256
from civicledger.crypto.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from civicledger.errors import EncodingError, ProofError

h = bytes.fromhex

# transparency-dev/merkle testonly/constants.go: LeafInputs().
LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# transparency-dev/merkle testonly/constants.go: NodeHashes(), [level][index].
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# transparency-dev/merkle testonly/constants.go: RootHashes(), indexed by tree size 0..8.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# transparency-dev/merkle testonly/constants.go: CompactTrees(), as (level, index) into NODE_HASHES.
COMPACT_TREES: list[list[tuple[int, int]]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# transparency-dev/merkle proof/verify_test.go: inclusionProofs. The Go vectors number leaves
# from 1 (as RFC 6962's C++ tests did); here they are converted to 0-based indices. The Go
# entry {0, 0, nil} (leaf 0 of 1-based numbering) is invalid and is tested as such below.
INCLUSION_PROOFS: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        3,
        [
            h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        ],
    ),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# transparency-dev/merkle proof/verify_test.go: consistencyProofs (size1, size2, proof).
CONSISTENCY_PROOFS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# transparency-dev/merkle proof/verify_test.go: sha256SomeHash.
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")

LEAF_HASHES = [leaf_hash(d) for d in LEAF_INPUTS]


def _reference_subtree(hashes: Sequence[bytes]) -> Callable[[int, int], bytes]:
    """A ``SubtreeHash`` answered by the recursive reference MTH (memoised per leaf list)."""

    @functools.cache
    def subtree(start: int, end: int) -> bytes:
        assert 0 <= start < end <= len(hashes)
        return root_from_leaf_hashes(hashes[start:end])

    return subtree


VECTOR_SUBTREE = _reference_subtree(LEAF_HASHES)


# Published vectors: hashing and roots.


def test_empty_root_is_sha256_of_nothing() -> None:
    assert ROOTS[0] == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == ROOTS[0]


def test_leaf_hashes_match_vectors() -> None:
    assert NODE_HASHES[0] == LEAF_HASHES


def test_every_complete_subtree_matches_vectors() -> None:
    for level, row in enumerate(NODE_HASHES):
        for index, expected in enumerate(row):
            start, end = index << level, (index + 1) << level
            assert root_from_leaf_hashes(LEAF_HASHES[start:end]) == expected, (level, index)
            if level > 0:
                below = NODE_HASHES[level - 1]
                assert node_hash(below[2 * index], below[2 * index + 1]) == expected


@pytest.mark.parametrize("size", range(9))
def test_roots_match_vectors(size: int) -> None:
    assert root_from_leaf_hashes(LEAF_HASHES[:size]) == ROOTS[size]


def test_compact_range_matches_vectors() -> None:
    cr = CompactRange()
    completed: list[tuple[int, int, bytes]] = []
    for size in range(9):
        assert cr.size == size
        assert CompactRange.peaks(size) == COMPACT_TREES[size]
        assert cr.hashes == tuple(NODE_HASHES[lv][ix] for lv, ix in COMPACT_TREES[size])
        assert cr.root() == ROOTS[size]
        rebuilt = CompactRange(size, [NODE_HASHES[lv][ix] for lv, ix in COMPACT_TREES[size]])
        assert rebuilt == cr
        assert rebuilt.root() == ROOTS[size]
        if size < 8:
            new = cr.append(LEAF_HASHES[size])
            assert new[0] == (0, size, LEAF_HASHES[size])
            completed.extend(new)
    # Appending all eight leaves reports every complete subtree exactly once.
    expected = {(lv, ix, hh) for lv, row in enumerate(NODE_HASHES) for ix, hh in enumerate(row)}
    assert len(completed) == len(expected)
    assert set(completed) == expected


def test_compact_range_extend_equals_appends() -> None:
    one_by_one = CompactRange()
    nodes = [n for lh in LEAF_HASHES for n in one_by_one.append(lh)]
    batch = CompactRange()
    assert batch.extend(LEAF_HASHES) == nodes
    assert batch == one_by_one


# Published vectors: inclusion proofs.


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_PROOFS)
def test_inclusion_proof_vectors(index: int, size: int, path: list[bytes]) -> None:
    assert inclusion_proof(index, size, VECTOR_SUBTREE) == path
    assert root_from_inclusion(LEAF_HASHES[index], index, size, path) == ROOTS[size]
    verify_inclusion(LEAF_HASHES[index], index, size, path, ROOTS[size])


def _corrupt_inclusion(
    index: int, size: int, path: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """Port of corruptInclusionProof from transparency-dev/merkle proof/verify_test.go."""
    probes = [
        ("leafIndex - 1", index - 1, size, path, root, leaf),
        ("leafIndex + 1", index + 1, size, path, root, leaf),
        ("leafIndex ^ 2", index ^ 2, size, path, root, leaf),
        ("treeSize * 2", index, size * 2, path, root, leaf),
        ("treeSize / 2", index, size // 2, path, root, leaf),
        ("wrong leaf", index, size, path, root, b"WrongLeaf"),
        ("empty root", index, size, path, EMPTY_ROOT, leaf),
        ("random root", index, size, path, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*path, b""], root, leaf),
        ("trailing root", index, size, [*path, root], root, leaf),
        ("preceding garbage", index, size, [b"", *path], root, leaf),
        ("preceding root", index, size, [root, *path], root, leaf),
    ]
    for i in range(len(path)):
        wrong = list(path)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 3", index, size, wrong, root, leaf))
    if path:
        probes.append(("removed component", index, size, path[:-1], root, leaf))
    if len(path) > 1:
        probes.append(
            ("inserted component", index, size, [path[0], SOME_HASH, *path[1:]], root, leaf)
        )
    return probes


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_PROOFS)
def test_corrupted_inclusion_vectors_are_rejected(index: int, size: int, path: list[bytes]) -> None:
    probes = _corrupt_inclusion(index, size, path, ROOTS[size], LEAF_HASHES[index])
    accepted = []
    for desc, p_index, p_size, p_path, p_root, p_leaf in probes:
        try:
            verify_inclusion(p_leaf, p_index, p_size, p_path, p_root)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


# transparency-dev/merkle proof/verify_test.go TestVerifyInclusion: (index, size) probes that no
# empty path can satisfy, with an empty root, an empty leaf, or both well-formed.
@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
@pytest.mark.parametrize(
    ("leaf", "root"),
    [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)],
)
def test_inclusion_probes_with_empty_path_are_rejected(
    index: int, size: int, leaf: bytes, root: bytes
) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, [], root)


def test_single_entry_inclusion() -> None:
    # transparency-dev/merkle proof/verify_test.go TestVerifyInclusionSingleEntry.
    lh = leaf_hash(b"data")
    verify_inclusion(lh, 0, 1, [], lh)
    for leaf, root in [(lh, b""), (b"", lh), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, 0, 1, [], root)


# Published vectors: which nodes a proof is made of.


def _node_ranges(
    ids: list[tuple[int, int]], rehash: tuple[int, int] | None = None
) -> list[tuple[int, int]]:
    """Leaf ranges of transparency-dev proof ``Nodes``: ids[begin:end] are hashed into one."""
    ranges = [(ix << lv, (ix + 1) << lv) for lv, ix in ids]
    if rehash is None:
        return ranges
    begin, end = rehash
    merged = ranges[begin:end]
    lo, hi = min(s for s, _ in merged), max(e for _, e in merged)
    return [*ranges[:begin], (lo, hi), *ranges[end:]]


# transparency-dev/merkle proof/proof_test.go TestInclusion: (size, index, ids, rehash span).
INCLUSION_NODES: list[tuple[int, int, list[tuple[int, int]], tuple[int, int] | None]] = [
    (1, 0, [], None),
    (2, 0, [(0, 1)], None),
    (2, 1, [(0, 0)], None),
    (3, 1, [(0, 0), (0, 2)], None),
    (7, 0, [(0, 1), (1, 1), (0, 6), (1, 2)], (2, 4)),
    (7, 1, [(0, 0), (1, 1), (0, 6), (1, 2)], (2, 4)),
    (7, 2, [(0, 3), (1, 0), (0, 6), (1, 2)], (2, 4)),
    (7, 3, [(0, 2), (1, 0), (0, 6), (1, 2)], (2, 4)),
    (7, 4, [(0, 5), (0, 6), (2, 0)], None),
    (7, 5, [(0, 4), (0, 6), (2, 0)], None),
    (7, 6, [(1, 2), (2, 0)], None),
    (4, 2, [(0, 3), (1, 0)], None),
    (5, 3, [(0, 2), (1, 0), (0, 4)], None),
    (6, 3, [(0, 2), (1, 0), (1, 2)], None),
    (6, 4, [(0, 5), (2, 0)], None),
    (15, 10, [(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)], (2, 4)),
    (31, 24, [(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)], (2, 4)),
    (
        95,
        81,
        [(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)],
        (3, 6),
    ),
]

# transparency-dev/merkle proof/proof_test.go TestConsistency: (size1, size2, ids, rehash span).
CONSISTENCY_NODES: list[tuple[int, int, list[tuple[int, int]], tuple[int, int] | None]] = [
    (1, 2, [(0, 1)], None),
    (1, 4, [(0, 1), (1, 1)], None),
    (1, 6, [(0, 1), (1, 1), (1, 2)], None),
    (2, 3, [(0, 2)], None),
    (2, 8, [(1, 1), (2, 1)], None),
    (3, 7, [(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)], (3, 5)),
    (4, 7, [(0, 6), (1, 2)], (0, 2)),
    (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)], None),
    (6, 7, [(1, 2), (0, 6), (2, 0)], None),
    (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)], None),
    (1, 1, [], None),
    (2, 2, [], None),
    (3, 3, [], None),
    (4, 4, [], None),
    (5, 5, [], None),
    (7, 7, [], None),
    (8, 8, [], None),
    (2, 4, [(1, 1)], None),
    (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)], None),
    (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)], None),
    (4, 6, [(1, 2)], None),
    (1, 7, [(0, 1), (1, 1), (0, 6), (1, 2)], (2, 4)),
    (10, 15, [(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)], (2, 4)),
    (24, 31, [(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)], (1, 4)),
    (
        81,
        95,
        [(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)],
        (4, 7),
    ),
]


@pytest.mark.parametrize(("size", "index", "ids", "rehash"), INCLUSION_NODES)
def test_inclusion_nodes_match_vectors(
    size: int, index: int, ids: list[tuple[int, int]], rehash: tuple[int, int] | None
) -> None:
    assert inclusion_ranges(index, size) == _node_ranges(ids, rehash)


@pytest.mark.parametrize(("size1", "size2", "ids", "rehash"), CONSISTENCY_NODES)
def test_consistency_nodes_match_vectors(
    size1: int, size2: int, ids: list[tuple[int, int]], rehash: tuple[int, int] | None
) -> None:
    assert consistency_ranges(size1, size2) == _node_ranges(ids, rehash)


# transparency-dev/merkle proof/proof_test.go: the (size, index) and (size1, size2) errors.
@pytest.mark.parametrize(("size", "index"), [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8)])
def test_inclusion_generation_rejects_out_of_range(size: int, index: int) -> None:
    with pytest.raises(ProofError):
        inclusion_proof(index, size, VECTOR_SUBTREE)


@pytest.mark.parametrize(("size1", "size2"), [(5, 0), (9, 8), (-1, 3), (2, -1)])
def test_consistency_generation_rejects_out_of_range(size1: int, size2: int) -> None:
    with pytest.raises(ProofError):
        consistency_proof(size1, size2, VECTOR_SUBTREE)


# Published vectors: consistency proofs.


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_PROOFS)
def test_consistency_proof_vectors(size1: int, size2: int, proof: list[bytes]) -> None:
    assert consistency_proof(size1, size2, VECTOR_SUBTREE) == proof
    verify_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)


def _corrupt_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """Port of corruptConsistencyProof from transparency-dev/merkle proof/verify_test.go."""
    probes = [
        ("size1 - 1", size1 - 1, size2, root1, root2, proof),
        ("size1 + 1", size1 + 1, size2, root1, root2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, proof),
        ("size2 * 2", size1, size2 * 2, root1, root2, proof),
        ("size2 / 2", size1, size2 // 2, root1, root2, proof),
        ("wrong root1", size1, size2, b"WrongRoot", root2, proof),
        ("wrong root2", size1, size2, root1, b"WrongRoot", proof),
        ("swapped roots", size1, size2, root2, root1, proof),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, [*proof, b""]),
        ("trailing root1", size1, size2, root1, root2, [*proof, root1]),
        ("trailing root2", size1, size2, root1, root2, [*proof, root2]),
        ("preceding garbage", size1, size2, root1, root2, [b"", *proof]),
        ("preceding root1", size1, size2, root1, root2, [root1, *proof]),
        ("preceding root2", size1, size2, root1, root2, [root2, *proof]),
        ("preceding proof[0]", size1, size2, root1, root2, [proof[0], *proof]),
        ("truncated proof", size1, size2, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 4", size1, size2, root1, root2, wrong))
    return probes


@pytest.mark.parametrize(("size1", "size2", "proof"), [v for v in CONSISTENCY_PROOFS if v[2]])
def test_corrupted_consistency_vectors_are_rejected(
    size1: int, size2: int, proof: list[bytes]
) -> None:
    probes = _corrupt_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)
    accepted = []
    for desc, s1, s2, r1, r2, p in probes:
        try:
            verify_consistency(s1, s2, r1, r2, p)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


# transparency-dev/merkle proof/verify_test.go TestVerifyConsistency, with one deliberate
# difference: the Go verifier accepts any bytes as roots where it does not use them ("don't
# care"); this one insists every root is a 32-byte hash and the size-0 root is EMPTY_ROOT.
ROOT_A, ROOT_B = leaf_hash(b"root a"), leaf_hash(b"root b")


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, []),
        (0, 1, EMPTY_ROOT, ROOT_B, []),
        (1, 1, ROOT_B, ROOT_B, []),
    ],
)
def test_always_consistent_sizes(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    verify_consistency(size1, size2, root1, root2, proof)


# An adversarial table: every row is a consistency claim that must be refused.
BAD_CONSISTENCY = [
    ("0,0 different roots", 0, 0, ROOT_A, ROOT_B, []),
    ("1,1 different roots", 1, 1, ROOT_A, ROOT_B, []),
    ("time travel 1 -> 0", 1, 0, ROOT_A, ROOT_B, []),
    ("time travel 2 -> 1", 2, 1, ROOT_A, ROOT_B, []),
    ("empty proof 1 -> 2", 1, 2, ROOT_A, ROOT_B, []),
    ("empty vs other root", 0, 0, EMPTY_ROOT, ROOT_B, []),
    ("1,1 empty vs other root", 1, 1, EMPTY_ROOT, ROOT_B, []),
    ("0,0 non-empty proof", 0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),
    ("0,1 non-empty proof", 0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),
    ("1,1 non-empty proof", 1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),
    ("size 0 with a non-empty root", 0, 5, ROOT_A, ROOTS[5], []),
    ("short old root", 0, 0, b"don't care 1", b"don't care 1", []),
    ("short new root", 2, 5, ROOTS[2], ROOTS[5][:31], CONSISTENCY_PROOFS[3][2]),
    ("long proof hash", 2, 5, ROOTS[2], ROOTS[5], [CONSISTENCY_PROOFS[3][2][0] + b"\0", SOME_HASH]),
    ("negative old size", -1, 5, ROOTS[2], ROOTS[5], CONSISTENCY_PROOFS[3][2]),
    ("negative new size", 2, -5, ROOTS[2], ROOTS[5], CONSISTENCY_PROOFS[3][2]),
    ("bool size", True, 5, ROOTS[1], ROOTS[5], CONSISTENCY_PROOFS[3][2]),
    ("proof reversed", 6, 8, ROOTS[6], ROOTS[8], CONSISTENCY_PROOFS[2][2][::-1]),
    ("roots of other sizes", 6, 8, ROOTS[5], ROOTS[7], CONSISTENCY_PROOFS[2][2]),
    ("inclusion path as proof", 1, 8, ROOTS[1], ROOTS[8], INCLUSION_PROOFS[2][2]),
    ("power-of-two old root sent", 2, 5, ROOTS[2], ROOTS[5], [ROOTS[2], *CONSISTENCY_PROOFS[3][2]]),
]


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof"),
    [row[1:] for row in BAD_CONSISTENCY],
    ids=[row[0] for row in BAD_CONSISTENCY],
)
def test_bad_consistency_table(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, root1, root2, proof)


# An adversarial table: every row is an inclusion claim that must be refused.
_P8 = INCLUSION_PROOFS[2][2]  # Leaf 5 of 8.
BAD_INCLUSION = [
    ("index == size", LEAF_HASHES[5], 8, 8, _P8, ROOTS[8]),
    ("index > size", LEAF_HASHES[5], 9, 8, _P8, ROOTS[8]),
    ("negative index", LEAF_HASHES[5], -3, 8, _P8, ROOTS[8]),
    ("size 0", LEAF_HASHES[0], 0, 0, [], EMPTY_ROOT),
    ("wrong leaf", LEAF_HASHES[4], 5, 8, _P8, ROOTS[8]),
    ("data instead of leaf hash", LEAF_INPUTS[5], 5, 8, _P8, ROOTS[8]),
    ("leaf hashed without the 0x00 prefix", sha256(LEAF_INPUTS[5]), 5, 8, _P8, ROOTS[8]),
    ("node hash as leaf", NODE_HASHES[1][2], 4, 8, _P8[1:], ROOTS[8]),
    ("short root", LEAF_HASHES[5], 5, 8, _P8, ROOTS[8][:-1]),
    ("short leaf", LEAF_HASHES[5][:-1], 5, 8, _P8, ROOTS[8]),
    ("short path hash", LEAF_HASHES[5], 5, 8, [_P8[0][:-1], *_P8[1:]], ROOTS[8]),
    ("str path hash", LEAF_HASHES[5], 5, 8, [_P8[0].hex(), *_P8[1:]], ROOTS[8]),
    ("path too long", LEAF_HASHES[5], 5, 8, [*_P8, SOME_HASH], ROOTS[8]),
    ("path too short", LEAF_HASHES[5], 5, 8, _P8[:2], ROOTS[8]),
    ("path reversed", LEAF_HASHES[5], 5, 8, _P8[::-1], ROOTS[8]),
    ("root of size 7", LEAF_HASHES[5], 5, 8, _P8, ROOTS[7]),
    ("size 7 with size-8 path", LEAF_HASHES[5], 5, 7, _P8, ROOTS[7]),
    ("root given as leaf, size 1", ROOTS[8], 0, 1, [], ROOTS[1]),
]


@pytest.mark.parametrize(
    ("leaf", "index", "size", "path", "root"),
    [row[1:] for row in BAD_INCLUSION],
    ids=[row[0] for row in BAD_INCLUSION],
)
def test_bad_inclusion_table(
    leaf: bytes, index: int, size: int, path: list[bytes], root: bytes
) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, path, root)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ProofError, match="expected 3"):
        verify_inclusion(LEAF_HASHES[5], 5, 8, _P8[:2], ROOTS[8])
    with pytest.raises(ProofError, match="does not lead to the root"):
        verify_inclusion(LEAF_HASHES[4], 5, 8, _P8, ROOTS[8])
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[7], CONSISTENCY_PROOFS[2][2])
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(LEAF_HASHES[5], 5, 8, _P8, b"x")
    with pytest.raises(ProofError) as info:
        verify_consistency(2, 1, ROOTS[2], ROOTS[1], [])
    assert info.value.reason == "bad_proof"


@pytest.mark.parametrize(
    ("size", "hashes"),
    [(-1, []), (1, []), (2, [ROOTS[1], ROOTS[1]]), (3, [ROOTS[2], b"short"]), (0, [ROOTS[0]])],
)
def test_compact_range_rejects_bad_peaks(size: int, hashes: list[bytes]) -> None:
    with pytest.raises(EncodingError):
        CompactRange(size, hashes)


def test_compact_range_rejects_bad_leaf() -> None:
    cr = CompactRange()
    with pytest.raises(EncodingError):
        cr.append(b"\0" * 31)
    with pytest.raises(EncodingError):
        cr.extend([LEAF_HASHES[0], b"\0" * 33])


# Properties over random trees.

# Hypothesis favours short lists; drawing the length first spreads tree sizes up to 70 so
# that trees several levels deep, with ragged right edges, are exercised.
leaf_lists = st.integers(1, 70).flatmap(
    lambda n: st.lists(st.binary(max_size=4), min_size=n, max_size=n)
)
unique_leaf_lists = st.integers(1, 70).flatmap(
    lambda n: st.lists(st.binary(max_size=4), min_size=n, max_size=n, unique=True)
)


@settings(max_examples=40, deadline=None)
@given(leaf_lists)
def test_every_inclusion_proof_verifies(datas: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in datas]
    subtree = _reference_subtree(hashes)
    for size in range(1, len(hashes) + 1):
        root = root_from_leaf_hashes(hashes[:size])
        for index in range(size):
            path = inclusion_proof(index, size, subtree)
            verify_inclusion(hashes[index], index, size, path, root)


@settings(max_examples=40, deadline=None)
@given(leaf_lists)
def test_every_consistency_proof_verifies(datas: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in datas]
    subtree = _reference_subtree(hashes)
    roots = [root_from_leaf_hashes(hashes[:n]) for n in range(len(hashes) + 1)]
    for new in range(len(hashes) + 1):
        for old in range(new + 1):
            proof = consistency_proof(old, new, subtree)
            verify_consistency(old, new, roots[old], roots[new], proof)


@settings(max_examples=60, deadline=None)
@given(leaf_lists)
def test_compact_range_agrees_with_reference(datas: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in datas]
    cr = CompactRange()
    for size, lh in enumerate(hashes, start=1):
        cr.append(lh)
        assert cr.root() == root_from_leaf_hashes(hashes[:size])
        assert CompactRange(size, cr.hashes) == cr


@settings(max_examples=150, deadline=None)
@given(unique_leaf_lists, st.data())
def test_tampered_inclusion_is_rejected(datas: list[bytes], data: st.DataObject) -> None:
    hashes = [leaf_hash(d) for d in datas]
    subtree = _reference_subtree(hashes)
    size = data.draw(st.integers(1, len(hashes)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = root_from_leaf_hashes(hashes[:size])
    path = inclusion_proof(index, size, subtree)
    leaf = hashes[index]
    if path:
        which = data.draw(st.integers(0, len(path) - 1), label="element")
        bit = data.draw(st.integers(0, 8 * 32 - 1), label="bit")
        tampered = list(path)
        flipped = bytearray(tampered[which])
        flipped[bit // 8] ^= 1 << (bit % 8)
        tampered[which] = bytes(flipped)
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, tampered, root)
    other_index = data.draw(st.integers(0, len(hashes)), label="other index")
    if other_index != index:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, other_index, size, path, root)
    # A different size comes with that size's root, as a signed tree head binds them. (With
    # the original root a path can legitimately fit a larger size: the path for leaf 0 of 5
    # also computes root(5) when read as leaf 0 of 6, because a verifier never sees leaves.)
    other_size = data.draw(st.integers(0, len(hashes)), label="other size")
    if other_size != size:
        other_root = root_from_leaf_hashes(hashes[:other_size])
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, other_size, path, other_root)


@settings(max_examples=150, deadline=None)
@given(unique_leaf_lists, st.data())
def test_tampered_consistency_is_rejected(datas: list[bytes], data: st.DataObject) -> None:
    hashes = [leaf_hash(d) for d in datas]
    subtree = _reference_subtree(hashes)
    roots = [root_from_leaf_hashes(hashes[:n]) for n in range(len(hashes) + 1)]
    new = data.draw(st.integers(1, len(hashes)), label="new")
    old = data.draw(st.integers(1, new), label="old")
    proof = consistency_proof(old, new, subtree)
    verify_consistency(old, new, roots[old], roots[new], proof)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 8 * 32 - 1), label="bit")
        tampered = list(proof)
        flipped = bytearray(tampered[which])
        flipped[bit // 8] ^= 1 << (bit % 8)
        tampered[which] = bytes(flipped)
        with pytest.raises(ProofError):
            verify_consistency(old, new, roots[old], roots[new], tampered)
    # Other sizes come with their true roots, as signed tree heads bind them; the proof must
    # then fail unless it happens to be exactly the proof for those sizes (e.g. the empty
    # proof from 1 to 1 is also the proof from 0 to 1).
    other_old = data.draw(st.integers(0, len(hashes)), label="other old")
    if other_old != old and proof != _proof_or_none(other_old, new, subtree):
        with pytest.raises(ProofError):
            verify_consistency(other_old, new, roots[other_old], roots[new], proof)
    other_new = data.draw(st.integers(0, len(hashes)), label="other new")
    if other_new != new and proof != _proof_or_none(old, other_new, subtree):
        with pytest.raises(ProofError):
            verify_consistency(old, other_new, roots[old], roots[other_new], proof)


def _proof_or_none(old: int, new: int, subtree: Callable[[int, int], bytes]) -> list[bytes] | None:
    try:
        return consistency_proof(old, new, subtree)
    except ProofError:
        return None


@settings(max_examples=60, deadline=None)
@given(leaf_lists, leaf_lists)
def test_appending_never_invalidates_old_proofs(first: list[bytes], more: list[bytes]) -> None:
    old_hashes = [leaf_hash(d) for d in first]
    new_hashes = old_hashes + [leaf_hash(d) for d in more]
    old_size, new_size = len(old_hashes), len(new_hashes)
    old_root = root_from_leaf_hashes(old_hashes)
    new_root = root_from_leaf_hashes(new_hashes)
    old_subtree = _reference_subtree(old_hashes)
    new_subtree = _reference_subtree(new_hashes)
    for index in range(old_size):
        # A proof handed out before the append still verifies against the old head, and the
        # grown tree regenerates exactly that proof for the old size.
        path = inclusion_proof(index, old_size, old_subtree)
        assert inclusion_proof(index, old_size, new_subtree) == path
        verify_inclusion(old_hashes[index], index, old_size, path, old_root)
        verify_inclusion(
            old_hashes[index],
            index,
            new_size,
            inclusion_proof(index, new_size, new_subtree),
            new_root,
        )
    proof = consistency_proof(old_size, new_size, new_subtree)
    verify_consistency(old_size, new_size, old_root, new_root, proof)


def test_all_proofs_up_to_size_40_exhaustively() -> None:
    hashes = [leaf_hash(i.to_bytes(2, "big")) for i in range(40)]
    subtree = _reference_subtree(hashes)
    roots = [root_from_leaf_hashes(hashes[:n]) for n in range(len(hashes) + 1)]
    for new in range(len(hashes) + 1):
        for index in range(new):
            path = inclusion_proof(index, new, subtree)
            verify_inclusion(hashes[index], index, new, path, roots[new])
        for old in range(new + 1):
            proof = consistency_proof(old, new, subtree)
            verify_consistency(old, new, roots[old], roots[new], proof)
