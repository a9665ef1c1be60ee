"""Durable, private, never-overwriting file writes, for key files and wallet credentials."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_new_file(directory: Path, path: Path, content: bytes) -> None:
    """Write a new 0600 file atomically (temporary name, fsync, hard link), then fsync the
    directory. Raises ``FileExistsError`` if ``path`` exists (never overwrites) and ``OSError``
    on any other failure; a crash leaves either no file or the whole file.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    fsync_directory(directory)


def fsync_directory(path: Path) -> None:
    """Make a new directory entry durable; best effort where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
