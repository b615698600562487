"""Redelivery end to end.

- Idempotency-Key: a retried POST /bookings with the same key and body
  answers the first booking (202, the same body); the same key with another
  body is a 422; only one booking exists.
- Replaying everything: after a confirmed, a declined, a cancelled-after-
  payment (refunded) and an expired booking have run their course, every
  consuming service (user, catalog, booking, payment, notification) is
  stopped, its consumer group's committed offsets are set back to 0 (an
  OffsetCommit as a simple consumer - generation -1 - which Kafka and
  souk-broker accept while the group has no members; kcat cannot do it),
  and the services are started again.  They consume every topic from the
  beginning; once their groups have caught up, every booking, ticket,
  payment and notification reads exactly as before, no topic has a new
  record, and the SMTP server received no second email.
"""

import time

import e2e
import souktest
from souktest import assert_problem, wait_until

SMTP = e2e.smtp()
HOLD = 8
CONSUMERS = ("user", "catalog", "booking", "payment", "notification")
TOPICS = ("users", "user.created", "catalog", "ticket.reserve", "ticket.reservation", "paymentevent",
          "payment.1", "payment.2", "payment.3", "ticket.success", "ticket.fail", "booking", "kv.expired", "notification")


def idempotency(c, s, cid, tids):
    u = s.user()
    key = "e2e-key-1"
    r1 = s.post(u, ticket=tids[0], key=key)
    assert r1.status == 202, r1
    r2 = s.post(u, ticket=tids[0], key=key)
    assert r2.status == 202 and r2.json == r1.json, (r1, r2)
    assert_problem(s.post(u, catalog=cid, key=key), 422)
    mine = c.http("booking", "GET", "/bookings/my", token=u).json
    assert mine["totalElements"] == 1, mine
    return u, r1.json["bookingId"]


def snapshot(c, s, cid, users_bids):
    snap = {}
    r = c.http("booking", "GET", "/bookings?catalogId=%s&size=100" % cid, token=s.admin)
    assert r.status == 200, r
    snap["bookings"] = r.json
    snap["tickets"] = s.tickets(cid)
    snap["catalog"] = c.http("catalog", "GET", "/catalogs/" + cid).json
    for u, bid in users_bids:
        p = s.payment(u, bid)
        snap["payment " + bid] = (p.status, p.json)
        snap["booking " + bid] = s.get(u, bid).json
        snap["notifications " + u.user_id] = s.notifications(u)
        snap["mails " + u.email] = sorted(m.subject for m in s.mails(u))
    snap["mails"] = SMTP.sink.count()
    snap["records"] = {t: len(c.consume(t)) for t in TOPICS}
    return snap


def test_idempotency_and_replay_from_zero():
    with e2e.cluster(SMTP, name="e2e-replay", booking=["--hold-seconds", HOLD]) as c:
        s = e2e.Saga(c, SMTP)
        cid, tids = s.catalog(tickets=5, title="Replay 101")
        flows = []
        # idempotency (this booking then expires: nobody pays it)
        u, bid = idempotency(c, s, cid, tids)
        flows.append((u, bid, "EXPIRED"))
        # confirmed
        u = s.user()
        bid = s.book(u, ticket=tids[1])["bookingId"]
        s.wait_status(u, bid, "AWAITING_PAYMENT")
        assert s.pay(u, bid).json["status"] == "SUCCEEDED"
        flows.append((u, bid, "CONFIRMED"))
        # declined
        u = s.user()
        bid = s.book(u, ticket=tids[2])["bookingId"]
        s.wait_status(u, bid, "AWAITING_PAYMENT")
        assert s.pay(u, bid, e2e.VISA_DECLINED).json["status"] == "FAILED"
        flows.append((u, bid, "FAILED"))
        # cancelled after payment: refunded
        u = s.user()
        bid = s.book(u, ticket=tids[3])["bookingId"]
        s.wait_status(u, bid, "AWAITING_PAYMENT")
        assert s.pay(u, bid).json["status"] == "SUCCEEDED"
        s.wait_status(u, bid, "CONFIRMED")
        assert s.cancel(u, bid).status == 200
        s.wait_payment(u, bid, "REFUNDED")
        flows.append((u, bid, "CANCELLED"))
        for u, bid, want in flows:
            assert s.wait_status(u, bid, e2e.TERMINAL, HOLD + 15)["status"] == want
        # every email has arrived: welcome + outcome (+ confirmed + refund)
        for u, bid, want in flows:
            n = {"EXPIRED": 2, "CONFIRMED": 2, "FAILED": 2, "CANCELLED": 4}[want]
            SMTP.sink.wait_to(u.email, n)
        wait_until(lambda: all(t["status"] in ("AVAILABLE", "SOLD") for t in s.tickets(cid)), 15,
                   "no ticket RESERVED")
        time.sleep(2)
        before = snapshot(c, s, cid, [(u, b) for u, b, _ in flows])
        assert before["records"]["booking"] >= 8, before["records"]

        # stop every consumer, rewind its group to 0, start them again
        for name in CONSUMERS:
            c.stop(name)
        rewound = {}
        for name in CONSUMERS:
            rewound[name] = e2e.reset_group(c.brokers, name)
        for name in CONSUMERS:
            c.start(name)
        for name in CONSUMERS:
            def caught_up(name=name):
                now = e2e.committed(c.brokers, name)
                return all(now.get(tp, -1) >= off for tp, off in rewound[name].items())

            wait_until(caught_up, 60, "%s's group consumed every topic again" % name, 0.5)
        time.sleep(3)  # deliveries that a replay might (wrongly) have queued
        after = snapshot(c, s, cid, [(u, b) for u, b, _ in flows])
        for k in before:
            assert before[k] == after[k], "%s changed by the replay:\nbefore %r\nafter  %r" % (
                k, before[k], after[k])
        assert not any(c.consume(t + ".dlq") for t in TOPICS), "a replayed event went to a DLQ"


if __name__ == "__main__":
    souktest.main(globals())
