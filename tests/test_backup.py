"""onsite backup / onsite restore: a deployment saved, wiped, and found again whole."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from tortoise import Tortoise

from server import settings as settings_mod
from server.app import create_app
from server.models import Role, Site
from tests.conftest import (
    CHEAP_HASH_KIB,
    CSRF,
    _admin_dsn,
    api_client,
    login,
    make_user,
    postgres_server_url,
    run_postgres,
)
from tests.routes.test_photos import JPEG, jpeg
from tests.routes.test_reports import iso, lift_id
from tests.test_imaging import PHOTOS, needs_photos

PHONE = PHOTOS / "phone"


def settings_for(data_dir: Path, database_url: str) -> settings_mod.Settings:
    return settings_mod.load(
        {},
        data_dir=data_dir,
        database_url=database_url,
        password_memory_kib=CHEAP_HASH_KIB,
    )


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    """An empty database for the restore: '' (SQLite in the new data folder)
    or a new PostgreSQL database on the test server."""
    url = postgres_server_url()
    if not url:
        yield ""
        return
    base, _ = _admin_dsn(url)
    name = f"onsite_r_{secrets.token_hex(6)}"
    run_postgres(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        run_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


@pytest.fixture
def source(tmp_path: Path, settings: settings_mod.Settings) -> settings_mod.Settings:
    return settings


@pytest.fixture
def target(tmp_path: Path, fresh_url: str) -> settings_mod.Settings:
    return settings_for(tmp_path / "restored", fresh_url)


async def make_backup(
    source: settings_mod.Settings, archive: Path, photos: list[bytes]
) -> tuple[Saved, dict[str, list[str]]]:
    async with running(source) as app:
        await furnish(app, photos)
        saved = await seen(app)
        before = await rows()
        # Taken while the server runs, as a nightly backup would be.
        done = onsite(source, "backup", str(archive))
        assert done.returncode == 0, done.stderr
        assert "backup written" in done.stdout
    return saved, before


def phone_photos() -> list[bytes]:
    return [(PHONE / name).read_bytes() for name in ("jolla.jpg", "HMD_Nokia_8.3_5G.jpg")]


@needs_photos
async def test_a_backup_restores_every_report_event_photo_and_file_on_an_empty_machine(
    source, target, tmp_path
):
    archive = tmp_path / "onsite-backup.tar.gz"
    saved, before = await make_backup(source, archive, [*phone_photos(), jpeg()])
    assert oct(archive.stat().st_mode & 0o777) == "0o600"

    restored = onsite(target, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert "every photo row has its files" in restored.stdout
    assert "photo files          6" in restored.stdout  # three photos, two sizes each

    async with running(target) as app:
        assert await rows() == before  # every row of every table, ids and times kept
        after = await seen(app)
    assert len(saved.reports) == 2
    assert after.reports == saved.reports  # steps, timeline, photos with their checks
    assert len(saved.files) == 6
    assert after.files == saved.files  # the same bytes served


async def test_new_rows_after_a_restore_get_new_ids(source, target, tmp_path):
    """The integer id sequences continue after the restored rows (PostgreSQL's
    are moved; SQLite's follow the table)."""
    archive = tmp_path / "b.tar.gz"
    await make_backup(source, archive, [jpeg()])
    assert onsite(target, "restore", str(archive)).returncode == 0
    async with running(target) as app:
        newest = await Site.all().order_by("-id").first()
        assert newest is not None
        site = await Site.create(code="east", name="东苑")
        assert site.id > newest.id
        async with api_client(app) as client:
            await login(client, "guard")  # a new session row, a new id


async def test_restore_refuses_a_database_that_is_not_empty(source, tmp_path):
    archive = tmp_path / "b.tar.gz"
    _, before = await make_backup(source, archive, [jpeg()])
    refused = onsite(source, "restore", str(archive))
    assert refused.returncode != 0
    assert "the database is not empty" in refused.stderr
    async with running(source):
        assert await rows() == before


async def test_restore_refuses_a_data_folder_that_already_has_photos(source, target, tmp_path):
    archive = tmp_path / "b.tar.gz"
    await make_backup(source, archive, [jpeg()])
    stray = target.data_dir / "photos" / "ab" / "cd" / f"{'ab' * 16}.display.jpg"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    refused = onsite(target, "restore", str(archive))
    assert refused.returncode != 0
    assert "already holds photos" in refused.stderr


async def assert_nothing_restored(target: settings_mod.Settings) -> None:
    async with running(target):
        assert all(not r for r in (await rows()).values())
    leftovers = [p.name for p in target.data_dir.iterdir() if p.name.startswith(".restore")]
    assert not leftovers
    assert not list((target.data_dir / "photos").rglob("*.jpg"))


async def test_a_truncated_archive_is_refused_and_nothing_is_restored(source, target, tmp_path):
    archive = tmp_path / "b.tar.gz"
    await make_backup(source, archive, [jpeg()])
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) * 2 // 3])
    refused = onsite(target, "restore", str(archive))
    assert refused.returncode != 0
    assert "not a whole backup archive" in refused.stderr
    assert "Traceback" not in refused.stderr
    await assert_nothing_restored(target)


def rewrite(archive: Path, change: dict[str, bytes | None], extra: dict[str, bytes]) -> None:
    """The archive again with members replaced (None: left out) and added."""
    with tarfile.open(archive, "r:gz") as old:
        members = [(m, old.extractfile(m).read()) for m in old.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(archive, "w:gz") as new:
        for member, data in members:
            replaced = change.get(member.name, data)
            if replaced is None:
                continue
            member.size = len(replaced)
            new.addfile(member, io.BytesIO(replaced))
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))


def member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive, "r:gz") as tar:
        return tar.extractfile(name).read()  # type: ignore[union-attr]


async def test_rows_that_do_not_go_in_roll_back_every_table(source, target, tmp_path):
    """Sites and users go in before events; an event of a report that is not
    there fails, and the sites and users go too: one transaction."""
    archive = tmp_path / "b.tar.gz"
    await make_backup(source, archive, [jpeg()])
    event = json.loads(member(archive, "db/event.jsonl").splitlines()[0])
    event["id"] += 10_000
    event["report_id"] = str(uuid.uuid4())
    events = member(archive, "db/event.jsonl") + json.dumps(event).encode() + b"\n"
    manifest = json.loads(member(archive, "manifest.json"))
    manifest["tables"]["event"] += 1
    rewrite(archive, {"db/event.jsonl": events, "manifest.json": json.dumps(manifest).encode()}, {})
    refused = onsite(target, "restore", str(archive))
    assert refused.returncode != 0
    assert "nothing was restored" in refused.stderr
    await assert_nothing_restored(target)


async def test_a_damaged_photo_file_is_refused(source, target, tmp_path):
    archive = tmp_path / "b.tar.gz"
    await make_backup(source, archive, [jpeg()])
    with tarfile.open(archive, "r:gz") as tar:
        photo = next(n for n in tar.getnames() if n.startswith("photos/"))
    rewrite(archive, {photo: b"not the photo"}, {})
    refused = onsite(target, "restore", str(archive))
    assert refused.returncode != 0
    assert "damaged" in refused.stderr
    await assert_nothing_restored(target)


@pytest.mark.parametrize("name", ["../escaped.txt", "/tmp/onsite-absolute.txt", "photos/../../x"])
async def test_a_member_outside_the_archive_folder_is_refused(source, target, tmp_path, name):
    archive = tmp_path / "b.tar.gz"
    await make_backup(source, archive, [jpeg()])
    rewrite(archive, {}, {name: b"evil"})
    refused = onsite(target, "restore", str(archive))
    assert refused.returncode != 0
    assert "outside its folder" in refused.stderr
    assert not (target.data_dir.parent / "escaped.txt").exists()
    assert not (tmp_path / "x").exists()
    await assert_nothing_restored(target)


async def test_a_member_a_backup_never_writes_is_refused(source, target, tmp_path):
    archive = tmp_path / "b.tar.gz"
    await make_backup(source, archive, [jpeg()])
    rewrite(archive, {}, {"photos/notes.txt": b"hello"})
    refused = onsite(target, "restore", str(archive))
    assert refused.returncode != 0
    assert "nothing a backup writes" in refused.stderr


def test_a_file_that_is_not_an_archive_is_refused(target, tmp_path):
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"this is not gzip")
    refused = onsite(target, "restore", str(bogus))
    assert refused.returncode != 0
    assert "not a whole backup archive" in refused.stderr


def test_backup_will_not_overwrite_a_file(source, tmp_path):
    there = tmp_path / "there.tar.gz"
    there.write_bytes(b"keep me")
    refused = onsite(source, "backup", str(there))
    assert refused.returncode != 0
    assert "exists already" in refused.stderr
    assert there.read_bytes() == b"keep me"
