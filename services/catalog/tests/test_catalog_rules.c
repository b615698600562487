/*
 * test_catalog_rules.c - the catalog's pure rules: currencies, titles,
 * event and query dates, and the list query built from fixed fragments.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_rules.h"

START_TEST(currency)
{
    const char *good[] = {"EUR", "USD", "GBP", "JPY", "CHF", "AED", "ZWG", "XOF", "UAH", "KZT"};
    const char *bad[] = {"", "EU", "EURO", "eur", "Eur", "XXX", "XTS", "XAU", "ABC", "US1", "US "};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(cat_currency_valid(good[i]), "%s should be valid", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!cat_currency_valid(bad[i]), "\"%s\" should be invalid", bad[i]);
    ck_assert(!cat_currency_valid(NULL));
}
END_TEST

START_TEST(title)
{
    ck_assert_ptr_null(cat_title_problem("Intro to C"));
    ck_assert_ptr_null(cat_title_problem("Über Kurs"));
    ck_assert_ptr_nonnull(cat_title_problem(" Intro to C"));
    ck_assert_ptr_nonnull(cat_title_problem("Intro to C "));
    ck_assert_ptr_nonnull(cat_title_problem("Intro\tto C"));
    ck_assert_ptr_nonnull(cat_title_problem("Intro\nto C"));
    ck_assert_ptr_nonnull(cat_title_problem(""));
}
END_TEST

START_TEST(event_time)
{
    const int64_t now = INT64_C(1767225600000); /* 2026-01-01T00:00:00Z */
    int64_t ms = 0;
    const char *why = NULL;
    ck_assert_int_eq(cat_event_time_parse("2026-01-01T00:00:00.001Z", now, &ms, &why), 0);
    ck_assert_int_eq(ms, now + 1);
    ck_assert_int_eq(cat_event_time_parse("2026-01-01T02:00:00+01:00", now, &ms, &why), 0);
    ck_assert_int_eq(ms, now + 3600000);
    /* now itself and the past are refused */
    ck_assert_int_eq(cat_event_time_parse("2026-01-01T00:00:00Z", now, &ms, &why), -1);
    ck_assert_str_eq(why, "must be in the future");
    ck_assert_int_eq(cat_event_time_parse("2025-12-31T23:59:59Z", now, &ms, &why), -1);
    /* malformed: no zone, date only, garbage, impossible dates */
    const char *bad[] = {
        "2027-01-01T00:00:00",  "2027-01-01",           "tomorrow", "2027-02-30T00:00:00Z",
        "2027-13-01T00:00:00Z", "2027-01-01 00:00:00Z", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        ck_assert_msg(cat_event_time_parse(bad[i], now, &ms, &why) == -1, "%s accepted", bad[i]);
        ck_assert_ptr_nonnull(why);
        ck_assert_str_ne(why, "must be in the future");
    }
}
END_TEST

START_TEST(query_date)
{
    int64_t ms = 0;
    ck_assert_int_eq(cat_query_date_parse("2026-01-01", 0, &ms), 0);
    ck_assert_int_eq(ms, INT64_C(1767225600000));
    ck_assert_int_eq(cat_query_date_parse("2026-01-01", 1, &ms), 0);
    ck_assert_int_eq(ms, INT64_C(1767225600000) + 86400000 - 1);
    ck_assert_int_eq(cat_query_date_parse("1970-01-01", 0, &ms), 0);
    ck_assert_int_eq(ms, 0);
    ck_assert_int_eq(cat_query_date_parse("2024-02-29", 0, &ms), 0);
    ck_assert_int_eq(cat_query_date_parse("2026-01-01T10:00:00Z", 1, &ms), 0);
    ck_assert_int_eq(ms, INT64_C(1767225600000) + 36000000);
    ck_assert_int_eq(cat_query_date_parse("2025-02-29", 0, &ms), -1);
    ck_assert_int_eq(cat_query_date_parse("2026-1-01", 0, &ms), -1);
    ck_assert_int_eq(cat_query_date_parse("2026/01/01", 0, &ms), -1);
    ck_assert_int_eq(cat_query_date_parse("yesterday", 0, &ms), -1);
    ck_assert_int_eq(cat_query_date_parse("", 0, &ms), -1);
}
END_TEST

static char *where_of(const cat_filter_t *f, int64_t *binds, int *n)
{
    sk_buf_t b = SK_BUF_INIT;
    sk_buf_init(&b, 64);
    *n = cat_filter_where(f, &b, binds);
    return sk_buf_detach(&b, NULL);
}

START_TEST(where_none)
{
    cat_filter_t f;
    int64_t binds[CAT_FILTER_MAX_BINDS];
    int n;
    memset(&f, 0, sizeof f);
    f.status = CAT_STATUS_ANY;
    char *w = where_of(&f, binds, &n);
    ck_assert_int_eq(n, 0);
    ck_assert_str_eq(w, "");
    free(w);
}
END_TEST

START_TEST(where_all)
{
    cat_filter_t f;
    int64_t binds[CAT_FILTER_MAX_BINDS];
    int n;
    memset(&f, 0, sizeof f);
    f.has_price_from = f.has_price_to = f.has_date_from = f.has_date_to = 1;
    f.price_from = 100;
    f.price_to = 200;
    f.date_from = 300;
    f.date_to = 400;
    f.status = CAT_STATUS_DEACTIVATED;
    char *w = where_of(&f, binds, &n);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(w, " WHERE c.price >= ? AND c.price <= ? AND c.event_ms >= ? AND "
                        "c.event_ms <= ? AND c.status = 'DEACTIVATED'");
    ck_assert_int_eq(binds[0], 100);
    ck_assert_int_eq(binds[1], 200);
    ck_assert_int_eq(binds[2], 300);
    ck_assert_int_eq(binds[3], 400);
    free(w);
}
END_TEST

START_TEST(where_partial)
{
    cat_filter_t f;
    int64_t binds[CAT_FILTER_MAX_BINDS];
    int n;
    memset(&f, 0, sizeof f);
    f.has_price_to = 1;
    f.price_to = 5;
    f.has_date_from = 1;
    f.date_from = 7;
    f.status = CAT_STATUS_SOLD_OUT;
    char *w = where_of(&f, binds, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(binds[0], 5);
    ck_assert_int_eq(binds[1], 7);
    ck_assert_ptr_nonnull(strstr(w, " WHERE c.price <= ? AND c.event_ms >= ? AND "));
    ck_assert_ptr_nonnull(strstr(w, "c.status = 'ACTIVE' AND NOT EXISTS"));
    free(w);

    memset(&f, 0, sizeof f);
    f.status = CAT_STATUS_ACTIVE;
    w = where_of(&f, binds, &n);
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_nonnull(strstr(w, " WHERE c.status = 'ACTIVE' AND EXISTS"));
    free(w);
}
END_TEST

START_TEST(order_by)
{
    ck_assert_str_eq(cat_order_by(CAT_SORT_DATE, 0), " ORDER BY c.event_ms ASC, c.id ASC");
    ck_assert_str_eq(cat_order_by(CAT_SORT_CREATED, 1), " ORDER BY c.created_ms DESC, c.id DESC");
    ck_assert_str_eq(cat_order_by(CAT_SORT_PRICE, 0), " ORDER BY c.price ASC, c.id ASC");
    ck_assert_str_eq(cat_order_by(99, 1), " ORDER BY c.event_ms DESC, c.id DESC");
    ck_assert_str_eq(cat_sort_fields[CAT_SORT_PRICE], "price");
    ck_assert_str_eq(cat_status_names[CAT_STATUS_SOLD_OUT], "SOLD_OUT");
    ck_assert_ptr_null(cat_status_names[CAT_STATUS_ANY]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("catalog");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, currency);
    tcase_add_test(tc, title);
    tcase_add_test(tc, event_time);
    tcase_add_test(tc, query_date);
    tcase_add_test(tc, where_none);
    tcase_add_test(tc, where_all);
    tcase_add_test(tc, where_partial);
    tcase_add_test(tc, order_by);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
