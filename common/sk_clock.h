/*
 * sk_clock.h - the two clocks souk uses.
 *
 * Monotonic time for timeouts and durations (never goes backwards, unrelated
 * to the calendar); wall time for timestamps that leave the process (Kafka
 * record timestamps, log lines, RFC 3339 event times).
 */
#ifndef SK_CLOCK_H
#define SK_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t sk_mono_ms(void);
int64_t sk_mono_us(void);
int64_t sk_wall_ms(void); /* milliseconds since the Unix epoch */

/* Formats ms since the epoch as "2026-11-25T16:37:36.123Z" (24 chars + NUL);
 * out must hold SK_RFC3339_LEN bytes.  Returns out. */
#define SK_RFC3339_LEN 64
char *sk_rfc3339_ms(int64_t wall_ms, char *out);

/* Parses RFC 3339 ("2026-11-25T16:37:36.123Z", fraction optional, "Z" or
 * "+hh:mm"/"-hh:mm", a real calendar date) to ms since the epoch.
 * Returns 0, or -1 (*out_ms untouched). */
int sk_rfc3339_parse(const char *s, int64_t *out_ms);

/* The proleptic Gregorian calendar (Howard Hinnant's algorithms). */
int64_t sk_days_from_civil(int64_t y, int m, int d); /* days since 1970-01-01 */
void sk_civil_from_days(int64_t days, int *y, int *m, int *d);
int sk_date_valid(int y, int m, int d); /* 1 for a real date (leap years included) */
/* Parses exactly "YYYY-MM-DD" (a real date) to days since 1970-01-01
 * (days_out may be NULL).  Returns 0 or -1. */
int sk_date_parse(const char *s, int64_t *days_out);

#endif
