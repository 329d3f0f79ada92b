"""Outbox sync: 200 reports with one photo each, queued on a phone, sent by
the real sync code in Chromium to the real server over loopback.

The server runs as ``onsite serve`` (SQLite in a temporary folder). The phone
logs in; a real full-size phone photo (``--photo``, by default
../shared/photos/phone/4032x3024.jpg) is compressed in the page as the
report flow does (1600 px, JPEG 0.85); 200 reports are put in the
outbox while offline, each with its own copy of the photo; then the signal
returns and the time until the last photo is on the server is measured.

    .venv/bin/python bench/sync.py [--reports 200] [--photo PATH]

Target (issue 5): < 60 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, PHONE_OPTIONS, log_in  # noqa: E402
from tests.helpers.live import GUARD_PASSWORD, LiveServer  # noqa: E402

PHOTO = ROOT.parent / "shared" / "photos" / "phone" / "4032x3024.jpg"

QUEUE_JS = """async ({count, userId}) => {
  const store = await import("/static/js/outbox/store.js");
  const { compress } = await import("/static/js/photo.js");
  const raw = await (await fetch("/bench-photo.jpg")).blob();
  const photo = await compress(new File([raw], "photo.jpg", { type: "image/jpeg" }));
  const started = Date.now();
  for (let n = 0; n < count; n++) {
    const id = crypto.randomUUID();
    const photoId = crypto.randomUUID();
    const at = new Date(started - (count - n) * 60000).toISOString();
    await store.add({
      id, user: userId, user_name: "bench", title: "电梯困人事件", incident: "lift-entrapment",
      created: new Date(started + n).toISOString(),
      body: { site: "north", incident_type: "lift-entrapment", severity: "high",
              occurred_at: at, client_sent_at: at, location: { text: `${n} 栋` },
              notes: `压测 ${n}`, steps: [{ index: 0, checked_at: at }] },
      state: "waiting", attempts: 0, next_at: 0, error: null, text_sent: false,
      photos: [{ id: photoId, type: photo.type, size: photo.size, state: "waiting", error: null }],
    }, [{ id: photoId, blob: photo }]);
  }
  return photo.size;
}"""

SYNC_JS = r"""async () => {
  const { sync } = await import("/static/js/outbox/queue.js");
  const store = await import("/static/js/outbox/store.js");
  performance.setResourceTimingBufferSize(10000);
  while ((await store.open()).length) await sync({ force: true });
  const mean = (re) => {
    const d = performance.getEntriesByType("resource")
      .filter((e) => re.test(e.name)).map((e) => e.duration);
    return d.reduce((a, b) => a + b, 0) / Math.max(1, d.length);
  };
  return { sent: (await store.list()).filter((i) => i.state === "sent").length,
           report_ms: mean(/\/api\/reports\/[^/]+$/), photo_ms: mean(/\/photos\//) };
}"""


def main(count: int, photo: Path) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        server = LiveServer(data, "")  # SQLite in the data folder
        server.cli("site", "add", "north", "北苑")
        server.cli(
            "user", "add", "guard", "--role", "guard", "--site", "north",
            "--password-stdin", input=GUARD_PASSWORD + "\n",
        )  # fmt: skip
        server.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                context = browser.new_context(**PHONE_OPTIONS)
                context.route(
                    "**/bench-photo.jpg",
                    lambda route: route.fulfill(body=photo.read_bytes(), content_type="image/jpeg"),
                )
                page = context.new_page()
                log_in(page, server.url, offline_ready=True)
                user_id = int(page.evaluate("document.body.dataset.user"))

                page.goto(f"{server.url}/playbooks")  # a page that does not sync by itself
                context.set_offline(True)
                size = page.evaluate(QUEUE_JS, {"count": count, "userId": user_id})
                context.set_offline(False)
                started = time.perf_counter()
                result = page.evaluate(SYNC_JS)
                sent = result["sent"]
                elapsed = time.perf_counter() - started
                browser.close()
        finally:
            server.stop()
        db = data / "onsite.sqlite3"
        import sqlite3

        with sqlite3.connect(db) as conn:
            reports = conn.execute("SELECT count(*) FROM report").fetchone()[0]
            photos = conn.execute("SELECT count(*) FROM photo").fetchone()[0]
    assert sent == count and reports == count and photos == count, (sent, reports, photos)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; Chromium and the server on one machine, loopback"
    )
    print(f"photo: {photo.name}, compressed in the page to {size / 1024:.0f} KB")
    print(f"{count} reports with one photo each, queued offline, then synced:")
    each = elapsed / count * 1000
    print(f"  all sent in {elapsed:.1f} s ({count / elapsed:.1f} reports/s, {each:.0f} ms each)")
    print(
        f"  per report: text PUT {result['report_ms']:.0f} ms, photo PUT "
        f"{result['photo_ms']:.0f} ms (as the page saw them)"
    )
    print(f"  server holds {reports} reports and {photos} photos: none lost, none doubled")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--photo", type=Path, default=PHOTO)
    args = parser.parse_args()
    main(args.reports, args.photo)
