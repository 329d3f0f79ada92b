"""A site's own emergency numbers: in the report flow of the incidents they
serve, on the 通讯录 page, and in the version that makes phones keep them."""

from __future__ import annotations

import re
import uuid

from server.models import Role, Site
from tests.conftest import CSRF, login, make_user
from tests.helpers.reports import lift_id

LIFT_CO = {"name": "奥的斯电梯 24 小时", "phone": "400 820 1234", "kind": "lift"}


async def put_contact(admin, site: str, incident_types: list[str], **fields) -> str:
    """Add (or, with ``id``, change) a contact of ``site`` as an admin; its id."""
    cid = fields.pop("id", None) or str(uuid.uuid4())
    body = {**LIFT_CO, **fields, "incident_types": incident_types}
    response = await admin.put(f"/api/sites/{site}/contacts/{cid}", json=body, headers=CSRF)
    assert response.status_code in (200, 201), response.text
    return cid


def other_incident(app) -> str:
    return next(i.id for i in app.state.playbooks.incidents() if i.id != lift_id(app))


def version(page: str) -> str:
    found = re.search(r'<body[^>]* data-contacts="([0-9a-f]+)"', page)
    assert found, "no contacts version on the page"
    return found.group(1)


async def test_the_flow_offers_a_contact_only_in_the_incidents_it_serves(app, as_user, world):
    await put_contact(await as_user("admin"), "north", [lift_id(app)])
    guard = await as_user("guard")
    lift = (await guard.get(f"/report/{lift_id(app)}")).text
    assert 'href="tel:4008201234"' in lift
    assert "奥的斯电梯 24 小时" in lift and "400 820 1234" in lift and "电梯维保" in lift
    # Beside 110/120/119, before the steps.
    assert lift.index('href="tel:119"') < lift.index('id="site-calls"') < lift.index("处理步骤")
    other = (await guard.get(f"/report/{other_incident(app)}")).text
    assert "tel:4008201234" not in other and 'id="site-calls"' not in other


async def test_only_members_of_the_contacts_site_are_offered_it(app, as_user, world):
    await put_contact(await as_user("admin"), "north", [lift_id(app)])
    south = await as_user("southguard")
    assert "tel:4008201234" not in (await south.get(f"/report/{lift_id(app)}")).text
    assert "tel:4008201234" not in (await south.get("/contacts")).text
    # An admin belongs to no site: the flow offers the numbers of one's own sites.
    assert "tel:4008201234" not in (await (await as_user("admin")).get("/contacts")).text


async def test_a_guard_of_two_sites_is_told_whose_number_it_is(app, as_user, world):
    admin = await as_user("admin")
    await put_contact(admin, "north", [lift_id(app)])
    await put_contact(admin, "south", [lift_id(app)], name="南苑电梯", phone="021-5555 0000")
    await make_user("roamer", Role.GUARD, world.north, world.south)
    roamer = await as_user("roamer")
    page = (await roamer.get(f"/report/{lift_id(app)}")).text
    calls = page[page.index('id="site-calls"') :]
    assert 'href="tel:4008201234"' in calls and 'href="tel:021-55550000"' in calls
    assert "电梯维保 · 北苑" in calls and "电梯维保 · 南苑" in calls
    # One site: no need to say which.
    guard_page = (await (await as_user("guard")).get(f"/report/{lift_id(app)}")).text
    assert "电梯维保 · 北苑" not in guard_page and "电梯维保" in guard_page


async def test_the_contacts_page_lists_each_sites_numbers_by_kind_beside_110_120_119(
    app, as_user, world
):
    admin = await as_user("admin")
    await put_contact(
        admin, "north", [], name="物业服务中心", phone="0755-1234", kind="property_office"
    )
    await put_contact(admin, "north", [lift_id(app)])
    await put_contact(admin, "north", [], name="燃气公司", phone="95158", kind="gas")
    page = (await (await as_user("guard")).get("/contacts")).text
    assert "<h2" in page and "北苑" in page and "南苑" not in page
    for number in ("110", "120", "119", "4008201234", "0755-1234", "95158"):
        assert f'href="tel:{number}"' in page
    # Grouped by kind, the lift company first, with each group's label.
    lift, office, gas = (
        page.index(f'<h3 class="site-book-kind">{k}') for k in ("电梯维保", "物业服务中心", "燃气")
    )
    assert lift < page.index("tel:4008201234") < office < page.index("tel:0755-1234") < gas
    # A contact that serves no incident is still in the book.
    assert "燃气公司" in page


async def test_the_contacts_page_needs_a_login_and_says_when_a_site_has_no_numbers(
    client, as_user, world
):
    response = await client.get("/contacts")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/contacts"
    text = (await (await as_user("guard")).get("/contacts")).text
    assert "还没有紧急联系人。" in text and 'href="tel:110"' in text
    await make_user("nowhere", Role.GUARD)
    lonely = (await (await as_user("nowhere")).get("/contacts")).text
    assert "还没有分配项目" in lonely and 'href="tel:110"' in lonely


async def test_the_contacts_page_is_linked_from_home_and_me_and_kept_offline(as_user, world):
    guard = await as_user("guard")
    assert 'href="/contacts"' in (await guard.get("/")).text
    assert 'href="/contacts"' in (await guard.get("/me")).text
    assert "/contacts" in (await guard.get("/sw/precache.json")).json()["pages"]


async def test_the_contacts_version_changes_when_a_contact_is_added_changed_or_removed(
    app, as_user, world
):
    admin, guard = await as_user("admin"), await as_user("guard")
    seen = [version((await guard.get("/")).text)]
    assert version((await guard.get("/me")).text) == seen[0]  # the same on every page
    cid = await put_contact(admin, "north", [lift_id(app)])
    seen.append(version((await guard.get("/")).text))
    await put_contact(admin, "north", [lift_id(app)], id=cid, phone="400 820 9999")
    seen.append(version((await guard.get("/")).text))
    await put_contact(
        admin, "north", [lift_id(app), other_incident(app)], id=cid, phone="400 820 9999"
    )
    seen.append(version((await guard.get("/")).text))
    response = await admin.delete(f"/api/sites/north/contacts/{cid}", headers=CSRF)
    assert response.status_code == 204
    seen.append(version((await guard.get("/")).text))
    assert len(set(seen[:-1])) == 4, seen
    # Removed: as before it was added (app.js keeps the last version it saw,
    # so going back to an earlier one is a change too).
    assert seen[-1] == seen[0]


async def test_another_sites_contacts_leave_the_version_alone(app, as_user, world):
    guard = await as_user("guard")
    before = version((await guard.get("/")).text)
    await put_contact(await as_user("admin"), "south", [lift_id(app)])
    assert version((await guard.get("/")).text) == before
    await Site.filter(code="north").update(name="北苑小区")  # what the pages show changed
    assert version((await guard.get("/")).text) != before


async def test_pages_without_a_user_or_with_an_error_carry_no_contacts_version(client, world):
    assert "data-contacts" not in (await client.get("/login")).text
    await login(client, "guard")
    missing = await client.get("/report/no-such-incident")
    assert missing.status_code == 404 and "data-contacts" not in missing.text
