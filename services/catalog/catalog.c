/*
 * souk-catalog: courses (catalogs) and their tickets.
 *
 * HTTP (catalog_http.c): create, list with filters and paging, get, update
 * and deactivate catalogs; list a catalog's tickets.  Events
 * (catalog_events.c): reserves, sells and releases tickets for the booking
 * saga, answering ticket.reserve with ticket.reserved / ticket.unavailable.
 * Every state change and the events it emits commit in one transaction
 * (the outbox); every ticket transition is a guarded UPDATE.
 *
 * The schema.  catalogs.status is what the author decided (ACTIVE or
 * DEACTIVATED); SOLD_OUT is derived when the catalog is read (ACTIVE with no
 * AVAILABLE ticket), so it can never disagree with the tickets.  A ticket is
 * held by at most one booking (booking_id column, non-NULL exactly when the
 * ticket is not AVAILABLE) and a booking holds at most one ticket (unique
 * partial index).  reservations remembers the answer given to each booking's
 * ticket.reserve, so a reserve redelivered under another event id gets the
 * same answer instead of a second ticket.
 */
#include "catalog_int.h"

#include <uuid/uuid.h>

void cat_uuid(char out[37])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

static const sto_migration_t migrations[] = {
    SVC_EVENTS_MIGRATIONS,
    {3, "catalogs",
     "CREATE TABLE catalogs (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  author_id TEXT NOT NULL,\n"
     "  title TEXT NOT NULL,\n"
     "  description TEXT,\n"
     "  price INTEGER NOT NULL CHECK (price > 0),\n"
     "  currency TEXT NOT NULL CHECK (length(currency) = 3),\n"
     "  event_ms INTEGER NOT NULL,\n"
     "  status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DEACTIVATED')),\n"
     "  created_ms INTEGER NOT NULL,\n"
     "  updated_ms INTEGER NOT NULL\n"
     ");\n"
     "CREATE UNIQUE INDEX catalogs_title ON catalogs (title COLLATE NOCASE);\n"
     "CREATE INDEX catalogs_event ON catalogs (event_ms);\n"
     "CREATE INDEX catalogs_created ON catalogs (created_ms);\n"
     "CREATE INDEX catalogs_price ON catalogs (price);\n"
     "CREATE INDEX catalogs_status_event ON catalogs (status, event_ms);\n"
     "CREATE TABLE tickets (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  catalog_id TEXT NOT NULL REFERENCES catalogs (id),\n"
     "  seq INTEGER NOT NULL,\n"
     "  status TEXT NOT NULL DEFAULT 'AVAILABLE'\n"
     "    CHECK (status IN ('AVAILABLE', 'RESERVED', 'SOLD')),\n"
     "  booking_id TEXT,\n"
     "  updated_ms INTEGER NOT NULL,\n"
     "  UNIQUE (catalog_id, seq),\n"
     "  CHECK ((status = 'AVAILABLE') = (booking_id IS NULL))\n"
     ");\n"
     "CREATE INDEX tickets_catalog_status ON tickets (catalog_id, status, seq);\n"
     "CREATE UNIQUE INDEX tickets_booking ON tickets (booking_id) WHERE booking_id IS NOT NULL;\n"
     "CREATE TABLE reservations (\n"
     "  booking_id TEXT PRIMARY KEY,\n"
     "  catalog_id TEXT NOT NULL,\n"
     "  ticket_id TEXT,\n"
     "  outcome TEXT NOT NULL CHECK (outcome IN ('RESERVED', 'UNAVAILABLE')),\n"
     "  reason TEXT,\n"
     "  created_ms INTEGER NOT NULL\n"
     ") WITHOUT ROWID;\n"},
};

static const svc_desc_t catalog_desc = {
    .name = "catalog",
    .summary = "souk-catalog: courses and their tickets; reserves, sells and releases tickets "
               "for the booking saga.",
    .default_port = 8085,
    .migrations = migrations,
    .nmigrations = sizeof migrations / sizeof migrations[0],
    .routes = catalog_routes,
    .handlers = catalog_handlers,
};

int main(int argc, char **argv)
{
    return svc_main(&catalog_desc, argc, argv);
}
