"""The reader web app in Chromium: run by tests/tests/browser_reader.rs against an app with the
demo's news. Environment:

  HERALD_BASE_URL              the app
  HERALD_EDITOR_TOKEN          an editor's access token (to send an alert, as the console does)
  HERALD_FAKE_SUBSCRIPTION     {"id", "endpoint", "keys": {"p256dh", "auth"}} of the local Web
                               Push receiver: the page's PushManager.subscribe hands it out
  HERALD_RENEWED_SUBSCRIPTION  a second one, for `pushsubscriptionchange`
  HERALD_PUSH_RECEIVED_URL     GET {url}/received/{id}: payloads the receiver decrypted
  HERALD_SCREENSHOT_DIR        optional: where the screenshots go (docs/reader for the README)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import urllib.request
import uuid

from harness import PHONE, Harness, check, log, run

EDITOR = os.environ.get("HERALD_EDITOR_TOKEN", "")
FAKE = json.loads(os.environ.get("HERALD_FAKE_SUBSCRIPTION", "null") or "null")
RENEWED = json.loads(os.environ.get("HERALD_RENEWED_SUBSCRIPTION", "null") or "null")
RECEIVED = os.environ.get("HERALD_PUSH_RECEIVED_URL", "")
SHOTS = os.environ.get("HERALD_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="herald-shots-")

# The page's PushManager hands out the local receiver's subscription: headless Chromium cannot
# reach a real push service. Everything else (permission, VAPID key, POST /v1/devices) is real.
PUSH_STUB = """
(() => {
  const fake = %s;
  if (!fake || !('PushManager' in self)) return;
  const STATE = 'test-fake-push-key';
  const bytes = (b64) => {
    const s = atob(b64.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((b64.length + 3) %% 4));
    return Uint8Array.from(s, c => c.charCodeAt(0)).buffer;
  };
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  const make = (key) => ({
    endpoint: fake.endpoint, expirationTime: null,
    options: { userVisibleOnly: true, applicationServerKey: bytes(key) },
    getKey: () => null,
    toJSON: () => ({ endpoint: fake.endpoint, expirationTime: null, keys: fake.keys }),
    unsubscribe: () => { localStorage.removeItem(STATE); return Promise.resolve(true); },
  });
  PushManager.prototype.subscribe = function (options) {
    const raw = options.applicationServerKey;
    const key = typeof raw === 'string' ? raw : b64(raw.buffer ? raw.buffer : raw);
    localStorage.setItem(STATE, key);
    return Promise.resolve(make(key));
  };
  PushManager.prototype.getSubscription = function () {
    const key = localStorage.getItem(STATE);
    return Promise.resolve(key ? make(key) : null);
  };
})();
"""


def http(method: str, url: str, token: str | None = None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("accept", "application/json")
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)


def in_page(page, script: str, arg=None):
    """Runs `script` (an async function of one argument) in the page."""
    return page.evaluate(script, arg)


def reader_api(page, method: str, path: str, body=None):
    """A /v1 call as the page's reader (through session.js); returns [status, json]."""
    return in_page(page, """async ([method, path, body]) => {
        const r = await HeraldSession.api(method, path, body === null ? undefined : body);
        const text = await r.text();
        return [r.status, text ? JSON.parse(text) : null];
    }""", [method, path, body])


def wait_text(page, selector: str, pattern: str, timeout_s: float = 10.0):
    deadline = time.time() + timeout_s
    text = None
    while time.time() < deadline:
        text = page.evaluate("(s) => { const el = document.querySelector(s); return el ? el.textContent : null; }", selector)
        if text is not None and re.search(pattern, text):
            return text
        page.wait_for_timeout(100)
    raise AssertionError(f"{selector}: {text!r} never matched {pattern!r}")


def wait_js(page, script: str, arg=None, timeout_s: float = 15.0):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if page.evaluate(script, arg):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {script}")


def pick_article(h: Harness):
    """An article whose story another publisher covered too."""
    _, stories = http("GET", h.url("/v1/stories?limit=100"))
    for story in stories["items"]:
        if story["source_count"] < 2:
            continue
        _, article_list = http("GET", h.url(f"/v1/stories/{story['id']}"))
        articles = article_list.get("articles") or article_list.get("items") or []
        for article in articles:
            _, full = http("GET", h.url(f"/v1/articles/{article['id']}"))
            others = [r for r in full["related"] if r["source"]["name"] != full["source"]["name"]]
            if others and full.get("story_id"):
                return full, others[0]
    raise AssertionError("no demo article has related coverage from another publisher")


def without_javascript(h: Harness, article: dict, other: dict) -> None:
    """The news reads with scripts off: headlines, the article and its related coverage."""
    page = h.other_browser(javascript=False).new_page()
    h.goto(page, "/")
    check(page.locator("article.headline").count() >= 5, "headlines without JavaScript")
    h.goto(page, f"/articles/{article['id']}")
    check(other["source"]["name"] in page.locator("section.related").inner_text(),
          "related coverage without JavaScript")
    h.goto(page, "/search?q=" + article["title"].split()[0])
    check(page.locator("article.headline").count() >= 1, "search without JavaScript")
    h.goto(page, "/following")
    check("need JavaScript" in page.locator("main").inner_text(), "the account pages say they need JavaScript")
    page.close()
    log("without JavaScript: headlines, article with related coverage, search")


def test(h: Harness) -> None:
    check(EDITOR and FAKE and RENEWED and RECEIVED, "the Rust test must pass the editor, subscriptions and receiver")
    h.context.add_init_script(PUSH_STUB % json.dumps(FAKE))
    page = h.new_page(PHONE)

    # -- Front page: the demo's headlines, a service worker controlling /, a valid manifest --
    _, latest = http("GET", h.url("/v1/articles?limit=5"))
    h.goto(page, "/")
    headlines = page.locator("article.headline h3 a").all_inner_texts()
    log(f"front page: {len(headlines)} headlines")
    check(len(headlines) >= 5, f"the front page lists the demo's headlines: {headlines}")
    for article in latest["items"]:
        check(article["title"] in headlines, f"{article['title']!r} is on the front page")
    first_time = page.locator("article.headline time").first
    check(re.search(r"ago|just now", first_time.inner_text()), "relative time shown")
    check(first_time.get_attribute("title"), "the exact time on hover")
    wait_js(page, "() => navigator.serviceWorker.controller !== null")
    log("the service worker controls /")
    scope = in_page(page, "async () => (await navigator.serviceWorker.ready).scope")
    check(scope == h.url("/"), f"service worker scope {scope}")
    # An anonymous reader on first visit, without a sign-up wall.
    session = h.wait_for(page, lambda: in_page(page, "() => HeraldSession.session({create: false})"), "an anonymous session")
    check(session["user"]["is_anonymous"], "the first visit makes an anonymous reader")
    reader_id = session["user"]["id"]
    cdp = h.context.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    check(not manifest.get("errors"), f"manifest errors: {manifest.get('errors')}")
    parsed = json.loads(manifest["data"])
    check(parsed["display"] == "standalone" and parsed["theme_color"], "manifest: standalone with a theme colour")
    installability = cdp.send("Page.getInstallabilityErrors")
    log(f"installability errors: {installability.get('installabilityErrors')}")
    cdp.detach()
    h.axe(page, "front page")
    h.screenshot(page, os.path.join(SHOTS, "front-page.png"))

    # -- Article page: publisher, related coverage from another publisher, story page -------
    article, other = pick_article(h)
    h.goto(page, f"/articles/{article['id']}")
    check(page.locator("h1").inner_text() == article["title"], "the article's headline")
    check(page.locator(".story-text .source").inner_text() == article["source"]["name"], "names its publisher")
    related = page.locator("section.related")
    check(other["source"]["name"] in related.inner_text(), f"related coverage from {other['source']['name']}")
    check(other["title"] in related.inner_text(), "related coverage names the other article")
    check(page.locator("a[rel=noopener]").first.get_attribute("href") == article["url"], "links the original")
    h.axe(page, "article page")
    h.screenshot(page, os.path.join(SHOTS, "article.png"), full_page=True)
    page.get_by_role("link", name="Full coverage of this story").click()
    page.wait_for_url(re.compile(r"/stories/"))
    story_text = page.locator("main").inner_text()
    check(article["source"]["name"] in story_text and other["source"]["name"] in story_text, "the story lists both publishers")
    h.axe(page, "story page")
    without_javascript(h, article, other)

    # -- Follow a topic from its tab; it persists ---------------------------------------------
    topic = article["topics"][0] if article["topics"] else "world"
    h.goto(page, f"/topics/{topic}")
    follow = page.locator(f"button[data-follow='{topic}']")
    follow.wait_for(state="visible")
    check(follow.get_attribute("aria-pressed") == "false", "not followed yet")
    follow.click()
    wait_js(page, "(t) => document.querySelector(`button[data-follow='${t}']`).getAttribute('aria-pressed') === 'true'", topic)
    h.axe(page, "topic tab")
    page.reload()
    follow.wait_for(state="visible")
    wait_js(page, "(t) => document.querySelector(`button[data-follow='${t}']`).getAttribute('aria-pressed') === 'true'", topic)
    status, subs = reader_api(page, "GET", "/v1/me/subscriptions")
    check(status == 200 and topic in subs["topics"], f"following {topic} persists: {subs}")
    log(f"follows {topic}")

    # -- Quiet hours and the daily cap persist ------------------------------------------------
    h.goto(page, "/following")
    wait_js(page, "() => document.querySelector('#pref-timezone').value !== ''")
    check(page.locator(f"#topic-{topic}").is_checked(), "the followed topic is ticked")
    detected = page.locator("#pref-timezone").input_value()
    log(f"time zone detected: {detected}")
    check(detected == "Asia/Tokyo", f"the browser's time zone is offered: {detected}")
    page.locator("#pref-timezone").fill("Europe/London")
    page.locator("#pref-quiet").check()
    page.locator("#pref-quiet-start").select_option("23:00")
    page.locator("#pref-quiet-end").select_option("06:30")
    page.locator("#pref-cap").fill("5")
    page.get_by_role("button", name="Save").click()
    wait_text(page, "[data-prefs-status]", "^Saved")
    page.reload()
    wait_js(page, "() => document.querySelector('#pref-cap').value === '5'")
    check(page.locator("#pref-quiet").is_checked(), "quiet hours stay on")
    check(page.locator("#pref-quiet-start").input_value() == "23:00", "quiet hours start persists")
    check(page.locator("#pref-quiet-end").input_value() == "06:30", "quiet hours end persists")
    check(page.locator("#pref-timezone").input_value() == "Europe/London", "a chosen time zone persists")
    _, prefs = reader_api(page, "GET", "/v1/me/preferences")
    check(prefs["quiet_hours"] == {"start": "23:00", "end": "06:30"} and prefs["max_alerts_per_day"] == 5, f"{prefs}")
    # Quiet hours must not hold the test's alert: back to none.
    page.locator("#pref-quiet").uncheck()
    page.get_by_role("button", name="Save").click()
    wait_text(page, "[data-prefs-status]", "^Saved")

    # -- Turn on alerts -------------------------------------------------------------------------
    wait_text(page, "[data-push-status]", "Alerts are off")
    h.axe(page, "following and alerts")
    h.grant_notifications()
    page.get_by_role("button", name="Turn on alerts").click()
    wait_text(page, "[data-push-status]", "Alerts are on")
    _, devices = reader_api(page, "GET", "/v1/devices")
    items = devices["items"] if isinstance(devices, dict) else devices
    check(any(d["platform"] == "web" for d in items), f"the browser is a registered device: {devices}")
    log("alerts on: device registered")
    h.screenshot(page, os.path.join(SHOTS, "alerts-on.png"))

    # -- An alert from the newsroom, through the real notifier, to the service worker ---------
    status, sent = http("POST", h.url("/v1/admin/alerts"), EDITOR, {"article_id": article["id"]})
    check(status == 202, f"alert accepted: {status}")
    alert_id = sent["id"]

    def arrived():
        _, payloads = http("GET", f"{RECEIVED}/received/{FAKE['id']}")
        return payloads

    payloads = h.wait_for(page, arrived, "the alert at the local push receiver", timeout_s=60)
    payload_text = payloads[0]
    payload = json.loads(payload_text)
    log(f"decrypted payload: {payload_text}")
    check(payload["alert_id"] == alert_id and payload["story_id"] == article["story_id"], "the payload names the alert and story")

    h.goto(page, "/")
    # An earlier alert on the same story, then the real one: one notification, the later.
    earlier = dict(payload, alert_id=str(uuid.uuid4()), title="Earlier: " + payload["title"])
    h.deliver_push(page, earlier)
    shown = h.wait_for(page, lambda: h.notifications(page), "the first notification")
    check(shown[0]["title"] == earlier["title"] and shown[0]["tag"] == article["story_id"], f"{shown}")
    h.deliver_push(page, payload_text)
    shown = h.wait_for(page, lambda: [n for n in h.notifications(page) if n["title"] == payload["title"]],
                       "the alert's notification")
    everything = h.notifications(page)
    check(len(everything) == 1, f"the later alert replaced the earlier one: {everything}")
    check(everything[0]["tag"] == article["story_id"], "tagged with the story")
    check(everything[0]["body"] == payload["body"], "the alert's body")
    check(everything[0]["icon"].startswith(h.url("/assets/")), "our own icon, nothing from another origin")
    log(f"notification shown: {everything[0]['title']!r}")
    # The open tab shows it too.
    banner = page.locator("[data-live-alert]")
    banner.wait_for(state="visible")
    check(payload["title"] in banner.inner_text(), f"the banner names the alert: {banner.inner_text()!r}")
    check(page.locator("[data-live-alert-link]").get_attribute("href") == f"/articles/{article['id']}", "the banner links the article")
    h.axe(page, "front page with an alert banner")
    h.screenshot(page, os.path.join(SHOTS, "alert-arrived.png"))

    # A click: the headless browser cannot click a system notification, so the worker's own
    # click handler runs on the shown notification (with a stand-in event: synthetic events
    # may not call waitUntil). It navigates this tab and reports the open.
    worker = h.service_worker()
    worker.evaluate("""async () => {
        const [notification] = await self.registration.getNotifications();
        const pending = [];
        onNotificationClick({ notification, waitUntil: (p) => pending.push(p) });
        await Promise.all(pending);
    }""")
    page.wait_for_url(h.url(f"/articles/{article['id']}"), timeout=15_000)
    check(page.locator("h1").inner_text() == article["title"], "the click opened the article")
    check(h.notifications(page) == [], "the notification closed")

    def opened():
        _, state = http("GET", h.url(f"/v1/admin/alerts/{alert_id}"), EDITOR)
        return state["opened"] >= 1 and state

    state = h.wait_for(page, opened, "the open to be recorded")
    log(f"alert state after the click: {state}")

    # -- The inbox shows it, opened --------------------------------------------------------------
    h.goto(page, "/alerts")
    page.locator(f"[data-alert='{alert_id}']").wait_for()
    item = page.locator(f"[data-alert='{alert_id}']").inner_text()
    check(payload["title"] in item and "opened" in item, f"the inbox shows the opened alert: {item!r}")
    h.axe(page, "alert inbox")
    h.screenshot(page, os.path.join(SHOTS, "alert-inbox.png"))

    # -- The push service renews the subscription: the worker registers the new one ------------
    worker.evaluate("""async (sub) => {
        const renewed = { endpoint: sub.endpoint, toJSON: () => ({ endpoint: sub.endpoint, keys: sub.keys }) };
        await self.heraldOnSubscriptionChange({ newSubscription: renewed, waitUntil: () => {} });
    }""", RENEWED)
    _, devices = reader_api(page, "GET", "/v1/devices")
    items = devices["items"] if isinstance(devices, dict) else devices
    check(len([d for d in items if d["platform"] == "web"]) == 2, f"the renewed subscription is registered: {items}")
    log("pushsubscriptionchange registered the new subscription")

    # -- Offline: the last pages read still open, others show the offline page ------------------
    h.allow_error("ERR_INTERNET_DISCONNECTED")  # the worker's own fetch fails, as it should
    h.context.set_offline(True)
    try:
        page.goto(h.url(f"/articles/{article['id']}"))
        check(page.locator("h1").inner_text() == article["title"], "a page read before opens offline")
        page.goto(h.url(f"/stories/{uuid.uuid4()}"))
        check("offline" in page.locator("h1").inner_text().lower(), "an unread page shows the offline page")
        log("offline: cached article and offline page served by the worker")
    finally:
        h.context.set_offline(False)

    # -- Account: sign up keeps the reader and what it follows; log out; log in ---------------
    h.goto(page, "/account")
    wait_text(page, "[data-account-status]", "without an account")
    h.axe(page, "account")
    email = f"reader-{uuid.uuid4().hex[:12]}@herald.example"
    password = "correct horse battery staple"
    page.locator("#signup-email").fill(email)
    page.locator("#signup-password").fill(password)
    page.get_by_role("button", name="Create account").click()
    wait_text(page, "[data-account-status]", "Signed in as")
    session = in_page(page, "() => HeraldSession.session({create: false})")
    check(session["user"]["id"] == reader_id and not session["user"]["is_anonymous"], "linked: same reader id")
    _, subs = reader_api(page, "GET", "/v1/me/subscriptions")
    check(topic in subs["topics"], "follows kept after sign-up")
    page.get_by_role("button", name="Log out").click()
    wait_text(page, "[data-account-status]", "without an account")
    page.locator("#login-email").fill(email)
    page.locator("#login-password").fill(password)
    page.get_by_role("button", name="Log in").click()
    wait_text(page, "[data-account-status]", "Signed in as")
    session = in_page(page, "() => HeraldSession.session({create: false})")
    check(session["user"]["id"] == reader_id, "logged back in as the same reader")
    log("account: sign up (link), log out, log in")


if __name__ == "__main__":
    run(test, timezone_id="Asia/Tokyo", locale="en-GB")
