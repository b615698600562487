/*
 * ev_tool - drives libevents' outbox relay, consumer and key-store client
 * against a real souk-broker, for the test_*.sh scripts next to it.
 *
 *   ev_tool fill DB TOPIC N KEYS [FIRST]
 *       adds N outbox rows (transactions of 1..5 rows) with values
 *       {"id":"row-<seq>","type":"test.row","seq":<seq>,"key":"k<seq % KEYS>"},
 *       seq = FIRST.. (default 1), key k<seq % KEYS>.
 *   ev_tool count DB
 *       prints the number of outbox rows.
 *   ev_tool relay DB BROKERS [--until-empty S] [--for S] [--live TOPIC N KEYS RATE]
 *                            [--max-in-flight N]
 *       runs the relay on a libevent loop.  --until-empty: exit 0 once the
 *       outbox is empty (and --live is done), 1 after S seconds.  --for: run
 *       S seconds, free the relay (undelivered rows stay) and exit 0.
 *       --live: meanwhile add N rows (as fill, seq 1..N) at RATE rows/s.
 *       --max-in-flight: the relay's in-flight window (rows), to slow it.
 *       Prints "relay: delivered=D failed=F rewinds=R depth=N broker_up=0|1
 *       reports=R" (R: delivered reports of type test.row seen by on_report).
 *   ev_tool consume DB BROKERS GROUP TOPIC [--until-caught-up S] [--for S]
 *                   [--max-attempts N] [--backoff MS] [--crash-after N] [--raw]
 *                   [--session-timeout MS]
 *       runs a consumer (and a relay, for the DLQ and the handler's events)
 *       with a handler for user.registered whose behaviour depends on
 *       data.email: "fail-..." always fails; "flakyN-..." fails the first N
 *       attempts; "abort-..." rolls the whole transaction back the first
 *       time (as SQLite does on an I/O error), then applies; "abortall-..."
 *       does that every time; anything else
 *       applies: it counts the event in
 *       applied(event_id, n) and emits user.created through the outbox, in
 *       the handler's transaction.  Prints one line per outcome:
 *         outcome NAME TOPIC/PARTITION/OFFSET EVENT_ID TYPE attempt=N
 *       --until-caught-up: exit 0 when every partition is processed up to
 *       the high watermark seen at start, nothing is being retried and the
 *       outbox is empty (1 after S seconds).  --for: run S seconds, then
 *       close (committing what was processed).  --crash-after N: _exit(3)
 *       right after the N-th applied outcome - after the transaction's
 *       commit and before the offset commit.  --raw: TOPIC is not an
 *       envelope topic: a raw handler (schema kv.expired) counts each
 *       record in applied(<key>, n), and fails for the key "fail".
 *   ev_tool applied DB
 *       prints "EVENT_ID N" per applied event.
 *   ev_tool offsets BROKERS GROUP TOPIC
 *       prints "PARTITION COMMITTED HIGH" per partition.
 *   ev_tool reset BROKERS GROUP TOPIC OFFSET
 *       commits OFFSET for every partition (the group must be empty).
 *   ev_tool kv ADDR basic|reconnect
 *       basic: SET EX / GET / SET NX / DEL / GETDEL / INCR+EXPIRE windows /
 *       expiry / binary values / an error reply.  reconnect: waits for a
 *       connection, prints "phase connected", then GETs every 100 ms until it
 *       has seen the connection fail ("phase down") and come back ("phase
 *       up"); the script stops and restarts the broker in between.
 *
 * Exits 0 on success, 1 with a "ev_tool: FAIL: ..." line otherwise.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "consumer.h"
#include "envelope.h"
#include "kvclient.h"
#include "outbox.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "sto.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ev_tool: FAIL: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static const sto_migration_t migrations[] = {
    {1, "outbox", EV_OUTBOX_MIGRATION_SQL},
    {2, "processed_events", EV_INBOX_MIGRATION_SQL},
    {3, "applied", "CREATE TABLE applied (event_id TEXT PRIMARY KEY, n INTEGER NOT NULL);"},
};

static sqlite3 *open_db(const char *path)
{
    char err[512];
    sqlite3 *db;
    if (sto_open(path, migrations, sizeof migrations / sizeof migrations[0], &db, err, sizeof err) < 0)
        die("open %s: %s", path, err);
    return db;
}

static int64_t depth_of(sqlite3 *db)
{
    int64_t n = -1;
    if (sto_query_i64(db, &n, "SELECT count(*) FROM outbox", "") != 1) die("count: %s", sqlite3_errmsg(db));
    return n;
}

/* ---- fill ---------------------------------------------------------------------- */

/* Adds rows seq..seq+n-1 in one transaction. */
static void add_rows(sqlite3 *db, const char *topic, int64_t seq, int n, int keys)
{
    char err[512], key[32], id[32];
    if (sto_begin(db) < 0) die("begin: %s", sqlite3_errmsg(db));
    for (int i = 0; i < n; i++, seq++) {
        snprintf(key, sizeof key, "k%lld", (long long)(seq % keys));
        snprintf(id, sizeof id, "row-%lld", (long long)seq);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "type", "test.row");
        cJSON_AddNumberToObject(o, "seq", (double)seq);
        cJSON_AddStringToObject(o, "key", key);
        char *v = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!v) die("out of memory");
        if (ev_outbox_add(db, topic, key, v, NULL, err, sizeof err) < 0) die("%s", err);
        free(v);
    }
    if (sto_commit(db) < 0) die("commit: %s", sqlite3_errmsg(db));
}

static int cmd_fill(int argc, char **argv)
{
    if (argc < 6) die("usage: fill DB TOPIC N KEYS [FIRST]");
    sqlite3 *db = open_db(argv[2]);
    int64_t n = atoll(argv[4]), first = argc > 6 ? atoll(argv[6]) : 1;
    int keys = atoi(argv[5]);
    for (int64_t done = 0; done < n;) {
        int k = (int)(done % 5) + 1;
        if (k > n - done) k = (int)(n - done);
        add_rows(db, argv[3], first + done, k, keys);
        done += k;
    }
    printf("fill: %lld rows\n", (long long)n);
    sto_close(db);
    return 0;
}

static int cmd_count(int argc, char **argv)
{
    if (argc < 3) die("usage: count DB");
    sqlite3 *db = open_db(argv[2]);
    printf("%lld\n", (long long)depth_of(db));
    sto_close(db);
    return 0;
}

/* ---- relay ---------------------------------------------------------------------- */

typedef struct relay_run_s {
    struct event_base *base;
    sqlite3 *db;
    ev_relay_t *relay;
    int64_t deadline_ms;
    int until_empty;
    int result;
    const char *live_topic;
    int64_t live_n, live_done;
    int live_keys, live_rate;
    int64_t live_start_ms;
} relay_run_t;

static void relay_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_run_t *r = arg;
    if (r->live_topic && r->live_done < r->live_n) {
        int64_t due = (sk_mono_ms() - r->live_start_ms) * r->live_rate / 1000;
        if (due > r->live_n) due = r->live_n;
        while (r->live_done < due) {
            int k = (int)(r->live_done % 5) + 1;
            if (k > due - r->live_done) k = (int)(due - r->live_done);
            add_rows(r->db, r->live_topic, r->live_done + 1, k, r->live_keys);
            r->live_done += k;
        }
        ev_relay_kick(r->relay);
    }
    if (r->until_empty && (!r->live_topic || r->live_done == r->live_n)) {
        ev_relay_info_t info;
        ev_relay_info(r->relay, &info);
        if (info.depth == 0 && info.in_flight == 0) {
            r->result = 0;
            event_base_loopbreak(r->base);
            return;
        }
    }
    if (sk_mono_ms() >= r->deadline_ms) {
        r->result = r->until_empty ? 1 : 0;
        if (r->until_empty) fprintf(stderr, "ev_tool: FAIL: the outbox is not empty after the time limit\n");
        event_base_loopbreak(r->base);
    }
}

static uint64_t reports;

static void on_report(void *opaque, const char *type, int delivered)
{
    (void)opaque;
    if (delivered && !strcmp(type, "test.row")) reports++;
}

static int cmd_relay(int argc, char **argv)
{
    if (argc < 4) die("usage: relay DB BROKERS [--until-empty S] [--for S] [--live TOPIC N KEYS RATE]");
    relay_run_t r = {0};
    char err[512];
    int secs = 60, max_in_flight = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--max-in-flight") && i + 1 < argc) {
            max_in_flight = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--until-empty") && i + 1 < argc) {
            r.until_empty = 1;
            secs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--for") && i + 1 < argc) {
            secs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--live") && i + 4 < argc) {
            r.live_topic = argv[++i];
            r.live_n = atoll(argv[++i]);
            r.live_keys = atoi(argv[++i]);
            r.live_rate = atoi(argv[++i]);
        } else {
            die("relay: unknown option %s", argv[i]);
        }
    }
    r.base = event_base_new();
    r.db = open_db(argv[2]);
    ev_relay_conf_t conf = {.brokers = argv[3], .client_id = "ev_tool", .backoff_ms = 100, .backoff_max_ms = 2000,
                            .max_in_flight = max_in_flight, .batch_rows = max_in_flight, .on_report = on_report};
    r.relay = ev_relay_new(r.base, r.db, &conf, err, sizeof err);
    if (!r.relay) die("%s", err);
    r.deadline_ms = sk_mono_ms() + secs * 1000LL;
    r.live_start_ms = sk_mono_ms();
    struct event *check = event_new(r.base, -1, EV_PERSIST, relay_check, &r);
    struct timeval tv = {0, 20000};
    event_add(check, &tv);
    event_base_dispatch(r.base);
    ev_relay_info_t info;
    ev_relay_info(r.relay, &info);
    printf("relay: delivered=%llu failed=%llu rewinds=%llu depth=%lld broker_up=%d reports=%llu\n",
           (unsigned long long)info.delivered, (unsigned long long)info.failed, (unsigned long long)info.rewinds,
           (long long)info.depth, info.broker_up, (unsigned long long)reports);
    fflush(stdout);
    event_free(check);
    ev_relay_free(r.relay);
    sto_close(r.db);
    event_base_free(r.base);
    return r.result;
}

/* ---- consume ---------------------------------------------------------------------- */

#define MAX_PARTS 64

typedef struct consume_run_s {
    struct event_base *base;
    sqlite3 *db;
    ev_consumer_t *consumer;
    ev_relay_t *relay;
    int np;
    int64_t high[MAX_PARTS], start_committed[MAX_PARTS];
    const char *topic;
    int crash_after, applied;
    int64_t deadline_ms;
    int until_caught_up, result;
    struct {
        char id[128];
        int n;
    } flaky[64];
    int nflaky;
} consume_run_t;

static consume_run_t *run;

static int flaky_attempt(const char *id)
{
    for (int i = 0; i < run->nflaky; i++)
        if (!strcmp(run->flaky[i].id, id)) return ++run->flaky[i].n;
    if (run->nflaky == 64) die("too many flaky events");
    snprintf(run->flaky[run->nflaky].id, sizeof run->flaky[0].id, "%s", id);
    run->flaky[run->nflaky].n = 1;
    return run->flaky[run->nflaky++].n;
}

static int on_user_registered(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    (void)ctx;
    const char *email = ev_str(ev->data, "email");
    if (!strncmp(email, "fail-", 5)) {
        snprintf(err, errsz, "boom: %s", email);
        return -1;
    }
    if ((!strncmp(email, "abort-", 6) && flaky_attempt(ev->id) == 1) || !strncmp(email, "abortall-", 9)) {
        /* what SQLite does on an I/O error or a full disk: the whole
         * transaction - the batch - is gone */
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        snprintf(err, errsz, "aborted the transaction: %s", email);
        return -1;
    }
    if (!strncmp(email, "flaky", 5)) {
        int n = atoi(email + 5), a = flaky_attempt(ev->id);
        if (a <= n) {
            snprintf(err, errsz, "flaky: attempt %d of the first %d fails", a, n);
            return -1;
        }
    }
    if (sto_exec(db, "INSERT INTO applied (event_id, n) VALUES (?, 1) ON CONFLICT (event_id) DO UPDATE SET n = n + 1",
                 "t", ev->id) != 1) {
        snprintf(err, errsz, "applied: %s", sqlite3_errmsg(db));
        return -1;
    }
    cJSON *data = ev_obj();
    ev_set_str(data, "userId", ev_str(ev->data, "userId"));
    ev_set_str(data, "email", email);
    ev_set_str(data, "fullName", "Test User");
    ev_set_null(data, "phone");
    ev_event_t *out = ev_new_caused(ev, "user.created", "ev_tool", data, err, errsz);
    if (!out) return -1;
    int rc = ev_outbox_add_event(db, out, err, errsz);
    ev_free(out);
    return rc;
}

static int on_raw(void *ctx, sqlite3 *db, const ev_record_t *rec, const cJSON *value, char *err, size_t errsz)
{
    (void)ctx;
    (void)rec;
    const char *key = ev_str(value, "key");
    if (!key) {
        snprintf(err, errsz, "no key");
        return -1;
    }
    if (!strcmp(key, "fail")) {
        snprintf(err, errsz, "raw boom");
        return -1;
    }
    if (sto_exec(db, "INSERT INTO applied (event_id, n) VALUES (?, 1) ON CONFLICT (event_id) DO UPDATE SET n = n + 1",
                 "t", key) != 1) {
        snprintf(err, errsz, "applied: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static ev_raw_handler_t raw_handlers[] = {
    {NULL, "kv.expired", on_raw},
    {NULL, NULL, NULL},
};

static const ev_handler_t handlers[] = {
    {"user.registered", on_user_registered},
    {NULL, NULL},
};

static void on_outcome(void *ctx, const ev_record_t *rec, const char *id, const char *type, ev_outcome_t o,
                       const char *err)
{
    (void)ctx;
    printf("outcome %s %s/%" PRId32 "/%" PRId64 " %s %s attempt=%d%s%s\n", ev_outcome_name(o), rec->topic,
           rec->partition, rec->offset, id ? id : "-", type ? type : "-", rec->attempt, err ? " error=" : "",
           err ? err : "");
    fflush(stdout);
    if (o == EV_OUTCOME_APPLIED && ++run->applied == run->crash_after) {
        fprintf(stderr, "ev_tool: crashing after %d applied events (offset not committed)\n", run->applied);
        _exit(3);
    }
}

static rd_kafka_t *plain_consumer(const char *brokers, const char *group)
{
    char err[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", brokers, err, sizeof err) ||
        rd_kafka_conf_set(kc, "group.id", group, err, sizeof err) ||
        rd_kafka_conf_set(kc, "enable.auto.commit", "false", err, sizeof err))
        die("conf: %s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
    if (!rk) die("rd_kafka_new: %s", err);
    return rk;
}

static int partition_count(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (err) die("metadata for %s: %s", topic, rd_kafka_err2str(err));
    if (md->topic_cnt != 1 || md->topics[0].err) die("metadata for %s: topic missing", topic);
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (n < 1 || n > MAX_PARTS) die("%s has %d partitions", topic, n);
    return n;
}

/* committed[p] and high[p] for every partition of topic; returns the count. */
static int group_offsets(const char *brokers, const char *group, const char *topic, int64_t *committed,
                         int64_t *high)
{
    rd_kafka_t *rk = plain_consumer(brokers, group);
    int np = partition_count(rk, topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++) rd_kafka_topic_partition_list_add(l, topic, p);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, 10000);
    if (err) die("committed: %s", rd_kafka_err2str(err));
    for (int i = 0; i < l->cnt; i++) committed[l->elems[i].partition] = l->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(l);
    for (int p = 0; p < np; p++) {
        int64_t lo;
        err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &high[p], 10000);
        if (err) die("watermarks of %s[%d]: %s", topic, p, rd_kafka_err2str(err));
    }
    rd_kafka_destroy(rk);
    return np;
}

typedef struct caught_up_s {
    consume_run_t *r;
    int parts, done, retrying;
} caught_up_t;

static void count_partition(void *opaque, const char *topic, int32_t partition, int64_t next, int64_t committed,
                            int64_t high, int retrying)
{
    (void)committed;
    (void)high;
    caught_up_t *cu = opaque;
    if (strcmp(topic, cu->r->topic) || partition < 0 || partition >= cu->r->np) return;
    cu->parts++;
    if (retrying) cu->retrying++;
    int64_t want = cu->r->high[partition];
    if (want <= 0 || next >= want || (next < 0 && cu->r->start_committed[partition] >= want)) cu->done++;
}

static void consume_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    consume_run_t *r = arg;
    if (r->until_caught_up) {
        caught_up_t cu = {r, 0, 0, 0};
        ev_consumer_foreach_partition(r->consumer, count_partition, &cu);
        ev_relay_info_t info;
        ev_relay_info(r->relay, &info);
        if (cu.parts == r->np && cu.done == r->np && cu.retrying == 0 && info.depth == 0 && info.in_flight == 0) {
            r->result = 0;
            event_base_loopbreak(r->base);
            return;
        }
    }
    if (sk_mono_ms() >= r->deadline_ms) {
        r->result = r->until_caught_up ? 1 : 0;
        if (r->until_caught_up) fprintf(stderr, "ev_tool: FAIL: not caught up within the time limit\n");
        event_base_loopbreak(r->base);
    }
}

static int cmd_consume(int argc, char **argv)
{
    if (argc < 6) die("usage: consume DB BROKERS GROUP TOPIC [options]");
    static consume_run_t r;
    char err[512];
    int secs = 60, max_attempts = 5, backoff = 200, session_timeout = 3000;
    run = &r;
    r.topic = argv[5];
    for (int i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "--until-caught-up") && i + 1 < argc) {
            r.until_caught_up = 1;
            secs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--for") && i + 1 < argc) {
            secs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--max-attempts") && i + 1 < argc) {
            max_attempts = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--backoff") && i + 1 < argc) {
            backoff = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--crash-after") && i + 1 < argc) {
            r.crash_after = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--session-timeout") && i + 1 < argc) {
            session_timeout = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--raw")) {
            raw_handlers[0].topic = r.topic;
        } else {
            die("consume: unknown option %s", argv[i]);
        }
    }
    r.np = group_offsets(argv[3], argv[4], r.topic, r.start_committed, r.high);
    for (int p = 0; p < r.np; p++)
        fprintf(stderr, "ev_tool: %s[%d]: committed %lld, high watermark %lld\n", r.topic, p,
                (long long)r.start_committed[p], (long long)r.high[p]);
    r.base = event_base_new();
    r.db = open_db(argv[2]);
    ev_relay_conf_t rconf = {.brokers = argv[3], .client_id = argv[4], .backoff_ms = 100, .backoff_max_ms = 2000};
    r.relay = ev_relay_new(r.base, r.db, &rconf, err, sizeof err);
    if (!r.relay) die("%s", err);
    const char *topics[] = {r.topic, NULL};
    ev_consumer_conf_t cconf = {
        .brokers = argv[3],
        .group = argv[4],
        .topics = topics,
        .handlers = handlers,
        .raw_handlers = raw_handlers,
        .max_attempts = max_attempts,
        .backoff_ms = backoff,
        .backoff_max_ms = backoff * 8,
        .session_timeout_ms = session_timeout,
        .relay = r.relay,
        .on_outcome = on_outcome,
    };
    r.consumer = ev_consumer_new(r.base, r.db, &cconf, err, sizeof err);
    if (!r.consumer) die("%s", err);
    r.deadline_ms = sk_mono_ms() + secs * 1000LL;
    struct event *check = event_new(r.base, -1, EV_PERSIST, consume_check, &r);
    struct timeval tv = {0, 100000};
    event_add(check, &tv);
    event_base_dispatch(r.base);
    event_free(check);
    ev_consumer_stop(r.consumer);
    if (ev_consumer_close(r.consumer) < 0) fprintf(stderr, "ev_tool: the final offset commit failed\n");
    int64_t left = ev_relay_drain(r.relay, 10000);
    if (left != 0) {
        fprintf(stderr, "ev_tool: FAIL: %lld outbox rows left after the drain\n", (long long)left);
        r.result = 1;
    }
    ev_consumer_free(r.consumer);
    ev_relay_free(r.relay);
    sto_close(r.db);
    event_base_free(r.base);
    return r.result;
}

static int cmd_applied(int argc, char **argv)
{
    if (argc < 3) die("usage: applied DB");
    sqlite3 *db = open_db(argv[2]);
    sqlite3_stmt *st = sto_query(db, "SELECT event_id, n FROM applied ORDER BY event_id", "");
    if (!st) die("%s", sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW)
        printf("%s %lld\n", sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1));
    sto_done(st);
    sto_close(db);
    return 0;
}

static int cmd_offsets(int argc, char **argv)
{
    if (argc < 5) die("usage: offsets BROKERS GROUP TOPIC");
    int64_t committed[MAX_PARTS], high[MAX_PARTS];
    int np = group_offsets(argv[2], argv[3], argv[4], committed, high);
    for (int p = 0; p < np; p++) printf("%d %lld %lld\n", p, (long long)committed[p], (long long)high[p]);
    return 0;
}

static int cmd_reset(int argc, char **argv)
{
    if (argc < 6) die("usage: reset BROKERS GROUP TOPIC OFFSET");
    rd_kafka_t *rk = plain_consumer(argv[2], argv[3]);
    int np = partition_count(rk, argv[4]);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++) rd_kafka_topic_partition_list_add(l, argv[4], p)->offset = atoll(argv[5]);
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, l, 0);
    if (err) die("commit: %s", rd_kafka_err2str(err));
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].err) die("commit [%d]: %s", (int)l->elems[i].partition, rd_kafka_err2str(l->elems[i].err));
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    printf("reset: %d partitions of %s to %s for group %s\n", np, argv[4], argv[5], argv[3]);
    return 0;
}

/* ---- kv ---------------------------------------------------------------------------- */

static struct event_base *kv_base;
static ev_kv_t *kv;
static int kv_done;
static ev_kv_reply_t kv_last;
static char kv_str[256];
static size_t kv_len;
static int kv_up;

static void kv_state(void *opaque, int up)
{
    (void)opaque;
    kv_up = up;
    fprintf(stderr, "ev_tool: key store %s\n", up ? "connected" : "disconnected");
}

static void kv_reply(void *opaque, const ev_kv_reply_t *rep)
{
    (void)opaque;
    kv_last = *rep;
    kv_len = 0;
    kv_str[0] = '\0';
    if (rep->str) {
        kv_len = rep->len < sizeof kv_str ? rep->len : sizeof kv_str - 1;
        memcpy(kv_str, rep->str, kv_len);
        kv_str[kv_len] = '\0';
        kv_last.str = kv_str;
    }
    if (rep->err) {
        snprintf(kv_str, sizeof kv_str, "%s", rep->err);
        kv_last.err = kv_str;
    }
    kv_done = 1;
}

/* Runs the loop until the reply of the command just sent, or dies. */
static void kv_wait(int sent, const char *what)
{
    if (sent < 0) die("%s: not sent (no connection)", what);
    int64_t deadline = sk_mono_ms() + 10000;
    kv_done = 0;
    while (!kv_done) {
        if (sk_mono_ms() > deadline) die("%s: no reply within 10 s", what);
        event_base_loop(kv_base, EVLOOP_ONCE);
    }
}

static void kv_sleep(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(kv_base, &tv);
    event_base_dispatch(kv_base);
}

static void kv_wait_up(int secs)
{
    int64_t deadline = sk_mono_ms() + secs * 1000LL;
    while (!ev_kv_connected(kv)) {
        if (sk_mono_ms() > deadline) die("no connection to the key store within %d s", secs);
        kv_sleep(50);
    }
}

#define EXPECT(cond, ...)                                                                                    \
    do {                                                                                                     \
        if (!(cond)) die(__VA_ARGS__);                                                                       \
    } while (0)

static void kv_basic(void)
{
    kv_wait_up(10);
    kv_wait(ev_kv_set_ex(kv, "ev:a", "hello", 5, 100, kv_reply, NULL), "SET EX");
    EXPECT(kv_last.status == EV_KV_OK && !strcmp(kv_last.str, "OK"), "SET EX: status %d", kv_last.status);
    kv_wait(ev_kv_get(kv, "ev:a", kv_reply, NULL), "GET");
    EXPECT(kv_last.status == EV_KV_OK && kv_len == 5 && !strcmp(kv_str, "hello"), "GET: got '%s'", kv_str);
    kv_wait(ev_kv_set_nx_ex(kv, "ev:a", "other", 5, 100, kv_reply, NULL), "SET NX (exists)");
    EXPECT(kv_last.status == EV_KV_NIL, "SET NX of an existing key: status %d", kv_last.status);
    kv_wait(ev_kv_set_nx_ex(kv, "ev:b", "bee", 3, 100, kv_reply, NULL), "SET NX (new)");
    EXPECT(kv_last.status == EV_KV_OK, "SET NX of a new key: status %d", kv_last.status);
    kv_wait(ev_kv_del(kv, "ev:a", kv_reply, NULL), "DEL");
    EXPECT(kv_last.status == EV_KV_OK && kv_last.integer == 1, "DEL: %lld", kv_last.integer);
    kv_wait(ev_kv_get(kv, "ev:a", kv_reply, NULL), "GET deleted");
    EXPECT(kv_last.status == EV_KV_NIL, "GET of a deleted key: status %d", kv_last.status);
    kv_wait(ev_kv_del(kv, "ev:a", kv_reply, NULL), "DEL again");
    EXPECT(kv_last.status == EV_KV_OK && kv_last.integer == 0, "DEL of a missing key: %lld", kv_last.integer);
    kv_wait(ev_kv_getdel(kv, "ev:b", kv_reply, NULL), "GETDEL");
    EXPECT(kv_last.status == EV_KV_OK && !strcmp(kv_str, "bee"), "GETDEL: got '%s'", kv_str);
    kv_wait(ev_kv_get(kv, "ev:b", kv_reply, NULL), "GET after GETDEL");
    EXPECT(kv_last.status == EV_KV_NIL, "GET after GETDEL: status %d", kv_last.status);

    /* binary-safe values */
    kv_wait(ev_kv_set_ex(kv, "ev:bin", "a\0b\r\n", 5, 100, kv_reply, NULL), "SET binary");
    kv_wait(ev_kv_get(kv, "ev:bin", kv_reply, NULL), "GET binary");
    EXPECT(kv_last.status == EV_KV_OK && kv_len == 5 && !memcmp(kv_str, "a\0b\r\n", 5), "binary value: %zu bytes",
           kv_len);

    /* rate-limit window: 3 hits count 1, 2, 3; PTTL within the window */
    for (int i = 1; i <= 3; i++) {
        kv_wait(ev_kv_incr_expire(kv, "ev:rl", 2, kv_reply, NULL), "INCR+EXPIRE");
        EXPECT(kv_last.status == EV_KV_OK && kv_last.integer == i, "INCR+EXPIRE #%d: status %d count %lld (%s)", i,
               kv_last.status, kv_last.integer, kv_last.err ? kv_last.err : "");
    }
    const char *pttl[] = {"PTTL", "ev:rl"};
    kv_wait(ev_kv_command(kv, 2, pttl, NULL, kv_reply, NULL), "PTTL");
    EXPECT(kv_last.status == EV_KV_OK && kv_last.integer > 0 && kv_last.integer <= 2000, "PTTL of the window: %lld",
           kv_last.integer);
    /* a counter left without a TTL (a crash between INCR and EXPIRE) is repaired */
    const char *set_plain[] = {"SET", "ev:stuck", "7"};
    kv_wait(ev_kv_command(kv, 3, set_plain, NULL, kv_reply, NULL), "SET without TTL");
    kv_wait(ev_kv_incr_expire(kv, "ev:stuck", 60, kv_reply, NULL), "INCR+EXPIRE on a stuck key");
    EXPECT(kv_last.status == EV_KV_OK && kv_last.integer == 8, "stuck counter: %lld", kv_last.integer);
    const char *ttl[] = {"TTL", "ev:stuck"};
    kv_wait(ev_kv_command(kv, 2, ttl, NULL, kv_reply, NULL), "TTL");
    EXPECT(kv_last.status == EV_KV_OK && kv_last.integer > 0 && kv_last.integer <= 60, "stuck counter TTL: %lld",
           kv_last.integer);

    /* expiry: a 1 s key is gone after 2.2 s, and the 2 s window restarted */
    kv_wait(ev_kv_set_ex(kv, "ev:short", "x", 1, 1, kv_reply, NULL), "SET EX 1");
    kv_sleep(2200);
    kv_wait(ev_kv_get(kv, "ev:short", kv_reply, NULL), "GET expired");
    EXPECT(kv_last.status == EV_KV_NIL, "a key with a 1 s TTL still exists after 2.2 s");
    kv_wait(ev_kv_incr_expire(kv, "ev:rl", 2, kv_reply, NULL), "INCR+EXPIRE after the window");
    EXPECT(kv_last.status == EV_KV_OK && kv_last.integer == 1, "a new window should count 1, got %lld",
           kv_last.integer);

    /* errors are reported, and the connection stays usable */
    const char *bad[] = {"NOSUCHCOMMAND", "x"};
    kv_wait(ev_kv_command(kv, 2, bad, NULL, kv_reply, NULL), "unknown command");
    EXPECT(kv_last.status == EV_KV_ERROR && kv_last.err && strstr(kv_last.err, "ERR"), "unknown command: status %d",
           kv_last.status);
    EXPECT(ev_kv_set_ex(kv, "ev:x", "1", 1, 0, kv_reply, NULL) == -1, "a TTL of 0 must be refused");
    kv_wait(ev_kv_get(kv, "ev:bin", kv_reply, NULL), "GET after an error");
    EXPECT(kv_last.status == EV_KV_OK, "GET after an error reply: status %d", kv_last.status);
    printf("kv basic: ok\n");
}

static void kv_reconnect(void)
{
    kv_wait_up(30);
    printf("phase connected\n");
    fflush(stdout);
    kv_wait(ev_kv_set_ex(kv, "ev:persist", "v", 1, 300, kv_reply, NULL), "SET");
    EXPECT(kv_last.status == EV_KV_OK, "SET: status %d", kv_last.status);
    int64_t deadline = sk_mono_ms() + 60000;
    int down = 0;
    while (sk_mono_ms() < deadline) {
        int sent = ev_kv_get(kv, "ev:persist", kv_reply, NULL);
        int ok = 0;
        if (sent == 0) {
            kv_wait(0, "GET");
            ok = kv_last.status != EV_KV_ERROR;
        }
        if (!ok && !down) {
            down = 1;
            printf("phase down\n");
            fflush(stdout);
        } else if (ok && down) {
            EXPECT(ev_kv_connected(kv) && kv_up, "a reply came but the client says it is not connected");
            printf("phase up (value %s)\n", kv_last.status == EV_KV_OK ? kv_str : "(nil)");
            return;
        }
        kv_sleep(100);
    }
    die("did not see the key store go down and come back within 60 s");
}

static int cmd_kv(int argc, char **argv)
{
    if (argc < 4) die("usage: kv ADDR basic|reconnect");
    char err[256];
    kv_base = event_base_new();
    ev_kv_conf_t conf = {.addr = argv[2], .backoff_ms = 50, .backoff_max_ms = 500, .on_state = kv_state};
    kv = ev_kv_new(kv_base, &conf, err, sizeof err);
    if (!kv) die("%s", err);
    if (!strcmp(argv[3], "basic")) kv_basic();
    else if (!strcmp(argv[3], "reconnect")) kv_reconnect();
    else die("kv: unknown mode %s", argv[3]);
    ev_kv_free(kv);
    event_base_free(kv_base);
    return 0;
}

int main(int argc, char **argv)
{
    sk_log_set_service("ev_tool");
    if (getenv("EV_TOOL_DEBUG")) sk_log_set_level(SK_LOG_DEBUG);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) die("usage: ev_tool fill|count|relay|consume|applied|offsets|reset|kv ...");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "fill")) return cmd_fill(argc, argv);
    if (!strcmp(cmd, "count")) return cmd_count(argc, argv);
    if (!strcmp(cmd, "relay")) return cmd_relay(argc, argv);
    if (!strcmp(cmd, "consume")) return cmd_consume(argc, argv);
    if (!strcmp(cmd, "applied")) return cmd_applied(argc, argv);
    if (!strcmp(cmd, "offsets")) return cmd_offsets(argc, argv);
    if (!strcmp(cmd, "reset")) return cmd_reset(argc, argv);
    if (!strcmp(cmd, "kv")) return cmd_kv(argc, argv);
    die("unknown command %s", cmd);
}
