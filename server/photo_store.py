"""Where processed photos live: files written atomically under the data folder.

Never a public folder: photos are served only through routes that check the
viewer may see the report. A file is written (temporary name, fsync, rename)
before its database row, so a crash leaves at worst an orphan file, which
``remove_orphans`` deletes; never a row without its file.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

DISPLAY, THUMB = "display", "thumb"


class PhotoStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, photo_id: uuid.UUID, variant: str) -> Path:
        name = photo_id.hex
        # Two levels of fan-out keep folders small with millions of photos.
        return self.root / name[:2] / name[2:4] / f"{name}.{variant}.jpg"

    def write(self, photo_id: uuid.UUID, variant: str, data: bytes) -> Path:
        """Write atomically: readers see the whole old file or the whole new one."""
        final = self.path(photo_id, variant)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
        return final

    def delete(self, photo_id: uuid.UUID) -> None:
        for variant in (DISPLAY, THUMB):
            self.path(photo_id, variant).unlink(missing_ok=True)

    def files(self) -> Iterable[Path]:
        return self.root.glob("*/*/*.jpg")

    def remove_orphans(self, known: set[uuid.UUID], min_age_s: float = 3600) -> int:
        """Delete files (and stale temporaries) with no row, older than ``min_age_s``.

        The age guard spares an upload that has written its files and is about
        to insert its row.
        """
        cutoff = time.time() - min_age_s
        removed = 0
        for path in [*self.files(), *self.root.glob("*/*/.*.tmp")]:
            try:
                if path.stat().st_mtime > cutoff:
                    continue
                photo_id = uuid.UUID(path.name.lstrip(".").split(".")[0])
            except (OSError, ValueError):
                continue
            if path.suffix == ".tmp" or photo_id not in known:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
