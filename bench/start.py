"""Start-up on a slow network: how soon the home page can run its scripts.

A guard's phone on one bar: 400 kbps down and up, 400 ms round trip
(Chromium's own emulation, CDP ``Network.emulateNetworkConditions``).
``onsite serve`` on SQLite with a site and a guard; for each run a fresh
browser profile, logged in through the API (the session cookie handed to
the browser), service workers blocked so that every file crosses the
network as at the first start, before the worker has kept anything. The
home page is opened under the throttle and "ready" is its
DOMContentLoaded: a page's module scripts are deferred, so it fires once
every one of them and everything they import has been fetched and run.

Two ways, alternated run by run: "before" draws the page without its
``<link rel="modulepreload">`` (``?modulepreload=0``, a switch only this
bench uses), so modules load a level of imports per round trip
(app.js -> outbox/queue.js -> outbox/store.js -> idb.js); "after" with them.

    .venv/bin/python bench/start.py [--runs 7] [--latency 400] [--kbps 400]

Target (issue 17): under 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, PHONE_OPTIONS  # noqa: E402
from tests.helpers.live import GUARD_PASSWORD, LiveServer  # noqa: E402

READY_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const modules = performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/static/js/"));
  return {
    ready: nav.domContentLoadedEventEnd,
    html: nav.responseEnd,
    modules: modules.length,
    last_module: Math.max(0, ...modules.map((e) => e.responseEnd)),
  };
}"""


def session_cookies(server: LiveServer) -> list[dict]:
    with httpx.Client(base_url=server.url, headers={"X-Requested-With": "onsite"}) as client:
        response = client.post(
            "/api/session", json={"username": "guard", "password": GUARD_PASSWORD}
        )
        response.raise_for_status()
        return [
            {"name": c.name, "value": c.value or "", "url": server.url} for c in client.cookies.jar
        ]


def one_run(browser, server: LiveServer, preload: bool, latency: int, kbps: int) -> dict:
    context = browser.new_context(**PHONE_OPTIONS, service_workers="block")
    try:
        context.add_cookies(session_cookies(server))
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        rate = kbps * 1000 / 8  # bytes per second
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": latency,
                "downloadThroughput": rate,
                "uploadThroughput": rate,
            },
        )
        page.goto(f"{server.url}/" + ("" if preload else "?modulepreload=0"), wait_until="load")
        assert page.evaluate("document.body.dataset.user"), "not logged in"
        return page.evaluate(READY_JS)
    finally:
        context.close()


def main(runs: int, latency: int, kbps: int) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(Path(tmp) / "data", "")  # SQLite in the data folder
        server.cli("site", "add", "north", "北苑")
        server.cli(
            "user", "add", "guard", "--role", "guard", "--site", "north",
            "--password-stdin", input=GUARD_PASSWORD + "\n",
        )  # fmt: skip
        server.start()
        results: dict[str, list[dict]] = {"before": [], "after": []}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                one_run(browser, server, True, 0, 100_000)  # warm the server's templates
                for _ in range(runs):
                    for name, preload in (("before", False), ("after", True)):
                        results[name].append(one_run(browser, server, preload, latency, kbps))
                browser.close()
        finally:
            server.stop()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; Chromium and the server on one machine, loopback"
    )
    print(
        f"network: {kbps} kbps down and up, {latency} ms round trip; {runs} runs each, alternated"
    )
    print("| home page | ready (DOMContentLoaded) median s | runs s | HTML s | last module s |")
    print("| --- | ---: | --- | ---: | ---: |")
    for name, label in (("before", "without modulepreload"), ("after", "with modulepreload")):
        rows = results[name]
        ready = [r["ready"] / 1000 for r in rows]
        html = statistics.median(r["html"] for r in rows) / 1000
        last = statistics.median(r["last_module"] for r in rows) / 1000
        print(
            f"| {label} | {statistics.median(ready):.2f} | "
            f"{', '.join(f'{v:.2f}' for v in ready)} | {html:.2f} | {last:.2f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--latency", type=int, default=400, help="round trip, ms")
    parser.add_argument("--kbps", type=int, default=400, help="down and up, kbit/s")
    args = parser.parse_args()
    main(args.runs, args.latency, args.kbps)
