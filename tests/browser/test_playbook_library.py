"""The company's own playbook, edited on a phone, reaches a guard's phone that
had no signal when it was published: the old version until it reconnects
(a report made offline on it arrives with that version), then the new one."""

from __future__ import annotations

import pytest

from tests.helpers.browser import (
    BOSS_PASSWORD,
    DESK_OPTIONS,
    PHONE_OPTIONS,
    SMALL_TARGETS_JS,
    log_in,
    outbox,
    screenshot,
    wait_offline_ready,
    wait_until,
)
from tests.helpers.live import add_user, api_session

pytestmark = pytest.mark.browser

FIRE = "fire-alarm"
NEW_STEP = "关闭着火楼层的燃气总阀"


def published_version(live_server) -> str:
    with api_session(live_server, "boss", BOSS_PASSWORD) as admin:
        return admin.get(f"/api/playbooks/{FIRE}").json()["version"]


def test_an_admin_adds_a_step_to_fire_and_a_guard_offline_keeps_the_old_version_until_back(
    live_server, browser, phone
):
    url = live_server.url
    add_user(live_server, "boss", "admin", "管理员", password=BOSS_PASSWORD)
    try:
        guard = phone.new_page()
        log_in(guard, url, offline_ready=True)  # the guard's phone keeps its pages
        old = published_version(live_server)
        phone.set_offline(True)  # ... and loses the signal before the publish

        # The admin, on a phone of their own: 火警 gets a step, published with a note.
        admin_phone = browser.new_context(**PHONE_OPTIONS)
        admin = admin_phone.new_page()
        log_in(admin, url, username="boss", password=BOSS_PASSWORD)
        admin.goto(f"{url}/admin/playbooks")
        screenshot(admin, "library-phone-zh-CN")
        assert admin.evaluate(SMALL_TARGETS_JS) == []
        admin.locator(f'a[href="/admin/playbooks/{FIRE}"]').click()
        admin.wait_for_selector(".part-handling .edit-step")
        before = admin.locator(".part-handling .edit-step").count()
        screenshot(admin, "editor-phone-zh-CN")
        assert admin.evaluate(SMALL_TARGETS_JS) == []
        admin.locator("[data-add=handling]").click()
        words = admin.locator(".part-handling .edit-step").last.locator("textarea")
        words.nth(0).fill(NEW_STEP)
        words.nth(1).fill("Shut the gas main on the burning floor")
        # Moved up to be the third step, under raising the alarm.
        for at in range(before, 2, -1):
            row = admin.locator(".part-handling .edit-step").nth(at)
            row.locator("[data-move='-1']").click()
            # The button keeps the focus as its step moves: one thumb, many taps.
            assert admin.evaluate("document.activeElement.dataset.move") == "-1"
        steps = admin.locator(".part-handling .edit-text")
        assert NEW_STEP in steps.nth(2).inner_text()
        admin.locator("#publish").click()  # no note: refused at the note, in words
        assert admin.locator("#publish-bar [data-error]").is_visible()
        assert admin.evaluate("document.activeElement.id") == "publish-note"
        admin.locator("#publish-note").fill("火警增加关闭燃气总阀")
        admin.locator("#publish").click()
        admin.wait_for_url(f"**/admin/playbooks/{FIRE}/versions")
        added = admin.locator(".diff-added")
        assert NEW_STEP in added.inner_text()
        assert "火警增加关闭燃气总阀" in admin.locator(".version-current").inner_text()
        screenshot(admin, "diff-phone-zh-CN")
        admin_phone.close()
        new = published_version(live_server)
        assert new != old

        # Still no signal: the guard's kept page is the old version, and a
        # report made on it waits on the phone.
        guard.goto(f"{url}/report/{FIRE}")
        guard.wait_for_selector("body[data-ready=true]")
        assert NEW_STEP not in guard.locator("#fill").inner_text()
        assert guard.locator("#flow").get_attribute("data-version") == old
        guard.locator(".step-box").nth(0).check()
        guard.get_by_role("button", name="检查并发送").click()
        guard.get_by_role("button", name="发送", exact=True).click()
        guard.wait_for_url("**/outbox?id=*")
        report_id = guard.url.rsplit("=", 1)[1]
        assert outbox(guard)[0][0] == report_id

        # Signal again: the report arrives with the version it was made on.
        phone.set_offline(False)
        with api_session(live_server, "boss", BOSS_PASSWORD) as boss:

            def arrived() -> bool:
                return boss.get(f"/api/reports/{report_id}").status_code == 200

            wait_until(guard, "() => true")  # a turn of the page's loop
            for _ in range(300):
                if arrived():
                    break
                guard.wait_for_timeout(100)
            found = boss.get(f"/api/reports/{report_id}").json()
        assert found["playbook_version"] == old
        assert NEW_STEP not in [s["text"]["zh-CN"] for s in found["playbook"]["handling"]]

        # The first page with signal keeps every page again: offline, the new version.
        guard.goto(f"{url}/me")
        wait_offline_ready(guard)
        phone.set_offline(True)
        guard.goto(f"{url}/report/{FIRE}")
        guard.wait_for_selector("body[data-ready=true]")
        assert guard.locator("#flow").get_attribute("data-version") == new
        third = guard.locator("#fill .check").nth(2)
        assert NEW_STEP in third.inner_text()
        assert "公司" in third.locator(".origin").inner_text()  # a small mark: the company's
        screenshot(guard, "fire-flow-new-version-offline-zh-CN")
    finally:
        live_server.stop()  # the next test's server starts without this version


def test_the_library_editor_and_diff_at_a_desk(live_server, browser):
    url = live_server.url
    add_user(live_server, "boss", "admin", "管理员", password=BOSS_PASSWORD)
    try:
        with api_session(live_server, "boss", BOSS_PASSWORD) as admin:
            layer = {
                "handling": [
                    {"key": "p-intercom", "zh-CN": "用对讲机安抚被困人员", "en": "Reassure"}
                ]
            }
            assert admin.put("/api/playbooks/lift-entrapment/draft", json=layer).status_code == 200
            published = admin.post(
                "/api/playbooks/lift-entrapment/publish", json={"note": "改写第一步"}
            )
            assert published.status_code == 201, published.text
        desk = browser.new_context(**DESK_OPTIONS)
        page = desk.new_page()
        log_in(page, url, username="boss", password=BOSS_PASSWORD)
        for path, name in [
            ("/admin/playbooks", "library-desk-zh-CN"),
            ("/admin/playbooks/lift-entrapment", "editor-desk-zh-CN"),
            ("/admin/playbooks/lift-entrapment/versions", "diff-desk-zh-CN"),
        ]:
            page.goto(f"{url}{path}")
            page.wait_for_load_state("load")
            screenshot(page, name)
        assert "用对讲机安抚被困人员" in page.locator(".diff-reworded").inner_text()
        desk.close()
    finally:
        live_server.stop()
