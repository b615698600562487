/*
 * outbox.c - the transactional outbox and its relay (see outbox.h).
 *
 * The relay is a small state machine driven by four libevent events: the
 * librdkafka queue watch (delivery reports, logs, errors), the kick (a
 * service committed rows), a backstop timer, and a one-shot retry timer
 * (backoff, or "a transaction is open, try again shortly").  All of them end
 * in relay_scan(), which decides what to do next:
 *
 *   delete delivered rows -> (a report failed?) wait for the rest, rewind,
 *   back off -> feed rows with id > cursor to librdkafka, up to the
 *   in-flight limit.
 *
 * `cursor` is the highest row id handed to librdkafka.  Rows at or below it
 * are either with librdkafka (in_flight) or delivered and waiting for their
 * DELETE (done[]).  Rewinding sets the cursor to 0 once neither holds
 * anything, so that every row still in the table - exactly the undelivered
 * ones - is fed again, in id order.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "rdkloop.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "sto.h"

#define FAC "outbox"
#define POLL_BUDGET 10000      /* events served per wake-up before yielding */
#define TXN_OPEN_RETRY_MS 20   /* a caller's transaction is open: look again soon */
#define DELETE_RETRY_MS 100    /* the DELETE of delivered rows failed (busy) */

/* ---- adding rows ---------------------------------------------------------- */

int ev_topic_name_valid(const char *topic)
{
    size_t n = topic ? strlen(topic) : 0;
    if (n == 0 || n > 249 || !strcmp(topic, ".") || !strcmp(topic, "..")) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = topic[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int ev_outbox_add(sqlite3 *db, const char *topic, const char *key, const char *value, int64_t *id_out,
                  char *err, size_t errsz)
{
    if (!ev_topic_name_valid(topic)) {
        sk_errf(err, errsz, "outbox: invalid topic name \"%s\"", topic ? topic : "(null)");
        return -1;
    }
    if (!value || !*value) {
        sk_errf(err, errsz, "outbox: %s: empty value", topic);
        return -1;
    }
    if (strlen(value) > EV_OUTBOX_MAX_VALUE) {
        sk_errf(err, errsz, "outbox: %s: value of %zu bytes is over the limit of %d", topic, strlen(value),
               EV_OUTBOX_MAX_VALUE);
        return -1;
    }
    if (key && strlen(key) > EV_OUTBOX_MAX_KEY) {
        sk_errf(err, errsz, "outbox: %s: key of %zu bytes is over the limit of %d", topic, strlen(key),
               EV_OUTBOX_MAX_KEY);
        return -1;
    }
    if (!sto_in_txn(db)) {
        sk_errf(err, errsz, "outbox: %s: not inside a transaction", topic);
        return -1;
    }
    if (sto_exec(db, "INSERT INTO outbox (topic, key, value, created_at) VALUES (?, ?, ?, ?)", "tttI", topic,
                 key, value, sk_wall_ms()) != 1) {
        sk_errf(err, errsz, "outbox: %s: %s", topic, sqlite3_errmsg(db));
        return -1;
    }
    if (id_out) *id_out = sqlite3_last_insert_rowid(db);
    return 0;
}

int ev_outbox_add_event(sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    char *json = ev_to_json(ev, NULL);
    int rc = ev_outbox_add(db, ev_topic(ev), ev_key(ev), json, NULL, err, errsz);
    free(json);
    return rc;
}

int ev_backoff_ms(int attempt, int base_ms, int max_ms)
{
    int64_t d = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < attempt && d < max_ms; i++) d *= 2;
    return d > max_ms ? max_ms : (int)d;
}

/* ---- the relay -------------------------------------------------------------- */

struct ev_relay_s {
    struct event_base *base;
    sqlite3 *db;
    rd_kafka_t *rk;
    ev_rdk_watch_t watch;
    struct event *kick_ev;  /* no fd: activated by ev_relay_kick() */
    struct event *scan_ev;  /* persistent backstop timer (NULL when disabled) */
    struct event *retry_ev; /* one-shot: backoff end, busy database */

    int batch_rows, max_in_flight, backoff_ms, backoff_max_ms;

    int64_t cursor;         /* highest id handed to librdkafka */
    int64_t in_flight;      /* handed over, report pending */
    int failed_pending;     /* a report failed: rewind once in_flight == 0 */
    int queue_full;         /* librdkafka's queue is full: wait for reports */
    int backoff_attempt;    /* consecutive failures */
    int64_t backoff_until;  /* sk_mono_ms(); 0 when not backing off */
    int64_t retry_due;      /* sk_mono_ms() when retry_ev fires, if pending */
    int closing;            /* ev_relay_free() or drain's purge: reports only free */

    int64_t *done;          /* delivered ids waiting for their DELETE */
    size_t ndone, capdone;

    ev_stats_t stats;
    uint64_t delivered, failed, rewinds;
    ev_rdk_ratelimit_t rl;  /* error logs */
    int broker_down;        /* the error_cb said so; cleared by the next delivery */
    int broker_up;          /* see ev_relay_broker_up() */
    void (*on_report)(void *opaque, const char *type, int delivered);
    void *opaque;
};

/* What a produced message carries to its delivery report. */
typedef struct relay_msg_s {
    int64_t id;
    ev_type_stats_t *st;
} relay_msg_t;

static void relay_scan(ev_relay_t *r);

static void retry_in(ev_relay_t *r, int ms)
{
    /* An earlier pending retry wins: whichever fires rescans everything. */
    int64_t due = sk_mono_ms() + ms;
    if (r->retry_due && r->retry_due <= due && evtimer_pending(r->retry_ev, NULL)) return;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    r->retry_due = due;
    evtimer_add(r->retry_ev, &tv);
}

/* Logs a delivery failure, each distinct error at most every 10 s. */
static void log_failure(ev_relay_t *r, const rd_kafka_message_t *m, int64_t id)
{
    if (!ev_rdk_ratelimit(&r->rl, m->err, 10000)) return;
    sk_error(FAC, "delivery of outbox row %lld to %s failed: %s; the relay will retry from the oldest row",
             (long long)id, m->rkt ? rd_kafka_topic_name(m->rkt) : "?", rd_kafka_message_errstr(m));
}

/* dr_msg_cb: runs inside rd_kafka_poll(), on the loop's thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    ev_relay_t *r = opaque;
    relay_msg_t *msg = m->_private;
    r->in_flight--;
    r->queue_full = 0;
    if (!m->err) {
        if (r->ndone == r->capdone) {
            r->capdone = r->capdone ? r->capdone * 2 : 256;
            r->done = sk_realloc(r->done, r->capdone * sizeof *r->done);
        }
        r->done[r->ndone++] = msg->id;
        msg->st->produced++;
        r->delivered++;
        r->broker_up = 1;
        if (r->broker_down) {
            r->broker_down = 0;
            sk_info(FAC, "the broker is reachable again; publishing");
        }
        if (r->on_report && !r->closing) r->on_report(r->opaque, msg->st->type, 1);
    } else if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        r->failed_pending = 1; /* not a failure: drain or free purged it; the row stays */
    } else {
        msg->st->failed++;
        r->failed++;
        r->failed_pending = 1;
        log_failure(r, m, msg->id);
        if (r->on_report && !r->closing) r->on_report(r->opaque, msg->st->type, 0);
    }
    free(msg);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    ev_relay_t *r = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT) r->broker_down = 1;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) r->broker_up = 0;
    /* Unreachable-broker errors repeat on every reconnect: once a minute;
     * rows wait in the outbox meanwhile (see the depth metric). */
    int64_t every = r->broker_down ? 60000 : 10000;
    if (!ev_rdk_ratelimit(&r->rl, err, every)) return;
    sk_warn(FAC, "producer: %s: %s (outbox rows wait)", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* stats_cb (every statistics.interval.ms, on the loop): is any broker
 * connection UP?  That is all the relay reads from the statistics. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    ev_relay_t *r = opaque;
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers"), *b;
    int up = 0;
    cJSON_ArrayForEach(b, brokers)
    {
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(b, "state");
        if (cJSON_IsString(state) && !strcmp(state->valuestring, "UP")) up = 1;
    }
    if (root) r->broker_up = up;
    cJSON_Delete(root);
    return 0; /* librdkafka frees json */
}

/* DELETEs the delivered rows in one transaction.  Returns 0, or -1 if they
 * are still pending (a retry is scheduled). */
static int flush_done(ev_relay_t *r)
{
    if (r->ndone == 0) return 0;
    if (sto_in_txn(r->db)) {
        retry_in(r, TXN_OPEN_RETRY_MS);
        return -1;
    }
    if (sto_begin(r->db) < 0) goto fail;
    for (size_t i = 0; i < r->ndone; i++)
        if (sto_exec(r->db, "DELETE FROM outbox WHERE id = ?", "I", r->done[i]) < 0) goto fail;
    if (sto_commit(r->db) < 0) goto fail;
    r->ndone = 0;
    return 0;
fail:
    sk_warn(FAC, "cannot delete %zu delivered rows yet: %s", r->ndone, sqlite3_errmsg(r->db));
    sto_rollback(r->db);
    retry_in(r, DELETE_RETRY_MS);
    return -1;
}

/* The "type" of an envelope, for the counters; NULL if value has none. */
static ev_type_stats_t *stats_for_value(ev_relay_t *r, const char *value, size_t len)
{
    cJSON *root = NULL;
    const char *type = NULL;
    if (len > 0 && value[0] == '{') root = cJSON_ParseWithLength(value, len);
    if (root) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
        if (cJSON_IsString(t)) type = t->valuestring;
    }
    ev_type_stats_t *st = ev_stats_get(&r->stats, type);
    cJSON_Delete(root);
    return st;
}

static void start_backoff(ev_relay_t *r)
{
    int ms = ev_backoff_ms(++r->backoff_attempt, r->backoff_ms, r->backoff_max_ms);
    r->backoff_until = sk_mono_ms() + ms;
    retry_in(r, ms);
}

/* Hands rows with id > cursor to librdkafka, in id order, until the
 * in-flight limit, librdkafka's queue limit or the end of the table. */
static void feed(ev_relay_t *r)
{
    while (r->in_flight < r->max_in_flight && !r->queue_full) {
        int64_t limit = r->max_in_flight - r->in_flight;
        if (limit > r->batch_rows) limit = r->batch_rows;
        sqlite3_stmt *st =
            sto_query(r->db, "SELECT id, topic, key, value FROM outbox WHERE id > ? ORDER BY id LIMIT ?", "II",
                      r->cursor, limit);
        if (!st) {
            sk_error(FAC, "cannot read the outbox: %s", sqlite3_errmsg(r->db));
            start_backoff(r);
            return;
        }
        int64_t n = 0;
        int rc, stop = 0;
        while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            const char *topic = (const char *)sqlite3_column_text(st, 1);
            const char *key = (const char *)sqlite3_column_text(st, 2);
            size_t keylen = (size_t)sqlite3_column_bytes(st, 2);
            const char *value = (const char *)sqlite3_column_text(st, 3);
            size_t len = (size_t)sqlite3_column_bytes(st, 3);
            relay_msg_t *msg = sk_malloc(sizeof *msg);
            msg->id = id;
            msg->st = stats_for_value(r, value ? value : "", len);
            rd_kafka_resp_err_t err = rd_kafka_producev(
                r->rk, RD_KAFKA_V_TOPIC(topic ? topic : ""), RD_KAFKA_V_KEY(key, key ? keylen : 0),
                RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE(msg), RD_KAFKA_V_END);
            if (err) {
                ev_type_stats_t *st_failed = msg->st;
                free(msg);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    r->queue_full = 1; /* the next report clears it and rescans */
                } else {
                    /* A local, permanent refusal (e.g. too large): keep the
                     * row, do not pass it (later rows of its key would
                     * overtake it), try again after a backoff. */
                    sk_error(FAC, "cannot produce outbox row %lld to %s: %s", (long long)id, topic ? topic : "?",
                             rd_kafka_err2str(err));
                    st_failed->failed++;
                    r->failed++;
                    start_backoff(r);
                }
                stop = 1;
                break;
            }
            r->cursor = id;
            r->in_flight++;
            n++;
        }
        if (!stop && rc != SQLITE_DONE) {
            sk_error(FAC, "cannot read the outbox: %s", sqlite3_errmsg(r->db));
            sto_done(st);
            start_backoff(r);
            return;
        }
        sto_done(st);
        if (stop || n < limit) return;
    }
}

static void relay_scan(ev_relay_t *r)
{
    if (r->closing) return;
    if (flush_done(r) < 0) return;
    if (sto_in_txn(r->db)) {
        retry_in(r, TXN_OPEN_RETRY_MS);
        return;
    }
    if (r->failed_pending) {
        if (r->in_flight > 0) return; /* the last report rescans */
        r->failed_pending = 0;
        r->cursor = 0;
        r->rewinds++;
        start_backoff(r);
        return;
    }
    if (r->backoff_until) {
        if (sk_mono_ms() < r->backoff_until) {
            retry_in(r, (int)(r->backoff_until - sk_mono_ms()) + 1);
            return;
        }
        r->backoff_until = 0;
    }
    feed(r);
}

/* Serves librdkafka's queue: delivery reports, errors, logs. */
static void on_queue(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ev_relay_t *r = arg;
    ev_rdk_watch_drain(&r->watch);
    int served = 0;
    while (served < POLL_BUDGET) {
        int n = rd_kafka_poll(r->rk, 0);
        if (n <= 0) break;
        served += n;
    }
    if (served >= POLL_BUDGET) ev_rdk_watch_again(&r->watch);
    /* A successful report after failures ends the backoff series. */
    if (r->ndone && !r->failed_pending) r->backoff_attempt = 0;
    relay_scan(r);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_scan(arg);
}

void ev_relay_kick(ev_relay_t *r)
{
    if (r) event_active(r->kick_ev, EV_TIMEOUT, 0);
}

ev_relay_t *ev_relay_new(struct event_base *base, sqlite3 *db, const ev_relay_conf_t *conf, char *err,
                         size_t errsz)
{
    char why[512];
    rd_kafka_conf_t *kc = NULL;
    ev_relay_t *r = sk_calloc(1, sizeof *r);
    r->base = base;
    r->db = db;
    r->watch.rfd = r->watch.wfd = -1;
    r->batch_rows = conf->batch_rows > 0 ? conf->batch_rows : 500;
    r->max_in_flight = conf->max_in_flight > 0 ? conf->max_in_flight : 10000;
    r->backoff_ms = conf->backoff_ms > 0 ? conf->backoff_ms : 200;
    r->backoff_max_ms = conf->backoff_max_ms > 0 ? conf->backoff_max_ms : 10000;
    if (r->backoff_max_ms < r->backoff_ms) r->backoff_max_ms = r->backoff_ms;
    r->on_report = conf->on_report;
    r->opaque = conf->opaque;
    ev_stats_init(&r->stats);

    if (!conf->brokers || !*conf->brokers) {
        sk_errf(err, errsz, "outbox relay: no brokers given");
        goto fail;
    }
    kc = rd_kafka_conf_new();
    if (ev_rdk_set(kc, "bootstrap.servers", conf->brokers, err, errsz) < 0 ||
        ev_rdk_set(kc, "client.id", conf->client_id ? conf->client_id : "souk", err, errsz) < 0 ||
        ev_rdk_set(kc, "acks", "all", err, errsz) < 0 ||
        ev_rdk_set(kc, "enable.idempotence", "false", err, errsz) < 0 ||
        ev_rdk_set(kc, "max.in.flight.requests.per.connection", "1", err, errsz) < 0 ||
        ev_rdk_set(kc, "message.timeout.ms", "0", err, errsz) < 0 ||
        ev_rdk_set(kc, "linger.ms", "1", err, errsz) < 0 ||
        ev_rdk_set(kc, "socket.keepalive.enable", "true", err, errsz) < 0 ||
        ev_rdk_set(kc, "log.queue", "true", err, errsz) < 0 ||
        ev_rdk_set(kc, "statistics.interval.ms", "5000", err, errsz) < 0 ||
        ev_rdk_set_pairs(kc, conf->rdkafka_props, err, errsz) < 0)
        goto fail;
    rd_kafka_conf_set_opaque(kc, r);
    rd_kafka_conf_set_stats_cb(kc, on_stats);
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_conf_set_error_cb(kc, on_error);
    rd_kafka_conf_set_log_cb(kc, ev_rdk_log_cb);
    r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof why);
    if (!r->rk) {
        sk_errf(err, errsz, "outbox relay: %s", why);
        goto fail;
    }
    kc = NULL; /* the handle owns it now */
    rd_kafka_set_log_queue(r->rk, NULL); /* logs go to the main queue, served by the loop */
    if (ev_rdk_watch_start(&r->watch, base, rd_kafka_queue_get_main(r->rk), on_queue, r, err, errsz) < 0)
        goto fail;
    r->kick_ev = event_new(base, -1, 0, on_kick, r);
    r->retry_ev = evtimer_new(base, on_kick, r);
    if (!r->kick_ev || !r->retry_ev) {
        sk_errf(err, errsz, "outbox relay: cannot create events");
        goto fail;
    }
    int every = conf->scan_interval_ms == 0 ? 1000 : conf->scan_interval_ms;
    if (every > 0) {
        struct timeval tv = {every / 1000, (every % 1000) * 1000};
        r->scan_ev = event_new(base, -1, EV_PERSIST, on_kick, r);
        if (!r->scan_ev || event_add(r->scan_ev, &tv) < 0) {
            sk_errf(err, errsz, "outbox relay: cannot add the scan timer");
            goto fail;
        }
    }
    ev_relay_kick(r);
    return r;
fail:
    if (kc) rd_kafka_conf_destroy(kc);
    ev_relay_free(r);
    return NULL;
}

/* Purges librdkafka's queues and serves the resulting reports (the purged
 * rows stay in the table); at most timeout_ms.  Afterwards the cursor is
 * back at 0 so that a later scan starts from the oldest row. */
static void purge_all(ev_relay_t *r, int timeout_ms)
{
    if (!r->rk) return;
    rd_kafka_purge(r->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    int64_t deadline = sk_mono_ms() + timeout_ms;
    while (r->in_flight > 0 && sk_mono_ms() < deadline) rd_kafka_poll(r->rk, 50);
    if (r->in_flight > 0)
        sk_warn(FAC, "%lld produced rows still unreported after the purge", (long long)r->in_flight);
    flush_done(r);
    if (r->in_flight == 0) {
        r->cursor = 0;
        r->failed_pending = 0;
        r->queue_full = 0;
    }
}

static int64_t outbox_depth(ev_relay_t *r)
{
    int64_t n = -1;
    if (sto_query_i64(r->db, &n, "SELECT count(*) FROM outbox", "") != 1) return -1;
    return n;
}

int64_t ev_relay_drain(ev_relay_t *r, int timeout_ms)
{
    int64_t deadline = sk_mono_ms() + timeout_ms, depth;
    for (;;) {
        relay_scan(r);
        if (r->rk) rd_kafka_poll(r->rk, 20);
        if (flush_done(r) == 0 && !r->failed_pending && r->ndone == 0) {
            depth = outbox_depth(r);
            if (depth <= 0 && r->in_flight == 0) break;
        }
        /* A rewind waits out its backoff; during a drain that would only
         * waste the time left, so retry at once. */
        if (r->backoff_until) r->backoff_until = sk_mono_ms();
        if (sk_mono_ms() >= deadline) break;
    }
    purge_all(r, 5000);
    depth = outbox_depth(r);
    if (depth > 0)
        sk_warn(FAC, "drain: %lld rows left in the outbox for the next start", (long long)depth);
    return depth;
}

void ev_relay_free(ev_relay_t *r)
{
    if (!r) return;
    if (r->rk) {
        purge_all(r, 5000);
        r->closing = 1;
    }
    ev_rdk_watch_stop(&r->watch);
    if (r->rk) {
        rd_kafka_poll(r->rk, 0);
        rd_kafka_destroy(r->rk);
    }
    if (r->kick_ev) event_free(r->kick_ev);
    if (r->retry_ev) event_free(r->retry_ev);
    if (r->scan_ev) event_free(r->scan_ev);
    ev_stats_release(&r->stats);
    free(r->done);
    free(r);
}

int64_t ev_relay_pending(ev_relay_t *r)
{
    return outbox_depth(r);
}

int ev_relay_broker_up(const ev_relay_t *r)
{
    return r->broker_up;
}

void ev_relay_info(ev_relay_t *r, ev_relay_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->depth = outbox_depth(r);
    out->in_flight = r->in_flight;
    out->delivered = r->delivered;
    out->failed = r->failed;
    out->rewinds = r->rewinds;
    out->backing_off = r->backoff_until != 0;
    out->broker_up = r->broker_up;
}

void ev_relay_foreach_type(const ev_relay_t *r, ev_type_stats_fn fn, void *opaque)
{
    ev_stats_foreach(&r->stats, fn, opaque);
}
