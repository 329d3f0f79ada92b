"""Every setting once, with its default and a line of help.

Settings come from the environment (``ONSITE_*``) and are read once, into a
frozen :class:`Settings`, by :func:`load`. The README's settings table is
checked against :data:`SPECS` by a test, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Spec:
    """How one setting is read: its variable, default and help line."""

    env: str
    default: str
    help: str
    parse: Callable[[str], Any] = str


def _bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a yes/no value: {value!r}")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"must be at least 1: {value!r}")
    return number


def _language(value: str) -> str:
    if value not in ("zh-CN", "en"):
        raise ValueError(f"zh-CN or en, not {value!r}")
    return value


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"DEBUG, INFO, WARNING or ERROR, not {value!r}")
    return level


def _hosts(value: str) -> tuple[str, ...]:
    """``host``, ``.domain`` (its subdomains) or ``host:port`` entries,
    comma-separated, lower case."""
    hosts = tuple(h.strip().lower() for h in value.split(",") if h.strip())
    for host in hosts:
        if not re.fullmatch(r"\.?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?", host):
            raise ValueError(f"{host!r} is not a host name, .domain or host:port")
    return hosts


def _public_url(value: str) -> str:
    """Empty, or the app's https origin (and path prefix), without a trailing slash."""
    value = value.strip().rstrip("/")
    if not value:
        return ""
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s?#]*)?", value):
        raise ValueError(f"an https:// address like https://onsite.example.com, not {value!r}")
    return value


SEVERITIES = ("critical", "high", "medium", "low")
# Chrome and Android (FCM), Firefox (Mozilla), Safari and iOS (Apple), Edge (WNS).
PUSH_HOSTS = (
    "fcm.googleapis.com,android.googleapis.com,updates.push.services.mozilla.com,"
    "push.services.mozilla.com,.push.apple.com,.notify.windows.com"
)


def _photo_store(value: str) -> str:
    """Empty (files under the data folder) or ``s3://bucket/prefix``."""
    value = value.strip().rstrip("/")
    if value and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s?#]*)?", value):
        raise ValueError(f"empty or s3://bucket/prefix, not {value!r}")
    return value


def _deadlines(value: str) -> dict[str, float]:
    """``critical=5,high=15,...``: minutes per severity, every severity given once."""
    found: dict[str, float] = {}
    for part in value.split(","):
        name, _, minutes = part.strip().partition("=")
        if name not in SEVERITIES or name in found:
            raise ValueError(f"{part.strip()!r}: give each of {', '.join(SEVERITIES)} once")
        found[name] = float(minutes)
        if not found[name] > 0:
            raise ValueError(f"{part.strip()!r}: minutes must be more than 0")
    if set(found) != set(SEVERITIES):
        raise ValueError(f"missing {', '.join(s for s in SEVERITIES if s not in found)}")
    return found


SPECS: dict[str, Spec] = {
    "data_dir": Spec(
        "ONSITE_DATA_DIR", "./var", "Folder for the SQLite database, photos, keys.", Path
    ),
    "database_url": Spec(
        "ONSITE_DATABASE_URL",
        "",
        "Database URL; empty means SQLite at DATA_DIR/onsite.sqlite3. "
        "PostgreSQL: postgres://user@host:5432/db.",
    ),
    "secret_key": Spec(
        "ONSITE_SECRET_KEY",
        "",
        "Signs session cookies; empty means generated once and kept in DATA_DIR/secret_key.",
    ),
    "host": Spec("ONSITE_HOST", "127.0.0.1", "Address `onsite serve` listens on."),
    "port": Spec("ONSITE_PORT", "8000", "Port `onsite serve` listens on.", int),
    "default_language": Spec(
        "ONSITE_DEFAULT_LANGUAGE",
        "zh-CN",
        "Language for users who have not chosen one (zh-CN or en).",
        _language,
    ),
    "timezone": Spec(
        "ONSITE_TIMEZONE", "Asia/Shanghai", "Time zone that pages show times in (IANA name)."
    ),
    "session_days": Spec(
        "ONSITE_SESSION_DAYS",
        "30",
        "Days a login lasts; long, so field phones are not logged out mid-shift.",
        int,
    ),
    "password_memory_kib": Spec(
        "ONSITE_PASSWORD_MEMORY_KIB",
        "65536",
        "Memory per argon2id password hash, in KiB; lower only for tests.",
        _positive,
    ),
    "password_workers": Spec(
        "ONSITE_PASSWORD_WORKERS",
        "2",
        "Password checks run at once, each in a worker thread off the event loop.",
        _positive,
    ),
    "login_account_limit": Spec(
        "ONSITE_LOGIN_ACCOUNT_LIMIT",
        "5",
        "Failed logins per username within the login window before 429 (right password too).",
        _positive,
    ),
    "login_address_limit": Spec(
        "ONSITE_LOGIN_ADDRESS_LIMIT",
        "20",
        "Failed logins per client address within the login window before 429.",
        _positive,
    ),
    "login_window_minutes": Spec(
        "ONSITE_LOGIN_WINDOW_MINUTES",
        "15",
        "Minutes a failed login counts against its username and address.",
        _positive,
    ),
    "escalation_minutes": Spec(
        "ONSITE_ESCALATION_MINUTES",
        "critical=5,high=15,medium=60,low=240",
        "Minutes a new report may wait unacknowledged, by severity, before its site's "
        "admins are alerted and its supervisors alerted again.",
        _deadlines,
    ),
    "max_photo_mb": Spec(
        "ONSITE_MAX_PHOTO_MB", "25", "Largest photo upload accepted, in MB (413 beyond).", int
    ),
    "photo_workers": Spec(
        "ONSITE_PHOTO_WORKERS", "2", "Photos processed at once, off the event loop.", int
    ),
    "photo_memory_mb": Spec(
        "ONSITE_PHOTO_MEMORY_MB",
        "512",
        "Memory, in MiB, that the photos being converted at once may decode into; a photo "
        "that would need more on its own is refused (422), others wait their turn.",
        _positive,
    ),
    "photo_store": Spec(
        "ONSITE_PHOTO_STORE",
        "",
        "Where photos are kept: empty means files under DATA_DIR/photos; "
        "s3://bucket/prefix means S3-compatible object storage (private bucket).",
        _photo_store,
    ),
    "s3_endpoint": Spec(
        "ONSITE_S3_ENDPOINT",
        "",
        "The S3-compatible service's address, e.g. https://oss-cn-shanghai.aliyuncs.com; "
        "empty means AWS.",
    ),
    "s3_region": Spec("ONSITE_S3_REGION", "us-east-1", "The bucket's region."),
    "s3_access_key_id": Spec(
        "ONSITE_S3_ACCESS_KEY_ID", "", "Access key id; empty means the AWS_* environment."
    ),
    "s3_secret_access_key": Spec(
        "ONSITE_S3_SECRET_ACCESS_KEY", "", "Secret access key; empty means the AWS_* environment."
    ),
    "vapid_private_key": Spec(
        "ONSITE_VAPID_PRIVATE_KEY",
        "",
        "VAPID private key (PEM); empty means made once and kept in DATA_DIR/vapid_private.pem.",
    ),
    "vapid_subject": Spec(
        "ONSITE_VAPID_SUBJECT", "mailto:onsite@localhost", "Contact the push services may use."
    ),
    "push_hosts": Spec(
        "ONSITE_PUSH_HOSTS",
        PUSH_HOSTS,
        "Push services a device's subscription may point at, comma-separated; .domain "
        "means its subdomains (https only, and never to a private address unless an IP "
        "is listed itself, for tests).",
        _hosts,
    ),
    "channel_hosts": Spec(
        "ONSITE_CHANNEL_HOSTS",
        "qyapi.weixin.qq.com,oapi.dingtalk.com",
        "Hosts a WeCom or DingTalk channel's webhook may point at, comma-separated "
        "(https only; http only to 127.0.0.1 when it is listed, for tests).",
        _hosts,
    ),
    "public_url": Spec(
        "ONSITE_PUBLIC_URL",
        "",
        "The app's own https address, e.g. https://onsite.example.com, for the links in "
        "channel messages; empty means relative links (/reports/ID), which a chat app "
        "cannot open.",
        _public_url,
    ),
    "log_level": Spec(
        "ONSITE_LOG_LEVEL",
        "INFO",
        "Least level of the server's log lines, one per event on stderr "
        "(DEBUG, INFO, WARNING or ERROR).",
        _log_level,
    ),
    "debug": Spec(
        "ONSITE_DEBUG", "false", "Show tracebacks in responses (never in production).", _bool
    ),
}


@dataclass(frozen=True)
class Settings:
    """The app's settings, read once at start-up by :func:`load` (the defaults are in SPECS)."""

    data_dir: Path
    database_url: str
    secret_key: str
    host: str
    port: int
    default_language: str
    timezone: str
    session_days: int
    password_memory_kib: int
    password_workers: int
    login_account_limit: int
    login_address_limit: int
    login_window_minutes: int
    escalation_minutes: dict[str, float]
    max_photo_mb: int
    photo_workers: int
    photo_memory_mb: int
    photo_store: str
    s3_endpoint: str
    s3_region: str
    s3_access_key_id: str
    s3_secret_access_key: str
    vapid_private_key: str
    vapid_subject: str
    push_hosts: tuple[str, ...]
    channel_hosts: tuple[str, ...]
    public_url: str
    log_level: str
    debug: bool

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "onsite.sqlite3"


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``); ``overrides`` win.

    A missing secret key is generated once and kept in the data folder, so
    sessions survive a restart without anyone having to set one.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, spec in SPECS.items():
        raw = environ.get(spec.env, spec.default)
        try:
            values[name] = spec.parse(raw)
        except ValueError as exc:
            raise ValueError(f"{spec.env}: {exc}") from None
    values.update(overrides)
    values["data_dir"] = Path(values["data_dir"]).resolve()
    values["data_dir"].mkdir(parents=True, exist_ok=True)
    if not values["secret_key"]:
        values["secret_key"] = _kept_secret(values["data_dir"] / "secret_key")
    return Settings(**values)


def _kept_secret(path: Path) -> str:
    """Read the secret at ``path``, creating it (mode 0600) the first time."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: theirs wins
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    return secret
