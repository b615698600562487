/*
 * auth.c - souk-auth: credentials, roles and tokens.
 *
 *   POST  /auth/register          {email, password, fullName, phone?, birthDate?} -> 201 {userId}
 *   POST  /auth/login             {email, password} -> 200 token pair
 *   POST  /auth/refresh           {refreshToken} -> 200 a new token pair (rotation)
 *   POST  /auth/logout            {refreshToken} -> 204
 *   PATCH /auth/password          {oldPassword, newPassword} (token) -> 204
 *   PATCH /auth/users/{id}/role   {role} (ADMIN) -> 200 {userId, role}
 *   GET   /auth/jwks              the public signing key as a JWK set
 *
 * Users live in auth.db (table users); registration writes the row and the
 * user.registered event in one transaction (the outbox).  Access tokens are
 * ES256 JWTs signed with the key of keys.c; refresh tokens are 256 random
 * bits, kept only as SHA-256 hashes in the key store under
 * refresh:<hex> -> "<userId> <epoch>" with a TTL.  A user's token_epoch
 * goes up when the password changes, which makes every refresh token issued
 * before unusable (they also expire by TTL).  Access tokens already issued
 * stay valid until they expire (--access-ttl-s, 10 minutes).
 *
 * Failed logins are counted per email in the key store (loginfail:<email>,
 * a fixed window of --login-window-s); once --login-max-failures failed
 * within the window, login answers 429 with Retry-After until the window
 * ends - even with the right password.  A successful login clears the
 * counter.  An unknown email costs the same argon2 work as a known one and
 * gets the same 401.
 *
 * Wrong old password on PATCH /auth/password: 400 validation problem on
 * field oldPassword (the caller's token is fine, so not 401: a client
 * would take a 401 as "log in again").
 *
 * Only argon2 blocks the loop (by design, tens of ms at the default cost);
 * key-store calls are asynchronous (svc_req_defer).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "keys.h"
#include "passwd.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_fs.h"
#include "sk_log.h"
#include "svc.h"

#define FAC "auth"
#define REFRESH_BYTES 32 /* 256 bits */
#define REFRESH_TOKEN_MAX 256
#define KV_KEY_MAX 320

typedef struct auth_conf_s {
    svc_conf_t common;
    int64_t argon2_memory_kib;
    int64_t argon2_iterations;
    int64_t argon2_parallelism;
    int64_t access_ttl_s;
    int64_t refresh_ttl_s;
    int64_t login_max_failures;
    int64_t login_window_s;
    char *jwt_private_key;
    char *jwt_public_key_out;
    char *admin_email;
    char *admin_password;
} auth_conf_t;

static auth_conf_t auth_conf;

static const sk_conf_entry_t auth_conf_table[] = {
    /* OWASP's password storage cheat sheet lists m=19 MiB t=2, m=12 MiB
     * t=3, m=9 MiB t=4 and m=7 MiB t=5 as equally strong; the last costs
     * the same CPU and the least memory per concurrent hash (edge boxes). */
    {"argon2-memory-kib", SK_CONF_INT, offsetof(auth_conf_t, argon2_memory_kib), "7168", 8,
     4194304, "argon2id memory cost of new password hashes, KiB (OWASP's m=7 MiB, t=5; 19456 "
     "with --argon2-iterations 2 is as strong)"},
    {"argon2-iterations", SK_CONF_INT, offsetof(auth_conf_t, argon2_iterations), "5", 1, 64,
     "argon2id time cost (passes) of new password hashes"},
    {"argon2-parallelism", SK_CONF_INT, offsetof(auth_conf_t, argon2_parallelism), "1", 1, 16,
     "argon2id lanes of new password hashes"},
    {"access-ttl-s", SK_CONF_INT, offsetof(auth_conf_t, access_ttl_s), "600", 10, 86400,
     "lifetime of an access token, seconds"},
    {"refresh-ttl-s", SK_CONF_INT, offsetof(auth_conf_t, refresh_ttl_s), "18000", 10, 31536000,
     "lifetime of a refresh token, seconds"},
    {"login-max-failures", SK_CONF_INT, offsetof(auth_conf_t, login_max_failures), "5", 1, 1000,
     "failed logins per email within --login-window-s before login answers 429"},
    {"login-window-s", SK_CONF_INT, offsetof(auth_conf_t, login_window_s), "900", 1, 86400,
     "window of the failed-login counter, seconds"},
    {"jwt-private-key", SK_CONF_STR, offsetof(auth_conf_t, jwt_private_key), "", 0, 0,
     "PEM EC P-256 private key that signs tokens (default: <data-dir>/jwt-private.pem, "
     "generated on first start)"},
    {"jwt-public-key-out", SK_CONF_STR, offsetof(auth_conf_t, jwt_public_key_out), "", 0, 0,
     "also write the public key (PEM) here, for the other services' --jwt-public-key when they "
     "must not see auth's data dir (containers); empty: only <data-dir>/jwt-public.pem"},
    {"admin-email", SK_CONF_STR, offsetof(auth_conf_t, admin_email), "", 0, 0,
     "email of an ADMIN account made (or promoted) at start"},
    {"admin-password", SK_CONF_STR, offsetof(auth_conf_t, admin_password), "", 0, 0,
     "password of that account when it is created"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

/* The service's state (svc_data). */
typedef struct auth_s {
    auth_key_t *key;
    auth_argon2_params_t argon2;
    char dummy_hash[AUTH_HASH_MAX]; /* verified against for unknown emails */
} auth_t;

static auth_t *auth_of(svc_t *svc)
{
    return svc_data(svc);
}

static const auth_conf_t *conf_of(svc_t *svc)
{
    return (const auth_conf_t *)svc_conf(svc);
}

/* ---- small helpers ---------------------------------------------------------- */

static void new_uuid(char out[37])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, strlen(s), md);
    for (size_t i = 0; i < sizeof md; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* "refresh:<sha256 hex of the token>" */
static void refresh_key(const char *token, char *out, size_t outsz)
{
    char hex[65];
    sha256_hex(token, hex);
    snprintf(out, outsz, "refresh:%s", hex);
}

/* Lowercases ASCII for the failed-login counter (any text: login does not
 * check the syntax, an unknown address simply fails). */
static void ascii_lower(const char *in, char *out, size_t outsz)
{
    size_t i = 0;
    for (; in[i] && i + 1 < outsz; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[i] = '\0';
}

static void reply_kv_down(svc_req_t *req)
{
    svc_reply_problem(req, 503, "Key store unavailable",
                      "the token store cannot be reached; try again shortly");
}

/* ---- users ------------------------------------------------------------------ */

typedef struct auth_user_s {
    char id[64];
    char email[AUTH_EMAIL_MAX + 1];
    char role[16];
    char hash[AUTH_HASH_MAX];
    int64_t epoch;
} auth_user_t;

/* Loads a user by "id" or "email".  1 found, 0 not, -1 database error. */
static int user_load(sqlite3 *db, const char *by, const char *value, auth_user_t *u)
{
    sqlite3_stmt *st =
        strcmp(by, "id") == 0
            ? sto_query(
                  db, "SELECT id, email, role, password_hash, token_epoch FROM users WHERE id = ?",
                  "t", value)
            : sto_query(
                  db,
                  "SELECT id, email, role, password_hash, token_epoch FROM users WHERE email = ?",
                  "t", value);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(u->id, sizeof u->id, "%s", sto_col_text(st, 0) ? sto_col_text(st, 0) : "");
        snprintf(u->email, sizeof u->email, "%s", sto_col_text(st, 1) ? sto_col_text(st, 1) : "");
        snprintf(u->role, sizeof u->role, "%s", sto_col_text(st, 2) ? sto_col_text(st, 2) : "");
        snprintf(u->hash, sizeof u->hash, "%s", sto_col_text(st, 3) ? sto_col_text(st, 3) : "");
        u->epoch = sqlite3_column_int64(st, 4);
    }
    sto_done(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Inserts a user and emits user.registered in one transaction.  The caller
 * hashed the password.  Returns 0, 1 if the email is taken, -1 on error
 * (err).  correlation_id NULL: the event's own id.
 */
static int user_create(svc_t *svc, const char *id, const char *email, const char *hash,
                       const char *role, const char *full_name, const char *phone,
                       const char *birth_date, const char *correlation_id, char *err, size_t errsz)
{
    sqlite3 *db = svc_db(svc);
    char now[SK_RFC3339_LEN];
    sk_rfc3339_ms(sk_wall_ms(), now);
    if (sto_begin(db) < 0) {
        sk_errf(err, errsz, "begin: %s", sqlite3_errmsg(db));
        return -1;
    }
    int n = sto_exec(db,
                     "INSERT INTO users (id, email, password_hash, role, full_name, phone, "
                     "birth_date, token_epoch, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                     "ttttttttt", id, email, hash, role, full_name, phone, birth_date, now, now);
    if (n < 0) {
        int taken = sto_is_constraint(db);
        if (!taken) sk_errf(err, errsz, "insert: %s", sqlite3_errmsg(db));
        sto_rollback(db);
        return taken ? 1 : -1;
    }
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "userId", id);
    cJSON_AddStringToObject(data, "email", email);
    cJSON_AddStringToObject(data, "role", role);
    cJSON_AddStringToObject(data, "fullName", full_name);
    if (phone)
        cJSON_AddStringToObject(data, "phone", phone);
    else
        cJSON_AddNullToObject(data, "phone");
    if (birth_date)
        cJSON_AddStringToObject(data, "birthDate", birth_date);
    else
        cJSON_AddNullToObject(data, "birthDate");
    if (svc_emit(svc, "user.registered", correlation_id, data, err, errsz) < 0) {
        sto_rollback(db);
        return -1;
    }
    if (svc_commit(svc) < 0) {
        sk_errf(err, errsz, "commit: %s", sqlite3_errmsg(db));
        sto_rollback(db);
        return -1;
    }
    return 0;
}

/* ---- tokens ----------------------------------------------------------------- */

/* One deferred request waiting for the key store. */
typedef struct auth_op_s {
    svc_t *svc;
    svc_req_t *req;
    const char *password;           /* login: borrowed from the request body */
    char email[AUTH_EMAIL_MAX + 1]; /* login: lowercased as sent */
    char kv_key[KV_KEY_MAX];        /* loginfail:<email> */
    auth_user_t user;               /* whom the tokens are for */
    char refresh[64];               /* the new refresh token (base64url) */
    char *access;                   /* the new access token */
} auth_op_t;

static auth_op_t *op_new(svc_t *svc, svc_req_t *req)
{
    auth_op_t *op = sk_calloc(1, sizeof *op);
    op->svc = svc;
    op->req = req;
    return op;
}

static void op_free(auth_op_t *op)
{
    if (!op) return;
    free(op->access);
    OPENSSL_cleanse(op, sizeof *op);
    free(op);
}

static void on_refresh_stored(void *opaque, const ev_kv_reply_t *r)
{
    auth_op_t *op = opaque;
    if (r->status != EV_KV_OK) {
        sk_warn(FAC, "storing a refresh token failed: %s", r->err ? r->err : "?");
        reply_kv_down(op->req);
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "accessToken", op->access);
    cJSON_AddStringToObject(o, "refreshToken", op->refresh);
    cJSON_AddNumberToObject(o, "expiresIn", (double)conf_of(op->svc)->access_ttl_s);
    cJSON_AddNumberToObject(o, "refreshExpiresIn", (double)conf_of(op->svc)->refresh_ttl_s);
    cJSON_AddStringToObject(o, "tokenType", "Bearer");
    svc_req_set_header(op->req, "Cache-Control", "no-store");
    svc_reply_json(op->req, 200, o);
out:
    op_free(op);
}

/*
 * Signs an access token for op->user, makes a refresh token, stores its
 * hash, and answers 200 once the key store has it.  Takes op (freed here or
 * in the callback).  The request must already be deferred.
 */
static void tokens_issue(auth_op_t *op)
{
    svc_t *svc = op->svc;
    const auth_conf_t *c = conf_of(svc);
    char err[256] = "", jti[37], key[KV_KEY_MAX];
    unsigned char raw[REFRESH_BYTES];
    int64_t now = (int64_t)time(NULL);

    new_uuid(jti);
    cJSON *claims = cJSON_CreateObject();
    cJSON_AddStringToObject(claims, "iss", SVC_JWT_ISSUER);
    cJSON_AddStringToObject(claims, "sub", op->user.id);
    cJSON_AddStringToObject(claims, "role", op->user.role);
    cJSON_AddNumberToObject(claims, "iat", (double)now);
    cJSON_AddNumberToObject(claims, "exp", (double)(now + c->access_ttl_s));
    cJSON_AddStringToObject(claims, "jti", jti);
    op->access = auth_key_sign(auth_of(svc)->key, claims, err, sizeof err);
    cJSON_Delete(claims);
    if (!op->access) {
        sk_error(FAC, "signing an access token failed: %s", err);
        svc_reply_problem(op->req, 500, NULL, "could not issue a token");
        goto fail;
    }
    if (RAND_bytes(raw, sizeof raw) != 1) {
        sk_error(FAC, "RAND_bytes failed");
        svc_reply_problem(op->req, 500, NULL, "could not issue a token");
        goto fail;
    }
    auth_b64url(raw, sizeof raw, op->refresh);
    OPENSSL_cleanse(raw, sizeof raw);
    refresh_key(op->refresh, key, sizeof key);

    char value[128];
    int vlen = snprintf(value, sizeof value, "%s %lld", op->user.id, (long long)op->user.epoch);
    if (ev_kv_set_ex(svc_kv(svc), key, value, (size_t)vlen, c->refresh_ttl_s, on_refresh_stored,
                     op) < 0) {
        reply_kv_down(op->req);
        goto fail;
    }
    return;
fail:
    op_free(op);
}

/* ---- POST /auth/register ------------------------------------------------------ */

static void h_register(svc_t *svc, svc_req_t *req)
{
    char email[AUTH_EMAIL_MAX + 1] = "", msg[160], err[256] = "", hash[AUTH_HASH_MAX], id[37];
    const cJSON *b = svc_req_body_object(req);
    const char *email_in = svc_json_str(req, b, "email", SVC_REQUIRED, 1, AUTH_EMAIL_MAX);
    const char *password = svc_json_str(req, b, "password", SVC_REQUIRED, 0, AUTH_PASSWORD_MAX);
    const char *full_name = svc_json_str(req, b, "fullName", SVC_REQUIRED, 1, 200);
    const char *phone = svc_json_str(req, b, "phone", SVC_OPTIONAL, 0, 16);
    const char *birth = svc_json_str(req, b, "birthDate", SVC_OPTIONAL, 0, 10);

    if (email_in && auth_email_normalize(email_in, email, sizeof email, msg, sizeof msg) < 0)
        svc_req_field_error(req, "email", "%s", msg);
    if (password && auth_password_check(password, email[0] ? email : email_in, msg, sizeof msg) < 0)
        svc_req_field_error(req, "password", "%s", msg);
    if (full_name && strspn(full_name, " \t\r\n") == strlen(full_name))
        svc_req_field_error(req, "fullName", "must not be blank");
    if (phone && auth_phone_check(phone, msg, sizeof msg) < 0)
        svc_req_field_error(req, "phone", "%s", msg);
    if (birth && auth_birth_date_check(birth, (int64_t)time(NULL), msg, sizeof msg) < 0)
        svc_req_field_error(req, "birthDate", "%s", msg);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }

    auth_user_t u;
    int found = user_load(svc_db(svc), "email", email, &u);
    if (found < 0) goto db_fail;
    if (found) goto taken;

    auth_t *a = auth_of(svc);
    if (auth_passwd_hash(&a->argon2, password, strlen(password), hash, sizeof hash, err,
                         sizeof err) < 0) {
        sk_error(FAC, "hashing a password failed: %s", err);
        svc_reply_problem(req, 500, NULL, "could not register the user");
        return;
    }
    new_uuid(id);
    int rc = user_create(svc, id, email, hash, "USER", full_name, phone, birth,
                         svc_req_correlation_id(req), err, sizeof err);
    OPENSSL_cleanse(hash, sizeof hash);
    if (rc == 1) goto taken;
    if (rc < 0) {
        sk_error(FAC, "registering a user failed: %s", err);
        svc_reply_problem(req, 500, NULL, "could not register the user");
        return;
    }
    sk_info(FAC, "user %s registered", id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "userId", id);
    svc_reply_json(req, 201, o);
    return;
taken:
    svc_reply_problem_ex(req, 409, "email-taken", "Email already registered", NULL,
                         "an account with this email address exists");
    return;
db_fail:
    sk_error(FAC, "loading a user failed: %s", sqlite3_errmsg(svc_db(svc)));
    svc_reply_problem(req, 500, NULL, "could not register the user");
}

/* ---- POST /auth/login ----------------------------------------------------------- */

static void reply_bad_credentials(svc_req_t *req)
{
    svc_reply_problem_ex(req, 401, "bad-credentials", "Invalid credentials", NULL,
                         "the email or the password is wrong");
}

static void on_login_ttl(void *opaque, const ev_kv_reply_t *r)
{
    auth_op_t *op = opaque;
    int64_t retry = conf_of(op->svc)->login_window_s;
    if (r->status == EV_KV_OK && r->integer > 0) retry = r->integer;
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)retry);
    svc_req_set_header(op->req, "Retry-After", v);
    svc_reply_problem_ex(op->req, 429, "too-many-login-failures", "Too many failed logins", NULL,
                         "too many failed logins for this account; retry in %lld s",
                         (long long)retry);
    op_free(op);
}

static void on_login_failure_counted(void *opaque, const ev_kv_reply_t *r)
{
    auth_op_t *op = opaque;
    if (r->status != EV_KV_OK) {
        /* Not counted: refuse rather than let guesses go uncounted. */
        reply_kv_down(op->req);
    } else {
        sk_info(FAC, "login failed (%lld in the window)", r->integer);
        reply_bad_credentials(op->req);
    }
    op_free(op);
}

/* The failed-login count is known: verify the password, then count a
 * failure or issue the tokens. */
static void on_login_count(void *opaque, const ev_kv_reply_t *r)
{
    auth_op_t *op = opaque;
    svc_t *svc = op->svc;
    const auth_conf_t *c = conf_of(svc);
    char err[256] = "";

    if (r->status == EV_KV_ERROR) {
        reply_kv_down(op->req);
        goto done;
    }
    long long count = 0;
    if (r->status == EV_KV_OK && r->str) {
        char num[32];
        snprintf(num, sizeof num, "%.*s", (int)(r->len < 31 ? r->len : 31), r->str);
        count = strtoll(num, NULL, 10);
    }
    if (count >= c->login_max_failures) {
        const char *argv[] = {"TTL", op->kv_key};
        if (ev_kv_command(svc_kv(svc), 2, argv, NULL, on_login_ttl, op) < 0) {
            reply_kv_down(op->req);
            goto done;
        }
        return;
    }

    int found = user_load(svc_db(svc), "email", op->email, &op->user);
    if (found < 0) {
        sk_error(FAC, "loading a user failed: %s", sqlite3_errmsg(svc_db(svc)));
        svc_reply_problem(op->req, 500, NULL, "could not log in");
        goto done;
    }
    /* An unknown email costs the same work as a wrong password. */
    const char *hash = found ? op->user.hash : auth_of(svc)->dummy_hash;
    int ok = auth_passwd_verify(hash, op->password, strlen(op->password), err, sizeof err);
    if (ok < 0) sk_error(FAC, "verifying a password hash failed: %s", err);
    if (ok == 1 && found) {
        ev_kv_del(svc_kv(svc), op->kv_key, NULL, NULL); /* best effort */
        sk_info(FAC, "user %s logged in", op->user.id);
        tokens_issue(op);
        return;
    }
    if (ev_kv_incr_expire(svc_kv(svc), op->kv_key, c->login_window_s, on_login_failure_counted,
                          op) < 0) {
        reply_kv_down(op->req);
        goto done;
    }
    return;
done:
    op_free(op);
}

static void h_login(svc_t *svc, svc_req_t *req)
{
    const cJSON *b = svc_req_body_object(req);
    const char *email = svc_json_str(req, b, "email", SVC_REQUIRED, 1, AUTH_EMAIL_MAX);
    const char *password = svc_json_str(req, b, "password", SVC_REQUIRED, 1, AUTH_PASSWORD_MAX);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    ev_kv_t *kv = svc_kv(svc);
    if (!kv || !ev_kv_connected(kv)) {
        reply_kv_down(req);
        return;
    }
    auth_op_t *op = op_new(svc, req);
    op->password = password;
    ascii_lower(email, op->email, sizeof op->email);
    snprintf(op->kv_key, sizeof op->kv_key, "loginfail:%s", op->email);
    if (ev_kv_get(kv, op->kv_key, on_login_count, op) < 0) {
        op_free(op);
        reply_kv_down(req);
        return;
    }
    svc_req_defer(req);
}

/* ---- POST /auth/refresh ---------------------------------------------------------- */

static void reply_bad_refresh(svc_req_t *req)
{
    svc_reply_problem_ex(req, 401, "invalid-refresh-token", "Invalid refresh token", NULL,
                         "the refresh token is unknown, used, revoked or expired");
}

static void on_refresh_taken(void *opaque, const ev_kv_reply_t *r)
{
    auth_op_t *op = opaque;
    svc_t *svc = op->svc;
    char value[128], *sp, *end;
    auth_user_t u;

    if (r->status == EV_KV_ERROR) {
        reply_kv_down(op->req);
        goto done;
    }
    if (r->status == EV_KV_NIL || !r->str || r->len >= sizeof value) {
        reply_bad_refresh(op->req);
        goto done;
    }
    memcpy(value, r->str, r->len);
    value[r->len] = '\0';
    sp = strchr(value, ' ');
    if (!sp) {
        reply_bad_refresh(op->req);
        goto done;
    }
    *sp = '\0';
    long long epoch = strtoll(sp + 1, &end, 10);
    int found = user_load(svc_db(svc), "id", value, &u);
    if (found < 0) {
        sk_error(FAC, "loading a user failed: %s", sqlite3_errmsg(svc_db(svc)));
        svc_reply_problem(op->req, 500, NULL, "could not refresh the token");
        goto done;
    }
    if (!found || *end || epoch != u.epoch) {
        sk_info(FAC, "refresh refused for user %s: %s", value,
                found ? "tokens revoked since" : "no such user");
        reply_bad_refresh(op->req);
        goto done;
    }
    op->user = u;
    tokens_issue(op);
    return;
done:
    op_free(op);
}

/* Reads {refreshToken} and computes its key-store key.  0, or -1 after
 * answering. */
static int refresh_body(svc_req_t *req, char *key, size_t keysz)
{
    const cJSON *b = svc_req_body_object(req);
    const char *t = svc_json_str(req, b, "refreshToken", SVC_REQUIRED, 1, REFRESH_TOKEN_MAX);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return -1;
    }
    refresh_key(t, key, keysz);
    return 0;
}

static void h_refresh(svc_t *svc, svc_req_t *req)
{
    char key[KV_KEY_MAX];
    if (refresh_body(req, key, sizeof key) < 0) return;
    ev_kv_t *kv = svc_kv(svc);
    auth_op_t *op = op_new(svc, req);
    /* GETDEL: the old token stops working whatever happens next. */
    if (!kv || ev_kv_getdel(kv, key, on_refresh_taken, op) < 0) {
        op_free(op);
        reply_kv_down(req);
        return;
    }
    svc_req_defer(req);
}

/* ---- POST /auth/logout ----------------------------------------------------------- */

static void on_logout_deleted(void *opaque, const ev_kv_reply_t *r)
{
    auth_op_t *op = opaque;
    if (r->status == EV_KV_ERROR)
        reply_kv_down(op->req);
    else
        svc_reply_json(op->req, 204, NULL); /* an unknown token is logged out too */
    op_free(op);
}

static void h_logout(svc_t *svc, svc_req_t *req)
{
    char key[KV_KEY_MAX];
    if (refresh_body(req, key, sizeof key) < 0) return;
    ev_kv_t *kv = svc_kv(svc);
    auth_op_t *op = op_new(svc, req);
    if (!kv || ev_kv_del(kv, key, on_logout_deleted, op) < 0) {
        op_free(op);
        reply_kv_down(req);
        return;
    }
    svc_req_defer(req);
}

/* ---- PATCH /auth/password -------------------------------------------------------- */

static void h_password(svc_t *svc, svc_req_t *req)
{
    const svc_principal_t *p = svc_req_principal(req);
    char msg[160], err[256] = "", hash[AUTH_HASH_MAX], now[SK_RFC3339_LEN];
    auth_user_t u;
    const cJSON *b = svc_req_body_object(req);
    const char *old_pw = svc_json_str(req, b, "oldPassword", SVC_REQUIRED, 1, AUTH_PASSWORD_MAX);
    const char *new_pw = svc_json_str(req, b, "newPassword", SVC_REQUIRED, 0, AUTH_PASSWORD_MAX);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    int found = user_load(svc_db(svc), "id", p->user_id, &u);
    if (found < 0) {
        sk_error(FAC, "loading a user failed: %s", sqlite3_errmsg(svc_db(svc)));
        svc_reply_problem(req, 500, NULL, "could not change the password");
        return;
    }
    if (!found) {
        svc_reply_problem(req, 404, "User not found", "the token's user does not exist");
        return;
    }
    int ok = auth_passwd_verify(u.hash, old_pw, strlen(old_pw), err, sizeof err);
    if (ok < 0) sk_error(FAC, "verifying a password hash failed: %s", err);
    if (ok != 1) svc_req_field_error(req, "oldPassword", "is not the current password");
    if (auth_password_check(new_pw, u.email, msg, sizeof msg) < 0)
        svc_req_field_error(req, "newPassword", "%s", msg);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    if (auth_passwd_hash(&auth_of(svc)->argon2, new_pw, strlen(new_pw), hash, sizeof hash, err,
                         sizeof err) < 0) {
        sk_error(FAC, "hashing a password failed: %s", err);
        svc_reply_problem(req, 500, NULL, "could not change the password");
        return;
    }
    sk_rfc3339_ms(sk_wall_ms(), now);
    /* token_epoch + 1: every refresh token issued before stops working. */
    int n = sto_exec(svc_db(svc),
                     "UPDATE users SET password_hash = ?, token_epoch = token_epoch + 1, "
                     "updated_at = ? WHERE id = ?",
                     "ttt", hash, now, u.id);
    OPENSSL_cleanse(hash, sizeof hash);
    if (n < 0) {
        sk_error(FAC, "changing a password failed: %s", sqlite3_errmsg(svc_db(svc)));
        svc_reply_problem(req, 500, NULL, "could not change the password");
        return;
    }
    if (n == 0) {
        svc_reply_problem(req, 404, "User not found", "the token's user does not exist");
        return;
    }
    sk_info(FAC, "user %s changed the password; refresh tokens revoked", u.id);
    svc_reply_json(req, 204, NULL);
}

/* ---- PATCH /auth/users/{id}/role ------------------------------------------------- */

static void h_role(svc_t *svc, svc_req_t *req)
{
    const char *id = svc_req_param(req, "id");
    const cJSON *b = svc_req_body_object(req);
    const char *role_s = svc_json_str(req, b, "role", SVC_REQUIRED, 1, 16);
    svc_role_t role = role_s ? svc_role_parse(role_s) : SVC_ROLE_NONE;
    if (role_s && role == SVC_ROLE_NONE)
        svc_req_field_error(req, "role", "must be one of USER, AUTHOR, ADMIN");
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    char now[SK_RFC3339_LEN], err[256];
    sk_rfc3339_ms(sk_wall_ms(), now);
    sqlite3 *db = svc_db(svc);
    char *prev = NULL;
    if (sto_begin(db) < 0) {
        sk_error(FAC, "changing a role failed: %s", sqlite3_errmsg(db));
        svc_reply_problem(req, 500, NULL, "could not change the role");
        return;
    }
    int found = sto_query_text(db, &prev, "SELECT role FROM users WHERE id = ?", "t", id);
    if (found <= 0 || !prev) {
        sto_rollback(db);
        free(prev);
        if (found < 0) {
            sk_error(FAC, "changing a role failed: %s", sqlite3_errmsg(db));
            svc_reply_problem(req, 500, NULL, "could not change the role");
        } else {
            svc_reply_problem(req, 404, "User not found", "no user has this id");
        }
        return;
    }
    int changed = strcmp(prev, svc_role_name(role)) != 0;
    /* The profile (souk-user) follows through user.role_changed, emitted in
     * the same transaction; setting the role it already has emits nothing. */
    if (changed &&
        (sto_exec(db, "UPDATE users SET role = ?, updated_at = ? WHERE id = ?", "ttt",
                  svc_role_name(role), now, id) != 1 ||
         svc_emit(svc, "user.role_changed", svc_req_correlation_id(req),
                  ev_set_str(ev_set_str(ev_set_str(ev_obj(), "userId", id), "role", svc_role_name(role)),
                             "previousRole", prev),
                  err, sizeof err) < 0)) {
        sk_error(FAC, "changing a role failed: %s", changed ? err : sqlite3_errmsg(db));
        sto_rollback(db);
        free(prev);
        svc_reply_problem(req, 500, NULL, "could not change the role");
        return;
    }
    free(prev);
    if ((changed ? svc_commit(svc) : sto_rollback(db)) < 0) {
        sk_error(FAC, "changing a role failed: %s", sqlite3_errmsg(db));
        sto_rollback(db);
        svc_reply_problem(req, 500, NULL, "could not change the role");
        return;
    }
    const svc_principal_t *p = svc_req_principal(req);
    sk_info(FAC, "user %s now has role %s (by %s)", id, svc_role_name(role),
            p && p->user_id ? p->user_id : "?");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "userId", id);
    cJSON_AddStringToObject(o, "role", svc_role_name(role));
    svc_reply_json(req, 200, o);
}

/* ---- GET /auth/jwks -------------------------------------------------------------- */

static void h_jwks(svc_t *svc, svc_req_t *req)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *keys = cJSON_AddArrayToObject(o, "keys");
    cJSON_AddItemToArray(keys, auth_key_jwk(auth_of(svc)->key));
    svc_req_set_header(req, "Cache-Control", "public, max-age=300");
    svc_reply_json(req, 200, o);
}

/* ---- start and stop --------------------------------------------------------------- */

/* SOUK_ADMIN_EMAIL / SOUK_ADMIN_PASSWORD: make sure that account exists and
 * is an ADMIN. */
static int admin_bootstrap(svc_t *svc, char *err, size_t errsz)
{
    const auth_conf_t *c = conf_of(svc);
    char email[AUTH_EMAIL_MAX + 1], msg[160], hash[AUTH_HASH_MAX], id[37], e2[256] = "";
    auth_user_t u;
    if (!c->admin_email || !*c->admin_email) return 0;
    if (auth_email_normalize(c->admin_email, email, sizeof email, msg, sizeof msg) < 0) {
        sk_errf(err, errsz, "--admin-email %s", msg);
        return -1;
    }
    int found = user_load(svc_db(svc), "email", email, &u);
    if (found < 0) {
        sk_errf(err, errsz, "loading the admin: %s", sqlite3_errmsg(svc_db(svc)));
        return -1;
    }
    if (found) {
        if (strcmp(u.role, "ADMIN") != 0) {
            char now[SK_RFC3339_LEN];
            sk_rfc3339_ms(sk_wall_ms(), now);
            if (sto_exec(svc_db(svc),
                         "UPDATE users SET role = 'ADMIN', updated_at = ? WHERE id = ?", "tt", now,
                         u.id) < 0) {
                sk_errf(err, errsz, "promoting the admin: %s", sqlite3_errmsg(svc_db(svc)));
                return -1;
            }
            sk_info(FAC, "user %s promoted to ADMIN (--admin-email)", u.id);
        }
        return 0;
    }
    if (!c->admin_password || !*c->admin_password) {
        sk_errf(err, errsz, "--admin-email needs --admin-password to create the account");
        return -1;
    }
    if (auth_password_check(c->admin_password, email, msg, sizeof msg) < 0) {
        sk_errf(err, errsz, "--admin-password %s", msg);
        return -1;
    }
    if (auth_passwd_hash(&auth_of(svc)->argon2, c->admin_password, strlen(c->admin_password), hash,
                         sizeof hash, e2, sizeof e2) < 0) {
        sk_errf(err, errsz, "hashing the admin password: %s", e2);
        return -1;
    }
    new_uuid(id);
    int rc = user_create(svc, id, email, hash, "ADMIN", "Administrator", NULL, NULL, NULL, e2,
                         sizeof e2);
    OPENSSL_cleanse(hash, sizeof hash);
    if (rc != 0) {
        sk_errf(err, errsz, "creating the admin: %s", rc == 1 ? "email taken" : e2);
        return -1;
    }
    sk_info(FAC, "admin %s created (--admin-email)", id);
    return 0;
}

/* --jwt-public-key-out: the public key written atomically (a temporary
 * file renamed over the old one, 0644), so a reader never sees half of it. */
static int write_public_copy(const char *path, const char *pem, size_t len, char *err, size_t errsz)
{
    sk_buf_t tmp;
    sk_buf_init(&tmp, 256);
    sk_buf_addf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0 && sk_write_all(fd, pem, len) == 0 && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    ok = ok && rename(tmp.data, path) == 0;
    if (!ok) {
        sk_errf(err, errsz, "--jwt-public-key-out %s: %s", path, strerror(errno));
        unlink(tmp.data);
    } else {
        sk_info(FAC, "public key written to %s", path);
    }
    sk_buf_release(&tmp);
    return ok ? 0 : -1;
}

static int auth_init(svc_t *svc, char *err, size_t errsz)
{
    const auth_conf_t *c = conf_of(svc);
    char e2[256] = "";
    unsigned char rnd[24];
    char dummy_pw[40];
    int created = 0;

    /* Each argon2 hash allocates --argon2-memory-kib (7 MiB) and frees it.
     * glibc would raise its mmap threshold after the first such free and keep
     * every later buffer in the heap for good; a fixed threshold keeps them
     * mmap()ed, so the memory goes back to the system after each hash. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);

    auth_t *a = sk_calloc(1, sizeof *a);
    svc_set_data(svc, a);
    a->argon2.t_cost = (uint32_t)c->argon2_iterations;
    a->argon2.m_cost_kib = (uint32_t)c->argon2_memory_kib;
    a->argon2.parallelism = (uint32_t)c->argon2_parallelism;
    if (a->argon2.m_cost_kib < 8 * a->argon2.parallelism) {
        sk_errf(err, errsz, "--argon2-memory-kib must be at least 8 x --argon2-parallelism");
        return -1;
    }

    a->key = auth_key_load_or_create(c->common.data_dir, c->jwt_private_key, &created, err, errsz);
    if (!a->key) return -1;
    size_t pub_len;
    const char *pub = auth_key_public_pem(a->key, &pub_len);
    if (svc_set_jwt_public_key(svc, pub, pub_len, e2, sizeof e2) < 0) {
        sk_errf(err, errsz, "own public key refused: %s", e2);
        return -1;
    }
    sk_info(FAC, "%s token signing key kid=%s", created ? "generated a" : "loaded the",
            auth_key_kid(a->key));
    if (*c->jwt_public_key_out && write_public_copy(c->jwt_public_key_out, pub, pub_len, err, errsz) < 0)
        return -1;

    /* The hash that unknown emails are verified against, at the current cost. */
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        sk_errf(err, errsz, "no random bytes");
        return -1;
    }
    auth_b64url(rnd, sizeof rnd, dummy_pw);
    if (auth_passwd_hash(&a->argon2, dummy_pw, strlen(dummy_pw), a->dummy_hash,
                         sizeof a->dummy_hash, e2, sizeof e2) < 0) {
        sk_errf(err, errsz, "%s", e2);
        return -1;
    }
    return admin_bootstrap(svc, err, errsz);
}

static void auth_fini(svc_t *svc)
{
    auth_t *a = auth_of(svc);
    if (!a) return;
    auth_key_free(a->key);
    OPENSSL_cleanse(a, sizeof *a);
    free(a);
    svc_set_data(svc, NULL);
}

/* ---- the service ------------------------------------------------------------------ */

static const sto_migration_t auth_migrations[] = {
    SVC_EVENTS_MIGRATIONS,
    {3, "users",
     "CREATE TABLE users ("
     "  id TEXT PRIMARY KEY,"
     "  email TEXT NOT NULL UNIQUE,"
     "  password_hash TEXT NOT NULL,"
     "  role TEXT NOT NULL CHECK (role IN ('USER', 'AUTHOR', 'ADMIN')),"
     "  full_name TEXT NOT NULL,"
     "  phone TEXT,"
     "  birth_date TEXT,"
     "  token_epoch INTEGER NOT NULL DEFAULT 0,"
     "  created_at TEXT NOT NULL,"
     "  updated_at TEXT NOT NULL"
     ");"},
};

static const svc_route_t auth_routes[] = {
    {SVC_POST, "/auth/register", h_register, SVC_PUBLIC},
    {SVC_POST, "/auth/login", h_login, SVC_PUBLIC},
    {SVC_POST, "/auth/refresh", h_refresh, SVC_PUBLIC},
    {SVC_POST, "/auth/logout", h_logout, SVC_PUBLIC},
    {SVC_PATCH, "/auth/password", h_password, SVC_USER},
    {SVC_PATCH, "/auth/users/{id}/role", h_role, SVC_ADMIN},
    {SVC_GET, "/auth/jwks", h_jwks, SVC_PUBLIC},
    {0, NULL, NULL, 0},
};

static const svc_desc_t auth_desc = {
    .name = "auth",
    .summary = "souk-auth: registration, login, ES256 access tokens, refresh tokens, roles",
    .default_port = 8081,
    .conf_table = auth_conf_table,
    .conf = &auth_conf,
    .migrations = auth_migrations,
    .nmigrations = sizeof auth_migrations / sizeof auth_migrations[0],
    .routes = auth_routes,
    .use_kv = 1,
    .init = auth_init,
    .fini = auth_fini,
};

int main(int argc, char **argv)
{
    return svc_main(&auth_desc, argc, argv);
}
