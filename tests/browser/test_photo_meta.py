"""A photo keeps its capture time and place through the phone's re-encoding,
the report page says when and where each was taken (and warns when that is
far from the incident), and a tap opens it in the in-app viewer, which the
back button closes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers.browser import LIFT, PHONE_OPTIONS, log_in, screenshot, wait_until
from tests.helpers.live import GUARD_PASSWORD, api_session
from tests.helpers.photos import PHOTOS

# What pages draw and do online: no service worker (tests/browser/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.pages_only]

GPS_PHOTO = PHOTOS / "gps" / "DSCN0010.jpg"  # Nikon, 2008-10-22 16:28:39 (no zone), Tuscany
PHONE_PHOTO = PHOTOS / "phone" / "HMD_Nokia_8.3_5G.jpg"  # 2022-08-14 14:12:31+03:00, Helsinki
# Where the guard stands when reporting: beside the GPS photo's spot.
NEAR_GPS_PHOTO = {"latitude": 43.4675, "longitude": 11.8852, "accuracy": 10}


@pytest.fixture
def gps_phone(browser):
    context = browser.new_context(
        **PHONE_OPTIONS, geolocation=NEAR_GPS_PHOTO, permissions=["geolocation"]
    )
    try:
        yield context
    finally:
        context.close()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_photos_keep_their_time_and_gps_through_the_report_page(live_server, gps_phone):
    page = gps_phone.new_page()
    uploads: list[tuple[str, str]] = []
    page.on(
        "request",
        lambda r: (
            uploads.append((r.url, r.headers.get("content-type", "")))
            if "/photos/" in r.url and r.method == "PUT"
            else None
        ),
    )
    log_in(page, live_server.url)
    page.get_by_placeholder("搜索：电梯、漏水、盗窃…").fill("电梯")
    page.get_by_role("link", name="电梯困人事件").click()
    page.wait_for_selector("body[data-ready=true]")
    page.locator(".step-box").first.check()
    page.locator("#photo-input").set_input_files([str(GPS_PHOTO), str(PHONE_PHOTO)])
    page.wait_for_selector("#photo-grid .photo:nth-child(2) img")
    # Before sending, each photo already says when it was taken (in the phone's zone).
    assert page.locator("#photo-grid .photo-taken").all_inner_texts() == [
        "拍摄于 2008-10-22 16:28 · GPS",
        "拍摄于 2022-08-14 19:12 · GPS",
    ]
    page.get_by_role("button", name="使用GPS定位").click()
    page.wait_for_function("document.getElementById('gps-state').textContent.includes('43.4675')")
    page.get_by_role("button", name="检查并发送").click()
    page.get_by_role("button", name="发送", exact=True).click()
    page.wait_for_url(f"{live_server.url}/reports/*")
    report_id = page.url.rsplit("/", 1)[1]
    wait_until(
        page,
        f"fetch('/api/reports/{report_id}').then(r => r.json()).then(r => r.photos.length === 2)",
    )

    report = page.evaluate(f"fetch('/api/reports/{report_id}').then(r => r.json())")
    by_camera = {p["camera"]: p for p in report["photos"]}
    nikon, nokia = by_camera["NIKON COOLPIX P6000"], by_camera["HMD Global Nokia 8.3 5G"]
    # No zone in the Nikon's EXIF: the phone's own (Asia/Shanghai) places it.
    assert utc(nikon["taken_at"]) == datetime(2008, 10, 22, 8, 28, 39, tzinfo=UTC)
    assert nikon["latitude"] == pytest.approx(43.4674483, abs=1e-6)
    assert nikon["longitude"] == pytest.approx(11.8851267, abs=1e-6)
    assert utc(nokia["taken_at"]) == datetime(2022, 8, 14, 11, 12, 31, tzinfo=UTC)
    assert nokia["latitude"] == pytest.approx(60.1467056, abs=1e-6)
    assert nokia["longitude"] == pytest.approx(24.9067722, abs=1e-6)
    # They came from the phone: what it sent was re-encoded (no EXIF left),
    # with the metadata beside it.
    assert len(uploads) == 2 and all("taken_at=" in u and "lat=" in u for u, _ in uploads)
    assert {ctype for _, ctype in uploads} == {"image/webp"}
    assert not nikon["check"]["far_away"] and nikon["check"]["taken_long_before"]
    assert nokia["check"]["far_away"]  # Helsinki is not Tuscany

    page.reload()
    captions = page.locator("#photos .photo-meta").all_inner_texts()
    assert len(captions) == 2
    nikon_caption = next(c for c in captions if "2008-10-22 16:28" in c)
    assert "拍摄于 2008-10-22 16:28 · GPS" in nikon_caption
    assert "⚠ 拍摄时间早于事发" in nikon_caption and "天" in nikon_caption
    assert "距上报位置" not in nikon_caption  # taken 10 m from where it was reported
    nokia_caption = next(c for c in captions if "2022-08-14 19:12" in c)  # 11:12 UTC in Shanghai
    assert "⚠ 距上报位置" in nokia_caption and "km" in nokia_caption
    screenshot(page, "photos-meta-zh-CN")


def report_with_photos(live_server, photos: list[tuple[bytes, dict[str, str]]]) -> str:
    """A report by the guard, made through the API, located in Shenzhen and
    happened ten minutes ago, with ``photos`` (bytes, query) attached; its id."""
    rid = str(uuid.uuid4())
    occurred = datetime.now(UTC) - timedelta(minutes=10)
    with api_session(live_server, "guard", GUARD_PASSWORD) as api:
        body = {
            "site": "north",
            "incident_type": LIFT,
            "occurred_at": occurred.isoformat(),
            "location": {"text": "3栋 电梯", "lat": 22.5431, "lng": 114.0579},
        }
        assert api.put(f"/api/reports/{rid}", json=body).status_code == 201
        for raw, params in photos:
            response = api.put(
                f"/api/reports/{rid}/photos/{uuid.uuid4()}",
                content=raw,
                params=params,
                headers={"Content-Type": "image/jpeg"},
            )
            assert response.status_code == 201, response.text
    return rid


def jpeg(path: Path) -> bytes:
    return path.read_bytes()


def test_a_photo_taken_hours_before_and_far_away_is_marked(live_server, phone, photos):
    now = datetime.now(UTC)
    rid = report_with_photos(
        live_server,
        [
            (
                jpeg(photos[0]),
                {
                    "taken_at": (now - timedelta(hours=4)).isoformat(),
                    "lat": "22.6",
                    "lon": "114.0579",
                },
            ),
            (jpeg(photos[1]), {"taken_at": now.isoformat(), "lat": "22.5432", "lon": "114.058"}),
        ],
    )
    page = phone.new_page()
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/reports/{rid}")
    first, second = page.locator("#photos .photo-meta").all_inner_texts()
    assert "⚠ 拍摄时间早于事发 3\u00a0小时" in first  # 4 h before now, 3 h 50 before the incident
    assert "⚠ 距上报位置 6.3\u00a0km" in first
    shanghai = (now + timedelta(hours=8)).strftime("%H:%M")
    assert second.strip() == f"拍摄于 {shanghai} · GPS"
    assert page.locator("#photos .photo-warn").first.is_visible()


def test_a_tapped_photo_opens_full_screen_swipes_and_back_closes_it(live_server, phone, photos):
    rid = report_with_photos(live_server, [(jpeg(p), {}) for p in photos])
    page = phone.new_page()
    log_in(page, live_server.url)
    url = f"{live_server.url}/reports/{rid}"
    page.goto(url)
    links = page.locator("#photos a[data-photo]")
    assert links.count() == 2
    assert links.first.get_attribute("href").startswith(f"/api/reports/{rid}/photos/")

    links.first.click()
    viewer = page.locator(".pswp")
    page.wait_for_selector("html[data-viewer=open]", state="attached")
    box = viewer.bounding_box()
    assert (box["width"], box["height"]) == (390, 844)  # the whole phone screen
    page.wait_for_selector(".pswp__item img.pswp__img", state="visible")
    screenshot(page, "photo-viewer-zh-CN")
    # A finger swiping to the left (real touches, through the DevTools
    # protocol) brings the second photo.
    touch = page.context.new_cdp_session(page)
    for kind, x in [("touchStart", 320), *(("touchMove", x) for x in range(300, 60, -40))]:
        touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": 420}]})
        page.wait_for_timeout(16)
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_selector("html[data-viewer-index='1']", state="attached")
    assert page.locator(".pswp__counter").inner_text().replace(" ", "") == "2/2"

    page.go_back()
    viewer.wait_for(state="detached")
    assert page.url == url
    assert page.locator("h1.page-title").is_visible()
    # Opened again and closed with its own button: the history entry goes too.
    links.nth(1).click()
    page.wait_for_selector("html[data-viewer=open]", state="attached")
    page.locator(".pswp__button--close").click()
    viewer.wait_for(state="detached")
    assert page.url == url
    assert page.evaluate("history.state?.viewer") is None
    # "Back" at once, while it is still opening, closes it too.
    links.first.click()
    viewer.wait_for(state="visible")
    page.go_back()
    viewer.wait_for(state="detached")
    assert page.url == url


def test_the_photo_links_work_without_javascript(live_server, browser, photos):
    rid = report_with_photos(live_server, [(jpeg(photos[0]), {})])
    context = browser.new_context(**{**PHONE_OPTIONS, "java_script_enabled": False})
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/login")
        page.get_by_label("用户名").fill("guard")
        page.get_by_label("密码").fill(GUARD_PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{live_server.url}/")
        page.goto(f"{live_server.url}/reports/{rid}")
        page.locator("#photos a[data-photo]").click()
        page.wait_for_url(f"{live_server.url}/api/reports/{rid}/photos/*")
    finally:
        context.close()


# Whether the draft's first photo has its capture time yet (false until then).
DRAFT_HAS_TIME_JS = """
(incident) => new Promise((resolve) => {
  const req = indexedDB.open("onsite");
  req.onerror = () => resolve(false);
  req.onsuccess = () => {
    try {
      const get = req.result.transaction("drafts").objectStore("drafts").get(incident);
      get.onsuccess = () => resolve(Boolean(get.result?.photos?.[0]?.meta?.taken_at));
      get.onerror = () => resolve(false);
    } catch {
      resolve(false);
    }
  };
})
"""

# The metadata photo.js read, from the draft kept on the phone.
DRAFT_META_JS = """
(incident) => new Promise((resolve, reject) => {
  const req = indexedDB.open("onsite");
  req.onerror = () => reject(req.error);
  req.onsuccess = () => {
    const get = req.result.transaction("drafts").objectStore("drafts").get(incident);
    get.onsuccess = () => resolve(get.result.photos[0].meta);
    get.onerror = () => reject(get.error);
  };
})
"""


def test_reading_exif_and_the_viewer_keep_to_the_content_security_policy(
    live_server, browser, photos
):
    from tests.helpers.browser import WATCH_POLICY

    rid = report_with_photos(live_server, [(jpeg(p), {}) for p in photos])
    context = browser.new_context(**{**PHONE_OPTIONS, "bypass_csp": False})
    try:
        context.add_init_script(WATCH_POLICY)
        page = context.new_page()
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/report/{LIFT}")
        page.wait_for_selector("body[data-ready=true]")
        page.locator("#photo-input").set_input_files(str(GPS_PHOTO))
        page.wait_for_selector("#photo-grid .photo img")
        # exifr (loaded on the first photo) has read it once the draft holds its time.
        wait_until(page, DRAFT_HAS_TIME_JS, LIFT)
        assert page.evaluate("window.__violations") == []
        meta = page.evaluate(DRAFT_META_JS, LIFT)
        assert meta["taken_at"] == "2008-10-22T16:28:39+08:00"  # exifr ran, under the policy
        assert meta["camera"] == "NIKON COOLPIX P6000"
        page.goto(f"{live_server.url}/reports/{rid}")
        page.locator("#photos a[data-photo]").first.click()
        page.wait_for_selector("html[data-viewer=open]", state="attached")
        assert page.locator(".pswp__counter").inner_text().replace(" ", "") == "1/2"
        assert page.evaluate("window.__violations") == []
    finally:
        context.close()
