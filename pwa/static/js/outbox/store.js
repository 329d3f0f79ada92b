// The outbox store: reports waiting on the phone, and their photo files.
//
// An item is one report: its JSON body (made once, when the guard pressed
// "send", so every retry sends the same bytes), who made it, and per photo
// its state. The photo files live in their own store, so listing the outbox
// never reads megabytes, and each file is deleted once the server has it.
//
// Item states: waiting -> sending -> sent, or failed (with the server's
// reason; kept until the guard deletes it). Photo states: the same.
import * as idb from "../idb.js";

const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("onsite-outbox") : null;
// Sent reports stay listed for a week, so a guard can see what went.
const KEEP_SENT_MS = 7 * 24 * 3600 * 1000;

// A channel never hears its own messages: changes made in this page (or
// worker) are told to its own listeners through a local target.
const local = new EventTarget();

export function announce(message) {
  channel?.postMessage(message);
  local.dispatchEvent(Object.assign(new Event("message"), { data: message }));
}

export function listen(callback) {
  channel?.addEventListener("message", (event) => callback(event.data));
  local.addEventListener("message", (event) => callback(event.data));
}

// Move a finished draft into the outbox, in one transaction: the report is
// either still a draft or fully queued, never half of each.
export async function add(item, photos, draftKey = null) {
  await idb.transaction(["outbox", "blobs", "drafts"], "readwrite", (s) => {
    s.outbox.put(item);
    for (const photo of photos) s.blobs.put({ id: photo.id, report: item.id, blob: photo.blob });
    if (draftKey != null) s.drafts.delete(draftKey);
  });
  announce({ type: "changed", id: item.id });
}

export const get = (id) => idb.get("outbox", id);
export const blob = (photoId) => idb.get("blobs", photoId).then((row) => row?.blob ?? null);

export async function list() {
  const items = await idb.getAll("outbox");
  return items.sort((a, b) => a.created.localeCompare(b.created));
}

export async function open() {
  return (await list()).filter((item) => item.state !== "sent");
}

// Read, change and write one item in one transaction. The sync's own
// bookkeeping is relaxed (see idb.js): losing it in a crash only means a
// harmless resend.
export async function update(id, change, { durability = "relaxed" } = {}) {
  const item = await idb.transaction("outbox", "readwrite", async (s) => {
    const current = await idb.request(s.outbox.get(id));
    if (!current) return null;
    change(current);
    s.outbox.put(current);
    return current;
  }, durability);
  if (item) announce({ type: "changed", id });
  return item;
}

// The server has this photo: forget its file, keep the record of it.
// ``change`` is the sync's own bookkeeping for the item, in the same write.
export async function photoSent(id, photoId, change = null) {
  const item = await idb.transaction(["outbox", "blobs"], "readwrite", async (s) => {
    const current = await idb.request(s.outbox.get(id));
    if (!current) return null;
    const photo = current.photos.find((p) => p.id === photoId);
    if (photo) Object.assign(photo, { state: "sent", error: null });
    change?.(current);
    s.outbox.put(current);
    s.blobs.delete(photoId);
    return current;
  }, "relaxed");
  announce({ type: "changed", id });
  return item;
}

// A step ticked after the report was sent (the report is a living record:
// "maintenance arrived", "people released"). It joins the report's outbox
// item, or an item made for it when the report came from another phone or
// was pruned, and the sync sends it after the report's text. Kept durably:
// it is what the guard entered. Returns the item.
export async function addTick(report, tick) {
  const item = await idb.transaction("outbox", "readwrite", async (s) => {
    const current = (await idb.request(s.outbox.get(report.id))) || {
      id: report.id,
      user: report.user,
      user_name: report.user_name,
      title: report.title,
      incident: report.incident,
      created: new Date().toISOString(),
      body: { occurred_at: report.occurred_at },
      state: "sent",
      sent_at: new Date().toISOString(),
      attempts: 0,
      next_at: 0,
      error: null,
      text_sent: true,
      photos: [],
    };
    current.ticks = current.ticks || [];
    if (current.ticks.some((t) => t.index === tick.index)) return current; // a double tap
    current.ticks.push({ index: tick.index, checked_at: tick.checked_at, state: "waiting", error: null });
    if (current.state === "sent") Object.assign(current, { state: "waiting", attempts: 0, next_at: 0 });
    s.outbox.put(current);
    return current;
  });
  announce({ type: "changed", id: report.id });
  return item;
}

// Delete a report and its files (the outbox page asks the guard first).
export async function remove(id) {
  await idb.transaction(["outbox", "blobs"], "readwrite", async (s) => {
    const item = await idb.request(s.outbox.get(id));
    for (const photo of item?.photos || []) s.blobs.delete(photo.id);
    s.outbox.delete(id);
  });
  announce({ type: "changed", id });
}

export async function prune(now = Date.now()) {
  for (const item of await list()) {
    if (item.state === "sent" && now - Date.parse(item.sent_at) > KEEP_SENT_MS) await remove(item.id);
  }
}

export const meta = (key) => idb.get("meta", key).then((row) => row?.value ?? null);
export async function setMeta(key, value) {
  await (value == null ? idb.del("meta", key) : idb.put("meta", { key, value }));
  announce({ type: "meta", key, value });
}
