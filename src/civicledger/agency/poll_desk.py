"""The polls desk a running node offers over HTTP and in its portal: read polls, register voters.

Poll creation, votes and trustee steps are transactions their signers sign themselves (an
officer's key, a voter's per-poll key, a trustee's key) and send to ``POST /api/v1/tx``; the
desk only reads, and registers voters for the polls whose registrar agency's key this node
holds (see ``agency.registrar``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import AgencyLedger
from civicledger.agency.registrar import POLLS_CONTRACT, Registrar, RegistrarError, Registration
from civicledger.errors import CivicError

__all__ = ["PollDesk"]


class PollDesk:
    def __init__(self, ledger: AgencyLedger, identity: IdentityDesk) -> None:
        self.ledger = ledger
        self.identity = identity

    def _query(self, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.query(POLLS_CONTRACT, method, args)

    def polls(self, *, after: str = "", limit: int = 100) -> Any:
        return self._query("polls", {"after": after, "limit": limit})

    def poll(self, poll_id: str) -> Mapping[str, Any]:
        record = self._query("poll", {"poll_id": poll_id})
        if not isinstance(record, Mapping):
            raise RegistrarError(f"there is no poll {poll_id!r}", reason="unknown_poll")
        return record

    def turnout(self, poll_id: str) -> Any:
        return self._query("turnout", {"poll_id": poll_id})

    def tally(self, poll_id: str) -> Any:
        return self._query("tally", {"poll_id": poll_id})

    def series(self, poll_id: str, *, after_ms: int = -1, limit: int = 1000) -> Any:
        return self._query("series", {"poll_id": poll_id, "after_ms": after_ms, "limit": limit})

    def trustees(self, poll_id: str) -> Any:
        return self._query("trustees", {"poll_id": poll_id})

    def ballot(self, poll_id: str, pseudonym: str) -> Any:
        return self._query("ballot", {"poll_id": poll_id, "pseudonym": pseudonym})

    def register(
        self,
        poll_id: str,
        presentation: Mapping[str, Any] | str,
        voter_key: str,
        *,
        challenge: str,
    ) -> Registration:
        """Register a voter: the presentation must answer ``challenge`` (from this node's
        identity desk) with the poll's credential type."""
        registrar_agency = str(self.poll(poll_id).get("registrar"))
        try:
            self.ledger.key(registrar_agency)
        except CivicError as e:
            raise RegistrarError(
                f"this node cannot register for {poll_id!r}: it does not hold the key of its "
                f"registrar {registrar_agency!r}",
                reason="registrar_unavailable",
            ) from e
        registrar = Registrar(self.ledger, registrar_agency)
        return registrar.register(
            poll_id,
            presentation,
            voter_key,
            lambda shown, credential_type: self.identity.verify(
                shown, expected_type=credential_type, challenge=challenge
            ),
        )
