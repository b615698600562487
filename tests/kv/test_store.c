/*
 * test_store.c - broker/kv/store.h with a fake clock: set/get/del, deadlines
 * (lazy and active expiry, the callback, the time budget), growth and
 * shrinking through incremental rehashing, SCAN's guarantee across resizes,
 * memory accounting, and glob matching.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

static int64_t fake_now;

static int64_t fake_clock(void *opaque)
{
    (void)opaque;
    return fake_now;
}

typedef struct expired_log_s {
    int n;
    char last_key[64];
    char last_val[64];
    int64_t last_deadline;
} expired_log_t;

static void on_expired(void *opaque, const kv_entry_t *e, int64_t deadline)
{
    expired_log_t *l = opaque;
    l->n++;
    snprintf(l->last_key, sizeof l->last_key, "%.*s", (int)e->klen, kv_entry_key(e));
    snprintf(l->last_val, sizeof l->last_val, "%.*s", (int)e->vlen, kv_entry_val(e));
    l->last_deadline = deadline;
}

static kv_store_t *new_store(expired_log_t *l)
{
    fake_now = 1000000;
    kv_store_t *s = kv_store_new(fake_clock, NULL);
    if (l) {
        memset(l, 0, sizeof *l);
        kv_store_on_expired(s, on_expired, l);
    }
    return s;
}

static int val_is(const kv_entry_t *e, const char *v)
{
    return e && e->vlen == strlen(v) && memcmp(kv_entry_val(e), v, e->vlen) == 0;
}

START_TEST(test_basic)
{
    kv_store_t *s = new_store(NULL);
    int created;
    ck_assert_ptr_null(kv_store_get(s, "a", 1));
    kv_store_set(s, "a", 1, "one", 3, KV_NO_DEADLINE, &created);
    ck_assert_int_eq(created, 1);
    ck_assert(val_is(kv_store_get(s, "a", 1), "one"));
    /* Replace with a longer and then a much shorter value. */
    kv_store_set(s, "a", 1, "a much longer value than before", 31, KV_NO_DEADLINE, &created);
    ck_assert_int_eq(created, 0);
    ck_assert(val_is(kv_store_get(s, "a", 1), "a much longer value than before"));
    kv_store_set(s, "a", 1, "", 0, KV_NO_DEADLINE, NULL);
    ck_assert(val_is(kv_store_get(s, "a", 1), ""));
    /* Binary keys. */
    kv_store_set(s, "a\0b", 3, "x", 1, KV_NO_DEADLINE, NULL);
    ck_assert(val_is(kv_store_get(s, "a\0b", 3), "x"));
    ck_assert_ptr_null(kv_store_get(s, "a\0c", 3));
    ck_assert_uint_eq(kv_store_count(s), 2);
    ck_assert_uint_eq(kv_store_data_bytes(s), 1 + 0 + 3 + 1);
    ck_assert_int_eq(kv_store_del(s, "a", 1), 1);
    ck_assert_int_eq(kv_store_del(s, "a", 1), 0);
    ck_assert_uint_eq(kv_store_count(s), 1);
    kv_store_flush(s);
    ck_assert_uint_eq(kv_store_count(s), 0);
    ck_assert_uint_eq(kv_store_data_bytes(s), 0);
    kv_store_free(s);
}
END_TEST

START_TEST(test_lazy_expiry)
{
    expired_log_t l;
    kv_store_t *s = new_store(&l);
    kv_store_set(s, "k", 1, "v", 1, fake_now + 300, NULL);
    ck_assert_int_eq(kv_store_deadline(s, kv_store_get(s, "k", 1)), 1000300);
    ck_assert_uint_eq(kv_store_expires(s), 1);
    fake_now += 299;
    ck_assert_ptr_nonnull(kv_store_get(s, "k", 1));
    ck_assert_int_eq(l.n, 0);
    fake_now += 1; /* the deadline itself is expired, as in Redis */
    ck_assert_ptr_null(kv_store_get(s, "k", 1));
    ck_assert_int_eq(l.n, 1);
    ck_assert_str_eq(l.last_key, "k");
    ck_assert_str_eq(l.last_val, "v");
    ck_assert_int_eq(l.last_deadline, 1000300);
    ck_assert_uint_eq(kv_store_count(s), 0);
    ck_assert_uint_eq(kv_store_expires(s), 0);
    /* DEL of an expired key expires it (callback) and reports 0. */
    kv_store_set(s, "d", 1, "v", 1, fake_now + 10, NULL);
    fake_now += 10;
    ck_assert_int_eq(kv_store_del(s, "d", 1), 0);
    ck_assert_int_eq(l.n, 2);
    /* peek never expires. */
    kv_store_set(s, "p", 1, "v", 1, fake_now - 1, NULL);
    ck_assert_ptr_nonnull(kv_store_peek(s, "p", 1));
    ck_assert_int_eq(l.n, 2);
    kv_store_free(s);
}
END_TEST

START_TEST(test_deadline_changes)
{
    expired_log_t l;
    kv_store_t *s = new_store(&l);
    kv_entry_t *e = kv_store_set(s, "k", 1, "v", 1, fake_now + 100, NULL);
    kv_store_set_deadline(s, e, fake_now + 50);
    ck_assert_int_eq(kv_store_next_deadline(s), fake_now + 50);
    kv_store_set_deadline(s, e, KV_NO_DEADLINE);
    ck_assert_int_eq(kv_store_next_deadline(s), KV_NO_DEADLINE);
    ck_assert_uint_eq(kv_store_expires(s), 0);
    /* KEEPTTL keeps it; a plain set clears it. */
    e = kv_store_set(s, "k", 1, "v", 1, fake_now + 100, NULL);
    e = kv_store_set(s, "k", 1, "w", 1, KV_KEEP_DEADLINE, NULL);
    ck_assert_int_eq(kv_store_deadline(s, e), fake_now + 100);
    e = kv_store_set(s, "k", 1, "x", 1, KV_NO_DEADLINE, NULL);
    ck_assert_int_eq(kv_store_deadline(s, e), KV_NO_DEADLINE);
    /* KEEPTTL on a new key: no deadline. */
    e = kv_store_set(s, "n", 1, "x", 1, KV_KEEP_DEADLINE, NULL);
    ck_assert_int_eq(kv_store_deadline(s, e), KV_NO_DEADLINE);
    kv_store_free(s);
}
END_TEST

/* The active cycle expires due keys in deadline order and nothing else. */
START_TEST(test_active_expiry)
{
    expired_log_t l;
    kv_store_t *s = new_store(&l);
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof key, "key:%d", i);
        /* deadlines shuffled: i * 7919 mod 10000 */
        kv_store_set(s, key, (size_t)n, "v", 1, fake_now + 1 + (i * 7919) % 10000, NULL);
    }
    for (int i = 0; i < 100; i++) {
        int n = snprintf(key, sizeof key, "forever:%d", i);
        kv_store_set(s, key, (size_t)n, "v", 1, KV_NO_DEADLINE, NULL);
    }
    int more;
    ck_assert_uint_eq(kv_store_expire_cycle(s, 0, &more), 0);
    fake_now += 5000;
    ck_assert_uint_eq(kv_store_expire_cycle(s, 0, &more), 5000);
    ck_assert_int_eq(more, 0);
    ck_assert_int_eq(l.n, 5000);
    ck_assert_int_eq(kv_store_next_deadline(s), fake_now + 1);
    fake_now += 100000;
    ck_assert_uint_eq(kv_store_expire_cycle(s, 0, NULL), 5000);
    ck_assert_uint_eq(kv_store_count(s), 100);
    ck_assert_uint_eq(kv_store_expires(s), 0);
    ck_assert_int_eq(kv_store_next_deadline(s), KV_NO_DEADLINE);
    kv_store_free(s);
}
END_TEST

/* A tiny budget stops the cycle early and says that more is due. */
START_TEST(test_expiry_budget)
{
    expired_log_t l;
    kv_store_t *s = new_store(&l);
    char key[32];
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        kv_store_set(s, key, (size_t)n, "v", 1, fake_now + 1, NULL);
    }
    fake_now += 2;
    int more = 0;
    size_t first = kv_store_expire_cycle(s, 1, &more);
    ck_assert_uint_lt(first, 200000);
    ck_assert_int_eq(more, 1);
    size_t total = first;
    for (int i = 0; i < 1000000 && more; i++) total += kv_store_expire_cycle(s, 1000, &more);
    ck_assert_uint_eq(total, 200000);
    ck_assert_uint_eq(kv_store_count(s), 0);
    kv_store_free(s);
}
END_TEST

typedef struct seen_s {
    unsigned char *hits;
    int n;
} seen_t;

static void mark_seen(void *opaque, const kv_entry_t *e)
{
    seen_t *s = opaque;
    int i = atoi(kv_entry_key(e) + 1);
    s->hits[i]++;
    s->n++;
}

/* SCAN returns every key present throughout, while the table grows and
 * shrinks under it. */
START_TEST(test_scan_across_resizes)
{
    kv_store_t *s = new_store(NULL);
    char key[32];
    enum { N = 20000 };
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        kv_store_set(s, key, (size_t)n, "v", 1, KV_NO_DEADLINE, NULL);
    }
    seen_t seen = {calloc(3 * N, 1), 0};
    uint64_t cur = 0;
    int steps = 0, extra = N;
    do {
        cur = kv_store_scan(s, cur, mark_seen, &seen);
        /* Grow, then shrink, while iterating. */
        if (steps < 2000) {
            for (int k = 0; k < 10; k++) {
                int n = snprintf(key, sizeof key, "k%d", extra++);
                kv_store_set(s, key, (size_t)n, "v", 1, KV_NO_DEADLINE, NULL);
            }
        } else if (extra > N) {
            for (int k = 0; k < 10 && extra > N; k++) {
                int n = snprintf(key, sizeof key, "k%d", --extra);
                kv_store_del(s, key, (size_t)n);
            }
        }
        steps++;
    } while (cur != 0 && steps < 10000000);
    ck_assert_uint_eq(cur, 0);
    for (int i = 0; i < N; i++) ck_assert_msg(seen.hits[i] >= 1, "key k%d missed", i);
    free(seen.hits);
    kv_store_free(s);
}
END_TEST

START_TEST(test_grow_shrink_memory)
{
    kv_store_t *s = new_store(NULL);
    size_t empty = kv_store_memory(s);
    char key[32];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "key:%08d", i);
        kv_store_set(s, key, (size_t)n, "value", 5, i % 2 ? fake_now + 100000 : KV_NO_DEADLINE, NULL);
    }
    while (kv_store_rehash_step(s, 1000)) {
    }
    size_t full = kv_store_memory(s);
    ck_assert_uint_gt(full, empty + 100000 * 17);
    /* Compact: well under 100 bytes per key for 12-byte keys and 5-byte values. */
    ck_assert_msg(full < 100000 * 100, "%zu bytes for 100000 keys", full);
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "key:%08d", i);
        ck_assert(val_is(kv_store_get(s, key, (size_t)n), "value"));
    }
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "key:%08d", i);
        ck_assert_int_eq(kv_store_del(s, key, (size_t)n), 1);
    }
    while (kv_store_rehash_step(s, 1000)) {
    }
    ck_assert_uint_eq(kv_store_count(s), 0);
    ck_assert_uint_lt(kv_store_memory(s), empty + 64 * 1024);
    kv_store_free(s);
}
END_TEST

START_TEST(test_glob)
{
    struct {
        const char *pat, *str;
        int nocase, want;
    } v[] = {
        {"*", "", 0, 1},          {"*", "abc", 0, 1},          {"a*", "abc", 0, 1},       {"a*c", "abc", 0, 1},
        {"a*d", "abc", 0, 0},     {"?", "a", 0, 1},            {"?", "", 0, 0},           {"h?llo", "hello", 0, 1},
        {"h[ae]llo", "hallo", 0, 1}, {"h[ae]llo", "hillo", 0, 0}, {"h[^e]llo", "hallo", 0, 1},
        {"h[^e]llo", "hello", 0, 0}, {"h[a-b]llo", "hbllo", 0, 1}, {"h[b-a]llo", "hallo", 0, 1},
        {"h\\*llo", "h*llo", 0, 1}, {"h\\*llo", "hello", 0, 0},  {"HELLO", "hello", 1, 1},
        {"HELLO", "hello", 0, 0}, {"*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0},
        {"__keyevent@0__:*", "__keyevent@0__:expired", 0, 1}, {"**", "x", 0, 1}, {"[abc", "a", 0, 1},
        {"a\\", "a\\", 0, 1},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        ck_assert_msg(kv_glob_match(v[i].pat, strlen(v[i].pat), v[i].str, strlen(v[i].str), v[i].nocase) == v[i].want,
                      "'%s' vs '%s'", v[i].pat, v[i].str);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("kv-store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_lazy_expiry);
    tcase_add_test(tc, test_deadline_changes);
    tcase_add_test(tc, test_active_expiry);
    tcase_add_test(tc, test_expiry_budget);
    tcase_add_test(tc, test_scan_across_resizes);
    tcase_add_test(tc, test_grow_shrink_memory);
    tcase_add_test(tc, test_glob);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
