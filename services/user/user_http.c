/*
 * user_http.c - the profile routes.
 *
 *   GET /users/me   (USER)   the caller's profile; 404 until user.registered
 *                            has been consumed
 *   PUT /users/me   (USER)   replace fullName, phone, bio, birthDate; emits
 *                            user.updated when something changed
 *   GET /users      (ADMIN)  every profile, paged, sorted by registeredAt,
 *                            filtered by email substring, registration time
 *                            and birth date
 */
#include "user_int.h"

#include <stdio.h>
#include <string.h>

#include "sk_clock.h"
#include "sk_log.h"

static const char *const profile_by_id_sql =
    "SELECT " USER_PROFILE_COLUMNS " FROM profiles WHERE user_id = ?";

static void reply_not_found(svc_req_t *req)
{
    svc_reply_problem_ex(req, 404, "profile-not-found", "Profile not found", NULL,
                         "no profile for this user yet (it is created from the registration "
                         "event; retry shortly)");
}

void user_get_me(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    const svc_principal_t *me = svc_req_principal(req);
    sqlite3_stmt *st = sto_query(db, profile_by_id_sql, "t", me->user_id);
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (rc == SQLITE_ROW) {
        cJSON *body = user_profile_json(st);
        sto_done(st);
        svc_reply_json(req, 200, body);
        return;
    }
    sto_done(st);
    if (rc == SQLITE_DONE) {
        reply_not_found(req);
        return;
    }
    sk_error("user", "GET /users/me: %s", sqlite3_errmsg(db));
    svc_reply_problem(req, 500, NULL, NULL);
}

/* Optional string field that may be null: *out is NULL for absent/null. */
static void read_phone(svc_req_t *req, const cJSON *b, const char **out)
{
    *out = NULL;
    const char *s = svc_json_str(req, b, "phone", SVC_OPTIONAL, 0, 64);
    if (s && !user_phone_valid(s)) {
        svc_req_field_error(req, "phone", "must be an E.164 number (+ and 2 to 15 digits) or null");
        return;
    }
    *out = s;
}

static void read_birth_date(svc_req_t *req, const cJSON *b, const char **out)
{
    *out = NULL;
    const char *s = svc_json_str(req, b, "birthDate", SVC_OPTIONAL, 0, 64);
    if (!s) return;
    const char *why = user_birth_date_check(s, sk_wall_ms());
    if (why) {
        svc_req_field_error(req, "birthDate", "%s", why);
        return;
    }
    *out = s;
}

/*
 * PUT replaces the editable part of the profile: fullName is required;
 * phone, bio and birthDate absent or null clear the field.  Nothing
 * changed -> 200 with the profile as it is, no event, updatedAt unchanged
 * (a retried PUT is harmless).  A change and its user.updated commit
 * together.
 */
void user_put_me(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    const svc_principal_t *me = svc_req_principal(req);
    const cJSON *b = svc_req_body_object(req);
    const char *full_name = svc_json_str(req, b, "fullName", SVC_REQUIRED, 1, USER_FULL_NAME_MAX);
    const char *phone, *birth_date;
    if (full_name && strspn(full_name, " \t\r\n") == strlen(full_name)) {
        svc_req_field_error(req, "fullName", "must not be blank");
        full_name = NULL;
    }
    read_phone(req, b, &phone);
    const char *bio = svc_json_str(req, b, "bio", SVC_OPTIONAL, 0, USER_BIO_MAX);
    read_birth_date(req, b, &birth_date);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }

    char err[256] = "";
    sqlite3_stmt *st = NULL;
    if (sto_begin(db) < 0) goto fail;
    int n =
        sto_exec(db,
                 "UPDATE profiles SET full_name = ?1, phone = ?2, bio = ?3, birth_date = ?4,"
                 " updated_ms = ?5 WHERE user_id = ?6 AND (full_name IS NOT ?1 OR phone IS NOT ?2"
                 " OR bio IS NOT ?3 OR birth_date IS NOT ?4)",
                 "ttttIt", full_name, phone, bio, birth_date, (int64_t)sk_wall_ms(), me->user_id);
    if (n < 0) goto fail;
    st = sto_query(db, profile_by_id_sql, "t", me->user_id);
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (rc == SQLITE_DONE) {
        sto_done(st);
        sto_rollback(db);
        reply_not_found(req);
        return;
    }
    if (rc != SQLITE_ROW) goto fail;
    cJSON *body = user_profile_json(st);
    if (n > 0 && svc_emit(svc, "user.updated", svc_req_correlation_id(req), user_event_data(st),
                          err, sizeof err) < 0) {
        cJSON_Delete(body);
        goto fail;
    }
    sto_done(st);
    st = NULL;
    if (n > 0 ? svc_commit(svc) < 0 : sto_commit(db) < 0) {
        cJSON_Delete(body);
        goto fail;
    }
    if (n > 0) sk_info("user", "profile %s updated", me->user_id);
    svc_reply_json(req, 200, body);
    return;

fail:
    sk_error("user", "PUT /users/me for %s: %s", me->user_id, err[0] ? err : sqlite3_errmsg(db));
    sto_done(st);
    sto_rollback(db);
    svc_reply_problem(req, 500, NULL, NULL);
}

/* ---- GET /users ---------------------------------------------------------- */

static const char *const sort_fields[] = {"registeredAt", NULL};

/* The list's filters; a NULL / unset bound is no filter. */
typedef struct {
    const char *email;
    int has_from, has_to;
    int64_t from_ms, to_ms; /* [from, to) */
    const char *birth_from, *birth_to;
} user_filter_t;

static void read_time(svc_req_t *req, const char *name, int upper, int *has, int64_t *ms)
{
    const char *s = svc_query(req, name);
    *has = 0;
    if (!s || !*s) return;
    if (user_time_bound(s, upper, ms) < 0) {
        svc_req_field_error(req, name,
                            "must be RFC 3339 (2026-11-25T16:37:36Z) or a date YYYY-MM-DD");
        return;
    }
    *has = 1;
}

static const char *read_date(svc_req_t *req, const char *name)
{
    const char *s = svc_query(req, name);
    if (!s || !*s) return NULL;
    if (user_date_parse(s, NULL) < 0) {
        svc_req_field_error(req, name, "must be a date YYYY-MM-DD");
        return NULL;
    }
    return s;
}

static void read_filter(svc_req_t *req, user_filter_t *f)
{
    memset(f, 0, sizeof *f);
    f->email = svc_query(req, "email");
    if (f->email && !*f->email) f->email = NULL;
    if (f->email && strlen(f->email) > USER_EMAIL_FILTER_MAX) {
        svc_req_field_error(req, "email", "must be at most %d characters long",
                            USER_EMAIL_FILTER_MAX);
        f->email = NULL;
    }
    read_time(req, "registeredFrom", 0, &f->has_from, &f->from_ms);
    read_time(req, "registeredTo", 1, &f->has_to, &f->to_ms);
    if (f->has_from && f->has_to && f->to_ms <= f->from_ms)
        svc_req_field_error(req, "registeredTo", "must not be before registeredFrom");
    f->birth_from = read_date(req, "birthDateFrom");
    f->birth_to = read_date(req, "birthDateTo");
    if (f->birth_from && f->birth_to && strcmp(f->birth_to, f->birth_from) < 0)
        svc_req_field_error(req, "birthDateTo", "must not be before birthDateFrom");
}

/*
 * The filters are fixed SQL with optional parameters, "(?1 IS NULL OR ...)":
 * one text per statement, parameters always bound (NULL = no filter).  The
 * email filter is a case-insensitive substring test with instr(), which
 * has no wildcard characters to escape.
 */
#define USER_FILTER_WHERE                                                                          \
    " WHERE (?1 IS NULL OR instr(lower(email), lower(?1)) > 0)"                                    \
    " AND (?2 IS NULL OR registered_ms >= ?2) AND (?3 IS NULL OR registered_ms < ?3)"              \
    " AND (?4 IS NULL OR birth_date >= ?4) AND (?5 IS NULL OR birth_date <= ?5)"

static sqlite3_stmt *bind_filter(sqlite3 *db, const char *sql, const user_filter_t *f,
                                 const svc_page_t *p)
{
    sqlite3_stmt *st = sto_stmt(db, sql);
    if (!st) return NULL;
    int rc = sto_bind_text(st, 1, f->email);
    rc |= f->has_from ? sto_bind_i64(st, 2, f->from_ms) : sto_bind_null(st, 2);
    rc |= f->has_to ? sto_bind_i64(st, 3, f->to_ms) : sto_bind_null(st, 3);
    rc |= sto_bind_text(st, 4, f->birth_from);
    rc |= sto_bind_text(st, 5, f->birth_to);
    if (p) {
        rc |= sto_bind_i64(st, 6, p->size);
        rc |= sto_bind_i64(st, 7, p->page * p->size);
    }
    if (rc != SQLITE_OK) {
        sto_done(st);
        return NULL;
    }
    return st;
}

void user_list(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    svc_page_t page;
    user_filter_t f;
    svc_query_page(req, sort_fields, 0, 0, &page);
    read_filter(req, &f);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }

    cJSON *content = NULL;
    int64_t total = 0;
    sqlite3_stmt *st = bind_filter(db, "SELECT count(*) FROM profiles" USER_FILTER_WHERE, &f, NULL);
    if (!st || sqlite3_step(st) != SQLITE_ROW) goto fail;
    total = sqlite3_column_int64(st, 0);
    sto_done(st);

    st = bind_filter(db,
                     page.desc ? "SELECT " USER_PROFILE_COLUMNS " FROM profiles" USER_FILTER_WHERE
                                 " ORDER BY registered_ms DESC, user_id DESC LIMIT ?6 OFFSET ?7"
                               : "SELECT " USER_PROFILE_COLUMNS " FROM profiles" USER_FILTER_WHERE
                                 " ORDER BY registered_ms ASC, user_id ASC LIMIT ?6 OFFSET ?7",
                     &f, &page);
    if (!st) goto fail;
    content = cJSON_CreateArray();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(content, user_profile_json(st));
    sto_done(st);
    if (rc != SQLITE_DONE) goto fail;
    svc_reply_json(req, 200, svc_page_json(content, &page, total));
    return;

fail:
    sk_error("user", "GET /users: %s", sqlite3_errmsg(db));
    sto_done(st);
    cJSON_Delete(content);
    svc_reply_problem(req, 500, NULL, NULL);
}
