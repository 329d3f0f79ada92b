"""A deployment furnished, seen and saved through the real commands, for the backup tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager
from tortoise import Tortoise

from server import settings as settings_mod
from server.app import create_app
from server.models import Role, Site
from tests.helpers.core import CHEAP_HASH_KIB, CSRF, api_client, login, make_user
from tests.helpers.photos import JPEG
from tests.helpers.reports import iso, lift_id


def settings_for(data_dir: Path, database_url: str) -> settings_mod.Settings:
    return settings_mod.load(
        {},
        data_dir=data_dir,
        database_url=database_url,
        password_memory_kib=CHEAP_HASH_KIB,
    )


def onsite(settings: settings_mod.Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The onsite command in a process of its own, on ``settings``' data and
    photo store (the filesystem, or a bucket)."""
    env = {
        **os.environ,
        "ONSITE_DATA_DIR": str(settings.data_dir),
        "ONSITE_DATABASE_URL": settings.database_url,
        "ONSITE_PHOTO_STORE": settings.photo_store,
        "ONSITE_S3_ENDPOINT": settings.s3_endpoint,
        "ONSITE_S3_REGION": settings.s3_region,
        "ONSITE_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "ONSITE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key,
    }
    env.pop("ONSITE_SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@asynccontextmanager
async def running(settings: settings_mod.Settings) -> AsyncIterator[Any]:
    app = create_app(settings, apply_migrations=False)
    async with LifespanManager(app, shutdown_timeout=20):
        yield app


@dataclass
class Saved:
    """What the source deployment showed through its API before the backup."""

    reports: dict[str, Any] = field(default_factory=dict)  # id -> the report's JSON
    files: dict[str, bytes] = field(default_factory=dict)  # photo URL -> bytes served
    rows: dict[str, Any] = field(default_factory=dict)


async def rows() -> dict[str, list[str]]:
    """Every row of every table, and who belongs to which site."""
    state: dict[str, list[str]] = {}
    for name, model in Tortoise.apps["onsite"].items():
        state[name] = sorted(map(repr, await model.all().values()))
    conn = Tortoise.get_connection("default")
    links = await conn.execute_query_dict("SELECT user_id, site_id FROM user_site")
    state["user_site"] = sorted(map(repr, links))
    return state


async def furnish(app: Any, photos: list[bytes]) -> None:
    """Two sites, their staff, a report on each with steps and a timeline,
    ``photos`` on the first (evidence, and a repair photo)."""
    north = await Site.create(code="north", name="北苑")
    south = await Site.create(code="south", name="南苑")
    await make_user("guard", Role.GUARD, north)
    await make_user("tech", Role.TECHNICIAN, north)
    await make_user("super", Role.SUPERVISOR, north, south)
    await make_user("admin", Role.ADMIN)
    await make_user("southguard", Role.GUARD, south)
    start = datetime.now(UTC) - timedelta(minutes=5)
    for code, guard in (("north", "guard"), ("south", "southguard")):
        async with api_client(app) as client:
            await login(client, guard)
            rid = uuid.uuid4()
            body = {
                "site": code,
                "incident_type": lift_id(app),
                "severity": "high",
                "occurred_at": iso(start),
                "location": {"text": "3栋 电梯", "lat": 22.54, "lng": 114.05, "accuracy_m": 12.5},
                "notes": "两人被困",
                "steps": [{"index": 0, "checked_at": iso(start + timedelta(seconds=10))}],
            }
            made = await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)
            assert made.status_code == 201, made.text
            if code == "north":
                for data in photos:
                    put = await client.put(
                        f"/api/reports/{rid}/photos/{uuid.uuid4()}", content=data, headers=JPEG
                    )
                    assert put.status_code == 201, put.text
        async with api_client(app) as sup:
            await login(sup, "super")
            ack = await sup.put(f"/api/reports/{rid}/acknowledgement", json={}, headers=CSRF)
            assert ack.status_code in (200, 201), ack.text
            if code == "north":
                assigned = await sup.put(
                    f"/api/reports/{rid}/assignment", json={"assignee": "tech"}, headers=CSRF
                )
                assert assigned.status_code in (200, 201), assigned.text


async def seen(app: Any) -> Saved:
    """Every report and every photo file, as an admin sees them through the API."""
    saved = Saved()
    async with api_client(app) as admin:
        await login(admin, "admin")
        listed = (await admin.get("/api/reports", params={"limit": 100})).json()
        assert listed["next_cursor"] is None
        for item in listed["reports"]:
            report = (await admin.get(f"/api/reports/{item['id']}")).json()
            saved.reports[item["id"]] = report
            for photo in report["photos"]:
                for url in (photo["url"], photo["thumbnail_url"]):
                    served = await admin.get(url)
                    assert served.status_code == 200
                    saved.files[url] = served.content
    return saved
