/*
 * booking_http.c - souk-booking's routes.
 *
 *   POST /bookings               {ticketId} | {catalogId}     USER   202
 *   GET  /bookings/my            ?status= &page &size &sort   USER
 *   GET  /bookings               ?catalogId= &userId= &status= ADMIN
 *   GET  /bookings/{id}                                        owner or admin
 *   POST /bookings/{id}/cancel                                 owner or admin
 *
 * Another user's booking answers 404, exactly as a missing one: a 403 would
 * tell that the id exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "booking.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"

#define BK_ID_MAX 128 /* longest catalog / ticket / user id accepted in a request */

static void reply_internal(svc_req_t *req, sqlite3 *db, const char *what)
{
    sk_error("http", "%s %s: %s: %s", svc_req_route(req), svc_req_id(req), what,
             db ? sqlite3_errmsg(db) : "");
    svc_reply_problem(req, 500, NULL, NULL);
}

static void set_location(svc_req_t *req, const char *id)
{
    char loc[64 + BK_ID_MAX];
    snprintf(loc, sizeof loc, "/bookings/%s", id);
    svc_req_set_header(req, "Location", loc);
}

/* ---- POST /bookings ----------------------------------------------------------- */

/* The Idempotency-Key's first answer, if this user sent the key before.
 * Returns 1 (answered: a replay or a 422), 0 (a new key), -1 (db error). */
static int idem_replay(svc_req_t *req, sqlite3 *db, const char *user, const char *key,
                       const char *hash)
{
    sqlite3_stmt *st =
        sto_query(db,
                  "SELECT request_hash, status, body, booking_id FROM idempotency_keys "
                  "WHERE user_id = ? AND idem_key = ?",
                  "tt", user, key);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sto_done(st);
        return rc == SQLITE_DONE ? 0 : -1;
    }
    int same = strcmp(sto_col_text(st, 0), hash) == 0;
    int status = sqlite3_column_int(st, 1);
    cJSON *body = cJSON_Parse(sto_col_text(st, 2));
    char *booking = sk_strdup(sto_col_text(st, 3));
    sto_done(st);
    if (!same) {
        cJSON_Delete(body);
        free(booking);
        svc_reply_problem_ex(req, 422, "idempotency-key-reused", "Idempotency-Key reused", NULL,
                             "this Idempotency-Key was sent with a different request body");
        return 1;
    }
    if (!body) {
        free(booking);
        return -1;
    }
    set_location(req, booking);
    svc_req_set_header(req, "Idempotent-Replayed", "true");
    free(booking);
    svc_reply_json(req, status, body);
    return 1;
}

/*
 * The early answers from the projection: 409 for a deactivated catalog, a
 * ticket known SOLD, or a catalog whose every ticket is known SOLD.  The
 * catalog's reservation still decides everything else.  For a ticket,
 * *catalog_out gets its catalog (the caller frees it).  Returns 1 when
 * answered, 0 to go on, UNKNOWN_TICKET / UNKNOWN_CATALOG when the
 * projection does not know it (not answered: the caller waits or says
 * 404), -1 on a database error.
 */
enum { UNKNOWN_TICKET = 2, UNKNOWN_CATALOG = 3 };

static int projection_check(svc_req_t *req, sqlite3 *db, const char *ticket, const char *catalog,
                            char **catalog_out)
{
    sqlite3_stmt *st;
    int rc;
    if (ticket) {
        st = sto_query(db,
                       "SELECT t.catalog_id, t.status, c.status FROM tickets t "
                       "JOIN catalogs c ON c.id = t.catalog_id WHERE t.id = ?",
                       "t", ticket);
        if (!st) return -1;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sto_done(st);
            return rc == SQLITE_DONE ? UNKNOWN_TICKET : -1;
        }
        int sold = strcmp(sto_col_text(st, 1), "SOLD") == 0;
        int deactivated = strcmp(sto_col_text(st, 2), "DEACTIVATED") == 0;
        *catalog_out = sk_strdup(sto_col_text(st, 0));
        sto_done(st);
        if (deactivated) {
            svc_reply_problem_ex(req, 409, "catalog-deactivated", "Catalog deactivated", NULL,
                                 "the ticket's catalog is deactivated");
            return 1;
        }
        if (sold) {
            svc_reply_problem_ex(req, 409, "ticket-unavailable", "Ticket unavailable", NULL,
                                 "ticket %s is sold", ticket);
            return 1;
        }
        return 0;
    }
    st = sto_query(
        db,
        "SELECT c.status, (SELECT count(*) FROM tickets t WHERE t.catalog_id = c.id), "
        "(SELECT count(*) FROM tickets t WHERE t.catalog_id = c.id AND t.status = 'SOLD') "
        "FROM catalogs c WHERE c.id = ?",
        "t", catalog);
    if (!st) return -1;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sto_done(st);
        return rc == SQLITE_DONE ? UNKNOWN_CATALOG : -1;
    }
    int deactivated = strcmp(sto_col_text(st, 0), "DEACTIVATED") == 0;
    int64_t total = sqlite3_column_int64(st, 1), sold = sqlite3_column_int64(st, 2);
    sto_done(st);
    if (deactivated) {
        svc_reply_problem_ex(req, 409, "catalog-deactivated", "Catalog deactivated", NULL,
                             "catalog %s is deactivated", catalog);
        return 1;
    }
    if (total > 0 && sold == total) {
        svc_reply_problem_ex(req, 409, "sold-out", "Sold out", NULL,
                             "every ticket of catalog %s is sold", catalog);
        return 1;
    }
    return 0;
}

static void hold_set(void *opaque, const ev_kv_reply_t *reply)
{
    char *id = opaque;
    if (reply->status == EV_KV_ERROR)
        sk_warn("hold", "SET hold:%s failed (%s); the sweeper will expire it", id,
                reply->err ? reply->err : "?");
    free(id);
}

/* SET hold:<id> {bookingId, userId, expiresAt} EX hold-seconds, after the
 * commit; fire and forget (the sweeper is the backstop). */
static void hold_put(svc_t *svc, const bk_booking_t *b)
{
    ev_kv_t *kv = svc_kv(svc);
    if (!kv) return;
    char key[sizeof BK_HOLD_PREFIX + 64];
    snprintf(key, sizeof key, "%s%s", BK_HOLD_PREFIX, b->id);
    cJSON *v = ev_obj();
    ev_set_str(v, "bookingId", b->id);
    ev_set_str(v, "userId", b->user_id);
    char t[SK_RFC3339_LEN];
    ev_set_str(v, "expiresAt", sk_rfc3339_ms(b->expires_at, t));
    char *json = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    char *id = sk_strdup(b->id);
    if (ev_kv_set_ex(kv, key, json, strlen(json), bk_conf(svc)->hold_s, hold_set, id) < 0) {
        sk_warn("hold", "no key-store connection: hold:%s not set; the sweeper will expire it",
                b->id);
        free(id);
    }
    free(json);
}

/*
 * A booking for a catalog or ticket the projection does not know yet: its
 * catalog.created may simply still be on its way (a catalog created a
 * moment ago).  The request is deferred and checked again every
 * PROJECTION_RETRY_MS until --projection-wait-ms has passed; then 404.
 */
#define PROJECTION_RETRY_MS 50

typedef struct bk_wait_s {
    svc_t *svc;
    svc_req_t *req;
    int64_t deadline_ms;
} bk_wait_t;

static void post_booking_run(svc_t *svc, svc_req_t *req, int64_t deadline_ms);

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bk_wait_t w = *(bk_wait_t *)arg;
    free(arg);
    post_booking_run(w.svc, w.req, w.deadline_ms);
}

static void post_booking(svc_t *svc, svc_req_t *req)
{
    post_booking_run(svc, req, sk_mono_ms() + bk_conf(svc)->projection_wait_ms);
}

static void post_booking_run(svc_t *svc, svc_req_t *req, int64_t deadline_ms)
{
    sqlite3 *db = svc_db(svc);
    const svc_principal_t *who = svc_req_principal(req);
    const cJSON *body = svc_req_body_object(req);
    const char *ticket = svc_json_str(req, body, "ticketId", SVC_OPTIONAL, 1, BK_ID_MAX);
    const char *catalog = svc_json_str(req, body, "catalogId", SVC_OPTIONAL, 1, BK_ID_MAX);
    const char *key = svc_req_header(req, "Idempotency-Key");
    char *catalog_of_ticket = NULL;
    char err[512] = "";
    bk_booking_t b = {0};
    char *answer = NULL;

    if (body && !svc_req_has_errors(req)) {
        if (ticket && catalog)
            svc_req_field_error(req, "ticketId", "give either ticketId or catalogId, not both");
        else if (!ticket && !catalog && !cJSON_GetObjectItemCaseSensitive(body, "ticketId") &&
                 !cJSON_GetObjectItemCaseSensitive(body, "catalogId"))
            svc_req_field_error(req, "ticketId",
                                "required: ticketId (one ticket) or catalogId (any ticket)");
        else if (!ticket && !catalog)
            svc_req_field_error(req, "ticketId",
                                "ticketId or catalogId must be a non-empty string");
    }
    if (key && !bk_idem_key_valid(key))
        svc_req_field_error(req, "Idempotency-Key", "must be 1-%d visible ASCII characters",
                            BK_IDEM_KEY_MAX);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }

    char hash[BK_HASH_HEX_LEN];
    bk_request_hash(ticket, catalog, hash);
    if (key) {
        int r = idem_replay(req, db, who->user_id, key, hash);
        if (r < 0) goto db_err;
        if (r > 0) return;
    }
    int r = projection_check(req, db, ticket, catalog, &catalog_of_ticket);
    if (r < 0) goto db_err;
    if ((r == UNKNOWN_TICKET || r == UNKNOWN_CATALOG) && sk_mono_ms() < deadline_ms &&
        !svc_shutting_down(svc)) {
        bk_wait_t *w = sk_malloc(sizeof *w);
        *w = (bk_wait_t){svc, req, deadline_ms};
        struct timeval tv = {0, PROJECTION_RETRY_MS * 1000};
        if (event_base_once(svc_base(svc), -1, EV_TIMEOUT, wait_cb, w, &tv) == 0) {
            svc_req_defer(req);
            goto out;
        }
        free(w);
    }
    if (r == UNKNOWN_TICKET) {
        svc_reply_problem(req, 404, "Ticket not found", "no ticket %s", ticket);
        goto out;
    }
    if (r == UNKNOWN_CATALOG) {
        svc_reply_problem(req, 404, "Catalog not found", "no catalog %s", catalog);
        goto out;
    }
    if (r > 0) goto out;

    uuid_t u;
    char id[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, id);
    int64_t now = sk_wall_ms();
    b.id = sk_strdup(id);
    b.user_id = sk_strdup(who->user_id);
    b.catalog_id = sk_strdup(ticket ? catalog_of_ticket : catalog);
    b.ticket_id = ticket ? sk_strdup(ticket) : NULL;
    b.status = BK_PENDING;
    b.correlation_id = sk_strdup(svc_req_correlation_id(req));
    b.created_at = b.updated_at = now;
    b.expires_at = now + bk_conf(svc)->hold_s * 1000;

    cJSON *json = bk_booking_json(&b);
    answer = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);

    if (sto_begin(db) < 0) goto db_err;
    if (bk_insert(db, &b) < 0) goto db_err;
    cJSON *reserve = ev_obj();
    ev_set_str(reserve, "bookingId", b.id);
    ev_set_str(reserve, "userId", b.user_id);
    ev_set_str(reserve, "catalogId", b.catalog_id);
    ev_set_str(reserve, "ticketId", b.ticket_id);
    if (svc_emit(svc, "ticket.reserve", b.correlation_id, reserve, err, sizeof err) < 0)
        goto ev_err;
    cJSON *created = ev_obj();
    ev_set_str(created, "bookingId", b.id);
    ev_set_str(created, "userId", b.user_id);
    ev_set_str(created, "catalogId", b.catalog_id);
    ev_set_str(created, "ticketId", b.ticket_id);
    ev_set_str(created, "status", bk_state_name(b.status));
    char t[SK_RFC3339_LEN];
    ev_set_str(created, "expiresAt", sk_rfc3339_ms(b.expires_at, t));
    if (svc_emit(svc, "booking.created", b.correlation_id, created, err, sizeof err) < 0)
        goto ev_err;
    if (key &&
        sto_exec(db,
                 "INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status, body, "
                 "booking_id, created_at) VALUES (?, ?, ?, 202, ?, ?, ?)",
                 "tttttI", b.user_id, key, hash, answer, b.id, now) != 1)
        goto db_err;
    if (svc_commit(svc) < 0) goto db_err;

    hold_put(svc, &b);
    sk_info("saga", "booking %s created: user %s, catalog %s, ticket %s, expires in %lld s", b.id,
            b.user_id, b.catalog_id, b.ticket_id ? b.ticket_id : "(any)",
            (long long)bk_conf(svc)->hold_s);
    const char *labels[] = {"to", "PENDING", NULL};
    svc_metric_counter_add(svc, "booking_transitions_total", labels, 1);
    set_location(req, b.id);
    svc_reply_json(req, 202, cJSON_Parse(answer));
    goto out;
ev_err:
    sto_rollback(db);
    sk_error("http", "POST /bookings: event: %s", err);
    svc_reply_problem(req, 500, NULL, NULL);
    goto out;
db_err:
    reply_internal(req, db, "POST /bookings");
    sto_rollback(db);
out:
    free(answer);
    free(catalog_of_ticket);
    bk_booking_release(&b);
}

/* ---- one booking ---------------------------------------------------------------- */

/* Loads the booking of the path for its owner or an admin.  Returns 1 with
 * *b filled; otherwise the request has been answered (404 / 500). */
static int load_visible(svc_t *svc, svc_req_t *req, bk_booking_t *b)
{
    sqlite3 *db = svc_db(svc);
    const char *id = svc_req_param(req, "id");
    int rc = bk_load(db, id, b);
    if (rc < 0) {
        reply_internal(req, db, "load");
        return 0;
    }
    if (rc == 0 || !svc_req_is_owner(req, b->user_id)) {
        if (rc) bk_booking_release(b);
        svc_reply_problem(req, 404, "Booking not found", "no booking %s", id);
        return 0;
    }
    /* The owner or an admin: passes (an OWNER route always asks). */
    if (svc_require_owner(req, b->user_id) < 0) {
        bk_booking_release(b);
        return 0;
    }
    return 1;
}

static void get_booking(svc_t *svc, svc_req_t *req)
{
    bk_booking_t b = {0};
    if (!load_visible(svc, req, &b)) return;
    svc_reply_json(req, 200, bk_booking_json(&b));
    bk_booking_release(&b);
}

/*
 * PENDING / AWAITING_PAYMENT -> CANCELLED (the reserved ticket released),
 * CONFIRMED -> CANCELLED (ticket released, payment refunded).  A booking
 * already FAILED / EXPIRED / CANCELLED answers 409 with its status.
 */
static void cancel_booking(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    bk_booking_t b = {0};
    char err[512] = "";
    if (!load_visible(svc, req, &b)) return;
    const svc_principal_t *who = svc_req_principal(req);
    const char *reason = who && strcmp(who->user_id, b.user_id) == 0 ? "cancelled by the user"
                                                                     : "cancelled by an admin";
    if (sto_begin(db) < 0) {
        reply_internal(req, db, "cancel: BEGIN");
        goto out;
    }
    /* Read again inside the transaction: the guard compares with this. */
    bk_booking_release(&b);
    int rc = bk_load(db, svc_req_param(req, "id"), &b);
    if (rc <= 0) {
        reply_internal(req, db, "cancel: load");
        goto out;
    }
    bk_state_t was = b.status;
    rc = bk_move(svc, db, NULL, &b, BK_CANCELLED, reason, err, sizeof err);
    if (rc < 0) {
        sk_error("http", "cancel %s: %s", b.id, err);
        svc_reply_problem(req, 500, NULL, NULL);
        goto out;
    }
    if (rc == 0) {
        sto_rollback(db);
        cJSON *extra = ev_obj();
        ev_set_str(extra, "status", bk_state_name(was));
        svc_reply_problem_ex(req, 409, "booking-not-cancellable", "Booking cannot be cancelled",
                             extra, "the booking is %s", bk_state_name(was));
        goto out;
    }
    if (svc_commit(svc) < 0) {
        reply_internal(req, db, "cancel: COMMIT");
        goto out;
    }
    svc_reply_json(req, 200, bk_booking_json(&b));
out:
    sto_rollback(db);
    bk_booking_release(&b);
}

/* ---- lists ------------------------------------------------------------------------ */

static const char *const sort_fields[] = {"createdAt", "expiresAt", "updatedAt", NULL};
static const char *const sort_columns[] = {"created_at", "expires_at", "updated_at"};

typedef struct list_filter_s {
    const char *user_id;
    const char *catalog_id;
    int status; /* -1: any */
} list_filter_t;

/* WHERE from fixed fragments; the values are bound by bind_filter in the
 * same order. */
static void add_where(sk_buf_t *sql, const list_filter_t *f)
{
    sk_buf_adds(sql, " WHERE 1 = 1");
    if (f->user_id) sk_buf_adds(sql, " AND user_id = ?");
    if (f->catalog_id) sk_buf_adds(sql, " AND catalog_id = ?");
    if (f->status >= 0) sk_buf_adds(sql, " AND status = ?");
}

static int bind_filter(sqlite3_stmt *st, const list_filter_t *f)
{
    int i = 1;
    if (f->user_id) sto_bind_text(st, i++, f->user_id);
    if (f->catalog_id) sto_bind_text(st, i++, f->catalog_id);
    if (f->status >= 0) sto_bind_text(st, i++, bk_state_name((bk_state_t)f->status));
    return i;
}

static void reply_list(svc_t *svc, svc_req_t *req, const list_filter_t *f, const svc_page_t *p)
{
    sqlite3 *db = svc_db(svc);
    sk_buf_t sql = SK_BUF_INIT;
    sk_buf_init(&sql, 256);
    sk_buf_adds(&sql, "SELECT count(*) FROM bookings");
    add_where(&sql, f);
    sqlite3_stmt *st = sto_stmt(db, sql.data);
    cJSON *content = NULL;
    if (!st) goto db_err;
    bind_filter(st, f);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sto_done(st);
        goto db_err;
    }
    int64_t total = sqlite3_column_int64(st, 0);
    sto_done(st);

    sk_buf_reset(&sql);
    sk_buf_adds(&sql, "SELECT " BK_COLUMNS " FROM bookings");
    add_where(&sql, f);
    const char *dir = p->desc ? "DESC" : "ASC";
    sk_buf_addf(&sql, " ORDER BY %s %s, id %s LIMIT ? OFFSET ?", sort_columns[p->sort], dir, dir);
    st = sto_stmt(db, sql.data);
    if (!st) goto db_err;
    int i = bind_filter(st, f);
    sto_bind_i64(st, i++, p->size);
    sto_bind_i64(st, i, p->page * p->size);
    content = cJSON_CreateArray();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bk_booking_t b;
        bk_row_read(st, &b);
        cJSON_AddItemToArray(content, bk_booking_json(&b));
        bk_booking_release(&b);
    }
    sto_done(st);
    if (rc != SQLITE_DONE) goto db_err;
    svc_reply_json(req, 200, svc_page_json(content, p, total));
    sk_buf_release(&sql);
    return;
db_err:
    cJSON_Delete(content);
    sk_buf_release(&sql);
    reply_internal(req, db, "list");
}

static void list_mine(svc_t *svc, svc_req_t *req)
{
    svc_page_t p;
    svc_query_page(req, sort_fields, 0, 1, &p);
    list_filter_t f = {.user_id = svc_req_principal(req)->user_id};
    f.status = svc_query_enum(req, "status", bk_state_names, -1);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    reply_list(svc, req, &f, &p);
}

static const char *query_id(svc_req_t *req, const char *name)
{
    const char *v = svc_query(req, name);
    if (!v || !*v) return NULL;
    if (strlen(v) > BK_ID_MAX) svc_req_field_error(req, name, "at most %d characters", BK_ID_MAX);
    return v;
}

static void list_all(svc_t *svc, svc_req_t *req)
{
    svc_page_t p;
    svc_query_page(req, sort_fields, 0, 1, &p);
    list_filter_t f = {.catalog_id = query_id(req, "catalogId"),
                       .user_id = query_id(req, "userId")};
    f.status = svc_query_enum(req, "status", bk_state_names, -1);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    reply_list(svc, req, &f, &p);
}

const svc_route_t bk_routes[] = {
    {SVC_POST, "/bookings", post_booking, SVC_USER},
    {SVC_GET, "/bookings", list_all, SVC_ADMIN},
    {SVC_GET, "/bookings/my", list_mine, SVC_USER},
    {SVC_GET, "/bookings/{id}", get_booking, SVC_OWNER},
    {SVC_POST, "/bookings/{id}/cancel", cancel_booking, SVC_OWNER},
    {0, NULL, NULL, 0},
};
