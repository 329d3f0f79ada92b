"""The build: one version for everything the phone keeps offline.

The service worker's caches, the ``?v=`` of every asset URL and the worker
script itself all carry ``BUILD``, a hash of the app's front end (templates,
scripts, styles, icons, translations) and of the playbooks. Any change to
them makes a new worker, which precaches the new files and, once the guard
is idle or taps "update", replaces the old caches.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
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


# Static imports of an ES module: ``import x from "./a.js"``, ``import "./a.js"``,
# ``export { x } from "./a.js"`` (dynamic ``import()`` loads later, by choice).
_IMPORT = re.compile(
    r"""(?:^|;)\s*(?:import\s*(?:[^;'"()]*?\bfrom\s*)?|export\b[^;'"()]*?\bfrom\s*)['"]([^'"]+)['"]""",
    re.M,
)
# A page's entry scripts, as drawn (scripts a template loads only for some
# roles are preloaded only where they are drawn).
_SCRIPT = re.compile(r'<script\s+type="module"\s+src="([^"]+)"')
PRELOAD_MARK = "<!-- modulepreload -->"


def _imports(url: str) -> tuple[str, ...]:
    """The URLs a static module imports, resolved as the browser resolves them."""
    path = STATIC_DIR / url.split("?", 1)[0].removeprefix("/static/")
    text = path.read_text() if path.is_file() else ""
    base = posixpath.dirname(url.split("?", 1)[0])
    found = []
    for spec in _IMPORT.findall(text):
        if spec.startswith(("./", "../")):
            found.append(posixpath.normpath(posixpath.join(base, spec)))
        elif spec.startswith("/"):
            found.append(spec)
    return tuple(found)


@cache
def module_graph(entry: str) -> tuple[str, ...]:
    """Every module ``entry`` needs before it runs, ``entry`` first, each once.

    URLs are exactly what the browser requests: the entry as the page names
    it (``/static/js/app.js?v=<build>``), its imports without a query, since
    relative imports carry none. A preload of any other URL would be a
    second download, never used.
    """
    seen: list[str] = []
    todo = [entry]
    while todo:
        url = todo.pop(0)
        if url not in seen:
            seen.append(url)
            todo.extend(_imports(url))
    return tuple(seen)


def with_preloads(html: str) -> str:
    """``html`` with a ``<link rel="modulepreload">`` in place of its mark for
    every module its scripts need: the whole static import graph of each, so
    the browser fetches them at once instead of a level per round trip."""
    if PRELOAD_MARK not in html:
        return html
    urls: list[str] = []
    for entry in _SCRIPT.findall(html):
        urls.extend(u for u in module_graph(entry) if u not in urls)
    links = "\n  ".join(f'<link rel="modulepreload" href="{url}">' for url in urls)
    return html.replace(PRELOAD_MARK, links, 1)
