// A poll's dashboard, kept current without reloading: turnout, the turnout chart and its table,
// turnout by district, the live tally (open polls) and the verified result (secret polls).
//
// The page was rendered at block `height`; an EventSource on /api/v1/events?contract=polls
// starts after it (`since`), so no vote falls between the rendered page and the stream, and a
// reconnecting EventSource resumes after the last block it saw. When an event of this poll
// arrives, the script refetches the poll (GET /api/v1/polls/{id}) and its series
// (GET /api/v1/polls/{id}/series) and redraws from them: the page always shows the ledger's
// numbers, never sums of its own. The chart's geometry is the server's (pages.turnout_chart).
// Everything is built with textContent and SVG attributes only (the CSP allows no inline code).

import { href, t, timeElement } from "../portal/portal.js";

const SVG = "http://www.w3.org/2000/svg";
const REFRESHING_EVENTS = new Set(["vote_cast", "voter_registered", "result_published"]);

const dataElement = document.getElementById("poll-data");
const data = dataElement ? JSON.parse(dataElement.textContent) : null;
const live = document.getElementById("live-status");

function setLive(state) {
  if (!live) return;
  live.dataset.live = state;
  live.querySelector(".live-text").textContent = t(`polls.js.live_${state}`);
}

/** `part` of `whole` in percent, rounded down to one decimal, as pages.percent. */
export function percent(part, whole) {
  if (whole <= 0) return "0.0";
  const tenths = Math.floor((part * 1000) / whole);
  return `${Math.floor(tenths / 10)}.${tenths % 10}`;
}

function scale(value, low, high, outLow, outHigh) {
  const span = high - low;
  const share = span > 0 ? (value - low) / span : 0;
  return Math.round((outLow + share * (outHigh - outLow)) * 10) / 10;
}

/** The chart's geometry, as pages.turnout_chart computes it. */
export function turnoutChart(series, startMs, registered, size) {
  const left = size.left;
  const right = size.width - size.right;
  const top = size.top;
  const bottom = size.height - size.bottom;
  const voted = series.map((p) => p.voted);
  const times = series.map((p) => p.time_ms);
  const yMax = Math.max(registered, 1, ...voted);
  const start = Math.min(startMs, ...times);
  const end = Math.max(start + 1, ...times);
  const x = (time) => scale(time, start, end, left, right);
  const y = (v) => scale(v, 0, yMax, bottom, top);
  const points = series.map((p) => ({ time_ms: p.time_ms, voted: p.voted, x: x(p.time_ms), y: y(p.voted) }));
  const line = [[x(start), y(0)]];
  let previous = 0;
  for (const point of points) {
    line.push([point.x, y(previous)], [point.x, point.y]);
    previous = point.voted;
  }
  return { points, line: line.map(([px, py]) => `${px},${py}`).join(" "), yMax, start, end };
}

function text(id, value) {
  const el = document.getElementById(id);
  if (el && el.textContent !== String(value)) {
    el.textContent = String(value);
    el.classList.add("changed");
  }
}

function setBar(row, share) {
  const fill = row.querySelector("svg.bar .bar-fill");
  if (fill) fill.setAttribute("width", share);
}

function bar(share) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "bar");
  svg.setAttribute("viewBox", "0 0 100 8");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const [className, width] of [["bar-track", "100"], ["bar-fill", share]]) {
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", className);
    rect.setAttribute("width", width);
    rect.setAttribute("height", "8");
    svg.append(rect);
  }
  return svg;
}

function cell(tag, className, ...children) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  el.append(...children);
  return el;
}

function code(value) {
  const el = document.createElement("code");
  el.textContent = value;
  return el;
}

function drawChart(series, registered, voted) {
  const svg = document.getElementById("turnout-chart");
  if (!svg) return;
  const chart = turnoutChart(series, data.opens_ms, registered, data.size);
  document.getElementById("chart-line").setAttribute("points", chart.line);
  document.getElementById("chart-y-max").textContent = String(chart.yMax);
  const group = document.getElementById("chart-points");
  group.replaceChildren(
    ...chart.points.map((point) => {
      const circle = document.createElementNS(SVG, "circle");
      circle.setAttribute("class", "point");
      circle.setAttribute("cx", String(point.x));
      circle.setAttribute("cy", String(point.y));
      circle.setAttribute("r", "3");
      circle.dataset.timeMs = String(point.time_ms);
      circle.dataset.voted = String(point.voted);
      return circle;
    }),
  );
  svg.dataset.count = String(chart.points.length);
  document.getElementById("chart-desc").textContent = t("polls.js.chart_desc", {
    voted,
    registered,
    points: chart.points.length,
  });
  const range = document.getElementById("chart-range");
  if (range) range.replaceChildren(timeElement(chart.start), " – ", timeElement(chart.end));
  const rows = document.getElementById("series-rows");
  if (rows && chart.points.length > 0) {
    rows.replaceChildren(
      ...chart.points.map((point) => {
        const row = document.createElement("tr");
        row.dataset.timeMs = String(point.time_ms);
        row.append(cell("td", "", timeElement(point.time_ms)), cell("td", "num", String(point.voted)));
        return row;
      }),
    );
  }
}

function drawDistricts(turnout, tally) {
  const tbody = document.getElementById("district-rows");
  if (!tbody) return;
  const names = Object.keys(turnout.by_district || {}).sort();
  if (names.length === 0) return;
  tbody.replaceChildren(
    ...names.map((name) => {
      const record = turnout.by_district[name];
      const share = percent(record.voted, record.registered);
      const row = document.createElement("tr");
      row.dataset.district = name;
      row.append(
        cell("th", "", code(name)),
        cell("td", "num voted", String(record.voted)),
        cell("td", "num registered", String(record.registered)),
        cell("td", "num percent", `${share}%`),
        cell("td", "", bar(share)),
      );
      row.querySelector("th").scope = "row";
      return row;
    }),
  );
  const counts = (tally && tally.by_district) || null;
  const tallyRows = document.getElementById("tally-district-rows");
  if (!tallyRows || !counts) return;
  tallyRows.replaceChildren(
    ...names.map((name) => {
      const row = document.createElement("tr");
      row.dataset.district = name;
      const head = cell("th", "", code(name));
      head.scope = "row";
      row.append(head, ...(counts[name] || []).map((count) => cell("td", "num", String(count))));
      return row;
    }),
  );
}

function drawTally(tally) {
  const table = document.getElementById("tally-table");
  if (!table || !tally || !Array.isArray(tally.counts)) return;
  const total = tally.counts.reduce((sum, count) => sum + count, 0);
  tally.counts.forEach((count, index) => {
    const row = table.querySelector(`tr[data-option="${index}"]`);
    if (!row) return;
    const share = percent(count, total);
    row.querySelector(".count").textContent = String(count);
    row.querySelector(".percent").textContent = `${share}%`;
    setBar(row, share);
  });
  table.hidden = false;
  if (data.mode === "secret") {
    const pending = document.getElementById("result-pending");
    if (pending) pending.hidden = true;
    const verified = document.getElementById("result-verified");
    if (verified) {
      verified.textContent = t("polls.js.result_verified", {
        k: (tally.trustees || []).length,
        voted: tally.voted,
      });
      verified.hidden = false;
    }
  }
}

function drawStatus(status) {
  const holder = document.getElementById("poll-status");
  const badge = holder && holder.querySelector(".poll-status");
  if (!badge || !["scheduled", "open", "closed"].includes(status) || badge.dataset.status === status) return;
  badge.dataset.status = status;
  badge.className = `poll-status poll-status-${status}`;
  badge.textContent = t(`polls.js.status_${status}`);
}

let pending = null;
let again = false;

/** Refetch the poll and its series and redraw; one request at a time, the last one wins. */
async function refresh() {
  if (pending) {
    again = true;
    return pending;
  }
  pending = (async () => {
    do {
      again = false;
      const base = href(`/api/v1/polls/${encodeURIComponent(data.poll_id)}`);
      const [shown, series] = await Promise.all([
        fetch(base, { headers: { accept: "application/json" } }).then((r) => (r.ok ? r.json() : null)),
        fetch(`${base}/series`, { headers: { accept: "application/json" } }).then((r) => (r.ok ? r.json() : null)),
      ]);
      if (!shown || !series || !shown.turnout) continue;
      const turnout = shown.turnout;
      text("turnout-voted", turnout.voted);
      text("turnout-registered", turnout.total_registered);
      text("turnout-percent", percent(turnout.voted, turnout.total_registered));
      drawChart(series.series || [], turnout.total_registered, turnout.voted);
      drawDistricts(turnout, shown.tally);
      drawTally(shown.tally);
      if (shown.poll) drawStatus(shown.poll.status);
    } while (again);
  })()
    .catch(() => setLive("reconnecting"))
    .finally(() => {
      pending = null;
    });
  return pending;
}

function onEvent(event) {
  const message = JSON.parse(event.data);
  if (message.contract !== "polls" || !message.data || message.data.poll_id !== data.poll_id) return;
  if (REFRESHING_EVENTS.has(message.name)) refresh();
}

function onBlock(event) {
  const block = JSON.parse(event.data);
  if (!Number.isSafeInteger(block.time_ms)) return;
  const status =
    block.time_ms < data.opens_ms ? "scheduled" : block.time_ms < data.closes_ms ? "open" : "closed";
  drawStatus(status);
}

if (data && live && "EventSource" in window) {
  const since = Number(data.height) || 0;
  const source = new EventSource(href(`/api/v1/events?contract=polls&since=${since}`));
  source.addEventListener("open", () => setLive("on"));
  source.addEventListener("error", () =>
    setLive(source.readyState === EventSource.CLOSED ? "off" : "reconnecting"),
  );
  source.addEventListener("event", onEvent);
  source.addEventListener("block", onBlock);
  window.addEventListener("pagehide", () => source.close());
}
