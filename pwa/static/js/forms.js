// @ts-check
// Writing to the API from a page's forms, for the pages that change things
// (incident.js, admin.js): JSON with the header a cross-site form cannot set,
// the server's error read back, and the redraw asked of live.js.

// One write. Resolves to { ok, status, data, error } (``error`` is the
// server's {code, message, fields}); rejects only when nothing came back
// (no network), which the page reports as "not sent".
export async function send(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: {
      "X-Requested-With": "onsite",
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  const error = response.ok ? null : data?.error || { message: `HTTP ${response.status}` };
  return { ok: response.ok, status: response.status, data, error };
}

// A form that creates something under an id made here keeps that id until
// the server has accepted it: a second tap, or a retry after a lost answer,
// is the same write, not a second thing. ``accepted`` forgets it.
export function newId(form) {
  form.dataset.newId ||= crypto.randomUUID();
  return form.dataset.newId;
}

export function accepted(form) {
  delete form.dataset.newId;
}

// live.js leaves a region alone while someone types in it (a field marked
// dirty); once a form is sent its fields are clean again.
export function trackTyping(selector) {
  document.addEventListener("input", (event) => {
    const target = /** @type {any} */ (event.target);
    if (target.closest?.(selector)) target.dataset.dirty = "1";
  });
}

export function settle(form) {
  for (const field of form.querySelectorAll("[data-dirty]")) delete field.dataset.dirty;
  /** @type {HTMLElement | null} */ (document.activeElement)?.blur();
}

// Draw the page's new state now (live.js swaps its data-live regions).
export const redraw = () => dispatchEvent(new Event("onsite:changed"));
