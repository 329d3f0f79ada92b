"""Reports through the API in-process: bodies, writes, the follow-up, what was queued."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from server.models import ActionStatus, Event, PushDelivery, PushSubscription, User
from tests.helpers.core import CSRF
from tests.helpers.photos import JPEG, jpeg


def lift_id(app) -> str:
    """The lift-entrapment playbook, found by its source title, never by a guessed id."""
    for incident in app.state.playbooks.incidents():
        if incident.title.zh == "电梯困人事件":
            return incident.id
    raise AssertionError("no 电梯困人事件 playbook")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_body(app) -> dict:
    """A whole report of a lift entrapment at north, as a guard's phone sends it."""
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


async def new_report(app, client, severity: str = "high", incident: str | None = None) -> str:
    """A report sent by ``client`` (a guard of north); its id."""
    rid = str(uuid.uuid4())
    body = {
        "site": "north",
        "incident_type": incident or lift_id(app),
        "severity": severity,
        "occurred_at": iso(datetime.now(UTC) - timedelta(minutes=2)),
        "location": {"text": "3栋 电梯"},
        "steps": [{"index": 0, "checked_at": iso(datetime.now(UTC) - timedelta(minutes=1))}],
    }
    response = await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)
    assert response.status_code == 201, response.text
    return rid


async def act(client, rid: str, action: str, body=None, method: str = "PUT"):
    """A follow-up write on a report: ``acknowledgement``, ``assignment``, ``closure``…"""
    return await client.request(
        method, f"/api/reports/{rid}/{action}", json=body if body is not None else {}, headers=CSRF
    )


async def kinds(rid: str) -> list[str]:
    """The kinds of a report's timeline events, oldest first."""
    return list(await Event.filter(report_id=rid).order_by("id").values_list("kind", flat=True))


async def photo(client, rid: str, kind: str, color=(30, 120, 200)):
    """A before or after photo (800x600) on a report."""
    return await client.put(
        f"/api/reports/{rid}/photos/{uuid.uuid4()}?kind={kind}",
        content=jpeg((800, 600), color, quality=85),
        headers=JPEG,
    )


async def fake_device(username: str) -> PushSubscription:
    """A device of ``username`` (the endpoint is never called: deliveries are counted)."""
    user = await User.get(username=username)
    return await PushSubscription.create(
        user=user, endpoint=f"https://push.example/{username}", p256dh="x", auth="y"
    )


async def pushes_to(username: str) -> list[dict]:
    """What was queued for the device :func:`fake_device` made, oldest first."""
    rows = await PushDelivery.filter(endpoint=f"https://push.example/{username}").order_by("id")
    return [r.payload for r in rows]


async def report(app, client, site="north", severity="high") -> str:
    rid = str(uuid.uuid4())
    body = {
        "site": site,
        "incident_type": lift_id(app),
        "severity": severity,
        "occurred_at": iso(datetime.now(UTC)),
        "location": {"text": "3栋 电梯"},
    }
    response = await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)
    assert response.status_code == 201, response.text
    return rid


async def action(
    as_user, rid: str, due: date, status=ActionStatus.OPEN, owner: str = "tech"
) -> str:
    """A corrective action made through the API by the supervisor, for ``owner``,
    then marked done by its owner and verified by the supervisor as ``status`` asks."""
    aid, sup = str(uuid.uuid4()), await as_user("super")
    path = f"/api/reports/{rid}/actions/{aid}"
    body = {"description": "加装电梯监控", "owner": owner, "due": due.isoformat()}
    made = await sup.put(path, json=body, headers=CSRF)
    assert made.status_code == 201, made.text
    if status != ActionStatus.OPEN:
        done = await (await as_user(owner)).put(f"{path}/done", json={"note": "已装"}, headers=CSRF)
        assert done.status_code == 201, done.text
    if status == ActionStatus.VERIFIED:
        checked = await sup.put(f"{path}/check", json={"passed": True}, headers=CSRF)
        assert checked.status_code == 201, checked.text
    return aid


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


async def review_done(app, client, rid: str) -> None:
    """Answer every 分析 item, so that the incident may close."""
    count = len(app.state.playbooks.incident(lift_id(app)).analysis)
    for index in range(count):
        answered = await act(client, rid, f"analysis/{index}", {"verdict": "ok"})
        assert answered.status_code in (200, 201), answered.text
