#include "svc_test_util.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sk_buf.h"
#include "sk_fs.h"
#include "sk_net.h"

int http_connect(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (sk_net_parse_listen(addr, &ss, &len) < 0) return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0}; /* no test waits this long for an answer */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int http_read_resp(int fd, http_resp_t *resp)
{
    memset(resp, 0, sizeof *resp);
    sk_buf_t b;
    sk_buf_init(&b, 4096);
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            /* A reset after the whole answer arrived (the server closed with
             * unread request bytes) still leaves a usable answer. */
            if (errno == ECONNRESET && b.len) break;
            sk_buf_release(&b);
            return -1;
        }
        if (n == 0) break;
        sk_buf_add(&b, chunk, (size_t)n);
    }
    char *hend = strstr(b.data, "\r\n\r\n");
    if (!hend || sscanf(b.data, "HTTP/1.%*d %d", &resp->status) != 1) {
        sk_buf_release(&b);
        return -1;
    }
    *hend = '\0';
    char *line = strstr(b.data, "\r\n");
    while (line && line < hend && resp->nheaders < 64) {
        line += 2;
        char *next = strstr(line, "\r\n");
        if (next) *next = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            resp->names[resp->nheaders] = strdup(line);
            resp->values[resp->nheaders] = strdup(v);
            resp->nheaders++;
        }
        line = next;
    }
    char *body = hend + 4;
    resp->body_len = b.len - (size_t)(body - b.data);
    resp->body = malloc(resp->body_len + 1);
    memcpy(resp->body, body, resp->body_len);
    resp->body[resp->body_len] = '\0';
    const char *ct = http_header(resp, "Content-Type");
    if (ct && strstr(ct, "json")) resp->json = cJSON_Parse(resp->body);
    sk_buf_release(&b);
    return 0;
}

int http_raw(const char *addr, const char *req, size_t len, http_resp_t *resp)
{
    int fd = http_connect(addr);
    if (fd < 0) return -1;
    int rc = write_all(fd, req, len);
    if (rc == 0) rc = http_read_resp(fd, resp);
    close(fd);
    return rc;
}

int http_do(const char *addr, const char *method, const char *path, const char *headers,
            const char *body, size_t body_len, http_resp_t *resp)
{
    sk_buf_t b;
    sk_buf_init(&b, 256 + body_len);
    sk_buf_addf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s", method, path, addr,
                headers ? headers : "");
    if (body) sk_buf_addf(&b, "Content-Length: %zu\r\n", body_len);
    sk_buf_adds(&b, "\r\n");
    if (body) sk_buf_add(&b, body, body_len);
    int rc = http_raw(addr, b.data, b.len, resp);
    sk_buf_release(&b);
    return rc;
}

const char *http_header(const http_resp_t *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->names[i], name) == 0) return r->values[i];
    return NULL;
}

void http_resp_free(http_resp_t *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

void test_tmpdir(char *out, size_t outsz)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, outsz, "%s/souk-svc-test-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(out));
}

void test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void *run_thread(void *arg)
{
    test_server_t *ts = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    ts->run_rc = svc_run(ts->svc);
    return NULL;
}

void test_server_start(test_server_t *ts, const svc_desc_t *desc, const char *const *args)
{
    memset(ts, 0, sizeof *ts);
    test_tmpdir(ts->dir, sizeof ts->dir);
    const char *argv[64];
    int argc = 0;
    argv[argc++] = "souk-test";
    argv[argc++] = "--http";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--data-dir";
    argv[argc++] = ts->dir;
    argv[argc++] = "--log-level";
    argv[argc++] = getenv("SVC_TEST_LOG") ? getenv("SVC_TEST_LOG") : "error";
    for (size_t i = 0; args && args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    char err[512] = "";
    int rc = svc_new(desc, argc, (char **)argv, &ts->svc, err, sizeof err);
    ck_assert_msg(rc == SVC_NEW_OK, "svc_new: %d %s", rc, err);
    snprintf(ts->addr, sizeof ts->addr, "%s", svc_http_address(ts->svc));
    /* The loop's thread takes the signals; this one blocks them. */
    ck_assert_int_eq(pthread_create(&ts->thread, NULL, run_thread, ts), 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int test_server_stop(test_server_t *ts)
{
    kill(getpid(), SIGTERM);
    return test_server_join(ts);
}

int test_server_join(test_server_t *ts)
{
    pthread_join(ts->thread, NULL);
    svc_free(ts->svc);
    ts->svc = NULL;
    if (sk_rm_rf(ts->dir) < 0) fprintf(stderr, "could not remove %s\n", ts->dir);
    return ts->run_rc;
}

static char *pem_of(EVP_PKEY *k, int private)
{
    BIO *b = BIO_new(BIO_s_mem());
    int ok = private ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                     : PEM_write_bio_PUBKEY(b, k);
    ck_assert_int_eq(ok, 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

void test_ec_keys(const char *curve, char **priv_pem, char **pub_pem)
{
    EVP_PKEY *k = EVP_EC_gen(curve);
    ck_assert_ptr_nonnull(k);
    *priv_pem = pem_of(k, 1);
    *pub_pem = pem_of(k, 0);
    EVP_PKEY_free(k);
}

char *test_jwt(jwt_alg_t alg, const char *key, const char *claims_json)
{
    jwt_t *j = NULL;
    ck_assert_int_eq(jwt_new(&j), 0);
    ck_assert_int_eq(jwt_add_grants_json(j, claims_json), 0);
    ck_assert_int_eq(jwt_set_alg(j, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0),
                     0);
    char *t = jwt_encode_str(j);
    ck_assert_ptr_nonnull(t);
    jwt_free(j);
    return t;
}

char *test_claims(const char *sub, const char *role, long ttl_s)
{
    char *out = NULL;
    long now = (long)time(NULL);
    int n =
        asprintf(&out,
                 "{\"sub\":\"%s\",\"role\":\"%s\",\"iss\":\"souk-auth\",\"iat\":%ld,\"exp\":%ld,"
                 "\"jti\":\"j-%s\"}",
                 sub, role, now, now + ttl_s, sub);
    ck_assert_int_gt(n, 0);
    return out;
}
