#include "sk_conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sk_alloc.h"

void sk_conf_env_name(const char *name, char *out, size_t outsz)
{
    size_t n = (size_t)snprintf(out, outsz, "SOUK_");
    for (const char *p = name; *p && n + 1 < outsz; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

int sk_conf_parse_size(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno) return -1;
    int64_t mult = 1;
    if (*end) {
        switch (tolower((unsigned char)*end)) {
        case 'k': mult = 1024; break;
        case 'm': mult = 1024 * 1024; break;
        case 'g': mult = 1024LL * 1024 * 1024; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'b' || *end == 'B') end++;
        if (*end) return -1;
    }
    if (v > INT64_MAX / mult || v < INT64_MIN / mult) return -1;
    *out = (int64_t)v * mult;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

/* Sets one entry from text; `from` says where the text came from, for errors. */
static int set_value(const sk_conf_entry_t *e, void *cfg, const char *val, const char *from, char *err,
                     size_t errsz)
{
    char *field = (char *)cfg + e->offset;
    switch (e->type) {
    case SK_CONF_STR: {
        char **sp = (char **)field;
        free(*sp);
        *sp = sk_strdup(val ? val : "");
        return 0;
    }
    case SK_CONF_BOOL: {
        int b;
        if (!val || parse_bool(val, &b) < 0) {
            snprintf(err, errsz, "%s: --%s expects true or false, got '%s'", from, e->name, val ? val : "");
            return -1;
        }
        *(int *)field = b;
        return 0;
    }
    case SK_CONF_INT:
    case SK_CONF_SIZE: {
        int64_t v;
        char *end = NULL;
        int bad;
        if (!val) val = "";
        if (e->type == SK_CONF_SIZE) {
            bad = sk_conf_parse_size(val, &v) < 0;
        } else {
            errno = 0;
            v = strtoll(val, &end, 10);
            bad = end == val || *end || errno;
        }
        if (bad) {
            snprintf(err, errsz, "%s: --%s expects %s, got '%s'", from, e->name,
                     e->type == SK_CONF_SIZE ? "a size such as 64m" : "an integer", val);
            return -1;
        }
        if (v < e->min || v > e->max) {
            snprintf(err, errsz, "%s: --%s must be between %lld and %lld, got %lld", from, e->name,
                     (long long)e->min, (long long)e->max, (long long)v);
            return -1;
        }
        *(int64_t *)field = v;
        return 0;
    }
    }
    return -1;
}

static const sk_conf_entry_t *find(const sk_conf_entry_t *table, const char *name, size_t n)
{
    for (const sk_conf_entry_t *e = table; e->name; e++)
        if (strlen(e->name) == n && strncmp(e->name, name, n) == 0) return e;
    return NULL;
}

void sk_conf_print_help(const sk_conf_prog_t *prog, const sk_conf_entry_t *table, FILE *out)
{
    fprintf(out, "Usage: %s [options]%s%s\n\n%s\n\nOptions (each also read from its environment twin):\n",
            prog->name, prog->usage_args ? " " : "", prog->usage_args ? prog->usage_args : "",
            prog->summary);
    for (const sk_conf_entry_t *e = table; e->name; e++) {
        char env[128];
        sk_conf_env_name(e->name, env, sizeof env);
        const char *arg = e->type == SK_CONF_BOOL ? "[=BOOL]" : e->type == SK_CONF_STR ? " TEXT"
                          : e->type == SK_CONF_SIZE ? " SIZE" : " N";
        fprintf(out, "  --%s%s\n      %s\n      default: %s; env: %s", e->name, arg, e->help,
                e->def && *e->def ? e->def : "(empty)", env);
        if (e->type == SK_CONF_INT || e->type == SK_CONF_SIZE)
            fprintf(out, "; range: %lld..%lld", (long long)e->min, (long long)e->max);
        fputc('\n', out);
    }
    fprintf(out, "  --help\n      print this help and exit\n  --version\n      print the version and exit\n");
}

int sk_conf_load(const sk_conf_prog_t *prog, const sk_conf_entry_t *table, void *cfg, int argc,
                 char **argv, const char **positional, int *npositional, char *err, size_t errsz)
{
    char from[160];
    if (npositional) *npositional = 0;
    for (const sk_conf_entry_t *e = table; e->name; e++) {
        snprintf(from, sizeof from, "default of %s", e->name);
        if (set_value(e, cfg, e->def ? e->def : "", from, err, errsz) < 0) return SK_CONF_ERROR;
    }
    for (const sk_conf_entry_t *e = table; e->name; e++) {
        char env[128];
        sk_conf_env_name(e->name, env, sizeof env);
        const char *v = getenv(env);
        if (!v) continue;
        snprintf(from, sizeof from, "environment %s", env);
        if (set_value(e, cfg, v, from, err, errsz) < 0) return SK_CONF_ERROR;
    }
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (!positional || !npositional || *npositional >= prog->max_positional) {
                snprintf(err, errsz, "unexpected argument '%s' (see %s --help)", a, prog->name);
                return SK_CONF_ERROR;
            }
            positional[(*npositional)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            sk_conf_print_help(prog, table, stdout);
            return SK_CONF_EXIT;
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s %s\n", prog->name, SOUK_VERSION);
            return SK_CONF_EXIT;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const sk_conf_entry_t *e = find(table, name, nlen);
        const char *val = eq ? eq + 1 : NULL;
        snprintf(from, sizeof from, "command line");
        if (!e && !eq && nlen > 3 && strncmp(name, "no-", 3) == 0) {
            e = find(table, name + 3, nlen - 3);
            if (e && e->type == SK_CONF_BOOL) {
                *(int *)((char *)cfg + e->offset) = 0;
                continue;
            }
            e = NULL;
        }
        if (!e) {
            snprintf(err, errsz, "unknown option '%.*s' (see %s --help)", (int)(nlen + (size_t)(name - a)),
                     a, prog->name);
            return SK_CONF_ERROR;
        }
        if (!val && e->type == SK_CONF_BOOL) {
            int b;
            if (i + 1 < argc && parse_bool(argv[i + 1], &b) == 0) val = argv[++i];
            else val = "true";
        } else if (!val) {
            if (i + 1 >= argc) {
                snprintf(err, errsz, "option --%s needs a value (see %s --help)", e->name, prog->name);
                return SK_CONF_ERROR;
            }
            val = argv[++i];
        }
        if (set_value(e, cfg, val, from, err, errsz) < 0) return SK_CONF_ERROR;
    }
    return SK_CONF_OK;
}

void sk_conf_release(const sk_conf_entry_t *table, void *cfg)
{
    for (const sk_conf_entry_t *e = table; e->name; e++) {
        if (e->type != SK_CONF_STR) continue;
        char **sp = (char **)((char *)cfg + e->offset);
        free(*sp);
        *sp = NULL;
    }
}
