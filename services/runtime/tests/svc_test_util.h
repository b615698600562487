/*
 * svc_test_util.h - what the runtime's tests share: an HTTP/1.1 client over
 * a blocking socket, a service running svc_run() on its own thread, and
 * ES256 keys and tokens made with OpenSSL and libjwt.
 */
#ifndef SVC_TEST_UTIL_H
#define SVC_TEST_UTIL_H

#include <jwt.h>
#include <pthread.h>
#include <stddef.h>

#include "svc.h"

typedef struct http_resp_s {
    int status;
    size_t nheaders;
    char *names[64], *values[64]; /* owned */
    char *body;                   /* owned, NUL-terminated */
    size_t body_len;
    cJSON *json; /* parsed body when it is JSON, else NULL */
} http_resp_t;

/* Sends raw bytes to addr ("127.0.0.1:port") and reads the answer until the
 * server closes.  Returns 0, or -1 if the connection or the answer failed. */
int http_raw(const char *addr, const char *req, size_t len, http_resp_t *resp);
/* One request with Connection: close.  headers: extra "Name: value\r\n"
 * lines or NULL; body may be NULL. */
int http_do(const char *addr, const char *method, const char *path, const char *headers,
            const char *body, size_t body_len, http_resp_t *resp);
/* Case-insensitive header lookup (NULL if absent). */
const char *http_header(const http_resp_t *r, const char *name);
void http_resp_free(http_resp_t *r);
/* A connection to addr (blocking socket), or -1. */
int http_connect(const char *addr);
/* Reads and parses one answer from fd until EOF. */
int http_read_resp(int fd, http_resp_t *resp);

typedef struct test_server_s {
    svc_t *svc;
    pthread_t thread;
    int run_rc;
    char dir[256]; /* temporary --data-dir */
    char addr[80];
} test_server_t;

/* svc_new() with --http 127.0.0.1:0 --data-dir <fresh temp dir>
 * --log-level warn and args (NULL-terminated, may be NULL), then svc_run()
 * on a thread.  SIGTERM/SIGINT are blocked in the calling thread so that
 * they reach the loop (tests start one server at a time).  Fails the test on error. */
void test_server_start(test_server_t *ts, const svc_desc_t *desc, const char *const *args);
/* kill(getpid(), SIGTERM), join; returns svc_run()'s result.  svc_free()s. */
int test_server_stop(test_server_t *ts);
/* The same without the signal: waits for svc_run() to return. */
int test_server_join(test_server_t *ts);

/* mkdtemp under $TMPDIR (or /tmp); the path in out. */
void test_tmpdir(char *out, size_t outsz);
/* Writes text to path. */
void test_write_file(const char *path, const char *text);

/* A fresh EC key pair as PEM strings (free both). */
void test_ec_keys(const char *curve, char **priv_pem, char **pub_pem);
/* A signed token: alg with key (private PEM for ES*, secret for HS*, NULL for
 * none); claims as a JSON object text.  Free with free(). */
char *test_jwt(jwt_alg_t alg, const char *key, const char *claims_json);
/* A claims object text for sub/role with iss souk-auth and exp now+ttl. */
char *test_claims(const char *sub, const char *role, long ttl_s);

#endif
