#include "sk_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_alloc.h"

static char sk_buf_empty[1];

void sk_buf_init(sk_buf_t *b, size_t hint)
{
    b->len = 0;
    b->cap = 0;
    b->data = sk_buf_empty;
    if (hint) sk_buf_grow(b, hint);
}

void sk_buf_release(sk_buf_t *b)
{
    if (b->cap) free(b->data);
    sk_buf_init(b, 0);
}

void sk_buf_reset(sk_buf_t *b)
{
    b->len = 0;
    if (b->cap) b->data[0] = '\0';
}

void sk_buf_grow(sk_buf_t *b, size_t extra)
{
    if (b->data == NULL) sk_buf_init(b, 0);
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra) cap = cap < (1u << 20) ? cap * 2 : cap + cap / 2;
    char *p = b->cap ? sk_realloc(b->data, cap + 1) : sk_malloc(cap + 1);
    if (!b->cap) p[0] = '\0';
    b->data = p;
    b->cap = cap;
}

char *sk_buf_detach(sk_buf_t *b, size_t *len)
{
    char *p = b->cap ? b->data : sk_strdup("");
    if (len) *len = b->len;
    sk_buf_init(b, 0);
    return p;
}

void sk_buf_add(sk_buf_t *b, const void *p, size_t n)
{
    sk_buf_grow(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sk_buf_adds(sk_buf_t *b, const char *s)
{
    sk_buf_add(b, s, strlen(s));
}

void sk_buf_addc(sk_buf_t *b, char c)
{
    sk_buf_add(b, &c, 1);
}

void sk_buf_vaddf(sk_buf_t *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    sk_buf_grow(b, 64);
    int n = vsnprintf(b->data + b->len, b->cap - b->len + 1, fmt, ap);
    if (n < 0) {
        va_end(cp);
        return;
    }
    if ((size_t)n > b->cap - b->len) {
        sk_buf_grow(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len + 1, fmt, cp);
    }
    va_end(cp);
    b->len += (size_t)n;
}

void sk_errf(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || errsz == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

void sk_buf_addf(sk_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sk_buf_vaddf(b, fmt, ap);
    va_end(ap);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t min, cp;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) len = 2, min = 0x80, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) len = 3, min = 0x800, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) len = 4, min = 0x10000, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

void sk_buf_add_json_str(sk_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sk_buf_grow(b, n + 2);
    sk_buf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': sk_buf_add(b, "\\\"", 2); break;
        case '\\': sk_buf_add(b, "\\\\", 2); break;
        case '\n': sk_buf_add(b, "\\n", 2); break;
        case '\r': sk_buf_add(b, "\\r", 2); break;
        case '\t': sk_buf_add(b, "\\t", 2); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                sk_buf_add(b, e, 6);
            } else if (c < 0x80) {
                sk_buf_addc(b, (char)c);
            } else {
                /* JSON text must be UTF-8: a byte that does not start a
                 * valid sequence becomes U+FFFD. */
                size_t len = utf8_seq_len((const unsigned char *)s + i, n - i);
                if (len) {
                    sk_buf_add(b, s + i, len);
                    i += len - 1;
                } else {
                    sk_buf_add(b, "\\ufffd", 6);
                }
            }
        }
    }
    sk_buf_addc(b, '"');
}

size_t sk_buf_reserve(sk_buf_t *b, size_t n)
{
    size_t pos = b->len;
    sk_buf_grow(b, n);
    memset(b->data + pos, 0, n);
    b->len += n;
    b->data[b->len] = '\0';
    return pos;
}

void sk_buf_add_i8(sk_buf_t *b, int8_t v)
{
    sk_buf_add(b, &v, 1);
}

void sk_buf_add_i16(sk_buf_t *b, int16_t v)
{
    uint16_t u = (uint16_t)v;
    uint8_t x[2] = {(uint8_t)(u >> 8), (uint8_t)u};
    sk_buf_add(b, x, 2);
}

void sk_buf_add_i32(sk_buf_t *b, int32_t v)
{
    uint8_t x[4];
    sk_store_i32(x, v);
    sk_buf_add(b, x, 4);
}

void sk_buf_add_i64(sk_buf_t *b, int64_t v)
{
    uint8_t x[8];
    sk_store_i64(x, v);
    sk_buf_add(b, x, 8);
}

void sk_buf_add_uvarint(sk_buf_t *b, uint64_t v)
{
    uint8_t x[10];
    size_t n = 0;
    while (v >= 0x80) {
        x[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    x[n++] = (uint8_t)v;
    sk_buf_add(b, x, n);
}

void sk_buf_add_varint(sk_buf_t *b, int64_t v)
{
    sk_buf_add_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void sk_buf_put_i32(sk_buf_t *b, size_t pos, int32_t v)
{
    sk_store_i32(b->data + pos, v);
}

void sk_buf_put_i64(sk_buf_t *b, size_t pos, int64_t v)
{
    sk_store_i64(b->data + pos, v);
}

int16_t sk_load_i16(const void *p)
{
    const uint8_t *x = p;
    return (int16_t)(uint16_t)((x[0] << 8) | x[1]);
}

int32_t sk_load_i32(const void *p)
{
    const uint8_t *x = p;
    return (int32_t)(((uint32_t)x[0] << 24) | ((uint32_t)x[1] << 16) | ((uint32_t)x[2] << 8) |
                     (uint32_t)x[3]);
}

int64_t sk_load_i64(const void *p)
{
    const uint8_t *x = p;
    return (int64_t)(((uint64_t)(uint32_t)sk_load_i32(x) << 32) | (uint32_t)sk_load_i32(x + 4));
}

void sk_store_i32(void *p, int32_t v)
{
    uint8_t *x = p;
    uint32_t u = (uint32_t)v;
    x[0] = (uint8_t)(u >> 24);
    x[1] = (uint8_t)(u >> 16);
    x[2] = (uint8_t)(u >> 8);
    x[3] = (uint8_t)u;
}

void sk_store_i64(void *p, int64_t v)
{
    uint8_t *x = p;
    uint64_t u = (uint64_t)v;
    sk_store_i32(x, (int32_t)(uint32_t)(u >> 32));
    sk_store_i32(x + 4, (int32_t)(uint32_t)u);
}

void sk_cur_init(sk_cur_t *c, const void *p, size_t len)
{
    c->p = p;
    c->len = len;
    c->pos = 0;
    c->err = 0;
}

const uint8_t *sk_cur_bytes(sk_cur_t *c, size_t n)
{
    if (c->err || n > c->len - c->pos) {
        c->err = 1;
        return NULL;
    }
    const uint8_t *r = c->p + c->pos;
    c->pos += n;
    return r;
}

void sk_cur_skip(sk_cur_t *c, size_t n)
{
    (void)sk_cur_bytes(c, n);
}

int8_t sk_cur_i8(sk_cur_t *c)
{
    const uint8_t *x = sk_cur_bytes(c, 1);
    return x ? (int8_t)x[0] : 0;
}

int16_t sk_cur_i16(sk_cur_t *c)
{
    const uint8_t *x = sk_cur_bytes(c, 2);
    return x ? sk_load_i16(x) : 0;
}

int32_t sk_cur_i32(sk_cur_t *c)
{
    const uint8_t *x = sk_cur_bytes(c, 4);
    return x ? sk_load_i32(x) : 0;
}

int64_t sk_cur_i64(sk_cur_t *c)
{
    const uint8_t *x = sk_cur_bytes(c, 8);
    return x ? sk_load_i64(x) : 0;
}

uint64_t sk_cur_uvarint(sk_cur_t *c)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const uint8_t *x = sk_cur_bytes(c, 1);
        if (!x) return 0;
        if (shift == 63 && (x[0] & 0x7e)) break; /* overflows 64 bits */
        v |= (uint64_t)(x[0] & 0x7f) << shift;
        if (!(x[0] & 0x80)) return v;
    }
    c->err = 1;
    return 0;
}

int64_t sk_cur_varint(sk_cur_t *c)
{
    uint64_t u = sk_cur_uvarint(c);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}
