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

export function flush() {
  clearTimeout(timer);
  if (!pending) return Promise.resolve();
  const draft = pending;
  pending = null;
  return idb.put("drafts", draft);
}

addEventListener("pagehide", () => { flush(); });
