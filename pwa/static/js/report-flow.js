// @ts-check
// The report flow: tick steps (each tick is timed), photos, severity,
// location, notes; review; send. Every change is kept in the draft at once.
import * as drafts from "./drafts.js";
import * as outbox from "./outbox/store.js";
import { sync } from "./outbox/queue.js";
import { prepare } from "./photo.js";
import { fmt, clock, copy } from "./text.js";

const data = JSON.parse(/** @type {HTMLElement} */ (document.getElementById("flow-data")).textContent);
const t = data.t;
/** @type {(id: string) => any} */
const $ = (id) => document.getElementById(id);

const siteInput = $("site");
let draft = null;
const urls = new Map(); // photo id -> object URL, freed when removed

// Typing is coalesced (drafts.js); a tick, a photo or a choice is written at
// once: it is one tap, and a tick's time is evidence.
function save({ now = false } = {}) {
  $("draft-state").textContent = t.draft_saved;
  return drafts.save(draft, { now });
}

// --- steps -------------------------------------------------------------------

function showStep(index) {
  const box = /** @type {any} */ (document.querySelector(`.step-box[data-index="${index}"]`));
  const time = /** @type {any} */ (document.querySelector(`.check-time[data-index="${index}"]`));
  const at = draft.steps[index];
  box.checked = Boolean(at);
  box.closest(".check").classList.toggle("done", Boolean(at));
  time.textContent = at ? clock(at) : "";
  time.dateTime = at || "";
}

for (const box of /** @type {NodeListOf<any>} */ (document.querySelectorAll(".step-box"))) {
  box.addEventListener("change", () => {
    const index = box.dataset.index;
    if (box.checked) draft.steps[index] = new Date().toISOString();
    else delete draft.steps[index]; // an untick before sending is a correction
    showStep(index);
    save({ now: true });
  });
}

for (const button of document.querySelectorAll(".copy-reply")) {
  button.addEventListener("click", async () => {
    await copy(/** @type {any} */ (button.parentElement).querySelector(".reply-text").textContent.trim());
    button.textContent = t.copied;
  });
}

for (const button of document.querySelectorAll(".take-photo")) {
  button.addEventListener("click", () => $("photo-input").click());
}

// --- photos ------------------------------------------------------------------

// "拍摄于 14:02 · GPS" from what the photo's EXIF said (photo.js readMeta),
// with the day when it is not today, so an old photo from the gallery shows;
// neither the day nor the time breaks across lines. Null when it said nothing.
function takenCaption(meta) {
  const gps = meta?.lat != null ? " · GPS" : "";
  if (!meta?.taken_at) return gps ? [gps.slice(3)] : null;
  const at = new Date(meta.taken_at);
  const pad = (n) => String(n).padStart(2, "0");
  const day = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
  const span = (text) => Object.assign(document.createElement("span"), { className: "nowrap", textContent: text });
  const when = day(at) === day(new Date()) ? [span(time)] : [span(day(at)), " ", span(time)];
  const [before, after = ""] = t.taken.replace(/%%/g, "%").split("%(t)s");
  return [before, ...when, after + gps];
}

function photoTile(photo, removable) {
  if (!urls.has(photo.id)) urls.set(photo.id, URL.createObjectURL(photo.blob));
  const figure = document.createElement("figure");
  figure.className = "photo";
  const img = Object.assign(document.createElement("img"), { src: urls.get(photo.id), alt: "" });
  figure.append(img);
  const taken = takenCaption(photo.meta);
  if (taken) {
    const caption = Object.assign(document.createElement("figcaption"), { className: "photo-taken muted small" });
    caption.append(...taken);
    figure.append(caption);
  }
  if (removable) {
    const remove = Object.assign(document.createElement("button"), {
      type: "button", className: "photo-remove", textContent: "✕",
    });
    remove.setAttribute("aria-label", t.remove);
    remove.addEventListener("click", () => {
      draft.photos = draft.photos.filter((p) => p.id !== photo.id);
      URL.revokeObjectURL(urls.get(photo.id));
      urls.delete(photo.id);
      showPhotos();
      save({ now: true });
    });
    figure.append(remove);
  }
  return figure;
}

function showPhotos() {
  $("photo-grid").replaceChildren(...draft.photos.map((p) => photoTile(p, true)));
}

$("photo-input").addEventListener("change", async (event) => {
  for (const file of event.target.files) {
    const { blob, meta } = await prepare(file); // meta: what its EXIF said (time, GPS)
    draft.photos.push({ id: crypto.randomUUID(), blob, type: blob.type || file.type, meta });
  }
  event.target.value = "";
  showPhotos();
  save({ now: true });
});

// --- severity, location, notes -----------------------------------------------

for (const radio of /** @type {NodeListOf<any>} */ (document.querySelectorAll('input[name="severity"]'))) {
  radio.addEventListener("change", () => { draft.severity = radio.value; save({ now: true }); });
}

$("location-text").addEventListener("input", (e) => { draft.location.text = e.target.value; save(); });
siteInput?.addEventListener("change", () => { draft.site = siteInput.value; save({ now: true }); });

$("use-gps").addEventListener("click", () => {
  $("gps-state").textContent = t.gps_wait;
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      const { latitude, longitude, accuracy } = pos.coords;
      Object.assign(draft.location, { lat: latitude, lng: longitude, accuracy_m: accuracy });
      showGps();
      save();
    },
    () => { $("gps-state").textContent = t.gps_denied; },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
  );
});

function showGps() {
  const { lat, lng, accuracy_m: acc } = draft.location;
  $("gps-state").textContent = lat == null ? "" :
    `${lat.toFixed(5)}, ${lng.toFixed(5)} · ${fmt(t.gps_ok, { m: Math.round(acc ?? 0) })}`;
}

$("notes").addEventListener("input", (e) => {
  draft.notes = e.target.value;
  $("notes-count").textContent = draft.notes.length;
  save();
});

// --- review and send -----------------------------------------------------------

function severity() {
  return draft.severity || /** @type {any} */ (document.querySelector('input[name="severity"]:checked')).value;
}

function review() {
  const ticked = Object.keys(draft.steps).map(Number).sort((a, b) => a - b);
  const stepText = (i) => /** @type {any} */ (document.querySelector(`.check[data-index="${i}"] .check-text`)).textContent;
  const rows = [
    [t.type, data.title],
    [t.severity, t.sev[severity()]],
    [t.steps, ticked.length ? ticked.map((i) => `${clock(draft.steps[i])} ${stepText(i)}`).join("\n") : t.none],
    [t.location, [draft.location.text, draft.location.lat == null ? "" :
      `GPS ±${Math.round(draft.location.accuracy_m ?? 0)}\u00a0m`].filter(Boolean).join(" · ") || t.none],
    [t.notes, draft.notes || t.none],
    [t.photos, String(draft.photos.length)],
  ];
  $("summary").replaceChildren(...rows.flatMap(([k, v]) => [
    Object.assign(document.createElement("dt"), { textContent: k }),
    Object.assign(document.createElement("dd"), { textContent: v, className: "prewrap" }),
  ]));
  $("review-photos").replaceChildren(...draft.photos.map((p) => photoTile(p, false)));
  $("fill").hidden = true;
  $("review").hidden = false;
  scrollTo(0, 0);
}

$("to-review").addEventListener("click", () => { drafts.flush(); review(); });
$("back-to-fill").addEventListener("click", () => { $("review").hidden = true; $("fill").hidden = false; });

function body() {
  const steps = Object.entries(draft.steps)
    .map(([index, at]) => ({ index: Number(index), checked_at: at }))
    .sort((a, b) => a.index - b.index);
  return {
    site: draft.site,
    incident_type: data.incident,
    severity: severity(),
    occurred_at: draft.started,
    client_sent_at: new Date().toISOString(),
    playbook_version: data.version,
    location: draft.location,
    notes: draft.notes,
    steps,
  };
}

// Sending puts the report into the outbox first (one transaction: it is a
// draft or a queued report, never lost in between), then tries to send it
// now. With a signal the guard lands on the report; without one, on the
// outbox page, where it waits and goes by itself when the signal returns.
$("send").addEventListener("click", async () => {
  $("send").disabled = true;
  document.body.dataset.busy = "true";
  $("send-state").textContent = t.sending;
  draft.severity = severity();
  await drafts.save(draft, { now: true });
  /** @type {import("./outbox/store.js").OutboxItem} */
  const item = {
    id: draft.id,
    user: Number(document.body.dataset.user),
    user_name: data.user_name,
    title: data.title,
    incident: data.incident,
    created: new Date().toISOString(),
    body: body(),
    state: "waiting",
    attempts: 0,
    next_at: 0,
    error: null,
    text_sent: false,
    photos: draft.photos.map((p) => ({
      id: p.id, type: p.type, size: p.blob.size, meta: p.meta, state: "waiting", error: null,
    })),
  };
  try {
    await outbox.add(item, draft.photos, data.incident);
  } catch (/** @type {any} */ error) {
    // The phone could not store it (storage full?): the draft is untouched.
    $("send-state").textContent = "";
    $("send-error").textContent = `${t.save_failed} (${error?.name || error})`;
    $("send-error").hidden = false;
    $("send").disabled = false;
    document.body.dataset.busy = "false";
    return;
  }
  dispatchEvent(new Event("onsite:queued"));
  await sync({
    force: true,
    progress: ({ photo, photos }) => {
      $("send-state").textContent = fmt(t.photo_progress, { n: photo, total: photos });
    },
  });
  const after = await outbox.get(draft.id);
  document.body.dataset.busy = "false";
  // Sent: the report's page is the "sent" screen, saying who was alerted.
  if (after?.state === "sent") sessionStorage.setItem("onsite:sent", draft.id);
  location.assign(after?.state === "sent" ? `/reports/${draft.id}` : `/outbox?id=${draft.id}`);
});

// --- start: restore the draft or begin one --------------------------------------

async function start() {
  draft = await drafts.load(data.incident).catch(() => null);
  if (draft) {
    $("draft-state").textContent = t.draft_restored;
  } else {
    draft = drafts.newDraft(data.incident, siteInput?.value);
  }
  draft.title = data.title;
  if (siteInput && draft.site) siteInput.value = draft.site;
  draft.site = siteInput?.value;
  for (const box of /** @type {NodeListOf<any>} */ (document.querySelectorAll(".step-box"))) showStep(box.dataset.index);
  if (draft.severity) {
    const radio = /** @type {any} */ (document.querySelector(`input[name="severity"][value="${draft.severity}"]`));
    if (radio) radio.checked = true;
  }
  $("location-text").value = draft.location.text;
  $("notes").value = draft.notes;
  $("notes-count").textContent = draft.notes.length;
  showGps();
  showPhotos();
  document.body.dataset.ready = "true"; // for tests: the draft is loaded
}

start();
