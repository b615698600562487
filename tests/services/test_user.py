"""souk-user against the real souk-auth and souk-broker (see souktest.py).

Registration through auth -> user.registered -> a profile and user.created;
GET/PUT /users/me with validation; user.updated; GET /users for admins with
paging, sort and filters; access rules; restarts (graceful and kill -9)
without duplicate events; poison records on `users` go to users.dlq.
"""

import json
import time
from datetime import date, datetime, timedelta, timezone

import souktest
from souktest import assert_problem, envelope, field_errors, unique_email, wait_until

CLUSTER = dict(services=("auth", "user"))

RFC3339_MS = "%Y-%m-%dT%H:%M:%S.%fZ"


def me(c, tok):
    return c.http("user", "GET", "/users/me", token=tok)


def wait_profile(c, tok, timeout=2.0):
    """The caller's profile, waiting up to timeout s for user.registered."""
    r = wait_until(lambda: (lambda r: r if r.status == 200 else None)(me(c, tok)), timeout,
                   "profile of %s" % tok.email, 0.05)
    return r.json


def events_of(c, type, user_id):
    return [e for e in c.events("user.created", type) if e["data"].get("userId") == user_id]


def count_settled(c, type, user_id, want, settle=1.0):
    """Waits for `want` events of type for user_id, then checks that no more
    arrive within `settle` s; returns them."""
    wait_until(lambda: len(events_of(c, type, user_id)) >= want, 10,
               "%d %s for %s on user.created" % (want, type, user_id), 0.3)
    time.sleep(settle)
    evs = events_of(c, type, user_id)
    assert len(evs) == want, "expected %d %s for %s, got %d: %s" % (want, type, user_id, len(evs), evs)
    return evs


def parse_time(s):
    assert s.endswith("Z"), s
    return datetime.strptime(s, RFC3339_MS).replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------------


STATE = {}


def test_register_creates_profile(c):
    tok = c.user_token(fullName="Ada Lovelace")
    t0 = time.monotonic()
    p = wait_profile(c, tok, timeout=2.0)
    print("  profile visible %.2f s after login" % (time.monotonic() - t0))
    assert p["userId"] == tok.user_id, p
    assert p["email"] == tok.email, p
    assert p["fullName"] == "Ada Lovelace", p
    assert p["phone"] is None and p["bio"] is None and p["birthDate"] is None, p
    assert p["role"] == "USER", p
    reg = parse_time(p["registeredAt"])
    assert abs((datetime.now(timezone.utc) - reg).total_seconds()) < 60, p
    assert p["updatedAt"] == p["registeredAt"], p
    STATE["ada"] = tok


def test_user_created_event_once(c):
    tok = STATE["ada"]
    evs = count_settled(c, "user.created", tok.user_id, 1)
    e = evs[0]
    assert e["source"] == "user" and e["version"] == 1, e
    assert e["causationId"], "user.created must name the user.registered that caused it: %s" % e
    d = e["data"]
    assert d["email"] == tok.email and d["fullName"] == "Ada Lovelace" and d["role"] == "USER", d
    assert d["phone"] is None, d
    keys = [k for k, v in c.consume("user.created") if v and json.loads(v)["id"] == e["id"]]
    assert keys == [tok.user_id.encode()], "user.created must be keyed by userId: %r" % keys


def test_put_me_valid(c):
    tok = STATE["ada"]
    before = me(c, tok).json
    body = {"fullName": "Ada King", "phone": "+14155552671", "bio": "Analyst.",
            "birthDate": "1815-12-10"}
    r = c.http("user", "PUT", "/users/me", body, token=tok)
    # 1815 is before the oldest accepted birth date (1900-01-01)
    assert field_errors(r).keys() == {"birthDate"}, r
    body["birthDate"] = "1990-05-17"
    r = c.http("user", "PUT", "/users/me", body, token=tok)
    assert r.status == 200, r
    p = r.json
    for k, v in body.items():
        assert p[k] == v, (k, p)
    assert p["email"] == before["email"] and p["registeredAt"] == before["registeredAt"], p
    assert parse_time(p["updatedAt"]) >= parse_time(before["updatedAt"]), p
    assert me(c, tok).json == p
    evs = count_settled(c, "user.updated", tok.user_id, 1)
    d = evs[0]["data"]
    assert d["fullName"] == "Ada King" and d["phone"] == "+14155552671", d
    assert d["bio"] == "Analyst." and d["birthDate"] == "1990-05-17", d
    assert d["email"] == tok.email and d["role"] == "USER", d

    # the same PUT again changes nothing: 200, no event, updatedAt kept
    r2 = c.http("user", "PUT", "/users/me", body, token=tok)
    assert r2.status == 200 and r2.json == p, r2
    count_settled(c, "user.updated", tok.user_id, 1, settle=1.0)
    count_settled(c, "user.created", tok.user_id, 1, settle=0)


def test_put_me_invalid(c):
    tok = STATE["ada"]
    before = me(c, tok).json
    future = (date.today() + timedelta(days=400)).isoformat()
    today = datetime.now(timezone.utc).date().isoformat()
    ok = {"fullName": "Ada", "phone": None, "bio": None, "birthDate": None}
    cases = [
        ({"phone": "4155552671"}, {"phone"}),
        ({"phone": "+1 415 555 2671"}, {"phone"}),
        ({"phone": "+0123456"}, {"phone"}),
        ({"phone": "+1234567890123456"}, {"phone"}),
        ({"phone": ""}, {"phone"}),
        ({"phone": 14155552671}, {"phone"}),
        ({"birthDate": future}, {"birthDate"}),
        ({"birthDate": today}, {"birthDate"}),
        ({"birthDate": "1990-02-30"}, {"birthDate"}),
        ({"birthDate": "17/05/1990"}, {"birthDate"}),
        ({"birthDate": "1990-05-17T00:00:00Z"}, {"birthDate"}),
        ({"birthDate": 19900517}, {"birthDate"}),
        ({"fullName": ""}, {"fullName"}),
        ({"fullName": "   "}, {"fullName"}),
        ({"fullName": "x" * 101}, {"fullName"}),
        ({"fullName": 42}, {"fullName"}),
        ({"fullName": ["Ada"]}, {"fullName"}),
        ({"fullName": None}, {"fullName"}),
        ({"bio": "x" * 1001}, {"bio"}),
        ({"bio": 5}, {"bio"}),
        ({"bio": {"a": 1}}, {"bio"}),
        ({"fullName": 1, "phone": "x", "bio": True, "birthDate": future},
         {"fullName", "phone", "bio", "birthDate"}),
    ]
    for patch, fields in cases:
        body = dict(ok)
        body.update(patch)
        r = c.http("user", "PUT", "/users/me", body, token=tok)
        errs = field_errors(r)
        assert set(errs) == fields, "PUT %s: expected errors on %s, got %s" % (patch, fields, errs)
        assert all(isinstance(m, str) and m for m in errs.values()), errs
    # missing fields, wrong body types
    for body, fields in [({}, {"fullName"}), ({"phone": "+14155552671"}, {"fullName"}),
                         ([], {"body"}), ("null", {"body"}), ('"Ada"', {"body"}), ("42", {"body"})]:
        r = c.http("user", "PUT", "/users/me", body, token=tok,
                   headers={"Content-Type": "application/json"})
        assert set(field_errors(r)) == fields, (body, r)
    r = c.http("user", "PUT", "/users/me", None, token=tok)
    assert set(field_errors(r)) == {"body"}, r
    r = c.http("user", "PUT", "/users/me", '{"fullName": "Ada"', token=tok,
               headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    # boundaries that are fine
    edge = {"fullName": "é" * 100, "phone": "+12", "bio": "b" * 1000, "birthDate": "1900-01-01"}
    r = c.http("user", "PUT", "/users/me", edge, token=tok)
    assert r.status == 200 and r.json["fullName"] == "é" * 100, r
    # and back
    r = c.http("user", "PUT", "/users/me",
               {k: before[k] for k in ("fullName", "phone", "bio", "birthDate")}, token=tok)
    assert r.status == 200, r
    assert {k: r.json[k] for k in ok} == {k: before[k] for k in ok}, r
    # two real changes -> exactly two more user.updated (none for the 400s)
    count_settled(c, "user.updated", tok.user_id, 3)


def test_put_me_clears_optional_fields(c):
    tok = c.user_token(fullName="Grace Hopper")
    wait_profile(c, tok)
    r = c.http("user", "PUT", "/users/me", {"fullName": "Grace", "phone": "+441234567890",
                                             "bio": "Admiral", "birthDate": "1906-12-09"}, token=tok)
    assert r.status == 200, r
    r = c.http("user", "PUT", "/users/me", {"fullName": "Grace B. Hopper"}, token=tok)
    assert r.status == 200, r
    assert r.json["phone"] is None and r.json["bio"] is None and r.json["birthDate"] is None, r
    assert r.json["fullName"] == "Grace B. Hopper", r
    evs = count_settled(c, "user.updated", tok.user_id, 2)
    assert evs[-1]["data"]["phone"] is None and evs[-1]["data"]["fullName"] == "Grace B. Hopper"


def test_access_rules(c):
    tok = STATE["ada"]
    for method, path in [("GET", "/users/me"), ("PUT", "/users/me"), ("GET", "/users")]:
        r = c.http("user", method, path, {"fullName": "x"} if method == "PUT" else None)
        assert_problem(r, 401)
        assert "bearer" in r.headers.get("www-authenticate", "").lower(), r.headers
        r = c.http("user", method, path, {"fullName": "x"} if method == "PUT" else None,
                   token="not-a-token")
        assert_problem(r, 401)
    assert_problem(c.http("user", "GET", "/users", token=tok), 403)
    author = c.user_token(role="AUTHOR")
    assert_problem(c.http("user", "GET", "/users", token=author), 403)
    # an AUTHOR has a profile like anyone
    assert wait_profile(c, author)["userId"] == author.user_id
    assert_problem(c.http("user", "DELETE", "/users/me", token=tok), 405)
    assert_problem(c.http("user", "GET", "/users/nobody", token=tok), 404)


def test_admin_list(c):
    admin = c.admin_token()
    tag = "lst%s" % unique_email("x")[2:10]
    toks = []
    for i in range(5):
        t = c.user_token(email="%s-%d@Souk.Test" % (tag, i), fullName="List %d" % i)
        toks.append(t)
    births = ["1980-01-01", "1985-06-15", "1990-12-31", None, "2000-02-29"]
    for t, b in zip(toks, births):
        wait_profile(c, t, timeout=5)
        if b:
            r = c.http("user", "PUT", "/users/me", {"fullName": t.email, "birthDate": b}, token=t)
            assert r.status == 200, r

    def get(qs, tok=admin):
        return c.http("user", "GET", "/users?" + qs, token=tok)

    r = get("email=" + tag)
    assert r.status == 200, r
    page = r.json
    assert page["totalElements"] == 5 and page["totalPages"] == 1, page
    assert page["page"] == 0 and page["size"] == 20, page
    ids = [p["userId"] for p in page["content"]]
    assert sorted(ids) == sorted(t.user_id for t in toks), page
    p0 = page["content"][0]
    assert set(p0) >= {"userId", "email", "fullName", "phone", "bio", "birthDate", "role",
                       "registeredAt", "updatedAt"}, p0

    # case-insensitive substring
    assert get("email=" + tag.upper()).json["totalElements"] == 5
    assert get("email=%s-3%%40souk" % tag.upper()).json["totalElements"] == 1
    # LIKE wildcards are plain characters
    assert get("email=%25").json["totalElements"] == 0
    assert get("email=_").json["totalElements"] == 0
    assert get("email=" + tag + "-_").json["totalElements"] == 0

    # sort registeredAt asc (default) / desc, paging
    asc = [p["userId"] for p in get("email=%s&sort=registeredAt,asc&size=100" % tag).json["content"]]
    desc = [p["userId"] for p in get("email=%s&sort=registeredAt,desc" % tag).json["content"]]
    assert desc == list(reversed(asc)), (asc, desc)
    assert [p["userId"] for p in get("email=" + tag).json["content"]] == asc
    times = [parse_time(p["registeredAt"]) for p in get("email=%s&sort=registeredAt" % tag).json["content"]]
    assert times == sorted(times), times
    assert asc == [t.user_id for t in toks], "registration order expected: %s" % asc
    paged = []
    for n in range(3):
        pg = get("email=%s&size=2&page=%d" % (tag, n)).json
        assert pg["totalElements"] == 5 and pg["totalPages"] == 3 and pg["size"] == 2, pg
        assert len(pg["content"]) == (2 if n < 2 else 1), pg
        paged += [p["userId"] for p in pg["content"]]
    assert paged == asc
    assert get("email=%s&size=2&page=3" % tag).json["content"] == []

    # registration time
    first = get("email=%s" % tag).json["content"][0]["registeredAt"]
    last = get("email=%s" % tag).json["content"][-1]["registeredAt"]
    today = datetime.now(timezone.utc).date()
    assert get("email=%s&registeredFrom=%s" % (tag, today - timedelta(days=1))).json["totalElements"] == 5
    assert get("email=%s&registeredFrom=%s" % (tag, today + timedelta(days=1))).json["totalElements"] == 0
    assert get("email=%s&registeredTo=%s" % (tag, today)).json["totalElements"] == 5
    assert get("email=%s&registeredTo=2000-01-01" % tag).json["totalElements"] == 0
    assert get("email=%s&registeredFrom=%s&registeredTo=%s" % (tag, first, first)).json["totalElements"] >= 1
    assert get("email=%s&registeredFrom=%s" % (tag, last)).json["content"][-1]["registeredAt"] == last
    r = get("email=%s&registeredFrom=%s" % (tag, first.replace("Z", "%2B00:00")))
    assert r.json["totalElements"] == 5, r

    # birth dates (inclusive; profiles without one never match)
    def births_of(qs):
        return sorted(p["birthDate"] for p in get("email=%s&%s" % (tag, qs)).json["content"])

    assert births_of("birthDateFrom=1985-06-15") == ["1985-06-15", "1990-12-31", "2000-02-29"]
    assert births_of("birthDateTo=1985-06-15") == ["1980-01-01", "1985-06-15"]
    assert births_of("birthDateFrom=1981-01-01&birthDateTo=1999-01-01") == ["1985-06-15", "1990-12-31"]
    assert births_of("birthDateFrom=2001-01-01") == []

    # bad parameters
    for qs, field in [("size=0", "size"), ("size=101", "size"), ("page=-1", "page"),
                      ("size=abc", "size"), ("sort=email", "sort"), ("sort=registeredAt,up", "sort"),
                      ("registeredFrom=yesterday", "registeredFrom"),
                      ("registeredTo=2026-11-25T10:00:00", "registeredTo"),
                      ("registeredFrom=2026-02-30", "registeredFrom"),
                      ("registeredFrom=2026-01-02&registeredTo=2026-01-01", "registeredTo"),
                      ("birthDateFrom=1990-13-01", "birthDateFrom"),
                      ("birthDateTo=90-01-01", "birthDateTo"),
                      ("birthDateFrom=1990-01-02&birthDateTo=1990-01-01", "birthDateTo"),
                      ("email=" + "a" * 400, "email")]:
        assert field in field_errors(get(qs)), qs
    assert get("size=100").status == 200

    # the whole list (no filter) holds them too, and the admin
    allp = get("size=100").json
    assert allp["totalElements"] >= 5, allp


def test_registration_events_idempotent(c):
    """A user.registered produced directly: creates a profile; the same event
    again (same id) and another registration of the same userId (new id) are
    no-ops: no profile change, no second user.created."""
    uid = "kcat-" + unique_email("u")[2:14]
    email = unique_email("kcat")
    ev = envelope("user.registered", {"userId": uid, "email": email, "role": "USER",
                                      "fullName": "From Kcat", "phone": "+33612345678",
                                      "birthDate": "1970-01-01"}, source="auth")
    c.produce("users", json.dumps(ev), key=uid)
    admin = c.admin_token()

    def profile():
        r = c.http("user", "GET", "/users?email=" + email, token=admin)
        return r.json["content"][0] if r.status == 200 and r.json["content"] else None

    p = wait_until(profile, 10, "profile %s from a produced event" % uid)
    assert p["fullName"] == "From Kcat" and p["phone"] == "+33612345678", p
    assert p["birthDate"] == "1970-01-01", p
    assert parse_time(p["registeredAt"]) == parse_time(ev["time"]), (p, ev["time"])
    c.produce("users", json.dumps(ev), key=uid)
    again = envelope("user.registered", {"userId": uid, "email": "other-" + email, "role": "ADMIN",
                                         "fullName": "Someone Else"}, source="auth")
    c.produce("users", json.dumps(again), key=uid)
    # a marker event after them on the same partition (same key) tells when they were consumed
    marker = envelope("user.registered", {"userId": uid + "-m", "email": "m-" + email,
                                          "role": "USER"}, source="auth")
    c.produce("users", json.dumps(marker), key=uid)
    wait_until(lambda: c.http("user", "GET", "/users?email=m-" + email, token=admin)
               .json["totalElements"] == 1, 10, "marker profile")
    assert profile() == p
    evs = count_settled(c, "user.created", uid, 1)
    assert evs[0]["causationId"] == ev["id"] and evs[0]["correlationId"] == ev["correlationId"], evs
    assert "duplicate" in c.log("user") or "exists already" in c.log("user")


def test_role_change_reaches_profile(c):
    tok = c.user_token()
    wait_until(lambda: c.http("user", "GET", "/users/me", token=tok).status == 200, 5, "profile")
    admin = c.admin_token()
    r = c.http("auth", "PATCH", "/auth/users/%s/role" % tok.user_id, {"role": "AUTHOR"}, token=admin)
    assert r.status == 200, r
    # Setting the same role again changes nothing and emits nothing.
    r = c.http("auth", "PATCH", "/auth/users/%s/role" % tok.user_id, {"role": "AUTHOR"}, token=admin)
    assert r.status == 200, r
    wait_until(lambda: c.http("user", "GET", "/users/me", token=tok).json.get("role") == "AUTHOR", 5,
               "role AUTHOR in the profile")
    changes = [e for e in c.events("users", "user.role_changed") if e["data"]["userId"] == tok.user_id]
    assert len(changes) == 1, changes
    assert changes[0]["data"]["previousRole"] == "USER", changes
    updates = c.wait_for("user.created", lambda recs: any(
        b'"user.updated"' in (v or b"") and tok.user_id.encode() in (v or b"") for _, v in recs), 10)
    assert updates


def test_restart_keeps_profiles(c):
    tok = STATE["ada"]
    before = me(c, tok).json
    n_created = len(c.events("user.created", "user.created"))
    c.restart("user")
    assert me(c, tok).json == before
    t = c.user_token(fullName="After Restart")
    wait_profile(c, t, timeout=10)
    time.sleep(1.0)
    assert len(c.events("user.created", "user.created")) == n_created + 1
    count_settled(c, "user.created", tok.user_id, 1, settle=0)


def test_poison_records_go_to_dlq(c):
    before = len(c.consume("users.dlq"))
    c.produce("users", b"\xff\xfe not json \x00 at all", key="poison-bytes")
    bad = envelope("user.registered", {"userId": 42, "email": "p@souk.test", "role": "USER"},
                   source="auth")
    c.produce("users", json.dumps(bad), key="poison-type")
    half = envelope("user.registered", {"userId": "p-1", "role": "USER"}, source="auth")
    c.produce("users", json.dumps(half), key="poison-missing")
    # well-typed but not a registration the handler can keep: it fails every
    # attempt (--max-attempts, 5 by default, with backoff) and is dead-lettered
    empty = envelope("user.registered", {"userId": "", "email": "e@souk.test", "role": "USER"},
                     source="auth")
    c.produce("users", json.dumps(empty), key="poison-empty")

    recs = c.wait_for("users.dlq", lambda r: len(r) >= before + 4, 30, "4 records on users.dlq")
    dlq = [json.loads(v) for k, v in recs[before:]]
    by_key = {d.get("key"): d for d in dlq}
    assert set(by_key) >= {"poison-bytes", "poison-type", "poison-missing", "poison-empty"}, dlq
    for k, d in by_key.items():
        assert d["topic"] == "users" and d["consumer"] == "user" and d["error"], d
    assert by_key["poison-empty"]["attempts"] == 5, by_key["poison-empty"]
    assert by_key["poison-empty"]["eventId"] == empty["id"], by_key["poison-empty"]
    assert by_key["poison-type"]["attempts"] == 0, by_key["poison-type"]
    assert "valueBase64" in by_key["poison-bytes"], by_key["poison-bytes"]
    assert json.loads(by_key["poison-type"]["value"])["id"] == bad["id"]
    assert "userId" in by_key["poison-type"]["error"], by_key["poison-type"]

    # the service keeps working
    assert c.http("user", "GET", "/ready").status == 200
    t = c.user_token(fullName="After Poison")
    wait_profile(c, t, timeout=10)


def test_kill9_no_duplicates(c):
    tok = STATE["ada"]
    before = me(c, tok).json
    # a registration right before the crash: its offset may not be committed yet
    t = c.user_token(fullName="Before Crash")
    wait_profile(c, t, timeout=10)
    c.kill9("user")
    t2 = c.user_token(fullName="While Down")
    c.start("user")
    assert me(c, tok).json == before
    # the group waits for the killed member's session to expire (10 s) first
    wait_profile(c, t2, timeout=30)
    for u in (tok, t, t2):
        count_settled(c, "user.created", u.user_id, 1, settle=0)
    time.sleep(1.0)
    for u in (tok, t, t2):
        count_settled(c, "user.created", u.user_id, 1, settle=0)


if __name__ == "__main__":
    souktest.main(globals())
