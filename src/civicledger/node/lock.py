"""One writer per ledger: an exclusive advisory lock on the data directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from civicledger.errors import NodeError


class DirectoryLock:
    """Held for the life of a node; the OS releases it if the process dies (even by kill -9)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "node.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise NodeError(
                f"another process is running the node for {self.path.parent}; stop it first"
            ) from e
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
