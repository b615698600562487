/*
 * svc_http.c - one HTTP request from evhttp to the handler and back: ids,
 * routing, auth, body, the reply helpers, metrics and the log line.
 *
 * The checks before the handler run in this order, each answering with
 * problem+json: malformed path 400 / too long 414, no route 404, wrong
 * method 405 (OPTIONS 204), malformed query 400, token 401 / role 403, body
 * over --max-body-bytes 413, malformed JSON 400.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "svc_internal.h"

/* ---- ids ------------------------------------------------------------------- */

/* Takes a client's id if it is 1-128 chars of [A-Za-z0-9._:-]. */
static int id_ok(const char *s)
{
    size_t n = 0;
    if (!s) return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= SVC_ID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return n > 0;
}

static void new_uuid(char out[37])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

/* ---- accessors ------------------------------------------------------------- */

svc_method_t svc_req_method(const svc_req_t *req)
{
    return req->method < 0 ? SVC_GET : (svc_method_t)req->method;
}

const char *svc_req_path(const svc_req_t *req)
{
    return req->path;
}

const char *svc_req_route(const svc_req_t *req)
{
    return req->route_label;
}

const char *svc_req_param(const svc_req_t *req, const char *name)
{
    for (int i = 0; i < req->match.nparams; i++)
        if (strcmp(req->match.names[i], name) == 0) return req->match.values[i];
    return NULL;
}

const char *svc_req_header(const svc_req_t *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

const cJSON *svc_req_body(const svc_req_t *req)
{
    return req->body;
}

const svc_principal_t *svc_req_principal(const svc_req_t *req)
{
    return req->has_principal ? &req->principal : NULL;
}

const char *svc_req_id(const svc_req_t *req)
{
    return req->id;
}

const char *svc_req_correlation_id(const svc_req_t *req)
{
    return req->corr;
}

const char *svc_req_peer(const svc_req_t *req)
{
    return req->peer;
}

void svc_req_set_header(svc_req_t *req, const char *name, const char *value)
{
    if (req->replied) return;
    evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value);
}

void svc_req_defer(svc_req_t *req)
{
    if (req->replied || req->deferred) return;
    req->deferred = 1;
    svc_t *svc = req->svc;
    req->prev = NULL;
    req->next = svc->live;
    if (svc->live) svc->live->prev = req;
    svc->live = req;
    svc->in_flight++;
}

/* ---- lifetime --------------------------------------------------------------- */

static void req_free(svc_req_t *r)
{
    svc_t *svc = r->svc;
    if (r->deferred) {
        if (r->prev)
            r->prev->next = r->next;
        else
            svc->live = r->next;
        if (r->next) r->next->prev = r->prev;
        svc->in_flight--;
    }
    svc_match_release(&r->match);
    svc_query_release(&r->query);
    cJSON_Delete(r->body);
    cJSON_Delete(r->errors);
    svc_principal_release(&r->principal);
    free(r->path);
    free(r);
}

void svc_http_drop_live(svc_t *svc)
{
    while (svc->live) {
        svc_req_t *r = svc->live;
        sk_warn("http", "dropping %s %s (request %s): not answered before shutdown", r->method_name,
                r->path, r->id);
        /* A request whose client went away belongs to nobody but us now;
         * the others are freed with their connection by evhttp_free(). */
        if (!evhttp_request_get_connection(r->ev)) evhttp_request_free(r->ev);
        req_free(r);
    }
}

/* ---- replies ----------------------------------------------------------------- */

/* Metrics and the request's log line. */
static void account(svc_req_t *r)
{
    svc_t *svc = r->svc;
    double secs = (double)(sk_mono_us() - r->start_us) / 1e6;
    char status[16];
    snprintf(status, sizeof status, "%d", r->status);
    const char *const lc[] = {"route",  r->route_label, "method", r->method_name,
                              "status", status,         NULL};
    const char *const lh[] = {"route", r->route_label, "method", r->method_name, NULL};
    svc_metrics_update(svc->metrics, SVC_METRIC_COUNTER, "http_requests_total", lc, 1);
    svc_metrics_update(svc->metrics, SVC_METRIC_HISTOGRAM, "http_request_duration_seconds", lh,
                       secs);

    int quiet = r->match.route && r->match.route->quiet && r->status != 500; /* probes */
    sk_log_level_t lvl = r->status >= 500 ? SK_LOG_WARN : quiet ? SK_LOG_DEBUG : SK_LOG_INFO;
    if (!sk_log_enabled(lvl)) return;
    size_t plen = strlen(r->path);
    if (plen > 512) plen = 512;
    sk_buf_t f;
    sk_buf_init(&f, 256);
    sk_buf_adds(&f, "\"method\":");
    sk_buf_add_json_str(&f, r->method_name, strlen(r->method_name));
    sk_buf_adds(&f, ",\"path\":");
    sk_buf_add_json_str(&f, r->path, plen);
    sk_buf_adds(&f, ",\"route\":");
    sk_buf_add_json_str(&f, r->route_label, strlen(r->route_label));
    sk_buf_addf(&f, ",\"status\":%d,\"ms\":%.3f,\"requestId\":", r->status, secs * 1000);
    sk_buf_add_json_str(&f, r->id, strlen(r->id));
    sk_buf_adds(&f, ",\"correlationId\":");
    sk_buf_add_json_str(&f, r->corr, strlen(r->corr));
    if (r->has_principal) {
        sk_buf_adds(&f, ",\"userId\":");
        sk_buf_add_json_str(&f, r->principal.user_id, strlen(r->principal.user_id));
    }
    sk_log_fields(lvl, "http", f.data, "%s %.*s %d %.1fms", r->method_name, (int)plen, r->path,
                  r->status, secs * 1000);
    sk_buf_release(&f);
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    svc_t *svc = arg;
    if (svc->closing) svc->closing--;
}

static void send_reply(svc_req_t *r, int status, const char *ctype, const void *data, size_t len)
{
    if (r->replied) {
        sk_error("http", "%s %s answered twice (request %s); the second answer (%d) is dropped",
                 r->method_name, r->path, r->id, status);
        return;
    }
    r->replied = 1;
    r->status = status;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    if (ctype && len) evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "X-Request-Id", r->id);
    evhttp_add_header(h, "X-Correlation-Id", r->corr);
    if (r->svc->shutting_down) {
        /* evhttp closes the connection once this answer is written; the
         * drain waits for that, so the answer is not cut off by the exit. */
        evhttp_add_header(h, "Connection", "close");
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
        if (evcon) {
            r->svc->closing++;
            evhttp_connection_set_closecb(evcon, conn_closed, r->svc);
        }
    }
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        fprintf(stderr, "souk: out of memory (evbuffer)\n");
        abort();
    }
    if (r->is_head && len) {
        /* libevent 2.1 would send the body after a HEAD answer: send only
         * the length the GET would have had. */
        char n[32];
        snprintf(n, sizeof n, "%zu", len);
        evhttp_add_header(h, "Content-Length", n);
    } else if (len) {
        evbuffer_add(b, data, len);
    }
    evhttp_send_reply(r->ev, status, NULL, b);
    evbuffer_free(b);
    account(r);
    if (!r->in_handler) req_free(r);
}

void svc_reply_raw(svc_req_t *req, int status, const char *content_type, const void *data,
                   size_t len)
{
    send_reply(req, status, content_type, data, len);
}

void svc_reply_json(svc_req_t *req, int status, cJSON *body)
{
    if (!body) {
        send_reply(req, status, NULL, NULL, 0);
        return;
    }
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!text) {
        svc_reply_problem(req, 500, NULL, "the answer could not be encoded");
        return;
    }
    send_reply(req, status, "application/json", text, strlen(text));
    free(text);
}

static const struct {
    int status;
    const char *slug, *phrase;
} statuses[] = {
    {400, "bad-request", "Bad Request"},
    {401, "unauthorized", "Unauthorized"},
    {403, "forbidden", "Forbidden"},
    {404, "not-found", "Not Found"},
    {405, "method-not-allowed", "Method Not Allowed"},
    {406, "not-acceptable", "Not Acceptable"},
    {408, "request-timeout", "Request Timeout"},
    {409, "conflict", "Conflict"},
    {410, "gone", "Gone"},
    {412, "precondition-failed", "Precondition Failed"},
    {413, "payload-too-large", "Payload Too Large"},
    {414, "uri-too-long", "URI Too Long"},
    {415, "unsupported-media-type", "Unsupported Media Type"},
    {422, "unprocessable", "Unprocessable Content"},
    {428, "precondition-required", "Precondition Required"},
    {429, "too-many-requests", "Too Many Requests"},
    {500, "internal", "Internal Server Error"},
    {501, "not-implemented", "Not Implemented"},
    {502, "bad-gateway", "Bad Gateway"},
    {503, "unavailable", "Service Unavailable"},
    {504, "gateway-timeout", "Gateway Timeout"},
};

static void vproblem(svc_req_t *r, int status, const char *slug, const char *title, cJSON *extra,
                     const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

static void vproblem(svc_req_t *r, int status, const char *slug, const char *title, cJSON *extra,
                     const char *fmt, va_list ap)
{
    char gen_slug[32], detail[1024];
    const char *phrase = "Error";
    const char *def_slug = NULL;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (statuses[i].status == status) {
            def_slug = statuses[i].slug;
            phrase = statuses[i].phrase;
        }
    if (!def_slug) {
        snprintf(gen_slug, sizeof gen_slug, "http-%d", status);
        def_slug = gen_slug;
    }
    sk_buf_t type;
    sk_buf_init(&type, 64);
    sk_buf_addf(&type, "urn:souk:problem:%s", slug ? slug : def_slug);

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "type", type.data);
    cJSON_AddStringToObject(doc, "title", title ? title : phrase);
    cJSON_AddNumberToObject(doc, "status", status);
    if (fmt) {
        vsnprintf(detail, sizeof detail, fmt, ap);
        cJSON_AddStringToObject(doc, "detail", detail);
    }
    cJSON_AddStringToObject(doc, "instance", r->path);
    cJSON_AddStringToObject(doc, "requestId", r->id);
    sk_buf_release(&type);
    while (extra && extra->child) {
        cJSON *it = cJSON_DetachItemViaPointer(extra, extra->child);
        if (!it->string || cJSON_GetObjectItemCaseSensitive(doc, it->string)) {
            cJSON_Delete(it); /* never let extra members replace the standard ones */
            continue;
        }
        char *key = sk_strdup(it->string);
        cJSON_AddItemToObject(doc, key, it);
        free(key);
    }
    cJSON_Delete(extra);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!text) {
        static const char fallback[] =
            "{\"type\":\"urn:souk:problem:internal\",\"title\":\"Internal Server "
            "Error\",\"status\":500}";
        send_reply(r, 500, "application/problem+json", fallback, sizeof fallback - 1);
        return;
    }
    send_reply(r, status, "application/problem+json", text, strlen(text));
    free(text);
}

void svc_reply_problem(svc_req_t *req, int status, const char *title, const char *detail_fmt, ...)
{
    va_list ap;
    va_start(ap, detail_fmt);
    vproblem(req, status, NULL, title, NULL, detail_fmt, ap);
    va_end(ap);
}

void svc_reply_problem_ex(svc_req_t *req, int status, const char *type_slug, const char *title,
                          cJSON *extra, const char *detail_fmt, ...)
{
    va_list ap;
    va_start(ap, detail_fmt);
    vproblem(req, status, type_slug, title, extra, detail_fmt, ap);
    va_end(ap);
}

void svc_reply_invalid(svc_req_t *req)
{
    cJSON *extra = cJSON_CreateObject();
    cJSON *errors = req->errors ? req->errors : cJSON_CreateArray();
    req->errors = NULL;
    cJSON_AddItemToObject(extra, "errors", errors);
    int n = cJSON_GetArraySize(errors);
    svc_reply_problem_ex(req, 400, "validation", "Validation failed", extra, "%d field%s invalid",
                         n, n == 1 ? " is" : "s are");
}

/* ---- dispatch --------------------------------------------------------------- */

static void set_allow(svc_req_t *r, unsigned allowed)
{
    sk_buf_t b;
    sk_buf_init(&b, 64);
    for (int m = 0; m < SVC_METHOD_COUNT; m++) {
        if (!(allowed & (1u << m))) continue;
        sk_buf_addf(&b, "%s%s", b.len ? ", " : "", svc_method_name((svc_method_t)m));
        if (m == SVC_GET) sk_buf_adds(&b, ", HEAD");
    }
    sk_buf_addf(&b, "%sOPTIONS", b.len ? ", " : "");
    svc_req_set_header(r, "Allow", b.data);
    sk_buf_release(&b);
}

static const char *command_name(enum evhttp_cmd_type c, int *method, int *head)
{
    *head = 0;
    *method = -1;
    switch (c) {
    case EVHTTP_REQ_GET:
        *method = SVC_GET;
        return "GET";
    case EVHTTP_REQ_HEAD:
        *method = SVC_GET;
        *head = 1;
        return "HEAD";
    case EVHTTP_REQ_POST:
        *method = SVC_POST;
        return "POST";
    case EVHTTP_REQ_PUT:
        *method = SVC_PUT;
        return "PUT";
    case EVHTTP_REQ_PATCH:
        *method = SVC_PATCH;
        return "PATCH";
    case EVHTTP_REQ_DELETE:
        *method = SVC_DELETE;
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    }
    return "OTHER";
}

/* 1 when a JSON text escapes a NUL ("\u0000") inside a string: cJSON would
 * silently cut the string there ("4242\u0000junk" read as "4242"), so such
 * a body is refused instead.  Raw NUL bytes are invalid JSON anyway. */
static int has_escaped_nul(const char *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] != '\\') continue;
        if (p[i + 1] == 'u' && i + 5 < len && p[i + 2] == '0' && p[i + 3] == '0' && p[i + 4] == '0' &&
            p[i + 5] == '0')
            return 1;
        i++; /* skip the escaped character (\\ included) */
    }
    return 0;
}

/* Parses the body (if any) after the size check; -1 after answering. */
static int read_body(svc_req_t *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t len = evbuffer_get_length(in);
    int64_t max = r->svc->conf->max_body_bytes;
    if ((int64_t)len > max) {
        svc_reply_problem(r, 413, "Payload too large",
                          "the body has %zu bytes; at most %lld are accepted", len, (long long)max);
        return -1;
    }
    if (len == 0) return 0;
    const char *data = (const char *)evbuffer_pullup(in, -1);
    if (has_escaped_nul(data, len)) {
        svc_reply_problem(r, 400, "Malformed JSON", "strings must not contain NUL (\\u0000)");
        return -1;
    }
    const char *end = NULL;
    r->body = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (r->body && end) { /* only whitespace may follow the document */
        for (const char *p = end; p < data + len; p++)
            if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
                cJSON_Delete(r->body);
                r->body = NULL;
                break;
            }
    }
    if (!r->body) {
        size_t at = end && end >= data && end <= data + len ? (size_t)(end - data) : 0;
        svc_reply_problem(r, 400, "Malformed JSON",
                          "the body is not one valid JSON document (near byte %zu)", at);
        return -1;
    }
    return 0;
}

void svc_http_cb(struct evhttp_request *ev, void *arg)
{
    svc_t *svc = arg;
    svc_req_t *r = sk_calloc(1, sizeof *r);
    r->svc = svc;
    r->ev = ev;
    r->start_us = sk_mono_us();
    r->route_label = "unmatched";
    r->method_name = command_name(evhttp_request_get_command(ev), &r->method, &r->is_head);
    r->in_handler = 1; /* the runtime's own checks reply "inside" too */

    const char *h = svc_req_header(r, "X-Request-Id");
    if (id_ok(h))
        snprintf(r->id, sizeof r->id, "%s", h);
    else
        new_uuid(r->id);
    h = svc_req_header(r, "X-Correlation-Id");
    snprintf(r->corr, sizeof r->corr, "%s", id_ok(h) ? h : r->id);
    char *peer = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    if (evcon) evhttp_connection_get_peer(evcon, &peer, &port);
    snprintf(r->peer, sizeof r->peer, "%s", peer ? peer : "");

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    r->path = sk_strdup(path && *path ? path : "/");
    if (strlen(r->path) > SVC_MAX_PATH) {
        svc_reply_problem(r, 414, NULL, "the path is longer than %d bytes", SVC_MAX_PATH);
        goto done;
    }

    switch (svc_router_match(&svc->router, r->method, r->path, &r->match)) {
    case SVC_MATCH_OK:
        break;
    case SVC_MATCH_BAD_PATH:
        svc_reply_problem(r, 400, "Malformed path",
                          "the path has a bad %%-escape or an encoded NUL");
        goto done;
    case SVC_MATCH_NOT_FOUND:
        if (svc->desc->fallback) {
            /* The gateway: no query parsing, no token check, no body read. */
            r->route_label = "fallback";
            svc->desc->fallback(svc, r);
            if (!r->replied && !r->deferred) {
                sk_error("http", "the fallback handler returned without answering (request %s)", r->id);
                svc_reply_problem(r, 500, NULL, "the request was not answered");
            }
            goto done;
        }
        svc_reply_problem(r, 404, NULL, "no resource at %s", r->path);
        goto done;
    case SVC_MATCH_BAD_METHOD:
        set_allow(r, r->match.allowed);
        if (strcmp(r->method_name, "OPTIONS") == 0)
            svc_reply_json(r, 204, NULL);
        else
            svc_reply_problem(r, 405, NULL, "%s is not allowed on %s", r->method_name, r->path);
        goto done;
    }
    r->route_label = r->match.route->def->pattern;

    if (svc_query_parse(uri ? evhttp_uri_get_query(uri) : NULL, &r->query) < 0) {
        svc_reply_problem(r, 400, "Malformed query string",
                          "the query string has a bad %%-escape or an encoded NUL");
        goto done;
    }
    if (svc_auth_check(r, r->match.route->def->access) < 0) goto done;
    if (read_body(r) < 0) goto done;

    r->match.route->def->handler(svc, r);
    if (!r->replied && !r->deferred) {
        sk_error("http", "the handler of %s %s returned without answering (request %s)",
                 r->method_name, r->route_label, r->id);
        svc_reply_problem(r, 500, NULL, "the request was not answered");
    }
done:
    r->in_handler = 0;
    if (r->replied) req_free(r);
}

struct evhttp_request *svc_req_evhttp(svc_req_t *req)
{
    return req->ev;
}
