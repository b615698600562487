/*
 * test_resp.c - broker/kv/resp.h: the RESP2 request parser over byte vectors
 * (whole, and fed one byte at a time), its limits and error texts, the
 * inline (telnet) form with Redis's quoting, and the reply writers.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

typedef struct vec_s {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int result; /* KV_RESP_OK, KV_RESP_AGAIN or KV_RESP_ERROR */
    const char *args[6]; /* expected arguments for OK (NULL-terminated) */
    size_t consumed;     /* expected for OK; 0: the whole input */
    const char *err;     /* expected for ERROR */
} vec_t;

static const vec_t vectors[] = {
    {"*1\r\n$4\r\nPING\r\n", 0, KV_RESP_OK, {"PING"}, 0, NULL},
    {"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 0, KV_RESP_OK, {"GET", "k"}, 0, NULL},
    {"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\n\r\n\r\n", 0, KV_RESP_OK, {"SET", "", "\r\n"}, 0, NULL},
    {"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", 0, KV_RESP_OK, {"PING"}, 14, NULL},
    {"*0\r\n", 0, KV_RESP_OK, {NULL}, 0, NULL},
    {"*-10\r\n", 0, KV_RESP_OK, {NULL}, 0, NULL},
    {"*1\r\n$4\r\nPIN", 0, KV_RESP_AGAIN, {NULL}, 0, NULL},
    {"*1\r\n$4\r\nPING\r", 0, KV_RESP_AGAIN, {NULL}, 0, NULL},
    {"*1\r", 0, KV_RESP_AGAIN, {NULL}, 0, NULL},
    {"*", 0, KV_RESP_AGAIN, {NULL}, 0, NULL},
    {"", 0, KV_RESP_AGAIN, {NULL}, 0, NULL},
    /* Redis skips the two bytes after bulk data without looking at them. */
    {"*2\r\n$4\r\nECHO\r\n$3\r\nabcXY", 0, KV_RESP_OK, {"ECHO", "abc"}, 0, NULL},
    {"*x\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: invalid multibulk length"},
    {"*\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: invalid multibulk length"},
    {"*01\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: invalid multibulk length"},
    {"*+1\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: invalid multibulk length"},
    {"*1048577\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: invalid multibulk length"},
    {"*99999999999999999999999\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: invalid multibulk length"},
    {"*1048576\r\n", 0, KV_RESP_AGAIN, {NULL}, 0, NULL},
    {"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: expected '$', got 'f'"},
    {"*1\r\n$-1\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: invalid bulk length"},
    {"*1\r\n$abc\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: invalid bulk length"},
    {"*1\r\n$536870913\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: invalid bulk length"},
    {"*1\r\n$536870912\r\n", 0, KV_RESP_AGAIN, {NULL}, 0, NULL},
    /* inline */
    {"PING\r\n", 0, KV_RESP_OK, {"PING"}, 0, NULL},
    {"PING\n", 0, KV_RESP_OK, {"PING"}, 0, NULL},
    {"  SET  a\tb  \r\n", 0, KV_RESP_OK, {"SET", "a", "b"}, 0, NULL},
    {"\r\n", 0, KV_RESP_OK, {NULL}, 0, NULL},
    {"ECHO \"a b\"\r\n", 0, KV_RESP_OK, {"ECHO", "a b"}, 0, NULL},
    {"ECHO \"\\x41\\n\\t\\\"\"\r\n", 0, KV_RESP_OK, {"ECHO", "A\n\t\""}, 0, NULL},
    {"ECHO 'it\\'s' ''\r\n", 0, KV_RESP_OK, {"ECHO", "it's", ""}, 0, NULL},
    {"ECHO a\"b c\"\r\n", 0, KV_RESP_OK, {"ECHO", "ab c"}, 0, NULL},
    {"SET a \"b\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: unbalanced quotes in request"},
    {"SET a \"b\"c\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: unbalanced quotes in request"},
    {"SET a 'b'c\r\n", 0, KV_RESP_ERROR, {NULL}, 0, "Protocol error: unbalanced quotes in request"},
    {"PING", 0, KV_RESP_AGAIN, {NULL}, 0, NULL},
};

/* Checks one parse result against the vector. */
static void check_result(const vec_t *v, size_t len, kv_parser_t *p, kv_resp_result_t r)
{
    ck_assert_msg((int)r == v->result, "'%.*s': got %d, want %d (%s)", (int)len, v->in, (int)r, v->result, p->err);
    if (r == KV_RESP_OK) {
        size_t n = 0;
        while (n < 6 && v->args[n]) n++;
        ck_assert_uint_eq(p->argc, n);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_eq(p->argv[i].len, strlen(v->args[i]));
            ck_assert(memcmp(p->argv[i].p, v->args[i], p->argv[i].len) == 0);
        }
        ck_assert_uint_eq(p->consumed, v->consumed ? v->consumed : len);
    } else if (r == KV_RESP_ERROR) {
        ck_assert_str_eq(p->err, v->err);
    }
}

START_TEST(test_vectors_whole)
{
    const vec_t *v = &vectors[_i];
    size_t len = v->len ? v->len : strlen(v->in);
    kv_parser_t p;
    kv_parser_init(&p, NULL);
    check_result(v, len, &p, kv_resp_parse(&p, v->in, len));
    kv_parser_release(&p);
}
END_TEST

/* The same vectors fed one byte at a time into a buffer that moves (each
 * call gets a fresh copy), as a connection's input buffer may. */
START_TEST(test_vectors_bytewise)
{
    const vec_t *v = &vectors[_i];
    size_t len = v->len ? v->len : strlen(v->in);
    kv_parser_t p;
    kv_parser_init(&p, NULL);
    kv_resp_result_t r = KV_RESP_AGAIN;
    char *copy = NULL;
    for (size_t n = 0; n <= len; n++) {
        free(copy);
        copy = malloc(n + 1);
        memcpy(copy, v->in, n);
        r = kv_resp_parse(&p, copy, n);
        if (r != KV_RESP_AGAIN) {
            if (r == KV_RESP_OK) check_result(v, n, &p, r);
            else check_result(v, len, &p, r);
            break;
        }
    }
    if (r == KV_RESP_AGAIN) ck_assert_int_eq(v->result, KV_RESP_AGAIN);
    if (r == KV_RESP_OK) ck_assert_uint_eq(p.consumed, v->consumed ? v->consumed : len);
    free(copy);
    kv_parser_release(&p);
}
END_TEST

START_TEST(test_pipeline)
{
    const char *in = "*1\r\n$4\r\nPING\r\nECHO hi\r\n*2\r\n$4\r\nECHO\r\n$2\r\nyo\r\n*0\r\n*1\r\n$4\r\nPI";
    size_t len = strlen(in), off = 0, got = 0;
    const char *want[] = {"PING", "ECHO", "ECHO", NULL};
    kv_parser_t p;
    kv_parser_init(&p, NULL);
    for (;;) {
        kv_resp_result_t r = kv_resp_parse(&p, in + off, len - off);
        if (r == KV_RESP_AGAIN) break;
        ck_assert_int_eq(r, KV_RESP_OK);
        if (p.argc) {
            ck_assert_ptr_nonnull(want[got]);
            ck_assert(p.argv[0].len == strlen(want[got]) && !memcmp(p.argv[0].p, want[got], p.argv[0].len));
            got++;
        }
        off += p.consumed;
    }
    ck_assert_uint_eq(got, 3);
    ck_assert_uint_eq(len - off, strlen("*1\r\n$4\r\nPI"));
    kv_parser_release(&p);
}
END_TEST

START_TEST(test_limits)
{
    kv_resp_limits_t lim = {.max_bulk = 10, .max_multibulk = 3, .max_inline = 16};
    kv_parser_t p;
    kv_parser_init(&p, &lim);
    ck_assert_int_eq(kv_resp_parse(&p, "*4\r\n", 4), KV_RESP_ERROR);
    ck_assert_str_eq(p.err, "Protocol error: invalid multibulk length");
    kv_parser_reset(&p);
    ck_assert_int_eq(kv_resp_parse(&p, "*3\r\n$11\r\n", 9), KV_RESP_ERROR);
    ck_assert_str_eq(p.err, "Protocol error: invalid bulk length");
    kv_parser_reset(&p);
    ck_assert_int_eq(kv_resp_parse(&p, "*1\r\n$10\r\n", 9), KV_RESP_AGAIN);
    ck_assert_uint_eq(kv_parser_need(&p, 9), 12);
    kv_parser_reset(&p);
    /* Inline without a newline: waits up to the limit, then fails. */
    ck_assert_int_eq(kv_resp_parse(&p, "0123456789abcdef", 16), KV_RESP_AGAIN);
    ck_assert_int_eq(kv_resp_parse(&p, "0123456789abcdefg", 17), KV_RESP_ERROR);
    ck_assert_str_eq(p.err, "Protocol error: too big inline request");
    kv_parser_reset(&p);
    /* A header line without \r past the limit. */
    ck_assert_int_eq(kv_resp_parse(&p, "*11111111111111111", 18), KV_RESP_ERROR);
    ck_assert_str_eq(p.err, "Protocol error: too big mbulk count string");
    kv_parser_reset(&p);
    ck_assert_int_eq(kv_resp_parse(&p, "*1\r\n$1111111111111111111", 24), KV_RESP_ERROR);
    ck_assert_str_eq(p.err, "Protocol error: too big bulk count string");
    kv_parser_release(&p);

    /* Redis's own limits by default. */
    kv_parser_init(&p, NULL);
    ck_assert_int_eq(p.lim.max_bulk, 512LL * 1024 * 1024);
    ck_assert_int_eq(p.lim.max_multibulk, 1024 * 1024);
    ck_assert_uint_eq(p.lim.max_inline, 64 * 1024);
    char *big = malloc(70000);
    memset(big, 'x', 70000);
    ck_assert_int_eq(kv_resp_parse(&p, big, 65536), KV_RESP_AGAIN);
    ck_assert_int_eq(kv_resp_parse(&p, big, 65537), KV_RESP_ERROR);
    free(big);
    kv_parser_release(&p);
}
END_TEST

/* A request with many arguments fed in random-sized pieces. */
START_TEST(test_many_args_chunked)
{
    char *buf = malloc(1 << 20);
    size_t len = (size_t)sprintf(buf, "*1001\r\n$4\r\nMSET\r\n");
    for (int i = 0; i < 1000; i++) len += (size_t)sprintf(buf + len, "$7\r\n%07d\r\n", i);
    kv_parser_t p;
    kv_parser_init(&p, NULL);
    srand(7);
    size_t have = 0;
    kv_resp_result_t r = KV_RESP_AGAIN;
    while (r == KV_RESP_AGAIN && have < len) {
        have += (size_t)(rand() % 13) + 1;
        if (have > len) have = len;
        r = kv_resp_parse(&p, buf, have);
    }
    ck_assert_int_eq(r, KV_RESP_OK);
    ck_assert_uint_eq(p.argc, 1001);
    ck_assert_uint_eq(p.consumed, len);
    ck_assert_uint_eq(p.argv[1000].len, 7);
    ck_assert(memcmp(p.argv[1000].p, "0000999", 7) == 0);
    kv_parser_release(&p);
    free(buf);
}
END_TEST

START_TEST(test_parse_ll)
{
    long long v;
    ck_assert_int_eq(kv_parse_ll("0", 1, &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(kv_parse_ll("-42", 3, &v), 0);
    ck_assert_int_eq(v, -42);
    ck_assert_int_eq(kv_parse_ll("9223372036854775807", 19, &v), 0);
    ck_assert_int_eq(v, LLONG_MAX);
    ck_assert_int_eq(kv_parse_ll("-9223372036854775808", 20, &v), 0);
    ck_assert_int_eq(v, LLONG_MIN);
    const char *bad[] = {"", "-", "+1", " 1", "1 ", "01", "-0", "9223372036854775808", "-9223372036854775809",
                         "1a", "1.5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(kv_parse_ll(bad[i], strlen(bad[i]), &v) < 0, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_replies)
{
    sk_buf_t o;
    sk_buf_init(&o, 0);
    kv_reply_status(&o, "OK");
    kv_reply_error(&o, "ERR bad\r\nthing");
    kv_reply_int(&o, -7);
    kv_reply_int(&o, LLONG_MIN);
    kv_reply_bulk(&o, "a\0b", 3);
    kv_reply_nil(&o);
    kv_reply_array(&o, 2);
    kv_reply_nil_array(&o);
    kv_reply_bulk_ll(&o, 1234567890123LL);
    const char want[] = "+OK\r\n-ERR bad  thing\r\n:-7\r\n:-9223372036854775808\r\n$3\r\na\0b\r\n$-1\r\n*2\r\n*-1\r\n"
                        "$13\r\n1234567890123\r\n";
    ck_assert_uint_eq(o.len, sizeof want - 1);
    ck_assert(memcmp(o.data, want, o.len) == 0);
    sk_buf_release(&o);
}
END_TEST

static Suite *resp_suite(void)
{
    Suite *s = suite_create("kv-resp");
    TCase *tc = tcase_create("resp");
    tcase_set_timeout(tc, 60);
    int n = (int)(sizeof vectors / sizeof vectors[0]);
    tcase_add_loop_test(tc, test_vectors_whole, 0, n);
    tcase_add_loop_test(tc, test_vectors_bytewise, 0, n);
    tcase_add_test(tc, test_pipeline);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_many_args_chunked);
    tcase_add_test(tc, test_parse_ll);
    tcase_add_test(tc, test_replies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(resp_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
