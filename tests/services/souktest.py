"""souktest - the harness of souk's services integration tests (python3 stdlib only).

Every tests/services/test_<name>.py starts the real binaries on free loopback
ports in a temporary directory, drives them over HTTP and with kcat, and
checks their stderr for sanitizer reports.  meson (tests/services/meson.build)
sets the environment:

    SOUK_BROKER_BIN, SOUK_AUTH_BIN, SOUK_USER_BIN, SOUK_CATALOG_BIN
    FREEPORT  (tests/tools/freeport: prints N free ports)
    KCAT      (kcat)
    PYTHONPATH (this folder)

Knobs: SOUK_KEEP_TMP=1 keeps the temporary directory (SOUK_KEEP_TMP_ON_FAIL=1:
only when something failed); SOUK_TEST_ONLY=name1,name2 (or test names on
the command line) runs only those tests.

A test file
-----------

    import souktest
    from souktest import assert_problem, envelope, wait_until

    CLUSTER = dict(services=("auth", "user"))     # optional; Cluster(**CLUSTER)

    def test_register(c):              # one parameter: the shared cluster
        uid = c.register("a@souk.test")
        tok = c.user_token()            # a new USER: register + login
        r = c.http("user", "GET", "/users/me", token=tok)
        assert r.status == 200, r

    def test_own_cluster():            # no parameter: makes its own cluster
        with souktest.Cluster(services=("auth",)) as c:
            ...

    if __name__ == "__main__":
        souktest.main(globals())

main(ns, **cluster_kwargs) runs the test_* functions in the order they are
defined, prints "PASS name" / "FAIL name" (with the traceback and the tail
of every process's stderr), and exits 1 if any failed.  Tests taking one
parameter share one Cluster, started before the first of them with
cluster_kwargs or else ns["CLUSTER"] (a dict of Cluster arguments), and
closed (with its sanitizer check, which can fail the run) after the last.

Cluster
-------

Cluster(services=("auth", "user", "catalog"), admin=("admin@souk.test",
"admin-password-1"), extra_args=None, env=None, name=None)

  services    which services to start, in this order (auth is always started
              first if present); the broker is always started.  Known names:
              auth, user, gateway, analytics, booking, catalog, notification,
              payment (souk-<name>, from $SOUK_<NAME>_BIN).
  admin       (email, password) passed to souk-auth as SOUK_ADMIN_EMAIL /
              SOUK_ADMIN_PASSWORD, or None.
  extra_args  {"auth": ["--flag", "v"], "broker": [...]}: appended to that
              process's command line (later flags win).
  env         extra environment for every process ({"SOUK_X": "1"}).

Layout of the temporary directory c.tmp: <name>/ (data dir of each process),
<name>.stdout and <name>.stderr (all runs appended, each run starts with a
"=== start N: <command>" line).

Each service runs with
    --http 127.0.0.1:<port> --data-dir <tmp>/<name> --brokers 127.0.0.1:<kafka>
    --kv 127.0.0.1:<kv> --jwt-public-key <tmp>/auth/jwt-public.pem --log-level info
(auth also gets --argon2-memory-kib 1024 --argon2-iterations 1) and the
broker with --data-dir <tmp>/broker --kafka-listen 127.0.0.1:<kafka>
--kv-listen 127.0.0.1:<kv> --group-initial-rebalance-delay-ms 0.

It is a context manager: `with Cluster(...) as c:` starts everything (auth
first; waits for <tmp>/auth/jwt-public.pem; each service must answer GET
/health 200 and then GET /ready 200 within START_TIMEOUT seconds, else an
AssertionError with its log tail) and on exit stops everything (SIGTERM, wait
up to 15 s, then SIGKILL) and raises AssertionError if a process did not exit
0 on SIGTERM or any stderr holds an AddressSanitizer / LeakSanitizer /
UndefinedBehaviorSanitizer / "runtime error:" report.  c.start_all() /
c.close() do the same without `with`.

Processes (name is "broker" or one of the services):
  c.start(name)     start it again (same ports and data); waits until ready
  c.stop(name)      SIGTERM, wait; asserts exit 0 and no sanitizer report
  c.kill9(name)     SIGKILL, wait
  c.restart(name)   stop + start
  c.running(name)   bool
  c.pid(name), c.port(name), c.data_dir(name), c.url(name) ("http://127.0.0.1:P")
  c.brokers         "127.0.0.1:<kafka port>";  c.kv  "127.0.0.1:<kv port>"
  c.log(name)       the process's stderr so far (str);  c.tail(name, n=40)
  c.wait_ready(name, timeout=START_TIMEOUT)

HTTP (never raises for 4xx/5xx; connection errors do raise OSError):
  c.http(name, method, path, body=None, token=None, headers=None, timeout=10)
      -> Resp.  body: dict/list -> JSON (Content-Type application/json);
      bytes/str -> sent as is.  token: a bearer token (a Token works too).
  Resp: .status (int), .headers (case-insensitive dict), .body (bytes),
        .text (str), .json (parsed, or None when the body is not JSON).

Auth helpers (need "auth" in services; each asserts the expected status):
  c.register(email, password="pw-1234567890", fullName="Test User", **more)
      -> userId (str);  more = phone=..., birthDate=...
  c.login(email, password="pw-1234567890") -> the token answer (dict with
      accessToken, refreshToken, expiresIn)
  c.user_token(email=None, role="USER", password=..., fullName=...) -> Token:
      registers a new user (email None: a fresh unique one), promotes it with
      the admin (PATCH /auth/users/{id}/role) unless role is USER, logs in.
      Token is a str (the access token) with .user_id, .email, .password,
      .refresh_token, .role.
  c.admin_token() -> Token for the admin given to Cluster.
  unique_email(prefix="user") -> "user-<hex>@souk.test"

Topics (kcat against c.brokers; bounded by timeouts):
  c.produce(topic, value, key=None)   value str or bytes, one record
  c.consume(topic, count=None, timeout=10) -> [(key bytes|None, value bytes|None)]
      every record from the beginning of every partition (in order within
      a partition; partitions may interleave); count stops after that many;
      [] when the topic does not exist yet.
  c.events(topic, type=None) -> [dict]: the values that parse as JSON objects
      (envelopes), optionally only those of one type.
  c.wait_for(topic, pred, timeout=10, what=None) -> records: polls consume()
      until pred(records) is true, else AssertionError.

Free functions:
  envelope(type, data, source="test", correlation_id=None, causation_id=None)
      -> dict: a valid souk event envelope (id uuid4, version 1, time RFC 3339
      UTC with ms and "Z").  json.dumps() it for c.produce().
  assert_problem(resp, status, type=None) -> the problem dict: status matches,
      Content-Type application/problem+json, body has type/title/status.
  field_errors(resp) -> {field: message} of a 400 validation problem.
  wait_until(fn, timeout=10, what="condition", interval=0.1) -> fn()'s truthy
      value, else AssertionError.
"""

import http.client
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from datetime import datetime, timezone

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
KCAT_TIMEOUT = 20.0

SANITIZER_RE = re.compile(
    rb"ERROR: AddressSanitizer|ERROR: LeakSanitizer|AddressSanitizer:|LeakSanitizer:"
    rb"|UndefinedBehaviorSanitizer|runtime error:"
)

DEFAULT_PASSWORD = "pw-1234567890"
# every souk service the harness knows how to start (souk-<name>, SOUK_<NAME>_BIN)
SERVICE_NAMES = ("auth", "user", "gateway", "analytics", "booking", "catalog", "notification", "payment")



# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def wait_until(fn, timeout=10.0, what="condition", interval=0.1):
    """Calls fn() until it returns something truthy (returned), at most
    `timeout` seconds; then raises AssertionError naming `what`.  An
    exception from fn() counts as false (the last one is reported)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    n = 0
    while n < 100000:
        n += 1
        try:
            v = fn()
            if v:
                return v
            last_exc = None
        except Exception as e:  # reported below
            last_exc = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    msg = "timed out after %.1f s waiting for %s" % (timeout, what)
    if last_exc is not None:
        msg += " (last error: %r)" % (last_exc,)
    raise AssertionError(msg)


def unique_email(prefix="user"):
    return "%s-%s@souk.test" % (prefix, uuid.uuid4().hex[:12])


def now_rfc3339():
    t = datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def envelope(type, data, source="test", correlation_id=None, causation_id=None):
    """A valid souk event envelope (dict)."""
    eid = str(uuid.uuid4())
    return {
        "id": eid,
        "type": type,
        "version": 1,
        "time": now_rfc3339(),
        "source": source,
        "correlationId": correlation_id if correlation_id is not None else eid,
        "causationId": causation_id,
        "data": data,
    }


class CIDict(dict):
    """A dict of headers with case-insensitive get / [] / in."""

    def __init__(self, pairs=()):
        super().__init__()
        for k, v in pairs:
            lk = k.lower()
            if lk in self:
                super().__setitem__(lk, dict.__getitem__(self, lk) + ", " + v)
            else:
                super().__setitem__(lk, v)

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def __contains__(self, k):
        return super().__contains__(k.lower())

    def get(self, k, default=None):
        return super().get(k.lower(), default)


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.json = None
        if body:
            try:
                self.json = json.loads(body)
            except ValueError:
                self.json = None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        b = self.text
        if len(b) > 600:
            b = b[:600] + "..."
        return "<Resp %d %s>" % (self.status, b)


def assert_problem(resp, status, type=None):
    """Checks an RFC 7807 answer; returns the parsed problem."""
    assert resp.status == status, "expected status %d, got %r" % (status, resp)
    ct = resp.headers.get("content-type", "")
    assert ct.split(";")[0].strip() == "application/problem+json", (
        "expected application/problem+json, got %r in %r" % (ct, resp)
    )
    p = resp.json
    assert isinstance(p, dict), "problem body is not a JSON object: %r" % (resp,)
    for k in ("type", "title", "status"):
        assert k in p, "problem has no %r: %r" % (k, resp)
    assert p["status"] == status, "problem status %r != %d" % (p["status"], status)
    if type is not None:
        want = type if type.startswith("urn:") else "urn:souk:problem:" + type
        assert p["type"] == want, "problem type %r != %r" % (p["type"], want)
    return p


def field_errors(resp):
    """{field: message} from a 400 validation problem."""
    p = assert_problem(resp, 400)
    errs = p.get("errors")
    assert isinstance(errs, list), "no errors list in %r" % (resp,)
    return {e.get("field"): e.get("message") for e in errs}


class Token(str):
    """An access token (str) that also remembers who it belongs to."""

    user_id = None
    email = None
    password = None
    refresh_token = None
    role = None


def _free_ports(n):
    fp = os.environ.get("FREEPORT")
    if not fp:
        raise AssertionError("FREEPORT is not set (run through meson test)")
    out = subprocess.run([fp, str(n)], capture_output=True, timeout=10, check=True).stdout
    ports = [int(x) for x in out.split()]
    assert len(ports) == n, "freeport gave %r" % (out,)
    return ports


def _port_open(port):
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _parse_kcat(out):
    """Parses kcat output of the format '%K %k%S %s' (binary safe)."""
    recs = []
    i = 0
    n = len(out)
    guard = 0
    while i < n and guard < 10000000:
        guard += 1
        j = out.index(b" ", i)
        klen = int(out[i:j])
        i = j + 1
        key = None
        if klen >= 0:
            key = out[i : i + klen]
            i += klen
        j = out.index(b" ", i)
        vlen = int(out[i:j])
        i = j + 1
        val = None
        if vlen >= 0:
            val = out[i : i + vlen]
            i += vlen
        recs.append((key, val))
    return recs


# ---------------------------------------------------------------------------
# the cluster
# ---------------------------------------------------------------------------


class _Proc:
    def __init__(self, name, port):
        self.name = name
        self.port = port
        self.popen = None
        self.runs = 0


class Cluster:
    def __init__(
        self,
        services=("auth", "user", "catalog"),
        admin=("admin@souk.test", "admin-password-1"),
        extra_args=None,
        env=None,
        name=None,
    ):
        services = tuple(services)
        for s in services:
            if s not in SERVICE_NAMES:
                raise ValueError("unknown service %r" % (s,))
        # auth first: the others need its public key
        self.services = tuple(s for s in services if s == "auth") + tuple(
            s for s in services if s != "auth"
        )
        self.admin = admin
        self.extra_args = dict(extra_args or {})
        self.env = dict(env or {})
        self.name = name or os.path.splitext(os.path.basename(sys.argv[0] or "souk"))[0]
        self.tmp = None
        self.procs = {}
        self.brokers = None
        self.kv = None
        self._kafka_port = None
        self._kv_port = None
        self._admin_token = None
        self._closed = False
        self.failed = False  # set by main() when a test failed (keeps tmp on request)

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        try:
            self.start_all()
        except BaseException:
            self.failed = True
            try:
                self.close()
            except AssertionError as e:
                sys.stderr.write("souktest: while closing after a failed start: %s\n" % e)
            raise
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.failed = True
            try:
                self.close()
            except AssertionError as e:
                sys.stderr.write("souktest: %s\n" % e)
            return False
        self.close()
        return False

    def start_all(self):
        self.tmp = tempfile.mkdtemp(prefix="souk-svc-%s." % self.name)
        ports = _free_ports(2 + len(self.services))
        self._kafka_port, self._kv_port = ports[0], ports[1]
        self.brokers = "127.0.0.1:%d" % self._kafka_port
        self.kv = "127.0.0.1:%d" % self._kv_port
        self.procs["broker"] = _Proc("broker", self._kafka_port)
        for s, p in zip(self.services, ports[2:]):
            self.procs[s] = _Proc(s, p)
        self.start("broker")
        for s in self.services:
            self.start(s)

    def close(self):
        """Stops everything; raises AssertionError on a sanitizer report or a
        non-zero exit on SIGTERM (after stopping all processes)."""
        if self._closed:
            return
        self._closed = True
        problems = []
        order = [s for s in reversed(self.services)] + ["broker"]
        for name in order:
            p = self.procs.get(name)
            if p is None or p.popen is None:
                continue
            rc = self._terminate(p)
            if rc is not None and rc != 0:
                problems.append("%s exited with %s on SIGTERM" % (name, rc))
        for name in order:
            if name in self.procs:
                rep = self._sanitizer_report(name)
                if rep:
                    problems.append("sanitizer report in %s's stderr:\n%s" % (name, rep))
        if problems:
            self.failed = True
            for name in order:
                if name in self.procs and any(x.startswith(name + " ") for x in problems):
                    problems.append("--- tail of %s.stderr:\n%s" % (name, self.tail(name)))
        keep = os.environ.get("SOUK_KEEP_TMP") == "1" or (
            self.failed and os.environ.get("SOUK_KEEP_TMP_ON_FAIL") == "1"
        )
        if self.tmp:
            if keep:
                sys.stderr.write("souktest: kept %s\n" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("\n".join(problems))

    # -- processes ---------------------------------------------------------

    def _bin(self, name):
        var = "SOUK_%s_BIN" % name.upper()
        b = os.environ.get(var)
        if not b:
            raise AssertionError("%s is not set (run through meson test; is souk-%s built?)" % (var, name))
        return os.path.abspath(b)  # the processes run in self.tmp

    def _cmd(self, name):
        t = self.tmp
        if name == "broker":
            cmd = [
                self._bin("broker"),
                "--data-dir", os.path.join(t, "broker"),
                "--kafka-listen", self.brokers,
                "--kv-listen", self.kv,
                "--group-initial-rebalance-delay-ms", "0",
                "--log-level", "info",
            ]
        else:
            cmd = [
                self._bin(name),
                "--http", "127.0.0.1:%d" % self.procs[name].port,
                "--data-dir", os.path.join(t, name),
                "--brokers", self.brokers,
                "--kv", self.kv,
                "--jwt-public-key", os.path.join(t, "auth", "jwt-public.pem"),
                "--log-level", "info",
            ]
            if name == "auth":
                cmd += ["--argon2-memory-kib", "1024", "--argon2-iterations", "1"]
        return cmd + [str(a) for a in self.extra_args.get(name, [])]

    def _proc(self, name):
        p = self.procs.get(name)
        if p is None:
            raise AssertionError("%s is not part of this cluster" % (name,))
        return p

    def running(self, name):
        p = self._proc(name)
        return p.popen is not None and p.popen.poll() is None

    def pid(self, name):
        p = self._proc(name)
        return p.popen.pid if p.popen else None

    def port(self, name):
        return self._proc(name).port

    def data_dir(self, name):
        return os.path.join(self.tmp, name)

    def url(self, name):
        return "http://127.0.0.1:%d" % self._proc(name).port

    def log(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".stderr"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, name, n=40):
        lines = self.log(name).splitlines()[-n:]
        return "\n".join(l[:400] for l in lines)

    def tails(self, n=25):
        out = []
        for name in ["broker"] + list(self.services):
            if name in self.procs:
                out.append("--- last lines of %s.stderr:\n%s" % (name, self.tail(name, n)))
        return "\n".join(out)

    def _sanitizer_report(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".stderr"), "rb") as f:
                data = f.read()
        except OSError:
            return None
        m = SANITIZER_RE.search(data)
        if not m:
            return None
        start = data.rfind(b"\n", 0, m.start()) + 1
        return data[start : start + 6000].decode("utf-8", "replace")

    def start(self, name):
        """Starts name (again) with the same ports and data; waits until ready."""
        p = self._proc(name)
        if self.running(name):
            raise AssertionError("%s is already running (pid %d)" % (name, p.popen.pid))
        cmd = self._cmd(name)
        env = dict(os.environ)
        env.update(self.env)
        if name == "auth" and self.admin:
            env["SOUK_ADMIN_EMAIL"], env["SOUK_ADMIN_PASSWORD"] = self.admin
        p.runs += 1
        out = open(os.path.join(self.tmp, name + ".stdout"), "ab")
        err = open(os.path.join(self.tmp, name + ".stderr"), "ab")
        try:
            err.write(("=== start %d: %s\n" % (p.runs, " ".join(cmd))).encode())
            err.flush()
            p.popen = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=self.tmp
            )
        finally:
            out.close()
            err.close()
        self.wait_ready(name)

    def wait_ready(self, name, timeout=START_TIMEOUT):
        p = self._proc(name)
        deadline = time.monotonic() + timeout

        def alive():
            if p.popen.poll() is not None:
                raise AssertionError(
                    "%s exited with %s while starting\n%s" % (name, p.popen.returncode, self.tail(name))
                )

        def remaining():
            return max(0.1, deadline - time.monotonic())

        def check(cond, what):
            def f():
                alive()
                return cond()

            try:
                wait_until(f, remaining(), "%s: %s" % (name, what), 0.1)
            except AssertionError as e:
                if "exited with" in str(e):
                    raise
                raise AssertionError("%s\n--- last lines of %s.stderr:\n%s" % (e, name, self.tail(name)))

        if name == "broker":
            check(lambda: _port_open(self._kafka_port), "Kafka port %d open" % self._kafka_port)
            check(lambda: _port_open(self._kv_port), "KV port %d open" % self._kv_port)
            return
        if name == "auth":
            pem = os.path.join(self.tmp, "auth", "jwt-public.pem")
            check(lambda: os.path.exists(pem) and os.path.getsize(pem) > 0, "jwt-public.pem written")

        def status_is(path, want):
            def f():
                try:
                    return self.http(name, "GET", path, timeout=2).status == want
                except OSError:
                    return False

            return f

        check(status_is("/health", 200), "GET /health 200")
        check(status_is("/ready", 200), "GET /ready 200")

    def _terminate(self, p, sig=signal.SIGTERM):
        """Signals p and waits (SIGKILL after STOP_TIMEOUT); returns the exit
        status (negative: killed by that signal), None if it was not running."""
        if p.popen is None:
            return None
        if p.popen.poll() is not None:
            rc = p.popen.returncode
            p.popen = None
            return rc
        try:
            p.popen.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            rc = p.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(10)
            rc = "SIGKILL after %.0f s (did not stop on SIGTERM)" % STOP_TIMEOUT
        p.popen = None
        return rc

    def stop(self, name):
        """SIGTERM; asserts a clean exit 0 and no sanitizer report."""
        p = self._proc(name)
        if p.popen is None:
            raise AssertionError("%s is not running" % (name,))
        rc = self._terminate(p)
        rep = self._sanitizer_report(name)
        if rep:
            raise AssertionError("sanitizer report in %s's stderr:\n%s" % (name, rep))
        if rc != 0:
            raise AssertionError("%s exited with %s on SIGTERM\n%s" % (name, rc, self.tail(name)))

    def kill9(self, name):
        p = self._proc(name)
        if p.popen is None:
            raise AssertionError("%s is not running" % (name,))
        self._terminate(p, signal.SIGKILL)

    def restart(self, name):
        self.stop(name)
        self.start(name)

    # -- HTTP --------------------------------------------------------------

    def http(self, name, method, path, body=None, token=None, headers=None, timeout=10):
        hdrs = {}
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = bytes(body)
        if token:
            hdrs["Authorization"] = "Bearer " + str(token)
        if headers:
            hdrs.update(headers)
        conn = http.client.HTTPConnection("127.0.0.1", self._proc(name).port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            rbody = r.read()
            return Resp(r.status, CIDict(r.getheaders()), rbody)
        finally:
            conn.close()

    # -- auth helpers ------------------------------------------------------

    def register(self, email, password=DEFAULT_PASSWORD, fullName="Test User", **more):
        body = {"email": email, "password": password, "fullName": fullName}
        body.update(more)
        r = self.http("auth", "POST", "/auth/register", body)
        assert r.status == 201, "register %s: %r" % (email, r)
        assert r.json and isinstance(r.json.get("userId"), str), "register: no userId in %r" % (r,)
        return r.json["userId"]

    def login(self, email, password=DEFAULT_PASSWORD):
        r = self.http("auth", "POST", "/auth/login", {"email": email, "password": password})
        assert r.status == 200, "login %s: %r" % (email, r)
        assert r.json and r.json.get("accessToken"), "login: no accessToken in %r" % (r,)
        return r.json

    def _token(self, tokens, email, password, user_id, role):
        t = Token(tokens["accessToken"])
        t.user_id = user_id
        t.email = email
        t.password = password
        t.refresh_token = tokens.get("refreshToken")
        t.role = role
        return t

    def admin_token(self):
        assert self.admin, "this cluster has no admin"
        email, pw = self.admin
        tokens = self.login(email, pw)
        return self._token(tokens, email, pw, _jwt_sub(tokens["accessToken"]), "ADMIN")

    def user_token(self, email=None, role="USER", password=DEFAULT_PASSWORD, fullName="Test User"):
        email = email or unique_email(role.lower())
        uid = self.register(email, password, fullName)
        if role != "USER":
            r = self.http(
                "auth", "PATCH", "/auth/users/%s/role" % uid, {"role": role}, token=self.admin_token()
            )
            assert r.status in (200, 204), "set role %s of %s: %r" % (role, email, r)
        tokens = self.login(email, password)
        return self._token(tokens, email, password, uid, role)

    def new_catalog(self, token, tickets=1, price=2500, currency="EUR", title=None,
                    description="a course", date="2031-06-01T18:00:00Z"):
        """Creates a catalog (as token: an admin or an author) and reads its
        tickets; returns (catalogId, [ticketId, ...])."""
        body = {
            "title": title or "Course " + uuid.uuid4().hex[:10],
            "description": description,
            "price": price,
            "currency": currency,
            "dateOfEvent": date,
            "numberOfTickets": tickets,
        }
        r = self.http("catalog", "POST", "/catalogs", body, token=token)
        assert r.status == 201, r
        cid = r.json["catalogId"]
        r = self.http("catalog", "GET", "/catalogs/%s/tickets" % cid, token=token)
        assert r.status == 200, r
        tids = [t["ticketId"] for t in r.json]
        assert len(tids) == tickets, r
        return cid, tids

    # -- topics ------------------------------------------------------------

    def _kcat(self, args, stdin=None, timeout=KCAT_TIMEOUT):
        kcat = os.environ.get("KCAT", "kcat")
        return subprocess.run(
            [kcat, "-b", self.brokers] + args,
            input=stdin,
            capture_output=True,
            timeout=timeout,
        )

    def produce(self, topic, value, key=None):
        if isinstance(value, str):
            value = value.encode()
        fd, path = tempfile.mkstemp(prefix="rec.", dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(value)
            args = ["-P", "-t", topic]
            if key is not None:
                args += ["-k", key.decode() if isinstance(key, bytes) else key]
            r = self._kcat(args + [path])
        finally:
            os.unlink(path)
        assert r.returncode == 0, "kcat produce to %s failed (%d): %s" % (
            topic, r.returncode, r.stderr.decode(errors="replace"))

    def consume(self, topic, count=None, timeout=10):
        args = ["-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%K %k%S %s"]
        if count is not None:
            args += ["-c", str(count)]
        try:
            r = self._kcat(args, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("kcat consume of %s did not finish in %s s" % (topic, timeout))
        err = r.stderr.decode(errors="replace")
        if r.returncode != 0:
            if "Unknown topic" in err or "UNKNOWN_TOPIC" in err or "not available" in err:
                return []
            raise AssertionError("kcat consume of %s failed (%d): %s" % (topic, r.returncode, err))
        return _parse_kcat(r.stdout)

    def events(self, topic, type=None):
        out = []
        for _, v in self.consume(topic):
            try:
                e = json.loads(v) if v is not None else None
            except ValueError:
                continue
            if isinstance(e, dict) and (type is None or e.get("type") == type):
                out.append(e)
        return out

    def wait_for(self, topic, pred, timeout=10, what=None):
        box = {}

        def f():
            box["recs"] = self.consume(topic)
            return pred(box["recs"])

        try:
            wait_until(f, timeout, what or "records on %s" % topic, 0.3)
        except AssertionError as e:
            recs = box.get("recs", [])
            raise AssertionError("%s; %d records on %s: %s" % (e, len(recs), topic, recs[-5:]))
        return box["recs"]


def _jwt_sub(token):
    import base64

    try:
        part = token.split(".")[1]
        part += "=" * (-len(part) % 4)
        return json.loads(base64.urlsafe_b64decode(part)).get("sub")
    except (IndexError, ValueError):
        return None


# ---------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------


def main(ns, **cluster_kwargs):
    """Runs the test_* functions of ns (a module's globals()) in order."""
    tests = [
        (name, fn)
        for name, fn in ns.items()
        if name.startswith("test_") and inspect.isfunction(fn) and fn.__module__ == ns.get("__name__")
    ]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    only = [a for a in sys.argv[1:] if not a.startswith("-")]
    if os.environ.get("SOUK_TEST_ONLY"):
        only += os.environ["SOUK_TEST_ONLY"].split(",")
    if only:
        tests = [t for t in tests if t[0] in only or t[0][5:] in only]
    kwargs = cluster_kwargs or dict(ns.get("CLUSTER", {}))
    shared_users = [t for t in tests if len(inspect.signature(t[1]).parameters) >= 1]
    last_shared = shared_users[-1][0] if shared_users else None

    cluster = None
    cluster_error = None
    failures = []
    for name, fn in tests:
        takes_cluster = len(inspect.signature(fn).parameters) >= 1
        t0 = time.monotonic()
        try:
            if takes_cluster:
                if cluster is None and cluster_error is None:
                    c = Cluster(**kwargs)
                    try:
                        c.__enter__()
                        cluster = c
                    except BaseException as e:
                        cluster_error = e
                        raise
                elif cluster_error is not None:
                    raise AssertionError("the shared cluster did not start: %s" % (cluster_error,))
                fn(cluster)
            else:
                fn()
            print("PASS %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
        except Exception:
            failures.append(name)
            print("FAIL %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
            traceback.print_exc(file=sys.stdout)
            if takes_cluster and cluster is not None:
                cluster.failed = True
                print(cluster.tails(), flush=True)
        if name == last_shared and cluster is not None:
            try:
                cluster.close()
            except AssertionError as e:
                failures.append("cluster shutdown")
                print("FAIL cluster shutdown\n%s" % (e,), flush=True)
            cluster = None
    if cluster is not None:
        cluster.close()
    if not tests:
        print("no tests selected")
        sys.exit(1)
    if failures:
        print("%d of %d failed: %s" % (len(failures), len(tests), ", ".join(failures)), flush=True)
        sys.exit(1)
    print("all %d passed" % len(tests), flush=True)
    sys.exit(0)
