"""The technician's job in Chromium: before and after photos and "repaired"
made with no signal wait on the phone through a reload, then reach the
server once, in order; "repaired" without an after photo is refused on the
page; a repair the server refuses is kept with its reason."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers.browser import (
    BOSS_PASSWORD,
    TECH_PASSWORD,
    assign,
    assigned_job,
    outbox,
    screenshot,
    wait_until,
)
from tests.helpers.live import LiveServer, add_user, api_session

pytestmark = pytest.mark.browser

NOTE = "更换了门机皮带，试运行正常"

# Every control of the job section a thumb must hit, smaller than 48 px. A
# visually hidden file input is operated through its (large) label.
SMALL_JOB_TARGETS_JS = """
() => [...document.querySelectorAll('#job a, #job button, #job label.btn, #job textarea')]
  .filter(el => el.offsetParent !== null)
  .map(el => { const r = el.getBoundingClientRect();
               return {text: el.innerText.trim().slice(0, 20), w: r.width, h: r.height}; })
  .filter(t => t.w < 48 || t.h < 48)
"""


def on_server(live: LiveServer, report_id: str) -> dict:
    with api_session(live, "boss", BOSS_PASSWORD) as boss:
        return boss.get(f"/api/reports/{report_id}").json()


def open_job(page, url: str, report_id: str) -> None:
    """Log the technician in through the login form, straight to the job,
    and wait until the phone keeps its page for use with no signal."""
    path = f"/reports/{report_id}"
    page.goto(f"{url}/login?next={path}")
    page.get_by_label("用户名").fill("tech")
    page.get_by_label("密码").fill(TECH_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{url}{path}")
    page.wait_for_selector("html[data-offline-ready=true]", state="attached", timeout=30_000)
    # The first page came before the service worker: open it again through it.
    page.goto(f"{url}{path}")
    wait_until(page, "(path) => caches.match(path).then(Boolean)", path)  # kept, any language
    page.wait_for_selector("#job[data-ready=true]")


def job(page) -> dict:
    """What the job section shows: each photo's [kind, state], and the repair."""
    return page.evaluate(
        """() => { const job = document.getElementById('job');
                   return {photos: JSON.parse(job.dataset.photos), repair: job.dataset.repair}; }"""
    )


def wait_job(page, photos: list[list[str]], repair: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        """([photos, repair]) => { const job = document.getElementById('job');
             return job?.dataset.ready === 'true' && job.dataset.repair === repair
               && job.dataset.photos === JSON.stringify(photos); }""",
        arg=[photos, repair],
        timeout=timeout,
    )


def add_photo(page, kind: str, path) -> None:
    count = page.locator("#job-photos li").count()
    page.locator(f'.job-input[data-kind="{kind}"]').set_input_files(str(path))
    page.wait_for_function(f"document.querySelectorAll('#job-photos li').length > {count}")


def test_a_job_done_with_no_signal_waits_through_a_reload_then_arrives_once(
    live_server, phone, photos
):
    report_id = assigned_job(live_server)
    page = phone.new_page()
    open_job(page, live_server.url, report_id)
    assert page.locator("#job-state").inner_text() == "维修中"
    assert page.evaluate(SMALL_JOB_TARGETS_JS) == []
    screenshot(page, "job-assigned-zh-CN")

    # In the plant room, no signal: before, the repair, after, "repaired".
    phone.set_offline(True)
    add_photo(page, "repair_before", photos[0])
    add_photo(page, "repair_after", photos[1])
    page.locator("#job-note").fill(NOTE)
    page.get_by_role("button", name="已修复").click()
    waiting = [["repair_before", "waiting"], ["repair_after", "waiting"]]
    wait_job(page, waiting, "waiting")
    assert page.locator("#job-state").inner_text() == "已修复，等待发送"
    assert page.locator("#job-repair-state").inner_text() == "已存手机，有信号时自动发送"
    assert page.locator("#job-photos").inner_text().count("已存手机，有信号时自动发送") == 2
    assert page.get_by_role("button", name="已修复").is_hidden()
    screenshot(page, "job-waiting-offline-zh-CN")
    # A second "repaired" (a double tap) is the same write: one on the item.
    writes = page.evaluate(
        """(id) => import('/static/js/outbox/store.js').then(async (s) => {
             const [write] = (await s.get(id)).writes;
             await s.addWrite({id}, {...write, body: {note: 'again'}});
             return (await s.get(id)).writes.map((w) => [w.key, w.body.note, w.state]); })""",
        report_id,
    )
    assert [w[1:] for w in writes] == [[NOTE, "waiting"]]

    page.reload()  # no signal: the page is the phone's copy, the job the outbox's
    wait_job(page, waiting, "waiting")
    assert page.locator("#job-note").input_value() == NOTE
    assert page.locator("#job-state").inner_text() == "已修复，等待发送"
    page.goto(f"{live_server.url}/outbox")  # the outbox page lists it too
    assert outbox(page) == [[report_id, "waiting"]]
    server = on_server(live_server, report_id)
    assert server["status"] == "assigned" and server["photos"] == []

    page.goto(f"{live_server.url}/reports/{report_id}")
    wait_job(page, waiting, "waiting")
    phone.set_offline(False)  # the signal returns: it all goes by itself
    wait_job(page, [["repair_before", "sent"], ["repair_after", "sent"]], "repaired")
    assert page.locator("#job-state").inner_text() == "已修复，等待主管关闭"
    assert page.locator("#job-repair-state").is_hidden()
    screenshot(page, "job-repaired-zh-CN")
    wait_until(
        page,
        "(id) => import('/static/js/outbox/store.js').then(async (s) => (await s.get(id)).state)"
        " .then((state) => state === 'sent')",
        report_id,
    )  # the phone has nothing more to send

    server = on_server(live_server, report_id)
    assert Counter(p["kind"] for p in server["photos"]) == {"repair_before": 1, "repair_after": 1}
    assert server["status"] == "repaired"
    assert server["repair_note"] == NOTE
    assert [e["kind"] for e in server["events"]].count("repaired") == 1

    page.reload()  # now from the server, which has it all
    wait_job(page, [["repair_before", "sent"], ["repair_after", "sent"]], "repaired")
    assert page.locator("#job-state").inner_text() == "已修复，等待主管关闭"
    assert page.locator("#job-note").input_value() == NOTE
    assert page.get_by_role("button", name="已修复").is_hidden()


def test_repaired_without_an_after_photo_is_refused_on_the_page(live_server, phone, photos):
    report_id = assigned_job(live_server)
    page = phone.new_page()
    repairs = []
    phone.route("**/repair", lambda route: (repairs.append(route.request.url), route.continue_()))
    open_job(page, live_server.url, report_id)
    add_photo(page, "repair_before", photos[0])  # only the before photo
    wait_job(page, [["repair_before", "sent"]], "none")

    page.get_by_role("button", name="已修复").click()
    assert page.get_by_role("alert").inner_text() == "请先拍维修后照片，再点“已修复”。"
    assert job(page)["repair"] == "none"
    assert page.locator("#job-state").inner_text() == "维修中"
    screenshot(page, "job-needs-after-photo-zh-CN")
    assert repairs == []  # nothing was queued, nothing sent
    assert on_server(live_server, report_id)["status"] == "assigned"

    add_photo(page, "repair_after", photos[1])  # with the after photo it goes
    assert page.get_by_role("alert").is_hidden()
    page.get_by_role("button", name="已修复").click()
    wait_job(page, [["repair_before", "sent"], ["repair_after", "sent"]], "repaired")
    assert on_server(live_server, report_id)["status"] == "repaired"


def test_a_repair_the_server_refuses_is_kept_with_its_reason(live_server, phone, photos):
    report_id = assigned_job(live_server)
    add_user(live_server, "tech2", "technician", "张工", "tech2-password-1")
    page = phone.new_page()
    open_job(page, live_server.url, report_id)
    phone.set_offline(True)
    add_photo(page, "repair_after", photos[1])
    page.get_by_role("button", name="已修复").click()
    wait_job(page, [["repair_after", "waiting"]], "waiting")

    # Meanwhile the supervisor gives the job to someone else, and this
    # technician no longer sees the report.
    assign(live_server, report_id, "tech2")
    phone.set_offline(False)
    wait_job(page, [["repair_after", "failed"]], "failed")
    reason = "发送失败：你无权查看这份上报。"  # the server speaks the page's language
    assert reason in page.locator("#job-photos").inner_text()
    assert page.locator("#job-repair-state").inner_text() == reason
    assert page.get_by_role("button", name="已修复").is_visible()  # editable again
    assert page.get_by_role("button", name="重新发送").is_visible()
    screenshot(page, "job-refused-zh-CN")
    server = on_server(live_server, report_id)
    assert server["status"] == "assigned" and server["photos"] == []
    page.goto(f"{live_server.url}/outbox")
    assert outbox(page) == [[report_id, "failed"]]  # kept, with its reason, until deleted


def test_a_job_that_comes_back_for_a_redo_is_repaired_anew(live_server, phone, photos):
    report_id = assigned_job(live_server)
    add_user(live_server, "tech2", "technician", "张工", "tech2-password-1")
    page = phone.new_page()
    open_job(page, live_server.url, report_id)
    add_photo(page, "repair_after", photos[0])
    page.get_by_role("button", name="已修复").click()
    wait_job(page, [["repair_after", "sent"]], "repaired")

    # Not fixed after all: the supervisor gives it to someone else and back.
    assign(live_server, report_id, "tech2")
    assign(live_server, report_id, "tech")
    page.reload()
    wait_job(page, [["repair_after", "sent"]], "none")  # the old "repaired" was another job's
    assert page.locator("#job-state").inner_text() == "维修中"
    add_photo(page, "repair_after", photos[1])
    page.locator("#job-note").fill("重新调整了门锁")
    page.get_by_role("button", name="已修复").click()
    wait_job(page, [["repair_after", "sent"], ["repair_after", "sent"]], "repaired")
    server = on_server(live_server, report_id)
    assert server["status"] == "repaired" and server["repair_note"] == "重新调整了门锁"
    assert [e["kind"] for e in server["events"]].count("repaired") == 2
