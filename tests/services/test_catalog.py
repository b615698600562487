"""souk-catalog: the catalog API and the ticket side of the booking saga.

HTTP: create (201 + Location, catalog.created once on topic `catalog`),
validation (400 with field errors), duplicate titles (409), the list with
filters, sort and paging (a reversed range is a 400), one catalog with its
ticket counts, update and deactivate by the owner or an admin (403 for
another author).  Events, produced with kcat as the booking service would:
ticket.reserve for a given ticket or any ticket -> ticket.reserved or
ticket.unavailable on `ticket.reservation`; two bookings racing for one
ticket; more bookings than tickets; ticket.sell / ticket.release with their
guards (a wrong booking changes nothing); the same event twice -> one reply;
the same request again under a new event id -> the same answer.
"""
import json
import time
import uuid

import souktest
from souktest import assert_problem, envelope, field_errors, wait_until

CLUSTER = dict(services=("auth", "catalog"))

FUTURE = "2031-06-01T18:00:00Z"


def body(title=None, price=2500, currency="EUR", date=FUTURE, tickets=3, **more):
    b = {
        "title": title or ("Course " + uuid.uuid4().hex[:10]),
        "description": "a course",
        "price": price,
        "currency": currency,
        "dateOfEvent": date,
        "numberOfTickets": tickets,
    }
    b.update(more)
    return b


def create(c, token, **kw):
    r = c.http("catalog", "POST", "/catalogs", body(**kw), token=token)
    assert r.status == 201, r
    return r.json


def tickets(c, cid, status=None, token=None):
    path = "/catalogs/%s/tickets" % cid + ("?status=" + status if status else "")
    r = c.http("catalog", "GET", path, token=token)
    assert r.status == 200, r
    assert isinstance(r.json, list), r
    return r.json


def ticket_status(c, cid, tid):
    return {t["ticketId"]: t["status"] for t in tickets(c, cid)}[tid]


def reserve(c, catalog_id, ticket_id=None, booking_id=None, user_id="u-test"):
    """Produces ticket.reserve; returns (bookingId, envelope)."""
    booking_id = booking_id or "b-" + uuid.uuid4().hex
    ev = envelope("ticket.reserve", {"bookingId": booking_id, "userId": user_id,
                                     "catalogId": catalog_id, "ticketId": ticket_id},
                  source="booking", correlation_id=booking_id)
    c.produce("ticket.reserve", json.dumps(ev), key=booking_id)
    return booking_id, ev


def send(c, type, data):
    ev = envelope(type, data, source="booking", correlation_id=data["bookingId"])
    c.produce(souk_topic(type), json.dumps(ev), key=data["bookingId"])
    return ev


def souk_topic(type):
    return {"ticket.sell": "ticket.success", "ticket.release": "ticket.fail",
            "ticket.reserve": "ticket.reserve"}[type]


def replies(c, booking_id):
    return [e for e in c.events("ticket.reservation")
            if e.get("data", {}).get("bookingId") == booking_id]


def wait_replies(c, booking_ids, timeout=20):
    """Waits until every booking got at least one reply; {bookingId: [events]}."""
    want = set(booking_ids)

    def f():
        got = {}
        for e in c.events("ticket.reservation"):
            b = e.get("data", {}).get("bookingId")
            if b in want:
                got.setdefault(b, []).append(e)
        return got if set(got) == want else None

    return wait_until(f, timeout, "replies for %d bookings" % len(want), 0.3)


def wait_log(c, text, timeout=15):
    wait_until(lambda: text in c.log("catalog"), timeout, "catalog log: %r" % text)


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


def test_create_and_get(c):
    admin = c.admin_token()
    r = c.http("catalog", "POST", "/catalogs", body(title="Intro to C programming", tickets=4,
                                                   date="2031-06-01T20:00:00+02:00"), token=admin)
    assert r.status == 201, r
    cat = r.json
    cid = cat["catalogId"]
    assert r.headers.get("Location") == "/catalogs/" + cid, r.headers
    assert cat["authorId"] == admin.user_id, cat
    assert cat["title"] == "Intro to C programming"
    assert cat["price"] == 2500 and cat["currency"] == "EUR"
    assert cat["dateOfEvent"] == "2031-06-01T18:00:00.000Z", cat  # normalised to UTC
    assert cat["status"] == "ACTIVE"
    assert cat["totalTickets"] == 4 and cat["availableTickets"] == 4, cat

    got = c.http("catalog", "GET", "/catalogs/" + cid)
    assert got.status == 200 and got.json == cat, got

    ts = tickets(c, cid)
    assert len(ts) == 4 and all(t["status"] == "AVAILABLE" for t in ts), ts
    assert len({t["ticketId"] for t in ts}) == 4
    assert all(uuid.UUID(t["ticketId"]) for t in ts)
    assert "bookingId" not in ts[0]  # public view
    assert "bookingId" in tickets(c, cid, token=admin)[0]  # the owner's view
    assert tickets(c, cid, "SOLD") == []
    assert_problem(c.http("catalog", "GET", "/catalogs/%s/tickets?status=GONE" % cid), 400)

    assert_problem(c.http("catalog", "GET", "/catalogs/no-such-catalog"), 404)
    assert_problem(c.http("catalog", "GET", "/catalogs/no-such-catalog/tickets"), 404)


def test_author_creates_user_may_not(c):
    author = c.user_token(role="AUTHOR")
    cat = create(c, author)
    assert cat["authorId"] == author.user_id
    assert_problem(c.http("catalog", "POST", "/catalogs", body(), token=c.user_token()), 403)
    assert_problem(c.http("catalog", "POST", "/catalogs", body()), 401)


def test_validation(c):
    admin = c.admin_token()
    r = c.http("catalog", "POST", "/catalogs", {}, token=admin)
    errs = field_errors(r)
    for f in ("title", "price", "currency", "dateOfEvent", "numberOfTickets"):
        assert f in errs, (f, errs)

    cases = [
        ({"title": "abcd"}, "title"),
        ({"title": "x" * 81}, "title"),
        ({"title": " leading space"}, "title"),
        ({"title": 12345}, "title"),
        ({"description": "d" * 2001}, "description"),
        ({"price": 0}, "price"),
        ({"price": -5}, "price"),
        ({"price": 12.5}, "price"),
        ({"price": "2500"}, "price"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"dateOfEvent": "2020-01-01T10:00:00Z"}, "dateOfEvent"),
        ({"dateOfEvent": "2031-06-01"}, "dateOfEvent"),
        ({"dateOfEvent": "2031-06-01T18:00:00"}, "dateOfEvent"),
        ({"dateOfEvent": "next week"}, "dateOfEvent"),
        ({"numberOfTickets": 0}, "numberOfTickets"),
        ({"numberOfTickets": 51}, "numberOfTickets"),
        ({"numberOfTickets": "3"}, "numberOfTickets"),
    ]
    for override, field in cases:
        b = body()
        b.update(override)
        r = c.http("catalog", "POST", "/catalogs", b, token=admin)
        errs = field_errors(r)
        assert list(errs) == [field], (override, errs)

    # the limits themselves are fine
    create(c, admin, tickets=50, title="x" * 80, currency="JPY", price=1)
    create(c, admin, tickets=1, title="Exact", description="d" * 2000)

    for raw in (b"{", b"[]", b"null", b"\"s\""):
        r = c.http("catalog", "POST", "/catalogs", raw, token=admin,
                   headers={"Content-Type": "application/json"})
        assert_problem(r, 400)


def test_duplicate_title(c):
    admin = c.admin_token()
    title = "Unique course " + uuid.uuid4().hex[:8]
    create(c, admin, title=title)
    p = assert_problem(c.http("catalog", "POST", "/catalogs", body(title=title), token=admin), 409)
    assert title in p.get("detail", ""), p
    # ignoring case
    assert_problem(c.http("catalog", "POST", "/catalogs", body(title=title.upper()), token=admin), 409)


def test_list_filters_sort_paging(c):
    admin = c.admin_token()
    base = 700000 + (uuid.uuid4().int % 1000) * 10  # a price band only this test uses
    rng = "priceFrom=%d&priceTo=%d" % (base, base + 9)
    a = create(c, admin, price=base + 1, date="2032-01-10T10:00:00Z")
    b = create(c, admin, price=base + 2, date="2032-03-10T10:00:00Z")
    d = create(c, admin, price=base + 3, date="2032-02-10T10:00:00Z", tickets=1)

    def ids(q):
        r = c.http("catalog", "GET", "/catalogs?" + q)
        assert r.status == 200, r
        return [x["catalogId"] for x in r.json["content"]], r.json

    got, page = ids(rng)
    assert got == [a["catalogId"], d["catalogId"], b["catalogId"]], got  # default: dateOfEvent asc
    assert page["totalElements"] == 3 and page["page"] == 0 and page["size"] == 20, page
    got, _ = ids(rng + "&sort=price,desc")
    assert got == [d["catalogId"], b["catalogId"], a["catalogId"]], got
    got, _ = ids(rng + "&sort=createdAt,asc")
    assert got == [a["catalogId"], b["catalogId"], d["catalogId"]], got
    got, page = ids(rng + "&sort=price,asc&size=2&page=1")
    assert got == [d["catalogId"]] and page["totalPages"] == 2 and page["totalElements"] == 3, page
    got, _ = ids("priceFrom=%d&priceTo=%d" % (base + 2, base + 2))
    assert got == [b["catalogId"]], got
    got, _ = ids(rng + "&dateFrom=2032-02-01&dateTo=2032-03-10")
    assert got == [d["catalogId"], b["catalogId"]], got
    got, _ = ids(rng + "&dateFrom=2032-02-10T10:00:00Z&dateTo=2032-02-10T10:00:00Z")
    assert got == [d["catalogId"]], got

    # status: deactivate one, sell out another (via a reservation)
    r = c.http("catalog", "PATCH", "/catalogs/%s/deactivate" % a["catalogId"], token=admin)
    assert r.status == 200, r
    bid, _ = reserve(c, d["catalogId"])
    wait_replies(c, [bid])
    got, _ = ids(rng + "&status=DEACTIVATED")
    assert got == [a["catalogId"]], got
    got, _ = ids(rng + "&status=SOLD_OUT")
    assert got == [d["catalogId"]], got
    got, _ = ids(rng + "&status=ACTIVE")
    assert got == [b["catalogId"]], got

    for q, field in [("priceFrom=10&priceTo=5", "priceFrom"), ("priceFrom=abc", "priceFrom"),
                     ("dateFrom=2032-02-01&dateTo=2032-01-01", "dateFrom"),
                     ("dateFrom=yesterday", "dateFrom"), ("status=WHAT", "status"),
                     ("sort=nope,asc", "sort"), ("sort=price,sideways", "sort"),
                     ("size=0", "size"), ("size=101", "size"), ("page=-1", "page")]:
        errs = field_errors(c.http("catalog", "GET", "/catalogs?" + q))
        assert field in errs, (q, errs)


def test_update_and_deactivate(c):
    admin = c.admin_token()
    a1 = c.user_token(role="AUTHOR")
    a2 = c.user_token(role="AUTHOR")
    cat = create(c, a1, tickets=2)
    cid = cat["catalogId"]
    path = "/catalogs/" + cid

    assert_problem(c.http("catalog", "PUT", path, body(), token=a2), 403)
    assert_problem(c.http("catalog", "PATCH", path + "/deactivate", token=a2), 403)
    assert_problem(c.http("catalog", "PUT", path, body(), token=c.user_token()), 403)
    assert_problem(c.http("catalog", "PUT", path, body()), 401)
    assert_problem(c.http("catalog", "PUT", "/catalogs/nope", body(), token=a1), 404)
    assert_problem(c.http("catalog", "PATCH", "/catalogs/nope/deactivate", token=a1), 404)

    new_title = "Renamed " + uuid.uuid4().hex[:8]
    r = c.http("catalog", "PUT", path, body(title=new_title, price=4200, currency="USD", tickets=None),
               token=a1)
    assert r.status == 200, r
    assert r.json["title"] == new_title and r.json["price"] == 4200 and r.json["currency"] == "USD"
    assert r.json["totalTickets"] == 2 and r.json["authorId"] == a1.user_id, r.json
    # fewer tickets: refused; more: added
    errs = field_errors(c.http("catalog", "PUT", path, body(title=new_title, tickets=1), token=a1))
    assert list(errs) == ["numberOfTickets"], errs
    r = c.http("catalog", "PUT", path, body(title=new_title, tickets=5), token=a1)
    assert r.status == 200 and r.json["totalTickets"] == 5 and r.json["availableTickets"] == 5, r
    # the same validation as POST
    errs = field_errors(c.http("catalog", "PUT", path, body(title="abc", price=0, tickets=None), token=a1))
    assert set(errs) == {"title", "price"}, errs
    # another catalog's title
    other = create(c, a2)
    assert_problem(c.http("catalog", "PUT", path, body(title=other["title"], tickets=None), token=a1), 409)
    # an admin may too
    r = c.http("catalog", "PUT", path, body(title=new_title, price=4300, tickets=None), token=admin)
    assert r.status == 200 and r.json["price"] == 4300, r

    r = c.http("catalog", "PATCH", path + "/deactivate", token=a1)
    assert r.status == 200 and r.json["status"] == "DEACTIVATED", r
    r = c.http("catalog", "PATCH", path + "/deactivate", token=a1)  # idempotent
    assert r.status == 200 and r.json["status"] == "DEACTIVATED", r
    assert c.http("catalog", "GET", path).json["status"] == "DEACTIVATED"
    assert_problem(c.http("catalog", "PUT", path, body(title=new_title, tickets=None), token=a1), 409)

    def events_of(type):
        return [e for e in c.events("catalog", type) if e["data"]["catalogId"] == cid]

    wait_until(lambda: len(events_of("catalog.updated")) >= 3, 15, "catalog.updated x3")
    wait_until(lambda: events_of("catalog.deactivated"), 15, "catalog.deactivated")
    time.sleep(1.0)
    assert len(events_of("catalog.deactivated")) == 1, events_of("catalog.deactivated")
    ups = events_of("catalog.updated")
    assert len(ups) == 3, ups
    assert len(ups[1]["data"]["tickets"]) == 5, ups[1]
    assert events_of("catalog.deactivated")[0]["data"]["status"] == "DEACTIVATED"

    # a deactivated catalog takes no reservation
    bid, _ = reserve(c, cid)
    got = wait_replies(c, [bid])[bid]
    assert got[0]["type"] == "ticket.unavailable" and got[0]["data"]["reason"] == "catalog_inactive", got


def test_catalog_created_event_once(c):
    admin = c.admin_token()
    cat = create(c, admin, tickets=3)
    cid = cat["catalogId"]

    def mine():
        return [(k, json.loads(v)) for k, v in c.consume("catalog")
                if v and json.loads(v).get("type") == "catalog.created"
                and json.loads(v)["data"]["catalogId"] == cid]

    wait_until(mine, 15, "catalog.created for %s" % cid)
    time.sleep(1.5)
    got = mine()
    assert len(got) == 1, got
    key, ev = got[0]
    assert key == cid.encode(), key
    assert ev["source"] == "catalog" and ev["version"] == 1 and ev["causationId"] is None, ev
    d = ev["data"]
    assert d["authorId"] == admin.user_id and d["price"] == 2500 and d["currency"] == "EUR"
    assert d["numberOfTickets"] == 3 and d["status"] == "ACTIVE", d
    assert sorted(t["ticketId"] for t in d["tickets"]) == sorted(t["ticketId"] for t in tickets(c, cid))
    assert all(t["status"] == "AVAILABLE" for t in d["tickets"]), d


# ---------------------------------------------------------------------------
# the ticket side of the saga
# ---------------------------------------------------------------------------


def test_saga_topics_exist(c):
    """The consumer's topics exist before the tests below produce to them.

    librdkafka's consumer subscribes to ticket.reserve, ticket.success and
    ticket.fail at start; a topic that does not exist then is only noticed
    at its next metadata refresh (minutes), so make them exist (a no-op
    event on each) and restart the consumer.
    """
    for type in ("ticket.sell", "ticket.release"):
        send(c, type, {"bookingId": "b-setup", "ticketId": "no-such-ticket"})
    b, _ = reserve(c, "no-such-catalog")
    wait_replies(c, [b])
    c.restart("catalog")
    wait_log(c, "ticket.sell ignored: booking b-setup ticket no-such-ticket", 20)
    wait_log(c, "ticket.release ignored: booking b-setup ticket no-such-ticket", 20)



def test_reserve_given_ticket(c):
    admin = c.admin_token()
    cat = create(c, admin, tickets=2, price=1999, currency="GBP")
    cid = cat["catalogId"]
    tid = tickets(c, cid)[1]["ticketId"]
    bid, ev = reserve(c, cid, tid)
    got = wait_replies(c, [bid])[bid]
    assert len(got) == 1, got
    r = got[0]
    assert r["type"] == "ticket.reserved", r
    assert r["data"] == {"bookingId": bid, "ticketId": tid, "price": 1999, "currency": "GBP",
                         "catalogId": cid}, r
    assert r["causationId"] == ev["id"] and r["correlationId"] == bid and r["source"] == "catalog", r
    assert ticket_status(c, cid, tid) == "RESERVED"
    owner_view = {t["ticketId"]: t for t in tickets(c, cid, token=admin)}
    assert owner_view[tid]["bookingId"] == bid
    g = c.http("catalog", "GET", "/catalogs/" + cid).json
    assert g["availableTickets"] == 1 and g["totalTickets"] == 2 and g["status"] == "ACTIVE", g


def test_reserve_any_ticket(c):
    admin = c.admin_token()
    cat = create(c, admin, tickets=3)
    cid = cat["catalogId"]
    bid, _ = reserve(c, cid, None)
    r = wait_replies(c, [bid])[bid][0]
    assert r["type"] == "ticket.reserved", r
    tid = r["data"]["ticketId"]
    assert tid in {t["ticketId"] for t in tickets(c, cid)}
    assert ticket_status(c, cid, tid) == "RESERVED"
    assert [t["ticketId"] for t in tickets(c, cid, "RESERVED")] == [tid]


def test_reserve_refusals(c):
    admin = c.admin_token()
    cat = create(c, admin, tickets=1)
    other = create(c, admin, tickets=1)
    b1, _ = reserve(c, "no-such-catalog", None)
    b2, _ = reserve(c, cat["catalogId"], "no-such-ticket")
    b3, _ = reserve(c, cat["catalogId"], tickets(c, other["catalogId"])[0]["ticketId"])
    got = wait_replies(c, [b1, b2, b3])
    assert got[b1][0]["type"] == "ticket.unavailable" and got[b1][0]["data"]["reason"] == "unknown_catalog", got[b1]
    assert got[b2][0]["data"]["reason"] == "unknown_ticket", got[b2]
    assert got[b3][0]["data"]["reason"] == "unknown_ticket", got[b3]  # not that catalog's ticket
    assert got[b3][0]["data"]["catalogId"] == cat["catalogId"]
    assert tickets(c, other["catalogId"])[0]["status"] == "AVAILABLE"


def test_two_bookings_race_for_one_ticket(c):
    admin = c.admin_token()
    cat = create(c, admin, tickets=2)
    cid = cat["catalogId"]
    tid = tickets(c, cid)[0]["ticketId"]
    b1, _ = reserve(c, cid, tid)
    b2, _ = reserve(c, cid, tid)
    got = wait_replies(c, [b1, b2])
    types = sorted(got[b][0]["type"] for b in (b1, b2))
    assert types == ["ticket.reserved", "ticket.unavailable"], got
    winner = b1 if got[b1][0]["type"] == "ticket.reserved" else b2
    loser = b2 if winner == b1 else b1
    assert got[loser][0]["data"]["reason"] == "not_available", got[loser]
    assert got[winner][0]["data"]["ticketId"] == tid
    owner_view = {t["ticketId"]: t for t in tickets(c, cid, token=admin)}
    assert owner_view[tid]["status"] == "RESERVED" and owner_view[tid]["bookingId"] == winner


def test_more_bookings_than_tickets(c):
    admin = c.admin_token()
    n = 4
    cat = create(c, admin, tickets=n)
    cid = cat["catalogId"]
    bids = [reserve(c, cid, None)[0] for _ in range(n + 1)]
    got = wait_replies(c, bids, timeout=30)
    reserved = [got[b][0] for b in bids if got[b][0]["type"] == "ticket.reserved"]
    unavailable = [got[b][0] for b in bids if got[b][0]["type"] == "ticket.unavailable"]
    assert len(reserved) == n and len(unavailable) == 1, got
    assert unavailable[0]["data"]["reason"] == "sold_out", unavailable
    assert len({r["data"]["ticketId"] for r in reserved}) == n  # n different tickets
    g = c.http("catalog", "GET", "/catalogs/" + cid).json
    assert g["status"] == "SOLD_OUT" and g["availableTickets"] == 0 and g["totalTickets"] == n, g
    assert all(t["status"] == "RESERVED" for t in tickets(c, cid))


def test_sell_and_release(c):
    admin = c.admin_token()
    cat = create(c, admin, tickets=2)
    cid = cat["catalogId"]
    t1, t2 = [t["ticketId"] for t in tickets(c, cid)]
    b1, _ = reserve(c, cid, t1)
    b2, _ = reserve(c, cid, t2)
    wait_replies(c, [b1, b2])

    # sell by the wrong booking: nothing happens
    send(c, "ticket.sell", {"bookingId": b2, "ticketId": t1})
    wait_log(c, "ticket.sell ignored: booking %s ticket %s is RESERVED" % (b2, t1))
    assert ticket_status(c, cid, t1) == "RESERVED"

    # RESERVED -> SOLD by its booking
    send(c, "ticket.sell", {"bookingId": b1, "ticketId": t1})
    wait_until(lambda: ticket_status(c, cid, t1) == "SOLD", 15, "t1 SOLD")

    # release by the wrong booking: a logged no-op
    wrong = "b-wrong-" + uuid.uuid4().hex[:8]
    send(c, "ticket.release", {"bookingId": wrong, "ticketId": t1})
    wait_log(c, "ticket.release ignored: booking %s ticket %s is SOLD" % (wrong, t1))
    assert ticket_status(c, cid, t1) == "SOLD"
    # an unknown ticket: a logged no-op too
    send(c, "ticket.release", {"bookingId": wrong, "ticketId": "no-such-ticket"})
    wait_log(c, "ticket.release ignored: booking %s ticket no-such-ticket: unknown ticket" % wrong)

    # RESERVED -> AVAILABLE by its booking (a failed or expired booking)
    send(c, "ticket.release", {"bookingId": b2, "ticketId": t2, "reason": "expired"})
    wait_until(lambda: ticket_status(c, cid, t2) == "AVAILABLE", 15, "t2 AVAILABLE")
    assert "bookingId" not in [t for t in tickets(c, cid, token=admin) if t["ticketId"] == t2][0] or \
        [t for t in tickets(c, cid, token=admin) if t["ticketId"] == t2][0]["bookingId"] is None
    # selling a released ticket: no-op
    send(c, "ticket.sell", {"bookingId": b2, "ticketId": t2})
    wait_log(c, "ticket.sell ignored: booking %s ticket %s is AVAILABLE" % (b2, t2))
    assert ticket_status(c, cid, t2) == "AVAILABLE"

    # SOLD -> AVAILABLE for the same booking (a confirmed booking cancelled)
    send(c, "ticket.release", {"bookingId": b1, "ticketId": t1, "reason": "cancelled"})
    wait_until(lambda: ticket_status(c, cid, t1) == "AVAILABLE", 15, "t1 AVAILABLE")
    g = c.http("catalog", "GET", "/catalogs/" + cid).json
    assert g["availableTickets"] == 2, g

    # the released ticket can be booked again by someone else
    b3, _ = reserve(c, cid, t1)
    r = wait_replies(c, [b3])[b3][0]
    assert r["type"] == "ticket.reserved" and r["data"]["ticketId"] == t1, r
    # while a redelivered request of the released booking does not get it back
    b1_again, _ = reserve(c, cid, t1, booking_id=b1)
    wait_until(lambda: len(replies(c, b1)) == 2, 15, "second answer to b1")
    r = replies(c, b1)[1]
    assert r["type"] == "ticket.unavailable" and r["data"]["reason"] == "released", r


def test_same_event_twice_one_reply(c):
    admin = c.admin_token()
    cat = create(c, admin, tickets=3)
    cid = cat["catalogId"]
    bid = "b-" + uuid.uuid4().hex
    ev = envelope("ticket.reserve", {"bookingId": bid, "userId": "u1", "catalogId": cid,
                                     "ticketId": None}, source="booking", correlation_id=bid)
    c.produce("ticket.reserve", json.dumps(ev), key=bid)
    c.produce("ticket.reserve", json.dumps(ev), key=bid)
    wait_replies(c, [bid])
    # a marker after both copies (same key: same partition, so processed after them)
    marker = "b-" + uuid.uuid4().hex
    mev = envelope("ticket.reserve", {"bookingId": marker, "userId": "u1", "catalogId": cid,
                                      "ticketId": None}, source="booking", correlation_id=marker)
    c.produce("ticket.reserve", json.dumps(mev), key=bid)
    wait_replies(c, [marker])
    time.sleep(0.5)
    got = replies(c, bid)
    assert len(got) == 1, got
    assert got[0]["type"] == "ticket.reserved"
    assert len(tickets(c, cid, "RESERVED")) == 2  # bid's and the marker's

    # The same request under a new event id (the booking's outbox sent it
    # again): the same ticket again, not a second one.
    tid = got[0]["data"]["ticketId"]
    reserve(c, cid, None, booking_id=bid)
    wait_until(lambda: len(replies(c, bid)) == 2, 15, "second reply for %s" % bid)
    again = replies(c, bid)[1]
    assert again["type"] == "ticket.reserved" and again["data"]["ticketId"] == tid, again
    assert len(tickets(c, cid, "RESERVED")) == 2


def test_restart_keeps_state(c):
    admin = c.admin_token()
    cat = create(c, admin, tickets=2)
    cid = cat["catalogId"]
    bid, _ = reserve(c, cid, None)
    tid = wait_replies(c, [bid])[bid][0]["data"]["ticketId"]
    c.restart("catalog")
    assert ticket_status(c, cid, tid) == "RESERVED"
    g = c.http("catalog", "GET", "/catalogs/" + cid).json
    assert g["availableTickets"] == 1, g
    # nothing is answered twice after the restart
    time.sleep(1.0)
    assert len(replies(c, bid)) == 1


if __name__ == "__main__":
    souktest.main(globals())
