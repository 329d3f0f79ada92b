"""The review in Chromium: a supervisor answers the 分析 and turns a 改善 point
into an action with one tap; its owner marks it done; the re-check fails,
then passes; the incident closes. The sections drawn at phone and desk size."""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.helpers.browser import DESK_OPTIONS, PHONE_OPTIONS, log_in, new_report, screenshot
from tests.helpers.live import add_user, api_session

# What pages draw and do online: no service worker (tests/browser/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.pages_only]


def section_shot(page, name: str) -> None:
    """The analysis and improvement sections, at the size of the screen."""
    # live.js may be swapping the section in just then (a change it was told
    # of): the locator finds the new one on the next try.
    for attempt in range(3):
        try:
            page.locator("#analysis").scroll_into_view_if_needed()
            break
        except PlaywrightError:
            if attempt == 2:
                raise
    screenshot(page, name)


def test_a_supervisor_works_through_the_review_and_closes(live_server, browser):
    boss = add_user(live_server, "boss", "supervisor", "陈主管")
    tech = add_user(live_server, "tech", "technician", "李工")
    report_id = new_report(live_server, severity="high")
    with api_session(live_server, "boss", boss) as api:
        api.put(f"/api/reports/{report_id}/acknowledgement", json={})
        incident = api.get("/api/playbooks").json()
    lift = next(
        i for c in incident["categories"] for i in c["incidents"] if i["id"] == "lift-entrapment"
    )

    sup = browser.new_context(**PHONE_OPTIONS)
    owner = browser.new_context(**PHONE_OPTIONS)
    try:
        page = sup.new_page()
        log_in(page, live_server.url, username="boss", password=boss)
        page.goto(f"{live_server.url}/reports/{report_id}")
        assert "关闭前还需" in page.locator("#actions").inner_text()

        # 分析: a gap, with what fell short.
        form = page.locator('form[data-action="analysis/0"]')
        form.get_by_role("radio", name="存在不足", exact=True).check()
        form.locator("textarea[name=note]").fill("夜间只有一名保安，困人 12 分钟后才到场")
        form.get_by_role("button", name="保存").click()
        page.locator("#analysis .verdict-chip.verdict-gap").wait_for()

        # 改善: the playbook's point, one tap from an action for the technician.
        page.locator("#improvement .use-item").first.click()
        new = page.locator("#new-action")
        assert (
            new.locator("textarea[name=description]").input_value()
            == lift["improvement"][0]["text"]
        )
        new.locator("select[name=owner]").select_option("tech")
        new.get_by_role("button", name="添加整改任务").click()
        card = page.locator("#improvement .action-card")
        card.wait_for()
        assert "负责人：李工" in card.inner_text() and "待整改" in card.inner_text()
        section_shot(page, "review-supervisor-phone-zh-CN")

        # Its owner marks it done from their own phone.
        mine = owner.new_page()
        log_in(mine, live_server.url, username="tech", password=tech)
        mine.goto(f"{live_server.url}/reports/{report_id}")
        done = mine.locator("#improvement form[data-action$='/done']")
        done.locator("textarea").fill("已组织电梯困人演练，8 人参加")
        done.get_by_role("button", name="标记完成").click()
        mine.locator("#improvement .action-status-done").wait_for()

        # The supervisor's page hears it; the first re-check fails.
        check = page.locator("#improvement form[data-action$='/check']")
        check.wait_for(timeout=5_000)
        check.get_by_role("radio", name="复查未通过", exact=True).check()
        check.locator("textarea").fill("演练记录未签字")
        check.get_by_role("button", name="提交复查").click()
        page.locator("#improvement .action-status-open").wait_for()
        mine.locator("#improvement", has_text="演练记录未签字").wait_for(timeout=5_000)

        done = mine.locator("#improvement form[data-action$='/done']")
        done.locator("textarea").fill("补签了演练记录")
        done.get_by_role("button", name="标记完成").click()
        check = page.locator("#improvement form[data-action$='/check']")
        check.wait_for(timeout=5_000)
        check.get_by_role("radio", name="复查通过", exact=True).check()
        check.get_by_role("button", name="提交复查").click()
        page.locator("#improvement .action-status-verified").wait_for()

        # Nothing left: it closes.
        page.wait_for_function("!document.querySelector('#actions .close-missing')")
        page.locator("#actions textarea[name=note]").fill("已复查，整改完成")
        page.get_by_role("button", name="关闭事件").click()
        page.locator("#report-head .status-closed").wait_for()
        screenshot(page, "review-closed-phone-zh-CN")
    finally:
        sup.close()
        owner.close()
    with api_session(live_server, "boss", boss) as api:
        kinds = [e["kind"] for e in api.get(f"/api/reports/{report_id}").json()["events"]]
    assert kinds.count("action_checked") == 2 and kinds[-1] == "closed"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_review_sections_at_desk_size(live_server, browser, lang):
    boss = add_user(live_server, "boss", "supervisor", "陈主管")
    add_user(live_server, "tech", "technician", "李工")
    report_id = new_report(live_server)
    with api_session(live_server, "boss", boss) as api:
        api.put(f"/api/reports/{report_id}/acknowledgement", json={})
        api.put(f"/api/reports/{report_id}/analysis/0", json={"verdict": "ok"})
        action = "0b8a3c2e-9a1d-4c1e-8f5a-3d2e1c0b9a88"
        api.put(
            f"/api/reports/{report_id}/actions/{action}",
            json={"description": "更新电梯应急操作指引", "owner": "tech", "due": "2020-01-01"},
        )
    desk = DESK_OPTIONS
    context = browser.new_context(**{**desk, "locale": lang})
    try:
        page = context.new_page()
        log_in(page, live_server.url, username="boss", password=boss)
        page.goto(f"{live_server.url}/lang/{lang}?next=/reports/{report_id}")
        overdue = page.locator("#improvement .action-card.overdue")
        assert overdue.count() == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        section_shot(page, f"review-desk-{lang}")
    finally:
        context.close()
