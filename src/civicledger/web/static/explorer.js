// The explorer's live lists: new blocks and their transactions arrive over server-sent events
// (GET /api/v1/events) and are inserted without reloading the page.
//
// The page was rendered at block `data-height`; the stream starts after it (`?since=`), and a
// reconnecting EventSource resumes after the last block it saw (Last-Event-ID), so no block
// falls between the rendered page and the stream. Rows are built with textContent only.

import { codeElement, href, shortDid, shortHash, t, timeElement } from "./portal.js";

const blocks = document.getElementById("latest-blocks");
const txs = document.getElementById("latest-txs");
const live = document.getElementById("live-status");

function setLive(state) {
  live.dataset.live = state;
  live.querySelector(".live-text").textContent = t(`js.explorer.live_${state}`);
}

function link(path, child, className) {
  const a = document.createElement("a");
  a.href = href(path);
  if (className) a.className = className;
  a.append(child);
  return a;
}

function cell(...children) {
  const td = document.createElement("td");
  td.append(...children);
  return td;
}

function numberCell(...children) {
  const td = cell(...children);
  td.className = "num";
  return td;
}

function statusBadge(status) {
  const span = document.createElement("span");
  span.className = `status status-${status === "ok" ? "ok" : "failed"}`;
  span.textContent = t(`js.status.${status === "ok" ? "ok" : "failed"}`);
  return span;
}

/** Insert `row` before the first row at or below `height`, keeping newest first; trim. */
function insert(tbody, row, height) {
  const after = [...tbody.rows].find((r) => Number(r.dataset.height) <= height);
  tbody.insertBefore(row, after || null);
  row.classList.add("fresh");
  const limit = Number(tbody.dataset.limit) || 20;
  while (tbody.rows.length > limit) tbody.deleteRow(-1);
}

function addBlock(block) {
  if (blocks.querySelector(`tr[data-height="${block.height}"]`)) return;
  const row = document.createElement("tr");
  row.dataset.height = String(block.height);
  row.append(
    cell(link(`/blocks/${block.height}`, String(block.height), "height")),
    cell(timeElement(block.time_ms)),
    numberCell(String(block.tx_count)),
    cell(codeElement("hash", block.hash, shortHash(block.hash))),
  );
  insert(blocks, row, block.height);
}

function addTx(tx, height) {
  if (txs.querySelector(`tr[data-tx-id="${tx.tx_id}"]`)) return;
  for (const placeholder of txs.querySelectorAll("tr.empty")) placeholder.remove();
  const row = document.createElement("tr");
  row.dataset.txId = tx.tx_id;
  row.dataset.height = String(height);
  const call = document.createElement("span");
  call.className = "call";
  call.textContent = `${tx.contract}.${tx.method}`;
  row.append(
    cell(link(`/tx/${tx.tx_id}`, codeElement("hash", tx.tx_id, shortHash(tx.tx_id)), "tx-link")),
    cell(call),
    cell(codeElement("did", tx.signer, shortDid(tx.signer))),
    cell(statusBadge(tx.status)),
    numberCell(link(`/blocks/${height}`, String(height))),
  );
  insert(txs, row, height);
}

function onBlock(event) {
  const block = JSON.parse(event.data);
  if (!Number.isSafeInteger(block.height) || !/^[0-9a-f]{64}$/.test(block.hash)) return;
  addBlock(block);
  for (const tx of block.txs || []) {
    if (/^[0-9a-f]{64}$/.test(tx.tx_id)) addTx(tx, block.height);
  }
}

if (blocks && txs && live && "EventSource" in window) {
  const since = Number(blocks.dataset.height) || 0;
  const source = new EventSource(href(`/api/v1/events?since=${since}`));
  source.addEventListener("open", () => setLive("on"));
  source.addEventListener("error", () => setLive(source.readyState === EventSource.CLOSED ? "off" : "reconnecting"));
  source.addEventListener("block", onBlock);
  window.addEventListener("pagehide", () => source.close());
}
