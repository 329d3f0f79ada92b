"""The report API: idempotent creation, step ticks, who sees what, every error."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from server.models import Event, Report, ReportStep
from tests.conftest import CSRF, login


def lift_id(app) -> str:
    """The lift-entrapment playbook, found by its source title, never by a guessed id."""
    for incident in app.state.playbooks.incidents():
        if incident.title.zh == "电梯困人事件":
            return incident.id
    raise AssertionError("no 电梯困人事件 playbook")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def body(app):
    start = datetime.now(UTC) - timedelta(minutes=5)
    return {
        "site": "north",
        "incident_type": lift_id(app),
        "severity": "high",
        "occurred_at": iso(start),
        "client_sent_at": iso(start + timedelta(minutes=4)),
        "location": {"text": "3栋2单元 电梯", "lat": 22.54, "lng": 114.05, "accuracy_m": 12.5},
        "notes": "两人被困，已安抚",
        "steps": [
            {"index": 0, "checked_at": iso(start + timedelta(seconds=10))},
            {"index": 1, "checked_at": iso(start + timedelta(seconds=40))},
        ],
    }


async def put(client, report_id, body, headers=CSRF):
    return await client.put(f"/api/reports/{report_id}", json=body, headers=headers)


async def test_a_guard_creates_a_report_with_steps_in_order_and_timed(app, client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    response = await put(client, rid, body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/api/reports/{rid}"
    report = response.json()
    assert report["id"] == str(rid)
    assert report["status"] == "new"
    assert report["site"] == {"code": "north", "name": "北苑"}
    assert report["reporter"]["username"] == "guard"
    assert report["playbook_version"] == app.state.playbooks.version
    assert report["location"]["accuracy_m"] == 12.5
    assert [s["index"] for s in report["steps"]] == [0, 1]
    assert [s["checked_at"] for s in report["steps"]] == [s["checked_at"] for s in body["steps"]]
    assert report["client_sent_at"] == body["client_sent_at"]
    assert report["received_at"] > report["occurred_at"]
    assert [e["kind"] for e in report["events"]] == ["created"]


async def test_the_same_put_twice_gives_one_report_and_changes_nothing(client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    first = await put(client, rid, body)
    second = await put(client, rid, body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert await Report.filter(id=rid).count() == 1
    assert await ReportStep.filter(report_id=rid).count() == 2
    assert await Event.filter(report_id=rid).count() == 1


async def test_a_resend_with_another_send_time_is_not_a_conflict(client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    resend = {**body, "client_sent_at": iso(datetime.now(UTC))}
    assert (await put(client, rid, resend)).status_code == 200


async def test_a_resend_with_more_steps_ticked_adds_only_the_new_steps(client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    more = {**body, "steps": [*body["steps"], {"index": 2, "checked_at": iso(datetime.now(UTC))}]}
    response = await put(client, rid, more)
    assert response.status_code == 200
    assert [s["index"] for s in response.json()["steps"]] == [0, 1, 2]


async def test_the_same_id_with_different_content_is_409_and_stores_nothing(client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    response = await put(client, rid, {**body, "notes": "另一份报告"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    report = await Report.get(id=rid)
    assert report.notes == body["notes"]


async def test_a_step_resent_at_another_time_is_409_and_stores_nothing(client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    moved = {
        **body,
        "steps": [
            body["steps"][0],
            {"index": 1, "checked_at": iso(datetime.now(UTC))},
            {"index": 2, "checked_at": iso(datetime.now(UTC))},
        ],
    }
    assert (await put(client, rid, moved)).status_code == 409
    assert await ReportStep.filter(report_id=rid).count() == 2


async def test_ticking_a_step_later_is_idempotent(client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, {**body, "steps": []})
    tick = {"checked_at": iso(datetime.now(UTC))}
    first = await client.put(f"/api/reports/{rid}/steps/3", json=tick, headers=CSRF)
    again = await client.put(f"/api/reports/{rid}/steps/3", json=tick, headers=CSRF)
    other = await client.put(
        f"/api/reports/{rid}/steps/3",
        json={"checked_at": iso(datetime.now(UTC) - timedelta(minutes=1))},
        headers=CSRF,
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert [s["index"] for s in again.json()["steps"]] == [3]
    assert [e["kind"] for e in again.json()["events"]] == ["created", "step"]


async def test_ticking_a_step_that_does_not_exist_is_422(app, client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    count = len(app.state.playbooks.incident(body["incident_type"]).handling)
    response = await client.put(
        f"/api/reports/{rid}/steps/{count}",
        json={"checked_at": iso(datetime.now(UTC))},
        headers=CSRF,
    )
    assert response.status_code == 422


async def test_ticking_a_step_of_an_unknown_report_is_404(client, world):
    await login(client, "guard")
    response = await client.put(
        f"/api/reports/{uuid.uuid4()}/steps/0",
        json={"checked_at": iso(datetime.now(UTC))},
        headers=CSRF,
    )
    assert response.status_code == 404


async def test_another_sites_guard_cannot_see_or_tick_a_report(app, client, world, body):
    import httpx

    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, "southguard")
        assert (await other.get(f"/api/reports/{rid}")).status_code == 403
        tick = await other.put(
            f"/api/reports/{rid}/steps/2", json={"checked_at": iso(datetime.now(UTC))}, headers=CSRF
        )
        assert tick.status_code == 403
        # Reusing the id for a report of their own site is refused too.
        response = await put(other, rid, {**body, "site": "south"})
        assert response.status_code == 403
        assert (await other.get("/api/reports")).json()["reports"] == []


async def test_reporting_for_a_site_the_user_does_not_belong_to_is_403(client, world, body):
    await login(client, "southguard")
    rid = uuid.uuid4()
    response = await put(client, rid, body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_site"
    assert not await Report.exists(id=rid)


async def test_a_supervisor_sees_their_sites_reports_and_a_guard_only_their_own(
    app, client, world, body
):
    import httpx

    from server.models import Role
    from tests.conftest import make_user

    await make_user("guard2", Role.GUARD, world.north)
    await login(client, "guard")
    mine = uuid.uuid4()
    await put(client, mine, body)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c2:
        await login(c2, "guard2")
        theirs = uuid.uuid4()
        assert (await put(c2, theirs, body)).status_code == 201
        assert [r["id"] for r in (await c2.get("/api/reports")).json()["reports"]] == [str(theirs)]
        assert (await c2.get(f"/api/reports/{mine}")).status_code == 403
    await login(client, "super")
    listed = {r["id"] for r in (await client.get("/api/reports")).json()["reports"]}
    assert listed == {str(mine), str(theirs)}
    assert (await client.get(f"/api/reports/{mine}")).status_code == 200


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"incident_type": "no-such-incident"}, "unknown_incident_type"),
        ({"site": "atlantis"}, "unknown_site"),
        ({"occurred_at": None}, "invalid"),
        ({"occurred_at": "yesterday"}, "invalid"),
        ({"occurred_at": "2026-01-01T10:00:00"}, "invalid"),  # no time zone
        ({"severity": "apocalyptic"}, "invalid"),
        ({"notes": "字" * 10_001}, "invalid"),
        ({"location": {"text": "x", "lat": 91, "lng": 0}}, "invalid"),
        ({"location": {"text": "x", "lat": 22.5}}, "invalid"),
        (
            {
                "steps": [
                    {"index": 0, "checked_at": "2026-11-25T00:00:00Z"},
                    {"index": 0, "checked_at": "2026-11-25T00:00:01Z"},
                ]
            },
            "invalid",
        ),
        ({"steps": [{"index": 99, "checked_at": "2026-11-25T00:00:00Z"}]}, "invalid"),
        ({"steps": [{"index": -1, "checked_at": "2026-11-25T00:00:00Z"}]}, "invalid"),
        ({"steps": "all of them"}, "invalid"),
    ],
)
async def test_invalid_reports_are_422_and_store_nothing(client, world, body, change, code):
    await login(client, "guard")
    bad = {**body, **change}
    if change.get("occurred_at", "") is None:
        del bad["occurred_at"]
    rid = uuid.uuid4()
    response = await put(client, rid, bad)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert not await Report.exists(id=rid)


async def test_times_far_in_the_future_are_422(client, world, body):
    await login(client, "guard")
    future = iso(datetime.now(UTC) + timedelta(hours=2))
    for bad in (
        {**body, "occurred_at": future},
        {**body, "steps": [{"index": 0, "checked_at": future}]},
    ):
        rid = uuid.uuid4()
        response = await put(client, rid, bad)
        assert response.status_code == 422
        assert "future" in response.json()["error"]["message"]
        assert not await Report.exists(id=rid)


async def test_missing_fields_are_422_naming_them(client, world):
    await login(client, "guard")
    response = await put(client, uuid.uuid4(), {"notes": "just notes"})
    assert response.status_code == 422
    fields = {f["field"] for f in response.json()["error"]["fields"]}
    assert fields == {"site", "incident_type", "occurred_at"}


async def test_a_report_id_that_is_not_a_uuid_is_422(client, world, body):
    await login(client, "guard")
    assert (await put(client, "not-a-uuid", body)).status_code == 422
    assert (await client.get("/api/reports/not-a-uuid")).status_code == 422


async def test_logged_out_is_401_for_every_report_call(client, world, body):
    rid = uuid.uuid4()
    assert (await put(client, rid, body)).status_code == 401
    assert (await client.get("/api/reports")).status_code == 401
    assert (await client.get(f"/api/reports/{rid}")).status_code == 401
    assert not await Report.exists(id=rid)


async def test_creating_without_the_csrf_header_is_403(client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    assert (await put(client, rid, body, headers={})).status_code == 403
    assert not await Report.exists(id=rid)


async def test_an_unknown_report_is_404(client, world):
    await login(client, "guard")
    assert (await client.get(f"/api/reports/{uuid.uuid4()}")).status_code == 404


async def test_the_list_pages_with_a_cursor_newest_first(client, world, body):
    await login(client, "guard")
    ids = []
    for _ in range(5):
        rid = uuid.uuid4()
        ids.append(str(rid))
        assert (await put(client, rid, body)).status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/reports", params=params)).json()
        seen += [r["id"] for r in page["reports"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))


async def test_the_list_filters_by_status_type_site_and_since(app, client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    other_type = next(
        i.id for i in app.state.playbooks.incidents() if i.id != body["incident_type"]
    )
    other = uuid.uuid4()
    await put(client, other, {**body, "incident_type": other_type, "steps": []})

    async def ids(**params):
        response = await client.get("/api/reports", params=params)
        assert response.status_code == 200, response.text
        return {r["id"] for r in response.json()["reports"]}

    assert await ids(type=body["incident_type"]) == {str(rid)}
    assert await ids(status="new") == {str(rid), str(other)}
    assert await ids(status="closed") == set()
    assert await ids(site="north") == {str(rid), str(other)}
    assert await ids(since=iso(datetime.now(UTC) + timedelta(minutes=1))) == set()


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"status": "lost"}, 422),
        ({"since": "last week"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 1000}, 422),
        ({"cursor": "!!!"}, 400),
        ({"site": "south"}, 403),
        ({"site": "atlantis"}, 422),
    ],
)
async def test_bad_list_filters_are_4xx(client, world, params, status):
    await login(client, "guard")
    response = await client.get("/api/reports", params=params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
