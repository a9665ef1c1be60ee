"""Proof bundles from the chain verify offline, and every tampering raises ProofError."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civicledger.crypto import merkle
from civicledger.crypto.encoding import b64url, canonical_json
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import ProofError
from civicledger.ledger.block import SignedTreeHead, TreeHead
from civicledger.ledger.proofs import (
    ConsistencyBundle,
    InclusionBundle,
    load_bundle,
    verify_consistency_bundle,
    verify_inclusion_bundle,
)
from civicledger.ledger.receipt import log_leaf_bytes
from civicledger.ledger.tx import tx_from_json
from civicledger.node.chain import Chain
from conftest import City, Ledger, digest, make_city

BLOCK_SIZES = [1, 3, 2, 5, 1, 4, 2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[City, Chain, list[bytes]]]:
    """A chain of seven blocks (18 transactions, one of them failed), shared read-only."""
    city = make_city(tmp_path_factory.mktemp("proofs") / "city")
    chain = city.open_chain()
    ledger = Ledger(city, chain)
    tx_ids: list[bytes] = []
    for height, size in enumerate(BLOCK_SIZES, start=1):
        txs = [ledger.tx(city.clerk, "tally", "add", {"amount": height}) for _ in range(size - 1)]
        txs.append(
            ledger.tx(city.archivist, "notary", "anchor", {"digest": digest(str(height % 6))})
        )
        block = ledger.block(*txs)
        assert not block.dropped
        tx_ids.extend(i.prepared.tx.tx_id for i in block.included)
    assert [chain.tx(t).receipt.status for t in tx_ids].count("failed") == 1  # digest("1") twice
    yield city, chain, tx_ids
    chain.close()


def _trusted(city: City) -> frozenset[str]:
    return frozenset(city.genesis.producers)


def _wire(bundle: InclusionBundle | ConsistencyBundle) -> bytes:
    return canonical_json(bundle.model_dump(mode="json"))


def _check_inclusion(doc: dict[str, Any], city: City) -> None:
    """Verify a bundle file's JSON as a citizen's tool would: parse it, then check it."""
    bundle = load_bundle(json.dumps(doc).encode())
    assert isinstance(bundle, InclusionBundle)
    verify_inclusion_bundle(bundle, _trusted(city))


def _check_consistency(doc: dict[str, Any], city: City) -> None:
    bundle = load_bundle(json.dumps(doc).encode())
    assert isinstance(bundle, ConsistencyBundle)
    verify_consistency_bundle(bundle, _trusted(city))


def test_every_transaction_has_a_verifying_inclusion_bundle(
    built: tuple[City, Chain, list[bytes]],
) -> None:
    city, chain, tx_ids = built
    for leaf_index, tx_id in enumerate(tx_ids):
        bundle = load_bundle(_wire(chain.inclusion_proof(tx_id)))
        assert isinstance(bundle, InclusionBundle)
        tx, receipt = verify_inclusion_bundle(bundle, _trusted(city))
        stored = chain.tx(tx_id)
        assert stored is not None
        assert (tx.tx_id, receipt) == (tx_id, stored.receipt)
        assert receipt.leaf_index == bundle.leaf_index == leaf_index
        assert bundle.tree_size == len(tx_ids)


_OFFLINE_VERIFIER = """
import sys
from pathlib import Path
from civicledger.ledger.proofs import (
    load_bundle, verify_consistency_bundle, verify_inclusion_bundle,
)

trusted = frozenset(sys.argv[1].split(","))
for name in sys.argv[2:]:
    bundle = load_bundle(Path(name).read_bytes())
    if bundle.kind.startswith("civicledger/consistency"):
        verify_consistency_bundle(bundle, trusted)
    else:
        tx, receipt = verify_inclusion_bundle(bundle, trusted)
        print(tx.tx_id_hex, receipt.status)
heavy = ("sqlite3", "civicledger.node", "civicledger.contracts")
loaded = sorted(m for m in sys.modules if m.startswith(heavy))
print("loaded:", loaded)
"""


def test_bundles_verify_offline_in_a_fresh_process_with_only_the_proofs_module(
    built: tuple[City, Chain, list[bytes]], tmp_path: Path
) -> None:
    city, chain, tx_ids = built
    files = []
    for n, tx_id in enumerate(tx_ids[::4]):
        path = tmp_path / f"inclusion-{n}.json"
        path.write_bytes(_wire(chain.inclusion_proof(tx_id)))
        files.append(str(path))
    consistency = tmp_path / "consistency.json"
    consistency.write_bytes(_wire(chain.consistency_proof(2, 6)))
    files.append(str(consistency))
    argv = [sys.executable, "-c", _OFFLINE_VERIFIER, ",".join(city.genesis.producers), *files]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:-1] == [f"{t.hex()} {chain.tx(t).receipt.status}" for t in tx_ids[::4]]
    assert lines[-1] == "loaded: []"


# -- tampering with an inclusion bundle ----------------------------------------------------------

ROGUE = PrivateKey.from_seed(b"r" * 32)


def _flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


def _resign(doc: dict[str, Any], key: PrivateKey, **changes: Any) -> None:
    head = TreeHead.model_validate({**doc["tree_head"]["tree_head"], **changes})
    doc["tree_head"] = SignedTreeHead.sign(head, key).model_dump(mode="json")


def _set(path: str, value: Any) -> Any:
    def mutate(doc: dict[str, Any], city: City) -> None:
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value(node[int(last)]) if callable(value) else value
        else:
            node[last] = value(node[last]) if callable(value) else value

    return mutate


def _junk_in_signature(doc: dict[str, Any], city: City) -> None:
    signature = doc["entry"]["tx"]["signature"]
    # A lenient base64 decoder would skip the junk and find the same signature; ours refuses.
    doc["entry"]["tx"]["signature"] = signature[:10] + "!!!!" + signature[10:]


def _forged_log(
    doc: dict[str, Any],
    city: City,
    *,
    key: PrivateKey,
    bad_signature: bool = False,
    chain_id: str | None = None,
) -> None:
    """A one-leaf log built around the (possibly altered) entry, its head signed by ``key``."""
    entry = doc["entry"]
    if bad_signature:
        entry["tx"]["signature"] = b64url(bytes(64))
    tx = tx_from_json(entry["tx"])
    entry["receipt"]["leaf_index"] = 0
    leaf = log_leaf_bytes(tx.envelope_bytes(), canonical_json(entry["receipt"]))
    doc.update(leaf_index=0, tree_size=1, path=[])
    head = {
        **doc["tree_head"]["tree_head"],
        "tree_size": 1,
        "root_hash": merkle.leaf_hash(leaf).hex(),
        "signer": key.public.did,
    }
    if chain_id is not None:
        head["chain_id"] = chain_id
    doc["tree_head"] = SignedTreeHead.sign(TreeHead.model_validate(head), key).model_dump(
        mode="json"
    )


INCLUSION_TAMPERS: list[Any] = [
    pytest.param(
        _set("entry.tx.body.args.amount", 999), "does not lead to the root", id="entry args"
    ),
    pytest.param(
        _set("entry.tx.body.nonce", lambda n: n + 1), "does not lead to the root", id="entry nonce"
    ),
    pytest.param(
        _set("entry.tx.signature", lambda s: b64url(bytes(64))),
        "does not lead to the root",
        id="entry signature",
    ),
    pytest.param(
        _set("entry.receipt.status", "failed"), "does not lead to the root", id="receipt status"
    ),
    pytest.param(_set("entry.receipt.result", 0), "does not lead to the root", id="receipt result"),
    pytest.param(
        _set("entry.receipt.events", []), "does not lead to the root", id="receipt events"
    ),
    pytest.param(
        _set("entry.receipt.height", lambda h: h + 1),
        "does not lead to the root",
        id="receipt height",
    ),
    pytest.param(
        _set("entry.receipt.tx_id", "00" * 32), "does not lead to the root", id="receipt tx id"
    ),
    pytest.param(_set("entry.extra", 1), "entry must be", id="entry extra key"),
    pytest.param(_junk_in_signature, "malformed", id="junk in signature"),
    pytest.param(_set("path.0", _flip_hex), "does not lead to the root", id="path element"),
    pytest.param(_set("path", lambda p: p[:-1]), "4 hashes, expected 5", id="path truncated"),
    pytest.param(
        _set("path", lambda p: [*p, "00" * 32]), "6 hashes, expected 5", id="path extended"
    ),
    pytest.param(_set("path.0", "zz" * 32), "malformed", id="path not hex"),
    pytest.param(_set("path.0", "00" * 31), "malformed", id="path element short"),
    pytest.param(_set("leaf_index", lambda i: i + 1), "does not lead to the root", id="index + 1"),
    pytest.param(_set("leaf_index", lambda i: i - 1), "does not lead to the root", id="index - 1"),
    pytest.param(_set("leaf_index", 10**6), "not in a tree", id="index beyond tree"),
    pytest.param(_set("leaf_index", -1), "leaf_index", id="index negative"),
    pytest.param(_set("tree_size", lambda n: n + 1), "tree size", id="bundle tree size"),
    pytest.param(_set("tree_head.tree_head.root_hash", _flip_hex), "signature", id="head root"),
    pytest.param(
        _set("tree_head.tree_head.tree_size", lambda n: n + 1), "signature", id="head size"
    ),
    pytest.param(
        _set("tree_head.signature", lambda s: b64url(bytes(64))), "signature", id="head signature"
    ),
    pytest.param(
        _set("tree_head.tree_head.signer", ROGUE.public.did),
        "not trusted",
        id="head signer swapped",
    ),
    pytest.param(
        lambda d, c: _resign(d, ROGUE, signer=ROGUE.public.did),
        "not trusted",
        id="head by untrusted key",
    ),
    pytest.param(
        lambda d, c: _resign(d, ROGUE, signer=c.producer.public.did),
        "signature",
        id="head by wrong key",
    ),
    pytest.param(
        lambda d, c: _forged_log(d, c, key=ROGUE), "not trusted", id="forged log, untrusted signer"
    ),
    pytest.param(
        lambda d, c: _forged_log(d, c, key=c.producer, bad_signature=True),
        "transaction signature",
        id="trusted head over a badly signed tx",
    ),
    pytest.param(
        lambda d, c: _forged_log(d, c, key=c.producer, chain_id="other-city"),
        "transaction is for chain testville",
        id="trusted head of another chain",
    ),
    pytest.param(_set("kind", "something/else"), "kind", id="wrong kind"),
]


@pytest.mark.parametrize(("tamper", "match"), INCLUSION_TAMPERS)
def test_tampered_inclusion_bundles_raise_proof_error(
    built: tuple[City, Chain, list[bytes]], tamper: Any, match: str
) -> None:
    city, chain, tx_ids = built
    doc = json.loads(_wire(chain.inclusion_proof(tx_ids[5])))
    _check_inclusion(doc, city)  # the untouched bundle verifies
    tamper(doc, city)
    with pytest.raises(ProofError, match=match):
        _check_inclusion(doc, city)


def test_a_forged_log_passes_only_when_every_signer_is_trusted(
    built: tuple[City, Chain, list[bytes]],
) -> None:
    """``trusted_signers=None`` checks signatures but not who made them: callers must say so."""
    city, chain, tx_ids = built
    doc = json.loads(_wire(chain.inclusion_proof(tx_ids[0])))
    _forged_log(doc, city, key=ROGUE)
    bundle = load_bundle(json.dumps(doc).encode())
    assert isinstance(bundle, InclusionBundle)
    verify_inclusion_bundle(bundle, None)
    with pytest.raises(ProofError, match="not trusted"):
        verify_inclusion_bundle(bundle, _trusted(city))
    with pytest.raises(ProofError, match="not trusted"):
        verify_inclusion_bundle(bundle, frozenset())  # an empty policy trusts nobody


def test_receipts_cannot_be_swapped_between_bundles(built: tuple[City, Chain, list[bytes]]) -> None:
    city, chain, tx_ids = built
    one = json.loads(_wire(chain.inclusion_proof(tx_ids[1])))
    two = json.loads(_wire(chain.inclusion_proof(tx_ids[2])))
    one["entry"]["receipt"] = copy.deepcopy(two["entry"]["receipt"])
    with pytest.raises(ProofError, match="does not lead to the root"):
        _check_inclusion(one, city)


@pytest.mark.parametrize(
    "data", [b"", b"[]", b"{}", b'{"kind": "civicledger/consistency-proof/v1"}', b"\xff"]
)
def test_load_bundle_refuses_garbage(data: bytes) -> None:
    with pytest.raises(ProofError):
        load_bundle(data)


def test_chain_refuses_proofs_it_cannot_give(built: tuple[City, Chain, list[bytes]]) -> None:
    _, chain, tx_ids = built
    with pytest.raises(ProofError, match="no committed transaction"):
        chain.inclusion_proof(b"\x00" * 32)
    with pytest.raises(ProofError, match="not in the tree at height 1"):
        chain.inclusion_proof(tx_ids[-1], height=1)


# -- consistency -------------------------------------------------------------------------------


def test_consistency_between_every_pair_of_heights(built: tuple[City, Chain, list[bytes]]) -> None:
    city, chain, _ = built
    head = chain.height
    for old in range(head + 1):
        for new in range(old, head + 1):
            bundle = load_bundle(_wire(chain.consistency_proof(old, new)))
            assert isinstance(bundle, ConsistencyBundle)
            verify_consistency_bundle(bundle, _trusted(city))
            assert bundle.old_head == chain.tree_head(old)
            assert bundle.new_head == chain.tree_head(new)


CONSISTENCY_TAMPERS: list[Any] = [
    pytest.param(_set("proof.0", _flip_hex), "does not lead", id="proof element"),
    pytest.param(_set("proof", lambda p: p[:-1]), "3 hashes, expected 4", id="proof truncated"),
    pytest.param(
        _set("proof", lambda p: [*p, "00" * 32]), "5 hashes, expected 4", id="proof extended"
    ),
    pytest.param(
        lambda d, c: d.update(old_head=d["new_head"], new_head=d["old_head"]),
        "larger",
        id="heads swapped",
    ),
    pytest.param(_set("old_head.tree_head.root_hash", _flip_hex), "signature", id="old root"),
    pytest.param(
        _set("new_head.signature", lambda s: b64url(bytes(64))),
        "signature",
        id="new head signature",
    ),
    pytest.param(
        lambda d, c: d.update(
            new_head=SignedTreeHead.sign(
                TreeHead.model_validate({**d["new_head"]["tree_head"], "signer": ROGUE.public.did}),
                ROGUE,
            ).model_dump(mode="json")
        ),
        "not trusted",
        id="new head by untrusted key",
    ),
    pytest.param(
        lambda d, c: d.update(
            new_head=SignedTreeHead.sign(
                TreeHead.model_validate({**d["new_head"]["tree_head"], "chain_id": "other-city"}),
                c.producer,
            ).model_dump(mode="json")
        ),
        "different chains",
        id="heads of two chains",
    ),
]


@pytest.mark.parametrize(("tamper", "match"), CONSISTENCY_TAMPERS)
def test_tampered_consistency_bundles_raise_proof_error(
    built: tuple[City, Chain, list[bytes]], tamper: Any, match: str
) -> None:
    city, chain, _ = built
    doc = json.loads(_wire(chain.consistency_proof(3, 6)))
    tamper(doc, city)
    with pytest.raises(ProofError, match=match):
        _check_consistency(doc, city)


def test_old_proofs_stay_valid_as_the_chain_grows(city: City, ledger: Ledger) -> None:
    chain = ledger.chain
    first = ledger.block(*(ledger.tx(city.clerk, "tally", "add", {"amount": 1}) for _ in range(3)))
    tx_id = first.included[1].prepared.tx.tx_id
    old_height = chain.height
    old_bytes = _wire(chain.inclusion_proof(tx_id))
    for n in range(5):
        ledger.block(*(ledger.tx(city.clerk2, "tally", "add", {"amount": 2}) for _ in range(n + 1)))

    old = load_bundle(old_bytes)
    assert isinstance(old, InclusionBundle)
    verify_inclusion_bundle(old, _trusted(city))
    assert _wire(chain.inclusion_proof(tx_id, height=old_height)) == old_bytes
    new = chain.inclusion_proof(tx_id)
    assert new.tree_size > old.tree_size
    verify_inclusion_bundle(new, _trusted(city))
    link = chain.consistency_proof(old_height)
    assert link.old_head == old.tree_head
    assert link.new_head == new.tree_head
    verify_consistency_bundle(link, _trusted(city))
