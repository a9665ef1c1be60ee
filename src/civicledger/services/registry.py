"""The contracts a city's chain runs: the built-ins plus every service's.

Built here, above ``contracts``, because ``contracts`` must not import ``services``. Every node of
a chain must run the same registry; a new service adds its contracts here.
"""

from __future__ import annotations

from civicledger.contracts.governance import Governance
from civicledger.contracts.notary import Notary
from civicledger.contracts.registry import ContractRegistry
from civicledger.services.certificates.contract import Certificates
from civicledger.services.currency.contract import Currency
from civicledger.services.donations.contract import Donations
from civicledger.services.identity.did_registry import DidRegistry
from civicledger.services.identity.status_registry import StatusListRegistry
from civicledger.services.identity.visits import Visits
from civicledger.services.vehicles.contract import Vehicles
from civicledger.services.voting.polls import Polls
from civicledger.services.works.contract import Works


def city_registry() -> ContractRegistry:
    """Governance, notary, the identity service's DID registry, status lists and visits, polls,
    the currency contract, public works' direct payment (works), donations and disbursements
    (donations), used-car history and trade (vehicles), anti-forgery certificates
    (certificates)."""
    return ContractRegistry(
        [
            Governance(),
            Notary(),
            DidRegistry(),
            StatusListRegistry(),
            Visits(),
            Polls(),
            Currency(),
            Donations(),
            Works(),
            Vehicles(),
            Certificates(),
        ]
    )
