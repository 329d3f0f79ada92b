// @ts-check
// The outbox page: every report waiting on this phone and each of its
// photos, with its state; "send now"; delete only after a confirmation.
import * as store from "./outbox/store.js";
import { fmt, clock } from "./text.js";

const { t } = JSON.parse(/** @type {HTMLElement} */ (document.getElementById("outbox-data")).textContent);
/** @type {(id: string) => any} */
const $ = (id) => document.getElementById(id);
const me = Number(document.body.dataset.user) || null;

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c != null));
  return node;
}

function badge(state) {
  return el("span", { className: `status status-${state}`, textContent: t[state] || state });
}

let loginNeeded = false;

function reason(item) {
  if (item.state === "failed") return fmt(t.reason, { m: item.error || "" });
  if (item.user !== me && item.state !== "sent") return fmt(t.other_user, { name: item.user_name || item.user });
  if (loginNeeded && item.state !== "sent") return t.after_login;
  if (item.state === "waiting" && item.next_at > Date.now()) {
    const s = Math.ceil((item.next_at - Date.now()) / 1000);
    return [fmt(t.next_try, { s }), item.error].filter(Boolean).join(" · ");
  }
  return null;
}

function row(item) {
  const when = new Date(item.body.occurred_at).toLocaleString([], { hour12: false });
  const head = el("div", { className: "outbox-head" },
    el("strong", { textContent: item.title || item.incident }), badge(item.state));
  const parts = [when, item.photos.length ? fmt(t.photos, { n: item.photos.length }) : null,
    item.ticks?.length ? fmt(t.steps, { n: item.ticks.length }) : null];
  const info = el("p", { className: "muted small", textContent: parts.filter(Boolean).join(" · ") });
  const why = reason(item);
  const part = (label, p) => el("li", { className: "small" }, `${label} `, badge(p.state),
    p.error ? el("span", { className: "muted", textContent: ` ${p.error}` }) : null);
  const photos = el("ul", { className: "outbox-photos" },
    ...(item.ticks || []).map((k) => part(fmt(k.unchecked_at ? t.untick : t.step,
      { n: k.index + 1, at: clock(k.checked_at || k.unchecked_at) }), k)),
    ...item.photos.map((p, i) => part(fmt(t.photo, { n: i + 1 }), p)));
  const actions = el("div", { className: "two" });
  if (item.state === "sent") {
    actions.append(el("a", { className: "btn btn-block", href: `/reports/${item.id}`, textContent: t.open }));
  } else {
    const again = el("button", { type: "button", className: "btn btn-block", textContent: item.state === "failed" ? t.retry : t.send_now });
    again.addEventListener("click", () => retry(item.id));
    const drop = el("button", { type: "button", className: "btn btn-block btn-danger", textContent: t.delete });
    drop.addEventListener("click", () => confirmDelete(item));
    actions.append(again, drop);
  }
  return el("li", { className: `card outbox-item state-${item.state}`, id: `item-${item.id}` },
    head, info, why ? el("p", { className: item.state === "failed" ? "alert small" : "small", textContent: why }) : null,
    photos, actions);
}

async function render() {
  loginNeeded = (await store.meta("login")) === "needed";
  const items = (await store.list()).reverse();
  const open = items.filter((i) => i.state !== "sent");
  const failed = open.filter((i) => i.state === "failed").length;
  const waiting = open.length - failed;
  $("outbox-list").replaceChildren(...items.map(row));
  $("outbox-empty").hidden = items.length > 0;
  $("send-all").hidden = !open.some((i) => i.user === me);
  $("outbox-summary").textContent = !items.length ? "" : !open.length ? t.all_sent : [
    waiting ? fmt(t.summary, { n: waiting }) : "",
    failed ? fmt(t.failed_summary, { n: failed }) : "",
  ].filter(Boolean).join(" ");
  document.body.dataset.outbox = JSON.stringify(items.map((i) => [i.id, i.state]));
}

// Sending goes through app.js (the "onsite:send" event), which also tells
// the no-signal note and the timers what came of it: a tap that gets
// through clears the note at once, not at the next timer.
const sendNow = () => dispatchEvent(new Event("onsite:send"));

async function retry(id) {
  await store.retry(id); // the item and each failed part: ticks, photos, writes
  sendNow();
}

function confirmDelete(item) {
  const dialog = $("confirm-delete");
  $("confirm-text").textContent = `${item.title || item.incident} · ${new Date(item.body.occurred_at).toLocaleString([], { hour12: false })}`;
  dialog.returnValue = "";
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue === "delete") await store.remove(item.id);
  }, { once: true });
  dialog.showModal();
}

$("send-all").addEventListener("click", sendNow);
let redraw = null; // a burst of changes (a sync) makes one redraw
store.listen(() => {
  clearTimeout(redraw);
  redraw = setTimeout(render, 100);
});
render();
setInterval(render, 5000); // keeps the "retry in n s" countdown honest
