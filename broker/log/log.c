#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_fs.h"
#include "sk_log.h"
#include "sk_map.h"

#define IDX_ENTRY_LEN 16
#define SCAN_CHUNK (1 << 20)

typedef struct idx_entry_s {
    uint32_t rel;      /* offset - segment base */
    uint32_t pos;      /* byte position of the batch in the segment */
    int64_t ts_before; /* max timestamp of all batches before pos (-1: none) */
} idx_entry_t;

typedef struct seg_s {
    int64_t base, next; /* first offset, and one past the last offset held */
    int fd, idx_fd;
    int64_t size;
    int64_t max_ts; /* -1 when no batch has a timestamp */
    int64_t created_ms;
    idx_entry_t *idx;
    size_t nidx, idx_cap;
    int64_t bytes_since_idx;
} seg_t;

struct log_part_s {
    log_t *log;
    log_topic_t *topic;
    int32_t index;
    char *dir;
    seg_t **segs;
    size_t nsegs, segs_cap;
    int64_t size;
    int dirty;
};

struct log_topic_s {
    char *name;
    int32_t n;
    log_part_t **parts;
};

struct log_s {
    log_config_t cfg;
    char *dir;
    int lock_fd;
    sk_map_t topics;
    log_topic_t **sorted;
    size_t ntopics;
};

static void seg_path(const log_part_t *p, int64_t base, const char *ext, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%020" PRId64 ".%s", p->dir, base, ext);
}

/* ---- index ------------------------------------------------------------ */

static void idx_push(seg_t *s, uint32_t rel, uint32_t pos, int64_t ts_before)
{
    if (s->nidx == s->idx_cap) {
        s->idx_cap = s->idx_cap ? s->idx_cap * 2 : 16;
        s->idx = sk_realloc(s->idx, s->idx_cap * sizeof *s->idx);
    }
    s->idx[s->nidx++] = (idx_entry_t){rel, pos, ts_before};
}

static void idx_encode(const idx_entry_t *e, uint8_t out[IDX_ENTRY_LEN])
{
    sk_store_i32(out, (int32_t)e->rel);
    sk_store_i32(out + 4, (int32_t)e->pos);
    sk_store_i64(out + 8, e->ts_before);
}

/* Writes the whole in-memory index to the index file. */
static int idx_write_all(seg_t *s)
{
    if (ftruncate(s->idx_fd, 0) < 0) return -1;
    sk_buf_t b;
    sk_buf_init(&b, s->nidx * IDX_ENTRY_LEN);
    for (size_t i = 0; i < s->nidx; i++) {
        uint8_t e[IDX_ENTRY_LEN];
        idx_encode(&s->idx[i], e);
        sk_buf_add(&b, e, sizeof e);
    }
    int rc = sk_write_all(s->idx_fd, b.data, b.len);
    sk_buf_release(&b);
    return rc;
}

/* Loads the index file; returns 0 if it is present and consistent with a log
 * of file_size bytes, -1 otherwise (the caller rebuilds it). */
static int idx_load(seg_t *s, int64_t file_size)
{
    struct stat st;
    if (fstat(s->idx_fd, &st) < 0 || st.st_size == 0 || st.st_size % IDX_ENTRY_LEN) return -1;
    size_t n = (size_t)st.st_size / IDX_ENTRY_LEN;
    uint8_t *raw = sk_malloc((size_t)st.st_size);
    int rc = -1;
    if (sk_pread_all(s->idx_fd, raw, (size_t)st.st_size, 0) != st.st_size) goto out;
    s->nidx = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = raw + i * IDX_ENTRY_LEN;
        uint32_t rel = (uint32_t)sk_load_i32(e), pos = (uint32_t)sk_load_i32(e + 4);
        int64_t ts = sk_load_i64(e + 8);
        if (i == 0 && (rel != 0 || pos != 0)) goto out;
        if (i > 0 && (rel <= s->idx[i - 1].rel || pos <= s->idx[i - 1].pos ||
                      ts < s->idx[i - 1].ts_before))
            goto out;
        if ((int64_t)pos >= file_size) goto out;
        idx_push(s, rel, pos, ts);
    }
    rc = 0;
out:
    if (rc < 0) s->nidx = 0;
    free(raw);
    return rc;
}

/* Adds an index entry for a batch about to be placed at s->size, if due. */
static int idx_maybe_add(log_t *l, seg_t *s, int64_t offset, int64_t size, int write_file)
{
    if (s->nidx && s->bytes_since_idx < l->cfg.index_interval_bytes) {
        s->bytes_since_idx += size;
        return 0;
    }
    idx_push(s, (uint32_t)(offset - s->base), (uint32_t)s->size, s->max_ts);
    s->bytes_since_idx = size;
    if (!write_file) return 0;
    uint8_t e[IDX_ENTRY_LEN];
    idx_encode(&s->idx[s->nidx - 1], e);
    return sk_write_all(s->idx_fd, e, sizeof e);
}

/* ---- segments ---------------------------------------------------------- */

static void seg_free(seg_t *s)
{
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    if (s->idx_fd >= 0) close(s->idx_fd);
    free(s->idx);
    free(s);
}

static seg_t *seg_open(log_part_t *p, int64_t base, int create, char *errstr, size_t errsz)
{
    char path[PATH_MAX];
    seg_t *s = sk_calloc(1, sizeof *s);
    s->base = s->next = base;
    s->max_ts = -1;
    s->idx_fd = -1;
    s->created_ms = sk_wall_ms();
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    seg_path(p, base, "log", path, sizeof path);
    s->fd = open(path, flags, 0644);
    if (s->fd < 0) goto fail;
    struct stat st;
    if (fstat(s->fd, &st) < 0) goto fail;
    s->size = st.st_size;
    seg_path(p, base, "index", path, sizeof path);
    s->idx_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->idx_fd < 0) goto fail;
    return s;
fail:
    snprintf(errstr, errsz, "%s: %s", path, strerror(errno));
    seg_free(s);
    return NULL;
}

/*
 * Reads the segment from byte pos, where the batch with offset `expect`
 * starts, to its end.  Each batch must follow the previous one's offsets; with
 * check_crc its CRC is verified too.  Index entries are added (in memory) as
 * appends would add them.  Returns the position after the last good batch and
 * sets *why when it stopped early.
 */
static int64_t seg_scan(log_t *l, seg_t *s, int64_t pos, int64_t expect, int check_crc,
                        const char **why)
{
    size_t cap = SCAN_CHUNK;
    uint8_t *buf = sk_malloc(cap);
    *why = NULL;
    s->next = expect;
    while (pos < s->size) {
        size_t want = (size_t)(s->size - pos) < cap ? (size_t)(s->size - pos) : cap;
        ssize_t got = sk_pread_all(s->fd, buf, want, pos);
        if (got <= 0) {
            *why = "read error";
            break;
        }
        size_t off = 0;
        while (off < (size_t)got) {
            batch_hdr_t h;
            batch_err_t e = batch_hdr_parse(buf + off, (size_t)got - off, &h);
            if (e == BATCH_SHORT || (e == BATCH_OK && batch_size(&h) > (size_t)got - off)) {
                size_t need = e == BATCH_OK ? batch_size(&h) : BATCH_HEADER_LEN;
                if (pos + (int64_t)off + (int64_t)need > s->size) {
                    *why = "torn batch at end of segment";
                    pos += (int64_t)off; /* keep the good batches before it */
                    goto done;
                }
                if (off == 0) { /* a batch larger than the buffer */
                    cap = need;
                    buf = sk_realloc(buf, cap);
                }
                break; /* re-read from this batch */
            }
            if (e == BATCH_OK && check_crc) e = batch_validate(buf + off, (size_t)got - off, &h);
            if (e != BATCH_OK) {
                *why = batch_err2str(e);
                pos += (int64_t)off;
                goto done;
            }
            if (h.base_offset != s->next) {
                *why = "batch offset out of sequence";
                pos += (int64_t)off;
                goto done;
            }
            int64_t saved = s->size;
            s->size = pos + (int64_t)off; /* idx_maybe_add records the position */
            idx_maybe_add(l, s, h.base_offset, (int64_t)batch_size(&h), 0);
            s->size = saved;
            s->next = h.base_offset + h.last_offset_delta + 1;
            if (h.max_timestamp > s->max_ts) s->max_ts = h.max_timestamp;
            off += batch_size(&h);
        }
        pos += (int64_t)off;
    }
done:
    free(buf);
    return pos;
}

/* ---- partitions --------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void part_push_seg(log_part_t *p, seg_t *s)
{
    if (p->nsegs == p->segs_cap) {
        p->segs_cap = p->segs_cap ? p->segs_cap * 2 : 4;
        p->segs = sk_realloc(p->segs, p->segs_cap * sizeof *p->segs);
    }
    p->segs[p->nsegs++] = s;
    p->size += s->size;
}

static seg_t *part_active(const log_part_t *p)
{
    return p->segs[p->nsegs - 1];
}

/* Loads and recovers one partition folder (creating it and a first segment
 * when new). */
static int part_load(log_part_t *p, char *errstr, size_t errsz)
{
    log_t *l = p->log;
    int64_t *bases = NULL;
    size_t nbases = 0, cap = 0;
    int rc = -1;
    if (sk_mkdir_p(p->dir, 0755) < 0) {
        snprintf(errstr, errsz, "%s: %s", p->dir, strerror(errno));
        return -1;
    }
    DIR *d = opendir(p->dir);
    if (!d) {
        snprintf(errstr, errsz, "%s: %s", p->dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n != 24 || strcmp(de->d_name + 20, ".log") != 0) continue;
        char *end;
        long long v = strtoll(de->d_name, &end, 10);
        if (end != de->d_name + 20 || v < 0) continue;
        if (nbases == cap) {
            cap = cap ? cap * 2 : 8;
            bases = sk_realloc(bases, cap * sizeof *bases);
        }
        bases[nbases++] = v;
    }
    closedir(d);
    if (nbases > 1) qsort(bases, nbases, sizeof *bases, cmp_i64); /* bases is NULL when empty */
    if (nbases == 0) {
        seg_t *s = seg_open(p, 0, 1, errstr, errsz);
        if (!s) goto out;
        part_push_seg(p, s); /* empty: index entries start with the first batch */
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < nbases; i++) {
        seg_t *s = seg_open(p, bases[i], 0, errstr, errsz);
        if (!s) goto out;
        int last = i + 1 == nbases;
        const char *why;
        int64_t good;
        int trusted = !last && idx_load(s, s->size) == 0;
        if (trusted) {
            /* Trusted index: only the tail after the last entry is read, for
             * the segment's end offset and largest timestamp. */
            idx_entry_t *e = &s->idx[s->nidx - 1];
            size_t keep = s->nidx;
            s->max_ts = e->ts_before;
            good = seg_scan(l, s, e->pos, s->base + e->rel, 0, &why);
            s->nidx = keep;
            s->bytes_since_idx = l->cfg.index_interval_bytes; /* not appended to again */
            /* A last entry that does not lead to a clean tail is damage
             * (or the log is): read the whole segment and re-index it. */
            if (good < s->size) trusted = 0;
        }
        if (!trusted) {
            s->nidx = 0;
            s->max_ts = -1;
            s->bytes_since_idx = 0;
            good = seg_scan(l, s, 0, s->base, last, &why);
            if (!last) sk_warn("log", "%s: rebuilt missing or damaged index of segment %" PRId64, p->dir, s->base);
            if (idx_write_all(s) < 0) sk_warn("log", "%s: cannot write index: %s", p->dir, strerror(errno));
        }
        if (good < s->size) {
            if (last) {
                sk_warn("log", "%s: truncated %" PRId64 " bytes at byte %" PRId64 " of segment %" PRId64
                        " (%s); log end offset is now %" PRId64,
                        p->dir, s->size - good, good, s->base, why ? why : "unreadable", s->next);
                if (ftruncate(s->fd, good) < 0) {
                    snprintf(errstr, errsz, "%s: truncate: %s", p->dir, strerror(errno));
                    seg_free(s);
                    goto out;
                }
                s->size = good;
                fsync(s->fd);
            } else {
                sk_warn("log", "%s: segment %" PRId64 " has %" PRId64 " unreadable bytes at %" PRId64
                        " (%s); they are not served",
                        p->dir, s->base, s->size - good, good, why ? why : "?");
                s->size = good;
            }
        }
        if (i > 0) {
            seg_t *prev = part_active(p);
            if (prev->next != s->base)
                sk_warn("log", "%s: gap between segment %" PRId64 " (ends at %" PRId64 ") and %" PRId64,
                        p->dir, prev->base, prev->next, s->base);
        }
        part_push_seg(p, s);
    }
    if (lseek(part_active(p)->fd, 0, SEEK_END) < 0) goto out;
    rc = 0;
out:
    free(bases);
    return rc;
}

static log_part_t *part_new(log_t *l, log_topic_t *t, int32_t idx)
{
    char path[PATH_MAX];
    log_part_t *p = sk_calloc(1, sizeof *p);
    p->log = l;
    p->topic = t;
    p->index = idx;
    snprintf(path, sizeof path, "%s/%s-%d", l->dir, t->name, (int)idx);
    p->dir = sk_strdup(path);
    return p;
}

static void part_free(log_part_t *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->nsegs; i++) seg_free(p->segs[i]);
    free(p->segs);
    free(p->dir);
    free(p);
}

int64_t log_part_start_offset(const log_part_t *p)
{
    return p->segs[0]->base;
}

int64_t log_part_end_offset(const log_part_t *p)
{
    return part_active(p)->next;
}

int64_t log_part_size(const log_part_t *p)
{
    return p->size;
}

const char *log_part_topic(const log_part_t *p)
{
    return p->topic->name;
}

int32_t log_part_index(const log_part_t *p)
{
    return p->index;
}

static int part_roll(log_part_t *p, char *errstr, size_t errsz)
{
    seg_t *old = part_active(p);
    /* An old segment is never written again: make it durable now. */
    if (fsync(old->fd) < 0 || fsync(old->idx_fd) < 0) {
        snprintf(errstr, errsz, "%s: fsync: %s", p->dir, strerror(errno));
        return -1;
    }
    seg_t *s = seg_open(p, old->next, 1, errstr, errsz);
    if (!s) return -1;
    if (ftruncate(s->fd, 0) < 0 || ftruncate(s->idx_fd, 0) < 0 || lseek(s->fd, 0, SEEK_END) < 0) {
        snprintf(errstr, errsz, "%s: %s", p->dir, strerror(errno));
        seg_free(s);
        return -1;
    }
    s->size = 0;
    part_push_seg(p, s);
    sk_fsync_dir(p->dir);
    sk_debug("log", "%s: rolled to segment %" PRId64, p->dir, s->base);
    return 0;
}

log_err_t log_part_append(log_part_t *p, uint8_t *records, size_t len, int64_t *base_offset,
                          char *errstr, size_t errsz)
{
    log_t *l = p->log;
    size_t pos = 0;
    int first = 1;
    while (pos < len) {
        batch_hdr_t h;
        if (batch_hdr_parse(records + pos, len - pos, &h) != BATCH_OK || batch_size(&h) > len - pos) {
            snprintf(errstr, errsz, "malformed batch at byte %zu", pos);
            return LOG_ERR_CORRUPT;
        }
        size_t n = batch_size(&h);
        seg_t *s = part_active(p);
        int64_t now = sk_wall_ms();
        if (s->size > 0 && (s->size + (int64_t)n > l->cfg.segment_bytes ||
                            (l->cfg.segment_ms >= 0 && now - s->created_ms >= l->cfg.segment_ms))) {
            if (part_roll(p, errstr, errsz) < 0) return LOG_ERR_IO;
            s = part_active(p);
        }
        int64_t offset = s->next;
        if (s->size + (int64_t)n > UINT32_MAX || offset - s->base + h.last_offset_delta > UINT32_MAX) {
            snprintf(errstr, errsz, "segment limits exceeded");
            return LOG_ERR_TOO_LARGE;
        }
        batch_set_base_offset(records + pos, offset);
        if (idx_maybe_add(l, s, offset, (int64_t)n, 1) < 0 || sk_write_all(s->fd, records + pos, n) < 0) {
            int e = errno;
            /* Leave no partial batch behind. */
            if (ftruncate(s->fd, s->size) < 0 || lseek(s->fd, 0, SEEK_END) < 0) { /* reported below */
            }
            if (s->nidx && s->idx[s->nidx - 1].pos == (uint32_t)s->size && s->size > 0) s->nidx--;
            snprintf(errstr, errsz, "%s: write: %s", p->dir, strerror(e));
            return LOG_ERR_IO;
        }
        if (first) *base_offset = offset;
        first = 0;
        s->size += (int64_t)n;
        p->size += (int64_t)n;
        s->next = offset + h.last_offset_delta + 1;
        if (h.max_timestamp > s->max_ts) s->max_ts = h.max_timestamp;
        pos += n;
    }
    p->dirty = 1;
    return LOG_OK;
}

/* Index of the segment holding offset (offset within [start, end)). */
static size_t part_find_seg(const log_part_t *p, int64_t offset)
{
    size_t lo = 0, hi = p->nsegs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (p->segs[mid]->base <= offset) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Where to start reading for index entry e: its position if the batch there
 * starts at the offset the entry names, else the segment start.  Entries that
 * are well formed and in order can still be damaged; checking the one used
 * makes such damage slow a look-up down rather than misdirect it. */
static int64_t idx_entry_pos(const seg_t *s, const idx_entry_t *e)
{
    uint8_t base[8];
    if (sk_pread_all(s->fd, base, sizeof base, e->pos) == (ssize_t)sizeof base &&
        sk_load_i64(base) == s->base + e->rel)
        return e->pos;
    return 0;
}

/* Byte position in s of the batch that contains offset, found through the
 * index and then batch headers; -1 if the segment does not hold it. */
static int64_t seg_find_pos(const seg_t *s, int64_t offset, batch_hdr_t *h)
{
    size_t lo = 0, hi = s->nidx;
    int64_t pos = 0;
    if (hi) {
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (s->base + s->idx[mid].rel <= offset) lo = mid;
            else hi = mid;
        }
        pos = idx_entry_pos(s, &s->idx[lo]);
    }
    uint8_t hdr[BATCH_HEADER_LEN];
    while (pos < s->size) {
        if (sk_pread_all(s->fd, hdr, sizeof hdr, pos) != (ssize_t)sizeof hdr) return -1;
        if (batch_hdr_parse(hdr, sizeof hdr, h) != BATCH_OK) return -1;
        if (h->base_offset + h->last_offset_delta >= offset) return pos;
        pos += (int64_t)batch_size(h);
    }
    return -1;
}

log_err_t log_part_read(log_part_t *p, int64_t offset, size_t max_bytes, sk_buf_t *out)
{
    if (offset < log_part_start_offset(p) || offset > log_part_end_offset(p)) return LOG_ERR_OUT_OF_RANGE;
    if (offset == log_part_end_offset(p)) return LOG_OK;
    for (size_t i = part_find_seg(p, offset); i < p->nsegs; i++) {
        seg_t *s = p->segs[i];
        batch_hdr_t h;
        int64_t pos = seg_find_pos(s, offset, &h);
        if (pos < 0) continue;
        size_t first = batch_size(&h);
        size_t avail = (size_t)(s->size - pos);
        size_t want = max_bytes > first ? max_bytes : first;
        if (want > avail) want = avail;
        size_t at = out->len;
        sk_buf_grow(out, want);
        ssize_t got = sk_pread_all(s->fd, out->data + at, want, pos);
        if (got < (ssize_t)first) return LOG_ERR_IO;
        /* Keep whole batches only. */
        size_t keep = 0;
        while (keep < (size_t)got) {
            batch_hdr_t bh;
            if (batch_hdr_parse((uint8_t *)out->data + at + keep, (size_t)got - keep, &bh) != BATCH_OK ||
                batch_size(&bh) > (size_t)got - keep)
                break;
            keep += batch_size(&bh);
        }
        out->len = at + keep;
        out->data[out->len] = '\0';
        return LOG_OK;
    }
    return LOG_OK;
}

void log_part_offset_for_time(log_part_t *p, int64_t ts, int64_t *offset, int64_t *found_ts)
{
    *offset = -1;
    *found_ts = -1;
    for (size_t i = 0; i < p->nsegs; i++) {
        seg_t *s = p->segs[i];
        if (s->max_ts < ts) continue;
        size_t k = 0;
        while (k < s->nidx && s->idx[k].ts_before < ts) k++;
        int64_t pos = k > 0 ? idx_entry_pos(s, &s->idx[k - 1]) : 0;
        uint8_t hdr[BATCH_HEADER_LEN];
        while (pos < s->size) {
            batch_hdr_t h;
            if (sk_pread_all(s->fd, hdr, sizeof hdr, pos) != (ssize_t)sizeof hdr ||
                batch_hdr_parse(hdr, sizeof hdr, &h) != BATCH_OK)
                return;
            if (h.max_timestamp >= ts) {
                uint8_t *b = sk_malloc(batch_size(&h));
                int r = -1;
                if (sk_pread_all(s->fd, b, batch_size(&h), pos) == (ssize_t)batch_size(&h))
                    r = batch_find_timestamp(b, batch_size(&h), ts, offset, found_ts);
                free(b);
                if (r != 1) {
                    *offset = h.base_offset;
                    *found_ts = h.max_timestamp;
                }
                return;
            }
            pos += (int64_t)batch_size(&h);
        }
    }
}

int log_part_flush(log_part_t *p)
{
    if (!p->dirty) return 0;
    seg_t *s = part_active(p);
    int rc = fsync(s->fd) | fsync(s->idx_fd);
    if (rc == 0) p->dirty = 0;
    else sk_error("log", "%s: fsync: %s", p->dir, strerror(errno));
    return rc ? -1 : 0;
}

/* ---- topics ------------------------------------------------------------- */

int log_topic_name_valid(const char *name, size_t len)
{
    if (len < 1 || len > 249) return 0;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

log_topic_t *log_topic_find(log_t *l, const char *name, size_t len)
{
    return sk_map_get(&l->topics, name, len);
}

size_t log_topic_count(const log_t *l)
{
    return l->ntopics;
}

log_topic_t *log_topic_at(log_t *l, size_t i)
{
    return i < l->ntopics ? l->sorted[i] : NULL;
}

const char *log_topic_name(const log_topic_t *t)
{
    return t->name;
}

int32_t log_topic_partitions(const log_topic_t *t)
{
    return t->n;
}

log_part_t *log_topic_part(log_topic_t *t, int32_t idx)
{
    return idx >= 0 && idx < t->n ? t->parts[idx] : NULL;
}

static void topic_free(log_topic_t *t)
{
    if (!t) return;
    for (int32_t i = 0; i < t->n; i++) part_free(t->parts[i]);
    free(t->parts);
    free(t->name);
    free(t);
}

static void topic_register(log_t *l, log_topic_t *t)
{
    sk_map_put(&l->topics, t->name, strlen(t->name), t);
    l->sorted = sk_realloc(l->sorted, (l->ntopics + 1) * sizeof *l->sorted);
    size_t i = l->ntopics;
    while (i > 0 && strcmp(l->sorted[i - 1]->name, t->name) > 0) {
        l->sorted[i] = l->sorted[i - 1];
        i--;
    }
    l->sorted[i] = t;
    l->ntopics++;
}

/* Creates the in-memory topic and loads or creates its n partitions. */
static log_topic_t *topic_load(log_t *l, const char *name, size_t len, int32_t n, char *errstr, size_t errsz)
{
    log_topic_t *t = sk_calloc(1, sizeof *t);
    t->name = sk_strndup(name, len);
    t->parts = sk_calloc((size_t)n, sizeof *t->parts);
    for (int32_t i = 0; i < n; i++) {
        t->parts[i] = part_new(l, t, i);
        t->n = i + 1;
        if (part_load(t->parts[i], errstr, errsz) < 0) {
            topic_free(t);
            return NULL;
        }
    }
    return t;
}

log_err_t log_topic_create(log_t *l, const char *name, size_t len, int32_t n, log_topic_t **out,
                           char *errstr, size_t errsz)
{
    if (!log_topic_name_valid(name, len)) {
        snprintf(errstr, errsz, "invalid topic name");
        return LOG_ERR_INVALID_TOPIC;
    }
    if (log_topic_find(l, name, len)) {
        snprintf(errstr, errsz, "topic already exists");
        return LOG_ERR_EXISTS;
    }
    if (n <= 0) n = l->cfg.default_partitions;
    if (n > 10000) {
        snprintf(errstr, errsz, "at most 10000 partitions");
        return LOG_ERR_INVALID_PARTITIONS;
    }
    log_topic_t *t = topic_load(l, name, len, n, errstr, errsz);
    if (!t) return LOG_ERR_IO;
    sk_fsync_dir(l->dir);
    topic_register(l, t);
    sk_info("log", "created topic %s with %d partitions", t->name, (int)n);
    *out = t;
    return LOG_OK;
}

/* ---- the whole log ------------------------------------------------------ */

log_t *log_open(const log_config_t *cfg, char *errstr, size_t errsz)
{
    log_t *l = sk_calloc(1, sizeof *l);
    l->cfg = *cfg;
    l->dir = sk_strdup(cfg->dir);
    l->cfg.dir = l->dir;
    l->lock_fd = -1;
    sk_map_init(&l->topics);
    if (sk_mkdir_p(l->dir, 0755) < 0) {
        snprintf(errstr, errsz, "cannot create data dir %s: %s", l->dir, strerror(errno));
        goto fail;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.lock", l->dir);
    l->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (l->lock_fd < 0 || flock(l->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(errstr, errsz, "data dir %s is in use by another souk-broker (%s)", l->dir, strerror(errno));
        goto fail;
    }
    /* Group partition folders "<topic>-<n>" by topic; the partition count is
     * the highest n + 1 (missing folders are recreated empty). */
    sk_map_t counts;
    sk_map_init(&counts);
    DIR *d = opendir(l->dir);
    if (!d) {
        snprintf(errstr, errsz, "%s: %s", l->dir, strerror(errno));
        sk_map_release(&counts);
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *dash = strrchr(de->d_name, '-');
        if (!dash || !dash[1]) continue;
        char *end;
        long v = strtol(dash + 1, &end, 10);
        if (*end || v < 0 || v >= 10000 || !log_topic_name_valid(de->d_name, (size_t)(dash - de->d_name)))
            continue;
        size_t klen = (size_t)(dash - de->d_name);
        intptr_t cur = (intptr_t)sk_map_get(&counts, de->d_name, klen);
        if (v + 1 > cur) sk_map_put(&counts, de->d_name, klen, (void *)(intptr_t)(v + 1));
    }
    closedir(d);
    for (sk_map_entry_t *e = sk_map_next(&counts, NULL); e; e = sk_map_next(&counts, e)) {
        log_topic_t *t = topic_load(l, e->key, e->klen, (int32_t)(intptr_t)e->value, errstr, errsz);
        if (!t) {
            sk_map_release(&counts);
            goto fail;
        }
        topic_register(l, t);
    }
    sk_map_release(&counts);
    sk_info("log", "opened %s: %zu topics", l->dir, l->ntopics);
    return l;
fail:
    log_close(l);
    return NULL;
}

int log_flush_dirty(log_t *l)
{
    int rc = 0;
    for (size_t i = 0; i < l->ntopics; i++)
        for (int32_t k = 0; k < l->sorted[i]->n; k++)
            if (log_part_flush(l->sorted[i]->parts[k]) < 0) rc = -1;
    return rc;
}

void log_close(log_t *l)
{
    if (!l) return;
    log_flush_dirty(l);
    for (size_t i = 0; i < l->ntopics; i++) topic_free(l->sorted[i]);
    free(l->sorted);
    sk_map_release(&l->topics);
    if (l->lock_fd >= 0) close(l->lock_fd);
    free(l->dir);
    free(l);
}

int log_retention_run(log_t *l, int64_t now_ms)
{
    int deleted = 0;
    for (size_t i = 0; i < l->ntopics; i++) {
        for (int32_t k = 0; k < l->sorted[i]->n; k++) {
            log_part_t *p = l->sorted[i]->parts[k];
            while (p->nsegs > 1) {
                seg_t *s = p->segs[0];
                int by_time = l->cfg.retention_ms >= 0 && s->max_ts >= 0 && s->max_ts < now_ms - l->cfg.retention_ms;
                int by_size = l->cfg.retention_bytes >= 0 && p->size - s->size >= l->cfg.retention_bytes;
                if (!by_time && !by_size) break;
                char path[PATH_MAX];
                seg_path(p, s->base, "log", path, sizeof path);
                unlink(path);
                seg_path(p, s->base, "index", path, sizeof path);
                unlink(path);
                p->size -= s->size;
                memmove(p->segs, p->segs + 1, (p->nsegs - 1) * sizeof *p->segs);
                p->nsegs--;
                sk_info("log", "%s: retention (%s) deleted segment %" PRId64 "; log start offset is now %" PRId64,
                        p->dir, by_time ? "time" : "size", s->base, p->segs[0]->base);
                seg_free(s);
                deleted++;
            }
        }
    }
    return deleted;
}
