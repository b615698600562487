"""The saga's unhappy endings end to end, each with its email through SMTP:

- a declined card (4000 0000 0000 0002) -> FAILED, the ticket AVAILABLE
  again, the payment FAILED, a "Booking failed" email;
- a hold that runs out (--hold-seconds 2, not paid) -> EXPIRED within
  hold + 2 s, the ticket AVAILABLE, a "Booking expired" email; paying it
  afterwards leaves it EXPIRED and refunds the payment (payment.refunded,
  GET /payments shows REFUNDED, a refund email);
- cancel before payment -> CANCELLED, the ticket AVAILABLE, an email, and a
  later payment never stays charged;
- cancel after payment -> CANCELLED, the ticket AVAILABLE again, the payment
  REFUNDED, a cancellation and a refund email.
"""

import datetime
import time

import e2e
import souktest

SMTP = e2e.smtp()


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def settle_one(s, u, prefix, secs=1.5):
    """After secs, u still has exactly one email starting with prefix."""
    time.sleep(secs)
    ms = s.mails(u, lambda m: m.subject.startswith(prefix))
    assert len(ms) == 1, ms


def declined(c, s):
    title = "Declined Cards 101"
    cid, tids = s.catalog(tickets=1, title=title)
    u = s.user()
    bid = s.book(u, ticket=tids[0])["bookingId"]
    s.wait_status(u, bid, "AWAITING_PAYMENT")
    r = s.pay(u, bid, e2e.VISA_DECLINED)
    assert r.status == 200 and r.json["status"] == "FAILED" and r.json["reason"] == "card_declined", r
    f = s.wait_status(u, bid, e2e.TERMINAL)
    assert f["status"] == "FAILED" and f["reason"], f
    s.wait_ticket(cid, tids[0], "AVAILABLE")
    assert s.payment(u, bid).json["status"] == "FAILED"
    m = s.wait_mail(u, "Booking failed")
    assert m.subject == "Booking failed: " + title, m.subject
    settle_one(s, u, "Booking")
    # back on sale: another user gets it
    u2 = s.user()
    b2 = s.book(u2, ticket=tids[0])["bookingId"]
    s.wait_status(u2, b2, "AWAITING_PAYMENT")


def cancel_before_payment(c, s):
    title = "Cancel Early 101"
    cid, tids = s.catalog(tickets=1, title=title)
    u = s.user()
    bid = s.book(u, ticket=tids[0])["bookingId"]
    s.wait_status(u, bid, "AWAITING_PAYMENT")
    r = s.cancel(u, bid)
    assert r.status == 200 and r.json["status"] == "CANCELLED", r
    s.wait_ticket(cid, tids[0], "AVAILABLE")
    m = s.wait_mail(u, "Booking cancelled")
    assert m.subject == "Booking cancelled: " + title, m.subject
    # paying the cancelled booking: the money never stays taken
    r = s.pay(u, bid)
    assert r.status in (200, 409), r
    if r.status == 200 and r.json["status"] == "SUCCEEDED":
        s.wait_payment(u, bid, "REFUNDED")
    assert s.payment(u, bid).json["status"] in ("REFUNDED", "CANCELLED", "FAILED")
    assert s.get(u, bid).json["status"] == "CANCELLED"
    assert s.ticket_status(cid, tids[0]) == "AVAILABLE"
    settle_one(s, u, "Booking")


def cancel_after_payment(c, s):
    title = "Cancel Late 101"
    cid, tids = s.catalog(tickets=1, price=3300, title=title)
    u = s.user()
    bid = s.book(u, ticket=tids[0])["bookingId"]
    s.wait_status(u, bid, "AWAITING_PAYMENT")
    assert s.pay(u, bid).json["status"] == "SUCCEEDED"
    s.wait_status(u, bid, "CONFIRMED")
    s.wait_ticket(cid, tids[0], "SOLD")
    r = s.cancel(u, bid)
    assert r.status == 200 and r.json["status"] == "CANCELLED", r
    s.wait_ticket(cid, tids[0], "AVAILABLE")
    p = s.wait_payment(u, bid, "REFUNDED")
    assert p["amount"] == 3300, p
    refunded = published_refunds(s, bid)
    assert len(refunded) == 1, refunded
    s.wait_mail(u, "Booking confirmed")
    m = s.wait_mail(u, "Booking cancelled")
    assert m.subject == "Booking cancelled: " + title, m.subject
    m = s.wait_mail(u, "Refund")
    assert m.subject == "Refund of 33.00 EUR: " + title, m.subject
    wait = souktest.wait_until
    wait(lambda: s.get(u, bid).json["refunded"], 15, "booking records the refund")
    time.sleep(1.5)
    assert len(s.mails(u, lambda m: not m.subject.startswith("Welcome"))) == 3, s.mails(u)
    # cancelling again: 409, nothing more
    assert s.cancel(u, bid).status == 409


def published_refunds(s, bid):
    """The payment.refunded events of bid on payment.3.  payment's relay
    publishes them a moment after the commit that made GET /payments say
    REFUNDED: wait for the first, then a little for any duplicate."""

    def refunds():
        return [x for x in s.events_of("payment.3", bid) if x["type"] == "payment.refunded"]

    souktest.wait_until(refunds, 10, "payment.refunded of %s on payment.3" % bid)
    time.sleep(0.5)
    return refunds()


def test_declined_and_cancels():
    with e2e.cluster(SMTP, name="e2e-failures") as c:
        s = e2e.Saga(c, SMTP)
        declined(c, s)
        cancel_before_payment(c, s)
        cancel_after_payment(c, s)


def test_hold_expiry_and_late_payment():
    hold = 2
    with e2e.cluster(SMTP, name="e2e-expiry", booking=["--hold-seconds", hold]) as c:
        s = e2e.Saga(c, SMTP)
        title = "Expiring Holds 101"
        cid, tids = s.catalog(tickets=2, title=title)
        u = s.user()
        # warm up: the consumer groups of a fresh cluster take a moment to form
        warm = s.book(u, ticket=tids[1])["bookingId"]
        s.wait_status(u, warm, ("AWAITING_PAYMENT", "EXPIRED"), 30)
        s.wait_status(u, warm, "EXPIRED", 15)

        t0 = time.time()
        b = s.book(u, ticket=tids[0])
        bid = b["bookingId"]
        s.wait_status(u, bid, ("AWAITING_PAYMENT", "EXPIRED"))
        e = s.wait_status(u, bid, e2e.TERMINAL, hold + 10)
        seen = time.time() - t0
        assert e["status"] == "EXPIRED", e
        assert ts(e["updatedAt"]) - ts(e["createdAt"]) <= hold + 2, e
        assert seen <= hold + 3, "EXPIRED seen %.1f s after the POST" % seen
        s.wait_ticket(cid, tids[0], "AVAILABLE")
        m = s.wait_mail(u, "Booking expired", )
        assert m.subject == "Booking expired: " + title, m.subject

        # paying after the hold: the booking stays EXPIRED, the money goes back
        r = s.pay(u, bid)
        assert r.status == 200 and r.json["status"] == "SUCCEEDED", r
        p = s.wait_payment(u, bid, "REFUNDED")
        assert p["refundReason"], p
        ev = published_refunds(s, bid)
        assert len(ev) == 1, ev
        assert s.get(u, bid).json["status"] == "EXPIRED"
        assert s.ticket_status(cid, tids[0]) == "AVAILABLE"
        assert not s.events_of("ticket.success", bid)
        s.wait_mail(u, "Refund")
        time.sleep(1.5)
        assert len(s.mails(u, lambda m: m.subject.startswith("Booking expired"))) == 2  # warm-up's too
        assert len(s.mails(u, lambda m: m.subject.startswith("Refund"))) == 1


if __name__ == "__main__":
    souktest.main(globals())
