"""The tables of the whole domain, by part (Tortoise finds the models here).

sites: sites and their emergency contacts; staff: users and their logins; audit: the
admin log; reports: reports, steps, photos, the timeline; review: 分析 answers and 改善
actions; alerts: devices, robots and the delivery queue; playbooks: the company's and
sites' playbook drafts and published versions.
"""

from server.models.alerts import (
    AlertChannel,
    ChannelEvent,
    ChannelKind,
    DeliveryKind,
    DeliveryStatus,
    PushAttempt,
    PushDelivery,
    PushSubscription,
)
from server.models.audit import AdminLog
from server.models.playbooks import PlaybookDraft, PlaybookVersion
from server.models.reports import (
    Event,
    Photo,
    PhotoKind,
    Report,
    ReportStatus,
    ReportStep,
    Severity,
)
from server.models.review import ActionStatus, AnalysisAnswer, CorrectiveAction, Verdict
from server.models.sites import ContactKind, Site, SiteContact
from server.models.staff import LoginFailure, LoginSession, Role, User

__all__ = [
    "AlertChannel",
    "ChannelEvent",
    "ChannelKind",
    "AdminLog",
    "ContactKind",
    "SiteContact",
    "ActionStatus",
    "AnalysisAnswer",
    "CorrectiveAction",
    "DeliveryKind",
    "DeliveryStatus",
    "LoginFailure",
    "LoginSession",
    "Event",
    "Photo",
    "PhotoKind",
    "PlaybookDraft",
    "PlaybookVersion",
    "PushAttempt",
    "PushDelivery",
    "PushSubscription",
    "Report",
    "ReportStatus",
    "ReportStep",
    "Role",
    "Severity",
    "Site",
    "User",
    "Verdict",
]
