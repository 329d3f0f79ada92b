"""Logging in on a phone, in Chromium."""

from __future__ import annotations

import pytest

from tests.browser.conftest import GUARD_PASSWORD, SMALL_TARGETS_JS, screenshot

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
