/*
 * test_auth.c - souk-auth's pure parts: the email / password / phone /
 * birth-date rules, argon2id hashing, the signing key (generate, PEM round
 * trip, files and their modes, JWK and RFC 7638 thumbprint) and tokens
 * signed here that the runtime's svc_jwt_verify() accepts - and refuses
 * with another key.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "passwd.h"
#include "sk_fs.h"
#include "svc.h"

/* A throwaway P-256 key made for this test only (openssl genpkey); its x, y
 * and thumbprint were computed independently with Python's cryptography. */
static const char kat_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgykszdmdOP7oNgThG\n"
                              "OvSSNpkYitUIAc5di8vWuVvkZ92hRANCAARVkoRBb5Icvv3s5fqy2iZh3GH08K20\n"
                              "2bPISGVQw2icO6v4esc3pNR9zXumVUDRb0YpdhZBCApaD0PEmnB/09RF\n"
                              "-----END PRIVATE KEY-----\n";
static const char kat_x[] = "VZKEQW-SHL797OX6stomYdxh9PCttNmzyEhlUMNonDs";
static const char kat_y[] = "q_h6xzek1H3Ne6ZVQNFvRil2FkEICloPQ8SacH_T1EU";
static const char kat_kid[] = "ztzsbyVJWHqg3xJDaLzoOENvT0TAC9XIxCOSlp6Aw74";

static char msg[256];

static int email_ok(const char *in, const char *want)
{
    char out[AUTH_EMAIL_MAX + 1];
    if (auth_email_normalize(in, out, sizeof out, msg, sizeof msg) < 0) return 0;
    ck_assert_str_eq(out, want);
    return 1;
}

START_TEST(email_rules)
{
    ck_assert(email_ok("a@b.co", "a@b.co"));
    ck_assert(email_ok("Jane.Doe+tag@Example.COM", "jane.doe+tag@example.com"));
    ck_assert(email_ok("x_y-z@sub.domain-1.example.org", "x_y-z@sub.domain-1.example.org"));
    const char *bad[] = {"",
                         "plain",
                         "@example.com",
                         "a@",
                         "a@b",
                         "a@b.c",
                         "a@@b.com",
                         "a@b@c.com",
                         ".a@b.com",
                         "a.@b.com",
                         "a..b@c.com",
                         "a b@c.com",
                         "a@-b.com",
                         "a@b-.com",
                         "a@b..com",
                         "a@b.com.",
                         "a@.b.com",
                         "a@b.c0m",
                         "\"a\"@b.com",
                         "a@[127.0.0.1]",
                         "a@b_c.com",
                         "é@b.com",
                         NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(!email_ok(bad[i], ""), "accepted %s", bad[i]);
    char longlocal[80];
    memset(longlocal, 'a', 65);
    strcpy(longlocal + 65, "@b.com");
    ck_assert(!email_ok(longlocal, ""));
    char huge[300];
    memset(huge, 'a', 250);
    strcpy(huge + 250, "@b.com"); /* 256 characters */
    ck_assert(!email_ok(huge, ""));
}
END_TEST

START_TEST(password_rules)
{
    ck_assert_int_eq(auth_password_check("0123456789", "a@b.co", msg, sizeof msg), 0);
    ck_assert_int_eq(auth_password_check("012345678", "a@b.co", msg, sizeof msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "10"));
    ck_assert_int_eq(auth_password_check("", NULL, msg, sizeof msg), -1);
    /* 10 code points in more than 10 bytes */
    ck_assert_int_eq(auth_password_check("ééééééééé", NULL, msg, sizeof msg), -1);
    ck_assert_int_eq(auth_password_check("éééééééééé", NULL, msg, sizeof msg), 0);
    ck_assert_int_eq(
        auth_password_check("Long.Name@Example.com", "long.name@example.com", msg, sizeof msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "email"));
    char big[AUTH_PASSWORD_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(auth_password_check(big, NULL, msg, sizeof msg), -1);
}
END_TEST

START_TEST(phone_rules)
{
    ck_assert_int_eq(auth_phone_check("+12345678", msg, sizeof msg), 0);
    ck_assert_int_eq(auth_phone_check("+123456789012345", msg, sizeof msg), 0);
    const char *bad[] = {
        "",           "+",          "12345678",   "+1234567",   "+1234567890123456",
        "+1234 5678", "+1234-5678", "++12345678", "+12345678a", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(auth_phone_check(bad[i], msg, sizeof msg) == -1, "accepted %s", bad[i]);
}
END_TEST

START_TEST(date_rules)
{
    /* 2024-03-01T12:00:00Z */
    int64_t now = 1709294400;
    ck_assert_int_eq(auth_birth_date_check("1990-05-17", now, msg, sizeof msg), 0);
    ck_assert_int_eq(auth_birth_date_check("2024-02-29", now, msg, sizeof msg), 0);
    ck_assert_int_eq(auth_birth_date_check("2000-02-29", now, msg, sizeof msg), 0);
    ck_assert_int_eq(auth_birth_date_check("2024-03-01", now, msg, sizeof msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "past"));
    ck_assert_int_eq(auth_birth_date_check("2030-01-01", now, msg, sizeof msg), -1);
    const char *bad[] = {"",           "1990-5-17",  "1990/05/17", "17-05-1990",
                         "1990-13-01", "1990-00-10", "1990-01-00", "1990-04-31",
                         "1900-02-29", "2023-02-29", "1899-12-31", "1990-05-17T00:00:00Z",
                         "199O-05-17", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(auth_birth_date_check(bad[i], now, msg, sizeof msg) == -1, "accepted %s",
                      bad[i]);
}
END_TEST

START_TEST(argon2_round_trip)
{
    auth_argon2_params_t p = {.t_cost = 1, .m_cost_kib = 64, .parallelism = 1};
    char h1[AUTH_HASH_MAX], h2[AUTH_HASH_MAX], err[128];
    ck_assert_int_eq(auth_passwd_hash(&p, "correct horse", 13, h1, sizeof h1, err, sizeof err), 0);
    ck_assert_int_eq(auth_passwd_hash(&p, "correct horse", 13, h2, sizeof h2, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(h1, "$argon2id$v=19$m=64,t=1,p=1$"));
    ck_assert_str_ne(h1, h2); /* fresh salt each time */
    ck_assert_int_eq(auth_passwd_verify(h1, "correct horse", 13, err, sizeof err), 1);
    ck_assert_int_eq(auth_passwd_verify(h2, "correct horse", 13, err, sizeof err), 1);
    ck_assert_int_eq(auth_passwd_verify(h1, "correct horsE", 13, err, sizeof err), 0);
    ck_assert_int_eq(auth_passwd_verify(h1, "", 0, err, sizeof err), 0);
    ck_assert_int_eq(auth_passwd_verify("$2b$10$notargon", "x", 1, err, sizeof err), -1);
    ck_assert_int_eq(auth_passwd_verify("$argon2id$garbage", "x", 1, err, sizeof err), -1);
    /* parameters come from the encoded string, not from the caller */
    auth_argon2_params_t q = {.t_cost = 2, .m_cost_kib = 128, .parallelism = 2};
    ck_assert_int_eq(auth_passwd_hash(&q, "pw", 2, h2, sizeof h2, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(h2, "m=128,t=2,p=2"));
    ck_assert_int_eq(auth_passwd_verify(h2, "pw", 2, err, sizeof err), 1);
}
END_TEST

START_TEST(thumbprint_rfc7638)
{
    /* RFC 7638 section 3.1 */
    const char *canonical = "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":"
                            "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4"
                            "cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_"
                            "2W-5JsGY4Hc5n9yBXArwl"
                            "93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
                            "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1"
                            "n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"
                            "xBniIqbw0Ls1jF44-csFCur-k"
                            "EgU8awapJzKnqDKgw\"}";
    char out[AUTH_KID_LEN + 1];
    auth_jwk_thumbprint(canonical, out);
    ck_assert_str_eq(out, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

    char b[8];
    ck_assert_uint_eq(auth_b64url((const unsigned char *)"\xfb\xff", 2, b), 3);
    ck_assert_str_eq(b, "-_8");
}
END_TEST

START_TEST(jwk_known_key)
{
    char err[256];
    auth_key_t *k = auth_key_from_pem(kat_pem, strlen(kat_pem), err, sizeof err);
    ck_assert_msg(k != NULL, "%s", err);
    ck_assert_str_eq(auth_key_kid(k), kat_kid);
    cJSON *j = auth_key_jwk(k);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "kty")->valuestring, "EC");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "crv")->valuestring, "P-256");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "x")->valuestring, kat_x);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "y")->valuestring, kat_y);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "alg")->valuestring, "ES256");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "use")->valuestring, "sig");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "kid")->valuestring, kat_kid);
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "d")); /* never the private part */
    cJSON_Delete(j);
    auth_key_free(k);

    ck_assert_ptr_null(auth_key_from_pem("not a key", 9, err, sizeof err));
    /* a public key is not a signing key */
    auth_key_t *g = auth_key_generate(err, sizeof err);
    size_t n;
    const char *pub = auth_key_public_pem(g, &n);
    ck_assert_ptr_null(auth_key_from_pem(pub, n, err, sizeof err));
    auth_key_free(g);
}
END_TEST

static char *claims_json(const char *role, long ttl)
{
    cJSON *c = cJSON_CreateObject();
    long now = (long)time(NULL);
    cJSON_AddStringToObject(c, "iss", SVC_JWT_ISSUER);
    cJSON_AddStringToObject(c, "sub", "user-1");
    cJSON_AddStringToObject(c, "role", role);
    cJSON_AddNumberToObject(c, "iat", (double)now);
    cJSON_AddNumberToObject(c, "exp", (double)(now + ttl));
    cJSON_AddStringToObject(c, "jti", "jti-1");
    char *s = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return s;
}

START_TEST(sign_and_verify)
{
    char err[256];
    auth_key_t *k = auth_key_generate(err, sizeof err);
    auth_key_t *other = auth_key_generate(err, sizeof err);
    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_nonnull(other);
    ck_assert_str_ne(auth_key_kid(k), auth_key_kid(other));

    /* PEM round trip keeps the key */
    size_t plen;
    const char *priv = auth_key_private_pem(k, &plen);
    auth_key_t *k2 = auth_key_from_pem(priv, plen, err, sizeof err);
    ck_assert_ptr_nonnull(k2);
    ck_assert_str_eq(auth_key_kid(k2), auth_key_kid(k));
    auth_key_free(k2);

    char *cj = claims_json("AUTHOR", 600);
    cJSON *claims = cJSON_Parse(cj);
    char *token = auth_key_sign(k, claims, err, sizeof err);
    ck_assert_msg(token != NULL, "%s", err);

    size_t n;
    const char *pub = auth_key_public_pem(k, &n);
    svc_principal_t p;
    ck_assert_msg(svc_jwt_verify(pub, n, token, (int64_t)time(NULL), &p, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_str_eq(p.user_id, "user-1");
    ck_assert_int_eq(p.role, SVC_ROLE_AUTHOR);
    ck_assert_str_eq(p.token_id, "jti-1");
    svc_principal_release(&p);

    /* the header names the algorithm and the key */
    jwt_t *j = NULL;
    ck_assert_int_eq(jwt_decode(&j, token, (const unsigned char *)pub, (int)n), 0);
    ck_assert_int_eq(jwt_get_alg(j), JWT_ALG_ES256);
    ck_assert_str_eq(jwt_get_header(j, "kid"), auth_key_kid(k));
    jwt_free(j);

    /* another key's public half refuses it */
    const char *opub = auth_key_public_pem(other, &n);
    ck_assert_int_eq(svc_jwt_verify(opub, n, token, (int64_t)time(NULL), &p, err, sizeof err), -1);
    /* and it expires */
    pub = auth_key_public_pem(k, &n);
    ck_assert_int_eq(svc_jwt_verify(pub, n, token, (int64_t)time(NULL) + 601, &p, err, sizeof err),
                     -1);

    ck_assert_ptr_null(auth_key_sign(k, NULL, err, sizeof err));
    free(token);
    cJSON_Delete(claims);
    free(cj);
    auth_key_free(k);
    auth_key_free(other);
}
END_TEST

static void tmpdir(char *out, size_t outsz)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, outsz, "%s/souk-auth-test-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(out));
}

START_TEST(key_files)
{
    char dir[256], path[512], err[256];
    struct stat st;
    int created = -1;
    tmpdir(dir, sizeof dir);

    auth_key_t *k = auth_key_load_or_create(dir, "", &created, err, sizeof err);
    ck_assert_msg(k != NULL, "%s", err);
    ck_assert_int_eq(created, 1);
    snprintf(path, sizeof path, "%s/jwt-private.pem", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/jwt-public.pem", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);

    /* the second start loads the same key */
    auth_key_t *again = auth_key_load_or_create(dir, NULL, &created, err, sizeof err);
    ck_assert_ptr_nonnull(again);
    ck_assert_int_eq(created, 0);
    ck_assert_str_eq(auth_key_kid(again), auth_key_kid(k));
    auth_key_free(again);

    /* the public file is repaired when it does not match */
    FILE *f = fopen(path, "w");
    fputs("stale\n", f);
    fclose(f);
    again = auth_key_load_or_create(dir, NULL, &created, err, sizeof err);
    ck_assert_ptr_nonnull(again);
    char buf[1024] = "";
    f = fopen(path, "r");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    ck_assert_str_eq(buf, auth_key_public_pem(k, NULL));
    auth_key_free(again);

    /* an explicit --jwt-private-key */
    snprintf(path, sizeof path, "%s/given.pem", dir);
    f = fopen(path, "w");
    fputs(kat_pem, f);
    fclose(f);
    again = auth_key_load_or_create(dir, path, &created, err, sizeof err);
    ck_assert_msg(again != NULL, "%s", err);
    ck_assert_str_eq(auth_key_kid(again), kat_kid);
    auth_key_free(again);
    snprintf(path, sizeof path, "%s/missing.pem", dir);
    ck_assert_ptr_null(auth_key_load_or_create(dir, path, &created, err, sizeof err));

    /* a garbage key file is an error, never silently replaced */
    snprintf(path, sizeof path, "%s/jwt-private.pem", dir);
    f = fopen(path, "w");
    fputs("garbage\n", f);
    fclose(f);
    ck_assert_ptr_null(auth_key_load_or_create(dir, NULL, &created, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "jwt-private.pem"));

    auth_key_free(k);
    ck_assert_int_eq(sk_rm_rf(dir), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *rules = tcase_create("rules");
    tcase_add_test(rules, email_rules);
    tcase_add_test(rules, password_rules);
    tcase_add_test(rules, phone_rules);
    tcase_add_test(rules, date_rules);
    tcase_add_test(rules, argon2_round_trip);
    suite_add_tcase(s, rules);
    TCase *keys = tcase_create("keys");
    tcase_add_test(keys, thumbprint_rfc7638);
    tcase_add_test(keys, jwk_known_key);
    tcase_add_test(keys, sign_and_verify);
    tcase_add_test(keys, key_files);
    suite_add_tcase(s, keys);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
