/*
 * passwd.c - credential rules and argon2id hashing (see passwd.h).
 */
#include "passwd.h"
#include "sk_clock.h"

#include <argon2.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sk_buf.h"

#define AUTH_SALT_LEN 16
#define AUTH_HASH_LEN 32

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_atext(int c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

/* Code points in a UTF-8 string (continuation bytes are not counted). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

int auth_email_normalize(const char *in, char *out, size_t outsz, char *msg, size_t msgsz)
{
    size_t len = in ? strlen(in) : 0;
    const char *at = in ? strchr(in, '@') : NULL;
    if (len == 0 || len > AUTH_EMAIL_MAX || len + 1 > outsz) {
        sk_errf(msg, msgsz, "must be an email address of at most %d characters", AUTH_EMAIL_MAX);
        return -1;
    }
    if (!at || strchr(at + 1, '@')) goto bad;

    /* local part */
    size_t llen = (size_t)(at - in);
    if (llen == 0 || llen > 64 || in[0] == '.' || at[-1] == '.') goto bad;
    for (size_t i = 0; i < llen; i++) {
        if (in[i] == '.') {
            if (in[i + 1] == '.') goto bad;
        } else if (!is_atext((unsigned char)in[i])) {
            goto bad;
        }
    }

    /* domain: labels separated by single dots */
    const char *d = at + 1;
    int labels = 0;
    const char *label = d;
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t l = (size_t)(p - label);
            if (l == 0 || l > 63 || label[0] == '-' || p[-1] == '-') goto bad;
            labels++;
            if (*p == '\0') break;
            label = p + 1;
            continue;
        }
        if (!is_alpha((unsigned char)*p) && !is_digit((unsigned char)*p) && *p != '-') goto bad;
    }
    /* label now points at the top-level domain */
    if (labels < 2 || strlen(label) < 2) goto bad;
    for (const char *p = label; *p; p++)
        if (!is_alpha((unsigned char)*p)) goto bad;

    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    return 0;
bad:
    sk_errf(msg, msgsz, "must be a valid email address (name@example.com)");
    return -1;
}

int auth_password_check(const char *password, const char *email, char *msg, size_t msgsz)
{
    size_t n = password ? utf8_chars(password) : 0;
    if (n < AUTH_PASSWORD_MIN || n > AUTH_PASSWORD_MAX) {
        sk_errf(msg, msgsz, "must be %d to %d characters long", AUTH_PASSWORD_MIN,
                AUTH_PASSWORD_MAX);
        return -1;
    }
    if (email && strcasecmp(password, email) == 0) {
        sk_errf(msg, msgsz, "must not be the email address");
        return -1;
    }
    return 0;
}

int auth_phone_check(const char *phone, char *msg, size_t msgsz)
{
    size_t digits = 0;
    if (!phone || phone[0] != '+') goto bad;
    for (const char *p = phone + 1; *p; p++) {
        if (!is_digit((unsigned char)*p)) goto bad;
        digits++;
    }
    if (digits < 8 || digits > 15) goto bad;
    return 0;
bad:
    sk_errf(msg, msgsz, "must be an E.164 phone number: + and 8 to 15 digits");
    return -1;
}

int auth_birth_date_check(const char *date, int64_t now_s, char *msg, size_t msgsz)
{
    int y, m, d;
    if (!date || strlen(date) != 10 || date[4] != '-' || date[7] != '-') goto bad;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !is_digit((unsigned char)date[i])) goto bad;
    y = (date[0] - '0') * 1000 + (date[1] - '0') * 100 + (date[2] - '0') * 10 + (date[3] - '0');
    m = (date[5] - '0') * 10 + (date[6] - '0');
    d = (date[8] - '0') * 10 + (date[9] - '0');
    if (y < 1900 || !sk_date_valid(y, m, d)) goto bad;

    time_t t = (time_t)now_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) goto bad;
    long today = (long)(tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
    long given = (long)y * 10000 + m * 100 + d;
    if (given >= today) {
        sk_errf(msg, msgsz, "must be a date in the past");
        return -1;
    }
    return 0;
bad:
    sk_errf(msg, msgsz, "must be a date YYYY-MM-DD");
    return -1;
}

int auth_passwd_hash(const auth_argon2_params_t *p, const char *password, size_t len, char *out,
                     size_t outsz, char *err, size_t errsz)
{
    unsigned char salt[AUTH_SALT_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1) {
        sk_errf(err, errsz, "no random bytes for the salt");
        return -1;
    }
    int rc = argon2id_hash_encoded(p->t_cost, p->m_cost_kib, p->parallelism, password, len, salt,
                                   sizeof salt, AUTH_HASH_LEN, out, outsz);
    if (rc != ARGON2_OK) {
        sk_errf(err, errsz, "argon2id: %s", argon2_error_message(rc));
        return -1;
    }
    return 0;
}

int auth_passwd_verify(const char *encoded, const char *password, size_t len, char *err,
                       size_t errsz)
{
    if (!encoded || strncmp(encoded, "$argon2id$", 10) != 0) {
        sk_errf(err, errsz, "not an argon2id hash");
        return -1;
    }
    int rc = argon2id_verify(encoded, password, len);
    if (rc == ARGON2_OK) return 1;
    if (rc == ARGON2_VERIFY_MISMATCH) return 0;
    sk_errf(err, errsz, "argon2id: %s", argon2_error_message(rc));
    return -1;
}
