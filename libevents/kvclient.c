/*
 * kvclient.c - hiredis async + libevent adapter, with reconnects (see
 * kvclient.h).
 *
 * hiredis 0.14 owns the redisAsyncContext: it frees it itself after a failed
 * connect (onConnect with REDIS_ERR) and after a disconnect (onDisconnect),
 * calling every pending reply callback with a NULL reply first.  So kv->ac
 * is cleared in those callbacks and never touched afterwards; the only
 * places that free a context themselves are the connect timeout and
 * ev_kv_free().
 */
#include "kvclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "outbox.h" /* ev_backoff_ms */
#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "sk_net.h"

#define FAC "kv"

struct ev_kv_s {
    struct event_base *base;
    char host[256];
    int port;
    char *password;
    int connect_timeout_ms, backoff_ms, backoff_max_ms;
    void (*on_state)(void *opaque, int connected);
    void *opaque;

    redisAsyncContext *ac; /* NULL while waiting to reconnect */
    int connected;
    int attempt;            /* failed connects in a row */
    int freeing;
    struct event *reconnect_ev;
    struct event *timeout_ev;
    int64_t last_log_ms;    /* rate limit for "cannot connect" */
};

typedef enum { REQ_PLAIN, REQ_INCR, REQ_EXPIRE } req_kind_t;

typedef struct kv_req_s {
    ev_kv_t *kv;
    ev_kv_cb cb;
    void *opaque;
    int refs;            /* incr_expire: two replies share one request */
    long long count;     /* incr_expire: INCR's answer */
    int incr_failed;
    char err[256];
} kv_req_t;

static void connect_now(ev_kv_t *kv);

static void set_state(ev_kv_t *kv, int up)
{
    if (kv->connected == up) return;
    kv->connected = up;
    if (kv->on_state && !kv->freeing) kv->on_state(kv->opaque, up);
}

static void schedule_reconnect(ev_kv_t *kv)
{
    if (kv->freeing) return;
    int ms = ev_backoff_ms(++kv->attempt, kv->backoff_ms, kv->backoff_max_ms);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(kv->reconnect_ev, &tv);
}

static void log_connect_failure(ev_kv_t *kv, const char *why)
{
    int64_t now = sk_mono_ms();
    if (kv->attempt > 1 && now - kv->last_log_ms < 30000) return;
    kv->last_log_ms = now;
    sk_warn(FAC, "cannot connect to the key store at %s:%d: %s (retrying)", kv->host, kv->port, why);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    ev_kv_t *kv = ac->data;
    if (!kv || kv->ac != ac) return;
    evtimer_del(kv->timeout_ev);
    if (status != REDIS_OK) {
        log_connect_failure(kv, ac->errstr[0] ? ac->errstr : "connect failed");
        kv->ac = NULL; /* hiredis frees it after this callback */
        schedule_reconnect(kv);
        return;
    }
    if (kv->attempt > 0) sk_info(FAC, "connected to the key store at %s:%d", kv->host, kv->port);
    kv->attempt = 0;
    set_state(kv, 1);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    ev_kv_t *kv = ac->data;
    if (!kv || kv->ac != ac) return;
    kv->ac = NULL; /* hiredis frees it after this callback */
    set_state(kv, 0);
    if (kv->freeing) return;
    if (status != REDIS_OK)
        sk_warn(FAC, "lost the key store at %s:%d: %s (reconnecting)", kv->host, kv->port,
                ac->errstr[0] ? ac->errstr : "disconnected");
    schedule_reconnect(kv);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ev_kv_t *kv = arg;
    if (!kv->ac || kv->connected) return;
    redisAsyncContext *ac = kv->ac;
    kv->ac = NULL;
    ac->data = NULL; /* no callbacks of ours for this context any more */
    redisAsyncFree(ac);
    log_connect_failure(kv, "connect timed out");
    schedule_reconnect(kv);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    redisReply *r = reply;
    ev_kv_t *kv = ac->data;
    if (!kv || kv->freeing || !r) return;
    if (r->type == REDIS_REPLY_ERROR) {
        sk_error(FAC, "the key store at %s:%d refused AUTH: %s", kv->host, kv->port, r->str);
        /* Disconnect; reconnects (with backoff) in case the password changes. */
        set_state(kv, 0);
        redisAsyncDisconnect(ac);
    }
}

static void connect_now(ev_kv_t *kv)
{
    if (kv->freeing || kv->ac) return;
    redisAsyncContext *ac = redisAsyncConnect(kv->host, kv->port);
    if (!ac) {
        log_connect_failure(kv, "out of memory");
        schedule_reconnect(kv);
        return;
    }
    if (ac->err) {
        log_connect_failure(kv, ac->errstr);
        redisAsyncFree(ac);
        schedule_reconnect(kv);
        return;
    }
    ac->data = kv;
    if (redisLibeventAttach(ac, kv->base) != REDIS_OK) {
        redisAsyncFree(ac);
        log_connect_failure(kv, "cannot attach to the event loop");
        schedule_reconnect(kv);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    kv->ac = ac;
    if (kv->password) redisAsyncCommand(ac, on_auth, NULL, "AUTH %s", kv->password);
    struct timeval tv = {kv->connect_timeout_ms / 1000, (kv->connect_timeout_ms % 1000) * 1000};
    evtimer_add(kv->timeout_ev, &tv);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_now(arg);
}

ev_kv_t *ev_kv_new(struct event_base *base, const ev_kv_conf_t *conf, char *err, size_t errsz)
{
    ev_kv_t *kv = sk_calloc(1, sizeof *kv);
    kv->base = base;
    if (!conf->addr || sk_net_split_hostport(conf->addr, kv->host, sizeof kv->host, &kv->port) < 0 ||
        kv->port <= 0 || kv->port > 65535 || !kv->host[0]) {
        snprintf(err, errsz, "key store address \"%s\" is not HOST:PORT", conf->addr ? conf->addr : "");
        free(kv);
        return NULL;
    }
    if (conf->password && *conf->password) kv->password = sk_strdup(conf->password);
    kv->connect_timeout_ms = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 2000;
    kv->backoff_ms = conf->backoff_ms > 0 ? conf->backoff_ms : 100;
    kv->backoff_max_ms = conf->backoff_max_ms > 0 ? conf->backoff_max_ms : 5000;
    if (kv->backoff_max_ms < kv->backoff_ms) kv->backoff_max_ms = kv->backoff_ms;
    kv->on_state = conf->on_state;
    kv->opaque = conf->opaque;
    kv->reconnect_ev = evtimer_new(base, on_reconnect_timer, kv);
    kv->timeout_ev = evtimer_new(base, on_connect_timeout, kv);
    if (!kv->reconnect_ev || !kv->timeout_ev) {
        snprintf(err, errsz, "key store client: cannot create timers");
        ev_kv_free(kv);
        return NULL;
    }
    connect_now(kv);
    return kv;
}

void ev_kv_free(ev_kv_t *kv)
{
    if (!kv) return;
    kv->freeing = 1;
    if (kv->ac) {
        redisAsyncContext *ac = kv->ac;
        redisAsyncFree(ac); /* pending callbacks see kv->freeing; on_disconnect clears kv->ac */
        kv->ac = NULL;
    }
    if (kv->reconnect_ev) event_free(kv->reconnect_ev);
    if (kv->timeout_ev) event_free(kv->timeout_ev);
    free(kv->password);
    free(kv);
}

int ev_kv_connected(const ev_kv_t *kv)
{
    return kv && kv->connected;
}

/* ---- replies ------------------------------------------------------------------- */

static void map_reply(const redisAsyncContext *ac, const redisReply *r, ev_kv_reply_t *out)
{
    memset(out, 0, sizeof *out);
    out->raw = r;
    if (!r) {
        out->status = EV_KV_ERROR;
        out->err = ac && ac->errstr[0] ? ac->errstr : "connection lost";
        return;
    }
    switch (r->type) {
    case REDIS_REPLY_NIL: out->status = EV_KV_NIL; break;
    case REDIS_REPLY_ERROR:
        out->status = EV_KV_ERROR;
        out->err = r->str;
        break;
    case REDIS_REPLY_INTEGER:
        out->status = EV_KV_OK;
        out->integer = r->integer;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        out->status = EV_KV_OK;
        out->str = r->str;
        out->len = r->len;
        break;
    default: out->status = EV_KV_OK; break; /* arrays: see raw */
    }
}

static void req_unref(kv_req_t *q)
{
    if (--q->refs == 0) free(q);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    kv_req_t *q = priv;
    ev_kv_reply_t rep;
    if (!q->kv->freeing && q->cb) {
        map_reply(ac, reply, &rep);
        q->cb(q->opaque, &rep);
    }
    req_unref(q);
}

static void on_incr_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    kv_req_t *q = priv;
    ev_kv_reply_t rep;
    map_reply(ac, reply, &rep);
    if (rep.status == EV_KV_OK && ((redisReply *)reply)->type == REDIS_REPLY_INTEGER) {
        q->count = rep.integer;
    } else {
        q->incr_failed = 1;
        snprintf(q->err, sizeof q->err, "INCR: %s", rep.err ? rep.err : "unexpected reply");
    }
    req_unref(q);
}

static void on_expire_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    kv_req_t *q = priv;
    ev_kv_reply_t rep;
    map_reply(ac, reply, &rep);
    if (!q->kv->freeing && q->cb) {
        if (q->incr_failed) {
            memset(&rep, 0, sizeof rep);
            rep.status = EV_KV_ERROR;
            rep.err = q->err;
        } else if (rep.status == EV_KV_OK) {
            rep.integer = q->count;
            rep.str = NULL;
            rep.len = 0;
        } else {
            snprintf(q->err, sizeof q->err, "EXPIRE: %s", rep.err ? rep.err : "unexpected reply");
            rep.err = q->err;
        }
        q->cb(q->opaque, &rep);
    }
    req_unref(q);
}

/* ---- commands --------------------------------------------------------------------- */

static int send_argv(ev_kv_t *kv, redisCallbackFn *fn, kv_req_t *q, int argc, const char **argv,
                     const size_t *argvlen)
{
    if (!kv->ac) return -1;
    if (redisAsyncCommandArgv(kv->ac, fn, q, argc, argv, argvlen) != REDIS_OK) return -1;
    return 0;
}

static kv_req_t *req_new(ev_kv_t *kv, ev_kv_cb cb, void *opaque, int refs)
{
    kv_req_t *q = sk_calloc(1, sizeof *q);
    q->kv = kv;
    q->cb = cb;
    q->opaque = opaque;
    q->refs = refs;
    return q;
}

int ev_kv_command(ev_kv_t *kv, int argc, const char **argv, const size_t *argvlen, ev_kv_cb cb, void *opaque)
{
    if (!kv->ac || argc < 1) return -1;
    kv_req_t *q = req_new(kv, cb, opaque, 1);
    if (send_argv(kv, on_reply, q, argc, argv, argvlen) < 0) {
        free(q);
        return -1;
    }
    return 0;
}

static int set_cmd(ev_kv_t *kv, const char *key, const void *value, size_t len, int64_t ttl_s, int nx,
                   ev_kv_cb cb, void *opaque)
{
    char ttl[32];
    if (ttl_s < 1) return -1;
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s);
    const char *argv[] = {"SET", key, value, "EX", ttl, "NX"};
    size_t lens[] = {3, strlen(key), len, 2, strlen(ttl), 2};
    return ev_kv_command(kv, nx ? 6 : 5, argv, lens, cb, opaque);
}

int ev_kv_set_ex(ev_kv_t *kv, const char *key, const void *value, size_t len, int64_t ttl_s, ev_kv_cb cb,
                 void *opaque)
{
    return set_cmd(kv, key, value, len, ttl_s, 0, cb, opaque);
}

int ev_kv_set_nx_ex(ev_kv_t *kv, const char *key, const void *value, size_t len, int64_t ttl_s, ev_kv_cb cb,
                    void *opaque)
{
    return set_cmd(kv, key, value, len, ttl_s, 1, cb, opaque);
}

static int key_cmd(ev_kv_t *kv, const char *cmd, const char *key, ev_kv_cb cb, void *opaque)
{
    const char *argv[] = {cmd, key};
    return ev_kv_command(kv, 2, argv, NULL, cb, opaque);
}

int ev_kv_get(ev_kv_t *kv, const char *key, ev_kv_cb cb, void *opaque)
{
    return key_cmd(kv, "GET", key, cb, opaque);
}

int ev_kv_getdel(ev_kv_t *kv, const char *key, ev_kv_cb cb, void *opaque)
{
    return key_cmd(kv, "GETDEL", key, cb, opaque);
}

int ev_kv_del(ev_kv_t *kv, const char *key, ev_kv_cb cb, void *opaque)
{
    return key_cmd(kv, "DEL", key, cb, opaque);
}

int ev_kv_incr_expire(ev_kv_t *kv, const char *key, int64_t ttl_s, ev_kv_cb cb, void *opaque)
{
    char ttl[32];
    if (!kv->ac || ttl_s < 1) return -1;
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s);
    kv_req_t *q = req_new(kv, cb, opaque, 2);
    const char *incr[] = {"INCR", key};
    const char *expire[] = {"EXPIRE", key, ttl, "NX"};
    if (send_argv(kv, on_incr_reply, q, 2, incr, NULL) < 0) {
        free(q);
        return -1;
    }
    /* Pipelined behind INCR on the same connection: if this cannot be
     * queued the connection is gone, and INCR's callback runs with an error
     * and drops its reference; report through cb as promised. */
    if (send_argv(kv, on_expire_reply, q, 4, expire, NULL) < 0) {
        ev_kv_reply_t rep = {.status = EV_KV_ERROR, .err = "EXPIRE could not be sent"};
        if (cb) cb(opaque, &rep);
        req_unref(q);
    }
    return 0;
}
