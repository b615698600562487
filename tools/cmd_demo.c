/*
 * souk demo - seeds a running marketplace with a few users and catalogs,
 * through the public HTTP APIs (POST /auth/register, POST /auth/login,
 * PATCH /auth/users/{id}/role, POST /catalogs), so that the web UI has
 * something to show.  Runs again harmlessly: an email or title that exists
 * (409) is reported as "exists".
 */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_conf.h"
#include "supervise.h"
#include "up.h"

typedef struct demo_cfg_s {
    char *data_dir;
    char *gateway;
    char *auth_url;
    char *catalog_url;
    char *admin_email;
    char *admin_password;
    int64_t timeout_ms;
} demo_cfg_t;

static const sk_conf_entry_t demo_conf[] = {
    {"data-dir", SK_CONF_STR, offsetof(demo_cfg_t, data_dir), "./data", 0, 0,
     "the data dir of souk up: admin-credentials, and souk.state for the addresses"},
    {"gateway", SK_CONF_STR, offsetof(demo_cfg_t, gateway), "", 0, 0,
     "the gateway's URL, e.g. http://127.0.0.1:8082 (default: from souk.state; else the services "
     "directly)"},
    {"auth-url", SK_CONF_STR, offsetof(demo_cfg_t, auth_url), "", 0, 0,
     "souk-auth's URL (default: the gateway)"},
    {"catalog-url", SK_CONF_STR, offsetof(demo_cfg_t, catalog_url), "", 0, 0,
     "souk-catalog's URL (default: the gateway)"},
    {"demo-admin-email", SK_CONF_STR, offsetof(demo_cfg_t, admin_email), "", 0, 0,
     "the admin to seed as (default: <data-dir>/admin-credentials)"},
    {"demo-admin-password", SK_CONF_STR, offsetof(demo_cfg_t, admin_password), "", 0, 0,
     "that admin's password"},
    {"timeout-ms", SK_CONF_INT, offsetof(demo_cfg_t, timeout_ms), "10000", 100, 600000,
     "how long each request may take"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sk_conf_prog_t demo_prog = {
    "souk demo",
    "Seeds a running marketplace with demo users (their passwords are printed) and\n"
    "catalogs with tickets, as the admin of souk up's admin-credentials.",
    NULL, 0};

typedef struct demo_user_s {
    const char *email, *password, *full_name, *role;
} demo_user_t;

static const demo_user_t demo_users[] = {
    {"author@souk.local", "author-demo-1", "Ada Author", "AUTHOR"},
    {"alice@souk.local", "alice-demo-1", "Alice Buyer", "USER"},
    {"bob@souk.local", "bob-demo-pass-1", "Bob Buyer", "USER"},
};

typedef struct demo_catalog_s {
    const char *title, *description;
    int price; /* minor units */
    const char *currency;
    int days_ahead, hour;
    int tickets;
} demo_catalog_t;

static const demo_catalog_t demo_catalogs[] = {
    {"Event Sourcing from Scratch", "Append-only logs, projections and replay, hands on.", 4900,
     "EUR", 14, 18, 8},
    {"Sagas in Practice", "Orchestrated sagas with compensations and timeouts.", 3900, "EUR", 21,
     17, 6},
    {"Kafka on the Wire", "The Kafka protocol byte by byte, with kcat and librdkafka.", 2900, "EUR",
     30, 18, 10},
    {"C for Backend Engineers", "Buffers, event loops and ownership in modern C.", 5900, "EUR", 45,
     9, 5},
};

#define NUSERS (sizeof demo_users / sizeof demo_users[0])
#define NCATALOGS (sizeof demo_catalogs / sizeof demo_catalogs[0])

typedef struct demo_s {
    const char *auth, *catalog;
    int timeout_ms;
    int failures;
} demo_t;

/* POST/PATCH a JSON body; returns the status (0 if unreachable), the parsed
 * answer in *json (may be NULL; caller deletes). */
static int call(demo_t *d, const char *base, const char *method, const char *path,
                const char *token, cJSON *body, cJSON **json)
{
    char err[512];
    hc_resp_t r;
    char *b = body ? cJSON_PrintUnformatted(body) : NULL;
    if (json) *json = NULL;
    int rc = hc_request(base, method, path, token, b, d->timeout_ms, &r, err, sizeof err);
    if (b) cJSON_free(b);
    if (rc < 0) {
        fprintf(stderr, "souk demo: %s %s%s: %s\n", method, base, path, err);
        return 0;
    }
    if (json) *json = cJSON_Parse(r.body.data);
    if (r.status >= 400 && r.status != 409) {
        const cJSON *detail =
            json && *json ? cJSON_GetObjectItemCaseSensitive(*json, "detail") : NULL;
        fprintf(stderr, "souk demo: %s %s -> %d %s\n", method, path, r.status,
                cJSON_IsString(detail) ? detail->valuestring : r.body.data);
    }
    int status = r.status;
    hc_resp_release(&r);
    return status;
}

/* Logs in; returns the access token (caller frees) or NULL. */
static char *login(demo_t *d, const char *email, const char *password)
{
    cJSON *b = cJSON_CreateObject(), *ans = NULL;
    char *tok = NULL;
    cJSON_AddStringToObject(b, "email", email);
    cJSON_AddStringToObject(b, "password", password);
    int st = call(d, d->auth, "POST", "/auth/login", NULL, b, &ans);
    const cJSON *t = ans ? cJSON_GetObjectItemCaseSensitive(ans, "accessToken") : NULL;
    if (st == 200 && cJSON_IsString(t)) tok = sk_strdup(t->valuestring);
    cJSON_Delete(b);
    cJSON_Delete(ans);
    return tok;
}

/* The "sub" claim of a JWT (caller frees) or NULL. */
static char *token_subject(const char *jwt)
{
    const char *p = strchr(jwt, '.');
    const char *q = p ? strchr(p + 1, '.') : NULL;
    if (!q) return NULL;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    sk_buf_t out = SK_BUF_INIT;
    sk_buf_init(&out, 256);
    unsigned acc = 0;
    int bits = 0;
    for (const char *c = p + 1; c < q; c++) {
        const char *k = strchr(b64, *c);
        if (!k || !*c) break;
        acc = (acc << 6) | (unsigned)(k - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            sk_buf_addc(&out, (char)((acc >> bits) & 0xff));
        }
    }
    cJSON *claims = cJSON_Parse(out.data);
    sk_buf_release(&out);
    const cJSON *sub = claims ? cJSON_GetObjectItemCaseSensitive(claims, "sub") : NULL;
    char *s = cJSON_IsString(sub) ? sk_strdup(sub->valuestring) : NULL;
    cJSON_Delete(claims);
    return s;
}

static void seed_user(demo_t *d, const char *admin_token, const demo_user_t *u)
{
    cJSON *b = cJSON_CreateObject(), *ans = NULL;
    char *id = NULL, *tok = NULL;
    cJSON_AddStringToObject(b, "email", u->email);
    cJSON_AddStringToObject(b, "password", u->password);
    cJSON_AddStringToObject(b, "fullName", u->full_name);
    int st = call(d, d->auth, "POST", "/auth/register", NULL, b, &ans);
    const char *what = st == 201 || st == 200 ? "created" : st == 409 ? "exists" : "FAILED";
    if (st == 201 || st == 200) {
        const cJSON *uid = cJSON_GetObjectItemCaseSensitive(ans, "userId");
        if (cJSON_IsString(uid)) id = sk_strdup(uid->valuestring);
    }
    if (st != 201 && st != 200 && st != 409) d->failures++;
    if (!id && st == 409) { /* exists: its id is the subject of its token */
        tok = login(d, u->email, u->password);
        if (tok)
            id = token_subject(tok);
        else
            what = "exists (another password)";
    }
    if (id && strcmp(u->role, "USER") != 0) {
        cJSON *rb = cJSON_CreateObject();
        char path[200];
        cJSON_AddStringToObject(rb, "role", u->role);
        snprintf(path, sizeof path, "/auth/users/%s/role", id);
        if (call(d, d->auth, "PATCH", path, admin_token, rb, NULL) != 200) d->failures++;
        cJSON_Delete(rb);
    }
    printf("  %-8s %-22s password %-18s %s\n", u->role, u->email, u->password, what);
    cJSON_Delete(b);
    cJSON_Delete(ans);
    free(id);
    free(tok);
}

static void seed_catalog(demo_t *d, const char *token, const demo_catalog_t *c)
{
    char date[SK_RFC3339_LEN];
    /* The day c->days_ahead from today, at c->hour:00 UTC. */
    int64_t day_ms = 86400000LL;
    int64_t when = (sk_wall_ms() / day_ms + c->days_ahead) * day_ms + (int64_t)c->hour * 3600000LL;
    sk_rfc3339_ms(when, date);
    cJSON *b = cJSON_CreateObject(), *ans = NULL;
    cJSON_AddStringToObject(b, "title", c->title);
    cJSON_AddStringToObject(b, "description", c->description);
    cJSON_AddNumberToObject(b, "price", c->price);
    cJSON_AddStringToObject(b, "currency", c->currency);
    cJSON_AddStringToObject(b, "dateOfEvent", date);
    cJSON_AddNumberToObject(b, "numberOfTickets", c->tickets);
    int st = call(d, d->catalog, "POST", "/catalogs", token, b, &ans);
    const cJSON *id = ans ? cJSON_GetObjectItemCaseSensitive(ans, "catalogId") : NULL;
    if (st != 201 && st != 200 && st != 409) d->failures++;
    printf("  %-30s %2d tickets  %d.%02d %s  %.10s  %s%s%s\n", c->title, c->tickets, c->price / 100,
           c->price % 100, c->currency, date,
           st == 201 || st == 200 ? "created"
           : st == 409            ? "exists"
                                  : "FAILED",
           cJSON_IsString(id) ? " " : "", cJSON_IsString(id) ? id->valuestring : "");
    cJSON_Delete(b);
    cJSON_Delete(ans);
}

/* The URL of a process named in <data-dir>/souk.state ("" if absent). */
static void state_url(const char *data_dir, const char *name, char *out, size_t outsz)
{
    sup_state_entry_t *e = NULL;
    sk_buf_t p = SK_BUF_INIT;
    out[0] = '\0';
    sk_buf_init(&p, 0);
    sk_buf_addf(&p, "%s/souk.state", data_dir);
    int n = sup_state_read(p.data, &e, NULL);
    for (int i = 0; i < n; i++)
        if (!strcmp(e[i].name, name)) snprintf(out, outsz, "http://%s", e[i].addr);
    free(e);
    sk_buf_release(&p);
}

int cmd_demo(int argc, char **argv)
{
    demo_cfg_t cfg;
    char err[512], email[256], password[256], gw[400], auth[400], catalog[400];
    int rc = 1, created = 0;
    char *admin = NULL;
    demo_t d;
    memset(&cfg, 0, sizeof cfg);
    memset(&d, 0, sizeof d);
    switch (sk_conf_load(&demo_prog, demo_conf, &cfg, argc, argv, NULL, NULL, err, sizeof err)) {
    case SK_CONF_EXIT:
        rc = 0;
        goto out;
    case SK_CONF_ERROR:
        fprintf(stderr, "souk demo: %s\n", err);
        rc = 2;
        goto out;
    }
    if (*cfg.admin_email) {
        snprintf(email, sizeof email, "%s", cfg.admin_email);
        snprintf(password, sizeof password, "%s", cfg.admin_password);
    } else if (up_admin_credentials(cfg.data_dir, 0, email, sizeof email, password, sizeof password,
                                    &created, err, sizeof err) < 0) {
        fprintf(stderr,
                "souk demo: %s (give --data-dir of souk up, or "
                "--demo-admin-email/--demo-admin-password)\n",
                err);
        goto out;
    }
    /* Addresses: flags, else the gateway (flag or state file), else the
     * services from the state file, else the default gateway. */
    snprintf(gw, sizeof gw, "%s", cfg.gateway);
    if (!*gw) state_url(cfg.data_dir, "gateway", gw, sizeof gw);
    snprintf(auth, sizeof auth, "%s", cfg.auth_url);
    snprintf(catalog, sizeof catalog, "%s", cfg.catalog_url);
    if (!*auth) snprintf(auth, sizeof auth, "%s", gw);
    if (!*catalog) snprintf(catalog, sizeof catalog, "%s", gw);
    if (!*auth) state_url(cfg.data_dir, "auth", auth, sizeof auth);
    if (!*catalog) state_url(cfg.data_dir, "catalog", catalog, sizeof catalog);
    if (!*auth) snprintf(auth, sizeof auth, "http://127.0.0.1:8082");
    if (!*catalog) snprintf(catalog, sizeof catalog, "http://127.0.0.1:8082");
    d.auth = auth;
    d.catalog = catalog;
    d.timeout_ms = (int)cfg.timeout_ms;

    admin = login(&d, email, password);
    if (!admin) {
        fprintf(stderr, "souk demo: cannot sign in as %s at %s\n", email, auth);
        goto out;
    }
    printf("Users (sign in with these):\n");
    for (size_t i = 0; i < NUSERS; i++)
        seed_user(&d, admin, &demo_users[i]);
    printf("Catalogs (by %s):\n", email);
    for (size_t i = 0; i < NCATALOGS; i++)
        seed_catalog(&d, admin, &demo_catalogs[i]);
    if (d.failures) fprintf(stderr, "souk demo: %d step(s) failed\n", d.failures);
    rc = d.failures ? 1 : 0;
out:
    free(admin);
    sk_conf_release(demo_conf, &cfg);
    return rc;
}
