/*
 * souk-user: user profiles.
 *
 * A profile is born from auth's user.registered event (topic users), never
 * from a client: the consumer inserts it once per user id (a second
 * registration event for the same id is a recorded no-op) and announces it
 * with user.created in the same transaction.  Clients read and replace their
 * own profile (GET/PUT /users/me; a change emits user.updated, again in the
 * transaction that makes it); admins list everyone (GET /users).  The email
 * and the role are auth's: they arrive with the registration and are not
 * editable here.
 */
#include "user_int.h"

#include "sk_clock.h"

static const sto_migration_t migrations[] = {
    SVC_EVENTS_MIGRATIONS,
    {3, "profiles",
     "CREATE TABLE profiles (\n"
     "  user_id TEXT PRIMARY KEY,\n"
     "  email TEXT NOT NULL,\n"
     "  full_name TEXT NOT NULL DEFAULT '',\n"
     "  phone TEXT,\n"
     "  bio TEXT,\n"
     "  birth_date TEXT,              -- YYYY-MM-DD\n"
     "  role TEXT NOT NULL,\n"
     "  registered_ms INTEGER NOT NULL, -- the user.registered event's time\n"
     "  updated_ms INTEGER NOT NULL\n"
     ");\n"
     "CREATE INDEX profiles_registered ON profiles (registered_ms, user_id);\n"
     "CREATE INDEX profiles_birth_date ON profiles (birth_date);\n"},
};

static const svc_route_t routes[] = {
    {SVC_GET, "/users/me", user_get_me, SVC_USER},
    {SVC_PUT, "/users/me", user_put_me, SVC_USER},
    {SVC_GET, "/users", user_list, SVC_ADMIN},
    {0, NULL, NULL, 0},
};

static const ev_handler_t handlers[] = {
    {"user.registered", user_on_registered},
    {"user.role_changed", user_on_role_changed},
    {NULL, NULL},
};

static const svc_desc_t user_desc = {
    .name = "user",
    .summary = "souk's user profiles: created from auth's user.registered events, read and\n"
               "edited by their owner, listed by admins.",
    .default_port = 8080,
    .migrations = migrations,
    .nmigrations = sizeof migrations / sizeof migrations[0],
    .routes = routes,
    .handlers = handlers,
};

static void add_ms(cJSON *o, const char *name, int64_t ms)
{
    char buf[SK_RFC3339_LEN];
    cJSON_AddStringToObject(o, name, sk_rfc3339_ms(ms, buf));
}

cJSON *user_event_data(sqlite3_stmt *st)
{
    cJSON *o = ev_obj();
    ev_set_str(o, "userId", sto_col_text(st, 0));
    ev_set_str(o, "email", sto_col_text(st, 1));
    ev_set_str(o, "fullName", sto_col_text(st, 2) ? sto_col_text(st, 2) : "");
    ev_set_str(o, "phone", sto_col_text(st, 3));
    ev_set_str(o, "bio", sto_col_text(st, 4));
    ev_set_str(o, "birthDate", sto_col_text(st, 5));
    ev_set_str(o, "role", sto_col_text(st, 6));
    return o;
}

cJSON *user_profile_json(sqlite3_stmt *st)
{
    cJSON *o = user_event_data(st);
    add_ms(o, "registeredAt", sqlite3_column_int64(st, 7));
    add_ms(o, "updatedAt", sqlite3_column_int64(st, 8));
    return o;
}

int main(int argc, char **argv)
{
    return svc_main(&user_desc, argc, argv);
}
