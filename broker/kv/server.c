#include "server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "aof.h"
#include "batch.h"
#include "kafka.h"
#include "log.h"
#include "resp.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_conf.h"
#include "sk_crc32c.h"
#include "sk_log.h"
#include "sk_map.h"
#include "sk_net.h"
#include "store.h"

#define KV_VERSION "7.0.0" /* the Redis version whose behaviour souk follows */
#define READ_CHUNK (16 * 1024)
#define QUERYBUF_MAX (1LL << 30)       /* a client whose query buffer grows past this is closed */
#define OUTPUT_PAUSE (64u << 20)       /* stop reading a client that does not read its replies */
#define OUTPUT_RESUME (1u << 20)
#define PUBSUB_OUTPUT_MAX (32u << 20)  /* Redis's pubsub hard limit */
#define CRON_MS 100
#define EXPIRE_BUDGET_US 3000          /* per expire cycle; the loop serves clients in between */
#define REWRITE_TICK_MS 10
#define REWRITE_BUDGET_US 2000
#define EXPIRED_TOPIC "kv.expired"

/* notify-keyspace-events classes, with Redis's letters. */
enum {
    N_KEYSPACE = 1 << 0, /* K */
    N_KEYEVENT = 1 << 1, /* E */
    N_GENERIC = 1 << 2,  /* g */
    N_STRING = 1 << 3,   /* $ */
    N_LIST = 1 << 4,     /* l */
    N_SET = 1 << 5,      /* s */
    N_HASH = 1 << 6,     /* h */
    N_ZSET = 1 << 7,     /* z */
    N_EXPIRED = 1 << 8,  /* x */
    N_EVICTED = 1 << 9,  /* e */
    N_STREAM = 1 << 10,  /* t */
    N_KEYMISS = 1 << 11, /* m */
    N_MODULE = 1 << 12,  /* d */
    N_NEW = 1 << 13,     /* n */
    N_ALL = N_GENERIC | N_STRING | N_LIST | N_SET | N_HASH | N_ZSET | N_EXPIRED | N_EVICTED | N_STREAM | N_MODULE,
};

/* Command flags. */
enum {
    F_WRITE = 1 << 0,
    F_READONLY = 1 << 1,
    F_DENYOOM = 1 << 2,
    F_FAST = 1 << 3,
    F_NOAUTH = 1 << 4,  /* allowed before AUTH */
    F_PUBSUB = 1 << 5,  /* allowed in subscribed mode (RESP2) */
    F_ADMIN = 1 << 6,
    F_NOSCRIPT = 1 << 7,
};

typedef struct kv_conn_s kv_conn_t;
typedef void (*kv_cmd_fn)(kv_conn_t *c, const kv_arg_t *argv, size_t argc);

typedef struct kv_cmd_s {
    const char *name; /* lower case */
    int arity;
    unsigned flags;
    kv_cmd_fn fn;
    int first_key, last_key, key_step;
    const char *group, *since, *summary;
} kv_cmd_t;

typedef struct kv_chan_s {
    kv_conn_t **subs;
    size_t n, cap;
} kv_chan_t;

typedef struct kv_pat_s {
    kv_conn_t *c;
    char *pat;
    size_t len;
} kv_pat_t;

typedef struct exp_part_s {
    sk_buf_t recs; /* encoded records of the batch being built */
    int32_t n;
    int64_t base_ts, max_ts;
} exp_part_t;

struct kv_conn_s {
    kv_server_t *srv;
    evutil_socket_t fd;
    struct event *rev, *wev;
    sk_buf_t in;
    size_t in_off; /* first byte of the request being parsed */
    kv_parser_t parser;
    sk_buf_t out;
    size_t out_off; /* bytes of out already sent */
    uint64_t id;
    char *name;
    int authed;
    int close_after; /* QUIT or protocol error: close once the output is sent */
    int closing;     /* free on the next before-sleep step */
    int in_pending;
    int read_paused;
    sk_map_t *chans; /* channel -> kv_chan_t *, NULL until SUBSCRIBE */
    size_t npats;
    char peer[INET6_ADDRSTRLEN + 8];
    int64_t created_ms, last_ms;
    const char *last_cmd;
    kv_conn_t *next, *prev, *pnext;
};

struct kv_server_s {
    broker_t *b;
    struct evconnlistener *listener;
    char address[INET6_ADDRSTRLEN + 8];
    int port;
    kv_store_t *store;
    kv_aof_t *aof;
    sk_map_t cmds;
    kv_conn_t *conns;
    size_t nconns;
    kv_conn_t *pending; /* clients with output or to close, for before_sleep */
    int flush_scheduled;
    struct event *flush_ev, *expire_ev, *cron_ev, *rewrite_ev;
    int64_t expire_armed_for; /* deadline the expire timer waits for; INT64_MAX: none */
    uint64_t next_id;
    /* Pub/Sub */
    sk_map_t channels;
    kv_pat_t *pats;
    size_t npats, pats_cap;
    int notify;
    /* kv.expired records not yet appended */
    exp_part_t *exp;
    int32_t exp_nparts;
    int exp_pending;
    sk_buf_t scratch;
    /* settings */
    int64_t maxmemory;
    char *password;
    /* stats */
    uint64_t cron_runs;
    size_t conn_mem;
    size_t peak_mem;
    int64_t start_ms;
    uint64_t stat_conns, stat_cmds, stat_expired, stat_hits, stat_misses, stat_rejected, stat_events,
        stat_events_failed, stat_proto_errors;
};

static const kv_cmd_t *cmd_table(size_t *n);
static void conn_close_asap(kv_conn_t *c);
static void schedule(kv_conn_t *c);
static void schedule_flush(kv_server_t *s);
static void process_input(kv_conn_t *c);
static void pubsub_unsubscribe_all(kv_conn_t *c, int notify);
static void pubsub_punsubscribe_all(kv_conn_t *c, int notify);

/* ---- small helpers ------------------------------------------------------------ */

static int arg_is(const kv_arg_t *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->p, s, n) == 0;
}

static size_t out_pending(const kv_conn_t *c)
{
    return c->out.len - c->out_off;
}

static void reply_ok(kv_conn_t *c)
{
    sk_buf_add(&c->out, "+OK\r\n", 5);
}

static void reply_syntax(kv_conn_t *c)
{
    kv_reply_error(&c->out, "ERR syntax error");
}

static void reply_not_int(kv_conn_t *c)
{
    kv_reply_error(&c->out, "ERR value is not an integer or out of range");
}

static void reply_arity(kv_conn_t *c, const char *name)
{
    kv_reply_errorf(&c->out, "ERR wrong number of arguments for '%s' command", name);
}

/* "%.128s" of a binary-safe argument, stopping at NUL as Redis's printf does. */
static int arg_fmt_len(const kv_arg_t *a, size_t max)
{
    size_t n = a->len < max ? a->len : max;
    const char *z = memchr(a->p, '\0', n);
    return (int)(z ? (size_t)(z - a->p) : n);
}

static void reply_unknown_subcommand(kv_conn_t *c, const kv_arg_t *sub, const char *cmd)
{
    kv_reply_errorf(&c->out, "ERR unknown subcommand '%.*s'. Try %s HELP.", arg_fmt_len(sub, 128), sub->p, cmd);
}

static int64_t now_ms(const kv_server_t *s)
{
    return kv_store_now(s->store);
}

static size_t used_memory(const kv_server_t *s)
{
    return kv_store_memory(s->store) + s->conn_mem + 1024 * 1024;
}

/* ---- keyspace notifications and Pub/Sub ---------------------------------------- */

static void pubsub_check_output(kv_conn_t *c)
{
    if (out_pending(c) > PUBSUB_OUTPUT_MAX && !c->closing) {
        sk_warn("kv", "%s: closing subscriber: %zu bytes of messages unread (limit %u)", c->peer, out_pending(c),
                PUBSUB_OUTPUT_MAX);
        conn_close_asap(c);
    }
}

/* Delivers msg on channel ch; returns the number of receivers. */
static long long publish(kv_server_t *s, const char *ch, size_t chlen, const char *msg, size_t mlen)
{
    long long n = 0;
    kv_chan_t *chan = sk_map_count(&s->channels) ? sk_map_get(&s->channels, ch, chlen) : NULL;
    if (chan) {
        for (size_t i = 0; i < chan->n; i++) {
            kv_conn_t *c = chan->subs[i];
            if (c->closing) continue;
            sk_buf_add(&c->out, "*3\r\n$7\r\nmessage\r\n", 17);
            kv_reply_bulk(&c->out, ch, chlen);
            kv_reply_bulk(&c->out, msg, mlen);
            schedule(c);
            pubsub_check_output(c);
            n++;
        }
    }
    for (size_t i = 0; i < s->npats; i++) {
        kv_pat_t *p = &s->pats[i];
        if (p->c->closing || !kv_glob_match(p->pat, p->len, ch, chlen, 0)) continue;
        sk_buf_add(&p->c->out, "*4\r\n$8\r\npmessage\r\n", 18);
        kv_reply_bulk(&p->c->out, p->pat, p->len);
        kv_reply_bulk(&p->c->out, ch, chlen);
        kv_reply_bulk(&p->c->out, msg, mlen);
        schedule(p->c);
        pubsub_check_output(p->c);
        n++;
    }
    return n;
}

static void notify(kv_server_t *s, int type, const char *event, const char *key, size_t klen)
{
    int f = s->notify;
    if (!(f & type) || !(f & (N_KEYSPACE | N_KEYEVENT))) return;
    if (sk_map_count(&s->channels) == 0 && s->npats == 0) return;
    sk_buf_t *b = &s->scratch;
    if (f & N_KEYSPACE) {
        sk_buf_reset(b);
        sk_buf_adds(b, "__keyspace@0__:");
        sk_buf_add(b, key, klen);
        publish(s, b->data, b->len, event, strlen(event));
    }
    if (f & N_KEYEVENT) {
        sk_buf_reset(b);
        sk_buf_adds(b, "__keyevent@0__:");
        sk_buf_adds(b, event);
        publish(s, b->data, b->len, key, klen);
    }
}

/* Redis's letters, in Redis's order ("AKE", "g$xE", ...). */
static void notify_flags_str(int f, char *out)
{
    static const struct {
        int flag;
        char c;
    } order[] = {{N_GENERIC, 'g'}, {N_STRING, '$'}, {N_LIST, 'l'},   {N_SET, 's'},    {N_HASH, 'h'},  {N_ZSET, 'z'},
                 {N_EXPIRED, 'x'}, {N_EVICTED, 'e'}, {N_STREAM, 't'}, {N_MODULE, 'd'}, {N_NEW, 'n'}};
    size_t n = 0;
    if ((f & N_ALL) == N_ALL) {
        out[n++] = 'A';
    } else {
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
            if (f & order[i].flag) out[n++] = order[i].c;
    }
    if (f & N_KEYSPACE) out[n++] = 'K';
    if (f & N_KEYEVENT) out[n++] = 'E';
    if (f & N_KEYMISS) out[n++] = 'm';
    out[n] = '\0';
}

static int notify_flags_parse(const char *s, size_t n)
{
    int f = 0;
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case 'A': f |= N_ALL; break;
        case 'g': f |= N_GENERIC; break;
        case '$': f |= N_STRING; break;
        case 'l': f |= N_LIST; break;
        case 's': f |= N_SET; break;
        case 'h': f |= N_HASH; break;
        case 'z': f |= N_ZSET; break;
        case 'x': f |= N_EXPIRED; break;
        case 'e': f |= N_EVICTED; break;
        case 'K': f |= N_KEYSPACE; break;
        case 'E': f |= N_KEYEVENT; break;
        case 't': f |= N_STREAM; break;
        case 'm': f |= N_KEYMISS; break;
        case 'd': f |= N_MODULE; break;
        case 'n': f |= N_NEW; break;
        default: return -1;
        }
    }
    return f;
}

/* ---- kv.expired ------------------------------------------------------------------ */

/* Kafka's default partitioner hash (murmur2, seed 0x9747b28c), so that a
 * Java or librdkafka (murmur2_random) producer would pick the same partition. */
static uint32_t murmur2(const void *data, size_t len)
{
    const uint8_t *p = data;
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t k = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len & 3) {
    case 3: h ^= (uint32_t)p[i + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)p[i + 1] << 8;  /* fall through */
    case 1:
        h ^= p[i];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

static log_topic_t *expired_topic(kv_server_t *s)
{
    log_topic_t *t = log_topic_find(s->b->log, EXPIRED_TOPIC, strlen(EXPIRED_TOPIC));
    if (t) return t;
    char err[256];
    if (log_topic_create(s->b->log, EXPIRED_TOPIC, strlen(EXPIRED_TOPIC), 0, &t, err, sizeof err) != LOG_OK) {
        sk_error("kv", "cannot create topic %s: %s", EXPIRED_TOPIC, err);
        return NULL;
    }
    return t;
}

/* Queues the record announcing that key expired at deadline. */
static void expired_event_add(kv_server_t *s, const kv_entry_t *e, int64_t deadline)
{
    log_topic_t *t = expired_topic(s);
    if (!t) {
        s->stat_events_failed++;
        return;
    }
    int32_t np = log_topic_partitions(t);
    if (np != s->exp_nparts) {
        if (s->exp_pending) return; /* cannot happen: topics never shrink or grow here */
        for (int32_t i = 0; i < s->exp_nparts; i++) sk_buf_release(&s->exp[i].recs);
        free(s->exp);
        s->exp = sk_calloc((size_t)np, sizeof *s->exp);
        for (int32_t i = 0; i < np; i++) sk_buf_init(&s->exp[i].recs, 0);
        s->exp_nparts = np;
    }
    exp_part_t *ep = &s->exp[(murmur2(kv_entry_key(e), e->klen) & 0x7fffffff) % (uint32_t)np];
    int64_t now = sk_wall_ms();
    if (ep->n == 0) ep->base_ts = ep->max_ts = now;
    if (now > ep->max_ts) ep->max_ts = now;

    char when[SK_RFC3339_LEN];
    sk_buf_t *v = &s->scratch;
    sk_buf_reset(v);
    sk_buf_adds(v, "{\"key\":");
    sk_buf_add_json_str(v, kv_entry_key(e), e->klen);
    sk_buf_adds(v, ",\"value\":");
    sk_buf_add_json_str(v, kv_entry_val(e), e->vlen);
    sk_buf_addf(v, ",\"expiredAt\":\"%s\"}", sk_rfc3339_ms(deadline, when));

    /* Record v2: length, attributes, timestampDelta, offsetDelta, key, value, headers. */
    sk_buf_t rec;
    sk_buf_init(&rec, 64 + e->klen + v->len);
    sk_buf_add_i8(&rec, 0);
    sk_buf_add_varint(&rec, now - ep->base_ts);
    sk_buf_add_varint(&rec, ep->n);
    sk_buf_add_varint(&rec, (int64_t)e->klen);
    sk_buf_add(&rec, kv_entry_key(e), e->klen);
    sk_buf_add_varint(&rec, (int64_t)v->len);
    sk_buf_add(&rec, v->data, v->len);
    sk_buf_add_varint(&rec, 0);
    sk_buf_add_varint(&ep->recs, (int64_t)rec.len);
    sk_buf_add(&ep->recs, rec.data, rec.len);
    sk_buf_release(&rec);
    ep->n++;
    s->exp_pending = 1;
    schedule_flush(s);
}

/* Appends the queued records, one batch per partition.  Returns how many
 * partitions were written (their fsync is the caller's). */
static void expired_events_flush(kv_server_t *s, int fsync_now)
{
    if (!s->exp_pending) return;
    s->exp_pending = 0;
    log_topic_t *t = expired_topic(s);
    sk_buf_t batch;
    sk_buf_init(&batch, 4096);
    for (int32_t i = 0; i < s->exp_nparts; i++) {
        exp_part_t *ep = &s->exp[i];
        if (ep->n == 0) continue;
        sk_buf_reset(&batch);
        sk_buf_add_i64(&batch, 0);  /* baseOffset: the log assigns it */
        sk_buf_add_i32(&batch, 0);  /* batchLength, below */
        sk_buf_add_i32(&batch, -1); /* partitionLeaderEpoch */
        sk_buf_add_i8(&batch, 2);   /* magic */
        sk_buf_add_i32(&batch, 0);  /* crc, below */
        sk_buf_add_i16(&batch, 0);  /* attributes: no compression, CreateTime */
        sk_buf_add_i32(&batch, ep->n - 1);
        sk_buf_add_i64(&batch, ep->base_ts);
        sk_buf_add_i64(&batch, ep->max_ts);
        sk_buf_add_i64(&batch, -1); /* producerId */
        sk_buf_add_i16(&batch, -1); /* producerEpoch */
        sk_buf_add_i32(&batch, -1); /* baseSequence */
        sk_buf_add_i32(&batch, ep->n);
        sk_buf_add(&batch, ep->recs.data, ep->recs.len);
        sk_buf_put_i32(&batch, 8, (int32_t)(batch.len - BATCH_LOG_OVERHEAD));
        sk_buf_put_i32(&batch, 17, (int32_t)sk_crc32c(0, batch.data + 21, batch.len - 21));
        log_part_t *p = t ? log_topic_part(t, i) : NULL;
        char err[256];
        int64_t off;
        if (!p) {
            s->stat_events_failed += (uint64_t)ep->n;
        } else if (log_part_append(p, (uint8_t *)batch.data, batch.len, &off, err, sizeof err) != LOG_OK) {
            sk_error("kv", "appending %d expired-key records to %s-%d failed: %s", (int)ep->n, EXPIRED_TOPIC, (int)i,
                     err);
            s->stat_events_failed += (uint64_t)ep->n;
        } else {
            s->stat_events += (uint64_t)ep->n;
            if (fsync_now) log_part_flush(p);
        }
        ep->n = 0;
        sk_buf_reset(&ep->recs);
        if (ep->recs.cap > (1u << 20)) {
            sk_buf_release(&ep->recs);
            sk_buf_init(&ep->recs, 0);
        }
    }
    sk_buf_release(&batch);
    kp_server_notify_append(s->b);
}

/* The store calls this for every key that expires, before freeing it. */
static void on_expired(void *opaque, const kv_entry_t *e, int64_t deadline)
{
    kv_server_t *s = opaque;
    s->stat_expired++;
    expired_event_add(s, e, deadline);
    if (s->aof) kv_aof_add_del(s->aof, kv_entry_key(e), e->klen);
    notify(s, N_EXPIRED, "expired", kv_entry_key(e), e->klen);
}

/* ---- the expire timer --------------------------------------------------------- */

static void arm_timer(struct event *ev, int64_t delay_ms)
{
    if (delay_ms < 0) delay_ms = 0;
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)((delay_ms % 1000) * 1000)};
    evtimer_add(ev, &tv);
}

/* Makes sure the timer fires at the earliest deadline. */
static void arm_expire(kv_server_t *s)
{
    int64_t next = kv_store_next_deadline(s->store);
    if (next < 0 || next >= s->expire_armed_for) return;
    s->expire_armed_for = next;
    arm_timer(s->expire_ev, next - now_ms(s));
}

static void expire_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kv_server_t *s = arg;
    int more = 0;
    s->expire_armed_for = INT64_MAX;
    if (kv_store_expire_cycle(s->store, EXPIRE_BUDGET_US, &more) > 0) schedule_flush(s);
    if (more) {
        s->expire_armed_for = INT64_MIN; /* run again right after the pending I/O */
        arm_timer(s->expire_ev, 0);
    } else {
        arm_expire(s);
    }
}

/* ---- output and the before-sleep step ----------------------------------------- */

static void schedule_flush(kv_server_t *s)
{
    if (!s->flush_scheduled) {
        s->flush_scheduled = 1;
        event_active(s->flush_ev, EV_TIMEOUT, 0);
    }
}

static void schedule(kv_conn_t *c)
{
    if (!c->in_pending) {
        c->in_pending = 1;
        c->pnext = c->srv->pending;
        c->srv->pending = c;
    }
    schedule_flush(c->srv);
}

static void conn_free(kv_conn_t *c)
{
    kv_server_t *s = c->srv;
    pubsub_unsubscribe_all(c, 0);
    pubsub_punsubscribe_all(c, 0);
    if (c->chans) {
        sk_map_release(c->chans);
        free(c->chans);
    }
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    if (c->rev) event_free(c->rev);
    if (c->wev) event_free(c->wev);
    evutil_closesocket(c->fd);
    kv_parser_release(&c->parser);
    sk_buf_release(&c->in);
    sk_buf_release(&c->out);
    free(c->name);
    sk_debug("kv", "%s: closed", c->peer);
    free(c);
}

static void conn_close_asap(kv_conn_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    event_del(c->rev);
    event_del(c->wev);
    schedule(c);
}

/* Writes what the socket takes.  Returns -1 when the connection is dead. */
static int conn_write(kv_conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        sk_debug("kv", "%s: write: %s", c->peer, strerror(errno));
        return -1;
    }
    if (c->out_off == c->out.len) {
        sk_buf_reset(&c->out);
        c->out_off = 0;
        if (c->out.cap > (1u << 20)) {
            sk_buf_release(&c->out);
            sk_buf_init(&c->out, 0);
        }
        event_del(c->wev);
    } else {
        if (c->out_off > (1u << 20) && c->out_off > c->out.len / 2) {
            memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
            c->out.len -= c->out_off;
            c->out.data[c->out.len] = '\0';
            c->out_off = 0;
        }
        event_add(c->wev, NULL);
    }
    return 0;
}

/* After output drained: close, or read again if reading was paused. */
static void conn_after_write(kv_conn_t *c)
{
    if (c->close_after && out_pending(c) == 0) {
        conn_close_asap(c);
        return;
    }
    if (c->read_paused && out_pending(c) < OUTPUT_RESUME) {
        c->read_paused = 0;
        event_add(c->rev, NULL);
        process_input(c);
        if (out_pending(c)) schedule(c);
    }
}

/*
 * Runs once per loop pass after the read callbacks (it is activated by them,
 * so libevent queues it behind them): log appends, then the AOF, then replies.
 */
static void before_sleep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kv_server_t *s = arg;
    kv_conn_t *list = s->pending;
    s->pending = NULL;
    s->flush_scheduled = 0;
    int always = s->aof && kv_aof_policy(s->aof) == KV_FSYNC_ALWAYS;
    expired_events_flush(s, always);
    int aof_failed = s->aof && kv_aof_flush(s->aof) < 0 && always;
    while (list) {
        kv_conn_t *c = list;
        list = c->pnext;
        c->pnext = NULL;
        c->in_pending = 0;
        if (c->closing) {
            conn_free(c);
            continue;
        }
        if (aof_failed) {
            /* Their changes are not durable: acknowledge nothing. */
            sk_warn("kv", "%s: closing connection: the AOF could not be written", c->peer);
            conn_free(c);
            continue;
        }
        if (conn_write(c) < 0) {
            conn_free(c);
            continue;
        }
        conn_after_write(c);
    }
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kv_conn_t *c = arg;
    if (c->closing) return;
    if (conn_write(c) < 0) {
        conn_close_asap(c);
        return;
    }
    conn_after_write(c);
}

/* ---- input and dispatch ---------------------------------------------------------- */

static const kv_cmd_t *lookup_cmd(kv_server_t *s, const kv_arg_t *name)
{
    char low[32];
    if (name->len == 0 || name->len >= sizeof low) return NULL;
    for (size_t i = 0; i < name->len; i++) low[i] = (char)tolower((unsigned char)name->p[i]);
    return sk_map_get(&s->cmds, low, name->len);
}

static int in_pubsub_context(const kv_conn_t *c)
{
    return (c->chans && sk_map_count(c->chans) > 0) || c->npats > 0;
}

static void dispatch(kv_conn_t *c, const kv_arg_t *argv, size_t argc)
{
    kv_server_t *s = c->srv;
    s->stat_cmds++;
    const kv_cmd_t *cmd = lookup_cmd(s, &argv[0]);
    if (!cmd) {
        sk_buf_t *m = &s->scratch;
        sk_buf_reset(m);
        sk_buf_addf(m, "ERR unknown command '%.*s', with args beginning with: ", arg_fmt_len(&argv[0], 128),
                    argv[0].p);
        size_t args_start = m->len;
        for (size_t i = 1; i < argc && m->len - args_start < 128; i++)
            sk_buf_addf(m, "'%.*s' ", arg_fmt_len(&argv[i], 128 - (m->len - args_start)), argv[i].p);
        kv_reply_error(&c->out, m->data);
        return;
    }
    c->last_cmd = cmd->name;
    if ((cmd->arity > 0 && (size_t)cmd->arity != argc) || (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        reply_arity(c, cmd->name);
        return;
    }
    if (s->password && !c->authed && !(cmd->flags & F_NOAUTH)) {
        kv_reply_error(&c->out, "NOAUTH Authentication required.");
        return;
    }
    if (in_pubsub_context(c) && !(cmd->flags & F_PUBSUB)) {
        kv_reply_errorf(&c->out,
                        "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                        "allowed in this context",
                        cmd->name);
        return;
    }
    if ((cmd->flags & F_DENYOOM) && s->maxmemory > 0 && used_memory(s) > (size_t)s->maxmemory) {
        kv_reply_error(&c->out, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    if ((cmd->flags & F_WRITE) && s->aof) {
        kv_aof_stats_t st;
        kv_aof_stats(s->aof, &st);
        if (!st.last_write_ok) {
            kv_reply_errorf(&c->out, "MISCONF Errors writing to the AOF file: %s", st.last_error);
            return;
        }
    }
    cmd->fn(c, argv, argc);
}

static void process_input(kv_conn_t *c)
{
    kv_server_t *s = c->srv;
    while (!c->closing && !c->close_after && c->in_off < c->in.len) {
        if (out_pending(c) > OUTPUT_PAUSE) {
            c->read_paused = 1;
            event_del(c->rev);
            break;
        }
        kv_resp_result_t r = kv_resp_parse(&c->parser, c->in.data + c->in_off, c->in.len - c->in_off);
        if (r == KV_RESP_AGAIN) break;
        if (r == KV_RESP_ERROR) {
            s->stat_proto_errors++;
            sk_info("kv", "%s: closing connection: %s", c->peer, c->parser.err);
            kv_reply_errorf(&c->out, "ERR %s", c->parser.err);
            c->close_after = 1;
            event_del(c->rev);
            kv_parser_reset(&c->parser);
            c->in.len = c->in_off = 0;
            break;
        }
        c->in_off += c->parser.consumed;
        if (c->parser.argc > 0) dispatch(c, c->parser.argv, c->parser.argc);
    }
    if (c->in_off == c->in.len) {
        c->in.len = c->in_off = 0;
        if (c->in.cap > (1u << 20)) {
            sk_buf_release(&c->in);
            sk_buf_init(&c->in, 0);
        }
    } else if (c->in_off > 0) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in.data) c->in.data[c->in.len] = '\0';
    arm_expire(s);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    kv_conn_t *c = arg;
    if (c->closing) return;
    size_t want = READ_CHUNK, need = kv_parser_need(&c->parser, c->in.len - c->in_off);
    if (need > want) want = need > (64u << 20) ? (64u << 20) : need;
    sk_buf_grow(&c->in, want);
    ssize_t n = read(fd, c->in.data + c->in.len, want);
    if (n == 0) {
        conn_close_asap(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        sk_debug("kv", "%s: read: %s", c->peer, strerror(errno));
        conn_close_asap(c);
        return;
    }
    c->in.len += (size_t)n;
    c->in.data[c->in.len] = '\0';
    c->last_ms = sk_mono_ms();
    if ((long long)(c->in.len - c->in_off) > QUERYBUF_MAX) {
        sk_warn("kv", "%s: closing connection: query buffer of %zu bytes exceeds the 1 GiB limit", c->peer,
                c->in.len - c->in_off);
        conn_close_asap(c);
        return;
    }
    process_input(c);
    if (out_pending(c) || c->close_after) schedule(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)salen;
    kv_server_t *s = arg;
    if (s->b->shutting_down) {
        evutil_closesocket(fd);
        return;
    }
    kv_conn_t *c = sk_calloc(1, sizeof *c);
    c->srv = s;
    c->fd = fd;
    c->id = ++s->next_id;
    c->authed = s->password == NULL;
    c->created_ms = c->last_ms = sk_mono_ms();
    sk_net_format(sa, c->peer, sizeof c->peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evutil_make_socket_nonblocking(fd);
    kv_parser_init(&c->parser, NULL);
    sk_buf_init(&c->in, 0);
    sk_buf_init(&c->out, 0);
    c->rev = event_new(s->b->base, fd, EV_READ | EV_PERSIST, read_cb, c);
    c->wev = event_new(s->b->base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
    event_add(c->rev, NULL);
    c->next = s->conns;
    if (c->next) c->next->prev = c;
    s->conns = c;
    s->nconns++;
    s->stat_conns++;
    sk_debug("kv", "%s: connected (id %llu)", c->peer, (unsigned long long)c->id);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    sk_error("kv", "accept failed: %s", strerror(errno));
}

/* ---- connection commands ------------------------------------------------------------ */

static void cmd_ping(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    if (n > 2) {
        reply_arity(c, "ping");
        return;
    }
    if (in_pubsub_context(c)) {
        sk_buf_add(&c->out, "*2\r\n$4\r\npong\r\n", 14);
        if (n == 2) kv_reply_bulk(&c->out, a[1].p, a[1].len);
        else kv_reply_bulk(&c->out, "", 0);
        return;
    }
    if (n == 2) kv_reply_bulk(&c->out, a[1].p, a[1].len);
    else sk_buf_add(&c->out, "+PONG\r\n", 7);
}

static void cmd_echo(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    kv_reply_bulk(&c->out, a[1].p, a[1].len);
}

static void cmd_quit(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)a;
    (void)n;
    reply_ok(c);
    c->close_after = 1;
    event_del(c->rev);
}

static void cmd_select(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    long long db;
    if (kv_parse_ll(a[1].p, a[1].len, &db) < 0 || db < INT_MIN || db > INT_MAX) reply_not_int(c);
    else if (db != 0) kv_reply_error(&c->out, "ERR DB index is out of range");
    else reply_ok(c);
}

/* Constant-time comparison of a password attempt. */
static int password_ok(const kv_server_t *s, const kv_arg_t *user, const kv_arg_t *pass)
{
    if (user && !arg_is(user, "default")) return 0;
    if (!s->password) return 1;
    size_t n = strlen(s->password);
    unsigned diff = pass->len != n;
    for (size_t i = 0; i < pass->len; i++) diff |= (unsigned char)pass->p[i] ^ (unsigned char)s->password[i % (n ? n : 1)];
    return diff == 0;
}

static void cmd_auth(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    if (n > 3) {
        reply_syntax(c);
        return;
    }
    if (n == 2 && !s->password) {
        kv_reply_error(&c->out, "ERR AUTH <password> called without any password configured for the default user. "
                                "Are you sure your configuration is correct?");
        return;
    }
    if (password_ok(s, n == 3 ? &a[1] : NULL, &a[n - 1])) {
        c->authed = 1;
        reply_ok(c);
    } else {
        kv_reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
    }
}

static int valid_client_name(const kv_arg_t *a)
{
    for (size_t i = 0; i < a->len; i++)
        if (a->p[i] < '!' || a->p[i] > '~') return 0;
    return 1;
}

static void set_client_name(kv_conn_t *c, const kv_arg_t *a)
{
    free(c->name);
    c->name = a->len ? sk_strndup(a->p, a->len) : NULL;
}

static void cmd_hello(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    const kv_arg_t *user = NULL, *pass = NULL, *name = NULL;
    if (n >= 2) {
        long long ver;
        if (kv_parse_ll(a[1].p, a[1].len, &ver) < 0) {
            kv_reply_error(&c->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver != 2) { /* RESP3 is not spoken */
            kv_reply_error(&c->out, "NOPROTO unsupported protocol version");
            return;
        }
    }
    for (size_t i = 2; i < n; i++) {
        if (arg_is(&a[i], "AUTH") && i + 2 < n) {
            user = &a[i + 1];
            pass = &a[i + 2];
            i += 2;
        } else if (arg_is(&a[i], "SETNAME") && i + 1 < n) {
            name = &a[i + 1];
            i++;
        } else {
            kv_reply_errorf(&c->out, "ERR Syntax error in HELLO option '%.*s'", arg_fmt_len(&a[i], 128), a[i].p);
            return;
        }
    }
    if (pass) {
        if (!password_ok(s, user, pass)) {
            kv_reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
            return;
        }
        c->authed = 1;
    }
    if (!c->authed) {
        kv_reply_error(&c->out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                                "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
                                "select the RESP protocol version at the same time");
        return;
    }
    if (name) {
        if (!valid_client_name(name)) {
            kv_reply_error(&c->out, "ERR Client names cannot contain spaces, newlines or special characters.");
            return;
        }
        set_client_name(c, name);
    }
    kv_reply_array(&c->out, 14);
    kv_reply_bulks(&c->out, "server");
    kv_reply_bulks(&c->out, "redis");
    kv_reply_bulks(&c->out, "version");
    kv_reply_bulks(&c->out, KV_VERSION);
    kv_reply_bulks(&c->out, "proto");
    kv_reply_int(&c->out, 2);
    kv_reply_bulks(&c->out, "id");
    kv_reply_int(&c->out, (long long)c->id);
    kv_reply_bulks(&c->out, "mode");
    kv_reply_bulks(&c->out, "standalone");
    kv_reply_bulks(&c->out, "role");
    kv_reply_bulks(&c->out, "master");
    kv_reply_bulks(&c->out, "modules");
    kv_reply_array(&c->out, 0);
}

static void client_info_line(kv_conn_t *c, sk_buf_t *o)
{
    int64_t now = sk_mono_ms();
    sk_buf_addf(o,
                "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=0 sub=%zu psub=%zu multi=-1 "
                "qbuf=%zu qbuf-free=%zu obl=0 oll=0 omem=%zu events=r cmd=%s user=default resp=2\n",
                (unsigned long long)c->id, c->peer, c->srv->address, (int)c->fd, c->name ? c->name : "",
                (long long)((now - c->created_ms) / 1000), (long long)((now - c->last_ms) / 1000),
                in_pubsub_context(c) ? "P" : "N", c->chans ? sk_map_count(c->chans) : 0, c->npats,
                c->in.len - c->in_off, c->in.cap - c->in.len, out_pending(c), c->last_cmd ? c->last_cmd : "NULL");
}

static void cmd_client(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    const kv_arg_t *sub = &a[1];
    if (arg_is(sub, "SETNAME")) {
        if (n != 3) {
        reply_arity(c, "client|setname");
        return;
    }
        if (!valid_client_name(&a[2])) {
            kv_reply_error(&c->out, "ERR Client names cannot contain spaces, newlines or special characters.");
            return;
        }
        set_client_name(c, &a[2]);
        reply_ok(c);
    } else if (arg_is(sub, "GETNAME")) {
        if (n != 2) {
        reply_arity(c, "client|getname");
        return;
    }
        if (c->name) kv_reply_bulks(&c->out, c->name);
        else kv_reply_nil(&c->out);
    } else if (arg_is(sub, "ID")) {
        if (n != 2) {
        reply_arity(c, "client|id");
        return;
    }
        kv_reply_int(&c->out, (long long)c->id);
    } else if (arg_is(sub, "INFO")) {
        if (n != 2) {
        reply_arity(c, "client|info");
        return;
    }
        sk_buf_t b;
        sk_buf_init(&b, 256);
        client_info_line(c, &b);
        kv_reply_bulk(&c->out, b.data, b.len);
        sk_buf_release(&b);
    } else if (arg_is(sub, "LIST")) {
        sk_buf_t b;
        sk_buf_init(&b, 256);
        for (kv_conn_t *x = c->srv->conns; x; x = x->next) client_info_line(x, &b);
        kv_reply_bulk(&c->out, b.data, b.len);
        sk_buf_release(&b);
    } else if (arg_is(sub, "HELP")) {
        static const char *const lines[] = {"CLIENT <subcommand> [<arg> ...]. Subcommands are:",
                                            "GETNAME", "    Return the name of the current connection.",
                                            "ID", "    Return the ID of the current connection.",
                                            "INFO", "    Return information about the current client connection.",
                                            "LIST", "    Return information about client connections.",
                                            "SETNAME <name>", "    Assign the name <name> to the current connection.",
                                            "HELP", "    Print this help."};
        kv_reply_array(&c->out, (long long)(sizeof lines / sizeof lines[0]));
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) kv_reply_status(&c->out, lines[i]);
    } else {
        reply_unknown_subcommand(c, sub, "CLIENT");
    }
}

static void cmd_reset(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)a;
    (void)n;
    pubsub_unsubscribe_all(c, 0);
    pubsub_punsubscribe_all(c, 0);
    free(c->name);
    c->name = NULL;
    c->authed = c->srv->password == NULL;
    kv_reply_status(&c->out, "RESET");
}

/* ---- server commands ------------------------------------------------------------ */

static void cmd_time(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)a;
    (void)n;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    kv_reply_array(&c->out, 2);
    kv_reply_bulk_ll(&c->out, (long long)tv.tv_sec);
    kv_reply_bulk_ll(&c->out, (long long)tv.tv_usec);
}

static void cmd_dbsize(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)a;
    (void)n;
    kv_reply_int(&c->out, (long long)kv_store_count(c->srv->store));
}

static void cmd_flushall(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    if (n > 2 || (n == 2 && !arg_is(&a[1], "ASYNC") && !arg_is(&a[1], "SYNC"))) {
        reply_syntax(c);
        return;
    }
    kv_store_flush(s->store);
    if (s->aof) kv_aof_add_flushall(s->aof);
    reply_ok(c);
}

static void cmd_bgrewriteaof(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)a;
    (void)n;
    kv_server_t *s = c->srv;
    kv_aof_stats_t st;
    kv_aof_stats(s->aof, &st);
    if (st.rewriting) {
        kv_reply_error(&c->out, "ERR Background append only file rewriting already in progress");
    } else if (kv_aof_rewrite_start(s->aof, s->store) < 0) {
        kv_reply_error(&c->out, "ERR Can't execute an AOF background rewriting. Please check the server logs for "
                                "more information.");
    } else {
        if (!evtimer_pending(s->rewrite_ev, NULL)) arm_timer(s->rewrite_ev, 0);
        kv_reply_status(&c->out, "Background append only file rewriting started");
    }
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu %llu", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static void human_bytes(char *out, size_t outsz, double n)
{
    if (n < 1024) snprintf(out, outsz, "%.0fB", n);
    else if (n < 1024.0 * 1024) snprintf(out, outsz, "%.2fK", n / 1024);
    else if (n < 1024.0 * 1024 * 1024) snprintf(out, outsz, "%.2fM", n / (1024.0 * 1024));
    else snprintf(out, outsz, "%.2fG", n / (1024.0 * 1024 * 1024));
}

static int want_section(const kv_arg_t *a, size_t n, const char *name, int in_default)
{
    if (n < 2) return in_default;
    for (size_t i = 1; i < n; i++) {
        if (arg_is(&a[i], name) || arg_is(&a[i], "all") || arg_is(&a[i], "everything")) return 1;
        if (arg_is(&a[i], "default") && in_default) return 1;
    }
    return 0;
}

static void cmd_info(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    sk_buf_t o;
    sk_buf_init(&o, 2048);
    int64_t up = (sk_mono_ms() - s->start_ms) / 1000;
    if (want_section(a, n, "server", 1)) {
        sk_buf_addf(&o,
                    "# Server\r\nredis_version:%s\r\nsouk_version:%s\r\nredis_mode:standalone\r\nos:Linux\r\n"
                    "arch_bits:%d\r\nmultiplexing_api:libevent\r\nprocess_id:%ld\r\ntcp_port:%d\r\n"
                    "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\nhz:10\r\n\r\n",
                    KV_VERSION, SOUK_VERSION, (int)(sizeof(void *) * 8), (long)getpid(), s->port, (long long)up,
                    (long long)(up / 86400));
    }
    if (want_section(a, n, "clients", 1)) {
        size_t subs = 0;
        for (kv_conn_t *x = s->conns; x; x = x->next) subs += in_pubsub_context(x);
        sk_buf_addf(&o, "# Clients\r\nconnected_clients:%zu\r\nblocked_clients:0\r\npubsub_clients:%zu\r\n\r\n",
                    s->nconns, subs);
    }
    if (want_section(a, n, "memory", 1)) {
        char h1[32], h2[32], h3[32], h4[32];
        size_t used = used_memory(s), rss = rss_bytes();
        if (used > s->peak_mem) s->peak_mem = used;
        human_bytes(h1, sizeof h1, (double)used);
        human_bytes(h2, sizeof h2, (double)rss);
        human_bytes(h3, sizeof h3, (double)s->peak_mem);
        human_bytes(h4, sizeof h4, (double)s->maxmemory);
        sk_buf_addf(&o,
                    "# Memory\r\nused_memory:%zu\r\nused_memory_human:%s\r\nused_memory_rss:%zu\r\n"
                    "used_memory_rss_human:%s\r\nused_memory_peak:%zu\r\nused_memory_peak_human:%s\r\n"
                    "used_memory_dataset:%zu\r\nmaxmemory:%lld\r\nmaxmemory_human:%s\r\n"
                    "maxmemory_policy:noeviction\r\n\r\n",
                    used, h1, rss, h2, s->peak_mem, h3, kv_store_memory(s->store), (long long)s->maxmemory, h4);
    }
    if (want_section(a, n, "persistence", 1) && s->aof) {
        kv_aof_stats_t st;
        kv_aof_stats(s->aof, &st);
        sk_buf_addf(&o,
                    "# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrite_in_progress:%d\r\n"
                    "aof_last_write_status:%s\r\naof_current_size:%lld\r\naof_base_size:%lld\r\n"
                    "aof_buffer_length:%zu\r\naof_rewrites:%lld\r\naof_fsync:%s\r\n\r\n",
                    st.rewriting, st.last_write_ok ? "ok" : "err", (long long)st.size, (long long)st.base_size,
                    st.buffered, (long long)st.rewrites, kv_fsync_name(kv_aof_policy(s->aof)));
    }
    if (want_section(a, n, "stats", 1)) {
        sk_buf_addf(&o,
                    "# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                    "rejected_connections:%llu\r\nexpired_keys:%llu\r\nevicted_keys:0\r\nkeyspace_hits:%llu\r\n"
                    "keyspace_misses:%llu\r\npubsub_channels:%zu\r\npubsub_patterns:%zu\r\n"
                    "total_error_replies:0\r\nprotocol_errors:%llu\r\nkv_expired_events_appended:%llu\r\n"
                    "kv_expired_events_failed:%llu\r\n\r\n",
                    (unsigned long long)s->stat_conns, (unsigned long long)s->stat_cmds,
                    (unsigned long long)s->stat_rejected, (unsigned long long)s->stat_expired,
                    (unsigned long long)s->stat_hits, (unsigned long long)s->stat_misses, sk_map_count(&s->channels),
                    s->npats, (unsigned long long)s->stat_proto_errors, (unsigned long long)s->stat_events,
                    (unsigned long long)s->stat_events_failed);
    }
    if (want_section(a, n, "keyspace", 1)) {
        sk_buf_adds(&o, "# Keyspace\r\n");
        if (kv_store_count(s->store))
            sk_buf_addf(&o, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", kv_store_count(s->store),
                        kv_store_expires(s->store));
        sk_buf_adds(&o, "\r\n");
    }
    /* Sections end with an empty line except the last, as Redis. */
    if (o.len >= 2) o.len -= 2;
    o.data[o.len] = '\0';
    kv_reply_bulk(&c->out, o.data, o.len);
    sk_buf_release(&o);
}

/* ---- CONFIG ----------------------------------------------------------------------- */

typedef struct conf_param_s {
    const char *name;
    int settable;
} conf_param_t;

static const conf_param_t conf_params[] = {
    {"notify-keyspace-events", 1}, {"maxmemory", 1},  {"maxmemory-policy", 1}, {"appendonly", 1},
    {"appendfsync", 1},            {"save", 1},       {"requirepass", 1},      {"databases", 0},
    {"proto-max-bulk-len", 0},     {"client-query-buffer-limit", 0}, {"port", 0}, {"bind", 0},
    {"hz", 0},                     {"timeout", 0},    {"maxclients", 0},
};

static void conf_value(kv_server_t *s, const char *name, sk_buf_t *v)
{
    sk_buf_reset(v);
    if (!strcmp(name, "notify-keyspace-events")) {
        char f[32];
        notify_flags_str(s->notify, f);
        sk_buf_adds(v, f);
    } else if (!strcmp(name, "maxmemory")) {
        sk_buf_addf(v, "%lld", (long long)s->maxmemory);
    } else if (!strcmp(name, "maxmemory-policy")) {
        sk_buf_adds(v, "noeviction");
    } else if (!strcmp(name, "appendonly")) {
        sk_buf_adds(v, "yes");
    } else if (!strcmp(name, "appendfsync")) {
        sk_buf_adds(v, kv_fsync_name(kv_aof_policy(s->aof)));
    } else if (!strcmp(name, "requirepass")) {
        sk_buf_adds(v, s->password ? s->password : "");
    } else if (!strcmp(name, "databases")) {
        sk_buf_adds(v, "1");
    } else if (!strcmp(name, "proto-max-bulk-len")) {
        sk_buf_addf(v, "%lld", KV_RESP_MAX_BULK);
    } else if (!strcmp(name, "client-query-buffer-limit")) {
        sk_buf_addf(v, "%lld", QUERYBUF_MAX);
    } else if (!strcmp(name, "port")) {
        sk_buf_addf(v, "%d", s->port);
    } else if (!strcmp(name, "bind")) {
        const char *colon = strrchr(s->address, ':');
        sk_buf_add(v, s->address, colon ? (size_t)(colon - s->address) : strlen(s->address));
    } else if (!strcmp(name, "hz")) {
        sk_buf_adds(v, "10");
    } else if (!strcmp(name, "timeout")) {
        sk_buf_adds(v, "0");
    } else if (!strcmp(name, "maxclients")) {
        sk_buf_adds(v, "10000");
    }
}

/* Redis's memory values: 1, 100mb, 1gb, 64k (k = 1000, kb = 1024). */
static int parse_memory(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0) return -1;
    long long mul = 1;
    if (!strcasecmp(end, "") || !strcasecmp(end, "b")) mul = 1;
    else if (!strcasecmp(end, "k")) mul = 1000;
    else if (!strcasecmp(end, "kb")) mul = 1024;
    else if (!strcasecmp(end, "m")) mul = 1000 * 1000;
    else if (!strcasecmp(end, "mb")) mul = 1024 * 1024;
    else if (!strcasecmp(end, "g")) mul = 1000LL * 1000 * 1000;
    else if (!strcasecmp(end, "gb")) mul = 1024LL * 1024 * 1024;
    else return -1;
    if (v > LLONG_MAX / mul) return -1;
    *out = v * mul;
    return 0;
}

static void cmd_config(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    size_t np = sizeof conf_params / sizeof conf_params[0];
    if (arg_is(&a[1], "GET")) {
        if (n < 3) {
        reply_arity(c, "config|get");
        return;
    }
        sk_buf_t v;
        sk_buf_init(&v, 64);
        size_t count = 0;
        const char *hit[sizeof conf_params / sizeof conf_params[0]];
        for (size_t i = 0; i < np; i++) {
            for (size_t k = 2; k < n; k++) {
                if (kv_glob_match(a[k].p, a[k].len, conf_params[i].name, strlen(conf_params[i].name), 1)) {
                    hit[count++] = conf_params[i].name;
                    break;
                }
            }
        }
        kv_reply_array(&c->out, (long long)count * 2);
        for (size_t i = 0; i < count; i++) {
            conf_value(s, hit[i], &v);
            kv_reply_bulks(&c->out, hit[i]);
            kv_reply_bulk(&c->out, v.data, v.len);
        }
        sk_buf_release(&v);
    } else if (arg_is(&a[1], "SET")) {
        if (n < 4 || n % 2) {
        reply_arity(c, "config|set");
        return;
    }
        /* Check every pair first: CONFIG SET is all or nothing. */
        for (int apply = 0; apply < 2; apply++) {
            for (size_t k = 2; k + 1 < n; k += 2) {
                const conf_param_t *p = NULL;
                for (size_t i = 0; i < np; i++)
                    if (arg_is(&a[k], conf_params[i].name) && conf_params[i].settable) p = &conf_params[i];
                if (!p) {
                    kv_reply_errorf(&c->out, "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
                                    arg_fmt_len(&a[k], 128), a[k].p);
                    return;
                }
                char val[256];
                snprintf(val, sizeof val, "%.*s", (int)(a[k + 1].len < 255 ? a[k + 1].len : 255), a[k + 1].p);
                const char *why = NULL;
                if (!strcmp(p->name, "notify-keyspace-events")) {
                    int f = notify_flags_parse(a[k + 1].p, a[k + 1].len);
                    if (f < 0) why = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";
                    else if (apply) s->notify = f;
                } else if (!strcmp(p->name, "maxmemory")) {
                    long long m;
                    if (parse_memory(val, &m) < 0) why = "argument must be a memory value";
                    else if (apply) s->maxmemory = m;
                } else if (!strcmp(p->name, "maxmemory-policy")) {
                    if (strcasecmp(val, "noeviction")) why = "argument(s) must be one of the following: noeviction";
                } else if (!strcmp(p->name, "appendonly")) {
                    if (strcasecmp(val, "yes")) why = "the key store always keeps its append-only file";
                } else if (!strcmp(p->name, "appendfsync")) {
                    int f = kv_fsync_parse(val);
                    if (f < 0) why = "argument(s) must be one of the following: everysec, always, no";
                    else if (apply) kv_aof_set_policy(s->aof, (kv_fsync_t)f);
                } else if (!strcmp(p->name, "requirepass")) {
                    if (apply) {
                        free(s->password);
                        s->password = a[k + 1].len ? sk_strndup(a[k + 1].p, a[k + 1].len) : NULL;
                    }
                } /* save: accepted and ignored (the key store never snapshots) */
                if (why) {
                    kv_reply_errorf(&c->out, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", p->name,
                                    why);
                    return;
                }
            }
        }
        reply_ok(c);
    } else if (arg_is(&a[1], "RESETSTAT")) {
        if (n != 2) {
        reply_arity(c, "config|resetstat");
        return;
    }
        s->stat_cmds = s->stat_conns = s->stat_expired = s->stat_hits = s->stat_misses = s->stat_rejected = 0;
        s->stat_proto_errors = 0;
        reply_ok(c);
    } else if (arg_is(&a[1], "REWRITE")) {
        kv_reply_error(&c->out, "ERR The server is running without a config file");
    } else if (arg_is(&a[1], "HELP")) {
        static const char *const lines[] = {"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                                            "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
                                            "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
                                            "RESETSTAT", "    Reset statistics reported by the INFO command.",
                                            "HELP", "    Print this help."};
        kv_reply_array(&c->out, (long long)(sizeof lines / sizeof lines[0]));
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) kv_reply_status(&c->out, lines[i]);
    } else {
        reply_unknown_subcommand(c, &a[1], "CONFIG");
    }
}

/* ---- COMMAND ----------------------------------------------------------------------- */

static void command_flags(sk_buf_t *o, unsigned f)
{
    const char *names[8];
    size_t n = 0;
    if (f & F_WRITE) names[n++] = "write";
    if (f & F_READONLY) names[n++] = "readonly";
    if (f & F_DENYOOM) names[n++] = "denyoom";
    if (f & F_ADMIN) names[n++] = "admin";
    if (f & F_PUBSUB) names[n++] = "pubsub";
    if (f & F_NOSCRIPT) names[n++] = "noscript";
    if (f & F_NOAUTH) names[n++] = "no_auth";
    if (f & F_FAST) names[n++] = "fast";
    kv_reply_array(o, (long long)n);
    for (size_t i = 0; i < n; i++) kv_reply_status(o, names[i]);
}

static void command_info(sk_buf_t *o, const kv_cmd_t *cmd)
{
    kv_reply_array(o, 10);
    kv_reply_bulks(o, cmd->name);
    kv_reply_int(o, cmd->arity);
    command_flags(o, cmd->flags);
    kv_reply_int(o, cmd->first_key);
    kv_reply_int(o, cmd->last_key);
    kv_reply_int(o, cmd->key_step);
    kv_reply_array(o, 1);
    char cat[32];
    snprintf(cat, sizeof cat, "@%s", cmd->group);
    kv_reply_status(o, cat);
    kv_reply_array(o, 0); /* tips */
    kv_reply_array(o, 0); /* key specs */
    kv_reply_array(o, 0); /* subcommands */
}

static void command_docs(sk_buf_t *o, const kv_cmd_t *cmd)
{
    kv_reply_bulks(o, cmd->name);
    kv_reply_array(o, 6);
    kv_reply_bulks(o, "summary");
    kv_reply_bulks(o, cmd->summary);
    kv_reply_bulks(o, "since");
    kv_reply_bulks(o, cmd->since);
    kv_reply_bulks(o, "group");
    kv_reply_bulks(o, cmd->group);
}

static void cmd_command(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    size_t ncmds;
    const kv_cmd_t *t = cmd_table(&ncmds);
    if (n == 1) {
        kv_reply_array(&c->out, (long long)ncmds);
        for (size_t i = 0; i < ncmds; i++) command_info(&c->out, &t[i]);
    } else if (arg_is(&a[1], "COUNT")) {
        if (n != 2) {
        reply_arity(c, "command|count");
        return;
    }
        kv_reply_int(&c->out, (long long)ncmds);
    } else if (arg_is(&a[1], "INFO")) {
        if (n == 2) {
            kv_reply_array(&c->out, (long long)ncmds);
            for (size_t i = 0; i < ncmds; i++) command_info(&c->out, &t[i]);
            return;
        }
        kv_reply_array(&c->out, (long long)(n - 2));
        for (size_t k = 2; k < n; k++) {
            const kv_cmd_t *cmd = lookup_cmd(c->srv, &a[k]);
            if (cmd) command_info(&c->out, cmd);
            else kv_reply_nil_array(&c->out);
        }
    } else if (arg_is(&a[1], "DOCS")) {
        if (n == 2) {
            kv_reply_array(&c->out, (long long)ncmds * 2);
            for (size_t i = 0; i < ncmds; i++) command_docs(&c->out, &t[i]);
            return;
        }
        size_t found = 0;
        for (size_t k = 2; k < n; k++) found += lookup_cmd(c->srv, &a[k]) != NULL;
        kv_reply_array(&c->out, (long long)found * 2);
        for (size_t k = 2; k < n; k++) {
            const kv_cmd_t *cmd = lookup_cmd(c->srv, &a[k]);
            if (cmd) command_docs(&c->out, cmd);
        }
    } else if (arg_is(&a[1], "HELP")) {
        static const char *const lines[] = {"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                                            "(no subcommand)", "    Return details about all commands.",
                                            "COUNT", "    Return the total number of commands in this server.",
                                            "DOCS [<command-name> ...]", "    Return documentation details about commands.",
                                            "INFO [<command-name> ...]", "    Return details about the given commands.",
                                            "HELP", "    Print this help."};
        kv_reply_array(&c->out, (long long)(sizeof lines / sizeof lines[0]));
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) kv_reply_status(&c->out, lines[i]);
    } else {
        reply_unknown_subcommand(c, &a[1], "COMMAND");
    }
}

/* ---- string commands ------------------------------------------------------------ */

/* Looks a key up for reading, counting hits and misses. */
static kv_entry_t *lookup_read(kv_server_t *s, const kv_arg_t *k)
{
    kv_entry_t *e = kv_store_get(s->store, k->p, k->len);
    if (e) {
        s->stat_hits++;
    } else {
        s->stat_misses++;
        notify(s, N_KEYMISS, "keymiss", k->p, k->len);
    }
    return e;
}

static void propagate_set(kv_server_t *s, const kv_entry_t *e)
{
    if (s->aof)
        kv_aof_add_set(s->aof, kv_entry_key(e), e->klen, kv_entry_val(e), e->vlen, kv_store_deadline(s->store, e));
}

static void propagate_del(kv_server_t *s, const char *key, size_t klen)
{
    if (s->aof) kv_aof_add_del(s->aof, key, klen);
}

static void cmd_get(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    kv_entry_t *e = lookup_read(c->srv, &a[1]);
    if (e) kv_reply_bulk(&c->out, kv_entry_val(e), e->vlen);
    else kv_reply_nil(&c->out);
}

enum { SET_NX = 1, SET_XX = 2, SET_GET = 4, SET_KEEPTTL = 8, SET_EX = 16, SET_PX = 32, SET_EXAT = 64, SET_PXAT = 128 };

static void cmd_set(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    unsigned f = 0;
    const kv_arg_t *exp = NULL;
    const unsigned any_exp = SET_EX | SET_PX | SET_EXAT | SET_PXAT;
    for (size_t i = 3; i < n; i++) {
        const kv_arg_t *o = &a[i];
        int has_next = i + 1 < n;
        if (arg_is(o, "NX") && !(f & SET_XX)) f |= SET_NX;
        else if (arg_is(o, "XX") && !(f & SET_NX)) f |= SET_XX;
        else if (arg_is(o, "GET")) f |= SET_GET;
        else if (arg_is(o, "KEEPTTL") && !(f & any_exp)) f |= SET_KEEPTTL;
        else if (has_next && !(f & (any_exp | SET_KEEPTTL)) &&
                 (arg_is(o, "EX") || arg_is(o, "PX") || arg_is(o, "EXAT") || arg_is(o, "PXAT"))) {
            f |= arg_is(o, "EX") ? SET_EX : arg_is(o, "PX") ? SET_PX : arg_is(o, "EXAT") ? SET_EXAT : SET_PXAT;
            exp = &a[++i];
        } else {
            reply_syntax(c);
            return;
        }
    }
    int64_t deadline = (f & SET_KEEPTTL) ? KV_KEEP_DEADLINE : KV_NO_DEADLINE;
    if (exp) {
        long long v;
        if (kv_parse_ll(exp->p, exp->len, &v) < 0) {
            reply_not_int(c);
            return;
        }
        int secs = (f & (SET_EX | SET_EXAT)) != 0;
        if (v <= 0 || (secs && v > LLONG_MAX / 1000)) {
            kv_reply_error(&c->out, "ERR invalid expire time in 'set' command");
            return;
        }
        if (secs) v *= 1000;
        if (f & (SET_EX | SET_PX)) {
            int64_t now = now_ms(s);
            if (v > LLONG_MAX - now) {
                kv_reply_error(&c->out, "ERR invalid expire time in 'set' command");
                return;
            }
            v += now;
        }
        deadline = v;
    }
    kv_entry_t *old = kv_store_get(s->store, a[1].p, a[1].len);
    if (f & SET_GET) {
        if (old) kv_reply_bulk(&c->out, kv_entry_val(old), old->vlen);
        else kv_reply_nil(&c->out);
    }
    if (((f & SET_NX) && old) || ((f & SET_XX) && !old)) {
        if (!(f & SET_GET)) kv_reply_nil(&c->out);
        return;
    }
    int created;
    kv_entry_t *e = kv_store_set(s->store, a[1].p, a[1].len, a[2].p, a[2].len, deadline, &created);
    propagate_set(s, e);
    if (created) notify(s, N_NEW, "new", a[1].p, a[1].len);
    notify(s, N_STRING, "set", a[1].p, a[1].len);
    if (exp) notify(s, N_GENERIC, "expire", a[1].p, a[1].len);
    if (!(f & SET_GET)) reply_ok(c);
}

static void cmd_getdel(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    kv_server_t *s = c->srv;
    kv_entry_t *e = lookup_read(s, &a[1]);
    if (!e) {
        kv_reply_nil(&c->out);
        return;
    }
    kv_reply_bulk(&c->out, kv_entry_val(e), e->vlen);
    kv_store_del(s->store, a[1].p, a[1].len);
    propagate_del(s, a[1].p, a[1].len);
    notify(s, N_GENERIC, "del", a[1].p, a[1].len);
}

static void cmd_mget(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_reply_array(&c->out, (long long)(n - 1));
    for (size_t i = 1; i < n; i++) {
        kv_entry_t *e = lookup_read(c->srv, &a[i]);
        if (e) kv_reply_bulk(&c->out, kv_entry_val(e), e->vlen);
        else kv_reply_nil(&c->out);
    }
}

static void cmd_mset(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    if (n % 2 == 0) {
        reply_arity(c, "mset");
        return;
    }
    for (size_t i = 1; i < n; i += 2) {
        int created;
        kv_entry_t *e = kv_store_set(s->store, a[i].p, a[i].len, a[i + 1].p, a[i + 1].len, KV_NO_DEADLINE, &created);
        propagate_set(s, e);
        if (created) notify(s, N_NEW, "new", a[i].p, a[i].len);
        notify(s, N_STRING, "set", a[i].p, a[i].len);
    }
    reply_ok(c);
}

static void cmd_del(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    long long deleted = 0;
    for (size_t i = 1; i < n; i++) {
        if (kv_store_del(s->store, a[i].p, a[i].len)) {
            deleted++;
            propagate_del(s, a[i].p, a[i].len);
            notify(s, N_GENERIC, "del", a[i].p, a[i].len);
        }
    }
    kv_reply_int(&c->out, deleted);
}

static void cmd_exists(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    long long count = 0;
    for (size_t i = 1; i < n; i++) count += kv_store_get(c->srv->store, a[i].p, a[i].len) != NULL;
    kv_reply_int(&c->out, count);
}

static void cmd_type(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    kv_reply_status(&c->out, kv_store_get(c->srv->store, a[1].p, a[1].len) ? "string" : "none");
}

static void incr_by(kv_conn_t *c, const kv_arg_t *key, long long by)
{
    kv_server_t *s = c->srv;
    long long v = 0;
    kv_entry_t *e = kv_store_get(s->store, key->p, key->len);
    if (e && kv_parse_ll(kv_entry_val(e), e->vlen, &v) < 0) {
        reply_not_int(c);
        return;
    }
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
        kv_reply_error(&c->out, "ERR increment or decrement would overflow");
        return;
    }
    v += by;
    char num[32];
    size_t len = kv_ll2str(num, v);
    int created;
    e = kv_store_set(s->store, key->p, key->len, num, len, KV_KEEP_DEADLINE, &created);
    propagate_set(s, e);
    if (created) notify(s, N_NEW, "new", key->p, key->len);
    notify(s, N_STRING, "incrby", key->p, key->len);
    kv_reply_int(&c->out, v);
}

static void cmd_incr(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    incr_by(c, &a[1], 1);
}

static void cmd_decr(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    incr_by(c, &a[1], -1);
}

static void cmd_incrby(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    long long by;
    if (kv_parse_ll(a[2].p, a[2].len, &by) < 0) {
        reply_not_int(c);
        return;
    }
    incr_by(c, &a[1], by);
}

static void cmd_decrby(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    long long by;
    if (kv_parse_ll(a[2].p, a[2].len, &by) < 0) {
        reply_not_int(c);
        return;
    }
    if (by == LLONG_MIN) {
        kv_reply_error(&c->out, "ERR decrement would overflow");
        return;
    }
    incr_by(c, &a[1], -by);
}

/* ---- expiry commands ------------------------------------------------------------- */

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: base is 0 for the AT forms. */
static void expire_generic(kv_conn_t *c, const kv_arg_t *a, size_t n, int64_t base, int secs, const char *name)
{
    kv_server_t *s = c->srv;
    unsigned f = 0;
    for (size_t i = 3; i < n; i++) {
        if (arg_is(&a[i], "NX")) f |= EXP_NX;
        else if (arg_is(&a[i], "XX")) f |= EXP_XX;
        else if (arg_is(&a[i], "GT")) f |= EXP_GT;
        else if (arg_is(&a[i], "LT")) f |= EXP_LT;
        else {
            kv_reply_errorf(&c->out, "ERR Unsupported option %.*s", arg_fmt_len(&a[i], 128), a[i].p);
            return;
        }
    }
    if ((f & EXP_NX) && (f & (EXP_XX | EXP_GT | EXP_LT))) {
        kv_reply_error(&c->out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((f & EXP_GT) && (f & EXP_LT)) {
        kv_reply_error(&c->out, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    long long when;
    if (kv_parse_ll(a[2].p, a[2].len, &when) < 0) {
        reply_not_int(c);
        return;
    }
    if (secs) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) goto bad_time;
        when *= 1000;
    }
    if (when > LLONG_MAX - base) goto bad_time;
    when += base;
    kv_entry_t *e = kv_store_get(s->store, a[1].p, a[1].len);
    if (!e) {
        kv_reply_int(&c->out, 0);
        return;
    }
    int64_t cur = kv_store_deadline(s->store, e);
    if (((f & EXP_NX) && cur != KV_NO_DEADLINE) || ((f & EXP_XX) && cur == KV_NO_DEADLINE) ||
        ((f & EXP_GT) && (cur == KV_NO_DEADLINE || when <= cur)) || ((f & EXP_LT) && cur != KV_NO_DEADLINE && when >= cur)) {
        kv_reply_int(&c->out, 0);
        return;
    }
    if (when <= now_ms(s)) {
        /* A deadline in the past deletes the key at once, as Redis does (a
         * delete, not an expiry: no "expired" event, no kv.expired record). */
        kv_store_del(s->store, a[1].p, a[1].len);
        propagate_del(s, a[1].p, a[1].len);
        notify(s, N_GENERIC, "del", a[1].p, a[1].len);
    } else {
        kv_store_set_deadline(s->store, e, when);
        propagate_set(s, e);
        notify(s, N_GENERIC, "expire", a[1].p, a[1].len);
    }
    kv_reply_int(&c->out, 1);
    return;
bad_time:
    kv_reply_errorf(&c->out, "ERR invalid expire time in '%s' command", name);
}

static void cmd_expire(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    expire_generic(c, a, n, now_ms(c->srv), 1, "expire");
}

static void cmd_pexpire(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    expire_generic(c, a, n, now_ms(c->srv), 0, "pexpire");
}

static void cmd_expireat(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    expire_generic(c, a, n, 0, 1, "expireat");
}

static void cmd_pexpireat(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    expire_generic(c, a, n, 0, 0, "pexpireat");
}

/* TTL, PTTL, EXPIRETIME, PEXPIRETIME. */
static void ttl_generic(kv_conn_t *c, const kv_arg_t *key, int ms, int absolute)
{
    kv_server_t *s = c->srv;
    kv_entry_t *e = kv_store_get(s->store, key->p, key->len);
    if (!e) {
        kv_reply_int(&c->out, -2);
        return;
    }
    int64_t at = kv_store_deadline(s->store, e);
    if (at == KV_NO_DEADLINE) {
        kv_reply_int(&c->out, -1);
        return;
    }
    if (absolute) {
        kv_reply_int(&c->out, ms ? at : (at + 500) / 1000);
        return;
    }
    int64_t ttl = at - now_ms(s);
    if (ttl < 0) ttl = 0;
    kv_reply_int(&c->out, ms ? ttl : (ttl + 500) / 1000);
}

static void cmd_ttl(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    ttl_generic(c, &a[1], 0, 0);
}

static void cmd_pttl(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    ttl_generic(c, &a[1], 1, 0);
}

static void cmd_expiretime(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    ttl_generic(c, &a[1], 0, 1);
}

static void cmd_pexpiretime(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    ttl_generic(c, &a[1], 1, 1);
}

static void cmd_persist(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    kv_server_t *s = c->srv;
    kv_entry_t *e = kv_store_get(s->store, a[1].p, a[1].len);
    if (!e || kv_store_deadline(s->store, e) == KV_NO_DEADLINE) {
        kv_reply_int(&c->out, 0);
        return;
    }
    kv_store_set_deadline(s->store, e, KV_NO_DEADLINE);
    propagate_set(s, e);
    notify(s, N_GENERIC, "persist", a[1].p, a[1].len);
    kv_reply_int(&c->out, 1);
}

/* ---- KEYS and SCAN ------------------------------------------------------------------ */

typedef struct key_list_s {
    kv_server_t *s;
    const kv_arg_t *pat; /* NULL: every key */
    int64_t now;
    kv_arg_t *keys;
    size_t n, cap;
    int type_none; /* SCAN TYPE other than string: nothing matches */
} key_list_t;

static void collect_key(void *opaque, const kv_entry_t *e)
{
    key_list_t *l = opaque;
    int64_t at = kv_store_deadline(l->s->store, e);
    if (at != KV_NO_DEADLINE && at <= l->now) return; /* expired, not yet deleted */
    if (l->type_none) return;
    if (l->pat && !(l->pat->len == 1 && l->pat->p[0] == '*') &&
        !kv_glob_match(l->pat->p, l->pat->len, kv_entry_key(e), e->klen, 0))
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->keys = sk_realloc(l->keys, l->cap * sizeof *l->keys);
    }
    l->keys[l->n].p = kv_entry_key(e);
    l->keys[l->n].len = e->klen;
    l->n++;
}

static void reply_keys(kv_conn_t *c, key_list_t *l)
{
    kv_reply_array(&c->out, (long long)l->n);
    for (size_t i = 0; i < l->n; i++) kv_reply_bulk(&c->out, l->keys[i].p, l->keys[i].len);
    free(l->keys);
}

static void cmd_keys(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    kv_server_t *s = c->srv;
    key_list_t l = {.s = s, .pat = &a[1], .now = now_ms(s)};
    uint64_t cur = 0;
    do cur = kv_store_scan(s->store, cur, collect_key, &l);
    while (cur != 0);
    reply_keys(c, &l);
}

static void cmd_scan(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    char num[32];
    if (a[1].len == 0 || a[1].len >= sizeof num || isspace((unsigned char)a[1].p[0])) {
        kv_reply_error(&c->out, "ERR invalid cursor");
        return;
    }
    memcpy(num, a[1].p, a[1].len);
    num[a[1].len] = '\0';
    char *end;
    errno = 0;
    unsigned long long cursor = strtoull(num, &end, 10);
    if (*end || errno == ERANGE) {
        kv_reply_error(&c->out, "ERR invalid cursor");
        return;
    }
    key_list_t l = {.s = s, .now = now_ms(s)};
    long long count = 10;
    for (size_t i = 2; i < n; i++) {
        int has_next = i + 1 < n;
        if (arg_is(&a[i], "COUNT") && has_next) {
            if (kv_parse_ll(a[i + 1].p, a[i + 1].len, &count) < 0) {
        reply_not_int(c);
        return;
    }
            if (count < 1) {
        reply_syntax(c);
        return;
    }
            i++;
        } else if (arg_is(&a[i], "MATCH") && has_next) {
            l.pat = &a[++i];
        } else if (arg_is(&a[i], "TYPE") && has_next) {
            l.type_none = !arg_is(&a[++i], "string");
        } else {
            {
        reply_syntax(c);
        return;
    }
        }
    }
    long long iterations = count * 10;
    do cursor = kv_store_scan(s->store, cursor, collect_key, &l);
    while (cursor && iterations-- > 0 && l.n < (size_t)count);
    kv_reply_array(&c->out, 2);
    char cur[32];
    snprintf(cur, sizeof cur, "%llu", cursor);
    kv_reply_bulks(&c->out, cur);
    reply_keys(c, &l);
}

/* ---- Pub/Sub ------------------------------------------------------------------------- */

static size_t sub_count(const kv_conn_t *c)
{
    return (c->chans ? sk_map_count(c->chans) : 0) + c->npats;
}

static void reply_sub(kv_conn_t *c, const char *kind, const char *name, size_t len)
{
    kv_reply_array(&c->out, 3);
    kv_reply_bulks(&c->out, kind);
    if (name) kv_reply_bulk(&c->out, name, len);
    else kv_reply_nil(&c->out);
    kv_reply_int(&c->out, (long long)sub_count(c));
}

static void subscribe(kv_conn_t *c, const kv_arg_t *ch)
{
    kv_server_t *s = c->srv;
    if (!c->chans) {
        c->chans = sk_malloc(sizeof *c->chans);
        sk_map_init(c->chans);
    }
    if (!sk_map_get(c->chans, ch->p, ch->len)) {
        kv_chan_t *chan = sk_map_get(&s->channels, ch->p, ch->len);
        if (!chan) {
            chan = sk_calloc(1, sizeof *chan);
            sk_map_put(&s->channels, ch->p, ch->len, chan);
        }
        if (chan->n == chan->cap) {
            chan->cap = chan->cap ? chan->cap * 2 : 4;
            chan->subs = sk_realloc(chan->subs, chan->cap * sizeof *chan->subs);
        }
        chan->subs[chan->n++] = c;
        sk_map_put(c->chans, ch->p, ch->len, chan);
    }
    reply_sub(c, "subscribe", ch->p, ch->len);
}

/* Removes c from channel ch; returns 1 if it was subscribed. */
static int unsubscribe(kv_conn_t *c, const char *ch, size_t len)
{
    kv_server_t *s = c->srv;
    if (!c->chans || !sk_map_del(c->chans, ch, len)) return 0;
    kv_chan_t *chan = sk_map_get(&s->channels, ch, len);
    if (chan) {
        for (size_t i = 0; i < chan->n; i++) {
            if (chan->subs[i] == c) {
                memmove(&chan->subs[i], &chan->subs[i + 1], (chan->n - i - 1) * sizeof *chan->subs);
                chan->n--;
                break;
            }
        }
        if (chan->n == 0) {
            sk_map_del(&s->channels, ch, len);
            free(chan->subs);
            free(chan);
        }
    }
    return 1;
}

static void pubsub_unsubscribe_all(kv_conn_t *c, int reply)
{
    if (!c->chans || sk_map_count(c->chans) == 0) {
        if (reply) reply_sub(c, "unsubscribe", NULL, 0);
        return;
    }
    /* Copy the names first: unsubscribe() changes the map. */
    size_t n = sk_map_count(c->chans), i = 0;
    char **names = sk_calloc(n, sizeof *names);
    size_t *lens = sk_calloc(n, sizeof *lens);
    for (sk_map_entry_t *it = sk_map_next(c->chans, NULL); it && i < n; it = sk_map_next(c->chans, it), i++) {
        names[i] = sk_memdup(it->key, it->klen);
        lens[i] = it->klen;
    }
    for (i = 0; i < n; i++) {
        unsubscribe(c, names[i], lens[i]);
        if (reply) reply_sub(c, "unsubscribe", names[i], lens[i]);
        free(names[i]);
    }
    free(names);
    free(lens);
}

static int punsubscribe(kv_conn_t *c, const char *pat, size_t len)
{
    kv_server_t *s = c->srv;
    for (size_t i = 0; i < s->npats; i++) {
        kv_pat_t *p = &s->pats[i];
        if (p->c == c && p->len == len && memcmp(p->pat, pat, len) == 0) {
            free(p->pat);
            memmove(p, p + 1, (s->npats - i - 1) * sizeof *p);
            s->npats--;
            c->npats--;
            return 1;
        }
    }
    return 0;
}

static void pubsub_punsubscribe_all(kv_conn_t *c, int reply)
{
    kv_server_t *s = c->srv;
    if (c->npats == 0) {
        if (reply) reply_sub(c, "punsubscribe", NULL, 0);
        return;
    }
    for (size_t i = 0; i < s->npats && c->npats > 0;) {
        kv_pat_t *p = &s->pats[i];
        if (p->c != c) {
            i++;
            continue;
        }
        char *pat = p->pat;
        size_t len = p->len;
        memmove(p, p + 1, (s->npats - i - 1) * sizeof *p);
        s->npats--;
        c->npats--;
        if (reply) reply_sub(c, "punsubscribe", pat, len);
        free(pat);
    }
}

static void cmd_subscribe(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) subscribe(c, &a[i]);
}

static void cmd_unsubscribe(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    if (n == 1) {
        pubsub_unsubscribe_all(c, 1);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        unsubscribe(c, a[i].p, a[i].len);
        reply_sub(c, "unsubscribe", a[i].p, a[i].len);
    }
}

static void cmd_psubscribe(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    kv_server_t *s = c->srv;
    for (size_t i = 1; i < n; i++) {
        int dup = 0;
        for (size_t k = 0; k < s->npats && !dup; k++)
            dup = s->pats[k].c == c && s->pats[k].len == a[i].len && !memcmp(s->pats[k].pat, a[i].p, a[i].len);
        if (!dup) {
            if (s->npats == s->pats_cap) {
                s->pats_cap = s->pats_cap ? s->pats_cap * 2 : 8;
                s->pats = sk_realloc(s->pats, s->pats_cap * sizeof *s->pats);
            }
            s->pats[s->npats++] = (kv_pat_t){c, sk_memdup(a[i].p, a[i].len), a[i].len};
            c->npats++;
        }
        reply_sub(c, "psubscribe", a[i].p, a[i].len);
    }
}

static void cmd_punsubscribe(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    if (n == 1) {
        pubsub_punsubscribe_all(c, 1);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        punsubscribe(c, a[i].p, a[i].len);
        reply_sub(c, "punsubscribe", a[i].p, a[i].len);
    }
}

static void cmd_publish(kv_conn_t *c, const kv_arg_t *a, size_t n)
{
    (void)n;
    kv_reply_int(&c->out, publish(c->srv, a[1].p, a[1].len, a[2].p, a[2].len));
}

/* ---- the command table -------------------------------------------------------------- */

#define W (F_WRITE)
#define R (F_READONLY)
#define DO (F_DENYOOM)
#define FA (F_FAST)
#define PS (F_PUBSUB)

static const kv_cmd_t commands[] = {
    {"ping", -1, FA | PS, cmd_ping, 0, 0, 0, "connection", "1.0.0", "Ping the server"},
    {"echo", 2, FA, cmd_echo, 0, 0, 0, "connection", "1.0.0", "Echo the given string"},
    {"quit", -1, F_NOAUTH | FA | PS, cmd_quit, 0, 0, 0, "connection", "1.0.0", "Close the connection"},
    {"select", 2, FA, cmd_select, 0, 0, 0, "connection", "1.0.0", "Change the selected database (only 0 exists)"},
    {"auth", -2, F_NOAUTH | FA, cmd_auth, 0, 0, 0, "connection", "1.0.0", "Authenticate to the server"},
    {"hello", -1, F_NOAUTH | FA, cmd_hello, 0, 0, 0, "connection", "6.0.0", "Handshake (RESP2 only)"},
    {"client", -2, 0, cmd_client, 0, 0, 0, "connection", "2.4.0", "A container for client connection commands"},
    {"reset", 1, F_NOAUTH | FA | PS, cmd_reset, 0, 0, 0, "connection", "6.2.0", "Reset the connection"},
    {"command", -1, 0, cmd_command, 0, 0, 0, "server", "2.8.13", "Get array of command details"},
    {"time", 1, FA, cmd_time, 0, 0, 0, "server", "2.6.0", "Return the current server time"},
    {"info", -1, 0, cmd_info, 0, 0, 0, "server", "1.0.0", "Get information and statistics about the server"},
    {"dbsize", 1, R | FA, cmd_dbsize, 0, 0, 0, "server", "1.0.0", "Return the number of keys"},
    {"flushall", -1, W, cmd_flushall, 0, 0, 0, "server", "1.0.0", "Remove all keys"},
    {"flushdb", -1, W, cmd_flushall, 0, 0, 0, "server", "1.0.0", "Remove all keys"},
    {"config", -2, F_ADMIN, cmd_config, 0, 0, 0, "server", "2.0.0", "A container for server configuration commands"},
    {"bgrewriteaof", 1, F_ADMIN, cmd_bgrewriteaof, 0, 0, 0, "server", "1.0.0", "Rewrite the append-only file"},
    {"set", -3, W | DO, cmd_set, 1, 1, 1, "string", "1.0.0", "Set the string value of a key"},
    {"get", 2, R | FA, cmd_get, 1, 1, 1, "string", "1.0.0", "Get the value of a key"},
    {"getdel", 2, W | FA, cmd_getdel, 1, 1, 1, "string", "6.2.0", "Get the value of a key and delete the key"},
    {"mget", -2, R | FA, cmd_mget, 1, -1, 1, "string", "1.0.0", "Get the values of all the given keys"},
    {"mset", -3, W | DO, cmd_mset, 1, -1, 2, "string", "1.0.1", "Set multiple keys to multiple values"},
    {"incr", 2, W | DO | FA, cmd_incr, 1, 1, 1, "string", "1.0.0", "Increment the integer value of a key by one"},
    {"incrby", 3, W | DO | FA, cmd_incrby, 1, 1, 1, "string", "1.0.0", "Increment the integer value of a key"},
    {"decr", 2, W | DO | FA, cmd_decr, 1, 1, 1, "string", "1.0.0", "Decrement the integer value of a key by one"},
    {"decrby", 3, W | DO | FA, cmd_decrby, 1, 1, 1, "string", "1.0.0", "Decrement the integer value of a key"},
    {"del", -2, W, cmd_del, 1, -1, 1, "keyspace", "1.0.0", "Delete a key"},
    {"unlink", -2, W | FA, cmd_del, 1, -1, 1, "keyspace", "4.0.0", "Delete a key"},
    {"exists", -2, R | FA, cmd_exists, 1, -1, 1, "keyspace", "1.0.0", "Determine if a key exists"},
    {"type", 2, R | FA, cmd_type, 1, 1, 1, "keyspace", "1.0.0", "Determine the type stored at key"},
    {"expire", -3, W | FA, cmd_expire, 1, 1, 1, "keyspace", "1.0.0", "Set a key's time to live in seconds"},
    {"pexpire", -3, W | FA, cmd_pexpire, 1, 1, 1, "keyspace", "2.6.0", "Set a key's time to live in milliseconds"},
    {"expireat", -3, W | FA, cmd_expireat, 1, 1, 1, "keyspace", "1.2.0", "Set the expiration for a key as a UNIX timestamp"},
    {"pexpireat", -3, W | FA, cmd_pexpireat, 1, 1, 1, "keyspace", "2.6.0", "Set the expiration for a key as a UNIX timestamp in milliseconds"},
    {"ttl", 2, R | FA, cmd_ttl, 1, 1, 1, "keyspace", "1.0.0", "Get the time to live for a key in seconds"},
    {"pttl", 2, R | FA, cmd_pttl, 1, 1, 1, "keyspace", "2.6.0", "Get the time to live for a key in milliseconds"},
    {"expiretime", 2, R | FA, cmd_expiretime, 1, 1, 1, "keyspace", "7.0.0", "Get the expiration Unix timestamp for a key"},
    {"pexpiretime", 2, R | FA, cmd_pexpiretime, 1, 1, 1, "keyspace", "7.0.0", "Get the expiration Unix timestamp for a key in milliseconds"},
    {"persist", 2, W | FA, cmd_persist, 1, 1, 1, "keyspace", "2.2.0", "Remove the expiration from a key"},
    {"keys", 2, R, cmd_keys, 0, 0, 0, "keyspace", "1.0.0", "Find all keys matching the given pattern"},
    {"scan", -2, R, cmd_scan, 0, 0, 0, "keyspace", "2.8.0", "Incrementally iterate the keys space"},
    {"publish", 3, PS | FA, cmd_publish, 0, 0, 0, "pubsub", "2.0.0", "Post a message to a channel"},
    {"subscribe", -2, PS, cmd_subscribe, 0, 0, 0, "pubsub", "2.0.0", "Listen for messages published to the given channels"},
    {"unsubscribe", -1, PS, cmd_unsubscribe, 0, 0, 0, "pubsub", "2.0.0", "Stop listening for messages posted to the given channels"},
    {"psubscribe", -2, PS, cmd_psubscribe, 0, 0, 0, "pubsub", "2.0.0", "Listen for messages published to channels matching the given patterns"},
    {"punsubscribe", -1, PS, cmd_punsubscribe, 0, 0, 0, "pubsub", "2.0.0", "Stop listening for messages posted to channels matching the given patterns"},
};

static const kv_cmd_t *cmd_table(size_t *n)
{
    *n = sizeof commands / sizeof commands[0];
    return commands;
}

/* ---- timers ------------------------------------------------------------------------------- */

static void rewrite_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kv_server_t *s = arg;
    if (kv_aof_rewrite_step(s->aof, s->store, REWRITE_BUDGET_US)) arm_timer(s->rewrite_ev, REWRITE_TICK_MS);
}

static void cron_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kv_server_t *s = arg;
    s->cron_runs++;
    /* A backstop for the deadline timer (the wall clock may have jumped). */
    int64_t next = kv_store_next_deadline(s->store);
    if (next >= 0 && next <= now_ms(s)) {
        s->expire_armed_for = INT64_MAX;
        arm_expire(s);
    }
    kv_store_rehash_step(s->store, 1000);
    size_t mem = 0;
    for (kv_conn_t *c = s->conns; c; c = c->next)
        mem += sizeof *c + c->in.cap + c->out.cap + c->parser.cap * (sizeof(kv_span_t) + sizeof(kv_arg_t));
    s->conn_mem = mem;
    if (used_memory(s) > s->peak_mem) s->peak_mem = used_memory(s);
    if (s->cron_runs % (1000 / CRON_MS) == 0) {
        kv_aof_flush(s->aof);
        kv_aof_tick(s->aof, s->store);
        kv_aof_stats_t st;
        kv_aof_stats(s->aof, &st);
        if (st.rewriting && !evtimer_pending(s->rewrite_ev, NULL)) arm_timer(s->rewrite_ev, 0);
    }
}

/* ---- public API -------------------------------------------------------------------------- */

kv_server_t *kv_server_new(broker_t *b, char *errstr, size_t errsz)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (sk_net_parse_listen(b->cfg.kv_listen, &ss, &sslen) < 0) {
        snprintf(errstr, errsz, "--kv-listen '%s' is not HOST:PORT (an IP address and a port)", b->cfg.kv_listen);
        return NULL;
    }
    int policy = kv_fsync_parse(b->cfg.kv_fsync ? b->cfg.kv_fsync : "everysec");
    if (policy < 0) {
        snprintf(errstr, errsz, "--kv-fsync must be always, everysec or no, not '%s'", b->cfg.kv_fsync);
        return NULL;
    }
    kv_server_t *s = sk_calloc(1, sizeof *s);
    s->b = b;
    s->start_ms = sk_mono_ms();
    s->maxmemory = b->cfg.kv_maxmemory;
    s->password = b->cfg.kv_password && *b->cfg.kv_password ? sk_strdup(b->cfg.kv_password) : NULL;
    s->expire_armed_for = INT64_MAX;
    sk_map_init(&s->cmds);
    sk_map_init(&s->channels);
    sk_buf_init(&s->scratch, 256);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        sk_map_put(&s->cmds, commands[i].name, strlen(commands[i].name), (void *)&commands[i]);
    s->store = kv_store_new(NULL, NULL);
    s->aof = kv_aof_open(b->cfg.data_dir, (kv_fsync_t)policy, b->cfg.kv_aof_rewrite_min_size, s->store, errstr, errsz);
    if (!s->aof) goto fail;
    kv_store_on_expired(s->store, on_expired, s);
    s->flush_ev = event_new(b->base, -1, 0, before_sleep, s);
    s->expire_ev = evtimer_new(b->base, expire_cb, s);
    s->rewrite_ev = evtimer_new(b->base, rewrite_cb, s);
    s->cron_ev = event_new(b->base, -1, EV_PERSIST, cron_cb, s);
    arm_timer(s->cron_ev, CRON_MS);
    /* Keys that expired while the broker was down go on the first pass. */
    arm_expire(s);

    s->listener = evconnlistener_new_bind(b->base, accept_cb, s,
                                          LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 511,
                                          (struct sockaddr *)&ss, (int)sslen);
    if (!s->listener) {
        snprintf(errstr, errsz, "cannot listen on %s: %s", b->cfg.kv_listen, strerror(errno));
        goto fail;
    }
    evconnlistener_set_error_cb(s->listener, accept_error_cb);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&bound, &blen);
    sk_net_format((struct sockaddr *)&bound, s->address, sizeof s->address);
    const char *colon = strrchr(s->address, ':');
    s->port = colon ? atoi(colon + 1) : 0;
    return s;
fail:
    kv_server_free(s);
    return NULL;
}

const char *kv_server_address(const kv_server_t *s)
{
    return s->address;
}

void kv_server_stop_accepting(kv_server_t *s)
{
    if (!s) return;
    if (s->listener) evconnlistener_free(s->listener);
    s->listener = NULL;
}

size_t kv_server_pending_output(const kv_server_t *s)
{
    size_t n = 0;
    if (!s) return 0;
    for (const kv_conn_t *c = s->conns; c; c = c->next) n += out_pending(c);
    return n;
}

void kv_server_free(kv_server_t *s)
{
    if (!s) return;
    if (s->listener) evconnlistener_free(s->listener);
    while (s->conns) conn_free(s->conns);
    s->pending = NULL;
    if (s->aof) {
        expired_events_flush(s, 1);
        kv_aof_close(s->aof);
    }
    if (s->flush_ev) event_free(s->flush_ev);
    if (s->expire_ev) event_free(s->expire_ev);
    if (s->rewrite_ev) event_free(s->rewrite_ev);
    if (s->cron_ev) event_free(s->cron_ev);
    for (int32_t i = 0; i < s->exp_nparts; i++) sk_buf_release(&s->exp[i].recs);
    free(s->exp);
    for (sk_map_entry_t *it = sk_map_next(&s->channels, NULL); it; it = sk_map_next(&s->channels, it)) {
        kv_chan_t *ch = it->value;
        free(ch->subs);
        free(ch);
    }
    sk_map_release(&s->channels);
    for (size_t i = 0; i < s->npats; i++) free(s->pats[i].pat);
    free(s->pats);
    sk_map_release(&s->cmds);
    kv_store_free(s->store);
    sk_buf_release(&s->scratch);
    free(s->password);
    free(s);
}
