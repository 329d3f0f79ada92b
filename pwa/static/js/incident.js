// @ts-check
// One incident's page: the supervisor's actions (each one PUT on the report),
// copying the approved reply; the photos open in the in-app viewer
// (viewer.js). Handlers are on the document, not the elements, because
// live.js swaps regions in.
import { accepted, newId, redraw, send, settle, trackTyping } from "./forms.js";
import { copy, fmt } from "./text.js";
import "./viewer.js";

const { report, t } = JSON.parse(/** @type {HTMLElement} */ (document.getElementById("incident-data")).textContent);
/** @type {(id: string) => any} */
const $ = (id) => document.getElementById(id);

// --- the supervisor's actions ----------------------------------------------------

// The form's fields as JSON; an empty field is left out, so the server's
// default applies (an optional number stays null, not "").
function body(form) {
  const data = {};
  for (const [key, value] of new FormData(form)) if (value !== "") data[key] = String(value);
  return data;
}

// A form that creates something ("{new}" in its action) does so under an id
// made here and kept until it is accepted (forms.js).
function path(form) {
  const action = form.dataset.action;
  return action.includes("{new}") ? action.replace("{new}", newId(form)) : action;
}

function showError(message) {
  const box = $("action-error");
  if (!box) return;
  box.textContent = message || "";
  box.hidden = !message;
}

trackTyping("form[data-action]");

document.addEventListener("submit", async (event) => {
  const form = /** @type {any} */ (event.target).closest("form[data-action]");
  if (!form) return;
  event.preventDefault();
  const button = form.querySelector("[type=submit]");
  button.disabled = true;
  showError(null);
  try {
    const answer = await send(form.dataset.method || "PUT", `/api/reports/${report}/${path(form)}`, body(form));
    if (!answer.ok) {
      showError(fmt(t.failed, { m: answer.error.message }));
      return;
    }
    if (form.dataset.newId) {
      accepted(form);
      form.reset();
    }
    settle(form);
    redraw();
  } catch {
    showError(t.offline);
  } finally {
    button.disabled = false;
  }
});

// A 改善 point of the playbook, one tap from being a new action.
document.addEventListener("click", (event) => {
  const button = /** @type {any} */ (event.target).closest(".use-item");
  const form = /** @type {any} */ (document.getElementById("new-action"));
  if (!button || !form) return;
  form.elements.description.value = button.dataset.text;
  form.elements.item.value = button.dataset.item;
  form.elements.description.dataset.dirty = "1";
  form.scrollIntoView({ behavior: "smooth", block: "center" });
  form.elements.owner.focus({ preventScroll: true });
});

// --- the approved reply ---------------------------------------------------------

document.addEventListener("click", async (event) => {
  const button = /** @type {any} */ (event.target).closest(".copy-reply");
  if (!button) return;
  await copy(button.parentElement.querySelector(".reply-text").textContent.trim());
  button.textContent = t.copied;
});
