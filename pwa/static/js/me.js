// @ts-check
// "Me": push notifications for this device, whether it is ready offline, and
// logging out the other devices of this account.
import { fmt } from "./text.js";

const { t } = JSON.parse(/** @type {HTMLElement} */ (document.getElementById("me-data")).textContent);
/** @type {(id: string) => any} */
const $ = (id) => document.getElementById(id);
const HEADERS = { "X-Requested-With": "onsite", "Content-Type": "application/json" };

const ios = /iPhone|iPad|iPod/.test(navigator.userAgent);
const standalone = matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;

function show(state, message = null) {
  $("push").dataset.state = state;
  $("push-status").textContent = message ?? t[state] ?? "";
  $("push-on").hidden = state !== "off";
  $("push-test").hidden = state !== "on";
  $("push-off").hidden = state !== "on";
}

function error(message) {
  $("push-error").textContent = message;
  $("push-error").hidden = !message;
}

async function registration() {
  return navigator.serviceWorker.ready;
}

async function refresh() {
  $("push-ios").hidden = !(ios && !standalone);
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return show("unsupported");
  }
  if (Notification.permission === "denied") return show("denied");
  const subscription = await (await registration()).pushManager.getSubscription();
  show(subscription && Notification.permission === "granted" ? "on" : "off");
}

// The server's refusal: its message is in the user's language already.
class ServerError extends Error {}

async function api(method, url, body) {
  const response = await fetch(url, { method, headers: HEADERS, body: body && JSON.stringify(body) });
  if (!response.ok) {
    const problem = await response.json().catch(() => null);
    throw new ServerError(problem?.error?.message || `HTTP ${response.status}`);
  }
  return response.status === 204 ? null : response.json();
}

// Why something failed, in the user's language: browsers say it in English
// ("Registration failed - permission denied"), so the known failures are
// told by the error's name (or words) and said with the page's own text.
export function reason(e, texts = t.reasons) {
  if (e instanceof ServerError) return e.message;
  const name = e?.name || "";
  const words = String(e?.message ?? e ?? "").toLowerCase();
  if (name === "NotAllowedError" || words.includes("permission")) return texts.permission;
  if (name === "NotSupportedError" || words.includes("not supported") || words.includes("unsupported")) {
    return texts.unsupported;
  }
  if (name === "AbortError" || name === "NetworkError" || e instanceof TypeError ||
      words.includes("network") || words.includes("push service") || words.includes("fetch")) {
    return texts.network;
  }
  return texts.other;
}

// Permission is asked for only here, after the tap: a prompt out of the
// blue is what people refuse.
$("push-on").addEventListener("click", async () => {
  error(null);
  show("working");
  try {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") return show(permission === "denied" ? "denied" : "off");
    const { public_key: key } = await api("GET", "/api/push/key");
    const reg = await registration();
    const subscription = (await reg.pushManager.getSubscription()) ||
      (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
    await api("PUT", "/api/push/subscriptions", subscription.toJSON());
    show("on");
  } catch (e) {
    error(fmt(t.failed, { reason: reason(e) }));
    await refresh();
  }
});

$("push-test").addEventListener("click", async () => {
  error(null);
  try {
    await api("POST", "/api/push/test");
    $("push-status").textContent = t.test_sent;
  } catch (e) {
    error(reason(e));
  }
});

$("push-off").addEventListener("click", async () => {
  error(null);
  show("working");
  try {
    const subscription = await (await registration()).pushManager.getSubscription();
    if (subscription) {
      await api("DELETE", "/api/push/subscriptions", { endpoint: subscription.endpoint });
      await subscription.unsubscribe();
    }
  } catch (e) {
    error(reason(e));
  }
  await refresh();
});

refresh();

// --- other devices -------------------------------------------------------------------

$("logout-others").addEventListener("click", async () => {
  const button = $("logout-others");
  $("devices-error").hidden = true;
  button.disabled = true;
  try {
    const { revoked } = await api("DELETE", "/api/sessions/others");
    $("devices-status").textContent = revoked ? fmt(t.others_done, { n: revoked }) : t.only_this;
    button.hidden = true;
  } catch (e) {
    $("devices-error").textContent = reason(e);
    $("devices-error").hidden = false;
  } finally {
    button.disabled = false;
  }
});

// --- offline readiness and what waits -----------------------------------------------

function ready() { $("offline-state").textContent = t.offline_ready; }
if (document.documentElement.dataset.offlineReady) ready();
document.body.addEventListener("offline-ready", ready);

import("./outbox/store.js").then(async (store) => {
  const open = await store.open();
  $("logout-warning").hidden = open.length === 0;
}).catch(() => {});
