/*
 * test_envelope.c - libevents/envelope.h: building events (every envelope
 * field with its JSON type, unique ids, RFC 3339 time), parsing and
 * validating received ones (malformed JSON, non-objects, missing and
 * mistyped fields, unknown types, raw types), the schema table itself, and
 * the data helpers.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "sk_clock.h"
#include "sk_map.h"

static cJSON *reserved_data(void)
{
    cJSON *d = ev_obj();
    ev_set_str(d, "bookingId", "b-1");
    ev_set_str(d, "ticketId", "t-1");
    ev_set_i64(d, "price", 2500);
    ev_set_str(d, "currency", "EUR");
    return d;
}

/* Asserts that err contains want. */
#define ck_err_has(err, want)                                                                      \
    ck_assert_msg(strstr((err), (want)) != NULL, "error \"%s\" lacks \"%s\"", (err), (want))

START_TEST(test_build_fields)
{
    char err[256] = "";
    int64_t before = sk_wall_ms();
    ev_event_t *ev =
        ev_new("ticket.reserved", "catalog", "b-1", "cause-1", reserved_data(), err, sizeof err);
    int64_t after = sk_wall_ms();
    ck_assert_msg(ev != NULL, "ev_new: %s", err);

    /* The JSON, decoded independently with cJSON. */
    size_t len = 0;
    char *json = ev_to_json(ev, &len);
    ck_assert_uint_eq(len, strlen(json));
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cJSON_GetArraySize(root), 8);

    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    ck_assert(cJSON_IsString(id));
    ck_assert_uint_eq(strlen(id->valuestring), 36);
    ck_assert_int_eq(id->valuestring[14], '4'); /* uuid version 4 */
    ck_assert_ptr_nonnull(strchr("89ab", id->valuestring[19]));
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "type")->valuestring,
                     "ticket.reserved");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    ck_assert(cJSON_IsNumber(ver));
    ck_assert_int_eq(ver->valueint, 1);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "source")->valuestring, "catalog");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "correlationId")->valuestring, "b-1");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "causationId")->valuestring, "cause-1");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    ck_assert(cJSON_IsObject(data));
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(data, "price")->valuedouble, 2500);

    /* Time: "YYYY-MM-DDTHH:MM:SS.mmmZ", UTC, now. */
    const char *t = cJSON_GetObjectItemCaseSensitive(root, "time")->valuestring;
    ck_assert_uint_eq(strlen(t), 24);
    ck_assert_int_eq(t[10], 'T');
    ck_assert_int_eq(t[19], '.');
    ck_assert_int_eq(t[23], 'Z');
    int64_t ms;
    ck_assert_int_eq(ev_time_parse(t, &ms), 0);
    ck_assert(ms >= before && ms <= after);

    /* The struct view agrees. */
    ck_assert_str_eq(ev->id, id->valuestring);
    ck_assert_str_eq(ev->type, "ticket.reserved");
    ck_assert_int_eq(ev->version, EV_VERSION);
    ck_assert_str_eq(ev->time, t);
    ck_assert(ev->time_ms == ms);
    ck_assert_str_eq(ev->source, "catalog");
    ck_assert_str_eq(ev->correlation_id, "b-1");
    ck_assert_str_eq(ev->causation_id, "cause-1");
    ck_assert_str_eq(ev_str(ev->data, "currency"), "EUR");
    ck_assert_str_eq(ev_topic(ev), "ticket.reservation");
    ck_assert_str_eq(ev_key(ev), "b-1");
    ck_assert_ptr_eq(ev->schema, ev_schema_find("ticket.reserved"));

    cJSON_Delete(root);
    free(json);
    ev_free(ev);
    ev_free(NULL);
}
END_TEST

START_TEST(test_build_defaults_and_caused)
{
    char err[256] = "";
    cJSON *d = ev_obj();
    ev_set_str(d, "userId", "u-1");
    ev_set_str(d, "email", "a@example.com");
    ev_set_str(d, "role", "USER");
    ev_event_t *first = ev_new("user.registered", "auth", NULL, NULL, d, err, sizeof err);
    ck_assert_msg(first != NULL, "%s", err);
    /* No correlation given: the flow starts here. No cause: null. */
    ck_assert_str_eq(first->correlation_id, first->id);
    ck_assert_ptr_null(first->causation_id);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(first->root, "causationId")));

    d = ev_obj();
    ev_set_str(d, "userId", "u-1");
    ev_set_str(d, "email", "a@example.com");
    ev_set_str(d, "fullName", "Ada");
    ev_set_null(d, "phone");
    ev_event_t *next = ev_new_caused(first, "user.created", "user", d, err, sizeof err);
    ck_assert_msg(next != NULL, "%s", err);
    ck_assert_str_eq(next->correlation_id, first->id);
    ck_assert_str_eq(next->causation_id, first->id);
    ck_assert_str_ne(next->id, first->id);
    ck_assert_str_eq(ev_topic(next), "user.created");
    ck_assert_str_eq(ev_key(next), "u-1");
    ev_free(first);
    ev_free(next);
}
END_TEST

START_TEST(test_build_errors)
{
    char err[256];
    cJSON *d;

    /* Unknown type (data is freed anyway: ASan checks the leak). */
    ck_assert_ptr_null(ev_new("ticket.teleported", "x", NULL, NULL, ev_obj(), err, sizeof err));
    ck_err_has(err, "unknown event type \"ticket.teleported\"");
    ck_assert_ptr_null(ev_new(NULL, "x", NULL, NULL, ev_obj(), err, sizeof err));
    ck_err_has(err, "unknown event type");

    /* kv.expired is not an envelope. */
    ck_assert_ptr_null(ev_new("kv.expired", "x", NULL, NULL, ev_obj(), err, sizeof err));
    ck_err_has(err, "not an envelope");

    /* Missing field, wrong type, no source, no data, non-object data. */
    d = reserved_data();
    cJSON_DeleteItemFromObjectCaseSensitive(d, "currency");
    ck_assert_ptr_null(ev_new("ticket.reserved", "catalog", NULL, NULL, d, err, sizeof err));
    ck_assert_str_eq(err, "ticket.reserved: data.currency: missing required string");

    d = reserved_data();
    cJSON_ReplaceItemInObjectCaseSensitive(d, "price", cJSON_CreateString("25.00"));
    ck_assert_ptr_null(ev_new("ticket.reserved", "catalog", NULL, NULL, d, err, sizeof err));
    ck_assert_str_eq(err, "ticket.reserved: data.price: expected integer, got string");

    d = reserved_data();
    cJSON_ReplaceItemInObjectCaseSensitive(d, "price", cJSON_CreateNumber(25.5));
    ck_assert_ptr_null(ev_new("ticket.reserved", "catalog", NULL, NULL, d, err, sizeof err));
    ck_assert_str_eq(err, "ticket.reserved: data.price: expected integer, got number");

    ck_assert_ptr_null(ev_new("ticket.reserved", "", NULL, NULL, reserved_data(), err, sizeof err));
    ck_err_has(err, "source");
    ck_assert_ptr_null(ev_new("ticket.reserved", "catalog", NULL, NULL, NULL, err, sizeof err));
    ck_err_has(err, "no data");
    ck_assert_ptr_null(
        ev_new("ticket.reserved", "catalog", NULL, NULL, cJSON_CreateArray(), err, sizeof err));
    ck_assert_str_eq(err, "ticket.reserved: data: expected object, got array");

    /* err may be NULL. */
    ck_assert_ptr_null(ev_new("nope", "x", NULL, NULL, ev_obj(), NULL, 0));
}
END_TEST

START_TEST(test_ids_unique)
{
    sk_map_t seen;
    sk_map_init(&seen);
    for (int i = 0; i < 2000; i++) {
        ev_event_t *ev = ev_new("ticket.reserved", "catalog", NULL, NULL, reserved_data(), NULL, 0);
        ck_assert_ptr_nonnull(ev);
        ck_assert_ptr_null(sk_map_put(&seen, ev->id, strlen(ev->id), (void *)1));
        ev_free(ev);
    }
    ck_assert_uint_eq(sk_map_count(&seen), 2000);
    sk_map_release(&seen);
}
END_TEST

START_TEST(test_roundtrip)
{
    char err[256] = "";
    ev_event_t *ev =
        ev_new("ticket.reserved", "catalog", "b-1", NULL, reserved_data(), err, sizeof err);
    ck_assert_ptr_nonnull(ev);
    size_t len;
    char *json = ev_to_json(ev, &len);

    /* Not NUL-terminated: parse exactly len bytes of a larger buffer. */
    char *buf = malloc(len + 5);
    memcpy(buf, json, len);
    memcpy(buf + len, "junk", 5);
    ev_event_t *got = NULL;
    ck_assert_msg(ev_parse(buf, len, &got, err, sizeof err) == 0, "ev_parse: %s", err);
    ck_assert_str_eq(got->id, ev->id);
    ck_assert_str_eq(got->type, ev->type);
    ck_assert_str_eq(got->time, ev->time);
    ck_assert(got->time_ms == ev->time_ms);
    ck_assert_str_eq(got->source, "catalog");
    ck_assert_str_eq(got->correlation_id, "b-1");
    ck_assert_ptr_null(got->causation_id);
    int64_t price = 0;
    ck_assert_int_eq(ev_i64(got->data, "price", &price), 0);
    ck_assert_int_eq(price, 2500);
    ck_assert_int_eq(ev_validate(got->type, got->data, err, sizeof err), 0);

    /* A buffer of exactly len bytes, no terminator (ASan sees any over-read). */
    char *exact = malloc(len);
    memcpy(exact, json, len);
    ev_event_t *e2 = NULL;
    ck_assert_int_eq(ev_parse(exact, len, &e2, err, sizeof err), 0);
    ck_assert_str_eq(e2->id, ev->id);
    ev_free(e2);
    ck_assert_int_eq(ev_parse(exact, len - 1, &e2, err, sizeof err), -1); /* cut short */
    ck_err_has(err, "malformed JSON at byte");
    free(exact);

    /* Parsing the whole buffer (with trailing junk) is an error. */
    ev_event_t *bad = (ev_event_t *)1;
    ck_assert_int_eq(ev_parse(buf, len + 4, &bad, err, sizeof err), -1);
    ck_assert_ptr_null(bad);
    ck_err_has(err, "trailing bytes");
    /* Trailing whitespace is fine. */
    char *ws = malloc(len + 3);
    memcpy(ws, json, len);
    memcpy(ws + len, " \n", 3);
    ev_event_t *ok = NULL;
    ck_assert_int_eq(ev_parse(ws, len + 2, &ok, err, sizeof err), 0);
    ev_free(ok);

    free(ws);
    free(buf);
    free(json);
    ev_free(got);
    ev_free(ev);
}
END_TEST

/* A valid received envelope with one substitution. */
#define ENV_HEAD "{\"id\":\"e-1\",\"type\":\"ticket.sell\",\"version\":1,"
#define ENV_TIME "\"time\":\"2026-11-25T16:37:36.123Z\","
#define ENV_SRC "\"source\":\"booking\",\"correlationId\":\"b-1\",\"causationId\":null,"
#define ENV_DATA "\"data\":{\"bookingId\":\"b-1\",\"ticketId\":\"t-1\"}}"

static void parse_fails(const char *json, const char *want)
{
    char err[256] = "";
    ev_event_t *ev = (ev_event_t *)1;
    ck_assert_msg(ev_parse(json, strlen(json), &ev, err, sizeof err) == -1, "accepted: %s", json);
    ck_assert_ptr_null(ev);
    ck_assert_msg(strstr(err, want) != NULL, "for %s: error \"%s\" lacks \"%s\"", json, err, want);
}

START_TEST(test_parse_valid)
{
    const char *json = ENV_HEAD ENV_TIME ENV_SRC ENV_DATA;
    char err[256] = "";
    ev_event_t *ev = NULL;
    ck_assert_msg(ev_parse(json, strlen(json), &ev, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(ev->id, "e-1");
    ck_assert(ev->time_ms == INT64_C(1795624656123));
    ck_assert_str_eq(ev_topic(ev), "ticket.success");
    ck_assert_str_eq(ev_key(ev), "b-1");
    ev_free(ev);

    /* Extra fields (envelope and data) are tolerated; an offset time too. */
    json = "{\"id\":\"e-2\",\"type\":\"ticket.release\",\"version\":1,"
           "\"time\":\"2026-11-25T17:37:36+01:00\",\"source\":\"booking\","
           "\"correlationId\":\"b-1\",\"causationId\":\"e-1\",\"trace\":\"x\","
           "\"data\":{\"bookingId\":\"b-1\",\"ticketId\":\"t-1\",\"extra\":[1,2]}}";
    ck_assert_msg(ev_parse(json, strlen(json), &ev, err, sizeof err) == 0, "%s", err);
    ck_assert(ev->time_ms == INT64_C(1795624656000));
    ck_assert_str_eq(ev->causation_id, "e-1");
    ev_free(ev);
}
END_TEST

START_TEST(test_parse_errors)
{
    parse_fails("", "empty");
    parse_fails("{\"id\":", "malformed JSON");
    parse_fails("not json", "malformed JSON at byte 0");
    parse_fails("{\"id\":\"e\",\"type\":tru}", "malformed JSON at byte 17");
    parse_fails("[1,2]", "expected a JSON object, got array");
    parse_fails("\"str\"", "expected a JSON object, got string");

    parse_fails("{\"type\":\"ticket.sell\",\"version\":1," ENV_TIME ENV_SRC ENV_DATA,
                "envelope: id: missing required string");
    parse_fails("{\"id\":7,\"type\":\"ticket.sell\",\"version\":1," ENV_TIME ENV_SRC ENV_DATA,
                "envelope: id: expected string, got integer");
    parse_fails("{\"id\":\"\",\"type\":\"ticket.sell\",\"version\":1," ENV_TIME ENV_SRC ENV_DATA,
                "envelope: id: must be 1 to");
    parse_fails("{\"id\":\"e\",\"type\":\"nope\",\"version\":1," ENV_TIME ENV_SRC ENV_DATA,
                "envelope: type: unknown event type \"nope\"");
    parse_fails("{\"id\":\"e\",\"type\":\"kv.expired\",\"version\":1," ENV_TIME ENV_SRC ENV_DATA,
                "raw record, not an envelope");
    parse_fails("{\"id\":\"e\",\"type\":\"ticket.sell\"," ENV_TIME ENV_SRC ENV_DATA,
                "envelope: version: missing required integer");
    parse_fails(
        "{\"id\":\"e\",\"type\":\"ticket.sell\",\"version\":\"1\"," ENV_TIME ENV_SRC ENV_DATA,
        "envelope: version: expected integer, got string");
    parse_fails("{\"id\":\"e\",\"type\":\"ticket.sell\",\"version\":2," ENV_TIME ENV_SRC ENV_DATA,
                "unsupported version 2");
    parse_fails(ENV_HEAD "\"time\":\"yesterday\"," ENV_SRC ENV_DATA,
                "envelope: time: \"yesterday\" is not an RFC 3339 timestamp");
    parse_fails(ENV_HEAD "\"time\":1764088656123," ENV_SRC ENV_DATA,
                "envelope: time: expected string, got integer");
    parse_fails(ENV_HEAD ENV_TIME "\"correlationId\":\"b\",\"causationId\":null," ENV_DATA,
                "envelope: source: missing required string");
    parse_fails(ENV_HEAD ENV_TIME "\"source\":\"booking\",\"causationId\":null," ENV_DATA,
                "envelope: correlationId: missing required string");
    parse_fails(ENV_HEAD ENV_TIME "\"source\":\"booking\",\"correlationId\":\"b\"," ENV_DATA,
                "envelope: causationId: missing required string-or-null");
    parse_fails(ENV_HEAD ENV_TIME
                "\"source\":\"booking\",\"correlationId\":\"b\",\"causationId\":5," ENV_DATA,
                "envelope: causationId: expected string, got integer");
    parse_fails(ENV_HEAD ENV_TIME ENV_SRC "\"x\":1}", "envelope: data: missing required object");
    parse_fails(ENV_HEAD ENV_TIME ENV_SRC "\"data\":[]}",
                "ticket.sell: data: expected object, got array");
    parse_fails(ENV_HEAD ENV_TIME ENV_SRC "\"data\":\"{}\"}",
                "ticket.sell: data: expected object, got string");
    parse_fails(ENV_HEAD ENV_TIME ENV_SRC "\"data\":{\"bookingId\":\"b-1\"}}",
                "ticket.sell: data.ticketId: missing required string");
    parse_fails(ENV_HEAD ENV_TIME ENV_SRC "\"data\":{\"bookingId\":\"b-1\",\"ticketId\":null}}",
                "ticket.sell: data.ticketId: expected string, got null");

    /* err may be NULL. */
    ev_event_t *ev = NULL;
    ck_assert_int_eq(ev_parse("{}", 2, &ev, NULL, 0), -1);
}
END_TEST

START_TEST(test_validate)
{
    char err[256];
    cJSON *d = cJSON_Parse("{\"bookingId\":\"b\",\"userId\":\"u\",\"catalogId\":\"c\","
                           "\"ticketId\":null}");
    ck_assert_int_eq(ev_validate("ticket.reserve", d, err, sizeof err), 0); /* null = any */
    cJSON_ReplaceItemInObjectCaseSensitive(d, "ticketId", cJSON_CreateString("t"));
    ck_assert_int_eq(ev_validate("ticket.reserve", d, err, sizeof err), 0);
    cJSON_ReplaceItemInObjectCaseSensitive(d, "ticketId", cJSON_CreateNumber(3));
    ck_assert_int_eq(ev_validate("ticket.reserve", d, err, sizeof err), -1);
    ck_assert_str_eq(err, "ticket.reserve: data.ticketId: expected string-or-null, got integer");
    ck_assert_int_eq(ev_validate("no.such", d, err, sizeof err), -1);
    ck_assert_str_eq(err, "unknown event type \"no.such\"");
    ck_assert_int_eq(ev_validate("ticket.reserve", NULL, err, sizeof err), -1);
    ck_assert_str_eq(err, "ticket.reserve: data: expected object, got nothing");
    cJSON_Delete(d);

    /* Optional fields: absent is fine, present must have the type. */
    d = cJSON_Parse("{\"bookingId\":\"b\",\"reason\":\"sold out\"}");
    ck_assert_int_eq(ev_validate("ticket.unavailable", d, err, sizeof err), 0);
    cJSON_AddNumberToObject(d, "catalogId", 1);
    ck_assert_int_eq(ev_validate("ticket.unavailable", d, err, sizeof err), -1);
    ck_assert_str_eq(err,
                     "ticket.unavailable: data.catalogId: expected string-or-null, got integer");
    cJSON_Delete(d);

    /* Array items are checked. */
    d = cJSON_Parse("{\"catalogId\":\"c\",\"authorId\":\"a\",\"title\":\"Intro to C\","
                    "\"price\":1000,\"currency\":\"EUR\",\"dateOfEvent\":\"2027-01-01T10:00:00Z\","
                    "\"numberOfTickets\":2,\"status\":\"ACTIVE\","
                    "\"tickets\":[{\"ticketId\":\"t1\",\"status\":\"AVAILABLE\"},"
                    "{\"ticketId\":\"t2\",\"status\":7}]}");
    ck_assert_int_eq(ev_validate("catalog.created", d, err, sizeof err), -1);
    ck_assert_str_eq(err, "catalog.created: data.tickets[1].status: expected string, got integer");
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(d, "tickets"), 1, cJSON_CreateString("t2"));
    ck_assert_int_eq(ev_validate("catalog.created", d, err, sizeof err), -1);
    ck_assert_str_eq(err, "catalog.created: data.tickets[1]: expected object, got string");
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(d, "tickets"), 1);
    ck_assert_int_eq(ev_validate("catalog.created", d, err, sizeof err), 0);
    cJSON_Delete(d);

    /* Raw kv.expired values validate as values. */
    d = cJSON_Parse(
        "{\"key\":\"hold:b\",\"value\":\"{}\",\"expiredAt\":\"2026-01-01T00:00:00.000Z\"}");
    ck_assert_int_eq(ev_validate("kv.expired", d, err, sizeof err), 0);
    cJSON_DeleteItemFromObject(d, "expiredAt");
    ck_assert_int_eq(ev_validate("kv.expired", d, err, sizeof err), -1);
    ck_assert_str_eq(err, "kv.expired: value.expiredAt: missing required string");
    cJSON_Delete(d);

    /* Integers: exact up to 2^53, not beyond; fractions are not integers. */
    d = cJSON_Parse("{\"bookingId\":\"b\",\"userId\":\"u\",\"amount\":9007199254740992,"
                    "\"currency\":\"EUR\"}");
    ck_assert_int_eq(ev_validate("payment.requested", d, err, sizeof err), 0);
    cJSON_ReplaceItemInObject(d, "amount", cJSON_CreateNumber(1e17));
    ck_assert_int_eq(ev_validate("payment.requested", d, err, sizeof err), -1);
    cJSON_ReplaceItemInObject(d, "amount", cJSON_CreateNumber(-5));
    ck_assert_int_eq(ev_validate("payment.requested", d, err, sizeof err), 0);
    cJSON_Delete(d);
}
END_TEST

START_TEST(test_schema_table)
{
    /* Every type of ARCHITECTURE.md's Topics table, on its topic. */
    static const char *const want[][2] = {
        {"user.registered", "users"},
        {"user.role_changed", "users"},
        {"user.created", "user.created"},
        {"user.updated", "user.created"},
        {"catalog.created", "catalog"},
        {"catalog.updated", "catalog"},
        {"catalog.deactivated", "catalog"},
        {"ticket.reserve", "ticket.reserve"},
        {"ticket.reserved", "ticket.reservation"},
        {"ticket.unavailable", "ticket.reservation"},
        {"payment.requested", "paymentevent"},
        {"refund.requested", "paymentevent"},
        {"payment.succeeded", "payment.1"},
        {"payment.failed", "payment.2"},
        {"payment.refunded", "payment.3"},
        {"ticket.sell", "ticket.success"},
        {"ticket.release", "ticket.fail"},
        {"booking.created", "booking"},
        {"booking.confirmed", "booking"},
        {"booking.failed", "booking"},
        {"booking.expired", "booking"},
        {"booking.cancelled", "booking"},
        {"notification.sent", "notification"},
        {"kv.expired", "kv.expired"},
    };
    size_t n;
    const ev_schema_t *t = ev_schemas(&n);
    ck_assert_uint_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(ev_topic_of(want[i][0]), want[i][1]);
        ck_assert_ptr_eq(ev_schema_find(want[i][0]), &t[i]);
        ck_assert_int_eq(t[i].envelope, strcmp(want[i][0], "kv.expired") != 0);
        /* The key field is a required string of the schema. */
        int found = 0;
        for (const ev_field_t *f = t[i].fields; f->name; f++)
            if (strcmp(f->name, t[i].key) == 0) found = f->required && f->type == EV_T_STRING;
        ck_assert_msg(found, "%s: key %s is not a required string", t[i].type, t[i].key);
        /* No type twice. */
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(t[i].type, t[j].type);
    }
    ck_assert_ptr_null(ev_topic_of("nope"));
    ck_assert_ptr_null(ev_topic_of(NULL));
    ck_assert_ptr_null(ev_schema_find("user"));
    ck_assert_str_eq(ev_jtype_name(EV_T_STRING_OR_NULL), "string-or-null");
    ck_assert_str_eq(ev_jtype_name(EV_T_INTEGER), "integer");
}
END_TEST

/* The calendar under ev_time_parse (common/sk_clock.c). */
START_TEST(test_calendar)
{
    int64_t days;
    ck_assert_int_eq(sk_date_parse("1970-01-01", &days), 0);
    ck_assert_int_eq(days, 0);
    ck_assert_int_eq(sk_date_parse("2000-02-29", &days), 0); /* divisible by 400: leap */
    ck_assert_int_eq(days, 11016);
    ck_assert_int_eq(sk_date_parse("1900-02-29", NULL), -1); /* divisible by 100: not */
    ck_assert_int_eq(sk_date_parse("2024-02-29", NULL), 0);
    ck_assert_int_eq(sk_date_parse("2023-02-29", NULL), -1);
    ck_assert_int_eq(sk_date_parse("2023-04-31", NULL), -1);
    ck_assert_int_eq(sk_date_parse("2023-13-01", NULL), -1);
    ck_assert_int_eq(sk_date_parse("2023-1-01", NULL), -1);
    ck_assert_int_eq(sk_date_parse("2023-01-01T", NULL), -1);
    ck_assert_int_eq(sk_date_parse(NULL, NULL), -1);
    ck_assert_int_eq(sk_date_parse("1969-12-31", &days), 0);
    ck_assert_int_eq(days, -1);
    /* civil_from_days inverts days_from_civil over four centuries */
    for (int64_t z = -146097; z <= 146097; z += 7) {
        int y, m, d;
        sk_civil_from_days(z, &y, &m, &d);
        ck_assert(sk_date_valid(y, m, d));
        ck_assert_int_eq(sk_days_from_civil(y, m, d), z);
    }
}
END_TEST

START_TEST(test_time_parse)
{
    int64_t ms;
    ck_assert_int_eq(ev_time_parse("1970-01-01T00:00:00Z", &ms), 0);
    ck_assert(ms == 0);
    ck_assert_int_eq(ev_time_parse("1970-01-01T00:00:00.5Z", &ms), 0);
    ck_assert(ms == 500);
    ck_assert_int_eq(ev_time_parse("2000-02-29T23:59:59.999999999Z", &ms), 0);
    ck_assert(ms == INT64_C(951868799999));
    ck_assert_int_eq(ev_time_parse("1969-12-31T23:59:59.000Z", &ms), 0);
    ck_assert(ms == -1000);
    ck_assert_int_eq(ev_time_parse("2026-11-25T16:37:36.123-05:30", &ms), 0);
    ck_assert(ms == INT64_C(1795624656123) + (5 * 60 + 30) * 60000);

    /* What sk_rfc3339_ms writes, ev_time_parse reads back. */
    char buf[SK_RFC3339_LEN];
    int64_t now = sk_wall_ms();
    ck_assert_int_eq(ev_time_parse(sk_rfc3339_ms(now, buf), &ms), 0);
    ck_assert(ms == now);

    static const char *const bad[] = {
        "",
        "2026-11-25",
        "2026-11-25T16:37:36",       /* no zone */
        "2026-11-25 16:37:36Z",      /* space */
        "2026-13-25T16:37:36Z",      /* month */
        "2026-02-29T16:37:36Z",      /* not a leap year */
        "2026-04-31T16:37:36Z",      /* day */
        "2026-11-25T24:00:00Z",      /* hour */
        "2026-11-25T16:37:36.Z",     /* empty fraction */
        "2026-11-25T16:37:36.123Zx", /* trailing */
        "2026-11-25T16:37:36+0100",  /* offset without colon */
        "2026-11-25T16:37:36.123+01",
        "+2026-11-25T16:37:36Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(ev_time_parse(bad[i], &ms) == -1, "accepted \"%s\"", bad[i]);
    ck_assert_int_eq(ev_time_parse(NULL, &ms), -1);
}
END_TEST

START_TEST(test_data_helpers)
{
    cJSON *d = ev_obj();
    ev_set_str(d, "s", "x");
    ev_set_str(d, "nul", NULL);
    ev_set_i64(d, "big", INT64_C(4102444800000));
    ev_set_i64(d, "neg", -3);
    ev_set_bool(d, "b", 1);
    ev_set(d, "arr", cJSON_CreateArray());
    ev_set_null(d, "n2");

    ck_assert_str_eq(ev_str(d, "s"), "x");
    ck_assert_ptr_null(ev_str(d, "nul"));
    ck_assert_ptr_null(ev_str(d, "missing"));
    ck_assert_ptr_null(ev_str(d, "big"));
    ck_assert_ptr_null(ev_str(NULL, "s"));
    int64_t v = 0;
    ck_assert_int_eq(ev_i64(d, "big", &v), 0);
    ck_assert(v == INT64_C(4102444800000));
    ck_assert_int_eq(ev_i64(d, "neg", &v), 0);
    ck_assert(v == -3);
    ck_assert_int_eq(ev_i64(d, "s", &v), -1);
    ck_assert_int_eq(ev_i64(d, "missing", &v), -1);
    ck_assert_int_eq(ev_bool(d, "b", 0), 1);
    ck_assert_int_eq(ev_bool(d, "s", 7), 7);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(d, "n2")));

    char *s = cJSON_PrintUnformatted(d);
    ck_assert_str_eq(s, "{\"s\":\"x\",\"nul\":null,\"big\":4102444800000,\"neg\":-3,\"b\":true,"
                        "\"arr\":[],\"n2\":null}");
    free(s);
    cJSON_Delete(d);
}
END_TEST

static Suite *envelope_suite(void)
{
    Suite *s = suite_create("envelope");
    TCase *tc = tcase_create("envelope");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_build_fields);
    tcase_add_test(tc, test_build_defaults_and_caused);
    tcase_add_test(tc, test_build_errors);
    tcase_add_test(tc, test_ids_unique);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_parse_valid);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_schema_table);
    tcase_add_test(tc, test_time_parse);
    tcase_add_test(tc, test_calendar);
    tcase_add_test(tc, test_data_helpers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(envelope_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
