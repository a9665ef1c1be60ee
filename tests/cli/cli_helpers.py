"""Helpers for driving ``civic`` in-process (Typer's CliRunner) and as a real subprocess.

Not a conftest.py: the other suites import ``tests/conftest.py`` as ``conftest``, and a second
module of that name here would shadow it. Test modules import these helpers by a unique name
and declare their two fixtures (``civic`` and ``city_dir``) from ``new_runner``/``new_city``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from typer.testing import CliRunner, Result

from civicledger.cli.app import app

Civic = Callable[..., Result]


def assert_one_error_line(result: Result, reason: str) -> str:
    """Exit 1 and exactly one ``error: <reason>: ...`` line on stderr, and no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {reason}: "), lines[0]
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    return lines[0]


def new_runner() -> Civic:
    """Run ``civic ARGS...`` in-process; ``env`` adds environment variables for that run."""
    runner = CliRunner()

    def run(*args: str | Path, env: Mapping[str, str] | None = None) -> Result:
        return runner.invoke(app, [str(a) for a in args], env=env)

    return run


def new_city(civic: Civic, root: Path) -> Path:
    """Initialise an unencrypted city ``testville-1`` (default city-hall agency) at ``root``."""
    result = civic("--dir", root, "init", "--city", "Testville", "--chain-id", "testville-1")
    assert result.exit_code == 0, result.output
    return root


def civic_command() -> list[str]:
    """The ``civic`` script next to this interpreter, else ``python -m civicledger.cli``."""
    script = Path(sys.executable).parent / "civic"
    if script.exists():
        return [str(script)]
    found = shutil.which("civic")
    return [found] if found else [sys.executable, "-m", "civicledger.cli"]


def run_civic(
    *args: str | Path, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``civic`` as a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CIVIC_DIR", None)
    return subprocess.run(
        [*civic_command(), *(str(a) for a in args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
