"""The strict Content-Security-Policy fits the app: every page of every role,
opened in Chromium, runs its scripts, draws its styles and images, and the
browser reports no violation (issue 16, item 11)."""

from __future__ import annotations

import pytest

from tests.helpers.browser import (
    LIFT,
    PHONE_OPTIONS,
    TRACK_FETCHES,
    WATCH_POLICY,
    log_in,
    new_report,
    settle,
)
from tests.helpers.live import ADMIN, ADMIN_PASSWORD, add_user

pytestmark = pytest.mark.browser


def visit(page, url: str, paths: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    for path in paths:
        response = page.goto(f"{url}{path}")
        assert response is not None and response.status == 200, (path, response)
        settle(page)
        violations = page.evaluate("window.__violations") + console
        console.clear()
        if violations:
            found[path] = violations
    return found


@pytest.fixture
def phone(browser):
    """A phone that keeps to the policy (the other tests' phones bypass it)."""
    context = browser.new_context(**{**PHONE_OPTIONS, "bypass_csp": False})
    context.add_init_script(TRACK_FETCHES)
    try:
        yield context
    finally:
        context.close()


def test_no_page_of_any_role_trips_the_policy(live_server, phone):
    boss = add_user(live_server, "boss", "supervisor", "陈主管")
    report_id = new_report(live_server, photo=True)
    phone.add_init_script(WATCH_POLICY)

    guard = phone.new_page()
    log_in(guard, live_server.url, offline_ready=True)
    pages = ["/", "/new", f"/report/{LIFT}", "/reports", f"/reports/{report_id}", "/outbox"]
    pages += ["/me", "/playbooks", f"/playbooks/{LIFT}", "/contacts", "/offline"]
    assert visit(guard, live_server.url, pages) == {}
    guard.context.clear_cookies()

    sup = phone.new_page()
    log_in(sup, live_server.url, username="boss", password=boss)
    pages = ["/", f"/reports/{report_id}", f"/reports/{report_id}/print", "/dashboard"]
    pages += ["/actions", "/admin", "/admin/sites/north", "/me"]
    assert visit(sup, live_server.url, pages) == {}
    sup.context.clear_cookies()

    root = phone.new_page()
    log_in(root, live_server.url, username=ADMIN, password=ADMIN_PASSWORD)
    pages = ["/", "/admin", "/admin/users/guard", "/admin/sites", "/admin/sites/north"]
    pages += ["/admin/sites/north/contacts/new", "/admin/sites/north/channels/new", "/admin/log"]
    pages += ["/dashboard", f"/reports/{report_id}"]
    assert visit(root, live_server.url, pages) == {}
