/*
 * souk check - asks souk-analytics whether the marketplace's invariants hold
 * (GET /analytics/consistency), prints every check and its violations, and
 * exits 0 when all hold, 1 when any is violated, 2 for a usage error or when
 * the check could not be made (analytics or auth unreachable, refused).
 *
 * The call needs an ADMIN token: --token, or --admin-credentials FILE (souk
 * up's <data-dir>/admin-credentials: "email=...\npassword=...\n") with which
 * it signs in at --auth-url first.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_conf.h"
#include "souk.h"

typedef struct check_cfg_s {
    char *analytics_url;
    char *token;
    char *admin_credentials;
    char *auth_url;
    int64_t timeout_ms;
    int json;
} check_cfg_t;

static const sk_conf_entry_t check_conf[] = {
    {"analytics-url", SK_CONF_STR, offsetof(check_cfg_t, analytics_url), "http://127.0.0.1:8083", 0, 0,
     "souk-analytics' URL (or the gateway's: it passes /analytics through)"},
    {"token", SK_CONF_STR, offsetof(check_cfg_t, token), "", 0, 0, "an ADMIN access token"},
    {"admin-credentials", SK_CONF_STR, offsetof(check_cfg_t, admin_credentials), "", 0, 0,
     "a file with email=... and password=... lines (souk up's <data-dir>/admin-credentials): "
     "sign in at --auth-url with them"},
    {"auth-url", SK_CONF_STR, offsetof(check_cfg_t, auth_url), "http://127.0.0.1:8081", 0, 0,
     "souk-auth's URL (or the gateway's), for --admin-credentials"},
    {"timeout-ms", SK_CONF_INT, offsetof(check_cfg_t, timeout_ms), "30000", 100, 600000,
     "how long each request may take"},
    {"json", SK_CONF_BOOL, offsetof(check_cfg_t, json), "false", 0, 0,
     "print the report as JSON instead of text"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sk_conf_prog_t check_prog = {
    "souk check",
    "Evaluates the marketplace's invariants over the events souk-analytics indexed\n"
    "(GET /analytics/consistency): exit 0 when all hold, 1 on any violation, 2 when\n"
    "the check could not be made.",
    NULL, 0};

/* Reads "email=..." and "password=..." lines.  Returns 0 or -1. */
static int read_credentials(const char *path, char *email, size_t esz, char *password, size_t psz)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f) return -1;
    *email = *password = '\0';
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        const char *v = NULL;
        char *dst = NULL;
        size_t dsz = 0;
        if (!strncmp(line, "email=", 6)) v = line + 6, dst = email, dsz = esz;
        else if (!strncmp(line, "password=", 9)) v = line + 9, dst = password, dsz = psz;
        if (!v || strlen(v) >= dsz) continue;
        memcpy(dst, v, strlen(v) + 1);
    }
    fclose(f);
    return *email && *password ? 0 : -1;
}

/* Signs in; returns a new token the caller frees, or NULL (message printed). */
static char *sign_in(const check_cfg_t *cfg, const char *email, const char *password)
{
    char err[256];
    hc_resp_t r;
    char *token = NULL;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "email", email);
    cJSON_AddStringToObject(body, "password", password);
    char *json = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!json) return NULL;
    if (hc_request(cfg->auth_url, "POST", "/auth/login", NULL, json, (int)cfg->timeout_ms, &r, err, sizeof err) <
        0) {
        fprintf(stderr, "souk check: %s: %s\n", cfg->auth_url, err);
        free(json);
        return NULL;
    }
    free(json);
    cJSON *doc = r.status == 200 ? cJSON_Parse(r.body.data) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "accessToken");
    if (cJSON_IsString(t)) token = sk_strdup(t->valuestring);
    else fprintf(stderr, "souk check: signing in as %s at %s: HTTP %d\n", email, cfg->auth_url, r.status);
    cJSON_Delete(doc);
    hc_resp_release(&r);
    return token;
}

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Prints the report; returns 1 if every check is ok. */
static int print_report(const cJSON *doc)
{
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(doc, "checks"), *c;
    int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "ok"));
    printf("consistency at %s: %s\n", str_of(doc, "checkedAt"), ok ? "OK" : "VIOLATED");
    cJSON_ArrayForEach(c, checks)
    {
        int cok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "ok"));
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "violationCount");
        printf("  %-4s %-32s %s", cok ? "ok" : "FAIL", str_of(c, "name"), str_of(c, "description"));
        if (!cok && cJSON_IsNumber(n)) printf(" (%d violations)", (int)n->valuedouble);
        if (*str_of(c, "skipped")) printf(" [skipped: %s]", str_of(c, "skipped"));
        printf("\n");
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(c, "violations"))
        {
            printf("       %s: %s\n", *str_of(v, "correlationId") ? str_of(v, "correlationId") : "-",
                   str_of(v, "detail"));
        }
    }
    return ok;
}

int cmd_check(int argc, char **argv)
{
    check_cfg_t cfg;
    char err[512], email[256], password[256];
    char *token = NULL;
    hc_resp_t r;
    int rc = 2;
    memset(&cfg, 0, sizeof cfg);
    switch (sk_conf_load(&check_prog, check_conf, &cfg, argc, argv, NULL, NULL, err, sizeof err)) {
    case SK_CONF_EXIT: rc = 0; goto out;
    case SK_CONF_ERROR: fprintf(stderr, "souk check: %s\n", err); goto out;
    }
    if (*cfg.token) {
        token = sk_strdup(cfg.token);
    } else if (*cfg.admin_credentials) {
        if (read_credentials(cfg.admin_credentials, email, sizeof email, password, sizeof password) < 0) {
            fprintf(stderr, "souk check: %s: cannot read email= and password= from it\n", cfg.admin_credentials);
            goto out;
        }
        token = sign_in(&cfg, email, password);
        if (!token) goto out;
    } else {
        fprintf(stderr, "souk check: give --token or --admin-credentials FILE (see --help)\n");
        goto out;
    }
    if (!token) goto out;
    if (hc_request(cfg.analytics_url, "GET", "/analytics/consistency", token, NULL, (int)cfg.timeout_ms, &r, err,
                   sizeof err) < 0) {
        fprintf(stderr, "souk check: %s: %s\n", cfg.analytics_url, err);
        goto out;
    }
    cJSON *doc = r.status == 200 ? cJSON_Parse(r.body.data) : NULL;
    if (!doc || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "checks"))) {
        fprintf(stderr, "souk check: GET %s/analytics/consistency: HTTP %d %.200s\n", cfg.analytics_url, r.status,
                r.body.data);
        cJSON_Delete(doc);
        hc_resp_release(&r);
        goto out;
    }
    int ok;
    if (cfg.json) {
        ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "ok"));
        printf("%s\n", r.body.data);
    } else {
        ok = print_report(doc);
    }
    rc = ok ? 0 : 1;
    cJSON_Delete(doc);
    hc_resp_release(&r);
out:
    free(token);
    sk_conf_release(check_conf, &cfg);
    return rc;
}
