/*
 * notify_http.c - what a user can see of their emails.
 *
 *   GET /notifications/my   (USER)  the caller's notifications, paged
 *       (?page, ?size, ?sort=createdAt|sentAt|type|state[,asc|desc],
 *       default createdAt,desc), filtered by ?state=, ?type=, ?bookingId=
 *   GET /notifications/{id} (USER)  one notification with its HTML body;
 *       the owner's or, for an admin, anyone's; everyone else gets 404 as
 *       if it did not exist (no existence leak)
 *
 * An item: {id, eventId, type, state, to, subject, text, attempts,
 * createdAt, sentAt, nextAttemptAt, bookingId}; to/subject/text are null
 * while WAITING.  The one-notification answer adds html, and lastError for
 * admins (it may name the mail server).
 */
#include "notify_int.h"

#include <string.h>

#include "sk_clock.h"
#include "sk_log.h"

#define NOTIFY_COLUMNS                                                                             \
    "id, event_id, type, state, to_addr, subject, text, attempts, created_at, sent_at,"            \
    " next_attempt_at, booking_id, user_id, html, last_error"

#define MY_WHERE                                                                                   \
    " FROM notifications WHERE user_id = ?1 AND (?2 IS NULL OR state = ?2)"                        \
    " AND (?3 IS NULL OR type = ?3) AND (?4 IS NULL OR booking_id = ?4)"

static const char *const sort_fields[] = {"createdAt", "sentAt", "type", "state", NULL};

/* One statement text per (sort field, direction): the ORDER BY is never
 * built from the request. */
#define MY_LIST(order) "SELECT " NOTIFY_COLUMNS MY_WHERE " ORDER BY " order " LIMIT ?5 OFFSET ?6"
static const char *const list_sql[4][2] = {
    {MY_LIST("created_at ASC, id ASC"), MY_LIST("created_at DESC, id DESC")},
    {MY_LIST("sent_at ASC, id ASC"), MY_LIST("sent_at DESC, id DESC")},
    {MY_LIST("type ASC, created_at ASC, id ASC"), MY_LIST("type DESC, created_at DESC, id DESC")},
    {MY_LIST("state ASC, created_at ASC, id ASC"), MY_LIST("state DESC, created_at DESC, id DESC")},
};

static const char *const states[] = {"WAITING", "PENDING", "SENDING", "SENT", "FAILED", NULL};

static void add_time(cJSON *o, const char *name, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    char buf[SK_RFC3339_LEN];
    cJSON_AddStringToObject(o, name, sk_rfc3339_ms(sqlite3_column_int64(st, col), buf));
}

static void add_text(cJSON *o, const char *name, sqlite3_stmt *st, int col)
{
    const char *s = sto_col_text(st, col);
    if (s)
        cJSON_AddStringToObject(o, name, s);
    else
        cJSON_AddNullToObject(o, name);
}

/* An item from a row of NOTIFY_COLUMNS. */
static cJSON *item_json(sqlite3_stmt *st)
{
    cJSON *o = cJSON_CreateObject();
    const char *state = sto_col_text(st, 3);
    add_text(o, "id", st, 0);
    add_text(o, "eventId", st, 1);
    add_text(o, "type", st, 2);
    add_text(o, "state", st, 3);
    add_text(o, "to", st, 4);
    add_text(o, "subject", st, 5);
    add_text(o, "text", st, 6);
    cJSON_AddNumberToObject(o, "attempts", (double)sqlite3_column_int64(st, 7));
    add_time(o, "createdAt", st, 8);
    add_time(o, "sentAt", st, 9);
    if (state && (strcmp(state, "PENDING") == 0 || strcmp(state, "WAITING") == 0))
        add_time(o, "nextAttemptAt", st, 10);
    else
        cJSON_AddNullToObject(o, "nextAttemptAt");
    add_text(o, "bookingId", st, 11);
    return o;
}

void notify_get_my(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    const svc_principal_t *me = svc_req_principal(req);
    size_t ntypes;
    const mail_template_t *t = mail_templates(&ntypes);
    const char *types[16];
    for (size_t i = 0; i < ntypes && i < 15; i++)
        types[i] = t[i].type;
    types[ntypes < 15 ? ntypes : 15] = NULL;

    svc_page_t pg;
    svc_query_page(req, sort_fields, 0, 1, &pg);
    int si = svc_query_enum(req, "state", states, -1);
    int ti = svc_query_enum(req, "type", types, -1);
    const char *booking_id = svc_query(req, "bookingId");
    if (booking_id && !*booking_id) booking_id = NULL;
    if (booking_id && strlen(booking_id) > 128)
        svc_req_field_error(req, "bookingId", "must be at most 128 characters");
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    const char *state = si >= 0 ? states[si] : NULL;
    const char *type = ti >= 0 ? types[ti] : NULL;

    int64_t total = 0;
    if (sto_query_i64(db, &total, "SELECT COUNT(*)" MY_WHERE, "tttt", me->user_id, state, type,
                      booking_id) < 0)
        goto fail;
    sqlite3_stmt *st =
        sto_query(db, list_sql[pg.sort][pg.desc ? 1 : 0], "ttttII", me->user_id, state, type,
                  booking_id, (int64_t)pg.size, (int64_t)(pg.page * pg.size));
    if (!st) goto fail;
    cJSON *content = cJSON_CreateArray();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(content, item_json(st));
    sto_done(st);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(content);
        goto fail;
    }
    svc_reply_json(req, 200, svc_page_json(content, &pg, total));
    return;
fail:
    sk_error("notification", "GET /notifications/my: %s", sqlite3_errmsg(db));
    svc_reply_problem(req, 500, NULL, NULL);
}

void notify_get_one(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    const char *id = svc_req_param(req, "id");
    sqlite3_stmt *st =
        sto_query(db, "SELECT " NOTIFY_COLUMNS " FROM notifications WHERE id = ?", "t", id);
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (rc == SQLITE_ROW && svc_req_is_owner(req, sto_col_text(st, 12))) {
        cJSON *o = item_json(st);
        add_text(o, "html", st, 13);
        if (svc_req_principal(req)->role == SVC_ROLE_ADMIN) {
            add_text(o, "userId", st, 12);
            add_text(o, "lastError", st, 14);
        }
        sto_done(st);
        svc_reply_json(req, 200, o);
        return;
    }
    sto_done(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        svc_reply_problem_ex(req, 404, "notification-not-found", "Notification not found", NULL,
                             "no notification %s", id);
        return;
    }
    sk_error("notification", "GET /notifications/{id}: %s", sqlite3_errmsg(db));
    svc_reply_problem(req, 500, NULL, NULL);
}
