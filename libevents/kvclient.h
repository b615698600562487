/*
 * kvclient.h - the key-store client: hiredis's asynchronous API on the
 * service's libevent loop (hiredis/adapters/libevent.h).
 *
 * souk-broker's key store speaks RESP2, so this is an ordinary Redis client;
 * a deployment can point --kv at a real Redis (>= 7.0: ev_kv_incr_expire
 * uses EXPIRE ... NX; the rest works with any Redis >= 6.2, GETDEL being the
 * newest command used).
 *
 * One connection, kept open: the client connects in the background, and
 * when the connection fails or drops it reconnects after backoff_ms,
 * doubling up to backoff_max_ms, forever (a connect that hangs is abandoned
 * after connect_timeout_ms).  Commands are pipelined on the connection and
 * answered in order.  There is no queue across reconnects: a command issued
 * while there is no connection fails at once (the call returns -1), and
 * commands in flight when the connection drops are answered with an error.
 * Callers decide what that means (a 503, a retry from their own timer, or -
 * for holds - nothing, since the booking sweeper is the backstop).
 *
 * The host in addr is resolved by hiredis with a blocking getaddrinfo() on
 * each (re)connect: use an IP address or a name that resolves locally
 * (/etc/hosts, a container name).
 *
 * Everything runs on the loop's thread.  Strings passed in are copied into
 * the request before the call returns.
 */
#ifndef EV_KVCLIENT_H
#define EV_KVCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

typedef struct ev_kv_s ev_kv_t;

typedef enum {
    EV_KV_OK = 0, /* the command succeeded; str/len or integer hold the answer */
    EV_KV_NIL,    /* GET/GETDEL of a missing key; SET NX of an existing key */
    EV_KV_ERROR,  /* the server answered an error, or the connection failed: err */
} ev_kv_status_t;

struct redisReply;

typedef struct ev_kv_reply_s {
    ev_kv_status_t status;
    const char *str;   /* GET/GETDEL value, or a status text ("OK"); NULL otherwise */
    size_t len;        /* bytes in str (values are binary-safe) */
    long long integer; /* DEL: keys removed; INCR: the new count */
    const char *err;   /* EV_KV_ERROR: the reason ("connection lost", "-ERR ...") */
    const struct redisReply *raw; /* hiredis's reply (NULL on connection errors), for
                                     ev_kv_command() callers */
} ev_kv_reply_t;

/* Called exactly once per command that was accepted (returned 0), on the
 * loop, with a reply valid only during the call - unless the client is
 * freed first (ev_kv_free() drops pending callbacks without calling them). */
typedef void (*ev_kv_cb)(void *opaque, const ev_kv_reply_t *reply);

typedef struct ev_kv_conf_s {
    const char *addr;       /* "127.0.0.1:6379" or "[::1]:6379" (--kv); required */
    const char *password;   /* sent with AUTH on every connect; NULL or "": none */
    int connect_timeout_ms; /* 0: 2000 */
    int backoff_ms;         /* first reconnect delay; 0: 100 */
    int backoff_max_ms;     /* longest reconnect delay; 0: 5000 */
    /* Told about every change of connection state (1 up, 0 down), e.g. for
     * /ready; may be NULL. */
    void (*on_state)(void *opaque, int connected);
    void *opaque;
} ev_kv_conf_t;

/* Creates the client and starts connecting.  Returns NULL with err set only
 * for a bad configuration (an unreachable server is not an error: it is
 * retried).  Free with ev_kv_free(). */
ev_kv_t *ev_kv_new(struct event_base *base, const ev_kv_conf_t *conf, char *err, size_t errsz);

/* Closes the connection at once; pending callbacks are dropped uncalled.
 * NULL is a no-op.  Must not be called from inside an ev_kv callback. */
void ev_kv_free(ev_kv_t *kv);

/* 1 while connected (and, with a password, not refused), else 0. */
int ev_kv_connected(const ev_kv_t *kv);

/*
 * Commands.  Each returns 0 when the command was sent (cb, which may be
 * NULL, is then called once), or -1 when there is no connection (nothing
 * sent, cb not called).  Keys are C strings; values are binary-safe.
 */

/* SET key value EX ttl_s (ttl_s >= 1): status OK. */
int ev_kv_set_ex(ev_kv_t *kv, const char *key, const void *value, size_t len, int64_t ttl_s, ev_kv_cb cb,
                 void *opaque);
/* SET key value EX ttl_s NX: OK if it was set, NIL if the key existed. */
int ev_kv_set_nx_ex(ev_kv_t *kv, const char *key, const void *value, size_t len, int64_t ttl_s, ev_kv_cb cb,
                    void *opaque);
/* GET key: OK with str/len, or NIL. */
int ev_kv_get(ev_kv_t *kv, const char *key, ev_kv_cb cb, void *opaque);
/* GETDEL key (read and delete atomically, e.g. a refresh token rotation):
 * OK with str/len, or NIL. */
int ev_kv_getdel(ev_kv_t *kv, const char *key, ev_kv_cb cb, void *opaque);
/* DEL key: OK with integer = 0 or 1. */
int ev_kv_del(ev_kv_t *kv, const char *key, ev_kv_cb cb, void *opaque);
/*
 * A fixed-window counter for rate limits: INCR key, then EXPIRE key ttl_s
 * NX, pipelined.  OK with integer = the count including this call.  The
 * window starts at the first INCR; EXPIRE NX never extends it, yet repairs
 * a key left without a TTL (a crash between the two commands), so a
 * counter can never stick forever.
 */
int ev_kv_incr_expire(ev_kv_t *kv, const char *key, int64_t ttl_s, ev_kv_cb cb, void *opaque);
/* Any command, as argv (binary-safe with argvlen; NULL argvlen: strlen).
 * The reply is mapped as above; raw has the rest (arrays). */
int ev_kv_command(ev_kv_t *kv, int argc, const char **argv, const size_t *argvlen, ev_kv_cb cb, void *opaque);

#endif
