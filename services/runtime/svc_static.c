/*
 * svc_static.c - static files (the gateway's web UI, analytics' dashboard):
 * GET/HEAD of the files under a directory.
 *
 * svc_static_path() turns the request path into a relative file name or
 * refuses it (.., encoded slashes, dotfiles); svc_static_serve() resolves
 * the result with realpath(), which must still lie under the directory's
 * own realpath (a symbolic link must not lead out).  A directory serves its
 * index.html; there is no listing.  Anything missing or refused is a 404
 * problem+json, so a probe learns nothing about the file system.
 *
 * The files are small and local: they are read whole, on the loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/http.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_log.h"
#include "svc.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int svc_static_path(const char *raw, char *out, size_t outsz)
{
    if (!raw || raw[0] != '/' || outsz < 2) return -1;
    size_t o = 0;   /* bytes written to out */
    size_t seg = 0; /* where the current segment starts in out */
    int dir = 1;    /* the path ends with '/' (or is "/") */
    for (const char *p = raw + 1;; p++) {
        char c = *p;
        if (c == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0) return -1;
            c = (char)(hi * 16 + lo);
            p += 2;
            /* an encoded separator or NUL is never part of a file name */
            if (c == '/' || c == '\\' || c == '\0') return -1;
        } else if (c == '/' || c == '\0') {
            /* end of a segment */
            if (o > seg) {
                if (out[seg] == '.') return -1; /* ".", "..", dotfiles */
                dir = 0;
                if (c == '/') {
                    if (o + 1 >= outsz) return -1;
                    out[o++] = '/';
                    seg = o;
                    dir = 1;
                }
            } else if (c == '\0' && o > 0) {
                dir = 1; /* "a/" or "a//": out ends with '/' */
            }
            if (c == '\0') break;
            continue;
        }
        if ((unsigned char)c < 0x20 || c == 0x7f || c == '\\') return -1;
        if (o + 1 >= outsz) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    if (dir) {
        static const char idx[] = "index.html";
        if (o + sizeof idx > outsz) return -1;
        memcpy(out + o, idx, sizeof idx);
    }
    return 0;
}

const char *svc_content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"webmanifest", "application/manifest+json"},
        {"txt", "text/plain; charset=utf-8"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"woff2", "font/woff2"},
        {"woff", "font/woff"},
    };
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot && dot[1])
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

#define STATIC_MAX_BYTES (32LL << 20)

static void not_found(svc_req_t *req)
{
    svc_reply_problem(req, 404, NULL, "no resource at %s", svc_req_path(req));
}

/* 1 when path is root itself or inside it. */
static int under(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (strncmp(path, root, n) != 0) return 0;
    if (n == 1 && root[0] == '/') return 1;
    return path[n] == '\0' || path[n] == '/';
}

/* Reads the whole regular file at path (opened without following a final
 * symbolic link: realpath already resolved them).  Returns 0 with *data
 * (caller frees) or -1. */
static int read_file(const char *path, char **data, size_t *len)
{
    int rc = -1;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) goto out;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX_BYTES) goto out;
    size_t size = (size_t)st.st_size, got = 0;
    buf = sk_malloc(size + 1);
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    *data = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (fd >= 0) close(fd);
    return rc;
}

void svc_static_serve(svc_req_t *req, const char *root_dir, const char *raw_path)
{
    char rel[1024];
    char root[PATH_MAX], real[PATH_MAX];
    char *data = NULL;
    size_t len = 0;
    sk_buf_t path;
    sk_buf_init(&path, 256);

    enum evhttp_cmd_type cmd = evhttp_request_get_command(svc_req_evhttp(req));
    int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

    if (svc_static_path(raw_path, rel, sizeof rel) < 0) {
        sk_debug("http", "refused static path %s", raw_path);
        not_found(req);
        goto out;
    }
    if (!realpath(root_dir, root)) {
        not_found(req); /* no web UI installed */
        goto out;
    }
    sk_buf_addf(&path, "%s/%s", root, rel);
    if (!realpath(path.data, real) || !under(root, real)) {
        not_found(req);
        goto out;
    }
    struct stat st;
    if (stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* "/app" names a directory: its index.html */
        sk_buf_reset(&path);
        sk_buf_addf(&path, "%s/index.html", real);
        if (!realpath(path.data, real) || !under(root, real)) {
            not_found(req);
            goto out;
        }
    }
    if (read_file(real, &data, &len) < 0) {
        not_found(req);
        goto out;
    }
    if (!get) {
        svc_req_set_header(req, "Allow", "GET, HEAD, OPTIONS");
        if (cmd == EVHTTP_REQ_OPTIONS)
            svc_reply_raw(req, 204, NULL, NULL, 0);
        else
            svc_reply_problem(req, 405, NULL, "these files are read-only");
        goto out;
    }
    svc_req_set_header(req, "Cache-Control", "public, max-age=60");
    svc_req_set_header(req, "X-Content-Type-Options", "nosniff");
    svc_reply_raw(req, 200, svc_content_type(real), data, len);
out:
    free(data);
    sk_buf_release(&path);
}
