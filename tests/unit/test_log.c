/*
 * test_log.c - broker/log/log.h: topics, appends and offsets, reads, segment
 * rolling and the offset index, recovery of torn or corrupt data, and
 * retention.
 *
 * Every test gets its own data dir (mkdtemp under a per-run root that the
 * suite removes even when a test fails).  A test keeps a model of what the
 * partition must hold - the stored bytes of every batch and its offsets - and
 * compares reads against it byte for byte.  Time never comes from the clock:
 * record timestamps and retention's "now" are fixed numbers, and segment_ms
 * is off.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ut.h"
#include "batch.h"
#include "batch_builder.h"
#include "log.h"
#include "sk_buf.h"
#include "sk_fs.h"

/* ---- fixtures ------------------------------------------------------------ */

static char root[512]; /* per run, made and removed by the parent */
static char dir[640];  /* per test: the data dir */
static char errstr[512];

static void root_setup(void)
{
    ut_mkdtemp(root, sizeof root, "log");
}

static void root_teardown(void)
{
    sk_rm_rf(root);
}

static void dir_setup(void)
{
    snprintf(dir, sizeof dir, "%s/t-XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    errstr[0] = '\0';
}

static void dir_teardown(void)
{
    sk_rm_rf(dir);
}

static log_config_t test_cfg(void)
{
    return (log_config_t){.dir = dir,
                          .default_partitions = 1,
                          .segment_bytes = 1 << 20,
                          .segment_ms = -1,
                          .retention_ms = -1,
                          .retention_bytes = -1,
                          .index_interval_bytes = 4096};
}

static log_t *open_log(const log_config_t *cfg)
{
    log_t *l = log_open(cfg, errstr, sizeof errstr);
    ck_assert_msg(l != NULL, "log_open: %s", errstr);
    return l;
}

/* Opens the log and returns partition 0 of topic "t" (created if missing). */
static log_part_t *open_part(const log_config_t *cfg, log_t **lp)
{
    log_t *l = open_log(cfg);
    log_topic_t *t = log_topic_find(l, "t", 1);
    if (!t) ck_assert_int_eq(log_topic_create(l, "t", 1, 1, &t, errstr, sizeof errstr), LOG_OK);
    *lp = l;
    return log_topic_part(t, 0);
}

static void part_dir(char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/t-0", dir);
}

static void seg_file(int64_t base, const char *ext, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/t-0/%020" PRId64 ".%s", dir, base, ext);
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat %s", path);
    return st.st_size;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- the model: what the partition must hold ------------------------------ */

#define MODEL_MAX 1024

typedef struct model_s {
    sk_buf_t bytes;          /* every batch as stored, back to back */
    size_t pos[MODEL_MAX];   /* where batch i starts in bytes */
    size_t size[MODEL_MAX];  /* its size */
    int64_t base[MODEL_MAX]; /* its first offset */
    int64_t next[MODEL_MAX]; /* one past its last offset */
    int n;
} model_t;

static void model_init(model_t *m)
{
    memset(m, 0, sizeof *m);
    sk_buf_init(&m->bytes, 0);
}

static void model_release(model_t *m)
{
    sk_buf_release(&m->bytes);
}

static int64_t model_end(const model_t *m)
{
    return m->n ? m->next[m->n - 1] : 0;
}

/* Index of the batch holding offset. */
static int model_find(const model_t *m, int64_t offset)
{
    for (int i = 0; i < m->n; i++)
        if (offset >= m->base[i] && offset < m->next[i]) return i;
    ck_abort_msg("offset %" PRId64 " is not in the model", offset);
    return -1;
}

/* Forgets batches from i on (what recovery truncates). */
static void model_truncate(model_t *m, int i)
{
    m->bytes.len = i ? m->pos[i - 1] + m->size[i - 1] : 0;
    m->n = i;
}

/* Records a batch of nrecs records stored at offset base. */
static void model_add(model_t *m, const void *data, size_t len, int64_t base, int32_t nrecs)
{
    ck_assert_int_lt(m->n, MODEL_MAX);
    int i = m->n++;
    m->pos[i] = m->bytes.len;
    m->size[i] = len;
    m->base[i] = base;
    m->next[i] = base + nrecs;
    sk_buf_add(&m->bytes, data, len);
}

/* Appends one batch built from spec; checks the offset the log assigns. */
static void append(log_part_t *p, model_t *m, const bb_spec_t *spec)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    bb_add(&b, spec);
    int64_t base = -1;
    log_err_t e = log_part_append(p, (uint8_t *)b.data, b.len, &base, errstr, sizeof errstr);
    ck_assert_msg(e == LOG_OK, "append: %d %s", e, errstr);
    ck_assert_int_eq(base, model_end(m));
    /* baseOffset is rewritten in the caller's bytes too. */
    ck_assert_int_eq(sk_load_i64(b.data), base);
    model_add(m, b.data, b.len, base, spec->nrecs);
    ck_assert_int_eq(log_part_end_offset(p), model_end(m));
    sk_buf_release(&b);
}

/* A batch of nrecs records of value_len bytes with timestamps ts, ts + 1, ... */
static void append_n(log_part_t *p, model_t *m, int32_t nrecs, size_t value_len, int64_t ts)
{
    bb_spec_t spec = {
        .base_offset = 999, .base_ts = ts, .ts_step = 1, .nrecs = nrecs, .value_len = value_len};
    append(p, m, &spec);
}

/* Reads everything from offset to the end, in as many calls as it takes. */
static void read_all(log_part_t *p, int64_t offset, sk_buf_t *out)
{
    int64_t end = log_part_end_offset(p);
    int calls = 0;
    while (offset < end) {
        size_t before = out->len;
        ck_assert_int_eq(log_part_read(p, offset, 1 << 20, out), LOG_OK);
        ck_assert_msg(out->len > before, "no progress at offset %" PRId64, offset);
        /* Continue after the last whole batch returned. */
        size_t pos = before;
        while (pos < out->len) {
            batch_hdr_t h;
            ck_assert_int_eq(batch_validate((uint8_t *)out->data + pos, out->len - pos, &h),
                             BATCH_OK);
            offset = h.base_offset + h.last_offset_delta + 1;
            pos += batch_size(&h);
        }
        ck_assert_int_lt(++calls, 100000);
    }
}

/* Checks that the partition holds exactly the model. */
static void check_contents(log_part_t *p, const model_t *m)
{
    ck_assert_int_eq(log_part_end_offset(p), model_end(m));
    int64_t start = log_part_start_offset(p);
    int first = m->n && start < model_end(m) ? model_find(m, start) : m->n;
    sk_buf_t out;
    sk_buf_init(&out, 0);
    read_all(p, start, &out);
    size_t from = first < m->n ? m->pos[first] : m->bytes.len;
    ck_assert_uint_eq(out.len, m->bytes.len - from);
    ck_assert_msg(memcmp(out.data, m->bytes.data + from, out.len) == 0, "stored bytes differ");
    sk_buf_release(&out);
}

/* Checks that reading any single offset returns the batch holding it first. */
static void check_every_offset(log_part_t *p, const model_t *m)
{
    sk_buf_t out;
    sk_buf_init(&out, 0);
    for (int64_t o = log_part_start_offset(p); o < model_end(m); o++) {
        int i = model_find(m, o);
        sk_buf_reset(&out);
        ck_assert_int_eq(log_part_read(p, o, 1, &out), LOG_OK);
        ck_assert_msg(out.len == m->size[i], "offset %" PRId64 ": %zu bytes, want batch %d (%zu)",
                      o, out.len, i, m->size[i]);
        ck_assert_msg(memcmp(out.data, m->bytes.data + m->pos[i], out.len) == 0, "offset %" PRId64,
                      o);
    }
    sk_buf_release(&out);
}

/* The segment base offsets on disk, sorted; checks the 20-digit names. */
static int list_segments(int64_t *bases, int max)
{
    char pdir[PATH_MAX];
    part_dir(pdir, sizeof pdir);
    DIR *d = opendir(pdir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 4, ".log") != 0) continue;
        ck_assert_msg(len == 24, "segment name %s", de->d_name);
        for (size_t k = 0; k < 20; k++)
            ck_assert(de->d_name[k] >= '0' && de->d_name[k] <= '9');
        ck_assert_int_lt(n, max);
        bases[n++] = strtoll(de->d_name, NULL, 10);
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort */
        for (int k = i; k > 0 && bases[k - 1] > bases[k]; k--) {
            int64_t t = bases[k];
            bases[k] = bases[k - 1];
            bases[k - 1] = t;
        }
    return n;
}

/* Builds a partition of several segments: segment_bytes 4096, batches of
 * 180..420 bytes, a sparse index entry every 512 bytes. */
static log_config_t small_segments_cfg(void)
{
    log_config_t cfg = test_cfg();
    cfg.segment_bytes = 4096;
    cfg.index_interval_bytes = 512;
    return cfg;
}

static void fill(log_part_t *p, model_t *m, int nbatches, int64_t ts0)
{
    for (int i = 0; i < nbatches; i++)
        append_n(p, m, 1 + i % 4, (size_t)(40 + (i * 37) % 200), ts0 + i * 100);
}

/* After fill(p, m, n, ts0) into an empty partition: the time of batch i's
 * first record finds that record. */
static void check_every_time(log_part_t *p, const model_t *m, int64_t ts0)
{
    for (int i = 0; i < m->n; i++) {
        int64_t off, ts;
        log_part_offset_for_time(p, ts0 + i * 100, &off, &ts);
        ck_assert_msg(off == m->base[i], "batch %d: offset %" PRId64 ", want %" PRId64, i, off,
                      m->base[i]);
        ck_assert_int_eq(ts, ts0 + i * 100);
    }
}

/* ---- topics -------------------------------------------------------------- */

START_TEST(test_log_topic_names)
{
    static const char *const valid[] = {"a",    "orders",       "A-z_0.9",   "...", ".a",
                                        "a..b", "user.created", "payment.1", "-",   "_"};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        ck_assert_msg(log_topic_name_valid(valid[i], strlen(valid[i])), "'%s' rejected", valid[i]);
    static const char *const invalid[] = {"",     ".",   "..",       "a/b", "a b",
                                          "a\\b", "a:b", "\xc3\xa4", "a*",  "tab\t"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        ck_assert_msg(!log_topic_name_valid(invalid[i], strlen(invalid[i])), "'%s' accepted",
                      invalid[i]);
    ck_assert(!log_topic_name_valid("a\0b", 3)); /* the length counts, not the NUL */
    ck_assert(log_topic_name_valid("ab/", 2));

    char name[251];
    memset(name, 'x', sizeof name);
    ck_assert(log_topic_name_valid(name, 249));
    ck_assert(!log_topic_name_valid(name, 250));
}
END_TEST

START_TEST(test_log_topic_create)
{
    log_config_t cfg = test_cfg();
    cfg.default_partitions = 2;
    log_t *l = open_log(&cfg);
    ck_assert_uint_eq(log_topic_count(l), 0);
    ck_assert_ptr_null(log_topic_find(l, "orders", 6));

    log_topic_t *t = NULL;
    ck_assert_int_eq(log_topic_create(l, "orders", 6, 3, &t, errstr, sizeof errstr), LOG_OK);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(log_topic_name(t), "orders");
    ck_assert_int_eq(log_topic_partitions(t), 3);
    ck_assert_ptr_eq(log_topic_find(l, "orders", 6), t);
    ck_assert_ptr_null(log_topic_find(l, "order", 5));
    for (int32_t i = 0; i < 3; i++) {
        log_part_t *p = log_topic_part(t, i);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(log_part_index(p), i);
        ck_assert_str_eq(log_part_topic(p), "orders");
        ck_assert_int_eq(log_part_start_offset(p), 0);
        ck_assert_int_eq(log_part_end_offset(p), 0);
        ck_assert_int_eq(log_part_size(p), 0);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/orders-%d", dir, (int)i);
        ck_assert_msg(file_exists(path), "%s missing", path);
    }
    ck_assert_ptr_null(log_topic_part(t, 3));
    ck_assert_ptr_null(log_topic_part(t, -1));

    log_topic_t *t2 = NULL;
    errstr[0] = '\0';
    ck_assert_int_eq(log_topic_create(l, "orders", 6, 1, &t2, errstr, sizeof errstr),
                     LOG_ERR_EXISTS);
    ck_assert_uint_gt(strlen(errstr), 0);
    ck_assert_int_eq(log_topic_create(l, "a/b", 3, 1, &t2, errstr, sizeof errstr),
                     LOG_ERR_INVALID_TOPIC);
    ck_assert_int_eq(log_topic_create(l, "..", 2, 1, &t2, errstr, sizeof errstr),
                     LOG_ERR_INVALID_TOPIC);
    ck_assert_int_eq(log_topic_create(l, "", 0, 1, &t2, errstr, sizeof errstr),
                     LOG_ERR_INVALID_TOPIC);
    ck_assert_int_eq(log_topic_create(l, "big", 3, 10001, &t2, errstr, sizeof errstr),
                     LOG_ERR_INVALID_PARTITIONS);
    ck_assert_ptr_null(log_topic_find(l, "big", 3));
    ck_assert_ptr_null(t2);

    /* n <= 0: the default. */
    ck_assert_int_eq(log_topic_create(l, "auto", 4, 0, &t2, errstr, sizeof errstr), LOG_OK);
    ck_assert_int_eq(log_topic_partitions(t2), 2);
    ck_assert_int_eq(log_topic_create(l, "b.c-d", 5, 1, &t2, errstr, sizeof errstr), LOG_OK);

    /* Topics in name order. */
    ck_assert_uint_eq(log_topic_count(l), 3);
    ck_assert_str_eq(log_topic_name(log_topic_at(l, 0)), "auto");
    ck_assert_str_eq(log_topic_name(log_topic_at(l, 1)), "b.c-d");
    ck_assert_str_eq(log_topic_name(log_topic_at(l, 2)), "orders");
    ck_assert_ptr_null(log_topic_at(l, 3));
    log_close(l);
}
END_TEST

START_TEST(test_log_reopen_topics)
{
    log_config_t cfg = test_cfg();
    log_t *l = open_log(&cfg);
    log_topic_t *t;
    /* Names with dashes and digits, like the partition folder suffix. */
    static const struct {
        const char *name;
        int32_t n;
    } topics[] = {{"a", 2}, {"b.c-d", 3}, {"x-1", 1}, {"x", 12}, {"payment.1", 1}};
    size_t nt = sizeof topics / sizeof topics[0];
    for (size_t i = 0; i < nt; i++)
        ck_assert_int_eq(log_topic_create(l, topics[i].name, strlen(topics[i].name), topics[i].n,
                                          &t, errstr, sizeof errstr),
                         LOG_OK);
    /* Something written to the last partition of one of them. */
    model_t m;
    model_init(&m);
    t = log_topic_find(l, "x", 1);
    append_n(log_topic_part(t, 11), &m, 3, 10, 1000);
    log_close(l);

    l = open_log(&cfg);
    ck_assert_uint_eq(log_topic_count(l), nt);
    for (size_t i = 0; i < nt; i++) {
        t = log_topic_find(l, topics[i].name, strlen(topics[i].name));
        ck_assert_msg(t != NULL, "%s not found", topics[i].name);
        ck_assert_msg(log_topic_partitions(t) == topics[i].n, "%s: %d partitions", topics[i].name,
                      log_topic_partitions(t));
    }
    t = log_topic_find(l, "x", 1);
    ck_assert_int_eq(log_part_end_offset(log_topic_part(t, 11)), 3);
    ck_assert_int_eq(log_part_end_offset(log_topic_part(t, 10)), 0);
    check_contents(log_topic_part(t, 11), &m);
    log_close(l);
    model_release(&m);
}
END_TEST

START_TEST(test_log_dir_locked)
{
    log_config_t cfg = test_cfg();
    log_t *l = open_log(&cfg);
    errstr[0] = '\0';
    ck_assert_ptr_null(log_open(&cfg, errstr, sizeof errstr));
    ck_assert_uint_gt(strlen(errstr), 0);
    log_close(l);
    l = open_log(&cfg); /* free again once closed */
    log_close(l);
}
END_TEST

/* ---- appends and reads ----------------------------------------------------- */

START_TEST(test_log_append_offsets)
{
    log_config_t cfg = test_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    ck_assert_int_eq(log_part_start_offset(p), 0);
    ck_assert_int_eq(log_part_end_offset(p), 0);

    append_n(p, &m, 3, 10, 1000); /* offsets 0..2 */
    ck_assert_int_eq(m.base[0], 0);
    ck_assert_int_eq(log_part_end_offset(p), 3);
    append_n(p, &m, 5, 10, 1000); /* 3..7 */
    ck_assert_int_eq(m.base[1], 3);
    ck_assert_int_eq(log_part_end_offset(p), 8);
    append_n(p, &m, 1, 0, 1000); /* 8 */
    ck_assert_int_eq(log_part_end_offset(p), 9);

    /* Two batches in one call: both rewritten, consecutive offsets. */
    sk_buf_t two;
    sk_buf_init(&two, 0);
    bb_spec_t s1 = {.base_offset = 5, .base_ts = 2000, .ts_step = 1, .nrecs = 4, .value_len = 7};
    bb_spec_t s2 = {.base_offset = 5, .base_ts = 2000, .ts_step = 1, .nrecs = 2, .value_len = 9};
    bb_add(&two, &s1);
    size_t second = bb_add(&two, &s2);
    int64_t base = -1;
    ck_assert_int_eq(log_part_append(p, (uint8_t *)two.data, two.len, &base, errstr, sizeof errstr),
                     LOG_OK);
    ck_assert_int_eq(base, 9);
    ck_assert_int_eq(sk_load_i64(two.data), 9);
    ck_assert_int_eq(sk_load_i64(two.data + second), 13);
    ck_assert_int_eq(log_part_end_offset(p), 15);
    model_add(&m, two.data, second, 9, 4);
    model_add(&m, two.data + second, two.len - second, 13, 2);
    sk_buf_release(&two);

    ck_assert_int_eq(log_part_size(p), (int64_t)m.bytes.len);
    check_contents(p, &m);
    check_every_offset(p, &m);

    /* The same after a clean reopen. */
    log_close(l);
    p = open_part(&cfg, &l);
    ck_assert_int_eq(log_part_size(p), (int64_t)m.bytes.len);
    check_contents(p, &m);
    append_n(p, &m, 2, 10, 3000);
    ck_assert_int_eq(m.base[m.n - 1], 15);
    check_contents(p, &m);
    log_close(l);
    model_release(&m);
}
END_TEST

START_TEST(test_log_append_malformed)
{
    log_config_t cfg = test_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    append_n(p, &m, 2, 10, 1000);

    sk_buf_t b;
    sk_buf_init(&b, 0);
    bb_spec_t spec = {.base_ts = 1000, .nrecs = 1, .value_len = 10};
    bb_add(&b, &spec);
    int64_t base = -1;
    /* Cut short. */
    ck_assert_int_eq(log_part_append(p, (uint8_t *)b.data, b.len - 1, &base, errstr, sizeof errstr),
                     LOG_ERR_CORRUPT);
    /* Bad magic. */
    b.data[16] = 1;
    ck_assert_int_eq(log_part_append(p, (uint8_t *)b.data, b.len, &base, errstr, sizeof errstr),
                     LOG_ERR_CORRUPT);
    ck_assert_int_eq(base, -1);
    ck_assert_int_eq(log_part_end_offset(p), 2);
    ck_assert_int_eq(log_part_size(p), (int64_t)m.bytes.len);
    check_contents(p, &m);
    sk_buf_release(&b);
    log_close(l);
    model_release(&m);
}
END_TEST

START_TEST(test_log_read_edges)
{
    log_config_t cfg = test_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    sk_buf_t out;
    sk_buf_init(&out, 0);

    /* An empty partition: offset 0 is the end. */
    ck_assert_int_eq(log_part_read(p, 0, 1000, &out), LOG_OK);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(log_part_read(p, 1, 1000, &out), LOG_ERR_OUT_OF_RANGE);

    append_n(p, &m, 3, 100, 1000); /* 0..2 */
    append_n(p, &m, 5, 100, 1000); /* 3..7 */
    append_n(p, &m, 2, 100, 1000); /* 8..9 */

    /* At the end: nothing, and no error. */
    ck_assert_int_eq(log_part_read(p, 10, 1000, &out), LOG_OK);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(log_part_read(p, 11, 1000, &out), LOG_ERR_OUT_OF_RANGE);
    ck_assert_int_eq(log_part_read(p, INT64_MAX, 1000, &out), LOG_ERR_OUT_OF_RANGE);
    ck_assert_int_eq(log_part_read(p, -1, 1000, &out), LOG_ERR_OUT_OF_RANGE);
    ck_assert_uint_eq(out.len, 0);

    /* max_bytes smaller than a batch still gives one whole batch. */
    ck_assert_int_eq(log_part_read(p, 0, 0, &out), LOG_OK);
    ck_assert_uint_eq(out.len, m.size[0]);
    ck_assert_mem_eq(out.data, m.bytes.data, m.size[0]);
    sk_buf_reset(&out);
    ck_assert_int_eq(log_part_read(p, 3, 1, &out), LOG_OK);
    ck_assert_uint_eq(out.len, m.size[1]);

    /* An offset inside a batch returns the whole batch that holds it. */
    sk_buf_reset(&out);
    ck_assert_int_eq(log_part_read(p, 5, 1, &out), LOG_OK);
    ck_assert_uint_eq(out.len, m.size[1]);
    ck_assert_mem_eq(out.data, m.bytes.data + m.pos[1], m.size[1]);

    /* Room for one and a half batches: only whole batches come back. */
    sk_buf_reset(&out);
    ck_assert_int_eq(log_part_read(p, 0, m.size[0] + m.size[1] / 2, &out), LOG_OK);
    ck_assert_uint_eq(out.len, m.size[0]);
    sk_buf_reset(&out);
    ck_assert_int_eq(log_part_read(p, 0, m.size[0] + m.size[1], &out), LOG_OK);
    ck_assert_uint_eq(out.len, m.size[0] + m.size[1]);
    sk_buf_reset(&out);
    ck_assert_int_eq(log_part_read(p, 1, SIZE_MAX, &out), LOG_OK);
    ck_assert_uint_eq(out.len, m.bytes.len);
    ck_assert_mem_eq(out.data, m.bytes.data, m.bytes.len);

    /* Reads append after what the buffer already holds. */
    sk_buf_reset(&out);
    sk_buf_adds(&out, "prefix");
    ck_assert_int_eq(log_part_read(p, 8, 1, &out), LOG_OK);
    ck_assert_uint_eq(out.len, 6 + m.size[2]);
    ck_assert_mem_eq(out.data, "prefix", 6);
    ck_assert_mem_eq(out.data + 6, m.bytes.data + m.pos[2], m.size[2]);
    ck_assert_int_eq(out.data[out.len], '\0');

    sk_buf_release(&out);
    log_close(l);
    model_release(&m);
}
END_TEST

START_TEST(test_log_partitions_independent)
{
    log_config_t cfg = test_cfg();
    log_t *l = open_log(&cfg);
    log_topic_t *t;
    ck_assert_int_eq(log_topic_create(l, "multi", 5, 3, &t, errstr, sizeof errstr), LOG_OK);
    model_t m0, m2;
    model_init(&m0);
    model_init(&m2);
    append_n(log_topic_part(t, 0), &m0, 2, 10, 1000);
    append_n(log_topic_part(t, 2), &m2, 7, 10, 1000);
    append_n(log_topic_part(t, 0), &m0, 1, 10, 1000);
    ck_assert_int_eq(log_part_end_offset(log_topic_part(t, 0)), 3);
    ck_assert_int_eq(log_part_end_offset(log_topic_part(t, 1)), 0);
    ck_assert_int_eq(log_part_end_offset(log_topic_part(t, 2)), 7);
    check_contents(log_topic_part(t, 0), &m0);
    check_contents(log_topic_part(t, 2), &m2);
    ck_assert_int_eq(log_flush_dirty(l), 0);
    ck_assert_int_eq(log_part_flush(log_topic_part(t, 1)), 0);
    log_close(l);
    model_release(&m0);
    model_release(&m2);
}
END_TEST

/* ---- segments and the index ------------------------------------------------ */

START_TEST(test_log_segment_roll)
{
    log_config_t cfg = small_segments_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    fill(p, &m, 120, 1000);

    int64_t bases[256];
    int nseg = list_segments(bases, 256);
    ck_assert_int_ge(nseg, 5);
    ck_assert_int_eq(bases[0], 0);
    int64_t total = 0;
    for (int s = 0; s < nseg; s++) {
        /* Each segment starts at a batch boundary and holds whole batches. */
        int i = model_find(&m, bases[s]);
        ck_assert_int_eq(m.base[i], bases[s]);
        char path[PATH_MAX];
        seg_file(bases[s], "log", path, sizeof path);
        off_t size = file_size(path);
        ck_assert_int_le(size, cfg.segment_bytes);
        ck_assert_int_gt(size, 0);
        int64_t next = s + 1 < nseg ? bases[s + 1] : model_end(&m);
        size_t want = 0;
        for (int k = i; k < m.n && m.base[k] < next; k++)
            want += m.size[k];
        ck_assert_int_eq(size, (off_t)want);
        seg_file(bases[s], "index", path, sizeof path);
        off_t isize = file_size(path);
        ck_assert_int_eq(isize, (isize / 16) * 16);
        if (s + 1 < nseg) ck_assert_int_ge(isize, 16 * 2); /* a full segment has several entries */
        total += size;
        /* A segment rolls only when the next batch would not fit. */
        if (s + 1 < nseg) {
            int nb = model_find(&m, next);
            ck_assert_int_gt(size + (off_t)m.size[nb], cfg.segment_bytes);
        }
    }
    ck_assert_int_eq(total, log_part_size(p));
    check_contents(p, &m);
    check_every_offset(p, &m);

    /* The same after reopening (index files loaded, not rebuilt). */
    log_close(l);
    p = open_part(&cfg, &l);
    check_contents(p, &m);
    check_every_offset(p, &m);
    /* Appends continue in the last segment and roll on as before. */
    fill(p, &m, 40, 50000);
    check_contents(p, &m);
    ck_assert_int_gt(list_segments(bases, 256), nseg);
    log_close(l);
    model_release(&m);
}
END_TEST

START_TEST(test_log_offset_for_time)
{
    log_config_t cfg = small_segments_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    int64_t off, ts;

    log_part_offset_for_time(p, 0, &off, &ts);
    ck_assert_int_eq(off, -1);
    ck_assert_int_eq(ts, -1);

    /* Batch i: records at 10000 + 100 i + 10 k, k < 3; several segments. */
    for (int i = 0; i < 60; i++) {
        bb_spec_t spec = {.base_ts = 10000 + 100 * i, .ts_step = 10, .nrecs = 3, .value_len = 150};
        append(p, &m, &spec);
    }
    ck_assert_int_ge(list_segments((int64_t[64]){0}, 64), 3);

    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 60; i++) {
            for (int k = 0; k < 3; k++) {
                int64_t rec_ts = 10000 + 100 * i + 10 * k;
                /* Exactly a record's timestamp, and just after the previous one. */
                log_part_offset_for_time(p, rec_ts, &off, &ts);
                ck_assert_int_eq(off, m.base[i] + k);
                ck_assert_int_eq(ts, rec_ts);
                log_part_offset_for_time(p, rec_ts - (k ? 9 : 79), &off, &ts);
                ck_assert_int_eq(off, m.base[i] + k);
                ck_assert_int_eq(ts, rec_ts);
            }
        }
        log_part_offset_for_time(p, INT64_MIN, &off, &ts);
        ck_assert_int_eq(off, 0);
        ck_assert_int_eq(ts, 10000);
        log_part_offset_for_time(p, 10000 + 100 * 59 + 21, &off, &ts);
        ck_assert_int_eq(off, -1);
        ck_assert_int_eq(ts, -1);
        /* Again from the loaded index. */
        log_close(l);
        p = open_part(&cfg, &l);
    }

    /* A compressed batch is not searched: its first offset and max timestamp. */
    bb_spec_t gz = {.attributes = 1, .base_ts = 90000, .ts_step = 10, .nrecs = 4, .value_len = 20};
    append(p, &m, &gz);
    log_part_offset_for_time(p, 90015, &off, &ts);
    ck_assert_int_eq(off, m.base[m.n - 1]);
    ck_assert_int_eq(ts, 90030);
    log_close(l);
    model_release(&m);
}
END_TEST

/* ---- recovery -------------------------------------------------------------- */

START_TEST(test_log_recover_torn_tail)
{
    log_config_t cfg = test_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    for (int i = 0; i < 4; i++)
        append_n(p, &m, 3, 200, 1000);
    log_close(l);

    /* Cut the last batch in the middle, as a crash during write would. */
    char path[PATH_MAX];
    seg_file(0, "log", path, sizeof path);
    ck_assert_int_eq(file_size(path), (off_t)m.bytes.len);
    ck_assert_int_eq(truncate(path, (off_t)(m.pos[3] + m.size[3] / 2)), 0);

    p = open_part(&cfg, &l);
    model_truncate(&m, 3);
    ck_assert_int_eq(log_part_end_offset(p), m.next[2]);
    ck_assert_int_eq(log_part_size(p), (int64_t)m.bytes.len);
    ck_assert_int_eq(file_size(path), (off_t)m.bytes.len); /* truncated on disk */
    check_contents(p, &m);
    check_every_offset(p, &m);
    /* The next append takes the freed offsets. */
    append_n(p, &m, 2, 10, 1000);
    ck_assert_int_eq(m.base[3], 9);
    log_close(l);

    /* A tail shorter than a batch header, and one shorter than 12 bytes. */
    static const size_t tails[] = {30, 5};
    for (size_t i = 0; i < 2; i++) {
        size_t keep = tails[i];
        int fd = open(path, O_WRONLY | O_APPEND);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(sk_write_all(fd, m.bytes.data, keep), 0); /* the start of a batch */
        close(fd);
        p = open_part(&cfg, &l);
        ck_assert_int_eq(log_part_end_offset(p), model_end(&m));
        ck_assert_int_eq(file_size(path), (off_t)m.bytes.len);
        check_contents(p, &m);
        log_close(l);
    }
    model_release(&m);
}
END_TEST

START_TEST(test_log_recover_corrupt_batch)
{
    log_config_t cfg = test_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    for (int i = 0; i < 6; i++)
        append_n(p, &m, 2, 100, 1000);
    log_close(l);

    /* Flip one bit inside the records of the last batch. */
    char path[PATH_MAX];
    seg_file(0, "log", path, sizeof path);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    off_t at = (off_t)(m.pos[5] + BATCH_HEADER_LEN + 20);
    uint8_t c;
    ck_assert_int_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);

    p = open_part(&cfg, &l);
    model_truncate(&m, 5);
    ck_assert_int_eq(log_part_end_offset(p), m.next[4]);
    ck_assert_int_eq(file_size(path), (off_t)m.bytes.len);
    check_contents(p, &m);
    log_close(l);

    /* A corrupt batch in the middle: it and everything after it go. */
    fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    at = (off_t)(m.pos[2] + m.size[2] - 1);
    ck_assert_int_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x01;
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);
    p = open_part(&cfg, &l);
    model_truncate(&m, 2);
    ck_assert_int_eq(log_part_end_offset(p), m.next[1]);
    ck_assert_int_eq(file_size(path), (off_t)m.bytes.len);
    check_contents(p, &m);
    append_n(p, &m, 1, 10, 1000);
    ck_assert_int_eq(m.base[2], 4);
    check_contents(p, &m);
    log_close(l);
    model_release(&m);
}
END_TEST

START_TEST(test_log_recover_last_segment)
{
    /* Recovery works on the last of several segments. */
    log_config_t cfg = small_segments_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    fill(p, &m, 60, 1000);
    /* Make sure the last segment holds at least two batches. */
    int64_t bases[64];
    int nseg = list_segments(bases, 64);
    while (m.base[m.n - 1] == bases[nseg - 1]) {
        append_n(p, &m, 1, 10, 1000);
        nseg = list_segments(bases, 64);
    }
    log_close(l);

    char path[PATH_MAX];
    seg_file(bases[nseg - 1], "log", path, sizeof path);
    ck_assert_int_eq(truncate(path, file_size(path) - 3), 0);
    p = open_part(&cfg, &l);
    model_truncate(&m, m.n - 1);
    ck_assert_int_eq(log_part_end_offset(p), model_end(&m));
    check_contents(p, &m);
    check_every_offset(p, &m);
    log_close(l);
    model_release(&m);
}
END_TEST

/* Writes garbage over a whole file. */
static void scribble(const char *path, uint8_t byte)
{
    off_t size = file_size(path);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    for (off_t i = 0; i < size; i++)
        ck_assert_int_eq(pwrite(fd, &byte, 1, i), 1);
    close(fd);
}

START_TEST(test_log_recover_index)
{
    log_config_t cfg = small_segments_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    fill(p, &m, 150, 1000);
    int64_t bases[256];
    int nseg = list_segments(bases, 256);
    ck_assert_int_ge(nseg, 6);
    log_close(l);

    char path[PATH_MAX];
    /* Segment 0: index gone. */
    seg_file(bases[0], "index", path, sizeof path);
    ck_assert_int_eq(unlink(path), 0);
    /* Segment 1: index full of garbage. */
    seg_file(bases[1], "index", path, sizeof path);
    scribble(path, 0xab);
    /* Segment 2: index cut to a partial entry. */
    seg_file(bases[2], "index", path, sizeof path);
    ck_assert_int_eq(truncate(path, 16 + 10), 0);
    /* Segment 3: index emptied. */
    seg_file(bases[3], "index", path, sizeof path);
    ck_assert_int_eq(truncate(path, 0), 0);

    p = open_part(&cfg, &l);
    check_contents(p, &m);
    check_every_offset(p, &m);
    for (int s = 0; s < 4; s++) {
        seg_file(bases[s], "index", path, sizeof path);
        off_t isize = file_size(path);
        ck_assert_msg(isize >= 32 && isize % 16 == 0, "segment %d index: %lld bytes", s,
                      (long long)isize);
    }
    check_every_time(p, &m, 1000);
    log_close(l);

    /* The rebuilt indexes are good on the next open too. */
    p = open_part(&cfg, &l);
    check_every_offset(p, &m);
    log_close(l);
    model_release(&m);
}
END_TEST

/* Rewrites index entry k of a segment's index (16 bytes: rel, pos, ts). */
static void index_entry_edit(int64_t base, int k, int32_t drel, int32_t dpos)
{
    char path[PATH_MAX];
    seg_file(base, "index", path, sizeof path);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    off_t nent = file_size(path) / 16;
    if (k < 0) k += (int)nent;
    ck_assert(k >= 0 && k < nent);
    uint8_t e[16];
    ck_assert_int_eq(pread(fd, e, 16, (off_t)k * 16), 16);
    sk_store_i32(e, sk_load_i32(e) + drel);
    sk_store_i32(e + 4, sk_load_i32(e + 4) + dpos);
    ck_assert_int_eq(pwrite(fd, e, 16, (off_t)k * 16), 16);
    close(fd);
}

START_TEST(test_log_recover_index_plausible)
{
    /* Index entries that are well formed and in order but point at the wrong
     * place are damage too: reads must still find every offset. */
    log_config_t cfg = small_segments_cfg();
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    fill(p, &m, 150, 1000);
    int64_t bases[256];
    int nseg = list_segments(bases, 256);
    ck_assert_int_ge(nseg, 6);
    log_close(l);

    static const struct {
        int entry; /* -1: the last */
        int32_t drel, dpos;
    } edits[] = {
        {-1, 0, 1}, /* last entry: position one byte late */
        {-1, 1, 0}, /* last entry: offset one too high */
        {1, 0, 1},  /* a middle entry: position one byte late */
        {1, 1, 0},  /* a middle entry: offset one too high */
    };
    index_entry_edit(bases[1], edits[_i].entry, edits[_i].drel, edits[_i].dpos);

    p = open_part(&cfg, &l);
    check_contents(p, &m);
    check_every_offset(p, &m);
    check_every_time(p, &m, 1000);
    log_close(l);
    model_release(&m);
}
END_TEST

/* ---- retention ------------------------------------------------------------- */

START_TEST(test_log_retention_bytes)
{
    log_config_t cfg = small_segments_cfg();
    cfg.retention_bytes = 3 * 4096;
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    fill(p, &m, 150, 1000);
    int64_t before[256], after[256];
    int nbefore = list_segments(before, 256);
    ck_assert_int_ge(nbefore, 8);

    int deleted = log_retention_run(l, 1000);
    ck_assert_int_gt(deleted, 0);
    int nafter = list_segments(after, 256);
    ck_assert_int_eq(nafter, nbefore - deleted);
    /* The newest segments stay, the oldest went. */
    for (int i = 0; i < nafter; i++)
        ck_assert_int_eq(after[i], before[i + deleted]);
    ck_assert_int_eq(log_part_start_offset(p), after[0]);
    ck_assert_int_eq(log_part_end_offset(p), model_end(&m));
    /* Kept: at least retention_bytes, and deleting one more would go under. */
    int64_t size = log_part_size(p);
    char path[PATH_MAX];
    seg_file(after[0], "log", path, sizeof path);
    ck_assert_int_ge(size, cfg.retention_bytes);
    ck_assert_int_lt(size - file_size(path), cfg.retention_bytes);
    seg_file(before[0], "log", path, sizeof path);
    ck_assert(!file_exists(path));
    seg_file(before[0], "index", path, sizeof path);
    ck_assert(!file_exists(path));

    sk_buf_t out;
    sk_buf_init(&out, 0);
    ck_assert_int_eq(log_part_read(p, after[0] - 1, 1, &out), LOG_ERR_OUT_OF_RANGE);
    ck_assert_int_eq(log_part_read(p, 0, 1, &out), LOG_ERR_OUT_OF_RANGE);
    ck_assert_uint_eq(out.len, 0);
    check_contents(p, &m);
    check_every_offset(p, &m);
    ck_assert_int_eq(log_retention_run(l, 1000), 0); /* nothing more to do */

    /* The log start survives a reopen. */
    log_close(l);
    p = open_part(&cfg, &l);
    ck_assert_int_eq(log_part_start_offset(p), after[0]);
    ck_assert_int_eq(log_part_end_offset(p), model_end(&m));
    check_contents(p, &m);
    sk_buf_release(&out);
    log_close(l);
    model_release(&m);
}
END_TEST

START_TEST(test_log_retention_time)
{
    const int64_t day = 24 * 3600 * 1000LL, now = INT64_C(1700000000000);
    log_config_t cfg = small_segments_cfg();
    cfg.retention_ms = 7 * day;
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    fill(p, &m, 50, now - 30 * day); /* a month old */
    int64_t mark = model_end(&m);
    fill(p, &m, 50, now - day); /* yesterday */
    int64_t before[256], after[256];
    int nbefore = list_segments(before, 256);

    /* Retention is a no-op when nothing is old enough. */
    ck_assert_int_eq(log_retention_run(l, now - 24 * day), 0);
    int deleted = log_retention_run(l, now);
    ck_assert_int_gt(deleted, 0);
    int nafter = list_segments(after, 256);
    ck_assert_int_eq(nafter, nbefore - deleted);
    /* Every segment with only old batches went; the one holding the first
     * recent batch (and all after) stayed. */
    int64_t start = log_part_start_offset(p);
    ck_assert_int_eq(start, after[0]);
    ck_assert_int_le(start, mark);
    int seg_of_mark = 0;
    for (int i = 0; i < nbefore; i++)
        if (before[i] <= mark) seg_of_mark = i;
    ck_assert_int_eq(start, before[seg_of_mark]);
    check_contents(p, &m);

    sk_buf_t out;
    sk_buf_init(&out, 0);
    ck_assert_int_eq(log_part_read(p, start - 1, 1, &out), LOG_ERR_OUT_OF_RANGE);
    sk_buf_release(&out);
    log_close(l);
    model_release(&m);
}
END_TEST

START_TEST(test_log_retention_keeps_active)
{
    const int64_t now = INT64_C(1700000000000);
    log_config_t cfg = small_segments_cfg();
    cfg.retention_ms = 1000;
    cfg.retention_bytes = 0;
    log_t *l;
    log_part_t *p = open_part(&cfg, &l);
    model_t m;
    model_init(&m);
    fill(p, &m, 60, 1000); /* everything ancient */
    int64_t bases[256];
    int nbefore = list_segments(bases, 256);
    ck_assert_int_ge(nbefore, 3);
    int64_t active = bases[nbefore - 1];

    ck_assert_int_eq(log_retention_run(l, now), nbefore - 1);
    ck_assert_int_eq(list_segments(bases, 256), 1);
    ck_assert_int_eq(bases[0], active);
    ck_assert_int_eq(log_part_start_offset(p), active);
    ck_assert_int_eq(log_part_end_offset(p), model_end(&m));
    check_contents(p, &m);
    ck_assert_int_eq(log_retention_run(l, now), 0);

    /* Appends go on; once the active segment rolls, it may go too. */
    fill(p, &m, 30, 2000);
    ck_assert_int_gt(log_retention_run(l, now), 0);
    ck_assert_int_eq(list_segments(bases, 256), 1);
    check_contents(p, &m);
    log_close(l);
    model_release(&m);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("topics");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_log_topic_names);
    tcase_add_test(tc, test_log_topic_create);
    tcase_add_test(tc, test_log_reopen_topics);
    tcase_add_test(tc, test_log_dir_locked);
    suite_add_tcase(s, tc);

    tc = tcase_create("append_read");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_log_append_offsets);
    tcase_add_test(tc, test_log_append_malformed);
    tcase_add_test(tc, test_log_read_edges);
    tcase_add_test(tc, test_log_partitions_independent);
    tcase_add_test(tc, test_log_segment_roll);
    tcase_add_test(tc, test_log_offset_for_time);
    suite_add_tcase(s, tc);

    tc = tcase_create("recovery");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_log_recover_torn_tail);
    tcase_add_test(tc, test_log_recover_corrupt_batch);
    tcase_add_test(tc, test_log_recover_last_segment);
    tcase_add_test(tc, test_log_recover_index);
    tcase_add_loop_test(tc, test_log_recover_index_plausible, 0, 4);
    suite_add_tcase(s, tc);

    tc = tcase_create("retention");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_log_retention_bytes);
    tcase_add_test(tc, test_log_retention_time);
    tcase_add_test(tc, test_log_retention_keeps_active);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
