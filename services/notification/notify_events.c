/*
 * notify_events.c - what the consumer does with each event, inside its
 * inbox transaction (libevents/consumer.h): keep contacts, catalogs and
 * bookings up to date, and queue one email per meaningful event.  Nothing
 * here sends anything: a queued row is picked by the delivery timer after
 * the transaction commits (notify_kick).
 *
 * Events of different topics race (a booking.confirmed may be consumed
 * before the user.registered of its user, or the catalog.created of its
 * course).  Instead of failing the handler - the consumer would retry a few
 * times and then dead-letter the event, losing the email - the email is
 * queued WAITING with the event's data and rendered when the missing piece
 * arrives (notify_promote), see notify_int.h.
 */
#include "notify_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_log.h"

/* A contact that is still missing when the catalog wait is over: the
 * contact's own event renders the email the moment it is consumed
 * (notify_promote by user), so the timer only looks again this rarely, as a
 * backstop.  The email is never dropped for want of a contact. */
#define CONTACT_RECHECK_MS 3600000

static const notify_conf_t *conf_of(svc_t *svc)
{
    return (const notify_conf_t *)svc_desc(svc)->conf;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* ---- rendering ------------------------------------------------------------ */

/* The copy of a WAITING row that rendering needs. */
typedef struct waiting_s {
    char *type, *user_id, *booking_id, *catalog_id, *data;
    int64_t deadline_ms;
} waiting_t;

static void waiting_release(waiting_t *w)
{
    free(w->type);
    free(w->user_id);
    free(w->booking_id);
    free(w->catalog_id);
    free(w->data);
}

static char *dup_col(sqlite3_stmt *st, int col)
{
    const char *s = sto_col_text(st, col);
    return s ? sk_strdup(s) : NULL;
}

static int mark_failed(sqlite3 *db, const char *id, const char *why, int64_t now_ms, char *err,
                       size_t errsz)
{
    sk_warn("notification", "notification %s not sendable: %s", id, why);
    if (sto_exec(db,
                 "UPDATE notifications SET state = 'FAILED', last_error = ?, next_attempt_at = ?"
                 " WHERE id = ? AND state = 'WAITING'",
                 "tIt", why, now_ms, id) < 0) {
        sk_errf(err, errsz, "notifications update: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/*
 * Renders one WAITING notification if it can: 1 when it became PENDING (or
 * FAILED: nothing to wait for), 0 when it still waits, -1 on a database
 * error.  A booking email waits for its catalog until created_at +
 * catalog_wait_ms; force: the timer's pass over due rows (the wait is over,
 * and a missing contact pushes the next look back).
 */
static int try_render(sqlite3 *db, const char *id, int64_t now_ms, int64_t catalog_wait_ms,
                      int force, char *err, size_t errsz)
{
    waiting_t w = {0};
    char *email = NULL, *full_name = NULL, *title = NULL, *date_raw = NULL;
    cJSON *data = NULL;
    mail_content_t content = {0};
    int rc = -1;

    sqlite3_stmt *st = sto_query(db,
                                 "SELECT type, user_id, booking_id, catalog_id, data, created_at"
                                 " FROM notifications WHERE id = ? AND state = 'WAITING'",
                                 "t", id);
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (step == SQLITE_DONE) {
        sto_done(st);
        return 0; /* rendered meanwhile */
    }
    if (step != SQLITE_ROW) {
        sto_done(st);
        sk_errf(err, errsz, "notifications read: %s", sqlite3_errmsg(db));
        return -1;
    }
    w.type = dup_col(st, 0);
    w.user_id = dup_col(st, 1);
    w.booking_id = dup_col(st, 2);
    w.catalog_id = dup_col(st, 3);
    w.data = dup_col(st, 4);
    w.deadline_ms = sqlite3_column_int64(st, 5) + catalog_wait_ms;
    sto_done(st);

    const mail_template_t *t = mail_template_find(w.type);
    data = w.data ? cJSON_Parse(w.data) : NULL;
    if (!t || !data) {
        rc = mark_failed(db, id, !t ? "no template for this event type" : "unreadable event data",
                         now_ms, err, errsz) < 0
                 ? -1
                 : 1;
        goto out;
    }

    /* The recipient. */
    st = sto_query(db, "SELECT email, full_name FROM contacts WHERE user_id = ?", "t", w.user_id);
    step = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (step == SQLITE_ROW) {
        email = dup_col(st, 0);
        full_name = dup_col(st, 1);
    }
    sto_done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        sk_errf(err, errsz, "contacts read: %s", sqlite3_errmsg(db));
        goto out;
    }
    if (!email) {
        if (force) {
            /* Keep it: the contact may still come (never lose the email). */
            sk_warn("notification",
                    "notification %s (%s): no contact for user %s yet; still waiting", id, w.type,
                    w.user_id);
            if (sto_exec(db, "UPDATE notifications SET next_attempt_at = ? WHERE id = ?", "It",
                         now_ms + CONTACT_RECHECK_MS, id) < 0) {
                sk_errf(err, errsz, "notifications update: %s", sqlite3_errmsg(db));
                goto out;
            }
        }
        rc = 0;
        goto out;
    }
    if (!mail_addr_valid(email)) {
        rc = mark_failed(db, id, "the user's email address is not deliverable", now_ms, err,
                         errsz) < 0
                 ? -1
                 : 1;
        goto out;
    }

    /* The course (booking emails).  A refund names no catalog: the booking
     * events seen before tell which. */
    if (t->needs_catalog) {
        if (!w.catalog_id && w.booking_id) {
            if (sto_query_text(db, &w.catalog_id,
                               "SELECT catalog_id FROM bookings WHERE booking_id = ?", "t",
                               w.booking_id) < 0) {
                sk_errf(err, errsz, "bookings read: %s", sqlite3_errmsg(db));
                goto out;
            }
            if (w.catalog_id && sto_exec(db, "UPDATE notifications SET catalog_id = ? WHERE id = ?",
                                         "tt", w.catalog_id, id) < 0) {
                sk_errf(err, errsz, "notifications update: %s", sqlite3_errmsg(db));
                goto out;
            }
        }
        if (w.catalog_id) {
            st = sto_query(db, "SELECT title, date_of_event FROM catalogs WHERE catalog_id = ?",
                           "t", w.catalog_id);
            step = st ? sqlite3_step(st) : SQLITE_ERROR;
            if (step == SQLITE_ROW) {
                title = dup_col(st, 0);
                date_raw = dup_col(st, 1);
            }
            sto_done(st);
            if (step != SQLITE_ROW && step != SQLITE_DONE) {
                sk_errf(err, errsz, "catalogs read: %s", sqlite3_errmsg(db));
                goto out;
            }
        }
        if (!title && !force && now_ms < w.deadline_ms) {
            rc = 0; /* wait for the catalog a little longer */
            goto out;
        }
    }

    char amount[64] = "", date[MAIL_DATE_LEN] = "";
    int64_t minor, date_ms;
    const char *currency = ev_str(data, "currency");
    if (ev_i64(data, "amount", &minor) == 0 && currency &&
        mail_money_format(minor, currency, amount, sizeof amount) < 0)
        amount[0] = '\0';
    if (date_raw) {
        if (ev_time_parse(date_raw, &date_ms) == 0)
            mail_event_date(date_ms, date);
        else
            snprintf(date, sizeof date, "%s", date_raw);
    }
    const mail_var_t vars[] = {
        {"name", nonempty(full_name)},
        {"email", email},
        {"title", title},
        {"date", date},
        {"amount", amount},
        {"bookingId", ev_str(data, "bookingId")},
        {"reason", ev_str(data, "reason")},
    };
    if (mail_content_render(t, vars, sizeof vars / sizeof vars[0], &content, err, errsz) < 0) {
        rc = mark_failed(db, id, "template rendering failed", now_ms, err, errsz) < 0 ? -1 : 1;
        goto out;
    }
    if (sto_exec(
            db,
            "UPDATE notifications SET state = 'PENDING', to_addr = ?, to_name = ?, subject = ?,"
            " text = ?, html = ?, next_attempt_at = ? WHERE id = ? AND state = 'WAITING'",
            "tttttIt", email, nonempty(full_name), content.subject, content.text, content.html,
            now_ms, id) < 0) {
        sk_errf(err, errsz, "notifications update: %s", sqlite3_errmsg(db));
        goto out;
    }
    if (!title && t->needs_catalog)
        sk_warn("notification",
                "notification %s (%s): catalog %s unknown after the wait; sent without "
                "its title",
                id, w.type, w.catalog_id ? w.catalog_id : "-");
    rc = 1;
out:
    mail_content_release(&content);
    cJSON_Delete(data);
    free(email);
    free(full_name);
    free(title);
    free(date_raw);
    waiting_release(&w);
    return rc;
}

int notify_promote(sqlite3 *db, int64_t catalog_wait_ms, const char *user_id,
                   const char *catalog_id, const char *booking_id, int64_t now_ms, char *err,
                   size_t errsz)
{
    int force = !user_id && !catalog_id && !booking_id;
    sqlite3_stmt *st;
    if (force)
        st = sto_query(
            db,
            "SELECT id FROM notifications WHERE state = 'WAITING' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at LIMIT 100",
            "I", now_ms);
    else
        st = sto_query(db,
                       "SELECT id FROM notifications WHERE state = 'WAITING'"
                       " AND (user_id = ?1 OR catalog_id = ?2 OR booking_id = ?3)",
                       "ttt", user_id, catalog_id, booking_id);
    if (!st) {
        sk_errf(err, errsz, "notifications read: %s", sqlite3_errmsg(db));
        return -1;
    }
    /* Collect first: rendering runs other statements on the same table. */
    char **ids = NULL;
    size_t n = 0, cap = 0;
    int step, promoted = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            ids = sk_realloc(ids, cap * sizeof *ids);
        }
        ids[n++] = dup_col(st, 0);
    }
    sto_done(st);
    if (step != SQLITE_DONE) {
        sk_errf(err, errsz, "notifications read: %s", sqlite3_errmsg(db));
        promoted = -1;
    }
    for (size_t i = 0; i < n && promoted >= 0; i++) {
        int r = try_render(db, ids[i], now_ms, catalog_wait_ms, force, err, errsz);
        if (r < 0)
            promoted = -1;
        else
            promoted += r;
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return promoted;
}

/* ---- queueing ----------------------------------------------------------------- */

/*
 * Queues the email of ev (its template is mail_template_find(ev->type)) for
 * user_id, once: the row's event_id and dedupe_key are UNIQUE, so a
 * redelivered event (the inbox catches that already) or a second event
 * about the same outcome (another event id) queues nothing.  Then renders
 * it if contact and catalog are known.
 */
static int queue_email(svc_t *svc, sqlite3 *db, const ev_event_t *ev, const char *user_id,
                       const char *booking_id, const char *catalog_id, const char *about, char *err,
                       size_t errsz)
{
    const notify_conf_t *conf = conf_of(svc);
    int64_t now = sk_wall_ms();
    uuid_t u;
    char id[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, id);
    char *data = cJSON_PrintUnformatted(ev->data);
    sk_buf_t key = SK_BUF_INIT;
    sk_buf_init(&key, 64);
    sk_buf_addf(&key, "%s:%s", ev->type, about);
    int rc = -1;

    if (!data) {
        sk_errf(err, errsz, "%s %s: cannot print data", ev->type, ev->id);
        goto out;
    }
    int n =
        sto_exec(db,
                 "INSERT INTO notifications (id, event_id, dedupe_key, user_id, type, booking_id,"
                 " catalog_id, data, state, attempts, next_attempt_at, created_at, correlation_id)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'WAITING', 0, ?, ?, ?) ON CONFLICT DO NOTHING",
                 "ttttttttIIt", id, ev->id, key.data, user_id, ev->type, booking_id, catalog_id,
                 data, (int64_t)(now + conf->catalog_wait_ms), now, ev->correlation_id);
    if (n < 0) {
        sk_errf(err, errsz, "notifications insert: %s", sqlite3_errmsg(db));
        goto out;
    }
    if (n == 0) {
        sk_info("notification", "%s %s: an email about %s was queued already; nothing to do",
                ev->type, ev->id, key.data);
        rc = 0;
        goto out;
    }
    if (try_render(db, id, now, conf->catalog_wait_ms, 0, err, errsz) < 0) goto out;
    sk_info("notification", "%s %s: queued notification %s", ev->type, ev->id, id);
    notify_kick(svc);
    rc = 0;
out:
    free(data);
    sk_buf_release(&key);
    return rc;
}

static int promote(svc_t *svc, sqlite3 *db, const char *user_id, const char *catalog_id,
                   const char *booking_id, char *err, size_t errsz)
{
    int n = notify_promote(db, conf_of(svc)->catalog_wait_ms, user_id, catalog_id, booking_id,
                           sk_wall_ms(), err, errsz);
    if (n > 0) notify_kick(svc);
    return n < 0 ? -1 : 0;
}

/* ---- handlers -------------------------------------------------------------------- */

/*
 * A contact is the newest we have seen by event time, so a user.created
 * consumed after a later user.updated (different topics) does not win.
 * A registration without a name keeps a name already known.
 */
static int upsert_contact(sqlite3 *db, const ev_event_t *ev, const char *full_name, char *err,
                          size_t errsz)
{
    const char *user_id = ev_str(ev->data, "userId");
    const char *email = ev_str(ev->data, "email");
    if (!nonempty(user_id)) {
        sk_errf(err, errsz, "%s %s: empty userId", ev->type, ev->id);
        return -1;
    }
    if (sto_exec(db,
                 "INSERT INTO contacts (user_id, email, full_name, updated_ms) VALUES (?, ?, ?, ?)"
                 " ON CONFLICT (user_id) DO UPDATE SET email = excluded.email,"
                 " full_name = COALESCE(excluded.full_name, contacts.full_name),"
                 " updated_ms = excluded.updated_ms"
                 " WHERE excluded.updated_ms >= contacts.updated_ms",
                 "tttI", user_id, email, nonempty(full_name), (int64_t)ev->time_ms) < 0) {
        sk_errf(err, errsz, "contacts upsert: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

int notify_on_user_registered(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    svc_t *svc = ctx;
    const char *user_id = ev_str(ev->data, "userId");
    if (upsert_contact(db, ev, ev_str(ev->data, "fullName"), err, errsz) < 0) return -1;
    if (queue_email(svc, db, ev, user_id, NULL, NULL, user_id, err, errsz) < 0) return -1;
    return promote(svc, db, user_id, NULL, NULL, err, errsz);
}

int notify_on_user_profile(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    svc_t *svc = ctx;
    if (upsert_contact(db, ev, ev_str(ev->data, "fullName"), err, errsz) < 0) return -1;
    return promote(svc, db, ev_str(ev->data, "userId"), NULL, NULL, err, errsz);
}

int notify_on_catalog(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    svc_t *svc = ctx;
    const char *catalog_id = ev_str(ev->data, "catalogId");
    int64_t price;
    int has_price = ev_i64(ev->data, "price", &price) == 0;
    if (!nonempty(catalog_id)) {
        sk_errf(err, errsz, "%s %s: empty catalogId", ev->type, ev->id);
        return -1;
    }
    if (sto_exec(
            db,
            "INSERT INTO catalogs (catalog_id, title, date_of_event, price, currency, status,"
            " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (catalog_id) DO UPDATE SET title = excluded.title,"
            " date_of_event = excluded.date_of_event, price = excluded.price,"
            " currency = excluded.currency, status = excluded.status,"
            " updated_ms = excluded.updated_ms WHERE excluded.updated_ms >= catalogs.updated_ms",
            "tttIttI", catalog_id, ev_str(ev->data, "title"), ev_str(ev->data, "dateOfEvent"),
            has_price ? price : (int64_t)0, ev_str(ev->data, "currency"),
            ev_str(ev->data, "status"), (int64_t)ev->time_ms) < 0) {
        sk_errf(err, errsz, "catalogs upsert: %s", sqlite3_errmsg(db));
        return -1;
    }
    return promote(svc, db, NULL, catalog_id, NULL, err, errsz);
}

int notify_on_booking(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    svc_t *svc = ctx;
    const char *booking_id = ev_str(ev->data, "bookingId");
    const char *user_id = ev_str(ev->data, "userId");
    const char *catalog_id = ev_str(ev->data, "catalogId");
    if (!nonempty(booking_id) || !nonempty(user_id)) {
        sk_errf(err, errsz, "%s %s: empty bookingId or userId", ev->type, ev->id);
        return -1;
    }
    if (sto_exec(db,
                 "INSERT INTO bookings (booking_id, user_id, catalog_id) VALUES (?, ?, ?)"
                 " ON CONFLICT (booking_id) DO NOTHING",
                 "ttt", booking_id, user_id, catalog_id) < 0) {
        sk_errf(err, errsz, "bookings insert: %s", sqlite3_errmsg(db));
        return -1;
    }
    /* booking.created sends nothing; the outcomes do, once per booking and
     * outcome. */
    if (mail_template_find(ev->type) &&
        queue_email(svc, db, ev, user_id, booking_id, catalog_id, booking_id, err, errsz) < 0)
        return -1;
    /* A refund that arrived first may be waiting to learn its course. */
    return promote(svc, db, NULL, NULL, booking_id, err, errsz);
}

int notify_on_payment_refunded(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err,
                               size_t errsz)
{
    svc_t *svc = ctx;
    const char *booking_id = ev_str(ev->data, "bookingId");
    const char *user_id = ev_str(ev->data, "userId");
    const char *payment_id = ev_str(ev->data, "paymentId");
    if (!nonempty(booking_id) || !nonempty(user_id) || !nonempty(payment_id)) {
        sk_errf(err, errsz, "%s %s: empty bookingId, userId or paymentId", ev->type, ev->id);
        return -1;
    }
    /* The catalog is looked up from the booking when rendering. */
    return queue_email(svc, db, ev, user_id, booking_id, NULL, payment_id, err, errsz);
}
