"""Local-currency payments and help-coin distribution against this machine's raw verify rate.

On a fresh city (the ``currency`` contract with every rule on: spend categories and regions,
balance cap, monthly purchase cap, no holder-to-holder payments, lots that expire) prints:
- the raw single-core Ed25519 verify rate with libsodium, measured in this run;
- committed payments/s through the embedded node: pre-signed ``pay`` transactions (holder →
  registered merchant, every check) from many holders, one nonce sequence per holder, sent
  with ``submit_many``; and the ratio to the raw verify rate;
- the time to run a help-coin distribution to N recipients through ``agency.distribution``
  (``mint_batch`` of 500, pipelined on the node); enrolling the recipients is setup, timed
  on its own line.

Usage: python bench/currency.py [--recipients 100000] [--holders 2000] [--payments 40000]
Figures are printed, never asserted: timings vary with the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger_throughput import raw_verify_rate

from civicledger.agency.distribution import Distribution
from civicledger.agency.ledger import NodeLedger
from civicledger.city import NODE_KEY, AgencySpec, CityDir, create_city, load_key
from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.tx import expiry_from_now, sign_tx
from civicledger.node.embedded import EmbeddedNode

CHAIN_ID = "bench-city"
CURRENCY = "bench-coin"
TREASURY, BANK, REGISTRAR, ENROLLER = (
    "treasury-office",
    "custodian-bank",
    "district-office",
    "welfare-office",
)
CATEGORIES = ("grocery", "restaurant", "pharmacy")
REGIONS = ("sangdang", "heungdeok")
HOLDER_GRANT = 400_000
PAYMENT = 1_000
RECIPIENT_GRANT = 100_000


def make_city(root: Path) -> CityDir:
    return create_city(
        root / "city",
        city="Bench City",
        chain_id=CHAIN_ID,
        agencies=[
            AgencySpec(TREASURY, "City Treasury", ("treasury",)),
            AgencySpec(BANK, "Custodian Bank", ("custodian_bank",)),
            AgencySpec(REGISTRAR, "District Office", ("merchant_registrar",)),
            AgencySpec(ENROLLER, "Welfare Office", ("enroller",)),
        ],
    )


def define_args() -> dict[str, Any]:
    """A currency with every rule on."""
    return {
        "currency_id": CURRENCY,
        "name": {"ko": "벤치코인", "en": "Bench coin"},
        "symbol": "BENCH",
        "kind": "general",
        "holder_credential": "ResidentCard",
        "spend_categories": list(CATEGORIES),
        "spend_regions": list(REGIONS),
        "p2p": False,
        "lot_ttl_days": 90,
        "balance_cap": 500_000,
        "monthly_purchase_cap": 300_000,
        "purchase_bonus_bp": 1000,
    }


class Nonces:
    """Signs transactions with each key's next nonce (the chain is fresh: nonces start at 1)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self.expires = expiry_from_now(3 * 3600)

    def sign(self, key: PrivateKey, method: str, args: dict[str, Any]) -> bytes:
        did = key.public.did
        nonce = self._next[did] = self._next.get(did, 0) + 1
        return sign_tx(
            key,
            chain_id=CHAIN_ID,
            nonce=nonce,
            contract="currency",
            method=method,
            args=args,
            expires_at=self.expires,
        ).envelope_bytes()


def commit_all(node: EmbeddedNode, raws: Sequence[bytes], what: str) -> float:
    """Submit in bulk, wait for every receipt, refuse to go on if one failed; seconds taken."""
    start = time.perf_counter()
    receipts = [f.result() for f in node.submit_many(raws)]
    elapsed = time.perf_counter() - start
    failed = [r for r in receipts if not r.ok]
    if failed:
        raise SystemExit(f"{what}: {len(failed)} failed, first: {failed[0].reason}")
    return elapsed


def enroll_txs(nonces: Nonces, enroller: PrivateKey, accounts: Sequence[str]) -> list[bytes]:
    return [
        nonces.sign(
            enroller,
            "enroll",
            {"currency_id": CURRENCY, "account": account, "region": REGIONS[i % 2]},
        )
        for i, account in enumerate(accounts)
    ]


def grant_list(accounts: Sequence[str], amount: int) -> bytes:
    return ("account,amount\n" + "".join(f"{a},{amount}\n" for a in accounts)).encode()


def payments(
    nonces: Nonces, holders: Sequence[PrivateKey], merchants: Sequence[str], count: int
) -> list[bytes]:
    """``count`` payments; payment ``i`` is holder ``i % H``'s next, so each holder's nonces
    are in order and far fewer are in flight at once than there are holders."""
    return [
        nonces.sign(
            holders[i % len(holders)],
            "pay",
            {
                "currency_id": CURRENCY,
                "to": merchants[i % len(merchants)],
                "amount": PAYMENT,
                "memo_hash": hashlib.sha256(b"receipt-%d" % i).hexdigest(),
            },
        )
        for i in range(count)
    ]


def run(args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="civic-bench-currency-") as tmp:
        layout = make_city(Path(tmp))
        keys = {name: load_key(layout.keystore, name, None) for name in (BANK, REGISTRAR, ENROLLER)}
        nonces = Nonces()
        with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
            ledger = NodeLedger(layout, node)
            ledger.send(TREASURY, "currency", "define", define_args())
            reserve = args.holders * HOLDER_GRANT + args.recipients * RECIPIENT_GRANT
            attest = {"currency_id": CURRENCY, "amount": reserve, "reference": "ab" * 32}
            commit_all(node, [nonces.sign(keys[BANK], "attest_reserve", attest)], "reserve")

            holders = [PrivateKey.generate() for _ in range(args.holders)]
            merchants = [PrivateKey.generate().public.did for _ in range(args.merchants)]
            setup = [
                nonces.sign(
                    keys[REGISTRAR],
                    "register_merchant",
                    {
                        "merchant_id": f"shop-{m:04d}",
                        "business_number_hash": hashlib.sha256(b"biz-%d" % m).hexdigest(),
                        "category": CATEGORIES[m % len(CATEGORIES)],
                        "region": REGIONS[m % len(REGIONS)],
                        "account": account,
                    },
                )
                for m, account in enumerate(merchants)
            ]
            setup += enroll_txs(nonces, keys[ENROLLER], [h.public.did for h in holders])
            commit_all(node, setup, "merchants and holders")
            Distribution(ledger, TREASURY, CURRENCY, Path(tmp) / "holders-job").run(
                grant_list([h.public.did for h in holders], HOLDER_GRANT)
            )

            pays = payments(nonces, holders, merchants, args.payments)
            # Warm the verify workers outside the timing with the first few hundred payments.
            warm = min(500, len(pays) // 10)
            commit_all(node, pays[:warm], "payments (warm-up)")
            elapsed = commit_all(node, pays[warm:], "payments")
            figures["pay_per_s"] = (len(pays) - warm) / elapsed
            totals = ledger.query("currency", "totals", {"currency_id": CURRENCY})
            print(f"after the payments: {totals}")

            recipients = [PrivateKey.generate().public.did for _ in range(args.recipients)]
            figures["enroll_s"] = commit_all(
                node, enroll_txs(nonces, keys[ENROLLER], recipients), "recipients"
            )
            listing = grant_list(recipients, RECIPIENT_GRANT)
            job = Distribution(ledger, TREASURY, CURRENCY, Path(tmp) / "help-coin-job")
            start = time.perf_counter()
            report = job.run(listing)
            figures["distribute_s"] = time.perf_counter() - start
            totals = ledger.query("currency", "totals", {"currency_id": CURRENCY})
            expected = args.holders * HOLDER_GRANT + args.recipients * RECIPIENT_GRANT
            if report.sent != report.batches or totals["minted"] != expected:
                raise SystemExit(f"distribution incomplete: {report}, totals {totals}")
            print(f"after the distribution: {totals}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--holders", type=int, default=2_000)
    parser.add_argument("--merchants", type=int, default=60)
    parser.add_argument("--payments", type=int, default=40_000)
    args = parser.parse_args()
    if args.payments > args.holders * (HOLDER_GRANT // PAYMENT):
        parser.error("--payments exceeds what the holders' grants can pay")

    print(f"machine: {os.cpu_count()} cores")
    verify = raw_verify_rate()
    figures = run(args)
    n = args.recipients
    rows = [
        ("raw Ed25519 verify, libsodium, 1 core", f"{verify:,.0f} /s", ""),
        (
            f"committed payments (pay, all rules on), {args.holders:,} holders",
            f"{figures['pay_per_s']:,.0f} /s",
            f"{figures['pay_per_s'] / verify:.2f} of raw verify",
        ),
        (
            f"enrol {n:,} recipients (setup)",
            f"{figures['enroll_s']:.1f} s",
            f"{n / figures['enroll_s']:,.0f} tx/s",
        ),
        (
            f"help-coin distribution to {n:,} recipients",
            f"{figures['distribute_s']:.1f} s",
            f"{n / figures['distribute_s']:,.0f} recipients/s",
        ),
    ]
    print(f"\n{'measure':<60} {'figure':>14}  ratio / rate")
    for label, figure, note in rows:
        print(f"{label:<60} {figure:>14}  {note}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory: {own:.0f} MiB (node process), {children:.0f} MiB (largest verify worker)")


if __name__ == "__main__":
    main()
