"""The incident playbooks: YAML under playbooks/, validated, loaded into frozen dataclasses.

Each incident file is checked against ``playbooks/schema.json`` (JSON Schema)
and then against rules a schema cannot say (ids unique, the file named by its
id inside its category's folder, categories that exist). Every problem is
reported with the file and the field, e.g.
``playbooks/safety/theft.yaml: handling[2].en: '' should be non-empty``.
The version is a hash of the files' bytes, stored on every report.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from pydantic import Field

from server.paths import PLAYBOOK_DIR
from server.schemas import Shape

ACTIONS = ("call:110", "call:120", "call:119", "photo", "reply")
SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_DIR = PLAYBOOK_DIR


class PlaybookError(Exception):
    """Invalid playbooks; ``errors`` has one line per problem, naming file and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Text:
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh

    def as_dict(self) -> dict[str, str]:
        """Both languages, keyed by language code."""
        return {"zh-CN": self.zh, "en": self.en}


@dataclass(frozen=True)
class Item:
    text: Text
    action: str | None = None
    # Its key in the library's layers (s1, a2, n-3f9c…) and the layer whose
    # words these are: source, product, company or site.
    key: str = ""
    origin: str = "source"


@dataclass(frozen=True)
class Reply:
    """Approved wording (统一回复口径) for one audience: resident, residents, media."""

    audience: str
    text: Text
    origin: str = "source"


@dataclass(frozen=True)
class Incident:
    id: str
    category: str
    source_number: int | None
    order: int
    title: Text
    title_inferred: bool
    note: str | None
    severity: str
    severity_reason: Text
    from_source: bool
    handling: tuple[Item, ...]
    analysis: tuple[Item, ...]
    improvement: tuple[Item, ...]
    reply_script: Text | None
    replies: tuple[Reply, ...] = ()
    # The published version's id ("" for the files as loaded, before any).
    version: str = ""
    # Its number among its scope's versions (v1, v2 …); 0 before any.
    number: int = 0
    icon: str = "❗"
    # source: a playbook of the source document; company or site: a new type.
    origin: str = "source"

    def shape(self, lang: str) -> IncidentOut:
        def items(seq: tuple[Item, ...]) -> list[ItemOut]:
            return [ItemOut(text=i.text.get(lang), action=i.action, origin=i.origin) for i in seq]

        return IncidentOut(
            id=self.id,
            version=self.version,
            icon=self.icon,
            origin=self.origin,
            replies=[
                ReplyOut(audience=r.audience, text=r.text.get(lang), origin=r.origin)
                for r in self.replies
            ],
            title=self.title.get(lang),
            title_inferred=self.title_inferred,
            from_source=self.from_source,
            severity=self.severity,
            severity_reason=self.severity_reason.get(lang),
            reply_script=self.reply_script.get(lang) if self.reply_script else None,
            handling=items(self.handling),
            analysis=items(self.analysis),
            improvement=items(self.improvement),
        )


@dataclass(frozen=True)
class Category:
    id: str
    number: str | None
    title: Text
    title_inferred: bool
    note: str | None
    icon: str
    incidents: tuple[Incident, ...]


@dataclass(frozen=True)
class Library:
    version: str
    categories: tuple[Category, ...]

    def incidents(self) -> tuple[Incident, ...]:
        """Every incident, in category order, then in order within the category."""
        return tuple(i for c in self.categories for i in c.incidents)

    def incident(self, incident_id: str) -> Incident | None:
        return next((i for i in self.incidents() if i.id == incident_id), None)

    def titles(self, incident_id: str) -> dict[str, str]:
        """The incident's title in each language (for messages); its id if the
        playbook is gone since the report was made."""
        incident = self.incident(incident_id)
        if incident is None:
            return {"zh-CN": incident_id, "en": incident_id}
        return incident.title.as_dict()

    def shape(self, lang: str) -> LibraryOut:
        """Every playbook in one language, as the API answers."""
        return LibraryOut(
            version=self.version,
            lang=lang,
            categories=[
                CategoryOut(
                    id=c.id,
                    number=c.number,
                    title=c.title.get(lang),
                    icon=c.icon,
                    title_inferred=c.title_inferred,
                    incidents=[i.shape(lang) for i in c.incidents],
                )
                for c in self.categories
            ],
        )


class ItemOut(Shape):
    text: str
    action: str | None = Field(description="call:110, call:120, call:119, photo, reply or null")
    origin: str = Field(description="whose words: source, product, company or site")


class ReplyOut(Shape):
    audience: str = Field(description="resident, residents (a group) or media")
    text: str
    origin: str = Field(description="whose words: source, product, company or site")


class IncidentOut(Shape):
    """One incident's playbook, as a guard follows it, in one language."""

    id: str
    version: str = Field(description="the published version's id: what a report follows")
    icon: str
    origin: str = Field(description="source, or company or site for a type of their own")
    replies: list[ReplyOut] = Field(description="统一回复口径: approved replies by audience")
    title: str
    title_inferred: bool
    from_source: bool
    severity: str
    severity_reason: str
    reply_script: str | None
    handling: list[ItemOut] = Field(description="处理: what staff on site do at once")
    analysis: list[ItemOut] = Field(description="分析: what the supervisor examines afterwards")
    improvement: list[ItemOut] = Field(description="改善: corrective and preventive actions")


class CategoryOut(Shape):
    id: str
    number: str | None
    title: str
    icon: str
    title_inferred: bool
    incidents: list[IncidentOut]


class LibraryOut(Shape):
    """Every incident playbook, by category, in one language."""

    version: str
    lang: str
    categories: list[CategoryOut]


def _text(data: dict[str, str]) -> Text:
    return Text(zh=data["zh-CN"], en=data["en"])


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top)"


def _read(path: Path, root: Path, errors: list[str]) -> Any:
    rel = path.relative_to(root.parent) if root.parent in path.parents else path
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        errors.append(f"{rel}: (file): not valid YAML: {exc}".replace("\n", " "))
        return None


def _validate(
    directory: Path,
) -> tuple[list[str], list[dict[str, Any]], list[tuple[Path, dict[str, Any]]]]:
    errors: list[str] = []
    schema_path = directory / "schema.json"
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{schema_path}: (file): {exc}"], [], []
    incident_validator = Draft202012Validator(schema)
    category_validator = Draft202012Validator(
        {**schema["$defs"]["category"], "$defs": schema["$defs"]}
    )

    def rel(p: Path) -> Path:  # names in messages
        return p.relative_to(directory.parent)

    cats_path = directory / "categories.yaml"
    categories: list[Any] = []
    if not cats_path.exists():
        errors.append(f"{rel(cats_path)}: (file): missing")
    elif isinstance(read := _read(cats_path, directory, errors), list):
        categories = read
    else:
        errors.append(f"{rel(cats_path)}: (top): must be a list of categories")
    for n, cat in enumerate(categories):
        for err in category_validator.iter_errors(cat):
            errors.append(
                f"{rel(cats_path)}: [{n}]{'.' if err.path else ''}"
                f"{_path(err.path)}: {err.message}".replace(": (top)", "")
            )
    cat_ids = [c.get("id") for c in categories if isinstance(c, dict)]
    for dup in {c for c in cat_ids if cat_ids.count(c) > 1}:
        errors.append(f"{rel(cats_path)}: id: {dup!r} is used twice")

    incidents: list[tuple[Path, dict[str, Any]]] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*/*.yaml")):
        data = _read(path, directory, errors)
        if data is None and path.stat().st_size:
            continue
        if not isinstance(data, dict):
            errors.append(f"{rel(path)}: (top): must be a mapping of fields")
            continue
        problems = sorted(incident_validator.iter_errors(data), key=lambda e: list(e.path))
        for err in problems:
            errors.append(f"{rel(path)}: {_path(err.path)}: {err.message}")
        if problems:
            continue
        if data["id"] != path.stem:
            errors.append(f"{rel(path)}: id: {data['id']!r} must equal the file name")
        if data["category"] != path.parent.name:
            errors.append(f"{rel(path)}: category: {data['category']!r} must equal the folder")
        if data["category"] not in cat_ids:
            errors.append(f"{rel(path)}: category: {data['category']!r} is not in categories.yaml")
        if data["id"] in seen:
            errors.append(
                f"{rel(path)}: id: {data['id']!r} is also used by {rel(seen[data['id']])}"
            )
        seen[data["id"]] = path
        if not data["handling"] and not data["title_inferred"]:
            # Only an incident whose heading (and with it its 处理) was lost may lack steps.
            errors.append(f"{rel(path)}: handling: a numbered incident needs its 处理 steps")
        incidents.append((path, data))
    if not incidents and not errors:
        errors.append(f"{directory}: no incident files")
    return errors, categories, incidents


def _version(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".json")):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def check(directory: Path = DEFAULT_DIR) -> list[str]:
    """Every problem in the playbooks at ``directory``; [] when they are valid."""
    return _validate(directory)[0]


def load(directory: Path = DEFAULT_DIR) -> Library:
    """Load and validate the playbooks; raise PlaybookError listing every problem.

    The library is frozen, so loading the same files again gives the one
    already made (each app of a test run, the CLI beside a server); a file
    added, removed or changed makes a new one.
    """
    return _load(directory.resolve(), _signature(directory))


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Which files are there, and when and how big each was last written."""
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            info = path.stat()
            found.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(found)


@functools.lru_cache(maxsize=8)
def _load(directory: Path, signature: tuple[tuple[str, int, int], ...]) -> Library:
    errors, categories, incidents = _validate(directory)
    if errors:
        raise PlaybookError(errors)
    by_category: dict[str, list[Incident]] = {c["id"]: [] for c in categories}
    for _, d in incidents:
        by_category[d["category"]].append(
            Incident(
                id=d["id"],
                category=d["category"],
                source_number=d["source_number"],
                order=d["order"],
                title=_text(d["title"]),
                title_inferred=d["title_inferred"],
                note=d["note"],
                severity=d["severity"],
                severity_reason=_text(d["severity_reason"]),
                from_source=d["from_source"],
                handling=tuple(Item(_text(s), s.get("action")) for s in d["handling"]),
                analysis=tuple(Item(_text(s)) for s in d["analysis"]),
                improvement=tuple(Item(_text(s)) for s in d["improvement"]),
                reply_script=_text(d["reply_script"]) if d["reply_script"] else None,
            )
        )
    return Library(
        version=_version(directory),
        categories=tuple(
            Category(
                id=c["id"],
                number=c["number"],
                title=_text(c["title"]),
                title_inferred=c["title_inferred"],
                note=c["note"],
                icon=c["icon"],
                incidents=tuple(sorted(by_category[c["id"]], key=lambda i: i.order)),
            )
            for c in categories
        ),
    )


# --- exports (the library as the app publishes it, in this schema) ---------------------


def check_export(data: Any, categories: list[str] | None = None) -> list[dict[str, Any]]:
    """The incidents of an export: the whole library (``categories`` and
    ``incidents``) or one playbook (an incident file). Raises PlaybookError
    naming each bad field; ``categories`` are the ids an incident may be in
    (by default those of the export, or the shipped ones)."""
    schema = json.loads((DEFAULT_DIR / "schema.json").read_text(encoding="utf-8"))
    incident_validator = Draft202012Validator(schema)
    category_validator = Draft202012Validator(
        {**schema["$defs"]["category"], "$defs": schema["$defs"]}
    )
    errors: list[str] = []
    if isinstance(data, dict) and "incidents" in data:
        items = data["incidents"]
        cats = data.get("categories", [])
        if not isinstance(items, list) or not isinstance(cats, list):
            raise PlaybookError(["incidents: must be a list of playbooks; categories: a list"])
        for n, cat in enumerate(cats):
            for err in category_validator.iter_errors(cat):
                field = f"categories[{n}]{'.' if err.path else ''}{_path(err.path)}"
                errors.append(f"{field}: {err.message}".replace(": (top)", ""))
        known: list[Any] = categories or [c.get("id") for c in cats if isinstance(c, dict)]
        where = "incidents"
    elif isinstance(data, dict):
        items = [data]
        known = categories or [c.id for c in load().categories]
        where = ""
    else:
        raise PlaybookError(["(top): must be a playbook or a library (categories and incidents)"])
    seen: set[str] = set()
    for n, item in enumerate(items):
        at = f"{where}[{n}]." if where else ""
        problems = sorted(incident_validator.iter_errors(item), key=lambda e: list(e.path))
        for err in problems:
            errors.append(f"{at}{_path(err.path)}: {err.message}")
        if problems:
            continue
        if item["category"] not in known:
            errors.append(f"{at}category: {item['category']!r} is not a category")
        if item["id"] in seen:
            errors.append(f"{at}id: {item['id']!r} is used twice")
        seen.add(item["id"])
    if errors:
        raise PlaybookError(errors)
    return list(items)


def check_export_file(path: Path) -> list[dict[str, Any]]:
    """:func:`check_export` of a YAML file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PlaybookError([f"(file): not valid YAML: {exc}".replace("\n", " ")]) from None
    return check_export(data)
