"""The guard's pages: who may see which, and what they show."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.conftest import CSRF, login
from tests.helpers.reports import iso, lift_id, make_report


async def test_home_shows_every_incident_as_a_tile_and_the_call_bar(app, client, world):
    await login(client, "guard")
    page = (await client.get("/")).text
    for incident in app.state.playbooks.incidents():
        assert f'href="/report/{incident.id}"' in page
    for number in ("110", "120", "119"):
        assert f'href="tel:{number}"' in page


async def test_recently_reported_types_come_first(app, client, world):
    await login(client, "guard")
    assert 'id="recent"' not in (await client.get("/")).text
    await make_report(app, client)
    page = (await client.get("/")).text
    recent = page.index('id="recent"')
    assert page.index(f'href="/report/{lift_id(app)}"') > recent


async def test_the_flow_page_needs_a_login_and_a_known_incident(app, client, world):
    response = await client.get(f"/report/{lift_id(app)}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/report/{lift_id(app)}"
    await login(client, "guard")
    assert (await client.get("/report/no-such-incident")).status_code == 404
    page = (await client.get(f"/report/{lift_id(app)}")).text
    assert 'capture="environment"' in page and 'accept="image/*"' in page


async def test_my_reports_lists_mine_and_another_site_cannot_open_it(app, client, world):
    import httpx

    await login(client, "guard")
    rid = await make_report(app, client)
    assert f'href="/reports/{rid}"' in (await client.get("/reports")).text
    detail = (await client.get(f"/reports/{rid}")).text
    assert "电梯困人事件" in detail and "新上报" in detail
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, "southguard")
        assert f"/reports/{rid}" not in (await other.get("/reports")).text
        assert (await other.get(f"/reports/{rid}")).status_code == 403
    assert (await client.get(f"/reports/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/reports/not-a-uuid")).status_code == 404


async def test_only_the_reporter_keeps_ticking_steps_until_the_report_is_closed(app, client, world):
    import httpx

    from server.models import Report, ReportStatus

    await login(client, "guard")
    rid = await make_report(app, client)
    detail = (await client.get(f"/reports/{rid}")).text
    assert 'src="/static/js/report-detail.js' in detail
    # A ticked step stays tickable: a mis-tap can be taken back (issue 17).
    assert '<input type="checkbox" class="step-box" data-index="0" checked>' in detail
    assert '<input type="checkbox" class="step-box" data-index="1">' in detail

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, "super")  # sees the report, but did not make it
        seen = (await other.get(f"/reports/{rid}")).text
        assert "电梯困人事件" in seen and "step-box" not in seen and "report-detail.js" not in seen

    await Report.filter(id=rid).update(status=ReportStatus.CLOSED)
    closed = (await client.get(f"/reports/{rid}")).text
    assert "step-box" not in closed and "未完成" in closed


# --- the follow-up: each role's home and what one incident page offers ---------


async def test_a_supervisors_home_is_the_inbox_with_unacknowledged_incidents_on_top(
    app, world, as_user
):
    from tests.helpers.reports import act, new_report

    guard, sup = await as_user("guard"), await as_user("super")
    older = await new_report(app, guard)
    await act(sup, older, "acknowledgement")
    newer_but_handled = await new_report(app, guard)
    await act(sup, newer_but_handled, "acknowledgement")
    waiting = await new_report(app, guard, severity="critical")
    page = (await sup.get("/")).text
    assert "确认收到" not in page  # acting happens on the incident's page
    order = [page.index(f'data-report="{rid}"') for rid in (waiting, newer_but_handled, older)]
    assert order == sorted(order)
    assert "1 个事件未确认" in page
    assert 'class="list-link report-row sev-edge-critical unacked"' in page
    assert 'href="/new"' in page  # a supervisor can report too


async def test_the_inbox_filters_by_status_and_severity(app, world, as_user):
    from tests.helpers.reports import act, new_report, review_done

    guard, sup = await as_user("guard"), await as_user("super")
    low = await new_report(app, guard, severity="low")
    critical = await new_report(app, guard, severity="critical")
    await act(sup, low, "acknowledgement")
    await review_done(app, sup, low)
    assert (await act(sup, low, "closure", {"note": "误报"})).status_code == 201
    assert low not in (await sup.get("/")).text  # closed: not open any more
    assert low in (await sup.get("/?status=closed")).text
    page = (await sup.get("/?status=all&severity=critical")).text
    assert critical in page and low not in page
    assert (await sup.get("/?status=nonsense")).status_code == 200  # a bad filter shows all open


async def test_a_technicians_home_is_their_jobs(app, world, as_user):
    from tests.helpers.reports import act, new_report

    guard, sup, tech = await as_user("guard"), await as_user("super"), await as_user("tech")
    theirs, other = await new_report(app, guard), await new_report(app, guard)
    await act(sup, theirs, "acknowledgement")
    await act(sup, theirs, "assignment", {"assignee": "tech"})
    page = (await tech.get("/")).text
    assert "我的任务" in page and theirs in page and other not in page


async def test_the_incident_page_offers_each_role_its_own_actions(app, world, as_user):
    from tests.helpers.reports import act, new_report

    guard, sup, tech = await as_user("guard"), await as_user("super"), await as_user("tech")
    rid = await new_report(app, guard)
    page = (await sup.get(f"/reports/{rid}")).text
    assert 'data-action="acknowledgement"' in page
    assert 'data-action="assignment"' not in page  # acknowledge first
    await act(sup, rid, "acknowledgement")
    page = (await sup.get(f"/reports/{rid}")).text
    assert 'data-action="assignment"' in page and '<option value="tech"' in page
    assert 'data-action="closure"' in page and 'data-action="reply"' in page
    guard_page = (await guard.get(f"/reports/{rid}")).text
    assert "data-action=" not in guard_page
    assert "主管：Super" in guard_page  # who is handling it
    await act(sup, rid, "assignment", {"assignee": "tech"})
    tech_page = (await tech.get(f"/reports/{rid}")).text
    assert "data-action=" not in tech_page
    assert 'id="job"' in tech_page or "_job" in tech_page or "维修" in tech_page


async def test_the_published_reply_shows_for_everyone_with_a_copy_button(app, world, as_user):
    from tests.helpers.reports import act, new_report

    guard, sup = await as_user("guard"), await as_user("super")
    rid = await new_report(app, guard)
    await act(sup, rid, "acknowledgement")
    await act(sup, rid, "reply", {"text": "维保人员<b>十分钟</b>内到达。"})
    page = (await guard.get(f"/reports/{rid}")).text
    assert "维保人员&lt;b&gt;十分钟&lt;/b&gt;内到达。" in page  # escaped, never markup
    assert page.count('class="btn copy-reply"') >= 2  # the reply section and the reply step


async def test_the_timeline_names_the_step_and_each_follow_up(app, world, as_user):
    from tests.helpers.reports import act, new_report

    guard, sup = await as_user("guard"), await as_user("super")
    rid = await new_report(app, guard)
    step = app.state.playbooks.incident(lift_id(app)).handling[1].text.zh
    await guard.put(
        f"/api/reports/{rid}/steps/1", json={"checked_at": iso(datetime.now(UTC))}, headers=CSRF
    )
    await act(sup, rid, "acknowledgement")
    await act(sup, rid, "assignment", {"assignee": "tech"})
    page = (await sup.get(f"/reports/{rid}")).text
    timeline = page[page.index('id="timeline"') :]
    assert f"完成步骤：{step}" in timeline
    assert "确认收到" in timeline and "派单给 Tech" in timeline


async def test_another_sites_incident_page_is_refused(app, world, as_user):
    from server.models import Role
    from tests.conftest import make_user
    from tests.helpers.reports import new_report

    await make_user("southsuper", Role.SUPERVISOR, world.south)
    rid = await new_report(app, await as_user("guard"))
    response = await (await as_user("southsuper")).get(f"/reports/{rid}")
    assert response.status_code == 403
    assert rid not in (await (await as_user("southsuper")).get("/")).text


# --- the review on the pages ---------------------------------------------------


async def test_the_incident_page_offers_the_analysis_and_actions_to_a_supervisor(
    app, world, as_user
):
    from tests.helpers.reports import act, new_report

    guard, sup = await as_user("guard"), await as_user("super")
    rid = await new_report(app, guard, incident="theft")
    await act(sup, rid, "acknowledgement")
    page = (await sup.get(f"/reports/{rid}")).text
    incident = app.state.playbooks.incident("theft")
    for index, item in enumerate(incident.analysis):
        assert f'data-action="analysis/{index}"' in page
        assert item.text.zh in page
    for index, item in enumerate(incident.improvement):  # one tap from being an action
        assert f'data-item="{index}" data-text="{item.text.zh}"' in page
    assert 'data-action="actions/{new}"' in page
    assert "关闭前还需：3 项分析未填" in page
    guard_page = (await guard.get(f"/reports/{rid}")).text
    assert 'data-action="analysis/' not in guard_page and "未分析" in guard_page


async def test_my_actions_lists_overdue_first_and_the_homes_remind_of_them(
    app, world, as_user, clock
):
    from datetime import timedelta

    from tests.helpers.reports import act, new_report

    guard, sup, tech = await as_user("guard"), await as_user("super"), await as_user("tech")
    rid = await new_report(app, guard)
    await act(sup, rid, "acknowledgement")
    today = app.state.context.today()
    for description, days in [("下周检查门禁", 7), ("补装监控", -2)]:
        body = {
            "description": description,
            "owner": "tech",
            "due": (today + timedelta(days=days)).isoformat(),
        }
        assert (await act(sup, rid, f"actions/{uuid.uuid4()}", body)).status_code == 201
    page = (await tech.get("/actions")).text
    assert page.index("补装监控") < page.index("下周检查门禁")
    assert "已逾期 2 天" in page
    assert "你有 2 项整改待完成" in (await tech.get("/")).text
    assert "你有" not in (await guard.get("/")).text
    incident_page = (await tech.get(f"/reports/{rid}")).text
    assert incident_page.count("已逾期") == 1
    assert "1 项整改逾期" in (await sup.get("/")).text  # the inbox marks it too
