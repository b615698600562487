/*
 * user_rules.c - phone numbers, dates and time bounds (see user_rules.h).
 */
#include "user_rules.h"

#include <string.h>

#include "envelope.h" /* ev_time_parse */

int user_phone_valid(const char *s)
{
    if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9') return 0;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (*p < '0' || *p > '9') return 0;
    return n >= 2 && n <= 15;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int user_date_parse(const char *s, int64_t *days_out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return -1;
    if (digits(s, 4, &y) < 0 || digits(s + 5, 2, &m) < 0 || digits(s + 8, 2, &d) < 0) return -1;
    if (y < 1 || m < 1 || m > 12 || d < 1) return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max = mdays[m - 1] + (m == 2 && leap);
    if (d > max) return -1;
    if (days_out) *days_out = days_from_civil(y, m, d);
    return 0;
}

char *user_date_today(int64_t now_ms, char out[11])
{
    int64_t days = now_ms / 86400000;
    if (now_ms < 0 && now_ms % 86400000) days--;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
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
