/*
 * mail.c - templates, formatting and the RFC 5322 message builder (pure).
 */
#include "mail.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "sk_alloc.h"

/* ---- values ------------------------------------------------------------ */

int mail_currency_exponent(const char *currency)
{
    /* ISO 4217 minor units that are not 2 (the common ones). */
    static const char *const zero[] = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY",
                                       "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                                       "VND", "VUV", "XAF", "XOF", "XPF", NULL};
    static const char *const three[] = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND", NULL};
    if (!currency) return 2;
    for (size_t i = 0; zero[i]; i++)
        if (strcmp(zero[i], currency) == 0) return 0;
    for (size_t i = 0; three[i]; i++)
        if (strcmp(three[i], currency) == 0) return 3;
    return 2;
}

int mail_money_format(int64_t minor, const char *currency, char *out, size_t outsz)
{
    char cur[4];
    if (!currency || strlen(currency) != 3 || outsz == 0) return -1;
    for (int i = 0; i < 3; i++) {
        char c = currency[i];
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        if (c < 'A' || c > 'Z') return -1;
        cur[i] = c;
    }
    cur[3] = '\0';
    int exp = mail_currency_exponent(cur);
    /* The magnitude as unsigned, so INT64_MIN works too. */
    uint64_t u = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    uint64_t p = 1;
    for (int i = 0; i < exp; i++)
        p *= 10;
    int n;
    if (exp == 0)
        n = snprintf(out, outsz, "%s%llu %s", minor < 0 ? "-" : "", (unsigned long long)u, cur);
    else
        n = snprintf(out, outsz, "%s%llu.%0*llu %s", minor < 0 ? "-" : "",
                     (unsigned long long)(u / p), exp, (unsigned long long)(u % p), cur);
    if (n < 0 || (size_t)n >= outsz) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

void mail_html_escape(sk_buf_t *b, const char *s)
{
    if (!s) return;
    for (; *s; s++) {
        switch (*s) {
        case '&':
            sk_buf_adds(b, "&amp;");
            break;
        case '<':
            sk_buf_adds(b, "&lt;");
            break;
        case '>':
            sk_buf_adds(b, "&gt;");
            break;
        case '"':
            sk_buf_adds(b, "&quot;");
            break;
        case '\'':
            sk_buf_adds(b, "&#39;");
            break;
        default:
            sk_buf_addc(b, *s);
        }
    }
}

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int utc_tm(int64_t ms, struct tm *tm)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    return gmtime_r(&t, tm) ? 0 : -1;
}

char *mail_event_date(int64_t ms, char *out)
{
    struct tm tm;
    if (utc_tm(ms, &tm) < 0) {
        snprintf(out, MAIL_DATE_LEN, "?");
        return out;
    }
    snprintf(out, MAIL_DATE_LEN, "%d %s %d, %02d:%02d UTC", tm.tm_mday, month_names[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min);
    return out;
}

char *mail_rfc5322_date(int64_t ms, char *out)
{
    struct tm tm;
    if (utc_tm(ms, &tm) < 0) memset(&tm, 0, sizeof tm);
    snprintf(out, MAIL_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d +0000", day_names[tm.tm_wday % 7],
             tm.tm_mday, month_names[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    return out;
}

/* ---- templates --------------------------------------------------------- */

/* clang-format off */
/* The lines every booking email ends with: what was booked. */
#define DETAILS_TEXT                                                                               \
    "{{#title}}  Course:   {{title}}\n{{/title}}"                                                  \
    "{{#date}}  Date:     {{date}}\n{{/date}}"                                                     \
    "{{#amount}}  Amount:   {{amount}}\n{{/amount}}"                                               \
    "  Booking:  {{bookingId}}\n"
#define DETAILS_HTML                                                                               \
    "<table cellpadding=\"4\">\n"                                                                  \
    "{{#title}}<tr><td>Course</td><td><strong>{{title}}</strong></td></tr>\n{{/title}}"            \
    "{{#date}}<tr><td>Date</td><td>{{date}}</td></tr>\n{{/date}}"                                  \
    "{{#amount}}<tr><td>Amount</td><td>{{amount}}</td></tr>\n{{/amount}}"                          \
    "<tr><td>Booking</td><td><code>{{bookingId}}</code></td></tr>\n"                               \
    "</table>\n"
#define HELLO_TEXT "Hello{{#name}} {{name}}{{/name}},\n\n"
#define HELLO_HTML "<p>Hello{{#name}} {{name}}{{/name}},</p>\n"
#define BYE_TEXT "\nThe souk team\n"
#define BYE_HTML "<p>The souk team</p>\n"
/* The course's title, or the booking id while the catalog is unknown. */
#define WHAT "{{#title}}{{title}}{{/title}}{{^title}}booking {{bookingId}}{{/title}}"

static const mail_template_t templates[] = {
    {"user.registered", "Welcome to souk{{#name}}, {{name}}{{/name}}",
     HELLO_TEXT "welcome to souk! Your account {{email}} is ready: browse the courses\n"
                "and book a ticket whenever you like.\n" BYE_TEXT,
     HELLO_HTML "<p>welcome to souk! Your account <strong>{{email}}</strong> is ready: browse the "
                "courses and book a ticket whenever you like.</p>\n" BYE_HTML,
     0},
    {"booking.confirmed", "Booking confirmed: " WHAT,
     HELLO_TEXT "your booking is confirmed. See you there!\n\n" DETAILS_TEXT BYE_TEXT,
     HELLO_HTML "<p>your booking is confirmed. See you there!</p>\n" DETAILS_HTML BYE_HTML, 1},
    {"booking.failed", "Booking failed: " WHAT,
     HELLO_TEXT "we could not complete your booking.\n\n"
                "  Reason:   {{reason}}\n" DETAILS_TEXT
                "\nYou have not been charged, and the ticket is back on sale.\n" BYE_TEXT,
     HELLO_HTML "<p>we could not complete your booking.</p>\n"
                "<p>Reason: <strong>{{reason}}</strong></p>\n" DETAILS_HTML
                "<p>You have not been charged, and the ticket is back on sale.</p>\n" BYE_HTML,
     1},
    {"booking.expired", "Booking expired: " WHAT,
     HELLO_TEXT "your booking was not paid in time: the hold on your ticket ended and the\n"
                "ticket is back on sale. A payment that still goes through is refunded\n"
                "automatically.\n\n" DETAILS_TEXT BYE_TEXT,
     HELLO_HTML "<p>your booking was not paid in time: the hold on your ticket ended and the "
                "ticket is back on sale. A payment that still goes through is refunded "
                "automatically.</p>\n" DETAILS_HTML BYE_HTML,
     1},
    {"booking.cancelled", "Booking cancelled: " WHAT,
     HELLO_TEXT "your booking was cancelled.{{#reason}} Reason: {{reason}}.{{/reason}}\n"
                "If you had paid, the amount is refunded; you will get an email when it is.\n\n"
                DETAILS_TEXT BYE_TEXT,
     HELLO_HTML "<p>your booking was cancelled.{{#reason}} Reason: {{reason}}.{{/reason}}</p>\n"
                "<p>If you had paid, the amount is refunded; you will get an email when it "
                "is.</p>\n" DETAILS_HTML BYE_HTML,
     1},
    {"payment.refunded", "Refund of {{amount}}: " WHAT,
     HELLO_TEXT "we refunded {{amount}} for your booking.{{#reason}} Reason: {{reason}}.{{/reason}}\n"
                "Depending on your bank it can take a few days to show on your statement.\n\n"
                DETAILS_TEXT BYE_TEXT,
     HELLO_HTML "<p>we refunded <strong>{{amount}}</strong> for your booking.{{#reason}} Reason: "
                "{{reason}}.{{/reason}}</p>\n"
                "<p>Depending on your bank it can take a few days to show on your "
                "statement.</p>\n" DETAILS_HTML BYE_HTML,
     1},
};

/* clang-format on */

const mail_template_t *mail_templates(size_t *n)
{
    *n = sizeof templates / sizeof templates[0];
    return templates;
}

const mail_template_t *mail_template_find(const char *type)
{
    if (!type) return NULL;
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++)
        if (strcmp(templates[i].type, type) == 0) return &templates[i];
    return NULL;
}

static const mail_var_t *var_find(const mail_var_t *vars, size_t nvars, const char *name,
                                  size_t len)
{
    for (size_t i = 0; i < nvars; i++)
        if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0) return &vars[i];
    return NULL;
}

int mail_render(const char *tpl, const mail_var_t *vars, size_t nvars, int html, sk_buf_t *out,
                char *err, size_t errsz)
{
    const char *p = tpl;
    const char *section = NULL; /* name of the open section */
    size_t section_len = 0;
    int skipping = 0;

    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            if (!skipping) sk_buf_adds(out, p);
            break;
        }
        if (!skipping) sk_buf_add(out, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            sk_errf(err, errsz, "template: unclosed {{ at offset %zu", (size_t)(open - tpl));
            return -1;
        }
        const char *name = open + 2;
        char kind = *name;
        if (kind == '#' || kind == '^' || kind == '/')
            name++;
        else
            kind = 0;
        size_t len = (size_t)(close - name);
        if (len == 0 ||
            strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") < len) {
            sk_errf(err, errsz, "template: bad tag {{%.*s}}", (int)(close - open - 2), open + 2);
            return -1;
        }
        const mail_var_t *v = var_find(vars, nvars, name, len);
        if (!v) {
            sk_errf(err, errsz, "template: unknown variable %.*s", (int)len, name);
            return -1;
        }
        int has = v->value && *v->value;
        switch (kind) {
        case '#':
        case '^':
            if (section) {
                sk_errf(err, errsz, "template: section %.*s inside %.*s", (int)len, name,
                        (int)section_len, section);
                return -1;
            }
            section = name;
            section_len = len;
            skipping = kind == '#' ? !has : has;
            break;
        case '/':
            if (!section || section_len != len || memcmp(section, name, len) != 0) {
                sk_errf(err, errsz, "template: {{/%.*s}} closes no open section", (int)len, name);
                return -1;
            }
            section = NULL;
            skipping = 0;
            break;
        default:
            if (!skipping && has) {
                if (html)
                    mail_html_escape(out, v->value);
                else
                    sk_buf_adds(out, v->value);
            }
        }
        p = close + 2;
    }
    if (section) {
        sk_errf(err, errsz, "template: section %.*s not closed", (int)section_len, section);
        return -1;
    }
    return 0;
}

/* Control characters (and DEL) become spaces; leading/trailing spaces go. */
static char *clean_line(const char *s)
{
    while (*s == ' ' || (unsigned char)*s < 0x20 || *s == 0x7f) {
        if (!*s) break;
        s++;
    }
    char *c = sk_strdup(s);
    for (char *q = c; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f) *q = ' ';
    size_t n = strlen(c);
    while (n > 0 && c[n - 1] == ' ')
        c[--n] = '\0';
    return c;
}

int mail_content_render(const mail_template_t *t, const mail_var_t *vars, size_t nvars,
                        mail_content_t *out, char *err, size_t errsz)
{
    sk_buf_t subject, text, html;
    sk_buf_init(&subject, 128);
    sk_buf_init(&text, 1024);
    sk_buf_init(&html, 2048);
    memset(out, 0, sizeof *out);
    int rc = -1;

    if (mail_render(t->subject, vars, nvars, 0, &subject, err, errsz) < 0) goto out;
    if (mail_render(t->text, vars, nvars, 0, &text, err, errsz) < 0) goto out;
    out->subject = clean_line(subject.data);
    sk_buf_adds(&html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    mail_html_escape(&html, out->subject);
    sk_buf_adds(&html,
                "</title></head>\n<body style=\"font-family: sans-serif; line-height: 1.4\">\n");
    if (mail_render(t->html, vars, nvars, 1, &html, err, errsz) < 0) {
        free(out->subject);
        out->subject = NULL;
        goto out;
    }
    sk_buf_adds(&html, "</body></html>\n");
    out->text = sk_buf_detach(&text, NULL);
    out->html = sk_buf_detach(&html, NULL);
    rc = 0;
out:
    sk_buf_release(&subject);
    sk_buf_release(&text);
    sk_buf_release(&html);
    return rc;
}

void mail_content_release(mail_content_t *c)
{
    if (!c) return;
    free(c->subject);
    free(c->text);
    free(c->html);
    memset(c, 0, sizeof *c);
}

/* ---- addresses ----------------------------------------------------------- */

int mail_addr_valid(const char *addr)
{
    if (!addr) return 0;
    size_t n = strlen(addr);
    if (n < 3 || n > 254) return 0;
    const char *at = NULL;
    for (const char *p = addr; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("<>()[],;:\\\"", c)) return 0;
        if (c == '@') {
            if (at) return 0;
            at = p;
        }
    }
    return at && at > addr && at[1] != '\0';
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

int mail_addr_split(const char *s, char **name, char **addr, char *err, size_t errsz)
{
    *name = *addr = NULL;
    if (!s) {
        sk_errf(err, errsz, "no address");
        return -1;
    }
    s = skip_ws(s);
    const char *lt = strrchr(s, '<');
    char *a, *nm;
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (!gt || *skip_ws(gt + 1) != '\0') {
            sk_errf(err, errsz, "address %s: expected \"Name <user@host>\"", s);
            return -1;
        }
        a = sk_strndup(lt + 1, (size_t)(gt - lt - 1));
        const char *ne = lt;
        while (ne > s && (ne[-1] == ' ' || ne[-1] == '\t'))
            ne--;
        const char *ns = s;
        if (ne - ns >= 2 && *ns == '"' && ne[-1] == '"') {
            ns++;
            ne--;
        }
        /* Unescape \" and \\ of a quoted-string. */
        nm = sk_malloc((size_t)(ne - ns) + 1);
        size_t k = 0;
        for (const char *p = ns; p < ne; p++) {
            if (*p == '\\' && p + 1 < ne) p++;
            nm[k++] = *p;
        }
        nm[k] = '\0';
    } else {
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        a = sk_strndup(s, n);
        nm = sk_strdup("");
    }
    if (!mail_addr_valid(a)) {
        sk_errf(err, errsz, "address %s is not valid", a);
        free(a);
        free(nm);
        return -1;
    }
    *name = nm;
    *addr = a;
    return 0;
}

static int has_non_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 1;
    return 0;
}

/*
 * RFC 2047 B-encoded words for s (n bytes): at most 39 bytes of input per
 * word (52 base64 characters, 64 with the "=?UTF-8?B?" "?=" frame), never
 * splitting a UTF-8 sequence; words after the first are preceded by sep.
 */
static void add_encoded_words(sk_buf_t *b, const char *s, size_t n, const char *sep)
{
    size_t i = 0;
    int first = 1;
    while (i < n) {
        size_t end = i + 39 < n ? i + 39 : n;
        /* Back off so the word does not end inside a multi-byte character. */
        while (end < n && end > i + 1 && ((unsigned char)s[end] & 0xC0) == 0x80)
            end--;
        unsigned char enc[64];
        int len = EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)(end - i));
        if (!first) sk_buf_adds(b, sep);
        sk_buf_adds(b, "=?UTF-8?B?");
        sk_buf_add(b, enc, (size_t)len);
        sk_buf_adds(b, "?=");
        first = 0;
        i = end;
    }
}

static int is_atext_phrase(const char *s)
{
    if (strstr(s, "=?")) return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' ')
            continue;
        if (!strchr("!#$%&'*+-/=?^_`{|}~", c)) return 0;
    }
    return 1;
}

void mail_addr_format(sk_buf_t *b, const char *name, const char *addr)
{
    char *n = name ? clean_line(name) : NULL;
    if (!n || !*n) {
        sk_buf_adds(b, addr);
        free(n);
        return;
    }
    if (has_non_ascii(n)) {
        add_encoded_words(b, n, strlen(n), "\r\n ");
    } else if (is_atext_phrase(n)) {
        sk_buf_adds(b, n);
    } else {
        sk_buf_addc(b, '"');
        for (const char *p = n; *p; p++) {
            if (*p == '"' || *p == '\\') sk_buf_addc(b, '\\');
            sk_buf_addc(b, *p);
        }
        sk_buf_addc(b, '"');
    }
    sk_buf_addf(b, " <%s>", addr);
    free(n);
}

/* ---- the message ----------------------------------------------------------- */

void mail_header_unstructured(sk_buf_t *b, const char *name, const char *value)
{
    char *v = clean_line(value ? value : "");
    sk_buf_addf(b, "%s:", name);
    if (has_non_ascii(v) || strstr(v, "=?")) {
        sk_buf_addc(b, ' ');
        add_encoded_words(b, v, strlen(v), "\r\n ");
    } else {
        /* Fold before a space when a line would pass 78 columns. */
        size_t col = strlen(name) + 1;
        const char *p = v;
        do {
            const char *sp = strchr(p, ' ');
            size_t len = sp ? (size_t)(sp - p) : strlen(p);
            if (col + 1 + len > 78 && col > strlen(name) + 1) {
                sk_buf_adds(b, "\r\n");
                col = 0;
            }
            sk_buf_addc(b, ' ');
            sk_buf_add(b, p, len);
            col += 1 + len;
            p = sp ? sp + 1 : NULL;
        } while (p);
    }
    sk_buf_adds(b, "\r\n");
    free(v);
}

void mail_qp_encode(sk_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && i + 1 < n && s[i + 1] == '\n') continue; /* the \n makes the break */
        if (c == '\n') {
            sk_buf_adds(b, "\r\n");
            col = 0;
            continue;
        }
        int at_eol =
            i + 1 == n || s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n');
        int literal = ((c == ' ' || c == '\t') && !at_eol) ||
                      (c >= 33 && c <= 126 && c != '=' && !(c == '.' && col == 0));
        size_t len = literal ? 1 : 3;
        if (col + len > 75) { /* 75 + the "=" of the soft break = 76 */
            sk_buf_adds(b, "=\r\n");
            col = 0;
            if (c == '.') literal = 0, len = 3;
        }
        if (literal) {
            sk_buf_addc(b, (char)c);
        } else {
            sk_buf_addc(b, '=');
            sk_buf_addc(b, hex[c >> 4]);
            sk_buf_addc(b, hex[c & 15]);
        }
        col += len;
    }
}

void mail_msgid_left(sk_buf_t *b, const char *event_id)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)event_id; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_') {
            sk_buf_addc(b, (char)c);
        } else {
            sk_buf_addc(b, '=');
            sk_buf_addc(b, hex[c >> 4]);
            sk_buf_addc(b, hex[c & 15]);
        }
    }
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void add_part(sk_buf_t *b, const char *boundary, const char *type, const char *body)
{
    sk_buf_addf(b, "--%s\r\n", boundary);
    sk_buf_addf(b, "Content-Type: %s; charset=UTF-8\r\n", type);
    sk_buf_adds(b, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    mail_qp_encode(b, body, strlen(body));
    sk_buf_adds(b, "\r\n");
}

int mail_message_build(const mail_msg_t *m, sk_buf_t *out, char *err, size_t errsz)
{
    char *from_name = NULL, *from_addr = NULL;
    char date[MAIL_DATE_LEN], boundary[64];
    int rc = -1;

    if (!m->to_addr || !m->subject || !m->text || !m->html || !m->event_id || !*m->event_id) {
        sk_errf(err, errsz, "message: a required field is missing");
        goto out;
    }
    if (mail_addr_split(m->from, &from_name, &from_addr, err, errsz) < 0) goto out;
    if (!mail_addr_valid(m->to_addr)) {
        sk_errf(err, errsz, "recipient address is not valid");
        goto out;
    }
    snprintf(boundary, sizeof boundary, "=_souk_%016llx", (unsigned long long)fnv1a(m->event_id));

    sk_buf_adds(out, "From: ");
    mail_addr_format(out, from_name, from_addr);
    sk_buf_adds(out, "\r\nTo: ");
    mail_addr_format(out, m->to_name, m->to_addr);
    sk_buf_adds(out, "\r\n");
    mail_header_unstructured(out, "Subject", m->subject);
    sk_buf_addf(out, "Date: %s\r\n", mail_rfc5322_date(m->date_ms, date));
    sk_buf_adds(out, "Message-ID: <");
    mail_msgid_left(out, m->event_id);
    sk_buf_addf(out, "@%s>\r\n", strchr(from_addr, '@') + 1);
    sk_buf_adds(out, "MIME-Version: 1.0\r\n");
    sk_buf_adds(out, "Auto-Submitted: auto-generated\r\n");
    sk_buf_addf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary);
    sk_buf_adds(out, "This is a multi-part message in MIME format.\r\n\r\n");
    add_part(out, boundary, "text/plain", m->text);
    add_part(out, boundary, "text/html", m->html);
    sk_buf_addf(out, "--%s--\r\n", boundary);
    rc = 0;
out:
    free(from_name);
    free(from_addr);
    return rc;
}
