/*
 * test_conf.c - common/sk_conf.h: defaults < environment twin < command line,
 * the accepted spellings of each type, and the errors a user sees.
 */
#include <check.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sk_conf.h"

typedef struct test_cfg_s {
    int64_t port;
    int64_t segment_bytes;
    int verbose;
    int fsync;
    char *data_dir;
    char *name;
} test_cfg_t;

static const sk_conf_entry_t table[] = {
    {"port", SK_CONF_INT, offsetof(test_cfg_t, port), "9092", 1, 65535, "TCP port"},
    {"segment-bytes", SK_CONF_SIZE, offsetof(test_cfg_t, segment_bytes), "1g", 4096,
     INT64_C(1) << 40, "segment size"},
    {"verbose", SK_CONF_BOOL, offsetof(test_cfg_t, verbose), "false", 0, 0, "chatty"},
    {"fsync", SK_CONF_BOOL, offsetof(test_cfg_t, fsync), "true", 0, 0, "fsync appends"},
    {"data-dir", SK_CONF_STR, offsetof(test_cfg_t, data_dir), NULL, 0, 0, "data directory"},
    {"name", SK_CONF_STR, offsetof(test_cfg_t, name), "souk", 0, 0, "a name"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sk_conf_prog_t prog = {"souk-test", "Exercises sk_conf.", NULL, 0};
static const sk_conf_prog_t prog_one_arg = {"souk-test", "Takes one argument.", "[GROUP]", 1};

static const char *const env_twins[] = {"SOUK_PORT",  "SOUK_SEGMENT_BYTES", "SOUK_VERBOSE",
                                        "SOUK_FSYNC", "SOUK_DATA_DIR",      "SOUK_NAME"};

static test_cfg_t cfg;
static char err[256];

/* Each test starts from an environment without our twins and a zeroed
 * struct (string fields must start NULL: the loader frees what it replaces). */
static void setup(void)
{
    for (size_t i = 0; i < sizeof env_twins / sizeof env_twins[0]; i++)
        unsetenv(env_twins[i]);
    memset(&cfg, 0, sizeof cfg);
    err[0] = '\0';
}

static void teardown(void)
{
    sk_conf_release(table, &cfg);
    for (size_t i = 0; i < sizeof env_twins / sizeof env_twins[0]; i++)
        unsetenv(env_twins[i]);
}

/* Loads from a NULL-terminated list of arguments (argv[0] is added). */
static int load_prog(const sk_conf_prog_t *p, const char *const *args, const char **pos, int *npos)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"souk-test";
    for (; args && *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    return sk_conf_load(p, table, &cfg, argc, argv, pos, npos, err, sizeof err);
}

static int load(const char *const *args)
{
    return load_prog(&prog, args, NULL, NULL);
}

/* Runs load() with stdout sent to /dev/null (for --help and --version). */
static int load_quiet(const char *const *args)
{
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int null = open("/dev/null", O_WRONLY);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(null, 0);
    dup2(null, STDOUT_FILENO);
    close(null);
    int rc = load(args);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return rc;
}

START_TEST(test_conf_env_name)
{
    char out[64];
    sk_conf_env_name("data-dir", out, sizeof out);
    ck_assert_str_eq(out, "SOUK_DATA_DIR");
    sk_conf_env_name("port", out, sizeof out);
    ck_assert_str_eq(out, "SOUK_PORT");
    sk_conf_env_name("index-interval-bytes", out, sizeof out);
    ck_assert_str_eq(out, "SOUK_INDEX_INTERVAL_BYTES");
    /* The documented size, strlen(name) + 6, is enough. */
    char exact[8 + 6];
    sk_conf_env_name("data-dir", exact, sizeof exact);
    ck_assert_str_eq(exact, "SOUK_DATA_DIR");
}
END_TEST

START_TEST(test_conf_defaults)
{
    ck_assert_int_eq(load(NULL), SK_CONF_OK);
    ck_assert(cfg.port == 9092);
    ck_assert(cfg.segment_bytes == INT64_C(1) << 30);
    ck_assert_int_eq(cfg.verbose, 0);
    ck_assert_int_eq(cfg.fsync, 1);
    ck_assert_ptr_nonnull(cfg.data_dir); /* NULL default: an empty string */
    ck_assert_str_eq(cfg.data_dir, "");
    ck_assert_str_eq(cfg.name, "souk");
}
END_TEST

START_TEST(test_conf_env_overrides_default)
{
    setenv("SOUK_PORT", "1234", 1);
    setenv("SOUK_SEGMENT_BYTES", "64m", 1);
    setenv("SOUK_VERBOSE", "yes", 1);
    setenv("SOUK_FSYNC", "off", 1);
    setenv("SOUK_DATA_DIR", "/tmp/from-env", 1);
    ck_assert_int_eq(load(NULL), SK_CONF_OK);
    ck_assert(cfg.port == 1234);
    ck_assert(cfg.segment_bytes == 64 * 1024 * 1024);
    ck_assert_int_eq(cfg.verbose, 1);
    ck_assert_int_eq(cfg.fsync, 0);
    ck_assert_str_eq(cfg.data_dir, "/tmp/from-env");
    ck_assert_str_eq(cfg.name, "souk"); /* no twin set: default */
}
END_TEST

START_TEST(test_conf_flag_overrides_env)
{
    setenv("SOUK_PORT", "1234", 1);
    setenv("SOUK_DATA_DIR", "/tmp/from-env", 1);
    setenv("SOUK_VERBOSE", "true", 1);
    const char *args[] = {"--port", "4321", "--data-dir=/tmp/from-flag", "--no-verbose", NULL};
    ck_assert_int_eq(load(args), SK_CONF_OK);
    ck_assert(cfg.port == 4321);
    ck_assert_str_eq(cfg.data_dir, "/tmp/from-flag");
    ck_assert_int_eq(cfg.verbose, 0);
}
END_TEST

START_TEST(test_conf_value_forms)
{
    const char *args[] = {"--port=8080", "--name",      "broker one", "--segment-bytes",
                          "4k",          "--data-dir=", "--name=x=y", NULL};
    ck_assert_int_eq(load(args), SK_CONF_OK);
    ck_assert(cfg.port == 8080);
    ck_assert(cfg.segment_bytes == 4096);
    ck_assert_str_eq(cfg.data_dir, "");
    ck_assert_str_eq(cfg.name, "x=y"); /* the last one wins; '=' after the first is data */

    /* The last of repeated flags wins. */
    sk_conf_release(table, &cfg);
    const char *again[] = {"--port", "1", "--port", "2", "--port=3", NULL};
    ck_assert_int_eq(load(again), SK_CONF_OK);
    ck_assert(cfg.port == 3);
}
END_TEST

START_TEST(test_conf_bool_forms)
{
    static const struct {
        const char *args[3];
        int verbose;
    } cases[] = {
        {{"--verbose", NULL, NULL}, 1},           {{"--no-verbose", NULL, NULL}, 0},
        {{"--verbose", "false", NULL}, 0},        {{"--verbose", "true", NULL}, 1},
        {{"--verbose=false", NULL, NULL}, 0},     {{"--verbose=1", NULL, NULL}, 1},
        {{"--verbose=off", NULL, NULL}, 0},       {{"--verbose=YES", NULL, NULL}, 1},
        {{"--verbose", "--no-verbose", NULL}, 0}, {{"--no-verbose", "--verbose", NULL}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sk_conf_release(table, &cfg);
        ck_assert_msg(load(cases[i].args) == SK_CONF_OK, "case %zu: %s", i, err);
        ck_assert_msg(cfg.verbose == cases[i].verbose, "case %zu: verbose %d", i, cfg.verbose);
    }
    /* A bare bool flag does not swallow the next option. */
    sk_conf_release(table, &cfg);
    const char *next[] = {"--verbose", "--port", "7", NULL};
    ck_assert_int_eq(load(next), SK_CONF_OK);
    ck_assert_int_eq(cfg.verbose, 1);
    ck_assert(cfg.port == 7);

    sk_conf_release(table, &cfg);
    const char *bad[] = {"--verbose=maybe", NULL};
    ck_assert_int_eq(load(bad), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "verbose"));

    sk_conf_release(table, &cfg);
    setenv("SOUK_FSYNC", "sometimes", 1);
    ck_assert_int_eq(load(NULL), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "SOUK_FSYNC"));
}
END_TEST

START_TEST(test_conf_parse_size)
{
    static const struct {
        const char *in;
        int64_t out;
    } ok[] = {
        {"0", 0},
        {"10", 10},
        {"4k", 4096},
        {"4K", 4096},
        {"64m", INT64_C(64) << 20},
        {"1g", INT64_C(1) << 30},
        {"2kb", 2048},
        {"3MiB", INT64_C(3) << 20},
        {"8GB", INT64_C(8) << 30},
        {"-1", -1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -12345;
        ck_assert_msg(sk_conf_parse_size(ok[i].in, &v) == 0, "'%s' rejected", ok[i].in);
        ck_assert_msg(v == ok[i].out, "'%s' -> %lld", ok[i].in, (long long)v);
    }
    static const char *const bad[] = {
        "", "m", "12x", "5mm", "1 k", "1kx", "99999999999999999999", "9223372036854775807k"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = -12345;
        ck_assert_msg(sk_conf_parse_size(bad[i], &v) == -1, "'%s' accepted", bad[i]);
        ck_assert(v == -12345);
    }
}
END_TEST

START_TEST(test_conf_bounds)
{
    const char *low[] = {"--port", "0", NULL};
    ck_assert_int_eq(load(low), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "--port"));
    ck_assert_ptr_nonnull(strstr(err, "between 1 and 65535"));

    const char *high[] = {"--port=65536", NULL};
    ck_assert_int_eq(load(high), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "65536"));

    const char *edge[] = {"--port", "65535", "--segment-bytes", "4096", NULL};
    ck_assert_int_eq(load(edge), SK_CONF_OK);
    ck_assert(cfg.port == 65535);

    const char *small[] = {"--segment-bytes", "1k", NULL};
    ck_assert_int_eq(load(small), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "segment-bytes"));

    const char *notint[] = {"--port", "12abc", NULL};
    ck_assert_int_eq(load(notint), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "12abc"));

    const char *notsize[] = {"--segment-bytes=lots", NULL};
    ck_assert_int_eq(load(notsize), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "lots"));

    setenv("SOUK_PORT", "99999", 1);
    ck_assert_int_eq(load(NULL), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "SOUK_PORT"));
}
END_TEST

START_TEST(test_conf_unknown_and_missing)
{
    const char *unknown[] = {"--bogus", "1", NULL};
    ck_assert_int_eq(load(unknown), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "--bogus"));

    const char *unknown_eq[] = {"--bogus=1", NULL};
    ck_assert_int_eq(load(unknown_eq), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "bogus"));

    /* --no- only negates booleans. */
    const char *no_int[] = {"--no-port", NULL};
    ck_assert_int_eq(load(no_int), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "no-port"));

    /* A prefix of a name is not the name. */
    const char *prefix[] = {"--por", "1", NULL};
    ck_assert_int_eq(load(prefix), SK_CONF_ERROR);

    const char *missing[] = {"--port", NULL};
    ck_assert_int_eq(load(missing), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "--port"));
}
END_TEST

START_TEST(test_conf_help_version)
{
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq(load_quiet(help), SK_CONF_EXIT);
    const char *h[] = {"-h", NULL};
    ck_assert_int_eq(load_quiet(h), SK_CONF_EXIT);
    const char *version[] = {"--version", NULL};
    ck_assert_int_eq(load_quiet(version), SK_CONF_EXIT);
    /* --help wins even after other options. */
    const char *late[] = {"--port", "5", "--help", "--bogus", NULL};
    ck_assert_int_eq(load_quiet(late), SK_CONF_EXIT);
}
END_TEST

START_TEST(test_conf_help_text)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    sk_conf_print_help(&prog_one_arg, table, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "Usage: souk-test [options] [GROUP]"));
    ck_assert_ptr_nonnull(strstr(text, "--segment-bytes SIZE"));
    ck_assert_ptr_nonnull(strstr(text, "SOUK_SEGMENT_BYTES"));
    ck_assert_ptr_nonnull(strstr(text, "--verbose[=BOOL]"));
    ck_assert_ptr_nonnull(strstr(text, "range: 1..65535"));
    free(text);
}
END_TEST

START_TEST(test_conf_positional)
{
    const char *extra[] = {"--port", "1", "stray", NULL};
    ck_assert_int_eq(load(extra), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "stray"));

    const char *pos[4];
    int npos = -1;
    const char *one[] = {"group-a", "--port", "2", NULL};
    ck_assert_int_eq(load_prog(&prog_one_arg, one, pos, &npos), SK_CONF_OK);
    ck_assert_int_eq(npos, 1);
    ck_assert_str_eq(pos[0], "group-a");
    ck_assert(cfg.port == 2);

    const char *two[] = {"a", "b", NULL};
    ck_assert_int_eq(load_prog(&prog_one_arg, two, pos, &npos), SK_CONF_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "'b'"));

    /* After "--" a dash-led word is an argument; a lone "-" always is. */
    const char *dashes[] = {"--", "--port", NULL};
    ck_assert_int_eq(load_prog(&prog_one_arg, dashes, pos, &npos), SK_CONF_OK);
    ck_assert_int_eq(npos, 1);
    ck_assert_str_eq(pos[0], "--port");
    const char *stdin_arg[] = {"-", NULL};
    ck_assert_int_eq(load_prog(&prog_one_arg, stdin_arg, pos, &npos), SK_CONF_OK);
    ck_assert_int_eq(npos, 1);
    ck_assert_str_eq(pos[0], "-");
}
END_TEST

START_TEST(test_conf_release)
{
    setenv("SOUK_NAME", "env-name", 1);
    const char *args[] = {"--name", "flag-name", "--data-dir", "/d", NULL};
    ck_assert_int_eq(load(args), SK_CONF_OK);
    ck_assert_str_eq(cfg.name, "flag-name");
    sk_conf_release(table, &cfg);
    ck_assert_ptr_null(cfg.name);
    ck_assert_ptr_null(cfg.data_dir);
    sk_conf_release(table, &cfg); /* twice is harmless */
}
END_TEST

static Suite *conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("conf");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_conf_env_name);
    tcase_add_test(tc, test_conf_defaults);
    tcase_add_test(tc, test_conf_env_overrides_default);
    tcase_add_test(tc, test_conf_flag_overrides_env);
    tcase_add_test(tc, test_conf_value_forms);
    tcase_add_test(tc, test_conf_bool_forms);
    tcase_add_test(tc, test_conf_parse_size);
    tcase_add_test(tc, test_conf_bounds);
    tcase_add_test(tc, test_conf_unknown_and_missing);
    tcase_add_test(tc, test_conf_help_version);
    tcase_add_test(tc, test_conf_help_text);
    tcase_add_test(tc, test_conf_positional);
    tcase_add_test(tc, test_conf_release);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conf_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
