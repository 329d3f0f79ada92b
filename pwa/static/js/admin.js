// @ts-check
// The administration pages (admin_*.html): people, sites and their emergency
// contacts and alert channels. Every change is one write to the API (forms.js); then the page
// redraws its data-live regions (live.js) or goes where the change leads.
// A password the server made up is shown once, in a box outside every
// redrawn region, and kept nowhere else. Handlers are on the document
// because live.js swaps regions in.
import { accepted, newId, redraw, send, settle, trackTyping } from "./forms.js";
import { copy, fmt } from "./text.js";

const { t } = JSON.parse(/** @type {HTMLElement} */ (document.getElementById("admin-data")).textContent);
/** @type {(id: string) => any} */
const $ = (id) => document.getElementById(id);
const path = encodeURIComponent;

trackTyping("form[data-admin]");

// --- what the page says ---------------------------------------------------------

// ``where``: the page's status line, or a section's own (the channels').
function status(message, where = "admin-status") {
  const line = $(where);
  if (!line) return;
  line.textContent = message || "";
  line.hidden = !message;
  if (message) line.scrollIntoView({ block: "nearest" }); // the tap may have been far below
}

// The server's error in the page's words: a field it names gets its own
// explanation (the server's English is the fallback).
function explain(error) {
  const first = error.fields?.[0];
  if (!first) return { message: fmt(t.failed, { m: error.message }) };
  const known = t.fields[first.field.replace(/\.\d+$/, ".N")];
  return {
    field: first.field.split(".")[0],
    message: known || fmt(t.failed, { m: `${first.field}: ${first.message}` }),
  };
}

function formError(form, problem) {
  const box = form.querySelector("[data-error]");
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  box.textContent = problem?.message || "";
  box.hidden = !problem;
  const field = problem?.field && form.elements[problem.field];
  if (!field) return;
  const fields = field instanceof RadioNodeList ? [...field] : [field];
  for (const el of fields) el.setAttribute("aria-invalid", "true");
  fields[0].focus();
}

function showPassword(title, password) {
  const box = $("password-box");
  $("password-title").textContent = title;
  $("password-value").textContent = password;
  const button = $("password-copy");
  button.dataset.label ||= button.textContent;
  button.textContent = button.dataset.label;
  box.hidden = false;
  box.scrollIntoView({ block: "start" });
  box.focus({ preventScroll: true });
}

$("password-copy")?.addEventListener("click", async () => {
  await copy($("password-value").textContent);
  $("password-copy").textContent = t.copied;
});

// Gone from the page once handed over: nothing keeps it.
$("password-done")?.addEventListener("click", () => {
  $("password-value").textContent = "";
  $("password-box").hidden = true;
});

// One question before a change that cannot be taken back; true to go ahead.
function confirmed(kind, name) {
  const dialog = $("admin-confirm");
  $("confirm-title").textContent = fmt(t[`${kind}_title`], { name });
  $("confirm-text").textContent = t[`${kind}_text`];
  $("confirm-ok").textContent = t[`${kind}_ok`];
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

// --- people ----------------------------------------------------------------------

// The person as the server has them now (redrawn with the page), for the
// buttons that change one thing and send the rest back as it is.
const person = () => JSON.parse($("person-head").dataset.person);

function personBody(form, current) {
  const data = new FormData(form);
  return {
    display_name: String(data.get("display_name") || "").trim(),
    role: String(data.get("role") || current?.role || "guard"),
    sites: data.getAll("sites").map(String),
    active: current ? current.active : true,
  };
}

async function addPerson(form) {
  const username = form.elements.username.value.trim();
  const name = form.elements.display_name.value.trim() || username;
  // A PUT on a name already taken would change that person instead: look
  // first. Unless this form sent it and the answer was lost on the way.
  const listed = await send("GET", "/api/users");
  if (!listed.ok) return formError(form, explain(listed.error));
  if (listed.data.users.some((u) => u.username === username)) {
    if (form.dataset.sent !== username) return formError(form, { field: "username", message: t.username_taken });
    status(fmt(t.added_without_password, { name }));
  } else {
    form.dataset.sent = username;
    const answer = await send("PUT", `/api/users/${path(username)}`, personBody(form));
    if (!answer.ok) {
      delete form.dataset.sent;
      return formError(form, explain(answer.error));
    }
    if (answer.data.password) showPassword(fmt(t.initial_password, { name }), answer.data.password);
    else status(fmt(t.added_without_password, { name })); // made by someone else meanwhile
  }
  delete form.dataset.sent;
  settle(form);
  form.reset();
  form.closest("details").open = false;
  redraw();
}

async function savePerson(form) {
  const current = person();
  const answer = await send("PUT", `/api/users/${path(current.username)}`, personBody(form, current));
  if (!answer.ok) return formError(form, explain(answer.error));
  settle(form);
  status(t.saved);
  redraw();
}

function asIs(current, changes) {
  const { display_name, role, sites, active } = current;
  return { display_name, role, sites, active, ...changes };
}

// The buttons that act on a person or a contact: [data-admin-do].
const ACTIONS = {
  password: {
    ask: "password",
    run: (p) => send("PUT", `/api/users/${path(p.username)}/password`, {}),
    done: (p, answer) => showPassword(fmt(t.new_password, { name: p.name }), answer.data.password),
  },
  sessions: {
    ask: "sessions",
    run: (p) => send("DELETE", `/api/users/${path(p.username)}/sessions`),
    done: (p) => status(fmt(t.signed_out, { name: p.name })),
  },
  deactivate: {
    ask: "deactivate",
    run: (p) => send("PUT", `/api/users/${path(p.username)}`, asIs(p, { active: false })),
    done: (p) => status(fmt(t.deactivated, { name: p.name })),
  },
  activate: {
    run: (p) => send("PUT", `/api/users/${path(p.username)}`, asIs(p, { active: true })),
    done: (p) => status(fmt(t.activated, { name: p.name })),
  },
  "contact-delete": {
    ask: "contact",
    run: (c) => send("DELETE", `/api/sites/${path(c.site)}/contacts/${path(c.id)}`),
    done: () => {},
  },
  "channel-delete": {
    ask: "channel",
    run: (c) => send("DELETE", `/api/sites/${path(c.site)}/channels/${path(c.id)}`),
    done: () => {},
  },
  "channel-test": {
    run: (c) => send("POST", `/api/sites/${path(c.site)}/channels/${path(c.id)}/test`),
    done: (c) => {
      status(t.test_queued, "channel-status");
      watchOutcome(c.id);
    },
  },
};

// A test message is sent by the server's worker after this call returns,
// and the live stream announces reports only: so the channel's card is drawn
// again a few times, further apart each time, until its last send or refusal
// changes; the status line then says which.
function watchOutcome(id) {
  const card = () => /** @type {HTMLElement | null} */ (document.querySelector(`[data-channel="${CSS.escape(id)}"]`));
  const before = card()?.dataset.outcome;
  let wait = 500;
  const look = () => {
    const now = card();
    if (now && now.dataset.outcome !== before) {
      status(now.classList.contains("failing") ? t.test_refused : t.test_sent, "channel-status");
      return;
    }
    if (wait > 16000) return; // the card says the rest when the page is next opened
    redraw();
    setTimeout(look, wait);
    wait *= 2;
  };
  setTimeout(look, wait);
}

document.addEventListener("click", async (event) => {
  const button = /** @type {any} */ (event.target).closest("[data-admin-do]");
  if (!button || button.disabled) return;
  const action = ACTIONS[button.dataset.adminDo];
  const subject = button.dataset.id ? { ...button.dataset } : person();
  if (action.ask && !(await confirmed(action.ask, subject.name))) return;
  // A section with its own lines (the channels) names its error box.
  const errorBox = $(button.dataset.errorBox || "admin-error");
  errorBox.hidden = true;
  status("");
  status("", "channel-status");
  button.disabled = true;
  try {
    const answer = await action.run(subject);
    if (!answer.ok) {
      errorBox.textContent = explain(answer.error).message;
      errorBox.hidden = false;
      return;
    }
    action.done(subject, answer);
    redraw();
  } catch {
    errorBox.textContent = t.offline;
    errorBox.hidden = false;
  } finally {
    button.disabled = false;
  }
});

// The people list's site filter applies as soon as it changes.
$("people-filter")?.addEventListener("change", (event) => {
  const site = event.target.value;
  location.assign(site ? `/admin?site=${path(site)}` : "/admin");
});

// --- sites and their contacts -----------------------------------------------------

async function addSite(form) {
  const code = form.elements.code.value.trim();
  // As with people: a PUT on a code in use would rename that site.
  const found = await send("GET", `/api/sites/${path(code)}`);
  if (found.ok) return formError(form, { field: "code", message: t.code_taken });
  if (found.status !== 404) return formError(form, explain(found.error));
  const answer = await send("PUT", `/api/sites/${path(code)}`, { name: form.elements.name.value.trim() });
  if (!answer.ok) return formError(form, explain(answer.error));
  settle(form);
  location.assign(`/admin/sites/${path(code)}`);
}

async function renameSite(form) {
  const answer = await send("PUT", `/api/sites/${path(form.dataset.code)}`, { name: form.elements.name.value.trim() });
  if (!answer.ok) return formError(form, explain(answer.error));
  settle(form);
  form.closest("details").open = false;
  status(t.saved);
  redraw();
}

async function saveContact(form) {
  const data = new FormData(form);
  // A new contact's id is made at the first tap and kept until it is accepted.
  const id = form.dataset.id || newId(form);
  const answer = await send("PUT", `/api/sites/${path(form.dataset.site)}/contacts/${id}`, {
    name: String(data.get("name")).trim(),
    phone: String(data.get("phone")).trim(),
    kind: data.get("kind"),
    incident_types: data.getAll("incident_types").map(String),
  });
  if (!answer.ok) return formError(form, explain(answer.error));
  form.dataset.id = id; // sent again (back, then save), it is this contact, changed
  accepted(form);
  settle(form);
  location.assign(`/admin/sites/${path(form.dataset.site)}`);
}

// --- a site's alert channels (WeCom and DingTalk group robots) -----------------------

// The chosen service's help and fields show (app.css, by the form's data-kind),
// and the webhook's example is that service's.
function showKind(form) {
  const kind = form.elements.kind.value;
  form.dataset.kind = kind;
  const webhook = form.elements.webhook_url;
  if (webhook.dataset[kind]) webhook.placeholder = webhook.dataset[kind];
}

for (const form of document.querySelectorAll('form[data-admin="channel"]')) showKind(form);
document.addEventListener("change", (event) => {
  const target = /** @type {any} */ (event.target);
  const form = target.closest?.('form[data-admin="channel"]');
  if (form && target.name === "kind") showKind(form);
});

// The webhook's key and the signing secret never come back from the server:
// left empty on a change, they are left out and stay as they are.
function channelBody(form) {
  const data = new FormData(form);
  const kind = data.get("kind");
  const body = {
    kind,
    name: String(data.get("name") || "").trim(),
    min_severity: String(data.get("min_severity") || "") || null,
    events: data.getAll("events").map(String),
    language: data.get("language"),
    active: data.get("active") === "1",
  };
  const webhook = String(data.get("webhook_url") || "").trim();
  if (webhook || !form.dataset.id) body.webhook_url = webhook;
  if (kind === "dingtalk") {
    const secret = String(data.get("secret") || "").trim();
    if (data.get("clear_secret")) body.secret = "";
    else if (secret) body.secret = secret;
  }
  return body;
}

async function saveChannel(form) {
  // A new channel's id is made at the first tap and kept until it is accepted.
  const id = form.dataset.id || newId(form);
  const site = form.dataset.site;
  const answer = await send("PUT", `/api/sites/${path(site)}/channels/${id}`, channelBody(form));
  if (!answer.ok) return formError(form, explain(answer.error));
  form.dataset.id = id; // sent again (back, then save), it is this channel, changed
  accepted(form);
  settle(form);
  location.assign(`/admin/sites/${path(site)}#channels`);
}

// --- every form ------------------------------------------------------------------

const SUBMIT = {
  "user-new": addPerson,
  "user-edit": savePerson,
  "site-new": addSite,
  "site-rename": renameSite,
  contact: saveContact,
  channel: saveChannel,
};

document.addEventListener("submit", async (event) => {
  const form = /** @type {any} */ (event.target).closest("form[data-admin]");
  if (!form) return;
  event.preventDefault();
  const button = form.querySelector("[type=submit]");
  if (button.disabled) return; // a second tap while the first is on its way
  button.disabled = true;
  formError(form, null);
  status("");
  try {
    await SUBMIT[form.dataset.admin](form);
  } catch {
    formError(form, { message: t.offline });
  } finally {
    button.disabled = false;
  }
});
