"""The demo scenario as a library (``civicledger.demo``): the data the CLI and portal present."""

from __future__ import annotations

from pathlib import Path

import pytest

from civicledger.city import AgencySpec, CityDir, create_city
from civicledger.demo import DEMO_CHAIN_ID, run_demo
from civicledger.errors import CivicError, GenesisError, LedgerError
from civicledger.ledger.proofs import verify_inclusion_bundle
from civicledger.node.chain import Chain


def test_run_demo_returns_every_outcome_and_verified_proofs(tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    run = run_demo(tmp_path / "seoul", progress=lambda h, n: progress.append((h, n)))
    outcomes = [step.outcome for step in run.steps]
    assert outcomes.count("failed") == 1
    assert outcomes.count("rejected") == 1
    failed = next(s for s in run.steps if s.outcome == "failed")
    rejected = next(s for s in run.steps if s.outcome == "rejected")
    assert (failed.contract, failed.method, failed.reason) == (
        "notary",
        "anchor",
        "already_anchored",
    )
    assert failed.receipt is not None
    assert not failed.receipt.ok
    assert (rejected.method, rejected.reason, rejected.receipt) == (
        "grant_role",
        "unauthorized",
        None,
    )

    assert run.summary.chain_id == DEMO_CHAIN_ID
    assert run.summary.transactions == len(run.steps) - 1  # the rejected one is not recorded
    ids = {agency["id"]: agency for agency in run.summary.agencies}
    assert set(ids) == {"city-hall", "gangnam-gu", "mapo-gu"}
    assert ids["gangnam-gu"]["roles"] == ["notary"]
    assert ids["mapo-gu"]["roles"] == ["permits"]  # the self-grant changed nothing

    proofs = run.proofs
    assert proofs.receipt.ok
    assert proofs.tx.body.method == "anchor"
    assert proofs.trusted_signers == frozenset(run.layout.genesis().producers)
    verify_inclusion_bundle(proofs.inclusion, proofs.trusted_signers)  # raises if not
    old, new = proofs.consistency.old_head.tree_head, proofs.consistency.new_head.tree_head
    assert old.height < new.height == run.report.height

    assert run.report.transactions == run.summary.transactions
    assert progress[-1] == (run.report.height, run.report.height)


def test_create_city_validates_before_writing(tmp_path: Path) -> None:
    root = tmp_path / "c"
    with pytest.raises(GenesisError, match="chain_id"):
        create_city(root, city="X", chain_id="UPPER", agencies=[])
    with pytest.raises(CivicError, match="reserved") as reserved:
        create_city(root, city="X", chain_id="x-1", agencies=[AgencySpec("node", "Node")])
    assert reserved.value.reason == "bad_agency"
    with pytest.raises(GenesisError, match="duplicate agency ids"):
        create_city(
            root,
            city="X",
            chain_id="x-1",
            agencies=[AgencySpec("parks", "A"), AgencySpec("parks", "B")],
        )
    assert not root.exists()


def test_create_city_removes_only_what_it_created(tmp_path: Path) -> None:
    root = tmp_path / "existing"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(GenesisError):
        create_city(root, city="X", chain_id="-bad", agencies=[])
    assert [p.name for p in root.iterdir()] == ["notes.txt"]
    layout = create_city(root, city="X", chain_id="x-1", agencies=[])
    assert layout == CityDir(root)
    assert layout.genesis().chain_id == "x-1"


def test_create_city_cleans_up_after_a_late_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise LedgerError("disk full")

    monkeypatch.setattr(Chain, "create", refuse)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(LedgerError, match="disk full"):
        create_city(existing, city="X", chain_id="x-1", agencies=[AgencySpec("parks", "Parks")])
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]
    fresh = tmp_path / "fresh"
    with pytest.raises(LedgerError):
        create_city(fresh, city="X", chain_id="x-1", agencies=[])
    assert not fresh.exists()
