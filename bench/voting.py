"""Secret-poll voting against this machine's raw curve speed, measured in the same run.

A secret poll of 3 options (select exactly 1) with 3-of-5 trustees. Prints:
- baselines: raw libsodium Ed25519 scalar multiplication (p^k) and signature verification rates;
- ballots/s to encrypt (``encrypt_ballot``) and to verify alone (``verify_ballot``), one core;
- ballots/s on submission: ``cast_secret`` through a real embedded node (a sample);
- for N ballots (default 100,000; generated on every core): the time to tally (the homomorphic
  sum, the partial decryptions with proofs, the combination and discrete logs) and to verify the
  whole poll (``audit_poll``: every ballot proof, the sum, every decryption proof, the result),
  ballot work spread over every core;
- peak memory of this process and of its largest worker;
- if a Python 3.9 is found, the same election through ElectionGuard 1.4 (``bench/
  electionguard_election.py``, in a venv under ``.bench/``) and the ratios.

Usage: python bench/voting.py [--ballots 100000] [--sample 300] [--eg-ballots 1000] [--no-eg]
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import nacl.bindings

from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.genesis import Genesis, GenesisAgency
from civicledger.ledger.tx import sign_tx
from civicledger.node.chain import Chain
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.voting import dkg, dlog, elgamal, group
from civicledger.services.voting.audit import (
    LedgerTx,
    PollRecord,
    StoredView,
    audit_poll,
    sum_selections,
)
from civicledger.services.voting.ballot import (
    EncryptedBallot,
    ballot_context,
    encrypt_ballot,
    verify_ballot,
)
from civicledger.services.voting.polls import partial_context, possession_context

ROOT = Path(__file__).resolve().parent.parent
CHAIN_ID = "bench-city"
POLL = "bench-poll"
OPTIONS, K, N = 3, 3, 5
PY39 = Path("/root/.pyenv/versions/3.9.18/bin/python")
EG_VENV = ROOT / ".bench" / "electionguard-venv"

_T = TypeVar("_T")
_R = TypeVar("_R")


def raw_rates(count: int = 3000) -> tuple[float, float]:
    """Single-core libsodium: p^k scalar multiplications/s and Ed25519 verifications/s."""
    p = group.base_mul(group.random_scalar())
    ks = [group.random_scalar().to_bytes(32, "little") for _ in range(count)]
    key = PrivateKey.generate()
    signed = [key.sign(m) + m for m in (os.urandom(200) for _ in range(count * 4))]
    mul = verify = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for k in ks:
            nacl.bindings.crypto_scalarmult_ed25519_noclamp(k, p)
        mul = max(mul, count / (time.perf_counter() - start))
        start = time.perf_counter()
        for sm in signed:
            nacl.bindings.crypto_sign_open(sm, key.public.raw)
        verify = max(verify, len(signed) / (time.perf_counter() - start))
    return mul, verify


def trustees() -> tuple[group.Point, dict[int, int], dict[int, dkg.Dealing]]:
    """A 3-of-5 key ceremony in-process: the joint key, each x_j and each dealing."""
    dealings = {i: dkg.deal(K, N) for i in range(1, N + 1)}
    secrets = {j: sum(d.share_for(j) for d in dealings.values()) % group.L for j in dealings}
    commitments = {i: list(d.commitments) for i, d in dealings.items()}
    return dkg.joint_public_key(commitments), secrets, dealings


def voter_did(i: int) -> str:
    return f"did:key:bench-voter-{i:07d}"


def choice(i: int) -> list[int]:
    return [1 if i % 7 % OPTIONS == o else 0 for o in range(OPTIONS)]


def make_ballots(job: tuple[bytes, int, int]) -> list[dict[str, Any]]:
    """Worker: encrypted ballots of voters ``first..last-1`` (JSON)."""
    pk, first, last = job
    return [
        encrypt_ballot(
            pk,
            choice(i),
            min_selections=1,
            max_selections=1,
            context=ballot_context(CHAIN_ID, POLL, voter_did(i)),
        )[0].to_json()
        for i in range(first, last)
    ]


def rate(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - start)


# -- the contract path through a real embedded node ------------------------------------------


def submission_rate(sample: int) -> tuple[float, int]:
    """``cast_secret`` ballots/s through an embedded node (durable receipts), and how many ok."""
    root, producer, officer, registrar = (PrivateKey.generate() for _ in range(4))
    trustee_keys = [PrivateKey.generate() for _ in range(N)]
    voters = [PrivateKey.generate() for _ in range(sample)]
    now = int(time.time() * 1000)
    genesis = Genesis(
        chain_id=CHAIN_ID,
        city="Bench City",
        time_ms=now - 3_600_000,
        root_authorities=(root.public.did,),
        producers=(producer.public.did,),
        agencies=(
            GenesisAgency(id="city-hall", name="City Hall", keys=(officer.public.did,), roles=()),
            GenesisAgency(id="district-office", name="District", keys=(registrar.public.did,)),
        ),
    )
    nonces: dict[str, int] = {}

    def tx(key: PrivateKey, contract: str, method: str, args: dict[str, Any]) -> Any:
        nonce = nonces[key.public.did] = nonces.get(key.public.did, 0) + 1
        return sign_tx(
            key,
            chain_id=CHAIN_ID,
            nonce=nonce,
            contract=contract,
            method=method,
            args=args,
            expires_at=now + 7_200_000,
        )

    with tempfile.TemporaryDirectory(prefix="civic-bench-vote-") as tmp:
        data = Path(tmp) / "data"
        Chain.create(data, genesis, producer).close()
        chain = Chain(data)
        clock = [genesis.time_ms]

        def block(*txs: Any) -> None:
            clock[0] += 1000
            done = chain.produce_block([chain.prepare(t) for t in txs], clock[0], producer)
            assert done is not None
            assert not done.dropped
            assert all(i.receipt.ok for i in done.included), done.included[0].receipt

        grant = {"agency": "city-hall", "role": "poll_officer"}
        block(tx(root, "governance", "grant_role", grant))
        text = {"ko": "예산", "en": "Budget"}
        block(
            tx(
                officer,
                "polls",
                "create",
                {
                    "poll_id": POLL,
                    "question": text,
                    "options": [text] * OPTIONS,
                    "min_selections": 1,
                    "max_selections": 1,
                    "mode": "secret",
                    "eligibility": {"credential_type": "ResidentCard"},
                    "registrar": "district-office",
                    "opens_ms": genesis.time_ms + 600_000,
                    "closes_ms": now + 3_600_000,
                    "rules": text,
                    "trustees": [t.public.did for t in trustee_keys],
                    "threshold": K,
                },
            )
        )
        block(
            *(
                tx(t, "polls", "trustee_join", {"poll_id": POLL, "box_key": "11" * 32})
                for t in trustee_keys
            )
        )
        deals = []
        for j, t in enumerate(trustee_keys, start=1):
            dealing = dkg.deal(K, N)
            proof = dkg.prove_possession(dealing, j, possession_context(CHAIN_ID, POLL))
            args = {
                "poll_id": POLL,
                "commitments": [group.point_hex(c) for c in dealing.commitments],
                "shares": {str(o): "c2VhbGVk" for o in range(1, N + 1) if o != j},
                "possession": proof.to_json(),
            }
            deals.append(tx(t, "polls", "trustee_deal", args))
        block(*deals)
        block(
            *(
                tx(t, "polls", "trustee_ack", {"poll_id": POLL, "complaints": []})
                for t in trustee_keys
            )
        )
        block(
            *(
                tx(
                    registrar,
                    "polls",
                    "register_voter",
                    {
                        "poll_id": POLL,
                        "pseudonym": f"{i:064x}",
                        "voter_key": v.public.did,
                        "district": "jongno",
                    },
                )
                for i, v in enumerate(voters)
            )
        )
        pk = group.point_from_hex(chain.query("polls", "poll", {"poll_id": POLL})["public_key"])
        chain.close()
        raws = []
        for i, v in enumerate(voters):
            context = ballot_context(CHAIN_ID, POLL, v.public.did)
            ballot, _ = encrypt_ballot(
                pk, choice(i), min_selections=1, max_selections=1, context=context
            )
            cast = {"poll_id": POLL, "ballot": ballot.to_json()}
            raws.append(tx(v, "polls", "cast_secret", cast).envelope_bytes())
        with EmbeddedNode(data, producer) as node:
            start = time.perf_counter()
            receipts = [f.result() for f in node.submit_many(raws)]
            elapsed = time.perf_counter() - start
    return len(raws) / elapsed, sum(r.ok for r in receipts)


# -- the whole poll, N ballots ------------------------------------------------------------------


def pool_mapper(pool: Any, chunksize: int) -> Callable[[Callable[[_T], _R], Iterable[_T]], Any]:
    def run(fn: Callable[[_T], _R], items: Iterable[_T]) -> Any:
        return pool.imap(fn, items, chunksize)

    return run


def big_poll(count: int, pool: Any) -> dict[str, float]:
    pk, secrets, dealings = trustees()
    step = 500
    start = time.perf_counter()
    jobs = [(pk, i, min(i + step, count)) for i in range(0, count, step)]
    ballots = [b for chunk in pool.imap(make_ballots, jobs) for b in chunk]
    generate_s = time.perf_counter() - start
    print(f"generated {count:,} ballots on {os.cpu_count()} cores in {generate_s:.0f} s")

    # The tally: homomorphic sum (on every core), k partial decryptions with proofs, dlogs.
    start = time.perf_counter()
    chunks = [ballots[i : i + 2000] for i in range(0, count, 2000)]
    aggregate = [elgamal.ZERO] * OPTIONS
    for sums in pool.imap(sum_selections, chunks):
        aggregate = [
            elgamal.add(a, elgamal.Ciphertext(x, y))
            for a, (x, y) in zip(aggregate, sums, strict=True)
        ]
    sum_s = time.perf_counter() - start
    partials: dict[int, list[dict[str, Any]]] = {}
    for j in (1, 2, 3):
        partials[j] = []
        for i, ct in enumerate(aggregate):
            d, proof = dkg.partial_decrypt(
                secrets[j], ct.alpha, partial_context(CHAIN_ID, POLL, j, i)
            )
            partials[j].append({"D": group.point_hex(d), "proof": proof.to_json()})
    counts = []
    for i, ct in enumerate(aggregate):
        shares = {
            j: group.point_from_hex(partials[j][i]["D"], allow_identity=True) for j in partials
        }
        counts.append(dlog.solve(group.sub(ct.beta, dkg.combine_partials(shares)), count))
    tally_s = time.perf_counter() - start
    expected = [sum(choice(i)[o] for i in range(count)) for o in range(OPTIONS)]
    assert counts == expected, (counts, expected)
    print(f"tally of {count:,} ballots: {tally_s:.1f} s (the sum {sum_s:.1f} s), counts {counts}")

    record = synthetic_record(ballots, pk, dealings, aggregate, partials, counts)
    del ballots, chunks
    start = time.perf_counter()
    report = audit_poll(record, {REGISTRAR}, mapper=pool_mapper(pool, 64))
    verify_s = time.perf_counter() - start
    assert report.ok, report.failures
    print(
        f"verify the whole poll ({count:,} ballot proofs, sum, decryption proofs, result): "
        f"{verify_s:.0f} s, {len(report.checks)} checks ok"
    )
    return {"generate_s": generate_s, "tally_s": tally_s, "sum_s": sum_s, "verify_s": verify_s}


REGISTRAR = "did:key:bench-registrar"


def synthetic_record(
    ballots: list[dict[str, Any]],
    pk: group.Point,
    dealings: dict[int, dkg.Dealing],
    aggregate: list[elgamal.Ciphertext],
    partials: dict[int, list[dict[str, Any]]],
    counts: list[int],
) -> PollRecord:
    """What ``gather_poll_record`` would give for this poll (the audit re-derives the rest)."""
    trustee_dids = [f"did:key:bench-trustee-{j}" for j in range(1, N + 1)]
    opens, closes = 2_000_000, 3_000_000
    height = [0]

    def entry(method: str, args: dict[str, Any], signer: str, time_ms: int) -> LedgerTx:
        height[0] += 1
        return LedgerTx(method, args, signer, time_ms, height[0], 0, f"{height[0]:064x}")

    create = entry(
        "create",
        {
            "poll_id": POLL,
            "mode": "secret",
            "options": [{}] * OPTIONS,
            "min_selections": 1,
            "max_selections": 1,
            "opens_ms": opens,
            "closes_ms": closes,
            "eligibility": {"districts": []},
            "trustees": trustee_dids,
            "threshold": K,
        },
        "did:key:bench-officer",
        1_000_000,
    )
    context = possession_context(CHAIN_ID, POLL)
    joins = tuple(entry("trustee_join", {}, did, 1_100_000) for did in trustee_dids)
    deals = tuple(
        entry(
            "trustee_deal",
            {
                "commitments": [group.point_hex(c) for c in dealing.commitments],
                "possession": dkg.prove_possession(dealing, j, context).to_json(),
            },
            trustee_dids[j - 1],
            1_200_000,
        )
        for j, dealing in dealings.items()
    )
    acks = tuple(entry("trustee_ack", {"complaints": []}, did, 1_300_000) for did in trustee_dids)
    registrations = tuple(
        entry(
            "register_voter",
            {"pseudonym": f"{i:064x}", "voter_key": voter_did(i), "district": "jongno"},
            REGISTRAR,
            1_400_000,
        )
        for i in range(len(ballots))
    )
    casts = tuple(
        entry("cast_secret", {"ballot": ballot}, voter_did(i), opens + i % 1000)
        for i, ballot in enumerate(ballots)
    )
    decrypts = tuple(
        entry("decrypt_share", {"partials": partials[j]}, trustee_dids[j - 1], closes)
        for j in sorted(partials)
    )
    publication = entry("publish_result", {"counts": counts}, trustee_dids[0], closes + 1)
    commitments = {j: list(d.commitments) for j, d in dealings.items()}
    stored = StoredView(
        phase="ready",
        public_key=group.point_hex(pk),
        registered=len(ballots),
        voted=len(ballots),
        aggregate=tuple(c.to_json() for c in aggregate),
        tally=tuple(counts),
        verification_keys={
            j: group.point_hex(dkg.verification_key(commitments, j)) for j in dealings
        },
    )
    return PollRecord(
        poll_id=POLL,
        chain_id=CHAIN_ID,
        create=create,
        joins=joins,
        deals=deals,
        acks=acks,
        registrations=registrations,
        casts=casts,
        partials=decrypts,
        publications=(publication,),
        stored=stored,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=300, help="ballots timed one by one")
    parser.add_argument("--eg-ballots", type=int, default=200)
    parser.add_argument("--no-eg", action="store_true", help="skip ElectionGuard")
    args = parser.parse_args()
    total = time.perf_counter()
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores; a secret poll of {OPTIONS} options, select 1, {K}-of-{N}")
    mul, sig = raw_rates()
    print(f"raw libsodium p^k (scalarmult_ed25519_noclamp), 1 core: {mul:,.0f} /s")
    print(f"raw libsodium Ed25519 signature verify, 1 core:        {sig:,.0f} /s")

    pk, _, _ = trustees()
    contexts = [ballot_context(CHAIN_ID, POLL, voter_did(i)) for i in range(args.sample)]
    encrypted: list[EncryptedBallot] = []

    def enc(i: int) -> None:
        ballot, _ = encrypt_ballot(
            pk, choice(i), min_selections=1, max_selections=1, context=contexts[i]
        )
        encrypted.append(ballot)

    encrypt_rate = rate(enc, range(args.sample))

    def ver(i: int) -> None:
        verify_ballot(
            pk,
            encrypted[i],
            options=OPTIONS,
            min_selections=1,
            max_selections=1,
            context=contexts[i],
        )

    verify_rate = rate(ver, range(args.sample))
    submit_rate, submitted_ok = submission_rate(args.sample)
    rows = [
        ("encrypt a ballot (encrypt_ballot), 1 core", encrypt_rate),
        ("verify a ballot (verify_ballot), 1 core", verify_rate),
        (f"cast_secret through an embedded node ({submitted_ok} ok)", submit_rate),
    ]
    print(f"\n{'operation':<52} {'ballots/s':>10} {'ms':>7} {'p^k per ballot':>15}")
    for label, r in rows:
        print(f"{label:<52} {r:>10,.0f} {1e3 / r:>7.2f} {mul / r:>15.1f}")

    with multiprocessing.Pool(cores) as pool:
        big = big_poll(args.ballots, pool)
    per_core = args.ballots / big["verify_s"] / cores
    print(
        f"verify throughput: {args.ballots / big['verify_s']:,.0f} ballots/s on {cores} cores "
        f"({per_core / verify_rate:.2f} of the single-core verify_ballot rate per core)"
    )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory: {own:.0f} MiB (this process), {children:.0f} MiB (largest worker)")

    ours = {
        "encrypt_per_s": encrypt_rate,
        "tally_s_per_1000": big["tally_s"] / args.ballots * 1000,
        "verify_s_per_1000": big["verify_s"] / args.ballots * 1000 * cores,
    }
    if not args.no_eg:
        electionguard(args.eg_ballots, ours)
    print(f"\ntotal {time.perf_counter() - total:.0f} s")


def electionguard(count: int, ours: dict[str, float]) -> None:
    """Run the same election through ElectionGuard 1.4 (Python 3.9 only) and print ratios."""
    print(f"\nElectionGuard 1.4, the same election with {count:,} ballots:")
    python = shutil.which("python3.9") or (str(PY39) if PY39.exists() else None)
    if python is None:
        print("  skipped: no Python 3.9 here (electionguard 1.4 fails to import on 3.11)")
        return
    venv_python = EG_VENV / "bin" / "python"
    try:
        if not venv_python.exists():
            subprocess.run([python, "-m", "venv", str(EG_VENV)], check=True)
        probe = subprocess.run(
            [str(venv_python), "-c", "import electionguard, electionguard_tools"], check=False
        )
        if probe.returncode != 0:
            subprocess.run(
                # electionguard_tools (its test helpers) imports hypothesis.
                [
                    str(venv_python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "electionguard==1.4.0",
                    "hypothesis",
                ],
                check=True,
            )
        done = subprocess.run(
            [str(venv_python), str(ROOT / "bench" / "electionguard_election.py"), str(count)],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", None) or str(e)
        print(f"  skipped: ElectionGuard did not install or run: {str(detail).strip()[-400:]}")
        return
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    eg_encrypt = count / theirs["encrypt_s"]
    eg_tally = theirs["tally_s"] / count * 1000
    eg_verify = theirs["verify_s"] / count * 1000
    print(f"  key ceremony (5 guardians, quorum 3): {theirs['ceremony_s']:.2f} s")
    print(
        f"  encrypt: {eg_encrypt:,.1f} ballots/s, 1 core; ours / theirs = "
        f"{ours['encrypt_per_s'] / eg_encrypt:.1f}x"
    )
    print(
        f"  tally (sum + decryption shares + combine), per 1,000 ballots: {eg_tally:.2f} s; "
        f"theirs / ours = {eg_tally / ours['tally_s_per_1000']:.1f}x"
    )
    print(
        f"  verify the ballots' proofs (core-seconds per 1,000): {eg_verify:.1f} s; "
        f"theirs / ours = {eg_verify / ours['verify_s_per_1000']:.1f}x"
    )
    print(f"  counts {theirs['counts']}; group: {theirs['group']}")


if __name__ == "__main__":
    main()
