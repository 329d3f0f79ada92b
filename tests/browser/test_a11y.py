"""axe-core finds nothing serious or critical on any page of any role, in
light and dark mode, on a phone and at a desk (issue 17).

One browser context per role, colour scheme and size; each role logs in once
and walks its pages (the same pages as test_policy.py, plus the technician's
and the review step of a report), running axe on each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import GUARD_PASSWORD, PHONE, PHONE_OPTIONS, log_in
from tests.browser.test_followup import LIFT, new_report
from tests.browser.test_job import BOSS_PASSWORD, TECH_PASSWORD, assigned_job

pytestmark = pytest.mark.browser

AXE = (Path(__file__).parents[2] / "node_modules" / "axe-core" / "axe.min.js").read_text()
DESK = {"width": 1280, "height": 800}
ADMIN_PASSWORD = "admin-password-1"

# Serious and critical only; the rules run are axe's defaults (WCAG 2.x A/AA
# and best practices).
RUN_AXE = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .flatMap(v => v.nodes.map(n => `${v.id} (${v.impact}) ${n.target.join(" ")}: `
      + (n.failureSummary || v.help).replace(/\\s+/g, " ").slice(0, 300)));
}
"""


def role_pages(report_id: str, job_id: str) -> dict[str, tuple[str, str, list[str]]]:
    """Each role's login and the pages it sees; ``#review`` opens the review
    step of a report's flow."""
    guard = ["/", "/new", f"/report/{LIFT}", f"/report/{LIFT}#review", "/reports"]
    guard += [f"/reports/{report_id}", "/outbox", "/me", "/playbooks", f"/playbooks/{LIFT}"]
    guard += ["/contacts", "/offline"]
    tech = ["/", f"/reports/{job_id}", "/me"]
    boss = ["/", f"/reports/{report_id}", f"/reports/{job_id}", "/dashboard", "/actions"]
    boss += ["/admin", "/admin/sites/north", "/me"]
    root = ["/", "/admin", "/admin/users/guard", "/admin/sites", "/admin/sites/north"]
    root += ["/admin/sites/north/contacts/new", "/admin/sites/north/channels/new", "/admin/log"]
    root += ["/dashboard", f"/reports/{report_id}"]
    return {
        "guard": ("guard", GUARD_PASSWORD, guard),
        "technician": ("tech", TECH_PASSWORD, tech),
        "supervisor": ("boss", BOSS_PASSWORD, boss),
        "admin": ("root", ADMIN_PASSWORD, root),
    }


def axe_violations(page, url: str, path: str) -> list[str]:
    review = path.endswith("#review")
    response = page.goto(f"{url}{path.removesuffix('#review')}")
    assert response is not None and response.status == 200, (path, response)
    page.wait_for_load_state("networkidle")
    if path.startswith("/report/"):  # a ticked step shows its time (issue 17: 2.3:1 in dark)
        page.wait_for_selector("body[data-ready=true]")
        page.locator(".step-box").first.check()
        page.locator(".check-time").first.wait_for()
    if review:
        page.locator("#to-review").click()
        page.locator("#review").wait_for()
    page.add_script_tag(content=AXE)
    return page.evaluate(RUN_AXE)


@pytest.mark.parametrize("size", ["phone", "desk"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_page_of_any_role_has_a_serious_accessibility_violation(
    live_server, browser, scheme, size
):
    job_id = assigned_job(live_server)
    report_id = new_report(live_server, photo=True)
    live_server.cli(
        "user", "add", "root", "--role", "admin", "--name", "管理员",
        "--password-stdin", input=ADMIN_PASSWORD + "\n",
    )  # fmt: skip
    options = {**PHONE_OPTIONS, "color_scheme": scheme}
    if size == "desk":
        options.update(viewport=DESK, device_scale_factor=1, is_mobile=False, has_touch=False)
    else:
        options.update(viewport=PHONE, device_scale_factor=1)  # what axe sees is the same

    found: dict[str, list[str]] = {}
    for role, (username, password, paths) in role_pages(report_id, job_id).items():
        context = browser.new_context(**options)
        try:
            page = context.new_page()
            log_in(page, live_server.url, username=username, password=password)
            for path in paths:
                if violations := axe_violations(page, live_server.url, path):
                    found[f"{role} {path}"] = violations
        finally:
            context.close()
    assert found == {}, "\n".join(f"{where}:\n  " + "\n  ".join(v) for where, v in found.items())
