/*
 * mail.h - the pure part of souk-notification: the email templates, money
 * and date formatting, HTML escaping, and an RFC 5322 / MIME message
 * builder.  No I/O, no database, no clock (times are arguments), so all of
 * it is unit-tested byte for byte (services/notification/tests).
 *
 * Text is UTF-8 throughout.  Builders append to an sk_buf_t; nothing here
 * allocates except through sk_buf / sk_alloc (which abort on out of memory).
 * Functions that can fail for bad input return 0 / -1 with a one-line reason
 * in (err, errsz), err may be NULL.
 */
#ifndef MAIL_H
#define MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "sk_buf.h"

/* ---- values ------------------------------------------------------------ */

/*
 * Formats an amount in minor units with its ISO 4217 currency:
 * (2500, "EUR") -> "25.00 EUR", (-150, "usd") -> "-1.50 USD",
 * (1200, "JPY") -> "1200 JPY", (1234, "KWD") -> "1.234 KWD".  The number of
 * decimals comes from a small table (0 for JPY, KRW, ...; 3 for BHD, KWD,
 * ...; 2 otherwise).  currency must be 3 ASCII letters, else -1.  Writes at
 * most outsz bytes (NUL included); -1 when it does not fit.
 */
int mail_money_format(int64_t minor, const char *currency, char *out, size_t outsz);

/* Minor-unit exponent of a currency (2 when unknown). */
int mail_currency_exponent(const char *currency);

/* Appends s with & < > " ' replaced by entities.  NULL appends nothing. */
void mail_html_escape(sk_buf_t *b, const char *s);

/* "24 Dec 2026, 18:00 UTC" for ms since the epoch; out holds MAIL_DATE_LEN. */
#define MAIL_DATE_LEN 64
char *mail_event_date(int64_t ms, char *out);

/* RFC 5322 date-time in UTC, "Wed, 25 Nov 2026 18:50:43 +0000" (English
 * names, whatever the locale); out holds MAIL_DATE_LEN. */
char *mail_rfc5322_date(int64_t ms, char *out);

/* ---- templates --------------------------------------------------------- */

/*
 * A template is text with {{name}} placeholders, replaced by the value of
 * the variable (HTML-escaped in HTML templates), and sections:
 *   {{#name}}...{{/name}}  kept only when name has a non-empty value;
 *   {{^name}}...{{/name}}  kept only when it has none.
 * Sections do not nest.  A variable the table does not define, an unclosed
 * section or a stray {{ is an error (templates are static: the unit test
 * renders every one).
 */
typedef struct mail_var_s {
    const char *name;
    const char *value; /* NULL or "" = no value */
} mail_var_t;

/* One email per event type: subject (plain text, one line), text body and
 * the inside of the HTML body (wrapped by mail_content_render). */
typedef struct mail_template_s {
    const char *type; /* event type, "booking.confirmed" */
    const char *subject;
    const char *text;
    const char *html;
    int needs_catalog; /* 1: waits for the catalog's title (see notification.c) */
} mail_template_t;

/* The whole table (static), *n entries. */
const mail_template_t *mail_templates(size_t *n);
/* The template of an event type, or NULL (the type sends no email). */
const mail_template_t *mail_template_find(const char *type);

/* Renders tpl with vars (nvars entries) into out (appended).  html = 1
 * escapes the values.  Returns 0 or -1 (err). */
int mail_render(const char *tpl, const mail_var_t *vars, size_t nvars, int html, sk_buf_t *out,
                char *err, size_t errsz);

/* A rendered email: new strings the caller frees with mail_content_release. */
typedef struct mail_content_s {
    char *subject; /* control characters replaced by spaces, trimmed */
    char *text;
    char *html; /* a whole small HTML document */
} mail_content_t;

int mail_content_render(const mail_template_t *t, const mail_var_t *vars, size_t nvars,
                        mail_content_t *out, char *err, size_t errsz);
void mail_content_release(mail_content_t *c);

/* ---- addresses ----------------------------------------------------------- */

/*
 * 1 when addr looks like a deliverable addr-spec we are willing to put in
 * a header and an SMTP command: 3..254 bytes of printable ASCII with no
 * space, no < > ( ) [ ] , ; : \ " and exactly one @ with text on both
 * sides.  (Deliberately narrower than RFC 5321: it is what users sign up
 * with, and nothing in it can inject a header or an SMTP command.)
 */
int mail_addr_valid(const char *addr);

/*
 * Splits "Display Name <user@host>" (or a bare "user@host") into new
 * strings: *name ("" when none; surrounding quotes removed) and *addr.
 * Returns 0, or -1 (err) when there is no valid address; then both are NULL.
 */
int mail_addr_split(const char *s, char **name, char **addr, char *err, size_t errsz);

/* Appends an address for a header: `addr` alone when name is NULL/empty;
 * else the name as an atom phrase, a quoted-string, or RFC 2047 encoded
 * words (non-ASCII), then " <addr>". */
void mail_addr_format(sk_buf_t *b, const char *name, const char *addr);

/* ---- the message ----------------------------------------------------------- */

/*
 * Appends "Name: value\r\n" for an unstructured header (Subject):
 * control characters become spaces; printable ASCII is folded at spaces to
 * stay near 78 columns; anything with non-ASCII bytes (or "=?") is written
 * as RFC 2047 "=?UTF-8?B?...?=" words of at most 76 columns, split on UTF-8
 * character boundaries and folded with CRLF SP.
 */
void mail_header_unstructured(sk_buf_t *b, const char *name, const char *value);

/* Appends s (n bytes) quoted-printable (RFC 2045): line breaks (\n or \r\n)
 * become CRLF, lines are at most 76 columns (soft breaks "=\r\n"), "=",
 * non-ASCII, a leading "." and trailing white space are encoded. */
void mail_qp_encode(sk_buf_t *b, const char *s, size_t n);

/* The left part of a Message-ID made from an event id: [A-Za-z0-9_-] kept,
 * every other byte as "=XX" (so different ids give different parts, and
 * the result is always a valid dot-atom-text). */
void mail_msgid_left(sk_buf_t *b, const char *event_id);

typedef struct mail_msg_s {
    const char *from;    /* "souk <noreply@souk.local>" (split with mail_addr_split) */
    const char *to_name; /* may be NULL */
    const char *to_addr; /* must pass mail_addr_valid */
    const char *subject;
    const char *text; /* UTF-8, \n line breaks */
    const char *html;
    int64_t date_ms;      /* the Date header */
    const char *event_id; /* Message-ID: <mail_msgid_left(event_id)@domain of from> */
} mail_msg_t;

/*
 * Appends the whole message, CRLF line endings, ready for SMTP DATA or an
 * .eml file: From, To, Subject, Date, Message-ID, MIME-Version,
 * Auto-Submitted, then a multipart/alternative body with a text/plain and
 * a text/html part, both UTF-8 quoted-printable.  The boundary starts with
 * "=_", which quoted-printable text can never contain.  The same m gives
 * the same bytes (a resend is identical).  Returns 0, or -1 (err) for an
 * invalid from / to address or a missing field.
 */
int mail_message_build(const mail_msg_t *m, sk_buf_t *out, char *err, size_t errsz);

#endif
