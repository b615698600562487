#include "aof.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resp.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_fs.h"
#include "sk_log.h"

#define AOF_NAME "kv.aof"
#define REWRITE_NAME "kv.aof.rewrite"
#define LOAD_CHUNK (1 << 20)
#define COPY_CHUNK (1 << 20)
#define REWRITE_BUF_MAX (1 << 20)

enum { RW_IDLE = 0, RW_SCAN, RW_COPY };

/* The everysec fsync runs here so that a slow disk never stalls the loop. */
typedef struct fsync_thread_s {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, stop;
    int job_fd;    /* -1: nothing to do */
    int busy;
    int last_errno; /* of the last background fdatasync */
} fsync_thread_t;

struct kv_aof_s {
    char *dir, *path, *rw_path;
    int fd;
    kv_fsync_t policy;
    int64_t written;   /* bytes in the file */
    int64_t synced_at; /* value of written at the last fsync request */
    int64_t base_size; /* after load or the last rewrite */
    int64_t min_rewrite;
    sk_buf_t buf; /* records not yet written */
    int write_ok;
    char last_error[128];
    int64_t last_error_log_ms;
    int64_t rewrites;
    int64_t rewrite_retry_ms; /* no automatic rewrite before this (after a failure) */
    /* rewrite */
    int rw_phase;
    int rw_fd;
    uint64_t rw_cursor;
    int64_t rw_copy_from; /* offset of the live file not yet copied */
    int64_t rw_written;
    sk_buf_t rw_buf;
    kv_store_t *rw_store;
    fsync_thread_t ft;
};

int kv_fsync_parse(const char *s)
{
    if (!strcmp(s, "no")) return KV_FSYNC_NO;
    if (!strcmp(s, "everysec")) return KV_FSYNC_EVERYSEC;
    if (!strcmp(s, "always")) return KV_FSYNC_ALWAYS;
    return -1;
}

const char *kv_fsync_name(kv_fsync_t f)
{
    switch (f) {
    case KV_FSYNC_NO: return "no";
    case KV_FSYNC_EVERYSEC: return "everysec";
    case KV_FSYNC_ALWAYS: return "always";
    }
    return "?";
}

/* ---- background fsync ------------------------------------------------------- */

static void *fsync_main(void *arg)
{
    fsync_thread_t *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->stop && t->job_fd < 0) pthread_cond_wait(&t->cv, &t->mu);
        if (t->job_fd < 0 && t->stop) break;
        int fd = t->job_fd;
        t->job_fd = -1;
        t->busy = 1;
        pthread_mutex_unlock(&t->mu);
        int rc = fdatasync(fd), e = errno;
        pthread_mutex_lock(&t->mu);
        t->busy = 0;
        t->last_errno = rc < 0 ? e : 0;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void fsync_thread_start(fsync_thread_t *t)
{
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->job_fd = -1;
    if (pthread_create(&t->tid, NULL, fsync_main, t) == 0) t->started = 1;
    else sk_warn("kv", "cannot start the fsync thread: everysec fsyncs will run on the event loop");
}

/* Asks for an fdatasync of fd unless one is still running.  Returns 1 if queued. */
static int fsync_thread_request(fsync_thread_t *t, int fd)
{
    if (!t->started) return fdatasync(fd) == 0 ? 1 : 0;
    int queued = 0;
    pthread_mutex_lock(&t->mu);
    if (!t->busy && t->job_fd < 0) {
        t->job_fd = fd;
        queued = 1;
        pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return queued;
}

/* Waits until no fsync is queued or running (before fd is closed). */
static int fsync_thread_drain(fsync_thread_t *t)
{
    if (!t->started) return 0;
    pthread_mutex_lock(&t->mu);
    while (t->busy || t->job_fd >= 0) pthread_cond_wait(&t->cv, &t->mu);
    int e = t->last_errno;
    t->last_errno = 0;
    pthread_mutex_unlock(&t->mu);
    return e;
}

static void fsync_thread_stop(fsync_thread_t *t)
{
    if (!t->started) return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->tid, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    t->started = 0;
}

/* ---- records ------------------------------------------------------------------- */

static void add_bulk(sk_buf_t *b, const void *p, size_t n)
{
    kv_reply_bulk(b, p, n); /* a RESP bulk string is the same on both sides */
}

static void add_set(sk_buf_t *b, const void *key, size_t klen, const void *val, size_t vlen, int64_t deadline)
{
    if (deadline >= 0) {
        sk_buf_add(b, "*5\r\n$3\r\nSET\r\n", 13);
    } else {
        sk_buf_add(b, "*3\r\n$3\r\nSET\r\n", 13);
    }
    add_bulk(b, key, klen);
    add_bulk(b, val, vlen);
    if (deadline >= 0) {
        sk_buf_add(b, "$4\r\nPXAT\r\n", 10);
        kv_reply_bulk_ll(b, deadline);
    }
}

void kv_aof_add_set(kv_aof_t *a, const void *key, size_t klen, const void *val, size_t vlen, int64_t deadline)
{
    add_set(&a->buf, key, klen, val, vlen, deadline);
}

void kv_aof_add_del(kv_aof_t *a, const void *key, size_t klen)
{
    sk_buf_add(&a->buf, "*2\r\n$3\r\nDEL\r\n", 13);
    add_bulk(&a->buf, key, klen);
}

void kv_aof_add_flushall(kv_aof_t *a)
{
    sk_buf_add(&a->buf, "*1\r\n$8\r\nFLUSHALL\r\n", 18);
}

/* ---- writing ------------------------------------------------------------------- */

static void write_failed(kv_aof_t *a, const char *what, int e)
{
    a->write_ok = 0;
    snprintf(a->last_error, sizeof a->last_error, "%s %s: %s", what, a->path, strerror(e));
    int64_t now = sk_mono_ms();
    if (now - a->last_error_log_ms >= 1000) { /* a full disk must not flood the log */
        sk_error("kv", "%s (write commands are refused until it succeeds)", a->last_error);
        a->last_error_log_ms = now;
    }
}

int kv_aof_flush(kv_aof_t *a)
{
    if (a->buf.len > 0) {
        if (sk_write_all(a->fd, a->buf.data, a->buf.len) < 0) {
            int e = errno;
            /* Leave no partial record behind: it would poison the next load. */
            if (ftruncate(a->fd, a->written) < 0) sk_error("kv", "truncating %s: %s", a->path, strerror(errno));
            write_failed(a, "write", e);
            return -1;
        }
        a->written += (int64_t)a->buf.len;
        sk_buf_reset(&a->buf);
        if (a->buf.cap > (4u << 20)) {
            sk_buf_release(&a->buf);
            sk_buf_init(&a->buf, 0);
        }
        if (a->policy != KV_FSYNC_ALWAYS) a->write_ok = 1;
    }
    if (a->policy == KV_FSYNC_ALWAYS && a->synced_at != a->written) {
        if (fdatasync(a->fd) < 0) {
            write_failed(a, "fdatasync", errno);
            return -1;
        }
        a->synced_at = a->written;
        a->write_ok = 1;
    }
    return 0;
}

int kv_aof_fsync(kv_aof_t *a)
{
    if (kv_aof_flush(a) < 0) return -1;
    fsync_thread_drain(&a->ft);
    if (fdatasync(a->fd) < 0) {
        write_failed(a, "fdatasync", errno);
        return -1;
    }
    a->synced_at = a->written;
    return 0;
}

void kv_aof_set_policy(kv_aof_t *a, kv_fsync_t policy)
{
    a->policy = policy;
}

kv_fsync_t kv_aof_policy(const kv_aof_t *a)
{
    return a->policy;
}

/* ---- rewrite ------------------------------------------------------------------- */

static void rewrite_abort(kv_aof_t *a, const char *why)
{
    if (a->rw_phase == RW_IDLE) return;
    if (why) sk_error("kv", "AOF rewrite abandoned: %s", why);
    if (a->rw_fd >= 0) close(a->rw_fd);
    unlink(a->rw_path);
    a->rw_fd = -1;
    a->rw_phase = RW_IDLE;
    sk_buf_release(&a->rw_buf);
    a->rewrite_retry_ms = sk_mono_ms() + 10000;
}

int kv_aof_rewrite_start(kv_aof_t *a, kv_store_t *st)
{
    if (a->rw_phase != RW_IDLE) return -1;
    if (kv_aof_flush(a) < 0) return -1;
    a->rw_fd = open(a->rw_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (a->rw_fd < 0) {
        sk_error("kv", "AOF rewrite: cannot create %s: %s", a->rw_path, strerror(errno));
        a->rewrite_retry_ms = sk_mono_ms() + 10000;
        return -1;
    }
    a->rw_phase = RW_SCAN;
    a->rw_cursor = 0;
    a->rw_copy_from = a->written;
    a->rw_written = 0;
    a->rw_store = st;
    sk_buf_init(&a->rw_buf, REWRITE_BUF_MAX + 4096);
    sk_info("kv", "AOF rewrite started: %zu keys, file %lld bytes", kv_store_count(st), (long long)a->written);
    return 0;
}

static void rewrite_visit(void *opaque, const kv_entry_t *e)
{
    kv_aof_t *a = opaque;
    add_set(&a->rw_buf, kv_entry_key(e), e->klen, kv_entry_val(e), e->vlen, kv_store_deadline(a->rw_store, e));
}

static int rw_write_buf(kv_aof_t *a)
{
    if (a->rw_buf.len == 0) return 0;
    int64_t from = a->rw_written;
    if (sk_write_all(a->rw_fd, a->rw_buf.data, a->rw_buf.len) < 0) return -1;
    a->rw_written += (int64_t)a->rw_buf.len;
    sk_buf_reset(&a->rw_buf);
    /* Start writeback now (without waiting for it), so that the fdatasync
     * that ends the rewrite, on the loop, has little left to do. */
    sync_file_range(a->rw_fd, from, a->rw_written - from, SYNC_FILE_RANGE_WRITE);
    return 0;
}

/* Copies up to max bytes of the live file's tail; returns bytes copied or -1. */
static ssize_t rw_copy(kv_aof_t *a, size_t max)
{
    size_t want = (size_t)(a->written - a->rw_copy_from);
    if (want > max) want = max;
    if (want == 0) return 0;
    sk_buf_grow(&a->rw_buf, want);
    ssize_t got = sk_pread_all(a->fd, a->rw_buf.data, want, a->rw_copy_from);
    if (got != (ssize_t)want) {
        errno = got < 0 ? errno : EIO;
        return -1;
    }
    a->rw_buf.len = want;
    if (rw_write_buf(a) < 0) return -1;
    a->rw_copy_from += (int64_t)want;
    return (ssize_t)want;
}

/* The tail is copied: make the new file durable and put it in place. */
static int rewrite_finish(kv_aof_t *a)
{
    if (kv_aof_flush(a) < 0) return -1;
    while (a->rw_copy_from < a->written)
        if (rw_copy(a, COPY_CHUNK) < 0) return -1;
    if (fdatasync(a->rw_fd) < 0) return -1;
    if (rename(a->rw_path, a->path) < 0) return -1;
    sk_fsync_dir(a->dir);
    fsync_thread_drain(&a->ft);
    close(a->fd);
    a->fd = a->rw_fd;
    a->rw_fd = -1;
    a->written = a->synced_at = a->base_size = a->rw_written;
    a->rw_phase = RW_IDLE;
    a->rewrites++;
    sk_buf_release(&a->rw_buf);
    if (lseek(a->fd, 0, SEEK_END) < 0) return -1;
    /* O_APPEND for the writes that follow, as the file was opened before. */
    int fl = fcntl(a->fd, F_GETFL);
    if (fl >= 0) fcntl(a->fd, F_SETFL, fl | O_APPEND);
    sk_info("kv", "AOF rewrite done: %lld bytes", (long long)a->written);
    return 0;
}

int kv_aof_rewrite_step(kv_aof_t *a, kv_store_t *st, int64_t budget_us)
{
    if (a->rw_phase == RW_IDLE) return 0;
    int64_t start = sk_mono_us();
    a->rw_store = st;
    if (a->rw_phase == RW_SCAN) {
        unsigned n = 0;
        do {
            a->rw_cursor = kv_store_scan(st, a->rw_cursor, rewrite_visit, a);
            if (a->rw_buf.len >= REWRITE_BUF_MAX && rw_write_buf(a) < 0) goto io_error;
            if (a->rw_cursor == 0) {
                if (rw_write_buf(a) < 0) goto io_error;
                a->rw_phase = RW_COPY;
                break;
            }
        } while ((++n & 63) || sk_mono_us() - start < budget_us);
    }
    if (a->rw_phase == RW_COPY) {
        while (a->rw_copy_from < a->written && sk_mono_us() - start < budget_us)
            if (rw_copy(a, COPY_CHUNK) < 0) goto io_error;
        /* Finish once the remaining tail is small: it is copied in one go. */
        if (a->written - a->rw_copy_from + (int64_t)a->buf.len < COPY_CHUNK && rewrite_finish(a) < 0) goto io_error;
    }
    return a->rw_phase != RW_IDLE;
io_error: {
    char why[200];
    snprintf(why, sizeof why, "%s: %s", a->rw_path, strerror(errno));
    rewrite_abort(a, why);
    return 0;
}
}

void kv_aof_tick(kv_aof_t *a, kv_store_t *st)
{
    if (a->policy == KV_FSYNC_EVERYSEC && a->synced_at != a->written) {
        if (fsync_thread_request(&a->ft, a->fd)) a->synced_at = a->written;
    }
    if (a->ft.started) {
        pthread_mutex_lock(&a->ft.mu);
        int e = a->ft.last_errno;
        a->ft.last_errno = 0;
        pthread_mutex_unlock(&a->ft.mu);
        if (e) write_failed(a, "fdatasync", e);
    }
    if (a->rw_phase != RW_IDLE || sk_mono_ms() < a->rewrite_retry_ms) return;
    /* The size a rewrite would produce: the data plus RESP framing. */
    int64_t live = (int64_t)kv_store_data_bytes(st) + 48 * (int64_t)kv_store_count(st);
    if (a->written > a->min_rewrite && a->written > 2 * live) {
        sk_info("kv", "AOF is %lld bytes for about %lld bytes of live data: rewriting", (long long)a->written,
                (long long)live);
        kv_aof_rewrite_start(a, st);
    }
}

void kv_aof_stats(const kv_aof_t *a, kv_aof_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->size = a->written + (int64_t)a->buf.len;
    out->base_size = a->base_size;
    out->rewriting = a->rw_phase != RW_IDLE;
    out->rewrites = a->rewrites;
    out->last_write_ok = a->write_ok;
    out->buffered = a->buf.len;
    snprintf(out->last_error, sizeof out->last_error, "%s", a->last_error);
}

/* ---- loading ------------------------------------------------------------------- */

static int apply(kv_store_t *st, const kv_parser_t *p)
{
    const kv_arg_t *v = p->argv;
    if (p->argc == 0) return 0;
    if (v[0].len == 3 && !memcmp(v[0].p, "SET", 3) && (p->argc == 3 || p->argc == 5)) {
        long long at = KV_NO_DEADLINE;
        if (p->argc == 5 && (v[3].len != 4 || memcmp(v[3].p, "PXAT", 4) || kv_parse_ll(v[4].p, v[4].len, &at) < 0 ||
                             at < 0))
            return -1;
        kv_store_set(st, v[1].p, v[1].len, v[2].p, v[2].len, at, NULL);
        return 0;
    }
    if (v[0].len == 3 && !memcmp(v[0].p, "DEL", 3) && p->argc >= 2) {
        for (size_t i = 1; i < p->argc; i++) kv_store_del(st, v[i].p, v[i].len);
        return 0;
    }
    if (v[0].len == 8 && !memcmp(v[0].p, "FLUSHALL", 8) && p->argc == 1) {
        kv_store_flush(st);
        return 0;
    }
    return -1;
}

/* True when the file holds only zero bytes from off to its end. */
static int tail_is_zero(int fd, int64_t off)
{
    char buf[65536];
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, off);
        if (n < 0) return 0;
        if (n == 0) return 1;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i]) return 0;
        off += n;
    }
}

static int load(kv_aof_t *a, kv_store_t *st, char *errstr, size_t errsz)
{
    kv_parser_t p;
    sk_buf_t in;
    int rc = -1, eof = 0;
    int64_t base = 0; /* file offset of in.data[0] */
    size_t off = 0;   /* parsed bytes of in */
    size_t records = 0;
    kv_parser_init(&p, NULL);
    sk_buf_init(&in, LOAD_CHUNK);
    for (;;) {
        kv_resp_result_t r = KV_RESP_AGAIN;
        if (off < in.len) {
            if (in.data[off] != '*') r = KV_RESP_ERROR;
            else r = kv_resp_parse(&p, in.data + off, in.len - off);
        }
        if (r == KV_RESP_OK) {
            if (apply(st, &p) < 0) {
                snprintf(errstr, errsz, "%s: unknown or malformed record at offset %lld", a->path,
                         (long long)(base + (int64_t)off));
                goto out;
            }
            off += p.consumed;
            records++;
            continue;
        }
        if (r == KV_RESP_ERROR) {
            int64_t at = base + (int64_t)off;
            if (!tail_is_zero(a->fd, at)) {
                snprintf(errstr, errsz, "%s: corrupt record at offset %lld (%s); refusing to start", a->path,
                         (long long)at, p.err[0] ? p.err : "not a RESP array");
                goto out;
            }
            sk_warn("kv", "%s: zero bytes from offset %lld to the end (a lost write): cut off", a->path,
                    (long long)at);
            if (ftruncate(a->fd, at) < 0) {
                snprintf(errstr, errsz, "truncating %s: %s", a->path, strerror(errno));
                goto out;
            }
            base = at;
            off = in.len = 0;
            break;
        }
        /* AGAIN: drop what is parsed and read more. */
        if (eof) {
            if (off < in.len) {
                int64_t at = base + (int64_t)off;
                sk_warn("kv", "%s: torn last record (%zu bytes at offset %lld) ignored and cut off", a->path,
                        in.len - off, (long long)at);
                if (ftruncate(a->fd, at) < 0) {
                    snprintf(errstr, errsz, "truncating %s: %s", a->path, strerror(errno));
                    goto out;
                }
                base = at;
                off = in.len = 0;
            }
            break;
        }
        if (off > 0) {
            memmove(in.data, in.data + off, in.len - off);
            in.len -= off;
            base += (int64_t)off;
            off = 0;
            kv_parser_reset(&p);
        }
        size_t want = LOAD_CHUNK, need = kv_parser_need(&p, in.len);
        if (need > want) want = need;
        sk_buf_grow(&in, want);
        ssize_t n = read(a->fd, in.data + in.len, want);
        if (n < 0) {
            if (errno == EINTR) continue;
            snprintf(errstr, errsz, "reading %s: %s", a->path, strerror(errno));
            goto out;
        }
        if (n == 0) eof = 1;
        in.len += (size_t)n;
        in.data[in.len] = '\0';
    }
    a->written = a->synced_at = a->base_size = base + (int64_t)off;
    if (lseek(a->fd, 0, SEEK_END) < 0) {
        snprintf(errstr, errsz, "seeking %s: %s", a->path, strerror(errno));
        goto out;
    }
    sk_info("kv", "loaded %zu records from %s (%lld bytes): %zu keys, %zu with a deadline", records, a->path,
            (long long)a->written, kv_store_count(st), kv_store_expires(st));
    rc = 0;
out:
    kv_parser_release(&p);
    sk_buf_release(&in);
    return rc;
}

kv_aof_t *kv_aof_open(const char *dir, kv_fsync_t policy, int64_t min_rewrite_size, kv_store_t *st,
                      char *errstr, size_t errsz)
{
    kv_aof_t *a = sk_calloc(1, sizeof *a);
    size_t n = strlen(dir) + sizeof(REWRITE_NAME) + 2;
    a->dir = sk_strdup(dir);
    a->path = sk_malloc(n);
    a->rw_path = sk_malloc(n);
    snprintf(a->path, n, "%s/%s", dir, AOF_NAME);
    snprintf(a->rw_path, n, "%s/%s", dir, REWRITE_NAME);
    a->fd = a->rw_fd = -1;
    a->policy = policy;
    a->min_rewrite = min_rewrite_size;
    a->write_ok = 1;
    sk_buf_init(&a->buf, 0);
    if (sk_mkdir_p(dir, 0755) < 0) {
        snprintf(errstr, errsz, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    unlink(a->rw_path); /* a rewrite that a crash interrupted */
    a->fd = open(a->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (a->fd < 0) {
        snprintf(errstr, errsz, "cannot open %s: %s", a->path, strerror(errno));
        goto fail;
    }
    if (load(a, st, errstr, errsz) < 0) goto fail;
    fsync_thread_start(&a->ft);
    return a;
fail:
    if (a->fd >= 0) close(a->fd);
    sk_buf_release(&a->buf);
    free(a->dir);
    free(a->path);
    free(a->rw_path);
    free(a);
    return NULL;
}

void kv_aof_close(kv_aof_t *a)
{
    if (!a) return;
    rewrite_abort(a, NULL);
    if (kv_aof_flush(a) < 0 || fdatasync(a->fd) < 0)
        sk_error("kv", "closing %s: %s", a->path, a->last_error[0] ? a->last_error : strerror(errno));
    fsync_thread_stop(&a->ft);
    close(a->fd);
    sk_buf_release(&a->buf);
    free(a->dir);
    free(a->path);
    free(a->rw_path);
    free(a);
}
