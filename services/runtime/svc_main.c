/*
 * svc_main.c - a service's life: configuration, start, the loop, graceful
 * shutdown; the built-in routes /health, /ready and /metrics.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_fs.h"
#include "sk_log.h"
#include "sk_net.h"
#include "svc_internal.h"

#define DRAIN_TICK_MS 20
/* libevent 2.1 answers a body over its own limit with an HTML page that we
 * cannot replace, so its limit sits well above --max-body-bytes and the
 * runtime's check (problem+json 413) is the one clients normally meet. */
#define HARD_BODY_FACTOR 8
#define HARD_BODY_SLACK (1024 * 1024)
#define MAX_HEADERS_BYTES (64 * 1024)

/* ---- configuration ---------------------------------------------------------- */

static const sk_conf_entry_t common_table[] = {
    {"http", SK_CONF_STR, offsetof(svc_conf_t, http), NULL, 0, 0,
     "address of the HTTP API (IP:PORT or [IPv6]:PORT; port 0 picks a free one)"},
    {"data-dir", SK_CONF_STR, offsetof(svc_conf_t, data_dir), NULL, 0, 0,
     "where the service keeps its SQLite file (<name>.db) and other state"},
    {"brokers", SK_CONF_STR, offsetof(svc_conf_t, brokers), "127.0.0.1:9092", 0, 0,
     "Kafka bootstrap servers: souk-broker or a Kafka cluster (HOST:PORT[,HOST:PORT...])"},
    {"kv", SK_CONF_STR, offsetof(svc_conf_t, kv), "127.0.0.1:6379", 0, 0,
     "the key store: souk-broker's RESP listener or a Redis (HOST:PORT)"},
    {"jwt-public-key", SK_CONF_STR, offsetof(svc_conf_t, jwt_public_key), "", 0, 0,
     "PEM file with souk-auth's token verification key (EC P-256 public key); empty: none"},
    {"max-body-bytes", SK_CONF_SIZE, offsetof(svc_conf_t, max_body_bytes), "1m", 1, 1LL << 30,
     "largest request body accepted; a larger one is answered 413"},
    {"shutdown-timeout-ms", SK_CONF_INT, offsetof(svc_conf_t, shutdown_timeout_ms), "10000", 0,
     600000, "on SIGTERM/SIGINT, how long requests in flight and the outbox may take to finish"},
    {"http-timeout-s", SK_CONF_INT, offsetof(svc_conf_t, http_timeout_s), "30", 1, 3600,
     "close an HTTP connection that stays idle, or stalls reading or writing, this long"},
    {"log-level", SK_CONF_STR, offsetof(svc_conf_t, log_level), "info", 0, 0,
     "debug, info, warn or error"},
    {"max-attempts", SK_CONF_INT, offsetof(svc_conf_t, max_attempts), "5", 1, 1000,
     "attempts of a failing event handler before the event goes to <topic>.dlq"},
    {"log-topic", SK_CONF_STR, offsetof(svc_conf_t, log_topic), "logs", 0, 0,
     "also produce every log line to this topic (for analytics); empty: do not ship logs"},
    {"rdkafka", SK_CONF_STR, offsetof(svc_conf_t, rdkafka), "", 0, 0,
     "extra librdkafka properties for the outbox relay and the consumer, NAME=VALUE[,NAME=VALUE...] "
     "(e.g. linger.ms=0, or security.protocol=ssl for a real Kafka)"},
    {"log-ship-timeout-ms", SK_CONF_INT, offsetof(svc_conf_t, log_ship_timeout_ms), "10000", 100,
     3600000, "drop a log line that could not be shipped within this time"},
};
#define NCOMMON (sizeof common_table / sizeof common_table[0])

/* Common entries (with this service's defaults) followed by the service's. */
static int build_table(svc_t *svc, char *err, size_t errsz)
{
    const svc_desc_t *d = svc->desc;
    size_t nextra = 0;
    for (const sk_conf_entry_t *e = d->conf_table; e && e->name; e++) {
        for (size_t i = 0; i < NCOMMON; i++)
            if (strcmp(e->name, common_table[i].name) == 0) {
                snprintf(err, errsz, "service setting --%s clashes with a common setting", e->name);
                return -1;
            }
        if (e->offset < sizeof(svc_conf_t)) {
            snprintf(err, errsz,
                     "service setting --%s lies inside the svc_conf_t at the start of its struct",
                     e->name);
            return -1;
        }
        nextra++;
    }
    svc->table = sk_calloc(NCOMMON + nextra + 1, sizeof *svc->table);
    memcpy(svc->table, common_table, sizeof common_table);
    if (nextra) memcpy(svc->table + NCOMMON, d->conf_table, nextra * sizeof *svc->table);
    sk_buf_t b;
    sk_buf_init(&b, 32);
    sk_buf_addf(&b, "127.0.0.1:%d", d->default_port);
    svc->def_http = sk_buf_detach(&b, NULL);
    sk_buf_init(&b, 32);
    sk_buf_addf(&b, "./data/%s", d->name);
    svc->def_data_dir = sk_buf_detach(&b, NULL);
    svc->table[0].def = svc->def_http;
    svc->table[1].def = svc->def_data_dir;
    return 0;
}

/* ---- hooks lists ------------------------------------------------------------------ */

static void hooks_add(svc_hooks_t *h, const char *name, void *fn, void *arg)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 4;
        h->v = sk_realloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n].name = sk_strdup(name ? name : "");
    h->v[h->n].fn = fn;
    h->v[h->n].arg = arg;
    h->n++;
}

static void hooks_release(svc_hooks_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].name);
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* Function pointers live in void * slots (POSIX guarantees the round trip). */
typedef union {
    void *p;
    svc_check_fn check;
    svc_drain_fn drain;
    svc_collect_fn collect;
} fnptr_t;

void svc_add_ready_check(svc_t *svc, const char *name, svc_check_fn fn, void *arg)
{
    fnptr_t u = {.check = fn};
    hooks_add(&svc->checks, name, u.p, arg);
}

void svc_add_drain(svc_t *svc, const char *name, svc_drain_fn fn, void *arg)
{
    fnptr_t u = {.drain = fn};
    hooks_add(&svc->drains, name, u.p, arg);
}

void svc_metrics_add_collector(svc_t *svc, svc_collect_fn fn, void *arg)
{
    fnptr_t u = {.collect = fn};
    hooks_add(&svc->collectors, "collector", u.p, arg);
}

/* ---- metrics wrappers --------------------------------------------------------------- */

void svc_metric_counter_add(svc_t *svc, const char *name, const char *const *labels, double n)
{
    svc_metrics_update(svc->metrics, SVC_METRIC_COUNTER, name, labels, n);
}

void svc_metric_counter_set(svc_t *svc, const char *name, const char *const *labels, double v)
{
    svc_metrics_counter_set(svc->metrics, name, labels, v);
}

void svc_metric_gauge_set(svc_t *svc, const char *name, const char *const *labels, double v)
{
    svc_metrics_update(svc->metrics, SVC_METRIC_GAUGE, name, labels, v);
}

void svc_metric_observe(svc_t *svc, const char *name, const char *const *labels, double v)
{
    svc_metrics_update(svc->metrics, SVC_METRIC_HISTOGRAM, name, labels, v);
}

void svc_metric_help(svc_t *svc, const char *name, const char *help)
{
    svc_metrics_set_help(svc->metrics, name, help);
}

/* ---- accessors ------------------------------------------------------------------------ */

const char *svc_name(const svc_t *svc)
{
    return svc->desc->name;
}

const svc_conf_t *svc_conf(const svc_t *svc)
{
    return svc->conf;
}

struct event_base *svc_base(const svc_t *svc)
{
    return svc->base;
}

sqlite3 *svc_db(const svc_t *svc)
{
    return svc->db;
}

const char *svc_http_address(const svc_t *svc)
{
    return svc->address;
}

const svc_desc_t *svc_desc(const svc_t *svc)
{
    return svc->desc;
}

void svc_set_data(svc_t *svc, void *data)
{
    svc->data = data;
}

void *svc_data(const svc_t *svc)
{
    return svc->data;
}

int svc_shutting_down(const svc_t *svc)
{
    return svc->shutting_down;
}

/* ---- built-in routes ----------------------------------------------------------------- */

static void health_handler(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "UP");
    svc_reply_json(req, 200, o);
}

static void ready_handler(svc_t *svc, svc_req_t *req)
{
    cJSON *checks = cJSON_CreateObject();
    int ok = 1;
    if (svc->shutting_down) {
        cJSON *c = cJSON_AddObjectToObject(checks, "lifecycle");
        cJSON_AddStringToObject(c, "status", "DOWN");
        cJSON_AddStringToObject(c, "reason", "shutting down");
        ok = 0;
    }
    for (size_t i = 0; i < svc->checks.n; i++) {
        char err[256] = "";
        fnptr_t u = {.p = svc->checks.v[i].fn};
        int up = u.check(svc, svc->checks.v[i].arg, err, sizeof err) == 0;
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "status", up ? "UP" : "DOWN");
        if (!up) cJSON_AddStringToObject(c, "reason", *err ? err : "not ready");
        cJSON_AddItemToObject(checks, svc->checks.v[i].name, c);
        ok &= up;
    }
    if (ok) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "UP");
        cJSON_AddItemToObject(o, "checks", checks);
        svc_reply_json(req, 200, o);
        return;
    }
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddItemToObject(extra, "checks", checks);
    svc_reply_problem_ex(req, 503, NULL, "Not ready", extra, "a readiness check failed");
}

static void metrics_handler(svc_t *svc, svc_req_t *req)
{
    for (size_t i = 0; i < svc->collectors.n; i++) {
        fnptr_t u = {.p = svc->collectors.v[i].fn};
        u.collect(svc, svc->collectors.v[i].arg);
    }
    sk_buf_t b;
    sk_buf_init(&b, 4096);
    svc_metrics_render(svc->metrics, &b);
    svc_reply_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    sk_buf_release(&b);
}

static const svc_route_t builtin_routes[] = {
    {SVC_GET, "/health", health_handler, SVC_PUBLIC},
    {SVC_GET, "/ready", ready_handler, SVC_PUBLIC},
    {SVC_GET, "/metrics", metrics_handler, SVC_PUBLIC},
    {0, NULL, NULL, 0},
};

static int db_check(svc_t *svc, void *arg, char *err, size_t errsz)
{
    (void)arg;
    int64_t one = 0;
    if (sto_query_i64(svc->db, &one, "SELECT 1", "") != 1 || one != 1) {
        snprintf(err, errsz, "database: %s", sqlite3_errmsg(svc->db));
        return -1;
    }
    return 0;
}

static int jwt_check(svc_t *svc, void *arg, char *err, size_t errsz)
{
    (void)arg;
    size_t len;
    if (svc_jwt_key(svc, &len)) return 0;
    snprintf(err, errsz, "%s",
             *svc->conf->jwt_public_key ? "the token verification key is not there yet"
                                        : "no --jwt-public-key");
    return -1;
}

/* ---- shutdown ------------------------------------------------------------------------- */

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    svc_t *svc = arg;
    size_t pending = 0;
    for (size_t i = 0; i < svc->drains.n; i++) {
        fnptr_t u = {.p = svc->drains.v[i].fn};
        pending += u.drain(svc, svc->drains.v[i].arg);
    }
    svc->drains_started = 1;
    if (pending == 0 && svc->in_flight == 0 && svc->closing == 0) {
        sk_info("svc", "drained: stopping");
        event_base_loopbreak(svc->base);
    } else if (sk_mono_ms() >= svc->drain_deadline_ms) {
        sk_warn("svc",
                "shutdown timeout: stopping with %zu requests in flight, %zu answers being written "
                "and %zu items not drained",
                svc->in_flight, svc->closing, pending);
        event_base_loopbreak(svc->base);
    }
}

void svc_shutdown(svc_t *svc)
{
    if (svc->shutting_down) return;
    svc->shutting_down = 1;
    if (svc->bound) {
        evhttp_del_accept_socket(svc->http, svc->bound); /* closes the listening socket */
        svc->bound = NULL;
    }
    svc->drain_deadline_ms = sk_mono_ms() + svc->conf->shutdown_timeout_ms;
    svc->drain_ev = event_new(svc->base, -1, EV_PERSIST, drain_cb, svc);
    struct timeval tv = {0, DRAIN_TICK_MS * 1000};
    event_add(svc->drain_ev, &tv);
    event_active(svc->drain_ev, EV_TIMEOUT, 0);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    svc_t *svc = arg;
    const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    if (svc->shutting_down) {
        sk_warn("svc", "second %s: stopping now", name);
        event_base_loopbreak(svc->base);
        return;
    }
    sk_info("svc", "%s: no longer accepting connections; finishing requests in flight", name);
    svc_shutdown(svc);
}

/* stop_events() then fini(), each once and only if its start succeeded. */
static void stop_hooks(svc_t *svc)
{
    if (svc->hooks_stopped) return;
    svc->hooks_stopped = 1;
    if (svc->events_started && svc->desc->stop_events) svc->desc->stop_events(svc);
    svc_events_stop(svc);
    if (svc->inited && svc->desc->fini) svc->desc->fini(svc);
}

/* ---- start ------------------------------------------------------------------------------ */

static int start_http(svc_t *svc, char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (sk_net_parse_listen(svc->conf->http, &ss, &sslen) < 0) {
        snprintf(err, errsz, "--http must be IP:PORT or [IPv6]:PORT, got '%s'", svc->conf->http);
        return -1;
    }
    svc->http = evhttp_new(svc->base);
    if (!svc->http) {
        snprintf(err, errsz, "cannot create the HTTP server");
        return -1;
    }
    int64_t max = svc->conf->max_body_bytes;
    int64_t hard = max > (1LL << 40) / HARD_BODY_FACTOR ? max : max * HARD_BODY_FACTOR;
    if (hard < max + HARD_BODY_SLACK) hard = max + HARD_BODY_SLACK;
    evhttp_set_max_body_size(svc->http, (ev_ssize_t)hard);
    evhttp_set_max_headers_size(svc->http, MAX_HEADERS_BYTES);
    evhttp_set_timeout(svc->http, (int)svc->conf->http_timeout_s);
    evhttp_set_allowed_methods(svc->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(svc->http, svc_http_cb, svc);
    struct evconnlistener *l = evconnlistener_new_bind(
        svc->base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        512, (struct sockaddr *)&ss, (int)sslen);
    if (!l) {
        snprintf(err, errsz, "cannot listen on %s: %s", svc->conf->http, strerror(errno));
        return -1;
    }
    svc->bound = evhttp_bind_listener(svc->http, l);
    if (!svc->bound) {
        evconnlistener_free(l);
        snprintf(err, errsz, "cannot serve HTTP on %s", svc->conf->http);
        return -1;
    }
    struct sockaddr_storage got;
    socklen_t glen = sizeof got;
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&got, &glen) == 0)
        sk_net_format((struct sockaddr *)&got, svc->address, sizeof svc->address);
    else
        snprintf(svc->address, sizeof svc->address, "%s", svc->conf->http);
    return 0;
}

static int add_routes(svc_t *svc, const svc_route_t *routes, int quiet, char *err, size_t errsz)
{
    for (const svc_route_t *r = routes; r && r->pattern; r++) {
        if (svc_router_add(&svc->router, r, err, errsz) < 0) return -1;
        svc->router.routes[svc->router.n - 1].quiet = quiet;
        if (r->access != SVC_PUBLIC) svc->needs_auth = 1;
    }
    return 0;
}

int svc_new(const svc_desc_t *desc, int argc, char **argv, svc_t **out, char *err, size_t errsz)
{
    *out = NULL;
    if (!desc || !desc->name || !*desc->name || (!desc->conf && desc->conf_table)) {
        snprintf(err, errsz, "bad service description (name, or conf_table without conf)");
        return SVC_NEW_FAILED;
    }
    static cJSON_Hooks hooks = {sk_malloc, free};
    cJSON_InitHooks(&hooks);

    int rc = SVC_NEW_FAILED;
    svc_t *svc = sk_calloc(1, sizeof *svc);
    svc->desc = desc;
    svc->conf_struct = desc->conf ? desc->conf : &svc->own_conf;
    svc->conf = svc->conf_struct;
    svc_router_init(&svc->router);
    sk_map_init(&svc->tok_cache);
    svc->metrics = svc_metrics_new();
    if (build_table(svc, err, errsz) < 0) goto fail;

    sk_buf_t pn;
    sk_buf_init(&pn, 32);
    sk_buf_addf(&pn, "souk-%s", desc->name);
    svc->prog_name = sk_buf_detach(&pn, NULL);
    sk_conf_prog_t prog = {svc->prog_name, desc->summary ? desc->summary : "a souk service", NULL,
                           0};
    switch (sk_conf_load(&prog, svc->table, svc->conf_struct, argc, argv, NULL, NULL, err, errsz)) {
    case SK_CONF_EXIT:
        rc = SVC_NEW_EXIT;
        goto fail;
    case SK_CONF_ERROR:
        rc = SVC_NEW_USAGE;
        goto fail;
    }
    int lvl = sk_log_level_parse(svc->conf->log_level);
    if (lvl < 0) {
        snprintf(err, errsz, "--log-level must be debug, info, warn or error, got '%s'",
                 svc->conf->log_level);
        rc = SVC_NEW_USAGE;
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (sk_net_parse_listen(svc->conf->http, &ss, &sslen) < 0) {
        snprintf(err, errsz, "--http must be IP:PORT or [IPv6]:PORT, got '%s'", svc->conf->http);
        rc = SVC_NEW_USAGE;
        goto fail;
    }
    sk_log_set_service(desc->name);
    sk_log_set_level((sk_log_level_t)lvl);
    signal(SIGPIPE, SIG_IGN);

    if (add_routes(svc, builtin_routes, 1, err, errsz) < 0 ||
        add_routes(svc, desc->routes, 0, err, errsz) < 0)
        goto fail;
    svc_metrics_set_help(svc->metrics, "http_requests_total",
                         "HTTP requests answered, by route, method and status");
    svc_metrics_set_help(svc->metrics, "http_request_duration_seconds",
                         "time from a complete request to its answer");

    if (sk_mkdir_p(svc->conf->data_dir, 0700) < 0) {
        snprintf(err, errsz, "cannot create --data-dir %s: %s", svc->conf->data_dir,
                 strerror(errno));
        goto fail;
    }
    svc->base = event_base_new();
    if (!svc->base) {
        snprintf(err, errsz, "cannot create the event loop");
        goto fail;
    }
    if (svc_logship_start(svc, err, errsz) < 0) goto fail;
    if (desc->migrations && desc->nmigrations) {
        sk_buf_t p;
        sk_buf_init(&p, 128);
        sk_buf_addf(&p, "%s/%s.db", svc->conf->data_dir, desc->name);
        int orc = sto_open(p.data, desc->migrations, desc->nmigrations, &svc->db, err, errsz);
        sk_buf_release(&p);
        if (orc < 0) goto fail;
        /* commits never stall the loop with a checkpoint's copy + fsync */
        char why[256];
        if (sto_checkpoint_in_background(svc->db, why, sizeof why) < 0)
            sk_warn("svc", "%s (checkpoints stay in the commits)", why);
        svc_add_ready_check(svc, "db", db_check, NULL);
    }
    if (svc_jwt_key_load_initial(svc, err, errsz) < 0) goto fail;
    if (svc->needs_auth) svc_add_ready_check(svc, "jwt", jwt_check, NULL);
    if (start_http(svc, err, errsz) < 0) goto fail;

    svc->sigterm_ev = evsignal_new(svc->base, SIGTERM, signal_cb, svc);
    svc->sigint_ev = evsignal_new(svc->base, SIGINT, signal_cb, svc);
    if (!svc->sigterm_ev || !svc->sigint_ev || event_add(svc->sigterm_ev, NULL) < 0 ||
        event_add(svc->sigint_ev, NULL) < 0) {
        snprintf(err, errsz, "cannot handle SIGTERM/SIGINT");
        goto fail;
    }

    if (desc->init) {
        if (desc->init(svc, err, errsz) < 0) goto fail;
        svc->inited = 1;
    }
    if (svc_events_start(svc, err, errsz) < 0) goto fail;
    if (desc->start_events) {
        if (desc->start_events(svc, err, errsz) < 0) goto fail;
        svc->events_started = 1;
    }
    if (svc->needs_auth && !svc->jwt_pem && !*svc->conf->jwt_public_key)
        sk_warn("auth", "no --jwt-public-key: routes that need a token will answer 503");
    sk_info("svc", "listening on %s; data in %s", svc->address, svc->conf->data_dir);
    *out = svc;
    return SVC_NEW_OK;
fail:
    svc_free(svc);
    return rc;
}

int svc_run(svc_t *svc)
{
    int rc = event_base_dispatch(svc->base);
    stop_hooks(svc);
    if (rc < 0)
        sk_error("svc", "the event loop failed");
    else
        sk_info("svc", "stopped cleanly");
    return rc < 0 ? -1 : 0;
}

void svc_free(svc_t *svc)
{
    if (!svc) return;
    stop_hooks(svc);
    svc_http_drop_live(svc);
    if (svc->bound) evhttp_del_accept_socket(svc->http, svc->bound);
    if (svc->http) evhttp_free(svc->http);
    if (svc->drain_ev) event_free(svc->drain_ev);
    if (svc->sigterm_ev) event_free(svc->sigterm_ev);
    if (svc->sigint_ev) event_free(svc->sigint_ev);
    sto_close(svc->db);
    svc_logship_stop(svc);
    if (svc->base) event_base_free(svc->base);
    svc_router_release(&svc->router);
    svc_metrics_free(svc->metrics);
    hooks_release(&svc->checks);
    hooks_release(&svc->drains);
    hooks_release(&svc->collectors);
    svc_tok_cache_clear(svc);
    sk_map_release(&svc->tok_cache);
    free(svc->jwt_pem);
    if (svc->table) sk_conf_release(svc->table, svc->conf_struct);
    free(svc->table);
    free(svc->def_http);
    free(svc->def_data_dir);
    free(svc->prog_name);
    free(svc);
}

/* `souk-<name> --routes`: the route table, one "METHOD PATTERN ACCESS" per
 * line (tests compare it with docs/openapi.yaml). */
static void print_routes(const svc_desc_t *desc)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    static const char *const access[] = {"public", "user", "author", "admin", "owner"};
    const svc_route_t *tables[] = {builtin_routes, desc->routes};
    for (size_t t = 0; t < 2; t++)
        for (const svc_route_t *r = tables[t]; r && r->pattern; r++)
            printf("%s %s %s\n", methods[r->method], r->pattern, access[r->access]);
}

int svc_main(const svc_desc_t *desc, int argc, char **argv)
{
    char err[1024] = "";
    if (desc && argc == 2 && strcmp(argv[1], "--routes") == 0) {
        print_routes(desc);
        return 0;
    }
    svc_t *svc = NULL;
    const char *name = desc && desc->name ? desc->name : "service";
    switch (svc_new(desc, argc, argv, &svc, err, sizeof err)) {
    case SVC_NEW_EXIT:
        return 0;
    case SVC_NEW_USAGE:
        fprintf(stderr, "souk-%s: %s\n", name, err);
        return 2;
    case SVC_NEW_FAILED:
        sk_error("svc", "cannot start: %s", err);
        return 1;
    }
    printf("souk-%s %s: HTTP on %s, data in %s\n", name, SOUK_VERSION, svc_http_address(svc),
           svc_conf(svc)->data_dir);
    fflush(stdout);
    int rc = svc_run(svc) == 0 ? 0 : 1;
    svc_free(svc);
    return rc;
}
