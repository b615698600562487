/*
 * catalog_events.c - the ticket side of the booking saga.
 *
 *   ticket.reserve  {bookingId, userId, catalogId, ticketId|null}
 *       -> ticket.reserved {bookingId, ticketId, price, currency, catalogId}
 *        | ticket.unavailable {bookingId, reason, ticketId, catalogId}
 *   ticket.sell     {bookingId, ticketId}: RESERVED -> SOLD
 *   ticket.release  {bookingId, ticketId}: RESERVED|SOLD -> AVAILABLE
 *
 * Handlers run inside the consumer's inbox transaction (the event id is
 * recorded with their effects, so a redelivery of the same event changes
 * nothing) and emit their replies into the outbox of that transaction.
 *
 * Each ticket transition is one guarded UPDATE naming the state it leaves
 * and the booking that must hold the ticket; when it changes no row the
 * event is late, duplicated or wrong, which is logged and answered with 0:
 * never an error, so never a retry loop.  Only a database failure returns
 * -1 (the consumer retries, then dead-letters).
 *
 * A booking asks for one ticket once in its life.  The answer to each
 * booking is kept in `reservations`, so the same request delivered again
 * under another event id (a booking that retried its outbox) gets the same
 * answer: ticket.reserved for the ticket it holds, never a second ticket;
 * ticket.unavailable with the first reason; and, if its ticket was released
 * meanwhile, ticket.unavailable "released" - never a fresh reservation that
 * nobody would release.
 *
 * Reasons for ticket.unavailable: unknown_catalog, catalog_inactive
 * (deactivated), event_passed, unknown_ticket (no such ticket in that
 * catalog), not_available (the ticket asked for is RESERVED or SOLD),
 * sold_out (no AVAILABLE ticket left), released (see above).
 */
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"

static int db_fail(sqlite3 *db, const char *what, char *err, size_t errsz)
{
    sk_errf(err, errsz, "%s: %s", what, sqlite3_errmsg(db));
    return -1;
}

/* Replies ticket.reserved with the catalog's current price. */
static int reply_reserved(svc_t *svc, sqlite3 *db, const ev_event_t *ev, const char *booking,
                          const char *ticket, const char *catalog, char *err, size_t errsz)
{
    sqlite3_stmt *st =
        sto_query(db, "SELECT price, currency FROM catalogs WHERE id = ?", "t", catalog);
    if (!st) return db_fail(db, "price", err, errsz);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sto_done(st);
        return db_fail(db, "price", err, errsz);
    }
    cJSON *d = ev_obj();
    ev_set_str(d, "bookingId", booking);
    ev_set_str(d, "ticketId", ticket);
    ev_set_i64(d, "price", sqlite3_column_int64(st, 0));
    ev_set_str(d, "currency", sto_col_text(st, 1));
    ev_set_str(d, "catalogId", catalog);
    sto_done(st);
    return svc_emit_caused(svc, db, ev, "ticket.reserved", d, err, errsz);
}

static int reply_unavailable(svc_t *svc, sqlite3 *db, const ev_event_t *ev, const char *booking,
                             const char *reason, const char *ticket, const char *catalog, char *err,
                             size_t errsz)
{
    cJSON *d = ev_obj();
    ev_set_str(d, "bookingId", booking);
    ev_set_str(d, "reason", reason);
    ev_set_str(d, "ticketId", ticket);
    ev_set_str(d, "catalogId", catalog);
    sk_info(CAT_LOG, "ticket.unavailable: booking %s catalog %s ticket %s: %s", booking, catalog,
            ticket ? ticket : "(any)", reason);
    return svc_emit_caused(svc, db, ev, "ticket.unavailable", d, err, errsz);
}

/* Records the first answer to booking; then replies. */
static int refuse(svc_t *svc, sqlite3 *db, const ev_event_t *ev, const char *booking,
                  const char *reason, const char *ticket, const char *catalog, char *err,
                  size_t errsz)
{
    if (sto_exec(db,
                 "INSERT INTO reservations (booking_id, catalog_id, ticket_id, outcome, reason, "
                 "created_ms) VALUES (?, ?, ?, 'UNAVAILABLE', ?, ?)",
                 "ttttI", booking, catalog, ticket, reason, sk_wall_ms()) != 1)
        return db_fail(db, "reservations", err, errsz);
    return reply_unavailable(svc, db, ev, booking, reason, ticket, catalog, err, errsz);
}

/*
 * A booking that was answered before: answer the same.  Returns 1 when it
 * had been answered (and replied now), 0 when it is new, -1 on error.
 */
static int answer_again(svc_t *svc, sqlite3 *db, const ev_event_t *ev, const char *booking,
                        char *err, size_t errsz)
{
    char *catalog = NULL, *ticket = NULL, *outcome = NULL, *reason = NULL;
    int rc = -1;
    sqlite3_stmt *st = sto_query(
        db, "SELECT catalog_id, ticket_id, outcome, reason FROM reservations WHERE booking_id = ?",
        "t", booking);
    if (!st) return db_fail(db, "reservations", err, errsz);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        sto_done(st);
        return 0;
    }
    if (step != SQLITE_ROW) {
        sto_done(st);
        return db_fail(db, "reservations", err, errsz);
    }
    catalog = sk_strdup(sto_col_text(st, 0));
    ticket = sto_col_text(st, 1) ? sk_strdup(sto_col_text(st, 1)) : NULL;
    outcome = sk_strdup(sto_col_text(st, 2));
    reason = sto_col_text(st, 3) ? sk_strdup(sto_col_text(st, 3)) : NULL;
    sto_done(st);

    if (strcmp(outcome, "RESERVED") == 0) {
        int64_t held = 0;
        int q = sto_query_i64(db, &held,
                              "SELECT count(*) FROM tickets WHERE id = ? AND booking_id = ? "
                              "AND status IN ('RESERVED', 'SOLD')",
                              "tt", ticket, booking);
        if (q < 0) {
            db_fail(db, "tickets", err, errsz);
            goto out;
        }
        sk_info(CAT_LOG, "ticket.reserve again for booking %s (event %s): ticket %s %s", booking,
                ev->id, ticket, held ? "still held" : "released since");
        rc = held
                 ? reply_reserved(svc, db, ev, booking, ticket, catalog, err, errsz)
                 : reply_unavailable(svc, db, ev, booking, "released", ticket, catalog, err, errsz);
    } else {
        sk_info(CAT_LOG, "ticket.reserve again for booking %s (event %s): unavailable (%s)",
                booking, ev->id, reason ? reason : "?");
        rc = reply_unavailable(svc, db, ev, booking, reason ? reason : "not_available", ticket,
                               catalog, err, errsz);
    }
    if (rc == 0) rc = 1;
out:
    free(catalog);
    free(ticket);
    free(outcome);
    free(reason);
    return rc;
}

static int on_ticket_reserve(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    svc_t *svc = ctx;
    const char *booking = ev_str(ev->data, "bookingId");
    const char *catalog = ev_str(ev->data, "catalogId");
    const char *asked = ev_str(ev->data, "ticketId"); /* NULL: any available */
    char *ticket = NULL, *status = NULL;
    int64_t event_ms = 0;
    int rc = -1;

    int again = answer_again(svc, db, ev, booking, err, errsz);
    if (again != 0) return again < 0 ? -1 : 0;

    sqlite3_stmt *st =
        sto_query(db, "SELECT status, event_ms FROM catalogs WHERE id = ?", "t", catalog);
    if (!st) return db_fail(db, "catalogs", err, errsz);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        status = sk_strdup(sto_col_text(st, 0));
        event_ms = sqlite3_column_int64(st, 1);
    }
    sto_done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) return db_fail(db, "catalogs", err, errsz);
    if (!status) return refuse(svc, db, ev, booking, "unknown_catalog", asked, catalog, err, errsz);
    if (strcmp(status, "ACTIVE") != 0) {
        rc = refuse(svc, db, ev, booking, "catalog_inactive", asked, catalog, err, errsz);
        goto out;
    }
    if (event_ms <= sk_wall_ms()) {
        rc = refuse(svc, db, ev, booking, "event_passed", asked, catalog, err, errsz);
        goto out;
    }

    if (asked) {
        int64_t mine = 0;
        if (sto_query_i64(db, &mine, "SELECT count(*) FROM tickets WHERE id = ? AND catalog_id = ?",
                          "tt", asked, catalog) < 0) {
            rc = db_fail(db, "tickets", err, errsz);
            goto out;
        }
        if (!mine) {
            rc = refuse(svc, db, ev, booking, "unknown_ticket", asked, catalog, err, errsz);
            goto out;
        }
        ticket = sk_strdup(asked);
    } else {
        int q =
            sto_query_text(db, &ticket,
                           "SELECT id FROM tickets WHERE catalog_id = ? AND status = 'AVAILABLE' "
                           "ORDER BY seq LIMIT 1",
                           "t", catalog);
        if (q < 0) {
            rc = db_fail(db, "tickets", err, errsz);
            goto out;
        }
        if (q == 0) {
            rc = refuse(svc, db, ev, booking, "sold_out", NULL, catalog, err, errsz);
            goto out;
        }
    }

    /* The one guarded transition: only an AVAILABLE ticket is taken. */
    int n = sto_exec(db,
                     "UPDATE tickets SET status = 'RESERVED', booking_id = ?, updated_ms = ? "
                     "WHERE id = ? AND status = 'AVAILABLE'",
                     "tIt", booking, sk_wall_ms(), ticket);
    if (n < 0) {
        rc = db_fail(db, "reserve", err, errsz);
        goto out;
    }
    if (n == 0) {
        rc = refuse(svc, db, ev, booking, asked ? "not_available" : "sold_out", asked, catalog, err,
                    errsz);
        goto out;
    }
    if (sto_exec(db,
                 "INSERT INTO reservations (booking_id, catalog_id, ticket_id, outcome, reason, "
                 "created_ms) VALUES (?, ?, ?, 'RESERVED', NULL, ?)",
                 "tttI", booking, catalog, ticket, sk_wall_ms()) != 1) {
        rc = db_fail(db, "reservations", err, errsz);
        goto out;
    }
    sk_info(CAT_LOG, "ticket %s of catalog %s reserved for booking %s", ticket, catalog, booking);
    rc = reply_reserved(svc, db, ev, booking, ticket, catalog, err, errsz);
out:
    free(ticket);
    free(status);
    return rc;
}

/* Logs why a guarded transition changed nothing (the ticket's state now). */
static int log_noop(sqlite3 *db, const char *what, const char *booking, const char *ticket,
                    char *err, size_t errsz)
{
    sqlite3_stmt *st =
        sto_query(db, "SELECT status, booking_id FROM tickets WHERE id = ?", "t", ticket);
    if (!st) return db_fail(db, "tickets", err, errsz);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *holder = sto_col_text(st, 1);
        sk_warn(CAT_LOG, "%s ignored: booking %s ticket %s is %s (held by %s)", what, booking,
                ticket, sto_col_text(st, 0), holder ? holder : "no booking");
    } else if (step == SQLITE_DONE) {
        sk_warn(CAT_LOG, "%s ignored: booking %s ticket %s: unknown ticket", what, booking, ticket);
    }
    sto_done(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : db_fail(db, "tickets", err, errsz);
}

static int on_ticket_sell(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    (void)ctx;
    const char *booking = ev_str(ev->data, "bookingId");
    const char *ticket = ev_str(ev->data, "ticketId");
    int n = sto_exec(db,
                     "UPDATE tickets SET status = 'SOLD', updated_ms = ? "
                     "WHERE id = ? AND booking_id = ? AND status = 'RESERVED'",
                     "Itt", sk_wall_ms(), ticket, booking);
    if (n < 0) return db_fail(db, "sell", err, errsz);
    if (n == 0) return log_noop(db, "ticket.sell", booking, ticket, err, errsz);
    sk_info(CAT_LOG, "ticket %s sold to booking %s", ticket, booking);
    return 0;
}

static int on_ticket_release(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    (void)ctx;
    const char *booking = ev_str(ev->data, "bookingId");
    const char *ticket = ev_str(ev->data, "ticketId");
    int n = sto_exec(db,
                     "UPDATE tickets SET status = 'AVAILABLE', booking_id = NULL, updated_ms = ? "
                     "WHERE id = ? AND booking_id = ? AND status IN ('RESERVED', 'SOLD')",
                     "Itt", sk_wall_ms(), ticket, booking);
    if (n < 0) return db_fail(db, "release", err, errsz);
    if (n == 0) return log_noop(db, "ticket.release", booking, ticket, err, errsz);
    sk_info(CAT_LOG, "ticket %s released by booking %s", ticket, booking);
    return 0;
}

const ev_handler_t catalog_handlers[] = {
    {"ticket.reserve", on_ticket_reserve},
    {"ticket.sell", on_ticket_sell},
    {"ticket.release", on_ticket_release},
    {NULL, NULL},
};
