"""onsite backup / onsite restore: a deployment saved, wiped, and found again whole."""

from __future__ import annotations

import io
import json
import secrets
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import settings as settings_mod
from server.models import PlaybookVersion, Site
from server.playbook_book import SHIPPED_NOTE
from tests.conftest import (
    admin_dsn,
    api_client,
    login,
    postgres_server_url,
    run_postgres,
)
from tests.helpers.backup import Saved, furnish, onsite, rows, running, seen, settings_for
from tests.helpers.photos import PHOTOS, jpeg

PHONE = PHOTOS / "phone"


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    """An empty database for the restore: '' (SQLite in the new data folder)
    or a new PostgreSQL database on the test server."""
    url = postgres_server_url()
    if not url:
        yield ""
        return
    base, _ = admin_dsn(url)
    name = f"onsite_r_{secrets.token_hex(6)}"
    run_postgres(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        run_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
        found = await rows()
        # What every start publishes of itself: the shipped playbooks, by no one.
        shipped = await PlaybookVersion.all()
        assert shipped and all(v.author_id is None and v.note == SHIPPED_NOTE for v in shipped)
        found.pop("PlaybookVersion")
        assert all(not r for r in found.values())
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
