"""Playbook layers: what a company or a site says over the playbook below it.

A playbook is merged from up to four layers, each over the one below:

1. ``source``: the source document's playbook, as shipped in ``playbooks/``;
2. ``product``: the product's defaults where the source has no guard-level
   steps (``playbooks/product.yaml``), shipped too;
3. ``company``: the company's own, edited in the app;
4. ``site``: one site's own (its lift company, its pump room).

A layer is a mapping in the YAML's own shape. Each list (``handling``,
``analysis``, ``improvement``) is the layer's order of the steps: an entry
whose ``key`` names a step below keeps that step (reworded when it gives
text, hidden with ``hidden: true``); an entry with no such key is a new
step. Steps below that the layer does not name stay, after the last of the
steps that came before them there (so a step the source gains later is
never lost). A list
left out keeps the one below as it is (the editor always sends the whole
list, in its order). ``replies`` override the approved
wording per audience.

The merged result (the "content" of a version) keeps every step, hidden
ones too, each with its ``key`` and ``origin``: the editor and the diff need
them; a guard's playbook (:func:`incident`) leaves the hidden ones out.
Everything here is pure: no database, no clock.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.errors import fields_error, validation_error
from server.playbooks import Incident, Item, Reply, Text

Origin = Literal["source", "product", "company", "site"]
SECTIONS = ("handling", "analysis", "improvement")
AUDIENCES = ("resident", "residents", "media")
# The key prefix of each section's steps in the source: s1, s2 … a1 … i1 …
SOURCE_KEYS = {"handling": "s", "analysis": "a", "improvement": "i"}
KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
Content = dict[str, Any]


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    zh: str = Field(alias="zh-CN", min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)


class StepIn(BaseModel):
    """One entry of a layer's list: a step below (by ``key``) or a new one."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    key: str | None = Field(default=None, pattern=KEY_PATTERN)
    zh: str | None = Field(default=None, alias="zh-CN", min_length=1, max_length=500)
    en: str | None = Field(default=None, min_length=1, max_length=500)
    action: Literal["call:110", "call:120", "call:119", "photo", "reply"] | None = None
    hidden: bool = False


class ReplyIn(BaseModel):
    """Approved wording for one audience; ``hidden`` withdraws the one below."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    audience: Literal["resident", "residents", "media"]
    zh: str | None = Field(default=None, alias="zh-CN", min_length=1, max_length=1000)
    en: str | None = Field(default=None, min_length=1, max_length=1000)
    hidden: bool = False


class LayerIn(BaseModel):
    """What a company or a site says over the playbook below (all optional,
    but a new incident type needs its title and category)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    title: TextIn | None = None
    category: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$")
    icon: str | None = Field(default=None, min_length=1, max_length=8)
    severity: Literal["low", "medium", "high", "critical"] | None = None
    severity_reason: TextIn | None = None
    handling: list[StepIn] | None = Field(default=None, max_length=60)
    analysis: list[StepIn] | None = Field(default=None, max_length=60)
    improvement: list[StepIn] | None = Field(default=None, max_length=60)
    replies: list[ReplyIn] | None = Field(default=None, max_length=3)

    def dump(self) -> dict[str, Any]:
        """The layer as stored: its own words only, in the YAML's keys."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)


def parse_layer(data: Any) -> LayerIn:
    """A layer from JSON or YAML data, or a 422 naming each bad field."""
    try:
        return LayerIn.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


# --- the shipped layers, as content --------------------------------------------


def _text(value: Text) -> dict[str, str]:
    return {"zh-CN": value.zh, "en": value.en}


def source_content(incident: Incident, icon: str) -> Content:
    """The source's playbook for one incident, every step keyed, as content."""

    def items(section: str, seq: tuple[Item, ...]) -> list[dict[str, Any]]:
        prefix = SOURCE_KEYS[section]
        out = []
        for n, item in enumerate(seq, 1):
            step: dict[str, Any] = {"key": f"{prefix}{n}", "origin": "source", **_text(item.text)}
            if item.action:
                step["action"] = item.action
            out.append(step)
        return out

    replies = []
    if incident.reply_script:
        replies.append({"audience": "resident", "origin": "source", **_text(incident.reply_script)})
    return {
        "id": incident.id,
        "category": incident.category,
        "icon": icon,
        "origin": "source",
        "source_number": incident.source_number,
        "order": incident.order,
        "title": _text(incident.title),
        "title_inferred": incident.title_inferred,
        "note": incident.note,
        "severity": incident.severity,
        "severity_reason": _text(incident.severity_reason),
        "from_source": incident.from_source,
        **{s: items(s, getattr(incident, s)) for s in SECTIONS},
        "replies": replies,
    }


def digest(content: Content) -> str:
    """A short hash of content: tells whether the shipped base changed."""
    text = json.dumps(content, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- merging --------------------------------------------------------------------


def new_key() -> str:
    return f"n-{secrets.token_hex(4)}"


def merge(
    lower: Content | None,
    layer: LayerIn,
    origin: Origin,
    *,
    incident_id: str,
    categories: dict[str, str],
    order: int = 1000,
) -> Content:
    """``layer`` over ``lower`` (None: a new incident type of the layer's own).

    ``categories`` maps each category id to its icon. Raises a 422 naming
    the field for what cannot be merged: a new type without a title or a
    category, a new step without its text, a key named twice.
    """
    problems: list[tuple[str, str]] = []
    if lower is None:
        if layer.title is None:
            problems.append(("title", "a new incident type needs its title in zh-CN and en"))
        if layer.category is None:
            problems.append(("category", "a new incident type needs its category"))
        lower = {
            "id": incident_id,
            "category": layer.category or "",
            "icon": categories.get(layer.category or "", "❗"),
            "origin": origin,
            "source_number": None,
            "order": order,
            "title": {"zh-CN": incident_id, "en": incident_id},
            "title_inferred": False,
            "note": None,
            "severity": "medium",
            "severity_reason": {"zh-CN": "", "en": ""},
            "from_source": False,
            **{s: [] for s in SECTIONS},
            "replies": [],
        }
    if layer.category is not None and layer.category not in categories:
        problems.append(("category", f"no category {layer.category!r}"))
    out: Content = {**lower}
    for name in ("title", "severity_reason"):
        value = getattr(layer, name)
        if value is not None:
            out[name] = {"zh-CN": value.zh, "en": value.en}
    for name in ("category", "icon", "severity"):
        value = getattr(layer, name)
        if value is not None:
            out[name] = value
    for section in SECTIONS:
        entries = getattr(layer, section)
        if entries is not None:
            out[section] = _merge_list(lower[section], entries, origin, section, problems)
    if layer.replies is not None:
        out["replies"] = _merge_replies(lower["replies"], layer.replies, origin, problems)
    if problems:
        raise fields_error(problems)
    return out


def _merge_list(
    lower: list[dict[str, Any]],
    entries: list[StepIn],
    origin: Origin,
    section: str,
    problems: list[tuple[str, str]],
) -> list[dict[str, Any]]:
    below = {s["key"]: s for s in lower}
    out: list[dict[str, Any]] = []
    named: set[str] = set()
    for n, entry in enumerate(entries):
        where = f"{section}[{n}]"
        if entry.key is not None and entry.key in named:
            problems.append((f"{where}.key", f"{entry.key!r} is named twice"))
            continue
        if entry.key is not None and entry.key in below:
            step = dict(below[entry.key])
            text = (entry.zh or step["zh-CN"], entry.en or step["en"])
            if text != (step["zh-CN"], step["en"]):
                step["zh-CN"], step["en"] = text
                # Reworded here: the words are this layer's, the step the one below.
                step.setdefault("base_origin", step["origin"])
                step["origin"] = origin
            if "action" in entry.model_fields_set:
                _set_action(step, entry.action, section, where, problems)
            step["hidden"] = entry.hidden
            named.add(entry.key)
            out.append(step)
            continue
        if entry.key is not None and not entry.zh and not entry.en:
            problems.append((f"{where}.key", f"no step {entry.key!r} in the playbook below"))
            continue
        if not entry.zh or not entry.en:
            missing = "zh-CN" if not entry.zh else "en"
            problems.append((f"{where}.{missing}", "a new step needs its text in zh-CN and en"))
            continue
        key = entry.key or new_key()
        new: dict[str, Any] = {"key": key, "origin": origin, "zh-CN": entry.zh, "en": entry.en}
        _set_action(new, entry.action, section, where, problems)
        if entry.hidden:
            new["hidden"] = True
        named.add(key)
        out.append(new)
    # Steps below the layer did not name stay (a step the source gains in a
    # later release is never lost): after the last of those before them there.
    for n, step in enumerate(lower):
        if step["key"] in named:
            continue
        earlier = {s["key"] for s in lower[:n]}
        at = max((i + 1 for i, s in enumerate(out) if s["key"] in earlier), default=0)
        out.insert(at, dict(step))
        named.add(step["key"])
    for step in out:
        if not step.get("hidden"):
            step.pop("hidden", None)
    return out


def _set_action(
    step: dict[str, Any],
    action: str | None,
    section: str,
    where: str,
    problems: list[tuple[str, str]],
) -> None:
    if action is None:
        step.pop("action", None)
    elif section != "handling":
        problems.append((f"{where}.action", "only a handling step has a call, photo or reply"))
    else:
        step["action"] = action


def _merge_replies(
    lower: list[dict[str, Any]],
    entries: list[ReplyIn],
    origin: Origin,
    problems: list[tuple[str, str]],
) -> list[dict[str, Any]]:
    by_audience = {r["audience"]: dict(r) for r in lower}
    seen: set[str] = set()
    for n, entry in enumerate(entries):
        where = f"replies[{n}]"
        if entry.audience in seen:
            problems.append((f"{where}.audience", f"{entry.audience!r} is given twice"))
            continue
        seen.add(entry.audience)
        if entry.hidden:
            by_audience.pop(entry.audience, None)
            continue
        had = by_audience.get(entry.audience)
        zh = entry.zh or (had["zh-CN"] if had else None)
        en = entry.en or (had["en"] if had else None)
        if not zh or not en:
            missing = "zh-CN" if not zh else "en"
            problems.append((f"{where}.{missing}", "a reply needs its text in zh-CN and en"))
            continue
        by_audience[entry.audience] = {
            "audience": entry.audience,
            "origin": origin,
            "zh-CN": zh,
            "en": en,
        }
    return [by_audience[a] for a in AUDIENCES if a in by_audience]


# --- from content to what the app uses -------------------------------------------


def incident(content: Content, version: str, number: int = 0) -> Incident:
    """The playbook a guard follows: the hidden steps left out."""

    def items(section: str) -> tuple[Item, ...]:
        return tuple(
            Item(
                Text(s["zh-CN"], s["en"]),
                s.get("action"),
                key=s["key"],
                origin=s["origin"],
            )
            for s in content[section]
            if not s.get("hidden")
        )

    replies = tuple(
        Reply(r["audience"], Text(r["zh-CN"], r["en"]), r["origin"]) for r in content["replies"]
    )
    resident = next((r.text for r in replies if r.audience == "resident"), None)
    return Incident(
        id=content["id"],
        category=content["category"],
        source_number=content["source_number"],
        order=content["order"],
        title=Text(content["title"]["zh-CN"], content["title"]["en"]),
        title_inferred=content["title_inferred"],
        note=content["note"],
        severity=content["severity"],
        severity_reason=Text(content["severity_reason"]["zh-CN"], content["severity_reason"]["en"]),
        from_source=content["from_source"],
        handling=items("handling"),
        analysis=items("analysis"),
        improvement=items("improvement"),
        reply_script=resident or (replies[0].text if replies else None),
        replies=replies,
        version=version,
        number=number,
        icon=content["icon"],
        origin=content["origin"],
    )


# --- the diff between two versions ------------------------------------------------


def diff(before: Content, after: Content) -> list[dict[str, Any]]:
    """What changed from ``before`` to ``after``, as a guard would see it:
    each step added, removed (or hidden), reworded or moved, and the title,
    severity and replies changed. Hidden steps count as gone."""
    changes: list[dict[str, Any]] = []
    for name in ("title", "severity", "severity_reason", "category", "icon"):
        if before.get(name) != after.get(name):
            changes.append(
                {
                    "part": name,
                    "kind": "changed",
                    "before": before.get(name),
                    "after": after.get(name),
                }
            )
    for section in SECTIONS:
        a = [s for s in before[section] if not s.get("hidden")]
        b = [s for s in after[section] if not s.get("hidden")]
        a_keys = [s["key"] for s in a]
        b_keys = [s["key"] for s in b]
        hidden_after = {s["key"] for s in after[section] if s.get("hidden")}
        for n, step in enumerate(a):
            if step["key"] not in b_keys:
                changes.append(
                    {
                        "part": section,
                        "kind": "removed",
                        "key": step["key"],
                        "from": n,
                        "before": _words(step),
                        "hidden": step["key"] in hidden_after,
                    }
                )
        common = [k for k in a_keys if k in b_keys]
        kept = set(_lcs(common, [k for k in b_keys if k in a_keys]))
        for n, step in enumerate(b):
            key = step["key"]
            if key not in a_keys:
                changes.append(
                    {"part": section, "kind": "added", "key": key, "to": n, "after": _words(step)}
                )
                continue
            old = a[a_keys.index(key)]
            if key not in kept:
                changes.append(
                    {
                        "part": section,
                        "kind": "moved",
                        "key": key,
                        "from": a_keys.index(key),
                        "to": n,
                        "after": _words(step),
                    }
                )
            if _words(old) != _words(step):
                changes.append(
                    {
                        "part": section,
                        "kind": "reworded",
                        "key": key,
                        "to": n,
                        "before": _words(old),
                        "after": _words(step),
                    }
                )
    a_replies = {r["audience"]: r for r in before["replies"]}
    b_replies = {r["audience"]: r for r in after["replies"]}
    for audience in AUDIENCES:
        old, new = a_replies.get(audience), b_replies.get(audience)
        if old and not new:
            changes.append(
                {"part": "replies", "kind": "removed", "key": audience, "before": _words(old)}
            )
        elif new and not old:
            changes.append(
                {"part": "replies", "kind": "added", "key": audience, "after": _words(new)}
            )
        elif old and new and _words(old) != _words(new):
            changes.append(
                {
                    "part": "replies",
                    "kind": "reworded",
                    "key": audience,
                    "before": _words(old),
                    "after": _words(new),
                }
            )
    return changes


def _words(step: dict[str, Any]) -> dict[str, Any]:
    out = {"zh-CN": step["zh-CN"], "en": step["en"]}
    if step.get("action"):
        out["action"] = step["action"]
    return out


def _lcs(a: list[str], b: list[str]) -> list[str]:
    """The longest common subsequence: the steps that kept their order."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = (
                table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
            )
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            out.append(a[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


# --- import and export in the YAML's schema ------------------------------------------


def export(content: Content) -> dict[str, Any]:
    """One merged playbook as an incident file of ``playbooks/`` (plus its
    icon and replies), what a guard sees: hidden steps left out."""

    def items(section: str, with_action: bool) -> list[dict[str, Any]]:
        out = []
        for s in content[section]:
            if s.get("hidden"):
                continue
            item = {"zh-CN": s["zh-CN"], "en": s["en"]}
            if with_action and s.get("action"):
                item["action"] = s["action"]
            out.append(item)
        return out

    resident = next((r for r in content["replies"] if r["audience"] == "resident"), None)
    return {
        "id": content["id"],
        "category": content["category"],
        "source_number": content["source_number"],
        "order": content["order"],
        "title": content["title"],
        "title_inferred": content["title_inferred"],
        "note": content["note"],
        "severity": content["severity"],
        "severity_reason": content["severity_reason"]
        if content["severity_reason"]["zh-CN"]
        else content["title"],
        "from_source": content["from_source"],
        "handling": items("handling", True),
        "analysis": items("analysis", False),
        "improvement": items("improvement", False),
        "reply_script": {"zh-CN": resident["zh-CN"], "en": resident["en"]} if resident else None,
        "icon": content["icon"],
        "replies": [
            {"audience": r["audience"], "zh-CN": r["zh-CN"], "en": r["en"]}
            for r in content["replies"]
        ],
    }


def layer_from_export(data: dict[str, Any], lower: Content | None) -> dict[str, Any]:
    """The company layer that makes ``lower`` read as the imported playbook:
    a step whose words match one below keeps it (and its origin), the rest
    are new, and steps below that the import leaves out are hidden."""
    layer: dict[str, Any] = {}
    if lower is None or data["title"] != lower["title"]:
        layer["title"] = data["title"]
    if lower is None or data["category"] != lower["category"]:
        layer["category"] = data["category"]
    for name in ("severity", "severity_reason", "icon"):
        if name in data and (lower is None or data[name] != lower.get(name)):
            layer[name] = data[name]
    for section in SECTIONS:
        below = [s for s in (lower or {}).get(section, [])]
        free = {(s["zh-CN"], s["en"]): s["key"] for s in below}
        free_zh = {s["zh-CN"]: s["key"] for s in below}
        entries: list[dict[str, Any]] = []
        used: set[str] = set()
        for item in data[section]:
            key = free.get((item["zh-CN"], item["en"])) or free_zh.get(item["zh-CN"])
            entry: dict[str, Any] = {}
            if key and key not in used:
                used.add(key)
                entry["key"] = key
                old = next(s for s in below if s["key"] == key)
                if old["en"] != item["en"]:
                    entry["en"] = item["en"]
                if item.get("action") != old.get("action"):
                    entry["action"] = item.get("action")
            else:
                entry = {"zh-CN": item["zh-CN"], "en": item["en"]}
                if item.get("action"):
                    entry["action"] = item["action"]
            entries.append(entry)
        entries += [{"key": s["key"], "hidden": True} for s in below if s["key"] not in used]
        layer[section] = entries
    replies = data.get("replies")
    if replies is None and data.get("reply_script"):
        replies = [{"audience": "resident", **data["reply_script"]}]
    if replies is not None:
        given = {r["audience"] for r in replies}
        layer["replies"] = [dict(r) for r in replies] + [
            {"audience": r["audience"], "hidden": True}
            for r in (lower or {}).get("replies", [])
            if r["audience"] not in given
        ]
    return layer
