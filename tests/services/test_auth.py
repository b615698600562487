"""souk-auth over HTTP with the real broker (key store + log): registration,
login and token claims, the JWK set, refresh rotation, logout, password
change revoking refresh tokens, the failed-login limit, the admin bootstrap
and role changes, user.registered on topic users, the key files, restart,
and the answers while the key store is down."""

import base64
import json
import os
import stat
import sys
import time
import uuid

import souktest
from souktest import assert_problem, field_errors, unique_email, wait_until

CLUSTER = dict(services=("auth",))
PW = souktest.DEFAULT_PASSWORD


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), b64url_decode(s)


def login(c, email, password=PW):
    return c.http("auth", "POST", "/auth/login", {"email": email, "password": password})


def refresh(c, token):
    return c.http("auth", "POST", "/auth/refresh", {"refreshToken": token})


def registered_events(c, user_id):
    return [e for e in c.events("users", "user.registered") if e["data"].get("userId") == user_id]


# ---------------------------------------------------------------------------


def test_register(c):
    email = unique_email("reg")
    uid = c.register(email, phone="+4915112345678", birthDate="1990-05-17")
    assert uuid.UUID(uid)

    # the same address in another case is the same account
    r = c.http("auth", "POST", "/auth/register",
               {"email": email.upper(), "password": PW, "fullName": "Again"})
    assert_problem(r, 409)

    # emails are stored lowercased: logging in with any case works
    assert login(c, email.upper()).status == 200

    bad = {
        "email": "not-an-email",
        "password": "short",
        "fullName": "",
        "phone": "12345",
        "birthDate": "2999-01-01",
    }
    errs = field_errors(c.http("auth", "POST", "/auth/register", bad))
    assert set(errs) >= {"email", "password", "fullName", "phone", "birthDate"}, errs

    e2 = unique_email("same")
    errs = field_errors(c.http("auth", "POST", "/auth/register",
                               {"email": e2, "password": e2.upper(), "fullName": "X"}))
    assert set(errs) == {"password"}, errs

    errs = field_errors(c.http("auth", "POST", "/auth/register",
                               {"email": unique_email(), "password": PW, "fullName": "X",
                                "birthDate": "1990-02-30"}))
    assert set(errs) == {"birthDate"}, errs

    errs = field_errors(c.http("auth", "POST", "/auth/register", {"password": PW}))
    assert set(errs) == {"email", "fullName"}, errs

    # bodies that are not an object
    for body in ("[1,2]", '"x"', "42", "null"):
        assert_problem(c.http("auth", "POST", "/auth/register", body,
                              headers={"Content-Type": "application/json"}), 400)
    assert_problem(c.http("auth", "POST", "/auth/register"), 400)
    assert_problem(c.http("auth", "POST", "/auth/register", "{bad json"), 400)
    # wrong types are field errors, never a 5xx
    errs = field_errors(c.http("auth", "POST", "/auth/register",
                               {"email": 1, "password": [], "fullName": {}, "phone": 5}))
    assert set(errs) == {"email", "password", "fullName", "phone"}, errs


def test_login_tokens_and_jwks(c):
    email = unique_email("login")
    uid = c.register(email)
    r = login(c, email)
    assert r.status == 200, r
    t = r.json
    assert t["tokenType"] == "Bearer" and t["expiresIn"] == 600, t
    assert isinstance(t["refreshToken"], str) and len(b64url_decode(t["refreshToken"])) == 32, t

    hdr, claims, sig = jwt_parts(t["accessToken"])
    assert hdr["alg"] == "ES256", hdr
    assert len(sig) == 64, "ES256 signature is r||s (64 bytes), got %d" % len(sig)
    assert claims["iss"] == "souk-auth", claims
    assert claims["sub"] == uid, claims
    assert claims["role"] == "USER", claims
    assert claims["exp"] - claims["iat"] == 600, claims
    assert abs(claims["iat"] - time.time()) < 60, claims
    assert uuid.UUID(claims["jti"])

    # the JWK set: one P-256 key, its kid in the token header, its point the
    # one in jwt-public.pem (a P-256 SubjectPublicKeyInfo ends with 04||X||Y)
    r = c.http("auth", "GET", "/auth/jwks")
    assert r.status == 200, r
    keys = r.json["keys"]
    assert len(keys) == 1, keys
    k = keys[0]
    assert (k["kty"], k["crv"], k["alg"], k["use"]) == ("EC", "P-256", "ES256", "sig"), k
    assert "d" not in k, "private part published"
    assert hdr["kid"] == k["kid"], (hdr, k)
    with open(os.path.join(c.data_dir("auth"), "jwt-public.pem")) as f:
        der = base64.b64decode("".join(l for l in f.read().splitlines() if "-----" not in l))
    point = der[-65:]
    assert point[0] == 4 and point[1:33] == b64url_decode(k["x"]) and point[33:] == b64url_decode(k["y"])
    # RFC 7638 thumbprint
    import hashlib
    canon = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (k["x"], k["y"])
    want = base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()
    assert k["kid"] == want, (k["kid"], want)

    # the service accepts its own token (PATCH /auth/password needs one):
    # a validation answer, not 401
    r = c.http("auth", "PATCH", "/auth/password", {}, token=t["accessToken"])
    assert_problem(r, 400)

    # wrong password and unknown email: the same 401
    a = login(c, email, "wrong-password-1")
    b = login(c, unique_email("nobody"), "wrong-password-1")
    pa, pb = assert_problem(a, 401), assert_problem(b, 401)
    assert (pa["type"], pa["title"], pa.get("detail")) == (pb["type"], pb["title"], pb.get("detail"))
    field_errors(c.http("auth", "POST", "/auth/login", {"email": email}))
    assert_problem(c.http("auth", "POST", "/auth/login", "[]"), 400)

    # no secret in the log
    log = c.log("auth")
    assert PW not in log and t["refreshToken"] not in log and t["accessToken"] not in log


def test_refresh_rotation(c):
    email = unique_email("rot")
    uid = c.register(email)
    t1 = c.login(email)
    r = refresh(c, t1["refreshToken"])
    assert r.status == 200, r
    t2 = r.json
    assert t2["refreshToken"] != t1["refreshToken"]
    _, claims, _ = jwt_parts(t2["accessToken"])
    assert claims["sub"] == uid and claims["role"] == "USER", claims
    # the old one is used up
    assert_problem(refresh(c, t1["refreshToken"]), 401)
    # the new one works once
    r = refresh(c, t2["refreshToken"])
    assert r.status == 200, r
    assert_problem(refresh(c, t2["refreshToken"]), 401)
    assert_problem(refresh(c, "not-a-token"), 401)
    assert "refreshToken" in field_errors(refresh(c, ""))
    assert "refreshToken" in field_errors(c.http("auth", "POST", "/auth/refresh", {}))


def test_logout(c):
    email = unique_email("out")
    c.register(email)
    t = c.login(email)
    other = c.login(email)
    r = c.http("auth", "POST", "/auth/logout", {"refreshToken": t["refreshToken"]})
    assert r.status == 204, r
    assert_problem(refresh(c, t["refreshToken"]), 401)
    # logging out again (or an unknown token) is fine
    r = c.http("auth", "POST", "/auth/logout", {"refreshToken": t["refreshToken"]})
    assert r.status == 204, r
    # the other session is untouched
    assert refresh(c, other["refreshToken"]).status == 200
    assert "refreshToken" in field_errors(c.http("auth", "POST", "/auth/logout", {}))


def test_password_change_revokes_refresh_tokens(c):
    email = unique_email("pwchg")
    c.register(email)
    s1, s2 = c.login(email), c.login(email)
    tok = s1["accessToken"]
    new_pw = "new-password-42"

    r = c.http("auth", "PATCH", "/auth/password", {"oldPassword": PW, "newPassword": new_pw})
    assert_problem(r, 401)  # no token
    errs = field_errors(c.http("auth", "PATCH", "/auth/password",
                               {"oldPassword": "wrong-password-1", "newPassword": new_pw}, token=tok))
    assert set(errs) == {"oldPassword"}, errs
    errs = field_errors(c.http("auth", "PATCH", "/auth/password",
                               {"oldPassword": PW, "newPassword": "short"}, token=tok))
    assert set(errs) == {"newPassword"}, errs
    errs = field_errors(c.http("auth", "PATCH", "/auth/password",
                               {"oldPassword": PW, "newPassword": email}, token=tok))
    assert set(errs) == {"newPassword"}, errs

    r = c.http("auth", "PATCH", "/auth/password", {"oldPassword": PW, "newPassword": new_pw},
               token=tok)
    assert r.status == 204, r
    assert_problem(refresh(c, s1["refreshToken"]), 401)
    assert_problem(refresh(c, s2["refreshToken"]), 401)
    assert_problem(login(c, email, PW), 401)
    s3 = c.login(email, new_pw)
    assert refresh(c, s3["refreshToken"]).status == 200


def test_failed_login_limit(c):
    email = unique_email("lock")
    c.register(email)
    for i in range(5):
        assert_problem(login(c, email, "wrong-password-%d" % i), 401)
    r = login(c, email, PW)  # even the right password, until the window ends
    assert_problem(r, 429)
    ra = r.headers.get("Retry-After")
    assert ra is not None and ra.isdigit() and 0 < int(ra) <= 900, r.headers
    # the counter is per email (lowercased)
    assert_problem(login(c, email.upper(), PW), 429)
    other = unique_email("free")
    c.register(other)
    assert login(c, other).status == 200

    # unknown emails are counted as well
    ghost = unique_email("ghost")
    for i in range(5):
        assert_problem(login(c, ghost, "wrong-password-%d" % i), 401)
    assert_problem(login(c, ghost, "wrong-password-x"), 429)

    # a success clears the counter
    e3 = unique_email("reset")
    c.register(e3)
    for i in range(4):
        assert_problem(login(c, e3, "wrong-password-%d" % i), 401)
    assert login(c, e3).status == 200
    for i in range(4):
        assert_problem(login(c, e3, "wrong-password-%d" % i), 401)
    assert login(c, e3).status == 200


def test_admin_and_roles(c):
    adm = c.admin_token()
    _, claims, _ = jwt_parts(adm)
    assert claims["role"] == "ADMIN", claims

    email = unique_email("promo")
    uid = c.register(email)
    before = c.login(email)
    user_tok = before["accessToken"]
    r = c.http("auth", "PATCH", "/auth/users/%s/role" % uid, {"role": "ADMIN"}, token=user_tok)
    assert_problem(r, 403)
    assert_problem(c.http("auth", "PATCH", "/auth/users/%s/role" % uid, {"role": "AUTHOR"}), 401)

    r = c.http("auth", "PATCH", "/auth/users/%s/role" % uid, {"role": "AUTHOR"}, token=adm)
    assert r.status == 200, r
    assert r.json == {"userId": uid, "role": "AUTHOR"}, r.json
    _, claims, _ = jwt_parts(c.login(email)["accessToken"])
    assert claims["role"] == "AUTHOR", claims
    # a refresh token from before the change gets the new role too
    r = refresh(c, before["refreshToken"])
    assert r.status == 200, r
    assert jwt_parts(r.json["accessToken"])[1]["role"] == "AUTHOR"

    assert "role" in field_errors(
        c.http("auth", "PATCH", "/auth/users/%s/role" % uid, {"role": "GOD"}, token=adm))
    assert "role" in field_errors(
        c.http("auth", "PATCH", "/auth/users/%s/role" % uid, {"role": "author"}, token=adm))
    assert_problem(c.http("auth", "PATCH", "/auth/users/%s/role" % uuid.uuid4(), {"role": "USER"},
                          token=adm), 404)


def test_user_registered_events(c):
    emails = [unique_email("ev") for _ in range(3)]
    ids = [c.register(e, fullName="Event %d" % i) for i, e in enumerate(emails)]
    ids.append(c.register(unique_email("ev"), phone="+12025550123", birthDate="2001-01-31"))

    def all_there(recs):
        seen = []
        for _, v in recs:
            try:
                seen.append(json.loads(v)["data"]["userId"])
            except (ValueError, KeyError, TypeError):
                pass
        return all(i in seen for i in ids)

    recs = c.wait_for("users", all_there, timeout=20, what="user.registered of 4 users")
    by_id = {}
    for key, v in recs:
        e = json.loads(v)
        by_id.setdefault(e["data"]["userId"], []).append((key, e))
    for i, uid in enumerate(ids):
        got = by_id[uid]
        assert len(got) == 1, "user %s: %d events" % (uid, len(got))
        key, e = got[0]
        assert key == uid.encode(), key
        assert e["type"] == "user.registered" and e["version"] == 1 and e["source"] == "auth", e
        assert uuid.UUID(e["id"]) and e["time"].endswith("Z") and isinstance(e["correlationId"], str)
        d = e["data"]
        assert d["role"] == "USER", d
        assert "password" not in json.dumps(d).lower(), d
        if i < 3:
            assert d["email"] == emails[i] and d["fullName"] == "Event %d" % i, d
            assert d.get("phone") is None and d.get("birthDate") is None, d
        else:
            assert d["phone"] == "+12025550123" and d["birthDate"] == "2001-01-31", d
    # the bootstrapped admin was announced once, as ADMIN
    admins = [e for e in c.events("users", "user.registered") if e["data"]["role"] == "ADMIN"]
    assert len(admins) == 1 and admins[0]["data"]["email"] == c.admin[0], admins


def test_key_files(c):
    d = c.data_dir("auth")
    st = os.stat(os.path.join(d, "jwt-private.pem"))
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    st = os.stat(os.path.join(d, "jwt-public.pem"))
    assert stat.S_IMODE(st.st_mode) == 0o644, oct(st.st_mode)
    with open(os.path.join(d, "jwt-public.pem")) as f:
        assert "PRIVATE" not in f.read()


def test_restart_keeps_key_and_users(c):
    email = unique_email("keep")
    uid = c.register(email)
    kid = c.http("auth", "GET", "/auth/jwks").json["keys"][0]["kid"]
    old = c.login(email)
    c.restart("auth")
    assert c.http("auth", "GET", "/auth/jwks").json["keys"][0]["kid"] == kid
    t = c.login(email)
    assert jwt_parts(t["accessToken"])[1]["sub"] == uid
    # refresh tokens live in the key store, not in the process
    assert refresh(c, old["refreshToken"]).status == 200
    # a token issued before the restart is still accepted
    r = c.http("auth", "PATCH", "/auth/password", {}, token=old["accessToken"])
    assert_problem(r, 400)
    # the admin was not created again
    admins = [e for e in c.events("users", "user.registered") if e["data"]["role"] == "ADMIN"]
    assert len(admins) == 1, admins


def test_key_store_down(c):
    email = unique_email("down")
    c.register(email)
    t = c.login(email)
    c.stop("broker")
    try:
        def answers_503():
            r = login(c, email)
            return r.status == 503 and r
        r = wait_until(answers_503, 10, "login 503 while the key store is down")
        assert_problem(r, 503)
        assert_problem(refresh(c, t["refreshToken"]), 503)
        assert_problem(c.http("auth", "POST", "/auth/logout", {"refreshToken": t["refreshToken"]}), 503)
        # registration only needs the database: the event waits in the outbox
        late = c.register(unique_email("late"))
        assert c.http("auth", "GET", "/auth/jwks").status == 200
    finally:
        c.start("broker")
    wait_until(lambda: login(c, email).status == 200, 20, "login works again")
    c.wait_for("users", lambda recs: any(late.encode() in (v or b"") for _, v in recs), timeout=30,
               what="user.registered of the user registered while the broker was down")
    assert refresh(c, t["refreshToken"]).status == 200


def test_admin_bootstrap_promotes_existing_user():
    with souktest.Cluster(services=("auth",), admin=None) as c:
        email = unique_email("boss")
        uid = c.register(email)
        _, claims, _ = jwt_parts(c.login(email)["accessToken"])
        assert claims["role"] == "USER"
        c.stop("auth")
        c.admin = (email.upper(), "ignored-password-1")
        c.start("auth")
        _, claims, _ = jwt_parts(c.login(email)["accessToken"])
        assert claims["sub"] == uid and claims["role"] == "ADMIN", claims
        # no second user.registered for an existing account
        evs = [e for e in c.events("users", "user.registered") if e["data"]["userId"] == uid]
        assert len(evs) == 1, evs


def test_bad_admin_settings_fail_start():
    with souktest.Cluster(services=(), admin=None) as c:
        # --admin-email without a password cannot create the account
        import subprocess
        d = os.path.join(c.tmp, "auth-bad")
        cmd = [os.environ["SOUK_AUTH_BIN"], "--http", "127.0.0.1:0", "--data-dir", d,
               "--brokers", c.brokers, "--kv", c.kv, "--argon2-memory-kib", "64",
               "--argon2-iterations", "1", "--admin-email", "root@souk.test"]
        r = subprocess.run(cmd, capture_output=True, timeout=30)
        assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
        assert b"admin-password" in r.stderr, r.stderr[-2000:]
        r = subprocess.run(cmd + ["--admin-password", "short"], capture_output=True, timeout=30)
        assert r.returncode == 1 and b"admin-password" in r.stderr, r.stderr[-2000:]


def test_public_key_copy_for_containers():
    # --jwt-public-key-out writes the public key where the other services
    # can read it without seeing auth's data dir (docker-compose.yml).
    with souktest.Cluster(services=(), admin=None) as c:
        import subprocess
        d = os.path.join(c.tmp, "auth-pub")
        out = os.path.join(c.tmp, "shared", "jwt-public.pem")
        os.makedirs(os.path.dirname(out))
        cmd = [os.environ["SOUK_AUTH_BIN"], "--http", "127.0.0.1:0", "--data-dir", d,
               "--brokers", c.brokers, "--kv", c.kv, "--argon2-memory-kib", "64",
               "--argon2-iterations", "1", "--jwt-public-key-out", out, "--help"]
        assert subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
        p = subprocess.Popen(cmd[:-1], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: os.path.exists(out), 20, "the public key copy")
        finally:
            p.terminate()
            _, err = p.communicate(timeout=20)
        assert p.returncode == 0, err[-2000:]
        with open(out) as f, open(os.path.join(d, "jwt-public.pem")) as g:
            copy = f.read()
            assert copy == g.read() and "PUBLIC KEY" in copy and "PRIVATE" not in copy
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o644


if __name__ == "__main__":
    souktest.main(globals())
