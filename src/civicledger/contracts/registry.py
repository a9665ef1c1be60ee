"""Which contracts a chain runs. Every node of a chain must run the same registry."""

from __future__ import annotations

from collections.abc import Iterable

from civicledger.contracts.base import Contract, MethodSpec
from civicledger.contracts.governance import Governance
from civicledger.contracts.notary import Notary
from civicledger.errors import RejectReason, TxRejected


class ContractRegistry:
    def __init__(self, contracts: Iterable[Contract]) -> None:
        self._contracts: dict[str, Contract] = {}
        for contract in contracts:
            if contract.name in self._contracts:
                raise ValueError(f"two contracts named {contract.name!r}")
            self._contracts[contract.name] = contract

    def names(self) -> list[str]:
        return sorted(self._contracts)

    def contract(self, name: str) -> Contract:
        try:
            return self._contracts[name]
        except KeyError:
            raise TxRejected(
                RejectReason.UNKNOWN_CONTRACT, f"no contract named {name!r} on this chain"
            ) from None

    def method(self, contract_name: str, method_name: str) -> tuple[Contract, MethodSpec]:
        contract = self.contract(contract_name)
        spec = contract.methods.get(method_name)
        if spec is None:
            raise TxRejected(
                RejectReason.UNKNOWN_METHOD, f"contract {contract_name!r} has no {method_name!r}"
            )
        return contract, spec


def default_registry() -> ContractRegistry:
    """The built-in contracts; services add theirs as they are built."""
    return ContractRegistry([Governance(), Notary()])
