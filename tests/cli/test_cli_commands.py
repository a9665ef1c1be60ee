"""``civic init``, ``key``, ``tx send``, ``query``, ``block show`` and ``verify``, in-process."""

from __future__ import annotations

import json
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from cli_helpers import Civic, assert_one_error_line, new_city, new_runner

from civicledger.city import CityDir
from civicledger.crypto.encoding import sha256
from civicledger.keystore import Keystore
from civicledger.ledger.genesis import Genesis
from civicledger.node.lock import DirectoryLock


@pytest.fixture
def civic() -> Civic:
    return new_runner()


@pytest.fixture
def city_dir(tmp_path: Path, civic: Civic) -> Path:
    return new_city(civic, tmp_path / "city")


def digest(label: str) -> str:
    return sha256(label.encode()).hex()


def anchor_args(label: str) -> str:
    return json.dumps({"digest": digest(label), "label": label})


# -- init -------------------------------------------------------------------------------------


def test_init_creates_keys_genesis_and_ledger(tmp_path: Path, civic: Civic) -> None:
    root = tmp_path / "seoul"
    result = civic(
        "init",
        "--dir",
        root,
        "--city",
        "Seoul",
        "--chain-id",
        "seoul-1",
        "--agency",
        "mapo-gu:Mapo-gu Office",
        "--agency",
        "gangnam-gu:Gangnam-gu Office",
    )
    assert result.exit_code == 0, result.output
    layout = CityDir(root)
    raw = layout.genesis_path.read_bytes()
    genesis = Genesis.from_json_bytes(raw)
    assert raw == genesis.canonical_bytes() + b"\n"
    keystore = Keystore(layout.keys_path)
    assert keystore.names() == ["city-hall", "gangnam-gu", "mapo-gu", "node", "root"]
    assert genesis.root_authorities == (keystore.public("root").did,)
    assert genesis.producers == (keystore.public("node").did,)
    agencies = {a.id: a for a in genesis.agencies}
    assert agencies["city-hall"].roles == ("notary",)
    assert agencies["mapo-gu"].name == "Mapo-gu Office"
    assert agencies["mapo-gu"].keys == (keystore.public("mapo-gu").did,)
    assert (layout.data_path / "ledger.sqlite").is_file()
    for name in keystore.names():
        mode = stat.S_IMODE((layout.keys_path / f"{name}.key.json").stat().st_mode)
        assert mode == 0o600
    assert keystore.public("node").did in result.stdout


def test_init_refuses_to_overwrite_a_city(city_dir: Path, civic: Civic) -> None:
    before = (city_dir / "genesis.json").read_bytes()
    result = civic("--dir", city_dir, "init", "--city", "Other", "--chain-id", "other-1")
    assert_one_error_line(result, "city_exists")
    assert (city_dir / "genesis.json").read_bytes() == before


def test_init_with_an_invalid_chain_id_leaves_nothing_behind(tmp_path: Path, civic: Civic) -> None:
    root = tmp_path / "bad"
    result = civic("--dir", root, "init", "--city", "X", "--chain-id", "Not Valid!")
    assert_one_error_line(result, "bad_genesis")
    assert not root.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--agency", "no-colon"],
        ["--agency", ":Nameless"],
        ["--passphrase-env", "CIVIC_TEST_UNSET_VARIABLE"],
    ],
)
def test_init_usage_errors_exit_2(tmp_path: Path, civic: Civic, args: list[str]) -> None:
    result = civic("--dir", tmp_path / "c", "init", "--city", "X", "--chain-id", "x-1", *args)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "c").exists()


def test_civic_dir_environment_variable(tmp_path: Path, civic: Civic) -> None:
    root = tmp_path / "from-env"
    env = {"CIVIC_DIR": str(root)}
    assert civic("init", "--city", "E", "--chain-id", "env-1", env=env).exit_code == 0
    result = civic("block", "show", env=env)
    assert result.exit_code == 0, result.output
    assert "env-1" in result.stdout


# -- keys -------------------------------------------------------------------------------------


def test_key_new_and_list(city_dir: Path, civic: Civic) -> None:
    plain = civic("--dir", city_dir, "key", "new", "clerk")
    assert plain.exit_code == 0, plain.output
    env = {"CIVIC_TEST_PASS": "한강 다리 correct horse"}
    secret = civic(
        "--dir", city_dir, "key", "new", "vault", "--passphrase-env", "CIVIC_TEST_PASS", env=env
    )
    assert secret.exit_code == 0, secret.output
    keystore = Keystore(city_dir / "keys")
    assert keystore.public("clerk").did in plain.stdout
    listing = civic("--dir", city_dir, "key", "list")
    assert listing.exit_code == 0, listing.output
    rows = {line.split("│")[1].strip(): line for line in listing.stdout.splitlines() if "│" in line}
    assert set(rows) == {"city-hall", "clerk", "node", "root", "vault"}
    assert keystore.public("vault").did in rows["vault"]
    assert rows["vault"].split("│")[3].strip() == "yes"
    assert rows["clerk"].split("│")[3].strip() == "no"


def test_key_new_refuses_an_existing_name(city_dir: Path, civic: Civic) -> None:
    assert_one_error_line(civic("--dir", city_dir, "key", "new", "root"), "key_exists")


# -- tx send, query, block show ---------------------------------------------------------------


def test_tx_send_ok_then_query_and_block_show(city_dir: Path, civic: Civic) -> None:
    assert civic("--dir", city_dir, "key", "new", "parks").exit_code == 0
    did = Keystore(city_dir / "keys").public("parks").did
    args = json.dumps({"id": "parks", "name": "Parks Department", "keys": [did]})
    sent = civic(
        "--dir",
        city_dir,
        "tx",
        "send",
        "governance",
        "register_agency",
        "--args",
        args,
        "--key",
        "root",
    )
    assert sent.exit_code == 0, sent.output
    assert "ok" in sent.stdout
    assert "governance.agency_registered" in sent.stdout
    assert "block" in sent.stdout

    queried = civic(
        "--dir", city_dir, "query", "governance", "agency", "--args", '{"agency": "parks"}'
    )
    assert queried.exit_code == 0, queried.output
    record = json.loads(queried.stdout)
    assert record["keys"] == [did]
    assert record["name"] == "Parks Department"

    shown = civic("--dir", city_dir, "block", "show")
    assert shown.exit_code == 0, shown.output
    assert "governance.register_agency" in shown.stdout
    assert "height" in shown.stdout
    genesis_block = civic("--dir", city_dir, "block", "show", "0")
    assert "no transactions" in genesis_block.stdout


def test_tx_send_failed_receipt_exits_1_with_its_reason(city_dir: Path, civic: Civic) -> None:
    send = (
        "--dir",
        city_dir,
        "tx",
        "send",
        "notary",
        "anchor",
        "--key",
        "city-hall",
        "--args",
        anchor_args("budget 2025"),
    )
    assert civic(*send).exit_code == 0
    again = civic(*send)
    assert "failed" in again.stdout
    line = assert_one_error_line(again, "already_anchored")
    assert "anchored at height 1" in line


def test_tx_send_rejected_exits_1_with_the_reason(city_dir: Path, civic: Civic) -> None:
    assert civic("--dir", city_dir, "key", "new", "stranger").exit_code == 0
    result = civic(
        "--dir",
        city_dir,
        "tx",
        "send",
        "governance",
        "grant_role",
        "--key",
        "stranger",
        "--args",
        '{"agency": "city-hall", "role": "auditor"}',
    )
    line = assert_one_error_line(result, "unauthorized")
    assert "governance.grant_role" in line
    assert result.stdout == ""


def test_tx_send_expiry_is_checked(city_dir: Path, civic: Civic) -> None:
    result = civic(
        "--dir",
        city_dir,
        "tx",
        "send",
        "notary",
        "anchor",
        "--key",
        "city-hall",
        "--args",
        anchor_args("x"),
        "--expires-in",
        "0",
    )
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["tx", "send", "notary", "anchor", "--key", "nobody", "--args", "{}"], "key_not_found"),
        (["tx", "send", "nope", "go", "--key", "root"], "unknown_contract"),
        (
            ["tx", "send", "notary", "anchor", "--key", "city-hall", "--args", '{"digest": "x"}'],
            "invalid_args",
        ),
        (["tx", "send", "notary", "lookup", "--key", "root", "--args", "{}"], "unknown_method"),
        (["query", "governance", "no_such_query"], "unknown_method"),
        (["query", "governance", "register_agency"], "unknown_method"),
        (["block", "show", "99"], "no_such_block"),
        (["proof", "ab" * 32], "bad_proof"),
    ],
)
def test_errors_are_one_line(city_dir: Path, civic: Civic, args: list[str], reason: str) -> None:
    assert_one_error_line(civic("--dir", city_dir, *args), reason)


@pytest.mark.parametrize(
    "args",
    [
        ["tx", "send", "notary", "anchor", "--key", "root", "--args", "{not json"],
        ["tx", "send", "notary", "anchor", "--key", "root", "--args", "[1, 2]"],
        ["tx", "send", "notary", "anchor", "--key", "root", "--args", '{"n": 1.5}'],
        ["tx", "send", "notary", "anchor"],
        ["query", "governance", "agencies", "--args", '{"a": 1, "a": 2}'],
        ["block", "show", "-1"],
        ["proof", "not-hex"],
        ["no-such-command"],
        ["--no-such-option", "verify"],
    ],
)
def test_argument_errors_exit_2(city_dir: Path, civic: Civic, args: list[str]) -> None:
    result = civic("--dir", city_dir, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_commands_outside_a_city_say_so(tmp_path: Path, civic: Civic) -> None:
    for args in (
        ["query", "governance", "agencies"],
        ["verify"],
        ["key", "list"],
        ["tx", "send", "notary", "anchor", "--key", "root"],
    ):
        assert_one_error_line(civic("--dir", tmp_path / "nowhere", *args), "no_city")


# -- passphrases and the lock -----------------------------------------------------------------


def test_encrypted_keys_need_the_right_passphrase(tmp_path: Path, civic: Civic) -> None:
    root = tmp_path / "secret"
    good = {"CIVIC_TEST_PASS": "seoul-passphrase"}
    init = civic(
        "--dir",
        root,
        "init",
        "--city",
        "S",
        "--chain-id",
        "secret-1",
        "--passphrase-env",
        "CIVIC_TEST_PASS",
        env=good,
    )
    assert init.exit_code == 0, init.output
    assert all(Keystore(root / "keys").is_encrypted(n) for n in ("root", "node", "city-hall"))
    send = (
        "--dir",
        root,
        "tx",
        "send",
        "notary",
        "anchor",
        "--key",
        "city-hall",
        "--args",
        anchor_args("minutes"),
        "--passphrase-env",
        "CIVIC_TEST_PASS",
    )

    wrong = civic(*send, env={"CIVIC_TEST_PASS": "not-the-passphrase"})
    assert "wrong passphrase" in assert_one_error_line(wrong, "wrong_passphrase")

    missing = civic(*send[:-2])
    assert "--passphrase-env" in assert_one_error_line(missing, "passphrase_required")

    ok = civic(*send, env=good)
    assert ok.exit_code == 0, ok.output


def test_a_locked_data_dir_is_one_clear_line(city_dir: Path, civic: Civic) -> None:
    with DirectoryLock(city_dir / "data"):
        result = civic(
            "--dir",
            city_dir,
            "tx",
            "send",
            "notary",
            "anchor",
            "--key",
            "city-hall",
            "--args",
            anchor_args("locked"),
        )
        line = assert_one_error_line(result, "node_error")
        assert "another process is running the node" in line
        # Reading needs no lock.
        assert civic("--dir", city_dir, "query", "governance", "agencies").exit_code == 0
        assert civic("--dir", city_dir, "verify").exit_code == 0


# -- verify -----------------------------------------------------------------------------------


def test_verify_reports_the_chain_and_catches_tampering(city_dir: Path, civic: Civic) -> None:
    for label in ("a", "b", "c"):
        sent = civic(
            "--dir",
            city_dir,
            "tx",
            "send",
            "notary",
            "anchor",
            "--key",
            "city-hall",
            "--args",
            anchor_args(label),
        )
        assert sent.exit_code == 0, sent.output
    result = civic("--dir", city_dir, "verify")
    assert result.exit_code == 0, result.output
    assert "chain verified" in result.stdout
    assert "height        3" in result.stdout
    assert "transactions  3" in result.stdout

    with closing(sqlite3.connect(city_dir / "data" / "ledger.sqlite")) as conn:
        (receipt,) = conn.execute("SELECT receipt FROM txs WHERE leaf_index = 1").fetchone()
        forged = bytes(receipt).replace(b'"label":"b"', b'"label":"B"')
        assert forged != bytes(receipt)
        conn.execute("UPDATE txs SET receipt = ? WHERE leaf_index = 1", (forged,))
        conn.commit()
    tampered = civic("--dir", city_dir, "verify")
    assert "block 2" in assert_one_error_line(tampered, "chain_verification")
