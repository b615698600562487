/*
 * gw_int.h - souk-gateway's own structures, shared by gateway.c (the
 * service, /gateway/upstreams), gw_proxy.c (the upstream pools and the
 * proxy) and gw_static.c (the web UI files).
 */
#ifndef GW_INT_H
#define GW_INT_H

#include <stddef.h>
#include <stdint.h>

#include "gw_rules.h"
#include "svc.h"

struct evhttp_connection;
struct evdns_base;
struct event;

typedef struct gw_conf_s {
    svc_conf_t common;
    char *url[GW_NUPSTREAMS]; /* --auth-url ... in gw_upstream_defs order */
    char *web_dir;            /* --web-dir (./web) */
    int64_t pool_size;        /* --pool-size: connections per upstream */
    int64_t upstream_timeout_ms;
    int64_t probe_interval_ms; /* 0: no probes */
} gw_conf_t;

typedef struct gw_s gw_t;
typedef struct gw_call_s gw_call_t;

/* One pooled connection to an upstream.  libevent reconnects it by itself
 * after a close; `active` counts the requests queued on it. */
typedef struct gw_conn_s {
    struct evhttp_connection *evcon;
    struct gw_upstream_s *up;
    size_t active;
    int connected; /* our belief: a keep-alive connection is open */
} gw_conn_t;

/* What we know about an upstream's health (request or probe). */
typedef struct gw_seen_s {
    int known;      /* 0: never tried */
    int ok;         /* answered (status < 500) */
    int status;     /* its status, 0 when it did not answer */
    int64_t at_ms;  /* wall clock */
    char error[64]; /* why it failed ("connection refused", "timeout", ...) */
} gw_seen_t;

typedef struct gw_upstream_s {
    const gw_upstream_def_t *def;
    gw_t *gw;
    char address[320]; /* as configured (normalized: HOST:PORT) */
    char host[256];
    int port;
    char host_header[300]; /* Host: sent upstream */
    gw_conn_t *conns;      /* pool_size entries; evcon NULL until first used */
    size_t nconns;         /* created so far */
    gw_seen_t last_request, last_probe;
    int probing; /* a probe is in flight */
} gw_upstream_t;

struct gw_s {
    svc_t *svc;
    const gw_conf_t *conf;
    gw_upstream_t up[GW_NUPSTREAMS];
    struct evdns_base *dns; /* only when an upstream host is a name */
    struct event *probe_ev;
    gw_call_t *calls; /* every call in flight (freed in fini) */
};

/* gw_proxy.c */
int gw_proxy_init(gw_t *gw, char *err, size_t errsz);
/* Answers req (now or later) from upstream up. */
void gw_proxy(gw_t *gw, svc_req_t *req, gw_upstream_t *up);
/* Sends GET /health to every upstream not being probed already. */
void gw_probe_all(gw_t *gw);
/* Frees the pools and every call still in flight (their svc requests are
 * dropped by the runtime). */
void gw_proxy_fini(gw_t *gw);
/* 1 when the latest of last_request / last_probe succeeded. */
int gw_upstream_healthy(const gw_upstream_t *up);

/* gw_static.c: GET/HEAD of a file under --web-dir, else 404/405. */

#endif
