/*
 * booking.h - souk-booking's modules, as its files see each other.
 *
 *   booking_main.c    the service description: settings, migrations, routes,
 *                     handlers, hooks; main()
 *   booking_store.c   a booking row: load, insert, JSON, and bk_move(), the one
 *                     place a booking changes state (guarded UPDATE + effects)
 *   booking_http.c    the HTTP routes
 *   booking_events.c  the saga's event handlers, the catalog projection, hold
 *                     expiry (kv.expired and the sweeper)
 *   booking_rules.c   pure rules (states, transition table, request hash)
 *
 * Everything runs on the service's one loop thread, on svc_db().
 */
#ifndef BOOKING_H
#define BOOKING_H

#include <stdint.h>

#include "booking_rules.h"
#include "svc.h"

/* The service's settings: the common ones, then its own table. */
typedef struct booking_conf_s {
    svc_conf_t common;
    int64_t hold_s;      /* --hold-seconds: how long a booking holds its ticket */
    int64_t sweep_ms;    /* --sweep-ms: the expiry sweeper's period */
    int64_t sweep_batch; /* --sweep-batch: bookings expired per sweeper transaction */
    int64_t projection_wait_ms; /* --projection-wait-ms: how long POST waits for an unknown
                                   catalog/ticket to reach the projection before 404 */
} booking_conf_t;

static inline const booking_conf_t *bk_conf(const svc_t *svc)
{
    return (const booking_conf_t *)svc_conf(svc);
}

/* ---- booking_store.c ------------------------------------------------------ */

/* One booking row.  Strings are owned (bk_booking_release frees them); the
 * optional ones are NULL when the column is. */
typedef struct bk_booking_s {
    char *id;
    char *user_id;
    char *catalog_id;
    char *ticket_id;     /* requested, or the one reserved; may be NULL */
    int ticket_reserved; /* 1 once the catalog reserved ticket_id for it */
    bk_state_t status;
    int has_amount;
    int64_t amount;       /* minor units, from the reservation */
    char *currency;       /* may be NULL */
    char *reason;         /* why it failed / expired / was cancelled; may be NULL */
    char *payment_id;     /* the succeeded payment, may be NULL */
    int refunded;         /* payment.refunded seen */
    char *correlation_id; /* of the request that created it */
    int64_t expires_at;   /* ms since the epoch */
    int64_t created_at, updated_at;
} bk_booking_t;

void bk_booking_release(bk_booking_t *b);

/* Loads booking id.  Returns 1 (*out filled), 0 when there is none, -1 on
 * a database error (sqlite3_errmsg). */
int bk_load(sqlite3 *db, const char *id, bk_booking_t *out);

/* The API's representation (a new object). */
cJSON *bk_booking_json(const bk_booking_t *b);

/* The columns bk_row_read() expects, in order (for list queries). */
#define BK_COLUMNS                                                                                 \
    "id, user_id, catalog_id, ticket_id, ticket_reserved, status, amount, currency, reason, "      \
    "payment_id, refunded, correlation_id, expires_at, created_at, updated_at"
/* Fills *out from the current row of a statement selecting BK_COLUMNS. */
void bk_row_read(sqlite3_stmt *st, bk_booking_t *out);

/* INSERT of a new PENDING booking (b's fields).  0 or -1. */
int bk_insert(sqlite3 *db, const bk_booking_t *b);

/*
 * The one way a booking changes state, inside the caller's open
 * transaction on db: checks the transition table (bk_transition), runs the
 * guarded UPDATE (WHERE id = ? AND status = <b->status>), writes b's
 * ticket_id / ticket_reserved / amount / currency, and does the
 * transition's effects: payment.requested, ticket.sell, ticket.release,
 * refund.requested, booking.<to> through the outbox; DEL hold:<id> in the
 * key store (fire and forget).  reason (may be NULL) is stored and carried
 * by the events.
 *
 * Events are caused by cause (a consumer handler's event), or, when cause
 * is NULL, carry b->correlation_id.  On success b->status is to.
 * Returns 1 when the booking moved, 0 when the transition does not exist or
 * the guard found another state (a late or duplicate request: logged,
 * nothing done), -1 on error (err; the caller rolls back).
 */
int bk_move(svc_t *svc, sqlite3 *db, const ev_event_t *cause, bk_booking_t *b, bk_state_t to,
            const char *reason, char *err, size_t errsz);

/* Adds an event to the outbox inside the open transaction: caused by cause,
 * or (cause NULL) with correlation_id.  Takes data.  0 or -1 (err). */
int bk_emit(svc_t *svc, sqlite3 *db, const ev_event_t *cause, const char *correlation_id,
            const char *type, cJSON *data, char *err, size_t errsz);

/* DEL hold:<id>, fire and forget (the sweeper covers a lost one). */
void bk_hold_delete(svc_t *svc, const char *id);

/* ---- booking_events.c ---------------------------------------------------- */

extern const ev_handler_t bk_event_handlers[];
extern const ev_raw_handler_t bk_raw_handlers[];

/*
 * Expires booking id if it is still open (PENDING / AWAITING_PAYMENT) and
 * its expires_at is <= deadline_ms, inside the caller's transaction.  The
 * same function serves the kv.expired fast path and the sweeper.  Returns
 * 1 when expired, 0 when there was nothing to do, -1 on error (err).
 */
int bk_expire(svc_t *svc, sqlite3 *db, const char *id, int64_t deadline_ms, const char *via,
              char *err, size_t errsz);

/* The sweeper: start_events / stop_events hooks.  Starting runs one sweep at
 * once (bookings whose deadline passed while the service was down). */
int bk_sweeper_start(svc_t *svc, char *err, size_t errsz);
void bk_sweeper_stop(svc_t *svc);

/* ---- booking_http.c ------------------------------------------------------ */

extern const svc_route_t bk_routes[];

#endif
