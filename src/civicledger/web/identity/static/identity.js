// The identity pages' small helpers: show only the chosen credential type's claim fields, and
// copy an issued credential. Every page works without this script.
import { t } from "/static/portal/portal.js";

function showClaimsOf(select) {
  for (const set of document.querySelectorAll("fieldset.claims-set")) {
    set.hidden = set.dataset.type !== select.value;
  }
}

for (const select of document.querySelectorAll("select[data-claims-switch]")) {
  showClaimsOf(select);
  select.addEventListener("change", () => showClaimsOf(select));
}

for (const button of document.querySelectorAll("button.copy[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  const note = button.parentElement.querySelector(".copied");
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.value);
      if (note) note.textContent = t("identity.js.copied");
    } catch {
      if (note) note.textContent = t("identity.js.copy_failed");
    }
  });
}
