/*
 * test_user_rules.c - souk-user's pure rules: E.164 phone numbers, calendar
 * dates, birth dates in the past, and the registeredFrom/To bounds.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "user_rules.h"

/* 2026-11-25T16:37:36.123Z */
#define NOW_MS INT64_C(1795624656123)

START_TEST(test_phone)
{
    static const char *const good[] = {"+12", "+14155552671", "+441234567890", "+123456789012345"};
    static const char *const bad[] = {"",
                                      "+",
                                      "+1",
                                      "+0123",
                                      "14155552671",
                                      "+1 415",
                                      "+1-415",
                                      "++14155552671",
                                      "+1234567890123456",
                                      "+1a"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(user_phone_valid(good[i]), "%s should be valid", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!user_phone_valid(bad[i]), "%s should be invalid", bad[i]);
    ck_assert(!user_phone_valid(NULL));
}
END_TEST

START_TEST(test_date_parse)
{
    int64_t d;
    ck_assert_int_eq(user_date_parse("1970-01-01", &d), 0);
    ck_assert_int_eq(d, 0);
    ck_assert_int_eq(user_date_parse("2000-02-29", &d), 0);
    ck_assert_int_eq(d, 11016);
    ck_assert_int_eq(user_date_parse("1969-12-31", &d), 0);
    ck_assert_int_eq(d, -1);
    static const char *const bad[] = {"2001-02-29", "1900-02-29", "2026-13-01",
                                      "2026-00-10", "2026-04-31", "2026-1-01",
                                      "26-01-01",   "2026/01/01", "2026-01-01T00:00:00Z",
                                      "",           "0000-01-01", "2026-01-0x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(user_date_parse(bad[i], NULL) < 0, "%s should be invalid", bad[i]);
    ck_assert_int_lt(user_date_parse(NULL, NULL), 0);
}
END_TEST

START_TEST(test_today_and_birth_date)
{
    char today[11];
    ck_assert_str_eq(user_date_today(NOW_MS, today), "2026-11-25");
    ck_assert_str_eq(user_date_today(0, today), "1970-01-01");
    ck_assert_ptr_null(user_birth_date_check("1990-05-17", NOW_MS));
    ck_assert_ptr_null(user_birth_date_check("2026-11-24", NOW_MS));
    ck_assert_ptr_null(user_birth_date_check("1900-01-01", NOW_MS));
    ck_assert_ptr_nonnull(user_birth_date_check("2026-11-25", NOW_MS)); /* today */
    ck_assert_ptr_nonnull(user_birth_date_check("2030-01-01", NOW_MS));
    ck_assert_ptr_nonnull(user_birth_date_check("1899-12-31", NOW_MS));
    ck_assert_ptr_nonnull(user_birth_date_check("1990-02-30", NOW_MS));
    ck_assert_ptr_nonnull(user_birth_date_check("yesterday", NOW_MS));
}
END_TEST

START_TEST(test_time_bound)
{
    int64_t ms;
    ck_assert_int_eq(user_time_bound("1970-01-02", 0, &ms), 0);
    ck_assert_int_eq(ms, 86400000);
    ck_assert_int_eq(user_time_bound("1970-01-02", 1, &ms), 0);
    ck_assert_int_eq(ms, 2 * 86400000);
    ck_assert_int_eq(user_time_bound("2026-11-25T16:37:36.123Z", 0, &ms), 0);
    ck_assert_int_eq(ms, NOW_MS);
    ck_assert_int_eq(user_time_bound("2026-11-25T16:37:36.123Z", 1, &ms), 0);
    ck_assert_int_eq(ms, NOW_MS + 1);
    ck_assert_int_eq(user_time_bound("2026-11-25T17:37:36.123+01:00", 0, &ms), 0);
    ck_assert_int_eq(ms, NOW_MS);
    ck_assert_int_lt(user_time_bound("2026-11-25 16:37:36Z", 0, &ms), 0);
    ck_assert_int_lt(user_time_bound("2026-11-25T16:37:36", 0, &ms), 0);
    ck_assert_int_lt(user_time_bound("yesterday", 0, &ms), 0);
    ck_assert_int_lt(user_time_bound("", 0, &ms), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("user_rules");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, test_phone);
    tcase_add_test(tc, test_date_parse);
    tcase_add_test(tc, test_today_and_birth_date);
    tcase_add_test(tc, test_time_bound);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
