/*
 * an_checks.c - GET /analytics/stats and GET /analytics/consistency.
 *
 * Both are computed from the indexed events at request time (SQL over the
 * type, aggregate and time indexes), so a fresh analytics that re-read the
 * log from the beginning answers the same.  A booking's status is the
 * status of its latest booking.* event (time, then arrival order).
 *
 * The invariants (ARCHITECTURE.md, "The booking saga"), one check each:
 *
 *   ticket-sold-once        per ticket, walking ticket.reserved / ticket.sell /
 *                           ticket.release in time order: never reserved for a
 *                           booking while another holds it, never sold while
 *                           sold, never sold for a booking that does not hold it
 *   confirmed-paid-and-sold every CONFIRMED booking has exactly one succeeded
 *                           payment (distinct paymentId) and a ticket.sell
 *   payment-confirmed-or-refunded  every succeeded payment belongs to a
 *                           CONFIRMED booking or was refunded (payments younger
 *                           than --grace-seconds are not judged yet)
 *   terminal-within-hold    every booking reaches a terminal state by its
 *                           expiresAt + --grace-seconds
 *   one-email-per-outcome   every terminal outcome (booking.confirmed/failed/
 *                           expired/cancelled, payment.refunded) of a booking
 *                           produced exactly one delivered email: one
 *                           notification.sent event per (bookingId, type).
 *                           Fallback while no notification.sent was ever
 *                           indexed (a notification service older than that
 *                           event): the notification service's "queued
 *                           notification" / "sent" log lines; skipped while
 *                           neither was ever indexed
 *   dlq-empty               no record in any <topic>.dlq
 *
 * Each violation names the correlation id of the flow (the offending event's
 * correlationId) so that the dashboard can link its timeline.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"

#define VIOLATIONS_MAX 200 /* listed per check; violationCount has them all */
#define BOOKING_TYPES                                                                              \
    "('booking.created', 'booking.confirmed', 'booking.failed', 'booking.expired', 'booking.cancelled')"
#define TERMINAL_TYPES "('booking.confirmed', 'booking.failed', 'booking.expired', 'booking.cancelled')"

static const char *col(sqlite3_stmt *st, int i)
{
    const char *s = sto_col_text(st, i);
    return s ? s : "";
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char t[SK_RFC3339_LEN];
    cJSON_AddStringToObject(o, name, sk_rfc3339_ms(ms, t));
}

/* ---- consistency ------------------------------------------------------------------ */

typedef struct check_s {
    cJSON *obj, *violations;
    int64_t count;
} check_t;

static void check_begin(check_t *c, cJSON *checks, const char *name, const char *description)
{
    c->obj = cJSON_CreateObject();
    cJSON_AddStringToObject(c->obj, "name", name);
    cJSON_AddStringToObject(c->obj, "description", description);
    c->violations = cJSON_CreateArray();
    c->count = 0;
    cJSON_AddItemToArray(checks, c->obj);
}

static void violation(check_t *c, const char *corr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void violation(check_t *c, const char *corr, const char *fmt, ...)
{
    c->count++;
    if (c->count > VIOLATIONS_MAX) return;
    sk_buf_t b = SK_BUF_INIT;
    sk_buf_init(&b, 128);
    va_list ap;
    va_start(ap, fmt);
    sk_buf_vaddf(&b, fmt, ap);
    va_end(ap);
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "correlationId", corr ? corr : "");
    cJSON_AddStringToObject(v, "detail", b.data);
    cJSON_AddItemToArray(c->violations, v);
    sk_buf_release(&b);
}

static int check_end(check_t *c)
{
    cJSON_AddBoolToObject(c->obj, "ok", c->count == 0);
    cJSON_AddNumberToObject(c->obj, "violationCount", (double)c->count);
    cJSON_AddItemToObject(c->obj, "violations", c->violations);
    return c->count == 0;
}

static int check_tickets(sqlite3 *db, check_t *c)
{
    sqlite3_stmt *st = sto_query(db,
                                 "SELECT json_extract(doc, '$.data.ticketId') AS t, type,"
                                 " json_extract(doc, '$.data.bookingId'), correlation_id"
                                 " FROM events WHERE type IN ('ticket.reserved', 'ticket.sell', 'ticket.release')"
                                 " AND t IS NOT NULL ORDER BY t, time_ms, seq",
                                 "");
    if (!st) return -1;
    char *ticket = NULL, *holder = NULL;
    int sold = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = col(st, 0), *type = col(st, 1), *b = col(st, 2), *corr = col(st, 3);
        if (!ticket || strcmp(ticket, t)) {
            free(ticket);
            free(holder);
            ticket = sk_strdup(t);
            holder = NULL;
            sold = 0;
        }
        if (!strcmp(type, "ticket.reserved")) {
            if (holder && strcmp(holder, b))
                violation(c, corr, "ticket %s reserved for booking %s while %s by booking %s", t, b,
                          sold ? "sold" : "held", holder);
            free(holder);
            holder = sk_strdup(b);
        } else if (!strcmp(type, "ticket.sell")) {
            if (sold)
                violation(c, corr, "ticket %s sold twice: to booking %s, then again to booking %s", t,
                          holder ? holder : "?", b);
            else if (!holder || strcmp(holder, b))
                violation(c, corr, "ticket %s sold to booking %s, which does not hold it", t, b);
            sold = 1;
            free(holder);
            holder = sk_strdup(b);
        } else if (holder && !strcmp(holder, b)) { /* ticket.release by its holder */
            free(holder);
            holder = NULL;
            sold = 0;
        }
    }
    sqlite3_reset(st);
    free(ticket);
    free(holder);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int check_confirmed(sqlite3 *db, check_t *c)
{
    sqlite3_stmt *st = sto_query(
        db,
        "WITH l AS (SELECT agg_id, type, correlation_id,"
        "  ROW_NUMBER() OVER (PARTITION BY agg_id ORDER BY time_ms DESC, seq DESC) AS rn"
        "  FROM events WHERE type IN " BOOKING_TYPES ")"
        " SELECT l.agg_id, l.correlation_id,"
        "  (SELECT count(DISTINCT json_extract(p.doc, '$.data.paymentId')) FROM events p"
        "    WHERE p.agg_id = l.agg_id AND p.type = 'payment.succeeded'),"
        "  (SELECT count(*) FROM events s WHERE s.agg_id = l.agg_id AND s.type = 'ticket.sell')"
        " FROM l WHERE l.rn = 1 AND l.type = 'booking.confirmed'",
        "");
    if (!st) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t paid = sqlite3_column_int64(st, 2), sells = sqlite3_column_int64(st, 3);
        if (paid != 1)
            violation(c, col(st, 1), "booking %s is CONFIRMED with %" PRId64 " succeeded payments", col(st, 0), paid);
        if (sells == 0) violation(c, col(st, 1), "booking %s is CONFIRMED but its ticket was never sold", col(st, 0));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int check_payments(sqlite3 *db, check_t *c, int64_t judge_before)
{
    sqlite3_stmt *st = sto_query(
        db,
        "SELECT p.agg_id, p.correlation_id, json_extract(p.doc, '$.data.paymentId') AS pid, min(p.time_ms),"
        "  (SELECT b.type FROM events b WHERE b.agg_id = p.agg_id AND b.type IN " BOOKING_TYPES
        "    ORDER BY b.time_ms DESC, b.seq DESC LIMIT 1),"
        "  (SELECT count(*) FROM events r WHERE r.agg_id = p.agg_id AND r.type = 'payment.refunded')"
        " FROM events p WHERE p.type = 'payment.succeeded' GROUP BY p.agg_id, pid",
        "");
    if (!st) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 3) >= judge_before) continue;
        const char *last = sto_col_text(st, 4);
        int64_t refunded = sqlite3_column_int64(st, 5);
        if (last && !strcmp(last, "booking.confirmed")) continue;
        if (refunded) continue;
        if (!last)
            violation(c, col(st, 1), "payment %s succeeded for booking %s, which is unknown, and was not refunded",
                      col(st, 2), col(st, 0));
        else
            violation(c, col(st, 1), "payment %s succeeded for booking %s, which is %s, and was not refunded",
                      col(st, 2), col(st, 0), last + strlen("booking."));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int check_terminal(sqlite3 *db, check_t *c, int64_t now, int64_t grace_ms)
{
    sqlite3_stmt *st = sto_query(db,
                                 "SELECT c.agg_id, c.correlation_id, json_extract(c.doc, '$.data.expiresAt'),"
                                 "  (SELECT min(t.time_ms) FROM events t WHERE t.agg_id = c.agg_id"
                                 "    AND t.type IN " TERMINAL_TYPES ")"
                                 " FROM events c WHERE c.type = 'booking.created'",
                                 "");
    if (!st) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t expires;
        if (ev_time_parse(col(st, 2), &expires) < 0) continue;
        int64_t deadline = expires + grace_ms;
        if (sqlite3_column_type(st, 3) == SQLITE_NULL) {
            if (now > deadline)
                violation(c, col(st, 1), "booking %s is not terminal %" PRId64 " s after its hold ended", col(st, 0),
                          (now - expires) / 1000);
        } else if (sqlite3_column_int64(st, 3) > deadline) {
            violation(c, col(st, 1), "booking %s became terminal %" PRId64 " ms after its hold ended", col(st, 0),
                      (int64_t)sqlite3_column_int64(st, 3) - expires);
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* The log-line fallback of check_emails (notif_queued / notif_sent, parsed
 * from notification's log lines by an_ingest.c): used only while no
 * notification.sent event was indexed.  Log shipping is at most once, so a
 * lost line can make it report a false violation. */
static int check_emails_from_logs(sqlite3 *db, check_t *c, int64_t judge_before)
{
    int64_t any = 0;
    int r = sto_query_i64(db, &any, "SELECT 1 FROM logs WHERE service = 'notification' LIMIT 1", "");
    if (r < 0) return -1;
    if (r == 0) {
        cJSON_AddStringToObject(c->obj, "skipped",
                                "no notification.sent event nor log line of the notification service indexed yet");
        return 0;
    }
    cJSON_AddStringToObject(c->obj, "basis", "logs");
    sqlite3_stmt *st = sto_query(
        db,
        "SELECT t.agg_id, min(t.correlation_id), t.type, min(t.time_ms),"
        "  (SELECT count(*) FROM notif_queued q WHERE q.event_id IN"
        "    (SELECT x.id FROM events x WHERE x.agg_id = t.agg_id AND x.type = t.type)),"
        "  (SELECT count(*) FROM notif_queued q JOIN notif_sent s ON s.notification_id = q.notification_id"
        "    WHERE q.event_id IN (SELECT x.id FROM events x WHERE x.agg_id = t.agg_id AND x.type = t.type))"
        " FROM events t WHERE t.type IN ('booking.confirmed', 'booking.failed', 'booking.expired',"
        "  'booking.cancelled', 'payment.refunded') AND t.agg_id IS NOT NULL GROUP BY t.agg_id, t.type",
        "");
    if (!st) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t queued = sqlite3_column_int64(st, 4), sent = sqlite3_column_int64(st, 5);
        int judged = sqlite3_column_int64(st, 3) < judge_before;
        if (queued > 1)
            violation(c, col(st, 1), "booking %s: %" PRId64 " emails about %s", col(st, 0), queued, col(st, 2));
        else if (judged && queued == 0)
            violation(c, col(st, 1), "booking %s: no email about %s", col(st, 0), col(st, 2));
        else if (judged && sent < queued)
            violation(c, col(st, 1), "booking %s: the email about %s was queued but never sent", col(st, 0),
                      col(st, 2));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * One email per terminal outcome, from the notification.sent events: each
 * is emitted in the transaction that marks a notification SENT, once per
 * notification, and indexed once (events.id is UNIQUE), so counting them per
 * (bookingId, notified type) counts the emails delivered about an outcome.
 */
static int check_emails(sqlite3 *db, check_t *c, int64_t judge_before)
{
    int64_t any = 0;
    int r = sto_query_i64(db, &any, "SELECT 1 FROM events WHERE type = 'notification.sent' LIMIT 1", "");
    if (r < 0) return -1;
    if (r == 0) return check_emails_from_logs(db, c, judge_before);
    cJSON_AddStringToObject(c->obj, "basis", "events");
    sqlite3_stmt *st = sto_query(
        db,
        "WITH sent AS (SELECT json_extract(s.doc, '$.data.bookingId') AS bid,"
        "    json_extract(s.doc, '$.data.type') AS about, count(*) AS n"
        "  FROM events s WHERE s.type = 'notification.sent' AND s.valid GROUP BY bid, about)"
        " SELECT t.agg_id, min(t.correlation_id), t.type, min(t.time_ms), coalesce(max(sent.n), 0)"
        " FROM events t LEFT JOIN sent ON sent.bid = t.agg_id AND sent.about = t.type"
        " WHERE t.type IN ('booking.confirmed', 'booking.failed', 'booking.expired',"
        "  'booking.cancelled', 'payment.refunded') AND t.agg_id IS NOT NULL GROUP BY t.agg_id, t.type",
        "");
    if (!st) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t sent = sqlite3_column_int64(st, 4);
        int judged = sqlite3_column_int64(st, 3) < judge_before;
        if (sent > 1)
            violation(c, col(st, 1), "booking %s: %" PRId64 " emails sent about %s", col(st, 0), sent, col(st, 2));
        else if (judged && sent == 0)
            violation(c, col(st, 1), "booking %s: no email sent about %s", col(st, 0), col(st, 2));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int check_dlq(sqlite3 *db, check_t *c)
{
    sqlite3_stmt *st = sto_query(db,
                                 "SELECT topic, off, orig_topic, consumer, error, event_type, event_id,"
                                 " correlation_id FROM records WHERE kind = 'dlq' ORDER BY time_ms",
                                 "");
    if (!st) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *corr = sto_col_text(st, 7) ? col(st, 7) : col(st, 6);
        violation(c, corr, "%s@%" PRId64 ": %s%s%s from %s dead-lettered by %s: %s", col(st, 0),
                  (int64_t)sqlite3_column_int64(st, 1), col(st, 5), *col(st, 5) ? " " : "", col(st, 6), col(st, 2),
                  col(st, 3), col(st, 4));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

cJSON *an_consistency(an_t *an, int64_t now, char *err, size_t errsz)
{
    sqlite3 *db = svc_db(an->svc);
    int64_t grace_ms = an->conf->grace_s * 1000;
    cJSON *doc = cJSON_CreateObject();
    cJSON *checks = cJSON_CreateArray();
    check_t c = {0};
    int ok = 1;
#define RUN(name, desc, call)                                                                      \
    do {                                                                                           \
        check_begin(&c, checks, name, desc);                                                       \
        if ((call) < 0) goto fail;                                                                 \
        ok &= check_end(&c);                                                                       \
    } while (0)
    RUN("ticket-sold-once", "no ticket sold twice or held by two bookings", check_tickets(db, &c));
    RUN("confirmed-paid-and-sold", "every CONFIRMED booking has exactly one succeeded payment and a sold ticket",
        check_confirmed(db, &c));
    RUN("payment-confirmed-or-refunded", "every succeeded payment belongs to a CONFIRMED booking or was refunded",
        check_payments(db, &c, now - grace_ms));
    RUN("terminal-within-hold", "every booking reaches a terminal state within its hold + grace",
        check_terminal(db, &c, now, grace_ms));
    RUN("one-email-per-outcome", "every terminal outcome of a booking produced exactly one email",
        check_emails(db, &c, now - grace_ms));
    RUN("dlq-empty", "no event left in a dead-letter topic", check_dlq(db, &c));
#undef RUN
    cJSON_AddBoolToObject(doc, "ok", ok);
    add_time(doc, "checkedAt", now);
    cJSON_AddNumberToObject(doc, "graceSeconds", (double)an->conf->grace_s);
    int64_t n = 0;
    if (sto_query_i64(db, &n, "SELECT count(*) FROM events", "") < 0) goto fail;
    cJSON_AddNumberToObject(doc, "eventsChecked", (double)n);
    cJSON_AddItemToObject(doc, "checks", checks);
    return doc;
fail:
    sk_errf(err, errsz, "consistency: %s", sqlite3_errmsg(db));
    if (c.violations && !cJSON_GetObjectItemCaseSensitive(c.obj, "violations")) cJSON_Delete(c.violations);
    cJSON_Delete(checks);
    cJSON_Delete(doc);
    return NULL;
}

void an_get_consistency(svc_t *svc, svc_req_t *req)
{
    char err[512];
    cJSON *doc = an_consistency(an_of(svc), sk_wall_ms(), err, sizeof err);
    if (!doc) {
        sk_error("consistency", "%s", err);
        svc_reply_problem(req, 500, NULL, NULL);
        return;
    }
    svc_reply_json(req, 200, doc);
}

/* ---- stats ------------------------------------------------------------------------ */

typedef struct booking_row_s {
    char *status, *reason, *catalog, *currency;
    int64_t amount, created, confirmed; /* confirmed -1: never */
} booking_row_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double ratio(int64_t a, int64_t b)
{
    return b ? round((double)a / (double)b * 10000.0) / 10000.0 : 0.0;
}

static cJSON *obj_child(cJSON *parent, const char *name)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, name);
    if (!o) o = cJSON_AddObjectToObject(parent, name);
    return o;
}

static void obj_inc(cJSON *o, const char *name, double by)
{
    cJSON *n = cJSON_GetObjectItemCaseSensitive(o, name);
    if (n) cJSON_SetNumberValue(n, n->valuedouble + by);
    else cJSON_AddNumberToObject(o, name, by);
}

static int count_distinct(sqlite3 *db, const char *type, int64_t from, int64_t to, int64_t *out)
{
    return sto_query_i64(db, out,
                         "SELECT count(DISTINCT e.agg_id) FROM events e WHERE e.type = ? AND e.agg_id IN"
                         " (SELECT agg_id FROM events WHERE type = 'booking.created' AND time_ms >= ? AND time_ms < ?)",
                         "tII", type, from, to) < 0
               ? -1
               : 0;
}

static int stats_bookings(sqlite3 *db, cJSON *doc, int64_t from, int64_t to)
{
    sqlite3_stmt *st = sto_query(
        db,
        "WITH b AS (SELECT agg_id, min(time_ms) AS created FROM events"
        "  WHERE type = 'booking.created' AND time_ms >= ? AND time_ms < ? GROUP BY agg_id),"
        " l AS (SELECT e.agg_id, e.doc, ROW_NUMBER() OVER (PARTITION BY e.agg_id ORDER BY e.time_ms DESC, e.seq DESC)"
        "  AS rn FROM events e JOIN b ON e.agg_id = b.agg_id WHERE e.type IN " BOOKING_TYPES ")"
        " SELECT b.created, json_extract(l.doc, '$.data.status'), json_extract(l.doc, '$.data.reason'),"
        "  json_extract(l.doc, '$.data.catalogId'), json_extract(l.doc, '$.data.amount'),"
        "  json_extract(l.doc, '$.data.currency'),"
        "  (SELECT min(c.time_ms) FROM events c WHERE c.agg_id = b.agg_id AND c.type = 'booking.confirmed')"
        " FROM b JOIN l ON l.agg_id = b.agg_id AND l.rn = 1",
        "II", from, to);
    if (!st) return -1;
    cJSON *by_status = cJSON_AddObjectToObject(doc, "bookingsByStatus");
    cJSON *revenue = cJSON_CreateObject(); /* catalog -> {currency -> {amount, bookings}} */
    cJSON *reasons = cJSON_CreateObject(); /* status -> {reason -> n} */
    int64_t *ttc = NULL;
    size_t nttc = 0, cap = 0;
    int64_t requested = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        requested++;
        const char *status = col(st, 1);
        obj_inc(by_status, *status ? status : "UNKNOWN", 1);
        if (!strcmp(status, "CONFIRMED")) {
            cJSON *cat = obj_child(revenue, col(st, 3));
            cJSON *cur = obj_child(cat, *col(st, 5) ? col(st, 5) : "?");
            obj_inc(cur, "amount", (double)sqlite3_column_int64(st, 4));
            obj_inc(cur, "bookings", 1);
        } else if (!strcmp(status, "FAILED") || !strcmp(status, "EXPIRED") || !strcmp(status, "CANCELLED")) {
            obj_inc(obj_child(reasons, status), *col(st, 2) ? col(st, 2) : "unknown", 1);
        }
        if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
            if (nttc == cap) {
                cap = cap ? cap * 2 : 256;
                ttc = sk_realloc(ttc, cap * sizeof *ttc);
            }
            ttc[nttc++] = sqlite3_column_int64(st, 6) - sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(ttc);
        cJSON_Delete(revenue);
        cJSON_Delete(reasons);
        return -1;
    }
    /* revenue as a list */
    cJSON *rev = cJSON_AddArrayToObject(doc, "revenueByCatalog");
    for (cJSON *cat = revenue->child; cat; cat = cat->next)
        for (cJSON *cur = cat->child; cur; cur = cur->next) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "catalogId", cat->string);
            cJSON_AddStringToObject(o, "currency", cur->string);
            cJSON_AddNumberToObject(o, "amount", cJSON_GetObjectItem(cur, "amount")->valuedouble);
            cJSON_AddNumberToObject(o, "bookings", cJSON_GetObjectItem(cur, "bookings")->valuedouble);
            cJSON_AddItemToArray(rev, o);
        }
    cJSON_Delete(revenue);
    cJSON *fr = cJSON_AddArrayToObject(doc, "endedByReason");
    for (cJSON *s = reasons->child; s; s = s->next)
        for (cJSON *r = s->child; r; r = r->next) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "status", s->string);
            cJSON_AddStringToObject(o, "reason", r->string);
            cJSON_AddNumberToObject(o, "count", r->valuedouble);
            cJSON_AddItemToArray(fr, o);
        }
    cJSON_Delete(reasons);

    /* the funnel */
    int64_t reserved = 0, paid = 0, confirmed = 0;
    if (count_distinct(db, "ticket.reserved", from, to, &reserved) < 0 ||
        count_distinct(db, "payment.succeeded", from, to, &paid) < 0 ||
        count_distinct(db, "booking.confirmed", from, to, &confirmed) < 0) {
        free(ttc);
        return -1;
    }
    cJSON *f = cJSON_AddObjectToObject(doc, "funnel");
    cJSON_AddNumberToObject(f, "requested", (double)requested);
    cJSON_AddNumberToObject(f, "reserved", (double)reserved);
    cJSON_AddNumberToObject(f, "paid", (double)paid);
    cJSON_AddNumberToObject(f, "confirmed", (double)confirmed);
    cJSON *conv = cJSON_AddObjectToObject(f, "conversion");
    cJSON_AddNumberToObject(conv, "reserved", ratio(reserved, requested));
    cJSON_AddNumberToObject(conv, "paid", ratio(paid, reserved));
    cJSON_AddNumberToObject(conv, "confirmed", ratio(confirmed, paid));
    cJSON_AddNumberToObject(conv, "overall", ratio(confirmed, requested));

    cJSON *t = cJSON_AddObjectToObject(doc, "timeToConfirmMs");
    cJSON_AddNumberToObject(t, "count", (double)nttc);
    if (nttc) {
        qsort(ttc, nttc, sizeof *ttc, cmp_i64);
        cJSON_AddNumberToObject(t, "median", (double)ttc[(nttc - 1) / 2]);
        cJSON_AddNumberToObject(t, "p95", (double)ttc[(size_t)ceil(0.95 * (double)nttc) - 1]);
        cJSON_AddNumberToObject(t, "max", (double)ttc[nttc - 1]);
    } else {
        cJSON_AddNullToObject(t, "median");
        cJSON_AddNullToObject(t, "p95");
        cJSON_AddNullToObject(t, "max");
    }
    free(ttc);
    return 0;
}

/* Events by type per bucket, and bookings by outcome per bucket. */
static int stats_series(sqlite3 *db, cJSON *doc, int64_t from, int64_t to)
{
    int64_t lo = from, hi = to;
    int64_t mn = 0, mx = 0;
    if (sto_query_i64(db, &mn, "SELECT min(time_ms) FROM events WHERE time_ms >= ? AND time_ms < ?", "II", from,
                      to) < 0 ||
        sto_query_i64(db, &mx, "SELECT max(time_ms) FROM events WHERE time_ms >= ? AND time_ms < ?", "II", from,
                      to) < 0)
        return -1;
    if (lo <= 0) lo = mn;
    if (hi == INT64_MAX) hi = mx + 1;
    if (hi <= lo) hi = lo + 1;
    int64_t bucket = 60000;
    int64_t span = hi - lo;
    if (span / bucket > 240) bucket = ((span / 240) / 60000 + 1) * 60000;
    cJSON_AddNumberToObject(doc, "bucketMs", (double)bucket);

    sqlite3_stmt *st = sto_query(db,
                                 "SELECT (time_ms / ?1) * ?1 AS m, type, count(*) FROM events"
                                 " WHERE time_ms >= ?2 AND time_ms < ?3 GROUP BY m, type ORDER BY m",
                                 "III", bucket, from, to);
    if (!st) return -1;
    cJSON *per = cJSON_AddArrayToObject(doc, "eventsPerMinute");
    cJSON *book = cJSON_AddArrayToObject(doc, "bookingsPerMinute");
    cJSON *by_type = cJSON_AddObjectToObject(doc, "eventsByType");
    int64_t cur = -1;
    cJSON *counts = NULL, *bk = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t m = sqlite3_column_int64(st, 0);
        const char *type = col(st, 1);
        double n = (double)sqlite3_column_int64(st, 2);
        if (m != cur) {
            cur = m;
            cJSON *o = cJSON_CreateObject();
            add_time(o, "minute", m);
            counts = cJSON_AddObjectToObject(o, "counts");
            cJSON_AddItemToArray(per, o);
            bk = cJSON_CreateObject();
            add_time(bk, "minute", m);
            static const char *const outcomes[] = {"created", "confirmed", "failed", "expired", "cancelled"};
            for (size_t i = 0; i < 5; i++) cJSON_AddNumberToObject(bk, outcomes[i], 0);
            cJSON_AddItemToArray(book, bk);
        }
        cJSON_AddNumberToObject(counts, type, n);
        obj_inc(by_type, type, n);
        if (!strncmp(type, "booking.", 8)) obj_inc(bk, type + 8, n);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int stats_totals(an_t *an, sqlite3 *db, cJSON *doc, int64_t from, int64_t to)
{
    int64_t ev = 0, lg = 0, rec = 0, dlq = 0;
    if (sto_query_i64(db, &ev, "SELECT count(*) FROM events WHERE time_ms >= ? AND time_ms < ?", "II", from, to) < 0 ||
        sto_query_i64(db, &lg, "SELECT count(*) FROM logs WHERE time_ms >= ? AND time_ms < ?", "II", from, to) < 0 ||
        sto_query_i64(db, &rec, "SELECT count(*) FROM records WHERE time_ms >= ? AND time_ms < ?", "II", from, to) <
            0 ||
        sto_query_i64(db, &dlq, "SELECT count(*) FROM records WHERE kind = 'dlq' AND time_ms >= ? AND time_ms < ?",
                      "II", from, to) < 0)
        return -1;
    cJSON *t = cJSON_AddObjectToObject(doc, "totals");
    cJSON_AddNumberToObject(t, "events", (double)ev);
    cJSON_AddNumberToObject(t, "logs", (double)lg);
    cJSON_AddNumberToObject(t, "records", (double)rec);
    cJSON_AddNumberToObject(t, "dlq", (double)dlq);

    sqlite3_stmt *st = sto_query(db,
                                 "SELECT topic, count(*) FROM records WHERE kind = 'dlq' AND time_ms >= ?"
                                 " AND time_ms < ? GROUP BY topic ORDER BY topic",
                                 "II", from, to);
    if (!st) return -1;
    cJSON *d = cJSON_AddArrayToObject(doc, "dlq");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "topic", col(st, 0));
        cJSON_AddNumberToObject(o, "count", (double)sqlite3_column_int64(st, 1));
        cJSON_AddItemToArray(d, o);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return -1;

    if (an->ingest) {
        an_ingest_info_t in;
        an_ingest_info(an->ingest, &in);
        cJSON *i = cJSON_AddObjectToObject(doc, "ingest");
        cJSON_AddNumberToObject(i, "lag", (double)in.lag);
        cJSON_AddNumberToObject(i, "partitions", in.assigned);
        cJSON_AddNumberToObject(i, "records", (double)in.records);
        cJSON_AddNumberToObject(i, "batches", (double)in.batches);
        if (in.last_batch_ms) add_time(i, "lastBatchAt", in.last_batch_ms);
        else cJSON_AddNullToObject(i, "lastBatchAt");
    }
    return 0;
}

void an_get_stats(svc_t *svc, svc_req_t *req)
{
    an_t *an = an_of(svc);
    sqlite3 *db = svc_db(svc);
    int64_t from, to;
    an_query_range(req, &from, &to);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    if (from > 0) add_time(doc, "from", from);
    else cJSON_AddNullToObject(doc, "from");
    if (to != INT64_MAX) add_time(doc, "to", to);
    else cJSON_AddNullToObject(doc, "to");
    add_time(doc, "generatedAt", sk_wall_ms());
    if (stats_totals(an, db, doc, from, to) < 0 || stats_series(db, doc, from, to) < 0 ||
        stats_bookings(db, doc, from, to) < 0) {
        sk_error("stats", "%s", sqlite3_errmsg(db));
        cJSON_Delete(doc);
        svc_reply_problem(req, 500, NULL, NULL);
        return;
    }
    svc_reply_json(req, 200, doc);
}
