// @ts-check
// How an outbox item settles: its state after a pass of the sync, after a
// try that must be made again later, after something new joined it or the
// guard tapped "try again"; and how long it waits before the next try.
// Pure functions of the item (no IndexedDB, no network), changed in place
// inside store.update's transaction, so tests run them in Node as they are.
/** @typedef {import("./store.js").OutboxItem} OutboxItem */
/** @typedef {import("./store.js").OutboxPart} OutboxPart */

const MAX_BACKOFF_S = 300;

// Jittered exponential backoff: 2, 4, 8 ... seconds, up to five minutes, each
// somewhere between half and one and a half times that, so phones that lost
// the same mast do not all come back in the same second. The random source
// is passed in (and the whole function to sync()) so a test can pin it.
/**
 * @param {number} attempts tries so far that failed on the network or server
 * @param {() => number} [random] a number in [0, 1)
 * @returns {number} the delay in milliseconds
 */
export function backoff(attempts, random = Math.random) {
  const base = Math.min(MAX_BACKOFF_S, 2 ** Math.max(1, attempts));
  return Math.round(base * (0.5 + random()) * 1000);
}

/**
 * The item's parts that are sent on their own: photos, ticks, writes.
 * @param {OutboxItem} item
 * @returns {OutboxPart[]}
 */
export const parts = (item) => [...item.photos, ...(item.ticks || []), ...(item.writes || [])];

/**
 * The state of an item once a pass has sent what it could of it.
 * @param {OutboxItem} item
 */
export function settled(item) {
  const all = parts(item);
  const failed = all.find((p) => p.state === "failed");
  if (all.some((p) => p.state === "waiting")) {
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

/**
 * What stopped a pass and is worth trying again: the network or the server
 * (408, 429, 5xx). ``after`` is the server's Retry-After in milliseconds.
 * @typedef {object} Retry
 * @property {string} message "network", or the server's reason
 * @property {boolean} [offline] the browser said there was no network at all
 * @property {number | null} [after]
 */

/**
 * An item waits for a later try: after the server's Retry-After, else after
 * ``delay`` of its count of tries (the backoff).
 * @param {OutboxItem} it
 * @param {Retry} outcome
 * @param {(attempts: number) => number} delay
 */
export function postponed(it, outcome, delay) {
  it.state = "waiting";
  it.error = outcome.message === "network" ? null : outcome.message;
  // A try with no network says nothing about the server: were it counted,
  // minutes in a basement would leave a report waiting minutes more once
  // the signal is back. The "online" event (or Background Sync) sends then.
  if (outcome.offline) return;
  it.attempts += 1;
  it.next_at = Date.now() + (outcome.after ?? delay(it.attempts));
}

// The server took something: the way there works, so the backoff starts over
// and one later cut-off costs seconds, not the minutes earned before.
/** @param {OutboxItem} it */
export function progressed(it) {
  it.attempts = 0;
  it.error = null;
}

// Something new joined the item: it waits to be sent again. A failed item
// whose report is on the server failed on one part, which keeps its reason:
// the new part goes, and the item settles back to failed (see settled).
/** @param {OutboxItem} item */
export function reopen(item) {
  if (item.state === "sent" || (item.state === "failed" && item.text_sent)) {
    Object.assign(item, { state: "waiting", attempts: 0, next_at: 0, error: null });
  }
}

// The guard tries a failed item again: it and each of its failed parts wait
// once more.
/** @param {OutboxItem} item */
export function retried(item) {
  Object.assign(item, { state: "waiting", next_at: 0, error: null });
  for (const part of parts(item)) {
    if (part.state === "failed") Object.assign(part, { state: "waiting", error: null });
  }
}
