/*
 * test_card.c - the payment service's pure rules (card.h): card numbers
 * with the Luhn check, expiry against a fixed clock, CVC, the sandbox's
 * test cards and the auto-pay decision.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card.h"

/* 2026-11-25T16:37:36Z */
static const int64_t NOW = INT64_C(1795624656000);

START_TEST(luhn_vectors)
{
    static const struct {
        const char *digits;
        int valid;
    } v[] = {
        {"4242424242424242", 1},
        {"4000000000000002", 1},
        {"4000000000009995", 1},
        {"5555555555554444", 1},
        {"378282246310005", 1},
        {"79927398713", 1},
        {"4242424242424241", 0},
        {"79927398710", 0},
        {"0000000000000000", 1},
        {"1234567812345678", 0},
        {"12a4", 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        ck_assert_msg(card_luhn_valid(v[i].digits, strlen(v[i].digits)) == v[i].valid, "%s",
                      v[i].digits);
    ck_assert_int_eq(card_luhn_valid("0", 1), 0);
    ck_assert_int_eq(card_luhn_valid(NULL, 0), 0);
}
END_TEST

START_TEST(number_parse)
{
    card_number_t n;
    const char *why = NULL;
    char last4[5];

    ck_assert_int_eq(card_number_parse("4242 4242 4242 4242", &n, &why), 0);
    ck_assert_str_eq(n.digits, "4242424242424242");
    ck_assert_uint_eq(n.len, 16);
    card_last4(&n, last4);
    ck_assert_str_eq(last4, "4242");

    ck_assert_int_eq(card_number_parse(" 3782 822463 10005 ", &n, &why), 0);
    ck_assert_uint_eq(n.len, 15);
    card_last4(&n, last4);
    ck_assert_str_eq(last4, "0005");

    /* 12 and 19 digits are the bounds. */
    ck_assert_int_eq(card_number_parse("000000000000", &n, &why), 0);
    ck_assert_int_eq(card_number_parse("0000000000000000000", &n, &why), 0);
    ck_assert_int_eq(card_number_parse("00000000000", &n, &why), -1);
    ck_assert_str_eq(why, "must be 12 to 19 digits");
    ck_assert_int_eq(card_number_parse("00000000000000000000", &n, &why), -1);
    ck_assert_str_eq(why, "must be 12 to 19 digits");
    ck_assert_int_eq(n.len, 0);
    ck_assert_str_eq(n.digits, "");

    ck_assert_int_eq(card_number_parse("4242424242424241", &n, &why), -1);
    ck_assert_ptr_nonnull(strstr(why, "check digit"));
    ck_assert_str_eq(n.digits, ""); /* nothing left behind */
    ck_assert_int_eq(card_number_parse("4242-4242-4242-4242", &n, &why), -1);
    ck_assert_str_eq(why, "must contain only digits and spaces");
    ck_assert_int_eq(card_number_parse("", &n, &why), -1);
    ck_assert_int_eq(card_number_parse("                ", &n, &why), -1);
    ck_assert_int_eq(card_number_parse(NULL, &n, &why), -1);
    ck_assert_int_eq(card_number_parse("４２４２", &n, &why), -1); /* fullwidth digits */

    /* Very long input of spaces is refused, not scanned forever. */
    char longtext[200];
    memset(longtext, ' ', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    memcpy(longtext, "4242424242424242", 16);
    ck_assert_int_eq(card_number_parse(longtext, &n, &why), -1);
}
END_TEST

START_TEST(expiry)
{
    const char *why = NULL;
    /* NOW is in November 2026: valid through the end of 11/2026. */
    ck_assert_int_eq(card_expiry_check(11, 2026, NOW, &why), CARD_EXP_OK);
    ck_assert_int_eq(card_expiry_check(12, 2026, NOW, &why), CARD_EXP_OK);
    ck_assert_int_eq(card_expiry_check(1, 2027, NOW, &why), CARD_EXP_OK);
    ck_assert_int_eq(card_expiry_check(12, 9999, NOW, &why), CARD_EXP_OK);
    ck_assert_int_eq(card_expiry_check(10, 2026, NOW, &why), CARD_EXP_BAD_MONTH);
    ck_assert_str_eq(why, "the card has expired");
    ck_assert_int_eq(card_expiry_check(12, 2025, NOW, &why), CARD_EXP_BAD_YEAR);
    ck_assert_str_eq(why, "the card has expired");
    ck_assert_int_eq(card_expiry_check(0, 2027, NOW, &why), CARD_EXP_BAD_MONTH);
    ck_assert_int_eq(card_expiry_check(13, 2027, NOW, &why), CARD_EXP_BAD_MONTH);
    ck_assert_int_eq(card_expiry_check(1, 27, NOW, &why), CARD_EXP_BAD_YEAR);
    ck_assert_str_eq(why, "must be a 4-digit year");
    ck_assert_int_eq(card_expiry_check(1, 10000, NOW, &why), CARD_EXP_BAD_YEAR);

    /* The month boundary, to the millisecond. */
    int64_t end = card_expiry_end_ms(11, 2026); /* 2026-12-01T00:00:00Z */
    ck_assert_int_eq(end, INT64_C(1796083200000));
    ck_assert_int_eq(card_expiry_check(11, 2026, end - 1, &why), CARD_EXP_OK);
    ck_assert_int_eq(card_expiry_check(11, 2026, end, &why), CARD_EXP_BAD_MONTH);
    /* December rolls over into the next year; February of a leap year. */
    ck_assert_int_eq(card_expiry_end_ms(12, 2026), INT64_C(1798761600000)); /* 2027-01-01 */
    ck_assert_int_eq(card_expiry_end_ms(2, 2028) - card_expiry_end_ms(1, 2028),
                     INT64_C(29) * 86400000);
    ck_assert_int_eq(card_expiry_end_ms(12, 1969), 0);
}
END_TEST

START_TEST(cvc)
{
    const char *why = NULL;
    ck_assert_int_eq(card_cvc_check("123", &why), 0);
    ck_assert_int_eq(card_cvc_check("0123", &why), 0);
    ck_assert_int_eq(card_cvc_check("12", &why), -1);
    ck_assert_str_eq(why, "must be 3 or 4 digits");
    ck_assert_int_eq(card_cvc_check("12345", &why), -1);
    ck_assert_int_eq(card_cvc_check("12a", &why), -1);
    ck_assert_int_eq(card_cvc_check(" 123", &why), -1);
    ck_assert_int_eq(card_cvc_check("", &why), -1);
    ck_assert_int_eq(card_cvc_check(NULL, &why), -1);
}
END_TEST

static card_decision_t decide(const char *text)
{
    card_number_t n;
    const char *why;
    ck_assert_int_eq(card_number_parse(text, &n, &why), 0);
    return card_decide(&n);
}

START_TEST(sandbox_cards)
{
    ck_assert_int_eq(decide("4242 4242 4242 4242"), CARD_APPROVED);
    ck_assert_int_eq(decide("4000 0000 0000 0002"), CARD_DECLINED);
    ck_assert_int_eq(decide("4000000000009995"), CARD_INSUFFICIENT_FUNDS);
    ck_assert_int_eq(decide("5555 5555 5555 4444"), CARD_APPROVED);
    ck_assert_int_eq(decide("378282246310005"), CARD_APPROVED);
    ck_assert_ptr_null(card_decision_reason(CARD_APPROVED));
    ck_assert_str_eq(card_decision_reason(CARD_DECLINED), "card_declined");
    ck_assert_str_eq(card_decision_reason(CARD_INSUFFICIENT_FUNDS), "insufficient_funds");
}
END_TEST

START_TEST(auto_pay)
{
    char id[64];
    int declined = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "booking-%d", i);
        ck_assert_int_eq(card_auto_pay_declines(id, 0), 0);
        ck_assert_int_eq(card_auto_pay_declines(id, 100), 1);
        int d = card_auto_pay_declines(id, 30);
        /* Deterministic: the same id always decides the same way. */
        ck_assert_int_eq(card_auto_pay_declines(id, 30), d);
        /* Monotone: declined at 30 % means declined at any higher share. */
        if (d) ck_assert_int_eq(card_auto_pay_declines(id, 31), 1);
        declined += d;
    }
    /* Roughly the asked share. */
    ck_assert_int_ge(declined, 240);
    ck_assert_int_le(declined, 360);
    ck_assert_int_eq(card_auto_pay_declines("x", -5), 0);
    ck_assert_int_eq(card_auto_pay_declines("x", 500), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("payment");
    TCase *tc = tcase_create("card");
    tcase_add_test(tc, luhn_vectors);
    tcase_add_test(tc, number_parse);
    tcase_add_test(tc, expiry);
    tcase_add_test(tc, cvc);
    tcase_add_test(tc, sandbox_cards);
    tcase_add_test(tc, auto_pay);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
