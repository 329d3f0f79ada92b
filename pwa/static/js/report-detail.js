// @ts-check
// One report, seen by the guard who made it: the steps not done yet can
// still be ticked as the incident goes on, and a step ticked by mistake
// unticked. Each tick and untick is timed on the phone and goes through the
// outbox like everything else: kept with no signal, sent in order (PUT or
// DELETE by step index), shown here as waiting until it is.
import * as outbox from "./outbox/store.js";
import { sync } from "./outbox/queue.js";
import { fmt, clock } from "./text.js";

/** @type {(id: string) => any} */
const $ = (id) => document.getElementById(id);
const { report, t } = JSON.parse($("detail-data").textContent);

// Show a step as its latest tick or untick (``unchecked_at``) left it: done
// with its time, or not done; and while it waits or failed, a line saying so.
function showStep(op) {
  const box = /** @type {any} */ (document.querySelector(`.step-box[data-index="${op.index}"]`));
  if (!box) return;
  const ticked = !op.unchecked_at;
  box.checked = ticked;
  box.closest(".check").classList.toggle("done", ticked);
  if (ticked) box.closest(".check").querySelector(".btn-call")?.remove();
  const time = /** @type {any} */ (document.querySelector(`.check-time[data-index="${op.index}"]`));
  Object.assign(time, ticked
    ? { dateTime: op.checked_at, textContent: clock(op.checked_at) }
    : { dateTime: "", textContent: "" });
  const state = /** @type {any} */ (document.querySelector(`.tick-state[data-index="${op.index}"]`));
  // An untick stays said (the tick it took back is kept on the server).
  const unticked = ticked ? "" : fmt(t.unticked, { at: clock(op.unchecked_at) });
  const waiting = op.state === "failed" ? fmt(t.failed, { m: op.error || "" })
    : op.state === "sent" ? "" : t.waiting;
  state.hidden = !unticked && !waiting;
  state.className = `tick-state small ${op.state === "failed" ? "alert" : "muted"}`;
  state.textContent = [unticked, waiting].filter(Boolean).join(" · ");
}

async function render() {
  const item = await outbox.get(report.id).catch(() => null);
  const ticks = item?.ticks || [];
  for (const op of ticks) showStep(op); // in order: the last one of a step wins
  document.body.dataset.ticks = JSON.stringify(
    ticks.map((k) => (k.unchecked_at ? [k.index, k.state, "untick"] : [k.index, k.state])));
}

// A tap ticks a step, or unticks one ticked by mistake; either is recorded.
for (const box of /** @type {NodeListOf<any>} */ (document.querySelectorAll(".step-box"))) {
  box.addEventListener("change", async () => {
    const index = Number(box.dataset.index);
    const at = new Date().toISOString();
    if (box.checked) {
      showStep({ index, checked_at: at, state: "waiting" });
      await outbox.addTick(report, { index, checked_at: at });
    } else {
      showStep({ index, unchecked_at: at, state: "waiting" });
      await outbox.addUntick(report, { index, unchecked_at: at });
    }
    dispatchEvent(new Event("onsite:queued"));
    await sync({ force: true });
  });
}

// Just sent from the report flow: this page is the "sent" screen, and who
// was alerted (supervisors, work groups) its news.
const alerted = $("alerted");
if (alerted && sessionStorage.getItem("onsite:sent") === report.id) {
  sessionStorage.removeItem("onsite:sent");
  alerted.classList.replace("small", "note");
  alerted.setAttribute("role", "status");
  alerted.prepend(Object.assign(document.createElement("strong"), { textContent: alerted.dataset.sent }), " · ");
}

outbox.watch(report.id, render);
render();
