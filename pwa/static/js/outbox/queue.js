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

const LOCK = "onsite-outbox-sync";
const HEADERS = { "X-Requested-With": "onsite" };
const MAX_BACKOFF_S = 300;

// Jittered exponential backoff: 2, 4, 8 ... seconds, up to five minutes, each
// somewhere between half and one and a half times that, so phones that lost
// the same mast do not all come back in the same second. The random source
// is passed in (and the whole function to sync()) so a test can pin it.
export function backoff(attempts, random = Math.random) {
  const base = Math.min(MAX_BACKOFF_S, 2 ** Math.max(1, attempts));
  return Math.round(base * (0.5 + random()) * 1000);
}

// The browser says there is no network at all (airplane mode, a basement).
// onLine true proves little (a captive portal, one bar), but false is sure.
const offline = () => navigator.onLine === false;

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

async function retryLater(item, outcome, delay) {
  await store.update(item.id, (it) => {
    it.state = "waiting";
    it.error = outcome.message === "network" ? null : outcome.message;
    // A try with no network says nothing about the server: were it counted,
    // minutes in a basement would leave a report waiting minutes more once
    // the signal is back. The "online" event (or Background Sync) sends then.
    if (outcome.offline) return;
    it.attempts += 1;
    it.next_at = Date.now() + (outcome.after ?? delay(it.attempts));
  });
}

// The server took something: the way there works, so the backoff starts over
// and one later cut-off costs seconds, not the minutes earned before.
function progressed(it) {
  it.attempts = 0;
  it.error = null;
}

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
    item = await store.update(item.id, (it) => {
      it.text_sent = true;
      if (answer?.alerted) it.alerted = answer.alerted;
      progressed(it);
    });
    if (!item) return { ok: true }; // deleted meanwhile
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
        Object.assign(it.photos.find((p) => p.id === photo.id), { state: "failed", error: "missing" });
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
        Object.assign(it.photos.find((p) => p.id === photo.id), { state: "failed", error: outcome.message });
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
function photoQuery(photo) {
  const query = new URLSearchParams();
  if (photo.kind) query.set("kind", photo.kind);
  for (const key of ["taken_at", "lat", "lon", "camera"]) {
    if (photo.meta?.[key] != null && photo.meta[key] !== "") query.set(key, String(photo.meta[key]));
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

// PUT one small JSON part of an item (a tick, a write; or DELETE an untick,
// with no body) and record the answer on the part ``find`` picks out of the
// stored item. Answers null to go on (sent, or failed with the server's
// reason), or the outcome that stops the pass (401, retry).
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

function settled(item) {
  const parts = [...item.photos, ...(item.ticks || []), ...(item.writes || [])];
  const failed = parts.find((p) => p.state === "failed");
  if (parts.some((p) => p.state === "waiting")) {
    // Added (a step ticked, a photo taken) while this pass ran: the next
    // pass sends it, even if another part failed meanwhile.
    Object.assign(item, { state: "waiting", next_at: 0, error: null });
  } else if (failed) {
    item.state = "failed";
    item.error = failed.error;
  } else {
    item.state = "sent";
    item.sent_at = new Date().toISOString();
    item.error = null;
  }
}

async function whoAmI() {
  const outcome = await call("/api/me", { method: "GET" });
  if (!outcome.ok) return outcome;
  return { ok: true, user: await outcome.response.json() };
}

// One pass over the outbox. ``force`` ignores the backoff of waiting items
// (the network just came back, or the guard tapped "send now"); ``backoff``
// gives the delay after a failed try from the item's count of them.
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

let running = null;
let again = null;

// Run a sync; at most one per tab or worker at a time, and one across all of
// them (a Web Lock). Calls made while one runs are folded into one more pass.
export function sync(options = {}) {
  if (running) {
    again = { ...(again || {}), ...options, force: Boolean(again?.force || options.force) };
    return running;
  }
  const locked = () => pass(options).finally(() => {});
  running = (navigator.locks ? navigator.locks.request(LOCK, locked) : locked())
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
export async function nextDue(user) {
  const waiting = (await store.open()).filter((it) => it.state !== "failed" && it.user === user);
  if (!waiting.length) return null;
  return Math.min(...waiting.map((it) => it.next_at || 0));
}
