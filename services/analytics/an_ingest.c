/*
 * an_ingest.c - analytics' consumer: every record of every topic into
 * analytics.db, many records per transaction.
 *
 * Why not libevents' consumer (consumer.h): that one runs one handler per
 * record in its own transaction with a processed_events row, retries and a
 * DLQ - right for services whose handlers have effects, and about 10x too
 * slow for an indexer that must keep up with every other service together
 * (one fsync-free commit per record, an inbox row per record).  Analytics'
 * only effect is rows in its own tables, so idempotency is the tables' own
 * UNIQUE keys (events.id; (topic, partition, offset) for log lines and raw
 * records) with INSERT OR IGNORE, and a whole poll batch commits at once:
 *
 *   1. poll up to --batch records (never blocking: rd_kafka_consumer_poll 0),
 *      at most once per --linger-ms: records that come sooner wait in
 *      librdkafka's queue, so that a busy stream is stored in fewer,
 *      larger transactions (each commit rewrites the index pages it
 *      touched; the FTS5 indexes merge larger segments);
 *   2. BEGIN; store each (an_store_record); COMMIT;
 *   3. only then store their offsets (rd_kafka_offsets_store); librdkafka's
 *      auto-commit sends the stored offsets once a second and at close.
 *
 * Dying between 2 and 3 re-delivers the batch, and the UNIQUE keys make
 * that a no-op: at-least-once delivery, effectively-once rows.  Nothing is
 * ever dead-lettered: a record that is not an envelope is still stored (as a
 * log line, a DLQ record or a raw record).  When the transaction itself fails
 * (disk full, database locked) the batch is kept, every assigned partition
 * is paused, and a timer retries it (1 s, 2 s, ... at most 30 s).
 *
 * The subscription is --topics, by default the regex "^[^_].*" (librdkafka
 * treats a name starting with "^" as a regular expression and matches it
 * against the broker's full topic list at every metadata refresh, every 2 s
 * here), so DLQs and topics created later are picked up without a restart.
 * librdkafka never auto-creates topics for a regex subscription.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "analytics.h"
#include "rdkloop.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"

#define FAC "ingest"
#define RETRY_MAX_MS 30000

/* The next offset to read of each partition this process has seen: from the
 * committed offset at assignment, then from every stored batch.  librdkafka's
 * own position is reset by each (eager) rebalance and stays unknown for an
 * idle partition, which would make the lag of idle partitions unknowable. */
typedef struct next_off_s {
    char *topic;
    int32_t partition;
    int64_t next;
} next_off_t;

struct an_ingest_s {
    an_t *an;
    next_off_t *nexts;
    size_t nnexts, capnexts;
    rd_kafka_t *rk;
    ev_rdk_watch_t watch;
    struct event *tick_ev, *retry_ev, *linger_ev;
    int64_t last_store_ms; /* sk_mono_ms() of the last batch stored */
    rd_kafka_message_t **held; /* a batch whose transaction failed */
    size_t nheld;
    int retry_ms;
    int stopping, closed;
    ev_rdk_ratelimit_t rl;
    an_ingest_info_t info;
};

/* ---- storing one record ------------------------------------------------------ */

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 1 if p starts with a UUID (8-4-4-4-12 hex digits). */
static int uuid_at(const char *p, size_t left)
{
    static const int dash[] = {8, 13, 18, 23};
    if (left < 36) return 0;
    for (int i = 0, d = 0; i < 36; i++) {
        if (d < 4 && i == dash[d]) {
            if (p[i] != '-') return 0;
            d++;
        } else if (!is_hex(p[i])) {
            return 0;
        }
    }
    return left == 36 || !is_hex(p[36]);
}

/* Every UUID in a log message is a reference (event, booking, notification,
 * user ids): the timeline follows them. */
static int add_refs(sqlite3 *db, const char *msg, int64_t seq)
{
    size_t n = strlen(msg);
    for (size_t i = 0; i + 36 <= n; i++) {
        if ((i == 0 || !is_hex(msg[i - 1])) && uuid_at(msg + i, n - i)) {
            if (sto_exec(db, "INSERT OR IGNORE INTO log_refs (ref, seq) VALUES (?, ?)", "TI", msg + i,
                         (size_t)36, seq) < 0)
                return -1;
            i += 35;
        }
    }
    return 0;
}

/*
 * notification's email log lines: "<type> <event id>: queued notification
 * <id>" and "notification <id> (<type>) sent (attempt N)".  The one-email
 * check counts notification.sent events; these lines are its fallback for
 * data indexed before that event existed.
 */
static int notification_line(sqlite3 *db, const char *msg, int64_t time_ms)
{
    char type[64], evid[130], nid[130];
    int used = 0;
    if (sscanf(msg, "%63s %129[^:]: queued notification %129s%n", type, evid, nid, &used) == 3 && used > 0)
        return sto_exec(db,
                        "INSERT OR IGNORE INTO notif_queued (notification_id, event_id, event_type, time_ms)"
                        " VALUES (?, ?, ?, ?)",
                        "tttI", nid, evid, type, time_ms) < 0
                   ? -1
                   : 0;
    if (sscanf(msg, "notification %129s (%63[^)]) sent%n", nid, type, &used) == 2 && used > 0)
        return sto_exec(db, "INSERT OR IGNORE INTO notif_sent (notification_id, time_ms) VALUES (?, ?)", "tI",
                        nid, time_ms) < 0
                   ? -1
                   : 0;
    return 0;
}

static int store_event(sqlite3 *db, const cJSON *o, const char *topic, int32_t partition,
                       int64_t offset, int64_t ts, const char *value, size_t value_len)
{
    const char *id = jstr(o, "id"), *type = jstr(o, "type");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    const char *t = jstr(o, "time");
    int64_t time_ms;
    if (!t || ev_time_parse(t, &time_ms) < 0) time_ms = ts;
    const ev_schema_t *s = ev_schema_find(type);
    const char *agg = s && s->key ? ev_str(data, s->key) : NULL;
    if (!agg) agg = ev_str(data, "bookingId");
    if (!agg) agg = ev_str(data, "userId");
    if (!agg) agg = ev_str(data, "catalogId");
    int valid = s && s->envelope && ev_validate(type, data, NULL, 0) == 0;
    int n = sto_exec(db,
                     "INSERT OR IGNORE INTO events (id, type, time_ms, source, correlation_id, causation_id,"
                     " agg_id, topic, part, off, valid, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     "ttItttttIIiT", id, type, time_ms, jstr(o, "source"), jstr(o, "correlationId"),
                     jstr(o, "causationId"), agg, topic, (int64_t)partition, offset, valid, value, value_len);
    if (n <= 0) return n;
    /* indexed here, not by a trigger (see analytics.c) */
    if (sto_exec(db, "INSERT INTO events_fts (rowid, doc) VALUES (?, ?)", "IT", sqlite3_last_insert_rowid(db),
                 value, value_len) < 0)
        return -1;
    return n;
}

static int store_log(sqlite3 *db, const cJSON *o, const char *topic, int32_t partition, int64_t offset, int64_t ts,
                     const char *value, size_t value_len)
{
    const char *t = jstr(o, "time"), *msg = jstr(o, "msg"), *service = jstr(o, "service");
    int64_t time_ms;
    if (!t || ev_time_parse(t, &time_ms) < 0) time_ms = ts;
    int n = sto_exec(db,
                     "INSERT OR IGNORE INTO logs (topic, part, off, time_ms, level, service, facility, msg,"
                     " request_id, correlation_id, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     "tIIIttttttT", topic, (int64_t)partition, offset, time_ms, jstr(o, "level"), service,
                     jstr(o, "facility"), msg ? msg : "", jstr(o, "requestId"), jstr(o, "correlationId"), value,
                     value_len);
    if (n <= 0 || !msg) return n;
    int64_t seq = sqlite3_last_insert_rowid(db);
    if (sto_exec(db, "INSERT INTO logs_fts (rowid, msg) VALUES (?, ?)", "It", seq, msg) < 0) return -1;
    if (add_refs(db, msg, seq) < 0) return -1;
    if (service && !strcmp(service, "notification") && notification_line(db, msg, time_ms) < 0) return -1;
    return n;
}

/* DLQ records, kv.expired and anything else that is not an envelope. */
static int store_raw(sqlite3 *db, const cJSON *o, const char *topic, int32_t partition, int64_t offset,
                     int64_t ts, const char *key, size_t key_len, const char *value, size_t value_len)
{
    const char *kind = "raw", *error = NULL, *consumer = NULL, *orig = NULL, *evid = NULL, *evtype = NULL;
    char *corr = NULL;
    if (ends_with(topic, ".dlq")) {
        kind = "dlq";
        error = jstr(o, "error");
        consumer = jstr(o, "consumer");
        orig = jstr(o, "topic");
        evid = jstr(o, "eventId");
        evtype = jstr(o, "eventType");
        const char *inner = jstr(o, "value");
        cJSON *iv = inner ? cJSON_Parse(inner) : NULL;
        const char *c = jstr(iv, "correlationId");
        if (c) corr = sk_strdup(c);
        cJSON_Delete(iv);
    } else if (!o) {
        kind = "invalid";
    }
    int n = sto_exec(db,
                     "INSERT OR IGNORE INTO records (kind, topic, part, off, time_ms, rkey, value, orig_topic,"
                     " error, consumer, event_id, event_type, correlation_id)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     "ttIIITTtttttt", kind, topic, (int64_t)partition, offset, ts, key, key_len, value,
                     value_len, orig, error, consumer, evid, evtype, corr);
    free(corr);
    return n;
}

int an_store_record(an_t *an, const char *topic, int32_t partition, int64_t offset, int64_t timestamp_ms,
                    const char *key, size_t key_len, const char *value, size_t value_len, int *table, char *err,
                    size_t errsz)
{
    sqlite3 *db = svc_db(an->svc);
    int64_t ts = timestamp_ms >= 0 ? timestamp_ms : sk_wall_ms();
    cJSON *o = value && value_len ? cJSON_ParseWithLength(value, value_len) : NULL;
    if (o && !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = NULL;
    }
    const char *log_topic = svc_conf(an->svc)->log_topic;
    int n;
    if (o && !ends_with(topic, ".dlq") && log_topic && !strcmp(topic, log_topic) && jstr(o, "msg")) {
        *table = AN_T_LOG;
        n = store_log(db, o, topic, partition, offset, ts, value, value_len);
    } else if (o && jstr(o, "id") && jstr(o, "type") && !ends_with(topic, ".dlq")) {
        *table = AN_T_EVENT;
        n = store_event(db, o, topic, partition, offset, ts, value, value_len);
    } else {
        *table = AN_T_RAW;
        n = store_raw(db, o, topic, partition, offset, ts, key, key_len, value, value_len);
    }
    cJSON_Delete(o);
    if (n < 0) {
        sk_errf(err, errsz, "%s[%" PRId32 "]@%" PRId64 ": %s", topic, partition, offset, sqlite3_errmsg(db));
        return -1;
    }
    return n > 0;
}

static next_off_t *next_of(an_ingest_t *in, const char *topic, int32_t partition, int add)
{
    for (size_t i = 0; i < in->nnexts; i++)
        if (in->nexts[i].partition == partition && !strcmp(in->nexts[i].topic, topic)) return &in->nexts[i];
    if (!add) return NULL;
    if (in->nnexts == in->capnexts) {
        in->capnexts = in->capnexts ? in->capnexts * 2 : 32;
        in->nexts = sk_realloc(in->nexts, in->capnexts * sizeof *in->nexts);
    }
    next_off_t *n = &in->nexts[in->nnexts++];
    n->topic = sk_strdup(topic);
    n->partition = partition;
    n->next = -1;
    return n;
}

static void next_raise(an_ingest_t *in, const char *topic, int32_t partition, int64_t next)
{
    next_off_t *n = next_of(in, topic, partition, 1);
    if (next > n->next) n->next = next;
}

/* ---- batches ------------------------------------------------------------------- */

static void free_msgs(rd_kafka_message_t **m, size_t n)
{
    for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(m[i]);
}

/* One transaction for the batch.  Returns 0, or -1 (rolled back). */
static int store_batch(an_ingest_t *in, rd_kafka_message_t **m, size_t n)
{
    char err[512] = "";
    sqlite3 *db = svc_db(in->an->svc);
    uint64_t added[3] = {0, 0, 0};
    if (sto_in_txn(db) || sto_begin(db) < 0) {
        sk_errf(err, sizeof err, "begin: %s", sqlite3_errmsg(db));
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        int table = AN_T_RAW;
        int rc = an_store_record(in->an, rd_kafka_topic_name(m[i]->rkt), m[i]->partition, m[i]->offset,
                                 rd_kafka_message_timestamp(m[i], NULL), m[i]->key, m[i]->key_len, m[i]->payload,
                                 m[i]->len, &table, err, sizeof err);
        if (rc < 0) goto fail;
        added[table] += (uint64_t)rc;
    }
    if (sto_commit(db) < 0) {
        sk_errf(err, sizeof err, "commit: %s", sqlite3_errmsg(db));
        goto fail;
    }
    in->info.events += added[AN_T_EVENT];
    in->info.logs += added[AN_T_LOG];
    in->info.raw += added[AN_T_RAW];
    in->info.records += n;
    in->info.batches++;
    in->info.last_batch_ms = sk_wall_ms();

    /* Offsets only after the commit: the next offset of each partition. */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < n; i++) {
        const char *t = rd_kafka_topic_name(m[i]->rkt);
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, t, m[i]->partition);
        if (!p) p = rd_kafka_topic_partition_list_add(l, t, m[i]->partition);
        if (m[i]->offset + 1 > p->offset) p->offset = m[i]->offset + 1;
    }
    for (int i = 0; i < l->cnt; i++) next_raise(in, l->elems[i].topic, l->elems[i].partition, l->elems[i].offset);
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(in->rk, l);
    if (e && e != RD_KAFKA_RESP_ERR__STATE) sk_warn(FAC, "storing offsets: %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
    return 0;
fail:
    sto_rollback(db);
    in->info.db_errors++;
    if (ev_rdk_ratelimit(&in->rl, -1000, 10000))
        sk_error(FAC, "a batch of %zu records could not be stored (retried): %s", n, err);
    return -1;
}

static void pause_all(an_ingest_t *in, int pause)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(in->rk, &l) || !l) return;
    if (pause) rd_kafka_pause_partitions(in->rk, l);
    else rd_kafka_resume_partitions(in->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

static void hold(an_ingest_t *in, rd_kafka_message_t **m, size_t n)
{
    in->held = m;
    in->nheld = n;
    pause_all(in, 1);
    in->retry_ms = in->retry_ms ? in->retry_ms * 2 : 1000;
    if (in->retry_ms > RETRY_MAX_MS) in->retry_ms = RETRY_MAX_MS;
    struct timeval tv = {in->retry_ms / 1000, (in->retry_ms % 1000) * 1000};
    evtimer_add(in->retry_ev, &tv);
}

static void drop_held(an_ingest_t *in)
{
    if (!in->held) return;
    free_msgs(in->held, in->nheld);
    free(in->held);
    in->held = NULL;
    in->nheld = 0;
    evtimer_del(in->retry_ev);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    an_ingest_t *in = arg;
    if (!in->held || in->stopping) return;
    rd_kafka_message_t **m = in->held;
    size_t n = in->nheld;
    in->held = NULL;
    if (store_batch(in, m, n) < 0) {
        hold(in, m, n);
        return;
    }
    free_msgs(m, n);
    free(m);
    in->nheld = 0;
    in->retry_ms = 0;
    pause_all(in, 0);
    ev_rdk_watch_again(&in->watch);
}

static void serve(an_ingest_t *in)
{
    if (in->closed || in->stopping) return;
    size_t max = (size_t)in->an->conf->batch, n = 0;
    rd_kafka_message_t **m = sk_malloc(max * sizeof *m);
    rd_kafka_message_t *msg;
    while (!in->held && n < max && (msg = rd_kafka_consumer_poll(in->rk, 0)) != NULL) {
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && ev_rdk_ratelimit(&in->rl, msg->err, 10000))
                sk_warn(FAC, "%s%s%s", msg->rkt ? rd_kafka_topic_name(msg->rkt) : "", msg->rkt ? ": " : "",
                        rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        m[n++] = msg;
    }
    if (n == 0) {
        free(m);
        return;
    }
    if (store_batch(in, m, n) < 0) {
        hold(in, m, n);
        return;
    }
    free_msgs(m, n);
    free(m);
    in->last_store_ms = sk_mono_ms();
    if (n == max) ev_rdk_watch_again(&in->watch); /* more may be waiting: after other events */
}

/* Records arrived: stored now, or --linger-ms after the last batch (they
 * wait in librdkafka's queue; the timer comes back for them, since the
 * queue, left non-empty, wakes no one). */
static void serve_soon(an_ingest_t *in)
{
    int64_t wait = in->last_store_ms + in->an->conf->linger_ms - sk_mono_ms();
    if (wait <= 0) {
        serve(in);
        return;
    }
    if (!evtimer_pending(in->linger_ev, NULL)) {
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
        evtimer_add(in->linger_ev, &tv);
    }
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    serve(arg);
}

static void on_queue(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    an_ingest_t *in = arg;
    ev_rdk_watch_drain(&in->watch);
    serve_soon(in);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    serve(arg);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    an_ingest_t *in = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Where each partition resumes, for the lag (a local broker: a
         * short wait; on a timeout the lag of those counts from the log start). */
        rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
        if (!rd_kafka_committed(rk, c, 2000))
            for (int i = 0; i < c->cnt; i++)
                if (c->elems[i].offset >= 0) next_raise(in, c->elems[i].topic, c->elems[i].partition, c->elems[i].offset);
        rd_kafka_topic_partition_list_destroy(c);
        rd_kafka_assign(rk, parts);
        in->info.assigned = parts->cnt;
        sk_info(FAC, "group %s: %d partitions assigned", in->an->conf->group, parts->cnt);
    } else {
        /* A held batch belongs to partitions that may go elsewhere: their
         * offsets were never stored, so whoever owns them next reads it. */
        drop_held(in);
        in->retry_ms = 0;
        rd_kafka_commit(rk, NULL, 0);
        rd_kafka_assign(rk, NULL);
        in->info.assigned = 0;
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            sk_warn(FAC, "group %s: rebalance: %s", in->an->conf->group, rd_kafka_err2str(err));
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    an_ingest_t *in = opaque;
    int transient = err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT;
    if (!ev_rdk_ratelimit(&in->rl, err, transient ? 60000 : 10000)) return;
    sk_warn(FAC, "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

an_ingest_t *an_ingest_new(an_t *an, char *err, size_t errsz)
{
    char why[512];
    an_ingest_t *in = sk_calloc(1, sizeof *in);
    in->an = an;
    in->watch.rfd = in->watch.wfd = -1;
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *topics = NULL;
    if (ev_rdk_set(kc, "bootstrap.servers", svc_conf(an->svc)->brokers, err, errsz) < 0 ||
        ev_rdk_set(kc, "group.id", an->conf->group, err, errsz) < 0 ||
        ev_rdk_set(kc, "client.id", "analytics", err, errsz) < 0 ||
        ev_rdk_set(kc, "enable.auto.commit", "true", err, errsz) < 0 ||
        ev_rdk_set(kc, "auto.commit.interval.ms", "1000", err, errsz) < 0 ||
        ev_rdk_set(kc, "enable.auto.offset.store", "false", err, errsz) < 0 ||
        ev_rdk_set(kc, "auto.offset.reset", "earliest", err, errsz) < 0 ||
        ev_rdk_set(kc, "topic.metadata.refresh.interval.ms", "2000", err, errsz) < 0 ||
        ev_rdk_set(kc, "session.timeout.ms", "10000", err, errsz) < 0 ||
        ev_rdk_set(kc, "heartbeat.interval.ms", "3000", err, errsz) < 0 ||
        ev_rdk_set(kc, "socket.keepalive.enable", "true", err, errsz) < 0 ||
        ev_rdk_set(kc, "log.queue", "true", err, errsz) < 0)
        goto fail;
    rd_kafka_conf_set_opaque(kc, in);
    rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
    rd_kafka_conf_set_error_cb(kc, on_error);
    rd_kafka_conf_set_log_cb(kc, ev_rdk_log_cb);
    in->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof why);
    if (!in->rk) {
        sk_errf(err, errsz, "analytics consumer: %s", why);
        goto fail;
    }
    kc = NULL;
    rd_kafka_set_log_queue(in->rk, NULL);
    rd_kafka_poll_set_consumer(in->rk);
    if (ev_rdk_watch_start(&in->watch, svc_base(an->svc), rd_kafka_queue_get_consumer(in->rk), on_queue, in, err,
                           errsz) < 0)
        goto fail;
    in->tick_ev = event_new(svc_base(an->svc), -1, EV_PERSIST, on_tick, in);
    in->retry_ev = evtimer_new(svc_base(an->svc), on_retry, in);
    in->linger_ev = evtimer_new(svc_base(an->svc), on_linger, in);
    struct timeval tv = {1, 0};
    if (!in->tick_ev || !in->retry_ev || !in->linger_ev || event_add(in->tick_ev, &tv) < 0) {
        sk_errf(err, errsz, "analytics consumer: cannot add its timers");
        goto fail;
    }
    topics = rd_kafka_topic_partition_list_new(4);
    /* --topics is a comma-separated list of names and/or regexes. */
    for (const char *t = an->conf->topics; *t;) {
        size_t len = strcspn(t, ",");
        if (len) {
            char *name = sk_strndup(t, len);
            rd_kafka_topic_partition_list_add(topics, name, RD_KAFKA_PARTITION_UA);
            free(name);
        }
        t += len;
        if (*t == ',') t++;
    }
    if (topics->cnt == 0) {
        sk_errf(err, errsz, "--topics names no topic");
        goto fail;
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(in->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    topics = NULL;
    if (e) {
        sk_errf(err, errsz, "analytics consumer: subscribe: %s", rd_kafka_err2str(e));
        goto fail;
    }
    sk_info(FAC, "group %s subscribed to %s, %lld records per transaction at most", an->conf->group,
            an->conf->topics, (long long)an->conf->batch);
    return in;
fail:
    if (kc) rd_kafka_conf_destroy(kc);
    if (topics) rd_kafka_topic_partition_list_destroy(topics);
    in->closed = 1;
    an_ingest_free(in);
    return NULL;
}

void an_ingest_stop(an_ingest_t *in)
{
    if (!in || in->stopping) return;
    in->stopping = 1;
    drop_held(in);
}

void an_ingest_free(an_ingest_t *in)
{
    if (!in) return;
    if (in->tick_ev) event_free(in->tick_ev);
    drop_held(in);
    if (in->retry_ev) event_free(in->retry_ev);
    if (in->linger_ev) event_free(in->linger_ev);
    for (size_t i = 0; i < in->nnexts; i++) free(in->nexts[i].topic);
    free(in->nexts);
    ev_rdk_watch_stop(&in->watch);
    if (in->rk) {
        if (!in->closed) {
            /* Commits the stored offsets and leaves the group. */
            rd_kafka_resp_err_t e = rd_kafka_consumer_close(in->rk);
            if (e) sk_warn(FAC, "close: %s", rd_kafka_err2str(e));
        }
        rd_kafka_destroy(in->rk);
    }
    free(in);
}

void an_ingest_info(an_ingest_t *in, an_ingest_info_t *out)
{
    *out = in->info;
    out->lag = 0;
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(in->rk, &l) || !l) return;
    out->assigned = l->cnt;
    for (int i = 0; i < l->cnt; i++) {
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(in->rk, l->elems[i].topic, l->elems[i].partition, &lo, &hi)) continue;
        const next_off_t *n = next_of(in, l->elems[i].topic, l->elems[i].partition, 0);
        int64_t pos = n ? n->next : -1;
        if (pos < 0) pos = lo >= 0 ? lo : 0;
        if (hi > pos) out->lag += hi - pos;
    }
    rd_kafka_topic_partition_list_destroy(l);
}
