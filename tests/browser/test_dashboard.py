"""The dashboard in Chromium: a year of incidents on two sites, drawn at
phone and desk size in both languages for a person to read
(ONSITE_SCREENSHOTS); what must hold at both sizes is asserted."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.helpers.browser import DESK_OPTIONS, PHONE_OPTIONS, log_in_with_form, screenshot
from tests.helpers.live import GUARD_PASSWORD, api_session

# What pages draw and do online: no service worker (tests/browser/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.pages_only]

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Reports a month, oldest month first, and how many of them each site had.
PER_MONTH = [2, 3, 1, 4, 2, 5, 3, 2, 4, 3, 6, 3]
SOUTH_EVERY = 3  # every third report is the south site's


@pytest.fixture
def people(live_server) -> dict[str, str]:
    """A supervisor of both sites, a guard of the second and an admin; their passwords."""
    live_server.cli("site", "add", "south", "南苑")
    passwords = {}
    for username, role, sites in [
        ("boss", "supervisor", ["north", "south"]),
        ("southguard", "guard", ["south"]),
        ("admin", "admin", []),
    ]:
        passwords[username] = f"{username}-password-1"
        site_args = [arg for code in sites for arg in ("--site", code)]
        live_server.cli(
            "user", "add", username, "--role", role, *site_args, "--name", username.title(),
            "--password-stdin", input=passwords[username] + "\n",
        )  # fmt: skip
    passwords["guard"] = GUARD_PASSWORD
    return passwords


def month_start(months_back: int) -> datetime:
    """Midnight on the 1st, ``months_back`` months ago where the sites are, in UTC."""
    today = datetime.now(SHANGHAI).date()
    index = today.year * 12 + today.month - 1 - months_back
    day = date(index // 12, index % 12 + 1, 1)
    return datetime(day.year, day.month, 1, tzinfo=SHANGHAI).astimezone(UTC)


def set_times(server, rows: list[tuple[str, datetime, datetime | None, datetime | None]]) -> None:
    """Put reports back in time (received, acknowledged, closed): the server
    stamps a report's arrival itself, so a year of them is made now and moved."""
    db = server.database
    sql = "UPDATE report SET received_at = {}, acknowledged_at = {}, closed_at = {} WHERE id = {}"
    if db.sqlite:
        with contextlib.closing(sqlite3.connect(db.sqlite, timeout=30)) as conn, conn:
            for rid, *times in rows:
                values = [str(t) if t else None for t in times]
                conn.execute(sql.format("?", "?", "?", "?"), (*values, rid))
        return

    async def update(conn) -> None:
        for rid, *times in rows:
            await conn.execute(sql.format("$1", "$2", "$3", "$4"), *times, uuid.UUID(rid))

    db._postgres(update)


def a_year_of_incidents(server, people) -> dict[str, int]:
    """Reports of six incident types over twelve months on two sites, most
    acknowledged and closed; three 改善 actions, one of them overdue."""
    now = datetime.now(UTC)
    made: list[tuple[str, datetime, datetime | None, datetime | None]] = []
    with (
        api_session(server, "guard", people["guard"]) as guard,
        api_session(server, "southguard", people["southguard"]) as south,
        api_session(server, "boss", people["boss"]) as boss,
        api_session(server, "admin", people["admin"]) as admin,
    ):
        playbooks = guard.get("/api/playbooks").json()
        types = [i["id"] for c in playbooks["categories"] for i in c["incidents"]][:6]
        n = 0
        for back, count in zip(range(len(PER_MONTH) - 1, -1, -1), PER_MONTH, strict=True):
            start = month_start(back)
            span = (now - start) if back == 0 else (month_start(back - 1) - start)
            for j in range(count):
                n += 1
                who, site = (south, "south") if n % SOUTH_EVERY == 0 else (guard, "north")
                rid = str(uuid.uuid4())
                body = {
                    "site": site,
                    "incident_type": types[(n * 7) % len(types) if n % 4 else 0],
                    "occurred_at": now.isoformat(),
                }
                assert who.put(f"/api/reports/{rid}", json=body).status_code == 201
                received = start + span * (j + 0.5) / (count + 1)
                acknowledged = closed = None
                if n % 5 != 4:
                    assert boss.put(f"/api/reports/{rid}/acknowledgement", json={}).is_success
                    acknowledged = received + timedelta(minutes=4 + (n * 13) % 40 + back)
                if n % 3 != 2 and acknowledged:
                    # An admin may close with the review open, saying why.
                    closing = {"note": "已处理", "waive": "演示数据"}
                    assert admin.put(f"/api/reports/{rid}/closure", json=closing).is_success
                    closed = acknowledged + timedelta(hours=2 + (n * 5) % 60)
                made.append((rid, received, acknowledged, closed))
        today = datetime.now(SHANGHAI).date()
        last = made[-1][0]
        for days, text in [(-6, "更换地下车库照明"), (10, "加装电梯监控"), (-1, "补充夜班巡逻")]:
            response = boss.put(
                f"/api/reports/{last}/actions/{uuid.uuid4()}",
                json={"description": text, "owner": "boss", "due": str(today + timedelta(days))},
            )
            if response.status_code == 404:  # no review yet: nothing to count
                break
            assert response.is_success, response.text
    set_times(server, made)
    return {"reports": len(made)}


def test_the_dashboard_at_phone_and_desk_size_in_both_languages(live_server, browser, people):
    made = a_year_of_incidents(live_server, people)
    for size, options in [("phone", PHONE_OPTIONS), ("desk", DESK_OPTIONS)]:
        context = browser.new_context(**options)
        try:
            page = context.new_page()
            log_in_with_form(page, live_server.url, username="boss", password=people["boss"])
            for lang in ("zh-CN", "en"):
                page.goto(f"{live_server.url}/lang/{lang}?next=/dashboard")
                page.wait_for_load_state("load")
                assert page.locator("html").get_attribute("lang") == lang
                assert page.locator(".stat strong").first.inner_text() == str(made["reports"])
                charts = page.locator("svg.chart")
                assert charts.count() == 4
                width = options["viewport"]["width"]
                for i in range(4):
                    box = charts.nth(i).bounding_box()
                    assert 0 < box["width"] <= width
                # Labels a person can read: month names at least 11 px high.
                label = page.locator("svg.chart .chart-x text").first.bounding_box()
                assert label["height"] >= 11, label
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= width, (size, lang, wide)
                screenshot(page, f"dashboard-{size}-{lang}")
                # The numbers behind the first chart, one tap away.
                page.locator("#by-type summary").click()
                table = page.locator("#by-type table")
                table.wait_for()
                assert table.locator("tbody tr").count() == 12
                assert table.locator("tfoot .total").inner_text() == str(made["reports"])
                if size == "phone" and lang == "zh-CN":
                    screenshot(page, "dashboard-phone-zh-CN-table")
        finally:
            context.close()
