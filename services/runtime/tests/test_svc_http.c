/*
 * test_svc_http.c - a real evhttp server run by svc_run() on a thread, with
 * a small route table, driven over plain sockets: ids, 404/405/OPTIONS,
 * path and query parameters, problem+json, 413, malformed JSON, validation,
 * the access matrix (401/403, forged tokens), /health, /ready, /metrics,
 * deferred answers and graceful shutdown.
 */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sk_clock.h"
#include "svc_test_util.h"

/* ---- the service under test -------------------------------------------------- */

static atomic_int ready_ok = 1, fini_called, handler_calls;

static void items_list(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    int64_t page, size;
    static const char *const orders[] = {"asc", "desc", NULL};
    svc_query_int(req, "page", 0, 0, 1000, &page);
    svc_query_int(req, "size", 20, 1, 100, &size);
    int order = svc_query_enum(req, "order", orders, 0);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    const char *q = svc_query(req, "q");
    if (q) cJSON_AddStringToObject(o, "q", q);
    cJSON_AddNumberToObject(o, "page", (double)page);
    cJSON_AddNumberToObject(o, "size", (double)size);
    cJSON_AddStringToObject(o, "order", orders[order]);
    cJSON_AddNumberToObject(o, "nquery", (double)svc_query_count(req));
    svc_reply_json(req, 200, o);
}

static void item_get(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", svc_req_param(req, "id"));
    cJSON_AddStringToObject(o, "route", svc_req_route(req));
    cJSON_AddBoolToObject(o, "noSuchParam", svc_req_param(req, "nope") == NULL);
    svc_reply_json(req, 200, o);
}

static void item_put(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    const svc_principal_t *p = svc_req_principal(req);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", p->user_id);
    cJSON_AddStringToObject(o, "role", svc_role_name(p->role));
    svc_reply_json(req, 200, o);
}

static void item_delete(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    svc_reply_json(req, 204, NULL);
}

static void item_create(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    const cJSON *b = svc_req_body_object(req);
    const char *title = svc_json_str(req, b, "title", SVC_REQUIRED, 3, 10);
    const char *note = svc_json_str(req, b, "note", SVC_OPTIONAL, 0, 5);
    int64_t price = 0;
    int gift = 0;
    svc_json_int(req, b, "price", SVC_REQUIRED, 1, 100000, &price);
    svc_json_bool(req, b, "gift", SVC_OPTIONAL, &gift);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "title", title);
    if (note) cJSON_AddStringToObject(o, "note", note);
    cJSON_AddNumberToObject(o, "price", (double)price);
    cJSON_AddBoolToObject(o, "gift", gift);
    svc_req_set_header(req, "Location", "/items/1");
    svc_reply_json(req, 201, o);
}

static void items_mine(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mine", svc_req_principal(req)->user_id);
    svc_reply_json(req, 200, o);
}

static void tickets(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "catalog", svc_req_param(req, "id"));
    svc_reply_json(req, 200, o);
}

static void owned_patch(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    if (svc_require_owner(req, svc_req_param(req, "owner")) < 0) return;
    svc_reply_json(req, 200, cJSON_CreateObject());
}

static void echo(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    atomic_fetch_add(&handler_calls, 1);
    cJSON *o = cJSON_CreateObject();
    const cJSON *b = svc_req_body(req);
    cJSON_AddItemToObject(o, "body", b ? cJSON_Duplicate(b, 1) : cJSON_CreateNull());
    const svc_principal_t *p = svc_req_principal(req);
    if (p)
        cJSON_AddStringToObject(o, "user", p->user_id);
    else
        cJSON_AddNullToObject(o, "user");
    cJSON_AddStringToObject(o, "requestId", svc_req_id(req));
    cJSON_AddStringToObject(o, "correlationId", svc_req_correlation_id(req));
    cJSON_AddStringToObject(o, "peer", svc_req_peer(req));
    const char *h = svc_req_header(req, "x-custom");
    if (h) cJSON_AddStringToObject(o, "custom", h);
    svc_reply_json(req, 200, o);
}

static void slow_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    svc_req_t *req = arg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "slow", "done");
    svc_reply_json(req, 200, o);
}

static void slow(svc_t *svc, svc_req_t *req)
{
    svc_req_defer(req);
    struct timeval tv = {0, 300 * 1000};
    event_base_once(svc_base(svc), -1, EV_TIMEOUT, slow_cb, req, &tv);
}

static void never(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    svc_req_defer(req);
}

static void forgot(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    (void)req;
}

static void twice(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    svc_reply_json(req, 200, cJSON_CreateObject());
    svc_reply_problem(req, 500, NULL, "second"); /* logged and dropped */
}

static void conflict(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddNumberToObject(extra, "ticketId", 7);
    cJSON_AddStringToObject(extra, "status", "overridden?"); /* may not replace a standard member */
    svc_reply_problem_ex(req, 409, "ticket-unavailable", "Ticket unavailable", extra,
                         "ticket %d is sold", 7);
}

static const svc_route_t routes[] = {
    {SVC_GET, "/items", items_list, SVC_PUBLIC},
    {SVC_POST, "/items", item_create, SVC_AUTHOR},
    {SVC_GET, "/items/{id}", item_get, SVC_PUBLIC},
    {SVC_PUT, "/items/{id}", item_put, SVC_USER},
    {SVC_DELETE, "/items/{id}", item_delete, SVC_ADMIN},
    {SVC_GET, "/items/mine", items_mine, SVC_USER},
    {SVC_GET, "/catalogs/{id}/tickets", tickets, SVC_PUBLIC},
    {SVC_PATCH, "/owned/{owner}", owned_patch, SVC_OWNER},
    {SVC_POST, "/echo", echo, SVC_PUBLIC},
    {SVC_GET, "/slow", slow, SVC_PUBLIC},
    {SVC_GET, "/never", never, SVC_PUBLIC},
    {SVC_GET, "/forgot", forgot, SVC_PUBLIC},
    {SVC_GET, "/twice", twice, SVC_PUBLIC},
    {SVC_GET, "/conflict", conflict, SVC_PUBLIC},
    {0, NULL, NULL, 0},
};

static int flag_check(svc_t *svc, void *arg, char *err, size_t errsz)
{
    (void)svc;
    (void)arg;
    if (atomic_load(&ready_ok)) return 0;
    snprintf(err, errsz, "flag is down");
    return -1;
}

static void collect(svc_t *svc, void *arg)
{
    (void)arg;
    svc_metric_gauge_set(svc, "outbox_depth", NULL, 3);
}

static int t_init(svc_t *svc, char *err, size_t errsz)
{
    (void)err;
    (void)errsz;
    svc_add_ready_check(svc, "flag", flag_check, NULL);
    svc_metrics_add_collector(svc, collect, NULL);
    svc_metric_help(svc, "events_consumed_total", "events handled, by type");
    const char *const l[] = {"type", "booking.confirmed", NULL};
    svc_metric_counter_add(svc, "events_consumed_total", l, 2);
    return 0;
}

static void t_fini(svc_t *svc)
{
    (void)svc;
    atomic_store(&fini_called, 1);
}

static const svc_desc_t desc = {
    .name = "httptest",
    .default_port = 8097,
    .routes = routes,
    .init = t_init,
    .fini = t_fini,
};

/* ---- fixture ----------------------------------------------------------------- */

static test_server_t ts;
static char *priv, *pub, *priv2, *pub2, *tok_user, *tok_author, *tok_admin, *tok_u1, *tok_expired,
    *tok_forged, *tok_none, *tok_otherkey;
static char keydir[256], keypath[300];
static http_resp_t r;

static char *bearer(const char *tok)
{
    char *h = NULL;
    ck_assert_int_gt(asprintf(&h, "Authorization: Bearer %s\r\n", tok), 0);
    return h;
}

static char *token(jwt_alg_t alg, const char *key, const char *sub, const char *role, long ttl)
{
    char *c = test_claims(sub, role, ttl);
    char *t = test_jwt(alg, key, c);
    free(c);
    return t;
}

static void start_with(const char *const *args)
{
    atomic_store(&ready_ok, 1);
    atomic_store(&fini_called, 0);
    atomic_store(&handler_calls, 0);
    test_ec_keys("P-256", &priv, &pub);
    test_ec_keys("P-256", &priv2, &pub2);
    tok_user = token(JWT_ALG_ES256, priv, "user-1", "USER", 600);
    tok_u1 = token(JWT_ALG_ES256, priv, "u1", "USER", 600);
    tok_author = token(JWT_ALG_ES256, priv, "author-1", "AUTHOR", 600);
    tok_admin = token(JWT_ALG_ES256, priv, "admin-1", "ADMIN", 600);
    tok_expired = token(JWT_ALG_ES256, priv, "user-1", "ADMIN", -5);
    tok_forged = token(JWT_ALG_HS256, pub, "mallory", "ADMIN", 600);
    tok_none = token(JWT_ALG_NONE, NULL, "mallory", "ADMIN", 600);
    tok_otherkey = token(JWT_ALG_ES256, priv2, "mallory", "ADMIN", 600);
    test_tmpdir(keydir, sizeof keydir);
    snprintf(keypath, sizeof keypath, "%s/jwt-public.pem", keydir);
    test_write_file(keypath, pub);
    const char *argv[16] = {"--jwt-public-key", keypath, "--max-body-bytes", "1k"};
    int n = 4;
    for (size_t i = 0; args && args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    test_server_start(&ts, &desc, argv);
    memset(&r, 0, sizeof r);
}

static void setup(void)
{
    start_with(NULL);
}

static void teardown(void)
{
    http_resp_free(&r);
    if (ts.svc) ck_assert_int_eq(test_server_stop(&ts), 0);
    unlink(keypath);
    rmdir(keydir);
    char **all[] = {&priv,      &pub,    &priv2,       &pub2,       &tok_user, &tok_author,
                    &tok_admin, &tok_u1, &tok_expired, &tok_forged, &tok_none, &tok_otherkey};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
}

/* One request; the previous answer is freed. */
static void req(const char *method, const char *path, const char *headers, const char *body)
{
    http_resp_free(&r);
    ck_assert_msg(http_do(ts.addr, method, path, headers, body, body ? strlen(body) : 0, &r) == 0,
                  "%s %s: no answer", method, path);
}

static void req_auth(const char *method, const char *path, const char *tok, const char *body)
{
    char *h = bearer(tok);
    req(method, path, h, body);
    free(h);
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsString(v), "no string member %s", name);
    return v->valuestring;
}

static double jnum(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsNumber(v), "no number member %s", name);
    return v->valuedouble;
}

/* The answer is an RFC 7807 document with this status and type slug. */
static void assert_problem(int status, const char *slug)
{
    ck_assert_msg(r.status == status, "status %d, want %d: %s", r.status, status, r.body);
    ck_assert_str_eq(http_header(&r, "Content-Type"), "application/problem+json");
    ck_assert_msg(r.json != NULL, "not JSON: %s", r.body);
    char type[128];
    snprintf(type, sizeof type, "urn:souk:problem:%s", slug);
    ck_assert_str_eq(jstr(r.json, "type"), type);
    ck_assert_int_eq((int)jnum(r.json, "status"), status);
    ck_assert(strlen(jstr(r.json, "title")) > 0);
    ck_assert(strlen(jstr(r.json, "instance")) > 0);
    ck_assert_str_eq(jstr(r.json, "requestId"), http_header(&r, "X-Request-Id"));
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(health_and_ids)
{
    req("GET", "/health", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(http_header(&r, "Content-Type"), "application/json");
    ck_assert_str_eq(jstr(r.json, "status"), "UP");
    const char *id = http_header(&r, "X-Request-Id");
    ck_assert_ptr_nonnull(id);
    ck_assert_uint_eq(strlen(id), 36); /* a generated UUID */
    ck_assert_str_eq(http_header(&r, "X-Correlation-Id"), id);

    req("POST", "/echo",
        "X-Request-Id: req-123\r\nX-Correlation-Id: booking:42\r\nX-Custom: yes\r\n", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(http_header(&r, "X-Request-Id"), "req-123");
    ck_assert_str_eq(http_header(&r, "X-Correlation-Id"), "booking:42");
    ck_assert_str_eq(jstr(r.json, "requestId"), "req-123");
    ck_assert_str_eq(jstr(r.json, "correlationId"), "booking:42");
    ck_assert_str_eq(jstr(r.json, "custom"), "yes");
    ck_assert_str_eq(jstr(r.json, "peer"), "127.0.0.1");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r.json, "body")));

    /* Ids with spaces or quotes are not echoed: a new one is made. */
    req("POST", "/echo", "X-Request-Id: bad id\"\r\n", NULL);
    ck_assert_uint_eq(strlen(http_header(&r, "X-Request-Id")), 36);

    /* HEAD: the GET route's answer without the body. */
    req("HEAD", "/health", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
}
END_TEST

START_TEST(not_found_and_method_not_allowed)
{
    req("GET", "/nope", NULL, NULL);
    assert_problem(404, "not-found");
    ck_assert_str_eq(jstr(r.json, "instance"), "/nope");
    ck_assert_ptr_nonnull(strstr(jstr(r.json, "detail"), "/nope"));

    req("GET", "/items/1/2", NULL, NULL);
    assert_problem(404, "not-found");

    req("POST", "/items/5", NULL, "{}");
    assert_problem(405, "method-not-allowed");
    ck_assert_str_eq(http_header(&r, "Allow"), "GET, HEAD, PUT, DELETE, OPTIONS");

    req("DELETE", "/health", NULL, NULL);
    assert_problem(405, "method-not-allowed");
    ck_assert_str_eq(http_header(&r, "Allow"), "GET, HEAD, OPTIONS");

    req("PATCH", "/items", NULL, "{}");
    assert_problem(405, "method-not-allowed");
    ck_assert_str_eq(http_header(&r, "Allow"), "GET, HEAD, POST, OPTIONS");

    req("OPTIONS", "/items", NULL, NULL);
    ck_assert_int_eq(r.status, 204);
    ck_assert_str_eq(http_header(&r, "Allow"), "GET, HEAD, POST, OPTIONS");

    req("OPTIONS", "/nope", NULL, NULL);
    assert_problem(404, "not-found");

    req("TRACE", "/items", NULL, NULL);
    assert_problem(405, "method-not-allowed");

    req("GET", "/items/%zz", NULL, NULL);
    assert_problem(400, "bad-request");
}
END_TEST

START_TEST(path_params)
{
    req("GET", "/items/abc%20d", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "id"), "abc d");
    ck_assert_str_eq(jstr(r.json, "route"), "/items/{id}");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "noSuchParam")));

    req("GET", "/items/7/", NULL, NULL);
    ck_assert_str_eq(jstr(r.json, "id"), "7");

    req("GET", "/catalogs/42/tickets?status=AVAILABLE", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "catalog"), "42");

    /* The literal route wins over /items/{id}, and it needs a token. */
    req("GET", "/items/mine", NULL, NULL);
    assert_problem(401, "unauthorized");
    req_auth("GET", "/items/mine", tok_user, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "mine"), "user-1");
}
END_TEST

START_TEST(query_params)
{
    req("GET", "/items?q=a+b%21&page=3&order=desc", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "q"), "a b!");
    ck_assert_int_eq((int)jnum(r.json, "page"), 3);
    ck_assert_int_eq((int)jnum(r.json, "size"), 20); /* default */
    ck_assert_str_eq(jstr(r.json, "order"), "desc");
    ck_assert_int_eq((int)jnum(r.json, "nquery"), 3);

    req("GET", "/items?page=abc&size=1000&order=up", NULL, NULL);
    assert_problem(400, "validation");
    const cJSON *errs = cJSON_GetObjectItem(r.json, "errors");
    ck_assert_int_eq(cJSON_GetArraySize(errs), 3);
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(errs, 0), "field"), "page");
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(errs, 1), "field"), "size");
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(errs, 2), "field"), "order");
    ck_assert_ptr_nonnull(strstr(jstr(cJSON_GetArrayItem(errs, 2), "message"), "asc, desc"));

    req("GET", "/items?q=%zz", NULL, NULL);
    assert_problem(400, "bad-request");
}
END_TEST

START_TEST(json_bodies)
{
    req("POST", "/echo", "Content-Type: application/json\r\n", "{\"a\":[1,2,{\"b\":null}]}  \n");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "body"), "a")), 3);

    const char *bad[] = {"{\"a\":", "{} x", "hello", "{\"a\":1}}", "[1,]", "   "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req("POST", "/echo", NULL, bad[i]);
        assert_problem(400, "bad-request");
        ck_assert_str_eq(jstr(r.json, "title"), "Malformed JSON");
    }
    /* A NUL inside the body is not a way to hide garbage. */
    http_resp_free(&r);
    ck_assert_int_eq(http_do(ts.addr, "POST", "/echo", NULL, "{}\0zz", 5, &r), 0);
    assert_problem(400, "bad-request");
    ck_assert_int_eq(atomic_load(&handler_calls), 1); /* none of the bad ones reached the handler */
}
END_TEST

START_TEST(body_limit)
{
    char *big = malloc(2001);
    memset(big, ' ', 2000);
    big[0] = '[';
    big[1998] = ']';
    big[2000] = '\0';
    req("POST", "/echo", NULL, big); /* --max-body-bytes 1k */
    assert_problem(413, "payload-too-large");
    ck_assert_ptr_nonnull(strstr(jstr(r.json, "detail"), "2000"));
    free(big);
    /* Exactly the limit is fine. */
    big = malloc(1025);
    memset(big, ' ', 1024);
    big[0] = '[';
    big[1] = ']';
    big[1024] = '\0';
    req("POST", "/echo", NULL, big);
    ck_assert_int_eq(r.status, 200);
    free(big);
    ck_assert_int_eq(atomic_load(&handler_calls), 1);
}
END_TEST

START_TEST(validation)
{
    req_auth("POST", "/items", tok_author,
             "{\"title\":\"ab\",\"price\":\"x\",\"gift\":1,\"note\":\"toolong\"}");
    assert_problem(400, "validation");
    ck_assert_str_eq(jstr(r.json, "title"), "Validation failed");
    const cJSON *errs = cJSON_GetObjectItem(r.json, "errors");
    ck_assert_int_eq(cJSON_GetArraySize(errs), 4);
    const char *fields[] = {"title", "note", "price", "gift"};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(jstr(cJSON_GetArrayItem(errs, i), "field"), fields[i]);
        ck_assert(strlen(jstr(cJSON_GetArrayItem(errs, i), "message")) > 0);
    }

    req_auth("POST", "/items", tok_author, "{\"price\":1.5}");
    assert_problem(400, "validation");
    errs = cJSON_GetObjectItem(r.json, "errors");
    ck_assert_int_eq(cJSON_GetArraySize(errs), 2); /* title required, price not an integer */

    req_auth("POST", "/items", tok_author, "[1]");
    assert_problem(400, "validation");
    errs = cJSON_GetObjectItem(r.json, "errors");
    ck_assert_int_eq(cJSON_GetArraySize(errs), 1);
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(errs, 0), "field"), "body");

    req_auth("POST", "/items", tok_author, NULL);
    assert_problem(400, "validation");

    /* Characters, not bytes: "ééé" is 3 characters. */
    req_auth("POST", "/items", tok_author,
             "{\"title\":\"\xc3\xa9\xc3\xa9\xc3\xa9\",\"price\":5,\"gift\":true}");
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(http_header(&r, "Location"), "/items/1");
    ck_assert_int_eq((int)jnum(r.json, "price"), 5);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "gift")));
}
END_TEST

START_TEST(access_matrix)
{
    /* No token. */
    req("PUT", "/items/1", NULL, "{}");
    assert_problem(401, "unauthorized");
    ck_assert_str_eq(http_header(&r, "WWW-Authenticate"), "Bearer realm=\"souk\"");
    req("PUT", "/items/1", "Authorization: Basic dTpw\r\n", "{}");
    assert_problem(401, "unauthorized");

    /* Bad tokens: expired, another key, alg none, the HS256 forgery. */
    const char *bad[] = {tok_expired, tok_otherkey, tok_none, tok_forged, "garbage"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req_auth("DELETE", "/items/1", bad[i], NULL);
        assert_problem(401, "unauthorized");
        const char *www = http_header(&r, "WWW-Authenticate");
        ck_assert_ptr_nonnull(www);
        ck_assert_int_eq(strncmp(www, "Bearer realm=\"souk\", error=\"invalid_token\"", 41), 0);
    }
    req_auth("DELETE", "/items/1", tok_forged, NULL);
    ck_assert_ptr_nonnull(strstr(jstr(r.json, "detail"), "HS256"));

    /* Roles. */
    req_auth("PUT", "/items/1", tok_user, "{}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "user"), "user-1");
    ck_assert_str_eq(jstr(r.json, "role"), "USER");
    req_auth("POST", "/items", tok_user, "{\"title\":\"abc\",\"price\":1}");
    assert_problem(403, "forbidden");
    req_auth("POST", "/items", tok_admin, "{\"title\":\"abc\",\"price\":1}");
    ck_assert_int_eq(r.status, 201);
    req_auth("DELETE", "/items/1", tok_author, NULL);
    assert_problem(403, "forbidden");
    req_auth("DELETE", "/items/1", tok_admin, NULL);
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.body_len, 0);

    /* OWNER: the owner or an admin. */
    req_auth("PATCH", "/owned/u1", tok_u1, NULL);
    ck_assert_int_eq(r.status, 200);
    req_auth("PATCH", "/owned/u2", tok_u1, NULL);
    assert_problem(403, "forbidden");
    req_auth("PATCH", "/owned/u2", tok_admin, NULL);
    ck_assert_int_eq(r.status, 200);
    req("PATCH", "/owned/u1", NULL, NULL);
    assert_problem(401, "unauthorized");

    /* PUBLIC: a good token names the caller, a bad one is ignored. */
    req_auth("POST", "/echo", tok_author, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "user"), "author-1");
    req_auth("POST", "/echo", tok_forged, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r.json, "user")));
}
END_TEST

/* A verified token is cached (svc_auth.c), but never past its exp. */
START_TEST(cached_token_expires)
{
    char *tok = token(JWT_ALG_ES256, priv, "user-1", "USER", 2);
    for (int i = 0; i < 3; i++) {
        req_auth("PUT", "/items/1", tok, "{}");
        ck_assert_int_eq(r.status, 200);
    }
    sleep(3);
    req_auth("PUT", "/items/1", tok, "{}");
    assert_problem(401, "unauthorized");
    ck_assert_ptr_nonnull(strstr(jstr(r.json, "detail"), "expired"));
    free(tok);
}
END_TEST

START_TEST(problems_from_handlers)
{
    req("GET", "/conflict", NULL, NULL);
    assert_problem(409, "ticket-unavailable");
    ck_assert_str_eq(jstr(r.json, "title"), "Ticket unavailable");
    ck_assert_str_eq(jstr(r.json, "detail"), "ticket 7 is sold");
    ck_assert_str_eq(jstr(r.json, "instance"), "/conflict");
    ck_assert_int_eq((int)jnum(r.json, "ticketId"), 7);
    ck_assert_int_eq((int)jnum(r.json, "status"), 409);

    req("GET", "/forgot", NULL, NULL);
    assert_problem(500, "internal");

    req("GET", "/twice", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    req("GET", "/health", NULL, NULL); /* still serving */
    ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(ready)
{
    req("GET", "/ready", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "status"), "UP");
    const cJSON *checks = cJSON_GetObjectItem(r.json, "checks");
    ck_assert_str_eq(jstr(cJSON_GetObjectItem(checks, "flag"), "status"), "UP");
    ck_assert_str_eq(jstr(cJSON_GetObjectItem(checks, "jwt"), "status"), "UP");

    atomic_store(&ready_ok, 0);
    req("GET", "/ready", NULL, NULL);
    assert_problem(503, "unavailable");
    checks = cJSON_GetObjectItem(r.json, "checks");
    const cJSON *flag = cJSON_GetObjectItem(checks, "flag");
    ck_assert_str_eq(jstr(flag, "status"), "DOWN");
    ck_assert_str_eq(jstr(flag, "reason"), "flag is down");

    req("GET", "/health", NULL, NULL); /* alive all the same */
    ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(metrics)
{
    req("GET", "/items/1", NULL, NULL);
    req("GET", "/items/2", NULL, NULL);
    req("GET", "/no/such/thing", NULL, NULL);
    req("DELETE", "/items/1", NULL, NULL);
    req("GET", "/metrics", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(http_header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    const char *want[] = {
        "# TYPE http_requests_total counter\n",
        "http_requests_total{route=\"/items/{id}\",method=\"GET\",status=\"200\"} 2\n",
        "http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n",
        "http_requests_total{route=\"/items/{id}\",method=\"DELETE\",status=\"401\"} 1\n",
        "# TYPE http_request_duration_seconds histogram\n",
        "http_request_duration_seconds_bucket{route=\"/items/{id}\",method=\"GET\",le=\"+Inf\"} "
        "2\n",
        "http_request_duration_seconds_count{route=\"/items/{id}\",method=\"GET\"} 2\n",
        "# HELP events_consumed_total events handled, by type\n",
        "events_consumed_total{type=\"booking.confirmed\"} 2\n",
        "outbox_depth 3\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(r.body, want[i]), "metrics lack %s in:\n%s", want[i], r.body);
}
END_TEST

START_TEST(keep_alive_and_pipelining)
{
    int fd = http_connect(ts.addr);
    ck_assert_int_ge(fd, 0);
    const char two[] = "GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /items/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(write(fd, two, sizeof two - 1), (ssize_t)(sizeof two - 1));
    char buf[8192];
    size_t n = 0;
    ssize_t k;
    while ((k = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fd);
    ck_assert_ptr_nonnull(strstr(buf, "\"id\":\"1\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"id\":\"2\""));
}
END_TEST

START_TEST(graceful_shutdown)
{
    /* A deferred request (answered after 300 ms) is in flight at SIGTERM. */
    int fd = http_connect(ts.addr);
    ck_assert_int_ge(fd, 0);
    const char slow_req[] = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, slow_req, sizeof slow_req - 1), (ssize_t)(sizeof slow_req - 1));
    usleep(100 * 1000);
    int64_t t0 = sk_mono_ms();
    kill(getpid(), SIGTERM);

    /* The listener closes at once... */
    int refused = 0;
    for (int i = 0; i < 100 && !refused; i++) {
        int c = http_connect(ts.addr);
        if (c < 0)
            refused = 1;
        else {
            close(c);
            usleep(10 * 1000);
        }
    }
    ck_assert_msg(refused, "still accepting after SIGTERM");

    /* ...the request in flight still gets its answer, told to close. */
    http_resp_t slow_resp;
    ck_assert_int_eq(http_read_resp(fd, &slow_resp), 0);
    close(fd);
    ck_assert_int_eq(slow_resp.status, 200);
    ck_assert_str_eq(jstr(slow_resp.json, "slow"), "done");
    ck_assert_str_eq(http_header(&slow_resp, "Connection"), "close");
    http_resp_free(&slow_resp);

    ck_assert_int_eq(test_server_join(&ts), 0);
    ck_assert_int_eq(atomic_load(&fini_called), 1);
    ck_assert_int_lt(sk_mono_ms() - t0, 3000);
}
END_TEST

START_TEST(shutdown_timeout)
{
    /* Restart with a short timeout; a request that is never answered. */
    teardown();
    const char *args[] = {"--shutdown-timeout-ms", "300", NULL};
    start_with(args);
    int fd = http_connect(ts.addr);
    ck_assert_int_ge(fd, 0);
    const char never_req[] = "GET /never HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, never_req, sizeof never_req - 1), (ssize_t)(sizeof never_req - 1));
    usleep(100 * 1000);
    int64_t t0 = sk_mono_ms();
    kill(getpid(), SIGTERM);
    /* svc_free() (in the join) drops the unanswered request and closes its connection. */
    ck_assert_int_eq(test_server_join(&ts), 0);
    int64_t took = sk_mono_ms() - t0;
    ck_assert_int_eq(atomic_load(&fini_called), 1);
    ck_assert_msg(took >= 250 && took < 3000, "took %lld ms", (long long)took);
    char buf[64];
    ck_assert_int_le(read(fd, buf, sizeof buf), 0);
    close(fd);
}
END_TEST

START_TEST(key_appears_later)
{
    /* Start without the key file; protected routes answer 503 until it exists. */
    teardown();
    char dir[256], path[300];
    test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/later.pem", dir);
    const char *args[] = {"--jwt-public-key", path, NULL};
    start_with(args); /* the later flag wins over the fixture's */
    req_auth("PUT", "/items/1", tok_user, "{}");
    assert_problem(503, "unavailable");
    req("GET", "/ready", NULL, NULL);
    assert_problem(503, "unavailable");
    test_write_file(path, pub);
    usleep(1100 * 1000); /* retried at most once a second */
    req_auth("PUT", "/items/1", tok_user, "{}");
    ck_assert_int_eq(r.status, 200);
    req("GET", "/ready", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    unlink(path);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("svc_http");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, health_and_ids);
    tcase_add_test(tc, not_found_and_method_not_allowed);
    tcase_add_test(tc, path_params);
    tcase_add_test(tc, query_params);
    tcase_add_test(tc, json_bodies);
    tcase_add_test(tc, body_limit);
    tcase_add_test(tc, validation);
    tcase_add_test(tc, access_matrix);
    tcase_add_test(tc, cached_token_expires);
    tcase_add_test(tc, problems_from_handlers);
    tcase_add_test(tc, ready);
    tcase_add_test(tc, metrics);
    tcase_add_test(tc, keep_alive_and_pipelining);
    tcase_add_test(tc, graceful_shutdown);
    tcase_add_test(tc, shutdown_timeout);
    tcase_add_test(tc, key_appears_later);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
