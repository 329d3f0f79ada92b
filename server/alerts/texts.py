"""What a push says, in the recipient's language, and how urgently it travels."""

from __future__ import annotations

from typing import Any

from server.models import Report, Severity

# TTL by severity, in seconds: how long a push service keeps an alert for a
# phone that is off. Never 0 (the webpush package's default), which drops
# the alert for any phone not reachable at that instant.
TTL = {
    Severity.CRITICAL: 24 * 3600,
    Severity.HIGH: 12 * 3600,
    Severity.MEDIUM: 6 * 3600,
    Severity.LOW: 2 * 3600,
}
URGENCY = {
    Severity.CRITICAL: "high",
    Severity.HIGH: "high",
    Severity.MEDIUM: "normal",
    Severity.LOW: "low",
}

# Keyed by every language of server.i18n.LANGUAGES (a test checks).
_TEXT = {
    "zh-CN": {
        "new": "新事件：{title}",
        "assigned": "派单：{title}",
        "reply": "回复口径已发布：{title}",
        "repaired": "已修复，待关闭：{title}",
        "escalated": "超时未确认：{title}",
        "action": "整改任务：{title}",
        "check_failed": "复查未通过，请重新整改：{title}",
        "overdue": "整改已逾期：{title}",
        "body": "{site} · {location}",
        "test": "测试通知",
        "test_body": "推送通知工作正常。",
        "channel_test": "测试消息",
    },
    "en": {
        "new": "New incident: {title}",
        "assigned": "Assigned to you: {title}",
        "reply": "Approved reply published: {title}",
        "repaired": "Repaired, ready to close: {title}",
        "escalated": "Not acknowledged in time: {title}",
        "action": "Corrective action for you: {title}",
        "check_failed": "Re-check failed, please redo: {title}",
        "overdue": "Corrective action overdue: {title}",
        "body": "{site} · {location}",
        "test": "Test notification",
        "test_body": "Push notifications work.",
        "channel_test": "Test message",
    },
}


Message = dict[str, Any]


def payload(kind: str, report: Report, title: dict[str, str], site: str, lang: str) -> Message:
    """The alert about ``report`` in language ``lang``; ``kind`` is one of
    new, assigned, reply, repaired, escalated, action, check_failed, overdue."""
    text = _TEXT[lang]
    body = text["body"].format(site=site, location=report.location_text or "—")
    return {
        "title": heading(kind, title[lang], lang),
        "body": body[:300],
        "url": f"/reports/{report.id}",
        "report_id": str(report.id),
        "severity": report.severity.value,
        "kind": kind,
    }


def heading(kind: str, title: str, lang: str) -> str:
    """The first line of an alert of ``kind`` about the incident ``title``, in ``lang``
    (a device's notification title, a channel message's heading)."""
    return _TEXT[lang][kind].format(title=title)


def test_message(lang: str) -> Message:
    """The test notification a user sends to their own devices from the Me page."""
    text = _TEXT[lang]
    return {
        "title": text["test"],
        "body": text["test_body"],
        "url": "/me",
        "report_id": None,
        "severity": "low",
        "kind": "test",
    }
