"""Sample claims and an issuing test city, shared by the identity, API, CLI and portal suites.

Not a conftest.py: imported by its unique name (``tests/`` is on the path through conftest).
The claims are fictional; ``PERSONAL`` lists the strings a privacy scan must never find on the
ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from civicledger.agency.issuer import create_did, grant_issuer
from civicledger.agency.ledger import CityLedger
from civicledger.city import AgencySpec, CityDir, create_city

RESIDENT = {
    "given_name": "Minji",
    "family_name": "Kimura-Park",
    "birthdate": "1990-04-17",
    "address": "12 Maple Lane, Apt 3, Testville",
    "district": "Riverside",
}
QUALIFICATION = {"qualification": "Licensed electrician", "license_number": "EL-2023-0042"}
PERSONAL = ["Minji", "Kimura-Park", "1990-04-17", "Maple Lane", "EL-2023-0042"]
GRANTS = (("city-hall", "ResidentCard"), ("archive", "Qualification"))
"""City hall issues resident cards; the archive issues qualifications."""


def issuing_city(
    root: Path,
    grants: Iterable[tuple[str, str]] = GRANTS,
    *,
    did_keys: dict[str, str] | None = None,
    more_agencies: Iterable[str] = (),
) -> CityDir:
    """A new city "Testville" in ``root`` whose agencies (those named in ``grants``) have
    ``did:civic`` documents and the grants. ``did_keys`` maps an agency to a keystore key of
    its own to assert with (created here), apart from its ledger key.

    ``more_agencies`` are added to genesis without a DID or grants (a poll's registrar...).
    Uses ``CityLedger``, which opens the node itself: call it before serving the city.
    """
    grants = list(grants)
    issuers = sorted({agency for agency, _ in grants})
    agencies = sorted({*issuers, *more_agencies})
    layout = create_city(
        root,
        city="Testville",
        chain_id="testville-1",
        agencies=[AgencySpec(a, a.replace("-", " ").title()) for a in agencies],
    )
    ledger = CityLedger(layout)
    for agency in issuers:
        key_name = (did_keys or {}).get(agency)
        if key_name is not None:
            layout.keystore.create(key_name)
        create_did(ledger, agency, key_name=key_name)
    for agency, credential_type in grants:
        grant_issuer(ledger, agency, credential_type)
    return layout
