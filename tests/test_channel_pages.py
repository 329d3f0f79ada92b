"""The pages of a site's alert channels: the site page lists them (admins with
buttons, the site's supervisors read-only), the form to add or change one,
a failing robot shown with the service's own words, and the Me page saying
which robots carry a supervisor's alerts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from server.models import AlertChannel
from tests.conftest import CSRF

KEY = "wecomKEY0123456789abcdef7d1e"
TOKEN = "dingTOKEN0123456789abcdef42c9"
SECRET = "SEC0123456789abcdefSIGNINGsecret"
WECOM = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
DINGTALK = f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"


def button(action: str, channel_id: str) -> str:
    """The start of a card's button, as the page draws it (admin.js reads these)."""
    return (
        f'data-admin-do="{action}" data-error-box="channel-error" '
        f'data-site="north" data-id="{channel_id}"'
    )


async def add_channel(client, site: str = "north", **change) -> str:
    channel_id = str(uuid.uuid4())
    body = {
        "kind": "wecom",
        "name": "北苑值班群",
        "webhook_url": WECOM,
        "min_severity": "high",
        "events": ["escalated"],
        "language": "zh-CN",
        "active": True,
        **change,
    }
    response = await client.put(f"/api/sites/{site}/channels/{channel_id}", json=body, headers=CSRF)
    assert response.is_success, response.text
    return channel_id


async def test_the_site_page_lists_its_channels_masked_with_an_admins_buttons(as_user, world):
    admin = await as_user("admin")
    wecom = await add_channel(admin)
    ding = await add_channel(
        admin, kind="dingtalk", name="钉钉夜班群", webhook_url=DINGTALK, secret=SECRET,
        min_severity=None, events=["repaired", "overdue"], active=False,
    )  # fmt: skip
    page = (await admin.get("/admin/sites/north")).text
    assert 'id="channels" data-live' in page
    assert "北苑值班群" in page and "钉钉夜班群" in page
    assert "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…7d1e" in page
    assert "https://oapi.dingtalk.com/robot/send?access_token=…42c9" in page
    assert KEY not in page and TOKEN not in page and SECRET not in page
    assert "新事件：高及以上" in page and "超时升级" in page
    assert "维修完成" in page and "整改逾期" in page and "已加签" in page and "已停用" in page
    for channel_id in (wecom, ding):
        assert f'href="/admin/sites/north/channels/{channel_id}"' in page
        assert button("channel-delete", channel_id) in page
        assert button("channel-test", channel_id) in page
    assert 'href="/admin/sites/north/channels/new"' in page
    assert "还没有发送成功过" in page


async def test_a_supervisor_reads_the_channels_of_their_site_without_buttons(as_user, world):
    channel_id = await add_channel(await as_user("admin"))
    page = (await (await as_user("super")).get("/admin/sites/north")).text
    assert "北苑值班群" in page and "…7d1e" in page and KEY not in page
    assert "channel-delete" not in page and "channel-test" not in page
    assert f"/channels/{channel_id}" not in page and "/channels/new" not in page
    assert 'class="channel-list"' in page


async def test_a_site_without_channels_says_so(as_user, world):
    page = (await (await as_user("admin")).get("/admin/sites/south")).text
    assert "还没有告警群机器人" in page


@pytest.mark.parametrize("username", ["guard", "tech"])
async def test_guards_and_technicians_see_no_channel_page(as_user, world, username):
    channel_id = await add_channel(await as_user("admin"))
    who = await as_user(username)
    for where in ("/admin/sites/north", f"/admin/sites/north/channels/{channel_id}"):
        response = await who.get(where)
        assert response.status_code == 403 and "北苑值班群" not in response.text


async def test_the_channel_form_is_for_admins_of_an_existing_site_and_channel(as_user, world):
    admin, boss = await as_user("admin"), await as_user("super")
    channel_id = await add_channel(admin)
    assert (await boss.get(f"/admin/sites/north/channels/{channel_id}")).status_code == 403
    assert (await boss.get("/admin/sites/north/channels/new")).status_code == 403
    assert (await boss.get("/admin/sites/south")).status_code == 403  # not their site
    assert (await admin.get("/admin/sites/nowhere")).status_code == 404
    assert (await admin.get("/admin/sites/nowhere/channels/new")).status_code == 404
    for bad in ("not-a-uuid", str(uuid.uuid4())):
        assert (await admin.get(f"/admin/sites/north/channels/{bad}")).status_code == 404
    # A channel of another site is not this site's.
    assert (await admin.get(f"/admin/sites/south/channels/{channel_id}")).status_code == 404


async def test_a_visitor_without_a_session_is_sent_to_log_in(client, world):
    response = await client.get("/admin/sites/north/channels/new")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin/sites/north/channels/new"


async def test_the_new_channel_form_starts_with_the_usual_choices(as_user, world):
    page = (await (await as_user("admin")).get("/admin/sites/north/channels/new")).text
    assert 'data-admin="channel" data-site="north" data-kind=""' in page
    assert "data-id=" not in page
    assert 'name="kind" value="wecom" required>' in page
    assert 'name="kind" value="dingtalk" required>' in page
    assert 'name="min_severity" value="high" required checked' in page
    assert 'name="events" value="escalated" checked' in page
    assert 'name="events" value="repaired">' in page
    assert 'name="webhook_url"' in page and "required placeholder" in page
    assert 'name="active" value="1" checked' in page
    assert 'name="clear_secret"' not in page
    assert 'id="channel-now"' not in page  # no test button before it exists


async def test_the_channel_form_comes_filled_in_without_the_key_or_the_secret(as_user, world):
    admin = await as_user("admin")
    channel_id = await add_channel(
        admin, kind="dingtalk", name="钉钉夜班群", webhook_url=DINGTALK, secret=SECRET,
        min_severity=None, events=["overdue"], language="en",
    )  # fmt: skip
    page = (await admin.get(f"/admin/sites/north/channels/{channel_id}")).text
    assert f'data-id="{channel_id}" data-kind="dingtalk"' in page
    assert 'value="钉钉夜班群"' in page
    assert 'name="kind" value="dingtalk" required checked' in page
    assert 'name="min_severity" value="" required checked' in page
    assert 'name="events" value="overdue" checked' in page
    assert 'name="events" value="escalated">' in page
    assert 'name="language" value="en" required checked' in page
    assert 'placeholder="https://oapi.dingtalk.com/robot/send?access_token=…42c9"' in page
    assert "留空则保留现在的地址" in page and 'name="clear_secret"' in page
    assert TOKEN not in page and SECRET not in page
    assert button("channel-test", channel_id) in page


async def test_a_failing_channel_shows_what_the_service_said(app, as_user, world):
    admin = await as_user("admin")
    channel_id = await add_channel(admin, kind="dingtalk", webhook_url=DINGTALK, name="钉钉群")
    sent = datetime.now(UTC) - timedelta(hours=2)
    await AlertChannel.filter(id=channel_id).update(
        last_sent_at=sent,
        last_error="310000 keywords not in content",
        last_error_at=sent + timedelta(hours=1),
    )
    for where in ("/admin/sites/north", f"/admin/sites/north/channels/{channel_id}"):
        page = (await admin.get(where)).text
        assert 'class="channel-card failing"' in page
        assert "钉钉拒绝了上次发送" in page and "310000 keywords not in content" in page
    boss = (await (await as_user("super")).get("/admin/sites/north")).text
    assert "310000 keywords not in content" in boss
    # Sent again since: the refusal is history, the card no longer red.
    await AlertChannel.filter(id=channel_id).update(last_sent_at=sent + timedelta(hours=2))
    page = (await admin.get("/admin/sites/north")).text
    assert "failing" not in page.split('id="channels"')[1].split("</section>")[0]
    assert "上次发送成功" in page


async def test_the_site_page_and_channel_form_are_drawn_in_english_too(as_user, world):
    admin = await as_user("admin")
    channel_id = await add_channel(admin, kind="dingtalk", webhook_url=DINGTALK, secret=SECRET)
    for where in ("/admin/sites/north", f"/admin/sites/north/channels/{channel_id}"):
        page = (await admin.get(where, params={"lang": "en"})).text
        assert "DingTalk" in page and "New incidents: High and above" in page
    form = (await admin.get("/admin/sites/north/channels/new", params={"lang": "en"})).text
    assert "Add an alert group robot" in form and "Signing secret" in form


async def test_me_lists_the_robots_that_carry_a_supervisors_alerts(as_user, world):
    admin = await as_user("admin")
    await add_channel(admin)
    await add_channel(admin, kind="dingtalk", webhook_url=DINGTALK, name="钉钉群", events=[])
    await add_channel(admin, name="停用的群", active=False)
    await add_channel(admin, name="什么都不推送的群", min_severity=None, events=[])
    await add_channel(admin, site="south", name="南苑群")
    page = (await (await as_user("super")).get("/me")).text
    assert "你会怎样收到告警" in page and 'id="push"' in page
    robots = page.split('id="alert-robots"')[1].split("</section>")[0]
    assert "北苑值班群" in robots and "钉钉群" in robots and "北苑" in robots
    assert "新事件：高及以上" in robots and "超时升级" in robots
    assert "停用的群" not in robots and "什么都不推送的群" not in robots
    assert "南苑群" not in robots  # not their site
    assert KEY not in page and "qyapi" not in page


async def test_me_shows_a_guard_only_this_devices_notifications(as_user, world):
    await add_channel(await as_user("admin"))
    for username in ("guard", "tech"):
        page = (await (await as_user(username)).get("/me")).text
        assert "你会怎样收到告警" in page and 'id="push-on"' in page
        assert 'id="alert-robots"' not in page and "北苑值班群" not in page


async def test_me_says_when_a_supervisors_sites_have_no_robot(as_user, world):
    page = (await (await as_user("super")).get("/me")).text
    assert "你的项目还没有告警群机器人" in page and "可以在项目页面添加" not in page
    failing = await add_channel(await as_user("admin"))
    await AlertChannel.filter(id=failing).update(
        last_error="93000 invalid webhook url", last_error_at=datetime.now(UTC)
    )
    page = (await (await as_user("super")).get("/me")).text
    assert "上次发送失败" in page and "channel-card robot failing" in page
