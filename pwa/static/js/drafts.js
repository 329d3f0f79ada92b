// @ts-check
// Drafts: one open report per incident type, kept on the phone as the guard
// goes, so closing the tab or losing the page loses nothing.
import * as idb from "./idb.js";

export function newDraft(incident, site) {
  return {
    incident,
    id: crypto.randomUUID(),
    started: new Date().toISOString(),
    site,
    steps: {},          // step index -> ISO time it was ticked
    severity: null,
    location: { text: "", lat: null, lng: null, accuracy_m: null },
    notes: "",
    photos: [],         // {id, blob, type}
  };
}

export const load = (incident) => idb.get("drafts", incident);
export const all = () => idb.getAll("drafts");
export const remove = (incident) => idb.del("drafts", incident);

let timer = null;
let pending = null;

// Coalesce keystrokes into one write, but never lose the last one.
export function save(draft, { now = false } = {}) {
  pending = draft;
  clearTimeout(timer);
  if (now) return flush();
  return new Promise((resolve) => { timer = setTimeout(() => flush().then(resolve), 150); });
}

let writing = null; // the last write, until it is on disk

export function flush() {
  clearTimeout(timer);
  if (!pending) return writing || Promise.resolve();
  const draft = pending;
  pending = null;
  const write = idb.put("drafts", draft);
  const settled = write.catch(() => {}).then(() => { if (writing === settled) writing = null; });
  writing = settled;
  return write;
}

// Leaving the page must not lose the last keystrokes. A write begun while the
// page is being torn down (pagehide) may be dropped with it, so a tap on a
// link of ours (‹ 返回, a tab) waits for the write, then goes; pagehide and
// the app being hidden (home button, another app) write at once as well.
addEventListener("pagehide", () => { flush(); });
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") flush();
});
document.addEventListener("click", (event) => {
  if ((!pending && !writing) || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = /** @type {any} */ (event.target).closest?.("a[href]");
  if (!link || (link.target && link.target !== "_self") || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) { flush(); return; } // tel: stays on the page
  event.preventDefault();
  const go = () => location.assign(url.href);
  flush().then(go, go);
});
