"""souk-analytics end to end: the real broker and every service of the saga
(auth, user, catalog, booking, payment with --auto-pay and a decline share,
notification) plus analytics.

  mixed run     bookings confirmed, declined (FAILED), unavailable (FAILED),
                cancelled after payment (refunded); then consistency is ok and
                /analytics/stats equals the counts the booking API reports
  timeline      one booking's events in saga order across booking, catalog,
                payment and notification, with the time between steps
  search        an event found by a user's email, a log line by a word
  souk check    exit 0 while everything holds
  dashboard     headless Chromium signs in, shows charts with data, no
                console errors; a screenshot is saved as an artifact
  rebuild       analytics from scratch (new data dir, new group) rebuilds the
                same statistics from the log
  violations    a forged payment.1 for an unknown booking, a second
                ticket.sell for a sold ticket and a second notification.sent
                about a confirmed booking (kcat) -> exactly those three
                violations, naming their correlation ids; souk check exits 1

Environment (tests/analytics/meson.build): the SOUK_*_BIN of the services,
SOUK_BIN (souk), SOUK_DASHBOARD_DIR (web/dashboard), CHROMIUM (may be
empty: the dashboard test then fails with a clear message),
SOUK_ARTIFACT_DIR (where the screenshot goes).
"""

import collections
import os
import subprocess
import time
import uuid

import cdp  # tests/services/cdp.py, on PYTHONPATH like souktest
import souktest
from souktest import envelope, wait_until

WEB = os.environ.get("SOUK_DASHBOARD_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "web", "dashboard")
FUTURE = "2031-06-01T18:00:00Z"
TERMINAL = ("CONFIRMED", "FAILED", "EXPIRED", "CANCELLED")
PRICE = 2500


class AnalyticsCluster(souktest.Cluster):
    """analytics' --auth-url must name this cluster's auth port, known only
    once the ports are chosen."""

    def _cmd(self, name):
        cmd = super()._cmd(name)
        if name == "analytics" and "auth" in self.procs:
            cmd += ["--auth-url", "127.0.0.1:%d" % self.port("auth")]
        return cmd


souktest.Cluster = AnalyticsCluster

CLUSTER = dict(
    services=("auth", "user", "catalog", "booking", "payment", "notification", "analytics"),
    extra_args={
        "payment": ["--auto-pay", "--auto-pay-decline-percent", "30"],
        "analytics": ["--web-dir", WEB, "--grace-seconds", "3"],
    },
)

# What the mixed run did, for the later tests.
RUN = {}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def api(c, path, token=None):
    r = c.http("analytics", "GET", path, token=token or c.admin_token(), timeout=30)
    assert r.status == 200, r
    return r.json


def new_catalog(c, admin, tickets):
    return c.new_catalog(admin, tickets=tickets, price=PRICE, description="analytics test", date=FUTURE)


def book(c, token, body):
    """POST /bookings, retried while booking's projection has not seen the
    catalog yet (404)."""
    box = {}

    def f():
        r = c.http("booking", "POST", "/bookings", body, token=token)
        box["r"] = r
        return r.status == 202

    wait_until(f, 30, "POST /bookings %s" % (body,), 0.5)
    return box["r"].json["bookingId"]


def booking(c, token, bid):
    r = c.http("booking", "GET", "/bookings/" + bid, token=token)
    assert r.status == 200, r
    return r.json


def wait_terminal(c, token, bid):
    return wait_until(
        lambda: (lambda b: b if b["status"] in TERMINAL else None)(booking(c, token, bid)),
        60, "booking %s terminal" % bid, 0.3)


def comparable_stats(s):
    return {
        "bookingsByStatus": s["bookingsByStatus"],
        "funnel": s["funnel"],
        "revenueByCatalog": sorted((r["catalogId"], r["currency"], r["amount"], r["bookings"])
                                   for r in s["revenueByCatalog"]),
        "eventsByType": s["eventsByType"],
        "timeToConfirmCount": s["timeToConfirmMs"]["count"],
        "endedByReason": sorted((r["status"], r["reason"], r["count"]) for r in s["endedByReason"]),
        "events": s["totals"]["events"],
    }


def souk_check(c, *args):
    souk = os.environ.get("SOUK_BIN")
    assert souk, "SOUK_BIN is not set"
    return subprocess.run([souk, "check", "--analytics-url", c.url("analytics")] + list(args),
                          capture_output=True, text=True, timeout=60)


def violations(doc):
    return sorted((k["name"], v["correlationId"]) for k in doc["checks"] for v in k["violations"])


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------


def test_mixed_run(c):
    admin = c.admin_token()
    users = [c.user_token() for _ in range(4)]
    cid, tickets = new_catalog(c, admin, 20)
    RUN["catalog"] = cid
    RUN["users"] = users
    owner = {}
    for i in range(16):
        u = users[i % len(users)]
        bid = book(c, u, {"catalogId": cid})
        owner[bid] = u
    final = {bid: wait_terminal(c, owner[bid], bid) for bid in owner}
    confirmed = [b for b in final.values() if b["status"] == "CONFIRMED"]
    assert confirmed, "no booking was confirmed: %s" % collections.Counter(b["status"] for b in final.values())

    # a booking of a sold ticket: booking's projection answers 409 at once
    # (no booking); if it raced ahead of the projection, FAILED unavailable
    sold = confirmed[0]
    u = owner[sold["bookingId"]]
    r = c.http("booking", "POST", "/bookings", {"ticketId": sold["ticketId"]}, token=u)
    assert r.status in (202, 409), r
    if r.status == 202:
        bid = r.json["bookingId"]
        owner[bid] = u
        final[bid] = wait_terminal(c, u, bid)
        assert final[bid]["status"] == "FAILED", final[bid]

    # a paid booking cancelled: CANCELLED and refunded
    ever_confirmed = len(confirmed)
    if len(confirmed) > 1:
        victim = confirmed[1]["bookingId"]
        r = c.http("booking", "POST", "/bookings/%s/cancel" % victim, token=owner[victim])
        assert r.status in (200, 202), r
        final[victim] = wait_until(
            lambda: (lambda b: b if b["status"] == "CANCELLED" else None)(booking(c, owner[victim], victim)),
            30, "cancel of %s" % victim)
        wait_until(lambda: any(e["data"]["bookingId"] == victim for e in c.events("payment.3")), 30,
                   "refund of %s" % victim)

    counts = collections.Counter(b["status"] for b in final.values())
    RUN["final"] = final
    RUN["owner"] = owner
    RUN["confirmed"] = [bid for bid, b in final.items() if b["status"] == "CONFIRMED"]
    print("outcomes:", dict(counts), flush=True)

    def settled():
        s = api(c, "/analytics/stats")
        cons = api(c, "/analytics/consistency")
        return (s, cons) if s["bookingsByStatus"] == dict(counts) and cons["ok"] else None

    try:
        s, cons = wait_until(settled, 60, "analytics stats equal to the bookings and consistency ok", 1)
    except AssertionError:
        print("stats:", api(c, "/analytics/stats")["bookingsByStatus"], "consistency:",
              api(c, "/analytics/consistency"), flush=True)
        raise
    n = len(final)
    unavailable = sum(1 for b in final.values() if b["status"] == "FAILED" and "unavailable" in (b.get("reason") or ""))
    f = s["funnel"]
    assert f["requested"] == n, f
    assert f["reserved"] == n - unavailable, (f, unavailable)
    assert f["paid"] == ever_confirmed, f
    assert f["confirmed"] == ever_confirmed, f
    assert s["timeToConfirmMs"]["count"] == ever_confirmed, s["timeToConfirmMs"]
    assert s["timeToConfirmMs"]["median"] is not None and s["timeToConfirmMs"]["p95"] >= s["timeToConfirmMs"]["median"]
    rev = {(r["catalogId"], r["currency"]): r for r in s["revenueByCatalog"]}
    assert rev[(cid, "EUR")]["amount"] == PRICE * counts["CONFIRMED"], rev
    assert rev[(cid, "EUR")]["bookings"] == counts["CONFIRMED"], rev
    assert s["eventsByType"]["booking.created"] == n, s["eventsByType"]
    assert s["eventsByType"].get("booking.confirmed", 0) == ever_confirmed, s["eventsByType"]
    assert s["totals"]["dlq"] == 0, s["dlq"]
    assert len(s["bookingsPerMinute"]) >= 1 and sum(m["created"] for m in s["bookingsPerMinute"]) == n
    assert [k["name"] for k in cons["checks"]] == [
        "ticket-sold-once", "confirmed-paid-and-sold", "payment-confirmed-or-refunded",
        "terminal-within-hold", "one-email-per-outcome", "dlq-empty"], cons
    assert "skipped" not in cons["checks"][4], cons["checks"][4]
    # judged from notification.sent events, not from the (at most once) log lines
    assert cons["checks"][4].get("basis") == "events", cons["checks"][4]
    # the routes are the admin's only
    r = c.http("analytics", "GET", "/analytics/stats", token=users[0])
    assert r.status == 403, r
    r = c.http("analytics", "GET", "/analytics/consistency")
    assert r.status == 401, r


def test_timeline(c):
    bid = RUN["confirmed"][0]
    t = api(c, "/analytics/timeline/" + bid)
    steps = t["steps"]
    types = [s["type"] for s in steps if s["kind"] == "event"]
    order = ["booking.created", "ticket.reserved", "payment.requested", "payment.succeeded", "ticket.sell",
             "booking.confirmed"]
    for a, b in zip(order, order[1:]):
        assert a in types and b in types, (a, b, types)
        if (a, b) != ("ticket.sell", "booking.confirmed"):  # one transaction: same millisecond, any order
            assert types.index(a) < types.index(b), (a, b, types)
    assert types.index("ticket.reserve") < types.index("ticket.reserved"), types
    services = {s["service"] for s in steps}
    assert {"booking", "catalog", "payment", "notification"} <= services, services
    times = [s["sinceStartMs"] for s in steps]
    assert times == sorted(times) and times[0] == 0, times
    assert all(s["sincePreviousMs"] >= 0 for s in steps)
    assert any(s["kind"] == "log" and s["service"] == "notification" and "sent" in s["msg"] for s in steps), \
        [s.get("msg") for s in steps if s["kind"] == "log"]
    # by the flow's correlation id as well
    corr = next(s["event"]["correlationId"] for s in steps if s["kind"] == "event" and s["type"] == "booking.created")
    t2 = api(c, "/analytics/timeline/" + corr)
    assert "booking.confirmed" in [s.get("type") for s in t2["steps"]], t2
    # the email's delivery event carries the flow's correlation id
    sent = [s["event"] for s in t2["steps"] if s["kind"] == "event" and s["type"] == "notification.sent"]
    assert any(e["data"]["bookingId"] == bid and e["data"]["type"] == "booking.confirmed" for e in sent), \
        [s.get("type") for s in t2["steps"]]
    r = c.http("analytics", "GET", "/analytics/timeline/nothing-like-this", token=c.admin_token())
    souktest.assert_problem(r, 404)


def test_search(c):
    u = RUN["users"][1]
    page = api(c, "/analytics/events?q=%s" % u.email)
    assert page["totalElements"] >= 1, page
    assert any(e["type"] == "user.registered" and e["data"]["email"] == u.email and e["topic"] == "users"
               for e in page["content"]), page
    # filters and paging
    page = api(c, "/analytics/events?type=booking.created&size=5&page=0")
    assert page["totalElements"] == len(RUN["final"]) and len(page["content"]) == 5, page
    times = [e["time"] for e in page["content"]]
    assert times == sorted(times, reverse=True), times  # newest first
    page = api(c, "/analytics/events?source=payment&type=payment.succeeded")
    assert page["totalElements"] >= 1 and all(e["source"] == "payment" for e in page["content"])
    # a log line by a word of its message
    word = "zebracorn" + uuid.uuid4().hex[:8]
    r = c.http("catalog", "GET", "/catalogs/%s" % word)
    assert r.status in (400, 404), r
    logs = wait_until(lambda: (lambda p: p if p["totalElements"] else None)(api(c, "/analytics/logs?q=" + word)),
                      20, "the log line with %s" % word, 0.5)
    assert logs["content"][0]["service"] == "catalog" and word in logs["content"][0]["msg"], logs
    logs = api(c, "/analytics/logs?service=payment&q=auto-pay")
    assert logs["totalElements"] >= 1, logs
    # garbage in the search text is not an error
    r = c.http("analytics", "GET", "/analytics/events?q=%22%29%28*%3A%5E", token=c.admin_token())
    assert r.status == 200, r
    # the export: Elasticsearch bulk NDJSON
    r = c.http("analytics", "GET", "/analytics/export", token=c.admin_token(), timeout=30)
    assert r.status == 200 and r.headers.get("content-type", "").startswith("application/x-ndjson"), r
    lines = r.text.splitlines()
    assert len(lines) == 2 * api(c, "/analytics/stats")["totals"]["events"], len(lines)
    import json
    head, doc = json.loads(lines[0]), json.loads(lines[1])
    assert head["index"]["_id"] == doc["id"] and head["index"]["_index"] == "souk-events", (head, doc)


def test_souk_check_ok(c):
    r = souk_check(c, "--token", c.admin_token())
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "ticket-sold-once" in r.stdout, r.stdout
    cred = os.path.join(c.tmp, "admin-credentials")
    with open(cred, "w") as f:
        f.write("email=%s\npassword=%s\n" % c.admin)
    r = souk_check(c, "--admin-credentials", cred, "--auth-url", c.url("auth"))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    r = souk_check(c)
    assert r.returncode == 2, r


def test_dashboard(c):
    r = c.http("analytics", "GET", "/")
    assert r.status == 200 and b"souk" in r.body, r
    r = c.http("analytics", "GET", "/analytics/dashboard/")
    assert r.status == 200 and b"app.js" in r.body, r
    r = c.http("analytics", "GET", "/analytics/dashboard/app.js")
    assert r.status == 200 and "javascript" in r.headers.get("content-type", ""), r
    r = c.http("analytics", "GET", "/analytics/dashboard")
    assert r.status == 301 and r.headers.get("location") == "/analytics/dashboard/", r
    chromium = cdp.find_chromium()
    assert chromium, "chromium is not installed (Debian package chromium)"
    art = os.environ.get("SOUK_ARTIFACT_DIR") or c.tmp
    os.makedirs(art, exist_ok=True)
    shot = os.path.join(art, "analytics-dashboard.png")
    # api_4xx_ok=False: the dashboard meets no 4xx answer, so any fails the test
    with cdp.Browser(c.tmp, height=1100, chromium=chromium, api_4xx_ok=False) as b:
        b.goto(c.url("analytics") + "/analytics/dashboard/")
        b.wait("!document.getElementById('login-panel').hidden", 20, "the login form")
        email, password = c.admin
        b.js("document.getElementById('login-email').value = %s;"
             "document.getElementById('login-password').value = %s;"
             "document.getElementById('login-submit').click(); true" % (json_str(email), json_str(password)))
        b.wait("document.body.dataset.ready === '1'", 30, "the dashboard's data")
        b.wait("Number(document.getElementById('chart-bookings').dataset.bars) > 0", 10, "bars in the chart")
        assert int(b.js("document.getElementById('events').dataset.rows")) > 0
        assert int(b.js("document.getElementById('funnel').dataset.requested")) == len(RUN["final"])
        assert b.js("document.getElementById('consistency-badge').textContent") == "OK"
        # a timeline from a link
        b.js("document.querySelector('#events a').click(); true")
        b.wait("!document.getElementById('timeline-panel').hidden", 10, "the timeline panel")
        time.sleep(0.5)
        b.screenshot(shot)
        print("screenshot:", shot, flush=True)
        errs = b.problems()
        assert not errs, "browser problems:\n  " + "\n  ".join(errs)
    assert os.path.getsize(shot) > 10000


def json_str(s):
    import json
    return json.dumps(s)


def test_rebuild_from_scratch(c):
    before = comparable_stats(api(c, "/analytics/stats"))
    c.stop("analytics")
    c.extra_args["analytics"] = list(c.extra_args.get("analytics", [])) + [
        "--data-dir", os.path.join(c.tmp, "analytics-rebuilt"), "--group", "analytics-rebuilt"]
    c.start("analytics")
    box = {}

    def same():
        box["after"] = comparable_stats(api(c, "/analytics/stats"))
        return box["after"] == before

    try:
        wait_until(same, 60, "the same statistics from an empty database", 1)
    except AssertionError:
        print("before:", before, "\nafter:", box.get("after"), flush=True)
        raise
    assert os.path.exists(os.path.join(c.tmp, "analytics-rebuilt", "analytics.db"))
    assert api(c, "/analytics/consistency")["ok"]


def test_violations(c):
    sold = RUN["final"][RUN["confirmed"][0]]
    sell_corr = "forged-sell-" + uuid.uuid4().hex[:8]
    pay_corr = "forged-pay-" + uuid.uuid4().hex[:8]
    other = str(uuid.uuid4())
    c.produce("ticket.success", json_dumps(envelope(
        "ticket.sell", {"bookingId": other, "ticketId": sold["ticketId"]}, source="test",
        correlation_id=sell_corr)), key=other)
    unknown = str(uuid.uuid4())
    c.produce("payment.1", json_dumps(envelope(
        "payment.succeeded", {"bookingId": unknown, "paymentId": str(uuid.uuid4()), "userId": str(uuid.uuid4()),
                              "amount": 100, "currency": "EUR"}, source="test", correlation_id=pay_corr)),
        key=unknown)
    # a second email about a confirmed booking (another notification)
    mailed = RUN["confirmed"][0]
    steps = api(c, "/analytics/timeline/" + mailed)["steps"]
    confirmed = next(s["event"] for s in steps if s["kind"] == "event" and s["type"] == "booking.confirmed")
    nid = str(uuid.uuid4())
    c.produce("notification", json_dumps(envelope(
        "notification.sent", {"notificationId": nid, "eventId": confirmed["id"], "userId": confirmed["data"]["userId"],
                              "type": "booking.confirmed", "to": "twice@souk.test", "bookingId": mailed,
                              "sentAt": confirmed["time"]},
        source="test", correlation_id="forged-mail-" + uuid.uuid4().hex[:8])), key=nid)
    want = sorted([("payment-confirmed-or-refunded", pay_corr), ("ticket-sold-once", sell_corr),
                   ("one-email-per-outcome", confirmed["correlationId"])])
    box = {}

    def exactly():
        box["doc"] = api(c, "/analytics/consistency")
        return not box["doc"]["ok"] and violations(box["doc"]) == want

    try:
        wait_until(exactly, 30, "exactly the three forged violations", 1)
    except AssertionError:
        print("consistency:", box.get("doc"), flush=True)
        raise
    r = souk_check(c, "--token", c.admin_token())
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert sell_corr in r.stdout and pay_corr in r.stdout, r.stdout


def json_dumps(o):
    import json
    return json.dumps(o)


if __name__ == "__main__":
    souktest.main(globals())
