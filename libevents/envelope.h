/*
 * envelope.h - souk's event envelope and the schema of every event type.
 *
 * Every record value a service produces is one JSON object (ARCHITECTURE.md,
 * "Event envelope"):
 *
 *   {"id": "8c7e...-uuid-v4", "type": "booking.confirmed", "version": 1,
 *    "time": "2026-11-25T16:37:36.123Z", "source": "booking",
 *    "correlationId": "<booking or user id>", "causationId": "<id>" | null,
 *    "data": {...}}
 *
 * The schemas (event type -> topic, Kafka key field, required and optional
 * fields of `data` with their JSON types) are one table, ev_schemas(), in
 * envelope.c.  docs/asyncapi.yaml documents the same table and the test
 * `asyncapi` fails when the two differ: change both together.
 *
 * Validation happens when an event is built (ev_new) and when it is received
 * (ev_parse); ev_validate() exposes it for anything else.  Fields that are
 * not in the schema are allowed (a newer producer may add some) and kept.
 *
 * Errors: functions taking (err, errsz) write a one-line reason there (err
 * may be NULL) and return -1 / NULL.  Reasons name the field, e.g.
 *   "booking.failed: data.reason: missing required string"
 *   "ticket.reserved: data.price: expected integer, got string"
 *
 * Out of memory aborts (as sk_alloc does); cJSON results are checked.
 */
#ifndef EV_ENVELOPE_H
#define EV_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define EV_VERSION 1
#define EV_ID_MAX 128 /* longest id accepted in a received envelope */

/* JSON types a field may be declared with. */
typedef enum {
    EV_T_STRING = 0,
    EV_T_INTEGER, /* a JSON number with no fraction, |v| <= 2^53 */
    EV_T_NUMBER,  /* any JSON number */
    EV_T_BOOLEAN,
    EV_T_OBJECT,
    EV_T_ARRAY,
    EV_T_STRING_OR_NULL, /* a string, or JSON null */
    EV_T_INTEGER_OR_NULL,
} ev_jtype_t;

/* "string", "integer", "number", "boolean", "object", "array",
 * "string-or-null", "integer-or-null" (the names used in asyncapi checks). */
const char *ev_jtype_name(ev_jtype_t t);

typedef struct ev_field_s {
    const char *name; /* NULL terminates a field list */
    ev_jtype_t type;
    int required; /* 0: may be absent; checked when present */
    /* For EV_T_ARRAY whose elements are objects: the fields of each element
     * (a NULL-name-terminated list), validated too.  NULL: not checked. */
    const struct ev_field_s *items;
} ev_field_t;

typedef struct ev_schema_s {
    const char *type;         /* "booking.confirmed" */
    const char *topic;        /* "booking" */
    const char *key;          /* data field whose value is the Kafka key */
    int envelope;             /* 1: an envelope; 0: a raw record value (kv.expired) */
    const ev_field_t *fields; /* of `data` (or of the raw value) */
} ev_schema_t;

/* The whole table (static storage; never freed), *n entries. */
const ev_schema_t *ev_schemas(size_t *n);
/* The schema of type, or NULL if unknown.  type may be NULL (-> NULL). */
const ev_schema_t *ev_schema_find(const char *type);
/* The topic events of this type are produced to, or NULL if unknown.
 * Static string. */
const char *ev_topic_of(const char *type);

/*
 * Checks data (the envelope's "data", or the raw value for a non-envelope
 * type such as "kv.expired") against type's schema: data must be an object,
 * every required field present with its type, every optional field present
 * has its type, array items checked when the schema says how.  Returns 0 or
 * -1 (unknown type, or the first violation, in err).
 */
int ev_validate(const char *type, const cJSON *data, char *err, size_t errsz);

/*
 * A built or received event.  All fields are read-only views into root,
 * which the event owns; they live until ev_free().
 */
typedef struct ev_event_s {
    cJSON *root; /* the whole envelope object */
    const char *id;
    const char *type;
    int version;        /* EV_VERSION */
    const char *time;   /* RFC 3339 as received */
    int64_t time_ms;    /* the same, ms since the Unix epoch */
    const char *source; /* producing service, e.g. "booking" */
    const char *correlation_id;
    const char *causation_id;  /* NULL when the envelope has null */
    const cJSON *data;         /* the "data" object */
    const ev_schema_t *schema; /* of type; never NULL */
} ev_event_t;

/*
 * Builds an event: a fresh uuid v4 id (libuuid), the current wall time with
 * ms, version EV_VERSION.  Takes ownership of data in every case (it is freed
 * on failure), so `ev_new(..., build_data(), ...)` never leaks.  data is
 * validated against type's schema; an unknown type, a non-envelope type
 * (kv.expired), NULL/empty source, NULL data or invalid data fail with the
 * reason in err.
 *
 * correlation_id NULL means "this event starts a flow": the event's own id
 * is used.  causation_id NULL gives "causationId": null.  Strings are copied.
 * Returns a new event (free with ev_free) or NULL.
 */
ev_event_t *ev_new(const char *type, const char *source, const char *correlation_id,
                   const char *causation_id, cJSON *data, char *err, size_t errsz);

/* ev_new() for an event caused by another: correlationId = cause's
 * correlationId, causationId = cause's id.  cause must not be NULL. */
ev_event_t *ev_new_caused(const ev_event_t *cause, const char *type, const char *source,
                          cJSON *data, char *err, size_t errsz);

/*
 * Decodes and validates a received record value (len bytes, need not be
 * NUL-terminated): malformed JSON, a non-object, a missing or mistyped
 * envelope field (id non-empty string <= EV_ID_MAX, type, version == 1, time
 * RFC 3339, source, correlationId string, causationId string or null, data
 * object), an unknown or non-envelope type, or data failing its schema are
 * errors (-1, reason in err, *out = NULL).  On success returns 0 and *out is
 * a new event the caller frees with ev_free().
 */
int ev_parse(const char *json, size_t len, ev_event_t **out, char *err, size_t errsz);

/* Frees the event and its JSON.  NULL is a no-op. */
void ev_free(ev_event_t *ev);

/* The envelope as compact JSON, NUL-terminated; *len (may be NULL) gets
 * strlen.  The caller frees the result with free(). Never NULL. */
char *ev_to_json(const ev_event_t *ev, size_t *len);

/* The Kafka key: the string in data[schema->key] (borrowed from ev), or NULL
 * when that field is absent or not a string. */
const char *ev_key(const ev_event_t *ev);

/* Topic of the event (ev_topic_of(ev->type)). Never NULL for a valid event. */
const char *ev_topic(const ev_event_t *ev);

/*
 * Reading data fields (obj is usually ev->data; NULL obj is allowed).
 * ev_str(): the string value of field, or NULL when absent, null or not a
 * string (borrowed from obj).  ev_i64(): 0 on success with *out set, -1 when
 * absent or not an integer.  ev_bool(): 1/0, or dflt when absent/not bool.
 */
const char *ev_str(const cJSON *obj, const char *field);
int ev_i64(const cJSON *obj, const char *field, int64_t *out);
int ev_bool(const cJSON *obj, const char *field, int dflt);

/*
 * Building data objects with checked cJSON calls (abort on out of memory):
 * ev_obj() returns a new empty object; ev_set_str() adds a string, or null
 * when s is NULL; ev_set_i64() adds an integer (|v| <= 2^53 to stay exact);
 * ev_set_bool() adds true/false; ev_set_null() adds null; ev_set() adds item,
 * taking ownership of it.  Each returns obj, so calls chain.
 */
cJSON *ev_obj(void);
cJSON *ev_set_str(cJSON *obj, const char *name, const char *s);
cJSON *ev_set_i64(cJSON *obj, const char *name, int64_t v);
cJSON *ev_set_bool(cJSON *obj, const char *name, int v);
cJSON *ev_set_null(cJSON *obj, const char *name);
cJSON *ev_set(cJSON *obj, const char *name, cJSON *item);

/* Parses RFC 3339 ("2026-11-25T16:37:36.123Z", fraction optional, "Z" or
 * "+hh:mm"/"-hh:mm") to ms since the epoch.  Returns 0 or -1. */
int ev_time_parse(const char *s, int64_t *out_ms);

#endif
