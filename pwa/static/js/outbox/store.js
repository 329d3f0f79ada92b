// @ts-check
// The outbox store: reports waiting on the phone, and their photo files.
//
// An item is one report: its JSON body (made once, when the guard pressed
// "send", so every retry sends the same bytes), who made it, and per photo
// its state. The photo files live in their own store, so listing the outbox
// never reads megabytes, and each file is deleted once the server has it.
//
// Later work on a report joins its item, or an item made for it when the
// report came from another phone (``text_sent`` already true):
//   ticks    steps ticked after sending     {index, checked_at, state, error}
//            or unticked (a mis-tap)         {index, unchecked_at, state, error}
//            in the order they were made, sent in that order
//   photos   evidence, or with a ``kind``   {id, kind?, type, size, meta?, state, error}
//            (repair_before, repair_after: a technician's job); ``meta`` is
//            what the original's EXIF said ({taken_at?, lat?, lon?, camera?},
//            photo.js), kept here because the file kept is re-encoded without it
//   writes   small JSON PUTs, in order       {key, url, body, state, error}
//            (the repair); ``key`` is unique per item, so a double tap adds one
//
// Item states: waiting -> sending -> sent, or failed (with the server's
// reason; kept until the guard deletes it). Each tick, photo and write has
// its own state: waiting -> sent, or failed.
import * as idb from "../idb.js";
import { reopen, retried } from "./settle.js";

// The shapes kept in the "outbox" store, for the type checker (tsc, see
// pwa/jsconfig.json); the other modules import them from here.
/**
 * @typedef {"waiting" | "sending" | "sent" | "failed"} ItemState
 * @typedef {"waiting" | "sent" | "failed"} PartState
 */
/**
 * One report in the outbox.
 * @typedef {object} OutboxItem
 * @property {string} id the report's id, made on the phone
 * @property {number} user the user who made it: it waits for their login
 * @property {string} [user_name]
 * @property {string} [title] the incident type's title, as shown
 * @property {string} incident the incident type
 * @property {string} created ISO time it went into the outbox
 * @property {ReportBody} body the report's JSON, sent as it is
 * @property {ItemState} state
 * @property {string} [sent_at] ISO time it settled as sent
 * @property {number} attempts tries that failed on the network or server
 * @property {number} next_at not before this (ms since the epoch; 0: now)
 * @property {string | null} error why it waits or failed
 * @property {number} [status] the HTTP status that refused it
 * @property {boolean} text_sent the server has the report's text
 * @property {Alerted} [alerted] who the server alerted when it arrived
 * @property {OutboxPhoto[]} photos
 * @property {OutboxTick[]} [ticks]
 * @property {OutboxWrite[]} [writes]
 */
/**
 * The report's text as PUT /api/reports/{id} takes it (report-flow.js); an
 * item made for a report already on the server has ``occurred_at`` only.
 * @typedef {object} ReportBody
 * @property {string} occurred_at
 * @property {string} [site]
 * @property {string} [incident_type]
 * @property {string} [severity]
 * @property {string} [client_sent_at]
 * @property {unknown} [playbook_version]
 * @property {{text: string, lat: number | null, lng: number | null, accuracy_m: number | null}} [location]
 * @property {string} [notes]
 * @property {{index: number, checked_at: string}[]} [steps]
 */
/**
 * @typedef {object} Alerted
 * @property {number} supervisors
 * @property {number} channels
 */
/**
 * What a photo's EXIF said (photo.js readMeta).
 * @typedef {object} PhotoMeta
 * @property {string} [taken_at]
 * @property {number} [lat]
 * @property {number} [lon]
 * @property {string} [camera]
 */
/**
 * @typedef {object} OutboxPhoto
 * @property {string} id
 * @property {string} [kind] repair_before, repair_after; none: evidence
 * @property {string} type
 * @property {number} size
 * @property {PhotoMeta} [meta]
 * @property {PartState} state
 * @property {string | null} error
 */
/**
 * A step ticked after sending (``checked_at``) or unticked (``unchecked_at``).
 * @typedef {object} OutboxTick
 * @property {number} index
 * @property {string} [checked_at]
 * @property {string} [unchecked_at]
 * @property {PartState} state
 * @property {string | null} error
 */
/**
 * @typedef {object} OutboxWrite
 * @property {string} key
 * @property {string} url
 * @property {unknown} body
 * @property {PartState} state
 * @property {string | null} error
 */
/** @typedef {OutboxPhoto | OutboxTick | OutboxWrite} OutboxPart */
/**
 * The report an item is made for when this phone did not send it (the page's
 * data: job.js, report-detail.js).
 * @typedef {object} ReportRef
 * @property {string} id
 * @property {number} user
 * @property {string} [user_name]
 * @property {string} [title]
 * @property {string} incident
 * @property {string} occurred_at
 */
/**
 * What the outbox tells its listeners: an item changed, or a meta flag.
 * @typedef {object} Message
 * @property {"changed" | "meta"} type
 * @property {string} [id] the item's, when it changed
 * @property {string} [key] the flag's, when one changed
 * @property {unknown} [value]
 */

const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("onsite-outbox") : null;
// Sent reports stay listed for a week, so a guard can see what went.
const KEEP_SENT_MS = 7 * 24 * 3600 * 1000;

// A channel never hears its own messages: changes made in this page (or
// worker) are told to its own listeners through a local target.
const local = new EventTarget();

/** @param {Message} message */
export function announce(message) {
  channel?.postMessage(message);
  local.dispatchEvent(Object.assign(new Event("message"), { data: message }));
}

/** @param {(message: Message) => void} callback */
export function listen(callback) {
  channel?.addEventListener("message", (event) => callback(event.data));
  local.addEventListener("message", (event) => callback(/** @type {MessageEvent<Message>} */ (event).data));
}

// Call ``callback`` after the outbox item of report ``id`` changed, here or
// in another tab or the worker; a burst of changes (a sync) makes one call.
/**
 * @param {string} id
 * @param {() => void} callback
 */
export function watch(id, callback, delay = 100) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  listen((message) => {
    if (message?.id && message.id !== id) return;
    clearTimeout(timer);
    timer = setTimeout(callback, delay);
  });
}

// Move a finished draft into the outbox, in one transaction: the report is
// either still a draft or fully queued, never half of each.
/**
 * @param {OutboxItem} item
 * @param {{id: string, blob: Blob}[]} photos the files of ``item.photos``
 * @param {string | null} [draftKey]
 */
export async function add(item, photos, draftKey = null) {
  await idb.transaction(["outbox", "blobs", "drafts"], "readwrite", (s) => {
    s.outbox.put(item);
    for (const photo of photos) s.blobs.put({ id: photo.id, report: item.id, blob: photo.blob });
    if (draftKey != null) s.drafts.delete(draftKey);
  });
  announce({ type: "changed", id: item.id });
}

/** @type {(id: string) => Promise<OutboxItem | undefined>} */
export const get = (id) => idb.get("outbox", id);
/** @type {(photoId: string) => Promise<Blob | null>} */
export const blob = (photoId) => idb.get("blobs", photoId).then((row) => row?.blob ?? null);

/** @returns {Promise<OutboxItem[]>} */
export async function list() {
  /** @type {OutboxItem[]} */
  const items = await idb.getAll("outbox");
  return items.sort((a, b) => a.created.localeCompare(b.created));
}

export async function open() {
  return (await list()).filter((item) => item.state !== "sent");
}

// Read, change and write one item in one transaction. The sync's own
// bookkeeping is relaxed (see idb.js): losing it in a crash only means a
// harmless resend.
/**
 * @param {string} id
 * @param {(item: OutboxItem) => void} change
 * @param {{durability?: IDBTransactionDurability}} [options]
 * @returns {Promise<OutboxItem | null>} the item as written, null if gone
 */
export async function update(id, change, { durability = "relaxed" } = {}) {
  const item = await idb.transaction("outbox", "readwrite", async (s) => {
    /** @type {OutboxItem | undefined} */
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
/**
 * @param {string} id
 * @param {string} photoId
 * @param {((item: OutboxItem) => void) | null} [change]
 * @returns {Promise<OutboxItem | null>}
 */
export async function photoSent(id, photoId, change = null) {
  const item = await idb.transaction(["outbox", "blobs"], "readwrite", async (s) => {
    /** @type {OutboxItem | undefined} */
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

// An item for a report already on the server: this phone adds to a report
// it did not send (a technician's job), or whose own item was pruned.
/**
 * @param {ReportRef} report
 * @returns {OutboxItem}
 */
function itemFor(report) {
  const now = new Date().toISOString();
  return {
    id: report.id,
    user: report.user,
    user_name: report.user_name,
    title: report.title,
    incident: report.incident,
    created: now,
    body: { occurred_at: report.occurred_at },
    state: "sent",
    sent_at: now,
    attempts: 0,
    next_at: 0,
    error: null,
    text_sent: true,
    photos: [],
  };
}

// Add to the item of ``report`` (made if missing) in one durable
// transaction over ``stores``: it is what the user entered. ``change``
// returns false when there is nothing new (a double tap). Returns the item;
// something new joined it, so it waits to be sent again (settle.js reopen).
/**
 * @param {ReportRef} report
 * @param {import("../idb.js").StoreName[]} stores
 * @param {(item: OutboxItem, stores: Record<string, IDBObjectStore>) => boolean | void} change
 * @returns {Promise<OutboxItem>}
 */
async function join(report, stores, change) {
  const item = await idb.transaction(["outbox", ...stores], "readwrite", async (s) => {
    /** @type {OutboxItem} */
    const current = (await idb.request(s.outbox.get(report.id))) || itemFor(report);
    if (change(current, s) === false) return current;
    reopen(current);
    s.outbox.put(current);
    return current;
  });
  announce({ type: "changed", id: report.id });
  return item;
}

// A step ticked after the report was sent (the report is a living record:
// "maintenance arrived", "people released"). The sync sends it after the
// report's text. Ticked already (a double tap): nothing new.
/**
 * @param {ReportRef} report
 * @param {{index: number, checked_at: string}} tick
 */
export function addTick(report, tick) {
  return join(report, [], (item) => {
    item.ticks = item.ticks || [];
    const last = item.ticks.findLast((t) => t.index === tick.index);
    if (last && !last.unchecked_at) return false;
    item.ticks.push({ index: tick.index, checked_at: tick.checked_at, state: "waiting", error: null });
  });
}

// A step ticked by mistake, taken back: sent after the tick it takes back
// (the server keeps that tick as evidence). Unticked already: nothing new.
/**
 * @param {ReportRef} report
 * @param {{index: number, unchecked_at: string}} untick
 */
export function addUntick(report, untick) {
  return join(report, [], (item) => {
    item.ticks = item.ticks || [];
    const last = item.ticks.findLast((t) => t.index === untick.index);
    if (last?.unchecked_at) return false;
    item.ticks.push({ index: untick.index, unchecked_at: untick.unchecked_at, state: "waiting", error: null });
  });
}

// A photo added to a sent report, ``photo.kind`` saying which (repair_before,
// repair_after); its file is kept in the same transaction.
/**
 * @param {ReportRef} report
 * @param {{id: string, kind?: string, type: string, meta?: PhotoMeta}} photo
 * @param {Blob} file
 */
export function addPhoto(report, photo, file) {
  return join(report, ["blobs"], (item, s) => {
    if (item.photos.some((p) => p.id === photo.id)) return false;
    item.photos.push({ id: photo.id, kind: photo.kind, type: photo.type, size: file.size, meta: photo.meta, state: "waiting", error: null });
    s.blobs.put({ id: photo.id, report: report.id, blob: file });
  });
}

// A small JSON PUT on the report, sent after the item's photos (the repair
// needs its after photo on the server first). One per ``key``: the same key
// again changes nothing while it waits or once sent, and replaces a failed
// one (the user tries again, perhaps with another photo now).
/**
 * @param {ReportRef} report
 * @param {{key: string, url: string, body: unknown}} write
 */
export function addWrite(report, write) {
  return join(report, [], (item) => {
    item.writes = item.writes || [];
    const same = item.writes.find((w) => w.key === write.key);
    if (same && same.state !== "failed") return false;
    /** @type {OutboxWrite} */
    const entry = { key: write.key, url: write.url, body: write.body, state: "waiting", error: null };
    if (same) Object.assign(same, entry);
    else item.writes.push(entry);
  });
}

// Try a failed item again: it and each of its failed parts wait once more.
/** @param {string} id */
export function retry(id) {
  return update(id, retried, { durability: "strict" });
}

// Delete a report and its files (the outbox page asks the guard first).
/** @param {string} id */
export async function remove(id) {
  await idb.transaction(["outbox", "blobs"], "readwrite", async (s) => {
    /** @type {OutboxItem | undefined} */
    const item = await idb.request(s.outbox.get(id));
    for (const photo of item?.photos || []) s.blobs.delete(photo.id);
    s.outbox.delete(id);
  });
  announce({ type: "changed", id });
}

export async function prune(now = Date.now()) {
  for (const item of await list()) {
    if (item.state === "sent" && now - Date.parse(/** @type {string} */ (item.sent_at)) > KEEP_SENT_MS) await remove(item.id);
  }
}

/** @type {(key: string) => Promise<unknown>} */
export const meta = (key) => idb.get("meta", key).then((row) => row?.value ?? null);
/**
 * @param {string} key
 * @param {unknown} value null deletes the flag
 */
export async function setMeta(key, value) {
  await (value == null ? idb.del("meta", key) : idb.put("meta", { key, value }));
  announce({ type: "meta", key, value });
}
