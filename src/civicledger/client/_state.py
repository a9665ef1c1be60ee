"""The trusted tree head on disk, so a command-line client keeps its view of the log across runs.

The file holds the genesis hash it was written under and the signed tree head; it is public
data (no secret), written atomically (temporary file, fsync, rename), so a crash leaves either
the old head or the new one. A file that does not parse, was written for another genesis or
holds a head no producer signed is an error, never silently ignored: ignoring it would let
whoever can corrupt the file reset the client to trust-on-first-use.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from civicledger.crypto.encoding import canonical_json
from civicledger.errors import CivicError, GenesisError, ProofError
from civicledger.ledger.block import SignedTreeHead
from civicledger.ledger.genesis import Genesis

HEAD_FILE_KIND = "civicledger/trusted-head/v1"


class HeadFile(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kind: str = Field(default=HEAD_FILE_KIND, pattern=r"^civicledger/trusted-head/v1$")
    genesis_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 of the canonical genesis the head was verified against."""
    tree_head: SignedTreeHead


def load_head(path: Path, genesis: Genesis) -> SignedTreeHead | None:
    """The head stored at ``path`` (None if there is no file yet); its signature is checked later.

    Raises GenesisError if the file was written for another genesis, ProofError if it is not a
    trusted-head file, CivicError (reason ``head_file``) if it cannot be read.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CivicError(
            f"cannot read trusted head file {path}: {e.strerror}", reason="head_file"
        ) from e
    try:
        stored = HeadFile.model_validate_json(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ProofError(f"trusted head file {path}: {where}: {first['msg']}") from e
    if stored.genesis_hash != genesis.hash().hex():
        raise GenesisError(f"trusted head file {path} was written for another genesis")
    return stored.tree_head


def save_head(path: Path, genesis: Genesis, head: SignedTreeHead) -> None:
    """Replace the file at ``path`` atomically with ``head``."""
    doc = HeadFile(genesis_hash=genesis.hash().hex(), tree_head=head)
    data = canonical_json(doc.model_dump(mode="json")) + b"\n"
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise CivicError(
            f"cannot write trusted head file {path}: {e.strerror}", reason="head_file"
        ) from e
