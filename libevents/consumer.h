/*
 * consumer.h - the consumer side of "Reliable messaging" (ARCHITECTURE.md):
 * a librdkafka high-level consumer on the libevent loop, handlers per event
 * type, an inbox for effectively-once effects, retries with backoff and a
 * dead-letter topic.
 *
 * The consumer joins the group named after the service (group.id = conf
 * group; enable.auto.commit=false, enable.auto.offset.store=false,
 * auto.offset.reset=earliest) and is woken by librdkafka's queue through
 * rd_kafka_queue_io_event_enable(), like the relay (no busy polling; a 1 s
 * timer only keeps max.poll.interval.ms satisfied while nothing arrives and
 * retries failed offset commits).  For every record, in partition order:
 *
 *   1. Decode.  Envelope topics: ev_parse() (JSON, envelope, known type,
 *      data schema).  A record that does not decode goes to <topic>.dlq at
 *      once.  A valid event whose type has no handler is skipped.  Topics
 *      with a raw handler (kv.expired) are not envelopes: the value is
 *      parsed as JSON and, if the entry names a schema, validated with
 *      ev_validate(); failing that, it goes to the DLQ at once too.
 *   2. Apply, in a SAVEPOINT of its own inside the wake-up's ONE SQLite
 *      transaction (BEGIN IMMEDIATE on db, committed once for all the
 *      records the wake-up took: one WAL commit per batch, not per record):
 *      record (consumer = group, event_id) in processed_events - if it is
 *      already there the event is a redelivery: nothing runs, the savepoint
 *      is rolled back, the offset moves on - then run the handler; release
 *      the savepoint.  Raw records and undecodable ones have no event id:
 *      their id is their position, "<topic>/<partition>/<offset>".
 *   3. Only after the batch's COMMIT: report the outcomes, kick the relay,
 *      commit the Kafka offsets (offset + 1; async).  Dying between 2 and 3
 *      means the records come again and step 2 skips them: at-least-once
 *      delivery, effectively-once effects.  If the COMMIT fails, or SQLite
 *      ends the transaction by itself (an I/O error, a full disk), the
 *      batch's partitions are sought back to its first records, which come
 *      again, one per transaction for the next 2 s: a record that keeps
 *      breaking its transaction is then retried and dead-lettered on its
 *      own (below).  A rebalance ends the batch before offsets are
 *      committed.
 *
 * A handler returning -1 rolls its savepoint back (the batch's other
 * records stay).  The partition is then
 * paused (rd_kafka_pause_partitions; other partitions go on), the record is
 * kept, and a libevent timer retries it (in a transaction of its own) after
 * backoff_ms * 2^(attempt-1) (at most backoff_max_ms) - the loop never blocks.  After max_attempts
 * failed attempts the record goes to the DLQ and the partition resumes at
 * the next record (a seek, then rd_kafka_resume_partitions).  If the
 * partition is revoked meanwhile, the count is lost: its next owner starts
 * again from the committed offset.
 *
 * The dead-letter queue.  The DLQ record is written through the OUTBOX, in
 * the same transaction that records the failure in processed_events (with
 * event_id = the record's position and outcome 'dlq'), so:
 *   - "this record went to the DLQ" and "the DLQ record will be published"
 *     are one atomic fact: no crash can lose the DLQ record or repeat it,
 *     and a redelivered poison record is skipped instead of failing N more
 *     times;
 *   - the loop never waits for a broker acknowledgement (a direct produce
 *     with a delivery wait would block the partition, or the loop, while the
 *     broker is away - and the main topic's broker being up says nothing
 *     about the write succeeding);
 *   - keying by position, not event id, lets an operator replay a fixed
 *     event from the DLQ: the replay has a new position and the same id,
 *     and the id was never marked processed.
 * Hence the database needs both migrations (EV_OUTBOX_MIGRATION_SQL and
 * EV_INBOX_MIGRATION_SQL) and a relay publishing its outbox; pass that relay
 * as conf.relay so that it is kicked at once.
 *
 * The DLQ record: topic "<topic>.dlq", the original key, and a JSON value
 * (the original bytes are kept exactly: as a string when they are UTF-8
 * text, base64 otherwise):
 *   {"error": "why", "consumer": "booking", "topic": "payment.1",
 *    "partition": 0, "offset": 17, "timestamp": 1764088656123 | null,
 *    "key": "b-42" | null            (or "keyBase64": "..."),
 *    "value": "<the original value>" | null   (or "valueBase64": "..."),
 *    "attempts": 5   (0: undecodable, never handled),
 *    "eventId": "..." , "eventType": "..."     (when the event decoded),
 *    "time": "2026-11-25T16:37:36.123Z"}      (when it was dead-lettered)
 *
 * Handlers run on the loop's thread, inside the transaction: they use db
 * (never BEGIN/COMMIT themselves), may add outbox rows (ev_outbox_add_event;
 * the relay is kicked after the commit), must not block, and return 0, or
 * -1 with a reason in err (which ends up in the log and the DLQ record).
 * Effects outside db (a key-store write, an email, a log line, a metric) are
 * not rolled back and may repeat on a retry - or when a later record of the
 * same batch loses the batch's transaction: make them idempotent.
 *
 * A handler, for the shape of it:
 *
 *   static int on_payment_succeeded(void *ctx, sqlite3 *db, const ev_event_t *ev,
 *                                   char *err, size_t errsz)
 *   {
 *       const char *id = ev_str(ev->data, "bookingId");
 *       int n = sto_exec(db, "UPDATE bookings SET status = 'CONFIRMED' "
 *                            "WHERE id = ? AND status = 'AWAITING_PAYMENT'", "t", id);
 *       if (n < 0) { snprintf(err, errsz, "bookings: %s", sqlite3_errmsg(db)); return -1; }
 *       if (n == 0) return 0;            (late or duplicate: a recorded no-op)
 *       ev_event_t *sell = ev_new_caused(ev, "ticket.sell", "booking", data, err, errsz);
 *       int rc = sell ? ev_outbox_add_event(db, sell, err, errsz) : -1;
 *       ev_free(sell);
 *       return rc;
 *   }
 *   static const ev_handler_t handlers[] = {
 *       {"payment.succeeded", on_payment_succeeded}, {NULL, NULL}};
 *
 * Wiring into services/runtime (start_events / stop_events):
 *   - ev_relay_new(svc_base, svc_db, {brokers, client_id = name, on_report})
 *     and ev_consumer_new(svc_base, svc_db, {brokers, group = name,
 *     handlers, ctx, relay, on_outcome}); call ev_relay_kick() after every
 *     request transaction that added outbox rows;
 *   - metrics: counters from on_report (events_produced_total /
 *     events_failed_total{type}) and on_outcome (events_consumed_total for
 *     APPLIED, events_failed_total for RETRY and DLQ); gauges in a collector
 *     from ev_relay_info().depth and ev_consumer_info().lag (the
 *     *_foreach_type() functions give the same counters as running totals);
 *   - readiness "broker": ev_relay_broker_up();
 *   - shutdown drain (called on the running loop): on the first call
 *     ev_consumer_stop(), then return ev_relay_pending() until it is 0;
 *   - stop_events (loop stopped): ev_consumer_close(), ev_consumer_free(),
 *     ev_relay_free() (what did not drain stays in the outbox for the next
 *     start; ev_relay_drain() is the blocking alternative).
 *
 * Errors: functions returning int return 0 or -1 with a one-line reason in
 * err (err may be NULL).
 */
#ifndef EV_CONSUMER_H
#define EV_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "envelope.h"
#include "evstats.h"
#include "outbox.h"

/* The inbox table, for a service's migration list (see outbox.h).  outcome
 * is 'applied' (the handler's effects committed with the row) or 'dlq'. */
#define EV_INBOX_MIGRATION_SQL                                                                     \
    "CREATE TABLE processed_events (\n"                                                            \
    "  consumer TEXT NOT NULL,\n"                                                                  \
    "  event_id TEXT NOT NULL,\n"                                                                  \
    "  outcome TEXT NOT NULL DEFAULT 'applied',\n"                                                 \
    "  processed_at INTEGER NOT NULL,\n"                                                           \
    "  PRIMARY KEY (consumer, event_id)\n"                                                         \
    ") WITHOUT ROWID;\n"

/*
 * Records (consumer, event_id) in processed_events inside the caller's open
 * transaction.  Returns 1 if it was recorded now, 0 if it was there already
 * (a duplicate: the caller should do nothing), -1 on error.  outcome NULL
 * means "applied".  The consumer does this itself; it is public for code
 * that applies events some other way (and for tests).
 */
int ev_inbox_mark(sqlite3 *db, const char *consumer, const char *event_id, const char *outcome, char *err,
                  size_t errsz);

/* One consumed record, as handlers and callbacks see it (all borrowed, valid
 * during the call). */
typedef struct ev_record_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1 when the record has none */
    const void *key;      /* NULL: null key */
    size_t key_len;
    const void *value;    /* NULL: null value (a tombstone) */
    size_t value_len;
    int attempt;          /* 1 on the first try */
} ev_record_t;

/* A handler for one event type; ev is borrowed for the call. */
typedef int (*ev_handler_fn)(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz);

/* A handler for every record of a non-envelope topic (kv.expired).  value
 * is the record value parsed as JSON, or NULL when it is not JSON and the
 * entry names no schema. */
typedef int (*ev_raw_handler_fn)(void *ctx, sqlite3 *db, const ev_record_t *rec, const cJSON *value,
                                 char *err, size_t errsz);

typedef struct ev_handler_s {
    const char *type; /* "payment.succeeded"; NULL ends the table */
    ev_handler_fn fn;
} ev_handler_t;

typedef struct ev_raw_handler_s {
    const char *topic;  /* "kv.expired"; NULL ends the table */
    const char *schema; /* a schema name for ev_validate() ("kv.expired"), or NULL: no check */
    ev_raw_handler_fn fn;
} ev_raw_handler_t;

typedef enum {
    EV_OUTCOME_APPLIED = 0, /* the handler's transaction committed */
    EV_OUTCOME_DUPLICATE,   /* already processed: skipped */
    EV_OUTCOME_SKIPPED,     /* a valid event of a type without a handler */
    EV_OUTCOME_RETRY,       /* the handler failed; it will be retried */
    EV_OUTCOME_DLQ,         /* written to <topic>.dlq (through the outbox) */
} ev_outcome_t;

/* "applied", "duplicate", "skipped", "retry", "dlq". */
const char *ev_outcome_name(ev_outcome_t o);

/* Called for each record once its batch committed (before its offset is committed):
 * for logs, tests and metrics.  event_id and type are NULL when unknown; err
 * is the reason for RETRY and DLQ, else NULL.  All borrowed. */
typedef void (*ev_outcome_fn)(void *ctx, const ev_record_t *rec, const char *event_id, const char *type,
                              ev_outcome_t outcome, const char *err);

typedef struct ev_consumer_conf_s {
    const char *brokers; /* bootstrap.servers; required */
    const char *group;   /* group.id and processed_events.consumer: the service name; required */
    /* Topics to subscribe to (NULL-terminated).  NULL: the topics of the
     * handlers' types (ev_topic_of) and of the raw handlers. */
    const char *const *topics;
    const ev_handler_t *handlers;         /* may be NULL */
    const ev_raw_handler_t *raw_handlers; /* may be NULL */
    void *ctx;                            /* passed to handlers and on_outcome */
    int max_attempts;       /* handler attempts before the DLQ; 0: 5 */
    int backoff_ms;         /* pause before the second attempt; 0: 200 */
    int backoff_max_ms;     /* longest pause; 0: 10000 */
    int session_timeout_ms; /* group session; 0: 10000 (a crashed member's partitions
                               move after this long) */
    ev_relay_t *relay;      /* kicked after a transaction that may have added outbox rows
                               (handlers' events, DLQ records); may be NULL */
    ev_outcome_fn on_outcome; /* may be NULL */
    /* Extra librdkafka properties, "name", "value", ..., NULL; applied last. */
    const char *const *rdkafka_props;
} ev_consumer_conf_t;

typedef struct ev_consumer_s ev_consumer_t;

/*
 * Creates the consumer on base and subscribes.  db (from sto_open, with the
 * outbox and processed_events tables) is borrowed and must outlive the
 * consumer; conf's tables and strings are copied where kept, except
 * handlers' and raw handlers' arrays, which must stay valid (static tables).
 * Returns the consumer or NULL with err set.
 */
ev_consumer_t *ev_consumer_new(struct event_base *base, sqlite3 *db, const ev_consumer_conf_t *conf,
                               char *err, size_t errsz);

/*
 * The first step of a graceful shutdown, on the loop, never blocking: stop
 * taking records (fetching is paused; a record that still arrives is left
 * uncommitted for the next start; a record being retried is not retried
 * again), and commit what was processed (asynchronously).  Use it when the
 * shutdown begins, so that the outbox can drain without the consumer adding
 * rows; ev_consumer_close() still has to follow.  Idempotent.
 */
void ev_consumer_stop(ev_consumer_t *c);

/*
 * For shutdown: commits the offsets of the records already processed and
 * waits for the answer (at most 5 s: the broker may be gone), leaves the
 * group (rd_kafka_consumer_close: revokes, LeaveGroup) and stops the
 * consumer's events.  Blocks for those round trips.  Returns 0, or -1 if the
 * final commit failed (those records then come again and are skipped as
 * duplicates).  Idempotent.
 */
int ev_consumer_close(ev_consumer_t *c);

/* ev_consumer_close() if needed, then frees everything.  NULL is a no-op. */
void ev_consumer_free(ev_consumer_t *c);

/* ---- numbers for /metrics ------------------------------------------------- */

typedef struct ev_consumer_info_s {
    int assigned;          /* partitions assigned to this member */
    int retrying;          /* of those, paused on a failing record */
    int64_t lag;           /* sum over assigned partitions of high watermark - next offset
                              to process (0 for a partition not yet read from) */
    uint64_t commit_errors;/* offset commits that failed (they are retried) */
} ev_consumer_info_t;

void ev_consumer_info(ev_consumer_t *c, ev_consumer_info_t *out);

/* Per assigned partition: next = next offset to process (-1: none read
 * yet), committed = last offset committed (-1: none this session), high =
 * the high watermark librdkafka last saw (-1: unknown). */
typedef void (*ev_partition_fn)(void *opaque, const char *topic, int32_t partition, int64_t next,
                                int64_t committed, int64_t high, int retrying);
void ev_consumer_foreach_partition(ev_consumer_t *c, ev_partition_fn fn, void *opaque);

/* Per event type: consumed, duplicates, skipped, failed (attempts), dlq. */
void ev_consumer_foreach_type(const ev_consumer_t *c, ev_type_stats_fn fn, void *opaque);

/* ---- building blocks, exposed for tests ----------------------------------- */

/* The DLQ record's JSON value (format above) as a new string the caller
 * frees.  event_id, event_type may be NULL; attempts 0 = undecodable. */
char *ev_dlq_value(const ev_record_t *rec, const char *consumer, int attempts, const char *error,
                   const char *event_id, const char *event_type);

/* "<topic>/<partition>/<offset>": the id of a record that has no event id.
 * out must hold EV_POSITION_ID_MAX bytes. */
#define EV_POSITION_ID_MAX 300
void ev_position_id(const ev_record_t *rec, char *out, size_t outsz);

#endif
