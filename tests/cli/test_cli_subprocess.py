"""The installed ``civic`` script as a real process: the demo, a proof round trip, the lock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from cli_helpers import run_civic

from civicledger.crypto.encoding import sha256


def assert_one_error_line(result: subprocess.CompletedProcess[str], reason: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {reason}: "), lines[0]
    return lines[0]


def test_demo_runs_end_to_end_and_cleans_up(tmp_path: Path) -> None:
    result = run_civic("demo", "--no-serve", cwd=tmp_path, env={"TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in (
        "demo-seoul",
        "gangnam-gu",
        "mapo-gu",
        "already_anchored",  # the failed transaction
        "unauthorized",  # the rejected one
        "inclusion proof verified",
        "consistency proof verified",
        "chain verified",
    ):
        assert expected in out, expected
    assert "verifying" in result.stderr  # the progress bar
    assert list(tmp_path.iterdir()) == []  # the temporary city is gone


def test_demo_in_a_directory_is_kept_and_verifiable(tmp_path: Path) -> None:
    city = tmp_path / "seoul"
    result = run_civic("demo", "--dir", city, "--no-serve", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"civic --dir {city} verify" in result.stdout
    verified = run_civic("--dir", city, "verify", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "demo-seoul" in verified.stdout
    again = run_civic("demo", "--dir", city, "--no-serve", cwd=tmp_path)
    assert_one_error_line(again, "city_exists")


def test_init_send_prove_verify_and_tamper(tmp_path: Path) -> None:
    made = run_civic("init", "--city", "Busan", "--chain-id", "busan-1", cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    assert (tmp_path / "city" / "genesis.json").is_file()  # the default --dir is ./city

    label = "부산 항만 계획 Busan port plan"
    args = json.dumps({"digest": sha256(label.encode()).hex(), "label": label})
    sent = run_civic(
        "tx", "send", "notary", "anchor", "--key", "city-hall", "--args", args, cwd=tmp_path
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    match = re.search(r"^tx\s+([0-9a-f]{64})", sent.stdout, re.MULTILINE)
    assert match is not None, sent.stdout
    tx_id = match.group(1)

    exported = run_civic("proof", tx_id, "--out", "proof.json", cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    verified = run_civic("proof", "verify", "proof.json", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert tx_id in verified.stdout
    assert "notary.anchor" in verified.stdout

    bundle = json.loads((tmp_path / "proof.json").read_text(encoding="utf-8"))
    bundle["entry"]["receipt"]["result"]["label"] = "a forged label"
    (tmp_path / "forged.json").write_text(json.dumps(bundle), encoding="utf-8")
    forged = run_civic("proof", "verify", "forged.json", cwd=tmp_path)
    line = assert_one_error_line(forged, "bad_proof")
    assert f"inclusion path for leaf {bundle['leaf_index']} of 1 does not lead to the root" in line


def test_a_node_in_another_process_locks_the_data_dir(tmp_path: Path) -> None:
    assert run_civic("init", "--city", "L", "--chain-id", "lock-1", cwd=tmp_path).returncode == 0
    city = tmp_path / "city"
    holder_code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from civicledger.city import CityDir, NODE_KEY
        from civicledger.node.embedded import EmbeddedNode

        layout = CityDir(Path({str(city)!r}))
        with EmbeddedNode(layout.data_path, layout.keystore.load(NODE_KEY)):
            print("ready", flush=True)
            sys.stdin.readline()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder_code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "ready"
            args = json.dumps({"digest": "ab" * 32})
            blocked = run_civic(
                "tx", "send", "notary", "anchor", "--key", "city-hall", "--args", args, cwd=tmp_path
            )
            assert "another process is running the node" in assert_one_error_line(
                blocked, "node_error"
            )
        finally:
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.close()
            holder.wait(timeout=30)
    free = run_civic(
        "tx",
        "send",
        "notary",
        "anchor",
        "--key",
        "city-hall",
        "--args",
        json.dumps({"digest": "ab" * 32}),
        cwd=tmp_path,
    )
    assert free.returncode == 0, free.stdout + free.stderr
