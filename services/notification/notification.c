/*
 * souk-notification: one email per meaningful event, sent once.
 *
 * It keeps what the emails need - each user's contact (users, user.created),
 * the courses' titles and dates (catalog), which course a booking is for
 * (booking) - and queues one email per registration, booking outcome
 * (confirmed, failed, expired, cancelled) and refund, in the inbox
 * transaction of the event, keyed by the event id (and by what the email is
 * about, so that a second event for the same outcome sends nothing).  The
 * sending is a second outbox: see notify_int.h for the states and
 * notify_delivery.c for the loop.
 */
#include <stddef.h>

#include "notify_int.h"

static notify_conf_t notify_conf;

static const sk_conf_entry_t notify_table[] = {
    {"smtp-url", SK_CONF_STR, offsetof(notify_conf_t, smtp_url), NULL, 0, 0,
     "SMTP server, smtp://host:port (STARTTLS when offered) or smtps://; empty: write .eml files "
     "to <data-dir>/outbox/"},
    {"smtp-user", SK_CONF_STR, offsetof(notify_conf_t, smtp_user), NULL, 0, 0,
     "SMTP AUTH user name (empty: no AUTH)"},
    {"smtp-password", SK_CONF_STR, offsetof(notify_conf_t, smtp_password), NULL, 0, 0,
     "SMTP AUTH password (prefer the SOUK_SMTP_PASSWORD environment variable)"},
    {"mail-from", SK_CONF_STR, offsetof(notify_conf_t, mail_from), "souk <noreply@souk.local>", 0,
     0, "From: of every email, \"Name <user@host>\"; its domain ends the Message-IDs"},
    {"max-send-attempts", SK_CONF_INT, offsetof(notify_conf_t, max_send_attempts), "10", 1, 1000,
     "delivery attempts of one email before it is FAILED"},
    {"smtp-backoff-ms", SK_CONF_INT, offsetof(notify_conf_t, smtp_backoff_ms), "1000", 1, 3600000,
     "wait after the first failed delivery; doubles with each attempt"},
    {"smtp-backoff-max-ms", SK_CONF_INT, offsetof(notify_conf_t, smtp_backoff_max_ms), "300000", 1,
     86400000, "longest wait between two delivery attempts"},
    {"smtp-timeout-ms", SK_CONF_INT, offsetof(notify_conf_t, smtp_timeout_ms), "10000", 100, 600000,
     "longest one SMTP transfer may take (connect included)"},
    {"smtp-concurrency", SK_CONF_INT, offsetof(notify_conf_t, smtp_concurrency), "4", 1, 64,
     "SMTP transfers in flight at once"},
    {"deliver-interval-ms", SK_CONF_INT, offsetof(notify_conf_t, deliver_interval_ms), "1000", 10,
     60000, "longest time between two looks at the delivery queue (new emails are picked at once)"},
    {"deliver-batch", SK_CONF_INT, offsetof(notify_conf_t, deliver_batch), "16", 1, 1000,
     "emails picked per look (per transaction)"},
    {"catalog-wait-ms", SK_CONF_INT, offsetof(notify_conf_t, catalog_wait_ms), "30000", 0, 86400000,
     "how long a booking email waits for its course's catalog event before it goes without the "
     "title"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sto_migration_t migrations[] = {
    SVC_EVENTS_MIGRATIONS,
    {3, "contacts",
     "CREATE TABLE contacts (\n"
     "  user_id TEXT PRIMARY KEY,\n"
     "  email TEXT NOT NULL,\n"
     "  full_name TEXT,\n"
     "  updated_ms INTEGER NOT NULL     -- time of the event that set it\n"
     ");\n"
     "CREATE TABLE catalogs (\n"
     "  catalog_id TEXT PRIMARY KEY,\n"
     "  title TEXT NOT NULL,\n"
     "  date_of_event TEXT,\n"
     "  price INTEGER,\n"
     "  currency TEXT,\n"
     "  status TEXT,\n"
     "  updated_ms INTEGER NOT NULL\n"
     ");\n"
     "CREATE TABLE bookings (           -- which course a booking is for (refund emails)\n"
     "  booking_id TEXT PRIMARY KEY,\n"
     "  user_id TEXT NOT NULL,\n"
     "  catalog_id TEXT NOT NULL\n"
     ");\n"},
    {4, "notifications",
     "CREATE TABLE notifications (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  event_id TEXT NOT NULL UNIQUE,\n"
     "  dedupe_key TEXT NOT NULL UNIQUE, -- what it is about: one email per outcome\n"
     "  user_id TEXT NOT NULL,\n"
     "  type TEXT NOT NULL,             -- the event type\n"
     "  booking_id TEXT,\n"
     "  catalog_id TEXT,\n"
     "  data TEXT NOT NULL,             -- the event's data (rendering waits for it)\n"
     "  to_addr TEXT,\n"
     "  to_name TEXT,\n"
     "  subject TEXT,\n"
     "  text TEXT,\n"
     "  html TEXT,\n"
     "  state TEXT NOT NULL CHECK (state IN ('WAITING','PENDING','SENDING','SENT','FAILED')),\n"
     "  attempts INTEGER NOT NULL DEFAULT 0,\n"
     "  next_attempt_at INTEGER NOT NULL, -- ms; WAITING: when to stop waiting for the catalog\n"
     "  created_at INTEGER NOT NULL,\n"
     "  sent_at INTEGER,\n"
     "  last_error TEXT\n"
     ");\n"
     "CREATE INDEX notifications_due ON notifications (state, next_attempt_at);\n"
     "CREATE INDEX notifications_user ON notifications (user_id, created_at);\n"
     "CREATE INDEX notifications_waiting ON notifications (user_id, catalog_id, booking_id)\n"
     "  WHERE state = 'WAITING';\n"},
    {5, "notifications correlation",
     "ALTER TABLE notifications ADD COLUMN correlation_id TEXT; -- of the notified event\n"},
};

static const svc_route_t routes[] = {
    {SVC_GET, "/notifications/my", notify_get_my, SVC_USER},
    {SVC_GET, "/notifications/{id}", notify_get_one, SVC_USER},
    {0, NULL, NULL, 0},
};

static const ev_handler_t handlers[] = {
    {"user.registered", notify_on_user_registered},
    {"user.created", notify_on_user_profile},
    {"user.updated", notify_on_user_profile},
    {"catalog.created", notify_on_catalog},
    {"catalog.updated", notify_on_catalog},
    {"catalog.deactivated", notify_on_catalog},
    {"booking.created", notify_on_booking},
    {"booking.confirmed", notify_on_booking},
    {"booking.failed", notify_on_booking},
    {"booking.expired", notify_on_booking},
    {"booking.cancelled", notify_on_booking},
    {"payment.refunded", notify_on_payment_refunded},
    {NULL, NULL},
};

static const svc_desc_t notify_desc = {
    .name = "notification",
    .summary = "souk's emails: one per registration, booking outcome and refund, sent once per\n"
               "event through SMTP (--smtp-url) or written as .eml files to <data-dir>/outbox/.",
    .default_port = 8086,
    .conf_table = notify_table,
    .conf = &notify_conf,
    .migrations = migrations,
    .nmigrations = sizeof migrations / sizeof migrations[0],
    .routes = routes,
    .handlers = handlers,
    .init = notify_init,
    .start_events = notify_start_events,
    .stop_events = notify_stop_events,
    .fini = notify_fini,
};

int main(int argc, char **argv)
{
    return svc_main(&notify_desc, argc, argv);
}
