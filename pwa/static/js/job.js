// @ts-check
// The technician's job on a report: photos before and after the repair, a
// note, and "repaired". Everything goes through the outbox, on the report's
// item, so it is kept with no signal and sent once: the photos (PUT by a
// phone-made id, with their kind), then the repair (a write, sent after the
// photos because the server wants its after photo first). The page draws
// what the server had when it was rendered, then what waits in the outbox,
// so a reload with no signal shows everything still waiting.
import * as outbox from "./outbox/store.js";
import { sync } from "./outbox/queue.js";
import { prepare } from "./photo.js";
import { fmt } from "./text.js";
import "./viewer.js";

/** @type {(id: string) => any} */
const $ = (id) => document.getElementById(id);
const { report, status, assignment, t } = JSON.parse($("job-data").textContent);
const section = $("job");
// The key of the repair write on the item: one per assignment, so a job
// that comes back after a redo is repaired anew.
const REPAIR = `repair-${assignment}`;
const noteKey = `onsite-job-note-${report.id}`; // the note as typed, before "repaired"
const urls = new Map(); // photo id -> object URL of the file on the phone

function showError(message) {
  $("job-error").textContent = message;
  $("job-error").hidden = !message;
}

// --- the photos ----------------------------------------------------------------

function tile(photo) {
  const li = document.createElement("li");
  li.className = "job-photo";
  li.dataset.id = photo.id;
  li.dataset.kind = photo.kind;
  const img = Object.assign(document.createElement("img"), { alt: "" });
  const text = Object.assign(document.createElement("span"), { className: "job-photo-text" });
  text.append(
    Object.assign(document.createElement("strong"), {
      className: "job-photo-kind",
      textContent: photo.kind === "repair_before" ? t.before : t.after,
    }),
    Object.assign(document.createElement("span"), { className: "job-photo-state small" }),
  );
  li.append(img, text);
  $("job-photos").append(li);
  return li;
}

async function showPhoto(photo) {
  const li = $("job-photos").querySelector(`[data-id="${photo.id}"]`) || tile(photo);
  const img = li.querySelector("img");
  if (!img.getAttribute("src")) {
    // The file while the phone has it; once sent it is deleted there, and
    // the server's thumbnail stands in.
    const file = urls.has(photo.id) || photo.state === "sent" ? null : await outbox.blob(photo.id);
    if (file) urls.set(photo.id, URL.createObjectURL(file));
    img.src = urls.get(photo.id) || `/api/reports/${report.id}/photos/${photo.id}/thumb`;
  }
  li.dataset.state = photo.state;
  const state = li.querySelector(".job-photo-state");
  state.textContent = photo.state === "sent" ? t.sent
    : photo.state === "failed" ? fmt(t.failed, { m: photo.error || "" }) : t.waiting;
  state.classList.toggle("job-failed", photo.state === "failed");
}

// An after photo the server has, or one on its way to it.
function hasAfterPhoto() {
  return [...$("job-photos").querySelectorAll('[data-kind="repair_after"]')]
    .some((li) => li.dataset.state !== "failed");
}

async function addPhotos(input) {
  const files = [...input.files];
  input.value = ""; // the same photo may be chosen again
  if (!files.length) return;
  showError("");
  document.body.dataset.busy = "true"; // no update reload under the camera
  try {
    for (const file of files) {
      const { blob, meta } = await prepare(file);
      const photo = { id: crypto.randomUUID(), kind: input.dataset.kind, type: blob.type || file.type, meta };
      await outbox.addPhoto(report, photo, blob);
      urls.set(photo.id, URL.createObjectURL(blob));
    }
  } catch (/** @type {any} */ error) {
    // The phone could not keep it (storage full?): say so; those kept stay.
    showError(`${t.save_failed} (${error?.name || error})`);
  } finally {
    document.body.dataset.busy = "false";
  }
  await render();
  dispatchEvent(new Event("onsite:queued"));
  await sync({ force: true });
}

for (const input of section.querySelectorAll(".job-input")) {
  input.addEventListener("change", () => addPhotos(input));
}

// --- the note and "repaired" ---------------------------------------------------------

const note = $("job-note");
if (!note.readOnly) note.value = localStorage.getItem(noteKey) ?? note.value;
note.addEventListener("input", () => {
  if (!note.readOnly) localStorage.setItem(noteKey, note.value);
});

$("job-repaired").addEventListener("click", async () => {
  const button = $("job-repaired");
  showError("");
  if (!hasAfterPhoto()) {
    showError(t.need_after);
    $("job-after").closest("label").scrollIntoView({ block: "center" });
    return;
  }
  button.disabled = true; // a double tap: the write's key makes it one anyway
  try {
    await outbox.addWrite(report, {
      key: REPAIR,
      url: `/api/reports/${report.id}/repair`,
      body: { note: note.value.trim() },
    });
  } catch (/** @type {any} */ error) {
    showError(`${t.save_failed} (${error?.name || error})`);
    return;
  } finally {
    button.disabled = false;
  }
  localStorage.removeItem(noteKey);
  await render();
  dispatchEvent(new Event("onsite:queued"));
  await sync({ force: true });
});

$("job-retry").addEventListener("click", async () => {
  showError("");
  await outbox.retry(report.id);
  await sync({ force: true });
});

// --- the whole section, from the page and the outbox ------------------------------------

function showRepair(write) {
  const done = status === "repaired" || write?.state === "sent";
  const waiting = !done && (write?.state === "waiting" || write?.state === "sending");
  const failed = !done && write?.state === "failed";
  const state = $("job-state");
  state.textContent = done ? t.repaired : waiting ? t.repaired_waiting : t.working;
  state.classList.toggle("job-state-done", done);
  state.classList.toggle("job-state-waiting", waiting);
  // Once "repaired" is on its way the note goes with it: no more edits. A
  // refused one gives its note back to edit, unless one is being typed.
  if (write && (!failed || !note.value)) note.value = write.body.note;
  note.readOnly = done || waiting;
  $("job-repaired").hidden = done || waiting;
  const line = $("job-repair-state");
  line.hidden = !(waiting || failed);
  line.textContent = failed ? fmt(t.failed, { m: write.error || "" }) : waiting ? t.waiting : "";
  line.className = `small ${failed ? "alert" : "job-waiting"}`;
  section.dataset.repair = done ? "repaired" : write ? write.state : "none";
}

async function draw() {
  const item = await outbox.get(report.id).catch(() => null);
  for (const photo of (item?.photos || []).filter((p) => p.kind)) await showPhoto(photo);
  $("job-no-photos").hidden = $("job-photos").children.length > 0;
  showRepair((item?.writes || []).find((w) => w.key === REPAIR));
  $("job-retry").hidden = item?.state !== "failed";
  // For tests, and anyone reading the page: each photo's kind and state.
  section.dataset.photos = JSON.stringify(
    [...$("job-photos").children].map((li) => [li.dataset.kind, li.dataset.state]));
  section.dataset.ready = "true";
}

// One drawing at a time: two at once would both make the tile of a new photo.
let drawing = Promise.resolve();
function render() {
  drawing = drawing.then(draw, draw);
  return drawing;
}

outbox.watch(report.id, render);
render();
