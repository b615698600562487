"""Races end to end, through every real process:

- 20 users book the same ticket at once -> exactly one reaches
  AWAITING_PAYMENT and, paid, CONFIRMED; the 19 others end FAILED with a
  reason, each with a "Booking failed" email; the ticket is SOLD once.
- 50 users book "any ticket" of a 10-ticket catalog at once and every one
  that gets a ticket pays -> exactly 10 CONFIRMED, 40 FAILED, all 10 tickets
  SOLD to distinct bookings, one email per booking.
"""

import threading
import time

import e2e
import souktest

SMTP = e2e.smtp()


def at_once(n, fn):
    """Runs fn(i) for i in range(n) on n threads released together."""
    results = [None] * n
    errors = []
    start = threading.Barrier(n)

    def go(i):
        try:
            start.wait()
            results[i] = fn(i)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def post_retrying(s, token, **kw):
    """POST /bookings, again while it is 404 (souk-booking has not yet
    consumed the new catalog's catalog.created)."""
    deadline = time.time() + 20
    while True:
        r = s.post(token, **kw)
        if r.status != 404 or time.time() > deadline:
            return r
        time.sleep(0.1)


def test_races():
    with e2e.cluster(SMTP, name="e2e-races") as c:
        s = e2e.Saga(c, SMTP)
        one_ticket(c, s)
        any_ticket(c, s)


def one_ticket(c, s):
    title = "Race For One 101"
    cid, tids = s.catalog(tickets=1, title=title)
    users = [s.user() for _ in range(20)]
    bids = at_once(20, lambda i: post_retrying(s, users[i], ticket=tids[0]))
    assert all(r.status == 202 for r in bids), bids
    bids = [r.json["bookingId"] for r in bids]
    assert len(set(bids)) == 20, bids
    final = [s.wait_status(users[i], b, ("AWAITING_PAYMENT", "FAILED"), 30) for i, b in enumerate(bids)]
    winners = [i for i, b in enumerate(final) if b["status"] == "AWAITING_PAYMENT"]
    assert len(winners) == 1, [b["status"] for b in final]
    losers = [i for i in range(20) if i not in winners]
    for i in losers:
        assert final[i]["status"] == "FAILED" and final[i]["reason"], final[i]
    w = winners[0]
    assert s.pay(users[w], bids[w]).json["status"] == "SUCCEEDED"
    assert s.wait_status(users[w], bids[w], e2e.TERMINAL)["status"] == "CONFIRMED"
    s.wait_ticket(cid, tids[0], "SOLD")
    assert [x["bookingId"] for x in s.tickets(cid)] == [bids[w]]
    assert [e["data"]["bookingId"] for e in c.events("ticket.success")].count(bids[w]) == 1
    s.wait_mail(users[w], "Booking confirmed: " + title)
    for i in losers:
        m = s.wait_mail(users[i], "Booking failed")
        assert m.subject == "Booking failed: " + title, m.subject
    time.sleep(1)
    for i in range(20):
        assert len(s.mails(users[i], lambda m: m.subject.startswith("Booking"))) == 1, s.mails(users[i])


def any_ticket(c, s):
    title = "Ten Seats 101"
    cid, tids = s.catalog(tickets=10, title=title)
    users = [s.user() for _ in range(50)]
    rs = at_once(50, lambda i: post_retrying(s, users[i], catalog=cid))
    accepted = [(i, r.json["bookingId"]) for i, r in enumerate(rs) if r.status == 202]
    early = [r for r in rs if r.status != 202]
    for r in early:  # the projection may already know the catalog sold out
        souktest.assert_problem(r, 409)
    open_ = {}
    for i, bid in accepted:
        b = s.wait_status(users[i], bid, ("AWAITING_PAYMENT", "FAILED"), 30)
        if b["status"] == "AWAITING_PAYMENT":
            open_[i] = bid
    assert len(open_) == 10, len(open_)
    for i, bid in open_.items():
        assert s.pay(users[i], bid).json["status"] == "SUCCEEDED"
    final = {bid: s.wait_status(users[i], bid, e2e.TERMINAL, 30) for i, bid in accepted}
    confirmed = [b for b in final.values() if b["status"] == "CONFIRMED"]
    failed = [b for b in final.values() if b["status"] == "FAILED"]
    assert len(confirmed) == 10 and len(failed) == len(accepted) - 10, [b["status"] for b in final.values()]
    assert all(b["reason"] for b in failed), failed
    assert sorted(b["ticketId"] for b in confirmed) == sorted(tids)
    souktest.wait_until(lambda: all(t["status"] == "SOLD" for t in s.tickets(cid)), 15, "10 tickets SOLD")
    sold_to = sorted(t["bookingId"] for t in s.tickets(cid))
    assert sold_to == sorted(b["bookingId"] for b in confirmed), sold_to
    for i, bid in accepted:
        want = "Booking confirmed: " if final[bid]["status"] == "CONFIRMED" else "Booking failed: "
        s.wait_mail(users[i], want + title)
    time.sleep(1)
    for i, _ in accepted:
        assert len(s.mails(users[i], lambda m: m.subject.startswith("Booking"))) == 1, s.mails(users[i])


if __name__ == "__main__":
    souktest.main(globals())
