"""Where processed photos live, behind one interface: files under the data
folder (the default) or S3-compatible object storage (``ONSITE_PHOTO_STORE``,
see :mod:`server.photo_store_s3`).

Never a public folder or bucket: photos are served only through routes that
check the viewer may see the report, after its row was found. An upload
first *prepares* its photo (the filesystem stages files under names of its
own, temporary name, fsync); only the upload that wins the row insert
*places* it (rename into place, or put under the final keys) inside the
row's transaction, before the commit. So what is served is always what the
row describes (a loser never touches it), there is never a row without its
files, and a crash leaves at worst staged ``.tmp`` files or, in the instant
between placing and commit, an orphan: :meth:`PhotoStore.sweep` deletes
those at the next start and once more after the grace.

Both stores name a photo's sizes alike (:func:`photo_name`), so a backup of
one restores into the other.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from server.settings import Settings

DISPLAY, THUMB = "display", "thumb"
# A placed photo with no row yet may be another server's upload between
# placing and its commit (milliseconds: placing sets the file's or object's time).
ORPHAN_GRACE_S = 10.0
# Names looked at, and rows asked for, at once while sweeping or backing up.
PAGE = 500
NAME = re.compile(rf"^[0-9a-f]{{2}}/[0-9a-f]{{2}}/([0-9a-f]{{32}})\.({DISPLAY}|{THUMB})\.jpg$")

# A file the sweep may delete, with its photo id (None: a staged file).
Candidate = tuple[Path, uuid.UUID | None]
# Given photo ids, those that have a row (asked a page at a time).
HasRows = Callable[[Collection[uuid.UUID]], Awaitable[set[uuid.UUID]]]


def photo_name(photo_id: uuid.UUID, variant: str) -> str:
    """A size's name in either store: two levels of fan-out keep folders
    (and S3 listings by prefix) small with millions of photos."""
    name = photo_id.hex
    return f"{name[:2]}/{name[2:4]}/{name}.{variant}.jpg"


def parse_name(name: str) -> tuple[uuid.UUID, str] | None:
    """The photo id and size of a stored name; None for anything else."""
    match = NAME.match(name)
    return (uuid.UUID(match[1]), match[2]) if match else None


@dataclass(frozen=True)
class Opened:
    """One size of a photo, ready to send: a file (served with range and
    ETag support) or a stream of chunks from object storage."""

    size: int
    path: Path | None = None
    chunks: AsyncIterator[bytes] | None = None


class Pending(Protocol):
    """One upload's photo, prepared but not yet where readers look."""

    async def place(self) -> None:
        """Put it where readers look; called inside the row's transaction
        by the upload that inserted the row. On failure nothing is left."""

    async def drop(self) -> None:
        """Forget what was not placed (a lost race, a failed insert)."""


class PhotoStore(Protocol):
    """What the app needs of a photo store (files or S3-compatible)."""

    where: str  # for messages: the folder, or s3://bucket/prefix

    async def prepare(self, photo_id: uuid.UUID, variants: Mapping[str, bytes]) -> Pending: ...

    async def open(self, photo_id: uuid.UUID, variant: str) -> Opened | None:
        """The size to serve, or None when it is not stored."""

    async def sweep(
        self, has_rows: HasRows, min_age_s: float = ORPHAN_GRACE_S, *, before_start: bool = False
    ) -> int:
        """Delete photos with no row older than ``min_age_s`` (with
        ``before_start``, only those placed before this start) and what a
        crash left half-written; the number deleted."""

    def pages(self) -> AsyncIterator[list[tuple[str, int]]]:
        """Every stored size as (name, bytes), a page at a time, in name order."""

    async def read(self, name: str) -> bytes | None:
        """A stored size's bytes (small: display and thumbnail only), None if gone."""

    async def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` at once (a restore)."""

    async def remove(self, names: Collection[str]) -> None: ...

    async def size(self, photo_id: uuid.UUID, variant: str) -> int | None: ...

    async def is_empty(self) -> bool: ...


@dataclass
class Staged:
    """One upload's files, written but not yet in place."""

    moves: dict[Path, Path] = field(default_factory=dict)  # temporary name -> final name

    def publish(self) -> None:
        """Rename into place (fsynced): what readers of the final names see from now."""
        folders = set()
        for tmp, final in list(self.moves.items()):
            os.utime(tmp)  # the grace of remove_orphans counts from now
            os.replace(tmp, final)
            del self.moves[tmp]
            folders.add(final.parent)
        for folder in folders:
            _fsync_dir(folder)  # the rename itself survives a power cut

    def discard(self) -> None:
        """Delete what was not published (a lost race, a failed insert)."""
        for tmp in self.moves:
            tmp.unlink(missing_ok=True)
        self.moves.clear()

    async def place(self) -> None:
        await anyio.to_thread.run_sync(self.publish)

    async def drop(self) -> None:
        self.discard()  # quick: unlinks only


class FilePhotoStore:
    """Photos as files under ``root`` (DATA_DIR/photos), put in place atomically."""

    def __init__(self, root: Path, started: float | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.where = str(root)
        # Staged files from before this start belong to no upload in flight here.
        self.started = time.time() if started is None else started

    def path(self, photo_id: uuid.UUID, variant: str) -> Path:
        return self.root / photo_name(photo_id, variant)

    def stage(self, photo_id: uuid.UUID, variants: Mapping[str, bytes]) -> Staged:
        """Write each variant under a name of this attempt's own (fsynced)."""
        staged = Staged()
        try:
            for variant, data in variants.items():
                final = self.path(photo_id, variant)
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
                staged.moves[tmp] = final
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
        except BaseException:
            staged.discard()
            raise
        return staged

    def write(self, photo_id: uuid.UUID, variant: str, data: bytes) -> Path:
        """Stage and publish at once: readers see the whole old file or the whole new one."""
        self.stage(photo_id, {variant: data}).publish()
        return self.path(photo_id, variant)

    def delete(self, photo_id: uuid.UUID) -> None:
        for variant in (DISPLAY, THUMB):
            self.path(photo_id, variant).unlink(missing_ok=True)

    def files(self) -> Iterable[Path]:
        return self.root.glob("*/*/*.jpg")

    def temporaries(self) -> Iterable[Path]:
        return self.root.glob("*/*/.*.tmp")

    async def prepare(self, photo_id: uuid.UUID, variants: Mapping[str, bytes]) -> Staged:
        return await anyio.to_thread.run_sync(self.stage, photo_id, variants)

    async def open(self, photo_id: uuid.UUID, variant: str) -> Opened | None:
        path = self.path(photo_id, variant)
        try:
            return Opened(size=path.stat().st_size, path=path)
        except FileNotFoundError:
            return None

    def _stale(
        self, min_age_s: float, before_start: bool
    ) -> Iterator[tuple[Path, uuid.UUID | None]]:
        """Files that go unless they have a row (with their id), and staged
        files from before this start (id None: they go whatever the rows)."""
        cutoff = time.time() - min_age_s
        if before_start:
            cutoff = min(cutoff, self.started)
        for path in [*self.files(), *self.temporaries()]:
            try:
                mtime = path.stat().st_mtime
                photo_id = uuid.UUID(path.name.lstrip(".").split(".")[0])
            except (OSError, ValueError):
                continue
            if path.suffix == ".tmp":
                if mtime < self.started:
                    yield path, None
            elif mtime < cutoff:
                yield path, photo_id

    def remove_orphans(
        self,
        known: set[uuid.UUID],
        min_age_s: float = ORPHAN_GRACE_S,
        *,
        before_start: bool = False,
    ) -> int:
        """Delete what a crash or a lost race left: staged files from before
        this start, and files with no row (not in ``known``) older than
        ``min_age_s`` (with ``before_start``, only those placed before this start).

        Both guards spare another app server's upload in flight: its staged
        files are newer than this start, and a file it has just published is
        newer than the grace until its row is committed.
        """
        gone = [p for p, pid in self._stale(min_age_s, before_start) if pid not in known]
        return _unlink_all(gone)

    async def sweep(
        self, has_rows: HasRows, min_age_s: float = ORPHAN_GRACE_S, *, before_start: bool = False
    ) -> int:
        """:meth:`remove_orphans`, asking for the rows a page of files at a time."""
        stale = self._stale(min_age_s, before_start)
        removed = 0
        while batch := await anyio.to_thread.run_sync(_take, stale):
            known = await has_rows({pid for _, pid in batch if pid is not None})
            gone = [path for path, pid in batch if pid is None or pid not in known]
            removed += await anyio.to_thread.run_sync(_unlink_all, gone)
        return removed

    async def pages(self) -> AsyncIterator[list[tuple[str, int]]]:
        names = iter(sorted(p.relative_to(self.root).as_posix() for p in self.files()))
        while page := list(itertools.islice(names, PAGE)):
            sized = []
            for name in page:
                if parse_name(name) is None:
                    continue
                try:
                    sized.append((name, (self.root / name).stat().st_size))
                except FileNotFoundError:  # deleted since the listing: its row went too
                    continue
            yield sized

    async def read(self, name: str) -> bytes | None:
        try:
            return await anyio.Path(self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    async def put(self, name: str, data: bytes) -> None:
        parsed = parse_name(name)
        if parsed is None:
            raise ValueError(f"not a photo's name: {name!r}")
        await anyio.to_thread.run_sync(self.write, *parsed, data)

    async def remove(self, names: Collection[str]) -> None:
        for name in names:
            (self.root / name).unlink(missing_ok=True)

    async def size(self, photo_id: uuid.UUID, variant: str) -> int | None:
        opened = await self.open(photo_id, variant)
        return None if opened is None else opened.size

    async def is_empty(self) -> bool:
        return next(iter(self.files()), None) is None


def _take(items: Iterator[Candidate]) -> list[Candidate]:
    return list(itertools.islice(items, PAGE))


def _unlink_all(paths: Iterable[Path]) -> int:
    removed = 0
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_store(settings: Settings) -> PhotoStore:
    """The store ``ONSITE_PHOTO_STORE`` names: files under DATA_DIR/photos
    when empty, else the S3-compatible bucket and prefix."""
    if not settings.photo_store:
        return FilePhotoStore(settings.data_dir / "photos")
    from server.photo_store_s3 import S3PhotoStore

    return S3PhotoStore.from_settings(settings)
