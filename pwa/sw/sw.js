// Onsite service worker: event wiring only.
// The caching strategies, the precache list and the offline outbox come with
// the offline-first work; until then every request goes to the network as if
// there were no worker, but the app is installable and the worker is in place
// so that the update path already works.

const VERSION = "0.1.0";

self.addEventListener("install", () => {
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("message", (event) => {
  if (event.data === "version") event.source?.postMessage({ version: VERSION });
});
