/*
 * card.c - card number, expiry and CVC rules, the sandbox's decisions and
 * the auto-pay rule (see card.h).  Pure functions.
 */
#include "card.h"
#include "sk_clock.h"

#include <string.h>

int card_luhn_valid(const char *digits, size_t len)
{
    if (!digits || len < 2) return 0;
    unsigned sum = 0;
    int dbl = 0; /* every second digit from the right is doubled */
    for (size_t i = len; i-- > 0;) {
        if (digits[i] < '0' || digits[i] > '9') return 0;
        unsigned d = (unsigned)(digits[i] - '0');
        if (dbl) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

int card_number_parse(const char *text, card_number_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (!text) {
        *why = "is required";
        return -1;
    }
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if ((size_t)(p - text) >= CARD_INPUT_MAX) {
            *why = "must be 12 to 19 digits";
            goto bad;
        }
        if (*p == ' ') continue;
        if (*p < '0' || *p > '9') {
            *why = "must contain only digits and spaces";
            goto bad;
        }
        if (n == CARD_DIGITS_MAX) {
            *why = "must be 12 to 19 digits";
            goto bad;
        }
        out->digits[n++] = *p;
    }
    if (n < CARD_DIGITS_MIN) {
        *why = "must be 12 to 19 digits";
        goto bad;
    }
    if (!card_luhn_valid(out->digits, n)) {
        *why = "is not a valid card number (check digit)";
        goto bad;
    }
    out->len = n;
    return 0;
bad:
    /* Leave no digits behind in the caller's struct. */
    memset(out, 0, sizeof *out);
    return -1;
}

void card_last4(const card_number_t *n, char out[5])
{
    size_t from = n->len >= 4 ? n->len - 4 : 0;
    memcpy(out, n->digits + from, n->len - from);
    out[n->len - from] = '\0';
}

int64_t card_expiry_end_ms(int64_t month, int64_t year)
{
    int64_t ny = month == 12 ? year + 1 : year;
    int64_t nm = month == 12 ? 1 : month + 1;
    return sk_days_from_civil(ny, (int)nm, 1) * 86400000;
}

card_exp_t card_expiry_check(int64_t month, int64_t year, int64_t now_ms, const char **why)
{
    if (month < 1 || month > 12) {
        *why = "must be a month from 1 to 12";
        return CARD_EXP_BAD_MONTH;
    }
    if (year < 1000 || year > 9999) {
        *why = "must be a 4-digit year";
        return CARD_EXP_BAD_YEAR;
    }
    if (now_ms < card_expiry_end_ms(month, year)) return CARD_EXP_OK;
    *why = "the card has expired";
    /* Blame the year when the whole year is over, else the month. */
    return now_ms >= card_expiry_end_ms(12, year) ? CARD_EXP_BAD_YEAR : CARD_EXP_BAD_MONTH;
}

int card_cvc_check(const char *cvc, const char **why)
{
    size_t n = 0;
    if (!cvc) {
        *why = "is required";
        return -1;
    }
    for (const char *p = cvc; *p; p++, n++) {
        if (*p < '0' || *p > '9' || n == 4) {
            *why = "must be 3 or 4 digits";
            return -1;
        }
    }
    if (n < 3) {
        *why = "must be 3 or 4 digits";
        return -1;
    }
    return 0;
}

card_decision_t card_decide(const card_number_t *n)
{
    if (strcmp(n->digits, "4000000000000002") == 0) return CARD_DECLINED;
    if (strcmp(n->digits, "4000000000009995") == 0) return CARD_INSUFFICIENT_FUNDS;
    return CARD_APPROVED;
}

const char *card_decision_reason(card_decision_t d)
{
    switch (d) {
    case CARD_DECLINED:
        return "card_declined";
    case CARD_INSUFFICIENT_FUNDS:
        return "insufficient_funds";
    case CARD_APPROVED:
        break;
    }
    return NULL;
}

int card_auto_pay_declines(const char *booking_id, int64_t percent)
{
    if (percent <= 0) return 0;
    if (percent >= 100) return 1;
    uint32_t h = 2166136261u; /* FNV-1a 32 */
    for (const unsigned char *p = (const unsigned char *)booking_id; p && *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return (int64_t)(h % 100) < percent;
}
