"""Chromium through Playwright: the phone's options, logging in, waiting, looking,
and the flows several browser tests start from."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from PIL import Image

from tests.helpers.core import CSRF
from tests.helpers.live import GUARD_PASSWORD, LiveServer, add_user, api_session

CHROMIUM = os.environ.get("ONSITE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
PHONE_OPTIONS = {
    "viewport": PHONE,
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",  # a guard's phone, as the server's pages assume
    # Playwright's own string predicates (wait_for_function) are compiled in
    # the page, which the app's Content-Security-Policy forbids; the policy
    # itself is checked with it on, page by page (test_policy.py).
    "bypass_csp": True,
}
DESK = {"width": 1280, "height": 800}
# A browser at a desk: its size, a mouse, no touch; the phone's language and zone.
DESK_OPTIONS = {
    **{k: v for k, v in PHONE_OPTIONS.items() if k not in ("is_mobile", "has_touch")},
    "viewport": DESK,
    "device_scale_factor": 1,
}
LIFT = "lift-entrapment"
SESSION_COOKIE = "onsite_session"


def log_in(
    page,
    url: str,
    *,
    offline_ready: bool = False,
    username: str = "guard",
    password: str = GUARD_PASSWORD,
) -> None:
    """Log a user (the guard unless told) in and open the home page; with
    ``offline_ready``, also wait until the service worker has kept every
    page needed offline.

    The session is made through the API with the browser's own user agent
    and handed to the browser as its cookie, as the login form would set it:
    a test about the form itself uses :func:`log_in_with_form`."""
    agent = page.evaluate("navigator.userAgent")
    answer = httpx.post(
        f"{url}/api/session",
        json={"username": username, "password": password},
        headers={**CSRF, "User-Agent": agent},
    )
    assert answer.status_code == 200, answer.text
    (kept,) = [c for c in answer.cookies.jar if c.name == SESSION_COOKIE]
    # As the server set it: kept for 30 days, so a browser closed and opened
    # again (a persistent profile) is still logged in.
    cookie = {"name": kept.name, "value": kept.value, "url": url, "expires": kept.expires}
    page.context.add_cookies([{**cookie, "httpOnly": True, "sameSite": "Lax"}])
    page.goto(f"{url}/")
    if offline_ready:
        wait_offline_ready(page)


def log_in_with_form(
    page, url: str, *, username: str = "guard", password: str = GUARD_PASSWORD
) -> None:
    """Log in through the login form, in whichever language the page speaks."""
    page.goto(f"{url}/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{url}/")


def wait_offline_ready(page) -> None:
    """Until the service worker has kept every page this user needs offline."""
    page.wait_for_selector("html[data-offline-ready=true]", state="attached", timeout=30_000)


# Counts the page's fetches in flight (add as an init script), so that a test
# waits for what the page asked for rather than for half a second of quiet
# on the network ("networkidle"), which every page paid in full.
TRACK_FETCHES = """
(() => {
  let open = 0;
  const send = window.fetch;
  window.__fetching = () => open;
  window.fetch = (...args) => {
    open += 1;
    return send(...args).finally(() => { open -= 1; });
  };
})();
"""
SETTLED_JS = """() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(
  () => done(document.readyState === "complete" && !(window.__fetching?.() > 0)))))"""


def settle(page, timeout: float = 10.0) -> None:
    """Until the page has loaded, its fetches (see :data:`TRACK_FETCHES`)
    have answered and two frames were drawn since."""
    wait_until(page, SETTLED_JS, timeout=timeout)


def wait_until(page, script: str, arg=None, timeout: float = 10.0) -> None:
    """Wait until ``script`` (an async function may be) answers truthy.

    ``page.wait_for_function`` does not await a promise: an async predicate
    is truthy at once, and the wait waits for nothing. ``evaluate`` does."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {script}"
        page.wait_for_timeout(50)


def screenshot(page, name: str) -> None:
    """Keep a phone-size screenshot when ONSITE_SCREENSHOTS names a folder."""
    folder = os.environ.get("ONSITE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


SMALL_TARGETS_JS = """
() => [...document.querySelectorAll('a, button, input:not([type=hidden]), select, textarea')]
  .filter(el => el.offsetParent !== null && !el.closest('.skip'))
  // A visually hidden input is operated through its (large) label.
  .filter(el => !el.classList.contains('visually-hidden'))
  .map(el => { const r = el.getBoundingClientRect();
               return {tag: el.tagName, text: (el.innerText || el.name || '').trim().slice(0, 30),
                       w: r.width, h: r.height}; })
  .filter(t => t.w < 44 || t.h < 44)
"""


def fits_a_thumb(page, name: str) -> None:
    """Nothing wider than the phone, nothing smaller than 44 px to tap; then
    the picture (ONSITE_SCREENSHOTS)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    small = page.evaluate(SMALL_TARGETS_JS)
    assert small == [], (name, small)
    page.evaluate("scrollTo(0, 0)")  # the sticky top bar at the top of the picture
    screenshot(page, name)


# Collects the page's Content-Security-Policy violations (add as an init script).
WATCH_POLICY = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${where}`);
});
"""


class Server:
    """What the server holds, seen through the API as the guard."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live

    def reports(self) -> list[dict]:
        with httpx.Client(base_url=self.live.url, headers=CSRF) as c:
            c.post("/api/session", json={"username": "guard", "password": GUARD_PASSWORD})
            listed = c.get("/api/reports", params={"limit": 100}).json()["reports"]
            return [c.get(f"/api/reports/{r['id']}").json() for r in listed]

    def wait_for(self, check, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                reports = self.reports()
            except httpx.TransportError:
                reports = None
            if reports is not None and check(reports):
                return reports
            if time.monotonic() > deadline:
                raise AssertionError(f"server never got there: {reports}")
            time.sleep(0.1)


def make_report(page, url: str, photos: list[Path], note: str = "地下车库无信号") -> str:
    """A lift entrapment through the report flow on the page, a step ticked,
    ``photos`` attached, sent; its id (the page is on the outbox)."""
    page.goto(f"{url}/report/{LIFT}")
    page.wait_for_selector("body[data-ready=true]")
    page.locator(".step-box").nth(0).check()
    for path in photos:
        count = page.locator("#photo-grid .photo").count()
        page.locator("#photo-input").set_input_files(str(path))
        page.wait_for_function(f"document.querySelectorAll('#photo-grid .photo').length > {count}")
    page.locator("#notes").fill(note)
    page.get_by_role("button", name="检查并发送").click()
    page.get_by_role("button", name="发送", exact=True).click()
    page.wait_for_url("**/outbox?id=*")
    return page.url.rsplit("=", 1)[1]


def outbox(page) -> list[list[str]]:
    """[id, state] of every report in the phone's outbox, as the page shows it."""
    page.wait_for_function("document.body.dataset.outbox !== undefined")
    return page.evaluate("JSON.parse(document.body.dataset.outbox)")


def new_report(
    live_server, *, severity: str = "critical", notes: str = "两人被困", photo: bool = False
) -> str:
    """A lift entrapment the guard sent through the API (with a photo if
    asked); its id."""
    report_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat()
    with api_session(live_server, "guard", GUARD_PASSWORD) as guard:
        response = guard.put(
            f"/api/reports/{report_id}",
            json={
                "site": "north",
                "incident_type": LIFT,
                "severity": severity,
                "occurred_at": now,
                "location": {"text": "3栋2单元 电梯", "lat": 22.5431, "lng": 114.0579},
                "notes": notes,
                "steps": [{"index": 0, "checked_at": now}],
            },
        )
        assert response.status_code == 201, response.text
        if photo:
            image = io.BytesIO()
            Image.new("RGB", (1200, 900), (170, 60, 40)).save(image, "JPEG")
            uploaded = guard.put(
                f"/api/reports/{report_id}/photos/{uuid.uuid4()}",
                content=image.getvalue(),
                headers={"Content-Type": "image/jpeg"},
            )
            assert uploaded.status_code == 201, uploaded.text
    return report_id


TECH_PASSWORD = "tech-password-1"
BOSS_PASSWORD = "boss-password-1"


def assigned_job(live: LiveServer) -> str:
    """A report from the guard, acknowledged and assigned to the technician
    (tech, 李工) by the supervisor (boss, 赵主管): the technician's job. Answers its id."""
    add_user(live, "tech", "technician", "李工", TECH_PASSWORD)
    add_user(live, "boss", "supervisor", "赵主管", BOSS_PASSWORD)
    report_id = str(uuid.uuid4())
    with api_session(live, "guard", GUARD_PASSWORD) as guard:
        body = {
            "site": "north",
            "incident_type": LIFT,
            "severity": "high",
            "occurred_at": (datetime.now(UTC) - timedelta(minutes=30)).isoformat(),
            "location": {"text": "3栋 2号电梯"},
        }
        assert guard.put(f"/api/reports/{report_id}", json=body).status_code == 201
    with api_session(live, "boss", BOSS_PASSWORD) as boss:
        assert boss.put(f"/api/reports/{report_id}/acknowledgement", json={}).is_success
    assign(live, report_id, "tech")
    return report_id


def assign(live: LiveServer, report_id: str, technician: str) -> None:
    """The supervisor (boss) assigns the report to ``technician``."""
    with api_session(live, "boss", BOSS_PASSWORD) as boss:
        answer = boss.put(f"/api/reports/{report_id}/assignment", json={"assignee": technician})
        assert answer.is_success, answer.text


def registration_id(cdp, origin: str) -> str:
    """The id of the app's service worker registration, through DevTools."""
    found: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: found.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for reg in found:
            if reg["scopeURL"] == origin + "/" and not reg.get("isDeleted"):
                return reg["registrationId"]
        cdp.send("Runtime.evaluate", {"expression": "1"})  # let events arrive
        time.sleep(0.1)
    raise AssertionError(f"no service worker registration for {origin}: {found}")


NOTIFICATIONS_JS = """async () => (await self.registration.getNotifications()).map(n => ({
    title: n.title, body: n.body, tag: n.tag, renotify: n.renotify,
    requireInteraction: n.requireInteraction, icon: n.icon, badge: n.badge, data: n.data}))"""


def push_and_wait(phone, page, origin: str, message: dict) -> tuple[object, list[dict]]:
    """Deliver ``message`` to the app's worker as the push service would, once
    the worker is active, and wait for its notification: the worker that
    shows it, and what it shows. Delivered again if none appears within
    10 s: a push to a worker still installing (or restarted meanwhile) may
    be dropped, and the same tag replaces a notification, so a second
    delivery changes nothing."""
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
    cdp = phone.new_cdp_session(page)
    registration = registration_id(cdp, origin)
    for _ in range(3):
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": origin,
                "registrationId": registration,
                "data": json.dumps(message, ensure_ascii=False),
            },
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for worker in phone.service_workers:
                shown = worker.evaluate(NOTIFICATIONS_JS)
                if shown:
                    return worker, shown
            time.sleep(0.1)
    raise AssertionError("the pushed alert was never shown")
