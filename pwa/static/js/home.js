// Search over incident titles (Chinese and English), entirely on the phone.
const input = document.getElementById("incident-search");
const empty = document.getElementById("search-empty");

function filter() {
  const q = input.value.trim().toLowerCase();
  let shown = 0;
  for (const section of document.querySelectorAll(".tiles-section")) {
    let visible = 0;
    for (const tile of section.querySelectorAll(".tile")) {
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
