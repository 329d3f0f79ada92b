// @ts-check
// Onsite service worker: the events, wired to the modules that do the work.
//   precache.js     what the phone keeps offline, and when it is fetched
//   strategies.js   how each request is answered (network-first, cache-first)
//   notify.js       push notifications and clicks on them
//   ../outbox/      the reports waiting on the phone, shared with the pages
// The server writes the build into VERSION (and into every import below), so
// any change to the app's files makes a new worker and new caches.

import { install, activate, warmFor, forgetPages, normalise } from "/static/js/sw/precache.js?v=__BUILD__";
import { respond } from "/static/js/sw/strategies.js?v=__BUILD__";
import { showPush, openFromNotification, resubscribe } from "/static/js/sw/notify.js?v=__BUILD__";
import { sync } from "/static/js/outbox/queue.js?v=__BUILD__";

const VERSION = "__BUILD__";
// This module runs in a ServiceWorkerGlobalScope; tsc's webworker lib types
// ``self`` as any worker's, so it is named here with the worker's own type.
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

sw.addEventListener("install", (event) => {
  // The first worker takes over at once; a newer one waits for the pages to
  // say when (the guard is idle, or tapped "update"), see app.js.
  event.waitUntil(install(VERSION).then(() => {
    if (!sw.registration.active) return sw.skipWaiting();
  }));
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(activate(VERSION).then(() => sw.clients.claim()));
});

sw.addEventListener("fetch", (event) => {
  const answer = respond(event.request, VERSION);
  if (answer) event.respondWith(answer);
});

sw.addEventListener("message", (event) => {
  const data = event.data || {};
  const reply = (/** @type {object} */ message) => event.source?.postMessage(message);
  if (data.type === "version") reply({ type: "version", version: VERSION });
  if (data.type === "skip-waiting") sw.skipWaiting();
  if (data.type === "warm") {
    const lang = normalise(data.lang); // the asking page's: kept in it
    // Pages fetched since the asking page was drawn will do (a warm-up the
    // install started, say); older ones are fetched again.
    const since = Number(data.since) || Date.now();
    event.waitUntil(warmFor(VERSION, lang, since).then((n) => reply({ type: "warmed", pages: n, version: VERSION, lang })));
  }
  if (data.type === "logout") event.waitUntil(forgetPages());
});

// Background Sync, where the browser has it: the outbox is sent even when no
// page is open. A retryable failure throws, so the browser tries again later.
sw.addEventListener("sync", (event) => {
  if (event.tag !== "outbox") return;
  event.waitUntil(sync({ force: true }).then((result) => {
    if (result.retry) throw new Error("outbox: will retry");
  }));
});

sw.addEventListener("push", (event) => event.waitUntil(showPush(event)));
sw.addEventListener("notificationclick", (event) => event.waitUntil(openFromNotification(event)));
sw.addEventListener("pushsubscriptionchange", (event) => event.waitUntil(resubscribe(event)));
