"""souk-booking: the booking saga end to end with the real broker, auth,
catalog and payment (when souk-payment is built; otherwise payment results
are produced with kcat as souk-payment would).

HTTP: create by ticket or by catalog (202 + Location), validation (400 with
field errors, never 5xx), early 404 / 409 from the projection of `catalog`
events, Idempotency-Key replay (same body: the first answer; another body:
422), another user's booking is a 404, the owner's and the admin's lists.

Saga: reserved -> AWAITING_PAYMENT -> paid -> CONFIRMED (ticket SOLD);
ticket unavailable -> FAILED; card declined -> FAILED and the ticket back on
sale; cancel before and after payment (release, refund); 20 users racing for
one ticket -> one winner; late and duplicate events are no-ops.

Holds: --hold-seconds 2 -> EXPIRED within hold + 2 s by kv.expired or the
sweeper, the ticket AVAILABLE again, and a payment after expiry refunded;
with the key store unreachable the sweeper alone expires; a reservation that
arrives after the booking expired is released; kill -9 with open holds and a
restart after their deadlines -> every booking EXPIRED, every ticket
released.
"""

import datetime
import json
import os
import socket
import sqlite3
import threading
import time
import uuid

import souktest
from souktest import assert_problem, envelope, field_errors, wait_until

# The harness names the services it knows; booking and payment may not be
# among them yet.
for _name in ("booking", "payment"):
    if _name not in souktest.SERVICE_NAMES:
        souktest.SERVICE_NAMES = tuple(souktest.SERVICE_NAMES) + (_name,)

HAVE_PAYMENT = bool(os.environ.get("SOUK_PAYMENT_BIN")) and os.path.exists(
    os.environ.get("SOUK_PAYMENT_BIN", "")
)
SERVICES = ("auth", "catalog", "booking") + (("payment",) if HAVE_PAYMENT else ())

CLUSTER = dict(services=SERVICES)

FUTURE = "2031-06-01T18:00:00Z"
VISA_OK = "4242 4242 4242 4242"
VISA_DECLINED = "4000 0000 0000 0002"
NEXT_YEAR = datetime.datetime.now(datetime.timezone.utc).year + 1
OPEN = ("PENDING", "AWAITING_PAYMENT")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def new_catalog(c, admin, tickets=3, price=2500, currency="EUR"):
    """Creates a catalog; waits until booking's projection knows it.
    Returns (catalogId, [ticketId, ...])."""
    cid, tids = c.new_catalog(admin, tickets=tickets, price=price, currency=currency, date=FUTURE)
    wait_until(
        lambda: booking_db(c, "SELECT count(*) FROM tickets WHERE catalog_id = ?", cid)[0][0] == tickets,
        20,
        "booking's projection of catalog %s" % cid,
    )
    return cid, tids


def booking_db(c, sql, *args):
    path = os.path.join(c.data_dir("booking"), "booking.db")
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def ticket_status(c, cid, tid):
    r = c.http("catalog", "GET", "/catalogs/%s/tickets" % cid)
    assert r.status == 200, r
    return {t["ticketId"]: t["status"] for t in r.json}[tid]


def wait_ticket(c, cid, tid, status, timeout=15):
    wait_until(lambda: ticket_status(c, cid, tid) == status, timeout, "ticket %s %s" % (tid, status))


def book(c, token, ticket=None, catalog=None, key=None, body=None):
    if body is None:
        body = {"ticketId": ticket} if ticket else {"catalogId": catalog}
    headers = {"Idempotency-Key": key} if key else None
    return c.http("booking", "POST", "/bookings", body, token=token, headers=headers)


def book_ok(c, token, **kw):
    r = book(c, token, **kw)
    assert r.status == 202, r
    return r.json


def get(c, token, bid):
    return c.http("booking", "GET", "/bookings/" + bid, token=token)


def wait_status(c, token, bid, statuses, timeout=20):
    if isinstance(statuses, str):
        statuses = (statuses,)

    def f():
        r = get(c, token, bid)
        assert r.status == 200, r
        return r.json if r.json["status"] in statuses else None

    try:
        return wait_until(f, timeout, "booking %s %s" % (bid, "/".join(statuses)), 0.1)
    except AssertionError as e:
        raise AssertionError("%s; now %r" % (e, get(c, token, bid)))


def card(number=VISA_OK):
    return {"card": number, "expMonth": 12, "expYear": NEXT_YEAR, "cvc": "123"}


def pay(c, token, bid, number=VISA_OK, booking=None):
    """Pays through souk-payment (retrying while payment.requested is on its
    way), or produces payment.succeeded / payment.failed as it would."""
    if HAVE_PAYMENT:
        def f():
            r = c.http("payment", "POST", "/payments/%s/pay" % bid, card(number), token=token)
            if r.status == 409 and (r.json or {}).get("type", "").endswith("payment-not-ready"):
                return None
            return r

        r = wait_until(f, 20, "payment of %s open" % bid, 0.2)
        assert r.status == 200, r
        return r.json
    b = booking or get(c, token, bid).json
    data = {"bookingId": bid, "paymentId": "p-" + uuid.uuid4().hex, "userId": b["userId"],
            "amount": b["amount"], "currency": b["currency"], "cardLast4": number[-4:]}
    if number == VISA_OK:
        ev = envelope("payment.succeeded", data, source="payment", correlation_id=bid)
        c.produce("payment.1", json.dumps(ev), key=bid)
    else:
        data["reason"] = "card_declined"
        ev = envelope("payment.failed", data, source="payment", correlation_id=bid)
        c.produce("payment.2", json.dumps(ev), key=bid)
    return ev


def events_of(c, topic, bid, type=None):
    return [e for e in c.events(topic, type) if e.get("data", {}).get("bookingId") == bid]


def wait_event(c, topic, bid, type, timeout=15):
    return wait_until(lambda: events_of(c, topic, bid, type), timeout,
                      "%s for %s on %s" % (type, bid, topic), 0.3)


def kv_command(c, *args):
    """One RESP command to the broker's key store; returns the raw reply."""
    host, port = c.kv.split(":")
    req = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() if isinstance(x, str) else x for x in args))
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(req)
        data = b""
        while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2
                                              and not data.startswith(b"$-1")):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def hold_exists(c, bid):
    return kv_command(c, "EXISTS", "hold:" + bid).startswith(b":1")


def reserve_reply(c, type, data):
    ev = envelope(type, data, source="catalog", correlation_id=data["bookingId"])
    c.produce("ticket.reservation", json.dumps(ev), key=data["bookingId"])
    return ev


# ---------------------------------------------------------------------------
# the shared cluster (hold 600 s)
# ---------------------------------------------------------------------------


def test_happy_path(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=2, price=4200, currency="EUR")
    u = c.user_token()
    t0 = time.time()
    r = book(c, u, ticket=tids[0])
    assert r.status == 202, r
    b = r.json
    bid = b["bookingId"]
    assert r.headers.get("Location") == "/bookings/" + bid, r.headers
    assert b["status"] == "PENDING" and b["userId"] == u.user_id, b
    assert b["catalogId"] == cid and b["ticketId"] == tids[0], b
    exp = datetime.datetime.strptime(b["expiresAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert t0 + 590 < exp < t0 + 610, b
    assert hold_exists(c, bid), "no hold:%s in the key store" % bid

    w = wait_status(c, u, bid, "AWAITING_PAYMENT")
    assert w["amount"] == 4200 and w["currency"] == "EUR", w  # the catalog's price
    assert ticket_status(c, cid, tids[0]) == "RESERVED"
    req = wait_event(c, "paymentevent", bid, "payment.requested")
    assert req[0]["data"] == {"bookingId": bid, "userId": u.user_id, "amount": 4200, "currency": "EUR"}

    pay(c, u, bid, booking=w)
    done = wait_status(c, u, bid, ("CONFIRMED", "FAILED", "EXPIRED", "CANCELLED"))
    assert done["status"] == "CONFIRMED", done
    wait_ticket(c, cid, tids[0], "SOLD")
    wait_until(lambda: not hold_exists(c, bid), 5, "hold deleted")
    assert [e["data"]["ticketId"] for e in events_of(c, "ticket.success", bid)] == [tids[0]]
    evs = [e["type"] for e in events_of(c, "booking", bid)]
    assert evs == ["booking.created", "booking.confirmed"], evs
    conf = events_of(c, "booking", bid, "booking.confirmed")[0]
    assert conf["data"]["amount"] == 4200 and conf["source"] == "booking", conf

    # the projection knows the ticket is sold: an early 409, no booking made
    assert_problem(book(c, c.user_token(), ticket=tids[0]), 409)


def test_book_any_ticket_of_catalog(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=2)
    u = c.user_token()
    b = book_ok(c, u, catalog=cid)
    assert b["ticketId"] is None and b["catalogId"] == cid, b
    w = wait_status(c, u, b["bookingId"], "AWAITING_PAYMENT")
    assert w["ticketId"] in tids, w
    assert ticket_status(c, cid, w["ticketId"]) == "RESERVED"
    reserve = events_of(c, "ticket.reserve", b["bookingId"])
    assert len(reserve) == 1 and reserve[0]["data"]["ticketId"] is None, reserve


def test_ticket_unavailable_fails(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=1)
    a, b = c.user_token(), c.user_token()
    first = book_ok(c, a, ticket=tids[0])
    wait_status(c, a, first["bookingId"], "AWAITING_PAYMENT")
    second = book_ok(c, b, ticket=tids[0])  # RESERVED is not known SOLD: the catalog decides
    f = wait_status(c, b, second["bookingId"], ("FAILED", "CONFIRMED", "AWAITING_PAYMENT"))
    assert f["status"] == "FAILED" and "not_available" in f["reason"], f
    ev = wait_event(c, "booking", second["bookingId"], "booking.failed")
    assert len(ev) == 1 and ev[0]["data"]["status"] == "FAILED", ev
    assert not hold_exists(c, second["bookingId"])
    # the first booking is untouched
    assert get(c, a, first["bookingId"]).json["status"] == "AWAITING_PAYMENT"
    assert ticket_status(c, cid, tids[0]) == "RESERVED"
    # every ticket of the catalog is taken: a catalog booking fails too
    third = book_ok(c, b, catalog=cid)
    f = wait_status(c, b, third["bookingId"], ("FAILED", "AWAITING_PAYMENT"))
    assert f["status"] == "FAILED" and "sold_out" in f["reason"], f


def test_payment_declined_releases(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=1)
    u = c.user_token()
    bid = book_ok(c, u, ticket=tids[0])["bookingId"]
    w = wait_status(c, u, bid, "AWAITING_PAYMENT")
    pay(c, u, bid, VISA_DECLINED, booking=w)
    f = wait_status(c, u, bid, ("FAILED", "CONFIRMED"))
    assert f["status"] == "FAILED" and f["reason"].startswith("payment failed"), f
    wait_ticket(c, cid, tids[0], "AVAILABLE")
    rel = events_of(c, "ticket.fail", bid)
    assert [e["data"]["ticketId"] for e in rel] == [tids[0]], rel
    # on sale again: another user gets it
    u2 = c.user_token()
    b2 = book_ok(c, u2, ticket=tids[0])["bookingId"]
    wait_status(c, u2, b2, "AWAITING_PAYMENT")


def test_cancel_before_payment(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=1)
    u = c.user_token()
    bid = book_ok(c, u, ticket=tids[0])["bookingId"]
    wait_status(c, u, bid, "AWAITING_PAYMENT")
    # another user: 404, as if it did not exist
    assert_problem(c.http("booking", "POST", "/bookings/%s/cancel" % bid, token=c.user_token()), 404)
    r = c.http("booking", "POST", "/bookings/%s/cancel" % bid, token=u)
    assert r.status == 200 and r.json["status"] == "CANCELLED", r
    wait_ticket(c, cid, tids[0], "AVAILABLE")
    assert not hold_exists(c, bid)
    assert len(events_of(c, "booking", bid, "booking.cancelled")) == 1
    # cancelling again: 409 with the status
    p = assert_problem(c.http("booking", "POST", "/bookings/%s/cancel" % bid, token=u), 409)
    assert p.get("status") == 409
    if HAVE_PAYMENT:
        # paying a cancelled booking: the payment succeeds and is refunded,
        # the booking stays CANCELLED
        pay(c, u, bid)
        wait_event(c, "paymentevent", bid, "refund.requested")
        wait_until(lambda: get(c, u, bid).json["refunded"], 15, "refund recorded")
        assert get(c, u, bid).json["status"] == "CANCELLED"


def test_cancel_after_payment_refunds(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=1)
    u = c.user_token()
    bid = book_ok(c, u, ticket=tids[0])["bookingId"]
    w = wait_status(c, u, bid, "AWAITING_PAYMENT")
    pay(c, u, bid, booking=w)
    wait_status(c, u, bid, "CONFIRMED")
    wait_ticket(c, cid, tids[0], "SOLD")
    # an admin cancels it
    r = c.http("booking", "POST", "/bookings/%s/cancel" % bid, token=admin)
    assert r.status == 200 and r.json["status"] == "CANCELLED", r
    assert "admin" in r.json["reason"], r
    wait_ticket(c, cid, tids[0], "AVAILABLE")
    ref = wait_event(c, "paymentevent", bid, "refund.requested")
    assert len(ref) == 1, ref
    if HAVE_PAYMENT:
        wait_until(lambda: get(c, u, bid).json["refunded"], 15, "payment.refunded recorded")
    evs = [e["type"] for e in events_of(c, "booking", bid)]
    assert evs == ["booking.created", "booking.confirmed", "booking.cancelled"], evs


def test_idempotency_key(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=2)
    u = c.user_token()
    key = "k-" + uuid.uuid4().hex
    r1 = book(c, u, ticket=tids[0], key=key)
    assert r1.status == 202, r1
    time.sleep(0.5)
    r2 = book(c, u, key=key, body={"ticketId": tids[0]})
    assert r2.status == 202 and r2.json == r1.json, (r1, r2)
    assert r2.headers.get("Location") == r1.headers.get("Location")
    # the same body written differently is the same request
    r3 = c.http("booking", "POST", "/bookings", ' {"ticketId" : "%s"} ' % tids[0], token=u,
                headers={"Idempotency-Key": key})
    assert r3.status == 202 and r3.json["bookingId"] == r1.json["bookingId"], r3
    # another body with the same key: 422
    assert_problem(book(c, u, ticket=tids[1], key=key), 422)
    assert_problem(book(c, u, catalog=cid, key=key), 422)
    # one booking only
    mine = c.http("booking", "GET", "/bookings/my", token=u).json
    assert mine["totalElements"] == 1, mine
    assert len(events_of(c, "ticket.reserve", r1.json["bookingId"])) == 1
    # keys are per user: another user's same key is a new request
    u2 = c.user_token()
    r4 = book(c, u2, ticket=tids[1], key=key)
    assert r4.status == 202 and r4.json["bookingId"] != r1.json["bookingId"], r4


def test_visibility_and_lists(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=3)
    u, other = c.user_token(), c.user_token()
    bids = [book_ok(c, u, ticket=t)["bookingId"] for t in tids[:2]]
    for b in bids:
        wait_status(c, u, b, "AWAITING_PAYMENT")
    # another user's booking looks exactly like a missing one
    p1 = assert_problem(get(c, other, bids[0]), 404)
    p2 = assert_problem(get(c, other, "no-such-booking"), 404)
    assert p1["title"] == p2["title"]
    assert_problem(get(c, None, bids[0]), 401)
    # the owner and an admin see it
    assert get(c, u, bids[0]).status == 200
    assert get(c, admin, bids[0]).json["bookingId"] == bids[0]

    r = c.http("booking", "POST", "/bookings/%s/cancel" % bids[1], token=u)
    assert r.status == 200, r
    mine = c.http("booking", "GET", "/bookings/my", token=u).json
    assert mine["totalElements"] == 2 and mine["page"] == 0 and mine["size"] == 20, mine
    assert [b["bookingId"] for b in mine["content"]] == [bids[1], bids[0]]  # newest first
    m = c.http("booking", "GET", "/bookings/my?status=CANCELLED", token=u).json
    assert [b["bookingId"] for b in m["content"]] == [bids[1]], m
    m = c.http("booking", "GET", "/bookings/my?size=1&page=1&sort=createdAt,asc", token=u).json
    assert [b["bookingId"] for b in m["content"]] == [bids[1]] and m["totalPages"] == 2, m
    assert c.http("booking", "GET", "/bookings/my", token=other).json["totalElements"] == 0

    # the admin's list, by catalog and status
    assert_problem(c.http("booking", "GET", "/bookings?catalogId=" + cid, token=u), 403)
    a = c.http("booking", "GET", "/bookings?catalogId=" + cid, token=admin).json
    assert sorted(b["bookingId"] for b in a["content"]) == sorted(bids), a
    a = c.http("booking", "GET", "/bookings?catalogId=%s&status=AWAITING_PAYMENT" % cid, token=admin).json
    assert [b["bookingId"] for b in a["content"]] == [bids[0]], a
    a = c.http("booking", "GET", "/bookings?userId=%s&size=1" % u.user_id, token=admin).json
    assert a["totalElements"] == 2 and len(a["content"]) == 1, a


def test_bad_input_never_5xx(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=1)
    u = c.user_token()
    assert_problem(c.http("booking", "POST", "/bookings", {"ticketId": tids[0]}), 401)
    errs = field_errors(book(c, u, body={}))
    assert "ticketId" in errs, errs
    errs = field_errors(book(c, u, body={"ticketId": tids[0], "catalogId": cid}))
    assert "ticketId" in errs, errs
    for bad in ({"ticketId": 42}, {"ticketId": ""}, {"catalogId": ["x"]}, {"ticketId": "x" * 200},
                {"ticketId": None}, {"catalogId": {"a": 1}}):
        field_errors(book(c, u, body=bad))
    for raw in ("[]", "42", '"str"', "null"):
        assert_problem(c.http("booking", "POST", "/bookings", raw, token=u), 400)
    assert_problem(c.http("booking", "POST", "/bookings", "{not json", token=u), 400)
    errs = field_errors(book(c, u, ticket=tids[0], key="has space"))
    assert "Idempotency-Key" in errs, errs
    field_errors(book(c, u, ticket=tids[0], key="k" * 300))
    # unknown ids: early 404 from the projection
    assert_problem(book(c, u, ticket=str(uuid.uuid4())), 404)
    assert_problem(book(c, u, catalog=str(uuid.uuid4())), 404)
    # lists
    for q in ("status=NOPE", "size=0", "size=101", "page=-1", "sort=price", "sort=createdAt,up",
              "page=x"):
        assert_problem(c.http("booking", "GET", "/bookings/my?" + q, token=u), 400)
    assert_problem(c.http("booking", "GET", "/bookings?status=nope", token=admin), 400)
    assert_problem(c.http("booking", "GET", "/bookings?catalogId=" + "x" * 300, token=admin), 400)
    for path in ("/bookings/%s" % ("x" * 300), "/bookings/%20", "/bookings/a%2Fb", "/bookings/%00"):
        r = get(c, u, path[len("/bookings/"):])
        assert 400 <= r.status < 500, (path, r)
    assert_problem(c.http("booking", "POST", "/bookings/nope/cancel", token=u), 404)
    assert_problem(c.http("booking", "DELETE", "/bookings", token=u), 405)
    # a deactivated catalog: 409 for the catalog and its tickets
    cid2, tids2 = new_catalog(c, admin, tickets=1)
    r = c.http("catalog", "PATCH", "/catalogs/%s/deactivate" % cid2, token=admin)
    assert r.status in (200, 204), r
    wait_until(lambda: booking_db(c, "SELECT status FROM catalogs WHERE id = ?", cid2)[0][0] == "DEACTIVATED",
               15, "projection: catalog deactivated")
    assert_problem(book(c, u, catalog=cid2), 409)
    assert_problem(book(c, u, ticket=tids2[0]), 409)
    assert "runtime error" not in c.log("booking")


def test_race_twenty_users_one_ticket(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=1)
    users = [c.user_token() for _ in range(20)]
    results = [None] * 20
    start = threading.Barrier(20)

    def go(i):
        start.wait()
        results[i] = book(c, users[i], ticket=tids[0])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None and r.status == 202 for r in results), results
    bids = [r.json["bookingId"] for r in results]
    final = [wait_status(c, users[i], bids[i], ("AWAITING_PAYMENT", "FAILED"), 30) for i in range(20)]
    winners = [i for i, b in enumerate(final) if b["status"] == "AWAITING_PAYMENT"]
    assert len(winners) == 1, [b["status"] for b in final]
    assert sum(1 for b in final if b["status"] == "FAILED" and b["reason"]) == 19
    w = winners[0]
    pay(c, users[w], bids[w], booking=final[w])
    wait_status(c, users[w], bids[w], "CONFIRMED")
    wait_ticket(c, cid, tids[0], "SOLD")
    assert [e["data"]["bookingId"] for e in c.events("ticket.success")].count(bids[w]) == 1


def test_late_and_duplicate_events_are_noops(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=2)
    u = c.user_token()
    bid = book_ok(c, u, ticket=tids[0])["bookingId"]
    w = wait_status(c, u, bid, "AWAITING_PAYMENT")
    pay(c, u, bid, booking=w)
    wait_status(c, u, bid, "CONFIRMED")
    # a duplicate payment.succeeded (new event id), a late ticket.unavailable
    # and payment.failed: nothing changes, nothing is emitted twice
    data = {"bookingId": bid, "paymentId": "p-dup", "userId": u.user_id, "amount": w["amount"],
            "currency": w["currency"]}
    c.produce("payment.1", json.dumps(envelope("payment.succeeded", data, source="payment")), key=bid)
    c.produce("payment.2", json.dumps(envelope("payment.failed", dict(data, reason="late"),
                                               source="payment")), key=bid)
    reserve_reply(c, "ticket.unavailable", {"bookingId": bid, "reason": "late"})
    # a second reservation for a confirmed booking (another ticket): released
    reserve_reply(c, "ticket.reserved", {"bookingId": bid, "ticketId": tids[1], "price": 1, "currency": "EUR"})
    rel = wait_event(c, "ticket.fail", bid, "ticket.release")
    assert [e["data"]["ticketId"] for e in rel] == [tids[1]], rel
    # a redelivered reservation of the ticket it holds: nothing
    reserve_reply(c, "ticket.reserved", {"bookingId": bid, "ticketId": tids[0], "price": 1, "currency": "EUR"})
    wait_until(lambda: booking_db(
        c, "SELECT count(*) FROM processed_events WHERE consumer = 'booking'")[0][0] > 0, 5, "inbox")
    time.sleep(2)
    b = get(c, u, bid).json
    assert b["status"] == "CONFIRMED" and b["amount"] == w["amount"] and b["ticketId"] == tids[0], b
    assert len(events_of(c, "booking", bid, "booking.confirmed")) == 1
    assert len(events_of(c, "ticket.success", bid)) == 1
    assert [e["data"]["ticketId"] for e in events_of(c, "ticket.fail", bid)] == [tids[1]]
    assert not events_of(c, "paymentevent", bid, "refund.requested")
    assert ticket_status(c, cid, tids[0]) == "SOLD"
    # a reservation for a booking nobody knows is released too
    ghost = "b-" + uuid.uuid4().hex
    reserve_reply(c, "ticket.reserved", {"bookingId": ghost, "ticketId": tids[1], "price": 1, "currency": "EUR"})
    wait_event(c, "ticket.fail", ghost, "ticket.release")
    assert not c.events("booking.dlq") and not c.events("payment.1.dlq")


def test_payment_decided_after_deadline_is_refunded(c):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=1)
    u = c.user_token()
    bid = book_ok(c, u, ticket=tids[0])["bookingId"]
    w = wait_status(c, u, bid, "AWAITING_PAYMENT")
    # payment.succeeded decided after expiresAt, before any expiry ran
    exp = datetime.datetime.strptime(w["expiresAt"], "%Y-%m-%dT%H:%M:%S.%fZ")
    ev = envelope("payment.succeeded", {"bookingId": bid, "paymentId": "p-late", "userId": u.user_id,
                                        "amount": w["amount"], "currency": w["currency"]},
                  source="payment", correlation_id=bid)
    ev["time"] = (exp + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    c.produce("payment.1", json.dumps(ev), key=bid)
    e = wait_status(c, u, bid, ("EXPIRED", "CONFIRMED"))
    assert e["status"] == "EXPIRED" and "before the payment" in e["reason"], e
    ref = wait_event(c, "paymentevent", bid, "refund.requested")
    assert len(ref) == 1 and ref[0]["causationId"] == ev["id"], ref
    wait_ticket(c, cid, tids[0], "AVAILABLE")
    assert not events_of(c, "ticket.success", bid)
    assert len(events_of(c, "booking", bid, "booking.expired")) == 1


# ---------------------------------------------------------------------------
# clusters of their own: short holds
# ---------------------------------------------------------------------------


class DeadKvCluster(souktest.Cluster):
    """booking's --kv points at a port nobody listens on: only its sweeper
    can expire holds.  /ready then reports the key store down, so wait for
    /health only."""

    def __init__(self, dead_port, **kw):
        super().__init__(**kw)
        self.dead_port = dead_port

    def _cmd(self, name):
        cmd = super()._cmd(name)
        if name == "booking":
            cmd += ["--kv", "127.0.0.1:%d" % self.dead_port]
        return cmd

    def wait_ready(self, name, timeout=souktest.START_TIMEOUT):
        if name != "booking":
            return super().wait_ready(name, timeout)

        def healthy():
            try:
                return self.http(name, "GET", "/health", timeout=2).status == 200
            except OSError:
                return False

        wait_until(healthy, timeout, "booking /health")
        # the consumer must have joined before the test relies on replies
        wait_until(lambda: "messaging" in self.log("booking"), timeout, "booking's messaging started")


def expiry_checks(c, hold, via):
    admin = c.admin_token()
    cid, tids = new_catalog(c, admin, tickets=3)
    u = c.user_token()
    # warm up: the consumer groups of a fresh cluster take a moment to form,
    # and the test booking must reach AWAITING_PAYMENT inside its short hold
    warm = book_ok(c, u, ticket=tids[2])["bookingId"]
    wait_status(c, u, warm, ("AWAITING_PAYMENT", "EXPIRED"), 30)
    bid = book_ok(c, u, ticket=tids[0])["bookingId"]
    w = wait_status(c, u, bid, ("AWAITING_PAYMENT",) + ("EXPIRED",), 15)
    t_created = datetime.datetime.strptime(w["createdAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    e = wait_status(c, u, bid, ("EXPIRED", "CONFIRMED", "FAILED", "CANCELLED"), hold + 10)
    assert e["status"] == "EXPIRED", e
    t_expired = datetime.datetime.strptime(e["updatedAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert t_expired - t_created <= hold + 2, (t_created, t_expired, e)
    assert via in e["reason"], e
    wait_ticket(c, cid, tids[0], "AVAILABLE")
    assert len(events_of(c, "booking", bid, "booking.expired")) == 1
    return cid, tids, u, bid, w


def test_hold_expiry_and_late_payment():
    # the sweeper only runs at start: expiry must come from kv.expired
    with souktest.Cluster(services=SERVICES,
                          extra_args={"booking": ["--hold-seconds", "2", "--sweep-ms", "600000"]},
                          name="booking-expiry") as c:
        cid, tids, u, bid, w = expiry_checks(c, 2, "key store")
        assert not hold_exists(c, bid)
        # paying after expiry: the booking stays EXPIRED and the money goes back
        pay(c, u, bid, booking=w)
        ref = wait_event(c, "paymentevent", bid, "refund.requested")
        assert "EXPIRED" in ref[0]["data"]["reason"], ref
        if HAVE_PAYMENT:
            wait_until(lambda: get(c, u, bid).json["refunded"], 15, "payment.refunded recorded")
        b = get(c, u, bid).json
        assert b["status"] == "EXPIRED", b
        assert ticket_status(c, cid, tids[0]) == "AVAILABLE"

        # a reservation that comes after the booking expired is released:
        # stop the catalog, book, let the hold run out while PENDING, start it
        c.stop("catalog")
        b2 = book_ok(c, u, ticket=tids[1])["bookingId"]
        e = wait_status(c, u, b2, ("EXPIRED", "AWAITING_PAYMENT", "FAILED"), 10)
        assert e["status"] == "EXPIRED", e
        assert not events_of(c, "ticket.fail", b2)
        c.start("catalog")
        rel = wait_event(c, "ticket.fail", b2, "ticket.release", 30)
        assert rel[0]["data"]["ticketId"] == tids[1], rel
        wait_ticket(c, cid, tids[1], "AVAILABLE")
        assert get(c, u, b2).json["status"] == "EXPIRED"


def test_sweeper_alone_expires():
    dead = souktest._free_ports(1)[0]
    with DeadKvCluster(dead, services=SERVICES, extra_args={"booking": ["--hold-seconds", "2"]},
                       name="booking-sweeper") as c:
        r = c.http("booking", "GET", "/ready")
        assert r.status == 503, r  # the key store is down, and /ready says so
        cid, tids, u, bid, w = expiry_checks(c, 2, "sweeper")
        assert "SET hold:" in c.log("booking") or "not set" in c.log("booking")


def test_kill9_with_open_holds():
    with souktest.Cluster(services=SERVICES, extra_args={"booking": ["--hold-seconds", "3"]},
                          name="booking-kill9") as c:
        admin = c.admin_token()
        cid, tids = new_catalog(c, admin, tickets=4)
        users = [c.user_token() for _ in tids]
        bids = [book_ok(c, users[i], ticket=t)["bookingId"] for i, t in enumerate(tids)]
        for i, b in enumerate(bids):
            wait_status(c, users[i], b, "AWAITING_PAYMENT", 15)
        c.kill9("booking")
        time.sleep(5)  # every deadline passes while booking is down
        for t in tids:
            assert ticket_status(c, cid, t) == "RESERVED"
        c.start("booking")
        for i, b in enumerate(bids):
            e = wait_status(c, users[i], b, ("EXPIRED", "CONFIRMED", "FAILED"), 10)
            assert e["status"] == "EXPIRED", e
        for t in tids:
            wait_ticket(c, cid, t, "AVAILABLE")
        # each booking expired once, each ticket released once
        for b in bids:
            assert len(events_of(c, "booking", b, "booking.expired")) == 1, b
            assert len(events_of(c, "ticket.fail", b)) == 1, b


if __name__ == "__main__":
    souktest.main(globals())
