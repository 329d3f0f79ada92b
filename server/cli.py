"""The ``onsite`` command: serve, migrate, sites, users, demo, playbooks."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from tortoise import Tortoise
from tortoise.exceptions import IntegrityError

from server import db, passwords
from server import settings as settings_mod
from server.models import Role, Site, User
from server.passwords import generate_password, hash_password

T = TypeVar("T")

DEMO_SITE = ("demo", "示范花园小区")
DEMO_USERS = [
    ("guard", Role.GUARD, "保安 王师傅"),
    ("tech", Role.TECHNICIAN, "维修 李工"),
    ("super", Role.SUPERVISOR, "主管 陈经理"),
    ("admin", Role.ADMIN, "管理员"),
]


def _settings() -> settings_mod.Settings:
    try:
        settings = settings_mod.load()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    passwords.configure(settings.password_memory_kib)
    return settings


def _with_db(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with the database migrated and open, then close it."""
    settings = _settings()

    async def run() -> T:
        await db.migrate(settings)
        await Tortoise.init(config=db.config(settings))
        try:
            return await work()
        finally:
            await Tortoise.close_connections()

    return asyncio.run(run())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="onsite")
def main() -> None:
    """Onsite: report incidents on site, online or offline.

    Settings come from ONSITE_* environment variables (see the README).
    """


@main.command()
@click.option("--host", default=None, help="Address to listen on [ONSITE_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [ONSITE_PORT, 8000].")
def serve(host: str | None, port: int | None) -> None:
    """Run the server; applies pending migrations first."""
    import uvicorn

    from server.app import create_app
    from server.playbooks import PlaybookError

    settings = _settings()
    try:
        app = create_app(settings)
    except PlaybookError as exc:
        raise click.ClickException(f"invalid playbooks, not starting:\n{exc}") from None
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=True,
        log_level="info",
    )


@main.command()
def migrate() -> None:
    """Apply pending database migrations."""
    settings = _settings()
    asyncio.run(db.migrate(settings))
    click.echo("migrations applied")


@main.command()
@click.option("--name", default=None, help="A name for the new migration.")
def makemigrations(name: str | None) -> None:
    """Write a migration for model changes (developers only)."""
    from tortoise.cli import cli as tortoise_cli

    ctx = tortoise_cli.CLIContext(config="server.db.TORTOISE_ORM", config_file=None)
    asyncio.run(tortoise_cli.makemigrations(ctx, (), empty=False, name=name))


@main.group()
def site() -> None:
    """Manage sites."""


@site.command("add")
@click.argument("code")
@click.argument("name")
def site_add(code: str, name: str) -> None:
    """Add a site with a short CODE and a display NAME."""
    code = code.strip()
    if not code or len(code) > 32 or not code.replace("-", "").replace("_", "").isalnum():
        raise click.BadParameter("use letters, digits, - or _, at most 32", param_hint="CODE")

    async def work() -> None:
        try:
            await Site.create(code=code, name=name.strip() or code)
        except IntegrityError:
            raise click.ClickException(f"site {code!r} exists already") from None

    _with_db(work)
    click.echo(f"site {code} added")


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--site", "site_codes", multiple=True, help="Site code; repeat for several.")
@click.option("--name", "display_name", default="", help="Name shown to colleagues.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_add(
    username: str, role: str, site_codes: tuple[str, ...], display_name: str, password_stdin: bool
) -> None:
    """Add a user; prints a generated password unless --password-stdin."""
    if not username.strip() or len(username) > 64:
        raise click.BadParameter("1 to 64 characters", param_hint="USERNAME")
    if Role(role) != Role.ADMIN and not site_codes:
        raise click.UsageError("a guard, technician or supervisor needs at least one --site")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            raise click.ClickException("the password must have at least 8 characters")
    else:
        password = generate_password()

    async def work() -> None:
        sites = [await Site.get_or_none(code=c) for c in site_codes]
        missing = [c for c, s in zip(site_codes, sites, strict=True) if s is None]
        if missing:
            raise click.ClickException(f"no such site: {', '.join(missing)}")
        try:
            created = await User.create(
                username=username.strip(),
                role=Role(role),
                display_name=display_name,
                password_hash=hash_password(password),
            )
        except IntegrityError:
            raise click.ClickException(f"user {username!r} exists already") from None
        await created.sites.add(*[s for s in sites if s is not None])

    _with_db(work)
    click.echo(f"user {username} added ({role})")
    if not password_stdin:
        click.echo(f"password: {password}")


@user.command("revoke-sessions")
@click.argument("username")
def user_revoke_sessions(username: str) -> None:
    """Log USERNAME out on every device (a lost phone)."""

    async def work() -> None:
        found = await User.get_or_none(username=username)
        if found is None:
            raise click.ClickException(f"no such user: {username}")
        await found.end_sessions()

    _with_db(work)
    click.echo(f"every session of {username} is revoked")


@main.command()
def demo() -> None:
    """Create a demo site and one user per role; prints their passwords.

    Running it again resets the demo users' passwords.
    """

    async def work() -> list[tuple[str, str, str]]:
        code, name = DEMO_SITE
        demo_site, _ = await Site.get_or_create(code=code, defaults={"name": name})
        printed = []
        for username, role, display in DEMO_USERS:
            password = generate_password()
            found = await User.get_or_none(username=username)
            if found is None:
                found = await User.create(
                    username=username,
                    role=role,
                    display_name=display,
                    password_hash=hash_password(password),
                )
            else:
                found.password_hash = hash_password(password)
                found.is_active = True
                await found.save()
            await found.sites.add(demo_site)
            printed.append((username, role.value, password))
        return printed

    rows = _with_db(work)
    click.echo(f"demo site: {DEMO_SITE[0]} ({DEMO_SITE[1]})")
    click.echo(f"{'username':<10} {'role':<12} password")
    for username, role, password in rows:
        click.echo(f"{username:<10} {role:<12} {password}")


@main.group()
def playbooks() -> None:
    """Check the incident playbooks."""


@playbooks.command("check")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Playbook folder [the repo's playbooks/].",
)
def playbooks_check(directory: str | None) -> None:
    """Validate every playbook; exits non-zero naming each bad file and field."""
    from pathlib import Path

    from server import playbooks as playbook_lib

    path = Path(directory) if directory else playbook_lib.DEFAULT_DIR
    errors = playbook_lib.check(path)
    if errors:
        for line in errors:
            click.echo(line, err=True)
        raise click.ClickException(f"{len(errors)} problem(s) in {path}")
    library = playbook_lib.load(path)
    click.echo(f"playbooks ok: {len(library.incidents())} incidents, version {library.version}")


if __name__ == "__main__":  # pragma: no cover
    main()
