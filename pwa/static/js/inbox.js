// @ts-check
// The inbox's filters apply as soon as one is changed: the page is the
// server's, with the filters in its address (so it can be kept and shared).
const form = /** @type {HTMLFormElement | null} */ (document.getElementById("filters"));
form?.addEventListener("change", () => {
  // (A form of text fields and choices: TypeScript's lib wants string pairs.)
  const params = new URLSearchParams(/** @type {any} */ (new FormData(form)));
  for (const [key, value] of [...params]) if (!value || (key === "status" && value === "open")) params.delete(key);
  const query = params.toString();
  location.assign(query ? `/?${query}` : "/");
});
