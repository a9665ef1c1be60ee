"""A secret poll's trustee: its keys, and its steps of the key ceremony and of the count.

A trustee is a person or office trusted with a share of a poll's decryption key. Its directory
holds what only it may know::

    <dir>/keys/trustee.key.json   Ed25519 key that signs its transactions (a Keystore file,
                                  optionally passphrase-encrypted); its did:key is what the
                                  poll's ``trustees`` list names
    <dir>/box.key                 X25519 key the other trustees seal its shares to (0600)
    <dir>/polls/<poll>.json       its share of its own polynomial (0600), kept from dealing to
                                  decrypting; the others' shares stay sealed on the ledger

No file ever holds the poll's key: a trustee's secret share is recomputed when it decrypts,
and the key itself exists only as k shares combined in the exponent.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey as BoxPrivateKey

from civicledger.agency.ledger import LedgerAccess
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError
from civicledger.files import read_private_file, write_new_file
from civicledger.keystore import Keystore
from civicledger.services.voting import dkg, dlog, elgamal, group
from civicledger.services.voting.polls import (
    CONTRACT_NAME,
    partial_context,
    possession_context,
    share_context,
)

__all__ = ["Trustee", "TrusteeError", "compute_result"]

_KEY_NAME = "trustee"
_BOX_FILE = "box.key"


class TrusteeError(CivicError):
    """A trustee step cannot be taken (``not_a_trustee``, ``wrong_phase``, ``no_dealing``,
    ``bad_trustee_dir``, ``not_enough_shares``), or the ledger refused it (its reason)."""

    reason = "trustee_error"


def _poll(ledger: LedgerAccess, poll_id: str) -> dict[str, Any]:
    record = ledger.query(CONTRACT_NAME, "poll", {"poll_id": poll_id})
    if not isinstance(record, dict):
        raise TrusteeError(f"there is no poll {poll_id!r}", reason="unknown_poll")
    if record.get("mode") != "secret":
        raise TrusteeError(f"poll {poll_id!r} is not a secret poll", reason="wrong_mode")
    return record


def _trustees(ledger: LedgerAccess, poll_id: str) -> list[dict[str, Any]]:
    return list(ledger.query(CONTRACT_NAME, "trustees", {"poll_id": poll_id}))


class Trustee:
    """One trustee's directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keystore = Keystore(directory / "keys")

    @classmethod
    def create(cls, directory: str | Path, *, passphrase: str | None = None) -> Trustee:
        root = Path(directory)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        trustee = cls(root)
        trustee._keystore.create(_KEY_NAME, passphrase=passphrase)
        write_new_file(root, root / _BOX_FILE, secrets.token_bytes(32))
        return trustee

    @classmethod
    def open(cls, directory: str | Path) -> Trustee:
        root = Path(directory)
        if not (root / _BOX_FILE).is_file():
            raise TrusteeError(f"{root} is not a trustee directory", reason="bad_trustee_dir")
        return cls(root)

    @property
    def did(self) -> str:
        return self._keystore.public(_KEY_NAME).did

    def _key(self, passphrase: str | None) -> PrivateKey:
        return self._keystore.load(_KEY_NAME, passphrase=passphrase)

    def _box(self) -> BoxPrivateKey:
        try:
            raw = read_private_file(self.directory / _BOX_FILE, 64)
        except OSError as e:
            raise TrusteeError(f"cannot read the box key: {e}", reason="bad_trustee_dir") from e
        return BoxPrivateKey(raw)

    @property
    def box_public_hex(self) -> str:
        return bytes(self._box().public_key).hex()

    def index(self, poll: Mapping[str, Any]) -> int:
        """This trustee's number in the poll (1-based)."""
        trustees = list(poll.get("trustees") or [])
        if self.did not in trustees:
            raise TrusteeError(f"{self.did} is not a trustee of this poll", reason="not_a_trustee")
        return trustees.index(self.did) + 1

    def _send(
        self,
        ledger: LedgerAccess,
        method: str,
        args: dict[str, Any],
        passphrase: str | None,
    ) -> Any:
        try:
            return ledger.send_as(self._key(passphrase), CONTRACT_NAME, method, args)
        except CivicError as e:
            raise TrusteeError(e.message, reason=e.reason) from e

    # -- the key ceremony ----------------------------------------------------------------------

    def join(self, ledger: LedgerAccess, poll_id: str, *, passphrase: str | None = None) -> None:
        """Post the box key the others will seal this trustee's shares to."""
        self.index(_poll(ledger, poll_id))
        args = {"poll_id": poll_id, "box_key": self.box_public_hex}
        self._send(ledger, "trustee_join", args, passphrase)

    def deal(self, ledger: LedgerAccess, poll_id: str, *, passphrase: str | None = None) -> None:
        """Make a polynomial, post its commitments, a proof of possession and the others'
        sealed shares; keep this trustee's own share in its directory."""
        poll = _poll(ledger, poll_id)
        me = self.index(poll)
        if poll.get("phase") != "dealing":
            raise TrusteeError(
                f"the ceremony is in phase {poll.get('phase')}", reason="wrong_phase"
            )
        trustees = _trustees(ledger, poll_id)
        dealing = dkg.deal(int(poll["threshold"]), len(trustees))
        context = share_context(poll["chain_id"], poll_id)
        shares = {
            str(t["index"]): dkg.encrypt_share(
                bytes.fromhex(t["box_key"]), me, t["index"], dealing.share_for(t["index"]), context
            )
            for t in trustees
            if t["index"] != me
        }
        own = self._own_share_path(poll_id)
        own.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        content = json.dumps(
            {"poll_id": poll_id, "own_share": group.scalar_hex(dealing.share_for(me))}
        )
        # Kept before posting: a dealing on the ledger whose own share was lost cannot decrypt.
        write_new_file(own.parent, own, content.encode())
        proof = dkg.prove_possession(dealing, me, possession_context(poll["chain_id"], poll_id))
        args = {
            "poll_id": poll_id,
            "commitments": [group.point_hex(c) for c in dealing.commitments],
            "shares": shares,
            "possession": dict(proof.to_json()),
        }
        self._send(ledger, "trustee_deal", args, passphrase)

    def ack(
        self, ledger: LedgerAccess, poll_id: str, *, passphrase: str | None = None
    ) -> list[int]:
        """Open the shares sealed to this trustee, check each against its dealer's commitments
        and post the dealers whose share failed (none: the ceremony can finish)."""
        poll = _poll(ledger, poll_id)
        me = self.index(poll)
        complaints = sorted(self._received(ledger, poll, me, strict=False)[1])
        self._send(
            ledger, "trustee_ack", {"poll_id": poll_id, "complaints": complaints}, passphrase
        )
        return complaints

    # -- the count -----------------------------------------------------------------------------

    def decrypt(self, ledger: LedgerAccess, poll_id: str, *, passphrase: str | None = None) -> None:
        """After closing: post this trustee's partial decryption of every option's aggregate,
        each with its proof."""
        poll = _poll(ledger, poll_id)
        me = self.index(poll)
        shares, _ = self._received(ledger, poll, me, strict=True)
        secret = dkg.combine_secret_share(shares)
        aggregate = ledger.query(CONTRACT_NAME, "aggregate", {"poll_id": poll_id})
        partials = []
        for option, raw in enumerate(aggregate or []):
            ciphertext = elgamal.Ciphertext.from_json(raw)
            context = partial_context(poll["chain_id"], poll_id, me, option)
            d, proof = dkg.partial_decrypt(secret, ciphertext.alpha, context)
            partials.append({"D": group.point_hex(d), "proof": dict(proof.to_json())})
        self._send(ledger, "decrypt_share", {"poll_id": poll_id, "partials": partials}, passphrase)

    def publish(
        self, ledger: LedgerAccess, poll_id: str, *, passphrase: str | None = None
    ) -> list[int]:
        """Compute the counts from the posted partial decryptions and publish them (the
        contract stores them only if they match)."""
        counts = compute_result(ledger, poll_id)
        self._send(ledger, "publish_result", {"poll_id": poll_id, "counts": counts}, passphrase)
        return counts

    # -- helpers -------------------------------------------------------------------------------

    def _own_share_path(self, poll_id: str) -> Path:
        return self.directory / "polls" / f"{poll_id}.json"

    def _received(
        self, ledger: LedgerAccess, poll: Mapping[str, Any], me: int, *, strict: bool
    ) -> tuple[dict[int, int], set[int]]:
        """This trustee's shares from every dealer (its own from its file) and the dealers
        whose share did not open or verify."""
        poll_id = str(poll["poll_id"])
        try:
            own = json.loads(read_private_file(self._own_share_path(poll_id), 4096))
        except OSError as e:
            raise TrusteeError(
                f"this trustee's own share for {poll_id} is missing: {e}", reason="no_dealing"
            ) from e
        shares = {me: group.scalar_from_hex(own["own_share"])}
        bad: set[int] = set()
        context = share_context(poll["chain_id"], poll_id)
        box = self._box()
        for dealer in _trustees(ledger, poll_id):
            j = int(dealer["index"])
            if j == me:
                continue
            try:
                share = dkg.decrypt_share(
                    box, dealer["shares"][str(me)], dealer=j, recipient=me, context=context
                )
                commitments = [group.point_from_hex(c) for c in dealer["commitments"]]
                if not dkg.verify_share(commitments, me, share):
                    raise TrusteeError("share does not match", reason="share_mismatch")
                shares[j] = share
            except (CivicError, KeyError, TypeError) as e:
                if strict:
                    raise TrusteeError(
                        f"the share from trustee {j} is unusable: {e}", reason="share_mismatch"
                    ) from e
                bad.add(j)
        return shares, bad


def compute_result(ledger: LedgerAccess, poll_id: str) -> list[int]:
    """The counts the posted partial decryptions give: the k lowest-numbered trustees' shares
    combined (as the contract does), then the discrete log of each option's total."""
    poll = _poll(ledger, poll_id)
    k = int(poll["threshold"])
    posted = sorted(
        ledger.query(CONTRACT_NAME, "partials", {"poll_id": poll_id}), key=lambda p: p["trustee"]
    )
    if len(posted) < k:
        raise TrusteeError(
            f"{len(posted)} of {k} partial decryptions are posted", reason="not_enough_shares"
        )
    used = posted[:k]
    aggregate = ledger.query(CONTRACT_NAME, "aggregate", {"poll_id": poll_id}) or []
    voted = int(poll.get("voted", 0))
    counts = []
    for option, raw in enumerate(aggregate):
        ciphertext = elgamal.Ciphertext.from_json(raw)
        combined = dkg.combine_partials(
            {
                int(p["trustee"]): group.point_from_hex(
                    p["partials"][option]["D"], allow_identity=True
                )
                for p in used
            }
        )
        counts.append(dlog.solve(group.sub(ciphertext.beta, combined), max(voted, 0)))
    return counts
