#!/usr/bin/env python3
"""check_openapi.py [--self-test] OPENAPI_YAML NAME=BINARY...

Fails when docs/openapi.yaml and the services' route tables disagree.  Each
BINARY is a souk service; `BINARY --routes` prints its table, one
"METHOD PATTERN ACCESS" per line (services/runtime/svc_main.c), built-in
routes (/health, /ready, /metrics) first.

Every operation in the YAML names the service that serves it and who may
call it:

    /catalogs/{id}:
      get:
        x-souk-service: catalog        (or "every": the built-in routes)
        x-souk-access: public          (public|user|author|admin|owner)

and the set of (service, METHOD, path, access) lines from the YAML must equal
the set from the binaries.  Operations must also document their responses,
and every path parameter in the pattern must be declared in `parameters`.

The YAML is read with the subset parser of check_asyncapi.py (no PyYAML on a
fresh Debian).  --self-test applies small edits to the YAML and fails unless
each is reported.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_asyncapi import YamlError, load_yaml, resolve  # noqa: E402

METHODS = ('get', 'post', 'put', 'patch', 'delete')
ACCESS = ('public', 'user', 'author', 'admin', 'owner')


def yaml_lines(doc, services):
    lines, problems = [], []
    paths = doc.get('paths') or {}
    for path, item in paths.items():
        declared_params = set(re.findall(r'\{([A-Za-z0-9_]+)\}', path))
        for method, op in (item or {}).items():
            if method == 'parameters':
                continue
            where = '%s %s' % (method.upper(), path)
            if method not in METHODS:
                problems.append('%s: unknown method' % where)
                continue
            op = op or {}
            svc = op.get('x-souk-service')
            access = op.get('x-souk-access')
            if access not in ACCESS:
                problems.append('%s: x-souk-access must be one of %s' % (where, ', '.join(ACCESS)))
            if not op.get('responses'):
                problems.append('%s: no responses documented' % where)
            params = [resolve(doc, p) for p in (op.get('parameters') or []) + (item.get('parameters') or [])]
            params = {p.get('name') for p in params if isinstance(p, dict) and p.get('in') == 'path'}
            for p in sorted(declared_params - params):
                problems.append('%s: path parameter {%s} not declared' % (where, p))
            targets = services if svc == 'every' else [svc]
            for s in targets:
                if s not in services:
                    problems.append('%s: x-souk-service %r is not a known service' % (where, svc))
                    continue
                lines.append('%s %s %s %s' % (s, method.upper(), path, access))
    return lines, problems


def check(table_lines, text, services, name):
    try:
        doc = load_yaml(text)
        ylines, problems = yaml_lines(doc, services)
    except (YamlError, KeyError, AttributeError, TypeError) as e:
        return ['%s: %s: %s' % (name, type(e).__name__, e)]
    problems += ['openapi.yaml documents twice: %s' % l
                 for l in sorted({l for l in ylines if ylines.count(l) > 1})]
    problems += ['served, not in openapi.yaml: %s' % l for l in sorted(set(table_lines) - set(ylines))]
    problems += ['in openapi.yaml, not served: %s' % l for l in sorted(set(ylines) - set(table_lines))]
    return problems


MUTATIONS = [
    ('x-souk-access: admin', 'x-souk-access: user'),
    ('x-souk-service: catalog', 'x-souk-service: booking'),
    ('\n  /catalogs/{id}/tickets:\n', '\n  /catalogs/{id}/ticket:\n'),
    ("    id: {name: id, in: path", "    id: {name: catalogId, in: path"),
]


def main():
    args = sys.argv[1:]
    self_test = args[:1] == ['--self-test']
    if self_test:
        args = args[1:]
    if len(args) < 2 or not all('=' in a for a in args[1:]):
        print(__doc__, file=sys.stderr)
        return 2
    yaml_path = args[0]
    services, table_lines = [], []
    for a in args[1:]:
        name, binary = a.split('=', 1)
        services.append(name)
        out = subprocess.run([binary, '--routes'], check=True, capture_output=True, text=True).stdout
        table_lines += ['%s %s' % (name, l) for l in out.split('\n') if l]
    with open(yaml_path, encoding='utf-8') as f:
        text = f.read()
    problems = check(table_lines, text, services, yaml_path)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print('openapi.yaml matches the route tables of %s: %d operations'
          % (', '.join(services), len(table_lines)))
    if not self_test:
        return 0
    failed = 0
    for old, new in MUTATIONS:
        if old not in text:
            print('self-test: %r no longer occurs in %s; update MUTATIONS' % (old, yaml_path),
                  file=sys.stderr)
            failed += 1
        elif not check(table_lines, text.replace(old, new, 1), services, 'mutated'):
            print('self-test: the edit %r -> %r went unnoticed' % (old, new), file=sys.stderr)
            failed += 1
    if failed:
        return 1
    print('self-test: all %d edits detected' % len(MUTATIONS))
    return 0


if __name__ == '__main__':
    sys.exit(main())
