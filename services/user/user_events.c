/*
 * user_events.c - the profile's birth: user.registered -> INSERT, and
 * user.created in the same (inbox) transaction.
 */
#include "user_int.h"

#include <stdio.h>

#include "sk_clock.h"
#include "sk_log.h"

/*
 * Optional profile fields of the registration as they will be stored: auth
 * validates them, but a value this service would refuse on PUT is dropped
 * (logged) rather than stored - the event is still a registration.
 */
static const char *clean_phone(const ev_event_t *ev)
{
    const char *s = ev_str(ev->data, "phone");
    if (s && !user_phone_valid(s)) {
        sk_warn("user", "user.registered %s: phone is not E.164; not stored", ev->id);
        return NULL;
    }
    return s;
}

static const char *clean_birth_date(const ev_event_t *ev)
{
    const char *s = ev_str(ev->data, "birthDate");
    const char *why = s ? user_birth_date_check(s, sk_wall_ms()) : NULL;
    if (why) {
        sk_warn("user", "user.registered %s: birthDate %s; not stored", ev->id, why);
        return NULL;
    }
    return s;
}

/*
 * The profile is created once per user id: INSERT ... ON CONFLICT DO
 * NOTHING, so a second user.registered for the same id (another event id:
 * the inbox does not catch it) changes nothing and emits nothing.
 * registered_ms is the event's time, so it does not depend on when the
 * event was consumed.
 */
int user_on_registered(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    svc_t *svc = ctx;
    const char *user_id = ev_str(ev->data, "userId");
    const char *email = ev_str(ev->data, "email");
    const char *role = ev_str(ev->data, "role");
    const char *full_name = ev_str(ev->data, "fullName");
    int rc = -1;

    if (!*user_id || !*email || svc_role_parse(role) == SVC_ROLE_NONE) {
        /* Valid JSON types but not a registration we can keep: failing makes
         * it go to users.dlq after the attempts (an operator looks at it). */
        snprintf(err, errsz, "user.registered %s: empty userId/email or unknown role", ev->id);
        return -1;
    }
    int n =
        sto_exec(db,
                 "INSERT INTO profiles (user_id, email, full_name, phone, bio, birth_date, role,"
                 " registered_ms, updated_ms) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)"
                 " ON CONFLICT (user_id) DO NOTHING",
                 "ttttttII", user_id, email, full_name ? full_name : "", clean_phone(ev),
                 clean_birth_date(ev), role, (int64_t)ev->time_ms, (int64_t)ev->time_ms);
    if (n < 0) {
        snprintf(err, errsz, "profiles insert: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (n == 0) {
        sk_info("user", "user.registered %s: profile %s exists already; nothing to do", ev->id,
                user_id);
        return 0;
    }

    sqlite3_stmt *st = sto_query(
        db, "SELECT " USER_PROFILE_COLUMNS " FROM profiles WHERE user_id = ?", "t", user_id);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        snprintf(err, errsz, "profiles read back: %s", sqlite3_errmsg(db));
        goto out;
    }
    cJSON *data = user_event_data(st);
    sto_done(st);
    st = NULL;
    if (svc_emit_caused(svc, db, ev, "user.created", data, err, errsz) < 0) goto out;
    sk_info("user", "profile %s created", user_id);
    rc = 0;
out:
    sto_done(st);
    return rc;
}

/*
 * user.role_changed (same topic and key as the registration, so it comes
 * after it): the profile takes the new role and user.updated says so.  A
 * role the profile already has changes nothing and emits nothing.
 */
int user_on_role_changed(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz)
{
    svc_t *svc = ctx;
    const char *user_id = ev_str(ev->data, "userId");
    const char *role = ev_str(ev->data, "role");
    if (svc_role_parse(role) == SVC_ROLE_NONE) {
        snprintf(err, errsz, "user.role_changed %s: unknown role", ev->id);
        return -1;
    }
    int n = sto_exec(db, "UPDATE profiles SET role = ?, updated_ms = ? WHERE user_id = ? AND role <> ?",
                     "tItt", role, (int64_t)ev->time_ms, user_id, role);
    if (n < 0) {
        snprintf(err, errsz, "profiles update: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (n == 0) {
        sk_info("user", "user.role_changed %s: profile %s unknown or already %s; nothing to do", ev->id,
                user_id, role);
        return 0;
    }
    sqlite3_stmt *st = sto_query(
        db, "SELECT " USER_PROFILE_COLUMNS " FROM profiles WHERE user_id = ?", "t", user_id);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        snprintf(err, errsz, "profiles read back: %s", sqlite3_errmsg(db));
        sto_done(st);
        return -1;
    }
    cJSON *data = user_event_data(st);
    sto_done(st);
    if (svc_emit_caused(svc, db, ev, "user.updated", data, err, errsz) < 0) return -1;
    sk_info("user", "profile %s: role now %s", user_id, role);
    return 0;
}
