// @ts-check
// Keeps a page current while it is open: the server's stream (/api/stream,
// Server-Sent Events) says a report changed; the page asks the server for
// itself again and swaps in the regions marked data-live. One template
// draws a region whether the page is loaded or refreshed.
//
// A region holding something the user is typing is left alone until they
// are done (it is swapped at the next change after that). The browser
// reconnects a dropped stream by itself, with Last-Event-ID, so nothing
// missed while the signal was gone is lost: it arrives as one refresh.
const watched = document.body.dataset.watch || null; // one report's page, or any
let timer = null;
let running = false;

function busy(region) {
  const active = document.activeElement;
  return Boolean(
    (active && region.contains(active) && active.matches("input, textarea, select")) ||
      region.querySelector("[data-dirty]"),
  );
}

async function refresh() {
  if (running) return schedule();
  running = true;
  try {
    const response = await fetch(location.href, { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const region of document.querySelectorAll("[data-live]")) {
      const next = fresh.getElementById(region.id);
      if (next && !busy(region)) region.replaceWith(document.adoptNode(next));
    }
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    document.dispatchEvent(new CustomEvent("onsite:refreshed"));
  } catch {
    // no signal: the stream's reconnect brings the next chance
  } finally {
    running = false;
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(refresh, 150); // a burst of changes makes one refresh
}

// This page changed something itself (a supervisor's action): draw it now,
// without waiting for the stream.
addEventListener("onsite:changed", schedule);

if (typeof EventSource === "function" && document.body.dataset.user) {
  const stream = new EventSource("/api/stream");
  stream.addEventListener("report", (event) => {
    const { report } = JSON.parse(event.data);
    if (!watched || report.id === watched) schedule();
  });
  stream.addEventListener("open", () => { document.body.dataset.stream = "open"; });
  addEventListener("pagehide", () => stream.close());
}
