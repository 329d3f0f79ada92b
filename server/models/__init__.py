"""The tables of the whole domain, by part (Tortoise finds the models here).

people: sites, staff and their logins; reports: reports, steps, photos, the timeline;
review: 分析 answers and 改善 actions; alerts: devices, robots and the delivery queue.
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
from server.models.people import (
    AdminLog,
    ContactKind,
    LoginFailure,
    LoginSession,
    Role,
    Site,
    SiteContact,
    User,
)
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
