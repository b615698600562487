/*
 * passwd.h - souk-auth's credential rules and password hashing.
 *
 * Pure functions (no I/O, no globals) so that the unit test can pin every
 * rule down:
 *
 *   - the syntax of an email address, and its canonical (lowercased) form;
 *   - the password policy (at least AUTH_PASSWORD_MIN characters, not the
 *     email address itself);
 *   - a phone number in E.164 form ("+" and 8 to 15 digits);
 *   - a birth date, YYYY-MM-DD, a real calendar day, before today (UTC);
 *   - argon2id hashing with the parameters inside the encoded string
 *     ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash"), so a later change of
 *     the cost settings does not break existing hashes.
 *
 * Rule functions return 0 when the value is acceptable, else -1 with a
 * message for the client in msg ("must be ...": the field name is not in
 * it).  Hashing functions return 0 / -1 with the reason in err.
 */
#ifndef AUTH_PASSWD_H
#define AUTH_PASSWD_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_EMAIL_MAX 254    /* RFC 5321 path limit */
#define AUTH_PASSWORD_MIN 10  /* characters (UTF-8 code points) */
#define AUTH_PASSWORD_MAX 256 /* characters; bounds the hashing work per request */
#define AUTH_HASH_MAX 256     /* bytes of an encoded argon2id hash, NUL included */

/*
 * Checks the syntax of an email address and writes its canonical form (ASCII
 * lowercased, whole address) to out (outsz >= AUTH_EMAIL_MAX + 1).
 * Accepted: local@domain, local part 1-64 characters of letters, digits and
 * !#$%&'*+/=?^_`{|}~.- with no leading, trailing or doubled dot; domain of
 * at least two dot-separated labels, each 1-63 letters, digits or hyphens,
 * not starting or ending with a hyphen, the last one at least two letters.
 * Quoted local parts and address literals are refused (nobody registers
 * with them).
 */
int auth_email_normalize(const char *in, char *out, size_t outsz, char *msg, size_t msgsz);

/* The password policy.  email may be NULL (then only the length counts);
 * the comparison with it ignores ASCII case. */
int auth_password_check(const char *password, const char *email, char *msg, size_t msgsz);

/* "+" followed by 8 to 15 digits (E.164, no spaces). */
int auth_phone_check(const char *phone, char *msg, size_t msgsz);

/* YYYY-MM-DD, a valid Gregorian date from 1900-01-01, strictly before the
 * UTC day of now_s. */
int auth_birth_date_check(const char *date, int64_t now_s, char *msg, size_t msgsz);

/* argon2id costs; the hash itself is 32 bytes and the salt 16 random bytes
 * (OpenSSL RAND_bytes). */
typedef struct auth_argon2_params_s {
    uint32_t t_cost;      /* iterations, >= 1 */
    uint32_t m_cost_kib;  /* memory in KiB, >= 8 * parallelism */
    uint32_t parallelism; /* lanes, >= 1 */
} auth_argon2_params_t;

/* Hashes password (len bytes) into out (outsz >= AUTH_HASH_MAX), the
 * encoded form with the parameters and salt.  CPU- and memory-bound by
 * design: tens of milliseconds at the default cost. */
int auth_passwd_hash(const auth_argon2_params_t *p, const char *password, size_t len, char *out,
                     size_t outsz, char *err, size_t errsz);

/* 1 if password matches the encoded hash, 0 if it does not, -1 if encoded
 * is not a usable argon2id hash (err says why). */
int auth_passwd_verify(const char *encoded, const char *password, size_t len, char *err,
                       size_t errsz);

#endif
