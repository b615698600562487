/*
 * svc.h - the runtime every souk service is built on.
 *
 * A service is a static description (svc_desc_t): its name and default
 * port, its extra settings, its SQLite migrations, a route table and a few
 * hooks.  Its main() is one line:
 *
 *     int main(int argc, char **argv) { return svc_main(&catalog_desc, argc, argv); }
 *
 * and svc_main() owns everything around the handlers:
 *
 *   - configuration: the common flags (svc_conf_t) plus the service's own
 *     table, each with its SOUK_* environment twin, --help and --version;
 *   - the libevent loop, the evhttp server on --http, SIGTERM/SIGINT;
 *   - the database: <data-dir>/<name>.db opened with sto_open() and the
 *     service's migrations (storage/sto.h);
 *   - routing: {method, "/catalogs/{id}/tickets", handler, access} with path
 *     parameters, 404, 405 with Allow, OPTIONS;
 *   - request bodies: at most --max-body-bytes (else 413), parsed as JSON
 *     before the handler runs, whatever the Content-Type says (malformed:
 *     400; trailing bytes other than whitespace are malformed too).  Only
 *     a body past 8 x the limit (and past limit + 1 MiB) meets libevent's own
 *     limit instead: libevent 2.1 then answers 413 with its HTML page and
 *     closes the connection - it has no hook to replace that answer;
 *   - authentication: an ES256 bearer token (from souk-auth) verified with
 *     the public key in --jwt-public-key; 401 / 403 before the handler;
 *   - errors: every 4xx/5xx the runtime or a handler sends is an RFC 7807
 *     application/problem+json document;
 *   - GET /health, GET /ready, GET /metrics (Prometheus text);
 *   - one JSON log line per request (method, path, route, status, ms,
 *     requestId, correlationId, userId);
 *   - graceful shutdown: stop accepting, let requests in flight and the
 *     registered drains (outbox relay, consumer) finish for at most
 *     --shutdown-timeout-ms, then stop_events() and fini(), exit 0.
 *
 * Threads: everything here runs on the service's one event-loop thread.
 * No function is thread-safe; handlers must not block (no long SQLite
 * transactions, no synchronous network calls).
 *
 * Memory: svc_new() makes cJSON allocate through sk_malloc (process-wide
 * cJSON_InitHooks), so cJSON builders never return NULL for lack of memory;
 * cJSON_Parse* can still return NULL for bad input and must be checked.
 */
#ifndef SVC_H
#define SVC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sk_conf.h"
#include "sto.h"

#include "consumer.h"
#include "envelope.h"
#include "kvclient.h"
#include "outbox.h"

struct event_base;

typedef struct svc_s svc_t;         /* one running service; opaque */
typedef struct svc_req_s svc_req_t; /* one HTTP request; opaque */

/* ------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------ */

/*
 * The settings every service has.  Flag / environment twin / default:
 *
 *   --http HOST:PORT          SOUK_HTTP            127.0.0.1:<default_port>
 *                             (an IP literal, [v6]:port; port 0 picks one)
 *   --data-dir PATH           SOUK_DATA_DIR        ./data/<name>  (created)
 *   --brokers HOST:PORT,...   SOUK_BROKERS         127.0.0.1:9092
 *   --kv HOST:PORT            SOUK_KV              127.0.0.1:6379
 *   --jwt-public-key PATH     SOUK_JWT_PUBLIC_KEY  (empty)  PEM, EC P-256
 *   --max-body-bytes SIZE     SOUK_MAX_BODY_BYTES  1m
 *   --shutdown-timeout-ms N   SOUK_SHUTDOWN_TIMEOUT_MS 10000
 *   --http-timeout-s N        SOUK_HTTP_TIMEOUT_S  30  (idle / read / write)
 *   --log-level LEVEL         SOUK_LOG_LEVEL       info
 *   --max-attempts N          SOUK_MAX_ATTEMPTS    5  (event handler attempts before <topic>.dlq)
 *   --log-topic TOPIC         SOUK_LOG_TOPIC       logs  (every log line is also produced
 *                             there, at most once, dropped and counted when the broker is
 *                             away; "" turns shipping off - see svc_logship.c)
 *   --log-ship-timeout-ms N   SOUK_LOG_SHIP_TIMEOUT_MS 10000
 *   --rdkafka K=V,K=V         SOUK_RDKAFKA         (empty)  librdkafka properties for the
 *                             outbox relay and the consumer (tuning, TLS/SASL for a real Kafka)
 *
 * The runtime uses http, data_dir, jwt_public_key, max_body_bytes,
 * shutdown_timeout_ms, http_timeout_s and log_level itself; brokers and kv
 * are there for the messaging hooks (libevents).  Strings are owned by the
 * runtime, never NULL after svc_new(), and live until svc_free().
 */
typedef struct svc_conf_s {
    char *http;
    char *data_dir;
    char *brokers;
    char *kv;
    char *jwt_public_key;
    int64_t max_body_bytes;
    int64_t shutdown_timeout_ms;
    int64_t http_timeout_s;
    char *log_level;
    int64_t max_attempts; /* --max-attempts (5): consumer handler attempts before the DLQ */
    char *log_topic;      /* --log-topic (logs): where log lines are shipped; "" = nowhere */
    char *rdkafka;        /* --rdkafka "name=value,...": extra librdkafka properties */
    int64_t log_ship_timeout_ms;
} svc_conf_t;

/* ------------------------------------------------------------------------
 * Routes and access
 * ------------------------------------------------------------------------ */

typedef enum { SVC_GET, SVC_POST, SVC_PUT, SVC_PATCH, SVC_DELETE, SVC_METHOD_COUNT } svc_method_t;

/* Roles carried in the token's "role" claim, ordered by privilege. */
typedef enum { SVC_ROLE_NONE = 0, SVC_ROLE_USER, SVC_ROLE_AUTHOR, SVC_ROLE_ADMIN } svc_role_t;

/*
 * Who may call a route.  The runtime enforces it before the handler runs:
 * no or bad token -> 401 with WWW-Authenticate: Bearer; a valid token with a
 * role below the route's -> 403.
 *
 *   SVC_PUBLIC  anyone.  A valid bearer token, if sent, still fills the
 *               principal; a bad one is ignored (the route does not need it).
 *   SVC_USER    any authenticated caller (USER, AUTHOR or ADMIN).
 *   SVC_AUTHOR  role AUTHOR or ADMIN.
 *   SVC_ADMIN   role ADMIN.
 *   SVC_OWNER   any authenticated caller, and the handler decides about the
 *               resource: it loads the resource (404 if missing) and calls
 *               svc_require_owner(req, owner_id), which lets the owner (the
 *               token's sub equals owner_id) or any ADMIN through and answers
 *               403 to everyone else.  A handler of an OWNER route that never
 *               calls it is a bug.
 */
typedef enum { SVC_PUBLIC = 0, SVC_USER, SVC_AUTHOR, SVC_ADMIN, SVC_OWNER } svc_access_t;

/*
 * A handler answers its request exactly once with one of the svc_reply_*
 * functions, before returning or later (see svc_req_defer()).  After the
 * reply the request belongs to the runtime again: do not touch req.
 * A handler that returns without replying and without deferring gets a 500
 * sent for it (and an error logged).
 */
typedef void (*svc_handler_fn)(svc_t *svc, svc_req_t *req);

/*
 * One row of a route table; a table ends with an entry whose pattern is NULL.
 *
 * pattern: "/catalogs", "/catalogs/{id}/tickets".  Segments are literal text
 * or one whole {name} parameter ([A-Za-z0-9_]+).  When several patterns
 * match a path, the one with a literal where another has a parameter wins,
 * leftmost segment first ("/catalogs/mine" beats "/catalogs/{id}").  A
 * trailing slash on the request path is ignored.  HEAD is served by the GET
 * route (without the body); OPTIONS is answered by the runtime with Allow.
 * Patterns are checked by svc_new(): a malformed pattern or the same
 * (method, pattern) twice makes it fail.
 */
typedef struct svc_route_s {
    svc_method_t method;
    const char *pattern;
    svc_handler_fn handler;
    svc_access_t access;
} svc_route_t;

/* ------------------------------------------------------------------------
 * The service description
 * ------------------------------------------------------------------------ */

/*
 * Hooks return 0, or -1 with a one-line reason in err (svc_new() then logs
 * it and fails).  Order at start: config, log, data dir, database and
 * migrations, token key, HTTP listener bound, init(), start_events(); the loop
 * runs; at shutdown: stop accepting, drains, stop_events(), fini().
 * stop_events() runs iff start_events() succeeded, fini() iff init()
 * succeeded - also when a later start step fails.  Any hook may be NULL.
 */
typedef struct svc_desc_s {
    const char *name;    /* "catalog": binary souk-catalog, log service name,
                            catalog.db, data dir ./data/catalog */
    const char *summary; /* a line or two for --help */
    int default_port;    /* 8085: --http defaults to 127.0.0.1:8085 */

    /*
     * Extra settings, or NULL.  The entries' offsets are into *conf, the
     * service's own config struct, which must begin with a svc_conf_t:
     *
     *     typedef struct { svc_conf_t common; int64_t hold_s; } booking_conf_t;
     *     static booking_conf_t booking_conf;   // zero-initialised
     *     static const sk_conf_entry_t booking_table[] = {
     *         {"hold-s", SK_CONF_INT, offsetof(booking_conf_t, hold_s), "600", 1, 86400, "..."},
     *         {NULL, 0, 0, NULL, 0, 0, NULL}};
     *     ... .conf_table = booking_table, .conf = &booking_conf, ...
     *
     * The runtime fills the whole struct (common part included) and releases
     * its strings in svc_free().  When conf is NULL the runtime keeps its own
     * svc_conf_t and conf_table must be NULL.  A name that clashes with a
     * common setting makes svc_new() fail.
     */
    const sk_conf_entry_t *conf_table;
    void *conf;

    /* SQLite schema (storage/sto.h).  NULL: the service has no database and
     * svc_db() returns NULL.  Otherwise <data-dir>/<name>.db is opened with
     * sto_open() before init(), and "db" is one of the readiness checks. */
    const sto_migration_t *migrations;
    size_t nmigrations;

    const svc_route_t *routes; /* ends with {.pattern = NULL}; may be NULL */
    /* Called for a path no route (and no built-in) matches, instead of the
     * 404 - the gateway's proxy.  The runtime neither parses the query nor
     * checks a token nor reads the body: use svc_req_evhttp() for the raw
     * request.  Logged and counted under route "fallback".  May be NULL. */
    svc_handler_fn fallback;

    /*
     * Messaging, run by the runtime itself (svc_events.c) - a service only
     * declares what it consumes:
     *   - with migrations, an outbox relay publishes the database's outbox
     *     (the migrations must start with SVC_EVENTS_MIGRATIONS) to --brokers;
     *     /ready gets a "broker" check; shutdown drains the outbox;
     *   - with handlers or raw_handlers, a consumer joins the group named
     *     after the service, subscribed to their topics, with --max-attempts
     *     and the DLQ (libevents/consumer.h).  Handlers get ctx = the svc_t *
     *     and run inside the inbox transaction: emit with svc_emit_caused();
     *   - with use_kv, a key-store client on --kv (svc_kv()); /ready gets a
     *     "kv" check.
     * /metrics gets events_{produced,consumed,failed,dlq,duplicate}_total{type},
     * outbox_depth and consumer_lag.  Tables are borrowed (static).
     */
    const ev_handler_t *handlers;         /* ends with {.type = NULL}; may be NULL */
    const ev_raw_handler_t *raw_handlers; /* ends with {.topic = NULL}; may be NULL */
    int use_kv;

    /* After the database and listener, before the loop runs: load keys,
     * seed data, set svc_set_data(), add ready checks and metrics. */
    int (*init)(svc_t *svc, char *err, size_t errsz);
    /* Extra messaging work after the runtime's relay, consumer and key-store
     * client started (timers, sweepers); may be NULL. */
    int (*start_events)(svc_t *svc, char *err, size_t errsz);
    /* The loop has stopped (drains done or timed out), before the runtime
     * closes the consumer (final offset commit) and frees the relay and the
     * key-store client.  Requests still deferred may be answered here; they
     * are dropped after fini(). */
    void (*stop_events)(svc_t *svc);
    void (*fini)(svc_t *svc);
} svc_desc_t;

/* ------------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------------ */

/*
 * The whole life of a service: svc_new(), svc_run(), svc_free().
 * `--routes` as the only argument prints the route table ("METHOD PATTERN
 * ACCESS" per line, built-ins first) and exits 0.  Returns
 * the process exit code: 0 after --help/--version or a clean shutdown, 2 for
 * a bad command line or environment, 1 when starting or running failed
 * (the reason is logged).
 */
int svc_main(const svc_desc_t *desc, int argc, char **argv);

enum { SVC_NEW_OK = 0, SVC_NEW_EXIT = 1, SVC_NEW_USAGE = -1, SVC_NEW_FAILED = -2 };

/*
 * Reads the configuration and starts everything up to (not including) the
 * loop: see the order at svc_desc_t.  desc must outlive the svc.
 * Returns SVC_NEW_OK with *out set; SVC_NEW_EXIT after printing --help or
 * --version; SVC_NEW_USAGE for bad settings (reason in err); SVC_NEW_FAILED
 * when a start step failed (reason in err).  *out is NULL unless OK.
 * Installs SIGTERM/SIGINT handlers on the loop and ignores SIGPIPE.
 */
int svc_new(const svc_desc_t *desc, int argc, char **argv, svc_t **out, char *err, size_t errsz);
/* Runs the loop until a graceful shutdown completes, then calls
 * stop_events() and fini().  Returns 0, or -1 if the loop failed. */
int svc_run(svc_t *svc);
/* Frees everything; calls stop_events()/fini() first if svc_run() did not.
 * NULL is a no-op. */
void svc_free(svc_t *svc);

/* Starts a graceful shutdown, as SIGTERM does (loop thread only). */
void svc_shutdown(svc_t *svc);
/* 1 once shutdown has begun. */
int svc_shutting_down(const svc_t *svc);

/* Accessors.  All returned pointers are borrowed and live as long as svc. */
const char *svc_name(const svc_t *svc);
const svc_conf_t *svc_conf(const svc_t *svc);
struct event_base *svc_base(const svc_t *svc);
sqlite3 *svc_db(const svc_t *svc);              /* NULL without migrations */
const char *svc_http_address(const svc_t *svc); /* bound address, "127.0.0.1:8085" */
const svc_desc_t *svc_desc(const svc_t *svc);
/* A pointer for the service's own state (set in init; never freed by svc). */
void svc_set_data(svc_t *svc, void *data);
void *svc_data(const svc_t *svc);

/*
 * Token verification key (PEM of an EC P-256 public key).  svc_new() loads
 * --jwt-public-key; a missing file is not fatal (souk-auth may create it
 * later): the runtime retries at most once a second when a token arrives,
 * and until then protected routes answer 503.  The auth service, which
 * holds the private key, can hand its public half over directly.  Returns 0,
 * or -1 (err) if pem is not an EC P-256 public key.
 */
int svc_set_jwt_public_key(svc_t *svc, const char *pem, size_t len, char *err, size_t errsz);

/*
 * Readiness.  GET /ready runs every check: all pass -> 200
 * {"status":"UP","checks":{name:"UP",...}}; any fails -> 503 problem+json
 * with the same "checks" (failed ones carry their reason).  While shutting
 * down /ready is 503.  A check must answer at once from what it knows (a
 * flag kept up to date, a trivial SELECT): never block.  It returns 0 when
 * ready, else -1 with a reason in err.  name is copied.
 */
typedef int (*svc_check_fn)(svc_t *svc, void *arg, char *err, size_t errsz);
void svc_add_ready_check(svc_t *svc, const char *name, svc_check_fn fn, void *arg);

/*
 * Drains run during a graceful shutdown, after the listener closed: each is
 * called every 20 ms (the first call tells it shutdown began) and returns
 * how much work it still has (rows in the outbox, ...), 0 when done.  The
 * loop stops when every drain returned 0 and no request is in flight, or
 * when --shutdown-timeout-ms passes.  name is copied.
 */
typedef size_t (*svc_drain_fn)(svc_t *svc, void *arg);
void svc_add_drain(svc_t *svc, const char *name, svc_drain_fn fn, void *arg);

/* ------------------------------------------------------------------------
 * Messaging (svc_events.c)
 * ------------------------------------------------------------------------ */

/* The outbox and inbox tables: a service's migrations begin with these two
 * entries (versions 1 and 2), then its own from version 3:
 *     static const sto_migration_t migrations[] = {
 *         SVC_EVENTS_MIGRATIONS,
 *         {3, "catalogs", "CREATE TABLE catalogs (...);"},
 *     };  */
#define SVC_EVENTS_MIGRATIONS                                                                      \
    {1, "outbox", EV_OUTBOX_MIGRATION_SQL}, { 2, "processed_events", EV_INBOX_MIGRATION_SQL }

/* The relay / key-store client, or NULL (no database / no use_kv). */
ev_relay_t *svc_relay(const svc_t *svc);
ev_kv_t *svc_kv(const svc_t *svc);

/*
 * Emits an event from an HTTP handler: builds it (ev_new: type's schema is
 * checked; source = the service name; correlation_id NULL = the event's own
 * id) and adds it to the outbox inside the transaction open on svc_db()
 * (sto_begin() first; svc_commit() after).  Takes ownership of data.
 * Returns 0, or -1 with the reason in err (the caller rolls back and
 * answers 500: an invalid event is a bug).
 */
int svc_emit(svc_t *svc, const char *type, const char *correlation_id, cJSON *data, char *err,
             size_t errsz);
/* The same from a consumer handler: correlation and causation from cause;
 * db is the handler's (the inbox transaction).  Takes ownership of data. */
int svc_emit_caused(svc_t *svc, sqlite3 *db, const ev_event_t *cause, const char *type, cJSON *data,
                    char *err, size_t errsz);
/* sto_commit() on svc_db(), then wakes the relay.  Returns sto_commit()'s
 * result (on -1 the transaction is still open: roll back). */
int svc_commit(svc_t *svc);

/* ------------------------------------------------------------------------
 * Metrics (GET /metrics, Prometheus text format 0.0.4)
 * ------------------------------------------------------------------------ */

/*
 * Built in: http_requests_total{route,method,status} (counter) and
 * http_request_duration_seconds{route,method} (histogram); route is the
 * pattern ("/catalogs/{id}"), or "unmatched" for paths no route knows, so
 * clients cannot make up new series.
 *
 * Other modules add series by name.  labels is NULL or a NULL-terminated
 * list of name/value pairs: (const char *[]){"type", "booking.confirmed",
 * NULL}.  Values are escaped; pass the labels of one series in the same
 * order every time.  A family's type is fixed by the first call; a call of
 * another type, or a malformed metric or label name, is logged and ignored.
 * Histograms use the buckets .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 (+Inf).
 */
void svc_metric_counter_add(svc_t *svc, const char *name, const char *const *labels, double n);
/* A counter whose total another module keeps (libevents' per-type stats):
 * sets the series to v, which should never decrease. */
void svc_metric_counter_set(svc_t *svc, const char *name, const char *const *labels, double v);
void svc_metric_gauge_set(svc_t *svc, const char *name, const char *const *labels, double v);
void svc_metric_observe(svc_t *svc, const char *name, const char *const *labels, double v);
/* Sets the # HELP text of a family (copied). */
void svc_metric_help(svc_t *svc, const char *name, const char *help);
/* Called just before /metrics renders: refresh gauges (outbox depth,
 * consumer lag) here.  Must not block. */
typedef void (*svc_collect_fn)(svc_t *svc, void *arg);
void svc_metrics_add_collector(svc_t *svc, svc_collect_fn fn, void *arg);

/* ------------------------------------------------------------------------
 * The request
 * ------------------------------------------------------------------------ */

typedef struct svc_principal_s {
    const char *user_id;  /* "sub" */
    svc_role_t role;      /* "role" */
    const char *token_id; /* "jti", NULL when the token has none */
    int64_t expires_at;   /* "exp", seconds since the epoch */
} svc_principal_t;

/* Strings are borrowed from req (valid until the reply). */
svc_method_t svc_req_method(const svc_req_t *req); /* HEAD reports SVC_GET */
const char *svc_req_path(const svc_req_t *req);    /* as received, without the query */
/* The route's pattern, "/catalogs/{id}". */
const char *svc_req_route(const svc_req_t *req);
/* Path parameter by name, percent-decoded; NULL if the route has none of
 * that name (a declared parameter is never NULL, and never empty). */
const char *svc_req_param(const svc_req_t *req, const char *name);
/* Request header (case-insensitive name), or NULL. */
const char *svc_req_header(const svc_req_t *req, const char *name);
/* The parsed body: NULL when the request had none.  Borrowed. */
const cJSON *svc_req_body(const svc_req_t *req);
/* The caller, or NULL when there is no valid token (only possible on
 * PUBLIC routes). */
const svc_principal_t *svc_req_principal(const svc_req_t *req);
/* X-Request-Id as sent (if it is 1-128 chars of [A-Za-z0-9._:-]), else a new
 * UUID; sent back in the response.  Never NULL. */
const char *svc_req_id(const svc_req_t *req);
/* X-Correlation-Id under the same rule, else the request id; sent back.
 * Put it in the events a handler emits. */
const char *svc_req_correlation_id(const svc_req_t *req);
/* The peer's IP address as text. */
const char *svc_req_peer(const svc_req_t *req);

/* libevent's request, for a fallback handler that needs the raw request
 * (body bytes, all headers).  Reply through svc_reply_* all the same. */
struct evhttp_request;
struct evhttp_request *svc_req_evhttp(svc_req_t *req);

/* Adds a response header (Location, Retry-After, ...); copied. */
void svc_req_set_header(svc_req_t *req, const char *name, const char *value);

/*
 * The handler will reply later (it waits for the key store, a timer, ...).
 * The request stays valid until that reply; it counts as in flight for a
 * graceful shutdown; if the loop stops first it is dropped after fini().
 */
void svc_req_defer(svc_req_t *req);

/* ------------------------------------------------------------------------
 * Query string
 * ------------------------------------------------------------------------ */

/*
 * The query string is decoded once before the handler runs ('+' is a space,
 * %XX escapes; a malformed escape or an encoded NUL answers 400).  A name
 * given twice: svc_query() returns the first value.
 */
const char *svc_query(const svc_req_t *req, const char *name); /* NULL if absent */
size_t svc_query_count(const svc_req_t *req);
/* The i-th name/value pair in order (i < svc_query_count()). */
void svc_query_at(const svc_req_t *req, size_t i, const char **name, const char **value);

/*
 * Typed query parameters that record a field error (see below) when the
 * value is bad.  Absent (or empty): *out = def, returns 0.  Valid: *out set,
 * returns 0.  Bad: *out = def, error recorded, returns -1.
 */
int svc_query_int(svc_req_t *req, const char *name, int64_t def, int64_t min, int64_t max,
                  int64_t *out);
/* One of values (NULL-terminated), e.g. {"asc", "desc", NULL}: the index,
 * or def when absent; -1 (error recorded) for anything else. */
int svc_query_enum(svc_req_t *req, const char *name, const char *const *values, int def);

/*
 * Paging, one convention for every list endpoint:
 *   ?page=0 (0-based, default 0) &size=20 (1..100, default 20)
 *   &sort=<field>,<asc|desc>  (field one of `fields`; direction default asc)
 * and the answer {"content": [...], "page": 0, "size": 20,
 * "totalElements": N, "totalPages": M}.
 */
typedef struct svc_page_s {
    int64_t page, size;
    int sort;  /* index into fields (def_field when absent) */
    int desc;  /* 1 for desc */
} svc_page_t;
/* Reads page, size and sort; records field errors for bad values (the
 * caller checks svc_req_has_errors()).  fields NULL-terminated. */
void svc_query_page(svc_req_t *req, const char *const *fields, int def_field, int def_desc,
                    svc_page_t *out);
/* The answer's object; takes ownership of content (an array). */
cJSON *svc_page_json(cJSON *content, const svc_page_t *p, int64_t total);

/* ------------------------------------------------------------------------
 * Validation: collect every field error, then answer once
 * ------------------------------------------------------------------------ */

/*
 * Records {"field": field, "message": ...} for the 400 answer.
 *
 *     const cJSON *b = svc_req_body_object(req);
 *     const char *title = svc_json_str(req, b, "title", SVC_REQUIRED, 5, 80);
 *     int64_t price;
 *     svc_json_int(req, b, "price", SVC_REQUIRED, 1, INT64_MAX, &price);
 *     if (svc_req_has_errors(req)) {
 *         svc_reply_invalid(req);
 *         return;
 *     }
 */
void svc_req_field_error(svc_req_t *req, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int svc_req_has_errors(const svc_req_t *req);

enum { SVC_OPTIONAL = 0, SVC_REQUIRED = 1 };

/* The body if it is a JSON object; otherwise records an error for field
 * "body" and returns NULL.  The svc_json_* helpers accept a NULL obj (they
 * then record nothing more, so one missing body gives one error). */
const cJSON *svc_req_body_object(svc_req_t *req);
/*
 * obj[field] as a string of min..max characters (UTF-8 code points).
 * Returns it (borrowed from obj), or NULL when absent (JSON null counts as
 * absent; an error if required) or invalid (error recorded).
 */
const char *svc_json_str(svc_req_t *req, const cJSON *obj, const char *field, int required,
                         size_t min_chars, size_t max_chars);
/* obj[field] as an integer in [min, max] (a JSON number with no fraction,
 * at most 2^53 in magnitude).  Returns 1 (*out set), 0 when absent and
 * optional (*out untouched), -1 when invalid or required and absent. */
int svc_json_int(svc_req_t *req, const cJSON *obj, const char *field, int required, int64_t min,
                 int64_t max, int64_t *out);
/* obj[field] as true/false.  Returns as svc_json_int. */
int svc_json_bool(svc_req_t *req, const cJSON *obj, const char *field, int required, int *out);

/* ------------------------------------------------------------------------
 * Replies (each answers the request; exactly one per request)
 * ------------------------------------------------------------------------ */

/* body: the JSON document (ownership taken; freed here), or NULL for no
 * body (204, 202 without content). */
void svc_reply_json(svc_req_t *req, int status, cJSON *body);
/* Any content (metrics text, static files); data is copied. */
void svc_reply_raw(svc_req_t *req, int status, const char *content_type, const void *data,
                   size_t len);

/*
 * RFC 7807 problem+json:
 *   {"type": "urn:souk:problem:<slug>", "title": ..., "status": ...,
 *    "detail": ..., "instance": <request path>, "requestId": ...}
 * svc_reply_problem() derives the slug from the status (400 bad-request,
 * 401 unauthorized, 403 forbidden, 404 not-found, 405 method-not-allowed,
 * 409 conflict, 413 payload-too-large, 415 unsupported-media-type,
 * 422 unprocessable, 429 too-many-requests, 500 internal, 503 unavailable,
 * other: http-<status>).  title NULL -> the status phrase; detail_fmt NULL
 * -> no "detail".  Details go to clients: never put internals (SQL errors,
 * paths) in a 5xx detail - log them instead.
 */
void svc_reply_problem(svc_req_t *req, int status, const char *title, const char *detail_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* With a domain type slug ("ticket-unavailable" -> "urn:souk:problem:ticket-
 * unavailable"; NULL = derived from status) and extra members merged into the
 * document (an object; ownership taken; may be NULL). */
void svc_reply_problem_ex(svc_req_t *req, int status, const char *type_slug, const char *title,
                          cJSON *extra, const char *detail_fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* 400 "Validation failed" (type urn:souk:problem:validation) with
 * "errors": [{"field", "message"}, ...] as recorded so far. */
void svc_reply_invalid(svc_req_t *req);

/*
 * SVC_OWNER routes: returns 0 when the caller is owner_id or an ADMIN;
 * otherwise answers 403 and returns -1 (the handler must then return
 * without touching req).  svc_req_is_owner() only tells (1/0), no reply.
 */
int svc_require_owner(svc_req_t *req, const char *owner_id);
int svc_req_is_owner(const svc_req_t *req, const char *owner_id);

/* ------------------------------------------------------------------------
 * Static files (svc_static.c)
 * ------------------------------------------------------------------------ */

/*
 * Answers req with the file raw_path names under root_dir: GET/HEAD (a
 * directory serves its index.html), OPTIONS 204, other methods 405; 404
 * problem+json for anything missing or refused (see svc_static_path); the
 * resolved file must lie under root_dir's realpath.  Files up to 32 MiB.
 */
void svc_static_serve(svc_req_t *req, const char *root_dir, const char *raw_path);

/*
 * Maps a request path (raw, percent-encoded, without the query) to
 * a path relative to the directory, written to out (NUL-terminated):
 *   "/" -> "index.html", "/app/" -> "app/index.html", "/css/a.css" -> "css/a.css".
 * Empty segments ("//") are skipped.  Returns 0, or -1 when the path is
 * refused: not starting with '/', a malformed %-escape, an encoded '/',
 * '\' or NUL, a control byte or '\', a segment starting with '.' ("..",
 * ".", dotfiles), or a result longer than outsz - 1.  A refused path never
 * names a file; the caller still checks realpath() stays in the directory
 * (symbolic links).
 */
int svc_static_path(const char *raw, char *out, size_t outsz);

/* Content-Type by file extension (html, css, js, svg, png, ico, json, txt,
 * and a few more); "application/octet-stream" otherwise.  Never NULL. */
const char *svc_content_type(const char *path);

/* ------------------------------------------------------------------------
 * Tokens (also used by souk-auth's own tests and by the gateway)
 * ------------------------------------------------------------------------ */

#define SVC_JWT_ISSUER "souk-auth"

/* "USER", "AUTHOR", "ADMIN" <-> the enum; parse returns SVC_ROLE_NONE for
 * anything else. */
svc_role_t svc_role_parse(const char *s);
const char *svc_role_name(svc_role_t role);

/*
 * The token rules, in one place.  A token is accepted iff:
 *   - its header's alg is ES256 (none, HS*, RS* are refused - in particular
 *     an HS256 token "signed" with the public key PEM as HMAC secret, which
 *     libjwt 1.10.2's jwt_decode() alone would accept) and the signature
 *     verifies with pem (an EC P-256 public key);
 *   - iss == SVC_JWT_ISSUER; sub is a non-empty string (<= 128 bytes);
 *     role is "USER", "AUTHOR" or "ADMIN"; exp is a number > now_s;
 *     nbf, if present, is <= now_s; jti, if present, is a string.
 * On success returns 0 and fills *out with strings the caller frees with
 * svc_principal_release().  Otherwise returns -1 with the reason in err
 * (for logs and the 401's error_description; it never contains the token).
 */
int svc_jwt_verify(const char *pem, size_t pem_len, const char *token, int64_t now_s,
                   svc_principal_t *out, char *err, size_t errsz);
void svc_principal_release(svc_principal_t *p);

#endif
