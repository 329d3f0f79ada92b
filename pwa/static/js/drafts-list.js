// @ts-check
// "My reports" also lists the drafts still on this phone, so none is forgotten.
// Every stored draft is unsent: sending moves it into the outbox in the same
// transaction that deletes it (see outbox/store.js add).
import * as drafts from "./drafts.js";

const section = /** @type {HTMLElement} */ (document.getElementById("local-drafts"));
const list = /** @type {HTMLElement} */ (document.getElementById("draft-list"));

drafts.all().then((items) => {
  if (!items.length) return;
  for (const d of items) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.className = "list-link";
    a.href = `/report/${encodeURIComponent(d.incident)}`;
    a.textContent = `${d.title || d.incident} · ${new Date(d.started).toLocaleString()}`;
    li.append(a);
    list.append(li);
  }
  section.hidden = false;
}).catch(() => {});
