/*
 * svc_internal.h - the runtime's own structures and the pieces its unit
 * tests reach directly (router, query parser, metrics registry, key check).
 * Services include svc.h only.
 */
#ifndef SVC_INTERNAL_H
#define SVC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sk_buf.h"
#include "sk_map.h"
#include "svc.h"

struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct event;

/* ---- percent-decoding ------------------------------------------------- */

/* Decodes s[0..*len) in place (%XX; '+' -> ' ' when plus_space); *len
 * becomes the decoded length and s is NUL-terminated there.  Returns 0, or
 * -1 for a malformed escape or a decoded NUL byte. */
int svc_pct_decode(char *s, size_t *len, int plus_space);

/* ---- router (svc_route.c) --------------------------------------------- */

#define SVC_MAX_SEGMENTS 16
#define SVC_MAX_PARAMS 8
#define SVC_MAX_PATH 2048

typedef struct svc_seg_s {
    char *text; /* literal text, or the parameter's name */
    int is_param;
} svc_seg_t;

typedef struct svc_croute_s {
    const svc_route_t *def; /* borrowed from the service's table */
    svc_seg_t seg[SVC_MAX_SEGMENTS];
    int nseg;
    unsigned rank; /* bit (SVC_MAX_SEGMENTS-1-i) set when segment i is literal */
    int quiet;     /* built-in (/health, /ready, /metrics): logged at debug level */
} svc_croute_t;

typedef struct svc_router_s {
    svc_croute_t *routes;
    size_t n, cap;
} svc_router_t;

typedef enum {
    SVC_MATCH_OK = 0,
    SVC_MATCH_NOT_FOUND,  /* no pattern matches the path */
    SVC_MATCH_BAD_METHOD, /* patterns match, none for this method: m->allowed */
    SVC_MATCH_BAD_PATH,   /* malformed escape, encoded NUL, too long or deep */
} svc_match_rc_t;

typedef struct svc_match_s {
    const svc_croute_t *route; /* set when SVC_MATCH_OK */
    unsigned allowed;          /* 1u << svc_method_t of every route matching the path */
    int nparams;
    const char *names[SVC_MAX_PARAMS]; /* borrowed from the route */
    char *values[SVC_MAX_PARAMS];      /* owned; decoded */
} svc_match_t;

void svc_router_init(svc_router_t *rt);
void svc_router_release(svc_router_t *rt);
/* Compiles and adds one route (r is borrowed and must outlive rt).
 * Returns 0, or -1 with err for a malformed pattern or a duplicate. */
int svc_router_add(svc_router_t *rt, const svc_route_t *r, char *err, size_t errsz);
/* method: an svc_method_t, or -1 for a method no route can have (OPTIONS,
 * TRACE, ...), which then only computes m->allowed.  path: the raw path
 * (still percent-encoded, no query).  Release m with svc_match_release()
 * whatever the result. */
svc_match_rc_t svc_router_match(const svc_router_t *rt, int method, const char *path,
                                svc_match_t *m);
void svc_match_release(svc_match_t *m);
const char *svc_method_name(svc_method_t m);

/* ---- query strings (svc_valid.c) -------------------------------------- */

typedef struct svc_query_s {
    char **names, **values; /* owned, decoded */
    size_t n;
} svc_query_t;

/* Parses "a=1&b=x+y&flag" (qs may be NULL or empty).  A pair without '='
 * has the value "".  Returns 0, or -1 for a malformed escape / encoded NUL
 * (q is then empty).  Release with svc_query_release(). */
int svc_query_parse(const char *qs, svc_query_t *q);
void svc_query_release(svc_query_t *q);

/* ---- tokens (svc_auth.c) ---------------------------------------------- */

/* 0 when pem holds an EC P-256 public key, else -1 with err. */
int svc_jwt_key_check(const char *pem, size_t len, char *err, size_t errsz);

/* ---- metrics registry (svc_metrics.c) --------------------------------- */

typedef struct svc_metrics_s svc_metrics_t;
typedef enum { SVC_METRIC_COUNTER, SVC_METRIC_GAUGE, SVC_METRIC_HISTOGRAM } svc_metric_type_t;

svc_metrics_t *svc_metrics_new(void);
void svc_metrics_free(svc_metrics_t *m);
/* Adds to (COUNTER), sets (GAUGE) or observes (HISTOGRAM) one series. */
void svc_metrics_update(svc_metrics_t *m, svc_metric_type_t type, const char *name,
                        const char *const *labels, double v);
/* Sets a COUNTER series to v (a total kept elsewhere). */
void svc_metrics_counter_set(svc_metrics_t *m, const char *name, const char *const *labels,
                             double v);
void svc_metrics_set_help(svc_metrics_t *m, const char *name, const char *help);
/* Appends the exposition text (families and series sorted by name). */
void svc_metrics_render(const svc_metrics_t *m, sk_buf_t *out);

/* ---- the service and the request -------------------------------------- */

typedef struct svc_hook_s {
    char *name;
    void *fn;
    void *arg;
} svc_hook_t;

typedef struct svc_hooks_s {
    svc_hook_t *v;
    size_t n, cap;
} svc_hooks_t;

/* svc_events.c: the relay, consumer and key-store client (NULL when the
 * service has none). */
typedef struct svc_events_s svc_events_t;
int svc_events_start(svc_t *svc, char *err, size_t errsz);
/* Closes the consumer (final commit), frees the relay and the client.
 * Idempotent. */
void svc_events_stop(svc_t *svc);

/* svc_logship.c: log lines to --log-topic (nothing when it is empty). */
typedef struct svc_logship_s svc_logship_t;
int svc_logship_start(svc_t *svc, char *err, size_t errsz);
void svc_logship_stop(svc_t *svc);

struct svc_s {
    const svc_desc_t *desc;
    svc_conf_t *conf;  /* = own_conf or the service's struct */
    void *conf_struct; /* what sk_conf filled */
    svc_conf_t own_conf;
    sk_conf_entry_t *table; /* common + service entries, owned */
    char *def_http, *def_data_dir, *prog_name;

    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound; /* NULL once we stopped accepting */
    char address[80];
    struct event *sigterm_ev, *sigint_ev, *drain_ev;

    sqlite3 *db;
    svc_events_t *events;
    svc_logship_t *logship;
    svc_router_t router;
    svc_metrics_t *metrics;

    char *jwt_pem;
    size_t jwt_len;
    sk_map_t tok_cache; /* token -> svc_tok_cached_t *: tokens verified with jwt_pem */
    int64_t jwt_next_try_ms;
    int needs_auth; /* some route is not PUBLIC */

    svc_hooks_t checks, drains, collectors;
    void *data;

    int shutting_down, drains_started;
    int64_t drain_deadline_ms;
    int inited, events_started, hooks_stopped;

    svc_req_t *live; /* deferred requests not answered yet */
    size_t in_flight;
    size_t closing; /* answered during shutdown, connection not closed yet */
};

#define SVC_ID_MAX 128

struct svc_req_s {
    svc_t *svc;
    struct evhttp_request *ev;
    svc_req_t *prev, *next; /* in svc->live while deferred */

    int method; /* svc_method_t, or -1 */
    int is_head;
    const char *method_name;
    char *path;
    const char *route_label;
    svc_match_t match;
    svc_query_t query;
    cJSON *body;
    svc_principal_t principal;
    int has_principal;
    cJSON *errors; /* field errors, lazily created array */

    char id[SVC_ID_MAX + 1], corr[SVC_ID_MAX + 1], peer[64];
    int64_t start_us;
    int status;
    unsigned replied : 1, deferred : 1, in_handler : 1;
};

/* svc_auth.c: the route's access rule for this request; 0 to go on, -1
 * after answering 401/403/503.  Fills req->principal. */
int svc_auth_check(svc_req_t *req, svc_access_t access);
/* Loads --jwt-public-key at start: 0, or -1 (err) for a file that exists but
 * is no EC P-256 public key; a missing file is retried later. */
int svc_jwt_key_load_initial(svc_t *svc, char *err, size_t errsz);
/* Forgets every cached token verification (a new key; svc_free). */
void svc_tok_cache_clear(svc_t *svc);

/* svc_http.c */
void svc_http_cb(struct evhttp_request *ev, void *arg);
/* Forgets requests still deferred (after fini, before evhttp_free). */
void svc_http_drop_live(svc_t *svc);
/* The key, loading --jwt-public-key again if needed (at most 1/s).
 * NULL when there is none. */
const char *svc_jwt_key(svc_t *svc, size_t *len);

#endif
