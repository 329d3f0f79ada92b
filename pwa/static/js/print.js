// @ts-check
// The printable report's one button (a file of its own: the pages' policy runs no inline script).
document.getElementById("print-now")?.addEventListener("click", () => window.print());
