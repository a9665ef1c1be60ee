"""Finality on a cluster, checked by the client: a pure function from a verified header and the
node's attestations answer to a ``Finality``.

A block is final for a client once ``quorum`` distinct genesis producers signed an attestation
(purpose ``attest``, for the client's chain) of exactly the header the client verified itself:
same height, header hash, state hash and log root. Invariants:

- the node's ``final``, ``agrees``, ``quorum`` and top-level ``header_hash`` fields are never
  read: every attestation is rebuilt from the verified header's values and checked with
  ``SignedAttestation.verify`` (the same check a cluster node makes);
- an attestation that is malformed, by a key that is not a genesis producer, for another header,
  state or log, or whose signature does not hold (for instance, one signed for another chain)
  is not counted, and neither is a second one by a node already counted;
- the default quorum is a majority of the genesis producers (``len // 2 + 1``).

Pure: no I/O and no clock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from civicledger.client._http import bad_response
from civicledger.errors import LedgerError
from civicledger.ledger.block import BlockHeader
from civicledger.node.cluster.attest import Attestation, SignedAttestation


@dataclass(frozen=True, slots=True)
class Finality:
    """Whether block ``height`` is final, as the client verified it (not the node's word).

    ``attesters`` are the distinct genesis producers whose attestation of exactly this header
    (``header_hash``, which the client verified as signed by a producer) has a valid signature;
    ``final`` is ``len(attesters) >= quorum``. ``ignored`` says, for each attestation the node
    sent that was not counted, who it claimed to be from (``""`` if it did not say) and why:
    ``malformed``, ``not_a_producer``, ``header_mismatch``, ``state_mismatch``,
    ``log_root_mismatch``, ``bad_signature`` or ``duplicate``.
    """

    height: int
    header_hash: str
    quorum: int
    attesters: tuple[str, ...]
    final: bool
    ignored: tuple[tuple[str, str], ...] = ()


def default_quorum(producers: Collection[str]) -> int:
    """A majority of the genesis producers, as a cluster's own default (docs/cluster.md)."""
    return len(producers) // 2 + 1


def check_quorum(quorum: int, producers: Collection[str]) -> int:
    """``quorum`` must be a whole number from 1 to the number of producers."""
    if type(quorum) is not int or not 1 <= quorum <= len(producers):
        raise ValueError(
            f"a quorum is an integer from 1 to the {len(producers)} genesis producers, "
            f"not {quorum!r}"
        )
    return quorum


def verify_attestations(
    header: BlockHeader,
    answer: Any,
    producers: Collection[str],
    chain_id: str,
    quorum: int,
) -> Finality:
    """Count the valid attestations of ``header`` in a ``GET /blocks/{h}/attestations`` answer.

    ``header`` must already be verified (signed by a genesis producer for ``chain_id``). Raises
    NodeError ``bad_response`` if the answer is not an object with an ``attestations`` list;
    entries that do not check out are ignored, never trusted (see the module docstring).
    """
    check_quorum(quorum, producers)
    if not isinstance(answer, dict) or not isinstance(answer.get("attestations"), list):
        raise bad_response("an attestations answer must be an object with an 'attestations' list")
    allowed = frozenset(producers)
    header_hash = header.hash().hex()
    attesters: list[str] = []
    ignored: list[tuple[str, str]] = []
    for item in answer["attestations"]:
        node = item.get("node") if isinstance(item, dict) else None
        claimed = node if isinstance(node, str) else ""
        reason = _check(item, header, header_hash, allowed, chain_id, attesters)
        if reason is None:
            attesters.append(claimed)
        else:
            ignored.append((claimed, reason))
    return Finality(
        height=header.height,
        header_hash=header_hash,
        quorum=quorum,
        attesters=tuple(attesters),
        final=len(attesters) >= quorum,
        ignored=tuple(ignored),
    )


def _check(
    item: Any,
    header: BlockHeader,
    header_hash: str,
    producers: frozenset[str],
    chain_id: str,
    counted: list[str],
) -> str | None:
    """Why ``item`` does not count (None if it does)."""
    if not isinstance(item, dict):
        return "malformed"
    node, signature = item.get("node"), item.get("signature")
    if not isinstance(node, str) or not isinstance(signature, str):
        return "malformed"
    if node not in producers:
        return "not_a_producer"
    if node in counted:
        return "duplicate"
    for key, expected, reason in (
        ("header_hash", header_hash, "header_mismatch"),
        ("state_hash", header.state_hash, "state_mismatch"),
        ("log_root", header.log_root, "log_root_mismatch"),
    ):
        if item.get(key) != expected:
            return reason
    return _signature(node, signature, header, header_hash, producers, chain_id)


def _signature(
    node: str,
    signature: str,
    header: BlockHeader,
    header_hash: str,
    producers: frozenset[str],
    chain_id: str,
) -> str | None:
    """Rebuild ``node``'s attestation of ``header`` for ``chain_id`` and check its signature."""
    try:
        signed = SignedAttestation(
            attestation=Attestation(
                chain_id=chain_id,
                height=header.height,
                header_hash=header_hash,
                state_hash=header.state_hash,
                log_root=header.log_root,
                node=node,
            ),
            signature=signature,
        )
        signed.verify(chain_id, producers)
    except ValidationError:
        return "malformed"
    except LedgerError:
        return "bad_signature"
    return None


__all__ = ["Finality", "check_quorum", "default_quorum", "verify_attestations"]
