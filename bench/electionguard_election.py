"""The bench's election through ElectionGuard 1.4; run by bench/voting.py with Python 3.9.

One contest, 3 options, select 1; 5 guardians, quorum 3 (key ceremony); N ballots encrypted,
cast (the ballot box checks every proof), tallied; 3 guardians decrypt, compensating for the two
missing ones. Prints one JSON line of timings. Not part of the package (it imports electionguard,
which does not import on Python 3.11).

Usage: <python3.9 venv>/bin/python bench/electionguard_election.py N
"""

import json
import logging
import sys
import time
from datetime import datetime

from electionguard.ballot import PlaintextBallot, PlaintextBallotContest, PlaintextBallotSelection
from electionguard.ballot_box import BallotBox
from electionguard.constants import get_large_prime
from electionguard.data_store import DataStore
from electionguard.decryption_mediator import DecryptionMediator
from electionguard.encrypt import EncryptionDevice, EncryptionMediator, generate_device_uuid
from electionguard.key_ceremony import CeremonyDetails
from electionguard.key_ceremony_mediator import KeyCeremonyMediator
from electionguard.manifest import (
    BallotStyle,
    Candidate,
    CandidateContestDescription,
    ElectionType,
    GeopoliticalUnit,
    Manifest,
    ReportingUnitType,
    SelectionDescription,
    SpecVersion,
    VoteVariationType,
)
from electionguard.tally import tally_ballots
from electionguard_tools.helpers.election_builder import ElectionBuilder
from electionguard_tools.helpers.key_ceremony_orchestrator import KeyCeremonyOrchestrator
from electionguard_tools.helpers.tally_ceremony_orchestrator import TallyCeremonyOrchestrator

OPTIONS, QUORUM, GUARDIANS = 3, 3, 5


def manifest() -> Manifest:
    style = BallotStyle("style")
    style.geopolitical_unit_ids = ["city"]
    selections = [SelectionDescription(f"option-{i}", i, f"candidate-{i}") for i in range(OPTIONS)]
    contest = CandidateContestDescription(
        "budget", 0, "city", VoteVariationType.one_of_m, 1, 1, "Budget", selections
    )
    return Manifest(
        election_scope_id="bench",
        spec_version=SpecVersion.EG0_95,
        type=ElectionType.unknown,
        start_date=datetime.now(),
        end_date=datetime.now(),
        geopolitical_units=[GeopoliticalUnit("city", "City", ReportingUnitType.unknown)],
        parties=[],
        candidates=[Candidate(f"candidate-{i}") for i in range(OPTIONS)],
        contests=[contest],
        ballot_styles=[style],
    )


def ballot(i: int) -> PlaintextBallot:
    pick = i % 7 % OPTIONS
    selections = [
        PlaintextBallotSelection(f"option-{o}", 1 if o == pick else 0, False)
        for o in range(OPTIONS)
    ]
    return PlaintextBallot(f"ballot-{i}", "style", [PlaintextBallotContest("budget", selections)])


def main() -> None:
    count = int(sys.argv[1])
    logging.disable(logging.INFO)  # ElectionGuard logs every hashed ElGamal encryption.
    election = manifest()
    start = time.perf_counter()
    details = CeremonyDetails(GUARDIANS, QUORUM)
    guardians = KeyCeremonyOrchestrator.create_guardians(details)
    key_mediator = KeyCeremonyMediator("mediator", details)
    KeyCeremonyOrchestrator.perform_full_ceremony(guardians, key_mediator)
    joint = key_mediator.publish_joint_key()
    assert joint is not None
    ceremony_s = time.perf_counter() - start
    builder = ElectionBuilder(GUARDIANS, QUORUM, election)
    builder.set_public_key(joint.joint_public_key)
    builder.set_commitment_hash(joint.commitment_hash)
    built = builder.build()
    assert built is not None
    internal, context = built
    device = EncryptionDevice(generate_device_uuid(), 12345, 45678, "bench")
    encrypter = EncryptionMediator(internal, context, device)
    plaintexts = [ballot(i) for i in range(count)]

    start = time.perf_counter()
    encrypted = [encrypter.encrypt(b) for b in plaintexts]
    encrypt_s = time.perf_counter() - start
    assert all(e is not None for e in encrypted)

    store: DataStore = DataStore()
    box = BallotBox(internal, context, store)
    start = time.perf_counter()
    for e in encrypted:
        assert box.cast(e) is not None  # validates every proof of the ballot
    verify_s = time.perf_counter() - start

    start = time.perf_counter()
    tally = tally_ballots(store, internal, context)
    assert tally is not None
    mediator = DecryptionMediator("decrypter", context)
    available = guardians[:QUORUM]
    TallyCeremonyOrchestrator.perform_compensated_decryption_setup(
        available, [g.share_key() for g in guardians], mediator, context, tally
    )
    plain = mediator.get_plaintext_tally(tally, election)
    tally_s = time.perf_counter() - start
    assert plain is not None
    counts = [plain.contests["budget"].selections[f"option-{o}"].tally for o in range(OPTIONS)]
    expected = [sum(1 for i in range(count) if i % 7 % OPTIONS == o) for o in range(OPTIONS)]
    assert counts == expected, (counts, expected)
    print(
        json.dumps(
            {
                "ballots": count,
                "ceremony_s": ceremony_s,
                "encrypt_s": encrypt_s,
                "verify_s": verify_s,
                "tally_s": tally_s,
                "counts": counts,
                "group": f"integers mod a {get_large_prime().bit_length()}-bit prime",
            }
        )
    )


if __name__ == "__main__":
    main()
