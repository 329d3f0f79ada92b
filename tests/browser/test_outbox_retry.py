"""The outbox's backoff, in Chromium: time spent with no network at all is not
held against a report, so once the signal is back, one upload cut off costs
the guard seconds, not minutes."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.helpers.browser import Server, log_in, make_report

pytestmark = pytest.mark.browser

# A phone without Background Sync (an iPhone, Firefox): the page's timer is
# what sends after a failure. In Chromium the worker's sync fires as soon as
# the page registers one, and its forced pass would hide the backoff.
NO_BACKGROUND_SYNC = "delete ServiceWorkerRegistration.prototype.sync"


def wait_on_server(page, server: Server, check, seconds: float) -> list[dict]:
    """Poll the server until ``check`` holds, for ``seconds`` of real time.
    The page does the waiting, so the test's routes keep being answered."""
    deadline = time.monotonic() + seconds
    while True:
        reports = server.reports()
        if check(reports):
            return reports
        if time.monotonic() > deadline:
            held = [(r["id"], f"{len(r['photos'])} photos") for r in reports]
            raise AssertionError(f"after {seconds:.0f} s the server holds only {held}")
        page.wait_for_timeout(250)


def outbox_item(page, report_id: str) -> dict:
    return page.evaluate(
        "(id) => import('/static/js/outbox/store.js').then((s) => s.get(id))", report_id
    )


def test_ten_minutes_offline_then_one_upload_cut_off_still_sends_everything_within_seconds(
    live_server, phone, photos
):
    server = Server(live_server)
    phone.add_init_script(NO_BACKGROUND_SYNC)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    page.clock.install()  # the page's timers only: the worker keeps real time

    phone.set_offline(True)
    report_id = make_report(page, live_server.url, photos)
    # Ten minutes in a basement with the outbox page open: every timer the
    # sync set fires, with no network.
    for _ in range(40):
        page.clock.fast_forward(15_000)
        page.wait_for_timeout(100)  # real time for the pass the timer started
    assert server.reports() == []
    photo_ids = [p["id"] for p in outbox_item(page, report_id)["photos"]]

    calls: list[str] = []

    def cut_the_first_photo(route):
        calls.append(route.request.url.rsplit("/", 1)[1])
        if len(calls) == 1:
            route.abort("connectionreset")  # the signal wavers once
        else:
            route.continue_()

    phone.route("**/api/reports/*/photos/*", cut_the_first_photo)
    back = time.monotonic()
    phone.set_offline(False)  # and it stays

    def everything(reports: list[dict]) -> bool:
        return len(reports) == 1 and len(reports[0]["photos"]) == 2

    reports = wait_on_server(page, server, everything, seconds=15)
    print(f"everything on the server {time.monotonic() - back:.1f} s after the signal returned")
    assert reports[0]["id"] == report_id
    assert sorted(p["id"] for p in reports[0]["photos"]) == sorted(photo_ids)
    # The cut-off photo went again, and each photo went whole exactly once.
    assert calls[0] in photo_ids
    assert Counter(calls[1:]) == Counter(photo_ids), calls


def test_the_backoff_doubles_from_two_seconds_to_five_minutes_with_jitter_of_half(
    live_server, phone
):
    page = phone.new_page()
    page.goto(f"{live_server.url}/login")
    delays = page.evaluate(
        """() => import('/static/js/outbox/queue.js').then(({ backoff }) =>
             [[0, 0.5], [1, 0.5], [2, 0.5], [3, 0], [3, 0.999], [8, 0.5], [9, 0.5], [40, 0.5]]
               .map(([attempts, r]) => backoff(attempts, () => r)))"""
    )
    assert delays == [2000, 2000, 4000, 4000, 11992, 256_000, 300_000, 300_000]
