"""Who may call what: the access matrix across auth, user and catalog.

No token and bad tokens (garbage, tampered payload, alg none, the HS256
forgery with the public key as HMAC secret) -> 401 with WWW-Authenticate;
a signed-in caller without the role -> 403; an author editing another
author's catalog -> 403; public routes need no token.  Every refusal is
problem+json.
"""
import base64
import hashlib
import hmac
import json
import os

import souktest
from souktest import assert_problem, unique_email

CLUSTER = dict(services=("auth", "user", "catalog"))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_json(o):
    return b64url(json.dumps(o, separators=(",", ":")).encode())


def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def catalog_body(title=None):
    return {
        "title": title or ("Course " + os.urandom(4).hex()),
        "description": "a course",
        "price": 2500,
        "currency": "EUR",
        "dateOfEvent": "2031-06-01T18:00:00Z",
        "numberOfTickets": 3,
    }


# (service, method, path, body): routes that need a signed-in caller.
PROTECTED = [
    ("user", "GET", "/users/me", None),
    ("user", "PUT", "/users/me", {"fullName": "X"}),
    ("user", "GET", "/users", None),
    ("auth", "PATCH", "/auth/password", {"oldPassword": "a" * 12, "newPassword": "b" * 12}),
    ("auth", "PATCH", "/auth/users/00000000-0000-4000-8000-000000000000/role", {"role": "ADMIN"}),
    ("catalog", "POST", "/catalogs", catalog_body()),
    ("catalog", "PUT", "/catalogs/00000000-0000-4000-8000-000000000000", catalog_body()),
    ("catalog", "PATCH", "/catalogs/00000000-0000-4000-8000-000000000000/deactivate", None),
]


def assert_401(r, what):
    assert_problem(r, 401)
    assert "bearer" in (r.headers.get("WWW-Authenticate") or "").lower(), "%s: no WWW-Authenticate: %r" % (
        what, r)


def test_no_token_is_401(c):
    for svc, m, p, b in PROTECTED:
        assert_401(c.http(svc, m, p, b), "%s %s" % (m, p))


def test_bad_tokens_are_401(c):
    good = c.user_token()
    head, payload, sig = good.split(".")
    with open(os.path.join(c.data_dir("auth"), "jwt-public.pem"), "rb") as f:
        pem = f.read()
    admin_claims = dict(claims(good), role="ADMIN")
    forged_payload = b64url_json(admin_claims)
    hs_head = b64url_json({"alg": "HS256", "typ": "JWT"})
    hs_sig = b64url(hmac.new(pem, (hs_head + "." + forged_payload).encode(), hashlib.sha256).digest())
    bad = {
        "garbage": "not-a-token",
        "empty parts": "..",
        "tampered payload": head + "." + forged_payload + "." + sig,
        "alg none": b64url_json({"alg": "none", "typ": "JWT"}) + "." + forged_payload + ".",
        "HS256 with the public key": hs_head + "." + forged_payload + "." + hs_sig,
        "signature cut": head + "." + payload + "." + sig[:-4],
    }
    for what, tok in bad.items():
        for svc, m, p, b in PROTECTED:
            assert_401(c.http(svc, m, p, b, token=tok), "%s: %s %s" % (what, m, p))
    # The good token still works.
    assert c.http("catalog", "GET", "/catalogs", token=good).status == 200


def test_roles_are_403(c):
    user = c.user_token()
    author = c.user_token(role="AUTHOR")
    for svc, m, p, b in [
        ("catalog", "POST", "/catalogs", catalog_body()),
        ("user", "GET", "/users", None),
        ("auth", "PATCH", "/auth/users/%s/role" % user.user_id, {"role": "ADMIN"}),
    ]:
        assert_problem(c.http(svc, m, p, b, token=user), 403)
    for svc, m, p, b in [
        ("user", "GET", "/users", None),
        ("auth", "PATCH", "/auth/users/%s/role" % user.user_id, {"role": "ADMIN"}),
    ]:
        assert_problem(c.http(svc, m, p, b, token=author), 403)
    # The refused role change did not happen: a new login is still USER.
    assert claims(c.login(user.email)["accessToken"])["role"] == "USER"


def test_owner_rules(c):
    a1 = c.user_token(role="AUTHOR")
    a2 = c.user_token(role="AUTHOR")
    admin = c.admin_token()
    r = c.http("catalog", "POST", "/catalogs", catalog_body(), token=a1)
    assert r.status == 201, r
    cid = r.json["catalogId"]
    assert_problem(c.http("catalog", "PUT", "/catalogs/" + cid, catalog_body(), token=a2), 403)
    assert_problem(c.http("catalog", "PATCH", "/catalogs/%s/deactivate" % cid, token=a2), 403)
    assert_problem(c.http("catalog", "PUT", "/catalogs/" + cid, catalog_body(), token=c.user_token()), 403)
    got = c.http("catalog", "GET", "/catalogs/" + cid).json
    assert got["status"] == "ACTIVE", got
    r = c.http("catalog", "PUT", "/catalogs/" + cid, catalog_body("Renamed by owner " + cid[:8]), token=a1)
    assert r.status == 200, r
    r = c.http("catalog", "PATCH", "/catalogs/%s/deactivate" % cid, token=admin)
    assert r.status == 200, r
    assert c.http("catalog", "GET", "/catalogs/" + cid).json["status"] == "DEACTIVATED"


def test_public_routes(c):
    for svc, p in [("catalog", "/catalogs"), ("auth", "/auth/jwks"), ("user", "/health"),
                   ("catalog", "/ready"), ("auth", "/metrics")]:
        r = c.http(svc, "GET", p)
        assert r.status == 200, "%s %s: %r" % (svc, p, r)


def test_admin_can(c):
    admin = c.admin_token()
    assert c.http("user", "GET", "/users", token=admin).status == 200
    r = c.http("catalog", "POST", "/catalogs", catalog_body(), token=admin)
    assert r.status == 201, r
    email = unique_email()
    uid = c.register(email)
    r = c.http("auth", "PATCH", "/auth/users/%s/role" % uid, {"role": "AUTHOR"}, token=admin)
    assert r.status == 200, r
    assert claims(c.login(email)["accessToken"])["role"] == "AUTHOR"


if __name__ == "__main__":
    souktest.main(globals())
