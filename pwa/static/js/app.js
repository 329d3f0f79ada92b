// @ts-check
// Entry point of every page: the service worker, its updates, and the
// triggers that send the outbox (see outbox/queue.js for the sync itself).
import { sync, nextDue } from "./outbox/queue.js";
import * as store from "./outbox/store.js";

const body = document.body;
const loggedIn = Boolean(body.dataset.user);
/** @type {(id: string) => any} */
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

// --- no signal: the offline indicator ---------------------------------------------

// navigator.onLine false is sure; true proves little (one bar, a captive
// portal), so a sync that fails for the network is checked with a request of
// our own, and the indicator shows until one gets through or "online" comes.
let unreachable = false;

function showNetwork() {
  const none = navigator.onLine === false || unreachable;
  if ($("offline-note")) $("offline-note").hidden = !none;
  document.documentElement.dataset.network = none ? "none" : "ok";
}

let recheck = null;

async function checkNetwork() {
  clearTimeout(recheck);
  try {
    // HEAD passes by the service worker (it answers GETs only): the network's own answer.
    await fetch("/manifest.webmanifest", { method: "HEAD", cache: "no-store" });
    unreachable = false;
  } catch {
    unreachable = true;
    recheck = setTimeout(checkNetwork, 15_000); // the next send may be minutes away
  }
  showNetwork();
}

addEventListener("offline", showNetwork);
addEventListener("online", () => { clearTimeout(recheck); unreachable = false; showNetwork(); });
showNetwork();

/** @param {import("./outbox/queue.js").SyncOptions} [options] */
async function send(options = { force: true }) {
  if (!loggedIn) return { auth: true };
  const result = await sync(options);
  if (result.retry && !result.offline) await checkNetwork();
  else if (!result.offline && !result.retry) { unreachable = false; showNetwork(); }
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

// "Send now" on the outbox page (and its "try again"). Logged out (the page
// is served without a session too), the sync itself finds the 401 and the
// outbox asks for a login.
addEventListener("onsite:send", () => {
  if (loggedIn) send();
  else sync({ force: true }).then(showOutbox);
});

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
  // Once per browser session, again whenever the contacts of the user's
  // sites change, and again in the new language after a switch: data-contacts
  // is a hash of the contacts that the server puts on every logged-in page,
  // so the first page opened with signal after an admin adds a number keeps
  // every page again (the report flows offline offer it too); <html lang> is
  // the language the server drew this page in, so after "English" every kept
  // page is kept in English too (the worker keeps a copy per language). The
  // key holds what was kept last, rather than naming it, so a number added and
  // removed again (back to an earlier hash) is noticed too. Error pages carry
  // no contacts version: they leave the contacts as they are.
  const key = `onsite-warm-${body.dataset.build}-${body.dataset.user}`;
  const lang = document.documentElement.lang;
  const contacts = body.dataset.contacts;
  let kept = null;
  try { kept = JSON.parse(/** @type {string} */ (sessionStorage.getItem(key))); } catch { /* an older shape: warm again */ }
  const done = () => { document.documentElement.dataset.offlineReady = "true"; body.dispatchEvent(new Event("offline-ready")); };
  if (kept?.lang === lang && (contacts === undefined || kept.contacts === contacts)) return done();
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data?.type === "warmed" && (event.data.lang ?? lang) === lang) {
      sessionStorage.setItem(key, JSON.stringify({ lang, contacts: contacts ?? kept?.contacts ?? "" }));
      done();
    }
  });
  // since: when this page was asked for; pages the worker fetched after it are as new.
  registration.active?.postMessage({ type: "warm", lang, since: Math.floor(performance.timeOrigin) });
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
