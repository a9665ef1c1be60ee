"""What every command shares: the city directory, consoles, option parsing and error lines."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from civicledger.city import CityDir
from civicledger.crypto.encoding import parse_json
from civicledger.errors import EncodingError

DEFAULT_DIR = Path("city")
_PIPE_WIDTH = 160
"""Rich's width when writing to a pipe or file: wide enough that a did:key is never folded."""


@dataclass(frozen=True)
class CliState:
    """The global options, kept on the Click context as ``ctx.obj``."""

    dir: Path
    dir_given: bool
    """Whether ``--dir`` was given on the command line (not taken from CIVIC_DIR or the default)."""

    @property
    def city(self) -> CityDir:
        return CityDir(self.dir)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if isinstance(obj, CliState):
        return obj
    return CliState(DEFAULT_DIR, dir_given=False)


def out() -> Console:
    """A console on stdout; created per use so it writes to whatever ``sys.stdout`` is now."""
    return _console(stderr=False)


def err() -> Console:
    return _console(stderr=True)


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else _PIPE_WIDTH
    # Markup and emoji codes are off: names, labels, results and DIDs ("did:key:...") are
    # printed as the text they are.
    return Console(
        stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=True, width=width
    )


def error_line(reason: str, message: str) -> None:
    """Print ``error: <reason>: <message>`` as one red line on stderr."""
    flat = " ".join(str(message).split())
    err().print(Text(f"error: {reason}: {flat}", style="red"))


def warning_line(message: str) -> None:
    err().print(Text(f"WARNING: {message}", style="bold yellow"))


def passphrase_from_env(variable: str | None) -> str | None:
    """The passphrase held in environment variable ``variable``; None when no variable is named.

    Passphrases come from the environment, never from the command line, where other users of
    the machine could read them in the process list.
    """
    if variable is None:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise typer.BadParameter(
            f"environment variable {variable} is not set", param_hint="--passphrase-env"
        )
    return value


def json_object(text: str, option: str) -> dict[str, Any]:
    """Parse a JSON object given on the command line; a usage error (exit 2) if it is not one."""
    try:
        value = parse_json(text.encode("utf-8"))
    except EncodingError as e:
        raise typer.BadParameter(e.message, param_hint=option) from e
    if not isinstance(value, dict):
        raise typer.BadParameter(
            'must be a JSON object, e.g. \'{"key": "value"}\'', param_hint=option
        )
    return value


def hex_id(text: str, what: str) -> bytes:
    """A 32-byte id given as 64 hex digits; a usage error otherwise."""
    cleaned = text.strip().lower()
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise typer.BadParameter(f"{text!r} is not 64 hex digits", param_hint=what)
    return bytes.fromhex(cleaned)
