"""Every user sees only the sites they belong to; admins guard the admin calls."""

from __future__ import annotations

from tests.conftest import CSRF, login


async def test_a_guard_lists_only_their_own_sites(client, world):
    await login(client, "guard")
    assert (await client.get("/api/sites")).json() == {"sites": [{"code": "north", "name": "北苑"}]}


async def test_an_admin_lists_every_site(client, world):
    await login(client, "admin")
    codes = [s["code"] for s in (await client.get("/api/sites")).json()["sites"]]
    assert codes == ["north", "south"]


async def test_a_member_sees_their_site_and_its_staff(client, world):
    await login(client, "guard")
    response = await client.get("/api/sites/north")
    assert response.status_code == 200
    staff = {s["username"] for s in response.json()["staff"]}
    assert staff == {"guard", "tech", "super"}


async def test_another_sites_page_is_403_for_a_non_member(client, world):
    await login(client, "southguard")
    response = await client.get("/api/sites/north")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_site"


async def test_an_admin_sees_any_site(client, world):
    await login(client, "admin")
    assert (await client.get("/api/sites/south")).status_code == 200


async def test_an_unknown_site_is_404(client, world):
    await login(client, "admin")
    assert (await client.get("/api/sites/atlantis")).status_code == 404


async def test_sites_need_a_login(client, world):
    assert (await client.get("/api/sites")).status_code == 401
    assert (await client.get("/api/sites/north")).status_code == 401


async def test_only_an_admin_may_revoke_sessions(client, world):
    await login(client, "super")
    response = await client.delete("/api/users/guard/sessions", headers=CSRF)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_an_admin_revoking_a_lost_phone_logs_that_user_out(app, client, world):
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as phone:
        await login(phone, "guard")
        assert (await phone.get("/api/me")).status_code == 200
        await login(client, "admin")
        assert (await client.delete("/api/users/guard/sessions", headers=CSRF)).status_code == 204
        assert (await phone.get("/api/me")).status_code == 401
    assert (await client.get("/api/me")).status_code == 200  # the admin's own session lives on


async def test_revoking_an_unknown_user_is_404(client, world):
    await login(client, "admin")
    assert (await client.delete("/api/users/ghost/sessions", headers=CSRF)).status_code == 404
