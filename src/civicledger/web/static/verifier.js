// CivicLedger proof verifier for the browser: the checks of src/civicledger/ledger/proofs.py,
// in the same order and with the same trust model, so that a citizen need not trust the server
// that handed out a proof (only the genesis producers it names).
//
// Pure apart from WebCrypto: no DOM, no network. Every check that fails throws a VerifyError
// whose `check` is a stable code (the same names docs/portal.md lists) and whose `key` and
// `params` are a message the page shows in the reader's language. A verdict is never a boolean:
// the functions return the proven facts or throw.
//
// WebCrypto (`crypto.subtle`) exists only in a secure context (https, or http on localhost);
// `environmentProblem()` says why verification cannot run here, before anything is attempted.

const DOMAIN_TAG = "CivicLedger/v1\u0000";
const HASH_SIZE = 32;
const SIGNATURE_SIZE = 64;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_DEPTH = 512;
const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DID_KEY = /^did:key:z([1-9A-HJ-NP-Za-km-z]{1,64})$/;
const NAME = /^[a-z][a-z0-9_]{0,47}$/;
const ED25519_PUB = [0xed, 0x01];

export class VerifyError extends Error {
  /** A failed check: `check` is its stable code, `key`/`params` its message for the reader. */
  constructor(check, key, params = {}) {
    super(`${check}: ${key} ${JSON.stringify(params)}`);
    this.name = "VerifyError";
    this.check = check;
    this.key = key;
    this.params = params;
  }
}

/** Why in-browser verification cannot run here (a message key), or null if it can. */
export function environmentProblem() {
  if (!globalThis.isSecureContext || !globalThis.crypto || !globalThis.crypto.subtle) {
    return "js.verify.env.insecure";
  }
  return null;
}

// -- strict JSON: what parse_json accepts (no floats, no duplicate keys), nothing else --------

/**
 * Parse JSON text as CivicLedger does: refuses fractions and exponents, integers beyond 2^53,
 * duplicate keys and lone surrogates. Objects have no prototype, so "__proto__" is a plain key.
 */
export function parseStrictJson(text) {
  if (typeof text !== "string") throw new SyntaxError("not text");
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const fail = (what) => {
    throw new SyntaxError(`${what} at character ${i}`);
  };
  const value = (depth) => {
    if (depth > MAX_DEPTH) fail("nesting too deep");
    ws();
    const c = text[i];
    if (c === "{") return object(depth);
    if (c === "[") return array(depth);
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const [word, val] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return val;
      }
    }
    return fail("unexpected character");
  };
  const object = (depth) => {
    const out = Object.create(null);
    i++;
    ws();
    if (text[i] === "}") {
      i++;
      return out;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') fail("expected a key");
      const key = string();
      if (Object.prototype.hasOwnProperty.call(out, key)) fail(`duplicate key ${JSON.stringify(key)}`);
      ws();
      if (text[i] !== ":") fail("expected ':'");
      i++;
      out[key] = value(depth + 1);
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "}") {
        i++;
        return out;
      }
      fail("expected ',' or '}'");
    }
  };
  const array = (depth) => {
    const out = [];
    i++;
    ws();
    if (text[i] === "]") {
      i++;
      return out;
    }
    for (;;) {
      out.push(value(depth + 1));
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "]") {
        i++;
        return out;
      }
      fail("expected ',' or ']'");
    }
  };
  const stringToken = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const string = () => {
    stringToken.lastIndex = i;
    const m = stringToken.exec(text);
    if (!m) fail("bad string");
    i = stringToken.lastIndex;
    const s = JSON.parse(m[0]);
    if (!isWellFormed(s)) fail("string with a lone surrogate");
    return s;
  };
  const numberToken = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
  const number = () => {
    numberToken.lastIndex = i;
    const m = numberToken.exec(text);
    if (!m) fail("bad number");
    if (m[1] !== undefined || m[2] !== undefined) fail("fractional numbers are not allowed");
    i = numberToken.lastIndex;
    const n = Number(m[0]);
    if (!Number.isSafeInteger(n)) fail("integer out of range");
    return n;
  };
  const result = value(0);
  ws();
  if (i !== text.length) fail("trailing characters");
  return result;
}

function isWellFormed(s) {
  if (typeof s.isWellFormed === "function") return s.isWellFormed();
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

// -- RFC 8785 for the values CivicLedger signs: strings, safe integers, bools, null ---------

/** RFC 8785 (JCS) text of `value`; throws on anything that is not JSON made of integers. */
export function canonicalJson(value) {
  if (value === null || value === true || value === false) return String(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new TypeError("only safe integers can be canonical");
    return Object.is(value, -0) ? "0" : String(value);
  }
  if (typeof value === "string") {
    if (!isWellFormed(value)) throw new TypeError("string with a lone surrogate");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    // Default sort compares UTF-16 code units, which is RFC 8785's key order.
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  throw new TypeError(`${typeof value} is not JSON`);
}

const utf8 = (s) => new TextEncoder().encode(s);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let k = 0; k < a.length; k++) diff |= a[k] ^ b[k];
  return diff === 0;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Hex to bytes of exactly `size` (if given), as encoding.from_hex; null if it is not that. */
function fromHex(text, size) {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    return null;
  }
  const out = new Uint8Array(text.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(text.slice(2 * k, 2 * k + 2), 16);
  return size === undefined || out.length === size ? out : null;
}

/** Strict unpadded base64url (one string per byte sequence), as encoding.from_b64url. */
function fromB64url(text) {
  if (typeof text !== "string" || text.length % 4 === 1) return null;
  const bytes = [];
  let acc = 0;
  let bits = 0;
  for (const ch of text) {
    const v = B64URL.indexOf(ch);
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 0xff);
    }
  }
  if (acc & ((1 << bits) - 1)) return null; // Non-zero trailing bits: not the canonical string.
  return new Uint8Array(bytes);
}

function fromBase58(text) {
  const bytes = [];
  for (const ch of text) {
    let carry = BASE58.indexOf(ch);
    if (carry < 0) return null;
    for (let k = 0; k < bytes.length; k++) {
      carry += bytes[k] * 58;
      bytes[k] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (const ch of text) {
    if (ch !== "1") break;
    bytes.push(0);
  }
  return new Uint8Array(bytes.reverse());
}

/** The 32 raw key bytes of an Ed25519 did:key, or null, as keys.PublicKey.from_did. */
export function didKeyBytes(did) {
  const m = typeof did === "string" ? DID_KEY.exec(did) : null;
  if (!m) return null;
  const decoded = fromBase58(m[1]);
  if (!decoded || decoded[0] !== ED25519_PUB[0] || decoded[1] !== ED25519_PUB[1]) return null;
  return decoded.length === 2 + 32 ? decoded.slice(2) : null;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function checkLabel(value) {
  return typeof value === "string" && value.length > 0 && /^[\u0001-\u007f]*$/.test(value);
}

/** The bytes CivicLedger signs, as keys.signing_message; null if a label is not allowed. */
function signingMessage(chainId, purpose, payload) {
  if (!checkLabel(chainId) || !checkLabel(purpose)) return null;
  return concat(utf8(DOMAIN_TAG), utf8(purpose), utf8("\u0000"), utf8(chainId), utf8("\u0000"), payload);
}

/** True iff the did:key `signer` signed `payload` under `purpose` for `chainId`. */
async function signatureHolds(signer, chainId, purpose, payload, signatureText) {
  const key = didKeyBytes(signer);
  const signature = fromB64url(signatureText);
  const message = signingMessage(chainId, purpose, payload);
  if (!key || !signature || signature.length !== SIGNATURE_SIZE || !message) return false;
  let publicKey;
  try {
    publicKey = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    if (e && e.name === "NotSupportedError") {
      throw new VerifyError("environment", "js.verify.env.no_ed25519");
    }
    return false; // Not a point on the curve: no signature can hold.
  }
  return crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature, message);
}

// -- RFC 9162 Merkle verification (a port of crypto/merkle.py) --------------------------------
// Indices are BigInts: JavaScript's bit operators work on 32 bits only.

const leafHash = (data) => sha256(concat(new Uint8Array([0]), data));
const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));
const EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

function split(n) {
  let k = 1n;
  while (k << 1n < n) k <<= 1n;
  return k;
}

function inclusionLength(index, size) {
  let count = 0;
  let lo = 0n;
  let hi = size;
  while (hi - lo > 1n) {
    const mid = lo + split(hi - lo);
    if (index < mid) hi = mid;
    else lo = mid;
    count++;
  }
  return count;
}

function consistencyLength(oldSize, newSize) {
  if (oldSize === 0n || oldSize === newSize) return 0;
  let count = 0;
  let lo = 0n;
  let hi = newSize;
  let m = oldSize;
  let whole = true;
  while (m !== hi - lo) {
    const mid = lo + split(hi - lo);
    if (lo + m <= mid) {
      hi = mid;
    } else {
      m -= mid - lo;
      lo = mid;
      whole = false;
    }
    count++;
  }
  return whole ? count : count + 1;
}

const merkleError = (detail, params = {}) => new VerifyError("inclusion", detail, params);

/** RFC 9162 §2.1.3.2: throws unless `path` leads `leaf` at `index` of `size` to `root`. */
export async function verifyInclusion(leaf, index, size, path, root) {
  const idx = BigInt(index);
  const n = BigInt(size);
  if (idx >= n) throw merkleError("js.verify.err.index_outside", { index, size });
  const expected = inclusionLength(idx, n);
  if (path.length !== expected) {
    throw merkleError("js.verify.err.path_length", { got: path.length, expected });
  }
  let fn = idx;
  let sn = n - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw merkleError("js.verify.err.path_length", { got: path.length, expected });
    if (fn & 1n || fn === sn) {
      r = await nodeHash(p, r);
      while (fn && !(fn & 1n)) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw merkleError("js.verify.err.path_length", { got: path.length, expected });
  if (!equalBytes(r, root)) throw merkleError("js.verify.err.not_root", { index, size });
}

const consistencyError = (detail, params = {}) => new VerifyError("consistency", detail, params);

/** RFC 9162 §2.1.4.2, with merkle.verify_consistency's strictness on the edge cases. */
export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  const m = BigInt(oldSize);
  const n = BigInt(newSize);
  if (m > n) throw consistencyError("js.verify.err.old_larger", { old: oldSize, new: newSize });
  if (m === n) {
    if (proof.length) throw consistencyError("js.verify.err.proof_not_empty");
    if (!equalBytes(oldRoot, newRoot)) throw consistencyError("js.verify.err.two_roots");
    return;
  }
  if (m === 0n) {
    if (proof.length) throw consistencyError("js.verify.err.proof_not_empty");
    if (toHex(oldRoot) !== EMPTY_ROOT_HEX) throw consistencyError("js.verify.err.empty_root");
    return;
  }
  const expected = consistencyLength(m, n);
  if (proof.length !== expected) {
    throw consistencyError("js.verify.err.proof_length", { got: proof.length, expected });
  }
  const path = [...proof];
  if ((m & (m - 1n)) === 0n) path.unshift(oldRoot);
  let fn = m - 1n;
  let sn = n - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw consistencyError("js.verify.err.proof_length", { got: proof.length, expected });
    if (fn & 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn && !(fn & 1n)) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw consistencyError("js.verify.err.proof_length", { got: proof.length, expected });
  if (!equalBytes(fr, oldRoot)) throw consistencyError("js.verify.err.old_root", { size: oldSize });
  if (!equalBytes(sr, newRoot)) throw consistencyError("js.verify.err.new_root", { size: newSize });
}

// -- shapes: the strict pydantic models of ledger/, as plain checks ---------------------------

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isInt = (v, min = 0, max = MAX_SAFE) => Number.isSafeInteger(v) && v >= min && v <= max;
const isStr = (v, min = 0, max = Infinity) => typeof v === "string" && v.length >= min && v.length <= max;
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

/** The first problem with object `o` against `fields` ({name: [required, test]}), or null. */
function shapeProblem(o, fields, where) {
  if (!isObject(o)) return `${where}: not an object`;
  for (const key of Object.keys(o)) {
    if (!has(fields, key)) return `${where}.${key}: extra field`;
  }
  for (const [key, [required, test]] of Object.entries(fields)) {
    if (!has(o, key)) {
      if (required) return `${where}.${key}: missing`;
      continue;
    }
    if (!test(o[key])) return `${where}.${key}: invalid`;
  }
  return null;
}

const TREE_HEAD = {
  chain_id: [true, (v) => isStr(v)],
  tree_size: [true, (v) => isInt(v)],
  root_hash: [true, (v) => isStr(v)],
  height: [true, (v) => isInt(v)],
  time_ms: [true, (v) => isInt(v)],
  signer: [true, (v) => isStr(v)],
};

function signedTreeHeadProblem(v, where) {
  const outer = shapeProblem(v, { tree_head: [true, () => true], signature: [true, (s) => isStr(s)] }, where);
  return outer || shapeProblem(v.tree_head, TREE_HEAD, `${where}.tree_head`);
}

const INCLUSION = {
  kind: [false, (v) => isStr(v) && v.startsWith("civicledger/inclusion")],
  leaf_index: [true, (v) => isInt(v)],
  tree_size: [true, (v) => isInt(v, 1)],
  path: [true, (v) => Array.isArray(v) && v.every((h) => isStr(h))],
  entry: [true, isObject],
  tree_head: [true, () => true],
};

const CONSISTENCY = {
  kind: [false, (v) => isStr(v) && v.startsWith("civicledger/consistency")],
  old_head: [true, () => true],
  new_head: [true, () => true],
  proof: [true, (v) => Array.isArray(v) && v.every((h) => isStr(h))],
};

const TX_BODY = {
  chain_id: [true, (v) => isStr(v, 1, 64)],
  signer: [true, (v) => isStr(v, 8, 128)],
  nonce: [true, (v) => isInt(v, 1)],
  contract: [true, (v) => isStr(v) && NAME.test(v)],
  method: [true, (v) => isStr(v) && NAME.test(v)],
  args: [true, isObject],
  expires_at: [true, (v) => isInt(v)],
};

const EVENT = {
  contract: [true, (v) => isStr(v)],
  name: [true, (v) => isStr(v)],
  data: [true, isObject],
};

const optionalStr = (v) => v === null || isStr(v);
const RECEIPT = {
  tx_id: [true, (v) => isStr(v)],
  height: [true, (v) => isInt(v, 1)],
  index: [true, (v) => isInt(v)],
  leaf_index: [true, (v) => isInt(v)],
  status: [true, (v) => v === "ok" || v === "failed"],
  reason: [false, optionalStr],
  message: [false, optionalStr],
  events: [false, (v) => Array.isArray(v) && v.every((e) => !shapeProblem(e, EVENT, "event"))],
  result: [false, () => true],
};

/** Parse a proof file's text into a bundle; throws VerifyError("format") if it is not one. */
export function parseBundle(text) {
  let doc;
  try {
    doc = parseStrictJson(text);
  } catch (e) {
    throw new VerifyError("format", "js.verify.err.not_json", { detail: e.message });
  }
  const consistency = isObject(doc) && isStr(doc.kind) && doc.kind.startsWith("civicledger/consistency");
  const problem = consistency
    ? shapeProblem(doc, CONSISTENCY, "proof") ||
      signedTreeHeadProblem(doc.old_head, "old_head") ||
      signedTreeHeadProblem(doc.new_head, "new_head")
    : shapeProblem(doc, INCLUSION, "proof") || signedTreeHeadProblem(doc.tree_head, "tree_head");
  if (problem) throw new VerifyError("format", "js.verify.err.not_bundle", { detail: problem });
  return doc;
}

/**
 * The trust anchor from a genesis document's text: its producers may sign tree heads.
 * `source` is "server" or "file", shown to the reader with the genesis fingerprint.
 */
export async function trustFromGenesis(text, source) {
  let doc;
  try {
    doc = parseStrictJson(text);
  } catch (e) {
    throw new VerifyError("trust_anchor", "js.verify.err.genesis_json", { detail: e.message });
  }
  const producers = isObject(doc) ? doc.producers : undefined;
  if (!Array.isArray(producers) || producers.length === 0 || !isStr(doc.chain_id) || !isStr(doc.city)) {
    throw new VerifyError("trust_anchor", "js.verify.err.genesis_shape");
  }
  for (const did of producers) {
    if (!didKeyBytes(did)) throw new VerifyError("trust_anchor", "js.verify.err.genesis_shape");
  }
  let fingerprint;
  try {
    fingerprint = toHex(await sha256(utf8(canonicalJson(doc))));
  } catch (e) {
    throw new VerifyError("trust_anchor", "js.verify.err.genesis_json", { detail: e.message });
  }
  return { source, producers: new Set(producers), city: doc.city, chainId: doc.chain_id, fingerprint };
}

async function checkTreeHead(signed, trust, which) {
  const head = signed.tree_head;
  if (!trust.producers.has(head.signer)) {
    throw new VerifyError("tree_head_signer", "js.verify.err.signer_untrusted", { signer: head.signer, which });
  }
  let payload;
  try {
    payload = utf8(canonicalJson(head));
  } catch (e) {
    throw new VerifyError("tree_head_signature", "js.verify.err.head_signature", { which });
  }
  if (!(await signatureHolds(head.signer, head.chain_id, "tree-head", payload, signed.signature))) {
    throw new VerifyError("tree_head_signature", "js.verify.err.head_signature", { which });
  }
}

function entryProblem(bundle) {
  const entry = bundle.entry;
  const keys = Object.keys(entry).sort();
  if (keys.length !== 2 || keys[0] !== "receipt" || keys[1] !== "tx") return "entry: must hold receipt and tx";
  const tx = entry.tx;
  const txProblem = shapeProblem(tx, { body: [true, () => true], signature: [true, (s) => isStr(s)] }, "tx");
  if (txProblem) return txProblem;
  const signature = fromB64url(tx.signature);
  if (!signature) return "tx.signature: not canonical base64url";
  if (signature.length !== SIGNATURE_SIZE) return "tx.signature: not 64 bytes";
  const bodyProblem = shapeProblem(tx.body, TX_BODY, "tx.body");
  if (bodyProblem) return bodyProblem;
  if (!didKeyBytes(tx.body.signer)) return "tx.body.signer: not an Ed25519 did:key";
  try {
    canonicalJson(tx.body);
  } catch (e) {
    return `tx.body: ${e.message}`;
  }
  const receiptProblem = shapeProblem(entry.receipt, RECEIPT, "receipt");
  if (receiptProblem) return receiptProblem;
  if (bundle.path.some((h) => !fromHex(h, HASH_SIZE))) return "path: not 32-byte hex hashes";
  if (!fromHex(bundle.tree_head.tree_head.root_hash, HASH_SIZE)) return "root_hash: not a 32-byte hex hash";
  return null;
}

/** True iff the entry is exactly what the node hashed: every receipt field present. */
function entryIsCanonical(entry) {
  const receipt = entry.receipt;
  const all = Object.keys(RECEIPT).every((k) => has(receipt, k));
  return all && (receipt.events || []).every((e) => Object.keys(e).length === 3);
}

/**
 * Verify an inclusion bundle against `trust`, in the order of verify_inclusion_bundle.
 * Returns the proven facts; throws VerifyError at the first check that fails.
 */
export async function verifyInclusionBundle(bundle, trust) {
  const head = bundle.tree_head.tree_head;
  await checkTreeHead(bundle.tree_head, trust, "tree_head");
  if (head.tree_size !== bundle.tree_size) {
    throw new VerifyError("tree_size", "js.verify.err.tree_size", { bundle: bundle.tree_size, head: head.tree_size });
  }
  const problem = entryProblem(bundle);
  if (problem) throw new VerifyError("entry", "js.verify.err.entry", { detail: problem });
  if (!entryIsCanonical(bundle.entry)) throw new VerifyError("entry_canonical", "js.verify.err.entry_canonical");
  let leaf;
  try {
    leaf = utf8(canonicalJson(bundle.entry));
  } catch (e) {
    throw new VerifyError("entry_canonical", "js.verify.err.entry_canonical");
  }
  const path = bundle.path.map((h) => fromHex(h, HASH_SIZE));
  await verifyInclusion(await leafHash(leaf), bundle.leaf_index, bundle.tree_size, path, fromHex(head.root_hash, HASH_SIZE));
  const { tx, receipt } = bundle.entry;
  if (tx.body.chain_id !== head.chain_id) {
    throw new VerifyError("chain_id", "js.verify.err.chain_id", { tx: tx.body.chain_id, head: head.chain_id });
  }
  const body = utf8(canonicalJson(tx.body));
  if (!(await signatureHolds(tx.body.signer, tx.body.chain_id, "tx", body, tx.signature))) {
    throw new VerifyError("tx_signature", "js.verify.err.tx_signature");
  }
  const txId = toHex(await sha256(body));
  if (receipt.tx_id !== txId || receipt.leaf_index !== bundle.leaf_index) {
    throw new VerifyError("receipt", "js.verify.err.receipt");
  }
  return {
    kind: "inclusion",
    txId,
    chainId: head.chain_id,
    signer: tx.body.signer,
    nonce: tx.body.nonce,
    contract: tx.body.contract,
    method: tx.body.method,
    status: receipt.status,
    reason: receipt.reason ?? null,
    height: receipt.height,
    leafIndex: bundle.leaf_index,
    treeSize: head.tree_size,
    rootHash: head.root_hash,
    headHeight: head.height,
    headTimeMs: head.time_ms,
    headSigner: head.signer,
  };
}

/** Verify a consistency bundle, in the order of verify_consistency_bundle. */
export async function verifyConsistencyBundle(bundle, trust) {
  const old = bundle.old_head.tree_head;
  const neu = bundle.new_head.tree_head;
  await checkTreeHead(bundle.old_head, trust, "old_head");
  await checkTreeHead(bundle.new_head, trust, "new_head");
  const proof = bundle.proof.map((h) => fromHex(h, HASH_SIZE));
  const oldRoot = fromHex(old.root_hash, HASH_SIZE);
  const newRoot = fromHex(neu.root_hash, HASH_SIZE);
  if (proof.some((h) => !h) || !oldRoot || !newRoot) {
    throw new VerifyError("proof_hashes", "js.verify.err.proof_hashes");
  }
  if (old.chain_id !== neu.chain_id) throw new VerifyError("same_chain", "js.verify.err.same_chain");
  await verifyConsistency(old.tree_size, neu.tree_size, oldRoot, newRoot, proof);
  return {
    kind: "consistency",
    chainId: old.chain_id,
    oldSize: old.tree_size,
    newSize: neu.tree_size,
    oldHeight: old.height,
    newHeight: neu.height,
    oldRoot: old.root_hash,
    newRoot: neu.root_hash,
    headSigner: neu.signer,
    headTimeMs: neu.time_ms,
  };
}

/** Verify a parsed bundle of either kind (see parseBundle). */
export async function verifyBundle(bundle, trust) {
  const problem = environmentProblem();
  if (problem) throw new VerifyError("environment", problem);
  if (has(bundle, "old_head")) return verifyConsistencyBundle(bundle, trust);
  return verifyInclusionBundle(bundle, trust);
}

/** Parse and verify a proof file's text. */
export async function verifyProofText(text, trust) {
  return verifyBundle(parseBundle(text), trust);
}
