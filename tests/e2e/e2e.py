"""e2e - shared helpers of the end-to-end saga tests (tests/e2e/test_*.py).

Every test runs the real souk-broker and the six saga services (auth, user,
catalog, booking, payment, notification) through tests/services/souktest.py,
with souk-notification delivering over SMTP to a real SMTP server: Debian's
python3-aiosmtpd, run in this process (a thread), so that each test can read
the mail it caused.

    import e2e                      # first: re-executes under /usr/bin/python3
                                    # when this python lacks aiosmtpd
    SMTP = e2e.smtp()               # one server per test file
    def test_x():
        with e2e.cluster(SMTP, booking=["--hold-seconds", "2"]) as c:
            s = e2e.Saga(c)
            cid, tids = s.catalog(tickets=1)
            u = s.user()                          # welcome email received
            b = s.book(u, ticket=tids[0])         # 202 body
            s.wait_status(u, b["bookingId"], "AWAITING_PAYMENT")
            s.pay(u, b["bookingId"])
            ...
    souktest.main(globals())

Everything is observed through the services' HTTP APIs, the topics (kcat)
and the SMTP server; nothing reads a service's database.
"""

import os
import subprocess
import sys

import smtpsink  # noqa: E402 - first: it may re-execute under /usr/bin/python3

import datetime

import souktest
from souktest import wait_until

for _name in ("booking", "payment", "notification", "catalog", "user"):
    if _name not in souktest.SERVICE_NAMES:
        souktest.SERVICE_NAMES = tuple(souktest.SERVICE_NAMES) + (_name,)

SERVICES = ("auth", "user", "catalog", "booking", "payment", "notification")
VISA_OK = "4242 4242 4242 4242"
VISA_DECLINED = "4000 0000 0000 0002"
NEXT_YEAR = datetime.datetime.now(datetime.timezone.utc).year + 1
FUTURE = "2031-06-01T18:00:00Z"
TERMINAL = ("CONFIRMED", "FAILED", "EXPIRED", "CANCELLED")
OPEN = ("PENDING", "AWAITING_PAYMENT")
# the email subject that starts each terminal outcome's email
SUBJECT = {
    "CONFIRMED": "Booking confirmed: ",
    "FAILED": "Booking failed: ",
    "EXPIRED": "Booking expired: ",
    "CANCELLED": "Booking cancelled: ",
}


# ---------------------------------------------------------------------------
# the SMTP server
# ---------------------------------------------------------------------------


def smtp():
    """A started SMTP server on a free port (tests/services/smtpsink.py)."""
    s = smtpsink.SmtpServer()
    s.start()
    return s


def cluster(smtp_server, name=None, **extra):
    """A souktest.Cluster of the broker and the six saga services, the
    notification delivering to smtp_server; extra: {service: [flags]}
    appended to that service's command line (later flags win)."""
    args = {
        "notification": [
            "--smtp-url", smtp_server.url,
            "--smtp-backoff-ms", "200",
            "--smtp-backoff-max-ms", "1000",
            "--smtp-timeout-ms", "5000",
            "--deliver-interval-ms", "100",
            "--catalog-wait-ms", "5000",
        ],
    }
    for k, v in extra.items():
        args[k] = args.get(k, []) + [str(x) for x in v]
    return souktest.Cluster(services=SERVICES, extra_args=args, name=name)


# ---------------------------------------------------------------------------
# the saga through the APIs
# ---------------------------------------------------------------------------


def card(number=VISA_OK):
    return {"card": number, "expMonth": 12, "expYear": NEXT_YEAR, "cvc": "123"}


class Saga:
    """Drives and observes a cluster's saga over HTTP (and kcat)."""

    def __init__(self, c, smtp_server=None):
        self.c = c
        self.smtp = smtp_server
        self._admin = None

    @property
    def admin(self):
        if self._admin is None:
            self._admin = self.c.admin_token()
        return self._admin

    def user(self, wait_welcome=True):
        """A new USER; waits for its welcome email (so that the
        notification service knows the contact)."""
        u = self.c.user_token()
        if wait_welcome and self.smtp is not None:
            self.smtp.sink.wait_to(u.email, pred=lambda m: m.subject.startswith("Welcome"))
        return u

    def catalog(self, tickets=1, price=2500, currency="EUR", title=None):
        """Creates a catalog as the admin; returns (catalogId, [ticketId])."""
        return self.c.new_catalog(self.admin, tickets=tickets, price=price, currency=currency, title=title,
                                  description="an e2e course", date=FUTURE)

    def title(self, cid):
        r = self.c.http("catalog", "GET", "/catalogs/" + cid)
        assert r.status == 200, r
        return r.json["title"]

    def tickets(self, cid, admin=True):
        r = self.c.http("catalog", "GET", "/catalogs/%s/tickets" % cid, token=self.admin if admin else None)
        assert r.status == 200, r
        return r.json

    def ticket_status(self, cid, tid):
        return {t["ticketId"]: t["status"] for t in self.tickets(cid)}[tid]

    def wait_ticket(self, cid, tid, status, timeout=15):
        try:
            wait_until(lambda: self.ticket_status(cid, tid) == status, timeout,
                       "ticket %s %s" % (tid, status))
        except AssertionError as e:
            raise AssertionError("%s; now %s" % (e, self.ticket_status(cid, tid)))

    def post(self, token, ticket=None, catalog=None, key=None, body=None):
        if body is None:
            body = {"ticketId": ticket} if ticket else {"catalogId": catalog}
        headers = {"Idempotency-Key": key} if key else None
        return self.c.http("booking", "POST", "/bookings", body, token=token, headers=headers)

    def book(self, token, ticket=None, catalog=None, key=None, timeout=20):
        """POST /bookings until it is not 404 (souk-booking learns a new
        catalog from its catalog.created event); asserts 202; returns the body."""

        def f():
            r = self.post(token, ticket=ticket, catalog=catalog, key=key)
            return None if r.status == 404 else r

        r = wait_until(f, timeout, "booking's projection of the catalog", 0.1)
        assert r.status == 202, r
        return r.json

    def get(self, token, bid):
        return self.c.http("booking", "GET", "/bookings/" + bid, token=token)

    def wait_status(self, token, bid, statuses, timeout=20):
        if isinstance(statuses, str):
            statuses = (statuses,)

        def f():
            r = self.get(token, bid)
            assert r.status == 200, r
            return r.json if r.json["status"] in statuses else None

        try:
            return wait_until(f, timeout, "booking %s %s" % (bid, "/".join(statuses)), 0.05)
        except AssertionError as e:
            raise AssertionError("%s; now %r" % (e, self.get(token, bid)))

    def pay(self, token, bid, number=VISA_OK, timeout=20):
        """POST /payments/{id}/pay, retried while the payment does not exist
        yet (409 payment-not-ready, or 404 before booking.created arrived)."""

        def f():
            r = self.c.http("payment", "POST", "/payments/%s/pay" % bid, card(number), token=token)
            if r.status == 404 or (
                r.status == 409 and (r.json or {}).get("type", "").endswith("payment-not-ready")
            ):
                return None
            return r

        r = wait_until(f, timeout, "payment of %s open" % bid, 0.1)
        return r

    def payment(self, token, bid):
        return self.c.http("payment", "GET", "/payments/" + bid, token=token)

    def wait_payment(self, token, bid, status, timeout=20):
        def f():
            r = self.payment(token, bid)
            return r.json if r.status == 200 and r.json["status"] == status else None

        try:
            return wait_until(f, timeout, "payment of %s %s" % (bid, status), 0.1)
        except AssertionError as e:
            raise AssertionError("%s; now %r" % (e, self.payment(token, bid)))

    def cancel(self, token, bid):
        return self.c.http("booking", "POST", "/bookings/%s/cancel" % bid, token=token)

    def notifications(self, token, **query):
        q = "&".join("%s=%s" % kv for kv in query.items())
        r = self.c.http("notification", "GET", "/notifications/my?size=100" + ("&" + q if q else ""),
                        token=token)
        assert r.status == 200, r
        return r.json["content"]

    def mails(self, token, pred=None):
        return self.smtp.sink.to(token.email, pred)

    def wait_mail(self, token, subject_prefix, timeout=20):
        """Waits for one email to token's user whose subject starts with
        subject_prefix; returns it."""
        ms = self.smtp.sink.wait_to(token.email, pred=lambda m: m.subject.startswith(subject_prefix),
                                    timeout=timeout)
        return ms[0]

    def events_of(self, topic, bid, type=None):
        return [e for e in self.c.events(topic, type) if e.get("data", {}).get("bookingId") == bid]


def run_load(c, *args, timeout=500):
    """Runs `souk load` against c (every service directly) with args;
    returns the CompletedProcess (stdout and stderr as text)."""
    admin_email, admin_pw = c.admin
    cmd = [
        os.environ["SOUK_BIN"], "load",
        "--auth-url", c.url("auth"),
        "--catalog-url", c.url("catalog"),
        "--booking-url", c.url("booking"),
        "--payment-url", c.url("payment"),
        "--notification-url", c.url("notification") if "notification" in c.procs else "http://127.0.0.1:1",
        "--admin-email", admin_email,
        "--admin-password", admin_pw,
        "--no-progress",
    ] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=c.tmp)
    sys.stdout.write("$ %s\n%s" % (" ".join(cmd[1:]), r.stdout))
    if r.stderr:
        sys.stdout.write("(stderr)\n%s" % r.stderr[-6000:])
    sys.stdout.flush()
    return r


# ---------------------------------------------------------------------------
# consumer group offsets: a few Kafka requests by hand
# ---------------------------------------------------------------------------
#
# kcat cannot set a group's committed offsets, so the replay test resets
# them with the Kafka protocol itself: OffsetFetch v2 (null topics: every
# partition the group committed) and OffsetCommit v2 with generation -1 and
# an empty member id - a "simple consumer" commit, which Kafka (and
# souk-broker) accept while the group has no members, i.e. after its
# service stopped.

import socket
import struct


def _kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class _Reader:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.i)
        self.i += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def str(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.d[self.i : self.i + n].decode()
        self.i += n
        return s


class Kafka:
    """One connection to the broker for a few requests."""

    def __init__(self, brokers, timeout=10):
        host, port = brokers.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.corr = 0

    def close(self):
        self.sock.close()

    def _recv(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise OSError("the broker closed the connection")
            out += chunk
        return out

    def request(self, api_key, version, body):
        self.corr += 1
        hdr = struct.pack(">hhi", api_key, version, self.corr) + _kstr("souk-e2e")
        msg = hdr + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self._recv(4))[0]
        data = self._recv(size)
        corr = struct.unpack_from(">i", data)[0]
        assert corr == self.corr, (corr, self.corr)
        return _Reader(data[4:])

    def committed(self, group):
        """{(topic, partition): offset} the group committed (OffsetFetch v2)."""
        r = self.request(9, 2, _kstr(group) + struct.pack(">i", -1))
        out = {}
        for _ in range(r.take(">i")):
            topic = r.str()
            for _ in range(r.take(">i")):
                part, off = r.take(">iq")
                r.str()  # metadata
                err = r.take(">h")
                assert err == 0, "OffsetFetch %s %s/%d: error %d" % (group, topic, part, err)
                if off >= 0:
                    out[(topic, part)] = off
        err = r.take(">h")
        assert err == 0, "OffsetFetch %s: error %d" % (group, err)
        return out

    def commit(self, group, offsets):
        """Commits {(topic, partition): offset} as a simple consumer
        (OffsetCommit v2, generation -1); asserts every partition's 0."""
        by_topic = {}
        for (t, p), o in offsets.items():
            by_topic.setdefault(t, []).append((p, o))
        body = _kstr(group) + struct.pack(">i", -1) + _kstr("") + struct.pack(">q", -1)
        body += struct.pack(">i", len(by_topic))
        for t, parts in by_topic.items():
            body += _kstr(t) + struct.pack(">i", len(parts))
            for p, o in parts:
                body += struct.pack(">iq", p, o) + _kstr("")
        r = self.request(8, 2, body)
        for _ in range(r.take(">i")):
            t = r.str()
            for _ in range(r.take(">i")):
                p, err = r.take(">ih")
                assert err == 0, "OffsetCommit %s %s/%d: error %d" % (group, t, p, err)


def reset_group(brokers, group):
    """Commits offset 0 for every partition group has committed; returns
    the offsets it had.  The group must have no members (stop its service
    first)."""
    k = Kafka(brokers)
    try:
        before = k.committed(group)
        assert before, "group %s has no committed offsets" % group
        k.commit(group, {tp: 0 for tp in before})
        after = k.committed(group)
        assert all(v == 0 for v in after.values()), after
        return before
    finally:
        k.close()


def committed(brokers, group):
    k = Kafka(brokers)
    try:
        return k.committed(group)
    finally:
        k.close()
