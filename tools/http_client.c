/*
 * http_client.c - blocking HTTP/1.0 over a socket, bounded by a deadline.
 */
#include "http_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sk_clock.h"
#include "sk_net.h"

#define HC_MAX_RESPONSE (16u << 20)

int hc_url_parse(const char *url, char *host, size_t hostsz, int *port, char *prefix,
                 size_t prefixsz)
{
    const char *p = url;
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://"))
        return -1;
    const char *slash = strchr(p, '/');
    size_t hplen = slash ? (size_t)(slash - p) : strlen(p);
    char hp[300];
    if (hplen == 0 || hplen >= sizeof hp) return -1;
    memcpy(hp, p, hplen);
    hp[hplen] = '\0';
    if (sk_net_split_hostport(hp, host, hostsz, port) < 0 || !*host || *port < 1) return -1;
    if (prefix && prefixsz) {
        const char *pre = slash ? slash : "";
        size_t pl = strlen(pre);
        while (pl > 0 && pre[pl - 1] == '/')
            pl--;
        if (pl >= prefixsz) return -1;
        memcpy(prefix, pre, pl);
        prefix[pl] = '\0';
    }
    return 0;
}

static int left_ms(int64_t deadline)
{
    int64_t l = deadline - sk_mono_ms();
    return l < 0 ? 0 : (int)l;
}

/* Waits for fd to be ready for events before the deadline; 0 or -1 (errno). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        int n = poll(&pfd, 1, left_ms(deadline));
        if (n > 0) return 0;
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR) return -1;
    }
}

/* Opens a TCP connection to host:port; returns the (non-blocking) fd or -1. */
static int connect_to(const char *host, int port, int64_t deadline, char *err, size_t errsz)
{
    struct addrinfo hints, *ai = NULL;
    char ps[16];
    int fd = -1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(ps, sizeof ps, "%d", port);
    int gai = getaddrinfo(host, ps, &hints, &ai);
    if (gai != 0) {
        sk_errf(err, errsz, "%s: %s", host, gai_strerror(gai));
        return -1;
    }
    int saved = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) break;
            errno = soerr ? soerr : errno;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        sk_errf(err, errsz, "%s:%d: %s", host, port, strerror(saved ? saved : ECONNREFUSED));
    return fd;
}

int hc_tcp_probe(const char *host, int port, int timeout_ms)
{
    int fd = connect_to(host, port, sk_mono_ms() + timeout_ms, NULL, 0);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

void hc_resp_release(hc_resp_t *resp)
{
    sk_buf_release(&resp->body);
    resp->status = 0;
}

int hc_request(const char *base_url, const char *method, const char *path, const char *token,
               const char *body, int timeout_ms, hc_resp_t *resp, char *err, size_t errsz)
{
    char host[256], prefix[256];
    int port, fd = -1, rc = -1;
    int64_t deadline = sk_mono_ms() + timeout_ms;
    sk_buf_t req = SK_BUF_INIT, in = SK_BUF_INIT;
    memset(resp, 0, sizeof *resp);
    if (hc_url_parse(base_url, host, sizeof host, &port, prefix, sizeof prefix) < 0) {
        sk_errf(err, errsz, "not an http://HOST:PORT address: %s", base_url);
        return -1;
    }
    sk_buf_init(&req, 512);
    sk_buf_init(&in, 4096);
    sk_buf_addf(
        &req,
        "%s %s%s HTTP/1.0\r\nHost: %s:%d\r\nConnection: close\r\nAccept: application/json\r\n",
        method, prefix, path, host, port);
    if (token) sk_buf_addf(&req, "Authorization: Bearer %s\r\n", token);
    if (body)
        sk_buf_addf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                    strlen(body));
    sk_buf_adds(&req, "\r\n");
    if (body) sk_buf_adds(&req, body);

    fd = connect_to(host, port, deadline, err, errsz);
    if (fd < 0) goto out;
    for (size_t off = 0; off < req.len;) {
        ssize_t n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) < 0) goto io_err;
        } else {
            goto io_err;
        }
    }
    for (;;) {
        sk_buf_grow(&in, 4096);
        ssize_t n = recv(fd, in.data + in.len, in.cap - in.len, 0);
        if (n > 0) {
            in.len += (size_t)n;
            in.data[in.len] = '\0';
            if (in.len > HC_MAX_RESPONSE) {
                sk_errf(err, errsz, "%s:%d: answer larger than %u bytes", host, port,
                        HC_MAX_RESPONSE);
                goto out;
            }
        } else if (n == 0) {
            break;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(fd, POLLIN, deadline) < 0) goto io_err;
        } else {
            goto io_err;
        }
    }
    /* "HTTP/1.x SSS reason\r\n" headers "\r\n\r\n" body */
    int status = 0;
    const char *eoh = strstr(in.data, "\r\n\r\n");
    if (in.len < 12 || strncmp(in.data, "HTTP/1.", 7) != 0 ||
        sscanf(in.data + 9, "%3d", &status) != 1 || status < 100 || !eoh) {
        sk_errf(err, errsz, "%s:%d: the answer is not HTTP", host, port);
        goto out;
    }
    resp->status = status;
    sk_buf_init(&resp->body, 0);
    sk_buf_add(&resp->body, eoh + 4, in.len - (size_t)(eoh + 4 - in.data));
    rc = 0;
    goto out;
io_err:
    sk_errf(err, errsz, "%s:%d: %s", host, port, strerror(errno));
out:
    if (fd >= 0) close(fd);
    sk_buf_release(&req);
    sk_buf_release(&in);
    return rc;
}
