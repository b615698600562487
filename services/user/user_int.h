/*
 * user_int.h - what souk-user's files share (not a public API).
 *
 * user.c        the description: schema, routes, handlers, main()
 * user_http.c   GET/PUT /users/me, GET /users
 * user_events.c user.registered -> a profile and user.created
 * user_rules.c  phone numbers, dates, time bounds (pure; unit-tested)
 */
#ifndef USER_INT_H
#define USER_INT_H

#include "svc.h"
#include "user_rules.h"

/* The columns every profile read selects, in this order (user_profile_json
 * reads them by position). */
#define USER_PROFILE_COLUMNS                                                                       \
    "user_id, email, full_name, phone, bio, birth_date, role, registered_ms, updated_ms"

/*
 * The profile a client sees, from a row of USER_PROFILE_COLUMNS:
 * {userId, email, fullName, phone, bio, birthDate, role, registeredAt,
 * updatedAt}.  Returns a new object (the caller owns it).
 */
cJSON *user_profile_json(sqlite3_stmt *st);

/*
 * The data of user.created / user.updated from the same row:
 * {userId, email, fullName, phone, bio, birthDate, role}.  New object.
 */
cJSON *user_event_data(sqlite3_stmt *st);

/* Routes (user_http.c). */
void user_get_me(svc_t *svc, svc_req_t *req);
void user_put_me(svc_t *svc, svc_req_t *req);
void user_list(svc_t *svc, svc_req_t *req);

/* Event handlers (user_events.c). */
int user_on_registered(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz);
int user_on_role_changed(void *ctx, sqlite3 *db, const ev_event_t *ev, char *err, size_t errsz);

#endif
