// The verify page and the transaction page's "verify in this browser" button: gather a proof
// (pasted, uploaded with FileReader, or embedded in the page) and a trust anchor (this server's
// genesis, or one the reader uploads), check them with verifier.js and show the verdict.
// No proof is ever sent to the server.

import { formatTime, href, t } from "./portal.js";
import { VerifyError, environmentProblem, parseBundle, trustFromGenesis, verifyBundle } from "./verifier.js";

const result = document.getElementById("verify-result");
let uploadedGenesis = null;

async function serverTrust() {
  let response;
  try {
    response = await fetch(href("/api/v1/genesis"), { headers: { Accept: "application/json" } });
  } catch (e) {
    throw new VerifyError("trust_anchor", "js.verify.err.genesis_fetch", { status: String(e) });
  }
  if (!response.ok) {
    throw new VerifyError("trust_anchor", "js.verify.err.genesis_fetch", { status: response.status });
  }
  return trustFromGenesis(await response.text(), "server");
}

function chosenTrust() {
  const choice = document.querySelector('input[name="trust"]:checked');
  if (choice && choice.value === "file") {
    if (uploadedGenesis === null) {
      return Promise.reject(new VerifyError("trust_anchor", "js.verify.err.genesis_missing"));
    }
    return trustFromGenesis(uploadedGenesis, "file");
  }
  return serverTrust();
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function factList(facts) {
  const dl = element("dl", "fields facts");
  for (const [key, value] of facts) {
    dl.append(element("dt", "", t(`js.fact.${key}`)));
    const dd = element("dd");
    dd.dataset.fact = key;
    const technical = typeof value === "string" && /^(did:key:|[0-9a-f]{32,}$)/.test(value);
    dd.append(element(technical ? "code" : "span", "full", String(value)));
    dl.append(dd);
  }
  return dl;
}

function show(status, check, ...children) {
  result.replaceChildren(...children);
  result.dataset.status = status;
  result.dataset.check = check;
}

function trustLine(trust) {
  return element(
    "p",
    `trust trust-${trust.source}`,
    t(`js.verify.trust_${trust.source}`, { city: trust.city, chain_id: trust.chainId, fingerprint: trust.fingerprint }),
  );
}

function showValid(facts, trust) {
  const rows =
    facts.kind === "inclusion"
      ? [
          ["tx_id", facts.txId],
          ["call", `${facts.contract}.${facts.method}`],
          ["signer", facts.signer],
          ["nonce", facts.nonce],
          ["status", t(`js.status.${facts.status}`) + (facts.reason ? ` (${facts.reason})` : "")],
          ["height", facts.height],
          ["leaf_index", facts.leafIndex],
          ["tree_size", facts.treeSize],
          ["root_hash", facts.rootHash],
          ["head", t("js.verify.head_at", { height: facts.headHeight, time: formatTime(facts.headTimeMs) })],
          ["head_signer", facts.headSigner],
        ]
      : [
          ["old_tree", t("js.verify.tree_at", { size: facts.oldSize, height: facts.oldHeight })],
          ["new_tree", t("js.verify.tree_at", { size: facts.newSize, height: facts.newHeight })],
          ["old_root", facts.oldRoot],
          ["new_root", facts.newRoot],
          ["head_signer", facts.headSigner],
        ];
  const summary =
    facts.kind === "inclusion"
      ? t("js.verify.valid_inclusion", { chain_id: facts.chainId, height: facts.height })
      : t("js.verify.valid_consistency", { chain_id: facts.chainId });
  show(
    "valid",
    "",
    element("h2", "verdict", `✓ ${t("js.verify.valid")}`),
    element("p", "summary", summary),
    factList(rows),
    trustLine(trust),
  );
  result.dataset.trust = trust.source;
}

function localizedParams(params) {
  const out = { ...params };
  if (out.which) out.which = t(`js.verify.which.${out.which}`);
  return out;
}

function showProblem(error) {
  // Environment and trust-anchor problems say nothing about the proof: they are not "invalid".
  const unavailable = ["environment", "trust_anchor", "internal"].includes(error.check);
  show(
    unavailable ? "unavailable" : "invalid",
    error.check,
    element("h2", "verdict", unavailable ? `! ${t("js.verify.unavailable")}` : `✗ ${t("js.verify.invalid")}`),
    element("p", "failed-check", t("js.verify.failed_check", { check: t(`js.verify.check.${error.check}`) })),
    element("p", "reason", t(error.key, localizedParams(error.params))),
  );
}

/** Verify proof text and show the verdict in #verify-result. */
export async function verifyText(text) {
  show("busy", "", element("p", "", t("js.verify.busy")));
  try {
    const problem = environmentProblem();
    if (problem) throw new VerifyError("environment", problem);
    const bundle = parseBundle(text);
    const trust = await chosenTrust();
    showValid(await verifyBundle(bundle, trust), trust);
  } catch (e) {
    showProblem(e instanceof VerifyError ? e : new VerifyError("internal", "js.verify.err.internal", { detail: String(e) }));
  }
}

function readFile(input) {
  const file = input.files && input.files[0];
  if (!file) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsText(file);
  });
}

function wireVerifyPage() {
  const form = document.getElementById("verify-form");
  if (!form) return;
  const textarea = document.getElementById("proof-text");
  const notice = document.getElementById("verify-env");
  const problem = environmentProblem();
  if (problem) {
    notice.textContent = t(problem);
    notice.hidden = false;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    verifyText(textarea.value);
  });
  document.getElementById("proof-file").addEventListener("change", async (event) => {
    const text = await readFile(event.target);
    if (text === null) return;
    textarea.value = text;
    await verifyText(text);
  });
  document.getElementById("genesis-file").addEventListener("change", async (event) => {
    uploadedGenesis = await readFile(event.target);
    if (uploadedGenesis !== null) document.getElementById("trust-file-choice").checked = true;
  });
  const txId = new URLSearchParams(window.location.search).get("tx");
  if (txId && /^[0-9a-f]{64}$/.test(txId)) {
    fetch(href(`/api/v1/tx/${txId}/proof`))
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(String(response.status)))))
      .then((text) => {
        textarea.value = text;
        return verifyText(text);
      })
      .catch(() => show("unavailable", "fetch", element("p", "reason", t("js.verify.err.proof_fetch"))));
  }
}

function wireTxPage() {
  const button = document.getElementById("verify-here");
  const embedded = document.getElementById("tx-proof");
  if (!button || !embedded) return;
  button.hidden = false;
  button.addEventListener("click", () => verifyText(embedded.textContent));
}

if (result) {
  wireVerifyPage();
  wireTxPage();
  result.dataset.ready = "true";
}
