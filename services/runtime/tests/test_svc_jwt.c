/*
 * test_svc_jwt.c - the token rules of svc_jwt_verify(), with keys made by
 * OpenSSL and tokens signed by libjwt: a valid ES256 token; expired; signed
 * by another key; alg none; HS256 "signed" with the public key PEM as the
 * HMAC secret (the algorithm-confusion forgery libjwt 1.10.2 accepts on its
 * own); ES384; wrong issuer; bad claims; tampering.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svc_internal.h"
#include "svc_test_util.h"

static char *priv, *pub, *priv2, *pub2;
static char err[256];
static svc_principal_t p;

static void setup(void)
{
    test_ec_keys("P-256", &priv, &pub);
    test_ec_keys("P-256", &priv2, &pub2);
    memset(&p, 0, sizeof p);
    err[0] = '\0';
}

static void teardown(void)
{
    svc_principal_release(&p);
    free(priv);
    free(pub);
    free(priv2);
    free(pub2);
}

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

/* Verifies a token made from claims with alg/key; returns the result. */
static int verify_claims(jwt_alg_t alg, const char *key, const char *claims)
{
    char *t = test_jwt(alg, key, claims);
    svc_principal_release(&p);
    int rc = svc_jwt_verify(pub, strlen(pub), t, now(), &p, err, sizeof err);
    free(t);
    return rc;
}

START_TEST(valid_es256)
{
    char *c = test_claims("user-42", "AUTHOR", 600);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv, c), 0);
    ck_assert_str_eq(p.user_id, "user-42");
    ck_assert_int_eq(p.role, SVC_ROLE_AUTHOR);
    ck_assert_str_eq(p.token_id, "j-user-42");
    ck_assert_int_ge(p.expires_at, now() + 590);
    free(c);
    /* jti is optional. */
    char claims[256];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"u\",\"role\":\"ADMIN\",\"iss\":\"souk-auth\",\"exp\":%lld}",
             (long long)now() + 60);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv, claims), 0);
    ck_assert_ptr_null(p.token_id);
    ck_assert_int_eq(p.role, SVC_ROLE_ADMIN);
}
END_TEST

START_TEST(expired)
{
    char *c = test_claims("u", "USER", -10);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv, c), -1);
    ck_assert_ptr_nonnull(strstr(err, "expired"));
    ck_assert_ptr_null(p.user_id);
    free(c);
    /* exp == now is expired too; no exp at all is refused. */
    char claims[256];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"u\",\"role\":\"USER\",\"iss\":\"souk-auth\",\"exp\":%lld}",
             (long long)now());
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv, claims), -1);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv,
                                   "{\"sub\":\"u\",\"role\":\"USER\",\"iss\":\"souk-auth\"}"),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "exp"));
    ck_assert_int_eq(
        verify_claims(
            JWT_ALG_ES256, priv,
            "{\"sub\":\"u\",\"role\":\"USER\",\"iss\":\"souk-auth\",\"exp\":\"9999999999\"}"),
        -1);
}
END_TEST

START_TEST(signed_by_another_key)
{
    char *c = test_claims("u", "ADMIN", 600);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv2, c), -1);
    ck_assert_ptr_nonnull(strstr(err, "signature"));
    free(c);
}
END_TEST

START_TEST(alg_none)
{
    char *c = test_claims("u", "ADMIN", 600);
    char *t = test_jwt(JWT_ALG_NONE, NULL, c);
    ck_assert_ptr_nonnull(strstr(t, "."));
    ck_assert_int_eq(svc_jwt_verify(pub, strlen(pub), t, now(), &p, err, sizeof err), -1);
    ck_assert_ptr_null(p.user_id);
    /* Also with a made-up signature part appended. */
    char *t2 = NULL;
    ck_assert_int_gt(asprintf(&t2, "%sAAAA", t), 0);
    ck_assert_int_eq(svc_jwt_verify(pub, strlen(pub), t2, now(), &p, err, sizeof err), -1);
    free(t2);
    free(t);
    free(c);
}
END_TEST

START_TEST(hs256_with_public_key_as_secret)
{
    char *c = test_claims("attacker", "ADMIN", 600);
    char *t = test_jwt(JWT_ALG_HS256, pub, c);

    /* The premise: libjwt alone accepts this forgery. */
    jwt_t *j = NULL;
    ck_assert_int_eq(jwt_decode(&j, t, (const unsigned char *)pub, (int)strlen(pub)), 0);
    ck_assert_int_eq(jwt_get_alg(j), JWT_ALG_HS256);
    jwt_free(j);

    /* The rule: refused. */
    ck_assert_int_eq(svc_jwt_verify(pub, strlen(pub), t, now(), &p, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "HS256"));
    ck_assert_ptr_null(p.user_id);
    free(t);
    free(c);
}
END_TEST

START_TEST(other_algorithms)
{
    char *c = test_claims("u", "USER", 600);
    char *p384, *pub384;
    test_ec_keys("P-384", &p384, &pub384);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES384, p384, c), -1);
    ck_assert_int_eq(verify_claims(JWT_ALG_HS512, pub, c), -1);
    ck_assert_int_eq(verify_claims(JWT_ALG_HS256, "some other secret", c), -1);
    free(p384);
    free(pub384);
    free(c);
}
END_TEST

START_TEST(wrong_issuer)
{
    char claims[256];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"u\",\"role\":\"USER\",\"iss\":\"evil\",\"exp\":%lld}",
             (long long)now() + 60);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv, claims), -1);
    ck_assert_ptr_nonnull(strstr(err, "issued"));
    snprintf(claims, sizeof claims, "{\"sub\":\"u\",\"role\":\"USER\",\"exp\":%lld}",
             (long long)now() + 60);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv, claims), -1);
    snprintf(claims, sizeof claims, "{\"sub\":\"u\",\"role\":\"USER\",\"iss\":7,\"exp\":%lld}",
             (long long)now() + 60);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv, claims), -1);
}
END_TEST

START_TEST(bad_claims)
{
    long long e = (long long)now() + 60;
    const char *fmts[] = {
        "{\"role\":\"USER\",\"iss\":\"souk-auth\",\"exp\":%lld}",               /* no sub */
        "{\"sub\":\"\",\"role\":\"USER\",\"iss\":\"souk-auth\",\"exp\":%lld}",  /* empty sub */
        "{\"sub\":42,\"role\":\"USER\",\"iss\":\"souk-auth\",\"exp\":%lld}",    /* sub not a string
                                                                                 */
        "{\"sub\":\"u\",\"iss\":\"souk-auth\",\"exp\":%lld}",                   /* no role */
        "{\"sub\":\"u\",\"role\":\"ROOT\",\"iss\":\"souk-auth\",\"exp\":%lld}", /* unknown role
                                                                                 */
        "{\"sub\":\"u\",\"role\":\"user\",\"iss\":\"souk-auth\",\"exp\":%lld}", /* case matters
                                                                                 */
        "{\"sub\":\"u\",\"role\":\"USER\",\"iss\":\"souk-auth\",\"exp\":%lld,\"jti\":5}", /* jti
                                                                                             type
                                                                                           */
        "{\"sub\":\"u\",\"role\":\"USER\",\"iss\":\"souk-auth\",\"exp\":%lld,\"nbf\":"
        "99999999999}", /* not yet */
    };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        char claims[256];
        snprintf(claims, sizeof claims, fmts[i], e);
        ck_assert_msg(verify_claims(JWT_ALG_ES256, priv, claims) == -1, "accepted %s", claims);
        ck_assert_ptr_null(p.user_id);
    }
    char claims[256];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"u\",\"role\":\"USER\",\"iss\":\"souk-auth\",\"exp\":%lld,\"nbf\":1}", e);
    ck_assert_int_eq(verify_claims(JWT_ALG_ES256, priv, claims), 0);
}
END_TEST

START_TEST(tampered_and_garbage)
{
    char *c1 = test_claims("user", "USER", 600), *c2 = test_claims("admin", "ADMIN", 600);
    char *t1 = test_jwt(JWT_ALG_ES256, priv, c1), *t2 = test_jwt(JWT_ALG_ES256, priv2, c2);
    /* header.payload of t2 with the signature of t1 */
    char *sig1 = strrchr(t1, '.'), *sig2 = strrchr(t2, '.');
    char *mix = NULL;
    ck_assert_int_gt(asprintf(&mix, "%.*s%s", (int)(sig2 - t2), t2, sig1), 0);
    ck_assert_int_eq(svc_jwt_verify(pub, strlen(pub), mix, now(), &p, err, sizeof err), -1);
    free(mix);
    const char *garbage[] = {"", "abc", "a.b.c", "..", "eyJhbGciOiJFUzI1NiJ9..", t1 + 1};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        ck_assert_int_eq(svc_jwt_verify(pub, strlen(pub), garbage[i], now(), &p, err, sizeof err),
                         -1);
    ck_assert_int_eq(svc_jwt_verify(pub, strlen(pub), NULL, now(), &p, err, sizeof err), -1);
    /* No key, or the wrong kind of key, verifies nothing. */
    ck_assert_int_eq(svc_jwt_verify(NULL, 0, t1, now(), &p, err, sizeof err), -1);
    ck_assert_int_eq(svc_jwt_verify(priv, strlen(priv), t1, now(), &p, err, sizeof err), -1);
    ck_assert_int_eq(svc_jwt_verify(pub, strlen(pub), t1, now(), &p, err, sizeof err), 0);
    free(t1);
    free(t2);
    free(c1);
    free(c2);
}
END_TEST

START_TEST(key_check)
{
    ck_assert_int_eq(svc_jwt_key_check(pub, strlen(pub), err, sizeof err), 0);
    ck_assert_int_eq(svc_jwt_key_check(priv, strlen(priv), err, sizeof err), -1);
    char *p384, *pub384;
    test_ec_keys("P-384", &p384, &pub384);
    ck_assert_int_eq(svc_jwt_key_check(pub384, strlen(pub384), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "P-256"));
    free(p384);
    free(pub384);
    ck_assert_int_eq(svc_jwt_key_check("hello", 5, err, sizeof err), -1);
}
END_TEST

START_TEST(roles)
{
    ck_assert_int_eq(svc_role_parse("USER"), SVC_ROLE_USER);
    ck_assert_int_eq(svc_role_parse("AUTHOR"), SVC_ROLE_AUTHOR);
    ck_assert_int_eq(svc_role_parse("ADMIN"), SVC_ROLE_ADMIN);
    ck_assert_int_eq(svc_role_parse("admin"), SVC_ROLE_NONE);
    ck_assert_int_eq(svc_role_parse(NULL), SVC_ROLE_NONE);
    ck_assert_str_eq(svc_role_name(SVC_ROLE_AUTHOR), "AUTHOR");
    ck_assert_str_eq(svc_role_name((svc_role_t)42), "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("svc_jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, valid_es256);
    tcase_add_test(tc, expired);
    tcase_add_test(tc, signed_by_another_key);
    tcase_add_test(tc, alg_none);
    tcase_add_test(tc, hs256_with_public_key_as_secret);
    tcase_add_test(tc, other_algorithms);
    tcase_add_test(tc, wrong_issuer);
    tcase_add_test(tc, bad_claims);
    tcase_add_test(tc, tampered_and_garbage);
    tcase_add_test(tc, key_check);
    tcase_add_test(tc, roles);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
