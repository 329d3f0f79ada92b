"""The build: one version for everything the phone keeps offline.

The service worker's caches, the ``?v=`` of every asset URL and the worker
script itself all carry ``BUILD``, a hash of the app's front end (templates,
scripts, styles, icons, translations) and of the playbooks. Any change to
them makes a new worker, which precaches the new files and, once the guard
is idle or taps "update", replaces the old caches.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from server import __version__
from server.paths import PLAYBOOK_DIR, PWA_DIR, ROOT, STATIC_DIR

# What a phone needs offline: every script, style and icon. Fonts are the
# system's; photos of reports are never precached.
ASSET_SUFFIXES = {".js", ".css", ".png", ".svg", ".webmanifest"}


def _files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


@cache
def build_id() -> str:
    """A short hash that changes whenever anything the phone caches changes."""
    digest = hashlib.sha256(__version__.encode())
    for path in _files(PWA_DIR, PLAYBOOK_DIR):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@cache
def static_assets() -> tuple[str, ...]:
    """URL paths of the static files a phone keeps, as the pages ask for them."""
    return tuple(
        "/static/" + path.relative_to(STATIC_DIR).as_posix()
        for path in _files(STATIC_DIR)
        if path.suffix in ASSET_SUFFIXES
    )


@cache
def service_worker_script() -> str:
    """The worker with the build written in (read once per process)."""
    return (PWA_DIR / "sw" / "sw.js").read_text().replace("__BUILD__", build_id())
