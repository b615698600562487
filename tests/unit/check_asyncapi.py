#!/usr/bin/env python3
"""check_asyncapi.py [--self-test] DUMP ASYNCAPI_YAML

Fails when docs/asyncapi.yaml and the schema table of libevents/envelope.c
disagree.  DUMP is the ev_schema_dump program, which prints the table as
lines (see libevents/ev_schema_dump.c):

    <topic> <type> envelope|raw
    <topic> <type> key=<field>
    <topic> <type> <field>[?]:<jsontype>        ? = optional
    <topic> <type> <field>[].<sub>[?]:<jsontype>

This script derives the same lines from the YAML and compares the two sets.

The YAML is read by a small parser for the subset the file is written in
(block mappings and sequences, one-line flow collections, quoted and plain
scalars, | and > block scalars), because a fresh Debian has no PyYAML.  When
PyYAML is installed the two parsers must agree on the whole document, which
keeps the subset parser honest.

--self-test also applies a list of small edits to the YAML (a type, a
required field, a key, a topic, a removed field...) and fails unless each of
them is reported, so the comparison itself cannot quietly stop comparing.
"""
import re
import subprocess
import sys


class YamlError(Exception):
    pass


# ---- a YAML subset ----------------------------------------------------------

def strip_comment(line):
    """Drops a '#' comment that is outside quotes and starts a word."""
    q = None
    for i, c in enumerate(line):
        if q:
            if c == q:
                q = None
        elif c in "'\"" and (i == 0 or line[i - 1] in " [{,:"):
            q = c
        elif c == '#' and (i == 0 or line[i - 1] in ' \t'):
            return line[:i].rstrip()
    return line.rstrip()


def plain(s):
    if s in ('null', '~', ''):
        return None
    if s in ('true', 'True', 'TRUE'):
        return True
    if s in ('false', 'False', 'FALSE'):
        return False
    if re.fullmatch(r'[-+]?[0-9]+', s):
        return int(s)
    if re.fullmatch(r'[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?', s):
        return float(s)
    return s


class Flow:
    """Parses one scalar or flow collection from a string."""

    def __init__(self, s, lineno):
        self.s, self.i, self.lineno = s, 0, lineno

    def err(self, msg):
        raise YamlError('line %d: %s: %r' % (self.lineno, msg, self.s))

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in ' \t':
            self.i += 1

    def quoted(self):
        q = self.s[self.i]
        self.i += 1
        out = []
        while True:
            if self.i >= len(self.s):
                self.err('unterminated string')
            c = self.s[self.i]
            if q == "'" and c == "'":
                if self.s[self.i + 1:self.i + 2] == "'":
                    out.append("'")
                    self.i += 2
                    continue
                self.i += 1
                return ''.join(out)
            if q == '"' and c == '\\':
                nxt = self.s[self.i + 1:self.i + 2]
                esc = {'n': '\n', 't': '\t', '"': '"', '\\': '\\', '/': '/'}
                if nxt not in esc:
                    self.err('unsupported escape')
                out.append(esc[nxt])
                self.i += 2
                continue
            if q == '"' and c == '"':
                self.i += 1
                return ''.join(out)
            out.append(c)
            self.i += 1

    def value(self, in_flow):
        self.ws()
        if self.i >= len(self.s):
            return None
        c = self.s[self.i]
        if c == '[':
            return self.seq()
        if c == '{':
            return self.map()
        if c in '\'"':
            return self.quoted()
        start = self.i
        stops = ',]}' if in_flow else ''
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in stops:
                break
            if in_flow and c == ':' and self.s[self.i + 1:self.i + 2] in (' ', ''):
                break
            self.i += 1
        text = self.s[start:self.i].strip()
        if not in_flow and re.search(r': |:$', text):
            self.err('nested mapping in a plain scalar')
        return plain(text)

    def seq(self):
        self.i += 1
        out = []
        while True:
            self.ws()
            if self.s[self.i:self.i + 1] == ']':
                self.i += 1
                return out
            out.append(self.value(True))
            self.ws()
            c = self.s[self.i:self.i + 1]
            if c == ',':
                self.i += 1
            elif c != ']':
                self.err('expected , or ]')

    def map(self):
        self.i += 1
        out = {}
        while True:
            self.ws()
            if self.s[self.i:self.i + 1] == '}':
                self.i += 1
                return out
            key = self.value(True)
            self.ws()
            if self.s[self.i:self.i + 1] != ':':
                self.err('expected :')
            self.i += 1
            out[key] = self.value(True)
            self.ws()
            c = self.s[self.i:self.i + 1]
            if c == ',':
                self.i += 1
            elif c != '}':
                self.err('expected , or }')

    def whole(self):
        v = self.value(False)
        self.ws()
        if self.i != len(self.s):
            self.err('trailing characters')
        return v


def split_key(text, lineno):
    """'key: rest' -> (key, rest) or None when text is not a mapping entry."""
    if text[:1] in '\'"':
        f = Flow(text, lineno)
        key = f.quoted()
        rest = text[f.i:]
        if not (rest == ':' or rest.startswith(': ')):
            return None
        return key, rest[1:].strip()
    m = re.match(r'([^\s\'"{}\[\],#][^:#]*?):(?: (.*)|$)', text)
    if not m:
        return None
    return plain(m.group(1).strip()), (m.group(2) or '').strip()


class Block:
    def __init__(self, text):
        self.lines = []  # (lineno, indent, text, raw)
        for n, raw in enumerate(text.split('\n'), 1):
            if '\t' in raw[:len(raw) - len(raw.lstrip())]:
                raise YamlError('line %d: tab in indentation' % n)
            self.lines.append((n, len(raw) - len(raw.lstrip(' ')), strip_comment(raw).strip(), raw))
        self.i = 0

    def skip_blank(self):
        while self.i < len(self.lines) and not self.lines[self.i][2]:
            self.i += 1

    def peek(self):
        self.skip_blank()
        return self.lines[self.i] if self.i < len(self.lines) else None

    def block_scalar(self, indicator, parent_indent):
        style, chomp = indicator[0], indicator[1:]
        if chomp not in ('', '-', '+'):
            raise YamlError('unsupported block scalar header %r' % indicator)
        body = []
        ind = None
        while self.i < len(self.lines):
            n, indent, text, raw = self.lines[self.i]
            if raw.strip() == '':
                body.append('')
                self.i += 1
                continue
            if indent <= parent_indent:
                break
            if ind is None:
                ind = indent
            body.append(raw[ind:])
            self.i += 1
        while body and body[-1] == '':
            body.pop()
        if style == '|':
            s = '\n'.join(body)
        else:  # folded: lines of one paragraph joined by spaces
            paras, cur = [], []
            for b in body:
                if b == '':
                    paras.append(' '.join(cur))
                    cur = []
                else:
                    cur.append(b)
            paras.append(' '.join(cur))
            s = '\n'.join(paras)
        return s if chomp == '-' else s + '\n'

    def node(self, indent):
        """Parses the block node whose lines are indented by exactly indent."""
        line = self.peek()
        if line is None:
            return None
        if line[2] == '-' or line[2].startswith('- '):
            return self.seq(line[1])
        return self.mapping(line[1])

    def value_after_key(self, indent, rest, lineno):
        if rest in ('|', '|-', '|+', '>', '>-', '>+'):
            self.i += 1
            return self.block_scalar(rest, indent)
        if rest:
            self.i += 1
            return Flow(rest, lineno).whole()
        self.i += 1
        nxt = self.peek()
        if nxt is None:
            return None
        if nxt[1] > indent:
            return self.node(nxt[1])
        if nxt[1] == indent and (nxt[2] == '-' or nxt[2].startswith('- ')):
            return self.seq(indent)
        return None

    def mapping(self, indent):
        out = {}
        while True:
            line = self.peek()
            if line is None or line[1] < indent:
                return out
            n, ind, text, _ = line
            if ind > indent:
                raise YamlError('line %d: unexpected indentation' % n)
            if text == '-' or text.startswith('- '):
                return out
            kv = split_key(text, n)
            if kv is None:
                raise YamlError('line %d: expected "key: value": %r' % (n, text))
            key, rest = kv
            if key in out:
                raise YamlError('line %d: duplicate key %r' % (n, key))
            out[key] = self.value_after_key(indent, rest, n)

    def seq(self, indent):
        out = []
        while True:
            line = self.peek()
            if line is None or line[1] != indent or not (line[2] == '-' or line[2].startswith('- ')):
                return out
            n, ind, text, raw = line
            item = text[1:].strip()
            if not item:
                self.i += 1
                nxt = self.peek()
                out.append(self.node(nxt[1]) if nxt and nxt[1] > indent else None)
            elif split_key(item, n) is not None and item[:1] not in '[{':
                # "- key: value" starts a mapping indented past the dash.
                col = indent + (len(text) - len(item))
                self.lines[self.i] = (n, col, item, ' ' * col + item)
                out.append(self.mapping(col))
            else:
                self.i += 1
                out.append(Flow(item, n).whole())


def load_yaml(text):
    b = Block(text)
    doc = b.node(0)
    if b.peek() is not None:
        raise YamlError('line %d: unexpected content' % b.peek()[0])
    return doc


# ---- asyncapi -> lines ------------------------------------------------------

def resolve(doc, node):
    seen = 0
    while isinstance(node, dict) and '$ref' in node:
        ref = node['$ref']
        if not ref.startswith('#/'):
            raise YamlError('only local $ref supported: %s' % ref)
        node = doc
        for part in ref[2:].split('/'):
            node = node[part.replace('~1', '/').replace('~0', '~')]
        seen += 1
        if seen > 20:
            raise YamlError('$ref loop at %s' % ref)
    return node


def jtype(t, where):
    if isinstance(t, list):
        rest = [x for x in t if x != 'null']
        if len(rest) == 1 and len(t) == 2 and rest[0] in ('string', 'integer'):
            return rest[0] + '-or-null'
        raise YamlError('%s: unsupported type %r' % (where, t))
    if t in ('string', 'integer', 'number', 'boolean', 'object', 'array'):
        return t
    raise YamlError('%s: unsupported type %r' % (where, t))


def field_lines(doc, prefix_line, path, schema, where):
    schema = resolve(doc, schema)
    if not isinstance(schema, dict) or schema.get('type') != 'object':
        raise YamlError('%s: expected an object schema' % where)
    required = schema.get('required') or []
    props = schema.get('properties') or {}
    for r in required:
        if r not in props:
            raise YamlError('%s: required field %s has no property' % (where, r))
    out = []
    for name, p in props.items():
        p = resolve(doc, p)
        t = jtype(p.get('type'), '%s.%s' % (where, name))
        opt = '' if name in required else '?'
        out.append('%s %s%s%s:%s' % (prefix_line, path, name, opt, t))
        items = p.get('items')
        if t == 'array' and items is not None:
            items = resolve(doc, items)
            if items.get('type') == 'object':
                out += field_lines(doc, prefix_line, path + name + '[].', items,
                                   '%s.%s[]' % (where, name))
    return out


def yaml_lines(doc):
    if str(doc.get('asyncapi', '')).split('.')[:2] != ['2', '6']:
        raise YamlError('asyncapi: expected version 2.6.x, got %r' % doc.get('asyncapi'))
    out = []
    for topic, ch in (doc.get('channels') or {}).items():
        op = ch.get('subscribe') or ch.get('publish')
        if not op or 'message' not in op:
            raise YamlError('channel %s: no operation with a message' % topic)
        msg = op['message']
        refs = msg['oneOf'] if isinstance(msg, dict) and 'oneOf' in msg else [msg]
        for ref in refs:
            m = resolve(doc, ref)
            if m.get('x-souk-schema') == 'external':
                continue
            typ = m.get('name')
            if not typ:
                raise YamlError('channel %s: a message without a name' % topic)
            head = '%s %s' % (topic, typ)
            if 'x-souk-key' not in m:
                raise YamlError('message %s: no x-souk-key' % typ)
            payload = resolve(doc, m.get('payload'))
            if 'allOf' in payload:
                parts = payload['allOf']
                if len(parts) != 2 or parts[0].get('$ref') != '#/components/schemas/Envelope':
                    raise YamlError('message %s: payload must be allOf [Envelope, {...}]' % typ)
                props = resolve(doc, parts[1]).get('properties') or {}
                const = (props.get('type') or {}).get('const')
                if const != typ:
                    raise YamlError('message %s: properties.type.const is %r' % (typ, const))
                out.append(head + ' envelope')
                out.append('%s key=%s' % (head, m['x-souk-key']))
                out += field_lines(doc, head, '', props.get('data'), typ + '.data')
            else:
                out.append(head + ' raw')
                out.append('%s key=%s' % (head, m['x-souk-key']))
                out += field_lines(doc, head, '', payload, typ)
    return out


def same(a, b, path='$'):
    """Deep equality that treats PyYAML's int/float and str/date alike only
    when they are equal as values; returns the first differing path or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a.keys()) != list(b.keys()):
            return '%s (keys %s vs %s)' % (path, sorted(map(str, a)), sorted(map(str, b)))
        for k in a:
            d = same(a[k], b[k], '%s.%s' % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return '%s (length)' % path
        for i, (x, y) in enumerate(zip(a, b)):
            d = same(x, y, '%s[%d]' % (path, i))
            if d:
                return d
        return None
    if type(a) is not type(b) or a != b:
        return '%s (%r vs %r)' % (path, a, b)
    return None


def check(table_lines, text, name):
    """Returns the list of problems (empty when text matches the table)."""
    try:
        doc = load_yaml(text)
    except YamlError as e:
        return ['%s: %s' % (name, e)]
    try:
        import yaml  # optional cross-check
    except ImportError:
        yaml = None
    if yaml is not None:
        d = same(yaml.safe_load(text), doc)
        if d:
            return ['%s: the subset parser and PyYAML disagree at %s; keep the file to the '
                    'subset described in this script' % (name, d)]
    try:
        ylines = yaml_lines(doc)
    except (YamlError, KeyError, AttributeError, TypeError) as e:
        return ['%s: %s: %s' % (name, type(e).__name__, e)]
    problems = ['asyncapi.yaml documents twice: %s' % l
                for l in sorted({l for l in ylines if ylines.count(l) > 1})]
    problems += ['in libevents schema table, not in asyncapi.yaml: %s' % l
                 for l in sorted(set(table_lines) - set(ylines))]
    problems += ['in asyncapi.yaml, not in libevents schema table: %s' % l
                 for l in sorted(set(ylines) - set(table_lines))]
    return problems


# Edits that must each be caught (run with --self-test).
MUTATIONS = [
    ('price: {type: integer, description', 'price: {type: number, description'),
    ('required: [bookingId, reason]', 'required: [bookingId]'),
    ('x-souk-key: catalogId', 'x-souk-key: title'),
    ('\n  payment.3:\n', '\n  payment.4:\n'),
    ('                  cardLast4: {type: [string, \'null\']}\n', ''),
    ('status: {type: string, enum: [AVAILABLE, RESERVED, SOLD]}', 'status: {type: integer}'),
    ('          - $ref: \'#/components/messages/booking.expired\'\n', ''),
    ('type: {const: ticket.sell}', 'type: {const: ticket.release}'),
    ('        causationId:\n          type: [string, \'null\']',
     '        causationId:\n          type: [string, \'null\'\n'),
]


def main():
    args = sys.argv[1:]
    self_test = args[:1] == ['--self-test']
    if self_test:
        args = args[1:]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    dump, yaml_path = args
    table = subprocess.run([dump], check=True, capture_output=True, text=True).stdout
    table_lines = [l for l in table.split('\n') if l]
    with open(yaml_path, encoding='utf-8') as f:
        text = f.read()

    problems = check(table_lines, text, yaml_path)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    if not self_test:
        print('asyncapi.yaml matches the schema table: %d types, %d lines'
              % (sum(1 for l in table_lines if l.endswith((' envelope', ' raw'))), len(table_lines)))
        return 0
    failed = 0
    for old, new in MUTATIONS:
        if old not in text:
            print('self-test: %r no longer occurs in %s; update MUTATIONS' % (old, yaml_path),
                  file=sys.stderr)
            failed += 1
        elif not check(table_lines, text.replace(old, new, 1), 'mutated'):
            print('self-test: the edit %r -> %r went unnoticed' % (old, new), file=sys.stderr)
            failed += 1
    if failed:
        return 1
    print('self-test: all %d edits detected' % len(MUTATIONS))
    return 0


if __name__ == '__main__':
    sys.exit(main())
