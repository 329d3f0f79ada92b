"""The review API: 分析 answers, 改善 actions done and re-checked, and what closing needs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from server.models import CorrectiveAction, Event, Role
from tests.conftest import make_user
from tests.helpers.reports import act, fake_device, kinds, new_report, photo, pushes_to


@pytest.fixture
async def rid(app, world, as_user) -> str:
    """An acknowledged lift entrapment on site north."""
    report = await new_report(app, await as_user("guard"))
    assert (await act(await as_user("super"), report, "acknowledgement")).status_code == 201
    return report


def tomorrow(app) -> str:
    return (app.state.context.today() + timedelta(days=1)).isoformat()


async def new_action(app, client, rid: str, owner: str = "tech", **extra) -> tuple[str, dict]:
    action_id = str(uuid.uuid4())
    body = {"description": "组织电梯困人应急演练", "owner": owner, "due": tomorrow(app), "item": 0}
    response = await act(client, rid, f"actions/{action_id}", {**body, **extra})
    assert response.status_code == 201, response.text
    return action_id, response.json()


def action_in(report: dict, action_id: str) -> dict:
    return next(a for a in report["actions"] if a["id"] == action_id)


# --- 分析 ------------------------------------------------------------------------


async def test_an_analysis_answer_is_recorded_once_and_can_be_changed(app, world, as_user, rid):
    sup = await as_user("super")
    first = await act(sup, rid, "analysis/0", {"verdict": "ok"})
    assert first.status_code == 201, first.text
    assert first.json()["analysis"][0]["verdict"] == "ok"
    assert first.json()["analysis"][0]["by"]["username"] == "super"
    again = await act(sup, rid, "analysis/0", {"verdict": "ok"})
    assert again.status_code == 200
    changed = await act(sup, rid, "analysis/0", {"verdict": "gap", "note": "夜班只有一名保安在岗"})
    assert changed.status_code == 201
    assert changed.json()["analysis"] == [
        {
            **changed.json()["analysis"][0],
            "index": 0,
            "verdict": "gap",
            "note": "夜班只有一名保安在岗",
        }
    ]
    assert (await kinds(rid)).count("analysis") == 2  # both versions on the record


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("analysis/0", {"verdict": "gap"}, "note"),
        ("analysis/0", {"verdict": "gap", "note": "   "}, "note"),
        ("analysis/99", {"verdict": "ok"}, "index"),
        ("analysis/0", {"verdict": "fine"}, "verdict"),
    ],
    ids=["gap-without-note", "gap-with-blank-note", "no-such-item", "no-such-verdict"],
)
async def test_a_bad_analysis_answer_is_422_naming_the_field(
    app, world, as_user, rid, path, body, field
):
    response = await act(await as_user("super"), rid, path, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == field
    assert "analysis" not in await kinds(rid)


async def test_only_supervisors_of_the_site_answer_the_analysis(app, world, as_user, rid):
    await make_user("southsuper", Role.SUPERVISOR, world.south)
    for username in ("guard", "tech", "southsuper"):
        response = await act(await as_user(username), rid, "analysis/0", {"verdict": "ok"})
        assert response.status_code == 403, (username, response.text)
    assert (
        await act(await as_user("admin"), rid, "analysis/0", {"verdict": "na"})
    ).status_code == 201


# --- 改善 ------------------------------------------------------------------------


async def test_an_action_is_created_once_and_its_owner_told(app, world, as_user, rid):
    await fake_device("tech")
    sup, tech = await as_user("super"), await as_user("tech")
    assert (await tech.get(f"/api/reports/{rid}")).status_code == 403
    action_id, report = await new_action(app, sup, rid)
    # Its owner now sees the incident the action belongs to, and lists it.
    assert (await tech.get(f"/api/reports/{rid}")).status_code == 200
    assert [r["id"] for r in (await tech.get("/api/reports")).json()["reports"]] == [rid]
    action = action_in(report, action_id)
    assert action["owner"]["username"] == "tech" and action["status"] == "open"
    assert action["due"] == tomorrow(app) and action["item"] == 0 and not action["overdue"]
    body = {"description": "组织电梯困人应急演练", "owner": "tech", "due": tomorrow(app), "item": 0}
    assert (await act(sup, rid, f"actions/{action_id}", body)).status_code == 200
    assert [p["kind"] for p in await pushes_to("tech")] == ["action"]
    assert (await kinds(rid)).count("action") == 1


async def test_an_open_action_can_be_changed_and_a_new_owner_is_told(app, world, as_user, rid):
    await make_user("tech2", Role.TECHNICIAN, world.north)
    await fake_device("tech2")
    sup = await as_user("super")
    action_id, _ = await new_action(app, sup, rid)
    body = {"description": "更新电梯应急指引", "owner": "tech2", "due": tomorrow(app), "item": None}
    changed = await act(sup, rid, f"actions/{action_id}", body)
    assert changed.status_code == 201
    assert action_in(changed.json(), action_id)["owner"]["username"] == "tech2"
    assert [p["kind"] for p in await pushes_to("tech2")] == ["action"]
    assert "action_changed" in await kinds(rid)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"owner": "southguard"}, "owner"),
        ({"owner": "nobody"}, "owner"),
        ({"item": 99}, "item"),
        ({"due": "next week"}, "due"),
        ({"description": ""}, "description"),
    ],
    ids=["owner-of-another-site", "unknown-owner", "no-such-item", "not-a-date", "empty"],
)
async def test_a_bad_action_is_422_naming_the_field(app, world, as_user, rid, change, field):
    body = {"description": "演练", "owner": "tech", "due": tomorrow(app), "item": 0, **change}
    response = await act(await as_user("super"), rid, f"actions/{uuid.uuid4()}", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == field
    assert await CorrectiveAction.all().count() == 0


async def test_an_action_id_of_another_report_is_409(app, world, as_user, rid):
    sup = await as_user("super")
    action_id, _ = await new_action(app, sup, rid)
    other = await new_report(app, await as_user("guard"))
    await act(sup, other, "acknowledgement")
    body = {"description": "x", "owner": "tech", "due": tomorrow(app)}
    assert (await act(sup, other, f"actions/{action_id}", body)).status_code == 409


async def test_the_owner_marks_done_with_photos_of_the_report_and_no_one_else_may(
    app, world, as_user, rid
):
    sup, tech, guard = await as_user("super"), await as_user("tech"), await as_user("guard")
    action_id, _ = await new_action(app, sup, rid)
    shot = (await photo(guard, rid, "evidence")).json()["id"]
    for who in (sup, guard):
        assert (await act(who, rid, f"actions/{action_id}/done", {"note": "x"})).status_code == 403
    foreign = await act(tech, rid, f"actions/{action_id}/done", {"photos": [str(uuid.uuid4())]})
    assert foreign.status_code == 422
    assert foreign.json()["error"]["fields"][0]["field"] == "photos.0"
    body = {"note": "已组织演练，12 人参加", "photos": [shot]}
    done = await act(tech, rid, f"actions/{action_id}/done", body)
    assert done.status_code == 201, done.text
    action = action_in(done.json(), action_id)
    assert action["status"] == "done" and action["done_photos"] == [shot]
    assert (await act(tech, rid, f"actions/{action_id}/done", body)).status_code == 200
    assert (await kinds(rid)).count("action_done") == 1


async def test_a_recheck_is_never_by_the_owner_and_a_failure_sends_it_back(
    app, world, as_user, rid
):
    await fake_device("tech")
    sup, tech = await as_user("super"), await as_user("tech")
    action_id, _ = await new_action(app, sup, rid, owner="super")
    # The owner may not check their own work; nothing to check before it is done.
    await act(sup, rid, f"actions/{action_id}/done", {"note": "已完成"})
    assert (await act(sup, rid, f"actions/{action_id}/check", {"passed": True})).status_code == 403

    mine, _ = await new_action(app, sup, rid, owner="tech")
    assert (await act(sup, rid, f"actions/{mine}/check", {"passed": True})).status_code == 409
    await act(tech, rid, f"actions/{mine}/done", {"note": "已贴出告示"})
    silent = await act(sup, rid, f"actions/{mine}/check", {"passed": False})
    assert silent.status_code == 422 and silent.json()["error"]["fields"][0]["field"] == "note"

    failed = await act(
        sup, rid, f"actions/{mine}/check", {"passed": False, "note": "告示位置不醒目"}
    )
    assert failed.status_code == 201
    action = action_in(failed.json(), mine)
    assert action["status"] == "open"
    assert action["check"] == {**action["check"], "passed": False, "note": "告示位置不醒目"}
    again = await act(
        sup, rid, f"actions/{mine}/check", {"passed": False, "note": "告示位置不醒目"}
    )
    assert again.status_code == 200  # a resend of that failed check
    assert [p["kind"] for p in await pushes_to("tech")][-1] == "check_failed"

    await act(tech, rid, f"actions/{mine}/done", {"note": "已移到电梯门口"})
    passed = await act(sup, rid, f"actions/{mine}/check", {"passed": True, "note": "已复查"})
    assert action_in(passed.json(), mine)["status"] == "verified"
    assert action_in(passed.json(), mine)["check"]["passed"] is True
    assert (
        await act(sup, rid, f"actions/{mine}/check", {"passed": True, "note": "已复查"})
    ).status_code == 200


async def test_an_action_past_its_due_day_is_marked_overdue(app, world, as_user, rid, clock):
    sup = await as_user("super")
    action_id, report = await new_action(app, sup, rid)
    assert not action_in(report, action_id)["overdue"]
    clock.advance(2 * 24 * 3600)
    report = (await sup.get(f"/api/reports/{rid}")).json()
    assert action_in(report, action_id)["overdue"]


# --- closing -----------------------------------------------------------------------


async def test_closing_needs_every_analysis_item_and_every_action_passed(app, world, as_user):
    sup, tech = await as_user("super"), await as_user("tech")
    rid = await new_report(app, await as_user("guard"), incident="theft")  # 3 分析 items
    await act(sup, rid, "acknowledgement")
    action_id, _ = await new_action(app, sup, rid)
    await act(sup, rid, "analysis/1", {"verdict": "na"})
    refused = await act(sup, rid, "closure", {"note": "结案"})
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "review_incomplete"
    unanswered = [0, 2]
    assert error["missing"] == {"analysis": unanswered, "actions": [action_id]}
    assert "第 1、3 项" in error["message"] and "组织电梯困人应急演练" in error["message"]

    for index in unanswered:
        await act(sup, rid, f"analysis/{index}", {"verdict": "ok"})
    await act(tech, rid, f"actions/{action_id}/done", {"note": "已演练"})
    still = (await act(sup, rid, "closure", {"note": "结案"})).json()["error"]
    assert still["missing"] == {"analysis": [], "actions": [action_id]}  # done, not re-checked
    await act(sup, rid, f"actions/{action_id}/check", {"passed": True})
    closed = await act(sup, rid, "closure", {"note": "结案"})
    assert closed.status_code == 201 and closed.json()["status"] == "closed"


async def test_only_an_admin_may_close_with_the_review_open_and_the_reason_is_kept(
    app, world, as_user, rid
):
    sup, admin = await as_user("super"), await as_user("admin")
    waived = {"note": "住户撤诉", "waive": "住户书面撤回投诉，无需整改"}
    assert (await act(sup, rid, "closure", waived)).status_code == 403
    closed = await act(admin, rid, "closure", waived)
    assert closed.status_code == 201, closed.text
    assert closed.json()["status"] == "closed"
    event = await Event.filter(report_id=rid, kind="closed").first()
    assert event.data["waived"] == "住户书面撤回投诉，无需整改"
    assert (await act(admin, rid, "closure", waived)).status_code == 200  # a resend


async def test_nothing_is_added_to_the_review_of_a_closed_incident(app, world, as_user, rid):
    admin = await as_user("admin")
    await act(admin, rid, "closure", {"note": "x", "waive": "测试"})
    assert (await act(admin, rid, "analysis/0", {"verdict": "ok"})).status_code == 409
    body = {"description": "x", "owner": "tech", "due": tomorrow(app)}
    assert (await act(admin, rid, f"actions/{uuid.uuid4()}", body)).status_code == 409
