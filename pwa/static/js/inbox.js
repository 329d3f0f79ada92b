// The inbox's filters apply as soon as one is changed: the page is the
// server's, with the filters in its address (so it can be kept and shared).
const form = document.getElementById("filters");
form?.addEventListener("change", () => {
  const params = new URLSearchParams(new FormData(form));
  for (const [key, value] of [...params]) if (!value || (key === "status" && value === "open")) params.delete(key);
  const query = params.toString();
  location.assign(query ? `/?${query}` : "/");
});
