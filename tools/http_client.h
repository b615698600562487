/*
 * http_client.h - a small blocking HTTP/1.0 client for the command line
 * (souk status, souk demo).  One request per connection ("Connection:
 * close"), the answer read until the server closes.  Not for use inside an
 * event loop: every call blocks for at most timeout_ms.
 */
#ifndef SOUK_HTTP_CLIENT_H
#define SOUK_HTTP_CLIENT_H

#include "sk_buf.h"

typedef struct hc_resp_s {
    int status;    /* 200, 404, ... */
    sk_buf_t body; /* the body, NUL-terminated; owned (hc_resp_release) */
} hc_resp_t;

/*
 * Splits "http://HOST:PORT[/prefix]" (the scheme may be left out; an IPv6
 * host is written [::1]) into host, port and a path prefix without the
 * trailing slash.  Returns 0, or -1 if url is not of that form.
 */
int hc_url_parse(const char *url, char *host, size_t hostsz, int *port, char *prefix,
                 size_t prefixsz);

/*
 * Sends METHOD base_url + path.  token (may be NULL) becomes a bearer
 * Authorization header; body (may be NULL) is sent as application/json.
 * Returns 0 with resp filled (any HTTP status, 4xx and 5xx included; the
 * caller releases resp), or -1 with a one-line reason in err when the
 * server could not be reached or answered something that is not HTTP
 * (resp is then empty and needs no release).
 */
int hc_request(const char *base_url, const char *method, const char *path, const char *token,
               const char *body, int timeout_ms, hc_resp_t *resp, char *err, size_t errsz);

void hc_resp_release(hc_resp_t *resp);

/* Connects to host:port over TCP within timeout_ms; returns 0 or -1. */
int hc_tcp_probe(const char *host, int port, int timeout_ms);

#endif
