"""Bad input at every write endpoint and every query parameter: a clear 4xx
in the one JSON error shape, never a 5xx, and nothing stored (no row added or
changed in any table, no file added under the data folder).

Each case is sent by a user who may make that call, so the answer is about
the input, not about who sent it. CI runs this on SQLite and on PostgreSQL
(``ONSITE_TEST_DATABASE_URL``), where NUL in text and out-of-range times
used to fail as 500s.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise

from tests.conftest import CSRF
from tests.helpers.reports import iso, lift_id

NUL = "\x00"
NIL = "00000000-0000-0000-0000-000000000000"
YEAR_1 = "0001-01-01T00:00:00+14:00"
YEAR_9999 = "9999-12-31T23:59:59-14:00"
DEEP = b"[" * 100_000 + b"]" * 100_000
JSON_TYPE = {"Content-Type": "application/json"}


def _small_jpeg() -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(buf, "JPEG")
    return buf.getvalue()


SMALL_JPEG = _small_jpeg()  # a photo the server would take, but for its parameters
# Tables whose rows a request may touch without storing anything.
VOLATILE = {"LoginSession"}


@dataclass
class Scene:
    """What the cases act on: the guard's report, acknowledged and assigned
    to the technician, with an action the technician owns."""

    report: str
    action: str
    incident: str

    def path(self, template: str) -> str:
        return template.format(
            report=self.report, action=self.action, new=uuid.uuid4(), nil=NIL, NUL="%00"
        )


Body = dict[str, Any] | list[Any] | Callable[[Scene], Any] | None


LIFT_PATH = "/api/playbooks/lift-entrapment"


@dataclass
class Case:
    who: str | None  # None: not logged in
    method: str
    path: str
    status: int
    body: Body = None
    raw: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def now(offset: timedelta = timedelta(0)) -> str:
    return iso(datetime.now(UTC) + offset)


def report(**change: Any) -> Callable[[Scene], dict[str, Any]]:
    def make(scene: Scene) -> dict[str, Any]:
        body = {
            "site": "north",
            "incident_type": scene.incident,
            "occurred_at": now(-timedelta(minutes=5)),
            "location": {"text": "3栋 电梯"},
            "notes": "两人被困",
            "steps": [{"index": 0, "checked_at": now(-timedelta(minutes=4))}],
        }
        return {**body, **change}

    return make


def action(**change: Any) -> dict[str, Any]:
    due = (date.today() + timedelta(days=7)).isoformat()
    return {"description": "换门锁", "owner": "tech", "due": due, **change}


def contact(**change: Any) -> dict[str, Any]:
    return {"name": "电梯维保", "phone": "400 800 1234", "kind": "lift", **change}


def channel(**change: Any) -> dict[str, Any]:
    hook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"
    return {
        "kind": "wecom",
        "name": "值班群",
        "webhook_url": hook,
        "min_severity": "high",
        **change,
    }


KEYS = {  # the shape the server checks: an uncompressed P-256 point, a 16-byte secret
    "p256dh": base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode().rstrip("="),
    "auth": base64.urlsafe_b64encode(b"\x02" * 16).decode().rstrip("="),
}
ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc"
REPORT = "/api/reports/{report}"
ACTION = "/api/reports/{report}/actions/{action}"

CASES: dict[str, Case] = {
    # --- PUT /api/reports/{id} -------------------------------------------------
    "report: NUL in notes": Case("guard", "PUT", "/api/reports/{new}", 422, report(notes=NUL)),
    "report: NUL in location text": Case(
        "guard", "PUT", "/api/reports/{new}", 422, report(location={"text": f"3栋{NUL}"})
    ),
    "report: NUL in site": Case("guard", "PUT", "/api/reports/{new}", 422, report(site=NUL)),
    "report: NUL in incident type": Case(
        "guard", "PUT", "/api/reports/{new}", 422, report(incident_type=f"lift{NUL}")
    ),
    "report: lone surrogate in notes": Case(
        "guard", "PUT", "/api/reports/{new}", 422, report(notes="\ud800")
    ),
    "report: occurred in year 1": Case(
        "guard", "PUT", "/api/reports/{new}", 422, report(occurred_at=YEAR_1)
    ),
    "report: occurred in 1970": Case(
        "guard", "PUT", "/api/reports/{new}", 422, report(occurred_at="1970-01-01T00:00:00Z")
    ),
    "report: occurred tomorrow": Case(
        "guard", "PUT", "/api/reports/{new}", 422, report(occurred_at=now(timedelta(days=1)))
    ),
    "report: sent in year 9999": Case(
        "guard", "PUT", "/api/reports/{new}", 422, report(client_sent_at=YEAR_9999)
    ),
    "report: step ticked in year 1": Case(
        "guard",
        "PUT",
        "/api/reports/{new}",
        422,
        report(steps=[{"index": 0, "checked_at": YEAR_1}]),
    ),
    "report: step 501": Case(
        "guard",
        "PUT",
        "/api/reports/{new}",
        422,
        report(steps=[{"index": 501, "checked_at": now()}]),
    ),
    "report: the nil id": Case("guard", "PUT", "/api/reports/{nil}", 422, report()),
    "report: an id that is not a UUID": Case("guard", "PUT", "/api/reports/42", 422, report()),
    "report: unknown site": Case("guard", "PUT", "/api/reports/{new}", 422, report(site="mars")),
    "report: latitude NaN": Case(
        "guard", "PUT", "/api/reports/{new}", 400, raw=b'{"location": {"lat": NaN, "lng": 0}}'
    ),
    "report: nested 100,000 deep": Case("guard", "PUT", "/api/reports/{new}", 400, raw=DEEP),
    "report: Latin-1, not UTF-8": Case(
        "guard", "PUT", "/api/reports/{new}", 400, raw='{"notes": "café"}'.encode("latin-1")
    ),
    "report: not JSON": Case("guard", "PUT", "/api/reports/{new}", 400, raw=b"site=north"),
    "report: an array": Case("guard", "PUT", "/api/reports/{new}", 422, ["north"]),
    "report: as a form": Case(
        "guard",
        "PUT",
        "/api/reports/{new}",
        415,
        raw=b"site=north",
        content_type="application/x-www-form-urlencoded",
    ),
    # --- PUT /api/reports/{id}/steps/{index} ------------------------------------
    "step: 501": Case("guard", "PUT", REPORT + "/steps/501", 422, {"checked_at": now()}),
    "step: ticked in year 1": Case(
        "guard", "PUT", REPORT + "/steps/6", 422, {"checked_at": YEAR_1}
    ),
    "step: ticked in year 9999": Case(
        "guard", "PUT", REPORT + "/steps/6", 422, {"checked_at": YEAR_9999}
    ),
    "step: NUL for a time": Case("guard", "PUT", REPORT + "/steps/6", 422, {"checked_at": NUL}),
    "step: nested 100,000 deep": Case("guard", "PUT", REPORT + "/steps/6", 400, raw=DEEP),
    "step: ticked by a supervisor": Case(
        "super", "PUT", REPORT + "/steps/6", 403, {"checked_at": now()}
    ),
    "step: ticked by the assigned technician": Case(
        "tech", "PUT", REPORT + "/steps/6", 403, {"checked_at": now()}
    ),
    "step: of the nil report": Case(
        "guard", "PUT", "/api/reports/{nil}/steps/6", 422, {"checked_at": now()}
    ),
    # --- DELETE /api/reports/{id}/steps/{index} ---------------------------------
    "untick: 501": Case("guard", "DELETE", REPORT + "/steps/501", 422, params={"at": now()}),
    "untick: no time": Case("guard", "DELETE", REPORT + "/steps/6", 422),
    "untick: a time that is not one": Case(
        "guard", "DELETE", REPORT + "/steps/6", 422, params={"at": "yesterday"}
    ),
    "untick: in year 9999": Case(
        "guard", "DELETE", REPORT + "/steps/6", 422, params={"at": YEAR_9999}
    ),
    "untick: tomorrow": Case(
        "guard", "DELETE", REPORT + "/steps/6", 422, params={"at": now(timedelta(days=1))}
    ),
    "untick: NUL in the time": Case(
        "guard", "DELETE", REPORT + "/steps/6", 422, params={"at": f"{now()}{NUL}"}
    ),
    "untick: by a supervisor": Case(
        "super", "DELETE", REPORT + "/steps/6", 403, params={"at": now()}
    ),
    "untick: of the nil report": Case(
        "guard", "DELETE", "/api/reports/{nil}/steps/6", 422, params={"at": now()}
    ),
    # --- PUT /api/reports/{id}/photos/{id} --------------------------------------
    "photo: a kind that does not exist": Case(
        "guard",
        "PUT",
        REPORT + "/photos/{new}",
        422,
        raw=b"\xff\xd8\xff",
        params={"kind": "selfie"},
        content_type="image/jpeg",
    ),
    "photo: NUL in kind": Case(
        "guard",
        "PUT",
        REPORT + "/photos/{new}",
        422,
        raw=b"\xff\xd8\xff",
        params={"kind": f"evidence{NUL}"},
        content_type="image/jpeg",
    ),
    "photo: an id that is not a UUID": Case(
        "guard",
        "PUT",
        REPORT + "/photos/photo-1",
        422,
        raw=b"\xff\xd8\xff",
        content_type="image/jpeg",
    ),
    "photo: the nil id": Case(
        "guard",
        "PUT",
        REPORT + "/photos/{nil}",
        422,
        raw=b"\xff\xd8\xff",
        content_type="image/jpeg",
    ),
    "photo: not an image": Case(
        "guard",
        "PUT",
        REPORT + "/photos/{new}",
        415,
        raw=b"%PDF-1.4 not a photo",
        content_type="image/jpeg",
    ),
    "photo: empty": Case(
        "guard", "PUT", REPORT + "/photos/{new}", 422, raw=b"", content_type="image/jpeg"
    ),
    "photo: a truncated JPEG": Case(
        "guard",
        "PUT",
        REPORT + "/photos/{new}",
        422,
        raw=b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64,
        content_type="image/jpeg",
    ),
    # The metadata the phone read from the photo's EXIF (a whole JPEG, so
    # only the parameter is at fault).
    **{
        f"photo: {name}": Case(
            "guard",
            "PUT",
            REPORT + "/photos/{new}",
            422,
            raw=SMALL_JPEG,
            params=params,
            content_type="image/jpeg",
        )
        for name, params in [
            ("taken_at not a time", {"taken_at": "yesterday"}),
            ("taken_at without a zone", {"taken_at": "2024-05-03T14:02:00"}),
            ("taken_at in year 1", {"taken_at": YEAR_1}),
            ("lat past the pole", {"lat": "90.01", "lon": "114"}),
            ("lon past 180", {"lat": "22", "lon": "-180.5"}),
            ("lat not a number", {"lat": "NaN", "lon": "114"}),
            ("lat without lon", {"lat": "22.5"}),
            ("a camera over 200 characters", {"camera": "c" * 201}),
            ("NUL in the camera", {"camera": f"Canon{NUL}"}),
        ]
    },
    # --- follow-up ----------------------------------------------------------------
    "acknowledgement: a field it does not take": Case(
        "super", "PUT", REPORT + "/acknowledgement", 422, {"note": "seen"}
    ),
    "acknowledgement: NUL in a key": Case(
        "super", "PUT", REPORT + "/acknowledgement", 422, {f"a{NUL}": 1}
    ),
    "acknowledgement: nested 100,000 deep": Case(
        "super", "PUT", REPORT + "/acknowledgement", 400, raw=DEEP
    ),
    "assignment: NUL in the assignee": Case(
        "super", "PUT", REPORT + "/assignment", 422, {"assignee": f"tech{NUL}"}
    ),
    "assignment: nobody": Case("super", "PUT", REPORT + "/assignment", 422, {"assignee": ""}),
    "reply: NUL in the text": Case(
        "super", "PUT", REPORT + "/reply", 422, {"text": f"已处理{NUL}"}
    ),
    "reply: surrogate in the text": Case(
        "super", "PUT", REPORT + "/reply", 422, {"text": "\udfff"}
    ),
    "repair: NUL in the note": Case("tech", "PUT", REPORT + "/repair", 422, {"note": NUL}),
    "closure: NUL in the note": Case("super", "PUT", REPORT + "/closure", 422, {"note": NUL}),
    "closure: NUL in the waiver": Case(
        "admin", "PUT", REPORT + "/closure", 422, {"note": "ok", "waive": NUL}
    ),
    "reopening: NUL in the reason": Case(
        "super", "DELETE", REPORT + "/closure", 422, {"reason": NUL}
    ),
    # --- 分析 and 改善 -------------------------------------------------------------
    "analysis: NUL in the note": Case(
        "super", "PUT", REPORT + "/analysis/0", 422, {"verdict": "gap", "note": NUL}
    ),
    "analysis: a verdict that does not exist": Case(
        "super", "PUT", REPORT + "/analysis/0", 422, {"verdict": "maybe"}
    ),
    "analysis: item 999": Case("super", "PUT", REPORT + "/analysis/999", 422, {"verdict": "ok"}),
    "action: NUL in the description": Case(
        "super", "PUT", REPORT + "/actions/{new}", 422, action(description=NUL)
    ),
    "action: NUL in the owner": Case(
        "super", "PUT", REPORT + "/actions/{new}", 422, action(owner=f"tech{NUL}")
    ),
    "action: due in year 1": Case(
        "super", "PUT", REPORT + "/actions/{new}", 422, action(due="0001-01-01")
    ),
    "action: due in year 9999": Case(
        "super", "PUT", REPORT + "/actions/{new}", 422, action(due="9999-12-31")
    ),
    "action: an item past any playbook": Case(
        "super", "PUT", REPORT + "/actions/{new}", 422, action(item=10**30)
    ),
    "action: the nil id": Case("super", "PUT", REPORT + "/actions/{nil}", 422, action()),
    "done: NUL in the note": Case("tech", "PUT", ACTION + "/done", 422, {"note": NUL}),
    "done: the nil photo": Case("tech", "PUT", ACTION + "/done", 422, {"photos": [NIL]}),
    "done: a photo that is not a UUID": Case(
        "tech", "PUT", ACTION + "/done", 422, {"photos": ["photo-1"]}
    ),
    "check: NUL in the note": Case(
        "super", "PUT", ACTION + "/check", 422, {"passed": False, "note": NUL}
    ),
    "check: passed is not a yes or no": Case(
        "super", "PUT", ACTION + "/check", 422, {"passed": "perhaps"}
    ),
    # --- administration ------------------------------------------------------------
    "user: NUL in the username": Case(
        "admin", "PUT", "/api/users/new{NUL}", 422, {"role": "guard", "sites": ["north"]}
    ),
    "user: NUL in the name": Case(
        "admin",
        "PUT",
        "/api/users/newbie",
        422,
        {"display_name": NUL, "role": "guard", "sites": ["north"]},
    ),
    "user: NUL in a site": Case(
        "admin", "PUT", "/api/users/newbie", 422, {"role": "guard", "sites": [f"north{NUL}"]}
    ),
    "user: a role that does not exist": Case(
        "admin", "PUT", "/api/users/newbie", 422, {"role": "emperor", "sites": ["north"]}
    ),
    "user: nested 100,000 deep": Case("admin", "PUT", "/api/users/newbie", 400, raw=DEEP),
    "password: NUL in it": Case(
        "admin", "PUT", "/api/users/guard/password", 422, {"password": NUL * 12}
    ),
    "password: too short": Case(
        "admin", "PUT", "/api/users/guard/password", 422, {"password": "short"}
    ),
    "sessions: NUL in the username": Case("admin", "DELETE", "/api/users/guard{NUL}/sessions", 422),
    "site: NUL in the code": Case("admin", "PUT", "/api/sites/east{NUL}", 422, {"name": "东苑"}),
    # Longer than the columns they are looked up in: the ORM refused the lookup (500).
    "site: a code over 32 characters": Case("admin", "GET", "/api/sites/" + "x" * 33, 422),
    "contact: deleting at a code over 32": Case(
        "admin", "DELETE", "/api/sites/" + "x" * 33 + "/contacts/{new}", 422
    ),
    "channel: deleting at a code over 32": Case(
        "admin", "DELETE", "/api/sites/" + "x" * 33 + "/channels/{new}", 422
    ),
    "channel: testing at a code over 32": Case(
        "admin", "POST", "/api/sites/" + "x" * 33 + "/channels/{new}/test", 422
    ),
    "sessions: a username over 64": Case(
        "admin", "DELETE", "/api/users/" + "u" * 65 + "/sessions", 422
    ),
    "password: of a username over 64": Case(
        "admin",
        "PUT",
        "/api/users/" + "u" * 65 + "/password",
        422,
        {"password": "long enough pass"},
    ),
    "site: NUL in the name": Case("admin", "PUT", "/api/sites/east", 422, {"name": f"东苑{NUL}"}),
    "site: no name": Case("admin", "PUT", "/api/sites/east", 422, {"name": ""}),
    "contact: NUL in the name": Case(
        "admin", "PUT", "/api/sites/north/contacts/{new}", 422, contact(name=NUL)
    ),
    "contact: a phone with letters": Case(
        "admin", "PUT", "/api/sites/north/contacts/{new}", 422, contact(phone="call me")
    ),
    "contact: NUL in an incident type": Case(
        "admin", "PUT", "/api/sites/north/contacts/{new}", 422, contact(incident_types=[NUL])
    ),
    "contact: the nil id": Case("admin", "PUT", "/api/sites/north/contacts/{nil}", 422, contact()),
    "contact: deleting the nil id": Case("admin", "DELETE", "/api/sites/north/contacts/{nil}", 422),
    "channel: NUL in the name": Case(
        "admin", "PUT", "/api/sites/north/channels/{new}", 422, channel(name=NUL)
    ),
    "channel: NUL in the webhook": Case(
        "admin",
        "PUT",
        "/api/sites/north/channels/{new}",
        422,
        channel(webhook_url=f"https://qyapi.weixin.qq.com/x?key={NUL}"),
    ),
    "channel: the nil id": Case("admin", "PUT", "/api/sites/north/channels/{nil}", 422, channel()),
    "channel: deleting the nil id": Case("admin", "DELETE", "/api/sites/north/channels/{nil}", 422),
    "channel: testing the nil id": Case(
        "admin", "POST", "/api/sites/north/channels/{nil}/test", 422
    ),
    # --- push and session ------------------------------------------------------------
    "subscription: NUL in the endpoint": Case(
        "guard", "PUT", "/api/push/subscriptions", 422, {"endpoint": ENDPOINT + NUL, "keys": KEYS}
    ),
    "subscription: NUL in a key": Case(
        "guard",
        "PUT",
        "/api/push/subscriptions",
        422,
        {"endpoint": ENDPOINT, "keys": {**KEYS, "auth": NUL}},
    ),
    "subscription: not an endpoint": Case(
        "guard", "PUT", "/api/push/subscriptions", 422, {"endpoint": "ftp://x", "keys": KEYS}
    ),
    "unsubscribing: NUL in the endpoint": Case(
        "guard", "DELETE", "/api/push/subscriptions", 422, {"endpoint": ENDPOINT + NUL}
    ),
    "login: NUL in the username": Case(
        None, "POST", "/api/session", 422, {"username": f"guard{NUL}", "password": "x"}
    ),
    "login: surrogate in the password": Case(
        None, "POST", "/api/session", 422, {"username": "guard", "password": "\ud83d"}
    ),
    "login: nested 100,000 deep": Case(None, "POST", "/api/session", 400, raw=DEEP),
    "login: UTF-16": Case(
        None, "POST", "/api/session", 400, raw='{"username": "guard"}'.encode("utf-16")
    ),
    # --- every query parameter of the lists ------------------------------------------
    **{
        f"reports list: {name}": Case("guard", "GET", "/api/reports", status, params=params)
        for name, params, status in [
            ("status", {"status": "lost"}, 422),
            ("NUL in status", {"status": NUL}, 422),
            ("severity", {"severity": "apocalyptic"}, 422),
            ("NUL in type", {"type": f"lift{NUL}"}, 422),
            ("NUL in site", {"site": f"north{NUL}"}, 422),
            ("unknown site", {"site": "atlantis"}, 422),
            ("NUL in assignee", {"assignee": NUL}, 422),
            ("from year 1", {"from": YEAR_1}, 422),
            ("to year 9999", {"to": YEAR_9999}, 422),
            ("since not a time", {"since": "last week"}, 422),
            ("cursor not base64", {"cursor": "!!!"}, 400),
            ("cursor of a foreign object", {"cursor": "eyJyIjogMSwgImkiOiAyfQ"}, 400),
            ("NUL in cursor", {"cursor": NUL}, 422),
            ("limit 0", {"limit": "0"}, 422),
            ("limit not a number", {"limit": "all"}, 422),
            ("NUL in a parameter's name", {f"x{NUL}": "1"}, 422),
        ]
    },
    **{
        f"export: {name}": Case("super", "GET", "/api/reports.csv", 422, params=params)
        for name, params in [
            ("status", {"status": "lost"}),
            ("severity", {"severity": NUL}),
            ("NUL in type", {"type": NUL}),
            ("NUL in site", {"site": NUL}),
            ("NUL in assignee", {"assignee": f"me{NUL}"}),
            ("from year 1", {"from": YEAR_1}),
            ("to year 9999", {"to": YEAR_9999}),
            ("since 1970 without a zone", {"since": "1970-01-01T00:00:00"}),
            ("language", {"lang": "fr"}),
        ]
    },
    "stream: last event id negative": Case(
        "guard", "GET", "/api/stream", 422, params={"last_event_id": "-1"}
    ),
    "stream: NUL in the last event id": Case(
        "guard", "GET", "/api/stream", 422, params={"last_event_id": NUL}
    ),
    "playbooks: a language not offered": Case(
        "guard", "GET", "/api/playbooks", 422, params={"lang": "klingon"}
    ),
    "playbooks: NUL in the language": Case(
        "guard", "GET", "/api/playbooks", 422, params={"lang": f"en{NUL}"}
    ),
    # --- the playbook library ---
    "playbooks: NUL in the site": Case("guard", "GET", "/api/playbooks", 422, params={"site": NUL}),
    "playbook: a site code too long": Case(
        "guard", "GET", f"{LIFT_PATH}", 422, params={"site": "x" * 33}
    ),
    "playbook: a language not offered": Case(
        "guard", "GET", f"{LIFT_PATH}", 422, params={"lang": "fr"}
    ),
    "draft: NUL in the site": Case("super", "GET", f"{LIFT_PATH}/draft", 422, params={"site": NUL}),
    "versions: NUL in the site": Case(
        "guard", "GET", f"{LIFT_PATH}/versions", 422, params={"site": NUL}
    ),
    "diff: no versions named": Case("guard", "GET", f"{LIFT_PATH}/diff", 422),
    "diff: a version id too long": Case(
        "guard", "GET", f"{LIFT_PATH}/diff", 422, params={"before": "1" * 13, "after": "1"}
    ),
    "diff: NUL in a version": Case(
        "guard", "GET", f"{LIFT_PATH}/diff", 422, params={"before": NUL, "after": "1"}
    ),
    "draft: a step with no text": Case(
        "admin", "PUT", f"{LIFT_PATH}/draft", 422, body={"handling": [{"action": "call:119"}]}
    ),
    "draft: a step key named twice": Case(
        "admin", "PUT", f"{LIFT_PATH}/draft", 422, body={"handling": [{"key": "s1"}, {"key": "s1"}]}
    ),
    "draft: a key of no step": Case(
        "admin", "PUT", f"{LIFT_PATH}/draft", 422, body={"handling": [{"key": "s99"}]}
    ),
    "draft: an unknown field": Case("admin", "PUT", f"{LIFT_PATH}/draft", 422, body={"steps": []}),
    "draft: an action that is no action": Case(
        "admin",
        "PUT",
        f"{LIFT_PATH}/draft",
        422,
        body={"handling": [{"zh-CN": "打电话", "en": "Call", "action": "call:999"}]},
    ),
    "draft: a new type without a title": Case(
        "admin", "PUT", "/api/playbooks/gas-leak/draft", 422, body={"category": "safety"}
    ),
    "draft: a new type in no category": Case(
        "admin",
        "PUT",
        "/api/playbooks/gas-leak/draft",
        422,
        body={"title": {"zh-CN": "燃气泄漏", "en": "Gas leak"}, "category": "nowhere"},
    ),
    "draft: an id that is not one": Case(
        "admin",
        "PUT",
        "/api/playbooks/Gas_Leak/draft",
        422,
        body={"title": {"zh-CN": "燃气泄漏", "en": "Gas leak"}, "category": "safety"},
    ),
    "draft: a site layer of an unknown incident": Case(
        "admin",
        "PUT",
        "/api/playbooks/gas-leak/draft",
        422,
        params={"site": "north"},
        body={"handling": []},
    ),
    "draft: a site of no one": Case(
        "admin", "PUT", f"{LIFT_PATH}/draft", 422, params={"site": "nowhere"}, body={}
    ),
    "draft: drop with NUL in the site": Case(
        "admin", "DELETE", f"{LIFT_PATH}/draft", 422, params={"site": NUL}
    ),
    "publish: no note": Case("admin", "POST", f"{LIFT_PATH}/publish", 422, body={}),
    "publish: a revert to no version": Case(
        "admin", "POST", f"{LIFT_PATH}/publish", 422, body={"note": "回退", "revert_to": "999999"}
    ),
    "publish: NUL in the site": Case(
        "admin", "POST", f"{LIFT_PATH}/publish", 422, params={"site": NUL}, body={"note": "n"}
    ),
    "import: not YAML": Case(
        "admin",
        "POST",
        "/api/playbooks/import",
        422,
        raw=b"{ no: [yaml",
        content_type="application/yaml",
    ),
    "import: a playbook with no steps list": Case(
        "admin",
        "POST",
        "/api/playbooks/import",
        422,
        raw="id: theft\ncategory: safety\ntitle: {zh-CN: 盗窃, en: Theft}\n".encode(),
        content_type="application/yaml",
    ),
    "staff: NUL in the site": Case("super", "GET", "/api/users", 422, params={"site": NUL}),
    "staff: a site code too long": Case(
        "super", "GET", "/api/users", 422, params={"site": "x" * 33}
    ),
}


@pytest.fixture
async def scene(app, world, as_user) -> Scene:
    incident = lift_id(app)
    scene = Scene(report=str(uuid.uuid4()), action=str(uuid.uuid4()), incident=incident)
    guard, boss = await as_user("guard"), await as_user("super")
    first = await guard.put(f"/api/reports/{scene.report}", json=report()(scene), headers=CSRF)
    assert first.status_code == 201, first.text
    for path, body in (
        (f"{REPORT}/acknowledgement", {}),
        (f"{REPORT}/assignment", {"assignee": "tech"}),
        (ACTION, action()),
    ):
        response = await boss.put(scene.path(path), json=body, headers=CSRF)
        assert response.status_code == 201, response.text
    return scene


def files(data_dir: Path) -> list[str]:
    return sorted(
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file() and not p.name.startswith("onsite.sqlite3")
    )


async def snapshot(data_dir: Path) -> dict[str, Any]:
    """Every row of every table (a count only for sessions), and every file
    under the data folder but the SQLite database's own."""
    state: dict[str, Any] = {}
    for app_models in Tortoise.apps.values():
        for name, model in app_models.items():
            rows = await model.all().values()
            state[name] = len(rows) if name in VOLATILE else sorted(map(repr, rows))
    state["files"] = files(data_dir)
    return state


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_bad_input_is_a_4xx_json_error_and_stores_nothing(
    app, settings, client, scene, as_user, case
):
    sender = await as_user(case.who) if case.who else client
    headers = {**CSRF, "Content-Type": case.content_type}
    body = case.body(scene) if callable(case.body) else case.body
    # Escaped JSON, so that a lone surrogate is sent as the phone would (\ud800).
    content = case.raw if case.raw is not None else json.dumps(body).encode()
    if case.method == "GET" or (body is None and case.raw is None):
        content, headers = b"", CSRF
    before = await snapshot(settings.data_dir)

    response = await sender.request(
        case.method, scene.path(case.path), content=content, params=case.params, headers=headers
    )

    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert await snapshot(settings.data_dir) == before


def test_the_corpus_covers_every_write_endpoint_and_every_list_parameter(app):
    """A new endpoint or query parameter gets its bad-input case here."""
    from server.api import ApiRoute

    scene = Scene(report=str(uuid.uuid4()), action=str(uuid.uuid4()), incident="x")
    routes = [r for r in app.routes if isinstance(r, ApiRoute)]
    covered: set[tuple[str, str]] = set()
    for case in CASES.values():
        path = re.sub("%00", "\x00", scene.path(case.path))
        route = next(r for r in routes if r.method == case.method and r.path_regex.match(path))
        covered |= {(route.name, "")} | {(route.name, p) for p in case.params}
    assert len(CASES) >= 60
    for route in routes:
        if route.method != "GET" and (route.body is not None or "{" in route.path_format):
            assert (route.name, "") in covered, f"no bad input for {route.method} {route.path}"
        for name, info in (route.query.model_fields if route.query else {}).items():
            param = info.alias or name
            assert (route.name, param) in covered, f"no bad {param} for {route.path}"
