"""Durable, private, never-overwriting file writes, for key files and wallet credentials."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
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


def replace_private_file(path: Path, content: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file (temporary name, fsync, rename), creating
    its directory (0700) if needed; a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    fsync_directory(path.parent)


class UnsafeFileError(OSError):
    """A private file that is a symbolic link, not a regular file, or open to group/others."""


class FileTooLargeError(OSError):
    """A private file larger than its reader allows."""


def read_private_file(path: Path, max_size: int) -> bytes:
    """Read a file that must be private: no symlink, a regular file, mode 0600 or stricter.

    Raises ``FileNotFoundError``, ``UnsafeFileError``, ``FileTooLargeError`` or ``OSError``,
    each with a message naming the file, for the caller to map to its own error reasons.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafeFileError(f"{path} is a symbolic link") from e
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(f"{path} is not a regular file")
        if info.st_mode & 0o077:
            raise UnsafeFileError(
                f"{path} is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600 on it"
            )
        data = handle.read(max_size + 1)
    if len(data) > max_size:
        raise FileTooLargeError(f"{path} is too large")
    return data
