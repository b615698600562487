/*
 * booking_store.c - a booking row, and bk_move(): every state change of a
 * booking goes through one guarded UPDATE and the transition table's
 * effects, in the caller's transaction (so the change and the events it
 * emits commit together, through the outbox).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_log.h"

void bk_booking_release(bk_booking_t *b)
{
    if (!b) return;
    free(b->id);
    free(b->user_id);
    free(b->catalog_id);
    free(b->ticket_id);
    free(b->currency);
    free(b->reason);
    free(b->payment_id);
    free(b->correlation_id);
    memset(b, 0, sizeof *b);
}

void bk_row_read(sqlite3_stmt *st, bk_booking_t *out)
{
    memset(out, 0, sizeof *out);
    out->id = sto_col_dup(st, 0);
    out->user_id = sto_col_dup(st, 1);
    out->catalog_id = sto_col_dup(st, 2);
    out->ticket_id = sto_col_dup(st, 3);
    out->ticket_reserved = sqlite3_column_int(st, 4);
    int s = bk_state_parse(sto_col_text(st, 5));
    out->status = s < 0 ? BK_FAILED : (bk_state_t)s; /* the CHECK constraint makes s >= 0 */
    out->has_amount = sqlite3_column_type(st, 6) != SQLITE_NULL;
    out->amount = sqlite3_column_int64(st, 6);
    out->currency = sto_col_dup(st, 7);
    out->reason = sto_col_dup(st, 8);
    out->payment_id = sto_col_dup(st, 9);
    out->refunded = sqlite3_column_int(st, 10);
    out->correlation_id = sto_col_dup(st, 11);
    out->expires_at = sqlite3_column_int64(st, 12);
    out->created_at = sqlite3_column_int64(st, 13);
    out->updated_at = sqlite3_column_int64(st, 14);
}

int bk_load(sqlite3 *db, const char *id, bk_booking_t *out)
{
    sqlite3_stmt *st = sto_query(db, "SELECT " BK_COLUMNS " FROM bookings WHERE id = ?", "t", id);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        bk_row_read(st, out);
        sto_done(st);
        return 1;
    }
    sto_done(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int bk_insert(sqlite3 *db, const bk_booking_t *b)
{
    int n = sto_exec(
        db,
        "INSERT INTO bookings (id, user_id, catalog_id, ticket_id, ticket_reserved, status, "
        "correlation_id, expires_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        "ttttttIII", b->id, b->user_id, b->catalog_id, b->ticket_id, bk_state_name(b->status),
        b->correlation_id, b->expires_at, b->created_at, b->updated_at);
    return n == 1 ? 0 : -1;
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char t[SK_RFC3339_LEN];
    cJSON_AddStringToObject(o, name, sk_rfc3339_ms(ms, t));
}

cJSON *bk_booking_json(const bk_booking_t *b)
{
    cJSON *o = ev_obj();
    ev_set_str(o, "bookingId", b->id);
    ev_set_str(o, "userId", b->user_id);
    ev_set_str(o, "catalogId", b->catalog_id);
    ev_set_str(o, "ticketId", b->ticket_id);
    ev_set_str(o, "status", bk_state_name(b->status));
    if (b->has_amount)
        ev_set_i64(o, "amount", b->amount);
    else
        ev_set_null(o, "amount");
    ev_set_str(o, "currency", b->currency);
    ev_set_str(o, "reason", b->reason);
    ev_set_bool(o, "refunded", b->refunded);
    add_time(o, "expiresAt", b->expires_at);
    add_time(o, "createdAt", b->created_at);
    add_time(o, "updatedAt", b->updated_at);
    return o;
}

/* ---- effects ------------------------------------------------------------- */

int bk_emit(svc_t *svc, sqlite3 *db, const ev_event_t *cause, const char *correlation_id,
            const char *type, cJSON *data, char *err, size_t errsz)
{
    if (cause) return svc_emit_caused(svc, db, cause, type, data, err, errsz);
    return svc_emit(svc, type, correlation_id, data, err, errsz);
}

static void hold_deleted(void *opaque, const ev_kv_reply_t *reply)
{
    char *key = opaque;
    if (reply->status == EV_KV_ERROR)
        sk_debug("hold", "DEL %s failed (%s); the key expires by itself", key,
                 reply->err ? reply->err : "?");
    free(key);
}

void bk_hold_delete(svc_t *svc, const char *id)
{
    ev_kv_t *kv = svc_kv(svc);
    if (!kv) return;
    size_t n = strlen(BK_HOLD_PREFIX) + strlen(id) + 1;
    char *key = sk_malloc(n);
    snprintf(key, n, "%s%s", BK_HOLD_PREFIX, id);
    if (ev_kv_del(kv, key, hold_deleted, key) < 0) {
        sk_debug("hold", "DEL %s not sent: no key-store connection", key);
        free(key);
    }
}

/* booking.<to>: confirmed has its own schema; failed, expired and cancelled
 * share one (reason required). */
static cJSON *announce_data(const bk_booking_t *b, bk_state_t to, const char *reason)
{
    cJSON *d = ev_obj();
    ev_set_str(d, "bookingId", b->id);
    ev_set_str(d, "userId", b->user_id);
    ev_set_str(d, "catalogId", b->catalog_id);
    ev_set_str(d, "ticketId", b->ticket_id);
    ev_set_str(d, "status", bk_state_name(to));
    if (to == BK_CONFIRMED) {
        ev_set_i64(d, "amount", b->amount);
        ev_set_str(d, "currency", b->currency);
        return d;
    }
    ev_set_str(d, "reason", reason ? reason : bk_state_name(to));
    if (b->has_amount)
        ev_set_i64(d, "amount", b->amount);
    else
        ev_set_null(d, "amount");
    ev_set_str(d, "currency", b->currency);
    return d;
}

static const char *announce_type(bk_state_t to)
{
    switch (to) {
    case BK_CONFIRMED:
        return "booking.confirmed";
    case BK_FAILED:
        return "booking.failed";
    case BK_EXPIRED:
        return "booking.expired";
    case BK_CANCELLED:
        return "booking.cancelled";
    default:
        return NULL;
    }
}

/* The projection follows our own sales, so that the early 409 for a sold
 * ticket does not wait for the catalog's next event. */
static int projection_ticket(sqlite3 *db, const char *ticket_id, const char *status)
{
    return sto_exec(db, "UPDATE tickets SET status = ? WHERE id = ?", "tt", status, ticket_id) < 0
               ? -1
               : 0;
}

static int do_effects(svc_t *svc, sqlite3 *db, const ev_event_t *cause, const bk_booking_t *b,
                      bk_state_t to, int fx, const char *reason, char *err, size_t errsz)
{
    const char *corr = b->correlation_id;
    if (fx & BK_FX_REQUEST_PAYMENT) {
        cJSON *d = ev_obj();
        ev_set_str(d, "bookingId", b->id);
        ev_set_str(d, "userId", b->user_id);
        ev_set_i64(d, "amount", b->amount);
        ev_set_str(d, "currency", b->currency ? b->currency : "");
        if (bk_emit(svc, db, cause, corr, "payment.requested", d, err, errsz) < 0) return -1;
    }
    if (fx & BK_FX_SELL) {
        cJSON *d = ev_obj();
        ev_set_str(d, "bookingId", b->id);
        ev_set_str(d, "ticketId", b->ticket_id);
        if (bk_emit(svc, db, cause, corr, "ticket.sell", d, err, errsz) < 0) return -1;
        if (projection_ticket(db, b->ticket_id, "SOLD") < 0) goto db_err;
    }
    /* The table gives RELEASE only from states that hold a reserved ticket;
     * the check is a belt for a row that says otherwise. */
    if ((fx & BK_FX_RELEASE) && b->ticket_reserved && b->ticket_id) {
        cJSON *d = ev_obj();
        ev_set_str(d, "bookingId", b->id);
        ev_set_str(d, "ticketId", b->ticket_id);
        ev_set_str(d, "reason", reason ? reason : bk_state_name(to));
        if (bk_emit(svc, db, cause, corr, "ticket.release", d, err, errsz) < 0) return -1;
        if (projection_ticket(db, b->ticket_id, "AVAILABLE") < 0) goto db_err;
    }
    if (fx & BK_FX_REFUND) {
        cJSON *d = ev_obj();
        ev_set_str(d, "bookingId", b->id);
        ev_set_str(d, "reason", reason ? reason : bk_state_name(to));
        ev_set_str(d, "userId", b->user_id);
        if (bk_emit(svc, db, cause, corr, "refund.requested", d, err, errsz) < 0) return -1;
    }
    if (fx & BK_FX_ANNOUNCE) {
        const char *type = announce_type(to);
        if (type &&
            bk_emit(svc, db, cause, corr, type, announce_data(b, to, reason), err, errsz) < 0)
            return -1;
    }
    if (fx & BK_FX_DEL_HOLD) bk_hold_delete(svc, b->id);
    return 0;
db_err:
    snprintf(err, errsz, "tickets: %s", sqlite3_errmsg(db));
    return -1;
}

int bk_move(svc_t *svc, sqlite3 *db, const ev_event_t *cause, bk_booking_t *b, bk_state_t to,
            const char *reason, char *err, size_t errsz)
{
    bk_state_t from = b->status;
    int fx = bk_transition(from, to);
    if (fx < 0) {
        sk_info("saga", "booking %s is %s: %s -> %s is not a transition; ignored%s%s", b->id,
                bk_state_name(from), bk_state_name(from), bk_state_name(to),
                cause ? ", event " : "", cause ? cause->type : "");
        return 0;
    }
    /* The reason of a failure, expiry or cancellation; CONFIRMED and
     * AWAITING_PAYMENT keep none. */
    const char *new_reason =
        (to == BK_FAILED || to == BK_EXPIRED || to == BK_CANCELLED) ? reason : NULL;
    sqlite3_stmt *st =
        sto_stmt(db, "UPDATE bookings SET status = ?, ticket_id = ?, ticket_reserved = ?, "
                     "amount = ?, currency = ?, reason = ?, updated_at = ? "
                     "WHERE id = ? AND status = ?");
    if (!st) goto db_err;
    int64_t now = sk_wall_ms();
    sto_bind_text(st, 1, bk_state_name(to));
    sto_bind_text(st, 2, b->ticket_id);
    sto_bind_i64(st, 3, b->ticket_reserved);
    if (b->has_amount)
        sto_bind_i64(st, 4, b->amount);
    else
        sto_bind_null(st, 4);
    sto_bind_text(st, 5, b->currency);
    sto_bind_text(st, 6, new_reason);
    sto_bind_i64(st, 7, now);
    sto_bind_text(st, 8, b->id);
    sto_bind_text(st, 9, bk_state_name(from));
    int rc = sqlite3_step(st);
    sto_done(st);
    if (rc != SQLITE_DONE) goto db_err;
    if (sqlite3_changes(db) != 1) {
        /* The row is not in the state we read: someone moved it first. */
        sk_info("saga", "booking %s: not %s any more; %s ignored", b->id, bk_state_name(from),
                bk_state_name(to));
        return 0;
    }
    b->status = to;
    b->updated_at = now;
    if (new_reason) {
        free(b->reason);
        b->reason = sk_strdup(new_reason);
    }
    if (do_effects(svc, db, cause, b, to, fx, new_reason, err, errsz) < 0) return -1;
    sk_info("saga", "booking %s: %s -> %s%s%s", b->id, bk_state_name(from), bk_state_name(to),
            new_reason ? ": " : "", new_reason ? new_reason : "");
    const char *labels[] = {"to", bk_state_name(to), NULL};
    svc_metric_counter_add(svc, "booking_transitions_total", labels, 1);
    return 1;
db_err:
    snprintf(err, errsz, "bookings: %s", sqlite3_errmsg(db));
    return -1;
}
