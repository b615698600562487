#!/usr/bin/env python3
"""check_compose.py [--self-test] COMPOSE --bin NAME=PATH ...

No Docker engine runs on the test machines, so this checks docker-compose.yml
against the binaries themselves:

- every container runs the one image (same image name, built from .), and
  the command's first word is one the image's entrypoint knows;
- every flag of its command is in that binary's --help, every environment
  variable is a SOUK_* variable the binary documents ("env: SOUK_X"), and the
  binary accepts them all (it is run with the command, the environment, with
  ${VAR:-default} replaced by the default, and --help: a bad value or a value
  out of range makes it exit 2);
- ports: each service listens on 0.0.0.0:<souk up's port for it> (souk up
  --help gives them), publishes that port, and its health check probes it
  (GET /ready; the broker: its Kafka and key-store ports);
- addresses: --brokers / --kv are the broker's, the gateway's --<svc>-url
  and analytics' --auth-url are the services' host:port, the broker
  advertises broker:<kafka port>;
- data: --data-dir is a named volume of its own, declared under volumes:;
  --jwt-public-key is jwt-public.pem in the volume auth writes it to
  (--jwt-public-key-out), mounted read-only; auth's data volume is auth's alone;
- depends_on waits for healthy services (broker first, auth before the
  services, the gateway after all of them); the admin account comes from
  SOUK_ADMIN_EMAIL / SOUK_ADMIN_PASSWORD.

NAME is souk-broker, souk-auth, ..., souk (the command line tool).  A
missing souk-analytics skips that service only, saying so.

--self-test also applies small edits to the file (an unknown flag, an
undocumented variable, a wrong port, ...) and fails unless each is reported.

Exit 0 when everything matches, 1 otherwise, 77 (skipped) when no binary
was given.
"""
import importlib.machinery
import importlib.util
import os
import posixpath
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # nothing written into the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
from check_asyncapi import load_yaml, YamlError  # noqa: E402


def load_gen():
    """scripts/gen-config-docs as a module (its --help parser)."""
    path = os.path.join(ROOT, "scripts", "gen-config-docs")
    loader = importlib.machinery.SourceFileLoader("gen_config_docs", path)
    spec = importlib.util.spec_from_loader("gen_config_docs", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


GEN = load_gen()

SERVICES = ["auth", "user", "catalog", "booking", "payment", "notification", "analytics",
            "gateway"]
ALL = ["broker"] + SERVICES
OPTIONAL = {"analytics"}  # may not be built yet: skipped, saying so
SOUK_COMMANDS = {"up", "status", "down", "demo", "groups", "load", "check"}
WEB_DIR = "/usr/local/share/souk/web"


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("SOUK_")}


def help_of(path, argv=()):
    r = subprocess.run([path] + list(argv) + ["--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=clean_env(), universal_newlines=True,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError("%s --help exited %d: %s" % (path, r.returncode, r.stderr.strip()))
    return GEN.parse_help(r.stdout)


def substitute(value, where, errors):
    """Compose's ${VAR:-default} / ${VAR-default} / ${VAR} -> the default ('' for ${VAR})."""
    def rep(m):
        body = m.group(1)
        mm = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*)|(:?\?)(.*))?", body)
        if not mm:
            errors.append("%s: cannot read ${%s}" % (where, body))
            return ""
        if mm.group(4):
            return "placeholder-for-%s" % mm.group(1)
        return mm.group(3) or ""
    return re.sub(r"\$\{([^}]*)\}", rep, str(value))


def parse_port(spec, where, errors):
    """'127.0.0.1:8082:8082' / '8082:8082' / '8082' -> (host ip or None, host port, container port)."""
    s = str(spec)
    m = re.fullmatch(r"(?:(\d+\.\d+\.\d+\.\d+):)?(?:(\d+):)?(\d+)(?:/tcp)?", s)
    if not m:
        errors.append("%s: cannot read port %r" % (where, s))
        return None
    return m.group(1), int(m.group(2) or m.group(3)), int(m.group(3))


def parse_volume(spec, where, errors):
    """'name:/path[:ro]' -> (name, path, readonly)."""
    parts = str(spec).split(":")
    if len(parts) not in (2, 3) or not parts[1].startswith("/") or \
            (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        errors.append("%s: cannot read volume %r (expected name:/path[:ro])" % (where, spec))
        return None
    return parts[0], parts[1], len(parts) == 3 and parts[2] == "ro"


def addr_port(addr):
    m = re.fullmatch(r"(.*):(\d+)", addr or "")
    return (m.group(1), int(m.group(2))) if m else (None, None)


def walk_command(cmd, opts, where, errors):
    """Flags of a command line -> {name: value} (a bool without value: 'true')."""
    by_name = {o["name"]: o for o in opts}
    out = {}
    i = 0
    while i < len(cmd):
        a = str(cmd[i])
        i += 1
        if not a.startswith("--"):
            errors.append("%s: unexpected argument %r (only --flags)" % (where, a))
            continue
        name, eq, val = a[2:].partition("=")
        o = by_name.get(name)
        if o is None and name.startswith("no-") and by_name.get(name[3:], {}).get("kind") == "bool":
            out[name[3:]] = "false"
            continue
        if o is None:
            errors.append("%s: --%s is not in its --help" % (where, name))
            continue
        if not eq:
            if o["kind"] == "bool":
                val = "true"
            elif i < len(cmd):
                val = str(cmd[i])
                i += 1
            else:
                errors.append("%s: --%s needs a value" % (where, name))
                continue
        out[name] = val
    return out


def check(doc, bins, up_ports, notes):
    """Returns the list of mismatches; notes gets what was skipped."""
    errors = []
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        return ["no services: mapping"]
    services = doc["services"]
    declared = doc.get("volumes") or {}
    if not isinstance(declared, dict):
        errors.append("top-level volumes: is not a mapping")
        declared = {}
    for name in ALL:
        if name not in services:
            errors.append("service %s is missing" % name)
    for name in services:
        if name not in ALL:
            errors.append("service %s is not a souk process (expected %s)" % (name, ", ".join(ALL)))

    images = {}
    eff_all, mounts_all = {}, {}
    for name, svc in services.items():
        w = "services.%s" % name
        if not isinstance(svc, dict):
            errors.append("%s is not a mapping" % w)
            continue
        images.setdefault(svc.get("image"), []).append(name)
        build = svc.get("build")
        ctx = build.get("context") if isinstance(build, dict) else build
        if ctx not in (".", "./"):
            errors.append("%s: build must be . (the Dockerfile at the top), got %r" % (w, build))
        hc = svc.get("healthcheck")
        test = hc.get("test") if isinstance(hc, dict) else None
        if not isinstance(test, list) or not test or test[0] not in ("CMD", "CMD-SHELL"):
            errors.append("%s: no healthcheck with a test: [CMD ...] / [CMD-SHELL ...]" % w)
            test = []
        hc_text = " ".join(str(t) for t in test[1:])
        if test and "souk-healthcheck" not in hc_text:
            errors.append("%s: the health check should use souk-healthcheck (the image has no "
                          "curl): %s" % (w, hc_text))
        cmd = svc.get("command")
        if not isinstance(cmd, list) or not cmd:
            errors.append("%s: command must be a list: [<process>, --flag, value, ...]" % w)
            continue
        word = str(cmd[0])
        if word != name:
            errors.append("%s: the command starts with %r, expected %r" % (w, word, name))
        binary = "souk-%s" % word
        path = bins.get(binary)
        if not path:
            if word in OPTIONAL:
                notes.append("SKIP %s: %s is not built; its command and environment are not "
                             "checked" % (name, binary))
            else:
                errors.append("%s: no %s binary to check against" % (w, binary))
            continue
        try:
            parsed = help_of(path)
        except (RuntimeError, ValueError, OSError) as e:
            errors.append("%s: %s" % (w, e))
            continue
        opts = parsed["options"]
        envs = {o["env"]: o for o in opts}
        eff = {o["name"]: o["default"] or "" for o in opts}

        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(str(e).partition("=")[::2] for e in env)
        if not isinstance(env, dict):
            errors.append("%s: environment must be a mapping" % w)
            env = {}
        run_env = clean_env()
        for k, v in env.items():
            if not str(k).startswith("SOUK_"):
                errors.append("%s: environment %s is not a SOUK_* variable" % (w, k))
                continue
            if k not in envs:
                errors.append("%s: environment %s is not documented by %s --help" % (w, k, binary))
                continue
            val = substitute("" if v is None else v, "%s.environment.%s" % (w, k), errors)
            run_env[k] = val
            eff[envs[k]["name"]] = val
        flags = walk_command(cmd[1:], opts, "%s.command" % w, errors)
        eff.update(flags)
        # The binary itself must accept the whole configuration.
        r = subprocess.run([path] + [substitute(c, w, errors) for c in cmd[1:]] + ["--help"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=run_env,
                           universal_newlines=True, timeout=30)
        if r.returncode != 0:
            errors.append("%s: %s refuses the configuration: %s" % (w, binary, r.stderr.strip()))

        # Ports.
        published = []
        for p in svc.get("ports") or []:
            pp = parse_port(p, "%s.ports" % w, errors)
            if pp:
                published.append(pp)
        want = []
        if name == "broker":
            for flag, key in (("kafka-listen", "kafka-port"), ("kv-listen", "kv-port")):
                host, port = addr_port(eff.get(flag))
                if host != "0.0.0.0":
                    errors.append("%s: --%s must listen on 0.0.0.0, got %r" % (w, flag, eff.get(flag)))
                if key in up_ports and port != up_ports[key]:
                    errors.append("%s: --%s port %s is not souk up's %d" % (w, flag, port, up_ports[key]))
                want.append(port)
            adv = eff.get("advertised-listener")
            if adv != "broker:%s" % addr_port(eff.get("kafka-listen"))[1]:
                errors.append("%s: --advertised-listener must be broker:<kafka port>, got %r" % (w, adv))
        else:
            host, port = addr_port(eff.get("http"))
            if host != "0.0.0.0":
                errors.append("%s: --http must listen on 0.0.0.0, got %r" % (w, eff.get("http")))
            key = "%s-port" % name
            if key in up_ports and port != up_ports[key]:
                errors.append("%s: --http port %s is not souk up's %d (--%s)" % (w, port, up_ports[key], key))
            want.append(port)
            if "/ready" not in hc_text or "http" not in hc_text:
                errors.append("%s: the health check must GET /ready: %s" % (w, hc_text))
        for port in want:
            if port is None:
                continue
            if not any(c == port for _, _, c in published):
                errors.append("%s: port %d is not published (ports: %s)" % (w, port, svc.get("ports")))
            if not re.search(r"\b%d\b" % port, hc_text):
                errors.append("%s: the health check does not probe port %d: %s" % (w, port, hc_text))
        for ip, hp, c in published:
            if c not in want:
                errors.append("%s: publishes container port %d, which it does not listen on" % (w, c))

        # Volumes.
        mounts = {}
        for v in svc.get("volumes") or []:
            pv = parse_volume(v, "%s.volumes" % w, errors)
            if pv:
                vol, target, ro = pv
                if vol not in declared:
                    errors.append("%s: volume %s is not declared under the top-level volumes:" % (w, vol))
                mounts[target] = (vol, ro)
        dd = eff.get("data-dir")
        if dd not in mounts:
            errors.append("%s: --data-dir %r is not a named volume's mount point" % (w, dd))
        elif mounts[dd][1]:
            errors.append("%s: its data volume is mounted read-only" % w)
        eff_all[name], mounts_all[name] = eff, mounts

        if name != "broker":
            kafka, kv = up_ports.get("kafka-port", 9092), up_ports.get("kv-port", 6379)
            if eff.get("brokers") != "broker:%d" % kafka:
                errors.append("%s: --brokers / SOUK_BROKERS must be broker:%d, got %r" % (w, kafka, eff.get("brokers")))
            if eff.get("kv") != "broker:%d" % kv:
                errors.append("%s: --kv / SOUK_KV must be broker:%d, got %r" % (w, kv, eff.get("kv")))

        # depends_on: with conditions.
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            errors.append("%s: depends_on must give conditions (service_healthy)" % w)
            deps = {d: {} for d in deps}
        for d, cond in deps.items():
            if d not in services:
                errors.append("%s: depends_on %s, which is not a service" % (w, d))
            c = cond.get("condition") if isinstance(cond, dict) else None
            if c != "service_healthy":
                errors.append("%s: depends_on %s must wait for service_healthy, got %r" % (w, d, c))
        if name == "auth" and "broker" not in deps:
            errors.append("%s: must depend on broker" % w)
        if name not in ("broker", "auth", "gateway") and not {"broker", "auth"} <= set(deps):
            errors.append("%s: must depend on broker and auth" % w)
        if name == "gateway":
            for s in SERVICES:
                if s != "gateway" and s in services and s not in deps:
                    errors.append("%s: must depend on %s" % (w, s))

        if name == "auth":
            for k in ("SOUK_ADMIN_EMAIL", "SOUK_ADMIN_PASSWORD"):
                if k not in env:
                    errors.append("%s: the admin account needs %s from the environment" % (w, k))
                elif "${%s" % k not in str(env[k]):
                    errors.append("%s: %s must come from the environment (${%s:-...})" % (w, k, k))
        if name == "gateway":
            for o in opts:
                m = re.fullmatch(r"([a-z]+)-url", o["name"])
                if m and m.group(1) in services:
                    tgt = m.group(1)
                    want_url = "%s:%s" % (tgt, up_ports.get("%s-port" % tgt, "?"))
                    if eff.get(o["name"]) != want_url:
                        errors.append("%s: --%s must be %s, got %r" % (w, o["name"], want_url, eff.get(o["name"])))
            if eff.get("web-dir") != WEB_DIR:
                errors.append("%s: --web-dir must be %s, got %r" % (w, WEB_DIR, eff.get("web-dir")))
        if name == "analytics" and "auth-url" in eff:
            want_url = "auth:%s" % up_ports.get("auth-port", 8081)
            if eff["auth-url"] != want_url:
                errors.append("%s: --auth-url must be %s, got %r" % (w, want_url, eff["auth-url"]))

    # The token verification key: auth writes a copy of its public key
    # (--jwt-public-key-out) into a volume of its own that the others mount
    # read-only; auth's data volume (private key, auth.db) is auth's alone.
    auth_eff, auth_m = eff_all.get("auth"), mounts_all.get("auth")
    if auth_eff and auth_m:
        out = auth_eff.get("jwt-public-key-out") or ""
        od, ob = posixpath.split(out)
        pub_vol = auth_m.get(od, (None,))[0] if od in auth_m else None
        data_vol = auth_m.get(auth_eff.get("data-dir"), (None,))[0]
        if ob != "jwt-public.pem" or not pub_vol or pub_vol == data_vol:
            errors.append("services.auth: --jwt-public-key-out must be jwt-public.pem in a volume of "
                          "its own (not auth's data volume), got %r" % out)
        for name, eff in eff_all.items():
            if name in ("broker", "auth"):
                continue
            w = "services.%s" % name
            for d, m in mounts_all[name].items():
                if data_vol and m[0] == data_vol:
                    errors.append("%s: must not mount auth's data volume %s" % (w, data_vol))
            if "jwt-public-key" not in eff:
                continue
            key = eff.get("jwt-public-key") or ""
            d, b = posixpath.split(key)
            m = mounts_all[name].get(d)
            if b != "jwt-public.pem" or not m or m[0] != pub_vol:
                errors.append("%s: --jwt-public-key must be jwt-public.pem in the volume %s, got %r"
                              % (w, pub_vol, key))
            elif not m[1]:
                errors.append("%s: the public key's volume must be mounted read-only" % w)

    if len(images) != 1 or None in images:
        errors.append("every service must run the one image: %s" % images)
    hosts = {}
    for name, svc in services.items():
        for p in (svc.get("ports") or []) if isinstance(svc, dict) else []:
            pp = parse_port(p, name, [])
            if pp:
                hosts.setdefault(pp[1], []).append(name)
    for hp, who in hosts.items():
        if len(who) > 1:
            errors.append("host port %d is published by %s" % (hp, " and ".join(who)))
    return errors


# Edits for --self-test: (description, old, new).  Each must be reported.
EDITS = [
    ("unknown flag", "command: [catalog, --http,", "command: [catalog, --no-such-flag, x, --http,"),
    ("undocumented variable", '      SOUK_HOLD_SECONDS:', '      SOUK_NO_SUCH_SETTING: "1"\n      SOUK_HOLD_SECONDS:'),
    ("value out of range", '"${SOUK_HOLD_SECONDS:-600}"', '"${SOUK_HOLD_SECONDS:-0}"'),
    ("wrong http port", '[user, --http, "0.0.0.0:8080"', '[user, --http, "0.0.0.0:8090"'),
    ("unpublished port", '      - "127.0.0.1:8085:8085"', '      - "127.0.0.1:8085:8095"'),
    ("health check on another port", '"http", "8087", "/ready"', '"http", "8086", "/ready"'),
    ("broker address", 'SOUK_BROKERS: "broker:9092"\n      SOUK_KV: "broker:6379"\n      SOUK_JWT_PUBLIC_KEY: /jwt/jwt-public.pem\n      SOUK_LOG_LEVEL: "${SOUK_LOG_LEVEL:-info}"\n    ports:\n      - "127.0.0.1:8080',
     'SOUK_BROKERS: "localhost:9092"\n      SOUK_KV: "broker:6379"\n      SOUK_JWT_PUBLIC_KEY: /jwt/jwt-public.pem\n      SOUK_LOG_LEVEL: "${SOUK_LOG_LEVEL:-info}"\n    ports:\n      - "127.0.0.1:8080'),
    ("gateway upstream", '--booking-url, "booking:8084"', '--booking-url, "booking:8085"'),
    ("another image", "  payment:\n    # souk-payment: payments and refunds (simulated provider)\n    image: souk:latest",
     "  payment:\n    # souk-payment: payments and refunds (simulated provider)\n    image: souk:other"),
    ("advertised listener", '--advertised-listener, "broker:9092"', '--advertised-listener, "127.0.0.1:9092"'),
    ("writable key volume", "      - notification-data:/data\n      - jwt-public:/jwt:ro",
     "      - notification-data:/data\n      - jwt-public:/jwt"),
    ("auth's data volume shared", "      - notification-data:/data\n      - jwt-public:/jwt:ro",
     "      - notification-data:/data\n      - jwt-public:/jwt:ro\n      - auth-data:/auth:ro"),
    ("undeclared volume", "      - booking-data:/data", "      - booking-stuff:/data"),
    ("no healthy condition", "    depends_on:\n      broker:\n        condition: service_healthy\n      auth:\n        condition: service_healthy\n    healthcheck:\n      test: [\"CMD\", \"souk-healthcheck\", \"http\", \"8085\"",
     "    depends_on:\n      broker:\n        condition: service_started\n      auth:\n        condition: service_healthy\n    healthcheck:\n      test: [\"CMD\", \"souk-healthcheck\", \"http\", \"8085\""),
]


def up_ports_of(souk):
    if not souk:
        return {}
    parsed = help_of(souk, ["up"])
    return {o["name"]: int(o["default"]) for o in parsed["options"]
            if o["name"].endswith("-port") and o["default"]}


def main(argv):
    self_test = "--self-test" in argv
    argv = [a for a in argv if a != "--self-test"]
    bins, files = {}, []
    i = 0
    while i < len(argv):
        if argv[i] == "--bin" and i + 1 < len(argv):
            name, _, path = argv[i + 1].partition("=")
            if path and os.access(path, os.X_OK):
                bins[name] = path
            i += 2
        else:
            files.append(argv[i])
            i += 1
    if len(files) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    if not bins:
        print("SKIP: no binaries given")
        return 77
    with open(files[0], encoding="utf-8") as f:
        text = f.read()
    try:
        doc = load_yaml(text)
    except YamlError as e:
        print("%s: not in the YAML subset of tests/unit/check_asyncapi.py: %s" % (files[0], e))
        return 1
    try:
        import yaml  # noqa: F401
    except ImportError:
        yaml = None
    if yaml is not None and yaml.safe_load(text) != doc:
        print("%s: PyYAML and the subset parser read it differently" % files[0])
        return 1
    up_ports = up_ports_of(bins.get("souk"))
    if not up_ports:
        print("note: no souk binary: ports are checked against nothing but each other")
    notes = []
    errors = check(doc, bins, up_ports, notes)
    for n in notes:
        print(n)
    for e in errors:
        print("FAIL", e)
    if errors:
        print("%s: %d mismatch(es) with the binaries' --help" % (files[0], len(errors)))
        return 1
    print("%s: %d services match their binaries' --help" % (files[0], len(doc["services"])))
    if self_test:
        bad = 0
        for what, old, new in EDITS:
            if text.count(old) != 1:
                print("self-test: edit %r does not apply (%d matches): update EDITS" % (what, text.count(old)))
                bad += 1
                continue
            edited = text.replace(old, new)
            try:
                errs = check(load_yaml(edited), bins, up_ports, [])
            except YamlError as e:
                errs = [str(e)]
            if not errs:
                print("self-test: edit %r was not reported" % what)
                bad += 1
        if bad:
            return 1
        print("self-test: all %d edits reported" % len(EDITS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
