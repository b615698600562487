"""Bad input on every booking, payment and notification endpoint, with the
whole saga running: always an RFC 7807 problem+json 4xx, never a 5xx; no
token, a garbage token or a forged one (HS256 keyed with the public key)
-> 401; another user's booking, payment or notification -> 404, exactly
like one that does not exist (no existence leak); and none of it changed
anything."""

import base64
import hashlib
import hmac
import json
import os
import uuid

import e2e
import souktest
from souktest import assert_problem

SMTP = e2e.smtp()
LONG = "x" * 5000


def problem_4xx(r, what):
    what = what[:300]
    assert 400 <= r.status < 500, "%s: expected a 4xx, got %r" % (what, r)
    ct = r.headers.get("content-type", "")
    assert ct.split(";")[0].strip() == "application/problem+json", "%s: %r %r" % (what, ct, r)
    p = r.json
    assert isinstance(p, dict) and p.get("status") == r.status and p.get("type") and p.get("title"), (
        what, r)
    return p


def same_answer(p1, id1, p2, id2):
    """Two problems that differ only in the id the caller asked for (and
    the request id): an existing resource of another user looks missing."""
    def norm(p, i):
        return {k: str(v).replace(i, "ID") for k, v in p.items() if k != "requestId"}

    return norm(p1, id1) == norm(p2, id2)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def forged_token(c, user_id):
    """HS256 with the ES256 public key PEM as the HMAC secret (the libjwt
    algorithm-confusion forgery), claiming ADMIN."""
    with open(os.path.join(c.data_dir("auth"), "jwt-public.pem"), "rb") as f:
        pem = f.read()
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    import time as _t
    body = b64url(json.dumps({"sub": user_id, "role": "ADMIN", "iat": int(_t.time()),
                              "exp": int(_t.time()) + 600, "iss": "souk-auth"}).encode())
    sig = b64url(hmac.new(pem, (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def test_bad_input_everywhere():
    with e2e.cluster(SMTP, name="e2e-badinput") as c:
        s = e2e.Saga(c, SMTP)
        cid, tids = s.catalog(tickets=2)
        owner, other = s.user(), s.user()
        bid = s.book(owner, ticket=tids[0])["bookingId"]
        s.wait_status(owner, bid, "AWAITING_PAYMENT")
        s.wait_payment(owner, bid, "PENDING")
        bad_tokens = {"none": None, "garbage": "not.a.token", "forged": forged_token(c, owner.user_id),
                      "truncated": str(owner)[:-5]}
        calls = 0

        def hit(svc, method, path, body=None, token=owner, headers=None, want=None):
            nonlocal calls
            calls += 1
            r = c.http(svc, method, path, body, token=token, headers=headers)
            p = problem_4xx(r, "%s %s %r" % (method, path, body if not isinstance(body, str) else body[:60]))
            if want is not None:
                assert r.status == want, (method, path, body, r)
            return p

        # ---- authentication, on every route ---------------------------------------
        routes = [("booking", "POST", "/bookings", {"ticketId": tids[1]}),
                  ("booking", "GET", "/bookings/my", None),
                  ("booking", "GET", "/bookings/" + bid, None),
                  ("booking", "POST", "/bookings/%s/cancel" % bid, None),
                  ("booking", "GET", "/bookings?catalogId=" + cid, None),
                  ("payment", "GET", "/payments/" + bid, None),
                  ("payment", "POST", "/payments/%s/pay" % bid, e2e.card()),
                  ("notification", "GET", "/notifications/my", None)]
        for name, tok in bad_tokens.items():
            for svc, method, path, body in routes:
                hit(svc, method, path, body, token=tok, want=401)

        # ---- POST /bookings ------------------------------------------------------
        bodies = [{}, {"ticketId": tids[1], "catalogId": cid}, {"ticketId": 42}, {"ticketId": ""},
                  {"ticketId": None}, {"catalogId": ["x"]}, {"catalogId": {"a": 1}}, {"ticketId": LONG},
                  {"ticketId": True}, {"ticketId": 1.5}, {"catalogId": "\u0000"}, [], "[]", "42", '"s"',
                  "null", "{not json", "", "{\"ticketId\": \"" + tids[1] + "\"", "\xff\xfe"]
        for b in bodies:
            p = hit("booking", "POST", "/bookings", b)
            assert p["status"] in (400, 413, 422), (b, p)
        hit("booking", "POST", "/bookings", {"ticketId": str(uuid.uuid4())}, want=404)
        hit("booking", "POST", "/bookings", {"catalogId": str(uuid.uuid4())}, want=404)
        for key in ("has space", "k" * 300, "\u00e9t\u00e9", ""):
            hit("booking", "POST", "/bookings", {"ticketId": tids[1]}, headers={"Idempotency-Key": key})
        hit("booking", "POST", "/bookings", "x" * (2 << 20))  # 2 MiB
        # ---- lists -------------------------------------------------------------------
        for q in ("status=NOPE", "size=0", "size=101", "size=-1", "page=-1", "page=x", "sort=price",
                  "sort=createdAt,up", "size=99999999999999999999", "status=" + LONG):
            hit("booking", "GET", "/bookings/my?" + q, want=400)
        admin = s.admin
        for q in ("status=nope", "catalogId=" + LONG, "userId=" + LONG, "size=0", "page=-3"):
            hit("booking", "GET", "/bookings?" + q, token=admin, want=400)
        hit("booking", "GET", "/bookings?catalogId=" + cid, want=403)  # a USER
        for q in ("state=NOPE", "type=nope", "size=0", "sort=nope", "bookingId=" + LONG):
            hit("notification", "GET", "/notifications/my?" + q, want=400)
        # ---- one booking, cancel -----------------------------------------------------
        for path in ("/bookings/" + LONG, "/bookings/%20", "/bookings/a%2Fb", "/bookings/%00",
                     "/bookings/..%2F..%2Fetc", "/bookings/" + str(uuid.uuid4())):
            hit("booking", "GET", path)
            hit("booking", "POST", path + "/cancel")
        # ---- payments ----------------------------------------------------------------
        pay_bodies = [{}, {"card": None, "expMonth": None, "expYear": None, "cvc": None},
                      e2e.card("4242 4242 4242 4241"), e2e.card("4242"), e2e.card(LONG),
                      dict(e2e.card(), expMonth=13), dict(e2e.card(), expYear=1999),
                      dict(e2e.card(), cvc="1"), dict(e2e.card(), cvc=123), dict(e2e.card(), expMonth=True),
                      dict(e2e.card(), expYear=2 ** 70), "not json", "[1]", "null"]
        for b in pay_bodies:
            hit("payment", "POST", "/payments/%s/pay" % bid, b, want=400)
        for path in ("/payments/" + LONG, "/payments/%25", "/payments/a%20b", "/payments/" + str(uuid.uuid4())):
            hit("payment", "GET", path)
            hit("payment", "POST", path + "/pay", e2e.card())
        # ---- wrong methods -------------------------------------------------------
        for svc, method, path in (("booking", "DELETE", "/bookings"), ("booking", "PUT", "/bookings/" + bid),
                                  ("payment", "DELETE", "/payments/" + bid),
                                  ("payment", "GET", "/payments/%s/pay" % bid),
                                  ("notification", "DELETE", "/notifications/my")):
            hit(svc, method, path)

        # ---- another user's things: 404, the same as nothing ------------------------
        missing = str(uuid.uuid4())
        for method, path, body in (("GET", "/bookings/%s", None), ("POST", "/bookings/%s/cancel", None)):
            p1 = hit("booking", method, path % bid, body, token=other, want=404)
            p2 = hit("booking", method, path % missing, body, token=other, want=404)
            assert same_answer(p1, bid, p2, missing), (p1, p2)
        for method, path, body in (("GET", "/payments/%s", None), ("POST", "/payments/%s/pay", e2e.card())):
            p1 = hit("payment", method, path % bid, body, token=other, want=404)
            p2 = hit("payment", method, path % missing, body, token=other, want=404)
            assert same_answer(p1, bid, p2, missing), (p1, p2)
        mine = s.notifications(owner)
        assert mine, "the owner has notifications (the welcome email)"
        for n in mine:
            p1 = hit("notification", "GET", "/notifications/%s" % n["id"], token=other, want=404)
            p2 = hit("notification", "GET", "/notifications/%s" % missing, token=other, want=404)
            assert same_answer(p1, n["id"], p2, missing), (p1, p2)
        assert c.http("booking", "GET", "/bookings/my", token=other).json["totalElements"] == 0

        # ---- nothing changed ---------------------------------------------------------
        assert s.get(owner, bid).json["status"] == "AWAITING_PAYMENT"
        assert s.payment(owner, bid).json["status"] == "PENDING"
        assert s.ticket_status(cid, tids[0]) == "RESERVED" and s.ticket_status(cid, tids[1]) == "AVAILABLE"
        assert c.http("booking", "GET", "/bookings/my", token=owner).json["totalElements"] == 1
        # and the owner still can pay and be done
        assert s.pay(owner, bid).json["status"] == "SUCCEEDED"
        assert s.wait_status(owner, bid, e2e.TERMINAL)["status"] == "CONFIRMED"
        for name in ("booking", "payment", "notification"):
            assert "runtime error" not in c.log(name)
        print("%d bad requests, each a problem+json 4xx" % calls)


if __name__ == "__main__":
    souktest.main(globals())
