"""The report API: idempotent creation, step ticks, who sees what, every error."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from server.models import Event, Report, ReportStep
from tests.conftest import CSRF, login
from tests.helpers.reports import iso, put


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
    # The version of the playbook the guard's site follows now.
    assert (
        report["playbook_version"] == app.state.playbooks.incident(report["incident_type"]).version
    )
    assert report["playbook"]["version"] == report["playbook_version"]
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
        assert "将来的时间" in response.json()["error"]["message"]
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


# --- times, ids and text that no report may carry (issue 16) ---------------------

# The extremes of Python's datetimes, which overflow on their way to UTC.
YEAR_1 = "0001-01-01T00:00:00+14:00"
YEAR_9999 = "9999-12-31T23:59:59-14:00"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": YEAR_1}, "occurred_at"),
        ({"occurred_at": "1970-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": YEAR_9999}, "occurred_at"),
        ({"client_sent_at": YEAR_9999}, "client_sent_at"),
        ({"client_sent_at": YEAR_1}, "client_sent_at"),
        ({"steps": [{"index": 0, "checked_at": YEAR_1}]}, "steps.0.checked_at"),
        ({"steps": [{"index": 0, "checked_at": YEAR_9999}]}, "steps.0.checked_at"),
    ],
)
async def test_times_out_of_any_sane_range_are_422_naming_the_field(
    client, world, body, change, field
):
    await login(client, "guard")
    rid = uuid.uuid4()
    response = await put(client, rid, {**body, **change})
    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in response.json()["error"]["fields"]]
    assert not await Report.exists(id=rid)


async def test_a_time_more_than_a_year_ago_is_422_and_a_recent_one_is_taken(client, world, body):
    from server.schemas import MAX_AGE

    await login(client, "guard")
    old = iso(datetime.now(UTC) - MAX_AGE - timedelta(days=1))
    for bad, field in (
        ({**body, "occurred_at": old}, "occurred_at"),
        ({**body, "client_sent_at": old}, "client_sent_at"),
        ({**body, "steps": [{"index": 0, "checked_at": old}]}, "steps.0.checked_at"),
    ):
        rid = uuid.uuid4()
        response = await put(client, rid, bad)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["fields"] == [{"field": field, "message": "too long ago"}]
        assert not await Report.exists(id=rid)
    recent = iso(datetime.now(UTC) - MAX_AGE + timedelta(days=1))
    assert (await put(client, uuid.uuid4(), {**body, "occurred_at": recent})).status_code == 201


@pytest.mark.parametrize(
    "checked_at",
    [YEAR_1, YEAR_9999, "1970-01-01T00:00:00Z"],
)
async def test_ticking_a_step_at_an_absurd_time_is_422(client, world, body, checked_at):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, {**body, "steps": []})
    response = await client.put(
        f"/api/reports/{rid}/steps/6", json={"checked_at": checked_at}, headers=CSRF
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "checked_at"
    assert await ReportStep.filter(report_id=rid).count() == 0


@pytest.mark.parametrize("index", [500, 501, 10**30])
async def test_ticking_a_step_far_past_the_playbook_is_422_naming_the_index(
    client, world, body, index
):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, {**body, "steps": []})
    response = await client.put(
        f"/api/reports/{rid}/steps/{index}",
        json={"checked_at": iso(datetime.now(UTC))},
        headers=CSRF,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"] == [{"field": "index", "message": "no such step"}]


async def test_the_nil_uuid_is_not_a_report_id(client, world, body):
    await login(client, "guard")
    nil = "00000000-0000-0000-0000-000000000000"
    response = await put(client, nil, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "report_id"
    assert await Report.all().count() == 0
    assert (await client.get(f"/api/reports/{nil}")).status_code == 422


@pytest.mark.parametrize(
    "change",
    [
        {"notes": "电梯\x00困人"},
        {"location": {"text": "3栋\x00"}},
        {"incident_type": "\x00"},
        {"site": "north\x00"},
        {"playbook_version": "v\x00"},
        {"notes": "\ud800"},
    ],
)
async def test_text_with_a_nul_or_a_lone_surrogate_is_422_naming_the_field(
    client, world, body, change
):
    import json

    await login(client, "guard")
    rid = uuid.uuid4()
    response = await client.put(
        f"/api/reports/{rid}",
        content=json.dumps({**body, **change}),  # escaped: a surrogate is sent as \\ud800
        headers={**CSRF, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    field = next(iter(change))
    fields = [f["field"] for f in response.json()["error"]["fields"]]
    assert fields == [f"{field}.text" if field == "location" else field]
    assert not await Report.exists(id=rid)


@pytest.mark.parametrize("param", ["type", "site", "assignee", "status", "cursor"])
async def test_a_nul_in_a_list_filter_is_422_naming_it(client, world, param):
    await login(client, "guard")
    response = await client.get("/api/reports", params={param: "north\x00"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == param


def cursor_of(data) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "data",
    [
        {"r": "2026-01-01T00:00:00+00:00", "i": 5},
        {"r": 5, "i": str(uuid.uuid4())},
        {"r": "2026-01-01T00:00:00", "i": str(uuid.uuid4())},  # no time zone
        {"r": YEAR_1, "i": str(uuid.uuid4())},
        {"r": "2026-01-01T00:00:00+00:00", "i": "00000000-0000-0000-0000-000000000000"},
        {"r": "2026-01-01T00:00:00+00:00", "i": str(uuid.uuid4()), "x": 1},
        {"r": ["a"], "i": {"b": 1}},
        ["2026-01-01T00:00:00+00:00", str(uuid.uuid4())],
        "a string",
        None,
    ],
)
async def test_a_cursor_that_decodes_to_something_else_is_400(client, world, data):
    await login(client, "guard")
    response = await client.get("/api/reports", params={"cursor": cursor_of(data)})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_cursor"


@pytest.mark.parametrize("param", ["from", "to", "since"])
async def test_list_times_out_of_range_are_422(client, world, param):
    await login(client, "guard")
    for value in (YEAR_1, YEAR_9999):
        response = await client.get("/api/reports", params={param: value})
        assert response.status_code == 422, response.text


# --- who ticks the steps (issue 16) -------------------------------------------------


async def assigned_report(client, as_user, body) -> uuid.UUID:
    """A report of the guard's, acknowledged and assigned to the technician."""
    rid = uuid.uuid4()
    assert (await put(client, rid, {**body, "steps": []})).status_code == 201
    boss = await as_user("super")
    for action, answer in (("acknowledgement", {}), ("assignment", {"assignee": "tech"})):
        response = await boss.put(f"/api/reports/{rid}/{action}", json=answer, headers=CSRF)
        assert response.status_code == 201, response.text
    return rid


@pytest.mark.parametrize("username", ["super", "admin", "tech"])
async def test_only_the_reporter_ticks_a_step(client, world, body, as_user, username):
    await login(client, "guard")
    rid = await assigned_report(client, as_user, body)
    other = await as_user(username)
    tick = {"checked_at": iso(datetime.now(UTC))}
    response = await other.put(f"/api/reports/{rid}/steps/2", json=tick, headers=CSRF)
    assert response.status_code == 403, response.text
    assert "上报人" in response.json()["error"]["message"]
    assert await ReportStep.filter(report_id=rid).count() == 0
    mine = await client.put(f"/api/reports/{rid}/steps/2", json=tick, headers=CSRF)
    assert mine.status_code == 201, mine.text


@pytest.mark.parametrize("username", ["super", "admin"])
async def test_a_resend_by_someone_else_records_no_steps_in_their_name(
    client, world, body, as_user, username
):
    await login(client, "guard")
    rid = uuid.uuid4()
    assert (await put(client, rid, {**body, "steps": body["steps"][:1]})).status_code == 201
    response = await put(await as_user(username), rid, body)
    assert response.status_code == 403, response.text
    steps = await ReportStep.filter(report_id=rid).prefetch_related("checked_by")
    assert [(s.step_index, s.checked_by.username) for s in steps] == [(0, "guard")]
    assert await Event.filter(report_id=rid, kind="step").count() == 0


async def test_no_step_is_ticked_once_the_incident_is_closed(client, world, body, as_user):
    await login(client, "guard")
    rid = uuid.uuid4()
    assert (await put(client, rid, body)).status_code == 201
    admin = await as_user("admin")
    assert (
        await admin.put(f"/api/reports/{rid}/acknowledgement", json={}, headers=CSRF)
    ).status_code == 201
    closed = await admin.put(
        f"/api/reports/{rid}/closure", json={"note": "ok", "waive": "a drill"}, headers=CSRF
    )
    assert closed.status_code == 201, closed.text
    tick = {"checked_at": iso(datetime.now(UTC))}
    response = await client.put(f"/api/reports/{rid}/steps/3", json=tick, headers=CSRF)
    assert response.status_code == 409, response.text
    assert "已关闭" in response.json()["error"]["message"]
    more = {**body, "steps": [*body["steps"], {"index": 3, **tick}]}
    assert (await put(client, rid, more)).status_code == 409
    assert await ReportStep.filter(report_id=rid).count() == 2
    # What was ticked before it closed is still answered as a resend.
    again = await client.put(f"/api/reports/{rid}/steps/0", json=body["steps"][0], headers=CSRF)
    assert again.status_code == 200, again.text
