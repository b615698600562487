#include "offsets.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_crc32c.h"
#include "sk_fs.h"
#include "sk_log.h"
#include "sk_map.h"

#define MAX_RECORD (1 << 20)

typedef struct entry_s {
    char *group, *topic;
    int32_t partition;
    offset_commit_t c;
} entry_t;

struct offsets_s {
    char *path, *dir;
    int fd;
    int dirty;
    int64_t file_bytes;
    sk_map_t map; /* key: group \0 topic \0 partition -> entry_t */
};

static void make_key(sk_buf_t *k, const char *group, const char *topic, int32_t partition)
{
    sk_buf_reset(k);
    sk_buf_add(k, group, strlen(group) + 1);
    sk_buf_add(k, topic, strlen(topic) + 1);
    sk_buf_add_i32(k, partition);
}

static void entry_free(entry_t *e)
{
    if (!e) return;
    free(e->group);
    free(e->topic);
    free(e->c.metadata);
    free(e);
}

static void put(offsets_t *o, const char *group, const char *topic, int32_t partition, int64_t offset,
                int32_t epoch, const char *md, size_t mdlen, int md_null, int64_t ms)
{
    sk_buf_t k;
    sk_buf_init(&k, 64);
    make_key(&k, group, topic, partition);
    entry_t *e = sk_calloc(1, sizeof *e);
    e->group = sk_strdup(group);
    e->topic = sk_strdup(topic);
    e->partition = partition;
    e->c.offset = offset;
    e->c.leader_epoch = epoch;
    e->c.metadata = md_null ? NULL : sk_strndup(md, mdlen);
    e->c.commit_ms = ms;
    entry_free(sk_map_put(&o->map, k.data, k.len, e));
    sk_buf_release(&k);
}

static void add_str16(sk_buf_t *b, const char *s)
{
    if (!s) {
        sk_buf_add_i16(b, -1);
        return;
    }
    size_t n = strlen(s);
    if (n > INT16_MAX) n = INT16_MAX;
    sk_buf_add_i16(b, (int16_t)n);
    sk_buf_add(b, s, n);
}

static void encode(sk_buf_t *b, const entry_t *e)
{
    size_t start = sk_buf_reserve(b, 8);
    add_str16(b, e->group);
    add_str16(b, e->topic);
    sk_buf_add_i32(b, e->partition);
    sk_buf_add_i64(b, e->c.offset);
    sk_buf_add_i32(b, e->c.leader_epoch);
    add_str16(b, e->c.metadata);
    sk_buf_add_i64(b, e->c.commit_ms);
    size_t plen = b->len - start - 8;
    sk_buf_put_i32(b, start, (int32_t)plen);
    sk_buf_put_i32(b, start + 4, (int32_t)sk_crc32c(0, b->data + start + 8, plen));
}

/* Decodes one payload; returns 0 or -1. */
static int decode(offsets_t *o, const uint8_t *p, size_t n)
{
    sk_cur_t c;
    sk_cur_init(&c, p, n);
    int16_t gl = sk_cur_i16(&c);
    const uint8_t *g = sk_cur_bytes(&c, gl < 0 ? 0 : (size_t)gl);
    int16_t tl = sk_cur_i16(&c);
    const uint8_t *t = sk_cur_bytes(&c, tl < 0 ? 0 : (size_t)tl);
    int32_t part = sk_cur_i32(&c);
    int64_t off = sk_cur_i64(&c);
    int32_t epoch = sk_cur_i32(&c);
    int16_t ml = sk_cur_i16(&c);
    const uint8_t *m = sk_cur_bytes(&c, ml < 0 ? 0 : (size_t)ml);
    int64_t ms = sk_cur_i64(&c);
    if (c.err || gl < 0 || tl < 0) return -1;
    char *gs = sk_strndup((const char *)g, (size_t)gl), *ts = sk_strndup((const char *)t, (size_t)tl);
    put(o, gs, ts, part, off, epoch, (const char *)m, ml < 0 ? 0 : (size_t)ml, ml < 0, ms);
    free(gs);
    free(ts);
    return 0;
}

static int load(offsets_t *o, char *errstr, size_t errsz)
{
    struct stat st;
    if (fstat(o->fd, &st) < 0) {
        snprintf(errstr, errsz, "%s: %s", o->path, strerror(errno));
        return -1;
    }
    uint8_t *data = sk_malloc((size_t)st.st_size + 1);
    if (sk_pread_all(o->fd, data, (size_t)st.st_size, 0) != st.st_size) {
        snprintf(errstr, errsz, "%s: read: %s", o->path, strerror(errno));
        free(data);
        return -1;
    }
    size_t pos = 0, n = (size_t)st.st_size;
    while (pos < n) {
        if (n - pos < 8) break;
        uint32_t len = (uint32_t)sk_load_i32(data + pos), crc = (uint32_t)sk_load_i32(data + pos + 4);
        if (len > MAX_RECORD || len > n - pos - 8) break;
        if (sk_crc32c(0, data + pos + 8, len) != crc || decode(o, data + pos + 8, len) < 0) break;
        pos += 8 + len;
    }
    if (pos < n) {
        sk_warn("offsets", "%s: ignored %zu bytes of torn or corrupt commits at byte %zu", o->path, n - pos, pos);
        if (ftruncate(o->fd, (off_t)pos) < 0) sk_warn("offsets", "%s: truncate: %s", o->path, strerror(errno));
    }
    o->file_bytes = (int64_t)pos;
    free(data);
    return 0;
}

offsets_t *offsets_open(const char *dir, char *errstr, size_t errsz)
{
    char path[PATH_MAX];
    offsets_t *o = sk_calloc(1, sizeof *o);
    sk_map_init(&o->map);
    snprintf(path, sizeof path, "%s/consumer-offsets.dat", dir);
    o->path = sk_strdup(path);
    o->dir = sk_strdup(dir);
    o->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (o->fd < 0) {
        snprintf(errstr, errsz, "%s: %s", path, strerror(errno));
        offsets_close(o);
        return NULL;
    }
    if (load(o, errstr, errsz) < 0) {
        offsets_close(o);
        return NULL;
    }
    sk_info("offsets", "loaded %zu committed offsets from %s", sk_map_count(&o->map), path);
    return o;
}

/* Rewrites the file with only the live records. */
static void compact(offsets_t *o)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", o->path);
    sk_buf_t b;
    sk_buf_init(&b, 4096);
    for (sk_map_entry_t *it = sk_map_next(&o->map, NULL); it; it = sk_map_next(&o->map, it))
        encode(&b, it->value);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || sk_write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0 || rename(tmp, o->path) < 0) {
        sk_warn("offsets", "compaction of %s failed: %s", o->path, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
    } else {
        sk_fsync_dir(o->dir);
        close(o->fd);
        o->fd = open(o->path, O_RDWR | O_APPEND | O_CLOEXEC);
        if (o->fd < 0) sk_error("offsets", "reopen %s: %s", o->path, strerror(errno));
        close(fd);
        o->file_bytes = (int64_t)b.len;
    }
    sk_buf_release(&b);
}

int offsets_commit(offsets_t *o, const char *group, const char *topic, int32_t partition, int64_t offset,
                   int32_t leader_epoch, const char *metadata, char *errstr, size_t errsz)
{
    entry_t e = {(char *)group, (char *)topic, partition, {offset, leader_epoch, (char *)metadata, sk_wall_ms()}};
    sk_buf_t b;
    sk_buf_init(&b, 128);
    encode(&b, &e);
    if (b.len > MAX_RECORD) {
        snprintf(errstr, errsz, "commit record too large");
        sk_buf_release(&b);
        return -1;
    }
    if (o->fd < 0 || sk_write_all(o->fd, b.data, b.len) < 0) {
        snprintf(errstr, errsz, "%s: write: %s", o->path, strerror(errno));
        sk_buf_release(&b);
        return -1;
    }
    o->file_bytes += (int64_t)b.len;
    o->dirty = 1;
    put(o, group, topic, partition, offset, leader_epoch, metadata, metadata ? strlen(metadata) : 0, !metadata,
        e.c.commit_ms);
    size_t live = sk_map_count(&o->map) * (b.len + 16);
    if (o->file_bytes > (1 << 20) && (size_t)o->file_bytes > 2 * live) compact(o);
    sk_buf_release(&b);
    return 0;
}

const offset_commit_t *offsets_get(offsets_t *o, const char *group, const char *topic, int32_t partition)
{
    sk_buf_t k;
    sk_buf_init(&k, 64);
    make_key(&k, group, topic, partition);
    entry_t *e = sk_map_get(&o->map, k.data, k.len);
    sk_buf_release(&k);
    return e ? &e->c : NULL;
}

void offsets_each(offsets_t *o, const char *group, offsets_each_fn fn, void *opaque)
{
    for (sk_map_entry_t *it = sk_map_next(&o->map, NULL); it; it = sk_map_next(&o->map, it)) {
        entry_t *e = it->value;
        if (strcmp(e->group, group) == 0) fn(opaque, e->topic, e->partition, &e->c);
    }
}

void offsets_groups(offsets_t *o, offsets_group_fn fn, void *opaque)
{
    sk_map_t seen;
    sk_map_init(&seen);
    for (sk_map_entry_t *it = sk_map_next(&o->map, NULL); it; it = sk_map_next(&o->map, it)) {
        entry_t *e = it->value;
        if (sk_map_get(&seen, e->group, strlen(e->group))) continue;
        sk_map_put(&seen, e->group, strlen(e->group), e);
        fn(opaque, e->group);
    }
    sk_map_release(&seen);
}

int offsets_flush(offsets_t *o)
{
    if (!o->dirty || o->fd < 0) return 0;
    if (fsync(o->fd) < 0) {
        sk_error("offsets", "fsync %s: %s", o->path, strerror(errno));
        return -1;
    }
    o->dirty = 0;
    return 0;
}

void offsets_close(offsets_t *o)
{
    if (!o) return;
    offsets_flush(o);
    for (sk_map_entry_t *it = sk_map_next(&o->map, NULL); it; it = sk_map_next(&o->map, it)) entry_free(it->value);
    sk_map_release(&o->map);
    if (o->fd >= 0) close(o->fd);
    free(o->path);
    free(o->dir);
    free(o);
}
