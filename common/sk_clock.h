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

#endif
