"""Offline, as a guard notices it in the first week: kept pages speak the
language the guard chose, every page says when there is no signal, "my
reports" lists what still waits on the phone, and a note typed just before
"‹ 返回" is kept in the draft."""

from __future__ import annotations

import json

import pytest

from server.i18n import translations
from tests.helpers.browser import LIFT, log_in, make_report, screenshot
from tests.helpers.live import GUARD_PASSWORD

pytestmark = pytest.mark.browser

EN = translations("en")
# A page the guard keeps, and a text it shows (as its Chinese msgid).
KEPT_PAGES = {
    "/report/theft": "处理步骤",
    "/playbooks": "突发事件处理指引",
    "/outbox": "手机上没有待发送的上报。",
    "/me": "我的项目",
    "/reports": "我的上报",
}
OFFLINE_NOTE = "上报会保存在手机上，有信号后自动发送"


def log_in_english(page, url: str) -> None:
    """Log the guard in on a phone whose language is English already."""
    page.context.add_cookies([{"name": "onsite_lang", "value": "en", "url": url}])
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill("guard")
    page.get_by_label("Password").fill(GUARD_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")
    page.wait_for_selector(
        'html[lang="en"][data-offline-ready=true]', state="attached", timeout=30_000
    )


def switch_language(page, lang: str) -> None:
    """Tap the language switch; wait until the pages are kept in ``lang``."""
    page.locator(f'nav.lang a[hreflang="{lang}"]').click()
    page.wait_for_selector(
        f'html[lang="{lang}"][data-offline-ready=true]', state="attached", timeout=30_000
    )


def in_language(text: str, lang: str) -> str:
    return text if lang == "zh-CN" else EN.gettext(text)


def assert_kept_pages_speak(page, url: str, lang: str) -> None:
    other = "en" if lang == "zh-CN" else "zh-CN"
    for path, text in KEPT_PAGES.items():
        page.goto(f"{url}{path}")
        assert page.evaluate("document.documentElement.lang") == lang, path
        html = page.content()
        assert in_language(text, lang) in html, path
        assert in_language(text, other) not in html, path


def test_kept_pages_follow_a_switch_from_chinese_to_english(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)  # pages kept in Chinese
    switch_language(page, "en")
    phone.set_offline(True)
    assert_kept_pages_speak(page, live_server.url, "en")


def test_kept_pages_follow_a_switch_from_english_to_chinese(live_server, phone):
    page = phone.new_page()
    log_in_english(page, live_server.url)  # pages kept in English only
    switch_language(page, "zh-CN")
    phone.set_offline(True)
    assert_kept_pages_speak(page, live_server.url, "zh-CN")
    screenshot(page, "reports-offline-zh-CN")


def test_a_page_kept_in_the_other_language_only_beats_the_offline_page(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    switch_language(page, "en")
    # As if the English copy of /me had not been kept yet (no signal since).
    assert page.evaluate("caches.open('onsite-pages-en').then((c) => c.delete('/me'))")
    phone.set_offline(True)
    page.goto(f"{live_server.url}/me")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert "我的项目" in page.content()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_page_says_when_there_is_no_signal(live_server, phone, lang):
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    if lang == "en":
        switch_language(page, "en")
    note = page.get_by_role("status").filter(has_text=in_language(OFFLINE_NOTE, lang))
    assert note.is_hidden()  # online: nothing to say

    phone.set_offline(True)  # the signal goes while a page is open
    note.wait_for()
    assert in_language("离线", lang) in note.inner_text()
    for path in ["/", "/reports", "/outbox", "/playbooks", f"/report/{LIFT}", "/me"]:
        page.goto(f"{live_server.url}{path}")
        note.wait_for()
    page.goto(f"{live_server.url}/")
    note.wait_for()
    screenshot(page, f"offline-indicator-{lang}")
    page.goto(f"{live_server.url}/report/{LIFT}")
    note.wait_for()
    screenshot(page, f"offline-indicator-flow-{lang}")

    phone.set_offline(False)  # the signal returns
    note.wait_for(state="hidden")
    page.goto(f"{live_server.url}/playbooks")
    assert note.is_hidden()


def test_a_send_that_finds_no_network_shows_the_note_until_one_gets_through(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)

    # One bar that carries nothing: the browser still says it is online.
    def cut(route):
        route.abort("internetdisconnected")

    phone.route("**/api/**", cut)
    phone.route("**/manifest.webmanifest", cut)
    make_report(page, live_server.url, [])
    note = page.locator("#offline-note")
    note.wait_for()
    assert page.evaluate("navigator.onLine")

    phone.unroute("**/api/**")
    phone.unroute("**/manifest.webmanifest")
    page.get_by_role("button", name="立即发送").first.click()
    note.wait_for(state="hidden")


def test_my_reports_lists_what_waits_in_the_outbox_with_its_state(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    phone.set_offline(True)
    report_id = make_report(page, live_server.url, [], note="车库入口")

    page.goto(f"{live_server.url}/reports")  # kept, and the outbox on top
    page.wait_for_function(f"(document.body.dataset.waiting || '').includes('{report_id}')")
    assert json.loads(page.evaluate("document.body.dataset.waiting")) == [[report_id, "waiting"]]
    section = page.locator("#waiting-reports")
    assert section.is_visible()
    row = section.locator(f"#waiting-{report_id}")
    assert "电梯困人" in row.inner_text() and "等待发送" in row.inner_text()
    assert row.get_by_role("link").get_attribute("href") == f"/outbox?id={report_id}"
    # It comes before the server's list, which cannot have it yet.
    assert page.evaluate(
        "document.querySelector('#waiting-reports').compareDocumentPosition("
        "document.querySelector('.report-list, .card.muted')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    screenshot(page, "reports-waiting-zh-CN")

    # Its state follows the outbox: sending, then failed with the server's reason.
    page.evaluate(
        "(id) => import('/static/js/outbox/store.js').then((s) =>"
        " s.update(id, (it) => { it.state = 'sending'; }))",
        report_id,
    )
    row.get_by_text("发送中").wait_for()
    page.evaluate(
        "(id) => import('/static/js/outbox/store.js').then((s) => s.update(id, (it) => {"
        " it.state = 'failed'; it.error = 'You are not on the staff of north.'; }))",
        report_id,
    )
    row.get_by_text("发送失败").wait_for()
    assert "原因：You are not on the staff of north." in row.inner_text()
    screenshot(page, "reports-failed-zh-CN")

    row.get_by_role("link").click()  # to the outbox, where it can be sent or deleted
    page.wait_for_url(f"**/outbox?id={report_id}")
    page.locator(f"#item-{report_id}").wait_for()


def test_a_note_typed_just_before_going_back_is_kept_in_the_draft(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    page.goto(f"{live_server.url}/report/{LIFT}")
    page.wait_for_selector("body[data-ready=true]")
    # Typed, then "‹ 返回" within a few ms: well inside the draft's 150 ms
    # coalescing of keystrokes.
    page.evaluate(
        """() => {
          const notes = document.getElementById("notes");
          notes.value = "三号梯卡在五楼，两人";
          notes.dispatchEvent(new Event("input", { bubbles: true }));
          setTimeout(() => document.querySelector("a.back").click(), 30);
        }"""
    )
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/report/{LIFT}")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#notes").input_value() == "三号梯卡在五楼，两人"


def test_keystrokes_then_back_at_once_with_no_signal_lose_nothing(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    phone.set_offline(True)
    page.goto(f"{live_server.url}/report/{LIFT}")
    page.wait_for_selector("body[data-ready=true]")
    page.locator("#notes").press_sequentially("无信号")  # real keys, then a real tap
    page.get_by_role("link", name="返回").click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/report/{LIFT}")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#notes").input_value() == "无信号"


def test_a_page_fetches_every_module_it_starts_with_from_its_preload_links(live_server, browser):
    # No worker: every file from the network, as at the first start.
    from tests.helpers.browser import PHONE_OPTIONS

    context = browser.new_context(**PHONE_OPTIONS, service_workers="block")
    try:
        page = context.new_page()
        log_in(page, live_server.url)
        for path in ["/", "/reports", f"/report/{LIFT}", "/outbox", "/me", "/playbooks"]:
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("load")
            fetched = page.evaluate(
                """() => performance.getEntriesByType("resource")
                     .filter((e) => new URL(e.name).pathname.endsWith(".js"))
                     .map((e) => [new URL(e.name).pathname + new URL(e.name).search,
                                  e.initiatorType])"""
            )
            preloads = page.eval_on_selector_all(
                'link[rel="modulepreload"]', "(links) => links.map((l) => l.getAttribute('href'))"
            )
            assert fetched, path
            # A module found only when its importer ran would say "script".
            assert [url for url, _ in fetched if url not in preloads] == [], path
            assert len(fetched) == len({url for url, _ in fetched}), f"{path}: a module twice"
    finally:
        context.close()
