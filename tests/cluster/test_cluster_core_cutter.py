"""The pure cutter: any interleaving and duplication of cuts from several nodes gives every
node the same blocks; a node resuming from its stored position reaches the same blocks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.node.cluster.blocks import BlockPlan, Cutter, Kind, SignedCut, StreamMessage

CHAIN = "testville"
KEYS = [PrivateKey.from_seed(sha256(f"cutter/{i}".encode())) for i in range(3)]
PRODUCERS = frozenset(k.public.did for k in KEYS)
ROGUE = PrivateKey.from_seed(sha256(b"cutter/rogue"))


def _stream(events: list[tuple[str, int, int]]) -> list[StreamMessage]:
    """events: ("tx", _, _) or ("cut", signer index (3 = rogue), how far back it cuts)."""
    out: list[StreamMessage] = []
    last_tx = 0
    for kind, who, back in events:
        seq = len(out) + 1
        if kind == "tx":
            out.append(StreamMessage(seq, Kind.TX, b"tx-%d" % seq, 1000 + seq))
            last_tx = seq
        elif last_tx:
            key = ROGUE if who == 3 else KEYS[who]
            cut = SignedCut.sign(CHAIN, max(1, last_tx - back), key)
            out.append(StreamMessage(seq, Kind.CUT, cut.wire(), 1000 + seq))
        else:
            out.append(StreamMessage(seq, Kind.CUT, b"not a cut", 1000 + seq))
    return out


def _run(cutter: Cutter, messages: list[StreamMessage]) -> list[BlockPlan]:
    return [plan for m in messages if (plan := cutter.feed(m)) is not None]


events = st.lists(
    st.one_of(
        st.tuples(st.just("tx"), st.just(0), st.just(0)),
        st.tuples(st.just("cut"), st.integers(0, 3), st.integers(0, 4)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(events, st.integers(0, 60), st.data())
def test_every_node_cuts_the_same_blocks(
    script: list[tuple[str, int, int]], restart_at: int, data: st.DataObject
) -> None:
    messages = _stream(script)
    reference = _run(Cutter(CHAIN, PRODUCERS), messages)
    # Redelivery (duplicates of already-fed messages) changes nothing.
    noisy = [m for m in messages for _ in range(data.draw(st.integers(1, 2)))]
    assert _run(Cutter(CHAIN, PRODUCERS), noisy) == reference
    # Blocks: consecutive, disjoint, in stream order, each closed by a producer's cut.
    seen = [seq for plan in reference for seq, _ in plan.txs]
    assert seen == sorted(set(seen))
    assert all(plan.producer in PRODUCERS and plan.txs for plan in reference)
    assert all(plan.through < plan.cut_seq for plan in reference)
    # Resuming from the position stored with a block reaches the same later blocks.
    done = [p for p in reference if p.cut_seq <= restart_at]
    if done:
        last = done[-1]
        resumed = Cutter(CHAIN, PRODUCERS, last_cut_seq=last.cut_seq, through=last.through)
        later = _run(resumed, [m for m in messages if m.seq > last.through])
        assert later == reference[len(done) :]


def test_a_cut_by_a_non_producer_is_ignored() -> None:
    cutter = Cutter(CHAIN, PRODUCERS)
    assert cutter.feed(StreamMessage(1, Kind.TX, b"a", 1)) is None
    rogue = SignedCut.sign(CHAIN, 1, ROGUE).wire()
    assert cutter.feed(StreamMessage(2, Kind.CUT, rogue, 2)) is None
    plan = cutter.feed(StreamMessage(3, Kind.CUT, SignedCut.sign(CHAIN, 1, KEYS[1]).wire(), 7))
    assert plan == BlockPlan(3, 1, 7, KEYS[1].public.did, ((1, b"a"),))


@pytest.mark.parametrize(
    "data",
    [b"", b"{}", b'{"cut": {"through": 1, "node": "x"}, "signature": "AA"}', b"\xff"],
)
def test_garbage_cuts_are_ignored(data: bytes) -> None:
    cutter = Cutter(CHAIN, PRODUCERS)
    cutter.feed(StreamMessage(1, Kind.TX, b"a", 1))
    assert cutter.feed(StreamMessage(2, Kind.CUT, data, 2)) is None
    assert cutter.pending == [(1, b"a")]


def test_a_cut_for_another_chain_is_ignored() -> None:
    cutter = Cutter(CHAIN, PRODUCERS)
    cutter.feed(StreamMessage(1, Kind.TX, b"a", 1))
    other = SignedCut.sign("elsewhere", 1, KEYS[0]).wire()
    assert cutter.feed(StreamMessage(2, Kind.CUT, other, 2)) is None
