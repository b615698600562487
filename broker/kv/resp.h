/*
 * resp.h - RESP2 (the Redis protocol): an incremental request parser and the
 * reply writers.  Pure functions over bytes: no sockets, no allocation except
 * the parser's own argument table.
 *
 * Requests come in two forms, as Redis accepts them:
 *   multibulk  "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"  (what every client library sends)
 *   inline     "GET k\r\n"                       (telnet; double and single quotes
 *                                                  with Redis's escapes)
 *
 * Parsing is incremental and the state lives in kv_parser_t, one per
 * connection.  The caller keeps the bytes of the request being parsed in one
 * contiguous buffer that starts at the request's first byte; it may append to
 * it (and move it in memory) between calls, and must not drop any of it until
 * the request is complete:
 *
 *     r = kv_resp_parse(&p, buf, len);
 *     KV_RESP_OK     p.argc/p.argv hold the request (argc may be 0 for an
 *                    empty one, which Redis ignores); p.consumed bytes of buf
 *                    belong to it.  argv points into buf (multibulk) or into
 *                    the parser (inline) and is valid until the next call.
 *                    The caller drops the consumed bytes and calls again.
 *     KV_RESP_AGAIN  need more bytes; call again with the same start.
 *     KV_RESP_ERROR  protocol error; p.err holds Redis's text without the
 *                    "ERR " prefix ("Protocol error: invalid bulk length").
 *                    The connection cannot be resynchronised: answer and close.
 *
 * Every length is limited before anything is allocated or waited for:
 * bulk length <= limits.max_bulk (Redis: 512 MiB), element count <=
 * limits.max_multibulk (1024 * 1024), a header line or an inline request
 * <= limits.max_inline bytes (64 KiB).  Parsing resumes where the previous
 * call stopped, so feeding one byte at a time costs O(n) in total.
 */
#ifndef SOUK_KV_RESP_H
#define SOUK_KV_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "sk_buf.h"

#define KV_RESP_MAX_BULK (512LL * 1024 * 1024)
#define KV_RESP_MAX_MULTIBULK (1024LL * 1024)
#define KV_RESP_MAX_INLINE (64 * 1024)

typedef enum { KV_RESP_OK = 0, KV_RESP_AGAIN = 1, KV_RESP_ERROR = -1 } kv_resp_result_t;

typedef struct kv_arg_s {
    const char *p;
    size_t len;
} kv_arg_t;

typedef struct kv_resp_limits_s {
    int64_t max_bulk;
    int64_t max_multibulk;
    size_t max_inline;
} kv_resp_limits_t;

typedef struct kv_span_s {
    size_t off, len; /* relative to the request's first byte */
} kv_span_t;

typedef struct kv_parser_s {
    kv_resp_limits_t lim;
    int state;        /* internal: start, multibulk, inline, done */
    size_t pos;       /* bytes of the current request already parsed */
    int64_t nleft;    /* multibulk: elements still to read */
    int64_t bulk_len; /* multibulk: length of the element being read, -1 before its header */
    size_t argc;      /* valid after KV_RESP_OK */
    kv_arg_t *argv;   /* valid after KV_RESP_OK, until the next call */
    size_t consumed;  /* valid after KV_RESP_OK */
    kv_span_t *spans;
    size_t nspans, cap;
    sk_buf_t inl; /* unquoted inline arguments */
    char err[96];
} kv_parser_t;

/* lim may be NULL for Redis's limits. */
void kv_parser_init(kv_parser_t *p, const kv_resp_limits_t *lim);
void kv_parser_release(kv_parser_t *p);
/* Forgets a partial request (the caller dropped its bytes). */
void kv_parser_reset(kv_parser_t *p);
kv_resp_result_t kv_resp_parse(kv_parser_t *p, const char *buf, size_t len);
/* Bytes that the current partial request still needs at least (for sizing
 * reads of a large bulk); 0 when unknown. */
size_t kv_parser_need(const kv_parser_t *p, size_t have);

/*
 * Redis's strict integer syntax (string2ll): optional '-', no '+', no
 * spaces, no leading zeros, fits in int64.  Returns 0 and *out, or -1.
 */
int kv_parse_ll(const char *s, size_t n, long long *out);

/* ---- replies -------------------------------------------------------------- */

void kv_reply_status(sk_buf_t *o, const char *s);                 /* +s */
/* -msg: msg begins with the error code ("ERR ...", "WRONGPASS ...").  \r and
 * \n inside it are replaced by spaces, as Redis does. */
void kv_reply_error(sk_buf_t *o, const char *msg);
void kv_reply_errorf(sk_buf_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kv_reply_int(sk_buf_t *o, long long v);                       /* :v */
void kv_reply_bulk(sk_buf_t *o, const void *p, size_t n);          /* $n data */
void kv_reply_bulks(sk_buf_t *o, const char *s);                   /* bulk of a C string */
void kv_reply_bulk_ll(sk_buf_t *o, long long v);                   /* bulk of a number */
void kv_reply_nil(sk_buf_t *o);                                    /* $-1 */
void kv_reply_array(sk_buf_t *o, long long n);                     /* *n */
void kv_reply_nil_array(sk_buf_t *o);                              /* *-1 */
/* Writes v in decimal to out (21 bytes suffice); returns the length. */
size_t kv_ll2str(char *out, long long v);

#endif
