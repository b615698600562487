/*
 * card.h - the payment service's pure rules: what a valid card, expiry and
 * CVC are, what the simulated provider decides for a card, and the
 * deterministic auto-pay decision.  No I/O, no database, no clock of its
 * own (now is passed in): unit-tested in tests/test_card.c.
 *
 * Nothing here keeps or logs a card number; the caller keeps only the last
 * four digits (card_last4()).
 */
#ifndef CARD_H
#define CARD_H

#include <stddef.h>
#include <stdint.h>

#define CARD_DIGITS_MIN 12
#define CARD_DIGITS_MAX 19
#define CARD_INPUT_MAX 64 /* longest card text accepted (digits and spaces) */

/* The normalised card number: CARD_DIGITS_MAX digits and a NUL. */
typedef struct card_number_s {
    char digits[CARD_DIGITS_MAX + 1];
    size_t len;
} card_number_t;

/*
 * Parses the card text a client sent: digits, with spaces allowed anywhere
 * (as printed on the card: "4242 4242 4242 4242"), 12-19 digits, and the
 * Luhn check digit right.  Returns 0 with *out filled, or -1 with *why a
 * static reason for the field error (never containing the number).
 * text may be NULL (-> -1).
 */
int card_number_parse(const char *text, card_number_t *out, const char **why);

/* 1 when the digit string (only '0'-'9', at least 2 of them) passes the
 * Luhn (mod 10) check, else 0. */
int card_luhn_valid(const char *digits, size_t len);

/* The last four digits of a parsed number, NUL-terminated into out. */
void card_last4(const card_number_t *n, char out[5]);

/* Which field an expiry problem belongs to. */
typedef enum { CARD_EXP_OK = 0, CARD_EXP_BAD_MONTH, CARD_EXP_BAD_YEAR } card_exp_t;

/*
 * A card is valid through the last millisecond of its expiry month (UTC):
 * month 1-12, year 4 digits (1000-9999).  Returns CARD_EXP_OK, or the
 * field to blame with *why a static reason: CARD_EXP_BAD_MONTH for a month
 * out of range or a card that expired earlier this year, CARD_EXP_BAD_YEAR
 * for a year out of range or in the past.
 */
card_exp_t card_expiry_check(int64_t month, int64_t year, int64_t now_ms, const char **why);

/* First millisecond (UTC, since the epoch) after the expiry month ends:
 * the card is expired when now_ms >= this.  month 1-12, year >= 1970. */
int64_t card_expiry_end_ms(int64_t month, int64_t year);

/* A CVC is 3 or 4 digits.  Returns 0, or -1 with *why. */
int card_cvc_check(const char *cvc, const char **why);

/* What the simulated provider answers. */
typedef enum { CARD_APPROVED = 0, CARD_DECLINED, CARD_INSUFFICIENT_FUNDS } card_decision_t;

/*
 * The sandbox's test cards, as a card processor's: 4000 0000 0000 0002 is
 * declined, 4000 0000 0000 9995 fails for insufficient funds, every other
 * valid number (4242 4242 4242 4242 among them) is approved.
 */
card_decision_t card_decide(const card_number_t *n);

/* The failure reason of a decision: NULL for CARD_APPROVED, else
 * "card_declined" / "insufficient_funds".  Static string. */
const char *card_decision_reason(card_decision_t d);

/*
 * --auto-pay: 1 when the booking's payment is declined, else 0.  Stable
 * for a booking id (FNV-1a 32 of the id, mod 100, below percent), so a
 * replay or a restart decides the same way; percent <= 0 never declines,
 * >= 100 always does.
 */
int card_auto_pay_declines(const char *booking_id, int64_t percent);

#endif
