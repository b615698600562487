/*
 * keys.h - souk-auth's token signing key: an EC P-256 key pair, its PEM
 * files, its public JWK with an RFC 7638 thumbprint as key id, and ES256
 * signing through libjwt.
 *
 * The private key lives in one PEM file (PKCS#8).  On first start the
 * service generates it into <data-dir>/jwt-private.pem (mode 0600, never
 * overwritten) and keeps <data-dir>/jwt-public.pem (0644) next to it for
 * other services' --jwt-public-key.  Tokens carry the key id in their
 * header ("kid"), so that a verifier holding the JWK set can pick the key.
 *
 * Errors: functions taking (err, errsz) write a one-line reason there.
 * Nothing here logs.  Not thread-safe per key (libjwt / OpenSSL objects).
 */
#ifndef AUTH_KEYS_H
#define AUTH_KEYS_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct auth_key_s auth_key_t;

#define AUTH_KID_LEN 43 /* base64url of a SHA-256 digest, without padding */

/* A fresh P-256 key pair.  NULL on failure.  Free with auth_key_free(). */
auth_key_t *auth_key_generate(char *err, size_t errsz);

/* The key pair from a PEM private key (PKCS#8 or SEC1 "EC PRIVATE KEY"),
 * which must be EC P-256.  NULL on failure. */
auth_key_t *auth_key_from_pem(const char *pem, size_t len, char *err, size_t errsz);

/*
 * The service's key.  path non-NULL and non-empty: read it from there (it
 * must exist).  Otherwise <data_dir>/jwt-private.pem, generated on first
 * use: written to a temporary file created with O_EXCL and mode 0600,
 * fsynced, then linked into place (link() never replaces an existing file,
 * so two processes starting together end up with the same key, and a crash
 * never leaves a torn key file).  In both cases <data_dir>/jwt-public.pem
 * is (re)written atomically with mode 0644 when its content differs.
 * *created (may be NULL) is set to 1 when a new key was generated.
 * Returns the key or NULL.
 */
auth_key_t *auth_key_load_or_create(const char *data_dir, const char *path, int *created, char *err,
                                    size_t errsz);

void auth_key_free(auth_key_t *k); /* NULL is a no-op */

/* PEM texts, borrowed from k (NUL-terminated; *len may be NULL). */
const char *auth_key_public_pem(const auth_key_t *k, size_t *len);
const char *auth_key_private_pem(const auth_key_t *k, size_t *len);
/* The RFC 7638 thumbprint of the public JWK; borrowed. */
const char *auth_key_kid(const auth_key_t *k);

/* The public key as a JWK object {"kty","crv","x","y","use","alg","kid"};
 * the caller owns it (cJSON_Delete). */
cJSON *auth_key_jwk(const auth_key_t *k);

/* Signs claims (a JSON object) as an ES256 JWT with "kid" in its header.
 * Returns the compact token, which the caller frees with free(); NULL on
 * failure. */
char *auth_key_sign(const auth_key_t *k, const cJSON *claims, char *err, size_t errsz);

/* base64url without padding of n bytes; out needs 4 * ((n + 2) / 3) + 1
 * bytes.  Returns the length written (NUL not counted). */
size_t auth_b64url(const unsigned char *p, size_t n, char *out);

/* RFC 7638: base64url(SHA-256(canonical)), where canonical is the JWK's
 * required members in lexicographic order without whitespace, e.g.
 * {"crv":"P-256","kty":"EC","x":"...","y":"..."}.  out needs
 * AUTH_KID_LEN + 1 bytes. */
void auth_jwk_thumbprint(const char *canonical, char *out);

#endif
