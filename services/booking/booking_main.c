/*
 * booking_main.c - souk-booking: the booking saga's orchestrator.
 *
 * A user books a ticket (or any ticket of a catalog); the booking holds it
 * for --hold-seconds while the catalog reserves it and the user pays; then
 * it is CONFIRMED, or FAILED / EXPIRED / CANCELLED and the ticket goes back
 * on sale (ARCHITECTURE.md, "The booking saga").  This file is the
 * service's description; the runtime (services/runtime) does the rest.
 */
#include <stddef.h>

#include "booking.h"

static booking_conf_t booking_conf;

static const sk_conf_entry_t booking_conf_table[] = {
    {"hold-seconds", SK_CONF_INT, offsetof(booking_conf_t, hold_s), "600", 1, 86400,
     "how long a booking holds its ticket before it expires (s)"},
    {"sweep-ms", SK_CONF_INT, offsetof(booking_conf_t, sweep_ms), "1000", 10, 600000,
     "period of the sweeper that expires bookings whose hold passed (ms)"},
    {"sweep-batch", SK_CONF_INT, offsetof(booking_conf_t, sweep_batch), "100", 1, 10000,
     "bookings the sweeper expires per transaction"},
    {"projection-wait-ms", SK_CONF_INT, offsetof(booking_conf_t, projection_wait_ms), "2000", 0,
     60000,
     "POST /bookings for a catalog or ticket not yet in the local projection (its catalog.created "
     "may still be on its way) waits this long for it before answering 404"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sto_migration_t booking_migrations[] = {
    SVC_EVENTS_MIGRATIONS,
    {3, "bookings",
     "CREATE TABLE bookings ("
     "  id TEXT PRIMARY KEY,"
     "  user_id TEXT NOT NULL,"
     "  catalog_id TEXT NOT NULL,"
     "  ticket_id TEXT,"                             /* requested, then the one reserved */
     "  ticket_reserved INTEGER NOT NULL DEFAULT 0," /* 1: the catalog reserved ticket_id for us */
     "  status TEXT NOT NULL CHECK (status IN ('PENDING', 'AWAITING_PAYMENT', 'CONFIRMED',"
     "                                         'FAILED', 'EXPIRED', 'CANCELLED')),"
     "  amount INTEGER," /* minor units, from the reservation */
     "  currency TEXT,"
     "  reason TEXT,"
     "  payment_id TEXT,"
     "  refunded INTEGER NOT NULL DEFAULT 0,"
     "  correlation_id TEXT,"
     "  expires_at INTEGER NOT NULL," /* ms since the epoch */
     "  created_at INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL"
     ");"
     "CREATE INDEX bookings_user ON bookings (user_id, created_at);"
     "CREATE INDEX bookings_open ON bookings (status, expires_at);"
     "CREATE INDEX bookings_catalog ON bookings (catalog_id, created_at);"},
    {4, "idempotency_keys",
     "CREATE TABLE idempotency_keys ("
     "  user_id TEXT NOT NULL,"
     "  idem_key TEXT NOT NULL,"
     "  request_hash TEXT NOT NULL,"
     "  status INTEGER NOT NULL,"
     "  body TEXT NOT NULL,"
     "  booking_id TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  PRIMARY KEY (user_id, idem_key)"
     ") WITHOUT ROWID;"
     "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);"},
    {5, "projection",
     "CREATE TABLE catalogs ("
     "  id TEXT PRIMARY KEY,"
     "  author_id TEXT,"
     "  title TEXT,"
     "  price INTEGER,"
     "  currency TEXT,"
     "  status TEXT NOT NULL,"
     "  date_of_event TEXT,"
     "  updated_at INTEGER NOT NULL"
     ");"
     "CREATE TABLE tickets ("
     "  id TEXT PRIMARY KEY,"
     "  catalog_id TEXT NOT NULL,"
     "  status TEXT NOT NULL,"
     "  stamp INTEGER NOT NULL" /* time of the catalog event that listed it */
     ");"
     "CREATE INDEX tickets_catalog ON tickets (catalog_id, status);"},
};

static int booking_start_events(svc_t *svc, char *err, size_t errsz)
{
    return bk_sweeper_start(svc, err, errsz);
}

static void booking_stop_events(svc_t *svc)
{
    bk_sweeper_stop(svc);
}

static const svc_desc_t booking_desc = {
    .name = "booking",
    .summary = "souk-booking: bookings and the booking saga (holds, reservation, payment, expiry)",
    .default_port = 8084,
    .conf_table = booking_conf_table,
    .conf = &booking_conf,
    .migrations = booking_migrations,
    .nmigrations = sizeof booking_migrations / sizeof booking_migrations[0],
    .routes = bk_routes,
    .handlers = bk_event_handlers,
    .raw_handlers = bk_raw_handlers,
    .use_kv = 1,
    .start_events = booking_start_events,
    .stop_events = booking_stop_events,
};

int main(int argc, char **argv)
{
    return svc_main(&booking_desc, argc, argv);
}
