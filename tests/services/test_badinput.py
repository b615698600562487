"""Bad input on every route of every service: always a 4xx problem+json,
never a 5xx, and the service keeps serving.

The routes come from the binaries themselves (`souk-<name> --routes`), so a
new endpoint is covered without touching this file.  Each is called as an
admin (so that access checks do not stop the request before the handler)
with malformed JSON, JSON of the wrong shape, fields of the wrong types,
invalid UTF-8, deep nesting, huge numbers, odd path parameters and bad query
strings; then oversized bodies (413), unknown routes (404) and wrong methods
(405 with Allow).
"""
import json
import os
import subprocess

import souktest
from souktest import assert_problem

SERVICES = tuple(n for n in ("auth", "user", "catalog", "booking", "payment", "notification")
                 if os.environ.get("SOUK_%s_BIN" % n.upper()))
CLUSTER = dict(services=SERVICES)

FIELDS = ["email", "password", "fullName", "phone", "birthDate", "bio", "role", "oldPassword",
          "newPassword", "refreshToken", "title", "description", "price", "currency", "dateOfEvent",
          "numberOfTickets", "ticketId", "catalogId", "card", "expMonth", "expYear", "cvc"]

BODIES = [
    b"{",
    b"{\"a\":",
    b"[]",
    b"\"just a string\"",
    b"null",
    b"42",
    b"{} trailing",
    b"\xff\xfe{\"title\": \"\xc3\x28\"}",
    b"[" * 5000 + b"]" * 5000,
    json.dumps({f: 1e400 if i % 2 else -1 for i, f in enumerate(FIELDS)}).encode().replace(b"Infinity", b"1e400"),
    json.dumps({f: 12345678901234567890 for f in FIELDS}).encode(),
    json.dumps({f: [] for f in FIELDS}).encode(),
    json.dumps({f: {"nested": True} for f in FIELDS}).encode(),
    json.dumps({f: True for f in FIELDS}).encode(),
    json.dumps({f: "" for f in FIELDS}).encode(),
    json.dumps({f: "x" * 5000 for f in FIELDS}).encode(),
    json.dumps({f: "\u0000\ud800" for f in FIELDS}).encode(),
]

PARAMS = ["x", "00000000-0000-4000-8000-000000000000", "%00", "%zz", "..", "a" * 300, "%E2%82%AC"]

QUERIES = ["?page=-1", "?size=0", "?size=1000", "?page=abc", "?sort=nope,asc", "?sort=price,sideways",
           "?priceFrom=abc", "?priceFrom=10&priceTo=5", "?status=WHAT", "?dateFrom=yesterday",
           "?registeredFrom=x", "?birthDateFrom=1990-13-45", "?%zz=1", "?email=%00"]


def routes(name):
    out = subprocess.run([os.environ["SOUK_%s_BIN" % name.upper()], "--routes"], check=True,
                         capture_output=True, text=True).stdout
    return [tuple(l.split()) for l in out.splitlines() if l.strip()]


def fill(pattern, value):
    return "/".join(value if s.startswith("{") else s for s in pattern.split("/"))


def check(r, what):
    assert r.status < 500, "%s: server error %r" % (what, r)
    if r.status >= 400:
        assert_problem(r, r.status)


def test_every_route_every_bad_body(c):
    admin = c.admin_token()
    n = 0
    for name in SERVICES:
        for method, pattern, _access in routes(name):
            for value in PARAMS if "{" in pattern else [None]:
                path = fill(pattern, value) if value else pattern
                for body in BODIES if method in ("POST", "PUT", "PATCH") else [None]:
                    r = c.http(name, method, path, body=body, token=admin,
                               headers={"Content-Type": "application/json"})
                    check(r, "%s %s %s body %r" % (name, method, path, (body or b"")[:40]))
                    n += 1
            if method == "GET":
                for q in QUERIES:
                    path = fill(pattern, PARAMS[1]) + q
                    check(c.http(name, method, path, token=admin), "%s GET %s" % (name, path))
                    n += 1
        assert c.http(name, "GET", "/health").status == 200, "%s died" % name
    print("  %d bad requests, no 5xx" % n)


def test_oversized_body_is_413(c):
    admin = c.admin_token()
    big = b"{\"title\": \"" + b"x" * (2 * 1024 * 1024) + b"\"}"
    for name in SERVICES:
        posts = [(m, p) for m, p, _ in routes(name) if m in ("POST", "PUT", "PATCH")]
        for m, p in posts[:2]:
            r = c.http(name, m, fill(p, PARAMS[1]), body=big, token=admin,
                       headers={"Content-Type": "application/json"}, timeout=30)
            assert_problem(r, 413)
        assert c.http(name, "GET", "/health").status == 200


def test_unknown_route_and_wrong_method(c):
    for name in SERVICES:
        assert_problem(c.http(name, "GET", "/no/such/route"), 404)
        rs = routes(name)
        taken = {(m, p) for m, p, _ in rs}
        for m, p, _ in rs:
            for other in ("DELETE", "PUT", "POST"):
                if (other, p) not in taken:
                    r = c.http(name, other, fill(p, PARAMS[1]))
                    assert_problem(r, 405)
                    assert m in (r.headers.get("Allow") or ""), "%s %s: Allow %r" % (other, p, r.headers.get("Allow"))
                    break


def test_not_json_content_and_garbage_headers(c):
    admin = c.admin_token()
    for name in SERVICES:
        for m, p, _ in routes(name):
            if m not in ("POST", "PUT", "PATCH"):
                continue
            r = c.http(name, m, fill(p, PARAMS[1]), body=b"<xml/>", token=admin,
                       headers={"Content-Type": "text/xml", "X-Request-Id": "\x7f" * 10,
                                "X-Correlation-Id": "a" * 1000})
            check(r, "%s %s %s xml" % (name, m, p))


if __name__ == "__main__":
    souktest.main(globals())
