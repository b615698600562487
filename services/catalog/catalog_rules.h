/*
 * catalog_rules.h - the catalog's pure rules: what a valid currency, event
 * date and list filter are, and the list query built from fixed SQL
 * fragments.  No I/O, no database: unit-tested in tests/test_catalog_rules.c.
 */
#ifndef CATALOG_RULES_H
#define CATALOG_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "sk_buf.h"

/* Limits of a catalog (the API's documented rules). */
#define CAT_TITLE_MIN 5
#define CAT_TITLE_MAX 80
#define CAT_DESCRIPTION_MAX 2000
#define CAT_PRICE_MAX INT64_C(100000000000) /* minor units: 1e9 major units */
#define CAT_TICKETS_MIN 1
#define CAT_TICKETS_MAX 50

/*
 * 1 when code is an active ISO 4217 currency code (the alphabetic list of
 * the ISO 4217 maintenance agency, fund codes included; precious metals and
 * testing codes such as XAU, XTS, XXX are not currencies one pays with), else
 * 0.  Case-sensitive: "usd" is not accepted.  NULL gives 0.
 */
int cat_currency_valid(const char *code);

/*
 * A title is kept as sent, but must not begin or end with white space nor
 * hold control characters (the length rule is the caller's: svc_json_str).
 * Returns NULL when fine, else a static reason for the field error.
 */
const char *cat_title_problem(const char *title);

/*
 * dateOfEvent: an RFC 3339 date-time with a zone ("2027-05-01T18:00:00Z",
 * "2027-05-01T20:00:00+02:00", fraction optional) strictly after now_ms.
 * Returns 0 with *out_ms set, or -1 with *why a static reason.
 */
int cat_event_time_parse(const char *s, int64_t now_ms, int64_t *out_ms, const char **why);

/*
 * dateFrom / dateTo query values: an RFC 3339 date-time, or a plain date
 * "YYYY-MM-DD" meaning that UTC day - its first millisecond for dateFrom
 * (end_of_day 0), its last for dateTo (end_of_day 1), so both bounds are
 * inclusive.  Returns 0 with *out_ms set, or -1.
 */
int cat_query_date_parse(const char *s, int end_of_day, int64_t *out_ms);

/* ---- the list query ---------------------------------------------------- */

/* The status filter; SOLD_OUT is derived: ACTIVE with no AVAILABLE ticket
 * (and ACTIVE means ACTIVE with at least one). */
typedef enum {
    CAT_STATUS_ACTIVE = 0,
    CAT_STATUS_DEACTIVATED,
    CAT_STATUS_SOLD_OUT,
    CAT_STATUS_ANY, /* no filter */
} cat_status_t;

/* "ACTIVE", "DEACTIVATED", "SOLD_OUT", NULL: for svc_query_enum. */
extern const char *const cat_status_names[];
/* "dateOfEvent", "createdAt", "price", NULL: for svc_query_page. */
extern const char *const cat_sort_fields[];
enum { CAT_SORT_DATE = 0, CAT_SORT_CREATED, CAT_SORT_PRICE };

typedef struct cat_filter_s {
    int has_price_from, has_price_to, has_date_from, has_date_to;
    int64_t price_from, price_to; /* minor units, inclusive */
    int64_t date_from, date_to;   /* ms since the epoch, inclusive, on dateOfEvent */
    cat_status_t status;
} cat_filter_t;

#define CAT_FILTER_MAX_BINDS 4

/*
 * Appends the WHERE clause for f to sql (nothing when f filters nothing),
 * over the table alias `c` (catalogs) with `tickets` correlated on c.id.
 * Only fixed fragments are appended: every value becomes a `?` whose
 * int64 value is stored in binds[0..n-1], in order.  Returns n.
 */
int cat_filter_where(const cat_filter_t *f, sk_buf_t *sql, int64_t binds[CAT_FILTER_MAX_BINDS]);

/* " ORDER BY <column> ASC|DESC, c.id ASC|DESC" for a cat_sort_fields index
 * (anything else sorts by date).  Static string. */
const char *cat_order_by(int sort, int desc);

#endif
