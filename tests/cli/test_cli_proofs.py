"""``civic proof``: exporting bundles and verifying them offline against a trust anchor."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Civic, assert_one_error_line, new_city, new_runner

from civicledger.crypto.encoding import sha256
from civicledger.keystore import Keystore


@pytest.fixture
def civic() -> Civic:
    return new_runner()


@pytest.fixture
def city_dir(tmp_path: Path, civic: Civic) -> Path:
    return new_city(civic, tmp_path / "city")


TX_ID = re.compile(r"^tx\s+([0-9a-f]{64})\s*$", re.MULTILINE)


def send_anchor(civic: Civic, city: Path, label: str) -> str:
    args = json.dumps({"digest": sha256(label.encode()).hex(), "label": label})
    result = civic(
        "--dir", city, "tx", "send", "notary", "anchor", "--key", "city-hall", "--args", args
    )
    assert result.exit_code == 0, result.output
    match = TX_ID.search(result.stdout)
    assert match is not None, result.stdout
    return match.group(1)


@pytest.fixture
def anchored(city_dir: Path, civic: Civic) -> tuple[Path, list[str]]:
    """The city with four anchored documents in four blocks; returns their tx ids."""
    return city_dir, [send_anchor(civic, city_dir, f"doc {i}") for i in range(4)]


def test_inclusion_proof_round_trip(
    anchored: tuple[Path, list[str]], civic: Civic, tmp_path: Path
) -> None:
    city, tx_ids = anchored
    proof = tmp_path / "p.json"
    exported = civic("--dir", city, "proof", tx_ids[1], "--out", proof)
    assert exported.exit_code == 0, exported.output
    assert "leaf 1 of 4" in exported.stdout
    result = civic("--dir", city, "proof", "verify", proof)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "inclusion proof verified" in out
    assert tx_ids[1] in out
    assert "notary.anchor" in out
    assert re.search(r"status\s+ok", out)
    assert re.search(r"block\s+2\b", out)
    assert re.search(r"leaf index\s+1\b", out)
    assert re.search(r"tree size\s+4\b", out)
    assert "producers of 'testville-1'" in out
    assert "WARNING" not in result.stderr


def test_proof_to_stdout_options_first_and_at_a_height(
    anchored: tuple[Path, list[str]], civic: Civic
) -> None:
    city, tx_ids = anchored
    printed = civic("--dir", city, "proof", tx_ids[0])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["tree_size"] == 4
    at_height = civic("--dir", city, "proof", "--height", "2", tx_ids[0])
    assert at_height.exit_code == 0, at_height.output
    bundle = json.loads(at_height.stdout)
    assert (bundle["tree_size"], bundle["tree_head"]["tree_head"]["height"]) == (2, 2)
    explicit = civic("--dir", city, "proof", "inclusion", tx_ids[0], "--height", "2")
    assert json.loads(explicit.stdout) == bundle
    too_early = civic("--dir", city, "proof", tx_ids[3], "--height", "2")
    assert_one_error_line(too_early, "bad_proof")


def test_consistency_proof_round_trip(
    anchored: tuple[Path, list[str]], civic: Civic, tmp_path: Path
) -> None:
    city, _ = anchored
    proof = tmp_path / "c.json"
    exported = civic("--dir", city, "proof", "consistency", "1", "--out", proof)
    assert exported.exit_code == 0, exported.output
    result = civic("--dir", city, "proof", "verify", proof)
    assert result.exit_code == 0, result.output
    assert "consistency proof verified" in result.stdout
    assert "height 1, size 1" in result.stdout
    assert "height 4, size 4" in result.stdout

    bundle = json.loads(proof.read_text())
    bundle["proof"][0] = "00" * 32
    proof.write_text(json.dumps(bundle))
    tampered = civic("--dir", city, "proof", "verify", proof)
    assert "consistency proof does not lead" in assert_one_error_line(tampered, "bad_proof")


def _set_label(bundle: dict[str, Any]) -> None:
    bundle["entry"]["receipt"]["result"]["label"] = "a different document"


def _set_status(bundle: dict[str, Any]) -> None:
    bundle["entry"]["receipt"]["status"] = "failed"


def _set_leaf_index(bundle: dict[str, Any]) -> None:
    bundle["leaf_index"] = 0


def _set_root(bundle: dict[str, Any]) -> None:
    bundle["tree_head"]["tree_head"]["root_hash"] = "11" * 32


def _set_signer(bundle: dict[str, Any]) -> None:
    bundle["tree_head"]["tree_head"]["signer"] = bundle["entry"]["tx"]["body"]["signer"]


def _drop_path(bundle: dict[str, Any]) -> None:
    bundle["path"] = bundle["path"][:-1]


def _set_kind(bundle: dict[str, Any]) -> None:
    bundle["kind"] = "something/else"


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_set_label, "does not lead to the root"),
        (_set_status, "does not lead to the root"),
        (_set_leaf_index, "does not lead to the root"),
        (_set_root, "tree head signature"),
        (_set_signer, "not trusted"),
        (_drop_path, "inclusion path has 1 hashes"),
        (_set_kind, "kind"),
    ],
)
def test_tampered_inclusion_proof_fails_with_the_reason(
    anchored: tuple[Path, list[str]],
    civic: Civic,
    tmp_path: Path,
    tamper: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    city, tx_ids = anchored
    proof = tmp_path / "p.json"
    assert civic("--dir", city, "proof", tx_ids[1], "--out", proof).exit_code == 0
    bundle = json.loads(proof.read_text())
    tamper(bundle)
    proof.write_text(json.dumps(bundle))
    line = assert_one_error_line(civic("--dir", city, "proof", "verify", proof), "bad_proof")
    assert expected in line


def test_proof_against_another_citys_genesis_fails(
    anchored: tuple[Path, list[str]], civic: Civic, tmp_path: Path
) -> None:
    city, tx_ids = anchored
    other = tmp_path / "other"
    made = civic("--dir", other, "init", "--city", "Other", "--chain-id", "testville-1")
    assert made.exit_code == 0
    proof = tmp_path / "p.json"
    assert civic("--dir", city, "proof", tx_ids[0], "--out", proof).exit_code == 0
    by_genesis = civic("--dir", city, "proof", "verify", proof, "--genesis", other / "genesis.json")
    assert "not trusted" in assert_one_error_line(by_genesis, "bad_proof")
    # The other city's directory as the default trust anchor fails the same way.
    by_default = civic("--dir", other, "proof", "verify", proof)
    assert "not trusted" in assert_one_error_line(by_default, "bad_proof")


def test_proof_for_another_chain_id_fails(
    anchored: tuple[Path, list[str]], civic: Civic, tmp_path: Path
) -> None:
    city, tx_ids = anchored
    proof = tmp_path / "p.json"
    assert civic("--dir", city, "proof", tx_ids[0], "--out", proof).exit_code == 0
    genesis = json.loads((city / "genesis.json").read_text())
    genesis["chain_id"] = "elsewhere-1"
    renamed = tmp_path / "renamed-genesis.json"
    renamed.write_text(json.dumps(genesis))
    result = civic("--dir", city, "proof", "verify", proof, "--genesis", renamed)
    assert "'elsewhere-1'" in assert_one_error_line(result, "bad_proof")


def test_trust_option_and_no_trust_anchor(
    anchored: tuple[Path, list[str]], civic: Civic, tmp_path: Path
) -> None:
    city, tx_ids = anchored
    proof = tmp_path / "p.json"
    assert civic("--dir", city, "proof", tx_ids[2], "--out", proof).exit_code == 0
    node_did = Keystore(city / "keys").public("node").did
    root_did = Keystore(city / "keys").public("root").did

    trusted = civic("--dir", city, "proof", "verify", proof, "--trust", node_did)
    assert trusted.exit_code == 0, trusted.output
    assert "keys given with --trust" in trusted.stdout

    wrong = civic("--dir", city, "proof", "verify", proof, "--trust", root_did)
    assert "not trusted" in assert_one_error_line(wrong, "bad_proof")

    anchorless = civic("--dir", tmp_path / "no-city-here", "proof", "verify", proof)
    assert anchorless.exit_code == 0, anchorless.output
    assert "inclusion proof verified" in anchorless.stdout
    assert "NOT checked against a trust anchor" in anchorless.stderr
    assert "NOTHING" in anchorless.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--trust", "did:key:not-a-key"],
        ["--trust", "x", "--genesis", "genesis.json"],
    ],
)
def test_proof_verify_usage_errors(
    anchored: tuple[Path, list[str]], civic: Civic, tmp_path: Path, args: list[str]
) -> None:
    city, tx_ids = anchored
    proof = tmp_path / "p.json"
    assert civic("--dir", city, "proof", tx_ids[0], "--out", proof).exit_code == 0
    assert civic("--dir", city, "proof", "verify", proof, *args).exit_code == 2


def test_proof_verify_of_a_missing_or_garbled_file(
    city_dir: Path, civic: Civic, tmp_path: Path
) -> None:
    assert civic("--dir", city_dir, "proof", "verify", tmp_path / "absent.json").exit_code == 2
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{ not json")
    result = civic("--dir", city_dir, "proof", "verify", garbled)
    assert "not JSON" in assert_one_error_line(result, "bad_proof")
