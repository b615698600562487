/*
 * test_svc_route.c - the router (patterns, parameters, precedence, 404 /
 * 405 / bad paths), percent-decoding and the query-string parser, without
 * any socket.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "svc_internal.h"

static void h(svc_t *svc, svc_req_t *req)
{
    (void)svc;
    (void)req;
}

static const svc_route_t routes[] = {
    {SVC_GET, "/", h, SVC_PUBLIC},
    {SVC_GET, "/catalogs", h, SVC_PUBLIC},
    {SVC_POST, "/catalogs", h, SVC_AUTHOR},
    {SVC_GET, "/catalogs/{id}", h, SVC_PUBLIC},
    {SVC_PUT, "/catalogs/{id}", h, SVC_OWNER},
    {SVC_GET, "/catalogs/mine", h, SVC_USER},
    {SVC_GET, "/catalogs/{id}/tickets", h, SVC_PUBLIC},
    {SVC_PATCH, "/catalogs/{id}/deactivate", h, SVC_OWNER},
    {SVC_GET, "/a/{x}/c", h, SVC_PUBLIC},
    {SVC_GET, "/a/b/{y}", h, SVC_PUBLIC},
    {SVC_DELETE, "/users/{user_id}/sessions/{sid}", h, SVC_ADMIN},
    {0, NULL, NULL, 0},
};

static svc_router_t rt;

static void setup(void)
{
    char err[256];
    svc_router_init(&rt);
    for (const svc_route_t *r = routes; r->pattern; r++)
        ck_assert_msg(svc_router_add(&rt, r, err, sizeof err) == 0, "%s: %s", r->pattern, err);
}

static void teardown(void)
{
    svc_router_release(&rt);
}

/* Matches and returns the chosen pattern (or NULL), with m released. */
static const char *match(int method, const char *path, svc_match_rc_t want)
{
    svc_match_t m;
    svc_match_rc_t rc = svc_router_match(&rt, method, path, &m);
    ck_assert_msg(rc == want, "%s: rc %d, want %d", path, rc, want);
    const char *p = m.route ? m.route->def->pattern : NULL;
    svc_match_release(&m);
    return p;
}

START_TEST(literal_routes)
{
    ck_assert_str_eq(match(SVC_GET, "/", SVC_MATCH_OK), "/");
    ck_assert_str_eq(match(SVC_GET, "/catalogs", SVC_MATCH_OK), "/catalogs");
    ck_assert_str_eq(match(SVC_POST, "/catalogs", SVC_MATCH_OK), "/catalogs");
    ck_assert_str_eq(match(SVC_GET, "/catalogs/", SVC_MATCH_OK), "/catalogs"); /* trailing slash */
    match(SVC_GET, "/catalog", SVC_MATCH_NOT_FOUND);
    match(SVC_GET, "/catalogs/1/tickets/2", SVC_MATCH_NOT_FOUND);
    match(SVC_GET, "/nope", SVC_MATCH_NOT_FOUND);
    match(SVC_GET, "/Catalogs", SVC_MATCH_NOT_FOUND); /* case matters */
}
END_TEST

START_TEST(path_params)
{
    svc_match_t m;
    ck_assert_int_eq(svc_router_match(&rt, SVC_GET, "/catalogs/42/tickets", &m), SVC_MATCH_OK);
    ck_assert_str_eq(m.route->def->pattern, "/catalogs/{id}/tickets");
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_str_eq(m.names[0], "id");
    ck_assert_str_eq(m.values[0], "42");
    svc_match_release(&m);

    /* Decoded, including an encoded '/' that stays inside the segment. */
    ck_assert_int_eq(svc_router_match(&rt, SVC_GET, "/catalogs/a%20b%2Fc", &m), SVC_MATCH_OK);
    ck_assert_str_eq(m.values[0], "a b/c");
    svc_match_release(&m);

    ck_assert_int_eq(svc_router_match(&rt, SVC_DELETE, "/users/u-1/sessions/s%3A9", &m),
                     SVC_MATCH_OK);
    ck_assert_int_eq(m.nparams, 2);
    ck_assert_str_eq(m.names[0], "user_id");
    ck_assert_str_eq(m.values[0], "u-1");
    ck_assert_str_eq(m.names[1], "sid");
    ck_assert_str_eq(m.values[1], "s:9");
    svc_match_release(&m);

    /* A parameter never matches an empty segment. */
    match(SVC_GET, "/catalogs//tickets", SVC_MATCH_NOT_FOUND);
}
END_TEST

START_TEST(literal_beats_param)
{
    ck_assert_str_eq(match(SVC_GET, "/catalogs/mine", SVC_MATCH_OK), "/catalogs/mine");
    ck_assert_str_eq(match(SVC_GET, "/catalogs/other", SVC_MATCH_OK), "/catalogs/{id}");
    /* Leftmost literal wins: /a/b/c matches both /a/{x}/c and /a/b/{y}. */
    ck_assert_str_eq(match(SVC_GET, "/a/b/c", SVC_MATCH_OK), "/a/b/{y}");
    ck_assert_str_eq(match(SVC_GET, "/a/z/c", SVC_MATCH_OK), "/a/{x}/c");
    /* A method only the param route has still finds it. */
    ck_assert_str_eq(match(SVC_PUT, "/catalogs/mine", SVC_MATCH_OK), "/catalogs/{id}");
}
END_TEST

START_TEST(method_not_allowed)
{
    svc_match_t m;
    ck_assert_int_eq(svc_router_match(&rt, SVC_DELETE, "/catalogs/7", &m), SVC_MATCH_BAD_METHOD);
    ck_assert_ptr_null(m.route);
    ck_assert_uint_eq(m.allowed, (1u << SVC_GET) | (1u << SVC_PUT));
    svc_match_release(&m);
    /* Allowed methods of every pattern that matches the path. */
    ck_assert_int_eq(svc_router_match(&rt, SVC_POST, "/catalogs/mine", &m), SVC_MATCH_BAD_METHOD);
    ck_assert_uint_eq(m.allowed, (1u << SVC_GET) | (1u << SVC_PUT));
    svc_match_release(&m);
    /* A method no route can have (OPTIONS): only the allowed set. */
    ck_assert_int_eq(svc_router_match(&rt, -1, "/catalogs", &m), SVC_MATCH_BAD_METHOD);
    ck_assert_uint_eq(m.allowed, (1u << SVC_GET) | (1u << SVC_POST));
    svc_match_release(&m);
    ck_assert_int_eq(svc_router_match(&rt, -1, "/zzz", &m), SVC_MATCH_NOT_FOUND);
    svc_match_release(&m);
}
END_TEST

START_TEST(bad_paths)
{
    match(SVC_GET, "/catalogs/%zz", SVC_MATCH_BAD_PATH);
    match(SVC_GET, "/catalogs/%2", SVC_MATCH_BAD_PATH);
    match(SVC_GET, "/catalogs/a%00b", SVC_MATCH_BAD_PATH);
    match(SVC_GET, "catalogs", SVC_MATCH_BAD_PATH);
    match(SVC_GET, "", SVC_MATCH_BAD_PATH);
    char *longp = malloc(SVC_MAX_PATH + 10);
    longp[0] = '/';
    memset(longp + 1, 'a', SVC_MAX_PATH + 5);
    longp[SVC_MAX_PATH + 6] = '\0';
    match(SVC_GET, longp, SVC_MATCH_BAD_PATH);
    free(longp);
    /* Deeper than any route can be: simply not found. */
    match(SVC_GET, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s", SVC_MATCH_NOT_FOUND);
}
END_TEST

START_TEST(bad_patterns)
{
    static const svc_route_t bad[] = {
        {SVC_GET, "catalogs", h, SVC_PUBLIC},
        {SVC_GET, "/catalogs/", h, SVC_PUBLIC},
        {SVC_GET, "/catalogs//x", h, SVC_PUBLIC},
        {SVC_GET, "/catalogs/{id", h, SVC_PUBLIC},
        {SVC_GET, "/catalogs/x{id}", h, SVC_PUBLIC},
        {SVC_GET, "/catalogs/{}", h, SVC_PUBLIC},
        {SVC_GET, "/catalogs/{a-b}", h, SVC_PUBLIC},
        {SVC_GET, "/x/{a}/{a}", h, SVC_PUBLIC},
        {SVC_GET, "/x/%41", h, SVC_PUBLIC},
        {SVC_GET, "/catalogs/{other}", h, SVC_PUBLIC}, /* same shape as GET /catalogs/{id} */
        {SVC_GET, "/catalogs", NULL, SVC_PUBLIC},
        {SVC_METHOD_COUNT, "/zz", h, SVC_PUBLIC},
        {SVC_GET, "/zz", h, (svc_access_t)9},
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(svc_router_add(&rt, &bad[i], err, sizeof err) < 0, "accepted %s",
                      bad[i].pattern);
        ck_assert_msg(err[0], "no reason for %s", bad[i].pattern);
    }
    /* Same shape with another method is fine. */
    static const svc_route_t ok = {SVC_DELETE, "/catalogs/{other}", h, SVC_ADMIN};
    ck_assert_int_eq(svc_router_add(&rt, &ok, err, sizeof err), 0);
}
END_TEST

START_TEST(pct_decode)
{
    char s[64];
    size_t n;
    strcpy(s, "a%41+b%2f");
    n = strlen(s);
    ck_assert_int_eq(svc_pct_decode(s, &n, 1), 0);
    ck_assert_str_eq(s, "aA b/");
    ck_assert_uint_eq(n, 5);
    strcpy(s, "a+b");
    n = strlen(s);
    ck_assert_int_eq(svc_pct_decode(s, &n, 0), 0);
    ck_assert_str_eq(s, "a+b");
    strcpy(s, "%e2%82%ac");
    n = strlen(s);
    ck_assert_int_eq(svc_pct_decode(s, &n, 0), 0);
    ck_assert_str_eq(s, "\xe2\x82\xac");
    const char *bad[] = {"%", "%4", "%g0", "x%00"};
    for (size_t i = 0; i < 4; i++) {
        strcpy(s, bad[i]);
        n = strlen(s);
        ck_assert_msg(svc_pct_decode(s, &n, 1) < 0, "accepted %s", bad[i]);
    }
}
END_TEST

START_TEST(query_parse)
{
    svc_query_t q;
    ck_assert_int_eq(svc_query_parse("page=2&size=10&email=a%40b.c&q=x+y&flag&=v&&sort=price", &q),
                     0);
    ck_assert_uint_eq(q.n, 7);
    ck_assert_str_eq(q.names[0], "page");
    ck_assert_str_eq(q.values[0], "2");
    ck_assert_str_eq(q.values[2], "a@b.c");
    ck_assert_str_eq(q.values[3], "x y");
    ck_assert_str_eq(q.names[4], "flag");
    ck_assert_str_eq(q.values[4], "");
    ck_assert_str_eq(q.names[5], "");
    ck_assert_str_eq(q.values[5], "v");
    ck_assert_str_eq(q.names[6], "sort");
    svc_query_release(&q);

    ck_assert_int_eq(svc_query_parse(NULL, &q), 0);
    ck_assert_uint_eq(q.n, 0);
    ck_assert_int_eq(svc_query_parse("", &q), 0);
    ck_assert_uint_eq(q.n, 0);
    ck_assert_int_eq(svc_query_parse("a=1&b=%zz", &q), -1);
    ck_assert_uint_eq(q.n, 0);
    ck_assert_int_eq(svc_query_parse("a=%00", &q), -1);
    ck_assert_int_eq(svc_query_parse("a%=1", &q), -1);
}
END_TEST

START_TEST(method_names)
{
    ck_assert_str_eq(svc_method_name(SVC_GET), "GET");
    ck_assert_str_eq(svc_method_name(SVC_PATCH), "PATCH");
    ck_assert_str_eq(svc_method_name(SVC_DELETE), "DELETE");
    ck_assert_str_eq(svc_method_name((svc_method_t)99), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("svc_route");
    TCase *tc = tcase_create("route");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, literal_routes);
    tcase_add_test(tc, path_params);
    tcase_add_test(tc, literal_beats_param);
    tcase_add_test(tc, method_not_allowed);
    tcase_add_test(tc, bad_paths);
    tcase_add_test(tc, bad_patterns);
    tcase_add_test(tc, pct_decode);
    tcase_add_test(tc, query_parse);
    tcase_add_test(tc, method_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
