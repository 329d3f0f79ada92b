"""The strict Content-Security-Policy fits the app: every page of every role,
opened in Chromium, runs its scripts, draws its styles and images, and the
browser reports no violation (issue 16, item 11)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PHONE_OPTIONS, add_user, log_in
from tests.browser.test_followup import LIFT, new_report

pytestmark = pytest.mark.browser

WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${where}`);
});
"""


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
        page.wait_for_load_state("networkidle")
        violations = page.evaluate("window.__violations") + console
        console.clear()
        if violations:
            found[path] = violations
    return found


@pytest.fixture
def phone(browser):
    """A phone that keeps to the policy (the other tests' phones bypass it)."""
    context = browser.new_context(**{**PHONE_OPTIONS, "bypass_csp": False})
    try:
        yield context
    finally:
        context.close()


def test_no_page_of_any_role_trips_the_policy(live_server, phone):
    boss = add_user(live_server, "boss", "supervisor", "陈主管")
    admin_password = "admin-password-1"
    live_server.cli(
        "user", "add", "root", "--role", "admin", "--name", "管理员",
        "--password-stdin", input=admin_password + "\n",
    )  # fmt: skip
    report_id = new_report(live_server, photo=True)
    phone.add_init_script(WATCH)

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
    log_in(root, live_server.url, username="root", password=admin_password)
    pages = ["/", "/admin", "/admin/users/guard", "/admin/sites", "/admin/sites/north"]
    pages += ["/admin/sites/north/contacts/new", "/admin/sites/north/channels/new", "/admin/log"]
    pages += ["/dashboard", f"/reports/{report_id}"]
    assert visit(root, live_server.url, pages) == {}
