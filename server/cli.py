"""The ``onsite`` command: serve, migrate, sites, users, demo, backup, restore, playbooks."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from tortoise import Tortoise

from server import db, passwords, playbook_book, sites, users
from server import settings as settings_mod
from server.errors import ApiError
from server.models import Role, Site, User
from server.passwords import generate_password
from server.sites import SiteIn
from server.users import PasswordIn, UserIn

T = TypeVar("T")

DEMO_SITE = ("demo", "示范花园小区")
DEMO_USERS = [
    ("guard", Role.GUARD, "王师傅"),
    ("tech", Role.TECHNICIAN, "李工"),
    ("super", Role.SUPERVISOR, "陈经理"),
    ("admin", Role.ADMIN, "管理员"),
]


def _settings() -> settings_mod.Settings:
    try:
        settings = settings_mod.load()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    passwords.configure(settings.password_memory_kib)
    return settings


# The services' field names, as the command line calls them.
OPTIONS = {"sites": "--site", "display_name": "--name", "role": "--role", "name": "NAME"}


async def _service(call: Awaitable[T], param: str) -> T:
    """A service's answer; its 4xx becomes the command line's error, naming
    the option at fault (``param`` for the argument the path carries)."""
    try:
        return await call
    except ApiError as exc:
        fields = exc.detail.get("fields") or []
        if not fields:
            raise click.ClickException(exc.message) from None
        field = str(fields[0]["field"]).split(".")[0]
        option = OPTIONS.get(field, param)
        raise click.ClickException(f"{option}: {exc.message.split(': ', 1)[-1]}") from None


def _with_db(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with the database migrated and open, then close it."""
    settings = _settings()

    async def run() -> T:
        await db.migrate(settings)
        await Tortoise.init(config=db.config(settings))
        try:
            # The shipped playbooks published, as a server's start does: a
            # report or a backup made from here names their versions.
            await playbook_book.load().start()
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
    """Run the server; applies pending migrations first. Logs one line per event to stderr."""
    import uvicorn

    from server import logs
    from server.app import create_app
    from server.playbooks import PlaybookError

    settings = _settings()
    logs.configure(settings.log_level)
    try:
        app = create_app(settings)
    except PlaybookError as exc:
        raise click.ClickException(f"invalid playbooks, not starting:\n{exc}") from None
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=True,
        log_config=None,  # uvicorn's lines go through the same one-line handler
        log_level=settings.log_level.lower(),
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

    async def work() -> None:
        if await Site.exists(code=code):
            raise click.ClickException(f"site {code!r} exists already")
        await _service(sites.put_site(None, code, SiteIn(name=name.strip() or code)), "CODE")

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
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            raise click.ClickException("the password must have at least 8 characters")
    body = UserIn(display_name=display_name, role=Role(role), sites=list(site_codes))

    async def work() -> str | None:
        if await User.exists(username=username.strip()):
            raise click.ClickException(f"user {username!r} exists already")
        made = await _service(
            users.put_user(None, username.strip(), body, password=password), "USERNAME"
        )
        return made.body.password

    shown = _with_db(work)
    click.echo(f"user {username} added ({role})")
    if shown:
        click.echo(f"password: {shown}")


@user.command("revoke-sessions")
@click.argument("username")
def user_revoke_sessions(username: str) -> None:
    """Log USERNAME out on every device (a lost phone)."""

    async def work() -> None:
        if not await User.exists(username=username):
            raise click.ClickException(f"no such user: {username}")
        await users.revoke_sessions(None, username)

    _with_db(work)
    click.echo(f"every session of {username} is revoked")


@main.command()
def demo() -> None:
    """Create a demo site and one user per role; prints their passwords.

    Running it again resets the demo users' passwords.
    """

    async def work() -> list[tuple[str, str, str]]:
        code, name = DEMO_SITE
        if not await Site.exists(code=code):
            await sites.put_site(None, code, SiteIn(name=name))
        printed = []
        for username, role, display in DEMO_USERS:
            password = generate_password()
            body = UserIn(display_name=display, role=role, sites=[code])
            if await User.exists(username=username):
                await users.put_user(None, username, body)  # active again, on the demo site
                await users.set_password(None, username, PasswordIn(password=password))
            else:
                await users.put_user(None, username, body, password=password)
            printed.append((username, role.value, password))
        return printed

    rows = _with_db(work)
    click.echo(f"demo site: {DEMO_SITE[0]} ({DEMO_SITE[1]})")
    click.echo(f"{'username':<10} {'role':<12} password")
    for username, role, password in rows:
        click.echo(f"{username:<10} {role:<12} {password}")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Save the database and the photos into one archive FILE (.tar.gz).

    Keep it safe: it holds password hashes and the robots' webhook keys.
    """
    from server import backup as backup_mod
    from server.photo_store import open_store

    settings = _settings()
    if file.exists():
        raise click.ClickException(f"{file} exists already; give a new file name")
    store = open_store(settings)
    summary = _with_db(lambda: backup_mod.backup(file, settings.data_dir, store=store))
    reports, events = summary.rows.get("report", 0), summary.rows.get("event", 0)
    click.echo(
        f"backup written to {file}: {sum(summary.rows.values())} rows "
        f"({reports} reports, {events} events), "
        f"{summary.photos} photo files ({summary.photo_bytes} bytes)"
    )


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(file: Path) -> None:
    """Bring back a backup FILE into an empty database and data folder.

    Refuses, changing nothing, if the database has any row or the photo
    store (the data folder, or ONSITE_PHOTO_STORE's bucket prefix) any photo:
    restore onto a new machine or a fresh database.
    """
    from server import restore as restore_mod
    from server.photo_store import open_store

    settings = _settings()

    async def work() -> restore_mod.Restored:
        try:
            return await restore_mod.restore(file, settings.data_dir, open_store(settings))
        except restore_mod.RestoreError as exc:
            raise click.ClickException(str(exc)) from None

    done = _with_db(work)
    made = done.manifest.get("created_at", "?")
    version = done.manifest.get("app_version", "?")
    click.echo(f"restored {file} (made {made} by onsite {version})")
    for table, count in sorted(done.summary.rows.items()):
        click.echo(f"  {table:<20} {count}")
    click.echo(f"  photo files          {done.summary.photos} ({done.summary.photo_bytes} bytes)")
    if done.missing:
        click.echo(f"{len(done.missing)} photo file(s) missing or of the wrong size:", err=True)
        for name in done.missing:
            click.echo(f"  {name}", err=True)
    else:
        click.echo("every photo row has its files")


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
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
def playbooks_check(directory: str | None, file: str | None) -> None:
    """Validate every playbook, or FILE (an export of the library or of one
    playbook); exits non-zero naming each bad file and field."""
    from server import playbooks as playbook_lib

    if file is not None:
        try:
            found = playbook_lib.check_export_file(Path(file))
        except playbook_lib.PlaybookError as exc:
            for line in exc.errors:
                click.echo(f"{file}: {line}", err=True)
            raise click.ClickException(f"{len(exc.errors)} problem(s) in {file}") from None
        click.echo(f"export ok: {len(found)} incident(s) in {file}")
        return
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
