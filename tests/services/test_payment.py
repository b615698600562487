"""souk-payment against the real broker and souk-auth.

payment.requested / refund.requested / booking.* envelopes are produced with
kcat as souk-booking would; the user pays over HTTP with the sandbox's test
cards; payment.1 / payment.2 / payment.3 are read back with kcat.
"""

import datetime
import json
import os
import sqlite3
import time
import uuid

import souktest
from souktest import assert_problem, envelope, field_errors, wait_until

# The harness names the services it knows; payment may not be one of them yet.
if "payment" not in souktest.SERVICE_NAMES:
    souktest.SERVICE_NAMES = tuple(souktest.SERVICE_NAMES) + ("payment",)

CLUSTER = dict(services=("auth", "payment"))

VISA_OK = "4242 4242 4242 4242"
VISA_DECLINED = "4000 0000 0000 0002"
VISA_NO_FUNDS = "4000 0000 0000 9995"
NEXT_YEAR = datetime.datetime.now(datetime.timezone.utc).year + 1

# Every full card number the tests send: none may ever be stored or logged.
CARD_NUMBERS = [
    b"4242424242424242",
    b"4000000000000002",
    b"4000000000009995",
    b"5555555555554444",
    b"4242 4242 4242 4242",
]


def card(number=VISA_OK, month=12, year=NEXT_YEAR, cvc="123"):
    return {"card": number, "expMonth": month, "expYear": year, "cvc": cvc}


def new_booking_id():
    return str(uuid.uuid4())


def request_payment(c, booking_id, user_id, amount=2500, currency="EUR"):
    """Produces payment.requested as souk-booking does; returns the envelope."""
    ev = envelope(
        "payment.requested",
        {"bookingId": booking_id, "userId": user_id, "amount": amount, "currency": currency},
        source="booking",
        correlation_id=booking_id,
    )
    c.produce("paymentevent", json.dumps(ev), key=booking_id)
    return ev


def refund(c, booking_id, reason="booking expired", user_id=None):
    data = {"bookingId": booking_id, "reason": reason}
    if user_id:
        data["userId"] = user_id
    ev = envelope("refund.requested", data, source="booking", correlation_id=booking_id)
    c.produce("paymentevent", json.dumps(ev), key=booking_id)
    return ev


def booking_event(c, type, booking_id, user_id, status, reason=None):
    data = {
        "bookingId": booking_id,
        "userId": user_id,
        "catalogId": "cat-1",
        "ticketId": None,
        "status": status,
    }
    if type == "booking.created":
        data["expiresAt"] = souktest.now_rfc3339()
    else:
        data["reason"] = reason or "ticket_unavailable"
    c.produce("booking", json.dumps(envelope(type, data, source="booking")), key=booking_id)


def get_payment(c, token, booking_id):
    return c.http("payment", "GET", "/payments/%s" % booking_id, token=token)


def pay(c, token, booking_id, body):
    return c.http("payment", "POST", "/payments/%s/pay" % booking_id, body, token=token)


def wait_status(c, token, booking_id, status, timeout=15):
    def f():
        r = get_payment(c, token, booking_id)
        return r.json if r.status == 200 and r.json.get("status") == status else None

    return wait_until(f, timeout, "payment of %s %s" % (booking_id, status))


def pending_payment(c, token, amount=2500, currency="EUR"):
    bid = new_booking_id()
    ev = request_payment(c, bid, token.user_id, amount, currency)
    p = wait_status(c, token, bid, "PENDING")
    return bid, ev, p


def events_of(c, topic, booking_id, type=None):
    return [e for e in c.events(topic, type) if e.get("data", {}).get("bookingId") == booking_id]


def wait_event(c, topic, booking_id, type, timeout=15):
    return wait_until(
        lambda: events_of(c, topic, booking_id, type), timeout, "%s for %s on %s" % (type, booking_id, topic)
    )


def wait_log(c, text, timeout=15):
    wait_until(lambda: text in c.log("payment"), timeout, "payment's log to mention %r" % text)


def fnv1a_percent(s):
    h = 2166136261
    for b in s.encode():
        h ^= b
        h = (h * 16777619) & 0xFFFFFFFF
    return h % 100


def db_rows(c, sql, *args):
    path = os.path.join(c.data_dir("payment"), "payment.db")
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------


def test_consumed_topics_exist(c):
    # librdkafka 2.0.2's group consumer asks for its topics' metadata with
    # AllowAutoTopicCreation=false (whatever allow.auto.create.topics says),
    # and notices a topic created after it joined only at the next metadata
    # refresh (topic.metadata.refresh.interval.ms, 5 minutes).  Create the
    # topics payment consumes, then start it again so that it subscribes to
    # topics that exist.
    c.produce("paymentevent", json.dumps(envelope("refund.requested", {
        "bookingId": "topic-setup", "reason": "creates the topic"}, source="test")), key="topic-setup")
    booking_event(c, "booking.created", "topic-setup", "nobody", "PENDING")
    c.restart("payment")
    wait_log(c, "refund.requested")


def test_requested_then_paid(c):
    tok = c.user_token()
    bid, req_ev, p = pending_payment(c, tok, amount=4999, currency="USD")
    assert p["bookingId"] == bid and p["userId"] == tok.user_id, p
    assert p["amount"] == 4999 and p["currency"] == "USD", p
    assert p["cardLast4"] is None and isinstance(p["paymentId"], str), p
    uuid.UUID(p["paymentId"])

    r = pay(c, tok, bid, card(VISA_OK))
    assert r.status == 200, r
    paid = r.json
    assert paid["status"] == "SUCCEEDED" and paid["cardLast4"] == "4242", paid
    assert paid["paymentId"] == p["paymentId"] and paid["amount"] == 4999, paid
    assert "reason" not in paid, paid

    ev = wait_event(c, "payment.1", bid, "payment.succeeded")
    assert len(ev) == 1, ev
    e = ev[0]
    assert e["source"] == "payment", e
    assert e["correlationId"] == req_ev["correlationId"], e
    d = e["data"]
    assert d["paymentId"] == p["paymentId"] and d["userId"] == tok.user_id, d
    assert d["amount"] == 4999 and d["currency"] == "USD" and d["cardLast4"] == "4242", d

    # A second pay, even with a card that would be declined, returns the
    # first decision and charges nothing more.
    for body in (card(VISA_OK), card(VISA_DECLINED)):
        r2 = pay(c, tok, bid, body)
        assert r2.status == 200, r2
        assert r2.json == paid, (r2.json, paid)
    assert get_payment(c, tok, bid).json == paid
    time.sleep(1.5)
    assert len(events_of(c, "payment.1", bid)) == 1
    assert events_of(c, "payment.2", bid) == []


def test_declined_card(c):
    tok = c.user_token()
    bid, _, _ = pending_payment(c, tok)
    r = pay(c, tok, bid, card(VISA_DECLINED, cvc="0123"))
    assert r.status == 200, r
    assert r.json["status"] == "FAILED" and r.json["reason"] == "card_declined", r
    assert r.json["cardLast4"] == "0002", r
    ev = wait_event(c, "payment.2", bid, "payment.failed")
    assert len(ev) == 1 and ev[0]["data"]["reason"] == "card_declined", ev
    assert ev[0]["data"]["cardLast4"] == "0002", ev
    # Decided: a good card now changes nothing.
    r2 = pay(c, tok, bid, card(VISA_OK))
    assert r2.status == 200 and r2.json == r.json, r2
    assert events_of(c, "payment.1", bid) == []


def test_insufficient_funds(c):
    tok = c.user_token()
    bid, _, _ = pending_payment(c, tok)
    r = pay(c, tok, bid, card(VISA_NO_FUNDS))
    assert r.status == 200, r
    assert r.json["status"] == "FAILED" and r.json["reason"] == "insufficient_funds", r
    ev = wait_event(c, "payment.2", bid, "payment.failed")
    assert ev[0]["data"]["reason"] == "insufficient_funds", ev


def test_any_other_valid_card_succeeds(c):
    tok = c.user_token()
    bid, _, _ = pending_payment(c, tok)
    r = pay(c, tok, bid, card("5555555555554444", month=1, year=NEXT_YEAR + 5, cvc="9999"))
    assert r.status == 200 and r.json["status"] == "SUCCEEDED" and r.json["cardLast4"] == "4444", r


def test_card_validation(c):
    tok = c.user_token()
    bid, _, _ = pending_payment(c, tok)
    now = datetime.datetime.now(datetime.timezone.utc)
    cases = [
        (card("4242 4242 4242 4241"), {"card"}),  # Luhn
        (card("4242"), {"card"}),  # too short
        (card("4242 4242 4242 4242 4242"), {"card"}),  # 20 digits
        (card("4242-4242-4242-4242"), {"card"}),
        (card("abcd efgh ijkl mnop"), {"card"}),
        (card(""), {"card"}),
        (card(4242424242424242), {"card"}),  # a number, not a string
        (card(month=13), {"expMonth"}),
        (card(month=0), {"expMonth"}),
        (card(month="12"), {"expMonth"}),
        (card(year=27), {"expYear"}),
        (card(year=now.year - 1), {"expYear"}),  # expired last year
        (card(cvc="12"), {"cvc"}),
        (card(cvc="12345"), {"cvc"}),
        (card(cvc="12a"), {"cvc"}),
        (card(cvc=123), {"cvc"}),
        ({}, {"card", "expMonth", "expYear", "cvc"}),
        (card("1234", month=99, year=1, cvc=""), {"card", "expMonth", "expYear", "cvc"}),
    ]
    if now.month > 1:  # expired earlier this year: the month is to blame
        cases.append((card(month=now.month - 1, year=now.year), {"expMonth"}))
    for body, fields in cases:
        r = pay(c, tok, bid, body)
        errs = field_errors(r)
        assert set(errs) == fields, (body, errs)
        for number in CARD_NUMBERS:
            assert number not in r.body, r
    for raw in ("not json", "[1, 2]", '"4242424242424242"', "null"):
        r = c.http("payment", "POST", "/payments/%s/pay" % bid, raw, token=tok)
        assert_problem(r, 400)
    # This month's card is still good; nothing was decided by the bad tries.
    assert get_payment(c, tok, bid).json["status"] == "PENDING"
    r = pay(c, tok, bid, card(month=now.month, year=now.year))
    assert r.status == 200 and r.json["status"] == "SUCCEEDED", r


def test_owner_only(c):
    tok = c.user_token()
    other = c.user_token()
    admin = c.admin_token()
    bid, _, _ = pending_payment(c, tok)

    for t in (other,):
        p = assert_problem(get_payment(c, t, bid), 404)
        assert bid not in json.dumps({k: v for k, v in p.items() if k != "instance"}), p
        assert_problem(pay(c, t, bid, card()), 404)
    # The same answer as for a booking nobody has.
    assert_problem(get_payment(c, tok, new_booking_id()), 404)
    assert_problem(pay(c, tok, new_booking_id(), card()), 404)
    assert_problem(get_payment(c, tok, "x" * 300), 404)
    # No token.
    assert_problem(c.http("payment", "GET", "/payments/%s" % bid), 401)
    assert_problem(c.http("payment", "POST", "/payments/%s/pay" % bid, card()), 401)
    # The admin sees it; the other user's failed attempt decided nothing.
    r = get_payment(c, admin, bid)
    assert r.status == 200 and r.json["status"] == "PENDING" and r.json["userId"] == tok.user_id, r


def test_pay_before_payment_requested(c):
    tok = c.user_token()
    other = c.user_token()
    bid = new_booking_id()
    booking_event(c, "booking.created", bid, tok.user_id, "PENDING")

    def not_ready():
        r = pay(c, tok, bid, card())
        return r if r.status == 409 else None

    r = wait_until(not_ready, 15, "pay answering 409 once booking.created is known")
    assert_problem(r, 409, "payment-not-ready")
    assert r.headers.get("retry-after") == "1", r.headers
    assert_problem(pay(c, other, bid, card()), 404)
    assert_problem(get_payment(c, tok, bid), 404)
    # Bad card data is reported even before the payment exists.
    assert set(field_errors(pay(c, tok, bid, card(cvc="1")))) == {"cvc"}

    request_payment(c, bid, tok.user_id)
    wait_status(c, tok, bid, "PENDING")
    r = pay(c, tok, bid, card())
    assert r.status == 200 and r.json["status"] == "SUCCEEDED", r

    # A booking that ended without a payment: no point retrying.
    gone = new_booking_id()
    booking_event(c, "booking.created", gone, tok.user_id, "PENDING")
    booking_event(c, "booking.failed", gone, tok.user_id, "FAILED")

    def ended():
        r = pay(c, tok, gone, card())
        return r if r.status == 409 and r.json.get("type", "").endswith("booking-ended") else None

    r = wait_until(ended, 15, "pay answering booking-ended")
    assert "retry-after" not in r.headers, r.headers


def test_duplicate_payment_requested(c):
    tok = c.user_token()
    bid, first, p = pending_payment(c, tok, amount=1000)
    second = request_payment(c, bid, tok.user_id, amount=2000)
    wait_log(c, "payment.requested %s ignored" % second["id"])
    # The very same event again (a redelivery) is skipped by the inbox.
    c.produce("paymentevent", json.dumps(first), key=bid)
    wait_log(c, "duplicate payment.requested %s skipped" % first["id"])
    r = get_payment(c, tok, bid)
    assert r.status == 200 and r.json == p, (r.json, p)
    assert db_rows(c, "SELECT count(*) FROM payments WHERE booking_id = ?", bid) == [(1,)]


def test_refunds(c):
    tok = c.user_token()
    # SUCCEEDED -> REFUNDED, once.
    bid, _, _ = pending_payment(c, tok)
    assert pay(c, tok, bid, card()).json["status"] == "SUCCEEDED"
    rf = refund(c, bid, "booking expired", tok.user_id)
    ev = wait_event(c, "payment.3", bid, "payment.refunded")
    assert len(ev) == 1, ev
    d = ev[0]["data"]
    assert d["reason"] == "booking expired" and d["amount"] == 2500 and d["cardLast4"] == "4242", d
    assert ev[0]["causationId"] == rf["id"], ev
    p = wait_status(c, tok, bid, "REFUNDED")
    assert p["refundReason"] == "booking expired" and p["refundedAt"], p
    second = refund(c, bid, "again")
    wait_log(c, "refund.requested %s for booking %s" % (second["id"], bid))
    r = pay(c, tok, bid, card())
    assert r.status == 200 and r.json["status"] == "REFUNDED", r
    time.sleep(1)
    assert len(events_of(c, "payment.3", bid)) == 1
    assert len(events_of(c, "payment.1", bid)) == 1

    # FAILED: nothing to refund.
    failed, _, _ = pending_payment(c, tok)
    assert pay(c, tok, failed, card(VISA_DECLINED)).json["status"] == "FAILED"
    rf = refund(c, failed, "booking cancelled")
    wait_log(c, "refund.requested %s for booking %s" % (rf["id"], failed))
    assert get_payment(c, tok, failed).json["status"] == "FAILED"
    assert events_of(c, "payment.3", failed) == []

    # PENDING: cancelled; a later pay is refused.
    pending, _, _ = pending_payment(c, tok)
    refund(c, pending, "booking cancelled")
    p = wait_status(c, tok, pending, "CANCELLED")
    assert p["refundReason"] == "booking cancelled", p
    assert_problem(pay(c, tok, pending, card()), 409, "payment-cancelled")
    assert events_of(c, "payment.1", pending) == [] and events_of(c, "payment.3", pending) == []

    # No payment at all.
    nobody = new_booking_id()
    rf = refund(c, nobody, "whatever")
    wait_log(c, "refund.requested %s for booking %s, which has no payment" % (rf["id"], nobody))


def test_poison_payment_requested_goes_to_dlq(c):
    tok = c.user_token()
    bid = new_booking_id()
    ev = envelope(
        "payment.requested",
        {"bookingId": bid, "userId": tok.user_id, "amount": -5, "currency": "EUR"},
        source="booking",
    )
    c.produce("paymentevent", json.dumps(ev), key=bid)
    c.wait_for(
        "paymentevent.dlq",
        lambda recs: any(v and ev["id"].encode() in v for _, v in recs),
        timeout=30,
        what="the negative amount in the DLQ",
    )
    assert_problem(get_payment(c, tok, bid), 404)


def test_bad_input_never_5xx(c):
    tok = c.user_token()
    bid, _, _ = pending_payment(c, tok)
    bodies = [
        {"card": None, "expMonth": None, "expYear": None, "cvc": None},
        {"card": ["4242"], "expMonth": 1.5, "expYear": 2030.0001, "cvc": {"x": 1}},
        {"card": "4" * 5000, "expMonth": -1, "expYear": 2 ** 60, "cvc": "1" * 100},
        {"card": "\u0664\u0662\u0664\u0662 4242 4242 4242", "expMonth": 12, "expYear": NEXT_YEAR, "cvc": "123"},
        {"card": VISA_OK, "expMonth": True, "expYear": NEXT_YEAR, "cvc": "123"},
    ]
    for b in bodies:
        r = pay(c, tok, bid, b)
        assert_problem(r, 400)
    for path in ("/payments/%25/pay", "/payments/a%20b", "/payments/%s/pay/x" % bid, "/payments/"):
        r = c.http("payment", "POST", path, card(), token=tok)
        assert 400 <= r.status < 500, (path, r)
    r = c.http("payment", "DELETE", "/payments/%s" % bid, token=tok)
    assert_problem(r, 405)
    assert get_payment(c, tok, bid).json["status"] == "PENDING"


def test_card_numbers_never_stored_or_logged(c):
    # Every test above has paid by now; the last pays happen just before.
    tok = c.user_token()
    bid, _, _ = pending_payment(c, tok)
    assert pay(c, tok, bid, card(VISA_OK)).json["status"] == "SUCCEEDED"
    data = c.data_dir("payment")
    files = [os.path.join(data, f) for f in os.listdir(data)]
    assert any(f.endswith("payment.db") for f in files), files
    files += [os.path.join(c.tmp, "payment.stderr"), os.path.join(c.tmp, "payment.stdout")]
    for path in files:
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            blob = f.read()
        for number in CARD_NUMBERS:
            assert number not in blob, "%s holds a card number" % path
    rows = db_rows(c, "SELECT DISTINCT card_last4 FROM payments WHERE card_last4 IS NOT NULL")
    assert all(len(r[0]) == 4 for r in rows), rows
    for topic in ("payment.1", "payment.2", "payment.3"):
        for _, v in c.consume(topic):
            for number in CARD_NUMBERS:
                assert v is None or number not in v, topic


def test_auto_pay(c):
    tok = c.user_token()
    c.extra_args["payment"] = ["--auto-pay"]
    c.restart("payment")
    req = request_payment(c, new_booking_id(), tok.user_id, amount=700)
    bid = req["data"]["bookingId"]
    p = wait_status(c, tok, bid, "SUCCEEDED")
    assert p["cardLast4"] is None and p["amount"] == 700, p
    ev = wait_event(c, "payment.1", bid, "payment.succeeded")
    assert len(ev) == 1 and ev[0]["causationId"] == req["id"], ev
    assert ev[0]["correlationId"] == req["correlationId"], ev
    # pay on an auto-paid payment returns the decision.
    r = pay(c, tok, bid, card(VISA_DECLINED))
    assert r.status == 200 and r.json["status"] == "SUCCEEDED", r

    c.extra_args["payment"] = ["--auto-pay", "--auto-pay-decline-percent", "100"]
    c.restart("payment")
    bids = [new_booking_id() for _ in range(3)]
    for b in bids:
        request_payment(c, b, tok.user_id)
    for b in bids:
        p = wait_status(c, tok, b, "FAILED")
        assert p["reason"] == "card_declined", p
        assert len(wait_event(c, "payment.2", b, "payment.failed")) == 1

    # 50 %: deterministic by booking id (FNV-1a of the id, mod 100).
    c.extra_args["payment"] = ["--auto-pay-decline-percent=50", "--auto-pay"]
    c.restart("payment")
    bids = [new_booking_id() for _ in range(8)]
    for b in bids:
        request_payment(c, b, tok.user_id)
    for b in bids:
        want = "FAILED" if fnv1a_percent(b) < 50 else "SUCCEEDED"
        wait_status(c, tok, b, want)

    # Off again: payments wait for the user.
    c.extra_args["payment"] = []
    c.restart("payment")
    bid, _, _ = pending_payment(c, tok)


if __name__ == "__main__":
    souktest.main(globals())
