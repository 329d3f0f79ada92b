"""The session API and pages: logging out ends the session for good, logging
out the other devices, and the login throttle as the form shows it."""

from __future__ import annotations

import re

from server.models import LoginSession
from tests.conftest import CSRF, PASSWORD, api_client, login


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def form_login(client, username: str, password: str):
    page = await client.get("/login")
    return await client.post(
        "/login",
        data={"csrf_token": form_token(page.text), "username": username, "password": password},
    )


# --- logging out ----------------------------------------------------------------


async def test_after_logout_the_old_cookie_gets_401_and_pages_send_it_to_login(client, world):
    await login(client, "guard")
    kept = client.cookies["onsite_session"]
    assert (await client.delete("/api/session", headers=CSRF)).status_code == 204
    client.cookies.set("onsite_session", kept)
    assert (await client.get("/api/me")).status_code == 401
    assert (await client.get("/api/reports")).status_code == 401
    home = await client.get("/")
    assert home.status_code in (302, 303, 307) and home.headers["location"].startswith("/login")
    me = await client.get("/me")
    assert me.status_code == 303 and me.headers["location"] == "/login?next=/me"


async def test_logout_without_a_session_is_204(client, world):
    response = await client.delete("/api/session", headers=CSRF)
    assert response.status_code == 204


async def test_logging_out_one_device_leaves_the_others_logged_in(app, world):
    async with api_client(app) as phone, api_client(app) as tablet:
        await login(phone, "guard")
        await login(tablet, "guard")
        assert (await phone.delete("/api/session", headers=CSRF)).status_code == 204
        assert (await phone.get("/api/me")).status_code == 401
        assert (await tablet.get("/api/me")).status_code == 200


async def test_the_logout_form_ends_the_session_too(client, world):
    assert (await form_login(client, "guard", PASSWORD)).status_code == 303
    kept = client.cookies["onsite_session"]
    token = client.cookies["onsite_csrf"]
    response = await client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    client.cookies.set("onsite_session", kept)
    assert (await client.get("/api/me")).status_code == 401
    assert (await client.get("/")).headers["location"].startswith("/login")


async def test_an_admin_revoking_sessions_ends_every_row_of_that_user(app, client, world):
    async with api_client(app) as phone, api_client(app) as tablet:
        await login(phone, "guard")
        await login(tablet, "guard")
        await login(client, "admin")
        response = await client.delete("/api/users/guard/sessions", headers=CSRF)
        assert response.status_code == 204
        assert (await phone.get("/api/me")).status_code == 401
        assert (await tablet.get("/api/me")).status_code == 401
    assert await LoginSession.filter(user_id=world.guard.id, revoked_at=None).count() == 0
    assert (await client.get("/api/me")).status_code == 200


# --- logging out the other devices -----------------------------------------------


async def test_logging_out_my_other_devices_keeps_this_one(app, client, world):
    async with api_client(app) as phone, api_client(app) as tablet, api_client(app) as other:
        await login(client, "guard")
        await login(phone, "guard")
        await login(tablet, "guard")
        await login(other, "super")
        response = await client.delete("/api/sessions/others", headers=CSRF)
        assert response.status_code == 200
        assert response.json() == {"revoked": 2}
        assert (await client.get("/api/me")).status_code == 200
        assert (await phone.get("/api/me")).status_code == 401
        assert (await tablet.get("/api/me")).status_code == 401
        assert (await other.get("/api/me")).status_code == 200  # someone else's stays
    again = await client.delete("/api/sessions/others", headers=CSRF)
    assert again.json() == {"revoked": 0}


async def test_logging_out_other_devices_needs_a_login_and_the_csrf_header(client, world):
    response = await client.delete("/api/sessions/others", headers=CSRF)
    assert response.status_code == 401
    await login(client, "guard")
    response = await client.delete("/api/sessions/others")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf"


async def test_the_me_page_counts_the_other_devices_and_offers_to_log_them_out(app, client, world):
    await login(client, "guard")
    page = await client.get("/me")
    assert "只有本机登录着你的账号。" in page.text
    assert re.search(r'id="logout-others" hidden', page.text)
    async with api_client(app) as phone, api_client(app) as tablet:
        await login(phone, "guard")
        await login(tablet, "guard")
        await phone.delete("/api/session", headers=CSRF)  # an ended one is not counted
        page = await client.get("/me")
        assert "除本机外，还有 1 台设备登录着你的账号。" in page.text
        assert 'id="logout-others">退出其他设备</button>' in page.text
        client.cookies.set("onsite_lang", "en")
        page = await client.get("/me")
        assert "Besides this one, 1 other device is logged in to your account." in page.text
        assert "Log out my other devices" in page.text


# --- the throttle on the login API and form ----------------------------------------


async def test_the_throttled_api_answers_429_with_retry_after_and_the_error_shape(client, world):
    client.cookies.set("onsite_lang", "en")
    for _ in range(5):
        await client.post("/api/session", json={"username": "ghost", "password": "x"}, headers=CSRF)
    response = await client.post(
        "/api/session", json={"username": "ghost", "password": "x"}, headers=CSRF
    )
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"
    assert 0 < int(response.headers["retry-after"]) <= 15 * 60
    error = response.json()["error"]
    assert error["code"] == "too_many_attempts"
    assert error["message"] == "Too many failed logins: try again in 15 minutes."


async def test_the_login_form_says_how_many_minutes_to_wait(client, world, clock):
    for _ in range(5):
        assert (await form_login(client, "guard", "wrong")).status_code == 401
    clock.advance(6 * 60)
    response = await form_login(client, "guard", PASSWORD)
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 9 * 60
    assert "登录失败次数过多，请 9 分钟后再试。" in response.text
    assert "用户名或密码错误" not in response.text
    assert 'value="guard"' in response.text
    assert "onsite_session" not in response.headers.get("set-cookie", "")
    client.cookies.set("onsite_lang", "en")
    response = await form_login(client, "guard", PASSWORD)
    assert "Too many failed logins. Try again in 9 minutes." in response.text


async def test_the_form_and_the_api_count_the_same_failures(client, world):
    for _ in range(3):
        await form_login(client, "guard", "wrong")
    for _ in range(2):
        await client.post("/api/session", json={"username": "guard", "password": "x"}, headers=CSRF)
    assert (await form_login(client, "guard", PASSWORD)).status_code == 429
