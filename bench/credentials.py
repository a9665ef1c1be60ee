"""Credential issue and verify rates for both formats, against raw Ed25519 in the same run.

Prints credentials/s, single thread, for:
- W3C VC 2.0 Data Integrity ``eddsa-jcs-2022`` (``data_integrity``): issue and verify, with a
  ``did:key`` issuer (resolved in-process; no ledger, no registry);
- SD-JWT VC (``sdjwt``): issue (5 selectively disclosable claims, holder key in ``cnf``),
  present (2 disclosures plus an EdDSA Key Binding JWT) and verify (issuer JWS, disclosures,
  KB-JWT);
each with its ratio to the raw single-core libsodium Ed25519 sign or verify rate measured in
the same run (``raw_verify_rate`` from ``ledger_throughput``; the sign rate likewise), and
the time per credential that is not Ed25519 (canonicalisation, JOSE, parsing, checks).
Every operation does one Ed25519 signature or verification, except an SD-JWT verify, which
does two (issuer JWS and KB-JWT).

Unless ``--no-desk``, it then issues resident cards (SD-JWT VC) through the agency desk
(``IdentityDesk(NodeLedger(...))`` over an embedded node on a fresh city in a temporary
directory): status index allocation and its record in the agency's ``issuer.sqlite`` (one
fsync'd commit each), the DID and grant checks against the ledger, and the signature. It times
``--desk-sample`` issuances once ``--desk-at`` credentials (default 1,000 and 20,000) have been
issued, and prints each rate with its ratio to the library-only SD-JWT issue rate of this run.

Both formats carry the same subject claims (a resident card: name, birthdate, address,
district, age over 19). Each figure is the best of ``--repeats`` passes over the same inputs.
Unless ``--no-profile``, one cProfile pass over each SD-JWT operation then shows which
packages its time goes to (cProfile slows every call, so only the shares are meaningful).

Usage: python bench/credentials.py [--count 2000] [--repeats 3] [--no-profile]
                                  [--desk-at 1000,20000] [--desk-sample 500] [--no-desk]
Figures are printed, never asserted: timings vary with the machine.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nacl.bindings
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.issuer import create_did, grant_issuer
from civicledger.agency.ledger import CityLedger, NodeLedger
from civicledger.city import NODE_KEY, AgencySpec, create_city, load_key
from civicledger.crypto.encoding import canonical_json
from civicledger.crypto.keys import PrivateKey, PublicKey
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.identity import data_integrity, sdjwt
from civicledger.services.identity.vc import VC_V2_CONTEXT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger_throughput import raw_verify_rate  # bench/ is not a package

ISSUED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = ISSUED + timedelta(days=30)
ISS = "did:web:bench.city.example"
VCT = "https://bench.city.example/credentials/resident-card"
AUDIENCE = "https://library.bench.city.example"
NONCE = "n-4f1c2a"
CLAIMS: dict[str, Any] = {
    "given_name": "Ji-woo",
    "birthdate": "2001-03-14",
    "address": {"street_address": "Worldcup-ro 212", "locality": "Mapo-gu"},
    "district": "mapo-gu",
    "age_over_19": True,
}
DISCLOSABLE = ("given_name", "birthdate", "address", "district", "age_over_19")
DISCLOSE = ("district", "age_over_19")


def raw_sign_rate(count: int = 20_000) -> float:
    """Single-core libsodium Ed25519 signatures per second (200-byte message), best of 3."""
    secret = nacl.bindings.crypto_sign_seed_keypair(os.urandom(32))[1]
    messages = [os.urandom(200) for _ in range(count)]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for m in messages:
            nacl.bindings.crypto_sign(m, secret)
        best = max(best, count / (time.perf_counter() - start))
    return best


def openssl_rates(count: int = 20_000) -> tuple[float, float]:
    """Single-core Ed25519 sign and verify per second through ``cryptography`` (OpenSSL), the
    backend jwcrypto signs and verifies JWS with; key objects loaded once, best of 3."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    messages = [os.urandom(200) for _ in range(count)]
    signatures = [key.sign(m) for m in messages]
    best_sign = best_verify = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for m in messages:
            key.sign(m)
        best_sign = max(best_sign, count / (time.perf_counter() - start))
        start = time.perf_counter()
        for m, sig in zip(messages, signatures, strict=True):
            public.verify(sig, m)
        best_verify = max(best_verify, count / (time.perf_counter() - start))
    return best_sign, best_verify


RESIDENT = {
    "given_name": "Ji-woo",
    "family_name": "Park",
    "birthdate": "2001-03-14",
    "address": "Worldcup-ro 212, Mapo-gu",
    "district": "mapo-gu",
}


def desk_rates(checkpoints: Sequence[int], sample: int) -> list[tuple[int, float]]:
    """Resident cards issued per second through the agency desk, ``sample`` issuances timed
    from each of ``checkpoints`` (credentials already issued), on a fresh city."""
    agency = "city-hall"
    total = max(checkpoints) + sample
    holders = [PrivateKey.from_seed(i.to_bytes(32, "big")).public.did for i in range(1, total + 1)]
    rates: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="civic-bench-desk-") as scratch:
        city = create_city(
            Path(scratch) / "city",
            city="Bench",
            chain_id="bench-1",
            agencies=[AgencySpec(agency, "City Hall")],
        )
        create_did(CityLedger(city), agency)
        grant_issuer(CityLedger(city), agency, "ResidentCard")
        with EmbeddedNode(city.data_path, load_key(city.keystore, NODE_KEY, None)) as node:
            desk = IdentityDesk(NodeLedger(city, node), domain="https://bench.city.example")
            issued = 0
            for at in sorted(checkpoints):
                for holder in holders[issued:at]:
                    desk.issue(agency, "ResidentCard", holder, RESIDENT)
                start = time.perf_counter()
                for holder in holders[at : at + sample]:
                    desk.issue(agency, "ResidentCard", holder, RESIDENT)
                rates.append((at, sample / (time.perf_counter() - start)))
                issued = at + sample
    return rates


def best_rate(run: Callable[[Any], object], inputs: Sequence[Any], repeats: int) -> float:
    """Calls of ``run`` per second over ``inputs``, best of ``repeats`` passes."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for item in inputs:
            run(item)
        best = max(best, len(inputs) / (time.perf_counter() - start))
    return best


def di_credentials(issuer: PrivateKey, holders: Sequence[PrivateKey]) -> list[dict[str, Any]]:
    return [
        {
            "@context": [VC_V2_CONTEXT],
            "type": ["VerifiableCredential", "ResidentCredential"],
            "issuer": issuer.public.did,
            "validFrom": "2026-01-01T00:00:00Z",
            "validUntil": "2027-01-01T00:00:00Z",
            "credentialSubject": {"id": h.public.did, **CLAIMS},
        }
        for h in holders
    ]


def profile_by_package(run: Callable[[Any], object], inputs: Sequence[Any]) -> list[str]:
    """One cProfile pass; own time (tottime) summed per package, largest first."""
    profiler = cProfile.Profile()
    profiler.enable()
    for item in inputs:
        run(item)
    profiler.disable()
    stats = pstats.Stats(profiler)
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        totals[_package(filename, name)] += row[2]
    whole = sum(totals.values())
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    return [f"{pkg} {100 * t / whole:.0f}%" for pkg, t in ranked if t / whole >= 0.02]


def _package(filename: str, name: str) -> str:
    if filename == "~":  # a C function: name it by what it is
        if "nacl" in name or "crypto_sign" in name:
            return "libsodium"
        if "cryptography" in name or "ed25519" in name.lower():
            return "cryptography (OpenSSL, incl. key loading)"
        return "builtins/C"
    parts = Path(filename).parts
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            rest = parts[parts.index(anchor) + 1 :]
            if rest[0] == "civicledger":
                return "civicledger." + ".".join(rest[1:])[: -len(".py")].split(".")[-1]
            return rest[0].removesuffix(".py")
    if Path(filename).stem == "copy":
        return "copy.deepcopy"
    return "stdlib." + Path(filename).stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="credentials per operation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--desk-at",
        default="1000,20000",
        help="credentials already issued when each desk sample is timed (comma-separated)",
    )
    parser.add_argument("--desk-sample", type=int, default=500, help="issuances timed each")
    parser.add_argument("--no-desk", action="store_true")
    args = parser.parse_args()
    total_start = time.perf_counter()

    print(f"machine: {os.cpu_count()} cores; every rate is single-threaded")
    sign = raw_sign_rate()
    verify = raw_verify_rate()
    print(f"raw Ed25519 sign,   libsodium, 1 core: {sign:,.0f} /s ({1e6 / sign:.0f} µs)")
    print(f"raw Ed25519 verify, libsodium, 1 core: {verify:,.0f} /s ({1e6 / verify:.0f} µs)")
    ossl_sign, ossl_verify = openssl_rates()
    print(
        f"for reference, OpenSSL via cryptography (jwcrypto's backend): sign {ossl_sign:,.0f} /s "
        f"({1e6 / ossl_sign:.0f} µs), verify {ossl_verify:,.0f} /s ({1e6 / ossl_verify:.0f} µs)"
    )

    issuer = PrivateKey.generate()
    holders = [PrivateKey.generate() for _ in range(args.count)]
    vm = issuer.public.did + "#" + issuer.public.did.removeprefix("did:key:")

    def di_issue(credential: dict[str, Any]) -> dict[str, Any]:
        return data_integrity.issue_credential(credential, issuer, verification_method=vm, now=NOW)

    def di_verify(credential: dict[str, Any]) -> object:
        return data_integrity.verify_credential(credential, now=NOW)

    def issuer_key(iss: str) -> PublicKey:
        assert iss == ISS
        return issuer.public

    def sd_issue(holder: PrivateKey) -> str:
        return sdjwt.issue_sd_jwt_vc(
            CLAIMS,
            issuer_key=issuer,
            issuer=ISS,
            vct=VCT,
            holder=holder.public,
            disclosable=DISCLOSABLE,
            issued_at=ISSUED,
            expires_at=ISSUED + timedelta(days=365),
        )

    def sd_present(pair: tuple[str, PrivateKey]) -> str:
        return sdjwt.present(
            pair[0],
            disclose=DISCLOSE,
            holder_key=pair[1],
            audience=AUDIENCE,
            nonce=NONCE,
            now=NOW,
        )

    def sd_verify(presentation: str) -> sdjwt.VerifiedSdJwtVc:
        return sdjwt.verify_presentation(
            presentation,
            issuer_key=issuer_key,
            now=NOW,
            audience=AUDIENCE,
            nonce=NONCE,
            expected_vct=VCT,
        )

    unsigned = di_credentials(issuer, holders)
    issued = [di_issue(c) for c in unsigned]
    sd_jwts = [sd_issue(h) for h in holders]
    pairs = list(zip(sd_jwts, holders, strict=True))
    presentations = [sd_present(p) for p in pairs]
    # Inputs are made once, outside the timing; check they verify as meant before timing.
    assert di_verify(issued[0]).public_key == issuer.public  # type: ignore[attr-defined]
    checked = sd_verify(presentations[0])
    assert checked.holder == holders[0].public
    assert set(checked.claims) & set(DISCLOSABLE) == set(DISCLOSE)
    print(
        f"sizes: DI credential {len(canonical_json(issued[0]))} B (JCS); "
        f"SD-JWT VC {len(sd_jwts[0])} B; presentation {len(presentations[0])} B"
    )

    # (label, function, inputs, Ed25519 operations per call, raw rate those operations use)
    cases: list[tuple[str, Callable[[Any], object], Sequence[Any], int, str]] = [
        ("DI eddsa-jcs-2022 issue", di_issue, unsigned, 1, "sign"),
        ("DI eddsa-jcs-2022 verify", di_verify, issued, 1, "verify"),
        ("SD-JWT VC issue (5 SD claims)", sd_issue, holders, 1, "sign"),
        ("SD-JWT VC present (2 + KB-JWT)", sd_present, pairs, 1, "sign"),
        ("SD-JWT VC verify (JWS + KB-JWT)", sd_verify, presentations, 2, "verify"),
    ]
    raw = {"sign": sign, "verify": verify}
    print(
        f"\n{'operation':<34} {'cred/s':>8} {'µs':>7}  {'ratio to raw':<18} {'non-Ed25519 µs':>14}"
    )
    rates = {}
    for label, run, inputs, ops, kind in cases:
        rate = best_rate(run, inputs, args.repeats)
        rates[label] = rate
        ratio = f"{rate / raw[kind]:.3f} of {kind}"
        overhead = 1e6 / rate - ops * 1e6 / raw[kind]
        print(f"{label:<34} {rate:>8,.0f} {1e6 / rate:>7.0f}  {ratio:<18} {overhead:>14.0f}")

    print(
        "\nSD-JWT / DI: issue "
        f"{rates['SD-JWT VC issue (5 SD claims)'] / rates['DI eddsa-jcs-2022 issue']:.2f}x, "
        "verify "
        f"{rates['SD-JWT VC verify (JWS + KB-JWT)'] / rates['DI eddsa-jcs-2022 verify']:.2f}x "
        "(issue + present + verify per SD-JWT use: "
        f"{sum(1e6 / rates[c[0]] for c in cases[2:]):.0f} µs)"
    )

    if not args.no_desk:
        checkpoints = [int(n) for n in args.desk_at.split(",")]
        library = rates["SD-JWT VC issue (5 SD claims)"]
        print(
            "\nissued through the agency desk (status index allocation + record), "
            "resident cards (SD-JWT VC):"
        )
        for at, rate in desk_rates(checkpoints, args.desk_sample):
            print(
                f"  at {at:>7,} already issued: {rate:>6,.0f} /s ({1e6 / rate:,.0f} µs), "
                f"{rate / library:.2f} of the library-only SD-JWT issue rate ({library:,.0f} /s)"
            )

    if not args.no_profile:
        sample = max(200, args.count // 4)
        print(f"\nwhere the time goes (cProfile own time by package, {sample} calls each):")
        for label, run, inputs, _ops, _kind in cases:
            shares = profile_by_package(run, inputs[:sample])
            print(f"  {label}: " + ", ".join(shares))
    print(f"\ntotal {time.perf_counter() - total_start:.0f} s")


if __name__ == "__main__":
    main()
