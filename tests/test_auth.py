"""Logging in and out, long sessions, revocation, and the CSRF check."""

from __future__ import annotations

from server.models import User
from tests.conftest import CSRF, PASSWORD, login


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
