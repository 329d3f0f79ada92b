// @ts-check
// Push notifications: show them, open the report on a tap, and subscribe
// again when the push service rotates the subscription.

const HEADERS = { "X-Requested-With": "onsite", "Content-Type": "application/json" };

// A ServiceWorkerGlobalScope (see sw.js), typed as one.
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

/**
 * What the server pushes (its alert payloads). All of it is optional: a
 * push from an older server or another sender may say less.
 * @typedef {object} Push
 * @property {string} [title]
 * @property {string} [body]
 * @property {string} [url]
 * @property {string} [kind]
 * @property {string} [severity]
 * @property {string | null} [report_id]
 */

/**
 * @param {PushEvent} event
 * @returns {Push}
 */
function read(event) {
  if (!event.data) return {};
  try {
    return event.data.json();
  } catch {
    return { body: event.data.text() };
  }
}

/** @param {PushEvent} event */
export function showPush(event) {
  const data = read(event);
  const critical = data.severity === "critical";
  // One notification per report: a newer alert for the same report replaces
  // the older one instead of piling up.
  const tag = data.report_id ? `report-${data.report_id}` : data.kind || "onsite";
  return sw.registration.showNotification(data.title || "Onsite", {
    body: data.body || "",
    icon: "/static/icons/icon-192.png",
    badge: "/static/icons/badge-96.png",
    tag,
    renotify: critical, // buzz again for a critical update of the same report
    requireInteraction: critical,
    vibrate: critical ? [300, 120, 300, 120, 600] : [200],
    timestamp: Date.now(),
    data: { url: data.url || "/", report_id: data.report_id || null, severity: data.severity || null },
  });
}

/** @param {NotificationEvent} event */
export async function openFromNotification(event) {
  event.notification.close();
  const target = new URL(event.notification.data?.url || "/", sw.location.origin).href;
  const windows = await sw.clients.matchAll({ type: "window" });
  const already = windows.find((w) => w.url === target);
  if (already) return already.focus();
  if (windows.length) {
    // Reuse the app's window rather than stacking a new one on it; the draft
    // of a half-made report is kept on the phone either way.
    const client = windows[0];
    const moved = await client.navigate(target).catch(() => null);
    if (moved) return moved.focus().catch(() => moved);
  }
  return sw.clients.openWindow(target);
}

/** @param {PushSubscriptionChangeEvent} event */
export async function resubscribe(event) {
  const { public_key: key } = await fetch("/api/push/key").then((r) => r.json());
  const subscription = event.newSubscription ||
    (await sw.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
  await fetch("/api/push/subscriptions", {
    method: "PUT", headers: HEADERS, body: JSON.stringify(subscription.toJSON()),
  });
  if (event.oldSubscription && event.oldSubscription.endpoint !== subscription.endpoint) {
    await fetch("/api/push/subscriptions", {
      method: "DELETE", headers: HEADERS, body: JSON.stringify({ endpoint: event.oldSubscription.endpoint }),
    });
  }
}
