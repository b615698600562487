/*
 * gw_rules.c - prefix table, hop-by-hop headers, web path sanitizing.
 */
#include "gw_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The original system's ports (ARCHITECTURE.md). */
const gw_upstream_def_t gw_upstream_defs[GW_NUPSTREAMS] = {
    {"/auth", "auth", "auth-url", "127.0.0.1:8081"},
    {"/users", "user", "user-url", "127.0.0.1:8080"},
    {"/catalogs", "catalog", "catalog-url", "127.0.0.1:8085"},
    {"/bookings", "booking", "booking-url", "127.0.0.1:8084"},
    {"/payments", "payment", "payment-url", "127.0.0.1:8087"},
    {"/notifications", "notification", "notification-url", "127.0.0.1:8086"},
    {"/analytics", "analytics", "analytics-url", "127.0.0.1:8083"},
};

int gw_prefix_match(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (!path || strncmp(path, prefix, n) != 0) return 0;
    return path[n] == '\0' || path[n] == '/';
}

int gw_upstream_find(const char *path)
{
    for (int i = 0; i < GW_NUPSTREAMS; i++)
        if (gw_prefix_match(path, gw_upstream_defs[i].prefix)) return i;
    return -1;
}

int gw_addr_parse(const char *s, char *host, size_t hostsz, int *port)
{
    if (!s) return -1;
    if (strncasecmp(s, "http://", 7) == 0) s += 7;
    size_t len = strlen(s);
    if (len && s[len - 1] == '/') len--;
    if (len == 0 || len >= 300) return -1;
    char tmp[300];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (strchr(tmp, '/') || strchr(tmp, '@') || strchr(tmp, '?')) return -1;

    const char *colon;
    const char *h = tmp;
    size_t hlen;
    if (tmp[0] == '[') {
        const char *close = strchr(tmp, ']');
        if (!close || close[1] != ':') return -1;
        h = tmp + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(tmp, ':');
        if (!colon || memchr(tmp, ':', (size_t)(colon - tmp))) return -1; /* bare v6 */
        hlen = (size_t)(colon - tmp);
    }
    if (hlen == 0 || hlen >= hostsz) return -1;
    const char *p = colon + 1;
    if (!*p || strlen(p) > 5) return -1;
    int v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > 65535) return -1;
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)h[i] <= ' ' || h[i] == '[' || h[i] == ']') return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = v;
    return 0;
}

/* 1 when the comma-separated token list contains name (case-insensitive,
 * optional whitespace around tokens). */
static int token_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == n && strncasecmp(start, name, n) == 0) return 1;
    }
    return 0;
}

int gw_header_is_hop(const char *name, const char *connection)
{
    static const char *const hop[] = {"Connection", "Keep-Alive", "Transfer-Encoding", "TE",
                                      "Trailer",    "Upgrade",    "Proxy-Connection",  NULL};
    if (!name) return 1;
    for (size_t i = 0; hop[i]; i++)
        if (strcasecmp(name, hop[i]) == 0) return 1;
    if (strncasecmp(name, "Proxy-", 6) == 0) return 1;
    return connection ? token_listed(connection, name) : 0;
}
