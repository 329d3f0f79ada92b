"""Work-chat group robots as alert channels: which webhooks may be used, DingTalk's
signature, what a message says in each service's markdown, and what the service
answered.

A WeCom (企业微信) group robot takes ``{"msgtype": "markdown", "markdown":
{"content"}}``, the content at most 4096 bytes of UTF-8; a DingTalk (钉钉) custom
robot takes ``{"msgtype": "markdown", "markdown": {"title", "text"}}`` and, when it
signs (加签), ``timestamp`` and ``sign`` in its URL. Both answer HTTP 200 with
``{"errcode", "errmsg"}``, errcode 0 meaning sent, and both take at most 20
messages a minute per robot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, quote_plus, urlsplit
from zoneinfo import ZoneInfo

import httpx

from server import netcheck
from server.alerts.texts import Message, heading
from server.errors import N_, Msg
from server.models import ChannelKind, Severity

# Where each service's robots are, and the query parameter that names the robot.
ENDPOINTS = {
    ChannelKind.WECOM: ("/cgi-bin/webhook/send", "key"),
    ChannelKind.DINGTALK: ("/robot/send", "access_token"),
}
SERVICE = {ChannelKind.WECOM: "WeCom", ChannelKind.DINGTALK: "DingTalk"}
# Both services: 20 messages a minute per robot.
PER_MINUTE = 20
# The services' "too fast" answers, and how long a robot is then refused:
# WeCom 45009 "api freq out of limit" (a per-minute limit is blocked for 60 s,
# developer.work.weixin.qq.com/document/path/90454); DingTalk 130101 "send too
# fast, exceed 20 times per minute", after which the robot is throttled for
# 10 minutes (its custom robot guide).
RATE_LIMITED = {ChannelKind.WECOM: 45009, ChannelKind.DINGTALK: 130101}
HOLD = {ChannelKind.WECOM: timedelta(seconds=60), ChannelKind.DINGTALK: timedelta(minutes=10)}
# -1 is "system busy" (系统繁忙) in both services' global codes: try again later.
BUSY = -1
MAX_BYTES = 4096  # WeCom's limit for markdown content; DingTalk's is higher.


def webhook_problem(url: str, kind: str, allowed_hosts: Iterable[str]) -> str | None:
    """What is wrong with ``url`` as the webhook of a ``kind`` robot, or None.

    Only https to a host in ``allowed_hosts`` (``settings.channel_hosts``: the
    services' own by default), so that a webhook cannot make the server call
    into its own network. Plain http only to 127.0.0.1, and only when it (or
    its ``host:port``) is listed: that is how tests reach a local receiver.
    """
    try:
        channel_kind = ChannelKind(kind)
    except ValueError:
        return Msg("unknown channel kind {kind!r} (wecom or dingtalk).", kind=kind)
    name = SERVICE[channel_kind]
    url = url.strip()
    if len(url) > 1000:
        return N_("the webhook URL is longer than 1000 characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return N_("the webhook is not a URL.")
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None:
        return N_("a webhook URL carries no user name or password.")
    allowed = {h.lower() for h in allowed_hosts}
    on_list = netcheck.listed(host, port, allowed)
    if not (parts.scheme == "https" or (parts.scheme == "http" and host == "127.0.0.1")):
        return N_("the webhook must be an https:// address.")
    if not on_list:
        hosts = ", ".join(sorted(allowed)) or Msg("none")
        return Msg(
            "{host} is not an allowed webhook host (allowed: {hosts}).",
            host=host or Msg("no host"),
            hosts=hosts,
        )
    path, param = ENDPOINTS[channel_kind]
    if parts.path != path:
        return Msg("a {name} robot's webhook path is {path}.", name=name, path=path)
    if not parse_qs(parts.query).get(param, [""])[0].strip():
        return Msg("the {name} webhook lacks its {param}=… parameter.", name=name, param=param)
    return None


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: HMAC-SHA256 of ``timestamp + "\\n" + secret`` keyed by the
    secret, base64, then URL-encoded."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(digest).decode())


def signed_url(url: str, secret: str, now: datetime) -> str:
    """``url`` with DingTalk's ``timestamp`` and ``sign``; unchanged without a secret.
    Signed at send time: DingTalk refuses a timestamp more than an hour off."""
    if not secret:
        return url
    ts = int(now.timestamp() * 1000)
    return f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={sign(secret, ts)}"


def body(message: Message) -> bytes:
    """The JSON as sent: UTF-8, Chinese as itself (both services ask for UTF-8)."""
    return json.dumps(message, ensure_ascii=False).encode()


# --- what a message says ----------------------------------------------------------

_LABELS = {
    "zh-CN": {
        "severity": "严重程度",
        "site": "小区",
        "location": "地点",
        "reporter": "上报人",
        "time": "发生时间",
        "owner": "整改负责人",
        "steps": "已做的处理",
        "none": "（暂无）",
        "more": "……另有 {n} 项",
        "open": "打开事件",
        "colon": "：",
        "test_body": "Onsite 的报警会发到这个群（{name}，{site}）。",
        "test_open": "打开 Onsite",
    },
    "en": {
        "severity": "Severity",
        "site": "Site",
        "location": "Location",
        "reporter": "Reported by",
        "time": "Occurred",
        "owner": "Action owner",
        "steps": "Steps done",
        "none": "(none yet)",
        "more": "… and {n} more",
        "open": "Open the incident",
        "colon": ": ",
        "test_body": "Onsite alerts will arrive in this group ({name}, {site}).",
        "test_open": "Open Onsite",
    },
}
SEVERITY_TEXT = {
    Severity.CRITICAL: {"zh-CN": "危急", "en": "Critical"},
    Severity.HIGH: {"zh-CN": "高", "en": "High"},
    Severity.MEDIUM: {"zh-CN": "中", "en": "Medium"},
    Severity.LOW: {"zh-CN": "低", "en": "Low"},
}
# Characters either service's markdown gives a meaning to, as their full-width
# forms: neither documents a backslash escape, and a Chinese reader takes the
# full-width forms for what was typed. Newlines go too (they start blocks).
_PLAIN = str.maketrans(
    {
        "\\": "＼",
        "`": "｀",
        "*": "＊",
        "_": "＿",
        "[": "［",
        "]": "］",
        "<": "＜",
        ">": "＞",
        "#": "＃",
        "~": "～",
        "&": "＆",
        "|": "｜",
        "\r": " ",
        "\n": " ",
        "\t": " ",
    }
)


def plain(text: str, limit: int = 200) -> str:
    """User-entered ``text`` made inert in markdown, at most ``limit`` characters."""
    text = " ".join(text.translate(_PLAIN).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Facts:
    """What a channel is told about a report, ready for either language."""

    kind: str  # new, escalated, repaired, overdue
    title: dict[str, str]  # the incident's title by language
    severity: Severity
    site: str
    location: str
    reporter: str
    occurred_at: datetime
    steps: tuple[dict[str, str], ...]  # the handling steps ticked, by language
    url: str  # /reports/{id}, absolute when settings.public_url is set
    owner: str = ""  # overdue: whose action it is


def report_message(channel: ChannelKind, lang: str, facts: Facts, timezone: str) -> Message:
    """The markdown message about a report for a ``channel`` robot in ``lang``."""
    text = _LABELS[lang]
    sev = SEVERITY_TEXT[facts.severity][lang]
    head = heading(facts.kind, plain(facts.title[lang], 100), lang)
    when = facts.occurred_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    fields = [
        ("site", plain(facts.site, 60)),
        ("location", plain(facts.location) or "—"),
        ("reporter", plain(facts.reporter, 60)),
        ("time", when),
    ]
    if facts.owner:
        fields.append(("owner", plain(facts.owner, 60)))
    steps = [plain(s[lang], 120) for s in facts.steps]
    link = f"[{text['open']}]({facts.url})"
    # Drop steps from the end until it fits (WeCom refuses more than 4096 bytes).
    for shown in range(len(steps), -1, -1):
        listed = steps[:shown]
        if shown < len(steps):
            listed.append(text["more"].format(n=len(steps) - shown))
        message = _render(channel, lang, head, sev, facts.severity, fields, listed, link)
        if _size(message) <= MAX_BYTES:
            break
    return message


def test_message(channel: ChannelKind, lang: str, name: str, site: str, url: str) -> Message:
    """The message an admin sends to check that a channel works."""
    text = _LABELS[lang]
    head = heading("channel_test", "", lang)
    line = text["test_body"].format(name=plain(name, 100), site=plain(site, 60))
    link = f"[{text['test_open']}]({url})"
    if channel == ChannelKind.WECOM:
        return _wecom(f"## {head}\n{line}\n{link}")
    return _dingtalk(head, f"### {head}\n\n{line}\n\n{link}")


def _render(
    channel: ChannelKind,
    lang: str,
    head: str,
    sev: str,
    severity: Severity,
    fields: list[tuple[str, str]],
    steps: list[str],
    link: str,
) -> Message:
    text = _LABELS[lang]
    colon = text["colon"]
    if channel == ChannelKind.WECOM:
        # WeCom colours three ways: warning (orange-red), info (green), comment (grey).
        color = "warning" if severity in (Severity.CRITICAL, Severity.HIGH) else "comment"
        lines = [f"## {head}", f'> {text["severity"]}{colon}<font color="{color}">{sev}</font>']
        lines += [f"> {text[label]}{colon}{value}" for label, value in fields]
        lines.append(f"{text['steps']}{colon}" + ("" if steps else text["none"]))
        lines += [f"- ✓ {step}" for step in steps]
        lines.append(link)
        return _wecom("\n".join(lines))
    # DingTalk's markdown needs a blank line between paragraphs; its title is
    # what the chat list and the phone's notification show.
    lines = [f"### {head}", f"**{text['severity']}{colon}{sev}**"]
    lines += [f"{text[label]}{colon}{value}" for label, value in fields]
    lines.append(f"{text['steps']}{colon}" + ("" if steps else text["none"]))
    if steps:
        lines.append("\n".join(f"- ✓ {step}" for step in steps))
    lines.append(link)
    return _dingtalk(
        f"{head}（{sev}）" if lang == "zh-CN" else f"{head} ({sev})", "\n\n".join(lines)
    )


def _wecom(content: str) -> Message:
    return {"msgtype": "markdown", "markdown": {"content": content}}


def _dingtalk(title: str, text: str) -> Message:
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


def _size(message: Message) -> int:
    inner = message["markdown"]
    return len((inner.get("content") or inner.get("text") or "").encode())


# --- what the service answered ----------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A robot's answer to an HTTP 200: sent, too fast, busy, or refused (why)."""

    outcome: Literal["sent", "rate_limited", "busy", "refused"]
    error: str = ""  # "errcode: errmsg", as the admin is shown it


def read_answer(channel: ChannelKind, response: httpx.Response) -> Answer:
    """What a 200 from the service means: its ``errcode`` decides."""
    try:
        data: Any = response.json()
        code = int(data["errcode"])
    except (ValueError, TypeError, KeyError):
        # Not the service's JSON (a proxy's page?): try again later, as for a 5xx.
        return Answer("busy", f"unreadable answer: {response.text[:200]!r}")
    if code == 0:
        return Answer("sent")
    error = f"{code}: {data.get('errmsg', '')}"[:500]
    if code == RATE_LIMITED[channel]:
        return Answer("rate_limited", error)
    if code == BUSY:
        return Answer("busy", error)
    return Answer("refused", error)
