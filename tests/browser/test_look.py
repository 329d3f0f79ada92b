"""What a guard sees in the first week (issue 17): words that stay whole,
navigation at the top of a desk's screen, a picture per incident, drawn tab
icons, a legend for the severity colours, the role said once, English tab
labels on one line; and the main pages drawn in both languages and in dark
mode (kept as screenshots when ONSITE_SCREENSHOTS names a folder)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers.browser import LIFT, PHONE_OPTIONS, SMALL_TARGETS_JS, log_in, screenshot
from tests.helpers.live import GUARD_PASSWORD, add_user, api_session

# What pages draw and do online: no service worker (tests/browser/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.pages_only]

DESK = {"width": 1280, "height": 800}
OLD_TAB_SIGNS = "⇪▤▣⌂☰☺＋"

# True when the text from `from` to the end of its text node lies on one
# line (the client rects of a Range over it share a top).
ON_ONE_LINE_JS = """
([selector, from]) => {
  const el = [...document.querySelectorAll(selector)].find(e => e.textContent.includes(from));
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  let node;
  while ((node = walker.nextNode()) && !node.data.includes(from));
  range.setStart(node, node.data.indexOf(from));
  range.setEnd(node, node.data.length);
  const tops = [...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top));
  return new Set(tops).size === 1;
}
"""


def shoot(page, name: str) -> None:
    """The whole page (conftest's screenshot) and, beside it, what the
    screen shows, where fixed bars sit where the user sees them."""
    screenshot(page, name)
    if folder := os.environ.get("ONSITE_SCREENSHOTS"):
        page.screenshot(path=str(Path(folder) / f"{name}-screen.png"))


def report_with_gps(live_server) -> str:
    """A lift report with its first step ticked, the others not, and a GPS fix of ±12 m."""
    report_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat()
    with api_session(live_server, "guard", GUARD_PASSWORD) as guard:
        response = guard.put(
            f"/api/reports/{report_id}",
            json={
                "site": "north",
                "incident_type": LIFT,
                "severity": "high",
                "occurred_at": now,
                "location": {
                    "text": "3栋2单元 电梯机房旁边的走廊尽头",
                    "lat": 22.5431,
                    "lng": 114.0579,
                    "accuracy_m": 12,
                },
                "notes": "两人被困",
                "steps": [{"index": 0, "checked_at": now}],
            },
        )
        assert response.status_code == 201, response.text
    return report_id


def test_not_done_and_a_gps_accuracy_stay_whole_at_every_phone_width(live_server, phone):
    report_id = report_with_gps(live_server)
    boss = add_user(live_server, "boss", "supervisor", "陈主管")
    page = phone.new_page()
    log_in(page, live_server.url, username="boss", password=boss)  # steps as read, not ticked
    page.goto(f"{live_server.url}/reports/{report_id}")
    assert page.get_by_text("未完成").first.is_visible()
    broken = []
    for width in range(300, 431, 3):
        page.set_viewport_size({"width": width, "height": 844})
        if not page.evaluate(ON_ONE_LINE_JS, [".done-steps li.not-done", "未完成"]):
            broken.append((width, "未完成"))
        if not page.evaluate(ON_ONE_LINE_JS, [".summary dd", "±12"]):
            broken.append((width, "±12 m"))
    assert "±12\u00a0m" in page.locator(".summary").inner_text()

    # The printable page, read on the phone, has narrow columns of its own.
    page.goto(f"{live_server.url}/reports/{report_id}/print")
    for width in range(300, 431, 3):
        page.set_viewport_size({"width": width, "height": 844})
        if not page.evaluate(ON_ONE_LINE_JS, ["td", "未完成"]):
            broken.append((width, "print 未完成"))
        if not page.evaluate(ON_ONE_LINE_JS, ["td", "±12"]):
            broken.append((width, "print ±12 m"))
    assert broken == []


def test_at_a_desk_the_tab_bar_is_at_the_top_and_the_keyboard_meets_it_first(live_server, browser):
    context = browser.new_context(**{**PHONE_OPTIONS, "viewport": DESK, "is_mobile": False})
    try:
        page = context.new_page()
        log_in(page, live_server.url)
        tabbar = page.locator("nav.tabbar").bounding_box()
        first_tile = page.locator(".tile").first.bounding_box()
        assert tabbar is not None and first_tile is not None
        assert tabbar["y"] < 150 and tabbar["y"] + tabbar["height"] < first_tile["y"]
        # Still there after scrolling past the tiles.
        page.mouse.wheel(0, 3000)
        page.wait_for_function("window.scrollY > 500")
        assert 0 <= page.locator("nav.tabbar").bounding_box()["y"] < 150

        reached = None
        for _ in range(15):
            page.keyboard.press("Tab")
            reached = page.evaluate(
                "() => document.activeElement.closest('nav.tabbar') ? 'nav'"
                " : document.activeElement.closest('.tile, main') ? 'main' : null"
            )
            if reached:
                break
        assert reached == "nav"
    finally:
        context.close()


def test_on_a_phone_the_tab_bar_stays_along_the_bottom(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    box = page.locator("nav.tabbar").bounding_box()
    assert box is not None and box["y"] + box["height"] == pytest.approx(844, abs=1)


def test_every_incident_has_an_icon_of_its_own(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    icons = page.locator(".category-tiles .tile-emoji").all_inner_texts()
    assert len(icons) == page.locator(".category-tiles .tile").count() > 20
    assert len(set(icons)) == len(icons)
    assert all(icon.strip() for icon in icons)


@pytest.mark.parametrize("role", ["guard", "technician", "supervisor"])
def test_the_tabs_have_drawn_icons_and_english_labels_on_one_line(live_server, phone, role):
    username, password = "guard", GUARD_PASSWORD
    if role != "guard":
        username, password = "other", add_user(live_server, "other", role, "赵")
    page = phone.new_page()
    log_in(page, live_server.url, username=username, password=password)
    page.goto(f"{live_server.url}/lang/en?next=/me")
    tabs = page.locator("nav.tabbar a")
    assert tabs.count() == 5
    assert page.locator("nav.tabbar a svg[aria-hidden=true]").count() == 5
    assert not set(OLD_TAB_SIGNS) & set(page.locator("nav.tabbar").inner_text())
    labels = page.locator(".tab-label").evaluate_all(
        """labels => labels.map(l => ({text: l.textContent,
             lines: l.getClientRects().length,
             height: l.getBoundingClientRect().height,
             line: parseFloat(getComputedStyle(l).lineHeight),
             cut: l.scrollWidth > l.clientWidth}))"""
    )
    for label in labels:
        assert label["lines"] == 1 and not label["cut"], label
        assert label["height"] < 1.5 * label["line"], label
    # Tabs remain big enough for a thumb.
    assert all(box["height"] >= 48 for box in (t.bounding_box() for t in tabs.all()))


@pytest.mark.parametrize("role", ["guard", "supervisor"])
def test_the_severity_colours_have_a_legend(live_server, phone, role):
    username, password = "guard", GUARD_PASSWORD
    if role != "guard":
        username, password = "boss", add_user(live_server, "boss", role, "陈主管")
    page = phone.new_page()
    log_in(page, live_server.url, username=username, password=password)
    legend = page.locator(".sev-legend")
    assert legend.is_visible()
    assert legend.locator("li").all_inner_texts() == ["危急", "高", "中", "低"]
    colours = legend.locator(".sev-key").evaluate_all(
        "keys => keys.map(k => getComputedStyle(k).backgroundColor)"
    )
    assert len(set(colours)) == 4
    shoot(page, f"legend-{role}")


def test_the_greeting_says_the_role_once(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    assert page.locator(".greeting").inner_text().count("保安") == 1
    password = add_user(live_server, "guard2", "guard", "保安 李师傅")
    page.context.clear_cookies()
    log_in(page, live_server.url, username="guard2", password=password)
    greeting = page.locator(".greeting").inner_text()
    assert "李师傅" in greeting and greeting.count("保安") == 1


@pytest.mark.parametrize("lang, scheme", [("zh-CN", "light"), ("en", "light"), ("zh-CN", "dark")])
def test_the_main_pages_are_drawn_with_thumb_sized_targets(live_server, browser, lang, scheme):
    """Home, the guides, the flow, its review, the outbox and the report page, in each
    language and in dark mode (screenshots kept for a person to look at)."""
    context = browser.new_context(
        **PHONE_OPTIONS,
        color_scheme=scheme,
        geolocation={"latitude": 22.5431, "longitude": 114.0579, "accuracy": 12},
        permissions=["geolocation"],
    )
    name = f"{lang}-{scheme}"
    small: dict[str, list] = {}
    try:
        page = context.new_page()
        log_in(page, live_server.url)
        if lang == "en":
            page.goto(f"{live_server.url}/lang/en?next=/")
        shoot(page, f"home-{name}")
        small["home"] = page.evaluate(SMALL_TARGETS_JS)
        page.goto(f"{live_server.url}/playbooks")
        shoot(page, f"guides-{name}")
        small["guides"] = page.evaluate(SMALL_TARGETS_JS)

        page.goto(f"{live_server.url}/report/{LIFT}")
        page.wait_for_selector("body[data-ready=true]")
        page.locator(".step-box").nth(0).check()
        page.locator(".step-box").nth(1).check()
        page.locator("#location-text").fill("3栋2单元 电梯")
        page.locator("#use-gps").click()
        page.wait_for_function("document.getElementById('gps-state').textContent.includes('22.5')")
        page.locator("#notes").fill("两人被困")
        shoot(page, f"flow-{name}")
        small["flow"] = page.evaluate(SMALL_TARGETS_JS)

        page.locator("#to-review").click()
        page.locator("#review").wait_for()
        shoot(page, f"review-{name}")
        small["review"] = page.evaluate(SMALL_TARGETS_JS)

        # The server out of reach: the report waits in the outbox.
        page.route("**/api/reports/**", lambda route: route.abort())
        page.locator("#send").click()
        page.wait_for_url("**/outbox?id=*")
        page.wait_for_selector("#outbox-list .outbox-item")
        shoot(page, f"outbox-{name}")
        small["outbox"] = page.evaluate(SMALL_TARGETS_JS)

        page.goto(f"{live_server.url}/reports/{report_with_gps(live_server)}")
        shoot(page, f"report-{name}")
        small["report"] = page.evaluate(SMALL_TARGETS_JS)

        page.set_viewport_size(DESK)
        page.goto(f"{live_server.url}/")
        shoot(page, f"home-desk-{name}")
    finally:
        context.close()
    assert {where: targets for where, targets in small.items() if targets} == {}
