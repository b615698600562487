#!/usr/bin/env python3
"""check_scripts.py ENTRYPOINT HEALTHCHECK SOUK_BROKER SOUK_CATALOG

The image's two scripts, run here as the image runs them:

- scripts/docker-entrypoint picks the binary from the first word of the
  command (broker -> souk-broker, up -> souk up with SOUK_HOST=0.0.0.0,
  status -> souk status, options alone -> souk up, anything else as given);
  checked with stand-in programs on PATH that print their argv;
- scripts/docker-healthcheck against a real souk-broker (tcp on the Kafka
  port, resp PING on the key store) and a real souk-catalog (http: /health
  answers 200; /ready answers 503 because it has no token key; a closed port
  fails).

Exit 0 when all hold, 1 otherwise, 77 without bash.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_http(url, deadline):
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            time.sleep(0.1)
    return None


def wait_tcp(port, deadline):
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    entry, health, broker, catalog = [os.path.abspath(a) for a in argv]
    if not shutil.which("bash"):
        print("SKIP: no bash")
        return 77
    errors = []
    tmp = tempfile.mkdtemp(prefix="souk-pack-")
    procs = []
    try:
        # ---- the entrypoint, with stand-ins that print what they got -------
        stub = os.path.join(tmp, "bin")
        os.mkdir(stub)
        for name in ["souk"] + ["souk-" + n for n in (
                "broker", "auth", "user", "catalog", "booking", "payment", "notification",
                "analytics", "gateway")]:
            with open(os.path.join(stub, name), "w") as f:
                f.write('#!/bin/sh\necho "$(basename "$0") $* host=${SOUK_HOST:-}"\n')
            os.chmod(os.path.join(stub, name), 0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOUK_")}
        env["PATH"] = stub + ":" + env.get("PATH", "/usr/bin:/bin")
        cases = [
            ([], "souk up host=0.0.0.0"),
            (["up", "--hold-seconds", "60"], "souk up --hold-seconds 60 host=0.0.0.0"),
            (["--auto-pay"], "souk up --auto-pay host=0.0.0.0"),
            (["broker", "--data-dir", "/data"], "souk-broker --data-dir /data host="),
            (["catalog", "--http", "0.0.0.0:8085"], "souk-catalog --http 0.0.0.0:8085 host="),
            (["analytics"], "souk-analytics  host="),
            (["gateway", "--help"], "souk-gateway --help host="),
            (["status", "--json"], "souk status --json host="),
            (["demo"], "souk demo host="),
            (["echo", "plain"], "plain"),
        ]
        for args, want in cases:
            r = subprocess.run(["sh", entry] + args, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=10)
            got = r.stdout.strip()
            if r.returncode != 0 or got != want:
                errors.append("entrypoint %s: got %r (exit %d), want %r"
                              % (args, got, r.returncode, want))
        env2 = dict(env, SOUK_HOST="127.0.0.1")
        r = subprocess.run(["sh", entry, "up"], env=env2, stdout=subprocess.PIPE,
                           universal_newlines=True, timeout=10)
        if r.stdout.strip() != "souk up host=127.0.0.1":
            errors.append("entrypoint up must keep a SOUK_HOST it is given: %r" % r.stdout)
        r = subprocess.run(["sh", entry, "--help"], env=env, stdout=subprocess.PIPE,
                           universal_newlines=True, timeout=10)
        if r.returncode != 0 or "docker run souk" not in r.stdout:
            errors.append("entrypoint --help: exit %d, %r" % (r.returncode, r.stdout[:200]))

        # ---- the health check against the real processes ------------------
        kafka, kv, http, closed = free_port(), free_port(), free_port(), free_port()
        benv = {k: v for k, v in os.environ.items() if not k.startswith("SOUK_")}
        log = open(os.path.join(tmp, "processes.log"), "w")
        procs.append(subprocess.Popen(
            [broker, "--data-dir", os.path.join(tmp, "broker"),
             "--kafka-listen", "127.0.0.1:%d" % kafka, "--kv-listen", "127.0.0.1:%d" % kv],
            env=benv, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.time() + 20
        if not wait_tcp(kafka, deadline) or not wait_tcp(kv, deadline):
            errors.append("souk-broker did not start (see %s)" % log.name)
            raise RuntimeError
        procs.append(subprocess.Popen(
            [catalog, "--http", "127.0.0.1:%d" % http, "--data-dir", os.path.join(tmp, "catalog"),
             "--brokers", "127.0.0.1:%d" % kafka, "--kv", "127.0.0.1:%d" % kv],
            env=benv, stdout=log, stderr=subprocess.STDOUT))
        if wait_http("http://127.0.0.1:%d/health" % http, time.time() + 20) != 200:
            errors.append("souk-catalog did not start (see %s)" % log.name)
            raise RuntimeError
        checks = [
            (["tcp", str(kafka)], 0),
            (["resp", str(kv)], 0),
            (["resp", str(kafka)], 1),   # not a key store
            (["http", str(http), "/health"], 0),
            (["http", str(http), "/ready"], 1),  # no --jwt-public-key: 503
            (["http", str(http)], 1),            # /ready by default
            (["http", str(closed)], 1),
            (["tcp", str(closed)], 1),
            (["http", "notaport"], 2),
            (["bogus", str(http)], 2),
        ]
        for args, want in checks:
            r = subprocess.run(["bash", health] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=15)
            if r.returncode != want:
                errors.append("healthcheck %s: exit %d, want %d (%s)"
                              % (" ".join(args), r.returncode, want, r.stderr.strip()))
    except RuntimeError:
        pass
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if errors and os.path.exists(os.path.join(tmp, "processes.log")):
            with open(os.path.join(tmp, "processes.log")) as f:
                tail = f.read()[-3000:]
            print("---- processes.log (tail)\n" + tail)
        shutil.rmtree(tmp, ignore_errors=True)
    for e in errors:
        print("FAIL", e)
    if errors:
        return 1
    print("entrypoint: %d commands dispatched; healthcheck: tcp, resp and http probes right"
          % (len(cases) + 2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
