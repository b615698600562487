/*
 * sk_buf.h - growable, binary-safe buffer and a bounds-checked read cursor.
 *
 * sk_buf_t is the one way souk builds messages (after git's strbuf): data is
 * always NUL-terminated one byte past len, so it can be handed to C string
 * functions when it holds text, yet it may hold any bytes.  The big-endian
 * writers are what the Kafka codec uses.
 *
 * sk_cur_t reads a byte range it does not own.  Every reader checks the bytes
 * remaining; on a short read it sets cur->err, returns zero, and every later
 * read returns zero too (a "sticky" error), so a decoder can read a whole
 * structure and check the flag once at the end.
 */
#ifndef SK_BUF_H
#define SK_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sk_buf_s {
    char *data; /* never NULL after sk_buf_init; data[len] == '\0' */
    size_t len;
    size_t cap; /* allocated bytes, excluding the terminator */
} sk_buf_t;

#define SK_BUF_INIT {NULL, 0, 0}

void sk_buf_init(sk_buf_t *b, size_t hint);
void sk_buf_release(sk_buf_t *b);            /* frees data; b may be reused after init */
void sk_buf_reset(sk_buf_t *b);              /* len = 0, keeps the allocation */
void sk_buf_grow(sk_buf_t *b, size_t extra); /* ensures cap >= len + extra */
/* Hands the data to the caller (who frees it) and re-initialises b. */
char *sk_buf_detach(sk_buf_t *b, size_t *len);

void sk_buf_add(sk_buf_t *b, const void *p, size_t n);
void sk_buf_adds(sk_buf_t *b, const char *s);
void sk_buf_addc(sk_buf_t *b, char c);
void sk_buf_addf(sk_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sk_buf_vaddf(sk_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Writes a message into a caller's error buffer (err may be NULL or errsz 0:
 * then nothing is written), the errstr/errsz convention of souk's APIs. */
void sk_errf(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends s as a JSON string literal, quotes included; bytes that are not
 * valid UTF-8 become U+FFFD, so the result is always valid JSON. */
void sk_buf_add_json_str(sk_buf_t *b, const char *s, size_t n);
/* Reserves n bytes at the end and returns their position (for fixups). */
size_t sk_buf_reserve(sk_buf_t *b, size_t n);

/* Big-endian writers. */
void sk_buf_add_i8(sk_buf_t *b, int8_t v);
void sk_buf_add_i16(sk_buf_t *b, int16_t v);
void sk_buf_add_i32(sk_buf_t *b, int32_t v);
void sk_buf_add_i64(sk_buf_t *b, int64_t v);
/* Unsigned LEB128 varint, and the zigzag-encoded signed forms. */
void sk_buf_add_uvarint(sk_buf_t *b, uint64_t v);
void sk_buf_add_varint(sk_buf_t *b, int64_t v);
/* Overwrite in place (pos + size must be <= len). */
void sk_buf_put_i32(sk_buf_t *b, size_t pos, int32_t v);
void sk_buf_put_i64(sk_buf_t *b, size_t pos, int64_t v);

/* Big-endian loads/stores on raw memory (no bounds checks). */
int16_t sk_load_i16(const void *p);
int32_t sk_load_i32(const void *p);
int64_t sk_load_i64(const void *p);
void sk_store_i32(void *p, int32_t v);
void sk_store_i64(void *p, int64_t v);

typedef struct sk_cur_s {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err; /* sticky: set by the first short or malformed read */
} sk_cur_t;

void sk_cur_init(sk_cur_t *c, const void *p, size_t len);
static inline size_t sk_cur_left(const sk_cur_t *c)
{
    return c->err ? 0 : c->len - c->pos;
}
int8_t sk_cur_i8(sk_cur_t *c);
int16_t sk_cur_i16(sk_cur_t *c);
int32_t sk_cur_i32(sk_cur_t *c);
int64_t sk_cur_i64(sk_cur_t *c);
uint64_t sk_cur_uvarint(sk_cur_t *c); /* at most 10 bytes, else err */
int64_t sk_cur_varint(sk_cur_t *c);   /* zigzag */
/* Returns a pointer to the next n bytes and advances, or NULL (and err). */
const uint8_t *sk_cur_bytes(sk_cur_t *c, size_t n);
void sk_cur_skip(sk_cur_t *c, size_t n);

#endif
