/*
 * test_mail.c - unit tests of services/notification/mail.c: money, dates,
 * HTML escaping, templates, quoted-printable, RFC 2047 headers, addresses
 * and the whole RFC 5322 message.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mail.h"
#include "sk_buf.h"

/* ---- helpers -------------------------------------------------------------- */

/* Decodes quoted-printable (soft breaks removed, CRLF kept as \n). */
static char *qp_decode(const char *s)
{
    sk_buf_t b;
    sk_buf_init(&b, strlen(s));
    for (const char *p = s; *p;) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=') {
            char hex[3] = {p[1], p[2], 0};
            sk_buf_addc(&b, (char)strtol(hex, NULL, 16));
            p += 3;
        } else if (p[0] == '\r' && p[1] == '\n') {
            sk_buf_addc(&b, '\n');
            p += 2;
        } else {
            sk_buf_addc(&b, *p++);
        }
    }
    return sk_buf_detach(&b, NULL);
}

/* Longest line (without CRLF) of s. */
static size_t max_line(const char *s)
{
    size_t best = 0;
    while (*s) {
        const char *e = strstr(s, "\r\n");
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n > best) best = n;
        s += n + (e ? 2 : 0);
    }
    return best;
}

static int has_bare_lf(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p == '\n' && (p == s || p[-1] != '\r')) return 1;
    return 0;
}

/* Decodes every =?UTF-8?B?...?= word of a header value and concatenates
 * them; each word alone must end on a character boundary. */
static char *decode_words(const char *s)
{
    sk_buf_t b;
    sk_buf_init(&b, 64);
    const char *p = s;
    while ((p = strstr(p, "=?UTF-8?B?"))) {
        p += 10;
        const char *e = strstr(p, "?=");
        ck_assert_ptr_nonnull(e);
        unsigned char out[128];
        int n = EVP_DecodeBlock(out, (const unsigned char *)p, (int)(e - p));
        ck_assert_int_ge(n, 0);
        /* strip the padding EVP_DecodeBlock counts as zero bytes */
        int pad = 0;
        if (e - p >= 1 && e[-1] == '=') pad++;
        if (e - p >= 2 && e[-2] == '=') pad++;
        n -= pad;
        /* the word does not end inside a UTF-8 sequence */
        int k = n - 1;
        while (k >= 0 && (out[k] & 0xC0) == 0x80)
            k--;
        if (k >= 0 && out[k] >= 0xC0) {
            int need = out[k] >= 0xF0 ? 4 : out[k] >= 0xE0 ? 3 : 2;
            ck_assert_int_eq(n - k, need);
        }
        sk_buf_add(&b, out, (size_t)n);
        p = e + 2;
    }
    return sk_buf_detach(&b, NULL);
}

/* ---- money, dates, escaping --------------------------------------------------- */

START_TEST(test_money)
{
    char out[64];
    ck_assert_int_eq(mail_money_format(2500, "EUR", out, sizeof out), 0);
    ck_assert_str_eq(out, "25.00 EUR");
    ck_assert_int_eq(mail_money_format(5, "EUR", out, sizeof out), 0);
    ck_assert_str_eq(out, "0.05 EUR");
    ck_assert_int_eq(mail_money_format(0, "EUR", out, sizeof out), 0);
    ck_assert_str_eq(out, "0.00 EUR");
    ck_assert_int_eq(mail_money_format(-150, "usd", out, sizeof out), 0);
    ck_assert_str_eq(out, "-1.50 USD");
    ck_assert_int_eq(mail_money_format(1200, "JPY", out, sizeof out), 0);
    ck_assert_str_eq(out, "1200 JPY");
    ck_assert_int_eq(mail_money_format(1234, "KWD", out, sizeof out), 0);
    ck_assert_str_eq(out, "1.234 KWD");
    ck_assert_int_eq(mail_money_format(123456789, "GBP", out, sizeof out), 0);
    ck_assert_str_eq(out, "1234567.89 GBP");
    ck_assert_int_eq(mail_money_format(INT64_MIN, "EUR", out, sizeof out), 0);
    ck_assert_str_eq(out, "-92233720368547758.08 EUR");
    ck_assert_int_eq(mail_money_format(INT64_MAX, "EUR", out, sizeof out), 0);
    ck_assert_str_eq(out, "92233720368547758.07 EUR");
    /* bad currency, small buffer */
    ck_assert_int_eq(mail_money_format(1, "EU", out, sizeof out), -1);
    ck_assert_int_eq(mail_money_format(1, "E1R", out, sizeof out), -1);
    ck_assert_int_eq(mail_money_format(1, "EURO", out, sizeof out), -1);
    ck_assert_int_eq(mail_money_format(1, NULL, out, sizeof out), -1);
    ck_assert_int_eq(mail_money_format(2500, "EUR", out, 9), -1);
    ck_assert_int_eq(mail_money_format(2500, "EUR", out, 10), 0);
    ck_assert_int_eq(mail_currency_exponent("JPY"), 0);
    ck_assert_int_eq(mail_currency_exponent("EUR"), 2);
    ck_assert_int_eq(mail_currency_exponent("XYZ"), 2);
}
END_TEST

START_TEST(test_dates)
{
    char out[MAIL_DATE_LEN];
    ck_assert_str_eq(mail_rfc5322_date(0, out), "Thu, 01 Jan 1970 00:00:00 +0000");
    ck_assert_str_eq(mail_rfc5322_date(1764096643123, out), "Tue, 25 Nov 2025 18:50:43 +0000");
    ck_assert_str_eq(mail_event_date(1764096643123, out), "25 Nov 2025, 18:50 UTC");
    ck_assert_str_eq(mail_event_date(1798128000000, out), "24 Dec 2026, 16:00 UTC");
}
END_TEST

START_TEST(test_html_escape)
{
    sk_buf_t b;
    sk_buf_init(&b, 16);
    mail_html_escape(&b, "<a href=\"x\">Tom & Jerry's</a>");
    ck_assert_str_eq(b.data, "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
    sk_buf_reset(&b);
    mail_html_escape(&b, NULL);
    mail_html_escape(&b, "Zoë 😀");
    ck_assert_str_eq(b.data, "Zoë 😀");
    sk_buf_release(&b);
}
END_TEST

/* ---- templates ------------------------------------------------------------------ */

static int render(const char *tpl, const mail_var_t *v, size_t n, int html, char *out, size_t outsz)
{
    sk_buf_t b;
    char err[128] = "";
    sk_buf_init(&b, 64);
    int rc = mail_render(tpl, v, n, html, &b, err, sizeof err);
    snprintf(out, outsz, "%s", rc == 0 ? b.data : err);
    sk_buf_release(&b);
    return rc;
}

START_TEST(test_render)
{
    const mail_var_t v[] = {
        {"name", "Ann <&>"}, {"title", ""}, {"amount", "25.00 EUR"}, {"x", NULL}};
    char out[256];
    ck_assert_int_eq(render("Hi {{name}}!", v, 4, 0, out, sizeof out), 0);
    ck_assert_str_eq(out, "Hi Ann <&>!");
    ck_assert_int_eq(render("Hi {{name}}!", v, 4, 1, out, sizeof out), 0);
    ck_assert_str_eq(out, "Hi Ann &lt;&amp;&gt;!");
    ck_assert_int_eq(render("a{{#title}}T={{title}}{{/title}}{{^title}}none{{/title}}b", v, 4, 0,
                            out, sizeof out),
                     0);
    ck_assert_str_eq(out, "anoneb");
    ck_assert_int_eq(render("{{#amount}}[{{amount}}]{{/amount}}{{^amount}}free{{/amount}}", v, 4, 0,
                            out, sizeof out),
                     0);
    ck_assert_str_eq(out, "[25.00 EUR]");
    ck_assert_int_eq(render("{{x}}|{{#x}}no{{/x}}", v, 4, 0, out, sizeof out), 0);
    ck_assert_str_eq(out, "|");
    ck_assert_int_eq(render("no tags", v, 4, 0, out, sizeof out), 0);
    ck_assert_str_eq(out, "no tags");
    ck_assert_int_eq(render("", v, 4, 0, out, sizeof out), 0);
    ck_assert_str_eq(out, "");
    /* errors */
    ck_assert_int_eq(render("{{nope}}", v, 4, 0, out, sizeof out), -1);
    ck_assert_ptr_nonnull(strstr(out, "unknown variable nope"));
    ck_assert_int_eq(render("a {{name", v, 4, 0, out, sizeof out), -1);
    ck_assert_int_eq(render("{{#name}}x", v, 4, 0, out, sizeof out), -1);
    ck_assert_int_eq(render("{{/name}}", v, 4, 0, out, sizeof out), -1);
    ck_assert_int_eq(render("{{#name}}{{#title}}{{/title}}{{/name}}", v, 4, 0, out, sizeof out),
                     -1);
    ck_assert_int_eq(render("{{#name}}{{/title}}", v, 4, 0, out, sizeof out), -1);
    ck_assert_int_eq(render("{{}}", v, 4, 0, out, sizeof out), -1);
    ck_assert_int_eq(render("{{na me}}", v, 4, 0, out, sizeof out), -1);
}
END_TEST

START_TEST(test_every_template)
{
    size_t n;
    const mail_template_t *t = mail_templates(&n);
    ck_assert_int_ge(n, 6);
    const char *types[] = {"user.registered", "booking.confirmed", "booking.failed",
                           "booking.expired", "booking.cancelled", "payment.refunded"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        ck_assert_ptr_nonnull(mail_template_find(types[i]));
    ck_assert_ptr_null(mail_template_find("booking.created"));
    ck_assert_ptr_null(mail_template_find(NULL));

    const mail_var_t full[] = {
        {"name", "Zoë <Admin>"},      {"email", "zoe@souk.test"},
        {"title", "C & <b>Rust</b>"}, {"date", "24 Dec 2026, 16:00 UTC"},
        {"amount", "25.00 EUR"},      {"bookingId", "b-1"},
        {"reason", "card declined"},
    };
    const mail_var_t bare[] = {
        {"name", NULL},   {"email", "zoe@souk.test"}, {"title", NULL},  {"date", NULL},
        {"amount", NULL}, {"bookingId", "b-1"},       {"reason", NULL},
    };
    for (size_t i = 0; i < n; i++) {
        mail_content_t c;
        char err[128] = "";
        ck_assert_msg(mail_content_render(&t[i], full, 7, &c, err, sizeof err) == 0, "%s: %s",
                      t[i].type, err);
        ck_assert_ptr_null(strstr(c.text, "{{"));
        ck_assert_ptr_null(strstr(c.html, "{{"));
        ck_assert_ptr_null(strchr(c.subject, '\n'));
        /* values are escaped in HTML, raw in text */
        ck_assert_ptr_null(strstr(c.html, "<Admin>"));
        ck_assert_ptr_nonnull(strstr(c.html, "Zoë &lt;Admin&gt;"));
        ck_assert_ptr_nonnull(strstr(c.text, "Zoë <Admin>"));
        ck_assert_ptr_nonnull(strstr(c.html, "<!DOCTYPE html>"));
        if (t[i].needs_catalog) {
            ck_assert_ptr_nonnull(strstr(c.subject, "C & <b>Rust</b>"));
            ck_assert_ptr_nonnull(strstr(c.text, "C & <b>Rust</b>"));
            ck_assert_ptr_nonnull(strstr(c.html, "C &amp; &lt;b&gt;Rust&lt;/b&gt;"));
            ck_assert_ptr_nonnull(strstr(c.text, "b-1"));
            ck_assert_ptr_nonnull(strstr(c.text, "25.00 EUR"));
        }
        mail_content_release(&c);
        ck_assert_msg(mail_content_render(&t[i], bare, 7, &c, err, sizeof err) == 0, "%s: %s",
                      t[i].type, err);
        if (t[i].needs_catalog) ck_assert_ptr_nonnull(strstr(c.subject, "booking b-1"));
        mail_content_release(&c);
    }

    /* the specific texts the integration tests look for */
    mail_content_t c;
    ck_assert_int_eq(
        mail_content_render(mail_template_find("booking.failed"), full, 7, &c, NULL, 0), 0);
    ck_assert_ptr_nonnull(strstr(c.text, "Reason:   card declined"));
    ck_assert_str_eq(c.subject, "Booking failed: C & <b>Rust</b>");
    mail_content_release(&c);
    ck_assert_int_eq(
        mail_content_render(mail_template_find("user.registered"), full, 7, &c, NULL, 0), 0);
    ck_assert_str_eq(c.subject, "Welcome to souk, Zoë <Admin>");
    mail_content_release(&c);
    ck_assert_int_eq(
        mail_content_render(mail_template_find("user.registered"), bare, 7, &c, NULL, 0), 0);
    ck_assert_str_eq(c.subject, "Welcome to souk");
    ck_assert_ptr_nonnull(strstr(c.text, "Hello,\n"));
    mail_content_release(&c);
    ck_assert_int_eq(
        mail_content_render(mail_template_find("payment.refunded"), full, 7, &c, NULL, 0), 0);
    ck_assert_str_eq(c.subject, "Refund of 25.00 EUR: C & <b>Rust</b>");
    mail_content_release(&c);
}
END_TEST

START_TEST(test_subject_cleaned)
{
    /* a value with a line break cannot break the subject line */
    const mail_var_t v[] = {{"name", "Eve\r\nBcc: x@evil"}, {"email", "e@x.y"}};
    mail_content_t c;
    ck_assert_int_eq(mail_content_render(mail_template_find("user.registered"), v, 2, &c, NULL, 0),
                     0);
    ck_assert_ptr_null(strchr(c.subject, '\n'));
    ck_assert_ptr_null(strchr(c.subject, '\r'));
    ck_assert_str_eq(c.subject, "Welcome to souk, Eve  Bcc: x@evil");
    mail_content_release(&c);
}
END_TEST

/* ---- quoted-printable ---------------------------------------------------------- */

static char *qp(const char *s)
{
    sk_buf_t b;
    sk_buf_init(&b, 64);
    mail_qp_encode(&b, s, strlen(s));
    return sk_buf_detach(&b, NULL);
}

START_TEST(test_qp)
{
    char *e;
    e = qp("a=b");
    ck_assert_str_eq(e, "a=3Db");
    free(e);
    e = qp("Zoë");
    ck_assert_str_eq(e, "Zo=C3=AB");
    free(e);
    e = qp("line one \nline two\t\r\nend ");
    ck_assert_str_eq(e, "line one=20\r\nline two=09\r\nend=20");
    free(e);
    e = qp(".hidden\n.dot");
    ck_assert_str_eq(e, "=2Ehidden\r\n=2Edot");
    free(e);
    e = qp("a\rb");
    ck_assert_str_eq(e, "a=0Db");
    free(e);

    /* long lines get soft breaks, every line <= 76, and decode back */
    char longs[400];
    for (size_t i = 0; i < sizeof longs - 1; i++)
        longs[i] = "abcdé ="[i % 7];
    longs[sizeof longs - 1] = '\0';
    /* é is two bytes: fix up the byte pattern into valid UTF-8 pieces */
    sk_buf_t src;
    sk_buf_init(&src, 512);
    for (int i = 0; i < 60; i++)
        sk_buf_adds(&src, "abcdé =x.");
    sk_buf_adds(&src, "\n");
    for (int i = 0; i < 100; i++)
        sk_buf_addc(&src, 'z');
    e = qp(src.data);
    ck_assert_uint_le(max_line(e), 76);
    ck_assert(!has_bare_lf(e));
    char *d = qp_decode(e);
    ck_assert_str_eq(d, src.data);
    free(d);
    free(e);
    sk_buf_release(&src);
    (void)longs;
}
END_TEST

/* ---- headers -------------------------------------------------------------------- */

static char *header(const char *value)
{
    sk_buf_t b;
    sk_buf_init(&b, 64);
    mail_header_unstructured(&b, "Subject", value);
    return sk_buf_detach(&b, NULL);
}

START_TEST(test_header_ascii)
{
    char *h = header("Booking confirmed: Rust 101");
    ck_assert_str_eq(h, "Subject: Booking confirmed: Rust 101\r\n");
    free(h);
    h = header("a\r\nBcc: evil@x.y");
    ck_assert_str_eq(h, "Subject: a  Bcc: evil@x.y\r\n");
    free(h);
    /* long ASCII: folded before a space, lines <= 78 */
    sk_buf_t v;
    sk_buf_init(&v, 256);
    for (int i = 0; i < 30; i++)
        sk_buf_adds(&v, "word ");
    sk_buf_adds(&v, "end");
    h = header(v.data);
    ck_assert_uint_le(max_line(h), 78);
    ck_assert_ptr_nonnull(strstr(h, "\r\n word"));
    ck_assert(!has_bare_lf(h));
    free(h);
    sk_buf_release(&v);
    /* "=?" must not be taken for an encoded word: encoded itself */
    h = header("=?UTF-8?B?x?=");
    ck_assert_ptr_nonnull(strstr(h, "Subject: =?UTF-8?B?"));
    char *d = decode_words(h);
    ck_assert_str_eq(d, "=?UTF-8?B?x?=");
    free(d);
    free(h);
}
END_TEST

START_TEST(test_header_encoded)
{
    char *h = header("Buchung bestätigt: Käse");
    ck_assert_str_eq(h, "Subject: =?UTF-8?B?QnVjaHVuZyBiZXN0w6R0aWd0OiBLw6RzZQ==?=\r\n");
    char *d = decode_words(h);
    ck_assert_str_eq(d, "Buchung bestätigt: Käse");
    free(d);
    free(h);

    /* long: several words, folded, each line <= 76, no character split */
    sk_buf_t v;
    sk_buf_init(&v, 512);
    for (int i = 0; i < 25; i++)
        sk_buf_adds(&v, "Zoë ✓ 😀 ");
    h = header(v.data);
    ck_assert_uint_le(max_line(h), 76);
    ck_assert(!has_bare_lf(h));
    ck_assert_ptr_nonnull(strstr(h, "?=\r\n =?UTF-8?B?"));
    d = decode_words(h);
    /* clean_line trims the trailing space */
    v.data[--v.len] = '\0';
    ck_assert_str_eq(d, v.data);
    free(d);
    free(h);
    sk_buf_release(&v);
}
END_TEST

/* ---- addresses --------------------------------------------------------------------- */

START_TEST(test_addr)
{
    ck_assert(mail_addr_valid("a@b.c"));
    ck_assert(mail_addr_valid("first.last+tag@souk.test"));
    ck_assert(!mail_addr_valid("ab"));
    ck_assert(!mail_addr_valid("no-at"));
    ck_assert(!mail_addr_valid("@x.y"));
    ck_assert(!mail_addr_valid("x@"));
    ck_assert(!mail_addr_valid("a@b@c"));
    ck_assert(!mail_addr_valid("a b@c.d"));
    ck_assert(!mail_addr_valid("a@c.d\r\nRCPT TO:<x@y>"));
    ck_assert(!mail_addr_valid("<a@c.d>"));
    ck_assert(!mail_addr_valid("zoë@x.y"));
    ck_assert(!mail_addr_valid(NULL));

    char *name, *addr;
    ck_assert_int_eq(mail_addr_split("souk <noreply@souk.local>", &name, &addr, NULL, 0), 0);
    ck_assert_str_eq(name, "souk");
    ck_assert_str_eq(addr, "noreply@souk.local");
    free(name);
    free(addr);
    ck_assert_int_eq(mail_addr_split("  \"Doe, \\\"J\\\"\" <j@x.y> ", &name, &addr, NULL, 0), 0);
    ck_assert_str_eq(name, "Doe, \"J\"");
    ck_assert_str_eq(addr, "j@x.y");
    free(name);
    free(addr);
    ck_assert_int_eq(mail_addr_split("bare@x.y", &name, &addr, NULL, 0), 0);
    ck_assert_str_eq(name, "");
    ck_assert_str_eq(addr, "bare@x.y");
    free(name);
    free(addr);
    char err[128];
    ck_assert_int_eq(mail_addr_split("souk <nope>", &name, &addr, err, sizeof err), -1);
    ck_assert_ptr_null(name);
    ck_assert_int_eq(mail_addr_split("souk <a@b.c", &name, &addr, err, sizeof err), -1);
    ck_assert_int_eq(mail_addr_split("souk <a@b.c> trailing", &name, &addr, err, sizeof err), -1);

    sk_buf_t b;
    sk_buf_init(&b, 64);
    mail_addr_format(&b, NULL, "a@b.c");
    ck_assert_str_eq(b.data, "a@b.c");
    sk_buf_reset(&b);
    mail_addr_format(&b, "Ann Lee", "a@b.c");
    ck_assert_str_eq(b.data, "Ann Lee <a@b.c>");
    sk_buf_reset(&b);
    mail_addr_format(&b, "Lee, Ann \"Al\"", "a@b.c");
    ck_assert_str_eq(b.data, "\"Lee, Ann \\\"Al\\\"\" <a@b.c>");
    sk_buf_reset(&b);
    mail_addr_format(&b, "Zoë", "z@b.c");
    ck_assert_str_eq(b.data, "=?UTF-8?B?Wm/Dqw==?= <z@b.c>");
    sk_buf_reset(&b);
    mail_addr_format(&b, "Eve\r\nBcc: x@y.z", "e@b.c");
    ck_assert_ptr_null(strchr(b.data, '\n'));
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_msgid)
{
    sk_buf_t b;
    sk_buf_init(&b, 64);
    mail_msgid_left(&b, "8c7e0b1a-0f7e-4c4e-9a55-1d2f3e4a5b6c");
    ck_assert_str_eq(b.data, "8c7e0b1a-0f7e-4c4e-9a55-1d2f3e4a5b6c");
    sk_buf_reset(&b);
    mail_msgid_left(&b, "a.b@c>d");
    ck_assert_str_eq(b.data, "a=2Eb=40c=3Ed");
    sk_buf_release(&b);
}
END_TEST

/* ---- the message ----------------------------------------------------------------------- */

START_TEST(test_message)
{
    mail_msg_t m = {
        .from = "souk <noreply@souk.local>",
        .to_name = "Zoë Lee",
        .to_addr = "zoe@souk.test",
        .subject = "Booking confirmed: Käse & Rust",
        .text = "Hello Zoë,\n\nyour booking is confirmed.\n.\n",
        .html = "<p>Hello Zo&euml;</p>\n",
        .date_ms = 1764096643000,
        .event_id = "ev-1",
    };
    sk_buf_t b, b2;
    sk_buf_init(&b, 1024);
    sk_buf_init(&b2, 1024);
    char err[128] = "";
    ck_assert_int_eq(mail_message_build(&m, &b, err, sizeof err), 0);
    const char *s = b.data;
    ck_assert(!has_bare_lf(s));
    ck_assert_uint_le(max_line(s), 78);
    ck_assert(strncmp(s, "From: souk <noreply@souk.local>\r\nTo: =?UTF-8?B?", 47) == 0);
    ck_assert_ptr_nonnull(strstr(s, "?= <zoe@souk.test>\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nSubject: =?UTF-8?B?"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nDate: Tue, 25 Nov 2025 18:50:43 +0000\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nMessage-ID: <ev-1@souk.local>\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nMIME-Version: 1.0\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nContent-Type: multipart/alternative; boundary=\"=_souk_"));
    ck_assert_ptr_nonnull(strstr(s,
                                 "Content-Type: text/plain; charset=UTF-8\r\n"
                                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                                 "Hello Zo=C3=AB,\r\n\r\nyour booking is confirmed.\r\n=2E\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "Content-Type: text/html; charset=UTF-8\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "<p>Hello Zo&euml;</p>\r\n"));
    /* headers end with the first empty line; the closing boundary ends it */
    ck_assert_ptr_nonnull(strstr(s, "\r\n\r\n"));
    const char *bnd = strstr(s, "boundary=\"") + 10;
    char boundary[64];
    size_t bl = (size_t)(strchr(bnd, '"') - bnd);
    memcpy(boundary, bnd, bl);
    boundary[bl] = '\0';
    char close[80];
    snprintf(close, sizeof close, "\r\n--%s--\r\n", boundary);
    ck_assert_uint_eq(strlen(s) - strlen(close), (size_t)(strstr(s, close) - s));

    /* deterministic: a resend is byte-identical */
    ck_assert_int_eq(mail_message_build(&m, &b2, err, sizeof err), 0);
    ck_assert_str_eq(b.data, b2.data);

    /* bad addresses */
    sk_buf_reset(&b);
    m.to_addr = "zoe@souk.test\r\nBcc: x@y.z";
    ck_assert_int_eq(mail_message_build(&m, &b, err, sizeof err), -1);
    m.to_addr = "zoe@souk.test";
    m.from = "nobody";
    ck_assert_int_eq(mail_message_build(&m, &b, err, sizeof err), -1);
    m.from = "souk <noreply@souk.local>";
    m.event_id = "";
    ck_assert_int_eq(mail_message_build(&m, &b, err, sizeof err), -1);
    sk_buf_release(&b);
    sk_buf_release(&b2);
}
END_TEST

static Suite *mail_suite(void)
{
    Suite *s = suite_create("notification-mail");
    TCase *tc = tcase_create("mail");
    tcase_add_test(tc, test_money);
    tcase_add_test(tc, test_dates);
    tcase_add_test(tc, test_html_escape);
    tcase_add_test(tc, test_render);
    tcase_add_test(tc, test_every_template);
    tcase_add_test(tc, test_subject_cleaned);
    tcase_add_test(tc, test_qp);
    tcase_add_test(tc, test_header_ascii);
    tcase_add_test(tc, test_header_encoded);
    tcase_add_test(tc, test_addr);
    tcase_add_test(tc, test_msgid);
    tcase_add_test(tc, test_message);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mail_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
