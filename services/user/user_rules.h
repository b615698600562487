/*
 * user_rules.h - the pure rules of souk-user's profiles: phone numbers,
 * calendar dates and the registration-time filters of GET /users.  No I/O,
 * no database: unit-tested in tests/test_user_rules.c.
 */
#ifndef USER_RULES_H
#define USER_RULES_H

#include <stddef.h>
#include <stdint.h>

#define USER_FULL_NAME_MAX 100
#define USER_BIO_MAX 1000
#define USER_EMAIL_FILTER_MAX 320
#define USER_OLDEST_BIRTH_DATE "1900-01-01"

/* 1 when s is an E.164 number: '+', a first digit 1-9, 2..15 digits in all. */
int user_phone_valid(const char *s);

/*
 * Parses a calendar date "YYYY-MM-DD" (exactly that shape, a real day of the
 * proleptic Gregorian calendar, year 0001-9999).  Returns 0 with *days_out
 * (may be NULL) = days since 1970-01-01, or -1.
 */
int user_date_parse(const char *s, int64_t *days_out);

/* Today's date in UTC for the wall clock now_ms, as "YYYY-MM-DD"; out must
 * hold 11 bytes.  Returns out. */
char *user_date_today(int64_t now_ms, char out[11]);

/*
 * A birth date for a profile: a real date, not before USER_OLDEST_BIRTH_DATE,
 * strictly before today (UTC, from now_ms).  Returns NULL when valid, else a
 * static message for the field error ("must be a date in the past").
 */
const char *user_birth_date_check(const char *s, int64_t now_ms);

/*
 * A registration-time bound of GET /users: RFC 3339 ("2026-11-25T16:37:36Z",
 * fraction and offset as ev_time_parse() takes them) or a date "YYYY-MM-DD"
 * (UTC).  upper = 0 (registeredFrom): *ms_out is the first millisecond that
 * matches - the instant, or the start of that day.  upper = 1 (registeredTo,
 * inclusive): *ms_out is the first millisecond that no longer matches - the
 * instant + 1, or the start of the next day.  Returns 0 or -1 (malformed).
 */
int user_time_bound(const char *s, int upper, int64_t *ms_out);

#endif
