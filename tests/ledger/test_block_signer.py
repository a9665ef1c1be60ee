"""Headers signed by a node other than the producer (a cluster's nodes each sign every block)."""

from __future__ import annotations

from pathlib import Path

import pytest

from civicledger.crypto.encoding import canonical_json, sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import LedgerError, SignatureError
from civicledger.ledger.block import SignedBlockHeader, SignedTreeHead
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.tx import SignedTx, sign_tx
from civicledger.node.chain import DB_NAME, Chain, genesis_header
from civicledger.node.verify import verify_chain
from conftest import CHAIN_ID, FAR_FUTURE_MS, GENESIS_TIME_MS, city_registry


def _key(label: str) -> PrivateKey:
    return PrivateKey.from_seed(sha256(b"block-signer/" + label.encode()))


A, B, ROOT, ROGUE = (_key(n) for n in ("a", "b", "root", "rogue"))
GENESIS = Genesis(
    chain_id=CHAIN_ID,
    city="Testville",
    time_ms=GENESIS_TIME_MS,
    root_authorities=(ROOT.public.did,),
    producers=(A.public.did, B.public.did),
)


def _add(nonce: int) -> SignedTx:
    return sign_tx(
        ROOT,
        chain_id=CHAIN_ID,
        nonce=nonce,
        contract="tally",
        method="add",
        args={"amount": nonce},
        expires_at=FAR_FUTURE_MS,
    )


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Chain, Chain]:
    Chain.create(tmp_path / "a", GENESIS, A, city_registry()).close()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / DB_NAME).write_bytes((tmp_path / "a" / DB_NAME).read_bytes())
    return Chain(tmp_path / "a", city_registry()), Chain(tmp_path / "b", city_registry())


def test_each_node_signs_the_identical_header_with_its_own_key(pair: tuple[Chain, Chain]) -> None:
    a, b = pair
    try:
        for nonce in (1, 2, 3):
            tx = _add(nonce)
            sa, _ = a.stage_block([a.prepare(tx)], GENESIS_TIME_MS + nonce, A, A.public.did)
            sb, _ = b.stage_block([b.prepare(tx)], GENESIS_TIME_MS + nonce, B, A.public.did)
            assert sa is not None
            assert sb is not None
            a.write_block(sa, {"stream_seq": b"%d" % nonce})
            b.write_block(sb, {"stream_seq": b"%d" % nonce})
            assert sa.header.header == sb.header.header
            assert (sa.header.signer, sb.header.signer) == (None, B.public.did)
            assert sb.tree_head.tree_head.signer == B.public.did
            sb.header.verify()
            sb.tree_head.verify(frozenset(GENESIS.producers))
        assert a.meta("stream_seq") == b.meta("stream_seq") == b"3"
        # B's copy replays from genesis: headers signed by a producer other than the named one.
        b_dir = b.data_dir
    finally:
        a.close()
        b.close()
    assert verify_chain(b_dir, registry=city_registry()).height == 3


def test_signer_is_left_out_of_the_bytes_when_it_is_the_producer() -> None:
    own = SignedBlockHeader.sign(genesis_header(GENESIS, A.public.did), A)
    other = SignedBlockHeader.sign(genesis_header(GENESIS, A.public.did), B)
    assert "signer" not in own.model_dump()
    assert b'"signer"' not in canonical_json(own.model_dump())
    assert other.model_dump()["signer"] == B.public.did
    assert SignedBlockHeader.model_validate_json(canonical_json(other.model_dump())) == other


def test_a_signature_claimed_for_another_signer_fails() -> None:
    signed = SignedBlockHeader.sign(genesis_header(GENESIS, A.public.did), B)
    forged = signed.model_copy(update={"signer": A.public.did})
    with pytest.raises(SignatureError):
        forged.verify()


def test_apply_block_refuses_a_header_signed_by_a_non_producer(pair: tuple[Chain, Chain]) -> None:
    a, b = pair
    try:
        staged, _ = a.stage_block([a.prepare(_add(1))], GENESIS_TIME_MS + 1, A)
        assert staged is not None
        a.write_block(staged)
        rogue = SignedBlockHeader.sign(staged.header.header, ROGUE)
        head = SignedTreeHead.sign(rogue.tree_head(), ROGUE)
        with pytest.raises(LedgerError, match="not a genesis producer"):
            b.apply_block(rogue, head, [_add(1)])
    finally:
        a.close()
        b.close()


def test_a_block_producer_must_be_a_genesis_producer(pair: tuple[Chain, Chain]) -> None:
    a, b = pair
    try:
        with pytest.raises(LedgerError, match="not a genesis producer"):
            a.stage_block([a.prepare(_add(1))], GENESIS_TIME_MS + 1, A, ROGUE.public.did)
        staged, _ = a.stage_block([a.prepare(_add(1))], GENESIS_TIME_MS + 1, A)
        assert staged is not None
        with pytest.raises(LedgerError, match="may not be written"):
            a.write_block(staged, {"genesis": b"x"})
        assert a.height == 0
    finally:
        a.close()
        b.close()
