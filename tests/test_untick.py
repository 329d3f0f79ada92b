"""A step ticked by mistake is unticked: recorded in the timeline, the tick
kept as evidence, by the reporter only and only until the incident is closed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from server.models import Event, Report, ReportStatus, ReportStep
from tests.conftest import CSRF, login
from tests.helpers.reports import iso, put


def ago(seconds: float) -> str:
    return iso(datetime.now(UTC) - timedelta(seconds=seconds))


async def untick(client, rid, index, at):
    return await client.delete(f"/api/reports/{rid}/steps/{index}?at={quote(at)}", headers=CSRF)


async def tick(client, rid, index, at):
    return await client.put(
        f"/api/reports/{rid}/steps/{index}", json={"checked_at": at}, headers=CSRF
    )


@pytest.fixture
async def sent(client, world, body):
    """A report sent by the guard with steps 0 and 1 ticked (see ``body``)."""
    await login(client, "guard")
    rid = uuid.uuid4()
    assert (await put(client, rid, body)).status_code == 201
    return rid


def done(report: dict) -> list[int]:
    return [s["index"] for s in report["steps"]]


async def test_an_untick_takes_the_step_back_and_keeps_the_tick(client, sent):
    at = ago(1)
    response = await untick(client, sent, 1, at)
    assert response.status_code == 200, response.text
    assert done(response.json()) == [0]
    row = await ReportStep.get(report_id=sent, step_index=1)
    assert row.checked_at is not None and row.checked_by_id is not None  # the evidence
    assert iso(row.unchecked_at) == at and row.unchecked_by_id == row.checked_by_id
    assert done((await client.get(f"/api/reports/{sent}")).json()) == [0]


async def test_the_untick_is_in_the_timeline_with_the_phones_time(client, sent):
    at = ago(1)
    await untick(client, sent, 1, at)
    events = (await client.get(f"/api/reports/{sent}")).json()["events"]
    unticked = [e for e in events if e["kind"] == "step_unchecked"]
    assert len(unticked) == 1
    assert unticked[0]["data"]["index"] == 1 and unticked[0]["data"]["unchecked_at"] == at
    assert unticked[0]["data"]["checked_at"]  # which tick it took back
    assert unticked[0]["actor"]["username"] == "guard"


async def test_unticking_again_changes_nothing(client, sent):
    at = ago(2)
    first = await untick(client, sent, 1, at)
    again = await untick(client, sent, 1, at)
    later = await untick(client, sent, 1, ago(1))
    assert first.status_code == again.status_code == later.status_code == 200
    assert await Event.filter(report_id=sent, kind="step_unchecked").count() == 1
    row = await ReportStep.get(report_id=sent, step_index=1)
    assert iso(row.unchecked_at) == at


async def test_unticking_a_step_never_ticked_changes_nothing(client, sent):
    response = await untick(client, sent, 4, ago(1))
    assert response.status_code == 200
    assert not await ReportStep.exists(report_id=sent, step_index=4)
    assert await Event.filter(report_id=sent, kind="step_unchecked").count() == 0


async def test_a_step_ticked_again_is_done_again_and_recorded(client, sent):
    await untick(client, sent, 1, ago(3))
    again_at = ago(2)
    response = await tick(client, sent, 1, again_at)
    assert response.status_code == 201, response.text
    assert done(response.json()) == [0, 1]
    assert [s["checked_at"] for s in response.json()["steps"] if s["index"] == 1] == [again_at]
    kinds = [e["kind"] for e in response.json()["events"]]
    assert kinds[-2:] == ["step_unchecked", "step"]
    # The re-tick sent again is the same tick.
    assert (await tick(client, sent, 1, again_at)).status_code == 200
    assert await Event.filter(report_id=sent, kind="step").count() == 1


async def test_the_first_tick_sent_again_after_its_untick_does_not_tick_it_again(
    client,
    sent,
    body,
):
    first = body["steps"][1]["checked_at"]
    await untick(client, sent, 1, ago(1))
    response = await tick(client, sent, 1, first)
    assert response.status_code == 200
    assert done(response.json()) == [0]
    # Nor does the whole report sent again.
    assert (await put(client, sent, body)).status_code == 200
    assert done((await client.get(f"/api/reports/{sent}")).json()) == [0]


async def test_an_untick_from_before_a_retick_leaves_the_retick(client, sent):
    first_untick = ago(5)
    await untick(client, sent, 1, first_untick)
    await tick(client, sent, 1, ago(3))
    response = await untick(client, sent, 1, first_untick)  # a late resend
    assert response.status_code == 200
    assert done(response.json()) == [0, 1]


async def test_a_step_ticked_unticked_and_ticked_again_can_be_unticked_again(client, sent):
    await untick(client, sent, 1, ago(5))
    await tick(client, sent, 1, ago(4))
    response = await untick(client, sent, 1, ago(3))
    assert done(response.json()) == [0]
    assert await Event.filter(report_id=sent, kind="step_unchecked").count() == 2


@pytest.mark.parametrize("username", ["super", "admin"])
async def test_only_the_reporter_unticks(client, sent, as_user, username):
    other = await as_user(username)
    response = await untick(other, sent, 1, ago(1))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    assert response.json()["error"]["message"] == "只有上报人可以勾选处理步骤。"
    assert (await ReportStep.get(report_id=sent, step_index=1)).unchecked_at is None


async def test_a_guard_of_another_site_cannot_see_it_to_untick(sent, as_user):
    response = await untick(await as_user("southguard"), sent, 1, ago(1))
    assert response.status_code == 403
    assert (await ReportStep.get(report_id=sent, step_index=1)).unchecked_at is None


async def test_no_step_is_unticked_once_the_incident_is_closed(client, sent):
    await Report.filter(id=sent).update(status=ReportStatus.CLOSED)
    response = await untick(client, sent, 1, ago(1))
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "closed"
    assert (await ReportStep.get(report_id=sent, step_index=1)).unchecked_at is None
    # Taking back what is not ticked still changes nothing, closed or not.
    assert (await untick(client, sent, 4, ago(1))).status_code == 200


@pytest.mark.parametrize("index", [500, 10**30])
async def test_unticking_a_step_the_playbook_does_not_have_is_422(client, sent, index):
    response = await untick(client, sent, index, ago(1))
    assert response.status_code == 422, response.text
    if index == 500:
        assert response.json()["error"]["fields"] == [{"field": "index", "message": "no such step"}]


@pytest.mark.parametrize("at", [None, "soon", "9999-12-31T00:00:00Z", "future"])
async def test_an_untick_needs_a_real_recent_time(client, sent, at):
    if at == "future":
        at = iso(datetime.now(UTC) + timedelta(hours=1))
    url = f"/api/reports/{sent}/steps/1" + (f"?at={quote(at)}" if at else "")
    response = await client.delete(url, headers=CSRF)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "at"
    assert (await ReportStep.get(report_id=sent, step_index=1)).unchecked_at is None


async def test_an_untick_without_the_csrf_header_is_refused(client, sent):
    response = await client.delete(f"/api/reports/{sent}/steps/1?at={quote(ago(1))}")
    assert response.status_code == 403
    assert (await ReportStep.get(report_id=sent, step_index=1)).unchecked_at is None


async def test_the_report_page_shows_an_unticked_step_as_not_done_with_the_untick(client, sent):
    await untick(client, sent, 1, ago(1))
    page = await client.get(f"/reports/{sent}")
    assert page.status_code == 200
    assert 'class="check done" data-index="0"' in page.text
    assert 'class="check" data-index="1"' in page.text
    assert "已取消勾选" in page.text
