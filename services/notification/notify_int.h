/*
 * notify_int.h - what souk-notification's files share (not a public API).
 *
 * notification.c    the description: settings, schema, routes, handlers, main()
 * notify_events.c   consumers: contacts, catalogs, bookings; one queued email
 *                   per meaningful event; rendering (WAITING -> PENDING)
 * notify_delivery.c the delivery outbox: a timer picks due PENDING rows and
 *                   sends them (SMTP through libcurl's multi interface on the
 *                   loop, or .eml files), with retries and backoff
 * notify_http.c     GET /notifications/my, GET /notifications/{id}
 * mail.c            templates, formatting, the RFC 5322 builder (pure)
 *
 * A notification's life (column state):
 *
 *   WAITING  queued by its event's handler, but the recipient's contact (or,
 *            for booking emails, the course's title) has not arrived yet:
 *            events of different topics race.  Rendered as soon as the
 *            missing piece is consumed; the catalog is waited for at most
 *            --catalog-wait-ms, then the email goes without the title.  A
 *            missing contact is waited for indefinitely (the email is kept,
 *            never lost).
 *   PENDING  rendered (to, subject, text, html); due at next_attempt_at.
 *   SENDING  picked by the delivery timer, transfer in flight.  At start a
 *            SENDING row (the process died mid-send) goes back to PENDING:
 *            the SMTP hop is at-least-once, and the Message-ID, derived from
 *            the event id, lets a receiver drop the duplicate.
 *   SENT     delivered (sent_at); the transaction that sets it also emits
 *            notification.sent (once per row: the UPDATE is guarded on
 *            state = 'SENDING').
 *   FAILED   --max-send-attempts failed attempts, or a permanent refusal
 *            (SMTP 5xx), or an undeliverable address; last_error says why.
 */
#ifndef NOTIFY_INT_H
#define NOTIFY_INT_H

#include <stdint.h>

#include "mail.h"
#include "svc.h"

typedef struct notify_conf_s {
    svc_conf_t common;
    char *smtp_url;  /* empty: write .eml files to <data-dir>/outbox/ */
    char *smtp_user; /* empty: no AUTH */
    char *smtp_password;
    char *mail_from;
    int64_t max_send_attempts;
    int64_t smtp_backoff_ms;
    int64_t smtp_backoff_max_ms;
    int64_t smtp_timeout_ms;
    int64_t smtp_concurrency;
    int64_t deliver_interval_ms;
    int64_t deliver_batch;
    int64_t catalog_wait_ms;
} notify_conf_t;

typedef struct notify_s notify_t; /* the delivery state (notify_delivery.c) */

/* ---- delivery (notify_delivery.c) ---------------------------------------- */

/* desc hooks. */
int notify_init(svc_t *svc, char *err, size_t errsz);
int notify_start_events(svc_t *svc, char *err, size_t errsz);
void notify_stop_events(svc_t *svc);
void notify_fini(svc_t *svc);

/* Asks the delivery timer to look at the table soon (after the current
 * callback, hence after the inbox transaction that queued a row commits). */
void notify_kick(svc_t *svc);

/* ---- events (notify_events.c) -------------------------------------------- */

int notify_on_user_registered(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err,
                              size_t errsz);
int notify_on_user_profile(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz);
int notify_on_catalog(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz);
int notify_on_booking(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz);
int notify_on_payment_refunded(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err,
                               size_t errsz);

/*
 * Tries to render WAITING notifications (inside a transaction the caller
 * holds): those of user_id, catalog_id or booking_id (any may be NULL), or,
 * when all three are NULL, those whose next_attempt_at passed (the timer's
 * pass: a row whose contact is still missing is looked at again later).
 * A booking email waits for its catalog until created_at + catalog_wait_ms,
 * then goes without the title.  Returns how many became PENDING (or
 * FAILED: undeliverable), or -1 (err).
 */
int notify_promote(sqlite3 *db, int64_t catalog_wait_ms, const char *user_id,
                   const char *catalog_id, const char *booking_id, int64_t now_ms, char *err,
                   size_t errsz);

/* ---- HTTP (notify_http.c) ------------------------------------------------ */

void notify_get_my(svc_t *svc, svc_req_t *req);
void notify_get_one(svc_t *svc, svc_req_t *req);

#endif
