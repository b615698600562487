/*
 * envelope.c - the event envelope, and the one table of event schemas.
 *
 * Building and parsing share one checker (envelope_bind): ev_new() assembles
 * the JSON and then checks it exactly as a consumer will, so a producer can
 * never emit what its consumers would reject.
 */
#include "envelope.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"

/* ---- the schema table ------------------------------------------------- */

/* clang-format off */
#define REQ(n, t) {n, t, 1, NULL}
#define OPT(n, t) {n, t, 0, NULL}
#define END {NULL, 0, 0, NULL}
#define S EV_T_STRING
#define I EV_T_INTEGER
#define SN EV_T_STRING_OR_NULL
#define IN EV_T_INTEGER_OR_NULL

static const ev_field_t f_user_registered[] = {
    REQ("userId", S), REQ("email", S), REQ("role", S),
    OPT("fullName", SN), OPT("phone", SN), OPT("birthDate", SN), END,
};

static const ev_field_t f_user_role_changed[] = {
    REQ("userId", S), REQ("role", S), OPT("previousRole", S), END,
};

static const ev_field_t f_user_profile[] = {
    REQ("userId", S), REQ("email", S), REQ("fullName", S), REQ("phone", SN),
    OPT("bio", SN), OPT("birthDate", SN), OPT("role", S), END,
};

static const ev_field_t f_catalog_ticket[] = {
    REQ("ticketId", S), REQ("status", S), END,
};

static const ev_field_t f_catalog[] = {
    REQ("catalogId", S), REQ("authorId", S), REQ("title", S), OPT("description", SN),
    REQ("price", I), REQ("currency", S), REQ("dateOfEvent", S), REQ("numberOfTickets", I),
    REQ("status", S), {"tickets", EV_T_ARRAY, 1, f_catalog_ticket}, END,
};

static const ev_field_t f_ticket_reserve[] = {
    REQ("bookingId", S), REQ("userId", S), REQ("catalogId", S), REQ("ticketId", SN), END,
};

static const ev_field_t f_ticket_reserved[] = {
    REQ("bookingId", S), REQ("ticketId", S), REQ("price", I), REQ("currency", S),
    OPT("catalogId", S), END,
};

static const ev_field_t f_ticket_unavailable[] = {
    REQ("bookingId", S), REQ("reason", S), OPT("ticketId", SN), OPT("catalogId", SN), END,
};

static const ev_field_t f_payment_requested[] = {
    REQ("bookingId", S), REQ("userId", S), REQ("amount", I), REQ("currency", S), END,
};

static const ev_field_t f_refund_requested[] = {
    REQ("bookingId", S), REQ("reason", S), OPT("userId", S), END,
};

static const ev_field_t f_payment_succeeded[] = {
    REQ("bookingId", S), REQ("paymentId", S), REQ("userId", S), REQ("amount", I),
    REQ("currency", S), OPT("cardLast4", SN), END,
};

static const ev_field_t f_payment_failed[] = {
    REQ("bookingId", S), REQ("paymentId", S), REQ("userId", S), REQ("amount", I),
    REQ("currency", S), REQ("reason", S), OPT("cardLast4", SN), END,
};

static const ev_field_t f_payment_refunded[] = {
    REQ("bookingId", S), REQ("paymentId", S), REQ("userId", S), REQ("amount", I),
    REQ("currency", S), OPT("reason", SN), END,
};

static const ev_field_t f_ticket_sell[] = {
    REQ("bookingId", S), REQ("ticketId", S), END,
};

static const ev_field_t f_ticket_release[] = {
    REQ("bookingId", S), REQ("ticketId", S), OPT("reason", SN), END,
};

static const ev_field_t f_booking_created[] = {
    REQ("bookingId", S), REQ("userId", S), REQ("catalogId", S), REQ("ticketId", SN),
    REQ("status", S), REQ("expiresAt", S), OPT("amount", IN), OPT("currency", SN), END,
};

static const ev_field_t f_booking_confirmed[] = {
    REQ("bookingId", S), REQ("userId", S), REQ("catalogId", S), REQ("ticketId", S),
    REQ("status", S), REQ("amount", I), REQ("currency", S), END,
};

/* failed, expired, cancelled */
static const ev_field_t f_booking_ended[] = {
    REQ("bookingId", S), REQ("userId", S), REQ("catalogId", S), REQ("ticketId", SN),
    REQ("status", S), REQ("reason", S), OPT("amount", IN), OPT("currency", SN), END,
};

/* An email about eventId was handed to SMTP (or written as a .eml file). */
static const ev_field_t f_notification_sent[] = {
    REQ("notificationId", S), REQ("eventId", S), REQ("userId", S), REQ("type", S),
    REQ("to", S), OPT("bookingId", SN), REQ("sentAt", S), END,
};

/* Not an envelope: the broker's key store writes this raw value. */
static const ev_field_t f_kv_expired[] = {
    REQ("key", S), REQ("value", S), REQ("expiredAt", S), END,
};

#undef REQ
#undef OPT
#undef END
#undef S
#undef I
#undef SN
#undef IN

/* The order is the Topics table of ARCHITECTURE.md. */
static const ev_schema_t schemas[] = {
    {"user.registered", "users", "userId", 1, f_user_registered},
    {"user.role_changed", "users", "userId", 1, f_user_role_changed},
    {"user.created", "user.created", "userId", 1, f_user_profile},
    {"user.updated", "user.created", "userId", 1, f_user_profile},
    {"catalog.created", "catalog", "catalogId", 1, f_catalog},
    {"catalog.updated", "catalog", "catalogId", 1, f_catalog},
    {"catalog.deactivated", "catalog", "catalogId", 1, f_catalog},
    {"ticket.reserve", "ticket.reserve", "bookingId", 1, f_ticket_reserve},
    {"ticket.reserved", "ticket.reservation", "bookingId", 1, f_ticket_reserved},
    {"ticket.unavailable", "ticket.reservation", "bookingId", 1, f_ticket_unavailable},
    {"payment.requested", "paymentevent", "bookingId", 1, f_payment_requested},
    {"refund.requested", "paymentevent", "bookingId", 1, f_refund_requested},
    {"payment.succeeded", "payment.1", "bookingId", 1, f_payment_succeeded},
    {"payment.failed", "payment.2", "bookingId", 1, f_payment_failed},
    {"payment.refunded", "payment.3", "bookingId", 1, f_payment_refunded},
    {"ticket.sell", "ticket.success", "bookingId", 1, f_ticket_sell},
    {"ticket.release", "ticket.fail", "bookingId", 1, f_ticket_release},
    {"booking.created", "booking", "bookingId", 1, f_booking_created},
    {"booking.confirmed", "booking", "bookingId", 1, f_booking_confirmed},
    {"booking.failed", "booking", "bookingId", 1, f_booking_ended},
    {"booking.expired", "booking", "bookingId", 1, f_booking_ended},
    {"booking.cancelled", "booking", "bookingId", 1, f_booking_ended},
    {"notification.sent", "notification", "notificationId", 1, f_notification_sent},
    {"kv.expired", "kv.expired", "key", 0, f_kv_expired},
};

/* clang-format on */

const ev_schema_t *ev_schemas(size_t *n)
{
    *n = sizeof schemas / sizeof schemas[0];
    return schemas;
}

const ev_schema_t *ev_schema_find(const char *type)
{
    if (!type) return NULL;
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++)
        if (strcmp(schemas[i].type, type) == 0) return &schemas[i];
    return NULL;
}

const char *ev_topic_of(const char *type)
{
    const ev_schema_t *s = ev_schema_find(type);
    return s ? s->topic : NULL;
}

const char *ev_jtype_name(ev_jtype_t t)
{
    switch (t) {
    case EV_T_STRING:
        return "string";
    case EV_T_INTEGER:
        return "integer";
    case EV_T_NUMBER:
        return "number";
    case EV_T_BOOLEAN:
        return "boolean";
    case EV_T_OBJECT:
        return "object";
    case EV_T_ARRAY:
        return "array";
    case EV_T_STRING_OR_NULL:
        return "string-or-null";
    case EV_T_INTEGER_OR_NULL:
        return "integer-or-null";
    }
    return "?";
}

/* ---- validation ------------------------------------------------------- */

static void *need(void *p)
{
    if (!p) {
        fputs("souk: out of memory (cJSON)\n", stderr);
        abort();
    }
    return p;
}

#define EV_INT_MAX 9007199254740992.0 /* 2^53: integers beyond are not exact */

static int is_integer(const cJSON *v)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    return isfinite(d) && d == floor(d) && fabs(d) <= EV_INT_MAX;
}

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsNumber(v)) return is_integer(v) ? "integer" : "number";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsObject(v)) return "object";
    if (cJSON_IsArray(v)) return "array";
    return "invalid";
}

static int type_ok(ev_jtype_t t, const cJSON *v)
{
    switch (t) {
    case EV_T_STRING:
        return cJSON_IsString(v);
    case EV_T_INTEGER:
        return is_integer(v);
    case EV_T_NUMBER:
        return cJSON_IsNumber(v);
    case EV_T_BOOLEAN:
        return cJSON_IsBool(v);
    case EV_T_OBJECT:
        return cJSON_IsObject(v);
    case EV_T_ARRAY:
        return cJSON_IsArray(v);
    case EV_T_STRING_OR_NULL:
        return cJSON_IsString(v) || cJSON_IsNull(v);
    case EV_T_INTEGER_OR_NULL:
        return is_integer(v) || cJSON_IsNull(v);
    }
    return 0;
}

/* Checks obj against fields; path is the JSON path of obj for messages
 * ("data", "data.tickets[3]"). */
static int check_fields(const char *type, const char *path, const ev_field_t *fields,
                        const cJSON *obj, char *err, size_t errsz)
{
    if (!cJSON_IsObject(obj)) {
        sk_errf(err, errsz, "%s: %s: expected object, got %s", type, path,
               obj ? json_kind(obj) : "nothing");
        return -1;
    }
    for (const ev_field_t *f = fields; f->name; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);
        if (!v) {
            if (!f->required) continue;
            sk_errf(err, errsz, "%s: %s.%s: missing required %s", type, path, f->name,
                   ev_jtype_name(f->type));
            return -1;
        }
        if (!type_ok(f->type, v)) {
            sk_errf(err, errsz, "%s: %s.%s: expected %s, got %s", type, path, f->name,
                   ev_jtype_name(f->type), json_kind(v));
            return -1;
        }
        if (f->type == EV_T_ARRAY && f->items) {
            int i = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, v)
            {
                char sub[128];
                snprintf(sub, sizeof sub, "%s.%s[%d]", path, f->name, i++);
                if (check_fields(type, sub, f->items, it, err, errsz) < 0) return -1;
            }
        }
    }
    return 0;
}

int ev_validate(const char *type, const cJSON *data, char *err, size_t errsz)
{
    const ev_schema_t *s = ev_schema_find(type);
    if (!s) {
        sk_errf(err, errsz, "unknown event type \"%s\"", type ? type : "(null)");
        return -1;
    }
    return check_fields(s->type, s->envelope ? "data" : "value", s->fields, data, err, errsz);
}

/* ---- RFC 3339 ----------------------------------------------------------- */

int ev_time_parse(const char *s, int64_t *out_ms)
{
    return sk_rfc3339_parse(s, out_ms);
}

/* ---- the envelope ------------------------------------------------------- */

static const char *env_str(const cJSON *root, const char *name, int allow_null, char *err,
                           size_t errsz, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (allow_null && cJSON_IsNull(v)) return NULL;
    if (!cJSON_IsString(v)) {
        if (!*bad)
            sk_errf(err, errsz, "envelope: %s: %s %s", name,
                   v ? "expected string, got" : "missing required",
                   v ? json_kind(v) : (allow_null ? "string-or-null" : "string"));
        *bad = 1;
        return NULL;
    }
    return v->valuestring;
}

/* Checks root as an envelope and points ev's fields into it.  Does not take
 * ownership of root. */
static int envelope_bind(cJSON *root, ev_event_t *ev, char *err, size_t errsz)
{
    int bad = 0;
    if (!cJSON_IsObject(root)) {
        sk_errf(err, errsz, "envelope: expected a JSON object, got %s", json_kind(root));
        return -1;
    }
    memset(ev, 0, sizeof *ev);
    ev->root = root;
    ev->id = env_str(root, "id", 0, err, errsz, &bad);
    ev->type = env_str(root, "type", 0, err, errsz, &bad);
    if (bad) return -1;
    if (!ev->id[0] || strlen(ev->id) > EV_ID_MAX) {
        sk_errf(err, errsz, "envelope: id: must be 1 to %d characters", EV_ID_MAX);
        return -1;
    }
    ev->schema = ev_schema_find(ev->type);
    if (!ev->schema) {
        sk_errf(err, errsz, "envelope: type: unknown event type \"%s\"", ev->type);
        return -1;
    }
    if (!ev->schema->envelope) {
        sk_errf(err, errsz, "envelope: type: \"%s\" is a raw record, not an envelope", ev->type);
        return -1;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!ver) {
        sk_errf(err, errsz, "envelope: version: missing required integer");
        return -1;
    }
    if (!is_integer(ver)) {
        sk_errf(err, errsz, "envelope: version: expected integer, got %s", json_kind(ver));
        return -1;
    }
    if (ver->valuedouble != EV_VERSION) {
        sk_errf(err, errsz, "envelope: version: unsupported version %.0f (this program reads %d)",
               ver->valuedouble, EV_VERSION);
        return -1;
    }
    ev->version = EV_VERSION;
    ev->time = env_str(root, "time", 0, err, errsz, &bad);
    ev->source = env_str(root, "source", 0, err, errsz, &bad);
    ev->correlation_id = env_str(root, "correlationId", 0, err, errsz, &bad);
    if (bad) return -1;
    if (!cJSON_GetObjectItemCaseSensitive(root, "causationId")) {
        sk_errf(err, errsz, "envelope: causationId: missing required string-or-null");
        return -1;
    }
    ev->causation_id = env_str(root, "causationId", 1, err, errsz, &bad);
    if (bad) return -1;
    if (ev_time_parse(ev->time, &ev->time_ms) < 0) {
        sk_errf(err, errsz, "envelope: time: \"%.40s\" is not an RFC 3339 timestamp", ev->time);
        return -1;
    }
    if (!ev->source[0]) {
        sk_errf(err, errsz, "envelope: source: must not be empty");
        return -1;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!data) {
        sk_errf(err, errsz, "envelope: data: missing required object");
        return -1;
    }
    if (check_fields(ev->type, "data", ev->schema->fields, data, err, errsz) < 0) return -1;
    ev->data = data;
    return 0;
}

ev_event_t *ev_new(const char *type, const char *source, const char *correlation_id,
                   const char *causation_id, cJSON *data, char *err, size_t errsz)
{
    cJSON *root = NULL;
    ev_event_t *ev = NULL;
    const ev_schema_t *s = ev_schema_find(type);

    if (!s) {
        sk_errf(err, errsz, "unknown event type \"%s\"", type ? type : "(null)");
        goto fail;
    }
    if (!s->envelope) {
        sk_errf(err, errsz, "\"%s\" is a raw record, not an envelope", type);
        goto fail;
    }
    if (!source || !source[0]) {
        sk_errf(err, errsz, "%s: source must be a service name", type);
        goto fail;
    }
    if (!data) {
        sk_errf(err, errsz, "%s: no data", type);
        goto fail;
    }
    /* Validate first: the message then names data, not the envelope. */
    if (ev_validate(type, data, err, errsz) < 0) goto fail;

    uuid_t u;
    char id[37], when[SK_RFC3339_LEN];
    uuid_generate_random(u);
    uuid_unparse_lower(u, id);
    sk_rfc3339_ms(sk_wall_ms(), when);

    root = need(cJSON_CreateObject());
    need(cJSON_AddStringToObject(root, "id", id));
    need(cJSON_AddStringToObject(root, "type", type));
    need(cJSON_AddNumberToObject(root, "version", EV_VERSION));
    need(cJSON_AddStringToObject(root, "time", when));
    need(cJSON_AddStringToObject(root, "source", source));
    need(cJSON_AddStringToObject(root, "correlationId", correlation_id ? correlation_id : id));
    if (causation_id)
        need(cJSON_AddStringToObject(root, "causationId", causation_id));
    else
        need(cJSON_AddNullToObject(root, "causationId"));
    if (!cJSON_AddItemToObject(root, "data", data)) need(NULL);
    data = NULL; /* owned by root now */

    ev = sk_calloc(1, sizeof *ev);
    if (envelope_bind(root, ev, err, errsz) < 0) goto fail;
    return ev;
fail:
    free(ev);
    cJSON_Delete(root);
    cJSON_Delete(data);
    return NULL;
}

ev_event_t *ev_new_caused(const ev_event_t *cause, const char *type, const char *source,
                          cJSON *data, char *err, size_t errsz)
{
    return ev_new(type, source, cause->correlation_id, cause->id, data, err, errsz);
}

int ev_parse(const char *json, size_t len, ev_event_t **out, char *err, size_t errsz)
{
    cJSON *root = NULL;
    ev_event_t *ev = NULL;
    const char *end = NULL;

    *out = NULL;
    if (!json || len == 0) {
        sk_errf(err, errsz, "envelope: empty record value");
        goto fail;
    }
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        /* On failure cJSON points end at the error (thread-safe, unlike
         * cJSON_GetErrorPtr()). */
        size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        sk_errf(err, errsz, "envelope: malformed JSON at byte %zu", off);
        goto fail;
    }
    while (end && end < json + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end && end < json + len) {
        sk_errf(err, errsz, "envelope: malformed JSON: trailing bytes at byte %zu",
               (size_t)(end - json));
        goto fail;
    }
    ev = sk_calloc(1, sizeof *ev);
    if (envelope_bind(root, ev, err, errsz) < 0) goto fail;
    *out = ev;
    return 0;
fail:
    free(ev);
    cJSON_Delete(root);
    return -1;
}

void ev_free(ev_event_t *ev)
{
    if (!ev) return;
    cJSON_Delete(ev->root);
    free(ev);
}

char *ev_to_json(const ev_event_t *ev, size_t *len)
{
    char *s = need(cJSON_PrintUnformatted(ev->root));
    if (len) *len = strlen(s);
    return s;
}

const char *ev_key(const ev_event_t *ev)
{
    return ev_str(ev->data, ev->schema->key);
}

const char *ev_topic(const ev_event_t *ev)
{
    return ev->schema->topic;
}

/* ---- data helpers --------------------------------------------------------- */

const char *ev_str(const cJSON *obj, const char *field)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, field) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int ev_i64(const cJSON *obj, const char *field, int64_t *out)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, field) : NULL;
    if (!is_integer(v)) return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

int ev_bool(const cJSON *obj, const char *field, int dflt)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, field) : NULL;
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

cJSON *ev_obj(void)
{
    return need(cJSON_CreateObject());
}

cJSON *ev_set_str(cJSON *obj, const char *name, const char *s)
{
    if (s)
        need(cJSON_AddStringToObject(obj, name, s));
    else
        need(cJSON_AddNullToObject(obj, name));
    return obj;
}

cJSON *ev_set_i64(cJSON *obj, const char *name, int64_t v)
{
    need(cJSON_AddNumberToObject(obj, name, (double)v));
    return obj;
}

cJSON *ev_set_bool(cJSON *obj, const char *name, int v)
{
    need(cJSON_AddBoolToObject(obj, name, v ? 1 : 0));
    return obj;
}

cJSON *ev_set_null(cJSON *obj, const char *name)
{
    need(cJSON_AddNullToObject(obj, name));
    return obj;
}

cJSON *ev_set(cJSON *obj, const char *name, cJSON *item)
{
    need(item);
    if (!cJSON_AddItemToObject(obj, name, item)) need(NULL);
    return obj;
}
