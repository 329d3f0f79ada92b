// Entry point of every page: the service worker, its updates, and the
// triggers that send the outbox (see outbox/queue.js for the sync itself).
import { sync, nextDue } from "./outbox/queue.js";
import * as store from "./outbox/store.js";

const body = document.body;
const loggedIn = Boolean(body.dataset.user);
const $ = (id) => document.getElementById(id);

// --- the outbox: badge, banners, and when to send -------------------------------

async function showOutbox() {
  const open = await store.open().catch(() => []);
  const badge = $("outbox-count");
  if (badge) {
    badge.textContent = String(open.length);
    badge.hidden = open.length === 0;
  }
  const needLogin = open.length > 0 && (await store.meta("login").catch(() => null)) === "needed";
  if ($("login-needed")) $("login-needed").hidden = !needLogin || location.pathname === "/login";
}

let timer = null;

async function schedule() {
  clearTimeout(timer);
  const due = await nextDue(Number(body.dataset.user)).catch(() => null);
  if (due == null) return;
  // Where there is no Background Sync (iOS Safari, Firefox), this timer is
  // what sends a report once the signal is back; elsewhere it is a second
  // chance while the app is open. The delay is the item's jittered backoff.
  timer = setTimeout(() => send({}), Math.max(1000, due - Date.now()));
}

async function send(options = { force: true }) {
  if (!loggedIn) return { auth: true };
  const result = await sync(options);
  if (result.retry) await registerBackgroundSync();
  // After a 401 nothing is tried on a timer: the next login (or the app
  // coming back into view) sends. With no network at all neither: the
  // "online" event below sends the moment there is one.
  if (!result.auth && !result.offline) await schedule();
  await showOutbox();
  return result;
}

async function registerBackgroundSync() {
  try {
    const registration = await navigator.serviceWorker?.ready;
    await registration?.sync?.register("outbox");
  } catch {
    // not offered by this browser: the timer above does the work
  }
}

// The report flow says when a report went into the outbox: ask the browser
// to keep our storage (never evicted under pressure) and for a Background Sync.
addEventListener("onsite:queued", async () => {
  navigator.storage?.persist?.().catch(() => {});
  await registerBackgroundSync();
  await schedule();
  await showOutbox();
});

let redraw = null; // many changes in a burst (a sync) make one redraw
store.listen(() => {
  clearTimeout(redraw);
  redraw = setTimeout(showOutbox, 200);
});
addEventListener("online", () => { send(); });
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") send();
});
showOutbox();
if (loggedIn) send();

// --- the service worker and its updates ------------------------------------------

let lastInput = Date.now();
for (const type of ["pointerdown", "keydown", "input", "scroll"]) {
  addEventListener(type, () => { lastInput = Date.now(); }, { passive: true, capture: true });
}
// Reloading under a guard's thumb would be rude: a new version is applied at
// once only after a minute without a touch, or while the app is hidden.
const IDLE_MS = 60_000;

function offerUpdate(worker) {
  const apply = () => worker.postMessage({ type: "skip-waiting" });
  if ($("update-ready")) {
    $("update-ready").hidden = false;
    $("update-now").addEventListener("click", apply, { once: true });
  }
  const idle = setInterval(() => {
    const busy = body.dataset.busy === "true"; // a send in progress
    if (!busy && (document.hidden || Date.now() - lastInput > IDLE_MS)) {
      clearInterval(idle);
      apply();
    }
  }, 5000);
}

function warm(registration) {
  // Once per browser session, and again whenever the contacts of the user's
  // sites change: data-contacts is a hash of them that the server puts on
  // every logged-in page, so the first page opened with signal after an admin
  // adds a number keeps every page again (the report flows offline offer it
  // too). The key holds the version last kept, rather than naming it, so a
  // number added and removed again (back to an earlier hash) is noticed too.
  // Error pages carry no version: they leave the pages as they are.
  const key = `onsite-warm-${body.dataset.build}-${body.dataset.user}`;
  const contacts = body.dataset.contacts;
  const kept = sessionStorage.getItem(key);
  const done = () => { document.documentElement.dataset.offlineReady = "true"; body.dispatchEvent(new Event("offline-ready")); };
  if (kept !== null && (contacts === undefined || kept === contacts)) return done();
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data?.type === "warmed") {
      sessionStorage.setItem(key, contacts ?? "");
      done();
    }
  });
  registration.active?.postMessage({ type: "warm" });
}

if ("serviceWorker" in navigator) {
  const hadController = Boolean(navigator.serviceWorker.controller);
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    // The first worker taking control needs no reload; a new version does.
    if (!hadController || reloading) return;
    reloading = true;
    location.reload();
  });
  navigator.serviceWorker
    .register("/sw.js", { type: "module", scope: "/", updateViaCache: "none" })
    .then((registration) => {
      if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
      registration.addEventListener("updatefound", () => {
        const worker = registration.installing;
        worker?.addEventListener("statechange", () => {
          if (worker.state === "installed" && navigator.serviceWorker.controller) offerUpdate(worker);
        });
      });
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") registration.update().catch(() => {});
      });
      return navigator.serviceWorker.ready;
    })
    .then((registration) => { if (loggedIn) warm(registration); })
    .catch((error) => console.warn("service worker not registered", error));

  // Logging out forgets the pages kept for this user (the outbox stays:
  // its reports wait for the guard who made them).
  for (const form of document.querySelectorAll('form[action="/logout"]')) {
    form.addEventListener("submit", () => {
      navigator.serviceWorker.controller?.postMessage({ type: "logout" });
    });
  }
}
