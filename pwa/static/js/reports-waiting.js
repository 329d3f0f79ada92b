// @ts-check
// "My reports" also lists, at the top, the guard's reports still waiting on
// this phone (the outbox): with no signal they are on no server list yet, and
// a guard looking for the report just made must find it here, with its state.
import * as store from "./outbox/store.js";
import { fmt } from "./text.js";

const { t } = JSON.parse(/** @type {HTMLElement} */ (document.getElementById("reports-data")).textContent);
const section = /** @type {HTMLElement} */ (document.getElementById("waiting-reports"));
const list = /** @type {HTMLElement} */ (document.getElementById("waiting-list"));
const me = Number(document.body.dataset.user) || null;

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c != null));
  return node;
}

function row(item) {
  const when = new Date(item.body.occurred_at).toLocaleString([], { hour12: false });
  const reason = item.state === "failed" ? fmt(t.reason, { m: item.error || "" }) : null;
  const main = el("span", { className: "report-main" },
    el("strong", { textContent: item.title || item.incident }),
    el("span", { className: "muted small", textContent: when }),
    reason ? el("span", { className: "waiting-reason small", textContent: reason }) : null);
  const badge = el("span", { className: `status status-${item.state}`, textContent: t[item.state] || item.state });
  const link = el("a", { className: "list-link report-row", href: `/outbox?id=${encodeURIComponent(item.id)}` }, main, badge);
  return el("li", { id: `waiting-${item.id}` }, link);
}

async function render() {
  const items = (await store.open()).filter((item) => item.user === me).reverse();
  list.replaceChildren(...items.map(row));
  section.hidden = items.length === 0;
  document.body.dataset.waiting = JSON.stringify(items.map((i) => [i.id, i.state]));
}

let redraw = null; // a burst of changes (a sync) makes one redraw
store.listen(() => {
  clearTimeout(redraw);
  redraw = setTimeout(() => render().catch(() => {}), 100);
});
render().catch(() => { document.body.dataset.waiting = "[]"; });
