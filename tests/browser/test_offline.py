"""Offline first, in Chromium: a report made with no signal waits on the phone
through reloads, a closed browser, a failing network, a failing or restarting
server and an app update, and reaches the server exactly once."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers.browser import LIFT, Server, log_in, make_report, outbox, screenshot, wait_until
from tests.helpers.live import GUARD_PASSWORD, LiveServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


def one_report_with(n_photos: int):
    return lambda reports: len(reports) == 1 and len(reports[0]["photos"]) == n_photos


def wait_outbox(page, states: list[str], timeout: float = 30_000) -> None:
    page.wait_for_function(
        "(states) => document.body.dataset.outbox !== undefined &&"
        " JSON.stringify(JSON.parse(document.body.dataset.outbox).map(i => i[1])) ==="
        " JSON.stringify(states)",
        arg=states,
        timeout=timeout,
    )


def test_offline_report_survives_reload_and_a_closed_browser_then_arrives_once(
    live_server, phone_profile, photos
):
    server = Server(live_server)
    phone = phone_profile()
    page = phone.pages[0] if phone.pages else phone.new_page()
    log_in(page, live_server.url, offline_ready=True)

    phone.set_offline(True)
    report_id = make_report(page, live_server.url, photos)
    assert outbox(page) == [[report_id, "waiting"]]
    assert page.locator(f"#item-{report_id} .outbox-photos li").count() == 2
    screenshot(page, "outbox-waiting-zh-CN")

    page.reload()  # offline: the page comes from the phone
    assert outbox(page) == [[report_id, "waiting"]]
    phone.close()
    assert server.reports() == []

    # The browser opened again, still without signal. Its worker may start a
    # Background Sync the moment it opens, before Playwright's offline
    # emulation reaches it, so the server is out of reach too.
    live_server.stop()
    phone = phone_profile(offline=True)
    page = phone.pages[0] if phone.pages else phone.new_page()
    page.goto(f"{live_server.url}/outbox")
    assert outbox(page) == [[report_id, "waiting"]]
    assert page.locator("#outbox-count").inner_text() == "1"

    live_server.start()  # the signal returns: it goes by itself
    phone.set_offline(False)
    wait_outbox(page, ["sent"])
    reports = server.wait_for(one_report_with(2))
    assert reports[0]["id"] == report_id
    assert reports[0]["notes"] == "地下车库无信号"
    assert [s["index"] for s in reports[0]["steps"]] == [0]
    screenshot(page, "outbox-sent-zh-CN")
    # "sent" only after the server confirmed everything: nothing more can come.
    assert one_report_with(2)(server.reports())


def test_network_dropping_mid_sync_leaves_one_report_and_two_photos(live_server, phone, photos):
    server = Server(live_server)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    photo_calls = []

    def drop_the_second_photo(route):
        photo_calls.append(route.request.url)
        if len(photo_calls) == 2:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    phone.route("**/api/reports/*/photos/*", drop_the_second_photo)
    make_report(page, live_server.url, photos)
    wait_outbox(page, ["sent"])
    reports = server.wait_for(one_report_with(2))
    assert len({p["id"] for p in reports[0]["photos"]}) == 2
    assert len(photo_calls) >= 3  # the dropped photo was sent again
    assert one_report_with(2)(server.reports())  # and the phone has nothing more to send


def test_a_server_answering_500_twice_gets_the_report_once(live_server, phone, photos):
    server = Server(live_server)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    answers = []

    def fail_twice(route):
        if route.request.method != "PUT":
            return route.continue_()
        answers.append(500 if len(answers) < 2 else "passed")
        if len(answers) <= 2:
            return route.fulfill(
                status=500,
                content_type="application/json",
                body='{"error": {"code": "internal", "message": "Internal error."}}',
            )
        return route.continue_()

    phone.route("**/api/reports/*", fail_twice)
    report_id = make_report(page, live_server.url, photos[:1])
    wait_outbox(page, ["sent"], timeout=60_000)  # two backoffs: seconds, not minutes
    assert answers[:3] == [500, 500, "passed"]
    reports = server.wait_for(one_report_with(1))
    assert reports[0]["id"] == report_id


def test_the_server_restarting_mid_sync_loses_and_doubles_nothing(live_server, phone, photos):
    server = Server(live_server)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    phone.set_offline(True)
    make_report(page, live_server.url, photos)
    seen = []

    def kill_the_server_under_the_first_photo(route):
        seen.append(route.request.url)
        if len(seen) == 1:
            live_server.proc.kill()  # the text is in; the photo is cut off
            live_server.proc.wait()
        route.continue_()

    phone.route("**/api/reports/*/photos/*", kill_the_server_under_the_first_photo)
    phone.set_offline(False)
    deadline = time.monotonic() + 20
    while not seen and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert seen, "the sync never reached the photos"
    live_server.start()  # the same database and port
    page.get_by_role("button", name="立即发送").first.click()
    wait_outbox(page, ["sent"], timeout=60_000)
    reports = server.wait_for(one_report_with(2))
    assert len(reports) == 1


def deploy_new_version(live_server: LiveServer, tmp_path: Path) -> LiveServer:
    """Stop the server and start, on the same port and data, a copy of the
    app with one style changed: a new build, so a new service worker."""
    new_root = tmp_path / "v2"
    for part in ("server", "pwa", "playbooks", "migrations"):
        shutil.copytree(ROOT / part, new_root / part, ignore=shutil.ignore_patterns("__pycache__"))
    css = new_root / "pwa" / "static" / "css" / "app.css"
    css.write_text(css.read_text() + "\n/* v2 */\n")
    live_server.stop()
    env = live_server.env
    new = LiveServer(Path(env["ONSITE_DATA_DIR"]), env["ONSITE_DATABASE_URL"], root=new_root)
    new.port, new.url = live_server.port, live_server.url
    new.start()
    return new


def test_an_update_while_reports_wait_loses_nothing(live_server, phone, photos, tmp_path):
    server = Server(live_server)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    old_build = page.evaluate("document.body.dataset.build")
    phone.set_offline(True)
    report_id = make_report(page, live_server.url, photos)

    # A new version of the app is deployed while the phone has no signal.
    new = deploy_new_version(live_server, tmp_path)
    try:
        # Reports are held back until the new version runs, so they
        # are waiting on the phone all through the update.
        phone.route("**/api/reports/**", lambda route: route.abort("internetdisconnected"))
        phone.set_offline(False)
        page.goto(f"{live_server.url}/outbox")
        update = page.get_by_role("button", name="立即更新")
        update.wait_for(timeout=30_000)  # the new worker is installed and waiting
        screenshot(page, "update-ready-zh-CN")
        # Applying it reloads the page, once the old worker has finished what
        # it was doing (keeping the pages of the new build, on a busy machine
        # this took over 30 s once).
        with page.expect_navigation(timeout=90_000):
            update.click()
        assert page.evaluate("document.body.dataset.build") != old_build
        assert page.evaluate("navigator.serviceWorker.controller !== null")
        caches = page.evaluate("caches.keys()")
        assert [c for c in caches if c.startswith("onsite-assets-")] == [
            f"onsite-assets-{page.evaluate('document.body.dataset.build')}"
        ]
        assert [i[0] for i in outbox(page)] == [report_id]
        assert server.reports() == []

        phone.unroute("**/api/reports/**")
        page.get_by_role("button", name="立即发送").first.click()
        wait_outbox(page, ["sent"])
        reports = server.wait_for(one_report_with(2))
        assert reports[0]["id"] == report_id
    finally:
        new.stop()


def test_an_expired_session_keeps_the_report_until_the_guard_logs_in_again(
    live_server, phone, photos
):
    server = Server(live_server)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    live_server.cli("user", "revoke-sessions", "guard")  # the session expires meanwhile
    phone.set_offline(True)
    report_id = make_report(page, live_server.url, photos[:1])  # from the kept pages

    phone.set_offline(False)
    page.get_by_role("button", name="立即发送").first.click()
    page.locator("#login-needed").wait_for()  # asked to log in; nothing dropped
    assert outbox(page) == [[report_id, "waiting"]]
    assert server.reports() == []
    screenshot(page, "outbox-login-needed-zh-CN")

    page.locator("#login-needed").get_by_role("link", name="重新登录").click()
    page.get_by_label("用户名").fill("guard")
    page.get_by_label("密码").fill(GUARD_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live_server.url}/outbox")
    wait_outbox(page, ["sent"])
    assert page.locator("#login-needed").is_hidden()
    assert one_report_with(1)(server.wait_for(one_report_with(1)))


def test_a_refused_report_is_kept_with_the_reason_and_deleted_only_when_confirmed(
    live_server, phone, photos
):
    server = Server(live_server)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)

    refused = []

    def refuse(route):
        if route.request.method != "PUT":
            return route.continue_()
        refused.append(route.request.url)
        return route.fulfill(
            status=403,
            content_type="application/json",
            body=json.dumps(
                {"error": {"code": "forbidden", "message": "You are not on the staff of north."}}
            ),
        )

    phone.route("**/api/reports/*", refuse)
    report_id = make_report(page, live_server.url, photos[:1])
    wait_outbox(page, ["failed"])
    item = page.locator(f"#item-{report_id}")
    assert "You are not on the staff of north." in item.inner_text()
    screenshot(page, "outbox-failed-zh-CN")
    # A refusal is not retried by itself: not even a forced pass sends it again.
    tries = len(refused)
    page.evaluate("import('/static/js/outbox/queue.js').then((q) => q.sync({force: true}))")
    assert len(refused) == tries
    assert outbox(page) == [[report_id, "failed"]]

    item.get_by_role("button", name="删除").click()
    dialog = page.locator("#confirm-delete")
    dialog.get_by_role("button", name="保留").click()  # changed their mind
    assert outbox(page) == [[report_id, "failed"]]
    item.get_by_role("button", name="删除").click()
    dialog.get_by_role("button", name="删除").click()
    page.locator("#outbox-empty").wait_for()
    assert (
        page.evaluate(
            "import('/static/js/outbox/store.js').then(async (s) => (await s.list()).length)"
        )
        == 0
    )
    assert server.reports() == []


def test_a_first_login_fetches_each_kept_page_once(live_server, phone):
    # The worker installs while the guard is logged in, keeps every page,
    # and the page it controls asks for them again: it shares what the
    # install fetched instead of fetching it all a second time.
    fetched: list[str] = []
    phone.on("request", lambda request: fetched.append(urlsplit(request.url).path))
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    kept = Counter(p for p in fetched if p.startswith(("/report/", "/playbooks/")))
    assert f"/report/{LIFT}" in kept and f"/playbooks/{LIFT}" in kept, fetched
    assert {n for n in kept.values()} == {1}, kept


def test_pages_come_from_the_phone_when_the_server_fails_or_there_is_no_signal(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)

    # A proxy in front of a server in trouble answers 502: the kept page.
    phone.route("**/playbooks", lambda route: route.fulfill(status=502, body="Bad Gateway"))
    page.goto(f"{live_server.url}/playbooks")
    assert "处理指引" in page.locator("h1").inner_text()
    phone.unroute("**/playbooks")

    phone.set_offline(True)
    page.goto(f"{live_server.url}/report/{LIFT}")  # every report flow is kept
    page.wait_for_selector("body[data-ready=true]")
    page.goto(f"{live_server.url}/playbooks/{LIFT}")  # and every guide
    assert "电梯困人事件" in page.locator("h1").inner_text()
    page.goto(f"{live_server.url}/reports/00000000-0000-4000-8000-000000000000")
    assert page.locator("h1").inner_text() == "没有网络"  # never kept: the offline page
    screenshot(page, "offline-page-zh-CN")


def test_an_update_applies_itself_after_a_minute_untouched(live_server, phone, tmp_path):
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    old_cache = f"onsite-assets-{page.evaluate('document.body.dataset.build')}"
    new = deploy_new_version(live_server, tmp_path)
    try:
        page.clock.install()  # the page's clock only: the worker keeps real time
        page.goto(f"{live_server.url}/")
        page.get_by_role("button", name="立即更新").wait_for(timeout=30_000)
        page.evaluate("window.sameDocument = true")  # gone when the page reloads

        def still_old() -> None:
            page.wait_for_timeout(500)
            assert page.evaluate("window.sameDocument === true")
            assert old_cache in page.evaluate("caches.keys()")

        page.clock.fast_forward(30_000)  # half a minute: a guard may be reading
        still_old()
        page.keyboard.press("Shift")  # a touch restarts the minute
        page.clock.fast_forward(45_000)
        still_old()
        with page.expect_navigation(timeout=30_000):  # a minute untouched: reload quietly
            page.clock.fast_forward(30_000)
        page.wait_for_load_state()
        assert page.evaluate("window.sameDocument === undefined")
        new_cache = f"onsite-assets-{page.evaluate('document.body.dataset.build')}"
        assert new_cache != old_cache
        assert [c for c in page.evaluate("caches.keys()") if c.startswith("onsite-assets-")] == [
            new_cache
        ]
    finally:
        new.stop()


def test_background_sync_sends_the_outbox_with_the_app_closed(live_server, phone, photos):
    server = Server(live_server)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    phone.set_offline(True)
    report_id = make_report(page, live_server.url, photos)
    # The report flow asked the browser for a Background Sync.
    wait_until(
        page,
        "navigator.serviceWorker.ready.then(r => r.sync.getTags()).then(t => t.includes('outbox'))",
    )
    phone.new_page()  # the browser stays open, on no page of the app
    page.close()
    assert server.reports() == []

    # The signal returns: Chromium fires "sync" at the worker, which sends
    # the report and both photos with no page of the app open.
    phone.set_offline(False)
    reports = server.wait_for(one_report_with(2))
    assert reports[0]["id"] == report_id

    page = phone.new_page()  # the outbox on the phone agrees
    page.goto(f"{live_server.url}/outbox")
    wait_outbox(page, ["sent"])


def test_steps_ticked_after_sending_wait_offline_and_arrive_once(live_server, phone):
    server = Server(live_server)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    page.goto(f"{live_server.url}/report/{LIFT}")
    page.wait_for_selector("body[data-ready=true]")
    page.locator(".step-box").nth(0).check()  # e.g. the alarm was raised
    page.get_by_role("button", name="检查并发送").click()
    page.get_by_role("button", name="发送", exact=True).click()
    page.wait_for_url("**/reports/*")  # sent at once: the supervisors know
    report_id = page.url.rsplit("/", 1)[1]
    boxes = page.locator("#handling .step-box")
    assert boxes.nth(0).is_checked()  # still untickable: a mis-tap is taken back
    assert boxes.nth(2).is_enabled()

    # Down in the lift shaft, no signal: the guard ticks the next step.
    phone.set_offline(True)
    boxes.nth(2).check()
    state = page.locator('.tick-state[data-index="2"]')
    assert "已记在手机上" in state.inner_text()
    page.wait_for_function("document.body.dataset.ticks === '[[2,\"waiting\"]]'")
    ticked_at = page.locator('.check-time[data-index="2"]').get_attribute("datetime")
    assert boxes.nth(2).is_checked()  # a record now (an untick would be one too)
    screenshot(page, "report-live-steps-zh-CN")

    page.reload()  # the page is kept on the phone, the tick in the outbox
    page.wait_for_function("document.body.dataset.ticks === '[[2,\"waiting\"]]'")
    assert page.locator("#handling .step-box").nth(2).is_checked()
    page.goto(f"{live_server.url}/outbox")
    assert outbox(page) == [[report_id, "waiting"]]
    assert "步骤 3" in page.locator(f"#item-{report_id}").inner_text()
    assert [s["index"] for s in server.reports()[0]["steps"]] == [0]

    page.goto(f"{live_server.url}/reports/{report_id}")
    phone.set_offline(False)  # the signal returns: the tick goes by itself
    page.wait_for_function("document.body.dataset.ticks === '[[2,\"sent\"]]'")
    assert page.locator('.tick-state[data-index="2"]').is_hidden()
    report = server.wait_for(lambda r: len(r[0]["steps"]) == 2)[0]
    assert [s["index"] for s in report["steps"]] == [0, 2]
    assert report["steps"][1]["checked_at"][:23] == ticked_at[:23]  # the phone's time
    assert [e["kind"] for e in report["events"]].count("step") == 1

    page.reload()  # now from the server, which has it
    assert page.locator("#handling .step-box").nth(2).is_checked()
    assert page.locator('.tick-state[data-index="2"]').is_hidden()
    page.goto(f"{live_server.url}/outbox")
    wait_outbox(page, ["sent"])  # the phone has nothing more to send
    assert len(server.reports()[0]["steps"]) == 2  # nothing doubled
