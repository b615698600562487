/*
 * user_rules.c - phone numbers, dates and time bounds (see user_rules.h).
 */
#include "user_rules.h"

#include <string.h>

#include "envelope.h"
#include "sk_clock.h"

int user_phone_valid(const char *s)
{
    if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9') return 0;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (*p < '0' || *p > '9') return 0;
    return n >= 2 && n <= 15;
}

int user_date_parse(const char *s, int64_t *days_out)
{
    if (s && strncmp(s, "0000", 4) == 0) return -1; /* there is no year 0 */
    return sk_date_parse(s, days_out);
}

char *user_date_today(int64_t now_ms, char out[11])
{
    int64_t days = now_ms / 86400000;
    if (now_ms < 0 && now_ms % 86400000) days--;
    int y, m, d;
    sk_civil_from_days(days, &y, &m, &d);
    /* y is within 0..9999 for any wall clock this runs on */
    out[0] = (char)('0' + (y / 1000) % 10);
    out[1] = (char)('0' + (y / 100) % 10);
    out[2] = (char)('0' + (y / 10) % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
    return out;
}

const char *user_birth_date_check(const char *s, int64_t now_ms)
{
    char today[11];
    if (user_date_parse(s, NULL) < 0) return "must be a date YYYY-MM-DD";
    /* Same fixed shape: the strings order like the dates. */
    if (strcmp(s, USER_OLDEST_BIRTH_DATE) < 0) return "must not be before " USER_OLDEST_BIRTH_DATE;
    if (strcmp(s, user_date_today(now_ms, today)) >= 0) return "must be a date in the past";
    return NULL;
}

int user_time_bound(const char *s, int upper, int64_t *ms_out)
{
    int64_t days, ms;
    if (!s) return -1;
    if (user_date_parse(s, &days) == 0) {
        *ms_out = (days + (upper ? 1 : 0)) * 86400000;
        return 0;
    }
    /* ev_time_parse needs the 'T' form; reject anything without it. */
    if (strlen(s) < 20 || (s[10] != 'T' && s[10] != 't')) return -1;
    if (ev_time_parse(s, &ms) < 0) return -1;
    *ms_out = ms + (upper ? 1 : 0);
    return 0;
}
