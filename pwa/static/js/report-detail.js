// One report, seen by the guard who made it: the steps not done yet can
// still be ticked as the incident goes on. Each tick is timed on the phone
// and goes through the outbox like everything else: kept with no signal,
// sent once (PUT by step index), shown here as waiting until it is.
import * as outbox from "./outbox/store.js";
import { sync } from "./outbox/queue.js";
import { fmt, clock } from "./text.js";

const $ = (id) => document.getElementById(id);
const { report, t } = JSON.parse($("detail-data").textContent);

function showTick(tick) {
  const box = document.querySelector(`.step-box[data-index="${tick.index}"]`);
  if (!box) return;
  Object.assign(box, { checked: true, disabled: true });
  box.closest(".check").classList.add("done");
  box.closest(".check").querySelector(".btn-call")?.remove();
  const time = document.querySelector(`.check-time[data-index="${tick.index}"]`);
  if (!time.dateTime) Object.assign(time, { dateTime: tick.checked_at, textContent: clock(tick.checked_at) });
  const state = document.querySelector(`.tick-state[data-index="${tick.index}"]`);
  state.hidden = tick.state === "sent";
  state.className = `tick-state small ${tick.state === "failed" ? "alert" : "muted"}`;
  state.textContent = tick.state === "failed" ? fmt(t.failed, { m: tick.error || "" }) : t.waiting;
}

async function render() {
  const item = await outbox.get(report.id).catch(() => null);
  const ticks = item?.ticks || [];
  for (const tick of ticks) showTick(tick);
  document.body.dataset.ticks = JSON.stringify(ticks.map((k) => [k.index, k.state]));
}

for (const box of document.querySelectorAll(".step-box:not(:disabled)")) {
  box.addEventListener("change", async () => {
    if (!box.checked) return;
    box.disabled = true; // a tick after sending is a record: no untick
    const tick = { index: Number(box.dataset.index), checked_at: new Date().toISOString() };
    showTick({ ...tick, state: "waiting" });
    await outbox.addTick(report, tick);
    dispatchEvent(new Event("onsite:queued"));
    await sync({ force: true });
  });
}

outbox.watch(report.id, render);
render();
