"""Logging in on a phone, in Chromium: the form, its throttle, logging out
for good, and logging out the other devices."""

from __future__ import annotations

import pytest

from tests.helpers.browser import SMALL_TARGETS_JS, log_in, screenshot
from tests.helpers.live import GUARD_PASSWORD, api_session

pytestmark = pytest.mark.browser


def test_a_guard_logs_in_on_a_phone_and_lands_home(live_server, phone):
    page = phone.new_page()
    page.goto(f"{live_server.url}/")
    assert page.url.endswith("/login")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    screenshot(page, "login-zh-CN")
    assert page.evaluate(SMALL_TARGETS_JS) == []

    page.get_by_label("用户名").fill("guard")
    page.get_by_label("密码").fill(GUARD_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live_server.url}/")
    assert "你好，王师傅" in page.locator(".greeting").inner_text()
    screenshot(page, "home-zh-CN")
    assert page.evaluate(SMALL_TARGETS_JS) == []

    me = page.evaluate("fetch('/api/me').then(r => r.json())")
    assert me["username"] == "guard"
    assert me["sites"] == [{"code": "north", "name": "北苑"}]
    # The service worker is registered and controls the app's scope.
    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{live_server.url}/"


def test_a_wrong_password_shows_the_error_and_keeps_the_username(live_server, phone):
    page = phone.new_page()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("用户名").fill("guard")
    page.get_by_label("密码").fill("not-it")
    page.get_by_role("button", name="登录").click()
    assert page.get_by_role("alert").inner_text() == "用户名或密码错误。"
    assert page.get_by_label("用户名").input_value() == "guard"


def test_the_login_page_switches_to_english(live_server, phone):
    page = phone.new_page()
    page.goto(f"{live_server.url}/login")
    page.get_by_role("link", name="English").click()
    page.wait_for_url(f"{live_server.url}/login")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("button", name="Log in").is_visible()
    screenshot(page, "login-en")


def test_too_many_wrong_passwords_lock_the_form_and_say_for_how_long(live_server, phone):
    page = phone.new_page()
    page.goto(f"{live_server.url}/login")
    for _ in range(5):
        page.get_by_label("用户名").fill("guard")
        page.get_by_label("密码").fill("not-it")
        page.get_by_role("button", name="登录").click()
        assert page.get_by_role("alert").inner_text() == "用户名或密码错误。"
    # Locked: the right password too is refused, and the form says how long.
    page.get_by_label("密码").fill(GUARD_PASSWORD)
    page.get_by_role("button", name="登录").click()
    assert page.get_by_role("alert").inner_text() == "登录失败次数过多，请 15 分钟后再试。"
    assert page.get_by_label("用户名").input_value() == "guard"
    assert page.url.endswith("/login")
    screenshot(page, "login-throttled-zh-CN")
    assert page.evaluate(SMALL_TARGETS_JS) == []
    page.get_by_role("link", name="English").click()
    page.get_by_label("Username").fill("guard")
    page.get_by_label("Password").fill(GUARD_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert").inner_text()
    assert alert == "Too many failed logins. Try again in 15 minutes."
    screenshot(page, "login-throttled-en")


def test_a_cookie_kept_from_before_logout_lands_on_the_login_page(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    kept = [c for c in phone.cookies() if c["name"] == "onsite_session"]
    page.goto(f"{live_server.url}/me")
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(f"{live_server.url}/login")
    phone.add_cookies(kept)  # as if copied off the phone before logging out
    page.goto(f"{live_server.url}/reports")
    assert "/login" in page.url
    assert page.evaluate("fetch('/api/me').then(r => r.status)") == 401


def test_the_me_page_logs_out_the_other_devices(live_server, phone):
    with api_session(live_server, "guard", GUARD_PASSWORD) as tablet:
        page = phone.new_page()
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/me")
        status = page.locator("#devices-status")
        assert status.inner_text() == "除本机外，还有 1 台设备登录着你的账号。"
        screenshot(page, "me-devices-before-zh-CN")
        assert page.evaluate(SMALL_TARGETS_JS) == []
        page.get_by_role("button", name="退出其他设备").click()
        page.get_by_text("其他 1 台设备已退出登录，本机仍登录着。").wait_for()
        assert page.get_by_role("button", name="退出其他设备").is_hidden()
        screenshot(page, "me-devices-zh-CN")
        assert tablet.get("/api/me").status_code == 401
        assert page.evaluate("fetch('/api/me').then(r => r.status)") == 200
