"""souk up / status / down / demo: the whole marketplace under the supervisor.

Runs the real `souk` tool (SOUK_BIN; default: tools/souk of the build tree
next to SOUK_BROKER_BIN) on free loopback ports (FREEPORT) in a temporary
data dir, and drives it like a user: wait for the URLs, use the services,
kill -9 a child and watch it come back, souk status, souk demo, SIGTERM;
then --detach + souk down.  python3 stdlib only.
"""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import souktest
from souktest import wait_until

START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0

PORT_FLAGS = ("kafka", "kv", "auth", "user", "catalog", "booking", "payment",
              "notification", "analytics", "gateway")


def souk_bin():
    b = os.environ.get("SOUK_BIN")
    if b:
        return b
    broker = os.environ.get("SOUK_BROKER_BIN")
    if not broker:
        raise AssertionError("SOUK_BIN (or SOUK_BROKER_BIN) is not set (run through meson test)")
    return os.path.join(os.path.dirname(os.path.dirname(broker)), "tools", "souk")


def free_ports(n):
    fp = os.environ.get("FREEPORT")
    if not fp:
        raise AssertionError("FREEPORT is not set (run through meson test)")
    return [int(x) for x in subprocess.check_output([fp, str(n)]).split()]


def souk(*args, timeout=60):
    """Runs `souk args...`; returns (exit code, stdout, stderr)."""
    p = subprocess.run([souk_bin()] + list(args), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def http(url, method="GET", body=None, token=None, timeout=10):
    """-> (status, parsed JSON or text).  Never raises for 4xx/5xx."""
    data = None
    headers = {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not reaped yet) counts as gone.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def read_state(data_dir):
    """{name: {"pid": int, "addr": str, "state": str, ...}} from souk.state."""
    out = {}
    try:
        with open(os.path.join(data_dir, "souk.state")) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                w = line.split()
                e = {"pid": int(w[1]), "addr": w[2]}
                for kv in w[3:]:
                    k, _, v = kv.partition("=")
                    e[k] = v
                out[w[0]] = e
    except FileNotFoundError:
        pass
    return out


class Up:
    """One `souk up` in the foreground, its output collected by a thread."""

    def __init__(self, data_dir, extra=()):
        self.data_dir = data_dir
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
        self.args = ["--data-dir", data_dir, "--log-level", "info"]
        for name, port in self.ports.items():
            self.args += ["--%s-port" % name, str(port)]
        self.args += list(extra)
        self.lines = []
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([souk_bin(), "up"] + self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        t = threading.Thread(target=self._read, daemon=True)
        t.start()
        return self

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def tail(self, n=60):
        return "\n".join(self.lines[-n:])

    def wait_up(self, timeout=START_TIMEOUT):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError("souk up exited with %s:\n%s" % (self.proc.returncode, self.tail()))
            return any(l.startswith("souk is up") for l in self.lines)
        wait_until(up, timeout=timeout, what="souk up to print its URLs", interval=0.2)

    def url(self, name):
        return "http://127.0.0.1:%d" % self.ports[name]

    def state(self):
        return read_state(self.data_dir)

    def stop(self):
        """SIGTERM; asserts exit 0 within STOP_TIMEOUT and that every child is gone."""
        pids = [e["pid"] for e in self.state().values() if e["pid"] > 0]
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("souk up did not exit within %s s:\n%s" % (STOP_TIMEOUT, self.tail()))
        took = time.monotonic() - t0
        assert rc == 0, "souk up exited %s after SIGTERM:\n%s" % (rc, self.tail())
        left = [p for p in pids if alive(p)]
        assert not left, "children still running after souk up exited: %s" % left
        assert took < 10.5, "stopping took %.1f s" % took
        return took

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        for e in self.state().values():
            if e["pid"] > 0 and alive(e["pid"]):
                os.kill(e["pid"], signal.SIGKILL)

    def assert_no_sanitizer_report(self):
        m = souktest.SANITIZER_RE.search(self.output().encode())
        assert not m, "sanitizer report in the output:\n%s" % self.output()[max(0, m.start() - 2000):m.start() + 4000]


def http_services(state):
    return [n for n in state if n != "broker"]


TMP = tempfile.mkdtemp(prefix="souk-up-test-")
SHARED_DATA = os.path.join(TMP, "data")


def test_up_supervise_status_demo_stop():
    up = Up(SHARED_DATA).start()
    try:
        up.wait_up()
        out = up.output()
        # The URLs and where to look.
        assert "Broker" in out and "kcat -b 127.0.0.1:%d -L" % up.ports["kafka"] in out, out
        assert "redis-cli -p %d" % up.ports["kv"] in out, out
        assert os.path.join(os.path.realpath(SHARED_DATA), "admin-credentials") in out, out

        # The admin credentials: 0600, email + password.
        cred_path = os.path.join(SHARED_DATA, "admin-credentials")
        assert stat.S_IMODE(os.stat(cred_path).st_mode) == 0o600, oct(os.stat(cred_path).st_mode)
        creds = dict(l.split("=", 1) for l in open(cred_path).read().splitlines())
        assert creds["email"] == "admin@souk.local" and len(creds["password"]) >= 16, creds

        # Every process is in the state file, ready, with its --<name>-port.
        st = up.state()
        for name in ("broker", "auth", "user", "catalog", "booking", "payment"):
            assert name in st, st
        assert st["broker"]["addr"] == "127.0.0.1:%d" % up.ports["kafka"], st
        assert st["broker"].get("kv") == "127.0.0.1:%d" % up.ports["kv"], st
        for name in http_services(st):
            assert st[name]["addr"] == "127.0.0.1:%d" % up.ports[name], st
            status, body = http(up.url(name) + "/ready")
            assert status == 200, (name, status, body)
        with socket.create_connection(("127.0.0.1", up.ports["kv"]), timeout=5) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(100).startswith(b"+PONG"), "the key store does not answer PING"

        # Users and catalogs through the services, with the admin souk up made.
        status, _ = http(up.url("auth") + "/auth/register", "POST",
                         {"email": "upper@souk.test", "password": "pw-1234567890", "fullName": "Up Per"})
        assert status == 201, status
        status, tok = http(up.url("auth") + "/auth/login", "POST",
                           {"email": "upper@souk.test", "password": "pw-1234567890"})
        assert status == 200 and tok.get("accessToken"), (status, tok)
        status, adm = http(up.url("auth") + "/auth/login", "POST",
                           {"email": creds["email"], "password": creds["password"]})
        assert status == 200, (status, adm)
        status, cat = http(up.url("catalog") + "/catalogs", "POST",
                           {"title": "Supervised course", "price": 1000, "currency": "EUR",
                            "dateOfEvent": "2031-06-01T18:00:00Z", "numberOfTickets": 2},
                           token=adm["accessToken"])
        assert status == 201, (status, cat)
        # The gateway, when there is one, routes to the services.
        if "gateway" in st:
            status, page = http(up.url("gateway") + "/catalogs")
            assert status == 200 and any(c["title"] == "Supervised course" for c in page["content"]), (status, page)
            assert "Web UI        http://127.0.0.1:%d/" % up.ports["gateway"] in out, out
        # The user service learns about the new user through the broker.
        if "user" in st:
            wait_until(lambda: http(up.url("user") + "/users/me", token=tok["accessToken"])[0] == 200,
                       timeout=30, what="souk-user to know the registered user")

        # kill -9 a child: it is restarted (pid changes), and ready again.
        old = st["catalog"]["pid"]
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: up.state().get("catalog", {}).get("pid", 0) not in (0, old), timeout=30,
                   what="catalog restarted")
        wait_until(lambda: up.state()["catalog"].get("state") == "ready", timeout=60, what="catalog ready again")
        assert up.state()["catalog"]["restarts"] == "1", up.state()
        assert http(up.url("catalog") + "/ready")[0] == 200
        status, got = http(up.url("catalog") + "/catalogs/" + cat["catalogId"])
        assert status == 200 and got["title"] == "Supervised course", (status, got)
        assert re.search(r"catalog \(pid %d\) was killed by signal 9" % old, up.output()), up.tail()
        assert "catalog is ready again" in up.output(), up.tail()

        # souk status: everything listed, ready; JSON and the table.
        rc, sout, serr = souk("status", "--data-dir", SHARED_DATA, "--json")
        assert rc == 0, (rc, sout, serr)
        doc = json.loads(sout)
        assert doc["running"] and doc["ready"], doc
        names = {p["name"]: p for p in doc["processes"]}
        assert set(names) == set(st), (names, st)
        for name, p in names.items():
            assert p["ready"] and p["running"] and p["pid"] > 0, p
        assert names["catalog"]["restarts"] == 1, names["catalog"]
        assert names["catalog"]["consumerLag"] is not None, names["catalog"]  # catalog consumes
        rc, sout, _ = souk("status", "--data-dir", SHARED_DATA)
        assert rc == 0 and "everything is ready" in sout, sout
        for name in st:
            assert re.search(r"^%s\s+\d+\s+127\.0\.0\.1:%d\s+ready\s+yes" %
                             (name, up.ports["kafka" if name == "broker" else name]), sout, re.M), sout

        # souk demo: catalogs and users; a second run reports "exists".
        rc, dout, derr = souk("demo", "--data-dir", SHARED_DATA)
        assert rc == 0, (rc, dout, derr)
        assert dout.count("created") >= 4, dout
        status, page = http(up.url("catalog") + "/catalogs?size=50")
        titles = {c["title"] for c in page["content"]}
        for t in ("Event Sourcing from Scratch", "Sagas in Practice", "Kafka on the Wire",
                  "C for Backend Engineers"):
            assert t in titles, titles
        status, _ = http(up.url("auth") + "/auth/login", "POST",
                         {"email": "alice@souk.local", "password": "alice-demo-1"})
        assert status == 200, status
        rc, dout2, derr2 = souk("demo", "--data-dir", SHARED_DATA)
        assert rc == 0 and "created" not in dout2 and dout2.count("exists") >= 7, (dout2, derr2)

        # A second souk up on the same data dir refuses to start.
        rc, _, err = souk("up", *up.args, timeout=30)
        assert rc == 1 and "already running" in err, (rc, err)

        # SIGTERM: everything stops in reverse order, exit 0, within 10 s.
        up.stop()
        out = up.output()
        order = [m.group(1) for m in re.finditer(r"^souk\s+\| stopping (\w+)", out, re.M)]
        assert order[-2:] == ["auth", "broker"], order
        assert "everything stopped" in out, up.tail()
        assert not os.path.exists(os.path.join(SHARED_DATA, "souk.pid"))
        assert not os.path.exists(os.path.join(SHARED_DATA, "souk.state"))
        up.assert_no_sanitizer_report()
    finally:
        up.kill()


def test_detach_down():
    """souk up --detach returns once ready; souk down stops it.  Same data
    dir as before: the admin credentials are reused."""
    cred_path = os.path.join(SHARED_DATA, "admin-credentials")
    before = open(cred_path).read() if os.path.exists(cred_path) else None
    up = Up(SHARED_DATA, extra=["--detach"])
    try:
        rc, out, err = souk("up", *up.args, timeout=START_TIMEOUT + 10)
        assert rc == 0, (rc, out, err)
        assert "souk is up" in out, out
        pid = int(open(os.path.join(SHARED_DATA, "souk.pid")).read())
        assert alive(pid)
        if before is not None:
            assert open(cred_path).read() == before, "admin-credentials changed"
        st = up.state()
        for name in http_services(st):
            assert http(up.url(name) + "/ready")[0] == 200, name
        rc, sout, _ = souk("status", "--data-dir", SHARED_DATA)
        assert rc == 0, sout
        creds = dict(l.split("=", 1) for l in open(cred_path).read().splitlines())
        status, _ = http(up.url("auth") + "/auth/login", "POST",
                         {"email": creds["email"], "password": creds["password"]})
        assert status == 200, status

        pids = [e["pid"] for e in st.values()] + [pid]
        rc, dout, derr = souk("down", "--data-dir", SHARED_DATA, timeout=60)
        assert rc == 0 and "stopped" in dout, (rc, dout, derr)
        left = [p for p in pids if alive(p)]
        assert not left, left
        rc, dout, _ = souk("down", "--data-dir", SHARED_DATA)
        assert rc == 0 and "not running" in dout, dout
        rc, sout, _ = souk("status", "--data-dir", SHARED_DATA)
        assert rc == 1 and "not running" in sout, sout
        log = open(os.path.join(SHARED_DATA, "souk.log")).read()
        assert "everything stopped" in log, log[-3000:]
        m = souktest.SANITIZER_RE.search(log.encode())
        assert not m, log[max(0, m.start() - 2000):]
    finally:
        up.kill()


def test_missing_binaries_are_skipped():
    """--bin-dir with only the broker and auth: the others are skipped with a
    warning, and souk up still comes up."""
    bindir = os.path.join(TMP, "bin")
    os.makedirs(bindir, exist_ok=True)
    broker = os.environ.get("SOUK_BROKER_BIN") or os.path.join(os.path.dirname(souk_bin()), "..", "broker", "souk-broker")
    auth = os.environ.get("SOUK_AUTH_BIN") or os.path.join(os.path.dirname(souk_bin()), "..", "services", "auth", "souk-auth")
    for b in (broker, auth):
        os.symlink(os.path.realpath(b), os.path.join(bindir, os.path.basename(b)))
    up = Up(os.path.join(TMP, "data-min"), extra=["--bin-dir", bindir, "--json-logs"]).start()
    try:
        def up_json():
            if up.proc.poll() is not None:
                raise AssertionError("souk up exited:\n" + up.tail())
            for l in up.lines:
                if l.startswith("{") and '"msg":"souk is up"' in l:
                    return json.loads(l)
            return None
        banner = wait_until(up_json, timeout=START_TIMEOUT, what="the JSON banner")
        assert set(banner["services"]) == {"auth"}, banner
        assert "souk-catalog not found" in up.output(), up.tail()
        # --json-logs: every line after the warnings is a JSON object.
        for l in up.lines:
            if l.startswith("souk up: warning"):
                continue
            json.loads(l)
        assert set(up.state()) == {"broker", "auth"}, up.state()
        up.stop()
        up.assert_no_sanitizer_report()
    finally:
        up.kill()


def test_port_in_use_is_refused():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        up = Up(os.path.join(TMP, "data-busy"))
        i = up.args.index("--auth-port")
        up.args[i + 1] = str(s.getsockname()[1])
        rc, out, err = souk("up", *up.args, timeout=30)
        assert rc == 1 and "is in use" in err, (rc, out, err)
    finally:
        s.close()


if __name__ == "__main__":
    try:
        souktest.main(globals())
    finally:
        if os.environ.get("SOUK_KEEP_TMP") != "1":
            shutil.rmtree(TMP, ignore_errors=True)
        else:
            print("kept", TMP)
