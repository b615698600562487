"""souk-notification against the real souk-auth, souk-user and souk-broker,
with a real SMTP server (Debian's python3-aiosmtpd, in-process) receiving
the mail (see souktest.py).

Registration -> one welcome email; booking.confirmed / failed / expired /
cancelled and payment.refunded (produced with kcat: no booking service
needed) -> one email each with the course's title, date, amount and
reason; the same event twice, or a second event about the same outcome ->
still one email; events racing (contact or catalog consumed after the
booking event) -> the email waits and goes; the SMTP server down at first
-> retried with backoff, delivered once it is up; a restart sends nothing
twice; GET /notifications/my shows the caller's notifications only;
without --smtp-url -> .eml files in <data-dir>/outbox/ that Python's email
module parses; bad input -> problem+json.  Every delivered email is
announced once by a notification.sent event on topic `notification` (a
retried, redelivered or restarted email: still one event; a FAILED one:
none).
"""

import os

import smtpsink  # noqa: E402 - first: it may re-execute under /usr/bin/python3

import glob
import json
import time
import uuid

import souktest
from souktest import assert_problem, envelope, field_errors, unique_email, wait_until

# ---------------------------------------------------------------------------
# the SMTP server
# ---------------------------------------------------------------------------


SMTP = smtpsink.SmtpServer()

CLUSTER = dict(
    services=("auth", "user", "notification"),
    extra_args={
        "notification": [
            "--smtp-url", "smtp://127.0.0.1:%d" % SMTP.port,
            "--smtp-backoff-ms", "200",
            "--smtp-backoff-max-ms", "800",
            "--smtp-timeout-ms", "3000",
            "--catalog-wait-ms", "2500",
            "--deliver-interval-ms", "200",
        ]
    },
)

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def my(c, tok, query=""):
    r = c.http("notification", "GET", "/notifications/my" + query, token=tok)
    assert r.status == 200, r
    return r.json


def my_items(c, tok, query=""):
    return my(c, tok, query)["content"]


def new_user(c):
    """A registered user whose welcome email has arrived (so their contact
    is known to souk-notification)."""
    tok = c.user_token()
    SMTP.sink.wait_to(tok.email)
    return tok


def catalog(c, title="Rust for Beginners", date="2026-12-24T16:00:00Z", price=2500, currency="EUR"):
    cid = str(uuid.uuid4())
    data = {
        "catalogId": cid, "authorId": str(uuid.uuid4()), "title": title, "description": None,
        "price": price, "currency": currency, "dateOfEvent": date, "numberOfTickets": 1,
        "status": "ACTIVE", "tickets": [{"ticketId": str(uuid.uuid4()), "status": "AVAILABLE"}],
    }
    c.produce("catalog", json.dumps(envelope("catalog.created", data, source="catalog")), key=cid)
    return cid


def booking_event(type, user_id, catalog_id, booking_id=None, reason=None, amount=2500, currency="EUR"):
    bid = booking_id or str(uuid.uuid4())
    status = type.split(".")[1].upper()
    data = {"bookingId": bid, "userId": user_id, "catalogId": catalog_id,
            "ticketId": str(uuid.uuid4()), "status": status}
    if amount is not None:
        data["amount"] = amount
        data["currency"] = currency
    if type != "booking.confirmed":
        data["reason"] = reason or "no reason"
    return envelope(type, data, source="booking", correlation_id=bid)


def produce(c, ev, topic=None):
    topic = topic or {"payment.refunded": "payment.3", "user.created": "user.created",
                      "user.updated": "user.created"}.get(ev["type"], ev["type"].split(".")[0])
    key = ev["data"].get("bookingId") or ev["data"].get("userId")
    c.produce(topic, json.dumps(ev), key=key)


def settle(addr, n, secs=1.5):
    """Checks that addr still has exactly n messages after secs."""
    time.sleep(secs)
    got = SMTP.sink.to(addr)
    assert len(got) == n, "expected %d emails to %s, got %d: %r" % (n, addr, len(got), got)
    return got


def sent_events(c, **match):
    """The (key, event) pairs of notification.sent on topic `notification`
    whose data has every field of match."""
    out = []
    for k, v in c.consume("notification"):
        try:
            e = json.loads(v) if v is not None else None
        except ValueError:
            continue
        if not isinstance(e, dict) or e.get("type") != "notification.sent":
            continue
        if all(e["data"].get(f) == want for f, want in match.items()):
            out.append((k, e))
    return out


def wait_sent(c, n=1, timeout=10, **match):
    """Waits until exactly n notification.sent events match, then checks
    that it stays n; returns their envelopes."""
    got = wait_until(lambda: len(sent_events(c, **match)) >= n and sent_events(c, **match),
                     timeout, "%d notification.sent with %r" % (n, match))
    time.sleep(0.5)
    got = sent_events(c, **match)
    assert len(got) == n, "expected %d notification.sent with %r, got %d: %r" % (
        n, match, len(got), got)
    for k, e in got:
        d = e["data"]
        key = k.decode() if isinstance(k, bytes) else k
        assert key == d["notificationId"], (k, d)  # the Kafka key
        assert e["source"] == "notification" and e["version"] == 1, e
        assert d["sentAt"].endswith("Z") and "T" in d["sentAt"], d
        for f in ("notificationId", "eventId", "userId", "type", "to"):
            assert isinstance(d[f], str) and d[f], (f, d)
    return [e for _, e in got]


def check_mime(m):
    msg = m.msg
    assert msg.get_content_type() == "multipart/alternative", msg.get_content_type()
    types = [p.get_content_type() for p in msg.iter_parts()]
    assert types == ["text/plain", "text/html"], types
    for p in msg.iter_parts():
        assert p.get_content_charset() == "utf-8", p.get_content_charset()
    assert msg["Message-ID"] and msg["Message-ID"].startswith("<"), msg["Message-ID"]
    assert msg["Date"], msg
    assert msg["MIME-Version"] == "1.0"
    assert "noreply@souk.local" in str(msg["From"])


# ---------------------------------------------------------------------------
# tests on the shared cluster (SMTP delivery)
# ---------------------------------------------------------------------------


def test_registration_email(c):
    tok = c.user_token(fullName="Zoë Lee")
    [m] = SMTP.sink.wait_to(tok.email)
    check_mime(m)
    assert m.subject == "Welcome to souk, Zoë Lee", m.subject
    assert tok.email in m.to and "Zoë Lee" in m.to, m.to
    assert m.rcpt_tos == [tok.email]
    assert m.mail_from == "noreply@souk.local", m.mail_from
    assert "Hello Zoë Lee," in m.text() and tok.email in m.text()
    assert "<strong>%s</strong>" % tok.email in m.html()
    # delivery state visible to the user
    items = wait_until(lambda: [i for i in my_items(c, tok) if i["state"] == "SENT"], 5, "SENT")
    [it] = items
    assert it["type"] == "user.registered" and it["to"] == tok.email, it
    assert it["subject"] == m.subject and it["attempts"] == 1 and it["sentAt"], it
    assert it["bookingId"] is None and "Hello Zoë Lee" in it["text"], it
    # the Message-ID is derived from the event id
    reg = [e for e in c.events("users", "user.registered") if e["data"]["userId"] == tok.user_id]
    assert m.msg["Message-ID"] == "<%s@souk.local>" % reg[0]["id"], (m.msg["Message-ID"], reg[0]["id"])
    settle(tok.email, 1, 0.5)
    # the delivery is an event, once, about the registration
    [sent] = wait_sent(c, eventId=reg[0]["id"])
    d = sent["data"]
    assert d["notificationId"] == it["id"] and d["userId"] == tok.user_id, d
    assert d["to"] == tok.email and d["type"] == "user.registered", d
    assert d["bookingId"] is None, d
    assert sent["correlationId"] == reg[0]["correlationId"], (sent, reg[0])


def test_booking_confirmed(c):
    tok = new_user(c)
    cid = catalog(c, title="Rust für Anfänger & <Friends>")
    ev = booking_event("booking.confirmed", tok.user_id, cid)
    bid = ev["data"]["bookingId"]
    produce(c, ev)
    [_, m] = SMTP.sink.wait_to(tok.email, 2)
    check_mime(m)
    assert m.subject == "Booking confirmed: Rust für Anfänger & <Friends>", m.subject
    text = m.text()
    assert "25.00 EUR" in text and bid in text, text
    assert "24 Dec 2026, 16:00 UTC" in text, text
    assert "Rust für Anfänger &amp; &lt;Friends&gt;" in m.html(), m.html()
    assert "<Friends>" not in m.html()
    it = wait_until(lambda: [i for i in my_items(c, tok, "?bookingId=" + bid) if i["state"] == "SENT"],
                    5, "SENT")[0]
    assert it["type"] == "booking.confirmed" and it["bookingId"] == bid, it

    # the same event again (same id): still one email
    produce(c, ev)
    # another event about the same outcome (new id): still one email
    again = dict(ev, id=str(uuid.uuid4()))
    produce(c, again)
    settle(tok.email, 2)
    assert len(my_items(c, tok, "?type=booking.confirmed")) == 1
    # one notification.sent for the outcome, about the first event
    [sent] = wait_sent(c, bookingId=bid)
    d = sent["data"]
    assert d["eventId"] == ev["id"] and d["type"] == "booking.confirmed", d
    assert d["userId"] == tok.user_id and d["to"] == tok.email and d["notificationId"] == it["id"], d
    assert sent["correlationId"] == bid, sent  # the booking's flow
    assert wait_sent(c, userId=tok.user_id, n=2)  # + the welcome email


def test_booking_failed_with_reason(c):
    tok = new_user(c)
    cid = catalog(c, title="Go in Practice")
    produce(c, booking_event("booking.failed", tok.user_id, cid,
                             reason="payment declined: insufficient funds", amount=None))
    [m] = SMTP.sink.wait_to(tok.email, pred=lambda m: m.subject.startswith("Booking failed"))
    assert m.subject == "Booking failed: Go in Practice", m.subject
    assert "payment declined: insufficient funds" in m.text(), m.text()
    assert "payment declined: insufficient funds" in m.html()
    assert "EUR" not in m.text()  # no amount in that event


def test_booking_expired_and_cancelled(c):
    tok = new_user(c)
    cid = catalog(c, title="SQL Deep Dive")
    produce(c, booking_event("booking.expired", tok.user_id, cid, reason="hold expired"))
    produce(c, booking_event("booking.cancelled", tok.user_id, cid, reason="cancelled by the user"))
    SMTP.sink.wait_to(tok.email, 3)
    subjects = sorted(m.subject for m in SMTP.sink.to(tok.email))
    assert subjects == ["Booking cancelled: SQL Deep Dive", "Booking expired: SQL Deep Dive",
                        "Welcome to souk, Test User"], subjects
    settle(tok.email, 3, 0.5)


def test_payment_refunded(c):
    tok = new_user(c)
    cid = catalog(c, title="Kubernetes Basics", price=4999)
    cancel = booking_event("booking.cancelled", tok.user_id, cid, reason="cancelled by the user",
                           amount=4999)
    bid = cancel["data"]["bookingId"]
    produce(c, cancel)
    refund = envelope("payment.refunded", {
        "bookingId": bid, "paymentId": str(uuid.uuid4()), "userId": tok.user_id,
        "amount": 4999, "currency": "EUR", "reason": "booking cancelled"}, source="payment")
    produce(c, refund)
    [m] = SMTP.sink.wait_to(tok.email, pred=lambda m: m.subject.startswith("Refund"))
    assert m.subject == "Refund of 49.99 EUR: Kubernetes Basics", m.subject
    assert "49.99 EUR" in m.text() and bid in m.text() and "booking cancelled" in m.text(), m.text()
    produce(c, refund)  # redelivered: nothing more
    settle(tok.email, 3)


def test_contact_and_catalog_arrive_late(c):
    # The booking event is consumed before the user's contact and before
    # the catalog: the email waits (WAITING), and goes when both are known.
    uid = str(uuid.uuid4())
    addr = unique_email("late")
    cid = str(uuid.uuid4())
    ev = booking_event("booking.confirmed", uid, cid)
    produce(c, ev)
    time.sleep(1.0)
    assert SMTP.sink.to(addr) == []
    produce(c, envelope("user.created", {"userId": uid, "email": addr, "fullName": "Late Comer",
                                         "phone": None}, source="user"))
    time.sleep(0.5)
    assert SMTP.sink.to(addr) == []  # the catalog is still unknown (waits up to 2.5 s)
    data = {
        "catalogId": cid, "authorId": str(uuid.uuid4()), "title": "Late Course", "description": None,
        "price": 2500, "currency": "EUR", "dateOfEvent": "2027-01-05T09:30:00Z", "numberOfTickets": 1,
        "status": "ACTIVE", "tickets": [{"ticketId": str(uuid.uuid4()), "status": "AVAILABLE"}],
    }
    c.produce("catalog", json.dumps(envelope("catalog.created", data, source="catalog")), key=cid)
    [m] = SMTP.sink.wait_to(addr)
    assert m.subject == "Booking confirmed: Late Course", m.subject
    assert "Hello Late Comer," in m.text() and "5 Jan 2027, 09:30 UTC" in m.text(), m.text()


def test_contact_after_the_catalog_wait(c):
    # A contact that comes long after the event still gets the email (with
    # the course's title, known by then).
    uid = str(uuid.uuid4())
    addr = unique_email("later")
    cid = catalog(c, title="Patience 101")
    produce(c, booking_event("booking.expired", uid, cid, reason="hold expired"))
    time.sleep(3.5)  # > --catalog-wait-ms
    assert SMTP.sink.to(addr) == []
    produce(c, envelope("user.created", {"userId": uid, "email": addr, "fullName": "Pat",
                                         "phone": None}, source="user"))
    [m] = SMTP.sink.wait_to(addr)
    assert m.subject == "Booking expired: Patience 101", m.subject


def test_catalog_never_arrives(c):
    # Without the catalog the email goes after --catalog-wait-ms, naming the
    # booking instead of the course.
    tok = new_user(c)
    ev = booking_event("booking.confirmed", tok.user_id, str(uuid.uuid4()))
    bid = ev["data"]["bookingId"]
    t0 = time.monotonic()
    produce(c, ev)
    [m] = SMTP.sink.wait_to(tok.email, pred=lambda m: "confirmed" in m.subject, timeout=15)
    assert time.monotonic() - t0 >= 2.0, "sent before the catalog wait was over"
    assert m.subject == "Booking confirmed: booking %s" % bid, m.subject
    assert "25.00 EUR" in m.text()


def test_smtp_down_then_up(c):
    tok = new_user(c)
    cid = catalog(c, title="Retry Course")
    SMTP.stop()
    try:
        ev = booking_event("booking.confirmed", tok.user_id, cid)
        produce(c, ev)

        def retried():
            its = my_items(c, tok, "?type=booking.confirmed")
            return its and its[0]["state"] == "PENDING" and its[0]["attempts"] >= 2 and its[0]
        it = wait_until(retried, 15, "failed attempts while the SMTP server is down")
        assert it["nextAttemptAt"] and it["sentAt"] is None, it
        assert len(SMTP.sink.to(tok.email)) == 1
    finally:
        SMTP.start()
    [_, m] = SMTP.sink.wait_to(tok.email, 2, timeout=15)
    assert m.subject == "Booking confirmed: Retry Course", m.subject
    it = wait_until(lambda: [i for i in my_items(c, tok, "?type=booking.confirmed")
                             if i["state"] == "SENT"], 5, "SENT")[0]
    assert it["attempts"] >= 3, it
    settle(tok.email, 2, 0.5)
    # retried three times or more, announced once
    [sent] = wait_sent(c, eventId=ev["id"])
    assert sent["data"]["notificationId"] == it["id"] and sent["data"]["to"] == tok.email, sent
    r = c.http("notification", "GET", "/metrics")
    assert "notification_send_errors_total" in r.text and "notifications_sent_total" in r.text


def test_permanent_refusal_fails_at_once(c):
    # SMTP 5xx is permanent: FAILED after one attempt, no retries.
    tok = c.user_token(email=unique_email("nobody"))
    it = wait_until(lambda: [i for i in my_items(c, tok) if i["state"] == "FAILED"], 10, "FAILED")[0]
    assert it["attempts"] == 1 and it["sentAt"] is None and it["nextAttemptAt"] is None, it
    time.sleep(1.0)
    assert my_items(c, tok)[0]["attempts"] == 1
    assert SMTP.sink.to(tok.email) == []
    assert sent_events(c, userId=tok.user_id) == []  # not delivered: no event
    # the admin sees why
    r = c.http("notification", "GET", "/notifications/" + it["id"], token=c.admin_token())
    assert r.status == 200 and "550" in (r.json["lastError"] or ""), r


def test_restart_sends_nothing_twice(c):
    tok = new_user(c)
    cid = catalog(c, title="Restart Course")
    produce(c, booking_event("booking.confirmed", tok.user_id, cid))
    SMTP.sink.wait_to(tok.email, 2)
    wait_sent(c, n=2, userId=tok.user_id)
    before = len(SMTP.sink.mails)
    c.restart("notification")
    time.sleep(2.0)
    assert len(SMTP.sink.mails) == before, SMTP.sink.mails[before:]
    assert len(my_items(c, tok)) == 2
    assert len(sent_events(c, userId=tok.user_id)) == 2


def test_my_only_callers(c):
    a = new_user(c)
    b = new_user(c)
    la = my_items(c, a)
    lb = my_items(c, b)
    assert [i["to"] for i in la] == [a.email], la
    assert [i["to"] for i in lb] == [b.email], lb
    # another user's notification is a 404, as if it did not exist
    r = c.http("notification", "GET", "/notifications/" + lb[0]["id"], token=a)
    assert_problem(r, 404)
    r = c.http("notification", "GET", "/notifications/" + lb[0]["id"], token=b)
    assert r.status == 200 and r.json["id"] == lb[0]["id"], r
    assert "<!DOCTYPE html>" in r.json["html"] and "userId" not in r.json and "lastError" not in r.json
    # an admin sees anyone's
    r = c.http("notification", "GET", "/notifications/" + lb[0]["id"], token=c.admin_token())
    assert r.status == 200 and r.json["userId"] == b.user_id, r
    # paging
    page = my(c, a, "?page=0&size=1&sort=createdAt,asc")
    assert page["totalElements"] == 1 and page["totalPages"] == 1 and page["size"] == 1, page
    assert my(c, a, "?page=5")["content"] == []
    assert my(c, a, "?state=FAILED")["totalElements"] == 0


def test_bad_input(c):
    tok = new_user(c)
    for q, field in [("?page=-1", "page"), ("?size=0", "size"), ("?size=101", "size"),
                     ("?sort=nope", "sort"), ("?sort=createdAt,up", "sort"), ("?state=LOST", "state"),
                     ("?type=booking.created", "type"), ("?bookingId=" + "x" * 200, "bookingId")]:
        r = c.http("notification", "GET", "/notifications/my" + q, token=tok)
        assert field in field_errors(r), (q, r)
    assert_problem(c.http("notification", "GET", "/notifications/my"), 401)
    assert_problem(c.http("notification", "GET", "/notifications/my", token="not-a-token"), 401)
    assert_problem(c.http("notification", "GET", "/notifications/no-such-id", token=tok), 404)
    assert_problem(c.http("notification", "POST", "/notifications/my", body={}, token=tok), 405)
    assert_problem(c.http("notification", "GET", "/notifications/my?page=%zz", token=tok), 400)
    # a poison record on a consumed topic does not stop the notifications
    c.produce("booking", "this is not json", key="x")
    c.produce("booking", json.dumps(envelope("booking.confirmed", {"bookingId": "b"})), key="b")
    cid = catalog(c, title="After Poison")
    produce(c, booking_event("booking.confirmed", tok.user_id, cid))
    SMTP.sink.wait_to(tok.email, 2)


# ---------------------------------------------------------------------------
# own clusters
# ---------------------------------------------------------------------------


def test_eml_files_without_smtp():
    with souktest.Cluster(services=("auth", "user", "notification"), name="notification-eml") as c:
        tok = c.user_token(fullName="File Reader")
        outbox = os.path.join(c.data_dir("notification"), "outbox")
        [it] = wait_until(lambda: [i for i in my_items(c, tok) if i["state"] == "SENT"], 15, "SENT")
        path = os.path.join(outbox, it["id"] + ".eml")  # named after the notification
        files = [path]
        assert os.path.exists(path), os.listdir(outbox)
        with open(files[0], "rb") as f:
            raw = f.read()
        assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b""), "not CRLF"
        m = smtpsink.Mail("", [], raw)
        check_mime(m)
        assert m.subject == "Welcome to souk, File Reader", m.subject
        assert tok.email in m.to
        assert "Hello File Reader," in m.text()
        # a booking email too, and nothing left half-written
        cid = catalog(c, title="Offline Course")
        produce(c, booking_event("booking.confirmed", tok.user_id, cid))
        it = wait_until(lambda: [i for i in my_items(c, tok, "?type=booking.confirmed")
                                 if i["state"] == "SENT"], 15, "booking email SENT")[0]
        with open(os.path.join(outbox, it["id"] + ".eml"), "rb") as f:
            m = smtpsink.Mail("", [], f.read())
        assert m.subject == "Booking confirmed: Offline Course", m.subject
        # the admin's welcome, the user's welcome, the booking: nothing else
        assert len(glob.glob(os.path.join(outbox, "*.eml"))) == 3, os.listdir(outbox)
        assert [f for f in os.listdir(outbox) if not f.endswith(".eml")] == []
        # one notification.sent per file written, named alike
        sent = wait_sent(c, n=3, timeout=15)
        ids = sorted(e["data"]["notificationId"] + ".eml" for e in sent)
        assert ids == sorted(os.listdir(outbox)), (ids, os.listdir(outbox))
        [mine] = [e["data"] for e in sent if e["data"]["type"] == "booking.confirmed"]
        assert mine["userId"] == tok.user_id and mine["to"] == tok.email, mine
        assert mine["notificationId"] == it["id"] and mine["bookingId"], mine


def test_gives_up_after_max_send_attempts():
    # No SMTP server ever: FAILED after --max-send-attempts, with the reason.
    dead = souktest._free_ports(1)[0]
    args = ["--smtp-url", "smtp://127.0.0.1:%d" % dead, "--max-send-attempts", "3",
            "--smtp-backoff-ms", "100", "--smtp-backoff-max-ms", "200"]
    with souktest.Cluster(services=("auth", "user", "notification"), extra_args={"notification": args},
                          name="notification-giveup") as c:
        tok = c.user_token()
        it = wait_until(lambda: [i for i in my_items(c, tok) if i["state"] == "FAILED"], 15, "FAILED")[0]
        assert it["attempts"] == 3 and it["sentAt"] is None, it
        r = c.http("notification", "GET", "/notifications/" + it["id"], token=c.admin_token())
        assert "connect" in r.json["lastError"].lower(), r
        r = c.http("notification", "GET", "/metrics")
        assert 'notifications_failed_total{type="user.registered"}' in r.text, r.text[-2000:]


def test_bad_mail_from_refused():
    # A --mail-from that is not an address makes the service refuse to start.
    with souktest.Cluster(services=("auth",), name="notification-badfrom") as c:
        import subprocess
        exe = os.environ["SOUK_NOTIFICATION_BIN"]
        r = subprocess.run([exe, "--http", "127.0.0.1:0", "--data-dir", os.path.join(c.tmp, "n"),
                            "--brokers", c.brokers, "--mail-from", "not an address"],
                           capture_output=True, timeout=30)
        assert r.returncode != 0, r
        assert b"mail-from" in r.stderr, r.stderr[-500:]


if __name__ == "__main__":
    SMTP.start()
    try:
        souktest.main(globals())
    finally:
        SMTP.stop()
