#!/usr/bin/env python3
"""check_dockerfile.py DOCKERFILE MESON_BUILD SOUK BINARY...

No Docker engine runs on the test machines, so this checks the Dockerfile
against what the built binaries need:

- libraries: every library a binary links directly (its ELF NEEDED entries,
  resolved with ldd, mapped to a Debian package with dpkg -S) must be
  installed by the runtime stage's apt-get install, except libc6 and the
  sanitizer runtimes (the image is built without -Dsanitize); every library
  they pull in must come from a listed package, its dependencies (dpkg's
  Depends), or a package of Priority: required (in every debian:12 image).
  Conversely each listed package must be needed by some binary (besides
  ca-certificates), so the list does not go stale;
- the build stage installs scripts/deps.sh's build list and builds with
  meson (release, -Dwerror=true) and meson install; the runtime stage runs
  as uid 10001, declares VOLUME /data, EXPOSEs souk up's ports (from
  SOUK up --help), and its entrypoint is the image's souk-entrypoint;
- the web UI is installed (MESON_BUILD has install_subdir('web', ...)),
  since the gateway serves it from /usr/local/share/souk/web.

Exit 0 when it all holds, 1 otherwise, 77 (skipped) without ldd, readelf or
dpkg.
"""
import os
import re
import shutil
import subprocess
import sys

ALWAYS_OK = {"libc6"}
EXTRA_OK = {"ca-certificates"}  # listed without being linked
SANITIZER = re.compile(r"^lib(asan|ubsan|lsan|tsan|hwasan)\.so")


def run(argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


def dockerfile_stages(text):
    """-> [(from line, [instruction lines])] with continuations joined."""
    logical, cur = [], ""
    for raw in text.split("\n"):
        line = raw.rstrip()
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if cur and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        logical.append((cur + line).strip())
        cur = ""
    if cur:
        logical.append(cur.strip())
    stages, args = [], {}
    for ins in logical:
        word = ins.split(None, 1)[0].upper()
        if word == "ARG" and not stages:
            k, _, v = ins.split(None, 1)[1].partition("=")
            args[k.strip()] = v.strip()
        elif word == "FROM":
            stages.append((ins, []))
        elif stages:
            stages[-1][1].append(ins)
    return stages, args


def apt_packages(instructions):
    pkgs = []
    for ins in instructions:
        if not ins.upper().startswith("RUN "):
            continue
        for cmd in re.split(r"&&|;|\|\|", ins[4:]):
            words = cmd.split()
            if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
                after = words[words.index("install") + 1:]
                pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


def needed(binary):
    r = run(["readelf", "-d", binary])
    if r.returncode != 0:
        raise RuntimeError("readelf -d %s: %s" % (binary, r.stderr.strip()))
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)


def ldd(binary):
    """soname -> resolved path."""
    r = run(["ldd", binary])
    if r.returncode != 0:
        raise RuntimeError("ldd %s: %s" % (binary, r.stderr.strip()))
    out = {}
    for line in r.stdout.split("\n"):
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


_pkg_cache = {}


def package_of(path):
    if path in _pkg_cache:
        return _pkg_cache[path]
    cands = [path, os.path.realpath(path)]
    for p in list(cands):  # merged /usr: dpkg knows one of /lib and /usr/lib
        if p.startswith("/usr/"):
            cands.append(p[4:])
        else:
            cands.append("/usr" + p)
    pkg = None
    for c in cands:
        r = run(["dpkg", "-S", c])
        if r.returncode == 0:
            pkg = r.stdout.split(":", 1)[0].split(",")[0].strip()
            break
    _pkg_cache[path] = pkg
    return pkg


def dpkg_field(pkg, field):
    r = run(["dpkg-query", "-W", "-f=${%s}" % field, pkg])
    return r.stdout.strip() if r.returncode == 0 else ""


def depends_closure(pkgs):
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        deps = dpkg_field(p, "Depends") + ", " + dpkg_field(p, "Pre-Depends")
        for alt in deps.split(","):
            for d in alt.split("|"):
                name = d.strip().split(" ")[0].split(":")[0]
                if name:
                    todo.append(name)
    return seen


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    dockerfile, meson_build, souk = argv[0], argv[1], argv[2]
    binaries = [b for b in argv[2:] if os.path.isfile(b) and os.access(b, os.X_OK)]
    for tool in ("ldd", "readelf", "dpkg", "dpkg-query"):
        if not shutil.which(tool):
            print("SKIP: %s is not installed" % tool)
            return 77
    errors = []
    with open(dockerfile, encoding="utf-8") as f:
        text = f.read()
    stages, args = dockerfile_stages(text)
    if len(stages) < 2:
        print("FAIL %s: expected a build stage and a runtime stage" % dockerfile)
        return 1
    for from_line, _ in stages:
        image = from_line.split()[1]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
        if image not in ("debian:12", "debian:bookworm") and not image.startswith("debian:12-") \
                and not image.startswith("debian:bookworm-"):
            errors.append("%s: must be based on debian:12 (bookworm), not %s" % (from_line, image))
    build, runtime = stages[0][1], stages[-1][1]
    build_text = "\n".join(build)

    # Build stage: scripts/deps.sh's build list, meson release + werror, install.
    if "scripts/deps.sh build" not in build_text:
        errors.append("build stage: install the build packages with `sh scripts/deps.sh build`")
    for needle in ("meson setup", "--buildtype=release", "-Dwerror=true", "ninja", "meson install"):
        if needle not in build_text:
            errors.append("build stage: no %r" % needle)

    # Runtime stage.
    listed = apt_packages(runtime)
    if not listed:
        errors.append("runtime stage: no apt-get install line")
    rt = "\n".join(runtime)
    if not re.search(r"^USER 10001(:10001)?$", rt, re.M):
        errors.append("runtime stage: must run as USER 10001")
    if not re.search(r'^VOLUME \[?"?/data"?\]?$', rt, re.M):
        errors.append("runtime stage: no VOLUME /data")
    if not re.search(r'^ENTRYPOINT \["/usr/local/bin/souk-entrypoint"\]$', rt, re.M):
        errors.append("runtime stage: ENTRYPOINT must be [\"/usr/local/bin/souk-entrypoint\"]")
    if "COPY --from=" not in rt:
        errors.append("runtime stage: does not copy the installed files from the build stage")
    exposed = set()
    for m in re.finditer(r"^EXPOSE (.*)$", rt, re.M):
        exposed |= {int(p.split("/")[0]) for p in m.group(1).split()}
    r = run([souk, "up", "--help"]) if os.access(souk, os.X_OK) else None
    if r is None or r.returncode != 0:
        errors.append("cannot run %s up --help" % souk)
    else:
        ports = re.findall(r"--[a-z]+-port N\n.*\n\s+default: (\d+);", r.stdout)
        if not ports:
            errors.append("%s up --help lists no --*-port" % souk)
        for p in map(int, ports):
            if p not in exposed:
                errors.append("runtime stage: EXPOSE lacks %d (a port of souk up)" % p)

    # The web UI must be installed where souk up and the compose file look.
    with open(meson_build, encoding="utf-8") as f:
        mb = f.read()
    if not re.search(r"install_subdir\(\s*'web'\s*,\s*install_dir\s*:\s*get_option\('datadir'\)\s*/\s*'souk'", mb):
        errors.append("%s does not install the web UI: add the line "
                      "install_subdir('web', install_dir: get_option('datadir') / 'souk')"
                      % meson_build)

    # Libraries.
    listed_set = set(listed)
    closure = depends_closure(listed_set)
    used = set()
    direct_total = 0
    for b in binaries:
        try:
            paths = ldd(b)
            direct = needed(b)
        except RuntimeError as e:
            errors.append(str(e))
            continue
        for so in direct:
            if SANITIZER.match(so):
                continue
            direct_total += 1
            path = paths.get(so)
            pkg = package_of(path) if path else None
            if not pkg:
                errors.append("%s: %s (%s) belongs to no Debian package" % (b, so, path))
                continue
            used.add(pkg)
            if pkg not in listed_set and pkg not in ALWAYS_OK:
                errors.append("%s links %s from %s: add %s to the runtime stage's apt-get install"
                              % (os.path.basename(b), so, pkg, pkg))
        for so, path in paths.items():
            if SANITIZER.match(so) or so in direct:
                continue
            pkg = package_of(path)
            if not pkg or pkg in closure or pkg in ALWAYS_OK:
                continue
            if dpkg_field(pkg, "Priority") == "required" or dpkg_field(pkg, "Essential") == "yes":
                continue
            sanit = any(SANITIZER.match(s) for s in direct)
            if sanit and pkg.startswith(("libasan", "libubsan", "liblsan", "libtsan", "libgcc", "libstdc++")):
                continue
            errors.append("%s needs %s (%s) indirectly, and no listed package depends on it"
                          % (os.path.basename(b), so, pkg))
    for p in listed:
        if p not in used and p not in EXTRA_OK:
            errors.append("runtime stage installs %s, which no binary links (stale?)" % p)

    for e in errors:
        print("FAIL", e)
    if errors:
        return 1
    print("%s: %d binaries, %d direct libraries, all from the runtime packages %s"
          % (dockerfile, len(binaries), direct_total, " ".join(listed)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
