"""A site's alert channels: the WeCom (企业微信) and DingTalk (钉钉) group robots
that alerts reach beside Web Push. Written by admins, read by admins and the
site's supervisors.

A robot's webhook URL carries its key (WeCom ``key``, DingTalk
``access_token``): whoever has it can post into the group. So no answer and
no page ever carries it whole; they show the host, the path and the last four
characters of the key (:func:`masked`), and a DingTalk signing secret only as
``has_secret``. The admin log keeps neither.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, Field
from tortoise.transactions import in_transaction

from server import audit
from server.access import require_site
from server.alerts.queue import enqueue_channel_test
from server.alerts.robots import webhook_problem
from server.context import Context
from server.errors import ApiError, invalid
from server.models import (
    AlertChannel,
    ChannelEvent,
    ChannelKind,
    DeliveryStatus,
    PushDelivery,
    Role,
    Severity,
    Site,
    User,
)
from server.schemas import Shape, Timestamp, Written, parse_id
from server.sites import site_or_404

# The query parameter that holds a robot's key, by service.
KEY_PARAMS = ("key", "access_token")
# A key shorter than this is shown as "…" alone: its last four would be most of it.
SHOWN_KEY_MIN = 12


class ChannelIn(BaseModel):
    """A site's work-chat group robot: where it is, what it is told, and in
    which language."""

    kind: ChannelKind
    name: str = Field(min_length=1, max_length=100, description="what admins call the group")
    webhook_url: str | None = Field(
        default=None,
        max_length=1000,
        description="the robot's webhook, with its key (WeCom) or access_token (DingTalk); "
        "required for a new channel, left out or null to keep a channel's own",
    )
    secret: str | None = Field(
        default=None,
        max_length=200,
        description="DingTalk 加签 signing secret (SEC…); left out or null keeps it, "
        "empty removes it; never for WeCom",
    )
    min_severity: Severity | None = Field(
        description="new reports at or above this severity; null: no new reports"
    )
    events: list[ChannelEvent] = Field(default_factory=list, max_length=3)
    language: Literal["zh-CN", "en"] = "zh-CN"
    active: bool = True


class ChannelOut(Shape):
    """An alert channel of a site, its webhook masked."""

    id: uuid.UUID
    site: str
    kind: ChannelKind
    name: str
    webhook_masked: str = Field(description="host and path; the key as its last 4 characters")
    has_secret: bool
    min_severity: Severity | None
    events: list[ChannelEvent]
    language: str
    active: bool
    last_sent_at: Timestamp | None
    last_error: str | None = Field(description="what the service said when it last refused")
    last_error_at: Timestamp | None

    @property
    def failing(self) -> bool:
        """The service refused the last message, and none went through since."""
        if not self.last_error:
            return False
        if self.last_sent_at is None or self.last_error_at is None:
            return True
        return self.last_error_at >= self.last_sent_at

    @classmethod
    def of(cls, channel: AlertChannel, site: Site) -> ChannelOut:
        return cls(
            id=channel.id,
            site=site.code,
            kind=channel.kind,
            name=channel.name,
            webhook_masked=masked(channel.webhook_url),
            has_secret=bool(channel.secret),
            min_severity=channel.min_severity,
            events=[ChannelEvent(e) for e in channel.events or [] if e in set(ChannelEvent)],
            language=channel.language,
            active=channel.active,
            last_sent_at=channel.last_sent_at,
            last_error=channel.last_error or None,
            last_error_at=channel.last_error_at,
        )


class ChannelList(Shape):
    """A site's alert channels."""

    channels: list[ChannelOut]


class ChannelTestOut(Shape):
    """A test message queued for a channel; the result shows on the channel
    (``last_sent_at`` or ``last_error``) once it is sent."""

    queued: int


def masked(url: str) -> str:
    """``url`` without its secret part: scheme, host and path, and the key as
    its last four characters (``…5aaa``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    shown = f"{parts.scheme}://{host}{parts.path}"
    for name, value in parse_qsl(parts.query):
        if name in KEY_PARAMS:
            tail = value[-4:] if len(value) >= SHOWN_KEY_MIN else ""
            return f"{shown}?{name}=…{tail}"
    return shown


def _where(url: str) -> str:
    """Host and path: what the admin log keeps of a webhook."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{parts.path}"


async def channels_of(site: Site) -> list[AlertChannel]:
    return list(await AlertChannel.filter(site_id=site.id).order_by("name", "id"))


async def list_channels(user: User, code: str) -> ChannelList:
    """A site's channels, for admins and the site's supervisors."""
    site = await site_or_404(code)
    await require_site(user, site)
    return ChannelList(channels=[ChannelOut.of(c, site) for c in await channels_of(site)])


def _secret(body: ChannelIn, found: AlertChannel | None) -> str:
    if body.kind == ChannelKind.WECOM:
        if body.secret:
            raise invalid("secret", "only a DingTalk robot signs its messages (加签).")
        return ""
    if body.secret is None:
        return found.secret if found else ""
    secret = body.secret.strip()
    if any(c.isspace() for c in secret) or "://" in secret:
        raise invalid("secret", "the signing secret (SEC…), not the webhook URL.")
    return secret


async def put_channel(
    ctx: Context, actor: User, code: str, channel_id: str, body: ChannelIn
) -> Written[ChannelOut]:
    """Add (201) or change (200) one of the site's channels under the client's
    id; the same again changes nothing (200). The webhook must be one of the
    service's own (``settings.channel_hosts``), or it is a 422 naming it."""
    site = await site_or_404(code)
    cid = parse_id(channel_id, "channel_id")
    found = await AlertChannel.get_or_none(id=cid)
    if found is not None and found.site_id != site.id:
        raise ApiError(409, "conflict", "This channel id belongs to another site.")
    name = body.name.strip()
    if not name:
        raise invalid("name", "a channel needs a name.")
    url = body.webhook_url.strip() if body.webhook_url is not None else ""
    url = url or (found.webhook_url if found else "")
    if not url:
        raise invalid("webhook_url", "a new channel needs its robot's webhook URL.")
    problem = webhook_problem(url, body.kind, ctx.settings.channel_hosts)
    if problem is not None:
        raise invalid("webhook_url", problem)
    wanted: dict[str, Any] = {
        "kind": body.kind,
        "name": name,
        "webhook_url": url,
        "secret": _secret(body, found),
        "min_severity": body.min_severity,
        # In one order, so that the same events sent again are no change.
        "events": [e.value for e in ChannelEvent if e in body.events],
        "language": body.language,
        "active": body.active,
    }
    if found is not None and all(getattr(found, k) == v for k, v in wanted.items()):
        return Written(ChannelOut.of(found, site))
    logged = _logged(cid, wanted)
    async with in_transaction():
        if found is None:
            channel = await AlertChannel.create(id=cid, site_id=site.id, **wanted)
            await audit.record(actor, "channel.create", code, **logged)
        else:
            changed = [k for k, v in wanted.items() if getattr(found, k) != v]
            reached = {"kind", "webhook_url", "secret"}
            # The service's last refusal was about the robot as it was.
            fresh = {"last_error": "", "last_error_at": None} if reached & set(changed) else {}
            # A queryset update skips auto_now: the time is set here.
            await AlertChannel.filter(id=cid).update(**wanted, **fresh, updated_at=ctx.clock())
            await audit.record(actor, "channel.change", code, **logged, changed=changed)
            channel = await AlertChannel.get(id=cid)
    return Written(ChannelOut.of(channel, site), created=found is None)


def _logged(cid: uuid.UUID, wanted: dict[str, Any]) -> dict[str, Any]:
    """A channel as the admin log keeps it: no key, no secret."""
    severity = wanted["min_severity"]
    return {
        "id": str(cid),
        "name": wanted["name"],
        "kind": wanted["kind"].value,
        "webhook": _where(wanted["webhook_url"]),
        "has_secret": bool(wanted["secret"]),
        "min_severity": severity.value if severity else None,
        "events": wanted["events"],
        "language": wanted["language"],
        "active": wanted["active"],
    }


async def delete_channel(actor: User, code: str, channel_id: str) -> None:
    """Remove one of the site's channels, and what still waits to be sent to
    it; removing it again is no error."""
    site = await site_or_404(code)
    cid = parse_id(channel_id, "channel_id")
    found = await AlertChannel.get_or_none(id=cid, site_id=site.id)
    if found is None:
        return
    async with in_transaction():
        await PushDelivery.filter(channel_id=cid, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.GONE
        )
        await found.delete()
        await audit.record(actor, "channel.delete", code, id=str(cid), name=found.name)


async def send_test(ctx: Context, code: str, channel_id: str) -> ChannelTestOut:
    """Queue a test message to one of the site's channels (active or not)."""
    site = await site_or_404(code)
    found = await AlertChannel.get_or_none(id=parse_id(channel_id, "channel_id"), site_id=site.id)
    if found is None:
        raise ApiError(404, "not_found", "No such channel.")
    async with in_transaction():
        queued = await enqueue_channel_test(found, ctx)
    ctx.committed(queued)
    return ChannelTestOut(queued=queued)


# --- who a person is alerted by -----------------------------------------------------


async def alerting(user: User) -> list[tuple[Site, ChannelOut]]:
    """The active channels of the sites a supervisor or admin belongs to (an
    admin of no site: every site's, as escalations reach them), that are told
    anything; nobody else's alerts go to group robots."""
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        return []
    sites = list(await user.sites.all())
    if not sites and user.role == Role.ADMIN:
        sites = list(await Site.all())
    by_id = {s.id: s for s in sites}
    found = await AlertChannel.filter(site_id__in=list(by_id), active=True).order_by(
        "site_id", "name"
    )
    told = [c for c in found if c.min_severity is not None or c.events]
    return [(by_id[c.site_id], ChannelOut.of(c, by_id[c.site_id])) for c in told]
