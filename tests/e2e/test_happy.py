"""The happy path end to end: a user books a ticket, pays with the good test
card, the booking is CONFIRMED, the ticket SOLD, the payment SUCCEEDED, and
exactly one email with the right subject reaches the SMTP server; the same
for a booking of "any ticket" of a catalog."""

import time

import e2e
import souktest

SMTP = e2e.smtp()


def happy(c, s, by_ticket):
    title = "Happy Path " + ("Ticket" if by_ticket else "Catalog") + " 101"
    cid, tids = s.catalog(tickets=2, price=4200, title=title)
    u = s.user()
    if by_ticket:
        b = s.book(u, ticket=tids[0])
    else:
        b = s.book(u, catalog=cid)
    bid = b["bookingId"]
    assert b["status"] == "PENDING", b
    w = s.wait_status(u, bid, "AWAITING_PAYMENT")
    assert w["amount"] == 4200 and w["currency"] == "EUR", w  # the catalog's price
    tid = w["ticketId"]
    assert tid in tids and (not by_ticket or tid == tids[0]), w
    assert s.ticket_status(cid, tid) == "RESERVED"

    r = s.pay(u, bid)
    assert r.status == 200 and r.json["status"] == "SUCCEEDED", r
    assert r.json["cardLast4"] == "4242" and r.json["amount"] == 4200, r
    done = s.wait_status(u, bid, e2e.TERMINAL)
    assert done["status"] == "CONFIRMED", done
    s.wait_ticket(cid, tid, "SOLD")
    t = [x for x in s.tickets(cid) if x["ticketId"] == tid][0]
    assert t.get("bookingId") == bid, t  # the admin sees whom it was sold to
    p = s.wait_payment(u, bid, "SUCCEEDED")
    assert p["bookingId"] == bid and p["userId"] == u.user_id and p["amount"] == 4200, p

    m = s.wait_mail(u, "Booking confirmed")
    assert m.subject == "Booking confirmed: " + title, m.subject
    assert bid in m.text() and "42.00" in m.text(), m.text()
    # one email per outcome, however long we wait
    time.sleep(1.5)
    assert len(s.mails(u, lambda m: m.subject.startswith("Booking"))) == 1, s.mails(u)
    ns = s.notifications(u, bookingId=bid)
    assert [(n["type"], n["state"]) for n in ns] == [("booking.confirmed", "SENT")], ns
    # the other ticket is still on sale
    other = [x for x in tids if x != tid][0]
    assert s.ticket_status(cid, other) == "AVAILABLE"


def test_happy_path_by_ticket_and_by_catalog():
    with e2e.cluster(SMTP, name="e2e-happy") as c:
        s = e2e.Saga(c, SMTP)
        happy(c, s, by_ticket=True)
        happy(c, s, by_ticket=False)
        # the booking's events tell the same story
        evs = c.events("booking")
        assert sum(1 for e in evs if e["type"] == "booking.confirmed") == 2, evs


if __name__ == "__main__":
    souktest.main(globals())
