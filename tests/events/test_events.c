/*
 * test_events.c - unit tests (check) of libevents' messaging parts that need
 * no broker: the outbox table and ev_outbox_add, the inbox, the DLQ value,
 * backoff, topic names and the per-type counters.  An in-memory SQLite
 * database stands in for a service's file.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "consumer.h"
#include "envelope.h"
#include "evstats.h"
#include "outbox.h"
#include "sto.h"

static const sto_migration_t migrations[] = {
    {1, "outbox", EV_OUTBOX_MIGRATION_SQL},
    {2, "processed_events", EV_INBOX_MIGRATION_SQL},
};

static sqlite3 *db;

static void setup(void)
{
    char err[256];
    ck_assert_msg(sto_open(":memory:", migrations, 2, &db, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
    sto_close(db);
    db = NULL;
}

static int64_t count_rows(void)
{
    int64_t n = -1;
    ck_assert_int_eq(sto_query_i64(db, &n, "SELECT count(*) FROM outbox", ""), 1);
    return n;
}

START_TEST(outbox_needs_a_transaction)
{
    char err[256] = "";
    ck_assert_int_eq(ev_outbox_add(db, "t", "k", "{}", NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not inside a transaction"));
    ck_assert_int_eq(count_rows(), 0);
}
END_TEST

START_TEST(outbox_rows_follow_the_transaction)
{
    char err[256] = "";
    int64_t id1 = 0, id2 = 0;
    ck_assert_int_eq(sto_begin(db), 0);
    ck_assert_int_eq(ev_outbox_add(db, "booking", "b-1", "{\"id\":\"1\"}", &id1, err, sizeof err), 0);
    ck_assert_int_eq(ev_outbox_add(db, "booking", NULL, "{\"id\":\"2\"}", &id2, err, sizeof err), 0);
    ck_assert_int_gt(id2, id1);
    ck_assert_int_eq(sto_rollback(db), 0);
    ck_assert_int_eq(count_rows(), 0); /* rolled back with the caller's transaction */

    ck_assert_int_eq(sto_begin(db), 0);
    ck_assert_int_eq(ev_outbox_add(db, "booking", "b-1", "{\"id\":\"3\"}", &id1, err, sizeof err), 0);
    ck_assert_int_eq(sto_commit(db), 0);
    ck_assert_int_eq(count_rows(), 1);
    char *key = NULL;
    ck_assert_int_eq(sto_query_text(db, &key, "SELECT key FROM outbox WHERE id = ?", "I", id1), 1);
    ck_assert_str_eq(key, "b-1");
    free(key);
    int64_t created = 0;
    ck_assert_int_eq(sto_query_i64(db, &created, "SELECT created_at FROM outbox WHERE id = ?", "I", id1), 1);
    ck_assert_int_gt(created, 1600000000000LL);
}
END_TEST

/* The relay's cursor relies on ids never being reused, even when the table
 * was emptied by deliveries. */
START_TEST(outbox_ids_are_never_reused)
{
    char err[256];
    int64_t a = 0, b = 0;
    ck_assert_int_eq(sto_begin(db), 0);
    ck_assert_int_eq(ev_outbox_add(db, "t", NULL, "x", &a, err, sizeof err), 0);
    ck_assert_int_eq(sto_commit(db), 0);
    ck_assert_int_eq(sto_exec(db, "DELETE FROM outbox", ""), 1);
    ck_assert_int_eq(sto_begin(db), 0);
    ck_assert_int_eq(ev_outbox_add(db, "t", NULL, "y", &b, err, sizeof err), 0);
    ck_assert_int_eq(sto_commit(db), 0);
    ck_assert_int_gt(b, a);
}
END_TEST

START_TEST(outbox_refuses_what_the_broker_would)
{
    char err[256];
    ck_assert_int_eq(sto_begin(db), 0);
    ck_assert_int_eq(ev_outbox_add(db, "bad topic", NULL, "x", NULL, err, sizeof err), -1);
    ck_assert_int_eq(ev_outbox_add(db, "", NULL, "x", NULL, err, sizeof err), -1);
    ck_assert_int_eq(ev_outbox_add(db, NULL, NULL, "x", NULL, err, sizeof err), -1);
    ck_assert_int_eq(ev_outbox_add(db, "t", NULL, "", NULL, err, sizeof err), -1);
    ck_assert_int_eq(ev_outbox_add(db, "t", NULL, NULL, NULL, err, sizeof err), -1);
    char *big = malloc(EV_OUTBOX_MAX_VALUE + 2);
    memset(big, 'x', EV_OUTBOX_MAX_VALUE + 1);
    big[EV_OUTBOX_MAX_VALUE + 1] = '\0';
    ck_assert_int_eq(ev_outbox_add(db, "t", NULL, big, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "over the limit"));
    big[EV_OUTBOX_MAX_VALUE] = '\0';
    ck_assert_int_eq(ev_outbox_add(db, "t", NULL, big, NULL, err, sizeof err), 0);
    free(big);
    ck_assert_int_eq(sto_commit(db), 0);
    ck_assert_int_eq(count_rows(), 1);
}
END_TEST

START_TEST(topic_names)
{
    ck_assert(ev_topic_name_valid("payment.1"));
    ck_assert(ev_topic_name_valid("kv.expired.dlq"));
    ck_assert(ev_topic_name_valid("A_b-9"));
    ck_assert(!ev_topic_name_valid("."));
    ck_assert(!ev_topic_name_valid(".."));
    ck_assert(!ev_topic_name_valid("a/b"));
    ck_assert(!ev_topic_name_valid("é"));
    char long_name[300];
    memset(long_name, 'a', 249);
    long_name[249] = '\0';
    ck_assert(ev_topic_name_valid(long_name));
    long_name[249] = 'a';
    long_name[250] = '\0';
    ck_assert(!ev_topic_name_valid(long_name));
}
END_TEST

START_TEST(outbox_add_event_uses_the_schema)
{
    char err[256] = "";
    cJSON *data = ev_obj();
    ev_set_str(data, "userId", "u-7");
    ev_set_str(data, "email", "a@b.c");
    ev_set_str(data, "role", "USER");
    ev_event_t *ev = ev_new("user.registered", "auth", NULL, NULL, data, err, sizeof err);
    ck_assert_msg(ev != NULL, "%s", err);
    ck_assert_int_eq(sto_begin(db), 0);
    ck_assert_int_eq(ev_outbox_add_event(db, ev, err, sizeof err), 0);
    ck_assert_int_eq(sto_commit(db), 0);
    sqlite3_stmt *st = sto_query(db, "SELECT topic, key, value FROM outbox", "");
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "users");
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 1), "u-7");
    ev_event_t *back = NULL;
    const char *v = (const char *)sqlite3_column_text(st, 2);
    ck_assert_int_eq(ev_parse(v, strlen(v), &back, err, sizeof err), 0);
    ck_assert_str_eq(back->id, ev->id);
    ev_free(back);
    sto_done(st);
    ev_free(ev);
}
END_TEST

START_TEST(backoff)
{
    ck_assert_int_eq(ev_backoff_ms(1, 200, 10000), 200);
    ck_assert_int_eq(ev_backoff_ms(2, 200, 10000), 400);
    ck_assert_int_eq(ev_backoff_ms(3, 200, 10000), 800);
    ck_assert_int_eq(ev_backoff_ms(6, 200, 10000), 6400);
    ck_assert_int_eq(ev_backoff_ms(7, 200, 10000), 10000);
    ck_assert_int_eq(ev_backoff_ms(1000, 200, 10000), 10000);
    ck_assert_int_eq(ev_backoff_ms(0, 200, 10000), 200);
    ck_assert_int_eq(ev_backoff_ms(1, 0, 50), 1);
}
END_TEST

START_TEST(inbox_marks_once)
{
    char err[256];
    ck_assert_int_eq(sto_begin(db), 0);
    ck_assert_int_eq(ev_inbox_mark(db, "booking", "e-1", NULL, err, sizeof err), 1);
    ck_assert_int_eq(ev_inbox_mark(db, "booking", "e-1", NULL, err, sizeof err), 0);
    ck_assert_int_eq(ev_inbox_mark(db, "catalog", "e-1", NULL, err, sizeof err), 1); /* per consumer */
    ck_assert_int_eq(ev_inbox_mark(db, "booking", "t/0/5", "dlq", err, sizeof err), 1);
    ck_assert_int_eq(sto_commit(db), 0);
    char *outcome = NULL;
    ck_assert_int_eq(sto_query_text(db, &outcome, "SELECT outcome FROM processed_events WHERE event_id = ?", "t",
                                    "t/0/5"),
                     1);
    ck_assert_str_eq(outcome, "dlq");
    free(outcome);
    /* A rolled-back mark is gone: the event will be processed again. */
    ck_assert_int_eq(sto_begin(db), 0);
    ck_assert_int_eq(ev_inbox_mark(db, "booking", "e-2", NULL, err, sizeof err), 1);
    ck_assert_int_eq(sto_rollback(db), 0);
    ck_assert_int_eq(sto_begin(db), 0);
    ck_assert_int_eq(ev_inbox_mark(db, "booking", "e-2", NULL, err, sizeof err), 1);
    ck_assert_int_eq(sto_commit(db), 0);
}
END_TEST

START_TEST(position_ids)
{
    ev_record_t rec = {.topic = "payment.1", .partition = 3, .offset = 1234567890123LL};
    char id[EV_POSITION_ID_MAX];
    ev_position_id(&rec, id, sizeof id);
    ck_assert_str_eq(id, "payment.1/3/1234567890123");
}
END_TEST

START_TEST(dlq_value_text)
{
    ev_record_t rec = {.topic = "users", .partition = 2, .offset = 17, .timestamp_ms = 1764088656123LL,
                       .key = "u-1", .key_len = 3, .value = "{\"not\": \"an envelope\"}", .value_len = 22};
    char *s = ev_dlq_value(&rec, "user", 5, "boom: \"quoted\"", "e-9", "user.registered");
    cJSON *o = cJSON_Parse(s);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "error")->valuestring, "boom: \"quoted\"");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "consumer")->valuestring, "user");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "topic")->valuestring, "users");
    ck_assert_int_eq(cJSON_GetObjectItem(o, "partition")->valueint, 2);
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(o, "offset")->valuedouble, 17);
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(o, "timestamp")->valuedouble, 1764088656123LL);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "key")->valuestring, "u-1");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "value")->valuestring, "{\"not\": \"an envelope\"}");
    ck_assert_int_eq(cJSON_GetObjectItem(o, "attempts")->valueint, 5);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "eventId")->valuestring, "e-9");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "eventType")->valuestring, "user.registered");
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(o, "time")));
    cJSON_Delete(o);
    free(s);
}
END_TEST

START_TEST(dlq_value_binary_and_null)
{
    static const unsigned char bin[] = {0xff, 0x00, 'a', 0xc3};
    ev_record_t rec = {.topic = "t", .partition = 0, .offset = 0, .timestamp_ms = -1,
                       .key = NULL, .value = bin, .value_len = sizeof bin};
    char *s = ev_dlq_value(&rec, "c", 0, "envelope: malformed JSON at byte 0", NULL, NULL);
    cJSON *o = cJSON_Parse(s);
    ck_assert_ptr_nonnull(o);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "key")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "timestamp")));
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "value"));
    ck_assert_str_eq(cJSON_GetObjectItem(o, "valueBase64")->valuestring, "/wBhww==");
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "eventId"));
    ck_assert_int_eq(cJSON_GetObjectItem(o, "attempts")->valueint, 0);
    cJSON_Delete(o);
    free(s);

    rec.value = NULL;
    rec.value_len = 0;
    rec.key = "\xe2\x82\xac";  /* valid UTF-8 (the euro sign) stays text */
    rec.key_len = 3;
    s = ev_dlq_value(&rec, "c", 0, "", NULL, NULL);
    o = cJSON_Parse(s);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "value")));
    ck_assert_str_eq(cJSON_GetObjectItem(o, "key")->valuestring, "\xe2\x82\xac");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "error")->valuestring, "unknown error");
    cJSON_Delete(o);
    free(s);

    rec.key = "\xed\xa0\x80"; /* a UTF-16 surrogate is not UTF-8 */
    rec.key_len = 3;
    s = ev_dlq_value(&rec, "c", 0, "x", NULL, NULL);
    o = cJSON_Parse(s);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "keyBase64")->valuestring, "7aCA");
    cJSON_Delete(o);
    free(s);
}
END_TEST

/* With no broker listening, rows wait: the relay runs on a loop for a
 * while, deletes nothing, and its drain reports them as left over. */
static void stop_loop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

START_TEST(relay_without_broker_keeps_rows)
{
    char err[256] = "";
    ck_assert_int_eq(sto_begin(db), 0);
    for (int i = 0; i < 10; i++) ck_assert_int_eq(ev_outbox_add(db, "t", "k", "{\"type\":\"x\"}", NULL, err, sizeof err), 0);
    ck_assert_int_eq(sto_commit(db), 0);
    struct event_base *base = event_base_new();
    ev_relay_conf_t conf = {.brokers = "127.0.0.1:1", .client_id = "test", .scan_interval_ms = 50};
    ev_relay_t *r = ev_relay_new(base, db, &conf, err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    struct timeval tv = {0, 500000};
    event_base_once(base, -1, EV_TIMEOUT, stop_loop, base, &tv);
    event_base_dispatch(base);
    ev_relay_info_t info;
    ev_relay_info(r, &info);
    ck_assert_int_eq(info.depth, 10);
    ck_assert_int_eq(info.in_flight, 10); /* handed to librdkafka, waiting */
    ck_assert_int_eq(info.delivered, 0);
    ck_assert_int_eq(info.broker_up, 0);
    ck_assert_int_eq(ev_relay_pending(r), 10);
    ck_assert_int_eq(ev_relay_drain(r, 200), 10);
    ev_relay_info(r, &info);
    ck_assert_int_eq(info.in_flight, 0); /* purged; the rows stay */
    ck_assert_int_eq(count_rows(), 10);
    ev_relay_free(r);
    ck_assert_ptr_null(ev_relay_new(base, db, &(ev_relay_conf_t){.brokers = NULL}, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "no brokers"));
    event_base_free(base);
}
END_TEST

static void sum_stats(void *opaque, const ev_type_stats_t *st)
{
    uint64_t *sum = opaque;
    sum[0]++;
    sum[1] += st->consumed;
    if (!strcmp(st->type, EV_STATS_OTHER)) sum[2] = st->consumed;
}

START_TEST(stats_table)
{
    ev_stats_t s;
    ev_stats_init(&s);
    ev_stats_get(&s, "a")->consumed += 2;
    ev_stats_get(&s, "a")->consumed += 1;
    ck_assert_ptr_eq(ev_stats_get(&s, NULL), ev_stats_get(&s, EV_STATS_NO_TYPE));
    char name[32];
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof name, "t%d", i);
        ev_stats_get(&s, name)->consumed++;
    }
    uint64_t sum[3] = {0, 0, 0};
    ev_stats_foreach(&s, sum_stats, sum);
    ck_assert_int_eq(sum[0], EV_STATS_MAX_TYPES + 1); /* capped, plus "other" */
    ck_assert_int_eq(sum[1], 403);
    ck_assert_int_gt(sum[2], 0);
    ev_stats_release(&s);
}
END_TEST

START_TEST(outcome_names)
{
    ck_assert_str_eq(ev_outcome_name(EV_OUTCOME_APPLIED), "applied");
    ck_assert_str_eq(ev_outcome_name(EV_OUTCOME_DUPLICATE), "duplicate");
    ck_assert_str_eq(ev_outcome_name(EV_OUTCOME_SKIPPED), "skipped");
    ck_assert_str_eq(ev_outcome_name(EV_OUTCOME_RETRY), "retry");
    ck_assert_str_eq(ev_outcome_name(EV_OUTCOME_DLQ), "dlq");
}
END_TEST

static Suite *events_suite(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("outbox");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, outbox_needs_a_transaction);
    tcase_add_test(tc, outbox_rows_follow_the_transaction);
    tcase_add_test(tc, outbox_ids_are_never_reused);
    tcase_add_test(tc, outbox_refuses_what_the_broker_would);
    tcase_add_test(tc, outbox_add_event_uses_the_schema);
    tcase_add_test(tc, inbox_marks_once);
    tcase_add_test(tc, relay_without_broker_keeps_rows);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    tc = tcase_create("pure");
    tcase_add_test(tc, topic_names);
    tcase_add_test(tc, backoff);
    tcase_add_test(tc, position_ids);
    tcase_add_test(tc, dlq_value_text);
    tcase_add_test(tc, dlq_value_binary_and_null);
    tcase_add_test(tc, stats_table);
    tcase_add_test(tc, outcome_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(events_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
