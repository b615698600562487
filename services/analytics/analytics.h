/*
 * analytics.h - souk-analytics' modules (internal to services/analytics).
 *
 *   analytics.c     the service description: settings, schema, routes,
 *                   start/stop, retention, the dashboard files, login proxy
 *   an_ingest.c     the consumer: every topic (a regex subscription), many
 *                   records per SQLite transaction, offsets stored after
 *                   the commit
 *   an_query.c      /analytics/events, /logs, /timeline/{id}, /export
 *   an_checks.c     /analytics/stats and /analytics/consistency
 *
 * Everything runs on the service's loop thread, on svc_db().
 */
#ifndef ANALYTICS_H
#define ANALYTICS_H

#include <stdint.h>

#include "svc.h"

typedef struct an_conf_s {
    svc_conf_t common;
    int64_t retention_days; /* --retention-days (30): rows older than this are pruned */
    int64_t grace_s;        /* --grace-seconds (30): slack for "terminal within hold" and emails */
    char *group;            /* --group (analytics): the consumer group */
    char *topics;           /* --topics (^[^_].*): the subscription (regex when it starts with ^) */
    char *web_dir;          /* --web-dir (./web/dashboard) */
    char *auth_url;         /* --auth-url (127.0.0.1:8081): POST /analytics/login goes there */
    int64_t batch;          /* --batch (5000): records per transaction at most */
    int64_t export_max;     /* --export-max-events (100000): events per export answer */
    int64_t nice;           /* --nice (10): scheduling niceness of every thread */
    int64_t linger_ms;      /* --linger-ms (250): at most one stored batch this often */
} an_conf_t;

typedef struct an_ingest_s an_ingest_t;

/* The service's state (svc_data()). */
typedef struct an_s {
    svc_t *svc;
    const an_conf_t *conf;
    an_ingest_t *ingest;
    struct event *retention_ev;
    uint64_t pruned;
} an_t;

an_t *an_of(svc_t *svc);

/* ---- an_ingest.c ---------------------------------------------------------------- */

/* Starts the consumer (group conf->group, subscription conf->topics) on the
 * loop.  Returns NULL with err set. */
an_ingest_t *an_ingest_new(an_t *an, char *err, size_t errsz);
/* Commits what was stored and leaves the group (blocks for at most a few
 * seconds); then frees.  NULL is a no-op. */
void an_ingest_free(an_ingest_t *in);
/* Stops taking records (shutdown). */
void an_ingest_stop(an_ingest_t *in);

typedef struct an_ingest_info_s {
    int assigned;        /* partitions */
    int64_t lag;         /* records behind the high watermarks */
    uint64_t records;    /* records consumed this run */
    uint64_t events, logs, raw; /* rows newly stored this run, by table */
    uint64_t batches;
    uint64_t db_errors;  /* failed batch transactions (retried) */
    int64_t last_batch_ms; /* when the last batch committed (wall), 0: never */
} an_ingest_info_t;
void an_ingest_info(an_ingest_t *in, an_ingest_info_t *out);

/* Stores one record (exposed for the generator-free unit path and for
 * re-use): classifies it (envelope, log line, DLQ record, other) and
 * inserts it with INSERT OR IGNORE.  Must run inside a transaction.
 * Returns 1 stored, 0 already there, -1 on a database error (err). */
int an_store_record(an_t *an, const char *topic, int32_t partition, int64_t offset,
                    int64_t timestamp_ms, const char *key, size_t key_len, const char *value,
                    size_t value_len, int *table, char *err, size_t errsz);
enum { AN_T_EVENT = 0, AN_T_LOG = 1, AN_T_RAW = 2 };

/* ---- an_query.c ----------------------------------------------------------------- */

void an_get_events(svc_t *svc, svc_req_t *req);
void an_get_logs(svc_t *svc, svc_req_t *req);
void an_get_timeline(svc_t *svc, svc_req_t *req);
void an_get_export(svc_t *svc, svc_req_t *req);

/* Turns a user's search text into an FTS5 query: each whitespace-separated
 * word becomes a quoted phrase ("user-1@souk.test" -> "\"user-1@souk.test\""),
 * a trailing * keeps its prefix meaning; words are ANDed.  Returns a new
 * string (caller frees) or NULL when q has no word. */
char *an_fts_query(const char *q);

/* Reads ?from=&to= (RFC 3339 or ms since the epoch); absent: 0 and
 * INT64_MAX.  Records field errors. */
void an_query_range(svc_req_t *req, int64_t *from, int64_t *to);

/* ---- an_checks.c ---------------------------------------------------------------- */

void an_get_stats(svc_t *svc, svc_req_t *req);
void an_get_consistency(svc_t *svc, svc_req_t *req);

/* The consistency report {ok, checkedAt, checks:[...]} (new object), or
 * NULL on a database error (err). */
cJSON *an_consistency(an_t *an, int64_t now_ms, char *err, size_t errsz);

#endif
