"""GET /healthz: what a load balancer sees when the app can serve, and when not."""

from __future__ import annotations

import asyncio

from tortoise import Tortoise

from tests.conftest import login

WORKERS = {"push", "stream", "escalation", "reminders"}


async def test_a_running_app_is_healthy(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "workers": dict.fromkeys(WORKERS, "ok"),
    }
    assert response.headers["cache-control"] == "no-store"


async def test_the_health_check_needs_no_login_and_touches_no_session(client, world):
    await login(client, "guard")
    before = dict(client.cookies)
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert dict(client.cookies) == before


async def test_the_health_check_says_nothing_sensitive(client):
    text = (await client.get("/healthz")).text
    for leak in ("/", "\\", "version", "tortoise", "sqlite", "postgres", "python"):
        assert leak not in text.lower(), leak


async def test_an_unreachable_database_gives_503(app, client, monkeypatch):
    connection = Tortoise.get_connection("default")

    async def refused(*args, **kwargs):
        raise ConnectionRefusedError("no database here")

    monkeypatch.setattr(type(connection), "execute_query", refused)
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "failing"
    assert response.json()["database"] == "unreachable"
    assert "no database here" not in response.text


async def test_a_database_that_hangs_gives_503_within_the_timeout(app, client, monkeypatch):
    app.state.health_timeout = 0.2
    connection = Tortoise.get_connection("default")

    async def hangs(*args, **kwargs):
        await asyncio.sleep(60)

    monkeypatch.setattr(type(connection), "execute_query", hangs)
    async with asyncio.timeout(5):
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_a_dead_push_deliverer_gives_503_naming_it(app, client):
    task = app.state.deliverer.loop.task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["workers"]["push"] == "stopped"
    assert {name for name, state in body["workers"].items() if state == "ok"} == WORKERS - {"push"}


async def test_a_dead_escalator_gives_503_naming_it(app, client):
    task = app.state.escalator.loop.task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["workers"]["escalation"] == "stopped"
