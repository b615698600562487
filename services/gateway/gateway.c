/*
 * souk-gateway: one entry point for clients.
 *
 * Every path under a service's prefix (/auth, /users, /catalogs, /bookings,
 * /payments, /notifications, /analytics) is proxied to that service through
 * a keep-alive pool of evhttp connections (gw_proxy.c); every other path is
 * a file of the web UI under --web-dir (gw_static.c).  Both run as the
 * runtime's fallback handler, so the gateway gets svc_main()'s config,
 * logging, /health, /ready, /metrics and problem+json for free, and keeps
 * nothing but the pools: no database, no messaging.
 *
 * The gateway reads no token: the services verify Authorization themselves.
 * /ready says whether the gateway runs, not whether every service does (a
 * deployment without analytics is still usable); GET /gateway/upstreams
 * tells the state of each upstream from its last request and a periodic
 * GET /health probe.
 */
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_int.h"
#include "sk_clock.h"
#include "sk_alloc.h"
#include "sk_log.h"

static gw_conf_t gw_conf;

#define URL_ENTRY(i, help)                                                                         \
    {                                                                                              \
        NULL, SK_CONF_STR, offsetof(gw_conf_t, url[i]), NULL, 0, 0, help                           \
    }

static sk_conf_entry_t gw_table[] = {
    URL_ENTRY(0, "souk-auth's HOST:PORT (/auth)"),
    URL_ENTRY(1, "souk-user's HOST:PORT (/users)"),
    URL_ENTRY(2, "souk-catalog's HOST:PORT (/catalogs)"),
    URL_ENTRY(3, "souk-booking's HOST:PORT (/bookings)"),
    URL_ENTRY(4, "souk-payment's HOST:PORT (/payments)"),
    URL_ENTRY(5, "souk-notification's HOST:PORT (/notifications)"),
    URL_ENTRY(6, "souk-analytics' HOST:PORT (/analytics)"),
    {"web-dir", SK_CONF_STR, offsetof(gw_conf_t, web_dir), "./web", 0, 0,
     "the web UI's static files, served at /"},
    {"pool-size", SK_CONF_INT, offsetof(gw_conf_t, pool_size), "16", 1, 1024,
     "keep-alive connections per upstream"},
    {"upstream-timeout-ms", SK_CONF_INT, offsetof(gw_conf_t, upstream_timeout_ms), "30000", 1,
     3600000, "connect / read / write timeout of a proxied request (then 504)"},
    {"probe-interval-ms", SK_CONF_INT, offsetof(gw_conf_t, probe_interval_ms), "2000", 0, 3600000,
     "GET /health of every upstream this often (0: never)"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

/* The URL entries take their names and defaults from the prefix table, so
 * the two cannot disagree. */
static void fill_table(void)
{
    for (int i = 0; i < GW_NUPSTREAMS; i++) {
        gw_table[i].name = gw_upstream_defs[i].conf;
        gw_table[i].def = gw_upstream_defs[i].def_addr;
    }
}

/* ---- GET /gateway/upstreams ------------------------------------------------------------------ */

static cJSON *seen_json(const gw_seen_t *s)
{
    if (!s->known) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    char at[40];
    cJSON_AddBoolToObject(o, "ok", s->ok);
    if (s->status)
        cJSON_AddNumberToObject(o, "status", s->status);
    else
        cJSON_AddNullToObject(o, "status");
    cJSON_AddStringToObject(o, "at", sk_rfc3339_ms(s->at_ms, at));
    if (s->error[0]) cJSON_AddStringToObject(o, "error", s->error);
    return o;
}

static void upstreams_handler(svc_t *svc, svc_req_t *req)
{
    gw_t *gw = svc_data(svc);
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "upstreams");
    for (int i = 0; i < GW_NUPSTREAMS; i++) {
        const gw_upstream_t *up = &gw->up[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", up->def->name);
        cJSON_AddStringToObject(o, "prefix", up->def->prefix);
        cJSON_AddStringToObject(o, "address", up->address);
        if (up->last_request.known || up->last_probe.known)
            cJSON_AddBoolToObject(o, "up", gw_upstream_healthy(up));
        else
            cJSON_AddNullToObject(o, "up");
        cJSON_AddItemToObject(o, "lastRequest", seen_json(&up->last_request));
        cJSON_AddItemToObject(o, "lastProbe", seen_json(&up->last_probe));
        size_t open = 0, active = 0;
        for (size_t c = 0; c < up->nconns; c++) {
            open += up->conns[c].connected;
            active += up->conns[c].active;
        }
        cJSON_AddNumberToObject(o, "connections", (double)open);
        cJSON_AddNumberToObject(o, "requestsInFlight", (double)active);
        cJSON_AddItemToArray(arr, o);
    }
    svc_reply_json(req, 200, doc);
}

static const svc_route_t gw_routes[] = {
    {SVC_GET, "/gateway/upstreams", upstreams_handler, SVC_PUBLIC},
    {0, NULL, NULL, 0},
};

/* ---- everything else ------------------------------------------------------------------------- */

static void gw_fallback(svc_t *svc, svc_req_t *req)
{
    gw_t *gw = svc_data(svc);
    int i = gw_upstream_find(svc_req_path(req));
    if (i >= 0)
        gw_proxy(gw, req, &gw->up[i]);
    else
        svc_static_serve(req, gw->conf->web_dir, svc_req_path(req));
}

/* ---- probes and lifecycle -------------------------------------------------------------------- */

static void probe_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_t *gw = arg;
    if (!svc_shutting_down(gw->svc)) gw_probe_all(gw);
}

/* Shutdown: no new probes; the requests in flight are the runtime's to
 * wait for (deferred requests count as in flight). */
static size_t probe_drain(svc_t *svc, void *arg)
{
    (void)svc;
    gw_t *gw = arg;
    if (gw->probe_ev) event_del(gw->probe_ev);
    return 0;
}

static void gw_fini(svc_t *svc);

static int gw_init(svc_t *svc, char *err, size_t errsz)
{
    gw_t *gw = sk_calloc(1, sizeof *gw);
    gw->svc = svc;
    gw->conf = &gw_conf;
    svc_set_data(svc, gw);
    if (gw_proxy_init(gw, err, errsz) < 0) goto fail;

    svc_metric_help(svc, "gateway_upstream_requests_total",
                    "requests an upstream answered, by upstream and its status");
    svc_metric_help(svc, "gateway_upstream_errors_total",
                    "proxied requests no upstream answered, by upstream and reason "
                    "(connect, reset, timeout, invalid)");
    svc_metric_help(svc, "gateway_upstream_connects_total",
                    "connections the gateway opened (or tried to open) to an upstream");

    if (gw->conf->probe_interval_ms > 0) {
        gw->probe_ev = event_new(svc_base(svc), -1, EV_PERSIST, probe_cb, gw);
        struct timeval tv = {(time_t)(gw->conf->probe_interval_ms / 1000),
                             (suseconds_t)(gw->conf->probe_interval_ms % 1000) * 1000};
        if (!gw->probe_ev || event_add(gw->probe_ev, &tv) < 0) {
            snprintf(err, errsz, "cannot start the upstream probe timer");
            goto fail;
        }
        gw_probe_all(gw); /* know the state right away */
    }
    svc_add_drain(svc, "probes", probe_drain, gw);
    for (int i = 0; i < GW_NUPSTREAMS; i++)
        sk_info("gateway", "%s -> %s (%s)", gw->up[i].def->prefix, gw->up[i].address,
                gw->up[i].def->name);
    sk_info("gateway", "web UI from %s", gw->conf->web_dir);
    return 0;
fail:
    gw_fini(svc); /* the runtime calls fini() only after a successful init() */
    return -1;
}

static void gw_fini(svc_t *svc)
{
    gw_t *gw = svc_data(svc);
    if (!gw) return;
    if (gw->probe_ev) event_free(gw->probe_ev);
    gw_proxy_fini(gw);
    free(gw);
    svc_set_data(svc, NULL);
}

static const svc_desc_t gw_desc = {
    .name = "gateway",
    .summary = "souk-gateway: one entry point for clients - proxies /auth, /users, /catalogs, "
               "/bookings, /payments, /notifications and /analytics to the services and serves "
               "the web UI at /.",
    .default_port = 8082,
    .conf_table = gw_table,
    .conf = &gw_conf,
    .routes = gw_routes,
    .fallback = gw_fallback,
    .init = gw_init,
    .fini = gw_fini,
};

int main(int argc, char **argv)
{
    fill_table();
    return svc_main(&gw_desc, argc, argv);
}
