/*
 * payment.c - souk-payment: the simulated card provider of the booking saga
 * (ARCHITECTURE.md, "The booking saga", steps 4-6).
 *
 *   paymentevent  payment.requested -> one PENDING payment per booking
 *                                      (--auto-pay: decided at once)
 *                 refund.requested  -> SUCCEEDED -> REFUNDED (payment.3);
 *                                      PENDING -> CANCELLED; else a no-op
 *   booking       booking.created / failed / expired / cancelled -> a small
 *                 projection of bookings (owner, status), so that a pay that
 *                 arrives before payment.requested can be told apart from a
 *                 pay for a booking that does not exist
 *   POST /payments/{bookingId}/pay  the owner pays: card rules (card.h),
 *                 the sandbox's decision, payment.1 / payment.2
 *   GET  /payments/{bookingId}      the owner or an ADMIN reads it
 *
 * Payment states: PENDING -> SUCCEEDED -> REFUNDED, PENDING -> FAILED,
 * PENDING -> CANCELLED (refund.requested before any pay).  Every change is a
 * guarded UPDATE in the transaction that adds its event to the outbox.
 *
 * Card data: only the last four digits are stored, logged or published;
 * the number and the CVC live in the request's parsed body and die with it.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "card.h"
#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "svc.h"

#define FAC "payment"
#define BOOKING_ID_MAX EV_ID_MAX /* longest booking id a path may name */
#define CURRENCY_MAX 8

typedef struct payment_conf_s {
    svc_conf_t common;
    int auto_pay;
    int64_t auto_pay_decline_percent;
} payment_conf_t;

static payment_conf_t payment_conf;

static const sk_conf_entry_t payment_conf_table[] = {
    {"auto-pay", SK_CONF_BOOL, offsetof(payment_conf_t, auto_pay), "false", 0, 0,
     "decide each payment when payment.requested arrives, without a card (demos, load tests)"},
    {"auto-pay-decline-percent", SK_CONF_INT, offsetof(payment_conf_t, auto_pay_decline_percent),
     "0", 0, 100,
     "with --auto-pay: the share of bookings (chosen by a hash of the booking id) declined"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sto_migration_t payment_migrations[] = {
    SVC_EVENTS_MIGRATIONS,
    {3, "payments",
     "CREATE TABLE payments (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  booking_id TEXT NOT NULL UNIQUE,\n"
     "  user_id TEXT NOT NULL,\n"
     "  amount INTEGER NOT NULL CHECK (amount >= 0),\n"
     "  currency TEXT NOT NULL,\n"
     "  status TEXT NOT NULL DEFAULT 'PENDING'\n"
     "    CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'REFUNDED', 'CANCELLED')),\n"
     "  card_last4 TEXT CHECK (card_last4 IS NULL OR length(card_last4) <= 4),\n"
     "  reason TEXT,\n"         /* why it FAILED */
     "  refund_reason TEXT,\n"  /* why it was REFUNDED / CANCELLED */
     "  correlation_id TEXT,\n" /* of payment.requested: the saga's */
     "  created_at INTEGER NOT NULL,\n"
     "  decided_at INTEGER,\n"
     "  refunded_at INTEGER,\n"
     "  updated_at INTEGER NOT NULL\n"
     ");\n"
     "CREATE INDEX payments_user ON payments (user_id);\n"
     "CREATE TABLE bookings (\n"
     "  booking_id TEXT PRIMARY KEY,\n"
     "  user_id TEXT NOT NULL,\n"
     "  status TEXT NOT NULL,\n"
     "  updated_at INTEGER NOT NULL\n"
     ") WITHOUT ROWID;\n"},
};

/* ---- the payment row --------------------------------------------------------------- */

/* One payment as loaded; strings are owned (payment_release). */
typedef struct payment_s {
    char *id, *booking_id, *user_id, *currency, *status, *card_last4, *reason, *refund_reason,
        *correlation_id;
    int64_t amount, created_at, decided_at, refunded_at; /* 0: not yet */
} payment_t;

static void payment_release(payment_t *p)
{
    free(p->id);
    free(p->booking_id);
    free(p->user_id);
    free(p->currency);
    free(p->status);
    free(p->card_last4);
    free(p->reason);
    free(p->refund_reason);
    free(p->correlation_id);
    memset(p, 0, sizeof *p);
}

/* Loads the payment of booking_id into *p (released by the caller when 1).
 * Returns 1 found, 0 none, -1 error (sqlite3_errmsg). */
static int payment_load(sqlite3 *db, const char *booking_id, payment_t *p)
{
    memset(p, 0, sizeof *p);
    sqlite3_stmt *st =
        sto_query(db,
                  "SELECT id, booking_id, user_id, amount, currency, status, card_last4, "
                  "reason, refund_reason, correlation_id, created_at, "
                  "coalesce(decided_at, 0), coalesce(refunded_at, 0) "
                  "FROM payments WHERE booking_id = ?",
                  "t", booking_id);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) {
        sto_done(st);
        return -1;
    }
    p->id = sto_col_dup(st, 0);
    p->booking_id = sto_col_dup(st, 1);
    p->user_id = sto_col_dup(st, 2);
    p->amount = sqlite3_column_int64(st, 3);
    p->currency = sto_col_dup(st, 4);
    p->status = sto_col_dup(st, 5);
    p->card_last4 = sto_col_dup(st, 6);
    p->reason = sto_col_dup(st, 7);
    p->refund_reason = sto_col_dup(st, 8);
    p->correlation_id = sto_col_dup(st, 9);
    p->created_at = sqlite3_column_int64(st, 10);
    p->decided_at = sqlite3_column_int64(st, 11);
    p->refunded_at = sqlite3_column_int64(st, 12);
    sto_done(st);
    return 1;
}

static void set_time(cJSON *o, const char *name, int64_t ms)
{
    char buf[SK_RFC3339_LEN];
    if (ms > 0) ev_set_str(o, name, sk_rfc3339_ms(ms, buf));
}

/* The API's view of a payment. */
static cJSON *payment_json(const payment_t *p)
{
    cJSON *o = ev_obj();
    ev_set_str(o, "paymentId", p->id);
    ev_set_str(o, "bookingId", p->booking_id);
    ev_set_str(o, "userId", p->user_id);
    ev_set_str(o, "status", p->status);
    ev_set_i64(o, "amount", p->amount);
    ev_set_str(o, "currency", p->currency);
    ev_set_str(o, "cardLast4", p->card_last4);
    if (p->reason) ev_set_str(o, "reason", p->reason);
    if (p->refund_reason) ev_set_str(o, "refundReason", p->refund_reason);
    set_time(o, "createdAt", p->created_at);
    set_time(o, "decidedAt", p->decided_at);
    set_time(o, "refundedAt", p->refunded_at);
    return o;
}

/* data of payment.succeeded / failed / refunded (libevents' schema). */
static cJSON *payment_event_data(const payment_t *p, const char *reason)
{
    cJSON *d = ev_obj();
    ev_set_str(d, "bookingId", p->booking_id);
    ev_set_str(d, "paymentId", p->id);
    ev_set_str(d, "userId", p->user_id);
    ev_set_i64(d, "amount", p->amount);
    ev_set_str(d, "currency", p->currency);
    ev_set_str(d, "cardLast4", p->card_last4);
    ev_set_str(d, "reason", reason);
    return d;
}

static void count(svc_t *svc, const char *status)
{
    svc_metric_counter_add(svc, "payments_total", (const char *[]){"status", status, NULL}, 1);
}

/*
 * PENDING -> SUCCEEDED / FAILED with its event, inside the transaction open
 * on db: from a consumer handler (cause = the event; db its transaction) or
 * from a request (cause NULL; db = svc_db, after sto_begin).  last4 may be
 * NULL (auto-pay: no card).  Returns 1 when decided now (*p updated), 0 when
 * the payment was no longer PENDING, -1 on error (err).
 */
static int payment_decide(svc_t *svc, sqlite3 *db, const ev_event_t *cause, payment_t *p,
                          const char *last4, const char *reason, char *err, size_t errsz)
{
    const char *status = reason ? "FAILED" : "SUCCEEDED";
    int64_t now = sk_wall_ms();
    int n = sto_exec(db,
                     "UPDATE payments SET status = ?, card_last4 = ?, reason = ?, decided_at = ?, "
                     "updated_at = ? WHERE id = ? AND status = 'PENDING'",
                     "tttIIt", status, last4, reason, now, now, p->id);
    if (n < 0) {
        snprintf(err, errsz, "payments: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (n == 0) return 0;
    free(p->status);
    p->status = sk_strdup(status);
    free(p->card_last4);
    p->card_last4 = last4 ? sk_strdup(last4) : NULL;
    free(p->reason);
    p->reason = reason ? sk_strdup(reason) : NULL;
    p->decided_at = now;

    const char *type = reason ? "payment.failed" : "payment.succeeded";
    cJSON *data = payment_event_data(p, reason);
    int rc = cause ? svc_emit_caused(svc, db, cause, type, data, err, errsz)
                   : svc_emit(svc, type, p->correlation_id, data, err, errsz);
    return rc < 0 ? -1 : 1;
}

/* ---- events ------------------------------------------------------------------------ */

static void new_uuid(char out[37])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

/*
 * payment.requested: one PENDING payment per booking.  A second request for
 * the same booking (another event id: booking retried, or a replay) is a
 * recorded no-op.  With --auto-pay the payment is decided in this same
 * transaction.
 */
static int on_payment_requested(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err,
                                size_t errsz)
{
    svc_t *svc = ctx;
    const payment_conf_t *conf = (const payment_conf_t *)svc_conf(svc);
    const char *booking_id = ev_str(ev->data, "bookingId");
    const char *user_id = ev_str(ev->data, "userId");
    const char *currency = ev_str(ev->data, "currency");
    int64_t amount = 0;
    ev_i64(ev->data, "amount", &amount);

    /* The schema checked the types; these are the values a payment needs. */
    if (!*booking_id || strlen(booking_id) > BOOKING_ID_MAX || !*user_id || amount < 0 ||
        !*currency || strlen(currency) > CURRENCY_MAX) {
        snprintf(err, errsz, "payment.requested: bad bookingId, userId, amount or currency");
        return -1;
    }

    char id[37];
    new_uuid(id);
    int64_t now = sk_wall_ms();
    int n = sto_exec(
        db,
        "INSERT INTO payments (id, booking_id, user_id, amount, currency, correlation_id, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (booking_id) DO NOTHING",
        "tttIttII", id, booking_id, user_id, amount, currency, ev->correlation_id, now, now);
    if (n < 0) {
        snprintf(err, errsz, "payments: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (n == 0) {
        sk_info(FAC, "booking %s already has a payment: payment.requested %s ignored", booking_id,
                ev->id);
        return 0;
    }
    sk_info(FAC, "booking %s: payment %s PENDING (%lld %s)", booking_id, id, (long long)amount,
            currency);
    if (!conf->auto_pay) return 0;

    payment_t p;
    int rc = payment_load(db, booking_id, &p);
    if (rc <= 0) {
        snprintf(err, errsz, "payments: %s", rc < 0 ? sqlite3_errmsg(db) : "the new row is gone");
        return -1;
    }
    const char *reason =
        card_auto_pay_declines(booking_id, conf->auto_pay_decline_percent) ? "card_declined" : NULL;
    rc = payment_decide(svc, db, ev, &p, NULL, reason, err, errsz);
    if (rc == 1) {
        count(svc, p.status);
        sk_info(FAC, "booking %s: payment %s %s by auto-pay%s%s", booking_id, p.id, p.status,
                reason ? ": " : "", reason ? reason : "");
    }
    payment_release(&p);
    return rc < 0 ? -1 : 0;
}

/*
 * refund.requested: a SUCCEEDED payment is REFUNDED (payment.3 with the
 * reason); a PENDING one is CANCELLED, so that a later pay is refused; any
 * other state (or no payment at all) is a recorded no-op.
 */
static int on_refund_requested(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err,
                               size_t errsz)
{
    svc_t *svc = ctx;
    const char *booking_id = ev_str(ev->data, "bookingId");
    const char *reason = ev_str(ev->data, "reason");
    payment_t p;
    int rc = payment_load(db, booking_id, &p);
    if (rc < 0) {
        snprintf(err, errsz, "payments: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (rc == 0) {
        sk_warn(FAC, "refund.requested %s for booking %s, which has no payment: ignored", ev->id,
                booking_id);
        return 0;
    }
    int64_t now = sk_wall_ms();
    int n = sto_exec(db,
                     "UPDATE payments SET status = 'REFUNDED', refund_reason = ?, refunded_at = ?, "
                     "updated_at = ? WHERE id = ? AND status = 'SUCCEEDED'",
                     "tIIt", reason, now, now, p.id);
    if (n == 1) {
        free(p.status);
        p.status = sk_strdup("REFUNDED");
        rc = svc_emit_caused(svc, db, ev, "payment.refunded", payment_event_data(&p, reason), err,
                             errsz);
        if (rc == 0) {
            count(svc, "REFUNDED");
            sk_info(FAC, "booking %s: payment %s REFUNDED (%s)", booking_id, p.id, reason);
        }
        goto out;
    }
    if (n == 0)
        n = sto_exec(db,
                     "UPDATE payments SET status = 'CANCELLED', refund_reason = ?, updated_at = ? "
                     "WHERE id = ? AND status = 'PENDING'",
                     "tIt", reason, now, p.id);
    if (n < 0) {
        snprintf(err, errsz, "payments: %s", sqlite3_errmsg(db));
        rc = -1;
        goto out;
    }
    rc = 0;
    if (n == 1) {
        count(svc, "CANCELLED");
        sk_info(FAC, "booking %s: payment %s CANCELLED before it was paid (%s)", booking_id, p.id,
                reason);
    } else {
        sk_info(FAC, "refund.requested %s for booking %s: payment %s is %s, nothing to refund",
                ev->id, booking_id, p.id, p.status);
    }
out:
    payment_release(&p);
    return rc;
}

/* booking.created: remember the booking's owner (for the answers of pay and
 * GET before payment.requested has arrived). */
static int on_booking_created(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    (void)ctx;
    int n = sto_exec(
        db,
        "INSERT INTO bookings (booking_id, user_id, status, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (booking_id) DO NOTHING",
        "tttI", ev_str(ev->data, "bookingId"), ev_str(ev->data, "userId"),
        ev_str(ev->data, "status"), sk_wall_ms());
    if (n < 0) {
        snprintf(err, errsz, "bookings: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* booking.failed / expired / cancelled: a booking that ended.  It changes
 * no payment (a payment that succeeds after the booking expired is refunded
 * on booking's refund.requested); it only tells a pay for a booking that
 * never got a payment to stop retrying. */
static int on_booking_ended(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    (void)ctx;
    int n = sto_exec(
        db,
        "INSERT INTO bookings (booking_id, user_id, status, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (booking_id) DO UPDATE SET status = excluded.status, "
        "updated_at = excluded.updated_at",
        "tttI", ev_str(ev->data, "bookingId"), ev_str(ev->data, "userId"),
        ev_str(ev->data, "status"), sk_wall_ms());
    if (n < 0) {
        snprintf(err, errsz, "bookings: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static const ev_handler_t payment_handlers[] = {
    {"payment.requested", on_payment_requested},
    {"refund.requested", on_refund_requested},
    {"booking.created", on_booking_created},
    {"booking.failed", on_booking_ended},
    {"booking.expired", on_booking_ended},
    {"booking.cancelled", on_booking_ended},
    {NULL, NULL},
};

/* ---- HTTP ---------------------------------------------------------------------------- */

static void reply_not_found(svc_req_t *req)
{
    svc_reply_problem(req, 404, "Payment not found", "no payment for this booking");
}

static void reply_db_error(svc_t *svc, svc_req_t *req, const char *what)
{
    sk_error(FAC, "%s: %s", what, sqlite3_errmsg(svc_db(svc)));
    svc_reply_problem(req, 500, NULL, NULL);
}

/*
 * Finds the payment of the path's booking, for its owner or an ADMIN.
 * Returns 1 with *p loaded; 0 with *p empty when the caller may see the
 * booking but it has no payment yet (*booking_status then holds the
 * projection's status, owned); -1 after replying (404 - another user's
 * payment looks exactly like a missing one - or 500).
 *
 * SVC_OWNER routes call svc_require_owner(), which answers 403; here the
 * answer must be 404 so that nobody learns which bookings exist, hence
 * svc_req_is_owner().
 */
static int load_for_caller(svc_t *svc, svc_req_t *req, payment_t *p, char **booking_status)
{
    sqlite3 *db = svc_db(svc);
    const char *booking_id = svc_req_param(req, "bookingId");
    *booking_status = NULL;
    if (strlen(booking_id) > BOOKING_ID_MAX) {
        reply_not_found(req);
        return -1;
    }
    int rc = payment_load(db, booking_id, p);
    if (rc < 0) {
        reply_db_error(svc, req, "payments");
        return -1;
    }
    if (rc == 1) {
        if (svc_req_is_owner(req, p->user_id)) return 1;
        payment_release(p);
        reply_not_found(req);
        return -1;
    }
    sqlite3_stmt *st =
        sto_query(db, "SELECT user_id, status FROM bookings WHERE booking_id = ?", "t", booking_id);
    if (!st) {
        reply_db_error(svc, req, "bookings");
        return -1;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && svc_req_is_owner(req, sto_col_text(st, 0))) {
        *booking_status = sto_col_dup(st, 1);
        sto_done(st);
        return 0;
    }
    sto_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        reply_db_error(svc, req, "bookings");
        return -1;
    }
    reply_not_found(req);
    return -1;
}

/* GET /payments/{bookingId} */
static void get_payment(svc_t *svc, svc_req_t *req)
{
    payment_t p;
    char *booking_status = NULL;
    int rc = load_for_caller(svc, req, &p, &booking_status);
    if (rc < 0) return;
    if (rc == 0) {
        free(booking_status);
        reply_not_found(req);
        return;
    }
    svc_reply_json(req, 200, payment_json(&p));
    payment_release(&p);
}

/* The card fields of a pay request, checked; field errors recorded. */
static void read_card(svc_req_t *req, card_number_t *card, char last4[5])
{
    const cJSON *b = svc_req_body_object(req);
    const char *why = NULL;
    const char *text = svc_json_str(req, b, "card", SVC_REQUIRED, 1, CARD_INPUT_MAX);
    if (text) {
        if (card_number_parse(text, card, &why) < 0)
            svc_req_field_error(req, "card", "%s", why);
        else
            card_last4(card, last4);
    }
    int64_t month = 0, year = 0;
    int mok = svc_json_int(req, b, "expMonth", SVC_REQUIRED, 1, 12, &month);
    int yok = svc_json_int(req, b, "expYear", SVC_REQUIRED, 1000, 9999, &year);
    if (mok == 1 && yok == 1) {
        card_exp_t e = card_expiry_check(month, year, sk_wall_ms(), &why);
        if (e != CARD_EXP_OK)
            svc_req_field_error(req, e == CARD_EXP_BAD_YEAR ? "expYear" : "expMonth", "%s", why);
    }
    const char *cvc = svc_json_str(req, b, "cvc", SVC_REQUIRED, 1, 8);
    if (cvc && card_cvc_check(cvc, &why) < 0) svc_req_field_error(req, "cvc", "%s", why);
}

/*
 * POST /payments/{bookingId}/pay {card, expMonth, expYear, cvc}
 *
 * 200 with the payment when it is decided - now, or earlier (a second pay
 * never charges again nor emits a second event: the decision is a guarded
 * UPDATE in the transaction that adds the event); 400 for bad card data;
 * 404 for an unknown booking or another user's; 409 while payment.requested
 * has not arrived yet (Retry-After: 1), when the booking ended without a
 * payment, or when the payment was cancelled.
 */
static void pay(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    payment_t p;
    char *booking_status = NULL;
    card_number_t card;
    char last4[5] = "";
    char err[256];

    memset(&card, 0, sizeof card);
    int rc = load_for_caller(svc, req, &p, &booking_status);
    if (rc < 0) return;

    read_card(req, &card, last4);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        goto out;
    }
    if (rc == 0) {
        if (strcmp(booking_status, "FAILED") == 0 || strcmp(booking_status, "EXPIRED") == 0 ||
            strcmp(booking_status, "CANCELLED") == 0) {
            svc_reply_problem_ex(req, 409, "booking-ended", "Booking ended", NULL,
                                 "the booking is %s and has no payment", booking_status);
        } else {
            svc_req_set_header(req, "Retry-After", "1");
            svc_reply_problem_ex(req, 409, "payment-not-ready", "Payment not ready", NULL,
                                 "the payment for this booking is not open yet; retry in a second");
        }
        goto out;
    }
    if (strcmp(p.status, "PENDING") != 0) goto decided;

    card_decision_t d = card_decide(&card);
    const char *reason = card_decision_reason(d);
    if (sto_begin(db) < 0) {
        reply_db_error(svc, req, "begin");
        goto out;
    }
    rc = payment_decide(svc, db, NULL, &p, last4, reason, err, sizeof err);
    if (rc == 1 && svc_commit(svc) < 0) {
        snprintf(err, sizeof err, "commit: %s", sqlite3_errmsg(db));
        rc = -1;
    }
    if (rc != 1) {
        sto_rollback(db);
        if (rc < 0) {
            sk_error(FAC, "booking %s: pay failed: %s", p.booking_id, err);
            svc_reply_problem(req, 500, NULL, NULL);
            goto out;
        }
        /* Decided meanwhile (refund.requested, a concurrent pay): answer
         * with what it is now. */
        char *bid = sk_strdup(p.booking_id);
        payment_release(&p);
        rc = payment_load(db, bid, &p);
        free(bid);
        if (rc <= 0) {
            reply_db_error(svc, req, "payments");
            goto out;
        }
        goto decided;
    }
    count(svc, p.status);
    sk_info(FAC, "booking %s: payment %s %s with card ending %s%s%s", p.booking_id, p.id, p.status,
            last4, reason ? ": " : "", reason ? reason : "");
    svc_reply_json(req, 200, payment_json(&p));
    goto out;

decided:
    if (strcmp(p.status, "CANCELLED") == 0) {
        svc_reply_problem_ex(req, 409, "payment-cancelled", "Payment cancelled", NULL,
                             "the payment was cancelled before it was paid");
        goto out;
    }
    svc_reply_json(req, 200, payment_json(&p));
out:
    explicit_bzero(&card, sizeof card); /* not optimised away, unlike memset */
    free(booking_status);
    payment_release(&p);
}

static const svc_route_t payment_routes[] = {
    {SVC_GET, "/payments/{bookingId}", get_payment, SVC_OWNER},
    {SVC_POST, "/payments/{bookingId}/pay", pay, SVC_OWNER},
    {0, NULL, NULL, 0},
};

static int payment_init(svc_t *svc, char *err, size_t errsz)
{
    (void)err;
    (void)errsz;
    svc_metric_help(svc, "payments_total",
                    "payments decided, refunded or cancelled, by resulting status");
    if (payment_conf.auto_pay)
        sk_info(FAC, "auto-pay on: every payment is decided when requested, %lld%% declined",
                (long long)payment_conf.auto_pay_decline_percent);
    return 0;
}

static const svc_desc_t payment_desc = {
    .name = "payment",
    .summary =
        "souk-payment: payments of bookings (a simulated card provider with sandbox test cards)",
    .default_port = 8087,
    .conf_table = payment_conf_table,
    .conf = &payment_conf,
    .migrations = payment_migrations,
    .nmigrations = sizeof payment_migrations / sizeof payment_migrations[0],
    .routes = payment_routes,
    .handlers = payment_handlers,
    .init = payment_init,
};

int main(int argc, char **argv)
{
    return svc_main(&payment_desc, argc, argv);
}
