"""The access matrix (issue #16): every API route x every role x an object of
the user's own site, of the other site, and not logged in.

Every :class:`~server.api.ApiRoute` of the app must have an entry in
:data:`MATRIX` saying how to call it (path parameters, query, a valid body),
so a new endpoint cannot escape: :func:`test_every_api_route_is_in_the_matrix`
fails until it has one. Who may call a route is read from the route itself
(``route.login``, ``route.roles``; admins pass every role check), and for
each route, on one world of two sites (north and south, each with a report,
its photos, a corrective action, a contact, a channel):

1. not logged in: 401 (unless the route is public);
2. each role the route does not admit: 403;
3. each admitted role with the other site's object: 403 or 404, never a
   2xx (admins belong to every site, so this is not asked of them); and a
   mixed call (this site's report or site, the other site's photo, action,
   contact or channel) is refused or changes nothing;
4. each admitted role with its own site's object: never 401, never 404
   (every object exists), never 5xx, never ``forbidden_site``; the roles
   the route is for get a 2xx, and no answer to a non-admin names anything
   of the other site (an admin's lists do: the check works).

Nothing in the database or the data folder changes in 1 to 3, checked after
every call, and every 4xx is the one JSON error shape.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image
from starlette.routing import Mount, Route
from tortoise import Tortoise
from tortoise.expressions import Subquery

from server.access import reports_visible_to
from server.api import ApiRoute
from server.models import Event, Role, User
from server.settings import Settings
from tests.conftest import CSRF, PASSWORD, api_client, make_user
from tests.helpers.reports import lift_id

ROLES = (Role.GUARD, Role.TECHNICIAN, Role.SUPERVISOR, Role.ADMIN)
ALL = frozenset(ROLES)
SUPERVISING = frozenset({Role.SUPERVISOR, Role.ADMIN})
# Who acts for each role: members of north only (the admin: of no site).
ACTOR = {
    Role.GUARD: "guard",
    Role.TECHNICIAN: "tech",
    Role.SUPERVISOR: "northsuper",
    Role.ADMIN: "admin",
}
# Nothing listens on port 9 (discard): a test message or push sent there
# fails at once, and no test reaches a real service.
WEBHOOK = "http://127.0.0.1:9/cgi-bin/webhook/send?key=abc{code}"
PUSH = "http://127.0.0.1:9/push/{user}"
JPEG = {**CSRF, "Content-Type": "image/jpeg"}
# The longest an event stream is read for.
STREAM_WAIT = 5.0
# Rows a request may touch without changing anything: a session's last use.
VOLATILE = {"LoginSession": ("id", "user_id", "revoked_at"), "LoginFailure": ()}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """127.0.0.1:9 as a webhook host: a channel's test message goes nowhere."""
    return dataclasses.replace(settings, channel_hosts=(*settings.channel_hosts, "127.0.0.1:9"))


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jpeg(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def subscription(user: str) -> dict[str, Any]:
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    keys = {"p256dh": b64(public), "auth": b64(b"0123456789abcdef")}
    return {"endpoint": PUSH.format(user=user), "expirationTime": None, "keys": keys}


# --- the world: two sites, the same objects on each ------------------------------


@dataclass
class Side:
    """A site and its objects, all made through the API."""

    code: str
    name: str
    guard: str
    tech: str
    sup: str
    report: str = ""
    report_body: dict[str, Any] = field(default_factory=dict)
    photo: str = ""  # the guard's evidence
    photo_bytes: bytes = b""
    repair_photo: str = ""  # the technician's repair_after
    action: str = ""  # owned by the technician, marked done
    action_body: dict[str, Any] = field(default_factory=dict)
    done_body: dict[str, Any] = field(default_factory=dict)
    contact: str = ""
    contact_body: dict[str, Any] = field(default_factory=dict)
    channel: str = ""
    channel_body: dict[str, Any] = field(default_factory=dict)
    endpoint: str = ""  # the guard's push subscription

    def markers(self) -> list[str]:
        """What names this site's things in an answer."""
        ids = (self.report, self.photo, self.repair_photo, self.action, self.contact, self.channel)
        return [self.name, self.guard, self.tech, self.sup, *ids]


@dataclass
class Matrix:
    app: Any
    north: Side
    south: Side
    clients: dict[Role, httpx.AsyncClient]
    anon: httpx.AsyncClient


def made(response: httpx.Response) -> None:
    assert response.status_code == 201, (response.request.url, response.text)


async def furnish(as_user, side: Side, incident: str, tomorrow: str) -> None:
    """The site's report (acknowledged, assigned, repair photo in), a done
    action, a contact, a channel and the guard's push subscription."""
    guard, tech, sup = [await as_user(u) for u in (side.guard, side.tech, side.sup)]
    admin = await as_user("admin")
    now = datetime.now(UTC)
    side.report = str(uuid.uuid4())
    side.report_body = {
        "site": side.code,
        "incident_type": incident,
        "severity": "medium",
        "occurred_at": iso(now - timedelta(minutes=3)),
        "location": {"text": f"{side.name} 3栋 电梯"},
        "notes": "访问矩阵",
        "steps": [{"index": 0, "checked_at": iso(now - timedelta(minutes=2))}],
    }
    report = f"/api/reports/{side.report}"
    made(await guard.put(report, json=side.report_body, headers=CSRF))
    side.photo, side.photo_bytes = str(uuid.uuid4()), jpeg((200, 30, 30))
    made(await guard.put(f"{report}/photos/{side.photo}", content=side.photo_bytes, headers=JPEG))
    made(await sup.put(f"{report}/acknowledgement", json={}, headers=CSRF))
    made(await sup.put(f"{report}/assignment", json={"assignee": side.tech}, headers=CSRF))
    side.repair_photo = str(uuid.uuid4())
    made(
        await tech.put(
            f"{report}/photos/{side.repair_photo}",
            params={"kind": "repair_after"},
            content=jpeg((30, 200, 30)),
            headers=JPEG,
        )
    )
    side.action = str(uuid.uuid4())
    side.action_body = {
        "description": "组织电梯困人应急演练",
        "owner": side.tech,
        "due": tomorrow,
        "item": 0,
    }
    made(await sup.put(f"{report}/actions/{side.action}", json=side.action_body, headers=CSRF))
    side.done_body = {"note": "已演练", "photos": []}
    made(await tech.put(f"{report}/actions/{side.action}/done", json=side.done_body, headers=CSRF))
    side.contact = str(uuid.uuid4())
    side.contact_body = {"name": f"{side.name}物业", "phone": "0755-1234567", "kind": "lift"}
    contact = f"/api/sites/{side.code}/contacts/{side.contact}"
    made(await admin.put(contact, json=side.contact_body, headers=CSRF))
    side.channel = str(uuid.uuid4())
    side.channel_body = {
        "kind": "wecom",
        "name": f"{side.name}值班群",
        "webhook_url": WEBHOOK.format(code=side.code),
        "min_severity": None,
        "events": [],
        "active": False,  # told of nothing: no message leaves during the test
    }
    channel = f"/api/sites/{side.code}/channels/{side.channel}"
    made(await admin.put(channel, json=side.channel_body, headers=CSRF))
    body = subscription(side.guard)
    side.endpoint = body["endpoint"]
    made(await guard.put("/api/push/subscriptions", json=body, headers=CSRF))


@pytest.fixture
async def matrix(app, world, as_user) -> AsyncIterator[Matrix]:
    await make_user("northsuper", Role.SUPERVISOR, world.north)
    await make_user("southsuper", Role.SUPERVISOR, world.south)
    await make_user("southtech", Role.TECHNICIAN, world.south)
    incident = lift_id(app)
    tomorrow = (app.state.context.today() + timedelta(days=1)).isoformat()
    north = Side("north", world.north.name, "guard", "tech", "northsuper")
    south = Side("south", world.south.name, "southguard", "southtech", "southsuper")
    await as_user("admin")  # before the sites' own, which need it
    await asyncio.gather(*(furnish(as_user, s, incident, tomorrow) for s in (north, south)))
    clients = {role: await as_user(ACTOR[role]) for role in ROLES}
    async with api_client(app) as anon:
        yield Matrix(app, north, south, clients, anon)


def files(data_dir: Path) -> list[str]:
    return sorted(
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file() and not p.name.startswith("onsite.sqlite3")
    )


async def snapshot(data_dir: Path) -> dict[str, Any]:
    """Every row of every table (of sessions, whether they are revoked), and
    every file under the data folder but the database's own."""
    state: dict[str, Any] = {}
    for models in Tortoise.apps.values():
        for name, model in models.items():
            kept = VOLATILE.get(name)
            rows = await (model.all().values(*kept) if kept else model.all().values())
            state[name] = sorted(map(repr, rows)) if kept is None or kept else len(rows)
    state["files"] = files(data_dir)
    return state


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


# --- the matrix ---------------------------------------------------------------------


@dataclass
class Call:
    """One request of a route: its path parameters, query and body."""

    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    label: str = ""
    # Roles that must get a 2xx (own site); None: the entry's.
    ok: frozenset[Role] | None = None
    # An answer that lists across sites: an admin's names the other site.
    lists: bool = False


# (home, there, username) -> the call(s): ``home`` is the acting user's site,
# ``there`` the site whose objects are used (home again, or the other site).
Maker = Callable[["Side", "Side", str], "Call | list[Call]"]


@dataclass(frozen=True)
class Entry:
    own: Maker
    # The same with the other site's objects: refused with 403 or 404.
    other: Maker | None = None
    # This site's parent, the other site's child (a report's photo, a site's
    # contact): refused with 403, 404 or 409 (or a 2xx if ``no_op``),
    # nothing changed; asked of admins too.
    mixed: Maker | None = None
    ok: frozenset[Role] = frozenset()
    # A 2xx to ``other``/``mixed`` is allowed if nothing changed (a delete of
    # what is not there).
    no_op: bool = False
    # The other object is another user's, not another site's: asked of
    # admins too.
    per_user: bool = False
    stream: bool = False


def fresh() -> str:
    return str(uuid.uuid4())


def report_of(there: Side, **extra: str) -> dict[str, str]:
    return {"report_id": there.report, **extra}


def new_report(there: Side) -> Call:
    now = datetime.now(UTC)
    body = {**there.report_body, "occurred_at": iso(now - timedelta(minutes=1)), "steps": []}
    return Call(report_of(there, report_id=fresh()), json=body, label="new id")


def tick() -> dict[str, str]:
    return {"checked_at": iso(datetime.now(UTC))}


def action_body(there: Side) -> dict[str, Any]:
    """The site's action, changed."""
    return {**there.action_body, "description": "更新电梯应急指引"}


# The playbook every library call is about: 电梯困人 (its id, as shipped).
LIFT = {"incident": "lift-entrapment"}
YAML_TYPE = {"content-type": "application/yaml", **CSRF}
LIFT_EXPORT = """
id: lift-entrapment
category: facilities
source_number: 3
order: 3
title: {zh-CN: 电梯困人事件, en: People trapped in a lift}
title_inferred: false
note: null
severity: high
severity_reason: {zh-CN: 有人被困, en: People are trapped}
from_source: true
handling:
- {zh-CN: 通过对讲安抚被困人员, en: Reassure the people trapped over the intercom}
analysis: []
improvement: []
reply_script: null
"""
SITE_LAYER = {"handling": [{"zh-CN": "本项目电梯维保：奥的斯", "en": "This estate's lifts: Otis"}]}
COMPANY_LAYER = {"severity": "critical"}


def company_call(json: Any = None) -> Call:
    """The company's layer: the admins' alone (a supervisor's is a 403)."""
    return Call(LIFT, json=json, label="company", ok=frozenset({Role.ADMIN}))


MATRIX: dict[tuple[str, str], Entry] = {
    # --- session ---
    ("POST", "/api/session"): Entry(
        own=lambda h, t, u: Call(json={"username": u, "password": PASSWORD}), ok=ALL
    ),
    ("DELETE", "/api/session"): Entry(own=lambda h, t, u: Call(), ok=ALL),
    ("DELETE", "/api/sessions/others"): Entry(own=lambda h, t, u: Call(), ok=ALL),
    ("GET", "/api/me"): Entry(own=lambda h, t, u: Call(), ok=ALL),
    # --- sites, contacts, channels ---
    ("GET", "/api/sites"): Entry(own=lambda h, t, u: Call(lists=True), ok=ALL),
    ("GET", "/api/sites/{code}"): Entry(
        own=lambda h, t, u: Call({"code": t.code}),
        other=lambda h, t, u: Call({"code": t.code}),
        ok=ALL,
    ),
    ("PUT", "/api/sites/{code}"): Entry(
        own=lambda h, t, u: Call({"code": t.code}, json={"name": t.name}),
        other=lambda h, t, u: Call({"code": t.code}, json={"name": t.name}),
        ok=frozenset({Role.ADMIN}),
    ),
    ("PUT", "/api/sites/{code}/contacts/{contact_id}"): Entry(
        own=lambda h, t, u: Call({"code": t.code, "contact_id": t.contact}, json=t.contact_body),
        other=lambda h, t, u: Call({"code": t.code, "contact_id": t.contact}, json=t.contact_body),
        mixed=lambda h, t, u: Call({"code": h.code, "contact_id": t.contact}, json=h.contact_body),
        ok=frozenset({Role.ADMIN}),
    ),
    ("DELETE", "/api/sites/{code}/contacts/{contact_id}"): Entry(
        own=lambda h, t, u: Call({"code": t.code, "contact_id": t.contact}),
        other=lambda h, t, u: Call({"code": t.code, "contact_id": t.contact}),
        mixed=lambda h, t, u: Call({"code": h.code, "contact_id": t.contact}),
        ok=frozenset({Role.ADMIN}),
        no_op=True,
    ),
    ("GET", "/api/sites/{code}/channels"): Entry(
        own=lambda h, t, u: Call({"code": t.code}),
        other=lambda h, t, u: Call({"code": t.code}),
        ok=SUPERVISING,
    ),
    ("PUT", "/api/sites/{code}/channels/{channel_id}"): Entry(
        own=lambda h, t, u: Call({"code": t.code, "channel_id": t.channel}, json=t.channel_body),
        other=lambda h, t, u: Call({"code": t.code, "channel_id": t.channel}, json=t.channel_body),
        mixed=lambda h, t, u: Call({"code": h.code, "channel_id": t.channel}, json=h.channel_body),
        ok=frozenset({Role.ADMIN}),
    ),
    ("DELETE", "/api/sites/{code}/channels/{channel_id}"): Entry(
        own=lambda h, t, u: Call({"code": t.code, "channel_id": t.channel}),
        other=lambda h, t, u: Call({"code": t.code, "channel_id": t.channel}),
        mixed=lambda h, t, u: Call({"code": h.code, "channel_id": t.channel}),
        ok=frozenset({Role.ADMIN}),
        no_op=True,
    ),
    ("POST", "/api/sites/{code}/channels/{channel_id}/test"): Entry(
        own=lambda h, t, u: Call({"code": t.code, "channel_id": t.channel}),
        other=lambda h, t, u: Call({"code": t.code, "channel_id": t.channel}),
        mixed=lambda h, t, u: Call({"code": h.code, "channel_id": t.channel}),
        ok=frozenset({Role.ADMIN}),
    ),
    # --- people ---
    ("GET", "/api/users"): Entry(
        own=lambda h, t, u: [Call(lists=True), Call(query={"site": t.code}, label="site")],
        other=lambda h, t, u: Call(query={"site": t.code}),
        ok=SUPERVISING,
    ),
    ("PUT", "/api/users/{username}"): Entry(
        own=lambda h, t, u: Call(
            {"username": t.guard},
            json={"display_name": t.guard.title(), "role": "guard", "sites": [t.code]},
        ),
        other=lambda h, t, u: Call(
            {"username": t.guard},
            json={"display_name": t.guard.title(), "role": "guard", "sites": [t.code]},
        ),
        ok=frozenset({Role.ADMIN}),
    ),
    ("PUT", "/api/users/{username}/password"): Entry(
        own=lambda h, t, u: Call({"username": t.guard}, json={}),
        other=lambda h, t, u: Call({"username": t.guard}, json={}),
        ok=frozenset({Role.ADMIN}),
    ),
    ("DELETE", "/api/users/{username}/sessions"): Entry(
        own=lambda h, t, u: Call({"username": t.guard}),
        other=lambda h, t, u: Call({"username": t.guard}),
        ok=frozenset({Role.ADMIN}),
    ),
    # --- reports ---
    ("GET", "/api/reports"): Entry(
        own=lambda h, t, u: [Call(lists=True), Call(query={"site": t.code}, label="site")],
        other=lambda h, t, u: Call(query={"site": t.code}),
        ok=ALL,
    ),
    ("GET", "/api/reports/{report_id}"): Entry(
        own=lambda h, t, u: Call(report_of(t)),
        other=lambda h, t, u: Call(report_of(t)),
        ok=ALL,
    ),
    ("PUT", "/api/reports/{report_id}"): Entry(
        own=lambda h, t, u: [
            new_report(t),
            Call(report_of(t), json=t.report_body, label="resend", ok=frozenset({Role.GUARD})),
        ],
        other=lambda h, t, u: [new_report(t), Call(report_of(t), json=t.report_body)],
        ok=ALL,
    ),
    ("PUT", "/api/reports/{report_id}/steps/{index:int}"): Entry(
        own=lambda h, t, u: Call(
            report_of(t, index="1"), json={"checked_at": iso(datetime.now(UTC))}
        ),
        other=lambda h, t, u: Call(
            report_of(t, index="1"), json={"checked_at": iso(datetime.now(UTC))}
        ),
        ok=frozenset({Role.GUARD}),
    ),
    ("DELETE", "/api/reports/{report_id}/steps/{index:int}"): Entry(
        own=lambda h, t, u: Call(report_of(t, index="1"), query={"at": iso(datetime.now(UTC))}),
        other=lambda h, t, u: Call(report_of(t, index="1"), query={"at": iso(datetime.now(UTC))}),
        ok=frozenset({Role.GUARD}),
    ),
    ("PUT", "/api/reports/{report_id}/acknowledgement"): Entry(
        own=lambda h, t, u: Call(report_of(t), json={}),
        other=lambda h, t, u: Call(report_of(t), json={}),
        ok=SUPERVISING,
    ),
    ("PUT", "/api/reports/{report_id}/assignment"): Entry(
        own=lambda h, t, u: Call(report_of(t), json={"assignee": t.tech}),
        other=lambda h, t, u: Call(report_of(t), json={"assignee": t.tech}),
        ok=SUPERVISING,
    ),
    ("PUT", "/api/reports/{report_id}/reply"): Entry(
        own=lambda h, t, u: Call(report_of(t), json={"text": "电梯已停用，请走楼梯"}),
        other=lambda h, t, u: Call(report_of(t), json={"text": "电梯已停用，请走楼梯"}),
        ok=SUPERVISING,
    ),
    ("PUT", "/api/reports/{report_id}/repair"): Entry(
        own=lambda h, t, u: Call(report_of(t), json={"note": "更换了门机板"}),
        other=lambda h, t, u: Call(report_of(t), json={"note": "更换了门机板"}),
        ok=frozenset({Role.TECHNICIAN}),
    ),
    # Not closable while assigned (409), not reopenable while open (409).
    ("PUT", "/api/reports/{report_id}/closure"): Entry(
        own=lambda h, t, u: Call(report_of(t), json={"note": "已处理"}),
        other=lambda h, t, u: Call(report_of(t), json={"note": "已处理"}),
    ),
    ("DELETE", "/api/reports/{report_id}/closure"): Entry(
        own=lambda h, t, u: Call(report_of(t), json={"reason": "复发"}),
        other=lambda h, t, u: Call(report_of(t), json={"reason": "复发"}),
    ),
    ("PUT", "/api/reports/{report_id}/analysis/{index:int}"): Entry(
        own=lambda h, t, u: Call(report_of(t, index="0"), json={"verdict": "ok"}),
        other=lambda h, t, u: Call(report_of(t, index="0"), json={"verdict": "ok"}),
        ok=SUPERVISING,
    ),
    ("PUT", "/api/reports/{report_id}/actions/{action_id}"): Entry(
        own=lambda h, t, u: Call(report_of(t, action_id=fresh()), json=t.action_body),
        other=lambda h, t, u: [
            Call(report_of(t, action_id=fresh()), json=t.action_body, label="new id"),
            Call(report_of(t, action_id=t.action), json=action_body(t)),
        ],
        mixed=lambda h, t, u: Call(report_of(h, action_id=t.action), json=action_body(h)),
        ok=SUPERVISING,
    ),
    ("PUT", "/api/reports/{report_id}/actions/{action_id}/done"): Entry(
        own=lambda h, t, u: Call(report_of(t, action_id=t.action), json=t.done_body),
        other=lambda h, t, u: Call(report_of(t, action_id=t.action), json=t.done_body),
        mixed=lambda h, t, u: Call(report_of(h, action_id=t.action), json=t.done_body),
        ok=frozenset({Role.TECHNICIAN}),
    ),
    ("PUT", "/api/reports/{report_id}/actions/{action_id}/check"): Entry(
        own=lambda h, t, u: Call(report_of(t, action_id=t.action), json={"passed": True}),
        other=lambda h, t, u: Call(report_of(t, action_id=t.action), json={"passed": True}),
        mixed=lambda h, t, u: Call(report_of(h, action_id=t.action), json={"passed": True}),
        ok=SUPERVISING,
    ),
    ("GET", "/api/reports.csv"): Entry(
        own=lambda h, t, u: [Call(lists=True), Call(query={"site": t.code}, label="site")],
        other=lambda h, t, u: Call(query={"site": t.code}),
        ok=ALL,
    ),
    # --- photos ---
    ("PUT", "/api/reports/{report_id}/photos/{photo_id}"): Entry(
        own=lambda h, t, u: Call(
            report_of(t, photo_id=fresh()), content=jpeg((20, 20, 200)), headers=JPEG
        ),
        other=lambda h, t, u: [
            Call(report_of(t, photo_id=fresh()), content=jpeg((20, 20, 200)), headers=JPEG),
            Call(report_of(t, photo_id=t.photo), content=t.photo_bytes, headers=JPEG),
        ],
        mixed=lambda h, t, u: Call(
            report_of(h, photo_id=t.photo), content=t.photo_bytes, headers=JPEG
        ),
        ok=ALL,
    ),
    ("GET", "/api/reports/{report_id}/photos/{photo_id}"): Entry(
        own=lambda h, t, u: Call(report_of(t, photo_id=t.photo)),
        other=lambda h, t, u: Call(report_of(t, photo_id=t.photo)),
        mixed=lambda h, t, u: Call(report_of(h, photo_id=t.photo)),
        ok=ALL,
    ),
    ("GET", "/api/reports/{report_id}/photos/{photo_id}/thumb"): Entry(
        own=lambda h, t, u: Call(report_of(t, photo_id=t.photo)),
        other=lambda h, t, u: Call(report_of(t, photo_id=t.photo)),
        mixed=lambda h, t, u: Call(report_of(h, photo_id=t.photo)),
        ok=ALL,
    ),
    # --- push ---
    ("GET", "/api/push/key"): Entry(own=lambda h, t, u: Call(), ok=ALL),
    ("PUT", "/api/push/subscriptions"): Entry(
        own=lambda h, t, u: Call(json=subscription(u)), ok=ALL
    ),
    ("DELETE", "/api/push/subscriptions"): Entry(
        own=lambda h, t, u: Call(json={"endpoint": PUSH.format(user=u)}),
        # Another user's device: forgetting it is no error, and changes nothing.
        other=lambda h, t, u: Call(json={"endpoint": t.endpoint}),
        ok=ALL,
        no_op=True,
        per_user=True,
    ),
    ("POST", "/api/push/test"): Entry(own=lambda h, t, u: Call(), ok=ALL),
    # --- the rest ---
    # Public: a site's own layer (?site=, for its members) is in test_playbook_library.
    ("GET", "/api/playbooks"): Entry(
        own=lambda h, t, u: Call(), other=lambda h, t, u: Call(query={"site": t.code}), ok=ALL
    ),
    # --- the playbook library (a site's layer: its own supervisors; the
    # company's: admins; another site's layer is a 422 on site, see
    # tests/routes/test_playbook_library.py) ---
    ("GET", "/api/playbooks/{incident}"): Entry(
        own=lambda h, t, u: Call(LIFT),
        other=lambda h, t, u: Call(LIFT, query={"site": t.code}),
        ok=ALL,
    ),
    ("GET", "/api/playbooks/export"): Entry(own=lambda h, t, u: Call(), ok=SUPERVISING),
    ("GET", "/api/playbooks/{incident}/export"): Entry(
        own=lambda h, t, u: Call(LIFT), ok=SUPERVISING
    ),
    ("POST", "/api/playbooks/import"): Entry(
        own=lambda h, t, u: Call(content=LIFT_EXPORT.encode(), headers=YAML_TYPE),
        ok=frozenset({Role.ADMIN}),
    ),
    ("GET", "/api/playbooks/{incident}/draft"): Entry(
        own=lambda h, t, u: [Call(LIFT, query={"site": t.code}, label="site"), company_call()],
        ok=SUPERVISING,
    ),
    ("PUT", "/api/playbooks/{incident}/draft"): Entry(
        own=lambda h, t, u: [
            Call(LIFT, query={"site": t.code}, json=SITE_LAYER, label="site"),
            company_call(json=COMPANY_LAYER),
        ],
        ok=SUPERVISING,
    ),
    ("DELETE", "/api/playbooks/{incident}/draft"): Entry(
        own=lambda h, t, u: [Call(LIFT, query={"site": t.code}, label="site"), company_call()],
        ok=SUPERVISING,
    ),
    ("POST", "/api/playbooks/{incident}/publish"): Entry(
        # Without a draft, a 409: the publishing itself is in test_playbook_library.
        own=lambda h, t, u: [
            Call(LIFT, query={"site": t.code}, json={"note": "n"}, label="site"),
            Call(LIFT, json={"note": "n"}, label="company"),
        ],
    ),
    ("GET", "/api/playbooks/{incident}/versions"): Entry(
        own=lambda h, t, u: [Call(LIFT), Call(LIFT, query={"site": t.code}, label="site")],
        other=lambda h, t, u: Call(LIFT, query={"site": t.code}),
        ok=ALL,
    ),
    ("GET", "/api/playbooks/{incident}/versions/{version}"): Entry(
        own=lambda h, t, u: Call({**LIFT, "version": "v1"}), ok=ALL
    ),
    ("GET", "/api/playbooks/{incident}/diff"): Entry(
        own=lambda h, t, u: Call(LIFT, query={"before": "v1", "after": "v1"}), ok=ALL
    ),
    ("GET", "/api/stream"): Entry(
        # From the first event on: every event the user may see is replayed.
        own=lambda h, t, u: Call(query={"last_event_id": "0"}, lists=True),
        ok=ALL,
        stream=True,
    ),
}

# Who each route is for, said here as well as by the route (None: public,
# empty: anyone logged in; admins pass every role check): a route whose guard
# changes fails until the matrix agrees.
PUBLIC: frozenset[Role] | None = None
ANYONE: frozenset[Role] = frozenset()
ADMIN = frozenset({Role.ADMIN})
SUPERVISOR = frozenset({Role.SUPERVISOR})
DECLARED: dict[tuple[str, str], frozenset[Role] | None] = {
    ("POST", "/api/session"): PUBLIC,
    ("DELETE", "/api/session"): PUBLIC,
    ("DELETE", "/api/sessions/others"): ANYONE,
    ("GET", "/api/me"): ANYONE,
    ("GET", "/api/sites"): ANYONE,
    ("GET", "/api/sites/{code}"): ANYONE,
    ("PUT", "/api/sites/{code}"): ADMIN,
    ("PUT", "/api/sites/{code}/contacts/{contact_id}"): ADMIN,
    ("DELETE", "/api/sites/{code}/contacts/{contact_id}"): ADMIN,
    ("GET", "/api/sites/{code}/channels"): SUPERVISING,
    ("PUT", "/api/sites/{code}/channels/{channel_id}"): ADMIN,
    ("DELETE", "/api/sites/{code}/channels/{channel_id}"): ADMIN,
    ("POST", "/api/sites/{code}/channels/{channel_id}/test"): ADMIN,
    ("GET", "/api/users"): SUPERVISOR,
    ("PUT", "/api/users/{username}"): ADMIN,
    ("PUT", "/api/users/{username}/password"): ADMIN,
    ("DELETE", "/api/users/{username}/sessions"): ADMIN,
    ("GET", "/api/reports"): ANYONE,
    ("GET", "/api/reports/{report_id}"): ANYONE,
    ("PUT", "/api/reports/{report_id}"): ANYONE,
    ("PUT", "/api/reports/{report_id}/steps/{index:int}"): ANYONE,
    ("DELETE", "/api/reports/{report_id}/steps/{index:int}"): ANYONE,
    ("PUT", "/api/reports/{report_id}/acknowledgement"): SUPERVISOR,
    ("PUT", "/api/reports/{report_id}/assignment"): SUPERVISOR,
    ("PUT", "/api/reports/{report_id}/reply"): SUPERVISOR,
    ("PUT", "/api/reports/{report_id}/repair"): ANYONE,
    ("PUT", "/api/reports/{report_id}/closure"): SUPERVISOR,
    ("DELETE", "/api/reports/{report_id}/closure"): SUPERVISOR,
    ("PUT", "/api/reports/{report_id}/analysis/{index:int}"): SUPERVISOR,
    ("PUT", "/api/reports/{report_id}/actions/{action_id}"): SUPERVISOR,
    ("PUT", "/api/reports/{report_id}/actions/{action_id}/done"): ANYONE,
    ("PUT", "/api/reports/{report_id}/actions/{action_id}/check"): SUPERVISOR,
    ("GET", "/api/reports.csv"): ANYONE,
    ("PUT", "/api/reports/{report_id}/photos/{photo_id}"): ANYONE,
    ("GET", "/api/reports/{report_id}/photos/{photo_id}"): ANYONE,
    ("GET", "/api/reports/{report_id}/photos/{photo_id}/thumb"): ANYONE,
    ("GET", "/api/push/key"): PUBLIC,
    ("PUT", "/api/push/subscriptions"): ANYONE,
    ("DELETE", "/api/push/subscriptions"): ANYONE,
    ("POST", "/api/push/test"): ANYONE,
    ("GET", "/api/playbooks"): PUBLIC,
    ("GET", "/api/playbooks/{incident}"): PUBLIC,
    ("GET", "/api/playbooks/export"): SUPERVISOR,
    ("GET", "/api/playbooks/{incident}/export"): SUPERVISOR,
    ("POST", "/api/playbooks/import"): ADMIN,
    ("GET", "/api/playbooks/{incident}/draft"): SUPERVISOR,
    ("PUT", "/api/playbooks/{incident}/draft"): SUPERVISOR,
    ("DELETE", "/api/playbooks/{incident}/draft"): SUPERVISOR,
    ("POST", "/api/playbooks/{incident}/publish"): SUPERVISOR,
    ("GET", "/api/playbooks/{incident}/versions"): ANYONE,
    ("GET", "/api/playbooks/{incident}/versions/{version}"): ANYONE,
    ("GET", "/api/playbooks/{incident}/diff"): ANYONE,
    ("GET", "/api/stream"): ANYONE,
}

# Access bugs found by this matrix, to be fixed elsewhere: (method, path) -> what happens.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


# --- calling a route --------------------------------------------------------------


def api_routes(app) -> dict[tuple[str, str], ApiRoute]:
    """Every ApiRoute of the app, through Mounts."""
    found: dict[tuple[str, str], ApiRoute] = {}

    def walk(routes) -> None:
        for route in routes:
            if isinstance(route, ApiRoute):
                found[(route.method, route.path)] = route
            elif isinstance(route, Mount):
                walk(route.routes)

    walk(app.routes)
    return found


def plain_api_routes(app) -> set[tuple[str, str]]:
    """Routes under /api that are not ApiRoutes (no declared guard)."""
    plain: set[tuple[str, str]] = set()

    def walk(routes) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes)
            elif (
                isinstance(route, Route)
                and not isinstance(route, ApiRoute)
                and route.path.startswith("/api/")
            ):
                plain.update((m, route.path) for m in route.methods or () if m != "HEAD")

    walk(app.routes)
    return plain


# The only /api route without a guard: the OpenAPI document, public.
PUBLIC_PLAIN = {("GET", "/api/openapi.json")}
# Outside /api, so not in the matrix: the load balancers' health check,
# public by design; it reads no session and says only "ok" or which part
# fails (tests/test_health.py).
PUBLIC_OUTSIDE_API = {("GET", "/healthz")}


def url(route: ApiRoute, params: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        return params[match.group(1)]

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, route.path)


@dataclass
class Answer:
    status: int
    text: str
    headers: httpx.Headers

    @property
    def brief(self) -> str:
        """The start of the answer, for a failure's message."""
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("image/"):
            return f"<{len(self.text)} characters of {ctype}>"
        return self.text[:300]

    @property
    def code(self) -> str | None:
        """The error's code, for a 4xx in the JSON error shape."""
        if self.status < 400:
            return None
        try:
            return json.loads(self.text)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


async def caught_up(app) -> None:
    """Until the app's hub has seen every event committed so far (it polls)."""
    newest = await Event.all().order_by("-id").first()
    async with asyncio.timeout(5):
        while newest and app.state.hub.newest < newest.id:
            await asyncio.sleep(0.01)


async def last_event_for(username: str | None) -> int | None:
    """The id of the newest event of a report ``username`` may see: where a
    replay from the start ends."""
    if username is None:
        return None
    user = await User.get(username=username)
    visible = await reports_visible_to(user)
    newest = (
        await Event.filter(report_id__in=Subquery(visible.values("id"))).order_by("-id").first()
    )
    return newest.id if newest else None


async def read_stream(app, target: str, client: httpx.AsyncClient, username: str | None) -> Answer:
    """A GET of an event stream straight through ASGI (httpx's transport
    hands over a response only once it ends): its status, and what it sent
    up to the newest event the user may see (at most STREAM_WAIT seconds)."""
    await caught_up(app)
    last = await last_event_for(username)
    path, _, query = target.partition("?")
    headers = [(b"host", b"testserver"), (b"accept", b"text/event-stream")]
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    gone = asyncio.Event()
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await messages.put(message)

    task = asyncio.create_task(app(scope, receive, send))
    status, raw_headers, body = 0, [], b""
    try:
        async with asyncio.timeout(STREAM_WAIT):
            while True:
                message = await messages.get()
                if message["type"] == "http.response.start":
                    status, raw_headers = message["status"], message.get("headers", [])
                elif message["type"] == "http.response.body":
                    body += message.get("body", b"")
                    ids = re.findall(rb"^id: *(\d+)", body, re.MULTILINE)
                    if not message.get("more_body", False) or (
                        status == 200 and ids and int(ids[-1]) >= (last or 0)
                    ):
                        break
    except TimeoutError:
        pass
    finally:
        gone.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 5)
    assert status, f"{target}: no answer"
    return Answer(status, body.decode(), httpx.Headers([(k, v) for k, v in raw_headers]))


async def request(
    m: Matrix, client, username: str | None, route: ApiRoute, entry: Entry, call: Call
) -> Answer:
    target = url(route, call.params)
    if entry.stream:
        if call.query:
            target += "?" + urlencode(call.query)
        return await read_stream(m.app, target, client, username)
    response = await client.request(
        route.method,
        target,
        params=call.query,
        json=call.json,
        content=call.content,
        headers=call.headers or CSRF,
    )
    return Answer(response.status_code, response.text, response.headers)


def calls(made: Call | list[Call]) -> list[Call]:
    return made if isinstance(made, list) else [made]


def check_error_shape(where: str, answer: Answer) -> None:
    """A 4xx is the one JSON error shape: {"error": {"code", "message"}}."""
    if 400 <= answer.status < 500:
        ctype = answer.headers.get("content-type", "").split(";")[0]
        assert ctype == "application/json", f"{where}: a {answer.status} as {ctype!r}"
        error = json.loads(answer.text)["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str), where


# --- the tests ----------------------------------------------------------------------


async def test_every_api_route_is_in_the_matrix(app):
    """A new endpoint fails here until MATRIX says how to call it."""
    routes = set(api_routes(app))
    assert routes, "no ApiRoute found"
    missing = sorted(routes - set(MATRIX))
    gone = sorted(set(MATRIX) - routes)
    assert not missing, f"routes with no entry in MATRIX: {missing}"
    assert not gone, f"MATRIX entries of routes that are gone: {gone}"
    assert set(DECLARED) == set(MATRIX), set(DECLARED) ^ set(MATRIX)
    unguarded = plain_api_routes(app) - PUBLIC_PLAIN
    assert not unguarded, f"/api routes that are not ApiRoutes (no declared guard): {unguarded}"


async def test_the_health_check_is_public_outside_the_matrix(app, client):
    plain = {(m, r.path) for r in app.routes if isinstance(r, Route) for m in r.methods or ()}
    assert plain >= PUBLIC_OUTSIDE_API
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


async def test_the_openapi_document_is_public(app, client):
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200


def _params() -> list[Any]:
    params = []
    for key in MATRIX:
        marks = []
        if key in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[key]))
        params.append(pytest.param(key, id=f"{key[0]} {key[1]}", marks=marks))
    return params


@pytest.mark.parametrize("key", _params())
async def test_access(app, settings, matrix, key, record_property):
    route = api_routes(app).get(key)
    assert route is not None, f"{key} is in MATRIX but is no route"
    entry = MATRIX[key]
    declared = DECLARED[key]
    assert (route.login, route.roles) == (declared is not None, declared or frozenset()), (
        f"{key}: the route admits login={route.login} roles={set(route.roles)}, "
        f"the matrix says {declared}"
    )
    m = matrix
    data_dir = settings.data_dir
    admitted = [r for r in ROLES if not route.roles or r in route.roles or r == Role.ADMIN]
    refused = [r for r in ROLES if r not in admitted]
    seen: list[str] = []  # every answer: who, which object, what status

    async def unchanged(before: dict[str, Any], where: str) -> None:
        after = await snapshot(data_dir)
        assert before == after, f"{where} changed {changes(before, after)}"

    async def ask(client, who: str, kind: str, call: Call) -> tuple[str, Answer]:
        answer = await request(m, client, None if who == "anonymous" else who, route, entry, call)
        label = f"{kind}{'/' + call.label if call.label else ''}"
        seen.append(f"{who}:{label}={answer.status}{'/' + answer.code if answer.code else ''}")
        where = f"{route.method} {route.path} as {who} ({label}) -> {answer.status}"
        assert answer.status < 500, f"{where}: {answer.brief}"
        check_error_shape(where, answer)
        return where, answer

    before = await snapshot(data_dir)
    north, south = m.north, m.south

    # 1. Not logged in.
    if route.login:
        for call in calls(entry.own(north, north, "guard")):
            where, answer = await ask(m.anon, "anonymous", "own", call)
            assert answer.status == 401, f"{where}: {answer.brief}"
            assert answer.code == "not_authenticated", where
            await unchanged(before, where)

    # 2. Roles the route does not admit.
    for role in refused:
        user = ACTOR[role]
        for call in calls(entry.own(north, north, user)):
            where, answer = await ask(m.clients[role], user, "own", call)
            assert answer.status == 403, f"{where}: {answer.brief}"
            assert answer.code == "forbidden", where
            await unchanged(before, where)

    # 3. The other site's objects (before anything of the own site changes).
    for role in admitted:
        user = ACTOR[role]
        if entry.other is not None and (role != Role.ADMIN or entry.per_user):
            for call in calls(entry.other(north, south, user)):
                where, answer = await ask(m.clients[role], user, "other", call)
                allowed = {403, 404} | ({200, 204} if entry.no_op else set())
                assert answer.status in allowed, f"{where}: {answer.brief}"
                await unchanged(before, where)
        if entry.mixed is not None:
            for call in calls(entry.mixed(north, south, user)):
                where, answer = await ask(m.clients[role], user, "mixed", call)
                allowed = {403, 404, 409} | ({200, 204} if entry.no_op else set())
                assert answer.status in allowed, f"{where}: {answer.brief}"
                await unchanged(before, where)

    # 4. The user's own site.
    markers = [s.lower() for s in south.markers()]
    if not route.login:
        async with api_client(m.app) as stranger:
            for call in calls(entry.own(north, north, "guard")):
                where, answer = await ask(stranger, "anonymous", "own", call)
                assert 200 <= answer.status < 300, f"{where}: {answer.brief}"
    for role in admitted:
        user = ACTOR[role]
        for call in calls(entry.own(north, north, user)):
            where, answer = await ask(m.clients[role], user, "own", call)
            assert answer.status not in (401, 404), f"{where}: {answer.brief}"
            assert answer.code != "forbidden_site", f"{where}: {answer.brief}"
            must = entry.ok if call.ok is None else call.ok
            if role in must:
                assert 200 <= answer.status < 300, f"{where}: {answer.brief}"
            if entry.stream and answer.status == 200:
                assert "event: report" in answer.text, f"{where}: no event replayed"
            text = answer.text.lower()
            if role == Role.ADMIN:
                if call.lists:
                    assert any(mark in text for mark in markers), (
                        f"{where}: an admin's list shows nothing of the other site"
                    )
            else:
                leaked = [mark for mark in markers if mark in text]
                assert not leaked, f"{where}: names the other site's {leaked}"

    record_property("access", " ".join(seen))
    print(f"{route.method} {route.path}: {' '.join(seen)}")
