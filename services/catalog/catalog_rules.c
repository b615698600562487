/*
 * catalog_rules.c - currency, title and date rules, and the list query's
 * WHERE / ORDER BY built from fixed fragments (see catalog_rules.h).
 */
#include "catalog_rules.h"

#include <string.h>

#include "envelope.h" /* ev_time_parse */
#include "sk_clock.h"

/* ISO 4217 active alphabetic codes (2024 list, with XCG and ZWG), sorted. */
static const char currencies[][4] = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
};

int cat_currency_valid(const char *code)
{
    if (!code || strlen(code) != 3) return 0;
    size_t lo = 0, hi = sizeof currencies / sizeof currencies[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(code, currencies[mid]);
        if (c == 0) return 1;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

const char *cat_title_problem(const char *title)
{
    size_t n = strlen(title);
    if (n == 0) return "must not be empty";
    if (is_space((unsigned char)title[0]) || is_space((unsigned char)title[n - 1]))
        return "must not begin or end with white space";
    for (const unsigned char *p = (const unsigned char *)title; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return "must not contain control characters";
    return NULL;
}

int cat_event_time_parse(const char *s, int64_t now_ms, int64_t *out_ms, const char **why)
{
    int64_t t;
    if (!s || ev_time_parse(s, &t) < 0) {
        *why = "must be an RFC 3339 date-time with a time zone, e.g. 2030-05-01T18:00:00Z";
        return -1;
    }
    if (t <= now_ms) {
        *why = "must be in the future";
        return -1;
    }
    *out_ms = t;
    return 0;
}

int cat_query_date_parse(const char *s, int end_of_day, int64_t *out_ms)
{
    int64_t days;
    if (!s) return -1;
    if (strlen(s) != 10) return sk_rfc3339_parse(s, out_ms);
    if (sk_date_parse(s, &days) < 0) return -1;
    int64_t ms = days * INT64_C(86400000);
    *out_ms = end_of_day ? ms + INT64_C(86400000) - 1 : ms;
    return 0;
}

/* ---- the list query ------------------------------------------------------ */

const char *const cat_status_names[] = {"ACTIVE", "DEACTIVATED", "SOLD_OUT", NULL};
const char *const cat_sort_fields[] = {"dateOfEvent", "createdAt", "price", NULL};

#define HAS_AVAILABLE                                                                              \
    "EXISTS (SELECT 1 FROM tickets t WHERE t.catalog_id = c.id AND t.status = 'AVAILABLE')"

int cat_filter_where(const cat_filter_t *f, sk_buf_t *sql, int64_t binds[CAT_FILTER_MAX_BINDS])
{
    int n = 0;
    const char *sep = " WHERE ";
#define ADD(frag)                                                                                  \
    do {                                                                                           \
        sk_buf_adds(sql, sep);                                                                     \
        sk_buf_adds(sql, frag);                                                                    \
        sep = " AND ";                                                                             \
    } while (0)
    if (f->has_price_from) {
        ADD("c.price >= ?");
        binds[n++] = f->price_from;
    }
    if (f->has_price_to) {
        ADD("c.price <= ?");
        binds[n++] = f->price_to;
    }
    if (f->has_date_from) {
        ADD("c.event_ms >= ?");
        binds[n++] = f->date_from;
    }
    if (f->has_date_to) {
        ADD("c.event_ms <= ?");
        binds[n++] = f->date_to;
    }
    switch (f->status) {
    case CAT_STATUS_ACTIVE:
        ADD("c.status = 'ACTIVE' AND " HAS_AVAILABLE);
        break;
    case CAT_STATUS_SOLD_OUT:
        ADD("c.status = 'ACTIVE' AND NOT " HAS_AVAILABLE);
        break;
    case CAT_STATUS_DEACTIVATED:
        ADD("c.status = 'DEACTIVATED'");
        break;
    case CAT_STATUS_ANY:
        break;
    }
#undef ADD
    return n;
}

const char *cat_order_by(int sort, int desc)
{
    static const char *const orders[][2] = {
        {" ORDER BY c.event_ms ASC, c.id ASC", " ORDER BY c.event_ms DESC, c.id DESC"},
        {" ORDER BY c.created_ms ASC, c.id ASC", " ORDER BY c.created_ms DESC, c.id DESC"},
        {" ORDER BY c.price ASC, c.id ASC", " ORDER BY c.price DESC, c.id DESC"},
    };
    if (sort < 0 || sort > CAT_SORT_PRICE) sort = CAT_SORT_DATE;
    return orders[sort][desc ? 1 : 0];
}
