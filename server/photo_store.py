"""Where processed photos live: files put in place atomically under the data folder.

Never a public folder: photos are served only through routes that check the
viewer may see the report. An upload first *stages* its files under names
of its own (temporary name, fsync); only the upload that wins the row insert
*publishes* them (rename into place) inside the row's transaction, before
the commit. So the file served is always the one the row describes (a loser
never touches it), there is never a row without its files, and a crash
leaves at worst staged ``.tmp`` files or, in the instant between rename and
commit, an orphan: ``remove_orphans`` deletes both at the next start.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DISPLAY, THUMB = "display", "thumb"
# A published file with no row yet may be another server's upload between
# its rename and its commit (milliseconds: publishing sets the file's time).
ORPHAN_GRACE_S = 10.0


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


class PhotoStore:
    def __init__(self, root: Path, started: float | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        # Staged files from before this start belong to no upload in flight here.
        self.started = time.time() if started is None else started

    def path(self, photo_id: uuid.UUID, variant: str) -> Path:
        name = photo_id.hex
        # Two levels of fan-out keep folders small with millions of photos.
        return self.root / name[:2] / name[2:4] / f"{name}.{variant}.jpg"

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

    def remove_orphans(
        self,
        known: set[uuid.UUID],
        min_age_s: float = ORPHAN_GRACE_S,
        *,
        before_start: bool = False,
    ) -> int:
        """Delete what a crash or a lost race left: staged files from before
        this start, and files with no row older than ``min_age_s`` (with
        ``before_start``, only those placed before this start).

        Both guards spare another app server's upload in flight: its staged
        files are newer than this start, and a file it has just published is
        newer than the grace until its row is committed.
        """
        cutoff = time.time() - min_age_s
        if before_start:
            cutoff = min(cutoff, self.started)
        removed = 0
        for path in [*self.files(), *self.temporaries()]:
            try:
                mtime = path.stat().st_mtime
                photo_id = uuid.UUID(path.name.lstrip(".").split(".")[0])
            except (OSError, ValueError):
                continue
            if path.suffix == ".tmp":
                stale = mtime < self.started
            else:
                stale = mtime < cutoff and photo_id not in known
            if stale:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
