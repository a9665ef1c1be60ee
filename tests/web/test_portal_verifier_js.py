"""The in-browser verifier (static/verifier.js), run in Chromium against the Python verifier.

Every bundle here is real (made by the chain) or forged with the city's own keys, and every
case is decided twice: by verifier.js in the browser and by ``ledger/proofs.py``. They must
agree, and verifier.js must name the check that failed first.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser_helpers import chromium
from playwright.sync_api import Page
from portal_helpers import Site, running_site

from civicledger.crypto import merkle
from civicledger.crypto.encoding import b64url, canonical_json, sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import ProofError
from civicledger.ledger.block import SignedTreeHead, TreeHead
from civicledger.ledger.proofs import (
    ConsistencyBundle,
    InclusionBundle,
    load_bundle,
    verify_consistency_bundle,
    verify_inclusion_bundle,
)
from civicledger.ledger.receipt import log_leaf_bytes
from civicledger.ledger.tx import tx_from_json
from conftest import City

pytestmark = pytest.mark.browser

Doc = dict[str, Any]

_RUN = """async ([bundleText, genesisText, source]) => {
  const v = await import("/static/portal/verifier.js");
  try {
    const trust = await v.trustFromGenesis(genesisText, source);
    return { valid: true, facts: await v.verifyProofText(bundleText, trust) };
  } catch (e) {
    if (e instanceof v.VerifyError) return { valid: false, check: e.check, key: e.key };
    throw e;
  }
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The seeded city plus six tallies, one block each: a log of nine leaves."""
    with running_site(tmp_path_factory.mktemp("verifier") / "city") as running:
        for amount in range(1, 7):
            running.receipts[f"tally{amount}"] = running.send(
                "outsider", "tally", "add", {"amount": amount}
            )
        yield running


@pytest.fixture(scope="module")
def page(site: Site) -> Iterator[Page]:
    with chromium() as browser:
        page = browser.new_page()
        page.goto(site.url + "/verify")
        yield page


def genesis_text(city: City, *extra_producers: PrivateKey) -> str:
    doc = city.genesis.model_dump(mode="json")
    doc["producers"] = [*doc["producers"], *(k.public.did for k in extra_producers)]
    return json.dumps(doc)


def js_verify(page: Page, text: str, genesis: str, source: str = "server") -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(_RUN, [text, genesis, source])
    return result


def py_verify(text: str, trusted: frozenset[str]) -> str | None:
    """None if ``proofs.py`` accepts the proof file, else its ProofError message."""
    try:
        bundle = load_bundle(text.encode())
        if isinstance(bundle, ConsistencyBundle):
            verify_consistency_bundle(bundle, trusted)
        else:
            verify_inclusion_bundle(bundle, trusted)
    except ProofError as e:
        return str(e)
    return None


def inclusion_doc(site: Site, name: str = "tally3") -> Doc:
    bundle = site.node.chain.inclusion_proof(bytes.fromhex(site.receipts[name].tx_id))
    doc: Doc = bundle.model_dump(mode="json")
    return doc


# -- tamperings ------------------------------------------------------------------------------

Tamper = Callable[[Doc, City], None]


def _set(path: str, value: Any) -> Tamper:
    """Set ``path`` (dotted, list indices as numbers) to ``value`` or ``value(old)``."""

    def mutate(doc: Doc, _: City) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        node[key] = value(node[key]) if callable(value) else value

    return mutate


def _drop(path: str) -> Tamper:
    def mutate(doc: Doc, _: City) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


def _flip_hex(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


def _sign_head(head: dict[str, Any], key: PrivateKey) -> dict[str, Any]:
    signed: dict[str, Any] = SignedTreeHead.sign(TreeHead.model_validate(head), key).model_dump(
        mode="json"
    )
    return signed


def _resign(key_name: str) -> Tamper:
    """Re-sign the tree head with another key, naming that key as its signer."""

    def mutate(doc: Doc, city: City) -> None:
        key: PrivateKey = getattr(city, key_name)
        head = {**doc["tree_head"]["tree_head"], "signer": key.public.did}
        doc["tree_head"] = _sign_head(head, key)

    return mutate


def _forged_log(
    *, key_name: str = "producer", change: Callable[[Doc, City], None] | None = None
) -> Tamper:
    """A one-leaf log around the (changed) entry, its tree head signed by ``city.<key_name>``.

    With the producer's key this is what a compromised node could sign, so the checks after
    the Merkle path (chain id, transaction signature, receipt) are all that stand in the way.
    """

    def mutate(doc: Doc, city: City) -> None:
        entry = doc["entry"]
        if change is not None:
            change(entry, city)
        tx = tx_from_json(entry["tx"])
        leaf = log_leaf_bytes(tx.envelope_bytes(), canonical_json(entry["receipt"]))
        doc.update(leaf_index=0, tree_size=1, path=[])
        key: PrivateKey = getattr(city, key_name)
        head = {
            **doc["tree_head"]["tree_head"],
            "tree_size": 1,
            "root_hash": merkle.leaf_hash(leaf).hex(),
            "signer": key.public.did,
        }
        doc["tree_head"] = _sign_head(head, key)

    return mutate


def _bad_tx_signature(entry: Doc, city: City) -> None:
    entry["tx"]["signature"] = b64url(city.rogue.sign(b"something else"))
    entry["receipt"]["leaf_index"] = 0


def _other_chain(entry: Doc, city: City) -> None:
    tx = city.tx(city.outsider, "tally", "add", {"amount": 1}, nonce=1, chain_id="otherville")
    entry["tx"] = tx.to_json()
    entry["receipt"]["tx_id"] = tx.tx_id_hex
    entry["receipt"]["leaf_index"] = 0


def _receipt_of_another_tx(entry: Doc, city: City) -> None:
    entry["receipt"]["tx_id"] = "ab" * 32
    entry["receipt"]["leaf_index"] = 0


def _receipt_at_another_leaf(entry: Doc, city: City) -> None:
    entry["receipt"]["leaf_index"] = 5


INCLUSION_CASES = [
    pytest.param(_set("entry.receipt.status", "failed"), "inclusion", "root", id="receipt-status"),
    pytest.param(_set("entry.receipt.result", 0), "inclusion", "root", id="receipt-result"),
    pytest.param(_set("entry.tx.body.args.amount", 999), "inclusion", "root", id="tx-args"),
    pytest.param(_set("path.0", _flip_hex), "inclusion", "root", id="path-hash"),
    pytest.param(_set("path", lambda p: p[:-1]), "inclusion", "hashes, expected", id="path-short"),
    pytest.param(_set("leaf_index", lambda i: i + 1), "inclusion", "root", id="leaf-index"),
    pytest.param(_set("leaf_index", 10**6), "inclusion", "not in a tree", id="index-beyond"),
    pytest.param(
        _set("tree_head.signature", lambda s: b64url(bytes(64))),
        "tree_head_signature",
        "tree head signature",
        id="head-signature",
    ),
    pytest.param(
        _set("tree_head.tree_head.root_hash", _flip_hex),
        "tree_head_signature",
        "tree head signature",
        id="head-root",
    ),
    pytest.param(_resign("rogue"), "tree_head_signer", "not trusted", id="signer-not-in-genesis"),
    pytest.param(_resign("clerk"), "tree_head_signer", "not trusted", id="signer-an-agency"),
    pytest.param(_set("tree_size", lambda n: n + 1), "tree_size", "tree size", id="tree-size"),
    pytest.param(
        _drop("entry.receipt.message"), "entry_canonical", "canonical form", id="receipt-short"
    ),
    pytest.param(_set("entry.tx.body.nonce", "3"), "entry", "malformed", id="nonce-text"),
    pytest.param(_set("entry.extra", 1), "entry", "entry must be", id="entry-extra"),
    pytest.param(_set("path.0", "zz" * 32), "entry", "malformed", id="path-not-hex"),
    pytest.param(
        _set("entry.tx.signature", lambda s: s[:10] + "!!" + s[12:]),
        "entry",
        "malformed",
        id="signature-junk",
    ),
    pytest.param(
        _forged_log(change=_other_chain), "chain_id", "is for chain otherville", id="other-chain"
    ),
    pytest.param(
        _forged_log(change=_bad_tx_signature),
        "tx_signature",
        "transaction signature",
        id="tx-signature",
    ),
    pytest.param(
        _forged_log(change=_receipt_of_another_tx), "receipt", "receipt", id="receipt-other-tx"
    ),
    pytest.param(
        _forged_log(change=_receipt_at_another_leaf), "receipt", "receipt", id="receipt-other-leaf"
    ),
    pytest.param(
        _forged_log(key_name="rogue"), "tree_head_signer", "not trusted", id="forged-by-rogue"
    ),
    pytest.param(_set("extra", 1), "format", "Extra inputs", id="bundle-extra-field"),
    pytest.param(_drop("tree_head"), "format", "tree_head", id="no-tree-head"),
    pytest.param(_set("kind", "something/else"), "format", "kind", id="wrong-kind"),
]


def test_good_inclusion_bundle_is_valid_in_both(page: Page, site: Site) -> None:
    doc = inclusion_doc(site)
    text = json.dumps(doc)
    trusted = frozenset(site.city.genesis.producers)
    assert py_verify(text, trusted) is None
    result = js_verify(page, text, genesis_text(site.city))
    assert result["valid"] is True, result
    facts = result["facts"]
    receipt = site.receipts["tally3"]
    assert facts["txId"] == receipt.tx_id
    assert facts["leafIndex"] == receipt.leaf_index
    assert facts["status"] == "ok"
    assert facts["treeSize"] == doc["tree_size"]
    assert facts["headSigner"] == site.city.producer.public.did


@pytest.mark.parametrize(("tamper", "check", "py_match"), INCLUSION_CASES)
def test_tampered_inclusion_bundles_fail_the_same_check_in_both(
    page: Page, site: Site, tamper: Tamper, check: str, py_match: str
) -> None:
    doc = inclusion_doc(site)
    tamper(doc, site.city)
    text = json.dumps(doc)
    python = py_verify(text, frozenset(site.city.genesis.producers))
    assert python is not None, "proofs.py accepted the tampered bundle"
    assert py_match in python
    result = js_verify(page, text, genesis_text(site.city))
    assert result["valid"] is False, result
    assert result["check"] == check, result


def test_the_failed_receipt_proves_as_failed(page: Page, site: Site) -> None:
    text = json.dumps(inclusion_doc(site, "failed"))
    result = js_verify(page, text, genesis_text(site.city))
    assert result["valid"] is True
    assert result["facts"]["status"] == "failed"
    assert result["facts"]["reason"] == "already_anchored"


def test_a_genesis_the_reader_supplies_decides_whom_to_trust(page: Page, site: Site) -> None:
    """A head by a key the reader's genesis names is valid; the server's genesis refuses it."""
    doc = inclusion_doc(site)
    _resign("rogue")(doc, site.city)
    text = json.dumps(doc)
    theirs = genesis_text(site.city, site.city.rogue)
    assert py_verify(text, frozenset({site.city.rogue.public.did})) is None
    assert js_verify(page, text, theirs, "file")["valid"] is True
    assert js_verify(page, text, genesis_text(site.city))["check"] == "tree_head_signer"


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("", "format"),
        ("not json", "format"),
        ("[]", "format"),
        ('{"kind": "civicledger/consistency-proof/v1"}', "format"),
    ],
)
def test_garbage_is_not_a_proof(page: Page, site: Site, text: str, check: str) -> None:
    assert py_verify(text, frozenset(site.city.genesis.producers)) is not None
    assert js_verify(page, text, genesis_text(site.city))["check"] == check


def test_strict_json_refuses_what_python_refuses(page: Page, site: Site) -> None:
    """Floats and duplicate keys are not JSON CivicLedger accepts, in either verifier."""
    good = json.dumps(inclusion_doc(site))
    for bad in [
        good.replace('"leaf_index": ', '"leaf_index": 1.0, "x": ', 1),
        good.replace('"tree_size": ', '"tree_size": 1e0, "y": ', 1),
        good.replace("{", '{"kind": "civicledger/inclusion-proof/v1", ', 1),
    ]:
        assert py_verify(bad, frozenset(site.city.genesis.producers)) is not None
        assert js_verify(page, bad, genesis_text(site.city))["check"] == "format", bad[:80]


@pytest.mark.parametrize("genesis", ["", "{}", '{"producers": []}', '{"producers": ["did:key:x"]}'])
def test_an_unusable_genesis_is_no_trust_anchor(page: Page, site: Site, genesis: str) -> None:
    result = js_verify(page, json.dumps(inclusion_doc(site)), genesis, "file")
    assert result == {"valid": False, "check": "trust_anchor", "key": result["key"]}


# -- consistency ------------------------------------------------------------------------------


def consistency_doc(site: Site, old: int, new: int | None = None) -> Doc:
    doc: Doc = site.node.chain.consistency_proof(old, new).model_dump(mode="json")
    return doc


def test_consistency_between_every_pair_of_heads_is_valid_in_both(page: Page, site: Site) -> None:
    height = site.node.chain.height
    trusted = frozenset(site.city.genesis.producers)
    genesis = genesis_text(site.city)
    for old in range(height + 1):
        for new in range(old, height + 1):
            text = json.dumps(consistency_doc(site, old, new))
            assert py_verify(text, trusted) is None
            result = js_verify(page, text, genesis)
            assert result["valid"] is True, (old, new, result)
            assert result["facts"]["newHeight"] == new


def _other_chain_heads(doc: Doc, city: City) -> None:
    """A validly signed newer head of another chain, by the same producer key."""
    doc["new_head"] = _sign_head(
        {**doc["new_head"]["tree_head"], "chain_id": "otherville"}, city.producer
    )


def _swap_heads(doc: Doc, _: City) -> None:
    doc["old_head"], doc["new_head"] = doc["new_head"], doc["old_head"]


def _resign_new_head(doc: Doc, city: City) -> None:
    doc["new_head"] = _sign_head(
        {**doc["new_head"]["tree_head"], "signer": city.rogue.public.did}, city.rogue
    )


CONSISTENCY_CASES = [
    pytest.param(_set("proof.0", _flip_hex), "consistency", "consistency proof", id="proof-hash"),
    pytest.param(_set("proof", lambda p: p[:-1]), "consistency", "hashes", id="proof-short"),
    pytest.param(
        _set("old_head.tree_head.root_hash", _flip_hex),
        "tree_head_signature",
        "tree head signature",
        id="old-root",
    ),
    pytest.param(_resign_new_head, "tree_head_signer", "not trusted", id="new-head-by-rogue"),
    pytest.param(_swap_heads, "consistency", "larger", id="heads-swapped"),
    pytest.param(_set("proof.0", "zz"), "proof_hashes", "not hex", id="proof-not-hex"),
    pytest.param(_other_chain_heads, "same_chain", "different chains", id="different-chains"),
]


@pytest.mark.parametrize(("tamper", "check", "py_match"), CONSISTENCY_CASES)
def test_tampered_consistency_bundles_fail_the_same_check_in_both(
    page: Page, site: Site, tamper: Tamper, check: str, py_match: str
) -> None:
    doc = consistency_doc(site, 3)
    assert doc["proof"], "the case needs a non-empty proof"
    tamper(doc, site.city)
    text = json.dumps(doc)
    python = py_verify(text, frozenset(site.city.genesis.producers))
    assert python is not None
    assert py_match in python
    result = js_verify(page, text, genesis_text(site.city))
    assert result["valid"] is False
    assert result["check"] == check, result


# -- the pieces: RFC 9162, RFC 8785, did:key -------------------------------------------------

_MERKLE = """async (cases) => {
  const v = await import("/static/portal/verifier.js");
  const bytes = (hex) => new Uint8Array(hex.match(/../g).map((h) => parseInt(h, 16)));
  const out = [];
  for (const c of cases) {
    try {
      if (c.kind === "inclusion") {
        await v.verifyInclusion(bytes(c.leaf), c.index, c.size, c.path.map(bytes), bytes(c.root));
      } else {
        const proof = c.proof.map(bytes);
        await v.verifyConsistency(c.old, c.new, bytes(c.oldRoot), bytes(c.newRoot), proof);
      }
      out.push(null);
    } catch (e) {
      if (!(e instanceof v.VerifyError)) throw e;
      out.push(e.key);
    }
  }
  return out;
}"""


def _merkle_cases(max_size: int) -> tuple[list[dict[str, Any]], list[bool]]:
    """Inclusion and consistency cases from crypto/merkle.py, with whether each should pass."""
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(max_size)]
    roots = [merkle.root_from_leaf_hashes(leaves[:n]) for n in range(max_size + 1)]

    def subtree(start: int, end: int) -> bytes:
        return merkle.root_from_leaf_hashes(leaves[start:end])

    cases: list[dict[str, Any]] = []
    expected: list[bool] = []
    for size in range(1, max_size + 1):
        for index in range(size):
            path = [h.hex() for h in merkle.inclusion_proof(index, size, subtree)]
            case = {
                "kind": "inclusion",
                "leaf": leaves[index].hex(),
                "index": index,
                "size": size,
                "path": path,
                "root": roots[size].hex(),
            }
            cases.append(case)
            expected.append(True)
            cases.append(
                {**case, "index": (index + 1) % size}
                if size > 1
                else {**case, "leaf": sha256(b"other").hex()}
            )
            expected.append(False)
    for new in range(max_size + 1):
        for old in range(new + 1):
            proof = [h.hex() for h in merkle.consistency_proof(old, new, subtree)]
            case = {
                "kind": "consistency",
                "old": old,
                "new": new,
                "oldRoot": roots[old].hex(),
                "newRoot": roots[new].hex(),
                "proof": proof,
            }
            cases.append(case)
            expected.append(True)
            if proof:
                cases.append({**case, "proof": [_flip_hex(proof[0]), *proof[1:]]})
                expected.append(False)
    return cases, expected


def test_merkle_port_agrees_with_crypto_merkle(page: Page) -> None:
    cases, expected = _merkle_cases(17)
    results = page.evaluate(_MERKLE, cases)
    outcome = [r is None for r in results]
    wrong = [(c, r) for c, r, e, o in zip(cases, results, expected, outcome, strict=True) if e != o]
    assert wrong == []
    assert expected.count(False) > 100


_CANON = """async (texts) => {
  const v = await import("/static/portal/verifier.js");
  return texts.map((t) => v.canonicalJson(v.parseStrictJson(t)));
}"""

CANONICAL_VALUES: list[Any] = [
    {"b": 1, "a": [True, False, None], "c": {"z": "", "y": -0}},
    {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "\u00f6": 7},
    {"text": '한국어 \u2028 \u2029 \x7f \x00 \x1f " \\ / \U0001f600 é'},
    {"n": [0, -1, 9007199254740991, -9007199254740991, 1000000]},
    {"nested": [[[], {}], [{"k": [1, {"j": "v"}]}]]},
    {"label": '<script>alert("x")</script>&amp;'},
]


def test_canonical_json_matches_rfc8785_as_python_computes_it(page: Page) -> None:
    texts = [
        json.dumps(value, ensure_ascii=bool(i % 2)) for i, value in enumerate(CANONICAL_VALUES)
    ]
    results = page.evaluate(_CANON, texts)
    assert results == [canonical_json(value).decode() for value in CANONICAL_VALUES]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"a": 1.5}',
        '{"a": 1e3}',
        '{"a": 9007199254740992}',
        '{"a": "\\ud800"}',
        "[1,]",
        '{"a": 1} x',
        '{"a": NaN}',
        "[" * 600 + "]" * 600,
    ],
)
def test_strict_json_parser_refuses(page: Page, text: str) -> None:
    error = page.evaluate(
        """async (t) => {
          const v = await import("/static/portal/verifier.js");
          try { v.parseStrictJson(t); return null; } catch (e) { return e.name; }
        }""",
        text,
    )
    assert error == "SyntaxError"


def test_did_key_decoding_matches_python(page: Page, site: Site) -> None:
    city = site.city
    keys = [city.root, city.producer, city.clerk, city.rogue]
    dids = [k.public.did for k in keys]
    bad = [
        "did:key:z" + "1" + dids[0][9:],  # a leading zero byte: not the canonical encoding
        dids[0][:-1],  # one byte short
        dids[0].replace("did:key:z", "did:key:f"),
        "did:web:example.org",
        dids[0] + "0",  # 0 is not in the base58 alphabet
    ]
    decoded = page.evaluate(
        """async (dids) => {
          const v = await import("/static/portal/verifier.js");
          return dids.map((d) => { const k = v.didKeyBytes(d); return k && v.toHex(k); });
        }""",
        dids + bad,
    )
    assert decoded == [k.public.raw.hex() for k in keys] + [None] * len(bad)


def test_unchanged_copies_are_not_tampered(page: Page, site: Site) -> None:
    """A control for the tamper tables: a deep copy round-tripped through JSON stays valid."""
    doc = copy.deepcopy(inclusion_doc(site))
    text = json.dumps(json.loads(json.dumps(doc)), indent=4, ensure_ascii=False)
    assert js_verify(page, text, genesis_text(site.city))["valid"] is True
    bundle = load_bundle(text.encode())
    assert isinstance(bundle, InclusionBundle)
