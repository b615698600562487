/*
 * analytics.c - souk-analytics: every event and log line of the marketplace
 * indexed in analytics.db (SQLite with FTS5), searchable; saga timelines;
 * statistics; the cross-service consistency checks of ARCHITECTURE.md; an
 * Elasticsearch bulk export; and the dashboard (web/dashboard).
 *
 * This file is the service's description (settings, schema, routes) plus
 * the small parts that are not queries: retention, the dashboard's static
 * files and its login proxy.  The consumer is an_ingest.c, the read side
 * an_query.c and an_checks.c.
 *
 * Schema.  events: one row per envelope (UNIQUE id), the record value kept
 * whole in doc; agg_id is the aggregate key of its schema (bookingId,
 * userId, catalogId).  logs: one row per shipped log line (UNIQUE topic,
 * partition, offset), with log_refs (every UUID in the message) for the
 * timeline.  records: DLQ records, kv.expired and anything else that is
 * not an envelope.  notif_queued / notif_sent: the notification service's
 * email log lines, parsed (the one-email check's fallback; it counts
 * notification.sent events).  events_fts and logs_fts
 * are FTS5 indexes over events.doc and logs.msg (external content): a row
 * is indexed by an_ingest.c right after its INSERT, and unindexed by a
 * trigger when pruned.  (Until schema 6 an AFTER INSERT trigger indexed it;
 * a trigger makes every INSERT a statement transaction, whose savepoint
 * makes FTS5 flush its pending terms to disk each time: ~40 % of the
 * service's CPU under load.)
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "analytics.h"
#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_log.h"

static an_conf_t an_conf;

static const sk_conf_entry_t an_conf_table[] = {
    {"retention-days", SK_CONF_INT, offsetof(an_conf_t, retention_days), "30", 1, 36500,
     "events, log lines and records older than this are pruned (in the background)"},
    {"grace-seconds", SK_CONF_INT, offsetof(an_conf_t, grace_s), "30", 0, 86400,
     "consistency: a booking may reach its terminal state this long after its hold ends, and its "
     "email may follow its terminal event this late"},
    {"group", SK_CONF_STR, offsetof(an_conf_t, group), "analytics", 0, 0,
     "consumer group (a new group reads every topic from the beginning)"},
    {"topics", SK_CONF_STR, offsetof(an_conf_t, topics), "^[^_].*", 0, 0,
     "topics to index: comma-separated names, a name starting with ^ is a regex"},
    {"web-dir", SK_CONF_STR, offsetof(an_conf_t, web_dir), "./web/dashboard", 0, 0,
     "the dashboard's files, served at / and /analytics/dashboard/"},
    {"auth-url", SK_CONF_STR, offsetof(an_conf_t, auth_url), "127.0.0.1:8081", 0, 0,
     "souk-auth's HOST:PORT: the dashboard's POST /analytics/login is passed there"},
    {"batch", SK_CONF_INT, offsetof(an_conf_t, batch), "5000", 1, 100000,
     "records stored per SQLite transaction at most"},
    {"export-max-events", SK_CONF_INT, offsetof(an_conf_t, export_max), "100000", 1, 10000000,
     "events per GET /analytics/export answer (the X-Export-Next header continues)"},
    {"linger-ms", SK_CONF_INT, offsetof(an_conf_t, linger_ms), "250", 0, 60000,
     "store a batch at most this often (records that come sooner wait for the next; larger "
     "transactions cost the disk less under load)"},
    {"nice", SK_CONF_INT, offsetof(an_conf_t, nice), "10", 0, 19,
     "scheduling niceness (the indexer yields the CPU to the saga's services under load and "
     "catches up after; 0: none)"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sto_migration_t an_migrations[] = {
    SVC_EVENTS_MIGRATIONS,
    {3, "events",
     "CREATE TABLE events ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  type TEXT NOT NULL,"
     "  time_ms INTEGER NOT NULL,"
     "  source TEXT,"
     "  correlation_id TEXT,"
     "  causation_id TEXT,"
     "  agg_id TEXT,"
     "  topic TEXT NOT NULL,"
     "  part INTEGER NOT NULL,"
     "  off INTEGER NOT NULL,"
     "  valid INTEGER NOT NULL,"
     "  doc TEXT NOT NULL"
     ");"
     "CREATE INDEX events_time ON events (time_ms);"
     "CREATE INDEX events_type_time ON events (type, time_ms);"
     "CREATE INDEX events_corr ON events (correlation_id);"
     "CREATE INDEX events_agg ON events (agg_id, time_ms);"
     "CREATE VIRTUAL TABLE events_fts USING fts5 (doc, content='events', content_rowid='seq');"
     "CREATE TRIGGER events_ai AFTER INSERT ON events BEGIN"
     "  INSERT INTO events_fts (rowid, doc) VALUES (new.seq, new.doc);"
     "END;"
     "CREATE TRIGGER events_ad AFTER DELETE ON events BEGIN"
     "  INSERT INTO events_fts (events_fts, rowid, doc) VALUES ('delete', old.seq, old.doc);"
     "END;"},
    {4, "logs",
     "CREATE TABLE logs ("
     "  seq INTEGER PRIMARY KEY,"
     "  topic TEXT NOT NULL,"
     "  part INTEGER NOT NULL,"
     "  off INTEGER NOT NULL,"
     "  time_ms INTEGER NOT NULL,"
     "  level TEXT,"
     "  service TEXT,"
     "  facility TEXT,"
     "  msg TEXT NOT NULL,"
     "  request_id TEXT,"
     "  correlation_id TEXT,"
     "  line TEXT NOT NULL,"
     "  UNIQUE (topic, part, off)"
     ");"
     "CREATE INDEX logs_time ON logs (time_ms);"
     "CREATE INDEX logs_corr ON logs (correlation_id);"
     "CREATE INDEX logs_service_time ON logs (service, time_ms);"
     "CREATE TABLE log_refs ("
     "  ref TEXT NOT NULL,"
     "  seq INTEGER NOT NULL,"
     "  PRIMARY KEY (ref, seq)"
     ") WITHOUT ROWID;"
     "CREATE INDEX log_refs_seq ON log_refs (seq);"
     "CREATE VIRTUAL TABLE logs_fts USING fts5 (msg, content='logs', content_rowid='seq');"
     "CREATE TRIGGER logs_ai AFTER INSERT ON logs BEGIN"
     "  INSERT INTO logs_fts (rowid, msg) VALUES (new.seq, new.msg);"
     "END;"
     "CREATE TRIGGER logs_ad AFTER DELETE ON logs BEGIN"
     "  INSERT INTO logs_fts (logs_fts, rowid, msg) VALUES ('delete', old.seq, old.msg);"
     "  DELETE FROM log_refs WHERE seq = old.seq;"
     "END;"},
    {5, "records",
     "CREATE TABLE records ("
     "  seq INTEGER PRIMARY KEY,"
     "  kind TEXT NOT NULL," /* dlq, raw (kv.expired, ...), invalid (not JSON) */
     "  topic TEXT NOT NULL,"
     "  part INTEGER NOT NULL,"
     "  off INTEGER NOT NULL,"
     "  time_ms INTEGER NOT NULL,"
     "  rkey TEXT,"
     "  value TEXT,"
     "  orig_topic TEXT,"
     "  error TEXT,"
     "  consumer TEXT,"
     "  event_id TEXT,"
     "  event_type TEXT,"
     "  correlation_id TEXT,"
     "  UNIQUE (topic, part, off)"
     ");"
     "CREATE INDEX records_time ON records (time_ms);"
     "CREATE INDEX records_kind ON records (kind, time_ms);"
     "CREATE TABLE notif_queued ("
     "  notification_id TEXT PRIMARY KEY,"
     "  event_id TEXT NOT NULL,"
     "  event_type TEXT NOT NULL,"
     "  time_ms INTEGER NOT NULL"
     ");"
     "CREATE INDEX notif_queued_event ON notif_queued (event_id);"
     "CREATE TABLE notif_sent ("
     "  notification_id TEXT PRIMARY KEY,"
     "  time_ms INTEGER NOT NULL"
     ");"},
    {6, "fts without insert triggers", "DROP TRIGGER events_ai; DROP TRIGGER logs_ai;"},
};

an_t *an_of(svc_t *svc)
{
    return svc_data(svc);
}

/* ---- retention ---------------------------------------------------------------- */

#define PRUNE_BATCH 5000
#define PRUNE_EVERY_S 60

/* Deletes at most PRUNE_BATCH rows older than the cutoff from each table,
 * one transaction per table (short: the loop goes on between them).
 * Returns 1 when a table had more, 0 when done, -1 on error. */
static int prune_once(an_t *an, int64_t cutoff)
{
    static const char *const sql[] = {
        "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE time_ms < ? ORDER BY time_ms LIMIT 5000)",
        "DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE time_ms < ? ORDER BY time_ms LIMIT 5000)",
        "DELETE FROM records WHERE seq IN (SELECT seq FROM records WHERE time_ms < ? ORDER BY time_ms LIMIT 5000)",
        "DELETE FROM notif_queued WHERE rowid IN (SELECT rowid FROM notif_queued WHERE time_ms < ? LIMIT 5000)",
        "DELETE FROM notif_sent WHERE rowid IN (SELECT rowid FROM notif_sent WHERE time_ms < ? LIMIT 5000)",
    };
    sqlite3 *db = svc_db(an->svc);
    int more = 0;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        if (sto_in_txn(db) || sto_begin(db) < 0) return -1;
        int n = sto_exec(db, sql[i], "I", cutoff);
        if (n < 0 || sto_commit(db) < 0) {
            sk_error("retention", "pruning: %s", sqlite3_errmsg(db));
            sto_rollback(db);
            return -1;
        }
        an->pruned += (uint64_t)n;
        if (n >= PRUNE_BATCH) more = 1;
    }
    return more;
}

static void on_retention(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    an_t *an = arg;
    int64_t cutoff = sk_wall_ms() - an->conf->retention_days * 86400000LL;
    int more = svc_shutting_down(an->svc) ? 0 : prune_once(an, cutoff);
    struct timeval tv = {more > 0 ? 0 : PRUNE_EVERY_S, more > 0 ? 50000 : 0};
    evtimer_add(an->retention_ev, &tv);
}

/* ---- the dashboard's files --------------------------------------------------- */

#define DASH_PREFIX "/analytics/dashboard"

static void get_root(svc_t *svc, svc_req_t *req)
{
    svc_static_serve(req, an_of(svc)->conf->web_dir, "/");
}

static void get_dashboard(svc_t *svc, svc_req_t *req)
{
    const char *path = svc_req_path(req);
    if (path[strlen(path) - 1] != '/') {
        /* Relative links (app.js) need the trailing slash. */
        svc_req_set_header(req, "Location", DASH_PREFIX "/");
        svc_reply_raw(req, 301, "text/plain; charset=utf-8", "moved\n", 6);
        return;
    }
    svc_static_serve(req, an_of(svc)->conf->web_dir, "/");
}

static void get_dashboard_file(svc_t *svc, svc_req_t *req)
{
    svc_static_serve(req, an_of(svc)->conf->web_dir, svc_req_path(req) + strlen(DASH_PREFIX));
}

/* The dashboard served at / loads its files from /app.js, /style.css. */
static void fallback(svc_t *svc, svc_req_t *req)
{
    const char *path = svc_req_path(req);
    if (svc_req_method(req) != SVC_GET || !strncmp(path, "/analytics", 10) || strchr(path + 1, '/')) {
        svc_reply_problem(req, 404, NULL, "no route for %s", svc_req_method(req) == SVC_GET ? "this path" : "this method and path");
        return;
    }
    svc_static_serve(req, an_of(svc)->conf->web_dir, path);
}

/* ---- POST /analytics/login: the dashboard's login, passed to souk-auth ---------- */

typedef struct login_s {
    svc_req_t *req;
    struct evhttp_connection *conn;
    struct event_base *base;
} login_t;

/* libevent must not free a connection inside its own request callback. */
static void conn_free_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evhttp_connection_free(arg);
}

static void login_done(struct evhttp_request *r, void *arg)
{
    login_t *l = arg;
    int code = r ? evhttp_request_get_response_code(r) : 0;
    if (code <= 0) {
        svc_reply_problem(l->req, 502, "Bad Gateway", "souk-auth did not answer");
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(r);
        size_t len = evbuffer_get_length(in);
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(r), "Content-Type");
        const unsigned char *p = evbuffer_pullup(in, -1);
        svc_reply_raw(l->req, code, ct ? ct : "application/json", p ? (const char *)p : "", len);
    }
    struct timeval now = {0, 0};
    if (event_base_once(l->base, -1, EV_TIMEOUT, conn_free_later, l->conn, &now) < 0)
        sk_warn("login", "cannot schedule freeing the auth connection");
    free(l);
}

static void post_login(svc_t *svc, svc_req_t *req)
{
    an_t *an = an_of(svc);
    const char *url = an->conf->auth_url;
    if (!strncmp(url, "http://", 7)) url += 7;
    char host[256];
    const char *colon = strrchr(url, ':');
    size_t hl = colon ? (size_t)(colon - url) : 0;
    int port = colon ? atoi(colon + 1) : 0;
    if (!colon || hl == 0 || hl >= sizeof host || port <= 0 || port > 65535) {
        sk_error("login", "--auth-url %s is not HOST:PORT", an->conf->auth_url);
        svc_reply_problem(req, 502, "Bad Gateway", "the auth service address is not configured");
        return;
    }
    memcpy(host, url, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    const cJSON *body = svc_req_body(req);
    char *json = body ? cJSON_PrintUnformatted(body) : sk_strdup("{}");
    struct evhttp_connection *conn = evhttp_connection_base_new(svc_base(svc), NULL, host, (unsigned short)port);
    login_t *l = sk_calloc(1, sizeof *l);
    l->req = req;
    l->conn = conn;
    l->base = svc_base(svc);
    struct evhttp_request *r = conn ? evhttp_request_new(login_done, l) : NULL;
    if (!r) {
        if (conn) evhttp_connection_free(conn);
        free(l);
        free(json);
        svc_reply_problem(req, 502, "Bad Gateway", "cannot reach souk-auth");
        return;
    }
    evhttp_connection_set_timeout(conn, 10);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Connection", "close");
    evhttp_add_header(h, "X-Correlation-Id", svc_req_correlation_id(req));
    evbuffer_add(evhttp_request_get_output_buffer(r), json, strlen(json));
    free(json);
    svc_req_defer(req);
    if (evhttp_make_request(conn, r, EVHTTP_REQ_POST, "/auth/login") != 0) {
        /* libevent freed r; the callback does not run. */
        evhttp_connection_free(conn);
        free(l);
        svc_reply_problem(req, 502, "Bad Gateway", "cannot reach souk-auth");
    }
}

/* ---- metrics, lifecycle -------------------------------------------------------- */

static void collect(svc_t *svc, void *arg)
{
    an_t *an = arg;
    if (!an->ingest) return;
    an_ingest_info_t in;
    an_ingest_info(an->ingest, &in);
    svc_metric_gauge_set(svc, "consumer_lag", NULL, (double)in.lag);
    svc_metric_gauge_set(svc, "consumer_partitions_assigned", NULL, in.assigned);
    svc_metric_counter_set(svc, "analytics_records_total", NULL, (double)in.records);
    svc_metric_counter_set(svc, "analytics_stored_total", (const char *[]){"table", "events", NULL},
                           (double)in.events);
    svc_metric_counter_set(svc, "analytics_stored_total", (const char *[]){"table", "logs", NULL}, (double)in.logs);
    svc_metric_counter_set(svc, "analytics_stored_total", (const char *[]){"table", "records", NULL},
                           (double)in.raw);
    svc_metric_counter_set(svc, "analytics_batches_total", NULL, (double)in.batches);
    svc_metric_counter_set(svc, "analytics_batch_errors_total", NULL, (double)in.db_errors);
    svc_metric_counter_set(svc, "analytics_pruned_total", NULL, (double)an->pruned);
}

static size_t ingest_drain(svc_t *svc, void *arg)
{
    (void)arg;
    an_ingest_stop(an_of(svc)->ingest);
    return 0;
}

/* Lowers the priority of every thread there is (a thread made later
 * inherits it from its creator).  Linux's nice value is per thread. */
static void renice_threads(int nice)
{
    if (nice <= 0) return;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (setpriority(PRIO_PROCESS, (id_t)atoi(e->d_name), nice) < 0)
            sk_warn("analytics", "nice %d: thread %s: %s", nice, e->d_name, strerror(errno));
        n++;
    }
    if (d) closedir(d);
    sk_info("analytics", "nice %d (%d threads): the saga's services come first under load", nice, n);
}

static int an_init(svc_t *svc, char *err, size_t errsz)
{
    (void)err;
    (void)errsz;
    renice_threads((int)an_conf.nice);
    an_t *an = sk_calloc(1, sizeof *an);
    an->svc = svc;
    an->conf = &an_conf;
    svc_set_data(svc, an);
    svc_metric_help(svc, "consumer_lag", "records behind the high watermarks of every indexed partition");
    svc_metric_help(svc, "consumer_partitions_assigned", "partitions the indexer reads");
    svc_metric_help(svc, "analytics_records_total", "records consumed and stored (or found stored already)");
    svc_metric_help(svc, "analytics_stored_total", "rows newly stored, by table");
    svc_metric_help(svc, "analytics_batches_total", "record batches committed");
    svc_metric_help(svc, "analytics_batch_errors_total", "batch transactions that failed (and were retried)");
    svc_metric_help(svc, "analytics_pruned_total", "rows removed by --retention-days");
    svc_metrics_add_collector(svc, collect, an);
    return 0;
}

static int an_start_events(svc_t *svc, char *err, size_t errsz)
{
    an_t *an = an_of(svc);
    an->ingest = an_ingest_new(an, err, errsz);
    if (!an->ingest) return -1;
    svc_add_drain(svc, "ingest", ingest_drain, NULL);
    an->retention_ev = evtimer_new(svc_base(svc), on_retention, an);
    struct timeval tv = {5, 0};
    evtimer_add(an->retention_ev, &tv);
    sk_info("analytics", "dashboard from %s; retention %lld days", an->conf->web_dir,
            (long long)an->conf->retention_days);
    return 0;
}

static void an_stop_events(svc_t *svc)
{
    an_t *an = an_of(svc);
    if (an->retention_ev) event_free(an->retention_ev);
    an->retention_ev = NULL;
    an_ingest_free(an->ingest);
    an->ingest = NULL;
}

static void an_fini(svc_t *svc)
{
    free(an_of(svc));
    svc_set_data(svc, NULL);
}

static const svc_route_t an_routes[] = {
    {SVC_GET, "/analytics/events", an_get_events, SVC_ADMIN},
    {SVC_GET, "/analytics/logs", an_get_logs, SVC_ADMIN},
    {SVC_GET, "/analytics/timeline/{correlationId}", an_get_timeline, SVC_ADMIN},
    {SVC_GET, "/analytics/stats", an_get_stats, SVC_ADMIN},
    {SVC_GET, "/analytics/consistency", an_get_consistency, SVC_ADMIN},
    {SVC_GET, "/analytics/export", an_get_export, SVC_ADMIN},
    {SVC_POST, "/analytics/login", post_login, SVC_PUBLIC},
    {SVC_GET, "/", get_root, SVC_PUBLIC},
    {SVC_GET, DASH_PREFIX, get_dashboard, SVC_PUBLIC},
    {SVC_GET, DASH_PREFIX "/{file}", get_dashboard_file, SVC_PUBLIC},
    {0, NULL, NULL, 0},
};

static const svc_desc_t an_desc = {
    .name = "analytics",
    .summary = "every event and log line indexed and searchable (SQLite FTS5), saga timelines, "
               "statistics, cross-service consistency checks, an Elasticsearch export and the dashboard.",
    .default_port = 8083,
    .conf_table = an_conf_table,
    .conf = &an_conf,
    .migrations = an_migrations,
    .nmigrations = sizeof an_migrations / sizeof an_migrations[0],
    .routes = an_routes,
    .fallback = fallback,
    .init = an_init,
    .start_events = an_start_events,
    .stop_events = an_stop_events,
    .fini = an_fini,
};

int main(int argc, char **argv)
{
    return svc_main(&an_desc, argc, argv);
}
