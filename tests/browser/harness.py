"""Shared harness for Herald's browser tests (reader and console).

Drives Debian's Chromium (/usr/bin/chromium) through Playwright; no browser is downloaded.
Every page opened through a `Harness`:

- records console errors and uncaught page errors,
- blocks (and records) every request to an origin other than the app's,
- can be checked with axe-core, failing on serious or critical violations,
- can be screenshotted.

Scripts are run by the Rust integration tests (tests/src/browser.rs), which pass the app's
address in `HERALD_BASE_URL`; a script exits 0 when every check passed. Typical use:

    from harness import Harness, run

    def test(h: Harness):
        page = h.new_page()
        h.goto(page, "/")
        h.axe(page, "front page")

    run(test)

Install what it needs with `bash tests/browser/setup.sh`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any, Callable
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A phone-sized window (a common Android phone's CSS pixels).
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

SETUP_HINT = "run `bash tests/browser/setup.sh` to install Chromium and Playwright"


class CheckFailed(AssertionError):
    """A check of the page failed."""


def check(condition: Any, message: str) -> None:
    """Fails the script with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def log(message: str) -> None:
    print(f"[browser] {message}", flush=True)


def base_url() -> str:
    """The app's address: `HERALD_BASE_URL`, else the first argument."""
    url = os.environ.get("HERALD_BASE_URL") or (sys.argv[1] if len(sys.argv) > 1 else "")
    if not url:
        raise SystemExit("HERALD_BASE_URL (or the first argument) must name the app, e.g. http://127.0.0.1:8080")
    return url.rstrip("/")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Harness:
    """One Chromium with a fresh profile; pages and contexts opened through it are watched."""

    def __init__(self, url: str | None = None, *, headless: bool = True,
                 timezone_id: str | None = None, locale: str | None = None,
                 javascript: bool = True):
        self.base_url = (url or base_url()).rstrip("/")
        self.origin = origin_of(self.base_url)
        self.headless = headless
        # The browser's time zone and locale (Chromium's own when None).
        self.timezone_id = timezone_id
        self.locale = locale
        # False: pages run no script at all (to check they read without it).
        self.javascript = javascript
        # Console errors and page errors: [(where, text)].
        self.errors: list[tuple[str, str]] = []
        # Requests to other origins, blocked: [url].
        self.foreign_requests: list[str] = []
        # Console messages of every level, for debugging a failure.
        self.console: list[str] = []
        # Substrings of console errors that are expected (e.g. a deliberate 401).
        self.allowed_errors: list[str] = []
        self._profile: str | None = None
        self._others: list = []
        self._playwright = None
        self.browser = None
        self.context = None

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> "Harness":
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as err:  # pragma: no cover - depends on the machine
            raise SystemExit(f"playwright is not installed ({err}); {SETUP_HINT}")
        if not os.path.exists(CHROMIUM):
            raise SystemExit(f"{CHROMIUM} is missing; {SETUP_HINT}")
        self._playwright = sync_playwright().start()
        self._profile = tempfile.mkdtemp(prefix="herald-chromium-")
        self.context = self._launch(self._profile, self.javascript)
        self.browser = self.context.browser
        return self

    def _launch(self, profile: str, javascript: bool):
        args = list(CHROMIUM_ARGS)
        if not self.headless:
            args.remove("--headless")
        # A persistent context: service workers, IndexedDB and permissions behave as in a
        # real profile, and the profile directory is fresh for every run.
        context = self._playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=self.headless,
            args=args,
            base_url=self.base_url,
            viewport=PHONE,
            service_workers="allow" if javascript else "block",
            java_script_enabled=javascript,
            **({"timezone_id": self.timezone_id} if self.timezone_id else {}),
            **({"locale": self.locale} if self.locale else {}),
        )
        context.route("**/*", self._route)
        context.on("page", self._watch)
        for page in context.pages:
            self._watch(page)
        return context

    def other_browser(self, *, javascript: bool = True):
        """A second Chromium with its own fresh profile, watched like the first (errors,
        foreign requests), e.g. with scripts off; closed with the harness."""
        profile = tempfile.mkdtemp(prefix="herald-chromium-")
        context = self._launch(profile, javascript)
        self._others.append((context, profile))
        return context

    def __exit__(self, *exc) -> None:
        try:
            for context, profile in self._others:
                context.close()
                shutil.rmtree(profile, ignore_errors=True)
            if self.context is not None:
                self.context.close()
        finally:
            if self._playwright is not None:
                self._playwright.stop()
            if self._profile:
                shutil.rmtree(self._profile, ignore_errors=True)

    # -- watching ---------------------------------------------------------------------------

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:", "about:")) or origin_of(url) == self.origin:
            route.continue_()
        else:
            self.foreign_requests.append(url)
            route.abort()

    def _watch(self, page) -> None:
        def on_console(msg) -> None:
            text = f"{msg.type}: {msg.text}"
            self.console.append(text)
            if msg.type == "error" and not any(a in msg.text for a in self.allowed_errors):
                self.errors.append((page.url, f"console error: {msg.text}"))

        page.on("console", on_console)
        page.on("pageerror", lambda err: self.errors.append((page.url, f"page error: {err}")))

    # -- pages ------------------------------------------------------------------------------

    def new_page(self, viewport: dict | None = None):
        """A new tab in the shared context, watched; `viewport` defaults to a phone."""
        page = self.context.new_page()
        if viewport:
            page.set_viewport_size(viewport)
        return page

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, page, path: str, *, status: int = 200):
        """Opens `path` and checks the response's status."""
        response = page.goto(self.url(path), wait_until="load")
        check(response is not None, f"no response for {path}")
        check(response.status == status, f"{path}: status {response.status}, expected {status}")
        return response

    def axe(self, page, name: str, *, impacts=("serious", "critical")) -> list[dict]:
        """Runs axe-core on the page; fails on any violation of the given impacts."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(page)
        violations = results.response.get("violations", [])
        bad = [v for v in violations if v.get("impact") in impacts]
        for v in violations:
            targets = [", ".join(n["target"]) for n in v.get("nodes", [])][:5]
            log(f"axe {name}: {v['id']} ({v.get('impact')}): {v.get('help')} at {targets}")
        check(not bad, f"axe-core: {len(bad)} serious/critical violation(s) on {name}: "
              + "; ".join(f"{v['id']} ({v['impact']})" for v in bad))
        log(f"axe {name}: no serious or critical violation")
        return violations

    def screenshot(self, page, path: str, *, full_page: bool = False) -> str:
        """Saves a PNG of the page at `path` (directories created)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        page.screenshot(path=path, full_page=full_page)
        log(f"screenshot {path}")
        return path

    def allow_error(self, substring: str) -> None:
        """Console errors containing `substring` are expected and not counted."""
        self.allowed_errors.append(substring)

    def assert_clean(self) -> None:
        """Fails if any page logged an error or asked for another origin."""
        check(not self.errors, "errors in the browser:\n" + "\n".join(f"  {u}: {e}" for u, e in self.errors))
        check(not self.foreign_requests,
              "requests to other origins (blocked):\n" + "\n".join(f"  {u}" for u in self.foreign_requests))

    # -- service workers and push -----------------------------------------------------------

    def service_worker(self, timeout_ms: int = 10_000):
        """The context's (first) service worker, waiting for one to start."""
        if self.context.service_workers:
            return self.context.service_workers[0]
        return self.context.wait_for_event("serviceworker", timeout=timeout_ms)

    def grant_notifications(self) -> None:
        """Grants the app's origin the notification permission (as a user clicking Allow)."""
        self.context.grant_permissions(["notifications"], origin=self.origin)

    def deliver_push(self, page, payload: Any, timeout_s: float = 10.0) -> None:
        """Delivers a push message to the origin's service worker through the DevTools
        protocol (`ServiceWorker.deliverPushMessage`): no push service involved.

        `payload` is sent as JSON unless it is already a string.
        """
        cdp = self.context.new_cdp_session(page)
        registrations: dict[str, str] = {}
        cdp.on("ServiceWorker.workerRegistrationUpdated",
               lambda e: [registrations.__setitem__(r["registrationId"], r["scopeURL"])
                          for r in e["registrations"] if not r.get("isDeleted")])
        cdp.send("ServiceWorker.enable")
        deadline = time.time() + timeout_s
        while not registrations and time.time() < deadline:
            page.wait_for_timeout(50)
        check(registrations, "no service worker registration for push delivery")
        wanted = self.origin + "/"
        registration_id = next((rid for rid, scope in registrations.items() if scope == wanted),
                               next(iter(registrations)))
        data = payload if isinstance(payload, str) else json.dumps(payload)
        cdp.send("ServiceWorker.deliverPushMessage",
                 {"origin": self.origin, "registrationId": registration_id, "data": data})
        cdp.detach()

    def notifications(self, page) -> list[dict]:
        """The notifications the service worker's registration shows now."""
        return page.evaluate("""async () => {
            const reg = await navigator.serviceWorker.ready;
            const shown = await reg.getNotifications();
            return shown.map(n => ({title: n.title, body: n.body, tag: n.tag, icon: n.icon,
                                   data: n.data}));
        }""")

    def wait_js(self, page, script: str, arg: Any = None, what: str | None = None,
                timeout_s: float = 10.0):
        """Polls the function `script` (e.g. "() => navigator.serviceWorker.controller") in
        the page until it returns something truthy. Use it instead of `page.wait_for_function`,
        which evaluates strings and so cannot run under a CSP without 'unsafe-eval'."""
        return self.wait_for(page, lambda: page.evaluate(script, arg), what or script, timeout_s)

    def wait_for(self, page, probe: Callable[[], Any], what: str, timeout_s: float = 10.0):
        """Polls `probe` until it returns something truthy; fails naming `what`."""
        deadline = time.time() + timeout_s
        last = None
        while time.time() < deadline:
            last = probe()
            if last:
                return last
            page.wait_for_timeout(100)
        raise CheckFailed(f"timed out waiting for {what} (last: {last!r})")


def run(test: Callable[[Harness], None], *, url: str | None = None, **options) -> None:
    """Runs `test` with a fresh harness (`options` go to `Harness`, e.g. `timezone_id`),
    checks the browser stayed clean, prints PASS or the failure, and exits 0 or 1."""
    started = time.time()
    try:
        with Harness(url, **options) as h:
            try:
                test(h)
                h.assert_clean()
            except BaseException:
                if h.console:
                    log("console messages:\n  " + "\n  ".join(h.console[-50:]))
                raise
    except CheckFailed as err:
        log(f"FAIL: {err}")
        traceback.print_exc()
        sys.exit(1)
    except SystemExit:
        raise
    except Exception:
        log("FAIL: unexpected error")
        traceback.print_exc()
        sys.exit(1)
    log(f"PASS in {time.time() - started:.1f}s")
    sys.exit(0)
