/*
 * svc_route.c - route patterns compiled to segments, and matching a request
 * path against them.
 *
 * A table is small (tens of routes), so matching is a linear scan that
 * compares each route's segments with the path's decoded segments: simple,
 * and it lets one scan compute both the best route for the method and the
 * set of methods any matching pattern allows (the 405's Allow header).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_alloc.h"
#include "svc_internal.h"

static const char *const method_names[SVC_METHOD_COUNT] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

const char *svc_method_name(svc_method_t m)
{
    return (unsigned)m < SVC_METHOD_COUNT ? method_names[m] : "?";
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int svc_pct_decode(char *s, size_t *len, int plus_space)
{
    size_t i = 0, o = 0, n = *len;
    while (i < n) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (char)(hi * 16 + lo);
            if (c == '\0') return -1;
            i += 3;
        } else {
            if (c == '\0') return -1;
            if (plus_space && c == '+') c = ' ';
            i++;
        }
        s[o++] = c;
    }
    s[o] = '\0';
    *len = o;
    return 0;
}

void svc_router_init(svc_router_t *rt)
{
    memset(rt, 0, sizeof *rt);
}

void svc_router_release(svc_router_t *rt)
{
    for (size_t i = 0; i < rt->n; i++)
        for (int j = 0; j < rt->routes[i].nseg; j++)
            free(rt->routes[i].seg[j].text);
    free(rt->routes);
    memset(rt, 0, sizeof *rt);
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Splits a pattern into segments; -1 with err when malformed. */
static int compile(const char *pat, svc_croute_t *cr, char *err, size_t errsz)
{
    if (!pat || pat[0] != '/') {
        snprintf(err, errsz, "route pattern '%s' must start with '/'", pat ? pat : "(null)");
        return -1;
    }
    const char *p = pat + 1;
    if (*p == '\0') return 0; /* "/" */
    for (;;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0) {
            snprintf(err, errsz, "route pattern '%s' has an empty segment or a trailing '/'", pat);
            return -1;
        }
        if (cr->nseg == SVC_MAX_SEGMENTS) {
            snprintf(err, errsz, "route pattern '%s' has more than %d segments", pat,
                     SVC_MAX_SEGMENTS);
            return -1;
        }
        svc_seg_t *s = &cr->seg[cr->nseg];
        if (p[0] == '{') {
            if (n < 3 || p[n - 1] != '}') {
                snprintf(err, errsz,
                         "route pattern '%s': a parameter must be a whole segment {name}", pat);
                return -1;
            }
            for (size_t i = 1; i + 1 < n; i++)
                if (!is_name_char(p[i])) {
                    snprintf(err, errsz, "route pattern '%s': parameter names are [A-Za-z0-9_]+",
                             pat);
                    return -1;
                }
            s->text = sk_strndup(p + 1, n - 2);
            s->is_param = 1;
            int np = 0;
            for (int i = 0; i < cr->nseg; i++) {
                if (!cr->seg[i].is_param) continue;
                np++;
                if (strcmp(cr->seg[i].text, s->text) == 0) {
                    snprintf(err, errsz, "route pattern '%s' names {%s} twice", pat, s->text);
                    cr->nseg++;
                    return -1;
                }
            }
            if (np + 1 > SVC_MAX_PARAMS) {
                snprintf(err, errsz, "route pattern '%s' has more than %d parameters", pat,
                         SVC_MAX_PARAMS);
                cr->nseg++;
                return -1;
            }
        } else {
            if (memchr(p, '{', n) || memchr(p, '}', n) || memchr(p, '%', n) || memchr(p, '?', n)) {
                snprintf(err, errsz,
                         "route pattern '%s': a literal segment may not hold { } %% or ?", pat);
                return -1;
            }
            s->text = sk_strndup(p, n);
            s->is_param = 0;
            cr->rank |= 1u << (SVC_MAX_SEGMENTS - 1 - cr->nseg);
        }
        cr->nseg++;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* Same shape: same segment count and literals at the same places, equal. */
static int same_shape(const svc_croute_t *a, const svc_croute_t *b)
{
    if (a->nseg != b->nseg) return 0;
    for (int i = 0; i < a->nseg; i++) {
        if (a->seg[i].is_param != b->seg[i].is_param) return 0;
        if (!a->seg[i].is_param && strcmp(a->seg[i].text, b->seg[i].text) != 0) return 0;
    }
    return 1;
}

int svc_router_add(svc_router_t *rt, const svc_route_t *r, char *err, size_t errsz)
{
    svc_croute_t cr;
    memset(&cr, 0, sizeof cr);
    cr.def = r;
    if ((unsigned)r->method >= SVC_METHOD_COUNT) {
        snprintf(err, errsz, "route '%s': unknown method %d", r->pattern ? r->pattern : "",
                 (int)r->method);
        return -1;
    }
    if (!r->handler) {
        snprintf(err, errsz, "route %s %s has no handler", svc_method_name(r->method), r->pattern);
        return -1;
    }
    if ((unsigned)r->access > SVC_OWNER) {
        snprintf(err, errsz, "route %s %s: unknown access %d", svc_method_name(r->method),
                 r->pattern, (int)r->access);
        return -1;
    }
    if (compile(r->pattern, &cr, err, errsz) < 0) goto fail;
    for (size_t i = 0; i < rt->n; i++) {
        if (rt->routes[i].def->method == r->method && same_shape(&rt->routes[i], &cr)) {
            snprintf(err, errsz, "routes %s %s and %s %s match the same paths",
                     svc_method_name(r->method), rt->routes[i].def->pattern,
                     svc_method_name(r->method), r->pattern);
            goto fail;
        }
    }
    if (rt->n == rt->cap) {
        rt->cap = rt->cap ? rt->cap * 2 : 16;
        rt->routes = sk_realloc(rt->routes, rt->cap * sizeof *rt->routes);
    }
    rt->routes[rt->n++] = cr;
    return 0;
fail:
    for (int j = 0; j < cr.nseg; j++)
        free(cr.seg[j].text);
    return -1;
}

void svc_match_release(svc_match_t *m)
{
    for (int i = 0; i < m->nparams; i++)
        free(m->values[i]);
    memset(m, 0, sizeof *m);
}

svc_match_rc_t svc_router_match(const svc_router_t *rt, int method, const char *path,
                                svc_match_t *m)
{
    memset(m, 0, sizeof *m);
    size_t plen = path ? strlen(path) : 0;
    if (plen == 0 || path[0] != '/' || plen > SVC_MAX_PATH) return SVC_MATCH_BAD_PATH;

    /* Split a copy into segments, decoding each in place. */
    char *copy = sk_memdup(path, plen + 1);
    char *segs[SVC_MAX_SEGMENTS];
    int nseg = 0;
    svc_match_rc_t rc = SVC_MATCH_NOT_FOUND;
    size_t end = plen;
    if (end > 1 && copy[end - 1] == '/') copy[--end] = '\0'; /* "/catalogs/" is "/catalogs" */
    if (end > 1) {
        char *p = copy + 1;
        for (;;) {
            char *slash = strchr(p, '/');
            if (slash) *slash = '\0';
            size_t n = strlen(p);
            if (nseg == SVC_MAX_SEGMENTS) goto out; /* deeper than any route */
            if (svc_pct_decode(p, &n, 0) < 0) {
                rc = SVC_MATCH_BAD_PATH;
                goto out;
            }
            segs[nseg++] = p;
            if (!slash) break;
            p = slash + 1;
        }
    }

    const svc_croute_t *best = NULL;
    for (size_t i = 0; i < rt->n; i++) {
        const svc_croute_t *cr = &rt->routes[i];
        if (cr->nseg != nseg) continue;
        int ok = 1;
        for (int j = 0; j < nseg && ok; j++) {
            if (cr->seg[j].is_param)
                ok = segs[j][0] != '\0';
            else
                ok = strcmp(cr->seg[j].text, segs[j]) == 0;
        }
        if (!ok) continue;
        m->allowed |= 1u << cr->def->method;
        if ((int)cr->def->method == method && (!best || cr->rank > best->rank)) best = cr;
    }
    if (!best) {
        rc = m->allowed ? SVC_MATCH_BAD_METHOD : SVC_MATCH_NOT_FOUND;
        goto out;
    }
    m->route = best;
    for (int j = 0; j < nseg; j++) {
        if (!best->seg[j].is_param) continue;
        m->names[m->nparams] = best->seg[j].text;
        m->values[m->nparams] = sk_strdup(segs[j]);
        m->nparams++;
    }
    rc = SVC_MATCH_OK;
out:
    free(copy);
    return rc;
}
