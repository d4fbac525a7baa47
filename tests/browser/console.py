"""The newsroom console in Chromium: run by tests/tests/browser_console.rs against an app with
the demo's news and a local Web Push service with an audience following `world`. Environment:

  HERALD_BASE_URL          the app
  HERALD_EDITOR_EMAIL      an editor's email ...
  HERALD_EDITOR_PASSWORD   ... and password
  HERALD_CONTROL_URL       POST {url}/latency/{ms}: how slowly the push service answers;
                           POST {url}/open/{alert}/{n}: n readers open the alert
  HERALD_EXTRA_FEED_URL    a feed with one story no demo feed has, to add from the console
  HERALD_AUDIENCE          readers following `world` with a browser each ...
  HERALD_QUIET             ... of whom this many are in their quiet hours
  HERALD_SCREENSHOT_DIR    optional: where the screenshots go (docs/console for the README)
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request

from harness import DESKTOP, PHONE, Harness, check, log, run

EMAIL = os.environ.get("HERALD_EDITOR_EMAIL", "")
PASSWORD = os.environ.get("HERALD_EDITOR_PASSWORD", "")
CONTROL = os.environ.get("HERALD_CONTROL_URL", "")
EXTRA_FEED = os.environ.get("HERALD_EXTRA_FEED_URL", "")
AUDIENCE = int(os.environ.get("HERALD_AUDIENCE", "0"))
QUIET = int(os.environ.get("HERALD_QUIET", "0"))
SHOTS = os.environ.get("HERALD_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="herald-console-")

EXTRA_HEADLINE = "Lighthouse keepers vote to keep the lamps lit"
LONG_TITLE = ("Ceasefire holds overnight as negotiators in Geneva agree a timetable for "
              "the exchange of prisoners")
# Where the console's previews cut (crates/web/assets/console/app.js, PREVIEW_LIMITS).
LIMITS = {"ios": (38, 150), "android": (40, 48), "desktop": (55, 120)}


def control(path: str) -> str:
    request = urllib.request.Request(CONTROL + path, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def text(page, selector: str) -> str:
    return (page.text_content(selector) or "").strip()


def counter(page, key: str) -> str:
    return text(page, f'[data-counter="{key}"] dd')


def shoot(h: Harness, page, name: str, *, full_page: bool = False) -> None:
    h.screenshot(page, os.path.join(SHOTS, f"{name}.png"), full_page=full_page)


def sign_in_with_the_keyboard(h: Harness, page) -> None:
    """Tab to the email field, type, Tab to the password, type, Enter."""
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id") == "signin-email":
            break
    check(page.evaluate("() => document.activeElement.id") == "signin-email",
          "the email field is not reachable with Tab")
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    check(page.evaluate("() => document.activeElement.id") == "signin-password",
          "Tab from email does not reach the password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def test(h: Harness) -> None:
    try:
        flow(h)
    except BaseException:
        for i, page in enumerate(h.context.pages):
            try:
                shoot(h, page, f"failure-{i}", full_page=True)
                log(f"page {i} at {page.url}: {(page.text_content('main') or '')[:1500]!r}")
            except Exception:  # noqa: BLE001 - best effort while failing
                pass
        raise


def flow(h: Harness) -> None:
    check(EMAIL and PASSWORD and CONTROL and EXTRA_FEED, "the test's environment is missing")
    page = h.new_page(DESKTOP)
    loads = []
    page.on("load", lambda _: loads.append(time.time()))
    renewals = []
    page.on("request", lambda r: renewals.append(time.time()) if r.url.endswith("/v1/auth/refresh") else None)

    # -- sign in: labelled fields, inline errors ---------------------------------------------
    response = h.goto(page, "/console")
    csp = response.headers.get("content-security-policy", "")
    check("script-src 'self'" in csp and "default-src 'none'" in csp, f"CSP: {csp!r}")
    page.get_by_role("heading", name="Sign in to the newsroom").wait_for()
    h.axe(page, "sign in")
    shoot(h, page, "1-sign-in")
    page.get_by_role("button", name="Sign in").click()
    check(page.get_by_text("Enter your email address.").is_visible(), "no inline error for an empty email")
    check(page.get_by_label("Email").get_attribute("aria-invalid") == "true", "email not marked invalid")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not the password")
    h.allow_error("status of 401")  # the wrong password's answer, logged by Chromium
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("That email and password do not match an account.").wait_for()
    h.axe(page, "sign in with an error")
    h.goto(page, "/console")
    page.get_by_role("heading", name="Sign in to the newsroom").wait_for()
    sign_in_with_the_keyboard(h, page)

    # -- stories: the demo's, live, with marks --------------------------------------------------
    page.locator("#stories-list li", has_text="Geneva").wait_for(timeout=15_000)
    tokens = page.evaluate("() => ({local: Object.keys(localStorage), session: sessionStorage.getItem('herald.console.refresh')})")
    check(tokens["local"] == [], f"localStorage holds {tokens['local']}")
    check(tokens["session"], "no refresh token kept for this tab")
    check(page.locator(".badge.breaking").count() >= 1, "no story is marked breaking")
    check(page.locator(".badge.alerted").count() >= 1, "no story is marked alerted")
    check(page.locator(".badge.near").count() >= 1, "no story is marked near breaking")
    h.axe(page, "stories")
    shoot(h, page, "2-stories")

    page.get_by_label("Topic").select_option("business")
    h.wait_for(page, lambda: page.locator("#stories-list li", has_text="Geneva").count() == 0
               or page.locator("#stories-list li").count() < 5, "the business filter")
    check(all("Business" in t for t in page.locator("#stories-list li .meta").all_text_contents()),
          "a story outside business under the business filter")
    page.get_by_label("Topic").select_option("")
    page.get_by_label("Search headlines").fill("geneva")
    page.get_by_role("button", name="Search").click()
    h.wait_for(page, lambda: 0 < page.locator("#stories-list li").count() < 3 and all(
        "geneva" in t.lower() for t in page.locator("#stories-list li h2").all_text_contents()),
        "only the Geneva story for 'geneva'")
    page.get_by_label("Search headlines").fill("")
    page.get_by_role("button", name="Search").click()
    h.wait_for(page, lambda: page.locator("#stories-list li").count() > 1, "every story again")

    # An alert can start from one publisher's article as well as from the story.
    geneva = page.locator("#stories-list li", has_text="Geneva").first
    geneva.get_by_role("button", name="Articles").click()
    check(geneva.get_by_role("button", name="Articles").get_attribute("aria-expanded") == "true",
          "the articles toggle does not say it is open")
    geneva.get_by_role("link", name="Send alert about this article").first.click()
    page.get_by_role("heading", name="Send an alert").wait_for()
    h.wait_for(page, lambda: text(page, "#compose-about").startswith("About the article"), "an article's composer")
    h.wait_for(page, lambda: page.get_by_label("Title", exact=True).input_value(), "the article's title prefilled")
    page.get_by_role("link", name="Back to stories").click()
    page.locator("#stories-list li").first.wait_for()

    # A reload keeps the session (the refresh token of this tab renews it).
    page.reload()
    page.locator("#stories-list li", has_text="Geneva").wait_for(timeout=15_000)
    renewed = page.evaluate("() => sessionStorage.getItem('herald.console.refresh')")
    check(renewed and renewed != tokens["session"], "the session did not renew on reload")
    loads.clear()

    # -- sources: add a feed; it is fetched -----------------------------------------------------
    page.get_by_role("link", name="Sources").click()
    page.get_by_role("heading", name="Sources").wait_for()
    page.locator("#sources-list li").first.wait_for()
    page.get_by_text("Add a feed").click()
    page.get_by_label("Publisher name").fill("Test Gazette")
    page.get_by_label("Feed URL (RSS or Atom)").fill(EXTRA_FEED)
    page.locator("#source-topic-boxes").get_by_label("World").check()
    page.get_by_role("button", name="Add feed").click()
    page.locator("#sources-list li", has_text="Test Gazette").wait_for()

    # -- its story appears on the stories screen without a reload ---------------------------
    page.get_by_role("link", name="Stories").click()
    card = page.locator("#stories-list li", has_text=EXTRA_HEADLINE)
    card.wait_for(timeout=30_000)
    seen = time.time()
    check(not loads, f"the page reloaded {len(loads)} time(s)")
    check("fresh" in (card.get_attribute("class") or ""), "the new story is not marked new")
    first_seen = card.locator("time").first.get_attribute("datetime")
    stored = page.evaluate("(iso) => Date.parse(iso) / 1000", first_seen)
    log(f"new story shown {seen - stored:.2f}s after it was stored (stories poll every "
        f"{page.evaluate('() => document.body.dataset.storiesPollMs')} ms with If-None-Match)")

    # -- the added feed's health; pause, resume, edit its topics --------------------------------
    page.get_by_role("link", name="Sources").click()
    gazette = page.locator("#sources-list li", has_text="Test Gazette")
    gazette.wait_for()
    h.wait_for(page, lambda: "HTTP 200" in (gazette.text_content() or ""), "the added feed fetched", 30)
    gazette.get_by_role("button", name="Pause Test Gazette").click()
    h.wait_for(page, lambda: gazette.locator(".badge.paused").count() == 1, "the paused mark")
    gazette.get_by_role("button", name="Resume Test Gazette").click()
    h.wait_for(page, lambda: gazette.locator(".badge.paused").count() == 0, "resumed")
    gazette.get_by_role("button", name="Edit topics").click()
    gazette.get_by_label("Business").check()
    gazette.get_by_role("button", name="Save topics").click()
    h.wait_for(page, lambda: "World, Business" in (gazette.locator(".meta").text_content() or "")
               or "Business, World" in (gazette.locator(".meta").text_content() or ""), "topics saved")
    h.axe(page, "sources")
    page.evaluate("() => window.scrollTo(0, 0)")
    shoot(h, page, "6-sources")
    page.get_by_role("link", name="Stories").click()
    card = page.locator("#stories-list li", has_text=EXTRA_HEADLINE)
    card.wait_for()

    # -- compose from it: prefilled, previews, estimate --------------------------------------------
    card.get_by_role("link", name="Send alert").click()
    page.get_by_role("heading", name="Send an alert").wait_for()
    h.wait_for(page, lambda: page.get_by_label("Title", exact=True).input_value().startswith(EXTRA_HEADLINE), "the title prefilled")
    check("northern lighthouses" in page.get_by_label("Body", exact=True).input_value(), "body not prefilled")
    check(page.locator("#compose-topic-boxes").get_by_label("World").is_checked(), "topic not prefilled")
    page.locator("#estimate-send").wait_for()
    would = AUDIENCE - QUIET
    h.wait_for(page, lambda: text(page, "#estimate-send").startswith(f"{would} "), f"estimate of {would}")
    estimate = text(page, "#estimate")
    check(f"{QUIET} skipped for quiet hours" in estimate, f"estimate: {estimate}")
    for platform in LIMITS:
        check(text(page, f"#preview-{platform}-title"), f"no {platform} preview")
    # A long title is cut where each platform cuts it.
    page.get_by_label("Title", exact=True).fill(LONG_TITLE)
    for platform, (title_limit, _) in LIMITS.items():
        shown = text(page, f"#preview-{platform}-title")
        check(shown.endswith("…") and len(shown) <= title_limit, f"{platform} title preview: {shown!r}")
    page.get_by_label("Title", exact=True).fill(EXTRA_HEADLINE + " through the winter storms")
    page.get_by_label("Urgency").select_option("high")
    h.wait_for(page, lambda: text(page, "#estimate-send").startswith(f"{AUDIENCE} "),
               "high urgency passes quiet hours in the estimate")
    page.get_by_label("Urgency").select_option("normal")
    h.wait_for(page, lambda: text(page, "#estimate-send").startswith(f"{would} "), "normal urgency again")
    h.axe(page, "compose")
    shoot(h, page, "3-compose", full_page=True)

    # -- confirm, send, watch it reach done -------------------------------------------------------
    page.get_by_role("button", name="Review and send…").click()
    page.get_by_role("heading", name="Send this alert now?").wait_for()
    check(f"{would} devices" in text(page, "#confirm-summary"), "the confirmation names the audience")
    h.axe(page, "confirm")
    shoot(h, page, "4-confirm", full_page=True)
    page.get_by_role("button", name="Send now").click()
    page.get_by_role("heading", name="Alert", exact=True).wait_for()
    sent_at = time.time()
    h.wait_for(page, lambda: text(page, "#alert-state") == "done", "the alert done", 30)
    log(f"alert to {would} devices done in the console {time.time() - sent_at:.1f}s after Send")
    check(counter(page, "sent") == str(would), f"sent {counter(page, 'sent')}")
    check(counter(page, "quiet") == str(QUIET), f"quiet {counter(page, 'quiet')}")
    check(counter(page, "targeted") == str(AUDIENCE), f"targeted {counter(page, 'targeted')}")
    check(counter(page, "ninety") not in ("", "—"), "no time to 90 %")
    log(f"progress: rate {counter(page, 'rate')}, time to 90 % {counter(page, 'ninety')}")
    alert_id = page.evaluate("() => location.hash.split('/')[1]")
    check(not page.get_by_role("button", name="Cancel sending").is_visible(), "cancel offered when done")
    # Readers open it; the chart follows.
    # Readers open it over a few seconds, so the chart has a shape.
    for readers in (3, 7, 10):
        control(f"/open/{alert_id}/{readers}")
        time.sleep(1.5)
    h.wait_for(page, lambda: text(page, "#opens-summary").startswith("10 opened"), "10 opens on the chart", 15)
    check(page.locator("#opens-chart svg path.opens").count() == 1, "no opens line")
    h.wait_for(page, lambda: page.locator("#analytics-table tbody tr").count() >= 2, "the reach table", 15)
    h.axe(page, "alert done")
    shoot(h, page, "5-alert", full_page=True)

    # -- a correction, in place ---------------------------------------------------------------
    page.locator("#alert-update summary").click()
    page.locator("#update-body").fill("Correction: the talks resume on Monday")
    page.get_by_role("button", name="Update the alert").click()
    versions = page.locator("#alert-versions li")
    h.wait_for(page, lambda: versions.count() == 2 and f"replaced on {would}" in (versions.nth(1).text_content() or ""),
               "the update replaced on every phone", 30)
    check("Correction: the talks resume on Monday" in (versions.nth(1).text_content() or ""), "the update's text")
    check("quietly" in (versions.nth(1).text_content() or ""), "a correction goes quietly")
    h.axe(page, "alert updated")
    shoot(h, page, "5b-alert-updated", full_page=True)

    # -- cancel while sending ---------------------------------------------------------------
    control("/latency/500")
    page.get_by_role("link", name="Stories").click()
    port = page.locator("#stories-list li", has_text="Port strike")
    port.get_by_role("link", name="Send alert").click()
    page.get_by_role("heading", name="Send an alert").wait_for()
    page.locator("#compose-topic-boxes").get_by_label("World").check()
    h.wait_for(page, lambda: text(page, "#estimate-send").startswith(f"{would} "), "estimate for the second alert", 20)
    page.get_by_role("button", name="Review and send…").click()
    page.get_by_role("button", name="Send now").click()
    cancel = page.get_by_role("button", name="Cancel sending")
    cancel.wait_for(timeout=20_000)
    h.wait_for(page, lambda: counter(page, "sent") not in ("", "0"), "the first deliveries", 20)
    cancel.click()
    h.wait_for(page, lambda: text(page, "#alert-state") == "cancelled", "cancelled", 15)
    control("/latency/0")
    sent_before_cancel = int(counter(page, "sent").replace(",", ""))
    check(sent_before_cancel < would, f"all {sent_before_cancel} sent before the cancel")
    log(f"cancelled with {sent_before_cancel} of {would} sent")
    # A reload of the alert's address shows it as it is now.
    page.reload()
    h.wait_for(page, lambda: text(page, "#alert-state") == "cancelled" and text(page, "#alert-title"),
               "the cancelled alert after a reload", 15)

    # -- history -----------------------------------------------------------------------------
    page.get_by_role("link", name="History").click()
    rows = page.locator("#history-table tbody tr")
    h.wait_for(page, lambda: rows.count() >= 2, "two alerts in the history")
    first_row = rows.nth(0).text_content() or ""
    second_row = rows.nth(1).text_content() or ""
    check(EMAIL in first_row and "cancelled" in first_row, f"history row: {first_row}")
    check(EMAIL in second_row and "done" in second_row and f"{would}" in second_row and "10 (" in second_row,
          f"history row: {second_row}")
    check(page.locator("#history-table tbody tr", has_text="automatic").count() >= 1,
          "the demo's automatic alerts are not in the history")
    h.axe(page, "history")
    shoot(h, page, "7-history")

    # -- a phone-sized window ------------------------------------------------------------------
    page.set_viewport_size(PHONE)
    for view, name in (("stories", "stories"), ("compose", "compose"), ("history", "history"), ("sources", "sources")):
        if view == "compose":
            page.get_by_role("link", name="Stories").click()
            page.locator("#stories-list li").first.get_by_role("link", name="Send alert").click()
            page.get_by_role("heading", name="Send an alert").wait_for()
        else:
            page.get_by_role("link", name=view.capitalize()).click()
            page.locator(f"#{view}-view").wait_for()
            page.wait_for_timeout(300)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        check(overflow <= 0, f"{name} is {overflow}px wider than a phone")
        h.axe(page, f"{name} on a phone")
    page.get_by_role("link", name="Stories").click()
    page.locator("#stories-list li").first.wait_for()
    shoot(h, page, "8-phone-stories")
    page.set_viewport_size(DESKTOP)

    # -- the session renewed itself (access tokens last 15 s in this test) -----------------------
    check(len(renewals) >= 2, f"{len(renewals)} renewals: the session did not renew itself")
    log(f"session renewed {len(renewals)} times (once on reload, the rest by its timer)")

    # -- sign out revokes the session ----------------------------------------------------------
    refresh = page.evaluate("() => sessionStorage.getItem('herald.console.refresh')")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to the newsroom").wait_for()
    check(page.evaluate("() => sessionStorage.getItem('herald.console.refresh')") is None,
          "the refresh token outlived signing out")
    request = urllib.request.Request(
        h.url("/v1/auth/refresh"), method="POST",
        data=json.dumps({"refresh_token": refresh}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=10)
        check(False, "the signed-out refresh token still works")
    except urllib.error.HTTPError as err:
        check(err.code == 401, f"refresh after sign out: {err.code}")
    log(f"screenshots in {SHOTS}")


if __name__ == "__main__":
    run(test)
