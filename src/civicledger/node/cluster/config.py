"""The cluster file a node runs with (``civic node run --cluster FILE``): a strict JSON model."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from civicledger.errors import NodeError


class ClusterConfig(BaseModel):
    """Where the stream is and how blocks are cut; identical on every node except ``node_key``
    and ``peers``.

    ``quorum`` is how many distinct genesis producers must attest the same header for a block
    to be final; ``None`` means a majority of the genesis producers.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    nats_urls: list[str] = Field(min_length=1)
    stream: str | None = Field(default=None, pattern=r"^[A-Z0-9_]{1,64}$")
    replicas: int = Field(default=3)
    quorum: int | None = Field(default=None, ge=1)
    block_interval_ms: int = Field(default=50, ge=1, le=60_000)
    max_block_txs: int = Field(default=2000, ge=1, le=100_000)
    dedup_window_s: int = Field(default=120, ge=1, le=86_400)
    stream_max_msgs: int = Field(default=-1, ge=-1)
    stream_max_age_s: int = Field(default=0, ge=0)
    """0: keep messages for ever (the stream is then the chain's whole history)."""
    node_key: str = "node"
    """Keystore name of this node's key (a genesis producer)."""
    peers: list[str] = Field(default_factory=list)
    """Base URLs of other nodes (``http://host:port``) to fetch a snapshot from."""

    @field_validator("replicas")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError("replicas must be 1 (one test server) or 3")
        return value

    @field_validator("nats_urls")
    @classmethod
    def _nats_scheme(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("nats://", "tls://")):
                raise ValueError(f"{url!r} is not a nats:// or tls:// URL")
        return value

    def quorum_of(self, producers: int) -> int:
        """The quorum for ``producers`` genesis producers (fail closed: never above them)."""
        quorum = self.quorum if self.quorum is not None else producers // 2 + 1
        if quorum > producers:
            raise NodeError(f"quorum {quorum} is more than the {producers} genesis producers")
        return quorum

    @classmethod
    def load(cls, path: Path) -> ClusterConfig:
        try:
            return cls.model_validate_json(Path(path).read_bytes())
        except (OSError, ValidationError) as e:
            raise NodeError(f"cluster file {path}: {e}") from e


__all__ = ["ClusterConfig"]
