/*
 * gw_rules.h - the gateway's pure rules: which upstream a path goes to,
 * which headers stop at the gateway, and which file a web UI path names.
 * No I/O, no libevent: unit-tested in tests/test_gw_rules.c.
 */
#ifndef GW_RULES_H
#define GW_RULES_H

#include <stddef.h>

/* One upstream service: the path prefix it owns, its name (metrics, logs,
 * problem details), its address setting and that setting's default. */
typedef struct gw_upstream_def_s {
    const char *prefix;   /* "/users": matches "/users" and "/users/...", not "/usersx" */
    const char *name;     /* "user" */
    const char *conf;     /* "user-url" (--user-url, SOUK_USER_URL) */
    const char *def_addr; /* "127.0.0.1:8080" */
} gw_upstream_def_t;

#define GW_NUPSTREAMS 7
extern const gw_upstream_def_t gw_upstream_defs[GW_NUPSTREAMS];

/* 1 when path (raw, without the query) is prefix or starts with prefix
 * followed by '/'; else 0. */
int gw_prefix_match(const char *path, const char *prefix);
/* The index into gw_upstream_defs of the upstream owning path, or -1. */
int gw_upstream_find(const char *path);

/*
 * Parses an upstream address: "HOST:PORT" or "[v6]:PORT", also accepted
 * with a leading "http://" and a trailing "/" (what a copied URL looks
 * like).  Port 1..65535, host non-empty.  Returns 0 (host, *port set) or -1.
 */
int gw_addr_parse(const char *s, char *host, size_t hostsz, int *port);

/*
 * 1 when a header must not be forwarded across the gateway in either
 * direction: the hop-by-hop headers of RFC 9110 7.6.1 (Connection,
 * Keep-Alive, Transfer-Encoding, TE, Trailer, Upgrade, Proxy-*) and any
 * header named in the message's Connection header (connection: its value,
 * may be NULL).  Case-insensitive.
 */
int gw_header_is_hop(const char *name, const char *connection);


#endif
