"""``onsite restore``: an archive of ``onsite backup`` back into an empty deployment.

The rule: restore only into an empty database and an empty photo store (a
new machine, or a fresh database and data folder). Anything else is refused
before a thing changes; there is no option to restore over live data, so
a mistyped database URL cannot merge two deployments or lose one.

The archive is first read to its end into a folder beside the photo store:
each member's name is checked (only the names a backup writes; never an
absolute path or ``..``), each photo's SHA-256 against ``photos.sha256``,
and a truncated or corrupt archive stops here. Then, in one transaction,
the rows go in, table after table in dependency order with their own ids
(PostgreSQL's id sequences are moved past them), their counts are checked
against the manifest, and the photo files are moved into the store; a
failure anywhere rolls the rows back and takes the files out again.

A photo row's ``sha256`` is of the upload, which is not kept (only the
re-encoded display and thumbnail sizes are), so each row is checked against
its files by their presence and sizes; the summary names any row whose
file is missing.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from tortoise import Tortoise, fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import BaseORMException
from tortoise.models import Model
from tortoise.transactions import in_transaction

from server.backup import (
    BATCH,
    CHECKSUMS,
    FORMAT,
    KEPT_FILES,
    MANIFEST,
    PHOTOS,
    TABLES,
    Summary,
    links,
    models,
)
from server.models import Photo, PlaybookVersion
from server.photo_store import DISPLAY, THUMB, FilePhotoStore, PhotoStore

# Every name a backup writes; nothing else is taken from an archive.
ALLOWED = re.compile(
    rf"^(?:{TABLES}/[a-z_][a-z0-9_]*\.jsonl"
    rf"|{PHOTOS}/[0-9a-f]{{2}}/[0-9a-f]{{2}}/[0-9a-f]{{32}}\.(?:{DISPLAY}|{THUMB})\.jpg"
    rf"|{'|'.join(map(re.escape, (MANIFEST, CHECKSUMS, *KEPT_FILES)))})$"
)
CHUNK = 1 << 20


class RestoreError(Exception):
    """The archive or the target is not fit for a restore; nothing was changed."""


@dataclass
class Restored:
    """What a restore brought back, and what it could not find."""

    manifest: dict[str, Any]
    summary: Summary = field(default_factory=Summary)
    missing: list[str] = field(default_factory=list)  # photo rows without a fitting file


def _checked_name(member: tarfile.TarInfo) -> str:
    name = member.name
    if name.startswith(("/", "\\")) or ".." in Path(name).parts or ".." in name.split("\\"):
        raise RestoreError(f"refused: the archive names a path outside its folder ({name!r})")
    if not member.isfile():
        raise RestoreError(f"refused: {name!r} is not a plain file")
    if not ALLOWED.match(name):
        raise RestoreError(f"refused: {name!r} is nothing a backup writes")
    return name


def unpack(source: Path, staging: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Read ``source`` to its end into ``staging``: its manifest, and the
    SHA-256 of each photo file as read."""
    hashes: dict[str, str] = {}
    try:
        with tarfile.open(source, "r:gz") as archive:
            for member in archive:
                name = _checked_name(member)
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                reader = archive.extractfile(member)
                assert reader is not None  # a plain file, checked above
                digest = hashlib.sha256()
                try:
                    with reader, target.open("xb") as out:
                        while chunk := reader.read(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                except FileExistsError:
                    raise RestoreError(f"refused: {name!r} is in the archive twice") from None
                hashes[name] = digest.hexdigest()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise RestoreError(f"{source} is not a whole backup archive: {exc}") from None
    try:
        manifest = json.loads((staging / MANIFEST).read_text())
    except (OSError, ValueError):
        raise RestoreError(f"{source} has no readable {MANIFEST}: not a backup of onsite") from None
    if manifest.get("format") != FORMAT:
        raise RestoreError(
            f"{source} is a backup of format {manifest.get('format')!r}; "
            f"this version reads format {FORMAT}"
        )
    _check_photos(source, staging, hashes)
    return manifest, hashes


def _check_photos(source: Path, staging: Path, hashes: dict[str, str]) -> None:
    try:
        lines = (staging / CHECKSUMS).read_text().splitlines()
    except OSError:
        raise RestoreError(f"{source} has no {CHECKSUMS}") from None
    listed: dict[str, str] = {}
    for line in filter(None, lines):
        digest, _, name = line.partition("  ")
        listed[name] = digest
    photos = {name for name in hashes if name.startswith(f"{PHOTOS}/")}
    if set(listed) != photos:
        raise RestoreError(f"{source}: its photo files are not those its {CHECKSUMS} lists")
    bad = sorted(name for name in photos if hashes[name] != listed[name])
    if bad:
        raise RestoreError(f"{source}: {len(bad)} photo file(s) damaged, the first {bad[0]}")


def _shipped_only() -> Any:
    """The versions the app publishes of itself at its first start: the
    shipped playbooks, by no one. A database holding only these is empty."""
    return PlaybookVersion.filter(author_id__isnull=True, scope=0)


async def ensure_empty(store: PhotoStore) -> None:
    """Refuse a target that holds anything: rows in any table (but the
    shipped playbooks an app start published), or photo files."""
    full = [
        m._meta.db_table
        for m in models()
        if await m.exists()
        and not (
            m is PlaybookVersion
            and await PlaybookVersion.all().count() == await _shipped_only().count()
        )
    ]
    conn = Tortoise.get_connection("default")
    for link in links():
        if await conn.execute_query_dict(f'SELECT 1 FROM "{link.table}" LIMIT 1'):
            full.append(link.table)
    if full:
        raise RestoreError(
            "refused: the database is not empty (rows in "
            + ", ".join(full)
            + "); restore only into a new, empty database"
        )
    if not await store.is_empty():
        raise RestoreError(
            f"refused: {store.where} already holds photos; use an empty data folder or prefix"
        )


def _rows(path: Path) -> Iterator[list[dict[str, Any]]]:
    """The rows of one table's file, ``BATCH`` at a time."""
    if not path.exists():  # a table newer than the archive: it stays empty
        return
    batch: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            batch.append(json.loads(line))
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _instance(model: type[Model], row: dict[str, Any]) -> Model:
    for name, value in row.items():
        # A JSON field takes text as JSON to decode: a bare string is kept so.
        if isinstance(value, str) and isinstance(
            model._meta.fields_map.get(name), fields.JSONField
        ):
            row[name] = json.dumps(value)
    return model(**row)


@contextlib.contextmanager
def _times_as_stored() -> Iterator[None]:
    """Insert created_at and updated_at as they are in the archive, not now."""
    changed = []
    for model in models():
        for f in model._meta.fields_map.values():
            if isinstance(f, fields.DatetimeField) and (f.auto_now or f.auto_now_add):
                changed.append((f, f.auto_now, f.auto_now_add))
                f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, now, now_add in changed:
            f.auto_now, f.auto_now_add = now, now_add


async def _insert(staging: Path, conn: BaseDBAsyncClient, summary: Summary) -> None:
    known = {m._meta.db_table for m in models()} | {link.table for link in links()}
    extra = sorted(p.stem for p in (staging / TABLES).glob("*.jsonl") if p.stem not in known)
    if extra:
        raise RestoreError(f"the archive has tables this version does not know: {extra}")
    with _times_as_stored():
        for model in models():
            table = model._meta.db_table
            summary.rows[table] = 0
            for batch in _rows(staging / TABLES / f"{table}.jsonl"):
                objects = [_instance(model, row) for row in batch]
                await model.bulk_create(objects, using_db=conn)
                summary.rows[table] += len(objects)
    postgres = conn.capabilities.dialect == "postgres"
    for link in links():
        mark = "$1, $2" if postgres else "?, ?"
        sql = f'INSERT INTO "{link.table}" ("{link.left}", "{link.right}") VALUES ({mark})'
        summary.rows[link.table] = 0
        for batch in _rows(staging / TABLES / f"{link.table}.jsonl"):
            await conn.execute_many(sql, [[row[link.left], row[link.right]] for row in batch])
            summary.rows[link.table] += len(batch)
    if postgres:
        # Ids were given, so the sequences never moved: the next row would
        # take id 1 again.
        for model in models():
            pk = model._meta.pk
            if pk.generated:
                table, column = model._meta.db_table, pk.source_field or pk.model_field_name
                await conn.execute_query(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
                    f'MAX("{column}")) FROM "{table}" HAVING MAX("{column}") IS NOT NULL'
                )


async def _place_files(
    staging: Path, store: PhotoStore, data_dir: Path, placed: dict[str, int]
) -> None:
    for path in sorted((staging / PHOTOS).glob("*/*/*.jpg")):
        name = path.relative_to(staging / PHOTOS).as_posix()
        data = path.read_bytes()  # one size of one photo: a few hundred KB at most
        placed[name] = len(data)  # before the put: a failed put is taken out too
        await store.put(name, data)
    for name in KEPT_FILES:
        if (staging / name).exists():
            # The database was empty, so nothing depends on the keys made
            # here: the archive's are those its subscriptions and sessions know.
            os.replace(staging / name, data_dir / name)


async def _missing(store: PhotoStore) -> list[str]:
    """Photo rows whose files are absent or not of the size the row says."""
    missing = []
    rows = await Photo.all().order_by("id").values_list("id", "display_bytes", "thumb_bytes")
    for photo_id, *sizes in rows:
        for variant, size in zip((DISPLAY, THUMB), sizes, strict=True):
            if await store.size(uuid.UUID(str(photo_id)), variant) != size:
                missing.append(f"{photo_id} ({variant})")
    return missing


async def restore(source: Path, data_dir: Path, store: PhotoStore | None = None) -> Restored:
    """Restore ``source`` into the open (migrated, empty) database, ``data_dir``
    and the photo ``store`` (default: the files under ``data_dir``)."""
    store = store or FilePhotoStore(data_dir / "photos")
    await ensure_empty(store)
    staging = data_dir / f".restore-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    placed: dict[str, int] = {}
    try:
        manifest, _ = unpack(source, staging)
        restored = Restored(manifest)
        try:
            async with in_transaction() as conn:
                if (staging / TABLES / f"{PlaybookVersion._meta.db_table}.jsonl").exists():
                    # The archive's library replaces what a first start published.
                    await _shipped_only().using_db(conn).delete()
                await _insert(staging, conn, restored.summary)
                expected = manifest.get("tables", {})
                wrong = {
                    t: (n, restored.summary.rows.get(t, 0))
                    for t, n in expected.items()
                    if restored.summary.rows.get(t, 0) != n
                }
                if wrong:
                    raise RestoreError(f"rows read differ from the manifest's count: {wrong}")
                await _place_files(staging, store, data_dir, placed)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await store.remove(placed)
            if isinstance(exc, ValueError | KeyError | TypeError | BaseORMException):
                raise RestoreError(
                    f"{source}: its rows do not go in ({type(exc).__name__}: {exc}); "
                    "nothing was restored"
                ) from exc
            raise
        restored.summary.photos = len(placed)
        restored.summary.photo_bytes = sum(placed.values())
        restored.missing = await _missing(store)
        return restored
    finally:
        shutil.rmtree(staging, ignore_errors=True)
