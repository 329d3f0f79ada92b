"""The guard's pages: who may see which, and what they show."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.conftest import CSRF, login
from tests.routes.test_reports import iso, lift_id


async def make_report(app, client) -> str:
    rid = str(uuid.uuid4())
    body = {
        "site": "north",
        "incident_type": lift_id(app),
        "occurred_at": iso(datetime.now(UTC)),
        "steps": [{"index": 0, "checked_at": iso(datetime.now(UTC))}],
    }
    assert (await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)).status_code == 201
    return rid


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
    assert '<input type="checkbox" class="step-box" data-index="0" checked disabled>' in detail
    assert '<input type="checkbox" class="step-box" data-index="1">' in detail

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, "super")  # sees the report, but did not make it
        seen = (await other.get(f"/reports/{rid}")).text
        assert "电梯困人事件" in seen and "step-box" not in seen and "report-detail.js" not in seen

    await Report.filter(id=rid).update(status=ReportStatus.CLOSED)
    closed = (await client.get(f"/reports/{rid}")).text
    assert "step-box" not in closed and "未完成" in closed
