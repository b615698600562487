"""souk-gateway in front of the real souk-auth, souk-user and souk-catalog.

The gateway runs from $SOUK_GATEWAY_BIN, started here (souktest's Cluster
starts the broker and the services), with every upstream address on the
command line: auth, user and catalog are the cluster's; analytics is a
Python echo server (answers each request with what it received, counts its
connections); booking points at a port nobody listens on; payment and
notification at a server that accepts and never answers.

Proxying: register, login, catalog create/list and /users/me give the same
answers through the gateway as directly; headers (X-Request-Id added or a
client's valid one kept, X-Correlation-Id, X-Forwarded-For, Host, hop-by-hop
dropped both ways, Authorization untouched), status, query and body pass
through.  Failures: a stopped service -> 503 problem+json naming it, served
again once it is back; an upstream that never answers -> 504 after
--upstream-timeout-ms; a body over --max-body-bytes -> 413 before anything
goes upstream (Content-Length or chunked); an unknown prefix -> 404.  The
web UI: content types, index.html for / and directories, HEAD, and no way
out of --web-dir (.., encoded dots and slashes, dotfiles, symlinks).
Pooling: 200 sequential requests open few upstream connections; 50
concurrent ones all succeed with at most --pool-size connections.
/gateway/upstreams, metrics, and a graceful shutdown that finishes the
requests in flight.
"""

import atexit
import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import threading
import time

import souktest
from souktest import CIDict, Resp, assert_problem, unique_email, wait_until

CLUSTER = dict(services=("auth", "user", "catalog"))

FUTURE = "2031-06-01T18:00:00Z"
POOL = 16
MAX_BODY = 64 * 1024

_live = []  # gateways still running, killed at exit if a test left one


@atexit.register
def _kill_leftovers():
    for g in _live:
        if g.popen and g.popen.poll() is None:
            g.popen.kill()


# ---------------------------------------------------------------------------
# fake upstreams
# ---------------------------------------------------------------------------


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without this, Nagle and
        # delayed ACKs add 40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _any(self):
        srv = self.server
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with srv.lock:
            srv.requests += 1
        q = {}
        if "?" in self.path:
            for kv in self.path.split("?", 1)[1].split("&"):
                k, _, v = kv.partition("=")
                q[k] = v
        if "sleep" in q:
            time.sleep(float(q["sleep"]))
        status = int(q.get("status", 200))
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("utf-8", "replace"),
            "bodyLength": len(body),
        }
        out = b"" if self.command == "HEAD" else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.echo+json")
        self.send_header("X-Upstream", "echo")
        self.send_header("Keep-Alive", "timeout=60")
        self.send_header("X-Hop", "must not pass")
        self.send_header("Connection", "X-Hop")
        self.send_header("Content-Length", str(len(json.dumps(doc).encode())))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any


class EchoServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """HTTP/1.1 keep-alive server on a free port; counts connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.lock = threading.Lock()
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.requests = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]

    def get_request(self):
        r = super().get_request()
        with self.lock:
            self.connections += 1
            self.open += 1
            self.max_open = max(self.max_open, self.open)
        return r

    def shutdown_request(self, request):
        with self.lock:
            self.open -= 1
        super().shutdown_request(request)


class HangServer:
    """Accepts, reads whatever comes, and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._hold, args=(s,), daemon=True).start()

    def _hold(self, s):
        s.settimeout(60)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
        finally:
            s.close()


ECHO = None
HANG = None


def fakes():
    global ECHO, HANG
    if ECHO is None:
        ECHO = EchoServer()
        HANG = HangServer()
    return ECHO, HANG


def dead_port():
    return souktest._free_ports(1)[0]


# ---------------------------------------------------------------------------
# the gateway process
# ---------------------------------------------------------------------------


class Gateway:
    def __init__(self, c, name="gateway", args=(), urls=None, web_dir=None):
        self.c = c
        self.name = name
        self.port = souktest._free_ports(1)[0]
        self.dir = os.path.join(c.tmp, name)
        self.web_dir = web_dir or os.path.join(c.tmp, name + "-web")
        self.urls = dict(urls or {})
        self.args = list(args)
        self.popen = None
        self.runs = 0

    def cmd(self):
        bin = os.environ.get("SOUK_GATEWAY_BIN")
        assert bin, "SOUK_GATEWAY_BIN is not set"
        cmd = [
            os.path.abspath(bin),
            "--http", "127.0.0.1:%d" % self.port,
            "--data-dir", self.dir,
            "--brokers", self.c.brokers,
            "--web-dir", self.web_dir,
            "--log-level", "info",
        ]
        for k, v in self.urls.items():
            cmd += ["--%s-url" % k, v]
        return cmd + [str(a) for a in self.args]

    def start(self):
        self.runs += 1
        err = open(os.path.join(self.c.tmp, self.name + ".stderr"), "ab")
        out = open(os.path.join(self.c.tmp, self.name + ".stdout"), "ab")
        try:
            err.write(("=== start %d: %s\n" % (self.runs, " ".join(self.cmd()))).encode())
            err.flush()
            self.popen = subprocess.Popen(self.cmd(), stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=err, cwd=self.c.tmp)
        finally:
            err.close()
            out.close()
        _live.append(self)

        def ready():
            assert self.popen.poll() is None, "%s exited with %s\n%s" % (
                self.name, self.popen.returncode, self.tail())
            try:
                return self.http("GET", "/ready", timeout=2).status == 200
            except OSError:
                return False

        wait_until(ready, 20, "%s ready" % self.name)
        return self

    def log(self):
        try:
            with open(os.path.join(self.c.tmp, self.name + ".stderr"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, n=30):
        return "\n".join(l[:400] for l in self.log().splitlines()[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the gateway; asserts exit 0 and no sanitizer report."""
        self.popen.send_signal(sig)
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
            raise AssertionError("%s did not stop on SIGTERM\n%s" % (self.name, self.tail()))
        if self in _live:
            _live.remove(self)
        log = self.log()
        m = souktest.SANITIZER_RE.search(log.encode())
        assert not m, "sanitizer report in %s's stderr:\n%s" % (self.name, log[m.start() - 200:][:6000])
        assert rc == 0, "%s exited with %s\n%s" % (self.name, rc, self.tail())

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def http(self, method, path, body=None, token=None, headers=None, timeout=10, conn=None):
        hdrs = {}
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            else:
                data = body.encode() if isinstance(body, str) else bytes(body)
        if token:
            hdrs["Authorization"] = "Bearer " + str(token)
        hdrs.update(headers or {})
        own = conn is None
        conn = conn or self.conn(timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return Resp(r.status, CIDict(r.getheaders()), r.read())
        finally:
            if own:
                conn.close()

    def raw(self, data, timeout=10):
        """Sends raw request bytes; returns the parsed answer (one)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            r = http.client.HTTPResponse(s, method="GET")
            r.begin()
            return Resp(r.status, CIDict(r.getheaders()), r.read())
        finally:
            s.close()

    def metrics(self):
        """{series text without value: value}."""
        r = self.http("GET", "/metrics")
        assert r.status == 200, r
        out = {}
        for line in r.text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def metric(self, name, **labels):
        want = name + "{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
        for k, v in self.metrics().items():
            if k == want or (not labels and k == name):
                return v
        return 0.0


GW = {}


def gw(c):
    """The shared gateway (started on first use)."""
    if "main" not in GW:
        echo, hang = fakes()
        root = os.path.join(c.tmp, "webroot")
        web = os.path.join(root, "web")
        make_web(root, web)
        GW["main"] = Gateway(
            c,
            urls={
                "auth": "127.0.0.1:%d" % c.port("auth"),
                "user": "127.0.0.1:%d" % c.port("user"),
                "catalog": "http://127.0.0.1:%d/" % c.port("catalog"),  # a URL works too
                "booking": "127.0.0.1:%d" % dead_port(),
                "payment": "127.0.0.1:%d" % hang.port,
                "notification": "127.0.0.1:%d" % hang.port,
                "analytics": "127.0.0.1:%d" % echo.port,
            },
            web_dir=web,
            args=["--max-body-bytes", str(MAX_BODY), "--pool-size", str(POOL),
                  "--upstream-timeout-ms", "3000"],
        ).start()
    return GW["main"]


WEB_FILES = {
    "index.html": (b"<!doctype html><title>souk</title>", "text/html"),
    "app.js": (b"console.log('souk');", "text/javascript"),
    "css/style.css": (b"body { margin: 0 }", "text/css"),
    "logo.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
    "img/pic.png": (b"\x89PNG\r\n\x1a\nfake", "image/png"),
    "favicon.ico": (b"\x00\x00\x01\x00", "image/x-icon"),
    "data.json": (b'{"a": 1}', "application/json"),
    "robots.txt": (b"User-agent: *", "text/plain"),
    "sub/index.html": (b"<p>sub</p>", "text/html"),
    ".hidden": (b"hidden", None),
}
SECRET = b"TOP-SECRET-OUTSIDE-THE-WEB-DIR"


def make_web(root, web):
    os.makedirs(web, exist_ok=True)
    for rel, (data, _) in WEB_FILES.items():
        p = os.path.join(web, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    with open(os.path.join(root, "secret.txt"), "wb") as f:
        f.write(SECRET)
    os.makedirs(os.path.join(web, "empty"), exist_ok=True)
    os.symlink(os.path.join(root, "secret.txt"), os.path.join(web, "link.txt"))
    os.symlink(root, os.path.join(web, "up"))


def echoed(r):
    """The echo server's view of the request: (doc, CIDict of headers)."""
    assert r.status < 500 and r.json, r
    return r.json, CIDict(r.json["headers"])


def catalog_body(**more):
    import uuid

    b = {"title": "Course " + uuid.uuid4().hex[:10], "description": "a course", "price": 2500,
         "currency": "EUR", "dateOfEvent": FUTURE, "numberOfTickets": 3}
    b.update(more)
    return b


# ---------------------------------------------------------------------------
# proxying
# ---------------------------------------------------------------------------


def test_same_answers_as_direct(c):
    g = gw(c)
    email = unique_email("gw")
    body = {"email": email, "password": "pw-1234567890", "fullName": "Via Gateway"}
    r = g.http("POST", "/auth/register", body)
    assert r.status == 201, r
    uid = r.json["userId"]
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    # the same registration again: the same conflict as directly
    again_gw = g.http("POST", "/auth/register", body)
    again = c.http("auth", "POST", "/auth/register", body)
    assert again_gw.status == again.status == 409, (again_gw, again)
    assert again_gw.json["type"] == again.json["type"] and again_gw.json["detail"] == again.json["detail"]
    assert again_gw.headers["Content-Type"] == again.headers["Content-Type"]

    r = g.http("POST", "/auth/login", {"email": email, "password": "pw-1234567890"})
    assert r.status == 200 and r.json["accessToken"], r
    tok = r.json["accessToken"]

    # the profile arrives through the broker: wait for it directly
    wait_until(lambda: c.http("user", "GET", "/users/me", token=tok).status == 200, 10, "profile")
    direct = c.http("user", "GET", "/users/me", token=tok)
    via = g.http("GET", "/users/me", token=tok)
    assert via.status == 200 and via.json == direct.json, (via, direct)
    assert via.json["userId"] == uid if "userId" in via.json else True

    # no token: the service itself answers 401 (the gateway checks nothing)
    direct = c.http("user", "GET", "/users/me")
    via = g.http("GET", "/users/me")
    assert_problem(via, 401)
    assert via.json["type"] == direct.json["type"]
    assert via.headers.get("WWW-Authenticate") == direct.headers.get("WWW-Authenticate"), via.headers

    # catalogs: create through the gateway, list both ways
    admin = c.admin_token()
    r = g.http("POST", "/catalogs", catalog_body(), token=admin)
    assert r.status == 201, r
    cid = r.json["catalogId"]
    assert r.headers.get("Location") == "/catalogs/" + cid, r.headers
    for path in ("/catalogs", "/catalogs?size=5&sort=createdAt,desc", "/catalogs/" + cid,
                 "/catalogs/" + cid + "/tickets"):
        via, direct = g.http("GET", path), c.http("catalog", "GET", path)
        assert via.status == direct.status == 200, (path, via, direct)
        assert via.json == direct.json, (path, via.json, direct.json)
    # a validation error passes through as it is
    via = g.http("POST", "/catalogs", {}, token=admin)
    direct = c.http("catalog", "POST", "/catalogs", {}, token=admin)
    assert via.status == direct.status == 400
    assert via.json["errors"] == direct.json["errors"]


def test_request_ids(c):
    g = gw(c)
    echo, _ = fakes()
    # none sent: the gateway makes one, sends it upstream and back
    r = g.http("GET", "/analytics/x")
    doc, h = echoed(r)
    rid = r.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", rid), r.headers
    assert h["X-Request-Id"] == rid, h
    assert h["X-Correlation-Id"] == rid, h
    assert "," not in r.headers["X-Request-Id"], "the id must be sent back once: %r" % r.headers
    # a valid one is kept, and the correlation id too
    r = g.http("GET", "/analytics/x", headers={"X-Request-Id": "client-req.42:a_b",
                                                "X-Correlation-Id": "corr-7"})
    doc, h = echoed(r)
    assert r.headers["X-Request-Id"] == "client-req.42:a_b" and h["X-Request-Id"] == "client-req.42:a_b"
    assert r.headers["X-Correlation-Id"] == "corr-7" and h["X-Correlation-Id"] == "corr-7"
    # an invalid one is replaced
    r = g.http("GET", "/analytics/x", headers={"X-Request-Id": "bad id with spaces"})
    doc, h = echoed(r)
    assert h["X-Request-Id"] != "bad id with spaces" and h["X-Request-Id"] == r.headers["X-Request-Id"]
    # a real service sees it (its log line carries it)
    tok = c.user_token()
    r = g.http("GET", "/users/me", token=tok, headers={"X-Request-Id": "gw-test-id-123"})
    assert r.headers["X-Request-Id"] == "gw-test-id-123", r.headers
    wait_until(lambda: "gw-test-id-123" in c.log("user"), 5, "request id in souk-user's log")


def test_headers_status_query_body(c):
    g = gw(c)
    r = g.http("PATCH", "/analytics/a/b?x=1&y=%20z&status=418", body="patch-body",
               headers={"Authorization": "Bearer not.a.token", "Content-Type": "text/plain",
                        "Connection": "keep-alive, X-Drop-Me", "X-Drop-Me": "1",
                        "Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic eA==",
                        "TE": "trailers", "Upgrade": "h2c", "X-Forwarded-For": "10.1.2.3",
                        "X-Custom": "kept", "Idempotency-Key": "k-1"})
    assert r.status == 418, r
    doc, h = echoed(r)
    assert doc["method"] == "PATCH" and doc["path"] == "/analytics/a/b?x=1&y=%20z&status=418", doc
    assert doc["body"] == "patch-body" and doc["bodyLength"] == 10, doc
    assert h["Authorization"] == "Bearer not.a.token", h
    assert h["Content-Type"] == "text/plain" and h["X-Custom"] == "kept" and h["Idempotency-Key"] == "k-1"
    for hop in ("X-Drop-Me", "Keep-Alive", "Proxy-Authorization", "TE", "Upgrade"):
        assert hop not in h, (hop, h)
    assert h.get("Connection", "keep-alive").lower() == "keep-alive", h
    assert h["Host"] == "127.0.0.1:%d" % fakes()[0].port, h
    assert h["X-Forwarded-For"] == "10.1.2.3, 127.0.0.1", h
    assert h["X-Forwarded-Host"] == "127.0.0.1:%d" % g.port, h
    # the answer: the upstream's headers minus hop-by-hop, its content type
    assert r.headers["Content-Type"] == "application/vnd.echo+json", r.headers
    assert r.headers["X-Upstream"] == "echo", r.headers
    assert "X-Hop" not in r.headers and "Keep-Alive" not in r.headers, r.headers
    # every method the services use
    for m in ("GET", "POST", "PUT", "DELETE", "OPTIONS"):
        r = g.http(m, "/analytics/m", body="{}" if m in ("POST", "PUT") else None)
        assert r.status == 200 and r.json["method"] == m, (m, r)
    r = g.http("HEAD", "/analytics/m")
    assert r.status == 200 and r.body == b"" and int(r.headers["Content-Length"]) > 0, r.headers
    # an empty POST still says Content-Length: 0
    r = g.http("POST", "/analytics/empty")
    doc, h = echoed(r)
    assert h.get("Content-Length") == "0" and doc["bodyLength"] == 0, h
    # the prefix is a whole segment; the prefix alone is proxied
    assert g.http("GET", "/analytics").json["path"] == "/analytics"
    assert_problem(g.http("GET", "/analyticsx"), 404)


def test_stopped_service_503_then_back(c):
    g = gw(c)
    tok = c.user_token()
    assert g.http("GET", "/users/me", token=tok).status in (200, 404)
    c.stop("user")
    try:
        for _ in range(3):
            r = g.http("GET", "/users/me", token=tok)
            p = assert_problem(r, 503)
            assert p.get("service") == "user" and "user" in p["detail"], p
            assert r.headers.get("Retry-After"), r.headers
        assert g.metric("gateway_upstream_errors_total", upstream="user", reason="connect") >= 3
        st = {u["name"]: u for u in g.http("GET", "/gateway/upstreams").json["upstreams"]}
        assert st["user"]["up"] is False and st["user"]["lastRequest"]["ok"] is False, st["user"]
        # the other services are unaffected
        assert g.http("GET", "/catalogs").status == 200
    finally:
        c.start("user")
    wait_until(lambda: g.http("GET", "/users/me", token=tok).status == 200, 10, "user served again")
    st = {u["name"]: u for u in g.http("GET", "/gateway/upstreams").json["upstreams"]}
    assert st["user"]["up"] is True, st["user"]


def test_dead_and_hanging_upstreams(c):
    g = gw(c)
    p = assert_problem(g.http("GET", "/bookings/x"), 503)
    assert p["service"] == "booking", p
    # --upstream-timeout-ms 3000 on the shared gateway: a hanging service -> 504
    t0 = time.monotonic()
    r = g.http("POST", "/payments/x/pay", {"card": "4242"}, timeout=20)
    took = time.monotonic() - t0
    p = assert_problem(r, 504)
    assert p["service"] == "payment", p
    assert 2.5 <= took < 10, took
    assert g.metric("gateway_upstream_errors_total", upstream="payment", reason="timeout") >= 1


def test_own_timeout_gateway(c):
    _, hang = fakes()
    g = Gateway(c, name="gateway-timeout", urls={"analytics": "127.0.0.1:%d" % hang.port,
                                                "auth": "127.0.0.1:%d" % dead_port()},
                args=["--upstream-timeout-ms", "500", "--probe-interval-ms", "0"]).start()
    try:
        for _ in range(2):
            t0 = time.monotonic()
            r = g.http("GET", "/analytics/stats", timeout=10)
            took = time.monotonic() - t0
            assert_problem(r, 504)
            assert 0.4 <= took < 3, took
        # a client that gives up before the upstream answers: the gateway
        # answers nobody and goes on
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", g.port))
            s.sendall(b"GET /analytics/gone HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.05)
            s.close()
        time.sleep(0.8)
        # the gateway is still fine
        assert g.http("GET", "/health").status == 200
        p = assert_problem(g.http("GET", "/auth/x"), 503)
        assert p["service"] == "auth" and "cannot connect" in p["detail"], p
    finally:
        g.stop()


def test_shutdown_timeout_drops_hung_request(c):
    _, hang = fakes()
    g = Gateway(c, name="gateway-hung", urls={"analytics": "127.0.0.1:%d" % hang.port},
                args=["--shutdown-timeout-ms", "500"]).start()
    out = {}

    def hung():
        try:
            out["r"] = g.http("GET", "/analytics/never", timeout=20)
        except Exception as e:  # expected: the connection closes unanswered
            out["e"] = e

    t = threading.Thread(target=hung)
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    g.stop()  # exit 0 after --shutdown-timeout-ms, no sanitizer report
    assert time.monotonic() - t0 < 5
    t.join(10)
    assert "r" not in out or out["r"].status != 200, out
    assert "shutdown timeout" in g.log(), g.tail()


def test_body_limit_413(c):
    g = gw(c)
    echo, _ = fakes()
    before = echo.requests
    r = g.http("POST", "/analytics/big", body=b"x" * (MAX_BODY + 1))
    p = assert_problem(r, 413)
    assert str(MAX_BODY) in p["detail"], p
    # the same through a service
    assert_problem(g.http("POST", "/auth/register", body=b"{" + b" " * (MAX_BODY + 10) + b"}",
                          headers={"Content-Type": "application/json"}), 413)
    # chunked: no Content-Length, the actual length counts
    chunk = b"y" * (MAX_BODY + 100)
    req = (b"POST /analytics/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n" + b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n")
    assert_problem(g.raw(req), 413)
    assert echo.requests == before, "an oversized body reached the upstream"
    # at the limit: passes
    r = g.http("POST", "/analytics/edge", body=b"z" * MAX_BODY)
    assert r.status == 200 and r.json["bodyLength"] == MAX_BODY, r
    # chunked under the limit arrives whole, with a Content-Length
    small = b"w" * 1000
    req = (b"POST /analytics/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n" + b"%x\r\n" % len(small) + small + b"\r\n0\r\n\r\n")
    r = g.raw(req)
    doc, h = echoed(r)
    assert doc["bodyLength"] == 1000 and h["Content-Length"] == "1000" and "Transfer-Encoding" not in h, h


def test_unknown_prefix_404(c):
    g = gw(c)
    for m, path in (("GET", "/nope"), ("GET", "/usersx/1"), ("POST", "/nope/x"), ("DELETE", "/x"),
                    ("GET", "/catalog"), ("GET", "/gateway")):
        assert_problem(g.http(m, path), 404)


# ---------------------------------------------------------------------------
# the web UI
# ---------------------------------------------------------------------------


def test_web_files(c):
    g = gw(c)
    for rel, (data, ctype) in WEB_FILES.items():
        if ctype is None:
            continue
        r = g.http("GET", "/" + rel)
        assert r.status == 200 and r.body == data, (rel, r)
        assert r.headers["Content-Type"].split(";")[0] == ctype, (rel, r.headers)
        assert "max-age" in r.headers.get("Cache-Control", ""), r.headers
    for path, rel in (("/", "index.html"), ("/sub", "sub/index.html"), ("/sub/", "sub/index.html"),
                      ("/index.html?v=3", "index.html"), ("/css//style.css", "css/style.css")):
        r = g.http("GET", path)
        assert r.status == 200 and r.body == WEB_FILES[rel][0], (path, r)
    r = g.http("HEAD", "/app.js")
    assert r.status == 200 and r.body == b"", r
    assert r.headers["Content-Length"] == str(len(WEB_FILES["app.js"][0])), r.headers
    assert r.headers["Content-Type"].startswith("text/javascript"), r.headers
    # missing, no listing, hidden, not writable
    for path in ("/missing.html", "/empty", "/empty/", "/css/", "/.hidden", "/sub/missing"):
        assert_problem(g.http("GET", path), 404)
    r = g.http("POST", "/index.html", body="x")
    assert r.status in (404, 405), r
    assert r.headers["Content-Type"] == "application/problem+json"


def test_web_no_escape(c):
    g = gw(c)
    bad = ["/../etc/passwd", "/%2e%2e/", "/%2e%2e/secret.txt", "/a/../../x", "/../secret.txt",
           "/..%2fsecret.txt", "/%2E%2E%2Fsecret.txt", "/sub/../../secret.txt", "/link.txt",
           "/up/secret.txt", "/./index.html", "/sub%2findex.html",
           "/..\\secret.txt", "/%5c..%5csecret.txt", "/%00", "/.git/config",
           "/" + "../" * 10 + "etc/passwd"]
    for path in bad:
        r = g.raw(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        assert r.status in (400, 404), (path, r)
        assert r.headers.get("Content-Type") == "application/problem+json", (path, r.headers)
        assert SECRET not in r.body and b"root:" not in r.body, (path, r)
    # absolute-form request target
    r = g.raw(b"GET http://x/../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.status in (400, 404) and SECRET not in r.body, r


# ---------------------------------------------------------------------------
# pooling and concurrency
# ---------------------------------------------------------------------------


def test_keepalive_pool(c):
    g = gw(c)
    echo, _ = fakes()
    time.sleep(0.1)
    before = echo.connections
    conn = g.conn()
    try:
        for i in range(200):
            r = g.http("GET", "/analytics/seq?i=%d" % i, conn=conn if i % 2 else None)
            assert r.status == 200, (i, r)
    finally:
        conn.close()
    opened = echo.connections - before
    assert opened <= 2, "200 sequential requests opened %d upstream connections" % opened

    # a real service: the gateway's own count of connects
    tok = c.user_token()
    wait_until(lambda: g.http("GET", "/users/me", token=tok).status == 200, 10, "profile")
    m0 = g.metric("gateway_upstream_connects_total", upstream="user")
    for i in range(200):
        assert g.http("GET", "/users/me", token=tok).status == 200
    m1 = g.metric("gateway_upstream_connects_total", upstream="user")
    assert m1 - m0 <= 2, "200 sequential requests to user opened %d connections" % (m1 - m0)
    # and ss agrees: few established connections from the gateway to user
    try:
        out = subprocess.run(["ss", "-tnH", "state", "established", "dst",
                              "127.0.0.1:%d" % c.port("user")],
                             capture_output=True, timeout=10).stdout.decode()
        assert len(out.splitlines()) <= POOL, out
    except FileNotFoundError:
        pass
    assert g.metric("gateway_upstream_requests_total", upstream="user", status="200") >= 200


def test_concurrent_requests(c):
    g = gw(c)
    echo, _ = fakes()
    tok = c.user_token()
    wait_until(lambda: g.http("GET", "/users/me", token=tok).status == 200, 10, "profile")
    results = []
    lock = threading.Lock()

    def one(i):
        try:
            paths = ["/users/me", "/catalogs", "/analytics/c?sleep=0.2&i=%d" % i]
            r = g.http("GET", paths[i % 3], token=tok, timeout=30)
            st = r.status
        except Exception as e:  # reported below
            st = repr(e)
        with lock:
            results.append(st)

    with echo.lock:
        echo.max_open = echo.open
    ts = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(results) == 50 and all(s == 200 for s in results), results
    assert echo.max_open <= POOL + 1, "pool exceeded: %d connections" % echo.max_open

    # 50 concurrent on one slow upstream: queued on the pool, all answered
    results.clear()
    ts = [threading.Thread(target=lambda i=i: results.append(
        g.http("GET", "/analytics/slow?sleep=0.1&i=%d" % i, timeout=30).status)) for i in range(50)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert results.count(200) == 50, results
    assert time.monotonic() - t0 < 10


# ---------------------------------------------------------------------------
# status, metrics, shutdown
# ---------------------------------------------------------------------------


def test_upstreams_and_ready(c):
    g = gw(c)
    assert g.http("GET", "/ready").status == 200  # ready although booking is dead
    echo, hang = fakes()

    def state():
        return {u["name"]: u for u in g.http("GET", "/gateway/upstreams").json["upstreams"]}

    # the probe (every 2 s) knows every upstream
    wait_until(lambda: all(u["lastProbe"] is not None for n, u in state().items()
                           if n not in ("payment", "notification")), 10, "probes")
    st = state()
    assert [u["name"] for u in st.values()] == ["auth", "user", "catalog", "booking", "payment",
                                                "notification", "analytics"]
    assert st["auth"]["address"] == "127.0.0.1:%d" % c.port("auth")
    assert st["catalog"]["address"] == "127.0.0.1:%d" % c.port("catalog")  # normalized
    assert st["catalog"]["prefix"] == "/catalogs"
    for n in ("auth", "user", "catalog"):
        assert st[n]["up"] is True and st[n]["lastProbe"]["ok"] is True, st[n]
    assert st["booking"]["up"] is False and st["booking"]["lastProbe"]["error"], st["booking"]
    # the echo server answers /health with 200 too
    assert st["analytics"]["lastProbe"]["status"] == 200, st["analytics"]


def test_metrics(c):
    g = gw(c)
    m = g.metrics()
    assert any(k.startswith('gateway_upstream_requests_total{upstream="catalog",status="200"}')
               for k in m), m
    assert any(k.startswith('gateway_upstream_requests_total{upstream="analytics",status="418"}')
               for k in m), m
    assert any(k.startswith('gateway_upstream_errors_total{upstream="booking",reason="connect"}')
               for k in m), m
    assert 'http_requests_total{route="fallback",method="GET",status="200"}' in m, list(m)[:40]
    text = g.http("GET", "/metrics").text
    assert "# TYPE gateway_upstream_requests_total counter" in text
    assert "# HELP gateway_upstream_errors_total" in text


def test_graceful_shutdown(c):
    echo, _ = fakes()
    g = Gateway(c, name="gateway-stop", urls={"analytics": "127.0.0.1:%d" % echo.port},
                web_dir=os.path.join(c.tmp, "no-such-web-dir")).start()
    # no web dir: / is a 404 problem, the gateway still runs
    assert_problem(g.http("GET", "/"), 404)
    out = {}

    def slow():
        try:
            out["r"] = g.http("GET", "/analytics/slow?sleep=1.5", timeout=20)
        except Exception as e:  # reported below
            out["e"] = e

    t = threading.Thread(target=slow)
    t.start()
    wait_until(lambda: g.metric("gateway_upstream_connects_total", upstream="analytics") >= 1, 5,
               "the slow request upstream")
    time.sleep(0.3)
    t0 = time.monotonic()
    g.stop()  # asserts exit 0 and no sanitizer report
    t.join(10)
    assert "r" in out and out["r"].status == 200, out
    assert out["r"].json["path"] == "/analytics/slow?sleep=1.5"
    assert time.monotonic() - t0 < 8


def test_shared_gateway_stops_cleanly(c):
    g = gw(c)
    g.stop()
    GW.pop("main", None)


if __name__ == "__main__":
    souktest.main(globals())
