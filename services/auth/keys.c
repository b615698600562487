/*
 * keys.c - the token signing key (see keys.h).
 *
 * OpenSSL 3 does the key work (generation, PEM, the public point's x and
 * y); libjwt 1.10.2 builds and signs the tokens, so that signing and the
 * runtime's verification (svc_jwt_verify, also libjwt) agree on the JOSE
 * encoding of an ES256 signature (r || s, not DER).
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_fs.h"

#define AUTH_KEY_FILE_MAX (64 * 1024)
#define AUTH_COORD_LEN 32 /* bytes of a P-256 coordinate */

struct auth_key_s {
    EVP_PKEY *pkey;
    char *priv_pem;
    size_t priv_len;
    char *pub_pem;
    size_t pub_len;
    char x[AUTH_KID_LEN + 1]; /* base64url of 32 bytes is 43 characters too */
    char y[AUTH_KID_LEN + 1];
    char kid[AUTH_KID_LEN + 1];
};

size_t auth_b64url(const unsigned char *p, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    size_t m = 0;
    for (int i = 0; i < len; i++) {
        char c = out[i];
        if (c == '=') break;
        out[m++] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    out[m] = '\0';
    return m;
}

void auth_jwk_thumbprint(const char *canonical, char *out)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)canonical, strlen(canonical), md);
    auth_b64url(md, sizeof md, out);
}

static char *bio_text(BIO *b, size_t *len)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n < 0) n = 0;
    *len = (size_t)n;
    return sk_strndup(data ? data : "", (size_t)n);
}

/* Fills everything derived from k->pkey: both PEMs, x, y and the kid. */
static int key_derive(auth_key_t *k, char *err, size_t errsz)
{
    int rc = -1;
    BIO *bpriv = BIO_new(BIO_s_mem()), *bpub = BIO_new(BIO_s_mem());
    BIGNUM *bx = NULL, *by = NULL;
    unsigned char coord[AUTH_COORD_LEN];
    char group[64] = "";
    size_t glen = 0;

    if (EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1 ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
        sk_errf(err, errsz, "the signing key is not an EC P-256 key (ES256 needs one)");
        goto out;
    }
    if (!bpriv || !bpub ||
        PEM_write_bio_PrivateKey(bpriv, k->pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_PUBKEY(bpub, k->pkey) != 1) {
        sk_errf(err, errsz, "could not encode the key as PEM");
        goto out;
    }
    k->priv_pem = bio_text(bpriv, &k->priv_len);
    k->pub_pem = bio_text(bpub, &k->pub_len);

    if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1 ||
        EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1 ||
        BN_bn2binpad(bx, coord, sizeof coord) != (int)sizeof coord) {
        sk_errf(err, errsz, "could not read the public point");
        goto out;
    }
    auth_b64url(coord, sizeof coord, k->x);
    if (BN_bn2binpad(by, coord, sizeof coord) != (int)sizeof coord) {
        sk_errf(err, errsz, "could not read the public point");
        goto out;
    }
    auth_b64url(coord, sizeof coord, k->y);

    sk_buf_t c = SK_BUF_INIT;
    sk_buf_init(&c, 160);
    sk_buf_addf(&c, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", k->x, k->y);
    auth_jwk_thumbprint(c.data, k->kid);
    sk_buf_release(&c);
    rc = 0;
out:
    OPENSSL_cleanse(coord, sizeof coord);
    BN_free(bx);
    BN_free(by);
    BIO_free(bpriv);
    BIO_free(bpub);
    ERR_clear_error();
    return rc;
}

void auth_key_free(auth_key_t *k)
{
    if (!k) return;
    EVP_PKEY_free(k->pkey);
    if (k->priv_pem) OPENSSL_cleanse(k->priv_pem, k->priv_len);
    free(k->priv_pem);
    free(k->pub_pem);
    free(k);
}

auth_key_t *auth_key_generate(char *err, size_t errsz)
{
    auth_key_t *k = sk_calloc(1, sizeof *k);
    k->pkey = EVP_EC_gen("P-256");
    if (!k->pkey) {
        sk_errf(err, errsz, "could not generate an EC P-256 key");
        goto fail;
    }
    if (key_derive(k, err, errsz) < 0) goto fail;
    return k;
fail:
    ERR_clear_error();
    auth_key_free(k);
    return NULL;
}

auth_key_t *auth_key_from_pem(const char *pem, size_t len, char *err, size_t errsz)
{
    auth_key_t *k = NULL;
    BIO *b = len <= AUTH_KEY_FILE_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    if (!b) {
        sk_errf(err, errsz, "the key is too large to be a PEM private key");
        goto out;
    }
    k = sk_calloc(1, sizeof *k);
    k->pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    if (!k->pkey) {
        sk_errf(err, errsz, "not a PEM private key (-----BEGIN PRIVATE KEY-----)");
        goto fail;
    }
    if (key_derive(k, err, errsz) < 0) goto fail;
    goto out;
fail:
    auth_key_free(k);
    k = NULL;
out:
    BIO_free(b);
    ERR_clear_error();
    return k;
}

const char *auth_key_public_pem(const auth_key_t *k, size_t *len)
{
    if (len) *len = k->pub_len;
    return k->pub_pem;
}

const char *auth_key_private_pem(const auth_key_t *k, size_t *len)
{
    if (len) *len = k->priv_len;
    return k->priv_pem;
}

const char *auth_key_kid(const auth_key_t *k)
{
    return k->kid;
}

cJSON *auth_key_jwk(const auth_key_t *k)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kty", "EC");
    cJSON_AddStringToObject(o, "crv", "P-256");
    cJSON_AddStringToObject(o, "x", k->x);
    cJSON_AddStringToObject(o, "y", k->y);
    cJSON_AddStringToObject(o, "use", "sig");
    cJSON_AddStringToObject(o, "alg", "ES256");
    cJSON_AddStringToObject(o, "kid", k->kid);
    return o;
}

char *auth_key_sign(const auth_key_t *k, const cJSON *claims, char *err, size_t errsz)
{
    jwt_t *j = NULL;
    char *json = NULL, *token = NULL;
    if (!cJSON_IsObject(claims) || !(json = cJSON_PrintUnformatted(claims))) {
        sk_errf(err, errsz, "the claims are not a JSON object");
        goto out;
    }
    if (jwt_new(&j) != 0 || !j) {
        j = NULL;
        sk_errf(err, errsz, "jwt_new failed");
        goto out;
    }
    if (jwt_add_grants_json(j, json) != 0) {
        sk_errf(err, errsz, "libjwt refused the claims");
        goto out;
    }
    if (jwt_add_header(j, "kid", k->kid) != 0 ||
        jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)k->priv_pem, (int)k->priv_len) != 0) {
        sk_errf(err, errsz, "libjwt refused the ES256 key");
        goto out;
    }
    token = jwt_encode_str(j);
    if (!token) sk_errf(err, errsz, "signing the token failed");
out:
    jwt_free(j);
    cJSON_free(json);
    ERR_clear_error();
    return token;
}

/* ---- files ----------------------------------------------------------------- */

/* Reads a whole (small) file into a new NUL-terminated buffer. */
static char *read_small_file(const char *path, size_t *len, char *err, size_t errsz)
{
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        sk_errf(err, errsz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > AUTH_KEY_FILE_MAX) {
        sk_errf(err, errsz, "%s: not a regular file of at most %d bytes", path, AUTH_KEY_FILE_MAX);
        goto out;
    }
    buf = sk_malloc((size_t)st.st_size + 1);
    ssize_t n = sk_pread_all(fd, buf, (size_t)st.st_size, 0);
    if (n < 0) {
        sk_errf(err, errsz, "%s: %s", path, strerror(errno));
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    *len = (size_t)n;
out:
    close(fd);
    return buf;
}

/*
 * Writes data to a new temporary file next to path with the given mode,
 * fsyncs it, then puts it at path: link() when exclusive (fails with EEXIST
 * if path exists: the caller then uses that file), rename() otherwise.
 * Returns 0, or -1 with errno set (and err filled).
 */
static int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode,
                             int exclusive, char *err, size_t errsz)
{
    int rc = -1, fd = -1, saved = 0;
    sk_buf_t tmp = SK_BUF_INIT;
    sk_buf_init(&tmp, strlen(path) + 32);
    sk_buf_addf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    unlink(tmp.data); /* a stale one of a crashed start with our pid */
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 || fchmod(fd, mode) < 0 || sk_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        saved = errno;
        sk_errf(err, errsz, "%s: %s", tmp.data, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (exclusive ? link(tmp.data, path) : rename(tmp.data, path)) {
        saved = errno;
        if (errno != EEXIST) sk_errf(err, errsz, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) close(fd);
    if (rc < 0 || exclusive) unlink(tmp.data);
    sk_buf_release(&tmp);
    if (rc < 0) errno = saved;
    return rc;
}

static int dir_of(const char *path, sk_buf_t *out)
{
    const char *slash = strrchr(path, '/');
    sk_buf_reset(out);
    if (!slash)
        sk_buf_adds(out, ".");
    else if (slash == path)
        sk_buf_adds(out, "/");
    else
        sk_buf_add(out, path, (size_t)(slash - path));
    return 0;
}

auth_key_t *auth_key_load_or_create(const char *data_dir, const char *path, int *created, char *err,
                                    size_t errsz)
{
    auth_key_t *k = NULL;
    char *pem = NULL, *old_pub = NULL;
    size_t len = 0, old_len = 0;
    sk_buf_t priv_path = SK_BUF_INIT, pub_path = SK_BUF_INIT, dir = SK_BUF_INIT;
    sk_buf_init(&priv_path, 256);
    sk_buf_init(&pub_path, 256);
    sk_buf_init(&dir, 256);
    char e2[256];
    if (created) *created = 0;

    if (path && *path) {
        sk_buf_adds(&priv_path, path);
    } else {
        sk_buf_addf(&priv_path, "%s/jwt-private.pem", data_dir);
        if (access(priv_path.data, F_OK) < 0 && errno == ENOENT) {
            k = auth_key_generate(err, errsz);
            if (!k) goto out;
            if (write_file_atomic(priv_path.data, k->priv_pem, k->priv_len, 0600, 1, err, errsz) ==
                0) {
                dir_of(priv_path.data, &dir);
                sk_fsync_dir(dir.data);
                if (created) *created = 1;
            } else if (errno == EEXIST) {
                /* another process made it first: use that one */
                auth_key_free(k);
                k = NULL;
            } else {
                auth_key_free(k);
                k = NULL;
                goto out;
            }
        }
    }
    if (!k) {
        pem = read_small_file(priv_path.data, &len, err, errsz);
        if (!pem) goto out;
        k = auth_key_from_pem(pem, len, e2, sizeof e2);
        if (!k) {
            sk_errf(err, errsz, "%s: %s", priv_path.data, e2);
            goto out;
        }
    }

    /* The public half, for the other services' --jwt-public-key. */
    sk_buf_addf(&pub_path, "%s/jwt-public.pem", data_dir);
    old_pub = read_small_file(pub_path.data, &old_len, e2, sizeof e2);
    if (!old_pub || old_len != k->pub_len || memcmp(old_pub, k->pub_pem, old_len) != 0) {
        if (write_file_atomic(pub_path.data, k->pub_pem, k->pub_len, 0644, 0, err, errsz) < 0) {
            auth_key_free(k);
            k = NULL;
            goto out;
        }
        dir_of(pub_path.data, &dir);
        sk_fsync_dir(dir.data);
    }
out:
    if (pem) OPENSSL_cleanse(pem, len);
    free(pem);
    free(old_pub);
    sk_buf_release(&priv_path);
    sk_buf_release(&pub_path);
    sk_buf_release(&dir);
    return k;
}
