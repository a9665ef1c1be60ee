// Shared by every page: the reader's language and messages, links under the site root, and
// block times shown in the reader's own time zone (the server writes them in UTC).

const messageData = document.getElementById("portal-messages");
const messages = messageData ? JSON.parse(messageData.textContent) : {};

export const lang = document.documentElement.lang || "ko";
export const root = document.body.dataset.root || "";

/** The message `key` in the page's language with `{name}` placeholders filled. */
export function t(key, params = {}) {
  const text = messages[key];
  if (text === undefined) return key;
  return text.replace(/\{([a-z_][a-z0-9_]*)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

/** A path on this site, under the root path it is served at. */
export function href(path) {
  return root + path;
}

const timeFormat = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" });

export function formatTime(ms) {
  return timeFormat.format(new Date(ms));
}

/** Rewrite `<time data-ms>` elements in the reader's zone; the UTC text stays as the title. */
export function localizeTimes(scope = document) {
  for (const el of scope.querySelectorAll("time[data-ms]")) {
    if (!el.title) el.title = el.textContent;
    el.textContent = formatTime(Number(el.dataset.ms));
  }
}

/** A time element as the server renders it, for rows built in the browser. */
export function timeElement(ms) {
  const el = document.createElement("time");
  el.dateTime = new Date(ms).toISOString();
  el.dataset.ms = String(ms);
  el.title = `${el.dateTime.slice(0, 19).replace("T", " ")} UTC`;
  el.textContent = formatTime(ms);
  return el;
}

export function shortHash(value) {
  return value.length <= 12 ? value : `${value.slice(0, 12)}…`;
}

export function shortDid(value) {
  const head = "did:key:z6Mk".length + 4;
  return value.length <= head + 7 ? value : `${value.slice(0, head)}…${value.slice(-6)}`;
}

/** `<code class=...>` with the short form shown and the full value as its title. */
export function codeElement(className, full, shown) {
  const el = document.createElement("code");
  el.className = className;
  el.title = full;
  el.textContent = shown;
  return el;
}

localizeTimes();
