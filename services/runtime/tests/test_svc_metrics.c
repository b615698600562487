/*
 * test_svc_metrics.c - the metrics registry and its Prometheus text.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "svc_internal.h"

static svc_metrics_t *m;
static sk_buf_t out;

static void setup(void)
{
    m = svc_metrics_new();
    sk_buf_init(&out, 1024);
}

static void teardown(void)
{
    svc_metrics_free(m);
    sk_buf_release(&out);
}

static const char *render(void)
{
    sk_buf_reset(&out);
    svc_metrics_render(m, &out);
    return out.data;
}

#define HAS(text)                                                                                  \
    ck_assert_msg(strstr(render(), text) != NULL, "missing <%s> in:\n%s", text, out.data)
#define LACKS(text)                                                                                \
    ck_assert_msg(strstr(render(), text) == NULL, "unexpected <%s> in:\n%s", text, out.data)

START_TEST(counters_and_gauges)
{
    const char *const confirmed[] = {"type", "booking.confirmed", NULL};
    const char *const failed[] = {"type", "booking.failed", NULL};
    svc_metrics_update(m, SVC_METRIC_COUNTER, "events_consumed_total", confirmed, 1);
    svc_metrics_update(m, SVC_METRIC_COUNTER, "events_consumed_total", confirmed, 2);
    svc_metrics_update(m, SVC_METRIC_COUNTER, "events_consumed_total", failed, 1);
    svc_metrics_update(m, SVC_METRIC_COUNTER, "events_consumed_total", failed,
                       -5); /* counters never go down */
    svc_metrics_set_help(m, "events_consumed_total", "events handled\nby type");
    svc_metrics_update(m, SVC_METRIC_GAUGE, "outbox_depth", NULL, 7);
    svc_metrics_update(m, SVC_METRIC_GAUGE, "outbox_depth", NULL, 3);
    HAS("# HELP events_consumed_total events handled\\nby type\n"
        "# TYPE events_consumed_total counter\n"
        "events_consumed_total{type=\"booking.confirmed\"} 3\n"
        "events_consumed_total{type=\"booking.failed\"} 1\n");
    HAS("# TYPE outbox_depth gauge\noutbox_depth 3\n");
    /* A total kept elsewhere. */
    const char *const dlq[] = {"type", "ticket.reserve", NULL};
    svc_metrics_counter_set(m, "events_dlq_total", dlq, 4);
    svc_metrics_counter_set(m, "events_dlq_total", dlq, 6);
    HAS("# TYPE events_dlq_total counter\nevents_dlq_total{type=\"ticket.reserve\"} 6\n");
    svc_metrics_counter_set(m, "outbox_depth", NULL, 1); /* a gauge: ignored */
    HAS("outbox_depth 3\n");
    /* Families are sorted by name. */
    ck_assert(strstr(render(), "events_consumed_total") < strstr(out.data, "outbox_depth"));
}
END_TEST

START_TEST(histogram)
{
    const char *const l[] = {"route", "/x/{id}", "method", "GET", NULL};
    svc_metrics_update(m, SVC_METRIC_HISTOGRAM, "http_request_duration_seconds", l, 0.003);
    svc_metrics_update(m, SVC_METRIC_HISTOGRAM, "http_request_duration_seconds", l, 0.2);
    svc_metrics_update(m, SVC_METRIC_HISTOGRAM, "http_request_duration_seconds", l, 42);
    HAS("# TYPE http_request_duration_seconds histogram\n");
    HAS("http_request_duration_seconds_bucket{route=\"/x/{id}\",method=\"GET\",le=\"0.005\"} 1\n");
    HAS("http_request_duration_seconds_bucket{route=\"/x/{id}\",method=\"GET\",le=\"0.1\"} 1\n");
    HAS("http_request_duration_seconds_bucket{route=\"/x/{id}\",method=\"GET\",le=\"0.25\"} 2\n");
    HAS("http_request_duration_seconds_bucket{route=\"/x/{id}\",method=\"GET\",le=\"10\"} 2\n");
    HAS("http_request_duration_seconds_bucket{route=\"/x/{id}\",method=\"GET\",le=\"+Inf\"} 3\n");
    HAS("http_request_duration_seconds_sum{route=\"/x/{id}\",method=\"GET\"} 42.203\n");
    HAS("http_request_duration_seconds_count{route=\"/x/{id}\",method=\"GET\"} 3\n");
    /* Without labels. */
    svc_metrics_update(m, SVC_METRIC_HISTOGRAM, "relay_seconds", NULL, 1);
    HAS("relay_seconds_bucket{le=\"1\"} 1\n");
    HAS("relay_seconds_sum 1\nrelay_seconds_count 1\n");
}
END_TEST

START_TEST(escaping_and_rejects)
{
    const char *const l[] = {"type", "a\"b\\c\nd", NULL};
    svc_metrics_update(m, SVC_METRIC_COUNTER, "odd_total", l, 1);
    HAS("odd_total{type=\"a\\\"b\\\\c\\nd\"} 1\n");

    /* Malformed names and label lists are ignored. */
    const char *const bad_label[] = {"1type", "x", NULL};
    const char *const odd_list[] = {"type", NULL};
    const char *const le[] = {"le", "1", NULL};
    svc_metrics_update(m, SVC_METRIC_COUNTER, "9lives", NULL, 1);
    svc_metrics_update(m, SVC_METRIC_COUNTER, "bad-name", NULL, 1);
    svc_metrics_update(m, SVC_METRIC_COUNTER, "labelled_total", bad_label, 1);
    svc_metrics_update(m, SVC_METRIC_COUNTER, "labelled_total", odd_list, 1);
    svc_metrics_update(m, SVC_METRIC_COUNTER, "labelled_total", le, 1);
    LACKS("9lives");
    LACKS("bad-name");
    LACKS("labelled_total{");

    /* A family keeps its first type. */
    svc_metrics_update(m, SVC_METRIC_GAUGE, "odd_total", NULL, 5);
    LACKS("# TYPE odd_total gauge");
    LACKS("odd_total 5");

    /* Help alone renders nothing until a value exists. */
    svc_metrics_set_help(m, "later_total", "later");
    LACKS("later_total");
    svc_metrics_update(m, SVC_METRIC_COUNTER, "later_total", NULL, 0);
    HAS("# HELP later_total later\n# TYPE later_total counter\nlater_total 0\n");
    /* Colons are allowed in metric names. */
    svc_metrics_update(m, SVC_METRIC_GAUGE, "souk:lag", NULL, 1.5);
    HAS("souk:lag 1.5\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("svc_metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, counters_and_gauges);
    tcase_add_test(tc, histogram);
    tcase_add_test(tc, escaping_and_rejects);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
