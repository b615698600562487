#include "resp.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_alloc.h"

enum { PS_START = 0, PS_MULTIBULK, PS_INLINE, PS_DONE };

void kv_parser_init(kv_parser_t *p, const kv_resp_limits_t *lim)
{
    memset(p, 0, sizeof *p);
    if (lim) {
        p->lim = *lim;
    } else {
        p->lim.max_bulk = KV_RESP_MAX_BULK;
        p->lim.max_multibulk = KV_RESP_MAX_MULTIBULK;
        p->lim.max_inline = KV_RESP_MAX_INLINE;
    }
    sk_buf_init(&p->inl, 0);
    p->bulk_len = -1;
}

void kv_parser_release(kv_parser_t *p)
{
    free(p->spans);
    free(p->argv);
    sk_buf_release(&p->inl);
    p->spans = NULL;
    p->argv = NULL;
    p->cap = 0;
}

void kv_parser_reset(kv_parser_t *p)
{
    p->state = PS_START;
    p->pos = 0;
    p->nleft = 0;
    p->bulk_len = -1;
    p->nspans = 0;
    p->argc = 0;
    p->consumed = 0;
    p->err[0] = '\0';
    /* Give back a huge argument table (a client once sent a million args). */
    if (p->cap > 4096) {
        free(p->spans);
        free(p->argv);
        p->spans = NULL;
        p->argv = NULL;
        p->cap = 0;
    }
    if (p->inl.cap > 2 * KV_RESP_MAX_INLINE) {
        sk_buf_release(&p->inl);
        sk_buf_init(&p->inl, 0);
    }
}

int kv_parse_ll(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0;
    if (n == 0 || n > 20) return -1;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 0;
    }
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1) return -1;
    }
    if (s[i] < '1' || s[i] > '9') return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return -1;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return -1;
        *out = (long long)v;
    }
    return 0;
}

static void spans_push(kv_parser_t *p, size_t off, size_t len)
{
    if (p->nspans == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->spans = sk_realloc(p->spans, p->cap * sizeof *p->spans);
        p->argv = sk_realloc(p->argv, p->cap * sizeof *p->argv);
    }
    p->spans[p->nspans].off = off;
    p->spans[p->nspans].len = len;
    p->nspans++;
}

static kv_resp_result_t fail(kv_parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kv_resp_result_t fail(kv_parser_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return KV_RESP_ERROR;
}

static kv_resp_result_t done(kv_parser_t *p, const char *base, size_t consumed)
{
    for (size_t i = 0; i < p->nspans; i++) {
        p->argv[i].p = base + p->spans[i].off;
        p->argv[i].len = p->spans[i].len;
    }
    p->argc = p->nspans;
    p->consumed = consumed;
    p->state = PS_DONE;
    return KV_RESP_OK;
}

/*
 * Reads a header line "<type><integer>\r\n" at p->pos.  Returns OK with *v and
 * p->pos past the line, AGAIN, or ERROR when the line is longer than
 * max_inline.  *ok is 0 when the digits are not an integer (the caller picks
 * the error text).
 */
static kv_resp_result_t read_header(kv_parser_t *p, const char *buf, size_t len, long long *v, int *ok,
                                    const char *too_big)
{
    const char *start = buf + p->pos;
    const char *cr = memchr(start, '\r', len - p->pos);
    if (!cr) {
        if (len - p->pos > p->lim.max_inline) return fail(p, "Protocol error: %s", too_big);
        return KV_RESP_AGAIN;
    }
    if ((size_t)(cr - start) > p->lim.max_inline) return fail(p, "Protocol error: %s", too_big);
    /* The line must be followed by one more byte (the \n, not checked, as Redis). */
    if ((size_t)(cr - buf) + 1 >= len) return KV_RESP_AGAIN;
    *ok = kv_parse_ll(start + 1, (size_t)(cr - start - 1), v) == 0;
    p->pos = (size_t)(cr - buf) + 2;
    return KV_RESP_OK;
}

static kv_resp_result_t parse_multibulk(kv_parser_t *p, const char *buf, size_t len)
{
    kv_resp_result_t r;
    long long v;
    int ok;
    if (p->nleft == 0 && p->nspans == 0 && p->pos == 0) {
        r = read_header(p, buf, len, &v, &ok, "too big mbulk count string");
        if (r != KV_RESP_OK) return r;
        if (!ok || v > p->lim.max_multibulk) return fail(p, "Protocol error: invalid multibulk length");
        if (v <= 0) return done(p, buf, p->pos); /* empty request: ignored */
        p->nleft = v;
        p->bulk_len = -1;
    }
    while (p->nleft > 0) {
        if (p->bulk_len < 0) {
            if (p->pos >= len) return KV_RESP_AGAIN;
            if (buf[p->pos] != '$') return fail(p, "Protocol error: expected '$', got '%c'", buf[p->pos]);
            r = read_header(p, buf, len, &v, &ok, "too big bulk count string");
            if (r != KV_RESP_OK) return r;
            if (!ok || v < 0 || v > p->lim.max_bulk) return fail(p, "Protocol error: invalid bulk length");
            p->bulk_len = v;
        }
        if (len - p->pos < (size_t)p->bulk_len + 2) return KV_RESP_AGAIN;
        spans_push(p, p->pos, (size_t)p->bulk_len);
        /* The two bytes after the data are skipped unchecked, as Redis does. */
        p->pos += (size_t)p->bulk_len + 2;
        p->bulk_len = -1;
        p->nleft--;
    }
    return done(p, buf, p->pos);
}

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*
 * Splits an inline line the way Redis's inline protocol (and redis-cli) do:
 * arguments separated by white space; "double quotes" with \n \r \t \b \a
 * \xHH and \<char> escapes; 'single quotes' with \' only; a closing quote
 * must be followed by white space or the end.  A NUL byte ends the line.
 * Arguments go to p->inl, their spans to p->spans.  Returns -1 on
 * unbalanced quotes.
 */
static int split_inline(kv_parser_t *p, const char *s, size_t n)
{
    size_t i = 0;
    sk_buf_reset(&p->inl);
    for (;;) {
        while (i < n && s[i] && is_space(s[i])) i++;
        if (i >= n || !s[i]) return 0;
        size_t start = p->inl.len;
        int inq = 0, insq = 0;
        for (;;) {
            char c = i < n ? s[i] : '\0';
            if (inq) {
                if (c == '\0') return -1;
                if (c == '\\' && i + 3 < n && s[i + 1] == 'x' && hexval(s[i + 2]) >= 0 && hexval(s[i + 3]) >= 0) {
                    sk_buf_addc(&p->inl, (char)(hexval(s[i + 2]) * 16 + hexval(s[i + 3])));
                    i += 4;
                    continue;
                }
                if (c == '\\' && i + 1 < n && s[i + 1]) {
                    char e = s[i + 1];
                    switch (e) {
                    case 'n': e = '\n'; break;
                    case 'r': e = '\r'; break;
                    case 't': e = '\t'; break;
                    case 'b': e = '\b'; break;
                    case 'a': e = '\a'; break;
                    default: break;
                    }
                    sk_buf_addc(&p->inl, e);
                    i += 2;
                    continue;
                }
                if (c == '"') {
                    i++;
                    if (i < n && s[i] && !is_space(s[i])) return -1;
                    break;
                }
                sk_buf_addc(&p->inl, c);
                i++;
            } else if (insq) {
                if (c == '\0') return -1;
                if (c == '\\' && i + 1 < n && s[i + 1] == '\'') {
                    sk_buf_addc(&p->inl, '\'');
                    i += 2;
                    continue;
                }
                if (c == '\'') {
                    i++;
                    if (i < n && s[i] && !is_space(s[i])) return -1;
                    break;
                }
                sk_buf_addc(&p->inl, c);
                i++;
            } else {
                if (c == '\0' || is_space(c)) break;
                if (c == '"') inq = 1;
                else if (c == '\'') insq = 1;
                else sk_buf_addc(&p->inl, c);
                i++;
            }
        }
        spans_push(p, start, p->inl.len - start);
    }
}

static kv_resp_result_t parse_inline(kv_parser_t *p, const char *buf, size_t len)
{
    const char *nl = memchr(buf + p->pos, '\n', len - p->pos);
    if (!nl) {
        if (len > p->lim.max_inline) return fail(p, "Protocol error: too big inline request");
        p->pos = len; /* resume the search here */
        return KV_RESP_AGAIN;
    }
    size_t line = (size_t)(nl - buf);
    if (line > p->lim.max_inline) return fail(p, "Protocol error: too big inline request");
    size_t n = line;
    if (n > 0 && buf[n - 1] == '\r') n--;
    if (split_inline(p, buf, n) < 0) return fail(p, "Protocol error: unbalanced quotes in request");
    return done(p, p->inl.data, line + 1);
}

kv_resp_result_t kv_resp_parse(kv_parser_t *p, const char *buf, size_t len)
{
    if (p->state == PS_DONE) kv_parser_reset(p);
    if (p->state == PS_START) {
        if (len == 0) return KV_RESP_AGAIN;
        p->state = buf[0] == '*' ? PS_MULTIBULK : PS_INLINE;
    }
    if (p->pos > len) return fail(p, "Protocol error: request buffer shrank"); /* caller bug */
    return p->state == PS_MULTIBULK ? parse_multibulk(p, buf, len) : parse_inline(p, buf, len);
}

size_t kv_parser_need(const kv_parser_t *p, size_t have)
{
    if (p->state != PS_MULTIBULK || p->bulk_len < 0) return 0;
    size_t want = p->pos + (size_t)p->bulk_len + 2;
    return want > have ? want - have : 0;
}

/* ---- replies -------------------------------------------------------------- */

size_t kv_ll2str(char *out, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0) out[k++] = '-';
    while (n) out[k++] = tmp[--n];
    out[k] = '\0';
    return k;
}

/* Appends <type><v>\r\n. */
static void add_prefixed_ll(sk_buf_t *o, char type, long long v)
{
    char tmp[32];
    tmp[0] = type;
    size_t n = 1 + kv_ll2str(tmp + 1, v);
    tmp[n++] = '\r';
    tmp[n++] = '\n';
    sk_buf_add(o, tmp, n);
}

void kv_reply_status(sk_buf_t *o, const char *s)
{
    sk_buf_addc(o, '+');
    sk_buf_adds(o, s);
    sk_buf_add(o, "\r\n", 2);
}

void kv_reply_error(sk_buf_t *o, const char *msg)
{
    size_t n = strlen(msg), start;
    sk_buf_addc(o, '-');
    start = o->len;
    sk_buf_add(o, msg, n);
    for (size_t i = start; i < o->len; i++)
        if (o->data[i] == '\r' || o->data[i] == '\n') o->data[i] = ' ';
    sk_buf_add(o, "\r\n", 2);
}

void kv_reply_errorf(sk_buf_t *o, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kv_reply_error(o, msg);
}

void kv_reply_int(sk_buf_t *o, long long v)
{
    add_prefixed_ll(o, ':', v);
}

void kv_reply_bulk(sk_buf_t *o, const void *p, size_t n)
{
    add_prefixed_ll(o, '$', (long long)n);
    sk_buf_add(o, p, n);
    sk_buf_add(o, "\r\n", 2);
}

void kv_reply_bulks(sk_buf_t *o, const char *s)
{
    kv_reply_bulk(o, s, strlen(s));
}

void kv_reply_bulk_ll(sk_buf_t *o, long long v)
{
    char tmp[32];
    size_t n = kv_ll2str(tmp, v);
    kv_reply_bulk(o, tmp, n);
}

void kv_reply_nil(sk_buf_t *o)
{
    sk_buf_add(o, "$-1\r\n", 5);
}

void kv_reply_array(sk_buf_t *o, long long n)
{
    add_prefixed_ll(o, '*', n);
}

void kv_reply_nil_array(sk_buf_t *o)
{
    sk_buf_add(o, "*-1\r\n", 5);
}
