"""``onsite backup``: the database and the photos together, in one .tar.gz.

The archive holds, in this order:

- ``db/<table>.jsonl``: every row of every table, one JSON object a line,
  read through the Tortoise models (so the same archive restores into SQLite
  or PostgreSQL), tables in dependency order, and ``db/user_site.jsonl``
  for who belongs to which site;
- ``photos/<xx>/<yy>/<id>.<size>.jpg``: the photo store's files or objects,
  by their name in the store (the same in both kinds);
- ``vapid_private.pem`` and ``secret_key``, when they are files in the data
  folder: the push key the devices' subscriptions are bound to, and the key
  that signs session cookies;
- ``photos.sha256``: each photo file's SHA-256 as ``sha256sum`` writes it;
- ``manifest.json``: format, app version, time, rows per table, photo count
  and bytes (last: only then are the counts known).

The rows are read in one transaction (a snapshot on SQLite's WAL, and on
PostgreSQL with REPEATABLE READ), the files after it: a file newer than the
rows is harmless (its row is not in the archive; the next start sweeps it),
and a row whose file went meanwhile is reported as missing by restore.
Everything streams: a table goes through a temporary file in batches, the
photos are listed a page at a time and each size (at most a few hundred KB)
is read whole through the store into the archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.transactions import in_transaction

from server import __version__
from server.db import APP_LABEL
from server.photo_store import FilePhotoStore, PhotoStore

FORMAT = 1
MANIFEST = "manifest.json"
CHECKSUMS = "photos.sha256"
# Files of the data folder that rows depend on: devices' push subscriptions
# are bound to the VAPID key, and session cookies are signed with the secret
# key (when these are files there, not settings).
KEPT_FILES = ("vapid_private.pem", "secret_key")
TABLES = "db"
PHOTOS = "photos"
BATCH = 1000


@dataclass(frozen=True)
class Link:
    """A many-to-many table that has no model of its own (user_site)."""

    table: str
    left: str  # the column of the model that declares it
    right: str


@dataclass
class Summary:
    """What went into (or came out of) an archive."""

    rows: dict[str, int] = field(default_factory=dict)
    photos: int = 0
    photo_bytes: int = 0


def models() -> list[type[Model]]:
    """The app's models, each after every model it points to."""
    pending = dict(Tortoise.apps[APP_LABEL])
    ordered: list[type[Model]] = []
    placed: set[type[Model]] = set()
    while pending:
        ready = [
            name
            for name, model in sorted(pending.items())
            if all(dep in placed or dep is model for dep in _dependencies(model))
        ]
        if not ready:  # a cycle: no model here has one, so a new one would
            raise RuntimeError(f"foreign keys in a cycle among {sorted(pending)}")
        for name in ready:
            placed.add(pending[name])
            ordered.append(pending.pop(name))
    return ordered


def _dependencies(model: type[Model]) -> set[type[Model]]:
    meta = model._meta
    relations: list[Any] = [meta.fields_map[name] for name in meta.fk_fields | meta.o2o_fields]
    return {relation.related_model for relation in relations}


def links() -> list[Link]:
    """The many-to-many tables, once each (from the side that declares them)."""
    found: dict[str, Link] = {}
    for model in Tortoise.apps[APP_LABEL].values():
        for name in model._meta.m2m_fields:
            m2m: Any = model._meta.fields_map[name]
            if not m2m._generated:
                found[m2m.through] = Link(m2m.through, m2m.backward_key, m2m.forward_key)
    return sorted(found.values(), key=lambda link: link.table)


def encode(value: Any) -> Any:
    """``json.dumps``'s default: times, dates, ids and enums as text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} in a backup")


def _line(row: dict[str, Any]) -> bytes:
    return json.dumps(row, default=encode, ensure_ascii=False).encode() + b"\n"


async def _dump_model(model: type[Model], conn: BaseDBAsyncClient, out: IO[bytes]) -> int:
    """Write every row of ``model`` to ``out``, ``BATCH`` at a time, by primary key."""
    pk = model._meta.pk_attr
    count, last = 0, None
    while True:
        query = model.all(using_db=conn).order_by(pk).limit(BATCH)
        if last is not None:
            query = query.filter(**{f"{pk}__gt": last})
        rows = await query.values()
        for row in rows:
            out.write(_line(row))
        count += len(rows)
        if len(rows) < BATCH:
            return count
        last = rows[-1][pk]


async def _dump_link(link: Link, conn: BaseDBAsyncClient, out: IO[bytes]) -> int:
    sql = f'SELECT "{link.left}", "{link.right}" FROM "{link.table}" ORDER BY 1, 2'
    rows = await conn.execute_query_dict(sql)
    for row in rows:
        out.write(_line(row))
    return len(rows)


def _add_file(archive: tarfile.TarFile, name: str, data: IO[bytes], size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(time.time()), 0o600
    archive.addfile(info, data)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    _add_file(archive, name, io.BytesIO(data), len(data))


async def _dump_database(archive: tarfile.TarFile, summary: Summary) -> None:
    async with in_transaction() as conn:
        if conn.capabilities.dialect == "postgres":
            # One snapshot for every table, not one per statement.
            await conn.execute_script("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for model in models():
            table = model._meta.db_table
            with tempfile.TemporaryFile() as out:
                summary.rows[table] = await _dump_model(model, conn, out)
                size = out.tell()
                out.seek(0)
                _add_file(archive, f"{TABLES}/{table}.jsonl", out, size)
        for link in links():
            with tempfile.TemporaryFile() as out:
                summary.rows[link.table] = await _dump_link(link, conn, out)
                size = out.tell()
                out.seek(0)
                _add_file(archive, f"{TABLES}/{link.table}.jsonl", out, size)


async def _dump_photos(archive: tarfile.TarFile, store: PhotoStore, summary: Summary) -> bytes:
    """Every stored size, read through the store (files or S3) one at a time:
    each is small (display or thumbnail), the listing goes a page at a time."""
    sums = io.StringIO()
    async for page in store.pages():
        for name, _ in page:
            data = await store.read(name)
            if data is None:  # deleted since the listing: its row went too
                continue
            _add_bytes(archive, f"{PHOTOS}/{name}", data)
            sums.write(f"{hashlib.sha256(data).hexdigest()}  {PHOTOS}/{name}\n")
            summary.photos += 1
            summary.photo_bytes += len(data)
    return sums.getvalue().encode()


async def backup(
    target: Path, data_dir: Path, now: datetime | None = None, store: PhotoStore | None = None
) -> Summary:
    """Write the archive ``target`` from the open database, ``data_dir`` and
    the photo ``store`` (default: the files under ``data_dir``).

    Written under a temporary name and renamed at the end, so a backup that
    fails half-way never leaves a file that looks like an archive.
    """
    summary = Summary()
    store = store or FilePhotoStore(data_dir / "photos")
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        # Only its owner may read it: it holds password hashes and robots' keys.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
                await _dump_database(archive, summary)
                checksums = await _dump_photos(archive, store, summary)
                for name in KEPT_FILES:
                    if (data_dir / name).is_file():
                        _add_bytes(archive, name, (data_dir / name).read_bytes())
                _add_bytes(archive, CHECKSUMS, checksums)
                manifest = {
                    "format": FORMAT,
                    "app_version": __version__,
                    "created_at": encode(now or datetime.now(UTC)),
                    "tables": summary.rows,
                    "photos": {"count": summary.photos, "bytes": summary.photo_bytes},
                }
                _add_bytes(archive, MANIFEST, json.dumps(manifest, indent=2).encode())
            raw.flush()
            os.fsync(raw.fileno())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return summary
