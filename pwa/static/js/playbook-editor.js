// @ts-check
// The playbook library's pages (playbook_*.html): a new incident type, one
// playbook's editor, and a revert from the version list. The editor shows the
// playbook the draft would publish, every step with where its words come
// from; it sends the layer back (PUT …/draft) as the API takes it: each step
// below by its key (reworded, hidden, moved), new steps with their words.
import { send } from "./forms.js";
import { fmt } from "./text.js";

/** @type {any} */
const data = JSON.parse(/** @type {HTMLElement} */ (document.getElementById("playbook-data")).textContent || "{}");
const t = data.t;
const $ = (/** @type {string} */ id) => document.getElementById(id);
const site = data.site ? `?site=${encodeURIComponent(data.site)}` : "";
const base = `/api/playbooks/${encodeURIComponent(data.incident)}`;
const SECTIONS = ["handling", "analysis", "improvement"];
const AUDIENCES = ["resident", "residents", "media"];
const ACTIONS = ["", "call:110", "call:120", "call:119", "photo", "reply"];

/**
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {(Node | string)[]} [children]
 */
function el(tag, props = {}, children = []) {
  const node = /** @type {any} */ (document.createElement(tag));
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function say(message) {
  const line = $("draft-line");
  if (line) line.textContent = message || "";
}

/** The server's error in words: a field it names, and the message. */
function problem(error) {
  const first = error?.fields?.[0];
  return { field: first?.field || "", message: fmt(t.failed, { m: first ? `${first.field}: ${first.message}` : error?.message || "" }) };
}

async function write(method, url, body) {
  try {
    return await send(method, url, body);
  } catch {
    return { ok: false, status: 0, data: null, error: { message: t.offline } };
  }
}

// --- a new incident type (the library page) ----------------------------------------

const newType = /** @type {HTMLFormElement | null} */ ($("new-type-form"));
newType?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = /** @type {any} */ (newType).elements;
  const id = form.id.value.trim();
  const box = /** @type {HTMLElement} */ (newType.querySelector("[data-error]"));
  const answer = await write("PUT", `/api/playbooks/${encodeURIComponent(id)}/draft`, {
    title: { "zh-CN": form.zh.value.trim(), en: form.en.value.trim() },
    category: form.category.value,
  });
  if (answer.ok) {
    location.href = `/admin/playbooks/${encodeURIComponent(id)}`;
    return;
  }
  box.textContent = answer.status ? problem(answer.error).message : t.offline;
  box.hidden = false;
});

// --- a revert (the version list) ------------------------------------------------------

for (const button of document.querySelectorAll("[data-revert]")) {
  button.addEventListener("click", async () => {
    const b = /** @type {HTMLElement} */ (button);
    if (!confirm(fmt(t.confirm_revert, { n: b.dataset.number }))) return;
    const answer = await write("POST", `${base}/publish${site}`, {
      note: fmt(t.revert_note, { n: b.dataset.number }),
      revert_to: b.dataset.revert,
    });
    if (answer.ok) location.href = `${location.pathname}${site}`;
    else say(problem(answer.error).message);
  });
}

// --- the editor ---------------------------------------------------------------------

const editor = /** @type {HTMLFormElement | null} */ ($("editor"));
/** @type {any} */
let state = null;

function load(draft) {
  const preview = draft?.preview || null;
  const below = draft?.below || null;
  const lower = (/** @type {string} */ section) => new Map((below?.[section] || []).map((/** @type {any} */ s) => [s.key, s]));
  state = {
    below,
    lists: Object.fromEntries(SECTIONS.map((section) => [section, (preview?.[section] || []).map((/** @type {any} */ s) => ({
      ...s,
      base: lower(section).get(s.key) || null,
      editing: false,
    }))])),
  };
  const f = /** @type {any} */ (editor).elements;
  const about = preview || { title: { "zh-CN": "", en: "" }, category: "safety", icon: "", severity: "medium", replies: [] };
  f["title-zh"].value = about.title["zh-CN"];
  f["title-en"].value = about.title.en;
  f.category.value = about.category;
  f.icon.value = about.icon || "";
  f.severity.value = about.severity;
  const isNew = !below;
  f.category.disabled = !isNew || Boolean(data.site);
  for (const audience of AUDIENCES) {
    const reply = (about.replies || []).find((/** @type {any} */ r) => r.audience === audience);
    f[`reply-${audience}-zh`].value = reply?.["zh-CN"] || "";
    f[`reply-${audience}-en`].value = reply?.en || "";
  }
  /** @type {HTMLElement} */ ($("discard")).hidden = !draft?.draft;
  say(draft?.draft ? fmt(t.saved, {}) : "");
  draw();
}

function draw() {
  for (const section of SECTIONS) {
    const list = /** @type {HTMLElement} */ (document.querySelector(`[data-list="${section}"]`));
    list.replaceChildren(...state.lists[section].map((/** @type {any} */ step, /** @type {number} */ n) => row(section, step, n)));
  }
}

function row(section, step, n) {
  const steps = state.lists[section];
  const own = !step.base;
  const mark = el("span", { className: `origin origin-${step.origin}` }, [t.origin[step.origin] || step.origin]);
  const text = el("p", { className: "edit-text" }, [step["zh-CN"], " ", mark]);
  const children = [text];
  if (step.base && (step.base["zh-CN"] !== step["zh-CN"])) {
    children.push(el("p", { className: "muted small" }, [fmt(t.reworded_from, { t: step.base["zh-CN"] })]));
  }
  if (step.editing || own && !step["zh-CN"]) {
    children.push(
      el("label", { className: "field" }, [el("span", {}, [t.zh]), el("textarea", { rows: 2, maxLength: 500, value: step["zh-CN"], dataset: { lang: "zh-CN" } })]),
      el("label", { className: "field" }, [el("span", {}, [t.en]), el("textarea", { rows: 2, maxLength: 500, value: step.en, dataset: { lang: "en" } })]),
    );
  }
  if (section === "handling") {
    const select = el("select", { dataset: { role: "action" } }, ACTIONS.map((a) => el("option", { value: a, selected: (step.action || "") === a }, [label(a)])));
    children.push(el("label", { className: "field field-inline" }, [el("span", {}, [t.action]), select]));
  }
  const tools = el("div", { className: "step-tools" }, [
    el("button", { type: "button", className: "btn btn-small", dataset: { move: "-1" }, disabled: n === 0, ariaLabel: t.up }, ["↑"]),
    el("button", { type: "button", className: "btn btn-small", dataset: { move: "1" }, disabled: n === steps.length - 1, ariaLabel: t.down }, ["↓"]),
    el("button", { type: "button", className: "btn btn-small", dataset: { reword: "1" } }, [t.reword]),
    own
      ? el("button", { type: "button", className: "btn btn-small", dataset: { remove: "1" } }, [t.remove])
      : el("button", { type: "button", className: "btn btn-small", dataset: { hide: "1" }, ariaPressed: String(Boolean(step.hidden)) }, [step.hidden ? t.show : t.hide]),
  ]);
  children.push(tools);
  const item = el("li", { className: `edit-step${step.hidden ? " is-hidden" : ""}`, dataset: { section, index: String(n) } }, children);
  if (step.hidden) item.prepend(el("span", { className: "chip chip-hidden" }, [t.hidden]));
  return item;
}

function label(action) {
  if (!action) return t.no_action;
  if (action.startsWith("call:")) return fmt(t.call, { n: action.slice(5) });
  return action === "photo" ? t.photo : t.reply;
}

/** Take what is typed in a row into the state. */
function collect() {
  for (const item of document.querySelectorAll(".edit-step")) {
    const li = /** @type {HTMLElement} */ (item);
    const step = state.lists[/** @type {string} */ (li.dataset.section)][Number(li.dataset.index)];
    for (const area of li.querySelectorAll("textarea")) {
      const a = /** @type {HTMLTextAreaElement} */ (area);
      step[/** @type {string} */ (a.dataset.lang)] = a.value.trim();
    }
    const select = /** @type {HTMLSelectElement | null} */ (li.querySelector("[data-role=action]"));
    if (select) step.action = select.value || null;
  }
}

/** The layer the editor shows, as the API takes it. */
function layer() {
  collect();
  const f = /** @type {any} */ (editor).elements;
  const below = state.below;
  /** @type {Record<string, any>} */
  const out = {};
  const title = { "zh-CN": f["title-zh"].value.trim(), en: f["title-en"].value.trim() };
  if (!below || title["zh-CN"] !== below.title["zh-CN"] || title.en !== below.title.en) out.title = title;
  if (!below) out.category = f.category.value;
  if (f.icon.value.trim() && f.icon.value.trim() !== below?.icon) out.icon = f.icon.value.trim();
  if (!below || f.severity.value !== below.severity) out.severity = f.severity.value;
  for (const section of SECTIONS) {
    out[section] = state.lists[section].map((/** @type {any} */ s) => {
      /** @type {Record<string, any>} */
      const entry = { key: s.key };
      const was = s.base;
      if (!was || s["zh-CN"] !== was["zh-CN"]) entry["zh-CN"] = s["zh-CN"];
      if (!was || s.en !== was.en) entry.en = s.en;
      if ((s.action || null) !== (was?.action || null)) entry.action = s.action || null;
      if (s.hidden) entry.hidden = true;
      return entry;
    });
  }
  const replies = [];
  for (const audience of AUDIENCES) {
    const zh = f[`reply-${audience}-zh`].value.trim();
    const en = f[`reply-${audience}-en`].value.trim();
    const was = (below?.replies || []).find((/** @type {any} */ r) => r.audience === audience);
    if (zh && en && (zh !== was?.["zh-CN"] || en !== was?.en)) replies.push({ audience, "zh-CN": zh, en });
    else if (!zh && !en && was) replies.push({ audience, hidden: true });
  }
  if (replies.length) out.replies = replies;
  return out;
}

function showError(error) {
  const found = problem(error);
  const box = /** @type {HTMLElement} */ (/** @type {HTMLFormElement} */ (editor).querySelector("[data-error]"));
  box.textContent = found.message;
  box.hidden = false;
  // handling[2].zh-CN / handling.2.zh-CN: that row's words, in view and focused.
  const at = found.field.match(/^(handling|analysis|improvement)[.[](\d+)/);
  const target = at
    ? document.querySelector(`.edit-step[data-section="${at[1]}"][data-index="${at[2]}"]`)
    : /** @type {any} */ (editor).elements[{ title: "title-zh", note: "note" }[found.field.split(".")[0]] || ""];
  if (at && target) {
    const step = state.lists[at[1]][Number(at[2])];
    step.editing = true;
    draw();
  }
  const focus = at ? document.querySelector(`.edit-step[data-section="${at[1]}"][data-index="${at[2]}"] textarea`) : target;
  /** @type {any} */ (focus || box).scrollIntoView({ block: "center" });
  /** @type {any} */ (focus)?.focus?.();
}

async function save() {
  const body = layer();
  const answer = await write("PUT", `${base}/draft${site}`, body);
  if (!answer.ok) {
    showError(answer.status ? answer.error : { message: t.offline });
    return false;
  }
  /** @type {HTMLElement} */ (/** @type {HTMLFormElement} */ (editor).querySelector("[data-error]")).hidden = true;
  load(answer.data);
  say(t.saved);
  return true;
}

if (editor) {
  load(data.draft);
  editor.addEventListener("click", async (event) => {
    const button = /** @type {HTMLElement} */ (event.target).closest("button");
    if (!button) return;
    const li = /** @type {HTMLElement | null} */ (button.closest(".edit-step"));
    if (li) {
      collect();
      const steps = state.lists[/** @type {string} */ (li.dataset.section)];
      const n = Number(li.dataset.index);
      if (button.dataset.move) {
        const to = n + Number(button.dataset.move);
        [steps[n], steps[to]] = [steps[to], steps[n]];
      } else if (button.dataset.hide) steps[n].hidden = !steps[n].hidden;
      else if (button.dataset.remove) steps.splice(n, 1);
      else if (button.dataset.reword) steps[n].editing = !steps[n].editing;
      draw();
      const again = document.querySelector(`.edit-step[data-section="${li.dataset.section}"][data-index="${button.dataset.move ? n + Number(button.dataset.move) : n}"] [data-${Object.keys(button.dataset)[0]}]`);
      /** @type {any} */ (again)?.focus?.();
      return;
    }
    if (button.dataset.add) {
      collect();
      state.lists[button.dataset.add].push({ key: null, origin: data.site ? "site" : "company", "zh-CN": "", en: "", base: null, editing: true });
      draw();
      const last = document.querySelector(`[data-list="${button.dataset.add}"] .edit-step:last-child textarea`);
      /** @type {any} */ (last)?.focus();
      return;
    }
    if (button.id === "save-draft") await save();
    if (button.id === "discard") {
      const answer = await write("DELETE", `${base}/draft${site}`);
      if (answer.ok) load(answer.data);
    }
    if (button.id === "publish") {
      const note = /** @type {HTMLInputElement} */ ($("publish-note"));
      if (!note.value.trim()) {
        showError({ message: t.need_note, fields: [{ field: "note", message: t.need_note }] });
        note.focus();
        return;
      }
      if (!(await save())) return;
      const answer = await write("POST", `${base}/publish${site}`, { note: note.value.trim() });
      if (!answer.ok) {
        showError(answer.status ? answer.error : { message: t.offline });
        return;
      }
      location.href = `${base.replace("/api/playbooks", "/admin/playbooks")}/versions${site}`;
    }
  });
}
