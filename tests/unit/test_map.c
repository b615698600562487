/*
 * test_map.c - common/sk_map.h: put/get/del/replace, growth, binary keys and
 * iteration (including deleting the current entry while iterating).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_map.h"

/* Values are small integers dressed as pointers; 0 would read as "absent". */
#define V(i) ((void *)(intptr_t)(i))
#define I(p) ((intptr_t)(p))

START_TEST(test_map_basic)
{
    sk_map_t m;
    sk_map_init(&m);
    ck_assert_uint_eq(sk_map_count(&m), 0);
    ck_assert_ptr_null(sk_map_get(&m, "a", 1));
    ck_assert_ptr_null(sk_map_next(&m, NULL));

    ck_assert_ptr_null(sk_map_put(&m, "a", 1, V(1)));
    ck_assert_ptr_null(sk_map_put(&m, "b", 1, V(2)));
    ck_assert_uint_eq(sk_map_count(&m), 2);
    ck_assert_int_eq(I(sk_map_get(&m, "a", 1)), 1);
    ck_assert_int_eq(I(sk_map_get(&m, "b", 1)), 2);

    /* Replace returns the previous value and does not add an entry. */
    ck_assert_int_eq(I(sk_map_put(&m, "a", 1, V(10))), 1);
    ck_assert_uint_eq(sk_map_count(&m), 2);
    ck_assert_int_eq(I(sk_map_get(&m, "a", 1)), 10);

    ck_assert_int_eq(I(sk_map_del(&m, "a", 1)), 10);
    ck_assert_uint_eq(sk_map_count(&m), 1);
    ck_assert_ptr_null(sk_map_get(&m, "a", 1));
    ck_assert_ptr_null(sk_map_del(&m, "a", 1)); /* already gone */
    ck_assert_ptr_null(sk_map_del(&m, "zzz", 3));
    ck_assert_uint_eq(sk_map_count(&m), 1);

    /* A deleted key can come back. */
    ck_assert_ptr_null(sk_map_put(&m, "a", 1, V(11)));
    ck_assert_int_eq(I(sk_map_get(&m, "a", 1)), 11);
    ck_assert_uint_eq(sk_map_count(&m), 2);
    sk_map_release(&m);
    ck_assert_uint_eq(sk_map_count(&m), 0);
}
END_TEST

START_TEST(test_map_key_is_copied)
{
    sk_map_t m;
    sk_map_init(&m);
    char key[16];
    snprintf(key, sizeof key, "topic-1");
    sk_map_put(&m, key, strlen(key), V(7));
    key[6] = '2'; /* the caller's buffer changes; the map's copy does not */
    ck_assert_ptr_null(sk_map_get(&m, key, strlen(key)));
    ck_assert_int_eq(I(sk_map_get(&m, "topic-1", 7)), 7);

    sk_map_entry_t *e = sk_map_next(&m, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->klen, 7);
    ck_assert_str_eq(e->key, "topic-1"); /* NUL-terminated copy */
    sk_map_release(&m);
}
END_TEST

START_TEST(test_map_binary_keys)
{
    sk_map_t m;
    sk_map_init(&m);
    /* Keys that differ only after a NUL, or only in length. */
    static const struct {
        const char *k;
        size_t n;
    } keys[] = {{"", 0},   {"a", 1},    {"a\0", 2},    {"a\0b", 3},        {"a\0c", 3},
                {"\0", 1}, {"\0\0", 2}, {"a\0b\0", 4}, {"\xff\x00\x01", 3}};
    size_t n = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_null(sk_map_put(&m, keys[i].k, keys[i].n, V(i + 1)));
    ck_assert_uint_eq(sk_map_count(&m), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(I(sk_map_get(&m, keys[i].k, keys[i].n)), (intptr_t)i + 1);

    ck_assert_int_eq(I(sk_map_del(&m, "a\0b", 3)), 4);
    ck_assert_ptr_null(sk_map_get(&m, "a\0b", 3));
    ck_assert_int_eq(I(sk_map_get(&m, "a\0c", 3)), 5);
    ck_assert_int_eq(I(sk_map_get(&m, "a\0", 2)), 3);
    ck_assert_int_eq(I(sk_map_get(&m, "", 0)), 1);
    sk_map_release(&m);
}
END_TEST

START_TEST(test_map_many_keys)
{
    enum { N = 20000 };
    sk_map_t m;
    sk_map_init(&m);
    size_t slots0 = m.nslots;
    char key[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        ck_assert_ptr_null(sk_map_put(&m, key, (size_t)n, V(i + 1)));
    }
    ck_assert_uint_eq(sk_map_count(&m), N);
    ck_assert_uint_gt(m.nslots, slots0);             /* it grew */
    ck_assert_uint_eq(m.nslots & (m.nslots - 1), 0); /* a power of two */
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        ck_assert_int_eq(I(sk_map_get(&m, key, (size_t)n)), i + 1);
    }
    ck_assert_ptr_null(sk_map_get(&m, "key-20000", 9));

    /* Delete the even keys, replace the odd ones. */
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        if (i % 2 == 0)
            ck_assert_int_eq(I(sk_map_del(&m, key, (size_t)n)), i + 1);
        else
            ck_assert_int_eq(I(sk_map_put(&m, key, (size_t)n, V(-i))), i + 1);
    }
    ck_assert_uint_eq(sk_map_count(&m), N / 2);
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        void *v = sk_map_get(&m, key, (size_t)n);
        if (i % 2 == 0)
            ck_assert_ptr_null(v);
        else
            ck_assert_int_eq(I(v), -i);
    }
    sk_map_release(&m);
}
END_TEST

START_TEST(test_map_iterate)
{
    enum { N = 1000 };
    sk_map_t m;
    sk_map_init(&m);
    int seen[N] = {0};
    char key[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        sk_map_put(&m, key, (size_t)n, V(i + 1));
    }
    size_t visits = 0;
    for (sk_map_entry_t *e = sk_map_next(&m, NULL); e; e = sk_map_next(&m, e)) {
        intptr_t i = I(e->value) - 1;
        ck_assert(i >= 0 && i < N);
        /* The entry's key is the one stored with this value. */
        int n = snprintf(key, sizeof key, "k%d", (int)i);
        ck_assert_uint_eq(e->klen, (size_t)n);
        ck_assert_mem_eq(e->key, key, (size_t)n);
        seen[i]++;
        visits++;
    }
    ck_assert_uint_eq(visits, N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    sk_map_release(&m);
}
END_TEST

START_TEST(test_map_delete_while_iterating)
{
    enum { N = 500 };
    sk_map_t m;
    sk_map_init(&m);
    char key[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        sk_map_put(&m, key, (size_t)n, V(i + 1));
    }
    /* The documented pattern: fetch the next entry, then delete the current. */
    int seen[N] = {0};
    size_t visits = 0;
    sk_map_entry_t *e = sk_map_next(&m, NULL);
    while (e) {
        sk_map_entry_t *next = sk_map_next(&m, e);
        intptr_t i = I(e->value) - 1;
        seen[i]++;
        visits++;
        if (i % 3 != 0) ck_assert_int_eq(I(sk_map_del(&m, e->key, e->klen)), i + 1);
        e = next;
    }
    ck_assert_uint_eq(visits, N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_uint_eq(sk_map_count(&m), (N + 2) / 3);
    size_t left = 0;
    for (e = sk_map_next(&m, NULL); e; e = sk_map_next(&m, e)) {
        ck_assert_int_eq((I(e->value) - 1) % 3, 0);
        left++;
    }
    ck_assert_uint_eq(left, sk_map_count(&m));
    sk_map_release(&m);
}
END_TEST

START_TEST(test_map_hash)
{
    /* Stable within a process, and sensitive to every byte and the length. */
    ck_assert(sk_hash("abc", 3) == sk_hash("abc", 3));
    ck_assert(sk_hash("abc", 3) != sk_hash("abd", 3));
    ck_assert(sk_hash("a", 1) != sk_hash("a\0", 2));
    ck_assert(sk_hash("", 0) == sk_hash("x", 0));
}
END_TEST

static Suite *map_suite(void)
{
    Suite *s = suite_create("map");
    TCase *tc = tcase_create("map");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_map_basic);
    tcase_add_test(tc, test_map_key_is_copied);
    tcase_add_test(tc, test_map_binary_keys);
    tcase_add_test(tc, test_map_many_keys);
    tcase_add_test(tc, test_map_iterate);
    tcase_add_test(tc, test_map_delete_while_iterating);
    tcase_add_test(tc, test_map_hash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(map_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
