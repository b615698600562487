/*
 * gw_static.c - the web UI: GET/HEAD of the files under --web-dir.
 *
 * gw_static_path() (gw_rules.c) turns the request path into a relative
 * file name or refuses it (.., encoded slashes, dotfiles); here the result
 * is resolved with realpath() and must still lie under the web dir's own
 * realpath (a symbolic link must not lead out).  A directory serves its
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
#include <sys/stat.h>
#include <unistd.h>

#include <event2/http.h>

#include "gw_int.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_log.h"

#define GW_STATIC_MAX_BYTES (32LL << 20)

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
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > GW_STATIC_MAX_BYTES) goto out;
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

void gw_static_serve(gw_t *gw, svc_req_t *req)
{
    char rel[1024];
    char root[PATH_MAX], real[PATH_MAX];
    char *data = NULL;
    size_t len = 0;
    sk_buf_t path;
    sk_buf_init(&path, 256);

    enum evhttp_cmd_type cmd = evhttp_request_get_command(svc_req_evhttp(req));
    int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

    if (gw_static_path(svc_req_path(req), rel, sizeof rel) < 0) {
        sk_debug("gateway", "refused web path %s", svc_req_path(req));
        not_found(req);
        goto out;
    }
    if (!realpath(gw->conf->web_dir, root)) {
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
            svc_reply_problem(req, 405, NULL, "the web UI's files are read-only");
        goto out;
    }
    svc_req_set_header(req, "Cache-Control", "public, max-age=60");
    svc_req_set_header(req, "X-Content-Type-Options", "nosniff");
    svc_reply_raw(req, 200, gw_content_type(real), data, len);
out:
    free(data);
    sk_buf_release(&path);
}
