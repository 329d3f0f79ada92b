"""Logging in and out, long sessions kept as rows, revocation, the login
throttle, password checks off the event loop, and the CSRF check."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from datetime import timedelta

import httpx
from itsdangerous import URLSafeTimedSerializer

from server import passwords
from server.models import LoginFailure, LoginSession, User
from tests.conftest import CSRF, PASSWORD, api_client, login

WINDOW = 15 * 60


async def attempt(client, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/session", json={"username": username, "password": password}, headers=CSRF
    )


def sign(payload: dict, secret: str = "test-secret") -> str:
    """A cookie signed as the server signs them (the tests' secret key)."""
    return URLSafeTimedSerializer(secret, salt="onsite.session").dumps(payload)


async def test_login_with_the_right_password_sets_a_long_httponly_lax_cookie(client, world):
    response = await login(client, "guard")
    cookie = response.headers["set-cookie"].lower()
    assert "onsite_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert f"max-age={30 * 24 * 3600}" in cookie
    assert "secure" not in cookie  # plain http in tests
    assert response.json()["username"] == "guard"
    assert response.json()["sites"] == [{"code": "north", "name": "北苑"}]


async def test_login_over_https_marks_the_cookie_secure(app, world):
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        response = await login(c, "guard")
    assert "secure" in response.headers["set-cookie"].lower()


async def test_wrong_password_is_401_and_sets_no_cookie(client, world):
    response = await client.post(
        "/api/session", json={"username": "guard", "password": "nope"}, headers=CSRF
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_credentials"
    assert "set-cookie" not in response.headers


async def test_unknown_user_gets_the_same_401_as_a_wrong_password(client, world):
    response = await client.post(
        "/api/session", json={"username": "ghost", "password": PASSWORD}, headers=CSRF
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_credentials"


async def test_me_answers_after_login_and_401_before(client, world):
    assert (await client.get("/api/me")).status_code == 401
    await login(client, "super")
    me = (await client.get("/api/me")).json()
    assert me["role"] == "supervisor"
    assert me["username"] == "super"


async def test_revoked_sessions_are_rejected_at_the_next_request(client, world):
    await login(client, "guard")
    assert (await client.get("/api/me")).status_code == 200
    await world.guard.end_sessions()
    response = await client.get("/api/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


async def test_a_new_login_after_revocation_works_again(client, world):
    await login(client, "guard")
    await world.guard.end_sessions()
    await login(client, "guard")
    assert (await client.get("/api/me")).status_code == 200


async def test_a_deactivated_user_is_logged_out_and_cannot_log_in(client, world):
    await login(client, "guard")
    await User.filter(id=world.guard.id).update(is_active=False)
    assert (await client.get("/api/me")).status_code == 401
    response = await client.post(
        "/api/session", json={"username": "guard", "password": PASSWORD}, headers=CSRF
    )
    assert response.status_code == 401


async def test_a_tampered_session_cookie_is_ignored(client, world):
    await login(client, "guard")
    token = client.cookies["onsite_session"]
    client.cookies.set("onsite_session", token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert (await client.get("/api/me")).status_code == 401


async def test_logout_clears_the_cookie(client, world):
    await login(client, "guard")
    response = await client.delete("/api/session", headers=CSRF)
    assert response.status_code == 204
    assert (await client.get("/api/me")).status_code == 401


# --- sessions are rows -----------------------------------------------------------


async def test_a_login_keeps_only_the_sha256_of_the_session_id(client, world):
    await login(client, "guard")
    session = await LoginSession.get(user_id=world.guard.id)
    token = URLSafeTimedSerializer("test-secret", salt="onsite.session").loads(
        client.cookies["onsite_session"]
    )["s"]
    assert session.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in session.token_hash and session.revoked_at is None


async def test_a_cookie_kept_from_before_logout_no_longer_works(client, world):
    await login(client, "guard")
    kept = client.cookies["onsite_session"]
    assert (await client.delete("/api/session", headers=CSRF)).status_code == 204
    client.cookies.set("onsite_session", kept)
    response = await client.get("/api/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert (await LoginSession.get(user_id=world.guard.id)).revoked_at is not None


async def test_a_cookie_of_the_old_user_and_version_format_is_refused(client, world):
    client.cookies.set("onsite_session", sign({"u": world.guard.id, "v": 1}))
    assert (await client.get("/api/me")).status_code == 401


async def test_a_well_signed_cookie_naming_no_session_is_refused(client, world):
    await login(client, "guard")
    for forged in ({"s": "not-a-session"}, {"s": 12}, {"s": ["x"]}, ["s"], "s"):
        client.cookies.set("onsite_session", sign(forged))  # type: ignore[arg-type]
        assert (await client.get("/api/me")).status_code == 401, forged


async def test_a_cookie_signed_with_another_key_is_refused(client, world):
    await login(client, "guard")
    token = URLSafeTimedSerializer("test-secret", salt="onsite.session").loads(
        client.cookies["onsite_session"]
    )["s"]
    client.cookies.set("onsite_session", sign({"s": token}, secret="another-secret"))
    assert (await client.get("/api/me")).status_code == 401


async def test_a_session_ends_after_its_30_days(client, world, clock):
    await login(client, "guard")
    clock.advance(29 * 24 * 3600)
    assert (await client.get("/api/me")).status_code == 200
    clock.advance(2 * 24 * 3600)
    assert (await client.get("/api/me")).status_code == 401


async def test_last_seen_moves_on_at_most_every_five_minutes(client, world, clock):
    await login(client, "guard")
    first = (await LoginSession.get(user_id=world.guard.id)).last_seen_at
    clock.advance(4 * 60)
    assert (await client.get("/api/me")).status_code == 200
    assert (await LoginSession.get(user_id=world.guard.id)).last_seen_at == first
    clock.advance(2 * 60)
    assert (await client.get("/api/me")).status_code == 200
    later = (await LoginSession.get(user_id=world.guard.id)).last_seen_at
    assert later - first >= timedelta(minutes=6) - timedelta(seconds=1)


async def test_the_user_agent_is_kept_shortened(client, world):
    agent = "Mozilla/5.0 (Linux; Android 14) " + "x" * 500
    await client.post(
        "/api/session",
        json={"username": "guard", "password": PASSWORD},
        headers={**CSRF, "User-Agent": agent},
    )
    session = await LoginSession.get(user_id=world.guard.id)
    assert session.user_agent == agent[:200]


async def test_ending_every_session_revokes_each_device(app, world):
    async with api_client(app) as phone, api_client(app) as tablet:
        await login(phone, "guard")
        await login(tablet, "guard")
        await world.guard.end_sessions()
        assert (await phone.get("/api/me")).status_code == 401
        assert (await tablet.get("/api/me")).status_code == 401
    assert await LoginSession.filter(user_id=world.guard.id, revoked_at=None).count() == 0


async def test_a_login_forgets_the_users_sessions_past_their_30_days(client, world, clock):
    await login(client, "guard")
    clock.advance(31 * 24 * 3600)
    await login(client, "guard")
    assert await LoginSession.filter(user_id=world.guard.id).count() == 1


# --- the login throttle ------------------------------------------------------------


async def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(client, world):
    for _ in range(5):
        assert (await attempt(client, "guard", "wrong")).status_code == 401
    response = await attempt(client, "guard", PASSWORD)
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "too_many_attempts"
    assert "15 分钟" in error["message"]
    assert 0 < int(response.headers["retry-after"]) <= WINDOW
    assert error["retry_after"] == int(response.headers["retry-after"])
    assert "set-cookie" not in response.headers
    assert (await client.get("/api/me")).status_code == 401


async def test_the_lock_lifts_when_the_oldest_failure_leaves_the_window(client, world, clock):
    for _ in range(5):
        await attempt(client, "guard", "wrong")
        clock.advance(60)
    response = await attempt(client, "guard", PASSWORD)
    # The first failure was 5 minutes ago: it leaves the 15-minute window in 10.
    assert response.status_code == 429
    assert WINDOW - 5 * 60 - 1 <= int(response.headers["retry-after"]) <= WINDOW - 5 * 60
    assert "10 分钟" in response.json()["error"]["message"]
    clock.advance(int(response.headers["retry-after"]))
    assert (await attempt(client, "guard", PASSWORD)).status_code == 200


async def test_a_locked_account_does_not_check_the_password(client, world, monkeypatch):
    for _ in range(5):
        await attempt(client, "guard", "wrong")
    checked = []
    monkeypatch.setattr(passwords, "verify_password", lambda *a: checked.append(a) or True)
    assert (await attempt(client, "guard", PASSWORD)).status_code == 429
    assert checked == []


async def test_a_username_that_does_not_exist_is_throttled_alike(client, world):
    answers = [(await attempt(client, "ghost", "wrong")).status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]
    assert (await attempt(client, "ghost", "wrong")).json()["error"]["code"] == "too_many_attempts"


async def test_a_successful_login_clears_the_accounts_count(client, world):
    for _ in range(4):
        await attempt(client, "guard", "wrong")
    assert (await attempt(client, "guard", PASSWORD)).status_code == 200
    answers = [(await attempt(client, "guard", "wrong")).status_code for _ in range(4)]
    assert answers == [401] * 4
    assert await LoginFailure.all().count() == 4 * 2 + 4  # account and address rows


async def test_one_accounts_lock_leaves_the_others_alone(client, world):
    for _ in range(5):
        await attempt(client, "guard", "wrong")
    assert (await attempt(client, "super", PASSWORD)).status_code == 200


async def test_twenty_failures_from_one_address_lock_that_address(app, world):
    async with api_client(app) as client:
        for n in range(20):
            assert (await attempt(client, f"ghost{n}", "wrong")).status_code == 401
        response = await attempt(client, "guard", PASSWORD)
        assert response.status_code == 429
        assert 0 < int(response.headers["retry-after"]) <= WINDOW
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 4567)),
        base_url="http://testserver",
    )
    async with elsewhere:
        assert (await attempt(elsewhere, "guard", PASSWORD)).status_code == 200


async def test_concurrent_guesses_cannot_slip_past_the_limit(client, world):
    answers = await asyncio.gather(*(attempt(client, "guard", "wrong") for _ in range(12)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [401] * 5 + [429] * 7


async def test_failed_logins_are_kept_as_digests_not_names(client, world):
    await attempt(client, "my-password-typed-here", "wrong")
    keys = await LoginFailure.all().values_list("key", flat=True)
    assert len(keys) == 2
    assert all(len(k) == 64 and "my-password" not in k for k in keys)


async def test_old_failures_are_swept_at_the_next_failure(client, world, clock):
    await attempt(client, "guard", "wrong")
    clock.advance(WINDOW + 1)
    await attempt(client, "super", "wrong")
    assert await LoginFailure.all().count() == 2  # only the new one's two rows


async def test_a_username_with_a_nul_is_a_wrong_login_not_an_error(client, world):
    # PostgreSQL cannot compare text holding NUL: such a name belongs to nobody.
    response = await attempt(client, "gu\x00ard", PASSWORD)
    assert response.status_code in (401, 422)
    assert (await client.get("/api/me")).status_code == 401


# --- password checks off the event loop --------------------------------------------


async def test_password_checks_run_off_the_event_loop_a_few_at_a_time(
    app, client, world, monkeypatch
):
    await login(client, "guard")
    release = threading.Event()
    lock = threading.Lock()
    running = [0, 0]  # now, most at once

    def held_check(password_hash: str, password: str) -> bool:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        release.wait(30)  # on the event loop this would stop every request
        with lock:
            running[0] -= 1
        return False

    monkeypatch.setattr(passwords, "verify_password", held_check)
    async with api_client(app) as attacker:
        logins = [asyncio.create_task(attempt(attacker, f"ghost{n}", "x")) for n in range(20)]
        deadline = asyncio.get_running_loop().time() + 10
        while running[0] < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert running[0] == 2  # the workers are busy, the rest queue
        me = await client.get("/api/me")
        assert me.status_code == 200
        assert not any(task.done() for task in logins)  # answered while they wait
        release.set()
        answers = await asyncio.gather(*logins)
    assert [a.status_code for a in answers] == [401] * 20
    assert running[1] == app.state.settings.password_workers == 2


async def test_an_unknown_user_costs_a_password_check_too(client, world, monkeypatch):
    checked = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", lambda h, p: checked.append(h) or real(h, p))
    assert (await attempt(client, "ghost", PASSWORD)).status_code == 401
    await User.filter(id=world.guard.id).update(is_active=False)
    assert (await attempt(client, "guard", PASSWORD)).status_code == 401
    assert len(checked) == 2
    assert all(h.startswith("$argon2id$") for h in checked)


async def test_a_hash_of_another_cost_is_redone_at_login(client, world):
    old = passwords.PasswordHasher(memory_cost=128, parallelism=1).hash(PASSWORD)
    await User.filter(id=world.guard.id).update(password_hash=old)
    await login(client, "guard")
    user = await User.get(id=world.guard.id)
    assert user.password_hash != old and passwords.verify_password(user.password_hash, PASSWORD)


async def test_a_post_without_the_csrf_header_is_403_and_does_nothing(client, world):
    response = await client.post("/api/session", json={"username": "guard", "password": PASSWORD})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf"
    assert "set-cookie" not in response.headers
    assert (await client.get("/api/me")).status_code == 401


async def test_a_delete_without_the_csrf_header_is_403(client, world):
    await login(client, "guard")
    response = await client.delete("/api/session")
    assert response.status_code == 403
    assert (await client.get("/api/me")).status_code == 200


async def test_passwords_are_stored_as_argon2id_hashes(world):
    user = await User.get(username="guard")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
