/*
 * test_gw_rules.c - the gateway's pure rules: the prefix table, upstream
 * addresses, hop-by-hop headers, web path sanitizing and content types.
 */
#include <check.h>
#include <string.h>

#include "gw_rules.h"
#include "svc.h"

START_TEST(prefix_match)
{
    ck_assert(gw_prefix_match("/users", "/users"));
    ck_assert(gw_prefix_match("/users/", "/users"));
    ck_assert(gw_prefix_match("/users/me", "/users"));
    ck_assert(gw_prefix_match("/users/a/b/c", "/users"));
    ck_assert(!gw_prefix_match("/usersx", "/users"));
    ck_assert(!gw_prefix_match("/user", "/users"));
    ck_assert(!gw_prefix_match("/Users", "/users"));
    ck_assert(!gw_prefix_match("/x/users", "/users"));
    ck_assert(!gw_prefix_match("", "/users"));
    ck_assert(!gw_prefix_match(NULL, "/users"));
}
END_TEST

START_TEST(upstream_find)
{
    static const struct {
        const char *path, *name;
    } cases[] = {
        {"/auth/login", "auth"},
        {"/auth", "auth"},
        {"/users/me", "user"},
        {"/catalogs", "catalog"},
        {"/catalogs/123/tickets", "catalog"},
        {"/bookings/1/cancel", "booking"},
        {"/payments/1/pay", "payment"},
        {"/notifications", "notification"},
        {"/analytics/stats", "analytics"},
        {"/", NULL},
        {"/index.html", NULL},
        {"/authx", NULL},
        {"/catalog", NULL},
        {"/bookingsX/1", NULL},
        {"/gateway/upstreams", NULL},
        {"/%61uth/login", NULL}, /* raw path: an escape is not the prefix */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int k = gw_upstream_find(cases[i].path);
        if (!cases[i].name)
            ck_assert_msg(k == -1, "%s should match nothing, got %d", cases[i].path, k);
        else {
            ck_assert_msg(k >= 0, "%s should match %s", cases[i].path, cases[i].name);
            ck_assert_str_eq(gw_upstream_defs[k].name, cases[i].name);
        }
    }
    /* the table's own invariants: a prefix per upstream, distinct names */
    for (int i = 0; i < GW_NUPSTREAMS; i++) {
        ck_assert(gw_upstream_defs[i].prefix[0] == '/');
        ck_assert_int_eq(gw_upstream_find(gw_upstream_defs[i].prefix), i);
        char host[64];
        int port = 0;
        ck_assert_int_eq(gw_addr_parse(gw_upstream_defs[i].def_addr, host, sizeof host, &port), 0);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(gw_upstream_defs[i].name, gw_upstream_defs[j].name);
    }
}
END_TEST

START_TEST(addr_parse)
{
    char host[64];
    int port = 0;
    ck_assert_int_eq(gw_addr_parse("127.0.0.1:8080", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 8080);
    ck_assert_int_eq(gw_addr_parse("http://user:8080/", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "user");
    ck_assert_int_eq(port, 8080);
    ck_assert_int_eq(gw_addr_parse("[::1]:9", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 9);
    const char *bad[] = {"",           "127.0.0.1",        "127.0.0.1:", ":80",     "host:0",
                         "host:65536", "host:8x",          "::1:80",     "[::1]80", "h/x:80",
                         "user@h:80",  "http://h:80/path", "h :80",      NULL};
    for (size_t i = 0; bad[i]; i++)
        ck_assert_msg(gw_addr_parse(bad[i], host, sizeof host, &port) < 0, "'%s' accepted", bad[i]);
    ck_assert(gw_addr_parse(NULL, host, sizeof host, &port) < 0);
    ck_assert(gw_addr_parse("averyveryverylonghostname:80", host, 8, &port) < 0);
}
END_TEST

START_TEST(hop_headers)
{
    const char *hop[] = {"Connection",
                         "connection",
                         "Keep-Alive",
                         "Transfer-Encoding",
                         "TE",
                         "te",
                         "Trailer",
                         "Upgrade",
                         "Proxy-Authorization",
                         "proxy-connection",
                         "Proxy-Authenticate",
                         NULL};
    const char *keep[] = {"Authorization",
                          "Content-Type",
                          "Accept",
                          "X-Request-Id",
                          "Cookie",
                          "Tex",
                          "Upgrade-Insecure-Requests",
                          "Idempotency-Key",
                          NULL};
    for (size_t i = 0; hop[i]; i++)
        ck_assert_msg(gw_header_is_hop(hop[i], NULL), "%s", hop[i]);
    for (size_t i = 0; keep[i]; i++)
        ck_assert_msg(!gw_header_is_hop(keep[i], NULL), "%s", keep[i]);
    /* headers named in Connection are hop-by-hop too */
    ck_assert(gw_header_is_hop("X-Secret", "keep-alive, X-Secret"));
    ck_assert(gw_header_is_hop("x-secret", "close,x-SECRET ,other"));
    ck_assert(!gw_header_is_hop("X-Secret", "keep-alive, X-Secrets"));
    ck_assert(!gw_header_is_hop("Authorization", "close"));
    ck_assert(gw_header_is_hop(NULL, NULL));
}
END_TEST

START_TEST(static_ok)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/", "index.html"},
        {"//", "index.html"},
        {"/index.html", "index.html"},
        {"/css/app.css", "css/app.css"},
        {"/app/", "app/index.html"},
        {"/app//", "app/index.html"},
        {"//a//b", "a/b"},
        {"/a%20b.txt", "a b.txt"},
        {"/%C3%BCber.html", "\xc3\xbc"
                            "ber.html"},
        {"/a.b/c..d", "a.b/c..d"},
        {"/x%2e", "x."},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(svc_static_path(cases[i].in, out, sizeof out) == 0, "%s refused", cases[i].in);
        ck_assert_str_eq(out, cases[i].out);
    }
}
END_TEST

START_TEST(static_refused)
{
    const char *bad[] = {
        "/../etc/passwd",
        "/a/../../x",
        "/..",
        "/a/..",
        "/./index.html",
        "/.",
        "/%2e%2e/",
        "/%2E%2E/etc/passwd",
        "/a/%2e%2e/%2e%2e/x",
        "/.git/config",
        "/.env",
        "/a%2fb",
        "/a%2Fb",
        "/a%5cb",
        "/a\\b",
        "/..%2f",
        "/a%00b",
        "/a%0ab",
        "/%",
        "/%4",
        "/%zz",
        "/a\x01",
        "relative",
        "",
        "/a/.hidden/x",
    };
    char out[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(svc_static_path(bad[i], out, sizeof out) < 0, "'%s' accepted", bad[i]);
    ck_assert(svc_static_path(NULL, out, sizeof out) < 0);
    /* too long for out, with and without the index.html */
    ck_assert(svc_static_path("/abcdefgh", out, 8) < 0);
    ck_assert(svc_static_path("/a/", out, 8) < 0);
    ck_assert(svc_static_path("/abc", out, 4) == 0);
}
END_TEST

START_TEST(content_types)
{
    ck_assert_str_eq(svc_content_type("index.html"), "text/html; charset=utf-8");
    ck_assert_str_eq(svc_content_type("a/b/app.css"), "text/css; charset=utf-8");
    ck_assert_str_eq(svc_content_type("app.js"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(svc_content_type("logo.svg"), "image/svg+xml");
    ck_assert_str_eq(svc_content_type("logo.PNG"), "image/png");
    ck_assert_str_eq(svc_content_type("favicon.ico"), "image/x-icon");
    ck_assert_str_eq(svc_content_type("data.json"), "application/json");
    ck_assert_str_eq(svc_content_type("robots.txt"), "text/plain; charset=utf-8");
    ck_assert_str_eq(svc_content_type("archive.tar.gz"), "application/octet-stream");
    ck_assert_str_eq(svc_content_type("README"), "application/octet-stream");
    ck_assert_str_eq(svc_content_type("dir.html/file"), "application/octet-stream");
    ck_assert_str_eq(svc_content_type("trailing."), "application/octet-stream");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, prefix_match);
    tcase_add_test(tc, upstream_find);
    tcase_add_test(tc, addr_parse);
    tcase_add_test(tc, hop_headers);
    tcase_add_test(tc, static_ok);
    tcase_add_test(tc, static_refused);
    tcase_add_test(tc, content_types);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
