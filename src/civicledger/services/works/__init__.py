"""Direct payment of subcontractors on public works (Seoul's 대금e바로, 하도급 대금 직접지급).

One contract, ``works`` (``contract.Works``): an ordering department's escrow at the custodian
bank, the split registered by the prime and its subcontractors, work verified by the site
supervisor, stage releases approved by both the department and the supervisor that pay every
party directly, and late-payment alerts; see ``docs/works.md``. ``pseudonyms`` computes the
keyed hashes that stand for workers and accounts on the ledger.
"""

from civicledger.services.works.contract import CONTRACT_NAME, ORDERER_ROLE, Works

__all__ = ["CONTRACT_NAME", "ORDERER_ROLE", "Works"]
