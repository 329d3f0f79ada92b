// The outbox's backoff (pwa/static/js/outbox/settle.js, offered by queue.js
// as sync({backoff})): how long a report waits after a try that failed on
// the network or the server. Run with `node --test tests/js/`.
import { test } from "node:test";
import assert from "node:assert/strict";

import { backoff } from "../../pwa/static/js/outbox/settle.js";

const pinned = (value) => () => value;
const MIDDLE = pinned(0.5); // a factor of exactly 1: the base delay

test("the first tries wait about two seconds", () => {
  // No try yet and one try count alike: the smallest step is 2 s.
  assert.equal(backoff(0, MIDDLE), 2000);
  assert.equal(backoff(1, MIDDLE), 2000);
});

test("each failed try doubles the wait", () => {
  const waits = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoff(n, MIDDLE));
  assert.deepEqual(waits, [2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000]);
});

test("the wait stops growing at five minutes", () => {
  assert.equal(backoff(9, MIDDLE), 300_000); // 2^9 = 512 s would be past the cap
  for (const n of [10, 20, 100, 5000]) assert.equal(backoff(n, MIDDLE), 300_000, `attempts ${n}`);
});

test("the jitter spans half to one and a half times the base", () => {
  assert.equal(backoff(3, pinned(0)), 4000); // 8 s base, the lowest draw
  assert.equal(backoff(3, pinned(0.25)), 6000);
  assert.equal(backoff(3, pinned(0.75)), 10000);
  assert.equal(backoff(3, pinned(0.9999)), 11999); // random() < 1: just under 12 s
  assert.equal(backoff(1, pinned(1 / 3)), 1667); // rounded to the nearest millisecond
  // At the cap too: 150 to 450 s.
  assert.equal(backoff(50, pinned(0)), 150_000);
  assert.equal(backoff(50, pinned(0.9999)), 449_970);
});

test("every wait is a whole number of milliseconds within its bounds", () => {
  for (let attempts = 0; attempts <= 40; attempts += 1) {
    const base = Math.min(300, 2 ** Math.max(1, attempts)) * 1000;
    for (const r of [0, 0.1, 1 / 3, 0.5, 0.77, 0.999999]) {
      const wait = backoff(attempts, pinned(r));
      assert.ok(Number.isInteger(wait), `${wait} ms`);
      assert.ok(wait >= base / 2 && wait <= base * 1.5, `attempts ${attempts}, random ${r}: ${wait}`);
    }
  }
});

test("without a random source it draws from Math.random", (t) => {
  t.mock.method(Math, "random", () => 0.25);
  assert.equal(backoff(2), 3000); // 4 s base, a factor of 0.75
  assert.equal(Math.random.mock.callCount(), 1);
});
