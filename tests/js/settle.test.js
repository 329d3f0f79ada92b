// How an outbox item settles (pwa/static/js/outbox/settle.js): the state a
// report is left in after a pass of the sync sent what it could, after a try
// to be made again later, after something new joined it, and after the guard
// tapped "try again". Items are plain objects, as the outbox store keeps them.
import { test } from "node:test";
import assert from "node:assert/strict";

import { parts, postponed, progressed, reopen, retried, settled } from "../../pwa/static/js/outbox/settle.js";

const photo = (state, error = null) => ({ id: `p-${state}`, type: "image/webp", size: 1, state, error });
const tick = (state, error = null) => ({ index: 0, checked_at: "2024-05-03T14:02:11+08:00", state, error });
const write = (state, error = null) => ({ key: "repair-1", url: "/api/reports/r/repair", body: {}, state, error });

function item(fields = {}) {
  return {
    id: "r", user: 1, incident: "lift", created: "2024-05-03T14:00:00+08:00",
    body: { occurred_at: "2024-05-03T14:00:00+08:00" },
    state: "sending", attempts: 0, next_at: 0, error: null, text_sent: true, photos: [],
    ...fields,
  };
}

// ``run`` between two readings of the clock: what it stamped lies between them.
function during(run) {
  const before = Date.now();
  run();
  return [before, Date.now()];
}

// --- settled: after a pass ------------------------------------------------------

test("an item with everything sent is sent, stamped now", () => {
  const it = item({ photos: [photo("sent")], ticks: [tick("sent")], writes: [write("sent")], error: "HTTP 503" });
  const [before, after] = during(() => settled(it));
  assert.equal(it.state, "sent");
  assert.equal(it.error, null);
  const at = Date.parse(it.sent_at);
  assert.ok(at >= before && at <= after, it.sent_at);
  assert.equal(new Date(at).toISOString(), it.sent_at);
});

test("a report of text alone (no photos, ticks or writes) is sent", () => {
  const it = item();
  settled(it);
  assert.equal(it.state, "sent");
});

test("a part still waiting keeps the item waiting, due at once, even next to a failed one", () => {
  const it = item({ photos: [photo("failed", "too big")], ticks: [tick("waiting")], next_at: 99, error: "x" });
  settled(it);
  assert.equal(it.state, "waiting");
  assert.equal(it.next_at, 0);
  assert.equal(it.error, null);
  assert.equal(it.sent_at, undefined);
});

test("each kind of part that waits keeps the item waiting", () => {
  for (const fields of [{ photos: [photo("waiting")] }, { ticks: [tick("waiting")] }, { writes: [write("waiting")] }]) {
    const it = item(fields);
    settled(it);
    assert.equal(it.state, "waiting", JSON.stringify(fields));
  }
});

test("a failed part with none waiting fails the item with that part's reason", () => {
  const it = item({ photos: [photo("sent")], writes: [write("failed", "needs an after photo")] });
  settled(it);
  assert.equal(it.state, "failed");
  assert.equal(it.error, "needs an after photo");
  assert.equal(it.sent_at, undefined);
});

test("of several failed parts the first (photos, then ticks, then writes) gives the reason", () => {
  const it = item({
    photos: [photo("sent"), photo("failed", "photo refused")],
    ticks: [tick("failed", "step refused")],
    writes: [write("failed", "repair refused")],
  });
  settled(it);
  assert.equal(it.error, "photo refused");
  const later = item({ ticks: [tick("failed", "step refused")], writes: [write("failed", "repair refused")] });
  settled(later);
  assert.equal(later.error, "step refused");
});

test("settling leaves the count of attempts and the parts as they are", () => {
  const it = item({ attempts: 3, photos: [photo("failed", "no")] });
  const photos = structuredClone(it.photos);
  settled(it);
  assert.equal(it.attempts, 3);
  assert.deepEqual(it.photos, photos);
});

test("parts lists photos, then ticks, then writes, with none of the last two kept", () => {
  const [p, k, w] = [photo("sent"), tick("waiting"), write("failed")];
  assert.deepEqual(parts(item({ photos: [p], ticks: [k], writes: [w] })), [p, k, w]);
  assert.deepEqual(parts(item({ photos: [p] })), [p]);
});

// --- postponed: a try to make again later ---------------------------------------------

test("a network error waits for the backoff of one more attempt, with no reason shown", () => {
  const it = item({ attempts: 2, error: "HTTP 502" });
  const asked = [];
  const delay = (n) => { asked.push(n); return 8000; };
  const [before, after] = during(() => postponed(it, { message: "network" }, delay));
  assert.equal(it.state, "waiting");
  assert.equal(it.error, null);
  assert.equal(it.attempts, 3);
  assert.deepEqual(asked, [3]); // the backoff of the count with this try
  assert.ok(it.next_at >= before + 8000 && it.next_at <= after + 8000, String(it.next_at));
});

test("a server in trouble says why the report waits", () => {
  const it = item();
  postponed(it, { message: "HTTP 503" }, () => 1000);
  assert.equal(it.error, "HTTP 503");
  assert.equal(it.attempts, 1);
});

test("the server's Retry-After wins over the backoff", () => {
  const it = item();
  let asked = false;
  const [before, after] = during(() => postponed(it, { message: "busy", after: 120_000 }, () => { asked = true; return 1; }));
  assert.equal(asked, false);
  assert.ok(it.next_at >= before + 120_000 && it.next_at <= after + 120_000, String(it.next_at));
  assert.equal(it.attempts, 1);
});

test("no Retry-After (null) falls back to the backoff", () => {
  const it = item();
  const [before, after] = during(() => postponed(it, { message: "HTTP 500", after: null }, () => 4000));
  assert.ok(it.next_at >= before + 4000 && it.next_at <= after + 4000, String(it.next_at));
});

test("a try with no network at all is not counted and does not push the next one back", () => {
  const it = item({ attempts: 4, next_at: 123, error: "HTTP 502" });
  postponed(it, { message: "network", offline: true }, () => assert.fail("no backoff when offline"));
  assert.equal(it.state, "waiting");
  assert.equal(it.error, null);
  assert.equal(it.attempts, 4);
  assert.equal(it.next_at, 123);
});

test("progress starts the backoff over", () => {
  const it = item({ attempts: 6, error: "HTTP 502", state: "sending" });
  progressed(it);
  assert.equal(it.attempts, 0);
  assert.equal(it.error, null);
  assert.equal(it.state, "sending");
});

// --- reopen: something new joined the item --------------------------------------------

test("a sent item waits again when something joins it, due now", () => {
  const it = item({ state: "sent", attempts: 2, next_at: 50, error: "x" });
  reopen(it);
  assert.deepEqual([it.state, it.attempts, it.next_at, it.error], ["waiting", 0, 0, null]);
});

test("a failed item whose report is on the server waits again (one of its parts failed)", () => {
  const it = item({ state: "failed", text_sent: true, error: "photo refused" });
  reopen(it);
  assert.equal(it.state, "waiting");
  assert.equal(it.error, null);
});

test("a report the server refused stays failed: only the guard's retry sends it again", () => {
  const it = item({ state: "failed", text_sent: false, error: "site closed", status: 422 });
  reopen(it);
  assert.equal(it.state, "failed");
  assert.equal(it.error, "site closed");
});

test("an item waiting or being sent keeps its backoff", () => {
  for (const state of ["waiting", "sending"]) {
    const it = item({ state, attempts: 3, next_at: 777, error: "HTTP 503" });
    reopen(it);
    assert.deepEqual([it.state, it.attempts, it.next_at, it.error], [state, 3, 777, "HTTP 503"]);
  }
});

test("a part added to a partly failed report goes, and the item settles back to failed", () => {
  const it = item({ state: "failed", error: "photo refused", photos: [photo("failed", "photo refused")] });
  it.ticks = [tick("waiting")];
  reopen(it);
  assert.equal(it.state, "waiting");
  it.ticks[0].state = "sent"; // the next pass sends the tick
  settled(it);
  assert.equal(it.state, "failed");
  assert.equal(it.error, "photo refused");
});

// --- retried: the guard taps "try again" -----------------------------------------------

test("trying again makes the item and each failed part wait, due now", () => {
  const it = item({
    state: "failed", error: "refused", next_at: 900, attempts: 2,
    photos: [photo("failed", "too big"), photo("sent")],
    ticks: [tick("failed", "no such step")],
    writes: [write("failed", "needs an after photo")],
  });
  retried(it);
  assert.deepEqual([it.state, it.next_at, it.error], ["waiting", 0, null]);
  assert.deepEqual(parts(it).map((p) => [p.state, p.error]), [
    ["waiting", null], ["sent", null], ["waiting", null], ["waiting", null],
  ]);
  assert.equal(it.attempts, 2); // the count of network failures is not the guard's
});

test("trying again an item of text alone needs no parts", () => {
  const it = item({ state: "failed", error: "site closed", text_sent: false });
  retried(it);
  assert.equal(it.state, "waiting");
  settled(it);
  assert.equal(it.state, "sent");
});
