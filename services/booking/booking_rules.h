/*
 * booking_rules.h - the booking saga's pure rules: the states, which
 * transitions exist and what each one must do, the Idempotency-Key rules and
 * the request hash, the hold key.  No I/O, no database: unit-tested in
 * tests/test_booking_rules.c.
 */
#ifndef BOOKING_RULES_H
#define BOOKING_RULES_H

#include <stddef.h>
#include <stdint.h>

/* The states of a booking (ARCHITECTURE.md, "The booking saga"). */
typedef enum {
    BK_PENDING = 0,      /* waiting for the catalog's reservation */
    BK_AWAITING_PAYMENT, /* ticket reserved, payment requested */
    BK_CONFIRMED,        /* paid, ticket sold */
    BK_FAILED,           /* no ticket, or the payment failed */
    BK_EXPIRED,          /* the hold ran out first */
    BK_CANCELLED,        /* by the user or an admin */
    BK_NSTATES
} bk_state_t;

/* "PENDING", ..., "CANCELLED", NULL: for svc_query_enum.  Indexed by state. */
extern const char *const bk_state_names[];

/* The name of a state; "?" for an out-of-range value. */
const char *bk_state_name(bk_state_t s);
/* The state named s, or -1 (NULL or unknown; case-sensitive). */
int bk_state_parse(const char *s);
/* 1 for FAILED, EXPIRED, CANCELLED and CONFIRMED (a state no timer or
 * reservation reply moves any more), else 0.  CONFIRMED may still be
 * cancelled, but holds nothing: it is terminal for the hold. */
int bk_state_final(bk_state_t s);
/* 1 while the booking holds (or waits for) a ticket: PENDING,
 * AWAITING_PAYMENT.  These are the states the sweeper expires. */
int bk_state_open(bk_state_t s);

/* What a transition must do, besides the guarded UPDATE. */
enum {
    BK_FX_REQUEST_PAYMENT = 1 << 0, /* payment.requested (amount from the reservation) */
    BK_FX_SELL = 1 << 1,            /* ticket.sell */
    BK_FX_RELEASE = 1 << 2,         /* ticket.release (a ticket is reserved or sold) */
    BK_FX_REFUND = 1 << 3,          /* refund.requested (a payment succeeded) */
    BK_FX_DEL_HOLD = 1 << 4,        /* DEL hold:<id> in the key store */
    BK_FX_ANNOUNCE = 1 << 5,        /* booking.<to> (confirmed, failed, expired, cancelled) */
};

/*
 * The transition table.  Returns the effects (a BK_FX_* mask, never 0) of
 * from -> to, or -1 when there is no such transition (the event or request
 * that asked for it is late, duplicated or not allowed).
 *
 *   PENDING          -> AWAITING_PAYMENT  request payment
 *   PENDING          -> FAILED | EXPIRED | CANCELLED
 *                                         del hold, announce (no ticket is known
 *                                         reserved yet: a late ticket.reserved is
 *                                         released when it comes)
 *   AWAITING_PAYMENT -> CONFIRMED         sell, del hold, announce
 *   AWAITING_PAYMENT -> FAILED | EXPIRED | CANCELLED
 *                                         release, del hold, announce
 *   CONFIRMED        -> CANCELLED         release, refund, del hold, announce
 */
int bk_transition(bk_state_t from, bk_state_t to);

/* ---- Idempotency-Key ---------------------------------------------------- */

#define BK_IDEM_KEY_MAX 255

/* 1 when key is a usable Idempotency-Key: 1..BK_IDEM_KEY_MAX visible ASCII
 * characters (0x21..0x7e), else 0.  NULL gives 0. */
int bk_idem_key_valid(const char *key);

/* A request hash as lowercase hex SHA-256: 64 chars + NUL. */
#define BK_HASH_HEX_LEN 65

/*
 * The hash of a POST /bookings request: what the request asks for, so that
 * a retry with the same Idempotency-Key and an equivalent body (same fields,
 * any key order or white space) matches, and any other body does not.
 * ticket_id and catalog_id may be NULL (absent); they are length-prefixed,
 * so no two different pairs hash alike.  Writes BK_HASH_HEX_LEN bytes to out.
 */
void bk_request_hash(const char *ticket_id, const char *catalog_id, char out[BK_HASH_HEX_LEN]);

/* ---- the hold ----------------------------------------------------------- */

#define BK_HOLD_PREFIX "hold:"

/* The booking id in a key-store key "hold:<id>" (a pointer into key), or
 * NULL when key is not a hold key or the id is empty.  NULL gives NULL. */
const char *bk_hold_key_id(const char *key);

#endif
