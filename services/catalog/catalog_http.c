/*
 * catalog_http.c - the catalog's HTTP API.
 *
 *   POST  /catalogs                   AUTHOR  create a catalog and its tickets
 *   GET   /catalogs                   PUBLIC  list: paging, sort, filters
 *   GET   /catalogs/{id}              PUBLIC  one catalog with ticket counts
 *   GET   /catalogs/{id}/tickets      PUBLIC  its tickets (?status=, paging)
 *   PUT   /catalogs/{id}              OWNER   replace the editable fields
 *   PATCH /catalogs/{id}/deactivate   OWNER   stop selling (idempotent)
 *
 * Rules (the documented API):
 *   - title 5-80 characters, unique ignoring case (409), no leading or
 *     trailing white space; description optional, at most 2000; price in
 *     minor units, 1..1e11; currency an active ISO 4217 code in upper case
 *     (catalog_rules.c has the list); dateOfEvent RFC 3339 with a zone, in
 *     the future; numberOfTickets 1..50.
 *   - PUT replaces title, description (absent = none), price, currency and
 *     dateOfEvent - all required as in POST, except that an unchanged
 *     dateOfEvent may be in the past.  numberOfTickets may be omitted or
 *     raised (up to 50: new AVAILABLE tickets are added), never lowered.
 *     A DEACTIVATED catalog cannot be changed (409).
 *   - deactivate is idempotent: on a DEACTIVATED catalog it answers 200 with
 *     the catalog and emits nothing.  Tickets already RESERVED or SOLD keep
 *     their state (their bookings finish); no new reservation is accepted.
 *   - status is ACTIVE, DEACTIVATED, or SOLD_OUT (ACTIVE with no AVAILABLE
 *     ticket - computed when read, never stored).
 *   - list filters: priceFrom/priceTo (inclusive, minor units), dateFrom/
 *     dateTo on dateOfEvent (inclusive; RFC 3339, or YYYY-MM-DD meaning that
 *     whole UTC day), status; a reversed range is a 400.  sort=dateOfEvent|
 *     createdAt|price[,asc|desc], default dateOfEvent,asc.
 *   - GET /catalogs/{id}/tickets answers a plain array (at most 50) of
 *     {ticketId, catalogId, number, status}, with bookingId only for the
 *     catalog's author and admins.
 *
 * Every change and its catalog.* event commit together (svc_emit + the
 * outbox).  Times are kept as ms since the epoch and shown as RFC 3339 UTC.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "catalog_int.h"
#include "catalog_rules.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"

/* The columns catalog_json() reads, in order, over catalogs c. */
#define CATALOG_COLS                                                                               \
    "c.id, c.author_id, c.title, c.description, c.price, c.currency, c.event_ms, c.status, "       \
    "c.created_ms, c.updated_ms, "                                                                 \
    "(SELECT count(*) FROM tickets t WHERE t.catalog_id = c.id), "                                 \
    "(SELECT count(*) FROM tickets t WHERE t.catalog_id = c.id AND t.status = 'AVAILABLE')"

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char buf[SK_RFC3339_LEN];
    ev_set_str(o, name, sk_rfc3339_ms(ms, buf));
}

/* The catalog of the current row (CATALOG_COLS) as the API shows it. */
static cJSON *catalog_json(sqlite3_stmt *st)
{
    cJSON *o = ev_obj();
    int64_t total = sqlite3_column_int64(st, 10), avail = sqlite3_column_int64(st, 11);
    const char *status = sto_col_text(st, 7);
    if (strcmp(status, "ACTIVE") == 0 && avail == 0) status = "SOLD_OUT";
    ev_set_str(o, "catalogId", sto_col_text(st, 0));
    ev_set_str(o, "authorId", sto_col_text(st, 1));
    ev_set_str(o, "title", sto_col_text(st, 2));
    ev_set_str(o, "description", sto_col_text(st, 3));
    ev_set_i64(o, "price", sqlite3_column_int64(st, 4));
    ev_set_str(o, "currency", sto_col_text(st, 5));
    add_time(o, "dateOfEvent", sqlite3_column_int64(st, 6));
    ev_set_str(o, "status", status);
    ev_set_i64(o, "numberOfTickets", total);
    ev_set_i64(o, "totalTickets", total);
    ev_set_i64(o, "availableTickets", avail);
    add_time(o, "createdAt", sqlite3_column_int64(st, 8));
    add_time(o, "updatedAt", sqlite3_column_int64(st, 9));
    return o;
}

/* Loads catalog id: 1 with *out (caller frees), 0 when there is none, -1
 * on a database error. */
static int catalog_get(sqlite3 *db, const char *id, cJSON **out)
{
    sqlite3_stmt *st =
        sto_query(db, "SELECT " CATALOG_COLS " FROM catalogs c WHERE c.id = ?", "t", id);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = catalog_json(st);
    sto_done(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static const char *json_str(const cJSON *o, const char *name)
{
    return ev_str(o, name);
}

static void reply_db_error(svc_t *svc, svc_req_t *req, const char *what)
{
    sqlite3 *db = svc_db(svc);
    sk_error(CAT_LOG, "%s %s: %s: %s", svc_req_route(req), svc_req_id(req), what,
             sqlite3_errmsg(db));
    sto_rollback(db);
    svc_reply_problem(req, 500, NULL, NULL);
}

static void reply_not_found(svc_req_t *req, const char *id)
{
    svc_reply_problem(req, 404, "Catalog not found", "no catalog with id \"%.64s\"", id);
}

/*
 * The data of a catalog.* event: the catalog (as shown by the API) and
 * every ticket's id and status.  NULL on a database error.
 */
static cJSON *catalog_event_data(sqlite3 *db, const cJSON *cat)
{
    cJSON *d = ev_obj(), *tickets = cJSON_CreateArray();
    int64_t price = 0, n = 0;
    ev_i64(cat, "price", &price);
    ev_i64(cat, "totalTickets", &n);
    ev_set_str(d, "catalogId", json_str(cat, "catalogId"));
    ev_set_str(d, "authorId", json_str(cat, "authorId"));
    ev_set_str(d, "title", json_str(cat, "title"));
    ev_set_str(d, "description", json_str(cat, "description"));
    ev_set_i64(d, "price", price);
    ev_set_str(d, "currency", json_str(cat, "currency"));
    ev_set_str(d, "dateOfEvent", json_str(cat, "dateOfEvent"));
    ev_set_i64(d, "numberOfTickets", n);
    ev_set_str(d, "status", json_str(cat, "status"));
    ev_set(d, "tickets", tickets);

    sqlite3_stmt *st =
        sto_query(db, "SELECT id, status FROM tickets WHERE catalog_id = ? ORDER BY seq", "t",
                  json_str(cat, "catalogId"));
    if (!st) goto fail;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *t = ev_obj();
        ev_set_str(t, "ticketId", sto_col_text(st, 0));
        ev_set_str(t, "status", sto_col_text(st, 1));
        cJSON_AddItemToArray(tickets, t);
    }
    if (rc != SQLITE_DONE) goto fail;
    return d;
fail:
    sto_done(st);
    cJSON_Delete(d);
    return NULL;
}

/* Adds catalog.<what> for cat to the outbox of the open transaction.
 * Returns 0, or -1 (logged). */
static int emit_catalog(svc_t *svc, svc_req_t *req, const char *type, const cJSON *cat)
{
    char err[256];
    cJSON *data = catalog_event_data(svc_db(svc), cat);
    if (!data) {
        sk_error(CAT_LOG, "%s: tickets: %s", type, sqlite3_errmsg(svc_db(svc)));
        return -1;
    }
    if (svc_emit(svc, type, svc_req_correlation_id(req), data, err, sizeof err) < 0) {
        sk_error(CAT_LOG, "%s: %s", type, err);
        return -1;
    }
    return 0;
}

/* Inserts AVAILABLE tickets number from..to of catalog id.  0 or -1. */
static int tickets_add(sqlite3 *db, const char *id, int64_t from, int64_t to, int64_t now)
{
    for (int64_t seq = from; seq <= to; seq++) {
        char tid[37];
        cat_uuid(tid);
        if (sto_exec(db,
                     "INSERT INTO tickets (id, catalog_id, seq, status, booking_id, updated_ms) "
                     "VALUES (?, ?, ?, 'AVAILABLE', NULL, ?)",
                     "ttII", tid, id, seq, now) != 1)
            return -1;
    }
    return 0;
}

/* ---- the body of POST and PUT -------------------------------------------- */

typedef struct cat_input_s {
    const char *title, *description, *currency;
    int64_t price, event_ms, tickets;
    int has_tickets;
} cat_input_t;

/*
 * Reads and checks the body, recording every field error.  keep_ms: the
 * current dateOfEvent (PUT), which may stay even if it has passed;
 * INT64_MIN for POST.  numberOfTickets is required for POST only.
 */
static void input_read(svc_req_t *req, int create, int64_t keep_ms, cat_input_t *in)
{
    const char *why;
    memset(in, 0, sizeof *in);
    const cJSON *b = svc_req_body_object(req);

    in->title = svc_json_str(req, b, "title", SVC_REQUIRED, CAT_TITLE_MIN, CAT_TITLE_MAX);
    if (in->title && (why = cat_title_problem(in->title)) != NULL)
        svc_req_field_error(req, "title", "%s", why);
    in->description = svc_json_str(req, b, "description", SVC_OPTIONAL, 0, CAT_DESCRIPTION_MAX);
    svc_json_int(req, b, "price", SVC_REQUIRED, 1, CAT_PRICE_MAX, &in->price);
    in->currency = svc_json_str(req, b, "currency", SVC_REQUIRED, 3, 3);
    if (in->currency && !cat_currency_valid(in->currency))
        svc_req_field_error(req, "currency",
                            "must be an ISO 4217 currency code in upper case, e.g. EUR");
    const char *date = svc_json_str(req, b, "dateOfEvent", SVC_REQUIRED, 1, 64);
    if (date) {
        /* Format first (any time is after INT64_MIN), then the future. */
        if (cat_event_time_parse(date, INT64_MIN, &in->event_ms, &why) < 0)
            svc_req_field_error(req, "dateOfEvent", "%s", why);
        else if (in->event_ms != keep_ms && in->event_ms <= sk_wall_ms())
            svc_req_field_error(req, "dateOfEvent", "must be in the future");
    }
    in->has_tickets = svc_json_int(req, b, "numberOfTickets", create ? SVC_REQUIRED : SVC_OPTIONAL,
                                   CAT_TICKETS_MIN, CAT_TICKETS_MAX, &in->tickets) == 1;
}

static int is_unique_violation(sqlite3 *db)
{
    return sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE;
}

static void reply_title_taken(svc_req_t *req, const char *title)
{
    svc_reply_problem_ex(req, 409, "duplicate-title", "Title already in use", NULL,
                         "a catalog titled \"%s\" already exists", title);
}

/* ---- POST /catalogs -------------------------------------------------------- */

static void catalogs_create(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    const svc_principal_t *who = svc_req_principal(req);
    cat_input_t in;
    cJSON *cat = NULL;
    char id[37], location[64];
    int64_t now = sk_wall_ms();

    input_read(req, 1, INT64_MIN, &in);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    if (sto_begin(db) < 0) {
        reply_db_error(svc, req, "begin");
        return;
    }
    cat_uuid(id);
    if (sto_exec(db,
                 "INSERT INTO catalogs (id, author_id, title, description, price, currency, "
                 "event_ms, status, created_ms, updated_ms) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, 'ACTIVE', ?, ?)",
                 "ttttItIII", id, who->user_id, in.title, in.description, in.price, in.currency,
                 in.event_ms, now, now) < 0) {
        if (is_unique_violation(db)) {
            sto_rollback(db);
            reply_title_taken(req, in.title);
            return;
        }
        reply_db_error(svc, req, "insert catalog");
        return;
    }
    if (tickets_add(db, id, 1, in.tickets, now) < 0 || catalog_get(db, id, &cat) != 1) {
        reply_db_error(svc, req, "insert tickets");
        return;
    }
    if (emit_catalog(svc, req, "catalog.created", cat) < 0 || svc_commit(svc) < 0) {
        cJSON_Delete(cat);
        reply_db_error(svc, req, "commit");
        return;
    }
    sk_info(CAT_LOG, "catalog %s created by %s with %" PRId64 " tickets", id, who->user_id,
            in.tickets);
    snprintf(location, sizeof location, "/catalogs/%s", id);
    svc_req_set_header(req, "Location", location);
    svc_reply_json(req, 201, cat);
}

/* ---- GET /catalogs --------------------------------------------------------- */

/* A query date parameter into *out / *has; records a field error. */
static void query_date(svc_req_t *req, const char *name, int end_of_day, int64_t *out, int *has)
{
    const char *s = svc_query(req, name);
    if (!s || !*s) return;
    if (cat_query_date_parse(s, end_of_day, out) < 0)
        svc_req_field_error(req, name, "must be a date (YYYY-MM-DD) or an RFC 3339 date-time");
    else
        *has = 1;
}

static void query_price(svc_req_t *req, const char *name, int64_t *out, int *has)
{
    const char *s = svc_query(req, name);
    if (!s || !*s) return;
    if (svc_query_int(req, name, 0, 0, CAT_PRICE_MAX, out) == 0) *has = 1;
}

static int bind_all(sqlite3_stmt *st, const int64_t *binds, int n)
{
    for (int i = 0; i < n; i++)
        if (sto_bind_i64(st, i + 1, binds[i]) != SQLITE_OK) return -1;
    return 0;
}

static void catalogs_list(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    svc_page_t pg;
    cat_filter_t f;
    int64_t binds[CAT_FILTER_MAX_BINDS], total = 0;
    sk_buf_t where = SK_BUF_INIT, sql = SK_BUF_INIT;
    cJSON *content = NULL;
    sqlite3_stmt *st = NULL;
    int rc, n;

    memset(&f, 0, sizeof f);
    svc_query_page(req, cat_sort_fields, CAT_SORT_DATE, 0, &pg);
    query_price(req, "priceFrom", &f.price_from, &f.has_price_from);
    query_price(req, "priceTo", &f.price_to, &f.has_price_to);
    query_date(req, "dateFrom", 0, &f.date_from, &f.has_date_from);
    query_date(req, "dateTo", 1, &f.date_to, &f.has_date_to);
    int status = svc_query_enum(req, "status", cat_status_names, CAT_STATUS_ANY);
    f.status = status < 0 ? CAT_STATUS_ANY : (cat_status_t)status;
    if (f.has_price_from && f.has_price_to && f.price_from > f.price_to)
        svc_req_field_error(req, "priceFrom", "must not be greater than priceTo");
    if (f.has_date_from && f.has_date_to && f.date_from > f.date_to)
        svc_req_field_error(req, "dateFrom", "must not be after dateTo");
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }

    sk_buf_init(&where, 256);
    sk_buf_init(&sql, 1024);
    n = cat_filter_where(&f, &where, binds);

    sk_buf_addf(&sql, "SELECT count(*) FROM catalogs c%s", where.len ? where.data : "");
    st = sto_stmt(db, sql.data);
    if (!st || bind_all(st, binds, n) < 0 || sqlite3_step(st) != SQLITE_ROW) goto fail;
    total = sqlite3_column_int64(st, 0);
    sto_done(st);

    sk_buf_reset(&sql);
    sk_buf_addf(&sql, "SELECT " CATALOG_COLS " FROM catalogs c%s%s LIMIT ? OFFSET ?",
                where.len ? where.data : "", cat_order_by(pg.sort, pg.desc));
    st = sto_stmt(db, sql.data);
    if (!st || bind_all(st, binds, n) < 0 || sto_bind_i64(st, n + 1, pg.size) != SQLITE_OK ||
        sto_bind_i64(st, n + 2, pg.page * pg.size) != SQLITE_OK)
        goto fail;
    content = cJSON_CreateArray();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(content, catalog_json(st));
    if (rc != SQLITE_DONE) goto fail;
    sk_buf_release(&where);
    sk_buf_release(&sql);
    svc_reply_json(req, 200, svc_page_json(content, &pg, total));
    return;
fail:
    sto_done(st);
    cJSON_Delete(content);
    sk_buf_release(&where);
    sk_buf_release(&sql);
    reply_db_error(svc, req, "list");
}

/* ---- GET /catalogs/{id} ---------------------------------------------------- */

static void catalogs_get(svc_t *svc, svc_req_t *req)
{
    const char *id = svc_req_param(req, "id");
    cJSON *cat = NULL;
    int rc = catalog_get(svc_db(svc), id, &cat);
    if (rc < 0)
        reply_db_error(svc, req, "get");
    else if (rc == 0)
        reply_not_found(req, id);
    else
        svc_reply_json(req, 200, cat);
}

/* ---- GET /catalogs/{id}/tickets ------------------------------------------- */

/* A plain array in ticket order: a catalog has at most 50 tickets. */
static void tickets_list(svc_t *svc, svc_req_t *req)
{
    static const char *const statuses[] = {"AVAILABLE", "RESERVED", "SOLD", NULL};
    sqlite3 *db = svc_db(svc);
    const char *id = svc_req_param(req, "id");
    char *author = NULL;
    cJSON *content = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    int status = svc_query_enum(req, "status", statuses, -1);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    rc = sto_query_text(db, &author, "SELECT author_id FROM catalogs WHERE id = ?", "t", id);
    if (rc < 0) goto fail;
    if (rc == 0) {
        reply_not_found(req, id);
        return;
    }
    int owner = svc_req_principal(req) && svc_req_is_owner(req, author);

    if (status < 0)
        st = sto_query(db,
                       "SELECT id, seq, status, booking_id FROM tickets WHERE catalog_id = ? "
                       "ORDER BY seq",
                       "t", id);
    else
        st = sto_query(db,
                       "SELECT id, seq, status, booking_id FROM tickets WHERE catalog_id = ? "
                       "AND status = ? ORDER BY seq",
                       "tt", id, statuses[status]);
    if (!st) goto fail;
    content = cJSON_CreateArray();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *t = ev_obj();
        ev_set_str(t, "ticketId", sto_col_text(st, 0));
        ev_set_str(t, "catalogId", id);
        ev_set_i64(t, "number", sqlite3_column_int64(st, 1));
        ev_set_str(t, "status", sto_col_text(st, 2));
        if (owner) ev_set_str(t, "bookingId", sto_col_text(st, 3));
        cJSON_AddItemToArray(content, t);
    }
    if (rc != SQLITE_DONE) goto fail;
    free(author);
    svc_reply_json(req, 200, content);
    return;
fail:
    sto_done(st);
    cJSON_Delete(content);
    free(author);
    reply_db_error(svc, req, "tickets");
}

/* ---- PUT /catalogs/{id} ---------------------------------------------------- */

/* Loads the catalog of the route, answering 404 / 500 / 403 itself.
 * Returns the catalog (caller frees) or NULL when it answered. */
static cJSON *owned_catalog(svc_t *svc, svc_req_t *req)
{
    const char *id = svc_req_param(req, "id");
    cJSON *cat = NULL;
    int rc = catalog_get(svc_db(svc), id, &cat);
    if (rc < 0) {
        reply_db_error(svc, req, "get");
        return NULL;
    }
    if (rc == 0) {
        reply_not_found(req, id);
        return NULL;
    }
    if (svc_require_owner(req, json_str(cat, "authorId")) < 0) {
        cJSON_Delete(cat);
        return NULL;
    }
    return cat;
}

static void catalogs_update(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    const char *id = svc_req_param(req, "id");
    cat_input_t in;
    int64_t keep_ms = INT64_MIN, total = 0, now = sk_wall_ms();

    cJSON *cat = owned_catalog(svc, req);
    if (!cat) return;
    int deactivated = strcmp(json_str(cat, "status"), "DEACTIVATED") == 0;
    ev_i64(cat, "totalTickets", &total);
    ev_time_parse(json_str(cat, "dateOfEvent"), &keep_ms);
    cJSON_Delete(cat);
    cat = NULL;
    if (deactivated) {
        svc_reply_problem_ex(req, 409, "catalog-deactivated", "Catalog is deactivated", NULL,
                             "a deactivated catalog cannot be changed");
        return;
    }

    input_read(req, 0, keep_ms, &in);
    if (in.has_tickets && in.tickets < total)
        svc_req_field_error(req, "numberOfTickets",
                            "can only be raised: the catalog has %" PRId64 " tickets", total);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    if (sto_begin(db) < 0) {
        reply_db_error(svc, req, "begin");
        return;
    }
    int n =
        sto_exec(db,
                 "UPDATE catalogs SET title = ?, description = ?, price = ?, currency = ?, "
                 "event_ms = ?, updated_ms = ? WHERE id = ? AND status = 'ACTIVE'",
                 "ttItIIt", in.title, in.description, in.price, in.currency, in.event_ms, now, id);
    if (n < 0 && is_unique_violation(db)) {
        sto_rollback(db);
        reply_title_taken(req, in.title);
        return;
    }
    if (n == 0) { /* deactivated since it was loaded */
        sto_rollback(db);
        svc_reply_problem_ex(req, 409, "catalog-deactivated", "Catalog is deactivated", NULL,
                             "a deactivated catalog cannot be changed");
        return;
    }
    if (n != 1) {
        reply_db_error(svc, req, "update");
        return;
    }
    if ((in.has_tickets && tickets_add(db, id, total + 1, in.tickets, now) < 0) ||
        catalog_get(db, id, &cat) != 1) {
        reply_db_error(svc, req, "update tickets");
        return;
    }
    if (emit_catalog(svc, req, "catalog.updated", cat) < 0 || svc_commit(svc) < 0) {
        cJSON_Delete(cat);
        reply_db_error(svc, req, "commit");
        return;
    }
    sk_info(CAT_LOG, "catalog %s updated by %s", id, svc_req_principal(req)->user_id);
    svc_reply_json(req, 200, cat);
}

/* ---- PATCH /catalogs/{id}/deactivate -------------------------------------- */

static void catalogs_deactivate(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    const char *id = svc_req_param(req, "id");

    cJSON *cat = owned_catalog(svc, req);
    if (!cat) return;
    if (strcmp(json_str(cat, "status"), "DEACTIVATED") == 0) {
        svc_reply_json(req, 200, cat); /* idempotent: no second event */
        return;
    }
    cJSON_Delete(cat);
    cat = NULL;
    if (sto_begin(db) < 0) {
        reply_db_error(svc, req, "begin");
        return;
    }
    if (sto_exec(db,
                 "UPDATE catalogs SET status = 'DEACTIVATED', updated_ms = ? "
                 "WHERE id = ? AND status = 'ACTIVE'",
                 "It", sk_wall_ms(), id) != 1 ||
        catalog_get(db, id, &cat) != 1) {
        reply_db_error(svc, req, "deactivate");
        return;
    }
    if (emit_catalog(svc, req, "catalog.deactivated", cat) < 0 || svc_commit(svc) < 0) {
        cJSON_Delete(cat);
        reply_db_error(svc, req, "commit");
        return;
    }
    sk_info(CAT_LOG, "catalog %s deactivated by %s", id, svc_req_principal(req)->user_id);
    svc_reply_json(req, 200, cat);
}

const svc_route_t catalog_routes[] = {
    {SVC_POST, "/catalogs", catalogs_create, SVC_AUTHOR},
    {SVC_GET, "/catalogs", catalogs_list, SVC_PUBLIC},
    {SVC_GET, "/catalogs/{id}", catalogs_get, SVC_PUBLIC},
    {SVC_GET, "/catalogs/{id}/tickets", tickets_list, SVC_PUBLIC},
    {SVC_PUT, "/catalogs/{id}", catalogs_update, SVC_OWNER},
    {SVC_PATCH, "/catalogs/{id}/deactivate", catalogs_deactivate, SVC_OWNER},
    {0, NULL, NULL, 0},
};
