"""The follow-up API: acknowledge, assign, reply, repair, close, reopen; the
status machine, who may do what, resends, and another site kept out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from server.models import Report, Role
from tests.conftest import CSRF, make_user
from tests.helpers.reports import (
    act,
    fake_device,
    iso,
    kinds,
    lift_id,
    new_report,
    photo,
    pushes_to,
    review_done,
)


@pytest.fixture
async def rid(app, world, as_user) -> str:
    return await new_report(app, await as_user("guard"))


async def test_an_incident_goes_from_new_to_closed_with_one_event_per_step(
    app, world, as_user, rid
):
    sup, tech = await as_user("super"), await as_user("tech")

    acked = await act(sup, rid, "acknowledgement")
    assert acked.status_code == 201, acked.text
    report = acked.json()
    assert report["status"] == "acknowledged"
    assert report["events"][-1]["kind"] == "acknowledged"
    assert report["events"][-1]["actor"]["username"] == "super"

    assigned = await act(sup, rid, "assignment", {"assignee": "tech"})
    assert assigned.status_code == 201
    assert assigned.json()["status"] == "assigned"
    assert assigned.json()["assignee"]["username"] == "tech"

    assert (await photo(tech, rid, "repair_before")).status_code == 201
    assert (await photo(tech, rid, "repair_after", (10, 200, 10))).status_code == 201
    repaired = await act(tech, rid, "repair", {"note": "更换了门机板"})
    assert repaired.status_code == 201, repaired.text
    assert repaired.json()["status"] == "repaired"

    await review_done(app, sup, rid)
    closed = await act(sup, rid, "closure", {"note": "已复查，运行正常"})
    assert closed.status_code == 201
    assert closed.json()["status"] == "closed"
    assert await kinds(rid) == [
        "created",
        "acknowledged",
        "assigned",
        "photo",
        "photo",
        "repaired",
        *["analysis"] * len(app.state.playbooks.incident(lift_id(app)).analysis),
        "closed",
    ]
    found = await Report.get(id=rid)
    assert found.closing_note == "已复查，运行正常" and found.repair_note == "更换了门机板"
    assert found.acknowledged_at and found.closed_at and found.repaired_at


async def test_every_action_sent_twice_changes_nothing_the_second_time(app, world, as_user, rid):
    sup, tech = await as_user("super"), await as_user("tech")
    steps = [
        (sup, "acknowledgement", {}),
        (sup, "assignment", {"assignee": "tech"}),
        (sup, "reply", {"text": "电梯维保人员已在赶来的路上，请耐心等候。"}),
    ]
    for who, action, body in steps:
        assert (await act(who, rid, action, body)).status_code == 201
        before = await kinds(rid)
        again = await act(who, rid, action, body)
        assert again.status_code == 200, (action, again.text)
        assert await kinds(rid) == before, action
    await photo(tech, rid, "repair_after")
    await review_done(app, sup, rid)
    for who, action, body in [(tech, "repair", {"note": "ok"}), (sup, "closure", {"note": "done"})]:
        assert (await act(who, rid, action, body)).status_code == 201
        before = await kinds(rid)
        assert (await act(who, rid, action, body)).status_code == 200
        assert await kinds(rid) == before
    reopened = await act(sup, rid, "closure", {"reason": "住户反映仍有异响"}, method="DELETE")
    assert reopened.status_code == 201
    before = await kinds(rid)
    again = await act(sup, rid, "closure", {"reason": "住户反映仍有异响"}, method="DELETE")
    assert again.status_code == 200
    assert await kinds(rid) == before


async def test_an_acknowledgement_may_come_with_no_body_at_all(world, as_user, rid):
    sup = await as_user("super")
    response = await sup.put(f"/api/reports/{rid}/acknowledgement", headers=CSRF)
    assert response.status_code == 201, response.text


async def test_two_supervisors_acknowledging_at_once_make_one_event(app, world, as_user, rid):
    await make_user("super2", Role.SUPERVISOR, world.north)
    first, second = await as_user("super"), await as_user("super2")
    answers = await asyncio.gather(
        act(first, rid, "acknowledgement"), act(second, rid, "acknowledgement")
    )
    assert sorted(a.status_code for a in answers) == [200, 201]
    assert (await kinds(rid)).count("acknowledged") == 1


@pytest.mark.parametrize(
    ("setup", "action", "body", "status_named"),
    [
        ([], "assignment", {"assignee": "tech"}, "new"),
        ([], "closure", {"note": ""}, "new"),
        (
            [("acknowledgement", {}), ("assignment", {"assignee": "tech"})],
            "closure",
            {},
            "assigned",
        ),
        ([("acknowledgement", {})], "closure", {"reason": "x"}, "acknowledged"),
    ],
    ids=["assign-before-ack", "close-new", "close-assigned", "reopen-open"],
)
async def test_a_step_the_status_machine_does_not_allow_is_409_naming_the_status(
    world, as_user, rid, setup, action, body, status_named
):
    sup = await as_user("super")
    for done, done_body in setup:
        assert (await act(sup, rid, done, done_body)).status_code == 201
    method = "DELETE" if "reason" in body else "PUT"
    before = await kinds(rid)
    response = await act(sup, rid, action, body, method=method)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "wrong_status"
    assert error["current"] == status_named
    # The message names it in the default language, zh-CN.
    named = {"new": "新上报", "acknowledged": "已确认", "assigned": "已派单"}[status_named]
    assert named in error["message"]
    assert await kinds(rid) == before


async def test_repaired_needs_a_photo_of_the_result_first(world, as_user, rid):
    sup, tech = await as_user("super"), await as_user("tech")
    await act(sup, rid, "acknowledgement")
    await act(sup, rid, "assignment", {"assignee": "tech"})
    await photo(tech, rid, "repair_before")
    response = await act(tech, rid, "repair", {"note": "done"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "photo_needed"
    assert "维修后的照片" in response.json()["error"]["message"]
    assert (await Report.get(id=rid)).status == "assigned"


@pytest.mark.parametrize("action", ["acknowledgement", "assignment", "reply", "closure"])
async def test_a_guard_or_a_technician_cannot_supervise(world, as_user, rid, action):
    body = {"acknowledgement": {}, "assignment": {"assignee": "tech"}, "reply": {"text": "x"}}
    for username in ("guard", "tech"):
        response = await act(await as_user(username), rid, action, body.get(action, {}))
        assert response.status_code == 403, (username, response.text)
    assert await kinds(rid) == ["created"]


async def test_another_sites_supervisor_is_kept_out(world, as_user, rid):
    await make_user("southsuper", Role.SUPERVISOR, world.south)
    other = await as_user("southsuper")
    for action, body in [("acknowledgement", {}), ("reply", {"text": "x"})]:
        response = await act(other, rid, action, body)
        assert response.status_code == 403, response.text
    assert (await other.get(f"/api/reports/{rid}")).status_code == 403


async def test_only_the_assigned_technician_marks_it_repaired(app, world, as_user, rid):
    await make_user("tech2", Role.TECHNICIAN, world.north)
    sup, tech, tech2 = await as_user("super"), await as_user("tech"), await as_user("tech2")
    await act(sup, rid, "acknowledgement")
    await act(sup, rid, "assignment", {"assignee": "tech"})
    await photo(tech, rid, "repair_after")
    # The other technician does not even see it; the supervisor may not tick it for them.
    assert (await act(tech2, rid, "repair", {"note": "x"})).status_code == 403
    assert (await act(sup, rid, "repair", {"note": "x"})).status_code == 403
    assert (await photo(tech2, rid, "repair_after")).status_code == 403


@pytest.mark.parametrize(
    "assignee",
    ["guard", "super", "nobody", "southtech"],
    ids=["a-guard", "a-supervisor", "unknown", "another-sites-technician"],
)
async def test_the_assignee_must_be_a_technician_of_the_site(world, as_user, rid, assignee):
    await make_user("southtech", Role.TECHNICIAN, world.south)
    sup = await as_user("super")
    await act(sup, rid, "acknowledgement")
    response = await act(sup, rid, "assignment", {"assignee": assignee})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "assignee"
    assert (await Report.get(id=rid)).assignee_id is None


async def test_reassigning_is_recorded_and_tells_the_new_technician(world, as_user, rid):
    await make_user("tech2", Role.TECHNICIAN, world.north)
    await fake_device("tech")
    await fake_device("tech2")
    sup = await as_user("super")
    await act(sup, rid, "acknowledgement")
    await act(sup, rid, "assignment", {"assignee": "tech"})
    response = await act(sup, rid, "assignment", {"assignee": "tech2"})
    assert response.status_code == 201
    assert response.json()["assignee"]["username"] == "tech2"
    assigned = [e for e in response.json()["events"] if e["kind"] == "assigned"]
    assert [e["data"]["assignee"] for e in assigned] == ["tech", "tech2"]
    assert assigned[1]["data"]["previous"] == "tech"
    assert [p["kind"] for p in await pushes_to("tech")] == ["assigned"]
    assert [p["kind"] for p in await pushes_to("tech2")] == ["assigned"]
    # The first technician no longer sees the job.
    assert (await (await as_user("tech")).get(f"/api/reports/{rid}")).status_code == 403


async def test_the_published_reply_replaces_the_last_tells_the_guard_and_keeps_each_version(
    world, as_user, rid
):
    await fake_device("guard")
    sup, guard = await as_user("super"), await as_user("guard")
    first, second = "维保人员十分钟内到达。", "维保人员已到达，正在处理。"
    await act(sup, rid, "reply", {"text": first})
    response = await act(sup, rid, "reply", {"text": second})
    assert response.status_code == 201
    seen = (await guard.get(f"/api/reports/{rid}")).json()
    replies = [e["data"]["text"] for e in seen["events"] if e["kind"] == "reply"]
    assert replies == [first, second]
    assert (await Report.get(id=rid)).reply_text == second
    assert [p["kind"] for p in await pushes_to("guard")] == ["reply", "reply"]


async def test_repaired_tells_the_sites_supervisors(world, as_user, rid):
    await fake_device("super")
    sup, tech = await as_user("super"), await as_user("tech")
    await act(sup, rid, "acknowledgement")
    await act(sup, rid, "assignment", {"assignee": "tech"})
    await photo(tech, rid, "repair_after")
    await act(tech, rid, "repair", {"note": "ok"})
    assert [p["kind"] for p in await pushes_to("super")] == ["repaired"]


async def test_a_closed_incident_takes_no_new_steps_or_photos_until_reopened(
    app, world, as_user, rid
):
    sup, guard = await as_user("super"), await as_user("guard")
    await act(sup, rid, "acknowledgement")
    await review_done(app, sup, rid)
    await act(sup, rid, "closure", {"note": "住户误报"})
    tick = await guard.put(
        f"/api/reports/{rid}/steps/2", json={"checked_at": iso(datetime.now(UTC))}, headers=CSRF
    )
    assert tick.status_code == 409
    assert "已关闭" in tick.json()["error"]["message"]
    # A tick already recorded, sent again, is still the same tick.
    resend = await guard.put(
        f"/api/reports/{rid}/steps/0",
        json={
            "checked_at": (await guard.get(f"/api/reports/{rid}")).json()["steps"][0]["checked_at"]
        },
        headers=CSRF,
    )
    assert resend.status_code == 200
    late = await photo(guard, rid, "evidence")
    assert late.status_code == 409 and late.json()["error"]["code"] == "closed"
    assert (await act(sup, rid, "reply", {"text": "x"})).status_code == 409

    reopened = await act(sup, rid, "closure", {"reason": "住户再次报告"}, method="DELETE")
    assert reopened.json()["status"] == "acknowledged"  # where it was closed from
    assert reopened.json()["events"][-1]["data"] == {"reason": "住户再次报告", "to": "acknowledged"}
    assert (await photo(guard, rid, "evidence")).status_code == 201


async def test_a_technician_sees_only_their_jobs_and_lists_them_with_assignee_me(
    app, world, as_user
):
    guard, sup, tech = await as_user("guard"), await as_user("super"), await as_user("tech")
    mine, other = await new_report(app, guard), await new_report(app, guard)
    await act(sup, mine, "acknowledgement")
    await act(sup, mine, "assignment", {"assignee": "tech"})
    listed = (await tech.get("/api/reports")).json()["reports"]
    assert [r["id"] for r in listed] == [mine]
    assert (await tech.get(f"/api/reports/{other}")).status_code == 403
    jobs = (await sup.get("/api/reports", params={"assignee": "tech"})).json()["reports"]
    assert [r["id"] for r in jobs] == [mine]
    assert [r["id"] for r in (await tech.get("/api/reports?assignee=me")).json()["reports"]] == [
        mine
    ]


async def test_the_list_filters_by_status_severity_and_time(app, world, as_user, clock):
    guard, sup = await as_user("guard"), await as_user("super")
    critical = await new_report(app, guard, severity="critical")
    low = await new_report(app, guard, severity="low")
    await act(sup, low, "acknowledgement")

    async def ids(**params) -> list[str]:
        response = await sup.get("/api/reports", params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["reports"]]

    assert await ids(severity="critical") == [critical]
    assert await ids(status="new") == [critical]
    assert await ids(status="acknowledged", severity="low") == [low]
    now = datetime.now(UTC)
    assert set(await ids(**{"from": iso(now - timedelta(minutes=5))})) == {critical, low}
    assert await ids(**{"from": iso(now + timedelta(minutes=5))}) == []
    assert await ids(to=iso(now - timedelta(minutes=5))) == []
    bad = await sup.get("/api/reports", params={"severity": "apocalyptic"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "severity"
