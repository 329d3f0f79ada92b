// @ts-check
// Search over incident titles (Chinese and English), entirely on the phone.
const input = /** @type {HTMLInputElement} */ (document.getElementById("incident-search"));
const empty = /** @type {HTMLElement} */ (document.getElementById("search-empty"));

function filter() {
  const q = input.value.trim().toLowerCase();
  let shown = 0;
  for (const section of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll(".tiles-section"))) {
    let visible = 0;
    for (const tile of /** @type {NodeListOf<any>} */ (section.querySelectorAll(".tile"))) {
      const hit = !q || tile.dataset.search.toLowerCase().includes(q);
      tile.hidden = !hit;
      if (hit) visible += 1;
    }
    section.hidden = visible === 0;
    if (section.id !== "recent") shown += visible;
  }
  empty.hidden = shown > 0;
}

input?.addEventListener("input", filter);
