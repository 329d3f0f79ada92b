"""Where the app's own files are: the one place that knows the repo's layout."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PWA_DIR = ROOT / "pwa"
STATIC_DIR = PWA_DIR / "static"
TEMPLATE_DIR = PWA_DIR / "templates"
CATALOG_DIR = PWA_DIR / "translations"
PLAYBOOK_DIR = ROOT / "playbooks"
MIGRATIONS_DIR = ROOT / "migrations"
