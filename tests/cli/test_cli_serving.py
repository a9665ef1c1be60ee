"""``civic demo`` and ``civic node run`` as real processes serving the API and portal."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from cli_helpers import civic_command, run_civic

URL = re.compile(r"^portal\s+(http://127\.0\.0\.1:\d+)/", re.MULTILINE)


def wait_for_url(process: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    """Read the process's stdout until it prints the portal URL; return it and what was read."""
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        if match := URL.search(seen):
            return match.group(1), seen
    raise AssertionError(f"no portal URL in the output:\n{seen}")


@contextmanager
def start(args: list[str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """Run ``civic ARGS`` in the background; killed if still running when the block exits."""
    env = {k: v for k, v in os.environ.items() if k != "CIVIC_DIR"}
    env["TMPDIR"] = str(cwd)
    with subprocess.Popen(
        [*civic_command(), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


TOKEN = re.compile(r"^desk token\s+(civ_city-hall_\S+)", re.MULTILINE)


def _read_desk_token(process: subprocess.Popen[str]) -> str:
    """The desk token the demo prints right after the portal URL."""
    assert process.stdout is not None
    seen = ""
    for _ in range(10):
        seen += process.stdout.readline()
        if match := TOKEN.search(seen):
            return match.group(1)
    raise AssertionError(f"no desk token in the output:\n{seen}")


def test_demo_serves_the_portal_with_live_activity_then_cleans_up(tmp_path: Path) -> None:
    with start(["demo", "--port", "0", "--serve-seconds", "6"], tmp_path) as process:
        url, _ = wait_for_url(process)
        with httpx.Client(base_url=url, timeout=10) as http:
            health = http.get("/healthz").json()
            assert health["chain_id"] == "demo-seoul"
            start_height = health["height"]
            home = http.get("/")
            assert home.status_code == 200
            assert 'lang="ko"' in home.text
            assert http.get("/api/v1/blocks").json()["blocks"][0]["header"]["height"] >= 1
            # The printed desk token lets the reader issue as city hall; nothing else does.
            token = _read_desk_token(process)
            register = "/api/v1/identity/credentials"
            assert http.get(register).status_code == 401
            answer = http.get(register, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            assert http.get("/identity").status_code == 200
            deadline = time.monotonic() + 5
            while http.get("/healthz").json()["height"] == start_height:  # activity commits
                assert time.monotonic() < deadline, "no new block while serving"
                time.sleep(0.2)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "more records were anchored while serving" in out
    assert list(tmp_path.iterdir()) == []  # the temporary city is gone


def test_node_run_serves_an_existing_city(tmp_path: Path) -> None:
    made = run_civic("init", "--city", "Busan", "--chain-id", "busan-1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    with start(["node", "run", "--port", "0"], tmp_path) as process:
        url, seen = wait_for_url(process)
        assert "busan-1" in seen
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/healthz").json()["chain_id"] == "busan-1"
            assert http.get("/api/v1/genesis").json()["city"] == "Busan"
        # While the node runs it holds the city's lock; reads still work.
        locked = run_civic("tx", "send", "notary", "anchor", "--key", "city-hall", cwd=tmp_path)
        assert locked.returncode == 1
        assert "node_error" in locked.stderr or "lock" in locked.stderr
        assert run_civic("query", "governance", "agencies", cwd=tmp_path).returncode == 0
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode in (0, -15), process.returncode
