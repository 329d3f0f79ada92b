"""Schemathesis against /api/openapi.json with a logged-in session: every
operation gets a bounded, repeatable set of generated requests (valid ones,
invalid ones, and valid ones aimed at a site, a report and a person that
exist), and no answer is a 5xx or differs from what the document says: its
status is documented, its content type and body are as documented.

The requests are generated once per run (derandomized, so CI sends the same
ones every time) and sent as each user. The app runs in the test's event
loop, as in every other test; Hypothesis runs in a worker thread and hands
each request back to that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import SerializationNotPossible
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import CSRF, login
from tests.helpers.reports import iso, lift_id

# Requests per operation and per kind (valid, invalid, aimed at what
# exists): ~40 operations x 3 kinds x this, sent as each of two users.
MAX_EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SESSION_COOKIE = "onsite_session"
# What the third kind of request is aimed at: a site, a report (the guard
# writes it before the run) and a person that exist, none of them the
# logged-in user.
EXISTING = {
    "code": "north",
    "report_id": "5d0c3f8e-4b7a-4f2e-9c1d-6a8b2e4f7c90",
    "username": "tech",
}

# Operations not fuzzed here, and why. (`DELETE /api/sessions/others` is
# fuzzed: it keeps the session it is sent with. `POST /api/session` too: a
# generated login fails with 401, then 429 once throttled, both documented,
# and leaves the session in the cookie alone.)
EXCLUDED = {
    # Logging out ends the session every later request needs; it is covered
    # by tests/routes/test_session.py.
    ("DELETE", "/api/session"),
    # An endless event stream: the request never ends. tests/test_stream.py.
    ("GET", "/api/stream"),
}

_generated: dict[str, list[tuple[str, Any]]] = {}


def draw(strategy: Any) -> list[Any]:
    """What ``strategy`` makes in a bounded, repeatable run: no shrinking (there
    is nothing to shrink: the requests are only collected here)."""
    drawn: list[Any] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,  # the same requests in every run
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def collect(case: Any) -> None:
        drawn.append(case)

    with contextlib.suppress(Unsatisfiable):  # no invalid request exists: none to send
        collect()
    return drawn


def generate(schema: Any) -> list[tuple[str, Any]]:
    """Every operation's generated requests, labelled by operation and kind."""
    cases: list[tuple[str, Any]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue
        names = {p.name for p in operation.path_parameters}
        kinds: list[tuple[str, GenerationMode, dict[str, str] | None]] = [
            ("valid", GenerationMode.POSITIVE, None),
            ("invalid", GenerationMode.NEGATIVE, None),
        ]
        pinned = {name: value for name, value in EXISTING.items() if name in names}
        if pinned:
            kinds.append(("existing", GenerationMode.POSITIVE, pinned))
        for kind, mode, path_parameters in kinds:
            label = f"{operation.method.upper()} {operation.path} ({kind})"
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            cases.extend((label, case) for case in draw(strategy))
    return cases


def cases_of(doc: dict) -> list[tuple[str, Any]]:
    """The requests for ``doc``, the document the app serves, made once per
    run. (Not ``schemathesis.openapi.from_asgi``: it starts the app's lifespan
    on an event loop of Schemathesis's own and keeps it until exit, while the
    app's database connections belong to the test's loop.)"""
    key = json.dumps(doc, sort_keys=True)
    if key not in _generated:
        _generated[key] = generate(schemathesis.openapi.from_dict(doc))
    return _generated[key]


def as_httpx(case: Any, session: str) -> dict[str, Any]:
    """A generated request as keyword arguments of ``httpx.AsyncClient.request``,
    sent with the session cookie ``session``."""
    sent = case.as_transport_kwargs(base_url="http://testserver")
    # Generated cookies go with the session's: a generated session cookie
    # would replace it, and a Cookie header alone would leave it out.
    cookies = {**(sent.get("cookies") or {}), SESSION_COOKIE: session}
    headers = {
        **(sent.get("headers") or {}),
        **CSRF,
        "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
    }
    request: dict[str, Any] = {
        "method": sent["method"],
        "url": sent["url"],
        "headers": headers,
        "params": sent.get("params"),
    }
    if "json" in sent:
        request["json"] = sent["json"]
    elif "data" in sent:
        data = sent["data"]
        if isinstance(data, dict):
            request["data"] = data
        else:
            request["content"] = data.encode() if isinstance(data, str) else data
    return request


def replay(
    doc: dict, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, username: str
) -> tuple[int, list[str]]:
    """Send the generated requests through ``client`` (which runs in
    ``loop``) and check each answer: how many were sent, what failed."""
    sent = 0
    failures: dict[str, str] = {}  # the first of each operation and kind
    for label, case in cases_of(doc):
        if case.path_parameters.get("username") == username:
            # Revoking one's own sessions, or setting one's own password or
            # account, would end or change the login the rest of the run needs.
            continue
        try:
            request = as_httpx(case, client.cookies[SESSION_COOKIE])
        except SerializationNotPossible:
            continue
        response = asyncio.run_coroutine_threadsafe(client.request(**request), loop).result(60)
        sent += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # one failure, or several
            failures.setdefault(label, f"{label}: {exc}")
    return sent, list(failures.values())


@pytest.mark.parametrize("username", ["admin", "guard"])
async def test_every_operation_answers_as_documented(app, world, username):
    """An admin of no site reaches every endpoint; a guard gets the 403s, and
    writes as a reporter does."""
    # An exception in the app comes back as the 500 a phone would get, for
    # Schemathesis to report with the request that caused it.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await login(client, "guard")
        report = f"/api/reports/{EXISTING['report_id']}"
        start = datetime.now(UTC) - timedelta(minutes=5)
        body = {
            "site": "north",
            "incident_type": lift_id(app),
            "severity": "high",
            "occurred_at": iso(start),
            "client_sent_at": iso(start + timedelta(minutes=4)),
            "location": {"text": "3栋2单元 电梯"},
            "notes": "两人被困",
            "steps": [{"index": 0, "checked_at": iso(start + timedelta(seconds=10))}],
        }
        created = await client.put(report, json=body, headers=CSRF)
        assert created.status_code == 201, created.text
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await login(client, username)
        doc = (await client.get("/api/openapi.json")).json()
        loop = asyncio.get_running_loop()
        sent, failures = await asyncio.to_thread(replay, doc, client, loop, username)
        assert not failures, f"{len(failures)} failed:\n\n" + "\n\n".join(failures)
        assert sent > 300
        # Still logged in as that user after all of it.
        me = await client.get("/api/me", headers=CSRF)
        assert me.status_code == 200 and me.json()["username"] == username
