"""After sending: who was alerted, counted from the push deliveries queued
with the report (supervisors as people, not devices; work-chat groups)."""

from __future__ import annotations

import uuid

from server.models import AlertChannel, ChannelKind, Event, PushSubscription, Severity
from tests.conftest import login, make_user
from tests.helpers.reports import put


async def device(user, n: int) -> None:
    await PushSubscription.create(
        user=user, endpoint=f"https://push.example/{user.username}/{n}", p256dh="x", auth="y"
    )


async def test_the_answer_counts_each_alerted_supervisor_once(client, world, body):
    second = await make_user("second", world.supervisor.role, world.north)
    await device(world.supervisor, 1)
    await device(world.supervisor, 2)  # two phones, one person
    await device(second, 1)
    await device(await make_user("southsuper", world.supervisor.role, world.south), 1)
    await login(client, "guard")
    response = await put(client, uuid.uuid4(), body)
    assert response.status_code == 201, response.text
    assert response.json()["alerted"] == {"supervisors": 2, "channels": 0}


async def test_no_supervisor_with_notifications_on_is_zero(client, world, body):
    await login(client, "guard")
    response = await put(client, uuid.uuid4(), body)
    assert response.json()["alerted"] == {"supervisors": 0, "channels": 0}


async def test_work_groups_told_of_the_report_are_counted(client, world, body):
    for severity in (Severity.HIGH, Severity.CRITICAL):  # body is "high": one group hears it
        await AlertChannel.create(
            id=uuid.uuid4(),
            site_id=world.north.id,
            kind=ChannelKind.WECOM,
            name=f"{severity}群",
            webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            min_severity=severity,
        )
    await device(world.supervisor, 1)
    await login(client, "guard")
    response = await put(client, uuid.uuid4(), body)
    assert response.json()["alerted"] == {"supervisors": 1, "channels": 1}


async def test_the_count_is_kept_and_read_back_the_same(client, world, body):
    await device(world.supervisor, 1)
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    await device(world.supervisor, 2)  # later devices change nothing said then
    again = await put(client, rid, body)
    assert again.status_code == 200
    assert again.json()["alerted"] == {"supervisors": 1, "channels": 0}
    assert (await client.get(f"/api/reports/{rid}")).json()["alerted"] == {
        "supervisors": 1,
        "channels": 0,
    }


async def test_a_report_from_before_the_count_was_kept_says_null(client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    created = await Event.get(report_id=rid, kind="created")
    created.data = {k: v for k, v in created.data.items() if k != "alerted"}
    await created.save()
    assert (await client.get(f"/api/reports/{rid}")).json()["alerted"] is None
    page = await client.get(f"/reports/{rid}")
    assert 'id="alerted"' not in page.text


async def test_the_reporters_page_says_who_was_alerted_in_both_languages(
    client,
    world,
    body,
):
    await device(world.supervisor, 1)
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    page = await client.get(f"/reports/{rid}")
    assert "已通知 1 位主管" in page.text
    client.cookies.set("onsite_lang", "en")
    page = await client.get(f"/reports/{rid}")
    assert "Alerted: 1 supervisor<" in page.text


async def test_the_page_is_honest_when_nobody_was_alerted(client, world, body):
    await login(client, "guard")
    rid = uuid.uuid4()
    await put(client, rid, body)
    page = await client.get(f"/reports/{rid}")
    assert "暂无主管收到通知，请电话告知主管" in page.text
    assert "已通知" not in page.text


async def test_only_the_reporter_is_shown_the_count(world, body, as_user):
    guard, boss = await as_user("guard"), await as_user("super")
    rid = uuid.uuid4()
    await put(guard, rid, body)
    page = await boss.get(f"/reports/{rid}")
    assert page.status_code == 200 and 'id="alerted"' not in page.text
