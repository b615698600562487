"""The web UI in headless Chromium against the whole marketplace.

`souk up` (SOUK_BIN) on free ports (FREEPORT) with --web-dir <repo>/web
(SOUK_WEB_DIR) in a temporary data dir; Chromium (tests/services/cdp.py) drives the page
through souk-gateway like a user:

- purchase: the admin signs in and creates a catalog through the UI (and
  deactivates another); a new user registers (a too-short password first:
  the field error shows next to the field), filters the catalogs, opens the
  catalog, books a chosen ticket, sees the hold's countdown, pays with
  4242 4242 4242 4242 and sees CONFIRMED; then the email in "My
  notifications"; a declined card (4000 0000 0000 0002) -> FAILED; a
  booking cancelled from "My bookings"; an expired access token is
  refreshed; every page fits 375 px wide and every form field has a label.
- expiry: a second `souk up --hold-seconds 3`; a booking not paid -> the
  page shows EXPIRED by itself.

Fails on any console error, uncaught exception, failed load or answer with
status >= 500.  Screenshots (PNG) go to the test's temp dir and are copied
to SOUK_ARTIFACTS (meson-logs/webui).
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

# tests/services/cdp.py (meson puts tests/services on PYTHONPATH; this for a run by hand)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "services"))
import cdp  # noqa: E402

START_TIMEOUT = 120.0
PORT_FLAGS = ("kafka", "kv", "auth", "user", "catalog", "booking", "payment",
              "notification", "analytics", "gateway")
PASSWORD = "pw-webui-12345"
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

TMP = tempfile.mkdtemp(prefix="souk-webui-test-")
ARTIFACTS = os.path.join(TMP, "screenshots")
os.makedirs(ARTIFACTS, exist_ok=True)


def souk_bin():
    b = os.environ.get("SOUK_BIN")
    if not b:
        raise AssertionError("SOUK_BIN is not set (run through meson test)")
    return b


def web_dir():
    return os.environ.get("SOUK_WEB_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "web")


def free_ports(n):
    fp = os.environ.get("FREEPORT")
    if not fp:
        raise AssertionError("FREEPORT is not set (run through meson test)")
    return [int(x) for x in subprocess.check_output([fp, str(n)]).split()]


def wait_until(fn, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))
        time.sleep(interval)


def http(url, method="GET", body=None, token=None):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


class Up:
    """`souk up` in the foreground on free ports; output collected."""

    def __init__(self, name, extra=()):
        self.data_dir = os.path.join(TMP, name)
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
        args = ["up", "--data-dir", self.data_dir, "--web-dir", web_dir(), "--log-level", "info"]
        for n, p in self.ports.items():
            args += ["--%s-port" % n, str(p)]
        self.cmd = [souk_bin()] + args + list(extra)
        self.lines = []
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("souk up exited with %s:\n%s" % (self.proc.returncode, self.tail()))
            return any(l.startswith("souk is up") for l in self.lines)
        wait_until(up, START_TIMEOUT, "souk up")
        creds = dict(l.split("=", 1) for l in open(os.path.join(self.data_dir, "admin-credentials")).read().splitlines())
        self.admin = (creds["email"], creds["password"])
        return self

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def tail(self, n=80):
        return "\n".join(self.lines[-n:])

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.ports["gateway"]

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        with open(os.path.join(TMP, os.path.basename(self.data_dir) + ".log"), "w") as f:
            f.write("\n".join(self.lines))
        out = "\n".join(self.lines)
        for s in SANITIZER:
            assert s not in out, "sanitizer report in souk up's output:\n" + out[max(0, out.find(s) - 2000):][:6000]

    def api_login(self, email, password):
        status, tok = http(self.url + "/auth/login", "POST", {"email": email, "password": password})
        assert status == 200, (status, tok)
        return tok["accessToken"]


class Page:
    """The browser with the checks every view gets."""

    def __init__(self, browser, base, prefix):
        self.b = browser
        self.base = base
        self.prefix = prefix
        self.n = 0

    def go(self, hash_):
        self.b.js("location.hash = %s" % json.dumps(hash_))

    def shot(self, name):
        self.n += 1
        path = os.path.join(ARTIFACTS, "%s-%02d-%s.png" % (self.prefix, self.n, name))
        self.b.screenshot(path)
        return path

    def check_a11y(self):
        """Every form control has a label; nothing clickable is a div."""
        bad = self.b.js("""[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map((e) => e.outerHTML.slice(0, 120))""")
        assert not bad, "form fields without a label: %s" % bad
        bad = self.b.js("""[...document.querySelectorAll('div[onclick], span[onclick], [role=button]:not(button)')]
            .map((e) => e.outerHTML.slice(0, 120))""")
        assert not bad, "clickable non-buttons: %s" % bad

    def check_no_problems(self):
        errs = self.b.problems()
        assert not errs, "browser problems:\n  " + "\n  ".join(errs)

    def wait_main(self, text, timeout=20.0):
        return self.b.wait("document.querySelector('main').innerText.includes(%s)" % json.dumps(text),
                           timeout=timeout, what="%r on the page" % text)

    def status(self):
        return self.b.text("#booking-status").strip()

    def wait_status(self, want, timeout=30.0):
        self.b.wait("(document.querySelector('#booking-status') || {}).innerText === %s" % json.dumps(want),
                    timeout=timeout, what="booking status %s" % want)

    def sign_in(self, email, password):
        self.go("#/login")
        self.b.wait("!!document.querySelector('#login-form')")
        self.b.fill("#f-email", email)
        self.b.fill("#f-password", password)
        self.b.click("#login-form button[type=submit]")
        self.b.wait("!!document.querySelector('#logout') && !document.querySelector('#logout').closest('li').hidden",
                    what="signed in")

    def sign_out(self):
        self.b.click("#logout")
        self.b.wait("document.querySelector('#logout').closest('li').hidden && location.hash === '#/'",
                    what="signed out")

    def booking_id(self):
        return self.b.wait("(location.hash.match(/^#\\/bookings\\/([\\w-]+)$/) || [])[1]", what="a booking page")


def start_browser():
    work = os.path.join(TMP, "browser-%d" % len(os.listdir(TMP)))
    os.makedirs(work)
    return cdp.Browser(work).start()


def copy_artifacts():
    dest = os.environ.get("SOUK_ARTIFACTS")
    if not dest:
        return
    os.makedirs(dest, exist_ok=True)
    for f in glob.glob(os.path.join(dest, "*.png")):  # only this run's
        os.remove(f)
    for f in glob.glob(os.path.join(ARTIFACTS, "*.png")):
        shutil.copy(f, dest)
    print("screenshots: %s" % dest, flush=True)


def test_purchase():
    with Up("data-purchase") as up:
        b = start_browser()
        try:
            _purchase(up, Page(b, up.url, "purchase"))
        except BaseException:
            try:
                Page(b, up.url, "purchase").shot("failure")
            except Exception:
                pass
            print("browser console:\n  " + "\n  ".join("%s %s" % c for c in b.console[-60:]), flush=True)
            print("souk up output:\n" + up.tail(), flush=True)
            raise
        finally:
            b.stop()


def _purchase(up, p):
    b = p.b
    stamp = str(int(time.time() * 1000))[-8:]
    title = "Web UI course %s" % stamp
    b.goto(up.url + "/")
    p.wait_main("Catalogs")
    assert b.js("document.title").startswith("souk"), b.js("document.title")
    assert b.exists("a[href='/analytics/dashboard/']"), "no link to the analytics dashboard"
    p.check_a11y()

    # The admin creates a catalog through the UI, and deactivates another.
    p.sign_in(*up.admin)
    assert "ADMIN" in b.text("#whoami"), b.text("#whoami")
    p.go("#/manage")
    b.wait("!!document.querySelector('#create-form')")
    p.check_a11y()
    b.fill("#f-title", "Bad")  # too short: the catalog service says why, next to the field
    b.fill("#f-price", "25.00")
    b.fill("#f-dateOfEvent", "2031-06-01T18:00")
    b.fill("#f-numberOfTickets", "3")
    b.click("#create-form button[type=submit]")
    b.wait("document.querySelector('#f-title-err').innerText.length > 0", what="a field error for the title")
    assert b.js("document.querySelector('#f-title').getAttribute('aria-invalid')") == "true"
    assert b.text("#create-form .form-error"), "no problem title above the form"
    p.shot("catalog-field-error")
    b.fill("#f-title", title)
    b.fill("#f-description", "Through the web UI, end to end.")
    b.click("#create-form button[type=submit]")
    p.wait_main("3 of 3 tickets available")
    catalog_id = b.js("location.hash.split('/')[2]")
    assert b.exists("#deactivate"), "the admin sees no Deactivate button"
    p.go("#/manage")
    b.wait("!!document.querySelector('#create-form')")
    b.fill("#f-title", "Gone course %s" % stamp)
    b.fill("#f-price", "9.50")
    b.fill("#f-dateOfEvent", "2031-07-01T18:00")
    b.fill("#f-numberOfTickets", "1")
    b.click("#create-form button[type=submit]")
    p.wait_main("1 of 1 tickets available")
    b.click("#deactivate")  # confirm() is accepted
    b.wait("!!document.querySelector('.badge-deactivated')", what="the catalog deactivated")
    assert not b.exists("#deactivate")
    p.shot("catalog-deactivated")
    p.sign_out()

    # A new user registers: a too-short password first.
    email = "webui-%s@souk.test" % stamp
    p.go("#/register")
    b.wait("!!document.querySelector('#register-form')")
    p.check_a11y()
    b.fill("#f-email", email)
    b.fill("#f-password", "short")
    b.fill("#f-fullName", "Web User")
    b.click("#register-form button[type=submit]")
    b.wait("document.querySelector('#f-password-err').innerText.length > 0", what="a field error for the password")
    p.shot("register-field-error")
    b.fill("#f-password", PASSWORD)
    b.click("#register-form button[type=submit]")
    b.wait("document.querySelector('#whoami').innerText.includes(%s)" % json.dumps(email), what="signed in")
    assert "(USER)" in b.text("#whoami"), b.text("#whoami")
    assert b.js("!!sessionStorage.getItem('souk.session')"), "the session is not in sessionStorage"
    assert b.js("document.querySelector('[href=\"#/manage\"]').closest('li').hidden"), "a USER sees Manage"

    # Browse and filter: priceFrom above priceTo is refused next to the field;
    # then 20..30 EUR, active, soonest first.
    p.go("#/")
    b.wait("!!document.querySelector('#filters')")
    p.check_a11y()
    b.fill("#f-priceFrom", "40")
    b.fill("#f-priceTo", "30")
    b.click("#filters button[type=submit]")
    b.wait("document.querySelector('#f-priceFrom-err').innerText.length > 0", what="a priceFrom field error")
    p.shot("catalogs-filter-error")
    b.fill("#f-priceFrom", "20")
    b.fill("#f-status", "ACTIVE")
    b.click("#filters button[type=submit]")
    b.wait("location.hash.includes('priceFrom=20')")
    p.wait_main(title)
    assert "Gone course" not in b.text("#results")
    assert "3 of 3 available" in b.text("#results"), b.text("#results")
    p.shot("catalogs-filtered")
    b.click_text("#results a", title)
    b.wait("location.hash === %s" % json.dumps("#/catalogs/" + catalog_id), what="the catalog page")
    p.wait_main("Tickets")
    p.check_a11y()
    p.shot("catalog")

    # Book ticket #2, see the countdown, pay with 4242.
    b.click("button[data-ticket][aria-label='Book ticket 2']")
    booking_id = p.booking_id()
    b.wait("!!document.querySelector('#pay-form') && !document.querySelector('#pay').hidden", what="the pay form")
    p.wait_status("AWAITING_PAYMENT")
    cd = b.wait("(() => { const c = document.querySelector('#countdown'); return !c.hidden && c.innerText; })()",
                what="the countdown")
    assert cd.startswith("Hold ends in 9:") or cd.startswith("Hold ends in 10:"), cd
    assert "4000 0000 0000 0002" in b.text("#pay") and "4000 0000 0000 9995" in b.text("#pay")
    p.check_a11y()
    p.shot("booking-awaiting-payment")
    b.click("[data-card='4242 4242 4242 4242']")
    b.click("#pay-button")
    p.wait_status("CONFIRMED")
    assert b.js("document.querySelector('#pay').hidden"), "the pay form is still shown"
    assert b.js("document.querySelector('#countdown').hidden"), "the countdown is still shown"
    assert "confirmed" in b.text("#outcome").lower(), b.text("#outcome")
    b.wait("document.querySelector('#status').innerText.includes('CONFIRMED')", what="the status announced")
    p.shot("booking-confirmed")
    st, got = http(up.url + "/bookings/" + booking_id, token=up.api_login(email, PASSWORD))
    assert st == 200 and got["status"] == "CONFIRMED", (st, got)

    # The email, in "My notifications" (it polls by itself).
    p.go("#/notifications")
    p.wait_main("booking.confirmed", timeout=40)
    assert title in b.text("#mails"), b.text("#mails")
    p.shot("notifications")

    # A declined card: the booking fails.
    p.go("#/catalogs/" + catalog_id)
    b.wait("!!document.querySelector('#book-any')")
    b.click("#book-any")
    declined_id = p.booking_id()
    b.wait("!document.querySelector('#pay').hidden", what="the pay form")
    b.click("[data-card='4000 0000 0000 0002']")
    assert b.js("document.querySelector('#f-card').value") == "4000 0000 0000 0002"
    b.click("#pay-button")
    p.wait_status("FAILED")
    p.shot("booking-declined")

    # Cancel from "My bookings".
    p.go("#/catalogs/" + catalog_id)
    b.wait("!!document.querySelector('#book-any')")
    b.click("#book-any")
    cancel_id = p.booking_id()
    p.wait_status("AWAITING_PAYMENT")
    p.go("#/bookings")
    b.wait("!!document.querySelector('[data-cancel=\"%s\"]')" % cancel_id, what="a Cancel button")
    b.click("[data-cancel='%s']" % cancel_id)
    b.wait("!document.querySelector('[data-cancel=\"%s\"]') && document.querySelector('main').innerText.includes('CANCELLED')"
           % cancel_id, what="the booking cancelled")
    text = b.text("main")
    assert text.count("CONFIRMED") >= 1 and "FAILED" in text, text
    assert b.exists("[data-cancel='%s']" % booking_id), "no Cancel for the CONFIRMED booking"
    assert not b.exists("[data-cancel='%s']" % declined_id), "Cancel offered for a FAILED booking"
    p.shot("my-bookings")

    # An access token that no longer works is refreshed with the refresh token.
    b.js("""(() => { const s = JSON.parse(sessionStorage.getItem('souk.session'));
        s.access = s.access.slice(0, -8) + 'AAAAAAAA';
        sessionStorage.setItem('souk.session', JSON.stringify(s)); })()""")
    old = b.js("JSON.parse(sessionStorage.getItem('souk.session')).access")
    b.goto(up.url + "/?reload=1#/bookings")  # a new document: the session comes from sessionStorage
    p.wait_main("My bookings")
    b.wait("!!document.querySelector('[data-cancel=\"%s\"]')" % booking_id, what="the bookings after a refresh")
    new = b.js("JSON.parse(sessionStorage.getItem('souk.session')).access")
    assert new and new != old, "the access token was not refreshed"
    assert any(s == 401 and "/bookings/my" in u for s, u, _ in b.responses), "no 401 was seen"

    # 375 px wide: nothing scrolls sideways.
    b.viewport(375, 812, mobile=True)
    for name, hash_, ready in (("catalogs", "#/", "#results .card"),
                               ("catalog", "#/catalogs/" + catalog_id, "table.tickets"),
                               ("booking", "#/bookings/" + booking_id, "#booking-status .badge"),
                               ("notifications", "#/notifications", "#mails .card"),
                               ("register", "#/register", "#register-form")):
        if hash_ == "#/register":
            p.sign_out()
        p.go(hash_)
        b.wait("!!document.querySelector(%s)" % json.dumps(ready), what=ready)
        w = b.js("document.documentElement.scrollWidth")
        assert w <= 375, "%s is %s px wide at 375 px" % (hash_, w)
        p.shot("mobile-" + name)
    b.viewport(1280, 900)

    # Keyboard: on a fresh page the first Tab reaches the skip link, with a visible focus ring.
    b.goto(up.url + "/")
    p.wait_main("Catalogs")
    for t in ("keyDown", "keyUp"):
        b.call("Input.dispatchKeyEvent", {"type": t, "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9})
    b.wait("document.activeElement && document.activeElement.classList.contains('skip')", what="the skip link focused")
    assert b.js("getComputedStyle(document.activeElement).outlineStyle") != "none", "no visible focus"
    p.check_no_problems()


def test_expiry():
    with Up("data-expiry", extra=["--hold-seconds", "3"]) as up:
        st, _ = http(up.url + "/auth/register", "POST",
                     {"email": "expiry@souk.test", "password": PASSWORD, "fullName": "Ex Piry"})
        assert st == 201, st
        st, cat = http(up.url + "/catalogs", "POST",
                       {"title": "Short hold course", "price": 1500, "currency": "EUR",
                        "dateOfEvent": "2031-06-01T18:00:00Z", "numberOfTickets": 2},
                       token=up.api_login(*up.admin))
        assert st == 201, (st, cat)
        b = start_browser()
        p = Page(b, up.url, "expiry")
        try:
            b.goto(up.url + "/#/catalogs/" + cat["catalogId"])
            p.wait_main("Sign in to book")
            b.click("#signin-to-book")
            b.wait("!!document.querySelector('#login-form')")
            b.fill("#f-email", "expiry@souk.test")
            b.fill("#f-password", PASSWORD)
            b.click("#login-form button[type=submit]")
            # back on the catalog after signing in
            b.wait("!!document.querySelector('#book-any')", what="the catalog after signing in")
            b.click("#book-any")
            p.booking_id()
            p.wait_status("EXPIRED", timeout=30)
            assert b.js("document.querySelector('#pay').hidden"), "the pay form is still shown"
            assert "expired" in b.text("#outcome").lower(), b.text("#outcome")
            p.shot("booking-expired")
            # the ticket is released shortly after: a fresh look shows it available again
            def released():  # a new document each time (a query that changes)
                b.goto("%s/?t=%d#/catalogs/%s" % (up.url, time.monotonic_ns(), cat["catalogId"]))
                p.wait_main("Tickets")
                return "2 of 2 tickets available" in b.text("main")
            wait_until(released, 20, "the ticket released", interval=0.5)
            p.check_no_problems()
        except BaseException:
            try:
                p.shot("failure")
            except Exception:
                pass
            print("browser console:\n  " + "\n  ".join("%s %s" % c for c in b.console[-60:]), flush=True)
            print("souk up output:\n" + up.tail(), flush=True)
            raise
        finally:
            b.stop()


def main():
    if not cdp.find_chromium():
        print("SKIP: chromium is not installed (apt-get install chromium)")
        return 77
    only = sys.argv[1:]
    failures = []
    for name, fn in [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]:
        if only and name not in only and name[5:] not in only:
            continue
        t0 = time.monotonic()
        try:
            fn()
            print("PASS %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
        except Exception:
            import traceback
            traceback.print_exc()
            print("FAIL %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
            failures.append(name)
    copy_artifacts()
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        if os.environ.get("SOUK_KEEP_TMP") != "1":
            shutil.rmtree(TMP, ignore_errors=True)
        else:
            print("kept", TMP)
    sys.exit(rc)
