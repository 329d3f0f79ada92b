"""The dashboard's numbers for a known set of reports, made through the API
with the test clock: counts by month, type and site, medians, actions; who may see it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server import dashboard
from server.models import ActionStatus, CorrectiveAction, Report, User
from tests.conftest import login
from tests.helpers.reports import act, new_report

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_midnight(day: date) -> datetime:
    """Midnight of ``day`` where the sites are, in UTC (16:00 the day before)."""
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(UTC)


async def received(rid: str, at: datetime) -> None:
    """Say the report arrived at ``at``: its later times move with it."""
    report = await Report.get(id=rid)
    shift = at - report.received_at
    moved = {"received_at": at}
    for field in ("acknowledged_at", "closed_at"):
        if (value := getattr(report, field)) is not None:
            moved[field] = value + shift
    await Report.filter(id=rid).update(**moved)


async def numbers(app, username: str, months: int = dashboard.DEFAULT_MONTHS):
    return await dashboard.build(app.state.context, await User.get(username=username), months)


@pytest.fixture
async def guard(world, as_user):
    return await as_user("guard")


async def test_a_month_is_the_median_of_its_minutes_to_acknowledge_and_to_close(
    app, world, as_user, guard, clock
):
    sup, admin = await as_user("super"), await as_user("admin")
    first, second, third = [await new_report(app, guard) for _ in range(3)]
    # Acknowledged 10, 30 and 50 minutes after they came in; two closed at 60 and 90.
    for rid, minutes in [(first, 10), (second, 20), (third, 20)]:
        clock.advance(minutes * 60)
        assert (await act(sup, rid, "acknowledgement")).status_code == 201
    # Closed by an admin, who may close before the review is done.
    closing = {"note": "已处理", "waive": "只看用时"}
    clock.advance(10 * 60)
    assert (await act(admin, first, "closure", closing)).status_code == 201
    clock.advance(30 * 60)
    assert (await act(admin, second, "closure", closing)).status_code == 201

    data = await numbers(app, "super")
    assert data.months[-1] == app.state.context.today().replace(day=1)
    assert len(data.months) == 12
    assert data.reports == 3
    assert data.to_acknowledge.counts[-1] == 3
    assert data.to_acknowledge.minutes[-1] == pytest.approx(30, abs=0.5)
    assert data.to_close.counts[-1] == 2
    assert data.to_close.minutes[-1] == pytest.approx((60 + 90) / 2, abs=0.5)
    # The months before have nothing to take a median from.
    assert data.to_acknowledge.minutes[:-1] == [None] * 11
    assert data.to_close.counts[:-1] == [0] * 11


async def test_reports_count_in_the_month_they_arrived_in_where_the_sites_are(app, world, guard):
    this_month = app.state.context.today().replace(day=1)
    rids = [await new_report(app, guard) for _ in range(4)]
    # Half an hour either side of midnight on the 1st, Shanghai time.
    await received(rids[0], local_midnight(this_month) - timedelta(minutes=30))
    await received(rids[1], local_midnight(this_month) + timedelta(minutes=30))
    # A year and a month ago: outside the last 12 months, inside the last 24.
    long_ago = dashboard.month_starts(this_month, 14)[0]
    await received(rids[2], local_midnight(long_ago) + timedelta(days=3))

    data = await numbers(app, "super")
    lift = next(iter(data.by_type.rows))
    assert data.reports == 3
    assert data.by_type.rows[lift][-2:] == [1, 2]  # last month 1, this month 2
    assert data.by_site.rows == {"北苑": data.by_type.rows[lift]}
    assert data.by_type.totals() == data.by_type.rows[lift]

    longer = await numbers(app, "super", 24)
    assert longer.reports == 4
    assert longer.by_type.rows[lift][longer.months.index(long_ago)] == 1
    assert (await numbers(app, "super", 1)).reports == 2


async def test_another_sites_reports_count_only_for_those_who_see_that_site(
    app, world, as_user, guard
):
    await new_report(app, guard)
    south = await as_user("southguard")
    rid = str(uuid.uuid4())
    north_body = {
        "site": "south",
        "incident_type": next(iter(app.state.playbooks.incidents())).id,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    response = await south.put(
        f"/api/reports/{rid}", json=north_body, headers={"X-Requested-With": "onsite"}
    )
    assert response.status_code == 201, response.text

    mine = await numbers(app, "super")
    assert mine.reports == 1
    assert set(mine.by_site.rows) == {"北苑"}
    everyone = await numbers(app, "admin")
    assert everyone.reports == 2
    assert set(everyone.by_site.rows) == {"北苑", "南苑"}


async def test_actions_not_verified_are_open_and_those_past_their_due_day_overdue(
    app, world, as_user, guard
):
    today = app.state.context.today()
    rid = await new_report(app, guard)
    south_rid = str(uuid.uuid4())
    await Report.create(
        id=south_rid,
        site=world.south,
        reporter=world.south_guard,
        incident_type="x",
        playbook_version="v",
        severity="low",
        content_hash="h",
        occurred_at=datetime.now(UTC),
    )
    rows = [
        (rid, ActionStatus.OPEN, today - timedelta(days=3), "修好门禁"),
        (rid, ActionStatus.OPEN, today - timedelta(days=1), "补充巡逻"),
        (rid, ActionStatus.OPEN, today, "今天到期"),  # due today: not yet overdue
        (rid, ActionStatus.DONE, today - timedelta(days=5), "已完成待复查"),
        (rid, ActionStatus.VERIFIED, today - timedelta(days=9), "已通过复查"),
        (south_rid, ActionStatus.OPEN, today - timedelta(days=9), "南苑的措施"),
    ]
    for report_id, status, due, text in rows:
        await CorrectiveAction.create(
            report_id=report_id,
            description=text,
            due_date=due,
            status=status,
            owner=world.technician,
        )

    data = await numbers(app, "super")
    assert [(t.site, t.open, t.done, t.overdue) for t in data.actions] == [("北苑", 3, 1, 2)]
    assert data.open_actions == 4 and data.overdue_actions == 2
    assert [a.description for a in data.overdue] == ["修好门禁", "补充巡逻"]

    everyone = await numbers(app, "admin")
    assert everyone.overdue_actions == 3
    assert everyone.overdue[0].description == "南苑的措施"

    sup = await as_user("super")
    page = (await sup.get("/dashboard")).text
    assert "修好门禁" in page and "逾期 3 天" in page
    assert "南苑的措施" not in page


async def test_the_page_shows_each_chart_with_its_numbers_as_a_table(app, world, as_user, guard):
    rid = await new_report(app, guard)
    sup = await as_user("super")
    assert (await act(sup, rid, "acknowledgement")).status_code == 201
    closing = {"note": "已处理", "waive": "测试"}
    assert (await act(await as_user("admin"), rid, "closure", closing)).status_code == 201
    response = await sup.get("/dashboard")
    assert response.status_code == 200
    page = response.text
    assert '<link rel="stylesheet" href="/static/css/dashboard.css' in page
    assert page.count('<svg class="chart') == 4
    assert page.count("<summary>数据表</summary>") == 4
    assert "电梯困人事件" in page and "北苑" in page
    this_month = app.state.context.today()
    assert f"{this_month.year}年{this_month.month}月" in page
    english = (await sup.get("/dashboard?lang=en&months=3")).text
    assert '<html lang="en">' in english
    assert page.count('aria-current="page">12</a>') == 1
    assert english.count('<tr><th scope="row">') >= 3


async def test_the_dashboard_is_for_supervisors_and_admins_only(app, client, world, as_user):
    response = await client.get("/dashboard")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/dashboard"
    for username in ("guard", "tech"):
        other = await as_user(username)
        refused = await other.get("/dashboard")
        assert refused.status_code == 403
        assert "没有权限查看" in refused.text
    await login(client, "admin")
    assert (await client.get("/dashboard")).status_code == 200


@pytest.mark.parametrize("months", ["0", "37", "abc", "-1", "1.5"])
async def test_a_range_outside_1_to_36_months_is_refused_with_a_clear_error(client, world, months):
    await login(client, "super")
    response = await client.get(f"/dashboard?months={months}")
    assert response.status_code == 400
    assert "1 到 36 的整数" in response.text  # in the page's language
    english = await client.get(f"/dashboard?months={months}&lang=en")
    assert "months must be a whole number from 1 to 36" in english.text
