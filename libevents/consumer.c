/*
 * consumer.c - librdkafka high-level consumer on the loop, with inbox dedupe,
 * retries and the DLQ (see consumer.h).
 *
 * State per assigned partition (part_t): the next offset to process and to
 * commit, the last offset committed, and - while a record is being retried -
 * the record itself (held), its attempt count and the retry timer.  A record
 * goes through try_record(), which returns DONE (applied, duplicate,
 * skipped or dead-lettered: move past it) or AGAIN (keep it, pause the
 * partition, retry on the timer).
 *
 * Batches.  The records of one wake-up (serve()) are applied in ONE SQLite
 * transaction, each in a SAVEPOINT of its own: a failing handler rolls back
 * only its record, and the batch costs one WAL commit instead of one per
 * record.  Until that COMMIT nothing leaves the process: outcomes are kept
 * (and reported after it), offsets are committed after it, the relay is
 * kicked after it.  Should the COMMIT fail, or SQLite abort the whole
 * transaction (an I/O error, a full disk), every partition the batch
 * touched goes back to where the batch found it (rewind: seek to its first
 * record of the batch), and its records come again.  A rebalance during
 * serve() ends the batch first, so that the offsets committed before the
 * partitions go are those of committed work.  Retries (the timer) run
 * outside batches, in their own transactions.
 */
#include "consumer.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "rdkloop.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "sto.h"

#define FAC "consumer"
#define POLL_BUDGET 500   /* records per wake-up before yielding to other events */
#define TICK_MS 1000      /* keep-alive: max.poll.interval.ms, commit retries */
#define ERRSZ 512
#define CLOSE_COMMIT_MS 5000 /* the final commit waits at most this long */
#define CREATE_TOPICS_MS 3000 /* at start, creating missing topics waits at most this long */
#define SOLO_MS 2000          /* after a lost batch, records go one per transaction this long */

typedef struct part_s {
    struct part_s *next;
    struct ev_consumer_s *c;
    char *topic;
    int32_t partition;
    int64_t next_offset; /* offset after the last record done; -1: none yet */
    int64_t committed;   /* last offset sent in a commit; -1: none */
    rd_kafka_message_t *held; /* the record being retried, or NULL */
    int attempts;        /* failed attempts of held */
    struct event *timer; /* retry timer */
    int64_t batch_from;  /* offset of its first record in the open batch; -1: none */
    int64_t batch_prev;  /* next_offset when the batch reached it */
} part_t;

/* An outcome kept until the batch commits (with its record's message). */
typedef struct kept_s {
    const rd_kafka_message_t *m;
    int attempt;
    char *id, *type, *err;
    ev_outcome_t o;
} kept_t;

struct ev_consumer_s {
    struct event_base *base;
    sqlite3 *db;
    rd_kafka_t *rk;
    ev_rdk_watch_t watch;
    struct event *tick_ev;
    char *group;
    const ev_handler_t *handlers;
    const ev_raw_handler_t *raw_handlers;
    void *ctx;
    int max_attempts, backoff_ms, backoff_max_ms;
    ev_relay_t *relay;
    ev_outcome_fn on_outcome;
    part_t *parts;
    ev_stats_t stats;
    uint64_t commit_errors;
    int closed;
    int stopping; /* ev_consumer_stop(): process nothing more */
    ev_rdk_ratelimit_t rl; /* error logs */
    /* the batch (see the top of this file) */
    int serving;   /* inside serve(): records open a batch */
    int in_batch;  /* BEGIN done, COMMIT not yet */
    int batch_lost; /* SQLite ended the transaction on its own */
    int64_t solo_until_ms; /* after a lost batch: one transaction per record until then */
    kept_t *kept;
    size_t nkept, capkept;
    rd_kafka_message_t **msgs; /* done records of the batch, destroyed at its end */
    size_t nmsgs, capmsgs;
};

enum { DONE = 0, AGAIN = 1 };

/* ---- small pure helpers ------------------------------------------------------- */

const char *ev_outcome_name(ev_outcome_t o)
{
    switch (o) {
    case EV_OUTCOME_APPLIED: return "applied";
    case EV_OUTCOME_DUPLICATE: return "duplicate";
    case EV_OUTCOME_SKIPPED: return "skipped";
    case EV_OUTCOME_RETRY: return "retry";
    case EV_OUTCOME_DLQ: return "dlq";
    }
    return "?";
}

void ev_position_id(const ev_record_t *rec, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%" PRId32 "/%" PRId64, rec->topic, rec->partition, rec->offset);
}

/* 1 if p[0..n) is valid UTF-8 without NUL bytes (so it survives as a JSON
 * string and as a C string). */
static int utf8_text(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = sk_malloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static void *need(void *p)
{
    if (!p) {
        sk_log(SK_LOG_FATAL, FAC, "out of memory (cJSON)");
        abort();
    }
    return p;
}

/* Adds name: the bytes as a string, or nameBase64 when they are not text,
 * or null. */
static void add_bytes(cJSON *o, const char *name, const void *p, size_t n)
{
    char b64name[64];
    if (!p) {
        need(cJSON_AddNullToObject(o, name));
    } else if (utf8_text(p, n)) {
        char *s = sk_strndup(p, n);
        need(cJSON_AddStringToObject(o, name, s));
        free(s);
    } else {
        char *s = base64(p, n);
        snprintf(b64name, sizeof b64name, "%sBase64", name);
        need(cJSON_AddStringToObject(o, b64name, s));
        free(s);
    }
}

char *ev_dlq_value(const ev_record_t *rec, const char *consumer, int attempts, const char *error,
                   const char *event_id, const char *event_type)
{
    char now[SK_RFC3339_LEN];
    cJSON *o = need(cJSON_CreateObject());
    need(cJSON_AddStringToObject(o, "error", error && *error ? error : "unknown error"));
    need(cJSON_AddStringToObject(o, "consumer", consumer ? consumer : ""));
    need(cJSON_AddStringToObject(o, "topic", rec->topic));
    need(cJSON_AddNumberToObject(o, "partition", rec->partition));
    need(cJSON_AddNumberToObject(o, "offset", (double)rec->offset));
    if (rec->timestamp_ms >= 0) need(cJSON_AddNumberToObject(o, "timestamp", (double)rec->timestamp_ms));
    else need(cJSON_AddNullToObject(o, "timestamp"));
    add_bytes(o, "key", rec->key, rec->key_len);
    add_bytes(o, "value", rec->value, rec->value_len);
    need(cJSON_AddNumberToObject(o, "attempts", attempts));
    if (event_id) need(cJSON_AddStringToObject(o, "eventId", event_id));
    if (event_type) need(cJSON_AddStringToObject(o, "eventType", event_type));
    need(cJSON_AddStringToObject(o, "time", sk_rfc3339_ms(sk_wall_ms(), now)));
    char *s = need(cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
    return s;
}

int ev_inbox_mark(sqlite3 *db, const char *consumer, const char *event_id, const char *outcome, char *err,
                  size_t errsz)
{
    int n = sto_exec(db,
                     "INSERT INTO processed_events (consumer, event_id, outcome, processed_at) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (consumer, event_id) DO NOTHING",
                     "tttI", consumer, event_id, outcome ? outcome : "applied", sk_wall_ms());
    if (n < 0) {
        sk_errf(err, errsz, "processed_events: %s", sqlite3_errmsg(db));
        return -1;
    }
    return n > 0;
}

/* 1 if (consumer, id) is in processed_events, 0 if not, -1 on error. */
static int inbox_seen(sqlite3 *db, const char *consumer, const char *id)
{
    int64_t one;
    return sto_query_i64(db, &one, "SELECT 1 FROM processed_events WHERE consumer = ? AND event_id = ?", "tt",
                         consumer, id);
}

/* ---- partitions ------------------------------------------------------------------ */

static part_t *part_find(ev_consumer_t *c, const char *topic, int32_t partition)
{
    for (part_t *p = c->parts; p; p = p->next)
        if (p->partition == partition && !strcmp(p->topic, topic)) return p;
    return NULL;
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg);

static part_t *part_add(ev_consumer_t *c, const char *topic, int32_t partition)
{
    part_t *p = part_find(c, topic, partition);
    if (p) return p;
    p = sk_calloc(1, sizeof *p);
    p->c = c;
    p->topic = sk_strdup(topic);
    p->partition = partition;
    p->next_offset = -1;
    p->committed = -1;
    p->batch_from = -1;
    p->timer = need(evtimer_new(c->base, on_retry_timer, p));
    p->next = c->parts;
    c->parts = p;
    return p;
}

/* A one-partition list for librdkafka calls. */
static rd_kafka_topic_partition_list_t *one_partition(const part_t *p, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = offset;
    return l;
}

static void part_free(part_t *p)
{
    ev_consumer_t *c = p->c;
    if (p->held) {
        /* Leave no application pause behind: a later assignment of the same
         * partition must not start paused. */
        rd_kafka_topic_partition_list_t *l = one_partition(p, RD_KAFKA_OFFSET_INVALID);
        rd_kafka_resume_partitions(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_message_destroy(p->held);
    }
    event_free(p->timer);
    free(p->topic);
    free(p);
}

static void part_remove(ev_consumer_t *c, const char *topic, int32_t partition)
{
    for (part_t **pp = &c->parts; *pp; pp = &(*pp)->next) {
        part_t *p = *pp;
        if (p->partition == partition && !strcmp(p->topic, topic)) {
            *pp = p->next;
            part_free(p);
            return;
        }
    }
}

static void parts_clear(ev_consumer_t *c)
{
    while (c->parts) {
        part_t *p = c->parts;
        c->parts = p->next;
        part_free(p);
    }
}

/* The partitions whose next_offset moved since their last commit, or NULL. */
static rd_kafka_topic_partition_list_t *pending_offsets(ev_consumer_t *c)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    for (part_t *p = c->parts; p; p = p->next) {
        if (p->next_offset < 0 || p->next_offset == p->committed) continue;
        if (!l) l = rd_kafka_topic_partition_list_new(4);
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->next_offset;
    }
    return l;
}

static void mark_committed(ev_consumer_t *c, const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; i < l->cnt; i++) {
        part_t *p = part_find(c, l->elems[i].topic, l->elems[i].partition);
        if (p && !l->elems[i].err) p->committed = l->elems[i].offset;
    }
}

/* Commits the processed offsets asynchronously (the result comes to
 * on_commit, which marks failures for another try). */
static void commit_pending(ev_consumer_t *c)
{
    rd_kafka_topic_partition_list_t *l = pending_offsets(c);
    if (!l) return;
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, l, 1);
    if (err) {
        c->commit_errors++;
        sk_warn(FAC, "offset commit: %s (retried)", rd_kafka_err2str(err));
    } else {
        mark_committed(c, l);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* At close: commits and waits for the answer, at most timeout_ms (the broker
 * may be gone).  Returns 0 or -1. */
static int commit_pending_wait(ev_consumer_t *c, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *l = pending_offsets(c);
    if (!l) return 0;
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(c->rk, l, q, NULL, NULL);
    if (!err) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);
        if (!ev) {
            err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        } else {
            err = rd_kafka_event_error(ev);
            const rd_kafka_topic_partition_list_t *res = rd_kafka_event_topic_partition_list(ev);
            for (int i = 0; !err && res && i < res->cnt; i++) err = res->elems[i].err;
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
    if (err) {
        c->commit_errors++;
        sk_warn(FAC, "group %s: final offset commit: %s (those records will come again, as duplicates)", c->group,
                rd_kafka_err2str(err));
    } else {
        mark_committed(c, l);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return err ? -1 : 0;
}

/* offset_commit_cb: a failed commit marks its partitions for another try. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
                      void *opaque)
{
    (void)rk;
    ev_consumer_t *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &offsets->elems[i];
        rd_kafka_resp_err_t e = tp->err ? tp->err : err;
        if (!e) continue;
        c->commit_errors++;
        sk_warn(FAC, "offset commit of %s[%" PRId32 "]@%" PRId64 ": %s (retried)", tp->topic, tp->partition,
                tp->offset, rd_kafka_err2str(e));
        part_t *p = part_find(c, tp->topic, tp->partition);
        if (p && p->committed == tp->offset) p->committed = -1;
    }
}

static void batch_end(ev_consumer_t *c);

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    ev_consumer_t *c = opaque;
    /* Offsets committed below, and partitions freed, must be those of
     * committed work. */
    batch_end(c);
    int cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) part_add(c, parts->elems[i].topic, parts->elems[i].partition);
        if (cooperative) error = rd_kafka_incremental_assign(rk, parts);
        else aerr = rd_kafka_assign(rk, parts);
        sk_info(FAC, "group %s: %d partitions assigned", c->group, parts->cnt);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            sk_warn(FAC, "group %s: rebalance error: %s", c->group, rd_kafka_err2str(err));
        /* What was processed is committed before the partitions go. */
        commit_pending(c);
        if (cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
            for (int i = 0; i < parts->cnt; i++) part_remove(c, parts->elems[i].topic, parts->elems[i].partition);
            error = rd_kafka_incremental_unassign(rk, parts);
        } else {
            parts_clear(c);
            aerr = rd_kafka_assign(rk, NULL);
        }
        sk_info(FAC, "group %s: %d partitions revoked", c->group, parts->cnt);
    }
    if (error) {
        sk_error(FAC, "group %s: assignment: %s", c->group, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    if (aerr) sk_error(FAC, "group %s: assignment: %s", c->group, rd_kafka_err2str(aerr));
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    ev_consumer_t *c = opaque;
    int transient = err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT;
    if (!ev_rdk_ratelimit(&c->rl, err, transient ? 60000 : 10000)) return;
    sk_warn(FAC, "group %s: %s: %s", c->group, rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* ---- processing one record ----------------------------------------------------- */

static void record_of(const rd_kafka_message_t *m, int attempt, ev_record_t *rec)
{
    rd_kafka_timestamp_type_t tstype;
    memset(rec, 0, sizeof *rec);
    rec->topic = rd_kafka_topic_name(m->rkt);
    rec->partition = m->partition;
    rec->offset = m->offset;
    rec->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) rec->timestamp_ms = -1;
    rec->key = m->key;
    rec->key_len = m->key_len;
    rec->value = m->payload;
    rec->value_len = m->len;
    rec->attempt = attempt;
}

static void outcome(ev_consumer_t *c, const ev_record_t *rec, const char *id, const char *type, ev_outcome_t o,
                    const char *err)
{
    ev_type_stats_t *st = ev_stats_get(&c->stats, type);
    switch (o) {
    case EV_OUTCOME_APPLIED: st->consumed++; break;
    case EV_OUTCOME_DUPLICATE: st->duplicates++; break;
    case EV_OUTCOME_SKIPPED: st->skipped++; break;
    case EV_OUTCOME_RETRY: break; /* counted in try_record(), with the last failure */
    case EV_OUTCOME_DLQ: st->dlq++; break;
    }
    if (c->on_outcome) c->on_outcome(c->ctx, rec, id, type, o, err);
}

/* ---- one record's transaction: its own, or a savepoint in the batch ------------- */

static int exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* SQLite rolls a whole transaction back on some errors (I/O, full disk,
 * out of memory): then the batch is lost. */
static void check_batch(ev_consumer_t *c)
{
    if (c->in_batch && !c->batch_lost && !sto_in_txn(c->db)) {
        c->batch_lost = 1;
        sk_error(FAC, "group %s: the database ended the batch's transaction: %s (its records come again)",
                 c->group, sqlite3_errmsg(c->db));
    }
}

static int step_begin(ev_consumer_t *c)
{
    if (!c->in_batch) return sto_begin(c->db);
    if (c->batch_lost) return -1;
    return exec_sql(c->db, "SAVEPOINT ev_record");
}

static int step_commit(ev_consumer_t *c)
{
    if (!c->in_batch) return sto_commit(c->db);
    int rc = exec_sql(c->db, "RELEASE ev_record");
    check_batch(c);
    return c->batch_lost ? -1 : rc;
}

static void step_rollback(ev_consumer_t *c)
{
    if (!c->in_batch) {
        sto_rollback(c->db);
        return;
    }
    if (sto_in_txn(c->db)) {
        exec_sql(c->db, "ROLLBACK TO ev_record");
        exec_sql(c->db, "RELEASE ev_record");
    }
    check_batch(c);
}

/* outcome() now, or after the batch commits. */
static void report(ev_consumer_t *c, const rd_kafka_message_t *m, const ev_record_t *rec, const char *id,
                   const char *type, ev_outcome_t o, const char *err)
{
    if (!c->in_batch) {
        outcome(c, rec, id, type, o, err);
        return;
    }
    if (c->nkept == c->capkept) {
        c->capkept = c->capkept ? c->capkept * 2 : 64;
        c->kept = sk_realloc(c->kept, c->capkept * sizeof *c->kept);
    }
    kept_t *k = &c->kept[c->nkept++];
    k->m = m;
    k->attempt = rec->attempt;
    k->id = id ? sk_strdup(id) : NULL;
    k->type = type ? sk_strdup(type) : NULL;
    k->err = err ? sk_strdup(err) : NULL;
    k->o = o;
}

/*
 * Writes the record to <topic>.dlq through the outbox, in one transaction
 * with its position in processed_events.  Returns DONE, or AGAIN if the
 * database refused (the record is then retried like a failing handler).
 */
static int dead_letter(ev_consumer_t *c, const rd_kafka_message_t *m, const ev_record_t *rec, int attempts,
                       const char *why, const char *id, const char *type)
{
    char pos[EV_POSITION_ID_MAX], dlq[300], err[ERRSZ] = "", *key = NULL, *value = NULL;
    int ret = AGAIN;
    ev_position_id(rec, pos, sizeof pos);
    snprintf(dlq, sizeof dlq, "%s.dlq", rec->topic);
    if (rec->key && utf8_text(rec->key, rec->key_len)) key = sk_strndup(rec->key, rec->key_len);
    value = ev_dlq_value(rec, c->group, attempts, why, id, type);
    if (!c->in_batch && sto_in_txn(c->db)) {
        sk_errf(err, sizeof err, "a transaction is open on the database");
        free(key);
        free(value);
        sk_error(FAC, "cannot dead-letter %s[%" PRId32 "]@%" PRId64 ": %s (retried)", rec->topic, rec->partition,
                 rec->offset, err);
        return AGAIN;
    }
    if (step_begin(c) < 0) {
        sk_errf(err, sizeof err, "begin: %s", sqlite3_errmsg(c->db));
        goto out;
    }
    int fresh = ev_inbox_mark(c->db, c->group, pos, "dlq", err, sizeof err);
    if (fresh < 0) goto out;
    if (fresh && ev_outbox_add(c->db, dlq, key, value, NULL, err, sizeof err) < 0) goto out;
    if (step_commit(c) < 0) {
        sk_errf(err, sizeof err, "commit: %s", sqlite3_errmsg(c->db));
        goto out;
    }
    ret = DONE;
    if (fresh) {
        sk_warn(FAC, "%s[%" PRId32 "]@%" PRId64 "%s%s sent to %s after %d attempts: %s", rec->topic, rec->partition,
                rec->offset, id ? " event " : "", id ? id : "", dlq, attempts, why);
        if (!c->in_batch) ev_relay_kick(c->relay);
        report(c, m, rec, id, type, EV_OUTCOME_DLQ, why);
    } else {
        report(c, m, rec, id, type, EV_OUTCOME_DUPLICATE, NULL);
    }
out:
    if (ret != DONE) {
        step_rollback(c);
        sk_error(FAC, "cannot dead-letter %s[%" PRId32 "]@%" PRId64 ": %s (retried)", rec->topic, rec->partition,
                 rec->offset, err);
    }
    free(key);
    free(value);
    return ret;
}

static const ev_raw_handler_t *raw_handler_for(const ev_consumer_t *c, const char *topic)
{
    for (const ev_raw_handler_t *h = c->raw_handlers; h && h->topic; h++)
        if (!strcmp(h->topic, topic)) return h;
    return NULL;
}

static const ev_handler_t *handler_for(const ev_consumer_t *c, const char *type)
{
    for (const ev_handler_t *h = c->handlers; h && h->type; h++)
        if (!strcmp(h->type, type)) return h;
    return NULL;
}

/*
 * One attempt at a record (attempts failed so far in *attempts).  Returns
 * DONE when the partition may move past it, AGAIN to retry later.
 */
static int try_record(ev_consumer_t *c, const rd_kafka_message_t *m, int *attempts)
{
    char err[ERRSZ] = "", pos[EV_POSITION_ID_MAX];
    ev_record_t rec;
    ev_event_t *ev = NULL;
    cJSON *raw = NULL;
    const ev_raw_handler_t *rh = NULL;
    const ev_handler_t *h = NULL;
    const char *id = NULL, *type = NULL;
    int ret = DONE, rc;

    record_of(m, *attempts + 1, &rec);
    ev_position_id(&rec, pos, sizeof pos);

    /* 1. decode */
    if ((rh = raw_handler_for(c, rec.topic))) {
        id = pos;
        type = rh->schema;
        if (rec.value && rec.value_len) raw = cJSON_ParseWithLength(rec.value, rec.value_len);
        if (rh->schema && !raw) {
            sk_errf(err, sizeof err, "%s: value is not JSON", rh->schema);
        } else if (rh->schema && ev_validate(rh->schema, raw, err, sizeof err) < 0) {
            /* err set */
        } else {
            err[0] = '\0';
        }
        if (err[0]) {
            ret = dead_letter(c, m, &rec, 0, err, NULL, NULL);
            goto out;
        }
    } else {
        if (ev_parse(rec.value, rec.value_len, &ev, err, sizeof err) < 0) {
            ret = dead_letter(c, m, &rec, 0, err, NULL, NULL);
            goto out;
        }
        id = ev->id;
        type = ev->type;
        if (!(h = handler_for(c, ev->type))) {
            report(c, m, &rec, id, type, EV_OUTCOME_SKIPPED, NULL);
            goto out;
        }
    }

    /* 2. apply, once */
    if (!c->in_batch && sto_in_txn(c->db)) {
        /* Someone left a transaction open on the shared connection: never
         * roll back what is not ours; try again later (no attempt used). */
        sk_error(FAC, "a transaction is open on the database; %s[%" PRId32 "]@%" PRId64 " waits", rec.topic,
                 rec.partition, rec.offset);
        ret = AGAIN;
        goto out;
    }
    if (step_begin(c) < 0) {
        sk_errf(err, sizeof err, "begin: %s", sqlite3_errmsg(c->db));
        goto failed;
    }
    rc = ev_inbox_mark(c->db, c->group, id, "applied", err, sizeof err);
    if (rc == 1 && !rh) {
        /* Dead-lettered earlier under its position (see consumer.h). */
        int seen = inbox_seen(c->db, c->group, pos);
        if (seen < 0) {
            sk_errf(err, sizeof err, "processed_events: %s", sqlite3_errmsg(c->db));
            goto failed;
        }
        if (seen) rc = 0;
    }
    if (rc < 0) goto failed;
    if (rc == 0) {
        step_rollback(c);
        report(c, m, &rec, id, type, EV_OUTCOME_DUPLICATE, NULL);
        goto out;
    }
    err[0] = '\0';
    rc = rh ? rh->fn(c->ctx, c->db, &rec, raw, err, sizeof err) : h->fn(c->ctx, c->db, ev, err, sizeof err);
    if (rc != 0) {
        if (!err[0]) sk_errf(err, sizeof err, "handler failed");
        goto failed;
    }
    if (step_commit(c) < 0) {
        sk_errf(err, sizeof err, "commit: %s", sqlite3_errmsg(c->db));
        goto failed;
    }
    if (!c->in_batch) ev_relay_kick(c->relay);
    report(c, m, &rec, id, type, EV_OUTCOME_APPLIED, NULL);
    goto out;

failed:
    step_rollback(c);
    if (c->batch_lost) {
        /* not the record's fault: the whole batch comes again */
        ret = AGAIN;
        goto out;
    }
    ev_stats_get(&c->stats, type)->failed++;
    ++*attempts;
    if (*attempts >= c->max_attempts) {
        ret = dead_letter(c, m, &rec, *attempts, err, id, type);
    } else {
        sk_warn(FAC, "%s[%" PRId32 "]@%" PRId64 " %s (%s): attempt %d of %d failed: %s", rec.topic, rec.partition,
                rec.offset, id, type ? type : "raw", *attempts, c->max_attempts, err);
        report(c, m, &rec, id, type, EV_OUTCOME_RETRY, err);
        ret = AGAIN;
    }
out:
    ev_free(ev);
    cJSON_Delete(raw);
    return ret;
}

/* The record m of partition p is done: move the partition past it. */
static void part_done(part_t *p, const rd_kafka_message_t *m)
{
    p->next_offset = m->offset + 1;
    p->attempts = 0;
}

/* Pauses p and keeps m (owned now) for a retry after the backoff. */
static void part_hold(part_t *p, rd_kafka_message_t *m)
{
    ev_consumer_t *c = p->c;
    if (!p->held) {
        rd_kafka_topic_partition_list_t *l = one_partition(p, RD_KAFKA_OFFSET_INVALID);
        rd_kafka_resp_err_t err = rd_kafka_pause_partitions(c->rk, l);
        if (err) sk_warn(FAC, "pause %s[%" PRId32 "]: %s", p->topic, p->partition, rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(l);
        p->held = m;
    }
    int ms = ev_backoff_ms(p->attempts, c->backoff_ms, c->backoff_max_ms);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

/* Resumes p at next_offset after a held record is done.  The seek makes the
 * position explicit: records librdkafka fetched while the partition was
 * paused were dropped, and must come again. */
static void part_release(part_t *p)
{
    ev_consumer_t *c = p->c;
    rd_kafka_message_destroy(p->held);
    p->held = NULL;
    rd_kafka_topic_partition_list_t *l = one_partition(p, p->next_offset);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, l, 0);
    if (error) {
        sk_warn(FAC, "seek %s[%" PRId32 "]: %s", p->topic, p->partition, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_resp_err_t err = rd_kafka_resume_partitions(c->rk, l);
    if (err) sk_warn(FAC, "resume %s[%" PRId32 "]: %s", p->topic, p->partition, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    part_t *p = arg;
    ev_consumer_t *c = p->c;
    if (!p->held || c->stopping) return;
    if (try_record(c, p->held, &p->attempts) == AGAIN) {
        part_hold(p, p->held);
        return;
    }
    part_done(p, p->held);
    part_release(p);
    commit_pending(c);
}

/* ---- the batch -------------------------------------------------------------------- */

static void batch_begin(ev_consumer_t *c)
{
    /* A transaction someone left open: records go one by one (and wait). */
    if (sto_in_txn(c->db) || sto_begin(c->db) < 0) return;
    c->in_batch = 1;
    c->batch_lost = 0;
}

/* After a lost batch: the partition goes back to where the batch found it. */
static void part_rewind(part_t *p)
{
    ev_consumer_t *c = p->c;
    int paused = p->held != NULL;
    if (p->held) {
        evtimer_del(p->timer);
        rd_kafka_message_destroy(p->held);
        p->held = NULL;
    }
    p->attempts = 0;
    p->next_offset = p->batch_prev;
    rd_kafka_topic_partition_list_t *l = one_partition(p, p->batch_from);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, l, 0);
    if (error) {
        sk_warn(FAC, "seek %s[%" PRId32 "]: %s", p->topic, p->partition, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    if (paused) rd_kafka_resume_partitions(c->rk, l); /* only then: a resume restarts the fetch */
    rd_kafka_topic_partition_list_destroy(l);
}

/* Commits the batch, then reports its outcomes and kicks the relay; or,
 * when it cannot be committed, rewinds its partitions.  No-op outside a
 * batch. */
static void batch_end(ev_consumer_t *c)
{
    if (!c->in_batch) return;
    int ok = !c->batch_lost && sto_in_txn(c->db);
    if (ok && sto_commit(c->db) < 0) {
        sk_error(FAC, "group %s: cannot commit a batch of %zu records: %s (they come again)", c->group,
                 c->nkept, sqlite3_errmsg(c->db));
        ok = 0;
    }
    if (!ok) {
        sto_rollback(c->db);
        /* Its records come again one per transaction for a while, so that
         * a record that keeps failing is retried, backed off and
         * dead-lettered on its own, like any failing record, instead of
         * taking every batch down with it. */
        c->solo_until_ms = sk_mono_ms() + SOLO_MS;
    }
    c->in_batch = 0;
    c->batch_lost = 0;
    for (size_t i = 0; i < c->nkept; i++) {
        kept_t *k = &c->kept[i];
        if (ok) {
            ev_record_t rec;
            record_of(k->m, k->attempt, &rec);
            outcome(c, &rec, k->id, k->type, k->o, k->err);
        }
        free(k->id);
        free(k->type);
        free(k->err);
    }
    c->nkept = 0;
    for (size_t i = 0; i < c->nmsgs; i++)
        rd_kafka_message_destroy(c->msgs[i]);
    c->nmsgs = 0;
    for (part_t *p = c->parts; p; p = p->next) {
        if (p->batch_from < 0) continue;
        if (!ok) part_rewind(p);
        p->batch_from = -1;
    }
    if (ok) ev_relay_kick(c->relay);
}

static void on_message(ev_consumer_t *c, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && ev_rdk_ratelimit(&c->rl, m->err, 10000))
            sk_warn(FAC, "group %s: %s%s%s", c->group, m->rkt ? rd_kafka_topic_name(m->rkt) : "", m->rkt ? ": " : "",
                    rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return;
    }
    part_t *p = part_find(c, rd_kafka_topic_name(m->rkt), m->partition);
    /* Not ours (any more), paused on an earlier record, or already done:
     * a record fetched before a pause/seek; it will come again if needed.
     * Or shutting down: left for the next start. */
    if (c->stopping || !p || p->held || (p->next_offset >= 0 && m->offset < p->next_offset)) {
        rd_kafka_message_destroy(m);
        return;
    }
    if (c->serving && !c->in_batch && sk_mono_ms() >= c->solo_until_ms) batch_begin(c);
    if (c->in_batch && p->batch_from < 0) {
        p->batch_from = m->offset;
        p->batch_prev = p->next_offset;
    }
    if (try_record(c, m, &p->attempts) == AGAIN) {
        part_hold(p, m);
    } else {
        part_done(p, m);
        if (c->in_batch) {
            if (c->nmsgs == c->capmsgs) {
                c->capmsgs = c->capmsgs ? c->capmsgs * 2 : 64;
                c->msgs = sk_realloc(c->msgs, c->capmsgs * sizeof *c->msgs);
            }
            c->msgs[c->nmsgs++] = m; /* outcomes may point into it until the batch ends */
        } else {
            rd_kafka_message_destroy(m);
        }
    }
    if (c->batch_lost) batch_end(c);
}

/* Serves the consumer queue: records, rebalances, commits, errors, logs. */
static void serve(ev_consumer_t *c)
{
    int n = 0;
    rd_kafka_message_t *m;
    c->serving = 1;
    while (n < POLL_BUDGET && (m = rd_kafka_consumer_poll(c->rk, 0)) != NULL) {
        on_message(c, m);
        n++;
    }
    c->serving = 0;
    batch_end(c);
    commit_pending(c);
    if (n >= POLL_BUDGET) ev_rdk_watch_again(&c->watch);
}

static void on_queue(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ev_consumer_t *c = arg;
    ev_rdk_watch_drain(&c->watch);
    serve(c);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    serve(arg);
}

/* ---- life cycle ---------------------------------------------------------------- */

static void add_topic(rd_kafka_topic_partition_list_t *l, const char *topic)
{
    if (!topic) return;
    for (int i = 0; i < l->cnt; i++)
        if (!strcmp(l->elems[i].topic, topic)) return;
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
}

static void create_topics(ev_consumer_t *c, const rd_kafka_topic_partition_list_t *topics, int ms);

ev_consumer_t *ev_consumer_new(struct event_base *base, sqlite3 *db, const ev_consumer_conf_t *conf, char *err,
                               size_t errsz)
{
    char why[512], num[32];
    rd_kafka_conf_t *kc = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    ev_consumer_t *c = sk_calloc(1, sizeof *c);
    c->base = base;
    c->db = db;
    c->watch.rfd = c->watch.wfd = -1;
    c->handlers = conf->handlers;
    c->raw_handlers = conf->raw_handlers;
    c->ctx = conf->ctx;
    c->max_attempts = conf->max_attempts > 0 ? conf->max_attempts : 5;
    c->backoff_ms = conf->backoff_ms > 0 ? conf->backoff_ms : 200;
    c->backoff_max_ms = conf->backoff_max_ms > 0 ? conf->backoff_max_ms : 10000;
    if (c->backoff_max_ms < c->backoff_ms) c->backoff_max_ms = c->backoff_ms;
    c->relay = conf->relay;
    c->on_outcome = conf->on_outcome;
    ev_stats_init(&c->stats);

    if (!conf->brokers || !*conf->brokers || !conf->group || !*conf->group) {
        sk_errf(err, errsz, "consumer: brokers and group are required");
        goto fail;
    }
    c->group = sk_strdup(conf->group);
    for (const ev_handler_t *h = conf->handlers; h && h->type; h++) {
        if (!h->fn || !ev_schema_find(h->type) || !ev_schema_find(h->type)->envelope) {
            sk_errf(err, errsz, "consumer %s: handler for unknown or non-envelope type \"%s\"", c->group, h->type);
            goto fail;
        }
    }
    for (const ev_raw_handler_t *h = conf->raw_handlers; h && h->topic; h++) {
        if (!h->fn || (h->schema && !ev_schema_find(h->schema))) {
            sk_errf(err, errsz, "consumer %s: bad raw handler for topic \"%s\"", c->group, h->topic);
            goto fail;
        }
    }

    topics = rd_kafka_topic_partition_list_new(8);
    if (conf->topics) {
        for (size_t i = 0; conf->topics[i]; i++) add_topic(topics, conf->topics[i]);
    } else {
        for (const ev_handler_t *h = conf->handlers; h && h->type; h++) add_topic(topics, ev_topic_of(h->type));
        for (const ev_raw_handler_t *h = conf->raw_handlers; h && h->topic; h++) add_topic(topics, h->topic);
    }
    if (topics->cnt == 0) {
        sk_errf(err, errsz, "consumer %s: no topics to subscribe to", c->group);
        goto fail;
    }

    snprintf(num, sizeof num, "%d", conf->session_timeout_ms > 0 ? conf->session_timeout_ms : 10000);
    kc = rd_kafka_conf_new();
    if (ev_rdk_set(kc, "bootstrap.servers", conf->brokers, err, errsz) < 0 ||
        ev_rdk_set(kc, "group.id", c->group, err, errsz) < 0 ||
        ev_rdk_set(kc, "client.id", c->group, err, errsz) < 0 ||
        ev_rdk_set(kc, "enable.auto.commit", "false", err, errsz) < 0 ||
        ev_rdk_set(kc, "enable.auto.offset.store", "false", err, errsz) < 0 ||
        ev_rdk_set(kc, "auto.offset.reset", "earliest", err, errsz) < 0 ||
        /* Topics that do not exist yet are created before subscribing
         * (create_topics); if that could not be done, the refresh notices
         * them within seconds instead of librdkafka's default 5 minutes. */
        ev_rdk_set(kc, "allow.auto.create.topics", "true", err, errsz) < 0 ||
        ev_rdk_set(kc, "topic.metadata.refresh.interval.ms", "3000", err, errsz) < 0 ||
        ev_rdk_set(kc, "session.timeout.ms", num, err, errsz) < 0 ||
        ev_rdk_set(kc, "socket.keepalive.enable", "true", err, errsz) < 0 ||
        /* prefetch at most 4 MiB, not librdkafka's 64 MiB: a backlog after a
         * restart is read as it is handled, not held in memory */
        ev_rdk_set(kc, "queued.max.messages.kbytes", "4096", err, errsz) < 0 ||
        ev_rdk_set(kc, "log.queue", "true", err, errsz) < 0 ||
        ev_rdk_set_pairs(kc, conf->rdkafka_props, err, errsz) < 0)
        goto fail;
    /* heartbeat.interval.ms must stay below the session timeout. */
    snprintf(num, sizeof num, "%d", (conf->session_timeout_ms > 0 ? conf->session_timeout_ms : 10000) / 3);
    if (ev_rdk_set(kc, "heartbeat.interval.ms", num, err, errsz) < 0) goto fail;
    rd_kafka_conf_set_opaque(kc, c);
    rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(kc, on_commit);
    rd_kafka_conf_set_error_cb(kc, on_error);
    rd_kafka_conf_set_log_cb(kc, ev_rdk_log_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof why);
    if (!c->rk) {
        sk_errf(err, errsz, "consumer %s: %s", c->group, why);
        goto fail;
    }
    kc = NULL;
    rd_kafka_set_log_queue(c->rk, NULL);
    rd_kafka_poll_set_consumer(c->rk); /* main queue -> consumer queue */
    if (ev_rdk_watch_start(&c->watch, base, rd_kafka_queue_get_consumer(c->rk), on_queue, c, err, errsz) < 0)
        goto fail;
    c->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, c);
    struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
    if (!c->tick_ev || event_add(c->tick_ev, &tv) < 0) {
        sk_errf(err, errsz, "consumer %s: cannot add the tick timer", c->group);
        goto fail;
    }
    create_topics(c, topics, CREATE_TOPICS_MS);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, topics);
    if (e) {
        sk_errf(err, errsz, "consumer %s: subscribe: %s", c->group, rd_kafka_err2str(e));
        goto fail;
    }
    rd_kafka_topic_partition_list_destroy(topics);
    return c;
fail:
    if (kc) rd_kafka_conf_destroy(kc);
    if (topics) rd_kafka_topic_partition_list_destroy(topics);
    if (c->rk) c->closed = 1; /* never joined: nothing to leave */
    ev_consumer_free(c);
    return NULL;
}

/*
 * Creates the subscribed topics that do not exist yet (CreateTopics with the
 * broker's default partition count; TOPIC_ALREADY_EXISTS is fine).  A
 * consumer group's metadata requests never ask the broker to auto-create a
 * topic (librdkafka sends AllowAutoTopicCreation=false whatever
 * allow.auto.create.topics says), so without this a service that starts
 * before anyone produced to its topics would see them only at the next
 * metadata refresh.  Waits at most ms for the answer (the broker may be
 * away: then the periodic refresh picks the topics up once they exist).
 */
static void create_topics(ev_consumer_t *c, const rd_kafka_topic_partition_list_t *topics, int ms)
{
    char why[256];
    rd_kafka_NewTopic_t **nt = sk_calloc((size_t)topics->cnt, sizeof *nt);
    int n = 0;
    for (int i = 0; i < topics->cnt; i++) {
        nt[n] = rd_kafka_NewTopic_new(topics->elems[i].topic, -1, -1, why, sizeof why);
        if (nt[n]) n++;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(c->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(o, ms, why, sizeof why);
    rd_kafka_CreateTopics(c->rk, nt, (size_t)n, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ms + 500);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    if (!ev) {
        sk_warn(FAC, "group %s: could not create the subscribed topics in time; waiting for them to appear",
                c->group);
    } else if (rd_kafka_event_error(ev)) {
        sk_warn(FAC, "group %s: creating the subscribed topics: %s", c->group, rd_kafka_event_error_string(ev));
    } else if (res) {
        size_t cnt;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                sk_info(FAC, "group %s: created topic %s", c->group, rd_kafka_topic_result_name(tr[i]));
            else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                sk_warn(FAC, "group %s: creating topic %s: %s", c->group, rd_kafka_topic_result_name(tr[i]),
                        rd_kafka_err2str(e));
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
    free(nt);
}

void ev_consumer_stop(ev_consumer_t *c)
{
    if (c->stopping || c->closed || !c->rk) return;
    c->stopping = 1;
    rd_kafka_topic_partition_list_t *l = NULL;
    if (!rd_kafka_assignment(c->rk, &l) && l) {
        rd_kafka_pause_partitions(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
    commit_pending(c);
    sk_info(FAC, "group %s: stopped taking records", c->group);
}

int ev_consumer_close(ev_consumer_t *c)
{
    int ret = 0;
    if (c->closed) return 0;
    c->closed = 1;
    if (c->tick_ev) event_del(c->tick_ev);
    ev_rdk_watch_stop(&c->watch);
    if (!c->rk) return 0;
    if (commit_pending_wait(c, CLOSE_COMMIT_MS) < 0) ret = -1;
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
    if (err) sk_warn(FAC, "group %s: close: %s", c->group, rd_kafka_err2str(err));
    parts_clear(c);
    return ret;
}

void ev_consumer_free(ev_consumer_t *c)
{
    if (!c) return;
    ev_consumer_close(c);
    ev_rdk_watch_stop(&c->watch);
    parts_clear(c);
    if (c->rk) rd_kafka_destroy(c->rk);
    if (c->tick_ev) event_free(c->tick_ev);
    ev_stats_release(&c->stats);
    free(c->kept);
    free(c->msgs);
    free(c->group);
    free(c);
}

/* ---- metrics ------------------------------------------------------------------------ */

static int64_t part_high(ev_consumer_t *c, const part_t *p)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi)) return -1;
    return hi;
}

void ev_consumer_info(ev_consumer_t *c, ev_consumer_info_t *out)
{
    memset(out, 0, sizeof *out);
    for (part_t *p = c->parts; p; p = p->next) {
        out->assigned++;
        if (p->held) out->retrying++;
        int64_t hi = part_high(c, p);
        if (hi >= 0 && p->next_offset >= 0 && hi > p->next_offset) out->lag += hi - p->next_offset;
    }
    out->commit_errors = c->commit_errors;
}

void ev_consumer_foreach_partition(ev_consumer_t *c, ev_partition_fn fn, void *opaque)
{
    for (part_t *p = c->parts; p; p = p->next)
        fn(opaque, p->topic, p->partition, p->next_offset, p->committed, part_high(c, p), p->held != NULL);
}

void ev_consumer_foreach_type(const ev_consumer_t *c, ev_type_stats_fn fn, void *opaque)
{
    ev_stats_foreach(&c->stats, fn, opaque);
}
