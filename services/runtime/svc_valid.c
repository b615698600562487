/*
 * svc_valid.c - the query string, and collecting field errors into one 400.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sk_alloc.h"
#include "svc_internal.h"

/* ---- query string ------------------------------------------------------ */

void svc_query_release(svc_query_t *q)
{
    for (size_t i = 0; i < q->n; i++) {
        free(q->names[i]);
        free(q->values[i]);
    }
    free(q->names);
    free(q->values);
    memset(q, 0, sizeof *q);
}

int svc_query_parse(const char *qs, svc_query_t *q)
{
    memset(q, 0, sizeof *q);
    if (!qs || !*qs) return 0;
    size_t cap = 0;
    const char *p = qs;
    for (;;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > 0) {
            const char *eq = memchr(p, '=', n);
            size_t kn = eq ? (size_t)(eq - p) : n;
            size_t vn = eq ? n - kn - 1 : 0;
            char *k = sk_strndup(p, kn), *v = sk_strndup(eq ? eq + 1 : "", vn);
            if (svc_pct_decode(k, &kn, 1) < 0 || svc_pct_decode(v, &vn, 1) < 0) {
                free(k);
                free(v);
                svc_query_release(q);
                return -1;
            }
            if (q->n == cap) {
                cap = cap ? cap * 2 : 8;
                q->names = sk_realloc(q->names, cap * sizeof *q->names);
                q->values = sk_realloc(q->values, cap * sizeof *q->values);
            }
            q->names[q->n] = k;
            q->values[q->n] = v;
            q->n++;
        }
        if (!amp) break;
        p = amp + 1;
    }
    return 0;
}

const char *svc_query(const svc_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->query.n; i++)
        if (strcmp(req->query.names[i], name) == 0) return req->query.values[i];
    return NULL;
}

size_t svc_query_count(const svc_req_t *req)
{
    return req->query.n;
}

void svc_query_at(const svc_req_t *req, size_t i, const char **name, const char **value)
{
    *name = i < req->query.n ? req->query.names[i] : NULL;
    *value = i < req->query.n ? req->query.values[i] : NULL;
}

/* Strict decimal int64: optional '-', digits, nothing else. */
static int parse_i64(const char *s, int64_t *out)
{
    if (!*s || (s[0] != '-' && (s[0] < '0' || s[0] > '9'))) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

int svc_query_int(svc_req_t *req, const char *name, int64_t def, int64_t min, int64_t max,
                  int64_t *out)
{
    const char *s = svc_query(req, name);
    int64_t v;
    *out = def;
    if (!s || !*s) return 0;
    if (parse_i64(s, &v) < 0 || v < min || v > max) {
        svc_req_field_error(req, name, "must be an integer between %lld and %lld", (long long)min,
                            (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int svc_query_enum(svc_req_t *req, const char *name, const char *const *values, int def)
{
    const char *s = svc_query(req, name);
    if (!s || !*s) return def;
    for (int i = 0; values[i]; i++)
        if (strcmp(values[i], s) == 0) return i;
    sk_buf_t b = SK_BUF_INIT;
    sk_buf_init(&b, 64);
    for (int i = 0; values[i]; i++)
        sk_buf_addf(&b, "%s%s", i ? ", " : "", values[i]);
    svc_req_field_error(req, name, "must be one of: %s", b.data);
    sk_buf_release(&b);
    return -1;
}

void svc_query_page(svc_req_t *req, const char *const *fields, int def_field, int def_desc,
                    svc_page_t *out)
{
    svc_query_int(req, "page", 0, 0, 1000000, &out->page);
    svc_query_int(req, "size", 20, 1, 100, &out->size);
    out->sort = def_field;
    out->desc = def_desc;
    const char *s = svc_query(req, "sort");
    if (!s || !*s) return;
    const char *comma = strchr(s, ',');
    size_t flen = comma ? (size_t)(comma - s) : strlen(s);
    int found = -1;
    for (int i = 0; fields[i]; i++)
        if (strlen(fields[i]) == flen && strncmp(fields[i], s, flen) == 0) found = i;
    const char *dir = comma ? comma + 1 : "asc";
    if (found < 0 || (strcasecmp(dir, "asc") != 0 && strcasecmp(dir, "desc") != 0)) {
        sk_buf_t b = SK_BUF_INIT;
        sk_buf_init(&b, 64);
        for (int i = 0; fields[i]; i++)
            sk_buf_addf(&b, "%s%s", i ? ", " : "", fields[i]);
        svc_req_field_error(req, "sort", "must be <field>[,asc|desc] with field one of: %s",
                            b.data);
        sk_buf_release(&b);
        return;
    }
    out->sort = found;
    out->desc = strcasecmp(dir, "desc") == 0;
}

cJSON *svc_page_json(cJSON *content, const svc_page_t *p, int64_t total)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "content", content);
    cJSON_AddNumberToObject(o, "page", (double)p->page);
    cJSON_AddNumberToObject(o, "size", (double)p->size);
    cJSON_AddNumberToObject(o, "totalElements", (double)total);
    cJSON_AddNumberToObject(o, "totalPages", (double)((total + p->size - 1) / p->size));
    return o;
}

/* ---- field errors -------------------------------------------------------- */

void svc_req_field_error(svc_req_t *req, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!req->errors) req->errors = cJSON_CreateArray();
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "field", field ? field : "");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddItemToArray(req->errors, e);
}

int svc_req_has_errors(const svc_req_t *req)
{
    return req->errors && cJSON_GetArraySize(req->errors) > 0;
}

const cJSON *svc_req_body_object(svc_req_t *req)
{
    if (req->body && cJSON_IsObject(req->body)) return req->body;
    svc_req_field_error(req, "body",
                        req->body ? "must be a JSON object" : "a JSON object is required");
    return NULL;
}

/* The member, or NULL when absent or JSON null. */
static const cJSON *member(const cJSON *obj, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

const char *svc_json_str(svc_req_t *req, const cJSON *obj, const char *field, int required,
                         size_t min_chars, size_t max_chars)
{
    if (!obj) return NULL;
    const cJSON *v = member(obj, field);
    if (!v) {
        if (required) svc_req_field_error(req, field, "is required");
        return NULL;
    }
    if (!cJSON_IsString(v) || !v->valuestring) {
        svc_req_field_error(req, field, "must be a string");
        return NULL;
    }
    size_t n = utf8_chars(v->valuestring);
    if (n < min_chars || n > max_chars) {
        if (min_chars == max_chars)
            svc_req_field_error(req, field, "must be %zu characters long", min_chars);
        else if (max_chars == (size_t)-1)
            svc_req_field_error(req, field, "must be at least %zu characters long", min_chars);
        else if (min_chars == 0)
            svc_req_field_error(req, field, "must be at most %zu characters long", max_chars);
        else
            svc_req_field_error(req, field, "must be %zu to %zu characters long", min_chars,
                                max_chars);
        return NULL;
    }
    return v->valuestring;
}

int svc_json_int(svc_req_t *req, const cJSON *obj, const char *field, int required, int64_t min,
                 int64_t max, int64_t *out)
{
    if (!obj) return required ? -1 : 0;
    const cJSON *v = member(obj, field);
    if (!v) {
        if (!required) return 0;
        svc_req_field_error(req, field, "is required");
        return -1;
    }
    double d = v->valuedouble;
    const double lim = 9007199254740992.0; /* 2^53: exact in a double */
    if (!cJSON_IsNumber(v) || d != floor(d) || d > lim || d < -lim || (int64_t)d < min ||
        (int64_t)d > max) {
        svc_req_field_error(req, field, "must be an integer between %lld and %lld", (long long)min,
                            (long long)max);
        return -1;
    }
    *out = (int64_t)d;
    return 1;
}

int svc_json_bool(svc_req_t *req, const cJSON *obj, const char *field, int required, int *out)
{
    if (!obj) return required ? -1 : 0;
    const cJSON *v = member(obj, field);
    if (!v) {
        if (!required) return 0;
        svc_req_field_error(req, field, "is required");
        return -1;
    }
    if (!cJSON_IsBool(v)) {
        svc_req_field_error(req, field, "must be true or false");
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 1;
}
