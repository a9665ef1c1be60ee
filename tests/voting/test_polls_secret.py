"""Secret polls through a real Chain: the 3-of-5 key ceremony, encrypted ballots, the tally.

The trustees, the voters' wallets and the result's publisher are played here with the voting
crypto modules, as the real ones would run off the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.public
import pytest

from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import TxRejected
from civicledger.ledger.receipt import Receipt
from civicledger.node.chain import Chain
from civicledger.services.registry import city_registry
from civicledger.services.voting import dkg, dlog, group
from civicledger.services.voting.ballot import ballot_context, encrypt_ballot
from civicledger.services.voting.elgamal import Ciphertext
from civicledger.services.voting.polls import partial_context, possession_context, share_context
from conftest import City, Ledger, city_key, make_city, ok, refused

POLL = "budget-2025"
K, N = 3, 5


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def officers(city: City, ledger: Ledger) -> Ledger:
    grant = {"agency": "city-hall", "role": "poll_officer"}
    assert ledger.send(city.root, "governance", "grant_role", grant).ok
    return ledger


def send(
    ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any], at: int | None = None
) -> Receipt:
    """One polls transaction in a block of its own (at block time ``at``); raises if dropped."""
    return ledger.send(key, "polls", method, args, time_ms=at)


def all_ok(ledger: Ledger, txs: list[Any]) -> None:
    block = ledger.block(*txs)
    assert not block.dropped
    assert [(i.receipt.status, i.receipt.reason) for i in block.included] == [("ok", None)] * len(
        txs
    )


@dataclass
class Trustee:
    """One trustee's own state, off the ledger."""

    j: int
    key: PrivateKey
    box: nacl.public.PrivateKey
    dealing: dkg.Dealing | None = None
    secret: int | None = None
    received: dict[int, int] = field(default_factory=dict)

    @property
    def did(self) -> str:
        return self.key.public.did


def make_trustees(n: int) -> list[Trustee]:
    return [
        Trustee(
            j,
            city_key(f"trustee/{j}"),
            nacl.public.PrivateKey(sha256(f"box/{j}".encode())),
        )
        for j in range(1, n + 1)
    ]


def text(label: str) -> dict[str, str]:
    return {"ko": f"{label} (ko)", "en": label}


def create(
    city: City,
    chain: Chain,
    ledger: Ledger,
    trustees: list[Trustee],
    k: int,
    poll_id: str = POLL,
    options: int = 3,
) -> dict[str, Any]:
    now = chain.head.header.time_ms
    args = {
        "poll_id": poll_id,
        "question": text("Which project gets the budget?"),
        "options": [text(f"Project {i}") for i in range(options)],
        "min_selections": 1,
        "max_selections": 1,
        "mode": "secret",
        "eligibility": {"credential_type": "ResidentCard", "districts": [], "min_age": 19},
        "registrar": "district-office",
        "opens_ms": now + 60_000,
        "closes_ms": now + 120_000,
        "observers": ["archive"],
        "rules": text("Secret ballot."),
        "trustees": [t.did for t in trustees],
        "threshold": k,
    }
    return dict(ok(send(ledger, city.clerk, "create", args)))


def possession(dealing: dkg.Dealing, j: int, chain_id: str, poll_id: str) -> dict[str, str]:
    """The dealer's proof that it knows its first coefficient, as ``trustee_deal`` takes it."""
    return dict(dkg.prove_possession(dealing, j, possession_context(chain_id, poll_id)).to_json())


def ceremony(chain: Chain, ledger: Ledger, trustees: list[Trustee], poll_id: str = POLL) -> None:
    """Join, deal, check and acknowledge, each round in one block; the shares all verify."""
    k = chain.query("polls", "poll", {"poll_id": poll_id})["threshold"]
    n = len(trustees)
    context = share_context(chain.chain_id, poll_id)
    all_ok(
        ledger,
        [
            ledger.tx(
                t.key,
                "polls",
                "trustee_join",
                {"poll_id": poll_id, "box_key": bytes(t.box.public_key).hex()},
            )
            for t in trustees
        ],
    )
    deals = []
    for t in trustees:
        t.dealing = dkg.deal(k, n)
        shares = {
            str(o.j): dkg.encrypt_share(
                bytes(o.box.public_key), t.j, o.j, t.dealing.share_for(o.j), context
            )
            for o in trustees
            if o.j != t.j
        }
        commitments = [group.point_hex(c) for c in t.dealing.commitments]
        args = {
            "poll_id": poll_id,
            "commitments": commitments,
            "shares": shares,
            "possession": possession(t.dealing, t.j, chain.chain_id, poll_id),
        }
        deals.append(ledger.tx(t.key, "polls", "trustee_deal", args))
    all_ok(ledger, deals)
    records = chain.query("polls", "trustees", {"poll_id": poll_id})
    for t in trustees:
        assert t.dealing is not None
        t.received = {t.j: t.dealing.share_for(t.j)}
        for record in records:
            if record["index"] == t.j:
                continue
            share = dkg.decrypt_share(
                t.box,
                record["shares"][str(t.j)],
                dealer=record["index"],
                recipient=t.j,
                context=context,
            )
            commitments = [group.point_from_hex(c) for c in record["commitments"]]
            assert dkg.verify_share(commitments, t.j, share)
            t.received[record["index"]] = share
        t.secret = dkg.combine_secret_share(t.received)
    all_ok(
        ledger,
        [
            ledger.tx(t.key, "polls", "trustee_ack", {"poll_id": poll_id, "complaints": []})
            for t in trustees
        ],
    )


def pseudonym(label: str) -> str:
    return sha256(b"pseudonym/" + label.encode()).hex()


def voter(label: str) -> PrivateKey:
    return city_key(f"voter/{label}")


def register(city: City, ledger: Ledger, label: str, district: str, poll_id: str = POLL) -> None:
    args = {
        "poll_id": poll_id,
        "pseudonym": pseudonym(label),
        "voter_key": voter(label).public.did,
        "district": district,
    }
    ok(send(ledger, city.district, "register_voter", args))


def ballot_for(chain: Chain, label: str, choices: list[int], **bounds: int) -> dict[str, Any]:
    """What the voter's wallet sends: a one-hot (or k-hot) encrypted ballot with its proofs."""
    poll = chain.query("polls", "poll", {"poll_id": POLL})
    context = ballot_context(poll["chain_id"], POLL, voter(label).public.did)
    encrypted, _ = encrypt_ballot(
        group.point_from_hex(poll["public_key"]),
        choices,
        min_selections=bounds.get("min_selections", poll["min_selections"]),
        max_selections=bounds.get("max_selections", poll["max_selections"]),
        context=context,
    )
    return encrypted.to_json()


def partials_of(chain: Chain, t: Trustee, poll_id: str = POLL) -> list[dict[str, Any]]:
    """Trustee ``t``'s partial decryption of every option's aggregate, with its proof."""
    assert t.secret is not None
    aggregate = chain.query("polls", "aggregate", {"poll_id": poll_id})
    out = []
    for i, ct in enumerate(aggregate):
        alpha = Ciphertext.from_json(ct).alpha
        d, proof = dkg.partial_decrypt(
            t.secret, alpha, partial_context(chain.chain_id, poll_id, t.j, i)
        )
        out.append({"D": group.point_hex(d), "proof": proof.to_json()})
    return out


def counts_from_ledger(chain: Chain, poll_id: str = POLL) -> list[int]:
    """What any publisher computes: combine the k lowest partials and solve the small dlogs."""
    poll = chain.query("polls", "poll", {"poll_id": poll_id})
    posted = chain.query("polls", "partials", {"poll_id": poll_id})[: poll["threshold"]]
    counts = []
    for i, ct in enumerate(chain.query("polls", "aggregate", {"poll_id": poll_id})):
        shares = {
            p["trustee"]: group.point_from_hex(p["partials"][i]["D"], allow_identity=True)
            for p in posted
        }
        message = group.sub(Ciphertext.from_json(ct).beta, dkg.combine_partials(shares))
        counts.append(dlog.solve(message, poll["voted"]))
    return counts


# -- the ceremony -------------------------------------------------------------------------------


def test_ceremony_gives_joint_key_and_verification_keys(
    city: City, chain: Chain, officers: Ledger
) -> None:
    trustees = make_trustees(N)
    poll = create(city, chain, officers, trustees, K)
    assert poll["phase"] == "joining"
    assert poll["public_key"] is None
    ceremony(chain, officers, trustees)
    poll = chain.query("polls", "poll", {"poll_id": POLL})
    assert poll["phase"] == "ready"
    commitments = {t.j: t.dealing.commitments for t in trustees if t.dealing is not None}
    assert poll["public_key"] == group.point_hex(dkg.joint_public_key(commitments))
    records = chain.query("polls", "trustees", {"poll_id": POLL})
    assert [r["index"] for r in records] == [1, 2, 3, 4, 5]
    for t, record in zip(trustees, records, strict=True):
        assert t.secret is not None
        assert record["verification_key"] == group.point_hex(group.base_mul(t.secret))
        assert record["acked"] is True


def test_ceremony_refusals(city: City, chain: Chain, officers: Ledger) -> None:
    trustees = make_trustees(N)
    poll = create(city, chain, officers, trustees, K)
    t1, t2 = trustees[0], trustees[1]
    join = {"poll_id": POLL, "box_key": bytes(t1.box.public_key).hex()}
    refused(send(officers, city.outsider, "trustee_join", join), "not_trustee")
    early = dkg.deal(K, N)
    deal = {
        "poll_id": POLL,
        "commitments": [group.point_hex(c) for c in early.commitments],
        "shares": {},
        "possession": possession(early, 1, chain.chain_id, POLL),
    }
    refused(send(officers, t1.key, "trustee_deal", deal), "wrong_phase")
    ok(send(officers, t1.key, "trustee_join", join))
    refused(send(officers, t1.key, "trustee_join", join), "already_joined")
    for t in trustees[1:]:
        box = {"poll_id": POLL, "box_key": bytes(t.box.public_key).hex()}
        ok(send(officers, t.key, "trustee_join", box))
    assert chain.query("polls", "poll", {"poll_id": POLL})["phase"] == "dealing"
    dealing = dkg.deal(K, N)
    context = share_context(chain.chain_id, POLL)
    shares = {
        str(o.j): dkg.encrypt_share(
            bytes(o.box.public_key), 1, o.j, dealing.share_for(o.j), context
        )
        for o in trustees[1:]
    }
    good = [group.point_hex(c) for c in dealing.commitments]
    proof = possession(dealing, 1, chain.chain_id, POLL)
    other = dkg.deal(K, N)
    bad_deals = [
        # A proof for another dealing, for another dealer number, or for another poll.
        (
            {
                "commitments": good,
                "shares": shares,
                "possession": possession(other, 1, chain.chain_id, POLL),
            },
            "bad_possession_proof",
        ),
        (
            {
                "commitments": good,
                "shares": shares,
                "possession": possession(dealing, 2, chain.chain_id, POLL),
            },
            "bad_possession_proof",
        ),
        (
            {
                "commitments": good,
                "shares": shares,
                "possession": possession(dealing, 1, chain.chain_id, "other-poll"),
            },
            "bad_possession_proof",
        ),
        ({"commitments": good[:2], "shares": shares, "possession": proof}, "bad_commitments"),
        (
            {"commitments": [*good[:2], "00" * 32], "shares": shares, "possession": proof},
            "bad_commitments",
        ),
        (
            {"commitments": good, "shares": {**shares, "1": shares["2"]}, "possession": proof},
            "bad_shares",
        ),
        (
            {
                "commitments": good,
                "shares": {k: v for k, v in shares.items() if k != "5"},
                "possession": proof,
            },
            "bad_shares",
        ),
        (
            {"commitments": good, "shares": {**shares, "5": "not base64!"}, "possession": proof},
            "bad_shares",
        ),
    ]
    for change, reason in bad_deals:
        refused(send(officers, t1.key, "trustee_deal", {"poll_id": POLL, **change}), reason)
    ok(
        send(
            officers,
            t1.key,
            "trustee_deal",
            {"poll_id": POLL, "commitments": good, "shares": shares, "possession": proof},
        )
    )
    refused(
        send(
            officers,
            t1.key,
            "trustee_deal",
            {"poll_id": POLL, "commitments": good, "shares": shares, "possession": proof},
        ),
        "already_dealt",
    )
    # Not all dealt yet: no acknowledgements.
    refused(
        send(officers, t2.key, "trustee_ack", {"poll_id": POLL, "complaints": []}), "wrong_phase"
    )
    # The ceremony cannot run into the voting period.
    refused(
        send(
            officers,
            t2.key,
            "trustee_join",
            {"poll_id": POLL, "box_key": "11" * 32},
            at=poll["opens_ms"],
        ),
        "ceremony_closed",
    )


def test_a_complaint_fails_the_poll(city: City, chain: Chain, officers: Ledger) -> None:
    trustees = make_trustees(3)
    poll = create(city, chain, officers, trustees, 2)
    context = share_context(chain.chain_id, POLL)
    for t in trustees:
        ok(
            send(
                officers,
                t.key,
                "trustee_join",
                {"poll_id": POLL, "box_key": bytes(t.box.public_key).hex()},
            )
        )
    for t in trustees:
        t.dealing = dkg.deal(2, 3)
        shares = {
            str(o.j): dkg.encrypt_share(
                bytes(o.box.public_key), t.j, o.j, t.dealing.share_for(o.j), context
            )
            for o in trustees
            if o.j != t.j
        }
        commitments = [group.point_hex(c) for c in t.dealing.commitments]
        ok(
            send(
                officers,
                t.key,
                "trustee_deal",
                {
                    "poll_id": POLL,
                    "commitments": commitments,
                    "shares": shares,
                    "possession": possession(t.dealing, t.j, chain.chain_id, POLL),
                },
            )
        )
    for complaints in ([1], [4], [0], [2, 2]):
        refused(
            send(
                officers,
                trustees[0].key,
                "trustee_ack",
                {"poll_id": POLL, "complaints": complaints},
            ),
            "bad_complaint",
        )
    ok(send(officers, trustees[1].key, "trustee_ack", {"poll_id": POLL, "complaints": []}))
    receipt = send(officers, trustees[0].key, "trustee_ack", {"poll_id": POLL, "complaints": [3]})
    ok(receipt)
    assert ("ceremony_phase", {"poll_id": POLL, "phase": "failed"}) in [
        (e.name, e.data) for e in receipt.events
    ]
    record = chain.query("polls", "poll", {"poll_id": POLL})
    assert (record["phase"], record["public_key"]) == ("failed", None)
    assert "trustee 1" in record["failure"]
    refused(
        send(officers, trustees[2].key, "trustee_ack", {"poll_id": POLL, "complaints": []}),
        "wrong_phase",
    )
    register(city, officers, "ana", "jongno")
    refused(
        send(
            officers,
            voter("ana"),
            "cast_secret",
            {"poll_id": POLL, "ballot": {}},
            at=poll["opens_ms"],
        ),
        "key_not_ready",
    )


def test_a_dealer_cannot_cancel_the_others_key_without_knowing_it(
    city: City, chain: Chain, officers: Ledger
) -> None:
    """The last dealer posts C0 = -(the other's C0), which would make the joint key the
    identity (or, shifted, a key it knows); it cannot prove it knows log C0, so it is refused."""
    trustees = make_trustees(2)
    create(city, chain, officers, trustees, 1)
    for t in trustees:
        box = {"poll_id": POLL, "box_key": bytes(t.box.public_key).hex()}
        ok(send(officers, t.key, "trustee_join", box))
    honest = dkg.deal(1, 2)
    args = {
        "poll_id": POLL,
        "commitments": [group.point_hex(honest.commitments[0])],
        "shares": {"2": "c2VhbGVk"},
        "possession": possession(honest, 1, chain.chain_id, POLL),
    }
    ok(send(officers, trustees[0].key, "trustee_deal", args))
    rogue = dkg.deal(1, 2)  # its proof is for its own coefficient, not for the cancelling point
    cancelling = {
        "poll_id": POLL,
        "commitments": [group.point_hex(group.neg(honest.commitments[0]))],
        "shares": {"1": "c2VhbGVk"},
        "possession": possession(rogue, 2, chain.chain_id, POLL),
    }
    refused(send(officers, trustees[1].key, "trustee_deal", cancelling), "bad_possession_proof")
    record = chain.query("polls", "poll", {"poll_id": POLL})
    assert record["phase"] == "dealing"


def test_unfinished_ceremony_means_no_votes(city: City, chain: Chain, officers: Ledger) -> None:
    trustees = make_trustees(2)
    poll = create(city, chain, officers, trustees, 2)
    register(city, officers, "ana", "jongno")
    refused(
        send(
            officers,
            voter("ana"),
            "cast_secret",
            {"poll_id": POLL, "ballot": {}},
            at=poll["opens_ms"],
        ),
        "key_not_ready",
    )
    refused(send(officers, voter("ana"), "cast", {"poll_id": POLL, "choices": [0]}), "wrong_mode")


# -- voting and the result ----------------------------------------------------------------------


def test_secret_poll_end_to_end_3_of_5(city: City, chain: Chain, officers: Ledger) -> None:
    trustees = make_trustees(N)
    poll = create(city, chain, officers, trustees, K)
    ceremony(chain, officers, trustees)
    votes = {"ana": [1, 0, 0], "ben": [0, 0, 1], "cho": [0, 0, 1], "dan": [0, 1, 0]}
    for label, district in (("ana", "jongno"), ("ben", "jongno"), ("cho", "mapo"), ("dan", "mapo")):
        register(city, officers, label, district)
    early = {"poll_id": POLL, "ballot": ballot_for(chain, "ana", votes["ana"])}
    refused(send(officers, voter("ana"), "cast_secret", early), "poll_not_open")

    start = poll["opens_ms"]
    receipts = {}
    for n, (label, choices) in enumerate(votes.items()):
        args = {"poll_id": POLL, "ballot": ballot_for(chain, label, choices)}
        receipts[label] = send(officers, voter(label), "cast_secret", args, at=start + n)
        ok(receipts[label])
    # Events carry turnout, district and tracking code, never a choice.
    event = receipts["dan"].events[0]
    assert event.name == "vote_cast"
    assert set(event.data) == {"poll_id", "turnout", "district", "tracking_code"}
    assert (event.data["turnout"], event.data["district"]) == (4, "mapo")
    assert "ballot" not in receipts["dan"].result
    stored = chain.query("polls", "ballot", {"poll_id": POLL, "pseudonym": pseudonym("dan")})
    assert stored["tracking_code"] == event.data["tracking_code"]
    assert "choices" not in stored
    # Live results hidden, live turnout public.
    assert chain.query("polls", "tally", {"poll_id": POLL}) is None
    turnout = chain.query("polls", "turnout", {"poll_id": POLL})
    assert turnout["voted"] == 4
    assert turnout["by_district"]["mapo"] == {"registered": 2, "voted": 2}

    # Ana changes her vote: the aggregate must drop the old ballot.
    votes["ana"] = [0, 1, 0]
    ok(
        send(
            officers,
            voter("ana"),
            "cast_secret",
            {"poll_id": POLL, "ballot": ballot_for(chain, "ana", votes["ana"])},
        )
    )
    assert chain.query("polls", "poll", {"poll_id": POLL})["voted"] == 4

    # Bad ballots, each refused with the crypto module's reason.
    ben_ballot = ballot_for(chain, "ben", [1, 0, 0])
    two_options = ballot_for(chain, "cho", [1, 0])
    three_picks = ballot_for(chain, "cho", [1, 1, 1], min_selections=0, max_selections=3)
    flipped = ballot_for(chain, "cho", [1, 0, 0])
    flipped["selections"][0], flipped["selections"][1] = (
        flipped["selections"][1],
        flipped["selections"][0],
    )
    for ballot, reason in (
        ({}, "malformed_ballot"),
        (ben_ballot, "bad_selection_proof"),  # Ben's ballot replayed by Cho's key.
        (two_options, "wrong_option_count"),
        (three_picks, "bad_total_proof"),
        (flipped, "bad_selection_proof"),
    ):
        refused(
            send(officers, voter("cho"), "cast_secret", {"poll_id": POLL, "ballot": ballot}), reason
        )
    refused(
        send(officers, voter("nobody"), "cast_secret", {"poll_id": POLL, "ballot": ben_ballot}),
        "not_registered",
    )

    # Partial decryptions only after closing.
    t1, t2, t3, t4, t5 = trustees
    refused(
        send(
            officers, t1.key, "decrypt_share", {"poll_id": POLL, "partials": partials_of(chain, t1)}
        ),
        "poll_not_closed",
    )
    closes = poll["closes_ms"]
    late = {"poll_id": POLL, "ballot": ballot_for(chain, "cho", [1, 0, 0])}
    refused(send(officers, voter("cho"), "cast_secret", late, at=closes), "poll_closed")

    # A wrong partial: trustee 2's share computed with a wrong secret, or for another option.
    assert t2.secret is not None
    good = partials_of(chain, t2)
    cheat = Trustee(t2.j, t2.key, t2.box, secret=(t2.secret + 1) % group.L)
    refused(
        send(
            officers,
            t2.key,
            "decrypt_share",
            {"poll_id": POLL, "partials": partials_of(chain, cheat)},
        ),
        "bad_partial",
    )
    swapped = [good[1], good[0], good[2]]
    refused(
        send(officers, t2.key, "decrypt_share", {"poll_id": POLL, "partials": swapped}),
        "bad_partial",
    )
    refused(
        send(officers, t2.key, "decrypt_share", {"poll_id": POLL, "partials": good[:2]}),
        "bad_partial",
    )
    refused(
        send(officers, city.outsider, "decrypt_share", {"poll_id": POLL, "partials": good}),
        "not_trustee",
    )
    # Trustees 5, 2 and 4 decrypt (not in order); 1 posts too, later.
    ok(
        send(
            officers, t5.key, "decrypt_share", {"poll_id": POLL, "partials": partials_of(chain, t5)}
        )
    )
    ok(send(officers, t2.key, "decrypt_share", {"poll_id": POLL, "partials": good}))
    refused(
        send(officers, t2.key, "decrypt_share", {"poll_id": POLL, "partials": good}), "share_exists"
    )
    refused(
        send(officers, t3.key, "publish_result", {"poll_id": POLL, "counts": [0, 2, 2]}),
        "not_enough_shares",
    )
    ok(
        send(
            officers, t4.key, "decrypt_share", {"poll_id": POLL, "partials": partials_of(chain, t4)}
        )
    )
    ok(
        send(
            officers, t1.key, "decrypt_share", {"poll_id": POLL, "partials": partials_of(chain, t1)}
        )
    )
    assert [p["trustee"] for p in chain.query("polls", "partials", {"poll_id": POLL})] == [
        1,
        2,
        4,
        5,
    ]

    counts = counts_from_ledger(chain)
    expected = [sum(column) for column in zip(*votes.values(), strict=True)]
    assert counts == expected == [0, 2, 2]
    assert chain.query("polls", "tally", {"poll_id": POLL}) is None
    for wrong in ([2, 0, 2], [0, 2, 1], [0, 2, 3], [-1, 3, 2]):
        refused(
            send(officers, t3.key, "publish_result", {"poll_id": POLL, "counts": wrong}),
            "wrong_result",
        )
    refused(
        send(officers, t3.key, "publish_result", {"poll_id": POLL, "counts": [0, 2]}),
        "wrong_result",
    )
    refused(
        send(officers, city.outsider, "publish_result", {"poll_id": POLL, "counts": counts}),
        "not_allowed",
    )
    result = ok(send(officers, city.clerk, "publish_result", {"poll_id": POLL, "counts": counts}))
    assert (result["counts"], result["voted"], result["trustees"]) == ([0, 2, 2], 4, [1, 2, 4])
    assert chain.query("polls", "tally", {"poll_id": POLL}) == result
    refused(
        send(officers, t3.key, "publish_result", {"poll_id": POLL, "counts": counts}),
        "result_exists",
    )


def test_no_ballots_gives_all_zeros(city: City, chain: Chain, officers: Ledger) -> None:
    trustees = make_trustees(2)
    poll = create(city, chain, officers, trustees, 2, options=2)
    ceremony(chain, officers, trustees)
    at = poll["closes_ms"]
    for t in trustees:
        ok(
            send(
                officers,
                t.key,
                "decrypt_share",
                {"poll_id": POLL, "partials": partials_of(chain, t)},
                at=at,
            )
        )
        at += 1
    assert counts_from_ledger(chain) == [0, 0]
    refused(
        send(officers, city.clerk, "publish_result", {"poll_id": POLL, "counts": [1, 0]}),
        "wrong_result",
    )
    result = ok(send(officers, city.clerk, "publish_result", {"poll_id": POLL, "counts": [0, 0]}))
    assert result["counts"] == [0, 0]


def test_result_before_closing_and_malformed_partials(
    city: City, chain: Chain, officers: Ledger
) -> None:
    trustees = make_trustees(2)
    create(city, chain, officers, trustees, 1)
    refused(
        send(officers, trustees[0].key, "publish_result", {"poll_id": POLL, "counts": [0, 0, 0]}),
        "poll_not_closed",
    )
    with pytest.raises(TxRejected) as e:
        send(
            officers,
            trustees[0].key,
            "decrypt_share",
            {"poll_id": POLL, "partials": [{"D": "zz", "proof": {}}]},
        )
    assert e.value.reason == "invalid_args"
