/*
 * booking_events.c - the saga's consumer side (group "booking"), the local
 * projection of catalogs and tickets, and hold expiry.
 *
 * Every handler runs inside the consumer's inbox transaction (ctx is the
 * svc_t *): it loads the booking, asks bk_move() for the transition, and a
 * late or duplicate event finds the booking in another state and is a
 * logged no-op returning 0 - never an error, so never a retry loop.  -1 is
 * only for database errors (retried, then dead-lettered).
 *
 * Holds expire two ways, through the same bk_expire():
 *   - the key store announces "hold:<id>" on kv.expired (fast path);
 *   - a sweeper every --sweep-ms expires open bookings whose expires_at
 *     passed, at most --sweep-batch per transaction (backstop: correctness
 *     never depends on the announcement, which is lost while we are down,
 *     or never sent when the key store was unreachable at SET time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "booking.h"
#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_log.h"

/* A kv.expired announcement may beat expires_at by the time between
 * computing expires_at and the SET reaching the key store, or by clock
 * skew with a remote Redis: accept it this much early. */
#define BK_KV_EARLY_MS 5000

#define DB_ERR(what)                                                                               \
    do {                                                                                           \
        snprintf(err, errsz, "%s: %s", what, sqlite3_errmsg(db));                                  \
        goto out;                                                                                  \
    } while (0)

/* Loads the booking an event names.  1 found, 0 unknown (logged), -1 error. */
static int load_for(sqlite3 *db, const ev_event_t *ev, bk_booking_t *b, char *err, size_t errsz)
{
    const char *id = ev_str(ev->data, "bookingId");
    int rc = bk_load(db, id, b);
    if (rc < 0) snprintf(err, errsz, "bookings: %s", sqlite3_errmsg(db));
    if (rc == 0) sk_warn("saga", "%s %s for unknown booking %s", ev->type, ev->id, id);
    return rc;
}

static int emit_release(svc_t *svc, sqlite3 *db, const ev_event_t *cause, const char *booking_id,
                        const char *ticket_id, const char *reason, char *err, size_t errsz)
{
    cJSON *d = ev_obj();
    ev_set_str(d, "bookingId", booking_id);
    ev_set_str(d, "ticketId", ticket_id);
    ev_set_str(d, "reason", reason);
    return bk_emit(svc, db, cause, NULL, "ticket.release", d, err, errsz);
}

/* ---- ticket.reservation ---------------------------------------------------- */

/*
 * ticket.reserved: PENDING -> AWAITING_PAYMENT with the ticket and the
 * catalog's price, and payment.requested.  A reservation that no booking
 * can use any more (the booking expired, was cancelled or failed before the
 * reply came, or it is not ours) is released at once, so that the ticket
 * does not stay RESERVED; a redelivered reply for the ticket the booking
 * already holds changes nothing.
 */
static int on_ticket_reserved(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    svc_t *svc = ctx;
    const char *ticket = ev_str(ev->data, "ticketId");
    const char *booking_id = ev_str(ev->data, "bookingId");
    bk_booking_t b = {0};
    int rc = load_for(db, ev, &b, err, errsz);
    if (rc < 0) return -1;
    if (rc == 0) {
        rc = emit_release(svc, db, ev, booking_id, ticket, "unknown booking", err, errsz);
        goto out;
    }
    if (b.status == BK_PENDING) {
        int64_t price = 0;
        ev_i64(ev->data, "price", &price);
        free(b.ticket_id);
        b.ticket_id = sk_strdup(ticket);
        b.ticket_reserved = 1;
        b.has_amount = 1;
        b.amount = price;
        free(b.currency);
        b.currency = sk_strdup(ev_str(ev->data, "currency"));
        rc = bk_move(svc, db, ev, &b, BK_AWAITING_PAYMENT, NULL, err, errsz) < 0 ? -1 : 0;
        goto out;
    }
    if (b.ticket_reserved && b.ticket_id && strcmp(b.ticket_id, ticket) == 0) {
        sk_info("saga", "booking %s: ticket.reserved %s again (%s); nothing to do", b.id, ticket,
                bk_state_name(b.status));
        rc = 0;
        goto out;
    }
    char reason[96];
    snprintf(reason, sizeof reason, "booking %s before the reservation", bk_state_name(b.status));
    sk_info("saga", "booking %s is %s: releasing late reservation of ticket %s", b.id,
            bk_state_name(b.status), ticket);
    rc = emit_release(svc, db, ev, b.id, ticket, reason, err, errsz);
out:
    bk_booking_release(&b);
    return rc;
}

/* ticket.unavailable: PENDING -> FAILED with the catalog's reason. */
static int on_ticket_unavailable(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err,
                                 size_t errsz)
{
    bk_booking_t b = {0};
    int rc = load_for(db, ev, &b, err, errsz);
    if (rc <= 0) return rc;
    char reason[256];
    snprintf(reason, sizeof reason, "ticket unavailable: %s", ev_str(ev->data, "reason"));
    if (b.status == BK_PENDING) {
        rc = bk_move(ctx, db, ev, &b, BK_FAILED, reason, err, errsz) < 0 ? -1 : 0;
    } else {
        sk_info("saga", "booking %s is %s: ticket.unavailable %s ignored", b.id,
                bk_state_name(b.status), ev->id);
        rc = 0;
    }
    bk_booking_release(&b);
    return rc < 0 ? -1 : 0;
}

/* ---- payment.1 / 2 / 3 ------------------------------------------------------- */

static int request_refund(svc_t *svc, sqlite3 *db, const ev_event_t *ev, const char *reason,
                          char *err, size_t errsz)
{
    cJSON *d = ev_obj();
    ev_set_str(d, "bookingId", ev_str(ev->data, "bookingId"));
    ev_set_str(d, "reason", reason);
    ev_set_str(d, "userId", ev_str(ev->data, "userId"));
    return bk_emit(svc, db, ev, NULL, "refund.requested", d, err, errsz);
}

/*
 * payment.succeeded: AWAITING_PAYMENT -> CONFIRMED (sell the ticket).  A
 * payment that succeeds when the booking can no longer be confirmed
 * (expired, cancelled, failed - or unknown) is refunded: every succeeded
 * payment belongs to a CONFIRMED booking or is refunded.  So is one decided
 * (the event's time) after the booking's deadline, even if neither
 * kv.expired nor the sweeper has expired the booking yet: the hold is the
 * promise, not the moment the expiry is noticed.
 */
static int on_payment_succeeded(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err,
                                size_t errsz)
{
    svc_t *svc = ctx;
    bk_booking_t b = {0};
    const char *payment = ev_str(ev->data, "paymentId");
    int rc = load_for(db, ev, &b, err, errsz);
    if (rc < 0) return -1;
    if (rc == 0) return request_refund(svc, db, ev, "payment for an unknown booking", err, errsz);
    if (sto_exec(db, "UPDATE bookings SET payment_id = ? WHERE id = ? AND payment_id IS NULL", "tt",
                 payment, b.id) < 0)
        DB_ERR("bookings");
    if (b.status == BK_AWAITING_PAYMENT && ev->time_ms > b.expires_at) {
        /* Decided after the deadline, before the sweeper or kv.expired got
         * here: the hold had run out, so the booking expires and the money
         * goes back, as if the expiry had come first. */
        if (bk_move(svc, db, ev, &b, BK_EXPIRED, "hold expired before the payment", err, errsz) < 0)
            goto out;
        rc = request_refund(svc, db, ev, "payment succeeded after the booking was EXPIRED", err,
                            errsz);
    } else if (b.status == BK_AWAITING_PAYMENT) {
        rc = bk_move(svc, db, ev, &b, BK_CONFIRMED, NULL, err, errsz) < 0 ? -1 : 0;
    } else if (b.status == BK_CONFIRMED) {
        sk_info("saga", "booking %s already CONFIRMED: payment.succeeded %s ignored", b.id, ev->id);
        rc = 0;
    } else {
        char reason[96];
        snprintf(reason, sizeof reason, "payment succeeded after the booking was %s",
                 bk_state_name(b.status));
        sk_warn("saga", "booking %s: %s; refund requested", b.id, reason);
        rc = request_refund(svc, db, ev, reason, err, errsz);
    }
    goto done;
out:
    rc = -1;
done:
    bk_booking_release(&b);
    return rc;
}

/* payment.failed: AWAITING_PAYMENT -> FAILED (release the ticket). */
static int on_payment_failed(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    bk_booking_t b = {0};
    int rc = load_for(db, ev, &b, err, errsz);
    if (rc <= 0) return rc;
    char reason[256];
    snprintf(reason, sizeof reason, "payment failed: %s", ev_str(ev->data, "reason"));
    if (b.status == BK_AWAITING_PAYMENT) {
        rc = bk_move(ctx, db, ev, &b, BK_FAILED, reason, err, errsz) < 0 ? -1 : 0;
    } else {
        sk_info("saga", "booking %s is %s: payment.failed %s ignored", b.id,
                bk_state_name(b.status), ev->id);
        rc = 0;
    }
    bk_booking_release(&b);
    return rc;
}

/* payment.refunded: recorded on the booking; no state change. */
static int on_payment_refunded(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err,
                               size_t errsz)
{
    (void)ctx;
    const char *id = ev_str(ev->data, "bookingId");
    int n = sto_exec(
        db, "UPDATE bookings SET refunded = 1, updated_at = ? WHERE id = ? AND refunded = 0", "It",
        sk_wall_ms(), id);
    if (n < 0) {
        snprintf(err, errsz, "bookings: %s", sqlite3_errmsg(db));
        return -1;
    }
    sk_info("saga", "booking %s: payment %s refunded%s", id, ev_str(ev->data, "paymentId"),
            n ? "" : " (already recorded, or unknown booking)");
    return 0;
}

/* ---- the catalog projection ----------------------------------------------------- */

/*
 * catalog.created / updated / deactivated carry the whole catalog with its
 * tickets: upsert both.  Tickets the event no longer lists are dropped
 * (each upsert stamps the event's time; older stamps of that catalog go).
 * Idempotent, so a replay from offset 0 rebuilds the same projection.
 */
static int on_catalog(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    (void)ctx;
    const cJSON *d = ev->data;
    const char *id = ev_str(d, "catalogId");
    int64_t price = 0;
    ev_i64(d, "price", &price);
    int rc = -1;
    if (sto_exec(
            db,
            "INSERT INTO catalogs (id, author_id, title, price, currency, status, date_of_event, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET author_id = excluded.author_id, title = "
            "excluded.title, "
            "price = excluded.price, currency = excluded.currency, status = excluded.status, "
            "date_of_event = excluded.date_of_event, updated_at = excluded.updated_at",
            "tttItttI", id, ev_str(d, "authorId"), ev_str(d, "title"), price, ev_str(d, "currency"),
            ev_str(d, "status"), ev_str(d, "dateOfEvent"), ev->time_ms) < 0)
        DB_ERR("catalogs");
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(d, "tickets"))
    {
        if (sto_exec(db,
                     "INSERT INTO tickets (id, catalog_id, status, stamp) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (id) DO UPDATE SET catalog_id = excluded.catalog_id, "
                     "status = excluded.status, stamp = excluded.stamp",
                     "tttI", ev_str(t, "ticketId"), id, ev_str(t, "status"), ev->time_ms) < 0)
            DB_ERR("tickets");
    }
    if (sto_exec(db, "DELETE FROM tickets WHERE catalog_id = ? AND stamp < ?", "tI", id,
                 ev->time_ms) < 0)
        DB_ERR("tickets");
    sk_debug("projection", "%s %s (%d tickets)", ev->type, id,
             cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "tickets")));
    rc = 0;
out:
    return rc;
}

/* ---- hold expiry ------------------------------------------------------------------ */

int bk_expire(svc_t *svc, sqlite3 *db, const char *id, int64_t deadline_ms, const char *via,
              char *err, size_t errsz)
{
    bk_booking_t b = {0};
    int rc = bk_load(db, id, &b);
    if (rc < 0) {
        snprintf(err, errsz, "bookings: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (rc == 0) {
        sk_debug("hold", "hold of unknown booking %s expired (%s)", id, via);
        return 0;
    }
    rc = 0;
    if (!bk_state_open(b.status)) {
        sk_debug("hold", "booking %s is %s: expiry (%s) ignored", id, bk_state_name(b.status), via);
    } else if (b.expires_at > deadline_ms) {
        sk_warn(
            "hold",
            "booking %s: expiry announced (%s) %lld ms before its deadline; the sweeper decides",
            id, via, (long long)(b.expires_at - deadline_ms));
    } else {
        char reason[96];
        snprintf(reason, sizeof reason, "hold expired (%s)", via);
        rc = bk_move(svc, db, NULL, &b, BK_EXPIRED, reason, err, errsz);
    }
    bk_booking_release(&b);
    return rc;
}

/* kv.expired: {key, value, expiredAt}; only "hold:<id>" keys are ours. */
static int on_kv_expired(void *ctx, sqlite3 *db, const ev_record_t *rec, const cJSON *value,
                         char *err, size_t errsz)
{
    (void)rec;
    const char *id = bk_hold_key_id(ev_str(value, "key"));
    if (!id) return 0;
    return bk_expire(ctx, db, id, sk_wall_ms() + BK_KV_EARLY_MS, "key store", err, errsz) < 0 ? -1
                                                                                              : 0;
}

const ev_handler_t bk_event_handlers[] = {
    {"ticket.reserved", on_ticket_reserved},
    {"ticket.unavailable", on_ticket_unavailable},
    {"payment.succeeded", on_payment_succeeded},
    {"payment.failed", on_payment_failed},
    {"payment.refunded", on_payment_refunded},
    {"catalog.created", on_catalog},
    {"catalog.updated", on_catalog},
    {"catalog.deactivated", on_catalog},
    {NULL, NULL},
};

const ev_raw_handler_t bk_raw_handlers[] = {
    {"kv.expired", "kv.expired", on_kv_expired},
    {NULL, NULL, NULL},
};

/* ---- the sweeper ----------------------------------------------------------------------- */

/* Idempotency keys are kept a day: long enough for any client's retries. */
#define BK_IDEM_TTL_MS (24LL * 3600 * 1000)

typedef struct bk_sweeper_s {
    struct event *timer;
    int64_t last_idem_purge_ms;
} bk_sweeper_t;

/*
 * One transaction: expire at most --sweep-batch open bookings whose
 * expires_at passed.  Returns how many it looked at (== batch: there may
 * be more, sweep again soon), or -1 on error (logged, rolled back).
 */
static int64_t sweep_once(svc_t *svc)
{
    sqlite3 *db = svc_db(svc);
    int64_t batch = bk_conf(svc)->sweep_batch;
    int64_t now = sk_wall_ms();
    char err[512] = "";
    char **ids = NULL;
    int64_t n = 0, expired = 0;
    if (sto_begin(db) < 0) {
        sk_error("hold", "sweeper: BEGIN failed: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_stmt *st =
        sto_query(db,
                  "SELECT id FROM bookings WHERE status IN ('PENDING', 'AWAITING_PAYMENT') "
                  "AND expires_at <= ? ORDER BY expires_at LIMIT ?",
                  "II", now, batch);
    if (!st) goto db_err;
    ids = sk_calloc((size_t)batch, sizeof *ids);
    int rc = SQLITE_DONE;
    while (n < batch && (rc = sqlite3_step(st)) == SQLITE_ROW)
        ids[n++] = sk_strdup(sto_col_text(st, 0));
    sto_done(st);
    if (n < batch && rc != SQLITE_DONE) goto db_err;
    for (int64_t i = 0; i < n; i++) {
        int r = bk_expire(svc, db, ids[i], now, "sweeper", err, sizeof err);
        if (r < 0) goto fail;
        expired += r;
    }
    if (now - ((bk_sweeper_t *)svc_data(svc))->last_idem_purge_ms > 60000) {
        if (sto_exec(db, "DELETE FROM idempotency_keys WHERE created_at < ?", "I",
                     now - BK_IDEM_TTL_MS) < 0)
            goto db_err;
        ((bk_sweeper_t *)svc_data(svc))->last_idem_purge_ms = now;
    }
    if (svc_commit(svc) < 0) goto db_err;
    if (expired) sk_info("hold", "sweeper expired %lld booking(s)", (long long)expired);
    goto out;
db_err:
    snprintf(err, sizeof err, "%s", sqlite3_errmsg(db));
fail:
    sk_error("hold", "sweeper: %s", err);
    sto_rollback(db);
    n = -1;
out:
    for (int64_t i = 0; ids && i < batch && ids[i]; i++)
        free(ids[i]);
    free(ids);
    return n;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    svc_t *svc = arg;
    bk_sweeper_t *sw = svc_data(svc);
    /* While shutting down the outbox is draining: add nothing to it; the
     * next start's first sweep expires what is due. */
    int64_t n = svc_shutting_down(svc) ? 0 : sweep_once(svc);
    int64_t ms = n == bk_conf(svc)->sweep_batch ? 1 : bk_conf(svc)->sweep_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(sw->timer, &tv);
}

int bk_sweeper_start(svc_t *svc, char *err, size_t errsz)
{
    bk_sweeper_t *sw = sk_calloc(1, sizeof *sw);
    sw->timer = evtimer_new(svc_base(svc), sweep_cb, svc);
    if (!sw->timer) {
        free(sw);
        snprintf(err, errsz, "sweeper: evtimer_new failed");
        return -1;
    }
    svc_set_data(svc, sw);
    svc_metric_help(svc, "booking_transitions_total",
                    "booking state changes, by the state reached");
    /* Deadlines that passed while the service was down: expire them now
     * (the callback re-arms the timer). */
    sweep_cb(-1, 0, svc);
    sk_info("hold", "sweeper every %lld ms (hold %lld s, batch %lld)",
            (long long)bk_conf(svc)->sweep_ms, (long long)bk_conf(svc)->hold_s,
            (long long)bk_conf(svc)->sweep_batch);
    return 0;
}

void bk_sweeper_stop(svc_t *svc)
{
    bk_sweeper_t *sw = svc_data(svc);
    if (!sw) return;
    event_free(sw->timer);
    free(sw);
    svc_set_data(svc, NULL);
}
