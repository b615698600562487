/*
 * gw_proxy.c - proxying a request to its upstream over a keep-alive pool.
 *
 * Each upstream has up to --pool-size evhttp_connections, created on first
 * use and kept for the life of the process: libevent keeps an idle HTTP/1.1
 * connection open, notices when the peer closes it, and connects again for
 * the next request.  A request goes to an idle connection (an open one
 * first), else to a new one while the pool has room, else it queues on the
 * connection with the fewest requests (libevent sends them in turn).
 *
 * One gw_call_t per upstream request.  Its outcome:
 *   - an answer: status, headers (minus hop-by-hop) and body go back to the
 *     client as they are;
 *   - no answer: connection refused / reset / bad response -> 503
 *     problem+json naming the service; --upstream-timeout-ms passed -> 504.
 *     An idempotent request that failed on a reused connection before any
 *     answer (the peer closed it as we wrote) is sent once more.
 *
 * libevent calls a request's callback exactly once - sometimes inside
 * evhttp_make_request() itself (a connect refused at once); the
 * `dispatching` flag defers that case until evhttp_make_request() returned.
 */
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_int.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"

typedef enum {
    GW_ERR_NONE = 0,
    GW_ERR_CONNECT, /* refused, unreachable, could not even start */
    GW_ERR_RESET,   /* closed or reset before the whole answer */
    GW_ERR_TIMEOUT, /* --upstream-timeout-ms without progress */
    GW_ERR_INVALID, /* not an HTTP answer */
} gw_err_t;

static const char *const err_names[] = {"none", "connect", "reset", "timeout", "invalid"};
static const char *const err_text[] = {"", "cannot connect", "connection reset", "timed out",
                                       "invalid response"};

struct gw_call_s {
    gw_t *gw;
    gw_upstream_t *up;
    gw_conn_t *conn;
    svc_req_t *req; /* NULL for a probe */
    gw_call_t *prev, *next;
    enum evhttp_cmd_type cmd;
    int64_t start_us;
    int attempts;
    int reused;      /* the connection was open when this attempt was sent */
    int dispatching; /* inside evhttp_make_request() */
    int cb_ran;      /* libevent's callback ran for this attempt */
    int early_fail;  /* it ran inside evhttp_make_request(), with a failure */
    gw_err_t err;    /* from the error callback, or classified */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static int is_ip_literal(const char *host)
{
    unsigned char b[16];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

static void seen_set(gw_seen_t *s, int ok, int status, gw_err_t err)
{
    s->known = 1;
    s->ok = ok;
    s->status = status;
    s->at_ms = sk_wall_ms();
    snprintf(s->error, sizeof s->error, "%s", err ? err_text[err] : "");
}

int gw_upstream_healthy(const gw_upstream_t *up)
{
    const gw_seen_t *a = &up->last_request, *b = &up->last_probe;
    if (a->known && (!b->known || a->at_ms >= b->at_ms)) return a->ok;
    return b->known && b->ok;
}

static void calls_link(gw_t *gw, gw_call_t *c)
{
    c->prev = NULL;
    c->next = gw->calls;
    if (gw->calls) gw->calls->prev = c;
    gw->calls = c;
}

static void call_free(gw_call_t *c)
{
    gw_t *gw = c->gw;
    if (c->prev)
        c->prev->next = c->next;
    else
        gw->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    gw_conn_t *c = arg;
    c->connected = 0;
}

/* ---- the pool --------------------------------------------------------------------------- */

/* An idle connection (an open one first), a new one, or the least busy;
 * NULL only when libevent cannot create a connection. */
static gw_conn_t *pool_pick(gw_upstream_t *up)
{
    gw_t *gw = up->gw;
    gw_conn_t *idle = NULL, *least = NULL;
    for (size_t i = 0; i < up->nconns; i++) {
        gw_conn_t *c = &up->conns[i];
        if (c->active == 0) {
            if (c->connected) return c;
            if (!idle) idle = c;
        }
        if (!least || c->active < least->active) least = c;
    }
    if (idle) return idle;
    if (up->nconns < (size_t)gw->conf->pool_size) {
        gw_conn_t *c = &up->conns[up->nconns];
        c->evcon =
            evhttp_connection_base_new(svc_base(gw->svc), gw->dns, up->host, (ev_uint16_t)up->port);
        if (!c->evcon) return least;
        c->up = up;
        int64_t ms = gw->conf->upstream_timeout_ms;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        evhttp_connection_set_timeout_tv(c->evcon, &tv);
        evhttp_connection_set_retries(c->evcon, 0);
        evhttp_connection_set_closecb(c->evcon, conn_closed, c);
        up->nconns++;
        return c;
    }
    return least;
}

/* ---- requests --------------------------------------------------------------------------- */

static void call_done(struct evhttp_request *ureq, void *arg);
static void call_error(enum evhttp_request_error e, void *arg);
static void call_finish_failed(gw_call_t *call);

/* The request line's target: the client's path and query as sent. */
static void target_of(struct evhttp_request *ev, sk_buf_t *out)
{
    const char *uri = evhttp_request_get_uri(ev);
    if (uri && uri[0] == '/') {
        sk_buf_adds(out, uri);
        return;
    }
    /* absolute-form ("http://host/path?q"): keep path and query */
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(ev);
    const char *p = u ? evhttp_uri_get_path(u) : NULL;
    const char *q = u ? evhttp_uri_get_query(u) : NULL;
    sk_buf_adds(out, p && *p ? p : "/");
    if (q) sk_buf_addf(out, "?%s", q);
}

/* Copies the client's headers and body onto ureq. */
static void build_request(gw_call_t *call, struct evhttp_request *ureq)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(ureq);
    gw_upstream_t *up = call->up;
    if (!call->req) { /* a probe */
        evhttp_add_header(out, "Host", up->host_header);
        evhttp_add_header(out, "User-Agent", "souk-gateway");
        return;
    }
    struct evhttp_request *ev = svc_req_evhttp(call->req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
    const char *connection = evhttp_find_header(in, "Connection");
    const char *xff = NULL;
    for (struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next) {
        if (gw_header_is_hop(h->key, connection)) continue;
        if (strcasecmp(h->key, "Host") == 0 || strcasecmp(h->key, "Content-Length") == 0 ||
            strcasecmp(h->key, "Expect") == 0 || strcasecmp(h->key, "X-Request-Id") == 0 ||
            strcasecmp(h->key, "X-Correlation-Id") == 0 ||
            strcasecmp(h->key, "X-Forwarded-Host") == 0 ||
            strcasecmp(h->key, "X-Forwarded-Proto") == 0)
            continue;
        if (strcasecmp(h->key, "X-Forwarded-For") == 0) {
            xff = h->value; /* the last one; we append the peer below */
            continue;
        }
        evhttp_add_header(out, h->key, h->value);
    }
    evhttp_add_header(out, "Host", up->host_header);
    evhttp_add_header(out, "X-Request-Id", svc_req_id(call->req));
    evhttp_add_header(out, "X-Correlation-Id", svc_req_correlation_id(call->req));
    sk_buf_t b;
    sk_buf_init(&b, 64);
    if (xff && *xff) sk_buf_addf(&b, "%s, ", xff);
    sk_buf_adds(&b, svc_req_peer(call->req));
    evhttp_add_header(out, "X-Forwarded-For", b.data);
    const char *host = evhttp_find_header(in, "Host");
    if (host) evhttp_add_header(out, "X-Forwarded-Host", host);
    evhttp_add_header(out, "X-Forwarded-Proto", "http");

    /* The body, copied (not moved) so that a retry can send it again.
     * libevent adds Content-Length only for POST and PUT: set it always. */
    struct evbuffer *body = evhttp_request_get_input_buffer(ev);
    size_t len = evbuffer_get_length(body);
    if (len) evbuffer_add(evhttp_request_get_output_buffer(ureq), evbuffer_pullup(body, -1), len);
    if (len || call->cmd == EVHTTP_REQ_POST || call->cmd == EVHTTP_REQ_PUT ||
        call->cmd == EVHTTP_REQ_PATCH) {
        sk_buf_reset(&b);
        sk_buf_addf(&b, "%zu", len);
        evhttp_add_header(out, "Content-Length", b.data);
    }
    sk_buf_release(&b);
}

/* Sends one attempt.  Returns 0 when the callback will run (or ran and
 * succeeded); -1 when the attempt failed at once (call->err set). */
static int call_dispatch(gw_call_t *call)
{
    gw_upstream_t *up = call->up;
    call->attempts++;
    call->cb_ran = call->early_fail = 0;
    call->err = GW_ERR_NONE;
    gw_conn_t *c = pool_pick(up);
    if (!c) {
        call->err = GW_ERR_CONNECT;
        return -1;
    }
    struct evhttp_request *ureq = evhttp_request_new(call_done, call);
    if (!ureq) {
        call->err = GW_ERR_CONNECT;
        return -1;
    }
    evhttp_request_set_error_cb(ureq, call_error);
    build_request(call, ureq);

    sk_buf_t target;
    sk_buf_init(&target, 128);
    if (call->req)
        target_of(svc_req_evhttp(call->req), &target);
    else
        sk_buf_adds(&target, "/health");

    call->conn = c;
    c->active++;
    call->reused = c->connected;
    if (!c->connected) {
        c->connected = 1; /* one connect for this and every request queued behind it */
        svc_metric_counter_add(up->gw->svc, "gateway_upstream_connects_total",
                               (const char *[]){"upstream", up->def->name, NULL}, 1);
    }
    call->dispatching = 1;
    int rc = evhttp_make_request(c->evcon, ureq, call->cmd, target.data);
    call->dispatching = 0;
    sk_buf_release(&target);
    if (rc < 0 && !call->cb_ran) {
        /* libevent gave up before queueing it (no socket) */
        c->active--;
        c->connected = 0;
        call->err = GW_ERR_CONNECT;
        return -1;
    }
    return call->early_fail ? -1 : 0;
}

/* libevent restores the socket error before calling this: a failure on a
 * connection made for this request that is not a reset is a failed
 * connect (host unreachable, name not resolved, ...). */
static void call_error(enum evhttp_request_error e, void *arg)
{
    gw_call_t *call = arg;
    int sockerr = errno;
    if (e == EVREQ_HTTP_BUFFER_ERROR && !call->reused && sockerr != ECONNRESET &&
        sockerr != EPIPE) {
        call->err = GW_ERR_CONNECT;
        return;
    }
    switch (e) {
    case EVREQ_HTTP_TIMEOUT:
        call->err = GW_ERR_TIMEOUT;
        break;
    case EVREQ_HTTP_INVALID_HEADER:
    case EVREQ_HTTP_DATA_TOO_LONG:
        call->err = GW_ERR_INVALID;
        break;
    case EVREQ_HTTP_EOF:
    case EVREQ_HTTP_BUFFER_ERROR:
    case EVREQ_HTTP_REQUEST_CANCEL:
    default:
        call->err = GW_ERR_RESET;
        break;
    }
}

/* The client's answer from the upstream's. */
static void reply_from(gw_call_t *call, struct evhttp_request *ureq, int code)
{
    svc_req_t *req = call->req;
    struct evkeyvalq *in = evhttp_request_get_input_headers(ureq);
    const char *connection = evhttp_find_header(in, "Connection");
    int head = evhttp_request_get_command(svc_req_evhttp(req)) == EVHTTP_REQ_HEAD;
    const char *ctype = NULL;
    for (struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next) {
        if (gw_header_is_hop(h->key, connection)) continue;
        if (strcasecmp(h->key, "Content-Type") == 0) {
            if (!ctype) ctype = h->value; /* the runtime adds it */
            continue;
        }
        /* the runtime sends its own ids (the same values: we passed them) */
        if (strcasecmp(h->key, "X-Request-Id") == 0 || strcasecmp(h->key, "X-Correlation-Id") == 0)
            continue;
        /* libevent computes the length of what we send - except for HEAD,
         * where the upstream's tells the length of the GET */
        if (strcasecmp(h->key, "Content-Length") == 0 && !head) continue;
        if (strcasecmp(h->key, "Date") == 0 || strcasecmp(h->key, "Server") == 0) continue;
        svc_req_set_header(req, h->key, h->value);
    }
    struct evbuffer *body = evhttp_request_get_input_buffer(ureq);
    size_t len = evbuffer_get_length(body);
    const void *data = len ? evbuffer_pullup(body, -1) : NULL;
    if (len && !ctype) ctype = "application/octet-stream";
    svc_reply_raw(req, code, ctype, data, len);
}

static void call_done(struct evhttp_request *ureq, void *arg)
{
    gw_call_t *call = arg;
    gw_upstream_t *up = call->up;
    gw_conn_t *c = call->conn;
    int code = ureq ? evhttp_request_get_response_code(ureq) : 0;
    call->cb_ran = 1;
    if (c->active) c->active--;

    if (code == 0) {
        c->connected = 0;
        if (call->err == GW_ERR_NONE) {
            /* no error callback: the connect failed (refused, or its timeout) */
            int64_t ms = (sk_mono_us() - call->start_us) / 1000;
            call->err =
                ms + 50 >= up->gw->conf->upstream_timeout_ms ? GW_ERR_TIMEOUT : GW_ERR_CONNECT;
        }
        if (call->dispatching) {
            call->early_fail = 1;
            return;
        }
        call_finish_failed(call);
        return;
    }

    const char *connection =
        evhttp_find_header(evhttp_request_get_input_headers(ureq), "Connection");
    if (connection && strcasecmp(connection, "close") == 0) c->connected = 0;
    if (!call->req) { /* a probe */
        seen_set(&up->last_probe, code == 200, code, GW_ERR_NONE);
        up->probing = 0;
        call_free(call);
        return;
    }
    char status[16];
    snprintf(status, sizeof status, "%d", code);
    svc_metric_counter_add(up->gw->svc, "gateway_upstream_requests_total",
                           (const char *[]){"upstream", up->def->name, "status", status, NULL}, 1);
    seen_set(&up->last_request, code < 500, code, GW_ERR_NONE);
    reply_from(call, ureq, code);
    call_free(call);
}

static int idempotent(enum evhttp_cmd_type cmd)
{
    return cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD || cmd == EVHTTP_REQ_OPTIONS ||
           cmd == EVHTTP_REQ_PUT || cmd == EVHTTP_REQ_DELETE;
}

/* No answer: retry once if that is safe, else 503 / 504.  Frees call. */
static void call_finish_failed(gw_call_t *call)
{
    gw_upstream_t *up = call->up;
    svc_t *svc = up->gw->svc;
    for (;;) {
        if (!(call->req && call->reused && call->err == GW_ERR_RESET && call->attempts < 2 &&
              idempotent(call->cmd) && !svc_shutting_down(svc)))
            break;
        sk_debug("gateway", "%s: reused connection failed; retrying request %s", up->def->name,
                 svc_req_id(call->req));
        if (call_dispatch(call) == 0) return; /* the callback finishes it */
    }
    if (!call->req) {
        seen_set(&up->last_probe, 0, 0, call->err);
        up->probing = 0;
        call_free(call);
        return;
    }
    svc_metric_counter_add(
        svc, "gateway_upstream_errors_total",
        (const char *[]){"upstream", up->def->name, "reason", err_names[call->err], NULL}, 1);
    seen_set(&up->last_request, 0, 0, call->err);
    svc_req_t *req = call->req;
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "service", up->def->name);
    if (call->err == GW_ERR_TIMEOUT) {
        sk_warn("gateway", "%s (%s) did not answer within %lld ms (request %s)", up->def->name,
                up->address, (long long)up->gw->conf->upstream_timeout_ms, svc_req_id(req));
        svc_reply_problem_ex(req, 504, NULL, NULL, extra, "the %s service did not answer in time",
                             up->def->name);
    } else {
        sk_warn("gateway", "%s (%s): %s (request %s)", up->def->name, up->address,
                err_text[call->err], svc_req_id(req));
        svc_req_set_header(req, "Retry-After", "1");
        svc_reply_problem_ex(req, 503, NULL, NULL, extra, "the %s service is unavailable (%s)",
                             up->def->name, err_text[call->err]);
    }
    call_free(call);
}

static gw_call_t *call_new(gw_t *gw, gw_upstream_t *up, svc_req_t *req, enum evhttp_cmd_type cmd)
{
    gw_call_t *call = sk_calloc(1, sizeof *call);
    call->gw = gw;
    call->up = up;
    call->req = req;
    call->cmd = cmd;
    call->start_us = sk_mono_us();
    calls_link(gw, call);
    return call;
}

void gw_proxy(gw_t *gw, svc_req_t *req, gw_upstream_t *up)
{
    struct evhttp_request *ev = svc_req_evhttp(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(ev);
    if (cmd == EVHTTP_REQ_TRACE || cmd == EVHTTP_REQ_CONNECT) {
        svc_req_set_header(req, "Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
        svc_reply_problem(req, 405, NULL, "the gateway does not forward TRACE or CONNECT");
        return;
    }
    /* The size limit, before anything goes upstream: the declared length
     * and what actually arrived. */
    int64_t max = svc_conf(gw->svc)->max_body_bytes;
    const char *cl = svc_req_header(req, "Content-Length");
    size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(ev));
    long long declared = cl ? strtoll(cl, NULL, 10) : 0;
    if ((int64_t)len > max || declared > max) {
        svc_reply_problem(
            req, 413, "Payload too large", "the body has %lld bytes; at most %lld are accepted",
            (long long)((int64_t)len > declared ? (long long)len : declared), (long long)max);
        return;
    }
    if (svc_shutting_down(gw->svc)) {
        /* only requests already in flight are finished */
        svc_req_set_header(req, "Retry-After", "1");
        svc_reply_problem(req, 503, NULL, "the gateway is shutting down");
        return;
    }
    gw_call_t *call = call_new(gw, up, req, cmd);
    svc_req_defer(req);
    if (call_dispatch(call) < 0) call_finish_failed(call);
}

/* ---- probes ----------------------------------------------------------------------------- */

void gw_probe_all(gw_t *gw)
{
    for (int i = 0; i < GW_NUPSTREAMS; i++) {
        gw_upstream_t *up = &gw->up[i];
        if (up->probing) continue;
        /* a probe never waits behind requests: it needs an idle connection
         * or room for a new one */
        int room = up->nconns < (size_t)gw->conf->pool_size;
        for (size_t c = 0; !room && c < up->nconns; c++)
            room = up->conns[c].active == 0;
        if (!room) continue;
        gw_call_t *call = call_new(gw, up, NULL, EVHTTP_REQ_GET);
        up->probing = 1;
        if (call_dispatch(call) < 0) call_finish_failed(call);
    }
}

/* ---- lifecycle -------------------------------------------------------------------------- */

int gw_proxy_init(gw_t *gw, char *err, size_t errsz)
{
    int need_dns = 0;
    for (int i = 0; i < GW_NUPSTREAMS; i++) {
        gw_upstream_t *up = &gw->up[i];
        const gw_upstream_def_t *def = &gw_upstream_defs[i];
        up->def = def;
        up->gw = gw;
        const char *addr = gw->conf->url[i];
        if (gw_addr_parse(addr, up->host, sizeof up->host, &up->port) < 0) {
            snprintf(err, errsz, "--%s must be HOST:PORT, got '%s'", def->conf, addr);
            return -1;
        }
        int v6 = strchr(up->host, ':') != NULL;
        snprintf(up->address, sizeof up->address, v6 ? "[%s]:%d" : "%s:%d", up->host, up->port);
        snprintf(up->host_header, sizeof up->host_header, "%s", up->address);
        if (!is_ip_literal(up->host)) need_dns = 1;
        up->conns = sk_calloc((size_t)gw->conf->pool_size, sizeof *up->conns);
    }
    if (need_dns) {
        /* names (docker compose: "user:8080") resolve without blocking the loop */
        gw->dns = evdns_base_new(svc_base(gw->svc), EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (!gw->dns) {
            snprintf(err, errsz, "cannot start the DNS resolver for upstream host names");
            return -1;
        }
    }
    return 0;
}

void gw_proxy_fini(gw_t *gw)
{
    /* libevent frees the requests queued on a connection without calling
     * back; the svc requests they served are dropped by the runtime. */
    for (int i = 0; i < GW_NUPSTREAMS; i++) {
        gw_upstream_t *up = &gw->up[i];
        for (size_t c = 0; c < up->nconns; c++)
            if (up->conns[c].evcon) evhttp_connection_free(up->conns[c].evcon);
        free(up->conns);
        up->conns = NULL;
        up->nconns = 0;
    }
    while (gw->calls)
        call_free(gw->calls);
    if (gw->dns) evdns_base_free(gw->dns, 0);
    gw->dns = NULL;
}
