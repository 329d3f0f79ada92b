// @ts-check
// The sync: sends what waits in the outbox, one report at a time, the text
// first (so supervisors are told at once), then steps ticked after sending,
// then the photos one by one, then the item's small JSON writes in order
// (a technician's "repaired" needs its after photo on the server first).
//
// One sync runs at a time across every tab and the service worker (a Web
// Lock). Every write is a PUT by an id made on the phone, so sending again
// after any interruption is safe: the server answers "already have it".
//
//   2xx                 done
//   401                 stop; everything stays; the guard is asked to log in
//   408, 429, 5xx,
//   network error       stop; try again after a backoff (seconds to minutes)
//   no network at all   stop; the backoff does not grow (see retryLater)
//   any other 4xx       that report (or its tick, photo or write) is marked
//                       failed with the server's message and kept until the
//                       guard deletes it (or tries again)
import * as store from "./store.js";
import { backoff, postponed, progressed, settled } from "./settle.js";

// The backoff (settle.js) is part of what the sync offers: sync({backoff}).
export { backoff };
/** @typedef {import("./store.js").OutboxItem} OutboxItem */
/** @typedef {import("./store.js").OutboxPhoto} OutboxPhoto */

/**
 * What a request came to (call), the sending of one report (sendItem), or
 * the question of who is logged in (whoAmI): one of these, told apart by
 * the flag that is set (the others are absent).
 * @typedef {{ok: true} & Unset<"auth" | "retry" | "failed">} Done
 * @typedef {Done & {response: Response}} Took
 * @typedef {Done & {user: {id: number}}} Me
 * @typedef {{auth: true} & Unset<"ok" | "retry" | "failed">} LoginNeeded
 * @typedef {{retry: true} & import("./settle.js").Retry & Unset<"ok" | "auth" | "failed">} Later
 * @typedef {{failed: true, status: number, message: string} & Unset<"ok" | "auth" | "retry" | "offline" | "after">} Refused
 * @typedef {LoginNeeded | Later | Refused} NotDone
 */
/**
 * @template {string} K
 * @typedef {{[P in K]?: undefined}} Unset
 */
/**
 * What a sync came to: how many reports went (and how many wait when
 * nothing was due), or why it stopped.
 * @typedef {object} SyncResult
 * @property {number} [sent]
 * @property {number} [waiting]
 * @property {boolean} [retry] the network or the server is down: later
 * @property {boolean} [offline] the browser says there is no network at all
 * @property {boolean} [auth] the guard must log in
 * @property {string} [error] the sync itself threw
 */
/**
 * @typedef {object} SyncOptions
 * @property {boolean} [force] ignore the backoff of waiting items
 * @property {((progress: {id: string, photo: number, photos: number}) => void) | null} [progress]
 * @property {(attempts: number) => number} [backoff] the delay after a failed try, in ms
 */

const LOCK = "onsite-outbox-sync";
const HEADERS = { "X-Requested-With": "onsite" };

// The browser says there is no network at all (airplane mode, a basement).
// onLine true proves little (a captive portal, one bar), but false is sure.
const offline = () => navigator.onLine === false;

/**
 * @param {string} url
 * @param {RequestInit} init
 * @returns {Promise<Took | NotDone>}
 */
async function call(url, init) {
  let response;
  try {
    response = await fetch(url, { ...init, credentials: "same-origin", cache: "no-store",
                                  headers: { ...HEADERS, ...(init.headers || {}) } });
  } catch {
    return { retry: true, message: "network", offline: offline() };
  }
  if (response.ok) return { ok: true, response };
  if (response.status === 401) return { auth: true };
  const body = await response.json().catch(() => null);
  const message = body?.error?.message || `HTTP ${response.status}`;
  if (response.status >= 500 || response.status === 408 || response.status === 429) {
    const after = Number(response.headers.get("Retry-After"));
    return { retry: true, message, after: Number.isFinite(after) && after > 0 ? after * 1000 : null };
  }
  return { failed: true, status: response.status, message };
}

// Try again later (settle.js postponed): after a backoff, or once there is
// a network at all.
/**
 * @param {OutboxItem} item
 * @param {import("./settle.js").Retry} outcome
 * @param {(attempts: number) => number} delay
 */
async function retryLater(item, outcome, delay) {
  await store.update(item.id, (it) => postponed(it, outcome, delay));
}

/**
 * @param {OutboxItem} item
 * @param {SyncOptions["progress"]} progress
 * @returns {Promise<Done | NotDone>}
 */
async function sendItem(item, progress) {
  if (!item.text_sent) {
    const outcome = await call(`/api/reports/${item.id}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(item.body),
    });
    if (!outcome.ok) return outcome;
    // Who the server alerted (supervisors, work groups): the sent screen says so.
    const answer = await outcome.response.json().catch(() => null);
    const updated = await store.update(item.id, (it) => {
      it.text_sent = true;
      if (answer?.alerted) it.alerted = answer.alerted;
      progressed(it);
    });
    if (!updated) return { ok: true }; // deleted meanwhile
    item = updated;
  }
  // Steps ticked (or unticked) after sending: small, and the evidence trail,
  // so before photos; in the order they were made, each found by its place.
  for (const [n, tick] of (item.ticks || []).entries()) {
    if (tick.state !== "waiting") continue;
    const url = `/api/reports/${item.id}/steps/${tick.index}`;
    const stop = tick.unchecked_at
      ? await putJson(item, `${url}?at=${encodeURIComponent(tick.unchecked_at)}`, null,
        (it) => it.ticks?.[n], "DELETE")
      : await putJson(item, url, { checked_at: tick.checked_at }, (it) => it.ticks?.[n]);
    if (stop) return stop;
  }
  const photos = item.photos.filter((p) => p.state !== "sent" && p.state !== "failed");
  for (const [n, photo] of photos.entries()) {
    progress?.({ id: item.id, photo: n + 1, photos: photos.length });
    const file = await store.blob(photo.id);
    if (!file) { // cannot happen unless storage was cleared: say so, never hide it
      await store.update(item.id, (it) => {
        const kept = it.photos.find((p) => p.id === photo.id);
        if (kept) Object.assign(kept, { state: "failed", error: "missing" });
      });
      continue;
    }
    const outcome = await call(`/api/reports/${item.id}/photos/${photo.id}${photoQuery(photo)}`, {
      method: "PUT",
      headers: { "Content-Type": photo.type || file.type || "application/octet-stream" },
      body: file,
    });
    if (outcome.ok) {
      await store.photoSent(item.id, photo.id, progressed);
    } else if (outcome.failed) {
      await store.update(item.id, (it) => {
        const kept = it.photos.find((p) => p.id === photo.id);
        if (kept) Object.assign(kept, { state: "failed", error: outcome.message });
      });
    } else {
      return outcome;
    }
  }
  // Writes last, one after another: each may need what went before it.
  for (const write of (item.writes || []).filter((w) => w.state === "waiting")) {
    const stop = await putJson(item, write.url, write.body,
      (it) => it.writes?.find((w) => w.key === write.key));
    if (stop) return stop;
  }
  return { ok: true };
}

// A photo's kind and what its EXIF said (photo.js readMeta), as the upload's
// query: the file sent is re-encoded, without its EXIF.
/** @param {OutboxPhoto} photo */
function photoQuery(photo) {
  const query = new URLSearchParams();
  if (photo.kind) query.set("kind", photo.kind);
  for (const key of /** @type {const} */ (["taken_at", "lat", "lon", "camera"])) {
    if (photo.meta?.[key] != null && photo.meta[key] !== "") query.set(key, String(photo.meta[key]));
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

// PUT one small JSON part of an item (a tick, a write; or DELETE an untick,
// with no body) and record the answer on the part ``find`` picks out of the
// stored item. Answers null to go on (sent, or failed with the server's
// reason), or the outcome that stops the pass (401, retry).
/**
 * @param {OutboxItem} item
 * @param {string} url
 * @param {unknown} body
 * @param {(item: OutboxItem) => import("./store.js").OutboxTick | import("./store.js").OutboxWrite | undefined} find
 * @returns {Promise<NotDone | null>}
 */
async function putJson(item, url, body, find, method = "PUT") {
  const outcome = await call(url, body == null ? { method } : {
    method,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!outcome.ok && !outcome.failed) return outcome;
  const change = outcome.ok ? { state: "sent", error: null } : { state: "failed", error: outcome.message };
  await store.update(item.id, (it) => {
    const part = find(it);
    if (part) Object.assign(part, change);
    if (outcome.ok) progressed(it);
  });
  return null;
}

/** @returns {Promise<Me | NotDone>} */
async function whoAmI() {
  const outcome = await call("/api/me", { method: "GET" });
  if (!outcome.ok) return outcome;
  return { ok: true, user: await outcome.response.json() };
}

// One pass over the outbox. ``force`` ignores the backoff of waiting items
// (the network just came back, or the guard tapped "send now"); ``backoff``
// gives the delay after a failed try from the item's count of them.
/**
 * @param {SyncOptions} [options]
 * @returns {Promise<SyncResult>}
 */
async function pass({ force = false, progress = null, backoff: delay = backoff } = {}) {
  await store.prune();
  const now = Date.now();
  const due = (await store.open()).filter((it) => it.state !== "failed" && (force || (it.next_at || 0) <= now));
  if (!due.length) return { sent: 0, waiting: (await store.open()).length };
  // No network: nothing to learn by trying, and nothing is counted.
  if (offline()) return { retry: true, offline: true };
  const me = await whoAmI();
  if (me.auth) {
    await store.setMeta("login", "needed");
    return { auth: true };
  }
  if (!me.ok) {
    for (const item of due) await retryLater(item, me, delay);
    return { retry: true, offline: Boolean(me.offline) };
  }
  if (await store.meta("login")) await store.setMeta("login", null);
  let sent = 0;
  for (const item of due) {
    // A report waits for the guard who made it, even if another logs in.
    if (item.user !== me.user.id) continue;
    await store.update(item.id, (it) => { it.state = "sending"; });
    const outcome = await sendItem(item, progress);
    if (outcome.ok) {
      await store.update(item.id, settled);
      sent += 1;
    } else if (outcome.failed) {
      await store.update(item.id, (it) => {
        Object.assign(it, { state: "failed", error: outcome.message, status: outcome.status });
      });
    } else if (outcome.auth) {
      await store.update(item.id, (it) => { it.state = "waiting"; });
      await store.setMeta("login", "needed");
      return { auth: true, sent };
    } else {
      // The network or the server is down: the rest would fail the same way.
      await retryLater(item, outcome, delay);
      return { retry: true, offline: Boolean(outcome.offline), sent };
    }
  }
  return { sent };
}

/** @type {Promise<SyncResult> | null} */
let running = null;
/** @type {SyncOptions | null} */
let again = null;

// Run a sync; at most one per tab or worker at a time, and one across all of
// them (a Web Lock). Calls made while one runs are folded into one more pass.
/**
 * @param {SyncOptions} [options]
 * @returns {Promise<SyncResult>}
 */
export function sync(options = {}) {
  if (running) {
    again = { ...(again || {}), ...options, force: Boolean(again?.force || options.force) };
    return running;
  }
  const locked = () => pass(options).finally(() => {});
  // (TypeScript's lib types request() as a promise of the callback's promise.)
  running = (navigator.locks ? /** @type {Promise<SyncResult>} */ (navigator.locks.request(LOCK, locked)) : locked())
    .catch((error) => ({ retry: true, error: String(error) }))
    .finally(() => {
      running = null;
      if (again) {
        const next = again;
        again = null;
        sync(next);
      }
    });
  return running;
}

// When the next waiting report of ``user`` is due, for a timer (null if
// none waits). Reports of another user wait for that user's login instead.
/**
 * @param {number} user
 * @returns {Promise<number | null>} ms since the epoch
 */
export async function nextDue(user) {
  const waiting = (await store.open()).filter((it) => it.state !== "failed" && it.user === user);
  if (!waiting.length) return null;
  return Math.min(...waiting.map((it) => it.next_at || 0));
}
