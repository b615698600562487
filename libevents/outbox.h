/*
 * outbox.h - the transactional outbox and its relay (the producer side of
 * "Reliable messaging" in ARCHITECTURE.md).
 *
 * A handler never talks to Kafka.  It writes its state change and the
 * events it emits in one SQLite transaction: the events are rows of the
 * `outbox` table (ev_outbox_add / ev_outbox_add_event).  After the commit it
 * calls ev_relay_kick(), and the relay - on the same libevent loop - reads
 * the rows in id order, produces them with librdkafka (acks=all) and deletes
 * a row only when librdkafka's delivery report says the broker has it.
 * So no event leaves before its transaction commits, and none is lost if the
 * process dies: a row whose report never came is simply sent again.
 *
 * Guarantees and their limits:
 *   - At-least-once.  A row is deleted only after a successful delivery
 *     report.  A duplicate is produced only when a report was lost: the
 *     broker stored the batch but the acknowledgement did not reach us (the
 *     connection broke, librdkafka retried), or the process died between the
 *     acknowledgement and the delete.  Consumers dedupe by event id.
 *   - Order per key.  Rows are handed to librdkafka in id order; a key always
 *     maps to one partition, and the producer keeps one request in flight per
 *     broker connection (max.in.flight=1), so a retried batch cannot be
 *     overtaken by a later one.  enable.idempotence stays off: souk-broker
 *     does not speak InitProducerId.  (The one gap: a report that fails
 *     for one row while a later row of the same key in another batch
 *     succeeds; the failed row is then sent after it.  Retriable errors
 *     never fail a report here - see "Forever" - and the refusals that are
 *     row-specific (size, topic name) are checked by ev_outbox_add.)
 *   - Forever.  message.timeout.ms=0 (infinite) and unlimited retries: while
 *     the broker is away librdkafka keeps the messages and reconnects with
 *     backoff (reconnect.backoff.ms .. reconnect.backoff.max.ms), and the rows
 *     stay in the table.  If a report does fail (a permanent error such as a
 *     too-large message, or a purge), the relay stops feeding, waits for every
 *     outstanding report, and starts again from the oldest remaining row after
 *     an exponential backoff (backoff_ms .. backoff_max_ms).  A row that can
 *     never be produced therefore blocks the outbox, loudly (error logs, the
 *     `failed` counter, a growing depth): deleting it would lose an event.
 *   - One relay per database.  Two relays on one outbox would both send
 *     every row.
 *
 * The database handle is the service's own (from sto_open), borrowed: the
 * relay runs only from the loop, between the service's transactions.  If it
 * finds a transaction open on the connection (a caller that keeps one open
 * across loop iterations), it waits and tries again shortly, because it would
 * otherwise see uncommitted rows.
 *
 * Everything here runs on the loop's thread.  Errors: functions returning
 * int return 0 or -1 with a one-line reason in err (err may be NULL).
 */
#ifndef EV_OUTBOX_H
#define EV_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "envelope.h"
#include "evstats.h"

/*
 * The outbox table, for a service's migration list:
 *
 *   static const sto_migration_t migrations[] = {
 *       {1, "outbox", EV_OUTBOX_MIGRATION_SQL},
 *       {2, "processed_events", EV_INBOX_MIGRATION_SQL},   (consumer.h)
 *       {3, "bookings", "CREATE TABLE bookings (...);"},
 *   };
 *
 * AUTOINCREMENT because the relay remembers the highest id it has handed to
 * librdkafka: a plain INTEGER PRIMARY KEY may reuse the id of a deleted row
 * when the table is empty, which would hide the new row from the relay and
 * make "each row id once" meaningless.  created_at is wall-clock ms.
 */
#define EV_OUTBOX_MIGRATION_SQL                                                                    \
    "CREATE TABLE outbox (\n"                                                                      \
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"                                                    \
    "  topic TEXT NOT NULL,\n"                                                                     \
    "  key TEXT,\n"                                                                                \
    "  value TEXT NOT NULL,\n"                                                                     \
    "  created_at INTEGER NOT NULL\n"                                                              \
    ");\n"

/*
 * Adds one record to the outbox inside the caller's open transaction
 * (db from sto_open, after sto_begin; outside a transaction it fails, since
 * the row would then not be atomic with anything).  key may be NULL (a null
 * Kafka key: the partition is then picked at random); topic and value must
 * not be NULL or empty.  value is stored as given (normally an envelope's
 * JSON; the relay reads its "type" for the counters, if it has one).
 * *id_out (may be NULL) gets the row id.  Returns 0 or -1.
 */
int ev_outbox_add(sqlite3 *db, const char *topic, const char *key, const char *value,
                  int64_t *id_out, char *err, size_t errsz);

/* Limits checked by ev_outbox_add(), so that a row the broker would refuse
 * fails the handler's transaction instead of blocking the outbox: a topic
 * name is 1..249 characters of [A-Za-z0-9._-] (Kafka's rule), a value at
 * most EV_OUTBOX_MAX_VALUE bytes (librdkafka's message.max.bytes is 1000000
 * including the batch overhead), a key at most EV_OUTBOX_MAX_KEY bytes. */
#define EV_OUTBOX_MAX_VALUE 900000
#define EV_OUTBOX_MAX_KEY 4096
int ev_topic_name_valid(const char *topic);

/* ev_outbox_add() of an event: topic ev_topic(ev), key ev_key(ev) (the
 * aggregate id), value ev_to_json(ev).  ev is borrowed. */
int ev_outbox_add_event(sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz);

/* ---- the relay ---------------------------------------------------------- */

typedef struct ev_relay_s ev_relay_t;

typedef struct ev_relay_conf_s {
    const char *brokers;   /* bootstrap.servers, "127.0.0.1:9092[,...]"; required */
    const char *client_id; /* the service name; NULL: "souk" */
    int batch_rows;        /* rows read per query; 0: 500 */
    int max_in_flight;     /* rows handed to librdkafka and not yet reported; 0: 10000 */
    int backoff_ms;        /* first pause after a failed report; 0: 200 */
    int backoff_max_ms;    /* longest pause; 0: 10000 */
    int scan_interval_ms;  /* backstop: look for rows this often even without a kick
                              (rows written by another connection); 0: 1000; <0: never */
    /* Extra librdkafka properties, "name", "value", ..., NULL (may be NULL).
     * They are applied last, so they override the settings above - do not
     * override acks, max.in.flight or message.timeout.ms lightly. */
    const char *const *rdkafka_props;
    /* Called for every delivery report (not for purges at shutdown), on the
     * loop: type is the row's envelope type (EV_STATS_NO_TYPE if none),
     * delivered 1 for success, 0 for a failure.  For per-event metrics
     * (svc_metric_counter_add(..., "events_produced_total", {type}, 1)).
     * May be NULL. */
    void (*on_report)(void *opaque, const char *type, int delivered);
    void *opaque;
} ev_relay_conf_t;

/*
 * Creates the relay on base, publishing the outbox of db (borrowed; it must
 * outlive the relay and hold the outbox table).  The producer connects in
 * the background; the first scan runs on the next loop iteration.  Returns
 * the relay (free with ev_relay_free) or NULL with err set.
 */
ev_relay_t *ev_relay_new(struct event_base *base, sqlite3 *db, const ev_relay_conf_t *conf, char *err,
                         size_t errsz);

/* Rows still to publish: the outbox depth, for a shutdown drain that runs
 * on the loop (the relay keeps working while the loop runs; return this
 * until it is 0).  -1 if the database cannot be read. */
int64_t ev_relay_pending(ev_relay_t *r);

/* 1 when the broker is known reachable: librdkafka's statistics (every 5 s)
 * show a broker connection UP, or a delivery just succeeded; 0 from the
 * start until then, and after "all brokers down".  For /ready; never
 * blocks. */
int ev_relay_broker_up(const ev_relay_t *r);

/* Asks the relay to look for new rows on the next loop iteration.  Call it
 * after committing a transaction that added rows.  Cheap; NULL is a no-op. */
void ev_relay_kick(ev_relay_t *r);

/*
 * For shutdown: blocks (running no other loop events) until the outbox is
 * empty or timeout_ms has passed, producing and deleting as usual.  Then
 * anything still with librdkafka is purged; those rows stay for the next
 * start.  Returns the number of rows left in the outbox (0: drained), or -1
 * if the database could not be read.  The relay may be freed or used again
 * afterwards.
 */
int64_t ev_relay_drain(ev_relay_t *r, int timeout_ms);

/* Purges what librdkafka still holds (those rows stay in the table), stops
 * the relay's events and frees it.  NULL is a no-op. */
void ev_relay_free(ev_relay_t *r);

/* ---- numbers for /metrics ------------------------------------------------- */

typedef struct ev_relay_info_s {
    int64_t depth;          /* rows in the outbox (SELECT count(*)); -1 if unreadable */
    int64_t in_flight;      /* rows with librdkafka, report pending */
    uint64_t delivered;     /* rows published and deleted, since start */
    uint64_t failed;        /* failed delivery reports (purges at shutdown excluded) */
    uint64_t rewinds;       /* times the relay restarted from the oldest row after a failure */
    int backing_off;        /* 1 while waiting after a failure */
    int broker_up;          /* ev_relay_broker_up() */
} ev_relay_info_t;

void ev_relay_info(ev_relay_t *r, ev_relay_info_t *out);
/* Calls fn once per event type produced or failed so far (produced, failed
 * set; the consumer counters stay 0). */
void ev_relay_foreach_type(const ev_relay_t *r, ev_type_stats_fn fn, void *opaque);

/* Exponential backoff: base * 2^(attempt-1), at most max (attempt >= 1;
 * base, max > 0).  Shared with the consumer; exposed for tests. */
int ev_backoff_ms(int attempt, int base_ms, int max_ms);

#endif
