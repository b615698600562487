/*
 * svc_auth.c - bearer tokens: the verification key, the token rules and the
 * access check that runs before every handler.
 *
 * libjwt 1.10.2 verifies whatever algorithm the token's header names, with
 * the key it is given: handed the ES256 public key PEM and an HS256 token,
 * jwt_decode() computes an HMAC keyed with that (public) PEM and accepts a
 * token anyone can forge.  So the algorithm is checked here, explicitly,
 * after decoding and before any claim is believed.  The claims are then
 * re-read from libjwt's JSON with cJSON so that every type is checked.
 */
#include <errno.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "svc_internal.h"

#define SVC_MAX_TOKEN 8192
#define SVC_MAX_KEY_FILE (64 * 1024)

static const char *const role_names[] = {"", "USER", "AUTHOR", "ADMIN"};

svc_role_t svc_role_parse(const char *s)
{
    if (!s) return SVC_ROLE_NONE;
    for (int r = SVC_ROLE_USER; r <= SVC_ROLE_ADMIN; r++)
        if (strcmp(s, role_names[r]) == 0) return (svc_role_t)r;
    return SVC_ROLE_NONE;
}

const char *svc_role_name(svc_role_t role)
{
    return (unsigned)role <= SVC_ROLE_ADMIN ? role_names[role] : "";
}

void svc_principal_release(svc_principal_t *p)
{
    free((char *)p->user_id);
    free((char *)p->token_id);
    memset(p, 0, sizeof *p);
}

int svc_jwt_key_check(const char *pem, size_t len, char *err, size_t errsz)
{
    int rc = -1;
    EVP_PKEY *k = NULL;
    BIO *b = len <= SVC_MAX_KEY_FILE ? BIO_new_mem_buf(pem, (int)len) : NULL;
    char group[64] = "";
    size_t glen = 0;
    if (!b) {
        snprintf(err, errsz, "the key is too large to be a PEM public key");
        goto out;
    }
    k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    if (!k) {
        snprintf(err, errsz, "not a PEM public key (-----BEGIN PUBLIC KEY-----)");
        goto out;
    }
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen) !=
            1 ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
        snprintf(err, errsz, "not an EC P-256 key (ES256 tokens need one)");
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(k);
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

/* Copies a claim that must be a string (NULL when absent). */
static int claim_str(const cJSON *claims, const char *name, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    *out = NULL;
    if (!v) return 0;
    if (!cJSON_IsString(v) || !v->valuestring) return -1;
    *out = v->valuestring;
    return 1;
}

int svc_jwt_verify(const char *pem, size_t pem_len, const char *token, int64_t now_s,
                   svc_principal_t *out, char *err, size_t errsz)
{
    int rc = -1;
    jwt_t *jwt = NULL;
    char *grants = NULL;
    cJSON *claims = NULL;
    const char *iss, *sub, *role, *jti;
    memset(out, 0, sizeof *out);

    if (!pem || pem_len == 0 || pem_len > SVC_MAX_KEY_FILE) {
        snprintf(err, errsz, "no token verification key");
        goto out;
    }
    if (!token || !*token || strlen(token) > SVC_MAX_TOKEN) {
        snprintf(err, errsz, "the token is empty or too long");
        goto out;
    }
    errno = 0;
    if (jwt_decode(&jwt, token, (const unsigned char *)pem, (int)pem_len) != 0 || !jwt) {
        snprintf(err, errsz, "the token is malformed or its signature does not verify");
        jwt = NULL;
        goto out;
    }
    /* The check that makes the HS256-with-the-public-key forgery fail. */
    jwt_alg_t alg = jwt_get_alg(jwt);
    if (alg != JWT_ALG_ES256) {
        snprintf(err, errsz, "the token's algorithm %s is not accepted (only ES256)",
                 jwt_alg_str(alg));
        goto out;
    }
    grants = jwt_get_grants_json(jwt, NULL);
    claims = grants ? cJSON_Parse(grants) : NULL;
    if (!claims || !cJSON_IsObject(claims)) {
        snprintf(err, errsz, "the token's claims are not a JSON object");
        goto out;
    }
    if (claim_str(claims, "iss", &iss) != 1 || strcmp(iss, SVC_JWT_ISSUER) != 0) {
        snprintf(err, errsz, "the token was not issued by %s", SVC_JWT_ISSUER);
        goto out;
    }
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    if (!cJSON_IsNumber(exp)) {
        snprintf(err, errsz, "the token has no expiry (exp)");
        goto out;
    }
    if (exp->valuedouble <= (double)now_s) {
        snprintf(err, errsz, "the token has expired");
        goto out;
    }
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(claims, "nbf");
    if (nbf && (!cJSON_IsNumber(nbf) || nbf->valuedouble > (double)now_s)) {
        snprintf(err, errsz, "the token is not valid yet (nbf)");
        goto out;
    }
    if (claim_str(claims, "sub", &sub) != 1 || !*sub || strlen(sub) > 128) {
        snprintf(err, errsz, "the token has no subject (sub)");
        goto out;
    }
    if (claim_str(claims, "role", &role) != 1 || svc_role_parse(role) == SVC_ROLE_NONE) {
        snprintf(err, errsz, "the token's role is not USER, AUTHOR or ADMIN");
        goto out;
    }
    if (claim_str(claims, "jti", &jti) < 0) {
        snprintf(err, errsz, "the token's id (jti) is not a string");
        goto out;
    }
    out->user_id = sk_strdup(sub);
    out->role = svc_role_parse(role);
    out->token_id = jti ? sk_strdup(jti) : NULL;
    out->expires_at = exp->valuedouble > 9e18 ? INT64_MAX : (int64_t)exp->valuedouble;
    rc = 0;
out:
    cJSON_Delete(claims);
    free(grants);
    jwt_free(jwt);
    ERR_clear_error();
    return rc;
}

/* ---- verified tokens ------------------------------------------------------ */

/*
 * Verifying an ES256 token costs a PEM parse and an ECDSA verification -
 * most of a cheap request's CPU.  A client sends the same access token with
 * every request for its 10 minutes, so the principal of a token that
 * verified is kept, keyed by the whole token string: the same bytes carry
 * the same signature, so they would verify the same way with the same key.
 * A hit still checks exp against the clock; a new key empties the cache;
 * only tokens that verified are kept, and at most TOK_CACHE_MAX of them
 * (past that the cache starts over).
 */
#define TOK_CACHE_MAX 4096

typedef struct svc_tok_cached_s {
    char *user_id, *token_id;
    svc_role_t role;
    int64_t expires_at;
} svc_tok_cached_t;

void svc_tok_cache_clear(svc_t *svc)
{
    for (sk_map_entry_t *e = sk_map_next(&svc->tok_cache, NULL); e; e = sk_map_next(&svc->tok_cache, e)) {
        svc_tok_cached_t *t = e->value;
        free(t->user_id);
        free(t->token_id);
        free(t);
    }
    sk_map_release(&svc->tok_cache);
    sk_map_init(&svc->tok_cache);
}

/* svc_jwt_verify() through the cache. */
static int verify_cached(svc_t *svc, const char *key, size_t keylen, const char *token,
                         svc_principal_t *out, char *err, size_t errsz)
{
    int64_t now_s = sk_wall_ms() / 1000;
    size_t tlen = strlen(token);
    svc_tok_cached_t *t = sk_map_get(&svc->tok_cache, token, tlen);
    if (t && t->expires_at > now_s) {
        memset(out, 0, sizeof *out);
        out->user_id = sk_strdup(t->user_id);
        out->role = t->role;
        out->token_id = t->token_id ? sk_strdup(t->token_id) : NULL;
        out->expires_at = t->expires_at;
        return 0;
    }
    if (svc_jwt_verify(key, keylen, token, now_s, out, err, errsz) < 0) return -1;
    if (sk_map_count(&svc->tok_cache) >= TOK_CACHE_MAX) svc_tok_cache_clear(svc);
    t = sk_malloc(sizeof *t);
    t->user_id = sk_strdup(out->user_id);
    t->token_id = out->token_id ? sk_strdup(out->token_id) : NULL;
    t->role = out->role;
    t->expires_at = out->expires_at;
    svc_tok_cached_t *old = sk_map_put(&svc->tok_cache, token, tlen, t);
    if (old) {
        free(old->user_id);
        free(old->token_id);
        free(old);
    }
    return 0;
}

/* ---- the service's key -------------------------------------------------- */

int svc_set_jwt_public_key(svc_t *svc, const char *pem, size_t len, char *err, size_t errsz)
{
    if (svc_jwt_key_check(pem, len, err, errsz) < 0) return -1;
    svc_tok_cache_clear(svc);
    free(svc->jwt_pem);
    svc->jwt_pem = sk_memdup(pem, len);
    svc->jwt_len = len;
    return 0;
}

/* Reads the key file; 0, or -1 with err (errno kept for "missing"). */
static int load_key_file(svc_t *svc, const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    char *buf = sk_malloc(SVC_MAX_KEY_FILE + 1);
    size_t n = fread(buf, 1, SVC_MAX_KEY_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = -1;
    if (bad)
        snprintf(err, errsz, "cannot read %s", path);
    else if (n > SVC_MAX_KEY_FILE)
        snprintf(err, errsz, "%s is too large to be a key", path);
    else if (svc_set_jwt_public_key(svc, buf, n, err, errsz) == 0)
        rc = 0;
    else {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errsz, "%s: %s", path, tmp);
    }
    free(buf);
    errno = 0;
    return rc;
}

/* Used by svc_new(): a missing file is only a warning, a bad one an error. */
int svc_jwt_key_load_initial(svc_t *svc, char *err, size_t errsz)
{
    const char *path = svc->conf->jwt_public_key;
    if (!*path) return 0; /* svc_new() warns after init() if nothing set a key */
    if (load_key_file(svc, path, err, errsz) == 0) {
        sk_info("auth", "token verification key loaded from %s", path);
        return 0;
    }
    if (errno == ENOENT) {
        sk_warn("auth", "%s; will retry when a token arrives", err);
        svc->jwt_next_try_ms = sk_mono_ms() + 1000;
        return 0;
    }
    return -1;
}

const char *svc_jwt_key(svc_t *svc, size_t *len)
{
    if (!svc->jwt_pem && *svc->conf->jwt_public_key && sk_mono_ms() >= svc->jwt_next_try_ms) {
        char err[512];
        if (load_key_file(svc, svc->conf->jwt_public_key, err, sizeof err) == 0)
            sk_info("auth", "token verification key loaded from %s", svc->conf->jwt_public_key);
        else
            sk_debug("auth", "%s", err);
        svc->jwt_next_try_ms = sk_mono_ms() + 1000;
    }
    *len = svc->jwt_len;
    return svc->jwt_pem;
}

/* ---- per request ---------------------------------------------------------- */

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *bearer_token(const char *h)
{
    if (!h || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    return *h ? h : NULL;
}

static void challenge(svc_req_t *r, const char *error, const char *desc)
{
    sk_buf_t b;
    sk_buf_init(&b, 128);
    sk_buf_adds(&b, "Bearer realm=\"souk\"");
    if (error) sk_buf_addf(&b, ", error=\"%s\"", error);
    if (desc) {
        sk_buf_adds(&b, ", error_description=\"");
        for (const char *p = desc; *p; p++) /* RFC 6750: no '"' or '\\' */
            if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') sk_buf_addc(&b, *p);
        sk_buf_addc(&b, '"');
    }
    svc_req_set_header(r, "WWW-Authenticate", b.data);
    sk_buf_release(&b);
}

int svc_auth_check(svc_req_t *r, svc_access_t access)
{
    svc_t *svc = r->svc;
    const char *token = bearer_token(svc_req_header(r, "Authorization"));
    size_t keylen = 0;
    const char *key;
    char err[256];

    if (access == SVC_PUBLIC) {
        /* Optional identity: a good token fills the principal, a bad one is ignored. */
        if (token && (key = svc_jwt_key(svc, &keylen)) &&
            verify_cached(svc, key, keylen, token, &r->principal, err, sizeof err) == 0)
            r->has_principal = 1;
        return 0;
    }
    if (!token) {
        challenge(r, NULL, NULL);
        svc_reply_problem(r, 401, "Authentication required",
                          "send an access token from souk-auth as Authorization: Bearer <token>");
        return -1;
    }
    key = svc_jwt_key(svc, &keylen);
    if (!key) {
        svc_reply_problem(r, 503, "Authentication unavailable",
                          "the service has no token verification key yet");
        return -1;
    }
    if (verify_cached(svc, key, keylen, token, &r->principal, err, sizeof err) < 0) {
        challenge(r, "invalid_token", err);
        svc_reply_problem(r, 401, "Invalid token", "%s", err);
        return -1;
    }
    r->has_principal = 1;
    svc_role_t need = access == SVC_ADMIN    ? SVC_ROLE_ADMIN
                      : access == SVC_AUTHOR ? SVC_ROLE_AUTHOR
                                             : SVC_ROLE_USER;
    if (r->principal.role < need) {
        svc_reply_problem(r, 403, "Forbidden", "this needs the %s role%s", svc_role_name(need),
                          need == SVC_ROLE_AUTHOR ? " (or ADMIN)" : "");
        return -1;
    }
    return 0;
}

int svc_req_is_owner(const svc_req_t *req, const char *owner_id)
{
    if (!req->has_principal) return 0;
    if (req->principal.role == SVC_ROLE_ADMIN) return 1;
    return owner_id && strcmp(owner_id, req->principal.user_id) == 0;
}

int svc_require_owner(svc_req_t *req, const char *owner_id)
{
    if (svc_req_is_owner(req, owner_id)) return 0;
    if (!req->has_principal) {
        challenge(req, NULL, NULL);
        svc_reply_problem(req, 401, "Authentication required",
                          "send an access token from souk-auth as Authorization: Bearer <token>");
        return -1;
    }
    svc_reply_problem(req, 403, "Forbidden",
                      "only the owner of this resource or an ADMIN may do this");
    return -1;
}
