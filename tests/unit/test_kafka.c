/*
 * test_kafka.c - byte-vector tests of the Kafka codec and API handlers
 * (broker/kafka), run through kp_handle_frame() with no sockets.
 *
 * Each test gets a fresh broker_t (fixture: a mkdtemp data dir, log_open and
 * offsets_open on it, no event base so nothing is deferred).  Most tests are
 * tables of steps {request, expected response, expected action} run in order
 * against that broker, so a Produce step can be followed by the Fetch that
 * reads it back.
 *
 * Vector notation (vec_parse), whitespace and '|' ignored:
 *   0a1b...    hex bytes, two digits each
 *   'text'     the raw bytes of text ('' inside stands for one quote)
 *   s'text'    Kafka STRING: INT16 length + bytes
 *   c'text'    Kafka COMPACT_STRING: UVARINT length+1 + bytes
 *   @X         the bytes of blob X (X in 0-9, A-Z), built by the test
 *   #X         INT32 length of blob X (a BYTES/RECORDS length prefix)
 * A request is the frame body starting at api_key (size prefix removed).  An
 * expected response is written from the correlation id on; the 4-byte size
 * in front of it is derived from its length, and the whole response frame,
 * size included, is compared byte for byte.
 */
#include <check.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ut.h"
#include "batch.h"
#include "broker.h"
#include "group.h"
#include "kafka.h"
#include "log.h"
#include "offsets.h"
#include "proto.h"
#include "sk_buf.h"
#include "sk_crc32c.h"
#include "sk_log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixture ------------------------------------------------------------- */

static broker_t g_b;
static char g_dir[512];
static char g_host[] = "127.0.0.1";

#define NBLOBS 36
static sk_buf_t g_blob[NBLOBS];

static int blob_slot(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'Z') return 10 + c - 'A';
    return -1;
}

static sk_buf_t *blob(char c)
{
    int s = blob_slot(c);
    ck_assert_msg(s >= 0, "bad blob name '%c'", c);
    return &g_blob[s];
}

static void setup_blobs(void);

static void setup(void)
{
    char err[256];
    memset(&g_b, 0, sizeof g_b);
    ut_mkdtemp(g_dir, sizeof g_dir, "kafka");

    g_b.cfg.data_dir = g_dir;
    g_b.cfg.partitions = 4;
    g_b.cfg.auto_create_topics = 1;
    g_b.cfg.flush_ms = 1000;
    g_b.cfg.max_request_bytes = 64 << 20;
    g_b.cfg.segment_bytes = 64 << 20;
    g_b.cfg.segment_ms = -1;
    g_b.cfg.retention_ms = -1;
    g_b.cfg.retention_bytes = -1;
    g_b.cfg.retention_check_ms = 300000;
    g_b.cfg.index_interval_bytes = 4096;

    log_config_t lc = {
        .dir = g_dir,
        .default_partitions = (int32_t)g_b.cfg.partitions,
        .segment_bytes = g_b.cfg.segment_bytes,
        .segment_ms = g_b.cfg.segment_ms,
        .retention_ms = g_b.cfg.retention_ms,
        .retention_bytes = g_b.cfg.retention_bytes,
        .index_interval_bytes = g_b.cfg.index_interval_bytes,
    };
    g_b.log = log_open(&lc, err, sizeof err);
    ck_assert_msg(g_b.log != NULL, "log_open: %s", err);
    g_b.offsets = offsets_open(g_dir, err, sizeof err);
    ck_assert_msg(g_b.offsets != NULL, "offsets_open: %s", err);
    g_b.base = NULL; /* no server: nothing is deferred */
    g_b.adv_host = g_host;
    g_b.adv_port = 9092;
    g_b.node_id = 1;

    for (int i = 0; i < NBLOBS; i++)
        sk_buf_init(&g_blob[i], 64);
    setup_blobs();
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    if (g_b.groups) grp_coord_free(g_b.groups);
    offsets_close(g_b.offsets);
    log_close(g_b.log);
    for (int i = 0; i < NBLOBS; i++)
        sk_buf_release(&g_blob[i]);
    nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static log_topic_t *mk_topic(const char *name, int32_t n)
{
    char err[256];
    log_topic_t *t = NULL;
    log_err_t e = log_topic_create(g_b.log, name, strlen(name), n, &t, err, sizeof err);
    ck_assert_msg(e == LOG_OK, "creating %s: %s", name, err);
    return t;
}

static int64_t end_offset(const char *topic, int32_t part)
{
    log_topic_t *t = log_topic_find(g_b.log, topic, strlen(topic));
    ck_assert_ptr_nonnull(t);
    log_part_t *p = log_topic_part(t, part);
    ck_assert_ptr_nonnull(p);
    return log_part_end_offset(p);
}

/* ---- vectors ------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Appends the bytes that spec describes (notation at the top) to out. */
static void vec_parse(sk_buf_t *out, const char *spec)
{
    const char *p = spec;
    while (*p) {
        char c = *p;
        if (c == ' ' || c == '|' || c == '\n' || c == '\t') {
            p++;
            continue;
        }
        if (c == '\'' || ((c == 's' || c == 'c') && p[1] == '\'')) {
            char kind = c == '\'' ? 0 : c;
            p += kind ? 2 : 1;
            sk_buf_t txt;
            sk_buf_init(&txt, 32);
            for (;;) {
                ck_assert_msg(*p != '\0', "vector: unterminated string in \"%s\"", spec);
                if (*p == '\'') {
                    if (p[1] == '\'') {
                        sk_buf_addc(&txt, '\'');
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                sk_buf_addc(&txt, *p++);
            }
            if (kind == 's')
                sk_buf_add_i16(out, (int16_t)txt.len);
            else if (kind == 'c')
                sk_buf_add_uvarint(out, (uint64_t)txt.len + 1);
            sk_buf_add(out, txt.data, txt.len);
            sk_buf_release(&txt);
            continue;
        }
        if (c == '@' || c == '#') {
            ck_assert_msg(blob_slot(p[1]) >= 0, "vector: bad blob name in \"%s\"", spec);
            sk_buf_t *b = blob(p[1]);
            if (c == '@')
                sk_buf_add(out, b->data, b->len);
            else
                sk_buf_add_i32(out, (int32_t)b->len);
            p += 2;
            continue;
        }
        int hi = hexval(c), lo = hexval(p[1]);
        ck_assert_msg(hi >= 0 && lo >= 0, "vector: bad hex at \"%.12s\" in \"%s\"", p, spec);
        sk_buf_addc(out, (char)(hi << 4 | lo));
        p += 2;
    }
}

static void hexdump(FILE *f, const char *title, const uint8_t *p, size_t n, size_t mark)
{
    fprintf(f, "%s (%zu bytes):\n", title, n);
    for (size_t i = 0; i < n; i += 16) {
        fprintf(f, "  %04zx ", i);
        for (size_t k = i; k < i + 16 && k < n; k++)
            fprintf(f, k == mark ? "[%02x]" : " %02x ", p[k]);
        fprintf(f, "\n");
    }
}

static void expect_bytes(const char *name, const uint8_t *got, size_t got_len, const uint8_t *want,
                         size_t want_len)
{
    size_t i = 0;
    while (i < got_len && i < want_len && got[i] == want[i])
        i++;
    if (i == got_len && i == want_len) return;
    fprintf(stderr, "%s: response differs at byte %zu\n", name, i);
    hexdump(stderr, "expected", want, want_len, i);
    hexdump(stderr, "got", got, got_len, i);
    ck_abort_msg("%s: response differs at byte %zu (got %zu bytes, expected %zu); dumps on stderr",
                 name, i, got_len, want_len);
}

typedef struct step_s {
    const char *name;
    const char *req;  /* frame body from api_key */
    const char *resp; /* from the correlation id on; only with KP_RESPOND */
    kp_action_t act;
} step_t;

#define RESP(n, q, r)                                                                              \
    {                                                                                              \
        n, q, r, KP_RESPOND                                                                        \
    }
#define NORESP(n, q)                                                                               \
    {                                                                                              \
        n, q, NULL, KP_NO_RESPONSE                                                                 \
    }
#define CLOSE(n, q)                                                                                \
    {                                                                                              \
        n, q, NULL, KP_CLOSE                                                                       \
    }

/* A frame in its own exactly-sized allocation, so that ASan sees overreads. */
static uint8_t *frame_dup(const sk_buf_t *b, size_t len)
{
    uint8_t *f = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(f);
    if (len) memcpy(f, b->data, len);
    return f;
}

static const char OUT_PREFIX[] = "xyz"; /* the handler must append after it */

static kp_action_t handle(uint8_t *frame, size_t len, sk_buf_t *out, kp_ctx_t *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->b = &g_b;
    ctx->peer = "test";
    ctx->can_defer = 0;
    sk_buf_reset(out);
    sk_buf_adds(out, OUT_PREFIX);
    return kp_handle_frame(ctx, frame, len, out);
}

static void run_step(const step_t *s)
{
    sk_buf_t rq, out, want;
    kp_ctx_t ctx;
    sk_buf_init(&rq, 128);
    sk_buf_init(&out, 256);
    vec_parse(&rq, s->req);
    uint8_t *frame = frame_dup(&rq, rq.len);
    kp_action_t a = handle(frame, rq.len, &out, &ctx);
    ck_assert_msg(a == s->act, "%s: action %d, expected %d (%s)", s->name, (int)a, (int)s->act,
                  ctx.errstr);
    ck_assert_msg(ctx.fetch == NULL, "%s: a fetch was deferred", s->name);
    ck_assert_msg(memcmp(out.data, OUT_PREFIX, 3) == 0,
                  "%s: output before the response was touched", s->name);
    if (a == KP_RESPOND) {
        sk_buf_init(&want, 256);
        sk_buf_add_i32(&want, 0);
        vec_parse(&want, s->resp);
        sk_buf_put_i32(&want, 0, (int32_t)(want.len - 4));
        expect_bytes(s->name, (const uint8_t *)out.data + 3, out.len - 3,
                     (const uint8_t *)want.data, want.len);
        sk_buf_release(&want);
    } else {
        ck_assert_msg(out.len == 3, "%s: %zu bytes written without a response", s->name,
                      out.len - 3);
        if (a == KP_CLOSE)
            ck_assert_msg(ctx.errstr[0] != '\0', "%s: KP_CLOSE without errstr", s->name);
    }
    free(frame);
    sk_buf_release(&rq);
    sk_buf_release(&out);
}

static void run_steps(const step_t *steps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        run_step(&steps[i]);
}

/* ---- record batches ------------------------------------------------------ */

#define T0 INT64_C(1700000000000) /* 0x0000018bcfe56800 */

/*
 * Appends a record batch v2 (magic 2, uncompressed) of nrec records with
 * timestamps base_ts + i and offset deltas i: record i has key "key-i" when i
 * is odd (null otherwise), value "value-i", and record 0 one header h=v.
 */
static void build_batch(sk_buf_t *b, int64_t base_offset, int64_t base_ts, int nrec)
{
    size_t start = b->len;
    sk_buf_add_i64(b, base_offset);
    size_t len_at = sk_buf_reserve(b, 4);
    sk_buf_add_i32(b, 0); /* partitionLeaderEpoch */
    sk_buf_add_i8(b, 2);  /* magic */
    size_t crc_at = sk_buf_reserve(b, 4);
    sk_buf_add_i16(b, 0);        /* attributes */
    sk_buf_add_i32(b, nrec - 1); /* lastOffsetDelta */
    sk_buf_add_i64(b, base_ts);
    sk_buf_add_i64(b, base_ts + nrec - 1); /* maxTimestamp */
    sk_buf_add_i64(b, -1);                 /* producerId */
    sk_buf_add_i16(b, -1);                 /* producerEpoch */
    sk_buf_add_i32(b, -1);                 /* baseSequence */
    sk_buf_add_i32(b, nrec);
    for (int i = 0; i < nrec; i++) {
        char key[32], val[32];
        int kl = snprintf(key, sizeof key, "key-%d", i),
            vl = snprintf(val, sizeof val, "value-%d", i);
        sk_buf_t r;
        sk_buf_init(&r, 64);
        sk_buf_add_i8(&r, 0);     /* attributes */
        sk_buf_add_varint(&r, i); /* timestampDelta */
        sk_buf_add_varint(&r, i); /* offsetDelta */
        if (i % 2) {
            sk_buf_add_varint(&r, kl);
            sk_buf_add(&r, key, (size_t)kl);
        } else {
            sk_buf_add_varint(&r, -1);
        }
        sk_buf_add_varint(&r, vl);
        sk_buf_add(&r, val, (size_t)vl);
        sk_buf_add_varint(&r, i == 0 ? 1 : 0);
        if (i == 0) {
            sk_buf_add_varint(&r, 1);
            sk_buf_addc(&r, 'h');
            sk_buf_add_varint(&r, 1);
            sk_buf_addc(&r, 'v');
        }
        sk_buf_add_varint(b, (int64_t)r.len);
        sk_buf_add(b, r.data, r.len);
        sk_buf_release(&r);
    }
    sk_buf_put_i32(b, len_at, (int32_t)(b->len - start - BATCH_LOG_OVERHEAD));
    uint32_t crc = sk_crc32c(0, b->data + start + 21, b->len - start - 21);
    sk_buf_put_i32(b, crc_at, (int32_t)crc);
}

static void batch_recrc(uint8_t *p, size_t len)
{
    sk_store_i32(p + 17, (int32_t)sk_crc32c(0, p + 21, len - 21));
}

/*
 * Sets blob slot to the concatenation of n stored batches: n pairs
 * (int src_slot, int64_t base_offset), each a copy of the batch in src_slot
 * with baseOffset rewritten, as the log stores and Fetch returns it.
 */
static void blob_stored(char slot, int n, ...)
{
    sk_buf_t *dst = blob(slot);
    va_list ap;
    sk_buf_reset(dst);
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        int src = va_arg(ap, int);
        int64_t base = va_arg(ap, int64_t);
        sk_buf_t *s = blob((char)src);
        size_t at = dst->len;
        sk_buf_add(dst, s->data, s->len);
        sk_store_i64(dst->data + at, base);
    }
    va_end(ap);
}

/* Expected advertised ranges (kafka-subset.md §1.1).  optional: present only
 * if kp_api_table speaks the API (the group APIs are being added separately);
 * min -1: the range is taken from the table. */
typedef struct api_range_s {
    int16_t key, min, max, flex_from;
    int optional;
} api_range_t;

static const api_range_t expected_apis[] = {
    {KP_API_Produce, 0, 7, 9, 0},         {KP_API_Fetch, 4, 11, 12, 0},
    {KP_API_ListOffsets, 1, 2, 6, 0},     {KP_API_Metadata, 0, 4, 9, 0},
    {KP_API_OffsetCommit, 2, 7, 8, 0},    {KP_API_OffsetFetch, 1, 5, 6, 0},
    {KP_API_FindCoordinator, 0, 2, 3, 0}, {KP_API_JoinGroup, 0, 5, 6, 1},
    {KP_API_Heartbeat, 0, 3, 4, 1},       {KP_API_LeaveGroup, 0, 1, 4, 1},
    {KP_API_SyncGroup, 0, 3, 4, 1},       {KP_API_DescribeGroups, -1, -1, -1, 1},
    {KP_API_ListGroups, -1, -1, -1, 1},   {KP_API_ApiVersions, 0, 3, 3, 0},
    {KP_API_CreateTopics, 2, 4, 5, 0},
};

/*
 * Blobs shared by the request vectors:
 *   0  batch A: 2 records, timestamps T0, T0+1
 *   1  batch B: 3 records, timestamps T0+1000 .. T0+1002
 *   2  batch A with one value byte changed (CRC mismatch)
 *   3  batch A with compression codec 5 (CRC recomputed)
 *   4  batch A with magic 1
 *   5  the first 30 bytes of batch A
 *   6  batch A followed by blob 2
 *   M  STRING of 4097 'x' (commit metadata above the 4096 limit)
 *   N  STRING of 4096 'y'
 *   V  ApiVersions api_keys, classic array (v0-v2)
 *   W  ApiVersions api_keys, compact array (v3)
 * R-U are set by tests to the records a Fetch is expected to return.
 */
static void setup_blobs(void)
{
    build_batch(blob('0'), 0, T0, 2);
    build_batch(blob('1'), 0, T0 + 1000, 3);

    sk_buf_t *a = blob('0');
    sk_buf_add(blob('2'), a->data, a->len);
    blob('2')->data[a->len - 3] ^= 0x01;

    sk_buf_add(blob('3'), a->data, a->len);
    blob('3')->data[21] = 0; /* attributes = 0x0005 */
    blob('3')->data[22] = 5;
    batch_recrc((uint8_t *)blob('3')->data, blob('3')->len);

    sk_buf_add(blob('4'), a->data, a->len);
    blob('4')->data[16] = 1;

    sk_buf_add(blob('5'), a->data, 30);

    sk_buf_add(blob('6'), a->data, a->len);
    sk_buf_add(blob('6'), blob('2')->data, blob('2')->len);

    sk_buf_add_i16(blob('M'), 4097);
    for (int i = 0; i < 4097; i++)
        sk_buf_addc(blob('M'), 'x');
    sk_buf_add_i16(blob('N'), 4096);
    for (int i = 0; i < 4096; i++)
        sk_buf_addc(blob('N'), 'y');

    int n = 0;
    sk_buf_t entries, centries;
    sk_buf_init(&entries, 128);
    sk_buf_init(&centries, 128);
    for (size_t i = 0; i < ARRAY_SIZE(expected_apis); i++) {
        const api_range_t *r = &expected_apis[i];
        const kp_api_t *api = kp_api_get(r->key);
        if (r->optional && !api) continue;
        int16_t min = r->min >= 0 ? r->min : api->min_ver,
                max = r->min >= 0 ? r->max : api->max_ver;
        sk_buf_add_i16(&entries, r->key);
        sk_buf_add_i16(&entries, min);
        sk_buf_add_i16(&entries, max);
        sk_buf_add_i16(&centries, r->key);
        sk_buf_add_i16(&centries, min);
        sk_buf_add_i16(&centries, max);
        sk_buf_add_uvarint(&centries, 0);
        n++;
    }
    sk_buf_add_i32(blob('V'), n);
    sk_buf_add(blob('V'), entries.data, entries.len);
    sk_buf_add_uvarint(blob('W'), (uint64_t)n + 1);
    sk_buf_add(blob('W'), centries.data, centries.len);
    sk_buf_release(&entries);
    sk_buf_release(&centries);
}

/* ---- common vector pieces ------------------------------------------------ */

#define CID " s'test' "
#define HOSTPORT " s'127.0.0.1' 00002384 "
#define BROKERS_V0 " 00000001 00000001" HOSTPORT
#define BROKERS_V1 " 00000001 00000001" HOSTPORT "ffff "
#define CLUSTER " s'souk-cluster' "
#define MDP(i) " 0000 0000000" #i " 00000001 00000001 00000001 00000001 00000001"
#define MD_PARTS2 " 00000002" MDP(0) MDP(1) " "
#define MD_PARTS3 " 00000003" MDP(0) MDP(1) MDP(2) " "
#define MD_PARTS4 " 00000004" MDP(0) MDP(1) MDP(2) MDP(3) " "
#define NO_PARTS " 00000000 "

/* Produce v3+ of one batch (blob b) to t1 partition p with acks a. */
#define PRODUCE(ver, corr, acks, topic, part, b)                                                   \
    "0000 " ver " " corr CID "ffff " acks " 00007530 00000001 s'" topic "' 00000001 " part " #" b  \
    " @" b
/* Fetch v11 of one partition; records limit pmax. */
#define FETCH11(corr, topic, part, off, pmax)                                                      \
    "0001 000b " corr CID                                                                          \
    "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff 00000001 s'" topic                   \
    "' 00000001 " part " ffffffff " off " ffffffffffffffff " pmax " 00000000 s''"
#define FETCH11_RESP(corr, topic, part, err, hw, ls, records)                                      \
    corr " 00000000 0000 00000000 00000001 s'" topic "' 00000001 " part " " err " " hw " " hw      \
         " " ls " 00000000 ffffffff " records
#define LO1(corr, ts) "0002 0001 " corr CID "ffffffff 00000001 s't1' 00000001 00000000 " ts
#define LO1_RESP(corr, err, ts, off) corr " 00000001 s't1' 00000001 00000000 " err " " ts " " off
#define LO2(corr, ts) "0002 0002 " corr CID "ffffffff 00 00000001 s't1' 00000001 00000000 " ts
#define LO2_RESP(corr, err, ts, off)                                                               \
    corr " 00000000 00000001 s't1' 00000001 00000000 " err " " ts " " off

#define NONE " ffffffffffffffff "

/* ---- CRC-32C and batch builder ------------------------------------------- */

START_TEST(test_crc32c_and_batch)
{
    /* The CRC-32C check value. */
    ck_assert_uint_eq(sk_crc32c(0, "123456789", 9), 0xe3069283u);
    ck_assert_uint_eq(sk_crc32c_sw(0, "123456789", 9), 0xe3069283u);
    batch_hdr_t h;
    int nb;
    size_t bad;
    ck_assert_int_eq(batch_validate((uint8_t *)blob('0')->data, blob('0')->len, &h), BATCH_OK);
    ck_assert_int_eq(h.records_count, 2);
    ck_assert_int_eq(h.last_offset_delta, 1);
    ck_assert_uint_eq(batch_size(&h), blob('0')->len);
    ck_assert_int_eq(batch_validate((uint8_t *)blob('1')->data, blob('1')->len, &h), BATCH_OK);
    ck_assert_int_eq(h.records_count, 3);
    ck_assert_int_eq(batch_validate((uint8_t *)blob('2')->data, blob('2')->len, &h), BATCH_BAD_CRC);
    ck_assert_int_eq(batch_validate((uint8_t *)blob('3')->data, blob('3')->len, &h),
                     BATCH_BAD_CODEC);
    ck_assert_int_eq(batch_validate((uint8_t *)blob('4')->data, blob('4')->len, &h),
                     BATCH_BAD_MAGIC);
    ck_assert_int_eq(batch_validate_all((uint8_t *)blob('6')->data, blob('6')->len, &nb, &bad),
                     BATCH_BAD_CRC);
    ck_assert_uint_eq(bad, blob('0')->len);
}
END_TEST

/* ---- API table ----------------------------------------------------------- */

START_TEST(test_api_table)
{
    for (int k = -2; k < KP_API__MAX + 100; k++) {
        const kp_api_t *api = kp_api_get((int16_t)k);
        const api_range_t *r = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(expected_apis); i++)
            if (expected_apis[i].key == k) r = &expected_apis[i];
        if (!r || (r->optional && !api)) {
            ck_assert_msg(api == NULL, "API key %d is spoken but not expected", k);
            continue;
        }
        ck_assert_msg(api != NULL, "API key %d missing", k);
        if (r->min < 0) continue;
        ck_assert_msg(api->min_ver == r->min && api->max_ver == r->max &&
                          api->flex_from == r->flex_from,
                      "%s: advertised %d-%d flex %d, expected %d-%d flex %d", api->name,
                      api->min_ver, api->max_ver, api->flex_from, r->min, r->max, r->flex_from);
    }
}
END_TEST

/* ---- framing ------------------------------------------------------------- */

typedef struct frame_vec_s {
    const char *name;
    const char *bytes;
    size_t max;
    kp_frame_result_t r;
    size_t frame_len; /* SIZE_MAX: not set */
} frame_vec_t;

static const frame_vec_t frame_vecs[] = {
    {"nothing yet", "", 1024, KP_FRAME_AGAIN, SIZE_MAX},
    {"3 bytes of the size", "000000", 1024, KP_FRAME_AGAIN, SIZE_MAX},
    {"size 0", "00000000", 1024, KP_FRAME_ERROR, 4},
    {"size 9 (below a header)", "00000009 0012 0000 00000001 ff", 1024, KP_FRAME_ERROR, 13},
    {"size -1", "ffffffff", 1024, KP_FRAME_ERROR, 0},
    {"size INT32_MIN", "80000000 0012", 1024, KP_FRAME_ERROR, 0},
    {"size 10, 2 bytes here", "0000000a 0012", 1024, KP_FRAME_AGAIN, 14},
    {"size 10, 9 bytes here", "0000000a 0012 0000 00000001 ff", 1024, KP_FRAME_AGAIN, 14},
    {"size 10, whole", "0000000a 0012 0000 00000001 ffff", 1024, KP_FRAME_OK, 14},
    {"size 10, then more", "0000000a 0012 0000 00000001 ffff 0000000a 0012", 1024, KP_FRAME_OK, 14},
    {"size = max, partial", "00000400 0003", 1024, KP_FRAME_AGAIN, 1028},
    {"size = max + 1", "00000401 0003", 1024, KP_FRAME_ERROR, 1029},
    {"64 MiB + 1 with a 64 MiB max", "04000001", 64 << 20, KP_FRAME_ERROR, (64 << 20) + 5},
    {"64 MiB with a 64 MiB max", "04000000", 64 << 20, KP_FRAME_AGAIN, (64 << 20) + 4},
    {"INT32_MAX", "7fffffff", 64 << 20, KP_FRAME_ERROR, (size_t)INT32_MAX + 4},
};

START_TEST(test_frame_extract)
{
    for (size_t i = 0; i < ARRAY_SIZE(frame_vecs); i++) {
        const frame_vec_t *v = &frame_vecs[i];
        sk_buf_t b;
        sk_buf_init(&b, 32);
        vec_parse(&b, v->bytes);
        uint8_t *p = frame_dup(&b, b.len);
        size_t flen = SIZE_MAX;
        kp_frame_result_t r = kp_frame_try_extract(p, b.len, v->max, &flen);
        ck_assert_msg(r == v->r, "%s: result %d, expected %d", v->name, (int)r, (int)v->r);
        if (v->frame_len != SIZE_MAX)
            ck_assert_msg(flen == v->frame_len, "%s: frame_len %zu, expected %zu", v->name, flen,
                          v->frame_len);
        free(p);
        sk_buf_release(&b);
    }
}
END_TEST

/* ---- primitives ---------------------------------------------------------- */

START_TEST(test_primitives)
{
    static const struct {
        const char *name, *bytes;
        int kind; /* 0 arraylen(min 4), 1 compact arraylen(min 4), 2 compact str, 3 tags, 4 str */
        int32_t want;
        int err;
    } v[] = {
        {"arraylen 0", "00000000", 0, 0, 0},
        {"arraylen null", "ffffffff", 0, -1, 0},
        {"arraylen -2", "fffffffe", 0, 0, 1},
        {"arraylen 2 fits", "00000002 0000000000000000", 0, 2, 0},
        {"arraylen 3 does not fit", "00000003 0000000000000000", 0, 0, 1},
        {"arraylen short", "000000", 0, 0, 1},
        {"compact arraylen null", "00", 1, -1, 0},
        {"compact arraylen 0", "01", 1, 0, 0},
        {"compact arraylen 1 fits", "02 00000000", 1, 1, 0},
        {"compact arraylen 2 does not fit", "03 00000000", 1, 0, 1},
        {"compact arraylen varint too long", "ffffffffffffffffffff01", 1, 0, 1},
        {"compact str null", "00", 2, -1, 0},
        {"compact str empty", "01", 2, 0, 0},
        {"compact str abc", "04 616263", 2, 3, 0},
        {"compact str overruns", "05 616263", 2, -1, 1},
        {"tags none", "00", 3, 0, 0},
        {"tags two", "02 00 01 aa 05 00", 3, 0, 0},
        {"tags size overruns", "01 00 05 aa", 3, 0, 1},
        {"tags count overruns", "7f 00", 3, 0, 1},
        {"str null", "ffff", 4, -1, 0},
        {"str -2", "fffe", 4, -1, 1},
        {"str overruns", "0004 616263", 4, -1, 1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        sk_buf_t b;
        sk_cur_t c;
        sk_buf_init(&b, 16);
        vec_parse(&b, v[i].bytes);
        uint8_t *p = frame_dup(&b, b.len);
        sk_cur_init(&c, p, b.len);
        int32_t got = 0;
        switch (v[i].kind) {
        case 0:
            got = kp_read_arraylen(&c, 4);
            break;
        case 1:
            got = kp_read_compact_arraylen(&c, 4);
            break;
        case 2:
            got = kp_read_compact_str(&c).len;
            break;
        case 3:
            kp_skip_tags(&c);
            break;
        case 4:
            got = kp_read_str(&c).len;
            break;
        }
        ck_assert_msg(!!c.err == v[i].err, "%s: err %d", v[i].name, c.err);
        if (!v[i].err) {
            ck_assert_msg(got == v[i].want, "%s: got %d, expected %d", v[i].name, got, v[i].want);
            if (v[i].kind >= 2) /* arrays leave their elements unread */
                ck_assert_msg(sk_cur_left(&c) == 0, "%s: %zu bytes left", v[i].name,
                              sk_cur_left(&c));
        }
        free(p);
        sk_buf_release(&b);
    }
}
END_TEST

/* ---- ApiVersions --------------------------------------------------------- */

static const step_t apiversions_steps[] = {
    RESP("ApiVersions v0", "0012 0000 00000001" CID, "00000001 0000 @V"),
    RESP("ApiVersions v0, null client_id", "0012 0000 00000002 ffff", "00000002 0000 @V"),
    RESP("ApiVersions v1", "0012 0001 00000003" CID, "00000003 0000 @V 00000000"),
    RESP("ApiVersions v2", "0012 0002 7fffffff" CID, "7fffffff 0000 @V 00000000"),
    /* v3: request header v2 (classic client_id + tags), compact body; the
     * response header stays v0 (no tag byte after the correlation id). */
    RESP("ApiVersions v3", "0012 0003 00000005" CID "00 | c'librdkafka' c'2.0.2' 00",
         "00000005 | 0000 @W 00000000 00"),
    RESP("ApiVersions v3 with tagged fields",
         "0012 0003 00000006" CID "01 05 02 abcd | c'kcat' c'1.7.1' 01 00 00",
         "00000006 | 0000 @W 00000000 00"),
    RESP("ApiVersions v3, body cut short -> 42 in v0 format",
         "0012 0003 00000007" CID "00 c'librdkafka'", "00000007 002a @V"),
    RESP("ApiVersions v3, string overruns -> 42 in v0 format",
         "0012 0003 00000008" CID "00 0b 'libr'", "00000008 002a @V"),
    RESP("ApiVersions v4 -> 35 in v0 format", "0012 0004 00000009" CID "00 c'java' c'4.0.0' 00",
         "00000009 0023 @V"),
    RESP("ApiVersions v9 -> 35 in v0 format", "0012 0009 0000000a" CID "00 c'x' c'y' 00",
         "0000000a 0023 @V"),
    RESP("ApiVersions v-1 -> 35 in v0 format", "0012 ffff 0000000b" CID, "0000000b 0023 @V"),
    CLOSE("ApiVersions v3, header tag count overruns", "0012 0003 0000000c" CID "7f"),
    CLOSE("ApiVersions v0, client_id overruns", "0012 0000 0000000d 0005 'ab'"),
};

START_TEST(test_apiversions)
{
    run_steps(apiversions_steps, ARRAY_SIZE(apiversions_steps));
}
END_TEST

/* ---- Metadata ------------------------------------------------------------ */

static const step_t metadata_steps[] = {
    RESP("Metadata v0, empty array = all topics (none yet)", "0003 0000 00000101" CID "00000000",
         "00000101" BROKERS_V0 "00000000"),
    RESP("Metadata v4, auto-create t1", "0003 0004 00000102" CID "00000001 s't1' 01",
         "00000102 00000000" BROKERS_V1 CLUSTER "00000001 | 00000001 0000 s't1' 00" MD_PARTS4),
    RESP("Metadata v4, allow_auto_topic_creation false",
         "0003 0004 00000103" CID "00000001 s't2' 00",
         "00000103 00000000" BROKERS_V1 CLUSTER "00000001 | 00000001 0003 s't2' 00" NO_PARTS),
    RESP("Metadata v0, all topics", "0003 0000 00000104" CID "00000000",
         "00000104" BROKERS_V0 "00000001 0000 s't1'" MD_PARTS4),
    RESP("Metadata v1, null = all topics", "0003 0001 00000105" CID "ffffffff",
         "00000105" BROKERS_V1 "00000001 | 00000001 0000 s't1' 00" MD_PARTS4),
    RESP("Metadata v1, empty array = no topics", "0003 0001 00000106" CID "00000000",
         "00000106" BROKERS_V1 "00000001 | 00000000"),
    RESP("Metadata v2, cluster_id", "0003 0002 00000107" CID "00000001 s't1'",
         "00000107" BROKERS_V1 CLUSTER "00000001 | 00000001 0000 s't1' 00" MD_PARTS4),
    RESP("Metadata v3, throttle first", "0003 0003 00000108" CID "00000001 s't1'",
         "00000108 00000000" BROKERS_V1 CLUSTER "00000001 | 00000001 0000 s't1' 00" MD_PARTS4),
    RESP("Metadata v4, invalid name -> 17", "0003 0004 00000109" CID "00000001 s'bad name!' 01",
         "00000109 00000000" BROKERS_V1 CLUSTER
         "00000001 | 00000001 0011 s'bad name!' 00" NO_PARTS),
    RESP("Metadata v4, '..' -> 17", "0003 0004 0000010a" CID "00000001 s'..' 00",
         "0000010a 00000000" BROKERS_V1 CLUSTER "00000001 | 00000001 0011 s'..' 00" NO_PARTS),
    RESP("Metadata v4, null name -> 17", "0003 0004 0000010b" CID "00000001 ffff 01",
         "0000010b 00000000" BROKERS_V1 CLUSTER "00000001 | 00000001 0011 ffff 00" NO_PARTS),
    RESP("Metadata v0, unknown topic is auto-created", "0003 0000 0000010c" CID "00000001 s't3'",
         "0000010c" BROKERS_V0 "00000001 0000 s't3'" MD_PARTS4),
    RESP("Metadata v4, null = all, in name order", "0003 0004 0000010d" CID "ffffffff 00",
         "0000010d 00000000" BROKERS_V1 CLUSTER "00000001 | 00000002 0000 s't1' 00" MD_PARTS4
         "0000 s't3' 00" MD_PARTS4),
    RESP("Metadata v4, two topics, one missing", "0003 0004 0000010e" CID "00000002 s't3' s't2' 00",
         "0000010e 00000000" BROKERS_V1 CLUSTER "00000001 | 00000002 0000 s't3' 00" MD_PARTS4
         "0003 s't2' 00" NO_PARTS),
    RESP("Metadata v4, empty array = no topics", "0003 0004 0000010f" CID "00000000 01",
         "0000010f 00000000" BROKERS_V1 CLUSTER "00000001 | 00000000"),
};

START_TEST(test_metadata)
{
    run_steps(metadata_steps, ARRAY_SIZE(metadata_steps));
    ck_assert_uint_eq(log_topic_count(g_b.log), 2);
}
END_TEST

static const step_t metadata_noauto_steps[] = {
    RESP("Metadata v4 allow=true, broker auto-create off -> 3",
         "0003 0004 00000121" CID "00000001 s't5' 01",
         "00000121 00000000" BROKERS_V1 CLUSTER "00000001 | 00000001 0003 s't5' 00" NO_PARTS),
    RESP("Metadata v0, broker auto-create off -> 3", "0003 0000 00000122" CID "00000001 s't5'",
         "00000122" BROKERS_V0 "00000001 0003 s't5'" NO_PARTS),
};

START_TEST(test_metadata_no_autocreate)
{
    g_b.cfg.auto_create_topics = 0;
    run_steps(metadata_noauto_steps, ARRAY_SIZE(metadata_noauto_steps));
    ck_assert_uint_eq(log_topic_count(g_b.log), 0);
}
END_TEST

/* ---- Produce ------------------------------------------------------------- */

#define PR_OK(corr, off) corr " 00000001 s't1' 00000001 00000000 0000 " off " ffffffffffffffff"

static const step_t produce_steps[] = {
    RESP("Produce v3 acks=-1", PRODUCE("0003", "00000201", "ffff", "t1", "00000000", "0"),
         PR_OK("00000201", "0000000000000000") " 00000000"),
    RESP("Produce v4 acks=1", PRODUCE("0004", "00000202", "0001", "t1", "00000000", "1"),
         PR_OK("00000202", "0000000000000002") " 00000000"),
    RESP("Produce v5 acks=-1 (log_start_offset)",
         PRODUCE("0005", "00000203", "ffff", "t1", "00000000", "0"),
         PR_OK("00000203", "0000000000000005") " 0000000000000000 00000000"),
    RESP("Produce v6 acks=1", PRODUCE("0006", "00000204", "0001", "t1", "00000000", "1"),
         PR_OK("00000204", "0000000000000007") " 0000000000000000 00000000"),
    RESP("Produce v7 acks=-1", PRODUCE("0007", "00000205", "ffff", "t1", "00000000", "0"),
         PR_OK("00000205", "000000000000000a") " 0000000000000000 00000000"),
    RESP("Produce v7 to partition 3", PRODUCE("0007", "00000206", "ffff", "t1", "00000003", "1"),
         "00000206 00000001 s't1' 00000001 00000003 0000 0000000000000000 ffffffffffffffff "
         "0000000000000000"
         " 00000000"),
    RESP("Produce v7, two batches in one records blob",
         "0000 0007 00000207" CID "ffff ffff 00007530 00000001 s't1' 00000001 00000002 #R @R",
         "00000207 00000001 s't1' 00000001 00000002 0000 0000000000000000 ffffffffffffffff "
         "0000000000000000"
         " 00000000"),
    RESP("Fetch v11 reads every batch back",
         FETCH11("00000208", "t1", "00000000", "0000000000000000", "00100000"),
         FETCH11_RESP("00000208", "t1", "00000000", "0000", "000000000000000c", "0000000000000000",
                      "#S @S")),
    RESP("Fetch v11 partition 2: both batches of one blob",
         FETCH11("00000209", "t1", "00000002", "0000000000000000", "00100000"),
         FETCH11_RESP("00000209", "t1", "00000002", "0000", "0000000000000005", "0000000000000000",
                      "#T @T")),
};

START_TEST(test_produce_versions)
{
    mk_topic("t1", 4);
    blob_stored('R', 2, '0', (int64_t)0, '1', (int64_t)0); /* as sent: both say base 0 */
    blob_stored('S', 5, '0', (int64_t)0, '1', (int64_t)2, '0', (int64_t)5, '1', (int64_t)7, '0',
                (int64_t)10);
    blob_stored('T', 2, '0', (int64_t)0, '1', (int64_t)2);
    run_steps(produce_steps, ARRAY_SIZE(produce_steps));
    ck_assert_int_eq(end_offset("t1", 0), 12);
    ck_assert_int_eq(end_offset("t1", 1), 0);
    ck_assert_int_eq(end_offset("t1", 2), 5);
    ck_assert_int_eq(end_offset("t1", 3), 3);
}
END_TEST

static const step_t produce_acks0_steps[] = {
    NORESP("Produce v7 acks=0: no response",
           PRODUCE("0007", "00000211", "0000", "t1", "00000000", "0")),
    NORESP("Produce v3 acks=0: no response",
           PRODUCE("0003", "00000212", "0000", "t1", "00000000", "1")),
    NORESP("Produce v7 acks=0 to an unknown topic: still none",
           PRODUCE("0007", "00000213", "0000", "nope", "00000000", "0")),
    RESP("ListOffsets v2 latest shows the acks=0 appends", LO2("00000214", "ffffffffffffffff"),
         LO2_RESP("00000214", "0000", "ffffffffffffffff", "0000000000000005")),
};

START_TEST(test_produce_acks0)
{
    mk_topic("t1", 4);
    run_steps(produce_acks0_steps, ARRAY_SIZE(produce_acks0_steps));
    ck_assert_int_eq(end_offset("t1", 0), 5);
}
END_TEST

static const step_t produce_legacy_steps[] = {
    RESP("Produce v0 -> 35",
         "0000 0000 00000221" CID "0001 00007530 00000001 s't1' 00000001 00000000 #0 @0",
         "00000221 00000001 s't1' 00000001 00000000 0023 ffffffffffffffff"),
    RESP("Produce v1 -> 35",
         "0000 0001 00000222" CID "ffff 00007530 00000001 s't1' 00000001 00000000 #0 @0",
         "00000222 00000001 s't1' 00000001 00000000 0023 ffffffffffffffff 00000000"),
    RESP("Produce v2 -> 35",
         "0000 0002 00000223" CID "0001 00007530 00000001 s't1' 00000002 00000000 #0 @0"
         " 00000001 #5 @5",
         "00000223 00000001 s't1' 00000002 00000000 0023 ffffffffffffffff ffffffffffffffff"
         " 00000001 0023 ffffffffffffffff ffffffffffffffff 00000000"),
    RESP("Produce v2 to an unknown topic -> 35",
         "0000 0002 00000224" CID "0001 00007530 00000001 s'nope' 00000001"
         " 00000000 #0 @0",
         "00000224 00000001 s'nope' 00000001 00000000 0023 ffffffffffffffff ffffffffffffffff "
         "00000000"),
    RESP("ListOffsets v1: nothing appended", LO1("00000225", "ffffffffffffffff"),
         LO1_RESP("00000225", "0000", "ffffffffffffffff", "0000000000000000")),
};

START_TEST(test_produce_legacy_versions)
{
    mk_topic("t1", 4);
    run_steps(produce_legacy_steps, ARRAY_SIZE(produce_legacy_steps));
    ck_assert_int_eq(end_offset("t1", 0), 0);
    ck_assert_int_eq(end_offset("t1", 1), 0);
}
END_TEST

#define PR_ERR(corr, topic, part, err, ls)                                                         \
    corr " 00000001 s'" topic "' 00000001 " part " " err " ffffffffffffffff ffffffffffffffff " ls  \
         " 00000000"

static const step_t produce_err_steps[] = {
    RESP("Produce v7, corrupt CRC -> 2", PRODUCE("0007", "00000231", "ffff", "t1", "00000000", "2"),
         PR_ERR("00000231", "t1", "00000000", "0002", "0000000000000000")),
    RESP("Fetch v11 after the corrupt batch: high watermark unchanged",
         FETCH11("00000232", "t1", "00000000", "0000000000000000", "00100000"),
         FETCH11_RESP("00000232", "t1", "00000000", "0000", "0000000000000000", "0000000000000000",
                      "00000000")),
    RESP("Produce v7 acks=5 -> 21", PRODUCE("0007", "00000233", "0005", "t1", "00000000", "0"),
         PR_ERR("00000233", "t1", "00000000", "0015", "0000000000000000")),
    RESP("Produce v3 acks=2 -> 21", PRODUCE("0003", "00000234", "0002", "t1", "00000000", "0"),
         "00000234 00000001 s't1' 00000001 00000000 0015 ffffffffffffffff ffffffffffffffff "
         "00000000"),
    RESP("Produce v7 unknown topic -> 3",
         PRODUCE("0007", "00000235", "ffff", "nope", "00000000", "0"),
         PR_ERR("00000235", "nope", "00000000", "0003", "ffffffffffffffff")),
    RESP("Produce v7 unknown partition -> 3",
         PRODUCE("0007", "00000236", "ffff", "t1", "00000004", "0"),
         PR_ERR("00000236", "t1", "00000004", "0003", "ffffffffffffffff")),
    RESP("Produce v7 negative partition -> 3",
         PRODUCE("0007", "00000237", "0001", "t1", "ffffffff", "0"),
         PR_ERR("00000237", "t1", "ffffffff", "0003", "ffffffffffffffff")),
    RESP("Produce v7 invalid topic name -> 17",
         PRODUCE("0007", "00000238", "ffff", "a/b", "00000000", "0"),
         PR_ERR("00000238", "a/b", "00000000", "0011", "ffffffffffffffff")),
    RESP("Produce v7 null records -> 2",
         "0000 0007 00000239" CID "ffff ffff 00007530 00000001 s't1' 00000001 00000000 ffffffff",
         PR_ERR("00000239", "t1", "00000000", "0002", "0000000000000000")),
    RESP("Produce v7 codec 5 -> 76", PRODUCE("0007", "0000023a", "ffff", "t1", "00000000", "3"),
         PR_ERR("0000023a", "t1", "00000000", "004c", "0000000000000000")),
    RESP("Produce v7 magic 1 -> 2", PRODUCE("0007", "0000023b", "ffff", "t1", "00000000", "4"),
         PR_ERR("0000023b", "t1", "00000000", "0002", "0000000000000000")),
    RESP("Produce v7 torn batch -> 2", PRODUCE("0007", "0000023c", "ffff", "t1", "00000000", "5"),
         PR_ERR("0000023c", "t1", "00000000", "0002", "0000000000000000")),
    RESP("Produce v7 good batch + corrupt batch -> 2, neither appended",
         PRODUCE("0007", "0000023d", "ffff", "t1", "00000000", "6"),
         PR_ERR("0000023d", "t1", "00000000", "0002", "0000000000000000")),
    RESP("Fetch v4 after all the rejects: still empty",
         "0001 0004 0000023e" CID "ffffffff 000001f4 00000001 00a00000 00 00000001 s't1' 00000001"
         " 00000000 0000000000000000 00100000",
         "0000023e 00000000 00000001 s't1' 00000001 00000000 0000 0000000000000000 "
         "0000000000000000 00000000"
         " 00000000"),
    RESP("Produce v7, two topics and mixed partitions",
         "0000 0007 0000023f" CID "ffff ffff 00007530 00000002"
         " s't1' 00000002 00000000 #0 @0 00000001 #2 @2"
         " s'nope' 00000001 00000000 #0 @0",
         "0000023f 00000002"
         " s't1' 00000002 00000000 0000 0000000000000000 ffffffffffffffff 0000000000000000"
         " 00000001 0002 ffffffffffffffff ffffffffffffffff 0000000000000000"
         " s'nope' 00000001 00000000 0003 ffffffffffffffff ffffffffffffffff ffffffffffffffff "
         "00000000"),
    RESP("ListOffsets v2: partition 0 holds the good batch", LO2("00000240", "ffffffffffffffff"),
         LO2_RESP("00000240", "0000", "ffffffffffffffff", "0000000000000002")),
};

START_TEST(test_produce_errors)
{
    mk_topic("t1", 4);
    run_steps(produce_err_steps, ARRAY_SIZE(produce_err_steps));
    ck_assert_int_eq(end_offset("t1", 0), 2);
    ck_assert_int_eq(end_offset("t1", 1), 0);
    ck_assert_ptr_null(log_topic_find(g_b.log, "nope", 4));
}
END_TEST

/* ---- Fetch --------------------------------------------------------------- */

#define FETCH_TOPIC " 00000001 s't1' 00000001 00000000 "
#define HW5 " 0000000000000005 0000000000000005 "
static const step_t fetch_version_steps[] = {
    RESP("Produce A", PRODUCE("0007", "00000301", "ffff", "t1", "00000000", "0"),
         PR_OK("00000301", "0000000000000000") " 0000000000000000 00000000"),
    RESP("Produce B", PRODUCE("0007", "00000302", "0001", "t1", "00000000", "1"),
         PR_OK("00000302", "0000000000000002") " 0000000000000000 00000000"),
    RESP("Fetch v4",
         "0001 0004 00000304" CID "ffffffff 000001f4 00000001 00a00000 00" FETCH_TOPIC
         "0000000000000000 00100000",
         "00000304 00000000" FETCH_TOPIC "0000" HW5 "00000000 #R @R"),
    RESP("Fetch v5 (log_start_offset)",
         "0001 0005 00000305" CID "ffffffff 000001f4 00000001 00a00000 00" FETCH_TOPIC
         "0000000000000000 ffffffffffffffff 00100000",
         "00000305 00000000" FETCH_TOPIC "0000" HW5 "0000000000000000 00000000 #R @R"),
    RESP("Fetch v6",
         "0001 0006 00000306" CID "ffffffff 000001f4 00000001 00a00000 01" FETCH_TOPIC
         "0000000000000000 ffffffffffffffff 00100000",
         "00000306 00000000" FETCH_TOPIC "0000" HW5 "0000000000000000 00000000 #R @R"),
    RESP("Fetch v7 (error_code, session_id, forgotten topics)",
         "0001 0007 00000307" CID
         "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff" FETCH_TOPIC
         "0000000000000000 ffffffffffffffff 00100000 00000000",
         "00000307 00000000 0000 00000000" FETCH_TOPIC "0000" HW5
         "0000000000000000 00000000 #R @R"),
    RESP("Fetch v8, forgotten topics not empty",
         "0001 0008 00000308" CID
         "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff" FETCH_TOPIC
         "0000000000000000 ffffffffffffffff 00100000 00000001 s'old' 00000002 00000000 00000001",
         "00000308 00000000 0000 00000000" FETCH_TOPIC "0000" HW5
         "0000000000000000 00000000 #R @R"),
    RESP("Fetch v9 (current_leader_epoch)",
         "0001 0009 00000309" CID
         "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff" FETCH_TOPIC
         "ffffffff 0000000000000000 ffffffffffffffff 00100000 00000000",
         "00000309 00000000 0000 00000000" FETCH_TOPIC "0000" HW5
         "0000000000000000 00000000 #R @R"),
    RESP("Fetch v10",
         "0001 000a 0000030a" CID
         "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff" FETCH_TOPIC
         "00000000 0000000000000000 ffffffffffffffff 00100000 00000000",
         "0000030a 00000000 0000 00000000" FETCH_TOPIC "0000" HW5
         "0000000000000000 00000000 #R @R"),
    RESP("Fetch v11 (rack_id, preferred_read_replica)",
         "0001 000b 0000030b" CID
         "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff" FETCH_TOPIC
         "ffffffff 0000000000000000 ffffffffffffffff 00100000 00000000 s'rack-a'",
         "0000030b 00000000 0000 00000000" FETCH_TOPIC "0000" HW5
         "0000000000000000 00000000 ffffffff #R @R"),
};

START_TEST(test_fetch_versions)
{
    mk_topic("t1", 4);
    blob_stored('R', 2, '0', (int64_t)0, '1', (int64_t)2);
    run_steps(fetch_version_steps, ARRAY_SIZE(fetch_version_steps));
}
END_TEST

#define F11(corr, off, pmax) FETCH11(corr, "t1", "00000000", off, pmax)
#define F11R(corr, err, records)                                                                   \
    FETCH11_RESP(corr, "t1", "00000000", err, "0000000000000005", "0000000000000000", records)

static const step_t fetch_edge_steps[] = {
    RESP("Produce A", PRODUCE("0007", "00000311", "ffff", "t1", "00000000", "0"),
         PR_OK("00000311", "0000000000000000") " 0000000000000000 00000000"),
    RESP("Produce B", PRODUCE("0007", "00000312", "0001", "t1", "00000000", "1"),
         PR_OK("00000312", "0000000000000002") " 0000000000000000 00000000"),
    RESP("Fetch at the high watermark: empty, no error",
         F11("00000313", "0000000000000005", "00100000"), F11R("00000313", "0000", "00000000")),
    RESP("Fetch at 1: from the batch holding offset 1",
         F11("00000314", "0000000000000001", "00100000"), F11R("00000314", "0000", "#R @R")),
    RESP("Fetch at 4: the last batch", F11("00000315", "0000000000000004", "00100000"),
         F11R("00000315", "0000", "#S @S")),
    RESP("Fetch with partition max_bytes 1: one whole batch (KIP-74)",
         F11("00000316", "0000000000000000", "00000001"), F11R("00000316", "0000", "#T @T")),
    RESP("Fetch at high watermark + 1 -> 1", F11("00000317", "0000000000000006", "00100000"),
         F11R("00000317", "0001", "00000000")),
    RESP("Fetch at -1 -> 1", F11("00000318", "ffffffffffffffff", "00100000"),
         F11R("00000318", "0001", "00000000")),
    RESP("Fetch unknown topic -> 3",
         FETCH11("00000319", "nope", "00000000", "0000000000000000", "00100000"),
         FETCH11_RESP("00000319", "nope", "00000000", "0003", "ffffffffffffffff",
                      "ffffffffffffffff", "00000000")),
    RESP("Fetch unknown partition -> 3",
         FETCH11("0000031a", "t1", "00000009", "0000000000000000", "00100000"),
         FETCH11_RESP("0000031a", "t1", "00000009", "0003", "ffffffffffffffff", "ffffffffffffffff",
                      "00000000")),
    RESP("Fetch v4 unknown topic -> 3",
         "0001 0004 0000031b" CID
         "ffffffff 000001f4 00000001 00a00000 00 00000001 s'nope' 00000001 00000000"
         " 0000000000000000 00100000",
         "0000031b 00000000 00000001 s'nope' 00000001 00000000 0003 ffffffffffffffff "
         "ffffffffffffffff 00000000"
         " 00000000"),
    RESP("Fetch v11, two partitions and two topics",
         "0001 000b 0000031c" CID
         "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff 00000002"
         " s't1' 00000002 00000000 ffffffff 0000000000000002 ffffffffffffffff 00100000"
         " 00000001 ffffffff 0000000000000000 ffffffffffffffff 00100000"
         " s'nope' 00000001 00000000 ffffffff 0000000000000000 ffffffffffffffff 00100000"
         " 00000000 s''",
         "0000031c 00000000 0000 00000000 00000002 s't1' 00000002"
         " 00000000 0000" HW5 "0000000000000000 00000000 ffffffff #S @S"
         " 00000001 0000 0000000000000000 0000000000000000 0000000000000000 00000000 ffffffff "
         "00000000"
         " s'nope' 00000001 00000000 0003 ffffffffffffffff ffffffffffffffff ffffffffffffffff "
         "00000000 ffffffff"
         " 00000000"),
    /* Response max_bytes 1 < partition max_bytes: still one whole batch (the
     * first batch is exempt from the limit), but no more. */
    RESP("Fetch with response max_bytes 1: one whole batch",
         "0001 000b 0000031d" CID
         "ffffffff 000001f4 00000001 00000001 00 00000000 ffffffff 00000001 s't1'"
         " 00000001 00000000 ffffffff 0000000000000000 ffffffffffffffff 00100000 00000000 s''",
         F11R("0000031d", "0000", "#T @T")),
};

START_TEST(test_fetch_edges)
{
    mk_topic("t1", 4);
    blob_stored('R', 2, '0', (int64_t)0, '1', (int64_t)2);
    blob_stored('S', 1, '1', (int64_t)2);
    blob_stored('T', 1, '0', (int64_t)0);
    run_steps(fetch_edge_steps, ARRAY_SIZE(fetch_edge_steps));
}
END_TEST

/* ---- ListOffsets --------------------------------------------------------- */

static const step_t listoffsets_steps[] = {
    RESP("ListOffsets v1 latest, empty partition", LO1("00000401", "ffffffffffffffff"),
         LO1_RESP("00000401", "0000", "ffffffffffffffff", "0000000000000000")),
    RESP("ListOffsets v1 by time, empty partition", LO1("00000402", "0000018bcfe56800"),
         LO1_RESP("00000402", "0000", NONE, NONE)),
    RESP("Produce A", PRODUCE("0007", "00000403", "ffff", "t1", "00000000", "0"),
         PR_OK("00000403", "0000000000000000") " 0000000000000000 00000000"),
    RESP("Produce B", PRODUCE("0007", "00000404", "ffff", "t1", "00000000", "1"),
         PR_OK("00000404", "0000000000000002") " 0000000000000000 00000000"),
    RESP("ListOffsets v1 -1 (latest)", LO1("00000405", "ffffffffffffffff"),
         LO1_RESP("00000405", "0000", NONE, "0000000000000005")),
    RESP("ListOffsets v1 -2 (earliest)", LO1("00000406", "fffffffffffffffe"),
         LO1_RESP("00000406", "0000", NONE, "0000000000000000")),
    RESP("ListOffsets v1 T0+1", LO1("00000407", "0000018bcfe56801"),
         LO1_RESP("00000407", "0000", "0000018bcfe56801", "0000000000000001")),
    RESP("ListOffsets v1 T0+2: first record of the next batch", LO1("00000408", "0000018bcfe56802"),
         LO1_RESP("00000408", "0000", "0000018bcfe56be8", "0000000000000002")),
    RESP("ListOffsets v1 after every record -> -1", LO1("00000409", "0000018bcfe57b88"),
         LO1_RESP("00000409", "0000", NONE, NONE)),
    RESP("ListOffsets v2 -1 (latest)", LO2("0000040a", "ffffffffffffffff"),
         LO2_RESP("0000040a", "0000", NONE, "0000000000000005")),
    RESP("ListOffsets v2 -2 (earliest)", LO2("0000040b", "fffffffffffffffe"),
         LO2_RESP("0000040b", "0000", NONE, "0000000000000000")),
    RESP("ListOffsets v2 T0", LO2("0000040c", "0000018bcfe56800"),
         LO2_RESP("0000040c", "0000", "0000018bcfe56800", "0000000000000000")),
    RESP("ListOffsets v2 timestamp 0", LO2("0000040d", "0000000000000000"),
         LO2_RESP("0000040d", "0000", "0000018bcfe56800", "0000000000000000")),
    RESP("ListOffsets v2 T0+1001", LO2("0000040e", "0000018bcfe56be9"),
         LO2_RESP("0000040e", "0000", "0000018bcfe56be9", "0000000000000003")),
    RESP("ListOffsets v2 two partitions, two topics",
         "0002 0002 0000040f" CID "ffffffff 01 00000002 s't1' 00000002 00000000 ffffffffffffffff"
         " 00000001 fffffffffffffffe s'nope' 00000001 00000000 ffffffffffffffff",
         "0000040f 00000000 00000002 s't1' 00000002 00000000 0000" NONE "0000000000000005"
         " 00000001 0000" NONE "0000000000000000 s'nope' 00000001 00000000 0003" NONE NONE),
    RESP("ListOffsets v1 unknown partition -> 3",
         "0002 0001 00000410" CID "ffffffff 00000001 s't1' 00000001 00000007 ffffffffffffffff",
         "00000410 00000001 s't1' 00000001 00000007 0003" NONE NONE),
};

START_TEST(test_listoffsets)
{
    mk_topic("t1", 4);
    run_steps(listoffsets_steps, ARRAY_SIZE(listoffsets_steps));
}
END_TEST

/* ---- FindCoordinator ----------------------------------------------------- */

static const step_t findcoordinator_steps[] = {
    RESP("FindCoordinator v0", "000a 0000 00000501" CID "s'grp'",
         "00000501 0000 00000001" HOSTPORT),
    RESP("FindCoordinator v1", "000a 0001 00000502" CID "s'grp' 00",
         "00000502 00000000 0000 ffff 00000001" HOSTPORT),
    RESP("FindCoordinator v2", "000a 0002 00000503" CID "s'grp' 00",
         "00000503 00000000 0000 ffff 00000001" HOSTPORT),
    RESP("FindCoordinator v2, empty key", "000a 0002 00000504" CID "s'' 00",
         "00000504 00000000 0000 ffff 00000001" HOSTPORT),
    RESP("FindCoordinator v1, transaction key -> 15", "000a 0001 00000505" CID "s'tx' 01",
         "00000505 00000000 000f s'transactions are not supported by souk-broker' ffffffff s'' "
         "ffffffff"),
};

START_TEST(test_findcoordinator)
{
    run_steps(findcoordinator_steps, ARRAY_SIZE(findcoordinator_steps));
}
END_TEST

/* ---- OffsetCommit / OffsetFetch ------------------------------------------ */

#define OC_RESP2(corr, err) corr " 00000001 s't1' 00000001 00000000 " err
#define OC_RESP3(corr, err) corr " 00000000 00000001 s't1' 00000001 00000000 " err
#define OF5(corr, group) "0009 0005 " corr CID "s'" group "' 00000001 s't1' 00000001 00000000"
#define OF5_RESP(corr, off, epoch, md, err)                                                        \
    corr " 00000000 00000001 s't1' 00000001 00000000 " off " " epoch " " md " " err " 0000"

static const step_t offsetcommit_steps[] = {
    RESP("OffsetCommit v2",
         "0008 0002 00000601" CID "s'grp' ffffffff s'' ffffffffffffffff 00000001 s't1' 00000001"
         " 00000000 0000000000000066 s'm2'",
         OC_RESP2("00000601", "0000")),
    RESP("OffsetFetch v5 reads v2's commit", OF5("00000602", "grp"),
         OF5_RESP("00000602", "0000000000000066", "ffffffff", "s'm2'", "0000")),
    RESP("OffsetCommit v3",
         "0008 0003 00000603" CID "s'grp' ffffffff s'' ffffffffffffffff 00000001 s't1' 00000001"
         " 00000000 0000000000000067 s'm3'",
         OC_RESP3("00000603", "0000")),
    RESP("OffsetFetch v5 reads v3's commit", OF5("00000604", "grp"),
         OF5_RESP("00000604", "0000000000000067", "ffffffff", "s'm3'", "0000")),
    RESP("OffsetCommit v4",
         "0008 0004 00000605" CID "s'grp' ffffffff s'' 0000000000001000 00000001 s't1' 00000001"
         " 00000000 0000000000000068 s'm4'",
         OC_RESP3("00000605", "0000")),
    RESP("OffsetFetch v5 reads v4's commit", OF5("00000606", "grp"),
         OF5_RESP("00000606", "0000000000000068", "ffffffff", "s'm4'", "0000")),
    RESP("OffsetCommit v5 (no retention_time_ms)",
         "0008 0005 00000607" CID
         "s'grp' ffffffff s'' 00000001 s't1' 00000001 00000000 0000000000000069 s'm5'",
         OC_RESP3("00000607", "0000")),
    RESP("OffsetFetch v5 reads v5's commit", OF5("00000608", "grp"),
         OF5_RESP("00000608", "0000000000000069", "ffffffff", "s'm5'", "0000")),
    RESP("OffsetCommit v6 (committed_leader_epoch)",
         "0008 0006 00000609" CID
         "s'grp' ffffffff s'' 00000001 s't1' 00000001 00000000 000000000000006a"
         " 00000007 s'm6'",
         OC_RESP3("00000609", "0000")),
    RESP("OffsetFetch v5 reads v6's commit", OF5("0000060a", "grp"),
         OF5_RESP("0000060a", "000000000000006a", "00000007", "s'm6'", "0000")),
    RESP("OffsetCommit v7 (group_instance_id)",
         "0008 0007 0000060b" CID
         "s'grp' ffffffff s'' ffff 00000001 s't1' 00000001 00000000 000000000000006b"
         " 00000008 s'm7'",
         OC_RESP3("0000060b", "0000")),
    RESP("OffsetFetch v5 reads v7's commit", OF5("0000060c", "grp"),
         OF5_RESP("0000060c", "000000000000006b", "00000008", "s'm7'", "0000")),
};

START_TEST(test_offsetcommit_versions)
{
    mk_topic("t1", 4);
    run_steps(offsetcommit_steps, ARRAY_SIZE(offsetcommit_steps));
    const offset_commit_t *oc = offsets_get(g_b.offsets, "grp", "t1", 0);
    ck_assert_ptr_nonnull(oc);
    ck_assert_int_eq(oc->offset, 0x6b);
}
END_TEST

#define OF_REQ3 "s'grp' 00000001 s't1' 00000003 00000000 00000001 00000002"
#define OF_NONE3                                                                                   \
    " 00000001 s't1' 00000003 00000000" NONE "s'' 0000 00000001" NONE "s'' 0000 00000002" NONE     \
    "s'' 0000"
#define OF_NONE3_V5                                                                                \
    " 00000001 s't1' 00000003 00000000" NONE "ffffffff s'' 0000 00000001" NONE                     \
    "ffffffff s'' 0000 00000002" NONE "ffffffff s'' 0000"
#define OF_GOT3                                                                                    \
    " 00000001 s't1' 00000003 00000000 000000000000002a s'meta' 0000 00000001" NONE "s'' 0000"     \
    " 00000002 0000000000000007 s'' 0000"
#define OF_GOT3_V5                                                                                 \
    " 00000001 s't1' 00000003 00000000 000000000000002a 00000009 s'meta' 0000 00000001" NONE       \
    "ffffffff s'' 0000"                                                                            \
    " 00000002 0000000000000007 ffffffff s'' 0000"

static const step_t offsetfetch_steps[] = {
    RESP("OffsetFetch v1, nothing committed", "0009 0001 00000701" CID OF_REQ3,
         "00000701" OF_NONE3),
    RESP("OffsetFetch v2, nothing committed", "0009 0002 00000702" CID OF_REQ3,
         "00000702" OF_NONE3 " 0000"),
    RESP("OffsetFetch v3, nothing committed", "0009 0003 00000703" CID OF_REQ3,
         "00000703 00000000" OF_NONE3 " 0000"),
    RESP("OffsetFetch v4, nothing committed", "0009 0004 00000704" CID OF_REQ3,
         "00000704 00000000" OF_NONE3 " 0000"),
    RESP("OffsetFetch v5, nothing committed", "0009 0005 00000705" CID OF_REQ3,
         "00000705 00000000" OF_NONE3_V5 " 0000"),
    RESP("OffsetCommit v7, two partitions (one with null metadata)",
         "0008 0007 00000706" CID "s'grp' ffffffff s'' ffff 00000001 s't1' 00000002"
         " 00000000 000000000000002a 00000009 s'meta' 00000002 0000000000000007 ffffffff ffff",
         "00000706 00000000 00000001 s't1' 00000002 00000000 0000 00000002 0000"),
    RESP("OffsetFetch v1", "0009 0001 00000707" CID OF_REQ3, "00000707" OF_GOT3),
    RESP("OffsetFetch v2 (top-level error_code)", "0009 0002 00000708" CID OF_REQ3,
         "00000708" OF_GOT3 " 0000"),
    RESP("OffsetFetch v3 (throttle)", "0009 0003 00000709" CID OF_REQ3,
         "00000709 00000000" OF_GOT3 " 0000"),
    RESP("OffsetFetch v4", "0009 0004 0000070a" CID OF_REQ3, "0000070a 00000000" OF_GOT3 " 0000"),
    RESP("OffsetFetch v5 (leader epoch)", "0009 0005 0000070b" CID OF_REQ3,
         "0000070b 00000000" OF_GOT3_V5 " 0000"),
    RESP("OffsetFetch v5, another group sees nothing", OF5("0000070c", "other"),
         OF5_RESP("0000070c", "ffffffffffffffff", "ffffffff", "s''", "0000")),
    RESP("OffsetCommit v6 for group g2",
         "0008 0006 0000070d" CID
         "s'g2' ffffffff s'' 00000001 s't1' 00000001 00000001 0000000000000003"
         " ffffffff s''",
         "0000070d 00000000 00000001 s't1' 00000001 00000001 0000"),
    RESP("OffsetFetch v2, null topics = all committed", "0009 0002 0000070e" CID "s'g2' ffffffff",
         "0000070e 00000001 s't1' 00000001 00000001 0000000000000003 s'' 0000 0000"),
    RESP("OffsetFetch v5, null topics = all committed", "0009 0005 0000070f" CID "s'g2' ffffffff",
         "0000070f 00000000 00000001 s't1' 00000001 00000001 0000000000000003 ffffffff s'' 0000 "
         "0000"),
    RESP("OffsetFetch v3, null topics, no commits", "0009 0003 00000710" CID "s'none' ffffffff",
         "00000710 00000000 00000000 0000"),
    RESP("OffsetFetch v4, unknown topic: -1, no error",
         "0009 0004 00000711" CID "s'grp' 00000001 s'nope' 00000001"
         " 00000000",
         "00000711 00000000 00000001 s'nope' 00000001 00000000" NONE "s'' 0000 0000"),
};

START_TEST(test_offsetfetch_versions)
{
    mk_topic("t1", 4);
    run_steps(offsetfetch_steps, ARRAY_SIZE(offsetfetch_steps));
}
END_TEST

static const step_t offset_err_steps[] = {
    /* No such group: generation 5 is from a group that is gone (Kafka:
     * ILLEGAL_GENERATION); generation -1 is a simple consumer whatever its
     * member id (Kafka creates an Empty group and accepts). */
    RESP("OffsetCommit v7, unknown group, generation 5 -> 22",
         "0008 0007 00000801" CID "s'grp' 00000005 s'm1' ffff 00000001 s't1' 00000001 00000000"
         " 0000000000000005 ffffffff s''",
         OC_RESP3("00000801", "0016")),
    RESP("OffsetCommit v2, unknown group, generation -1 with a member id: accepted",
         "0008 0002 00000802" CID
         "s'grp' ffffffff s'm1' ffffffffffffffff 00000001 s't1' 00000001 00000003"
         " 0000000000000005 s''",
         "00000802 00000001 s't1' 00000001 00000003 0000"),
    RESP("OffsetCommit v2, empty group id -> 24",
         "0008 0002 00000803" CID
         "s'' ffffffff s'' ffffffffffffffff 00000001 s't1' 00000001 00000000"
         " 0000000000000005 s''",
         OC_RESP2("00000803", "0018")),
    RESP("OffsetCommit v5, null group id -> 24",
         "0008 0005 00000804" CID
         "ffff ffffffff s'' 00000001 s't1' 00000001 00000000 0000000000000005 s''",
         OC_RESP3("00000804", "0018")),
    RESP("OffsetCommit v7, metadata of 4097 bytes -> 12",
         "0008 0007 00000805" CID "s'grp' ffffffff s'' ffff 00000001 s't1' 00000001 00000000"
         " 0000000000000005 ffffffff @M",
         OC_RESP3("00000805", "000c")),
    RESP("OffsetFetch v5: nothing was stored for partition 0", OF5("00000806", "grp"),
         OF5_RESP("00000806", "ffffffffffffffff", "ffffffff", "s''", "0000")),
    RESP("OffsetCommit v7, metadata of 4096 bytes",
         "0008 0007 00000807" CID "s'grp' ffffffff s'' ffff 00000001 s't1' 00000001 00000000"
         " 0000000000000005 ffffffff @N",
         OC_RESP3("00000807", "0000")),
    RESP("OffsetFetch v5: 4096 bytes of metadata back", OF5("00000808", "grp"),
         OF5_RESP("00000808", "0000000000000005", "ffffffff", "@N", "0000")),
    RESP("OffsetCommit v3, unknown topic and partition -> 3",
         "0008 0003 00000809" CID "s'grp' ffffffff s'' ffffffffffffffff 00000002"
         " s't1' 00000002 00000001 0000000000000001 s'' 00000004 0000000000000001 s''"
         " s'nope' 00000001 00000000 0000000000000001 s''",
         "00000809 00000000 00000002 s't1' 00000002 00000001 0000 00000004 0003 s'nope' 00000001 "
         "00000000 0003"),
    RESP("OffsetFetch v1, empty group id -> 24 per partition",
         "0009 0001 0000080a" CID "s'' 00000001 s't1'"
         " 00000001 00000000",
         "0000080a 00000001 s't1' 00000001 00000000" NONE "s'' 0018"),
    RESP("OffsetFetch v2, empty group id -> 24",
         "0009 0002 0000080b" CID "s'' 00000001 s't1' 00000001 00000000",
         "0000080b 00000001 s't1' 00000001 00000000" NONE "s'' 0018 0018"),
    RESP("OffsetFetch v3, partitions 3 and 1",
         "0009 0003 0000080c" CID "s'grp' 00000001 s't1' 00000002 00000003"
         " 00000001",
         "0000080c 00000000 00000001 s't1' 00000002 00000003 0000000000000005 s'' 0000"
         " 00000001 0000000000000001 s'' 0000 0000"),
};

START_TEST(test_offset_errors)
{
    mk_topic("t1", 4);
    run_steps(offset_err_steps, ARRAY_SIZE(offset_err_steps));
    ck_assert_ptr_null(offsets_get(g_b.offsets, "", "t1", 0));
    ck_assert_ptr_null(offsets_get(g_b.offsets, "grp", "nope", 0));
    ck_assert_ptr_nonnull(offsets_get(g_b.offsets, "grp", "t1", 1));
}
END_TEST

/* A group that exists but has no members (JoinGroup v4 without a member id
 * is answered MEMBER_ID_REQUIRED and leaves the group Empty). */
static const step_t group_commit_steps[] = {
    RESP("OffsetCommit v7, Empty group, generation 5, unknown member -> 25",
         "0008 0007 00000811" CID "s'jg' 00000005 s'm1' ffff 00000001 s't1' 00000001 00000000"
         " 0000000000000009 ffffffff s''",
         OC_RESP3("00000811", "0019")),
    RESP("OffsetCommit v6, Empty group, generation 5, empty member id -> 25",
         "0008 0006 00000812" CID "s'jg' 00000005 s'' 00000001 s't1' 00000001 00000000"
         " 0000000000000009 ffffffff s''",
         OC_RESP3("00000812", "0019")),
    RESP("OffsetFetch v5: not stored", OF5("00000813", "jg"),
         OF5_RESP("00000813", "ffffffffffffffff", "ffffffff", "s''", "0000")),
    RESP("OffsetCommit v7, Empty group, generation -1, no member id: accepted",
         "0008 0007 00000814" CID "s'jg' ffffffff s'' ffff 00000001 s't1' 00000001 00000000"
         " 0000000000000009 00000002 s'simple'",
         OC_RESP3("00000814", "0000")),
    RESP("OffsetFetch v5: stored", OF5("00000815", "jg"),
         OF5_RESP("00000815", "0000000000000009", "00000002", "s'simple'", "0000")),
};

START_TEST(test_offset_commit_group)
{
    mk_topic("t1", 4);
    sk_buf_t rq, out;
    kp_ctx_t ctx;
    sk_buf_init(&rq, 128);
    sk_buf_init(&out, 256);
    vec_parse(&rq,
              "000b 0004 00000810" CID "s'jg' 00007530 000493e0 s'' s'consumer' 00000001 s'range'"
              " 00000004 'meta'");
    uint8_t *frame = frame_dup(&rq, rq.len);
    ck_assert_int_eq(handle(frame, rq.len, &out, &ctx), KP_RESPOND);
    /* size, correlation id, throttle, error 79, generation -1, protocol "",
     * leader "", member_id (generated: "test-..."), no members */
    sk_cur_t c;
    sk_cur_init(&c, out.data + 3, out.len - 3);
    ck_assert_int_eq(sk_cur_i32(&c), (int32_t)(out.len - 3 - 4));
    ck_assert_int_eq(sk_cur_i32(&c), 0x810);
    ck_assert_int_eq(sk_cur_i32(&c), 0);
    ck_assert_int_eq(sk_cur_i16(&c), KP_ERR_MEMBER_ID_REQUIRED);
    ck_assert_int_eq(sk_cur_i32(&c), -1);
    ck_assert_int_eq(kp_read_str(&c).len, 0);
    ck_assert_int_eq(kp_read_str(&c).len, 0);
    kp_str_t mid = kp_read_str(&c);
    ck_assert_int_gt(mid.len, 5);
    ck_assert_int_eq(memcmp(mid.p, "test-", 5), 0);
    ck_assert_int_eq(sk_cur_i32(&c), 0);
    ck_assert_int_eq(c.err, 0);
    ck_assert_uint_eq(sk_cur_left(&c), 0);
    free(frame);
    sk_buf_release(&rq);
    sk_buf_release(&out);
    run_steps(group_commit_steps, ARRAY_SIZE(group_commit_steps));
}
END_TEST

/* ---- CreateTopics -------------------------------------------------------- */

#define CT(ver, corr) "0013 " ver " " corr CID
#define CT_END " 00007530 00"
#define MSG_EXISTS(t) "s'topic ''" t "'' already exists'"
#define MSG_NAME "s'topic names are 1-249 characters of [a-zA-Z0-9._-], not ''.'' or ''..'''"
#define MSG_PARTS "s'number of partitions must be 1..10000 (or -1 for the default)'"
#define MSG_RF "s'souk-broker is a single node: replication factor must be 1 or -1'"

static const step_t createtopics_steps[] = {
    RESP("CreateTopics v2",
         CT("0002", "00000901") "00000001 s'c1' 00000003 0001 00000000 00000000" CT_END,
         "00000901 00000000 00000001 s'c1' 0000 ffff"),
    RESP("CreateTopics v3, default partitions and replication, with configs",
         CT("0003", "00000902") "00000001 s'c2' ffffffff ffff 00000000 00000001 s'retention.ms' "
                                "s'1000'" CT_END,
         "00000902 00000000 00000001 s'c2' 0000 ffff"),
    RESP("CreateTopics v4, manual assignment",
         CT("0004", "00000903") "00000001 s'c3' ffffffff ffff 00000002 00000000 00000001 00000001"
                                " 00000001 00000001 00000001 00000000" CT_END,
         "00000903 00000000 00000001 s'c3' 0000 ffff"),
    RESP("CreateTopics v4, already exists -> 36",
         CT("0004", "00000904") "00000001 s'c1' 00000001 0001 00000000 00000000" CT_END,
         "00000904 00000000 00000001 s'c1' 0024 " MSG_EXISTS("c1")),
    RESP("CreateTopics v2, invalid name -> 17",
         CT("0002", "00000905") "00000001 s'bad/name' 00000001 0001 00000000 00000000" CT_END,
         "00000905 00000000 00000001 s'bad/name' 0011 " MSG_NAME),
    RESP("CreateTopics v3, replication factor 3 -> 38",
         CT("0003", "00000906") "00000001 s'c4' 00000001 0003 00000000 00000000" CT_END,
         "00000906 00000000 00000001 s'c4' 0026 " MSG_RF),
    RESP("CreateTopics v4, 0 partitions -> 37",
         CT("0004", "00000907") "00000001 s'c5' 00000000 0001 00000000 00000000" CT_END,
         "00000907 00000000 00000001 s'c5' 0025 " MSG_PARTS),
    RESP("CreateTopics v4, 10001 partitions -> 37",
         CT("0004", "00000908") "00000001 s'c5' 00002711 0001 00000000 00000000" CT_END,
         "00000908 00000000 00000001 s'c5' 0025 " MSG_PARTS),
    RESP("CreateTopics v4, validate_only",
         CT("0004", "00000909") "00000001 s'c6' 00000002 0001 00000000 00000000 00007530 01",
         "00000909 00000000 00000001 s'c6' 0000 ffff"),
    RESP("Metadata v4: validate_only created nothing", "0003 0004 0000090a" CID "00000001 s'c6' 00",
         "0000090a 00000000" BROKERS_V1 CLUSTER "00000001 | 00000001 0003 s'c6' 00" NO_PARTS),
    RESP("CreateTopics v2, three topics",
         CT("0002", "0000090b") "00000003 s'c7' 00000001 0001 00000000 00000000"
                                " s'c1' 00000001 0001 00000000 00000000"
                                " s'c8' 00000000 0001 00000000 00000000" CT_END,
         "0000090b 00000000 00000003 s'c7' 0000 ffff s'c1' 0024 " MSG_EXISTS(
             "c1") " s'c8' 0025 " MSG_PARTS),
    RESP("Metadata v1: the created topics",
         "0003 0001 0000090c" CID "00000004 s'c1' s'c2' s'c3' s'c7'",
         "0000090c" BROKERS_V1 "00000001 | 00000004 0000 s'c1' 00" MD_PARTS3
         "0000 s'c2' 00" MD_PARTS4 "0000 s'c3' 00" MD_PARTS2 "0000 s'c7' 00 00000001" MDP(0)),
};

START_TEST(test_createtopics)
{
    run_steps(createtopics_steps, ARRAY_SIZE(createtopics_steps));
    ck_assert_uint_eq(log_topic_count(g_b.log), 4);
}
END_TEST

/* ---- bad input ----------------------------------------------------------- */

static const step_t unsupported_steps[] = {
    CLOSE("API key 99", "0063 0000 00000001" CID),
    CLOSE("API key 4 (not spoken)", "0004 0000 00000001" CID),
    CLOSE("API key 20", "0014 0000 00000001" CID),
    CLOSE("API key -1", "ffff 0000 00000001" CID),
    CLOSE("Metadata v12", "0003 000c 00000001" CID "00 01 00 00 00"),
    CLOSE("Metadata v12 without tags", "0003 000c 00000001" CID "ffffffff 01"),
    CLOSE("Metadata v5", "0003 0005 00000001" CID "ffffffff 01"),
    CLOSE("Metadata v-1", "0003 ffff 00000001" CID "ffffffff"),
    CLOSE("Produce v8", PRODUCE("0008", "00000001", "ffff", "t1", "00000000", "0")),
    CLOSE("Fetch v3", "0001 0003 00000001" CID "ffffffff 000001f4 00000001 00a00000 00000000"),
    CLOSE("Fetch v12", "0001 000c 00000001" CID
                       "00 ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff 01 01"
                       " 01 c'' 00"),
    CLOSE("ListOffsets v0", "0002 0000 00000001" CID "ffffffff 00000000"),
    CLOSE("ListOffsets v3", "0002 0003 00000001" CID "ffffffff 00 00000000"),
    CLOSE("OffsetCommit v1", "0008 0001 00000001" CID "s'grp' ffffffff s'' 00000000"),
    CLOSE("OffsetCommit v8", "0008 0008 00000001" CID "00 c'grp' ffffffff c'' 00 01 00"),
    CLOSE("OffsetFetch v0", "0009 0000 00000001" CID "s'grp' 00000000"),
    CLOSE("OffsetFetch v6", "0009 0006 00000001" CID "00 c'grp' 00 00 00"),
    CLOSE("FindCoordinator v3", "000a 0003 00000001" CID "00 c'grp' 00 00"),
    CLOSE("CreateTopics v1", "0013 0001 00000001" CID "00000000 00007530 00"),
    CLOSE("CreateTopics v5", "0013 0005 00000001" CID "00 01 00007530 00 00"),
    CLOSE("empty frame", ""),
    CLOSE("1 byte", "00"),
    CLOSE("7 bytes", "0003 0000 000000"),
    CLOSE("no client_id", "0003 0000 00000001"),
    CLOSE("half a client_id length", "0003 0000 00000001 00"),
    CLOSE("client_id overruns", "0003 0000 00000001 0005 'ab'"),
    CLOSE("client_id length -2", "0003 0000 00000001 fffe"),
};

START_TEST(test_unsupported)
{
    mk_topic("t1", 4);
    run_steps(unsupported_steps, ARRAY_SIZE(unsupported_steps));
    ck_assert_int_eq(end_offset("t1", 0), 0);
}
END_TEST

static const step_t oversized_steps[] = {
    CLOSE("Metadata v0, 0x7fffffff topics", "0003 0000 00000001" CID "7fffffff"),
    CLOSE("Metadata v1, -2 topics", "0003 0001 00000001" CID "fffffffe"),
    CLOSE("Metadata v4, 2 topics, 1 sent", "0003 0004 00000001" CID "00000002 s't1' 01"),
    CLOSE("Metadata v4, name length -2", "0003 0004 00000001" CID "00000001 fffe 01"),
    CLOSE("Metadata v4, name overruns", "0003 0004 00000001" CID "00000001 0010 't1' 01"),
    CLOSE("Produce v7, 0x7fffffff topics", "0000 0007 00000001" CID "ffff ffff 00007530 7fffffff"),
    CLOSE("Produce v7, null topics", "0000 0007 00000001" CID "ffff ffff 00007530 ffffffff"),
    CLOSE("Produce v7, 0x10000000 partitions",
          "0000 0007 00000001" CID "ffff ffff 00007530 00000001 s't1' 10000000 00000000 #0 @0"),
    CLOSE("Produce v7, null partitions",
          "0000 0007 00000001" CID "ffff ffff 00007530 00000001 s't1' ffffffff"),
    CLOSE("Produce v7, records longer than the frame",
          "0000 0007 00000001" CID
          "ffff ffff 00007530 00000001 s't1' 00000001 00000000 7fffffff @0"),
    CLOSE("Produce v7, records length -2",
          "0000 0007 00000001" CID
          "ffff ffff 00007530 00000001 s't1' 00000001 00000000 fffffffe @0"),
    CLOSE("Produce v3, 2 topics, 1 sent",
          "0000 0003 00000001" CID "ffff ffff 00007530 00000002 s't1' 00000001 00000000 #0 @0"),
    CLOSE("Fetch v11, 1000 topics",
          "0001 000b 00000001" CID
          "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff 000003e8 s't1'"),
    CLOSE("Fetch v11, 0x7fffffff partitions",
          "0001 000b 00000001" CID
          "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff 00000001 s't1'"
          " 7fffffff 00000000 ffffffff 0000000000000000 ffffffffffffffff 00100000 00000000 s''"),
    CLOSE("Fetch v11, null topics",
          "0001 000b 00000001" CID
          "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff ffffffff 00000000 s''"),
    CLOSE("Fetch v7, 0x7fffffff forgotten topics",
          "0001 0007 00000001" CID
          "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff 00000000 7fffffff"),
    CLOSE("Fetch v7, 0x40000000 forgotten partitions",
          "0001 0007 00000001" CID
          "ffffffff 000001f4 00000001 00a00000 00 00000000 ffffffff 00000000 00000001"
          " s'old' 40000000 00000000"),
    CLOSE("ListOffsets v1, 0x7fffffff topics", "0002 0001 00000001" CID "ffffffff 7fffffff"),
    CLOSE("ListOffsets v2, 0x7fffffff partitions",
          "0002 0002 00000001" CID "ffffffff 00 00000001 s't1' 7fffffff 00000000 ffffffffffffffff"),
    CLOSE("ListOffsets v2, null partitions",
          "0002 0002 00000001" CID "ffffffff 00 00000001 s't1' ffffffff"),
    CLOSE("OffsetCommit v7, 0x7fffffff topics",
          "0008 0007 00000001" CID "s'grp' ffffffff s'' ffff 7fffffff"),
    CLOSE("OffsetCommit v2, null topics",
          "0008 0002 00000001" CID "s'grp' ffffffff s'' ffffffffffffffff ffffffff"),
    CLOSE("OffsetCommit v7, 0x7fffffff partitions",
          "0008 0007 00000001" CID
          "s'grp' ffffffff s'' ffff 00000001 s't1' 7fffffff 00000000 0000000000000001"
          " ffffffff s''"),
    CLOSE("OffsetCommit v7, metadata overruns",
          "0008 0007 00000001" CID
          "s'grp' ffffffff s'' ffff 00000001 s't1' 00000001 00000000 0000000000000001"
          " ffffffff 0100 'x'"),
    CLOSE("OffsetFetch v1, null topics (v2+ only)", "0009 0001 00000001" CID "s'grp' ffffffff"),
    CLOSE("OffsetFetch v5, 0x7fffffff topics", "0009 0005 00000001" CID "s'grp' 7fffffff"),
    CLOSE("OffsetFetch v5, 1000 partitions, 2 sent",
          "0009 0005 00000001" CID "s'grp' 00000001 s't1' 000003e8 00000000 00000001"),
    CLOSE("OffsetFetch v3, null partitions",
          "0009 0003 00000001" CID "s'grp' 00000001 s't1' ffffffff"),
    CLOSE("CreateTopics v4, 0x7fffffff topics", "0013 0004 00000001" CID "7fffffff 00007530 00"),
    CLOSE("CreateTopics v4, null topics", "0013 0004 00000001" CID "ffffffff 00007530 00"),
    CLOSE("CreateTopics v4, 0x7fffffff assignments",
          "0013 0004 00000001" CID "00000001 s'c1' ffffffff ffff 7fffffff 00000000" CT_END),
    CLOSE("CreateTopics v4, 0x7fffffff broker ids",
          "0013 0004 00000001" CID
          "00000001 s'c1' ffffffff ffff 00000001 00000000 7fffffff 00000000" CT_END),
    CLOSE("CreateTopics v4, 0x7fffffff configs",
          "0013 0004 00000001" CID "00000001 s'c1' ffffffff ffff 00000000 7fffffff" CT_END),
    CLOSE("FindCoordinator v1, key overruns", "000a 0001 00000001" CID "0009 'grp' 00"),
};

START_TEST(test_oversized_counts)
{
    mk_topic("t1", 4);
    run_steps(oversized_steps, ARRAY_SIZE(oversized_steps));
    ck_assert_int_eq(end_offset("t1", 0), 0);
    ck_assert_uint_eq(log_topic_count(g_b.log), 1);
}
END_TEST

/* Every request vector of every table, for the truncation and mutation
 * tests. */
typedef struct table_s {
    const step_t *steps;
    size_t n;
} table_t;

#define TABLE(t)                                                                                   \
    {                                                                                              \
        t, ARRAY_SIZE(t)                                                                           \
    }
static const table_t all_tables[] = {
    TABLE(apiversions_steps),  TABLE(metadata_steps),        TABLE(metadata_noauto_steps),
    TABLE(produce_steps),      TABLE(produce_acks0_steps),   TABLE(produce_legacy_steps),
    TABLE(produce_err_steps),  TABLE(fetch_version_steps),   TABLE(fetch_edge_steps),
    TABLE(listoffsets_steps),  TABLE(findcoordinator_steps), TABLE(offsetcommit_steps),
    TABLE(offsetfetch_steps),  TABLE(offset_err_steps),      TABLE(group_commit_steps),
    TABLE(createtopics_steps), TABLE(unsupported_steps),     TABLE(oversized_steps),
};

/*
 * Every strict prefix of every request (ApiVersions aside: its body may be
 * empty, and a bad v3 body is answered with 42) must be closed, write
 * nothing and change nothing: handlers parse the whole request before acting.
 */
START_TEST(test_truncated_requests)
{
    mk_topic("t1", 4);
    size_t tried = 0;
    for (size_t t = 0; t < ARRAY_SIZE(all_tables); t++)
        for (size_t i = 0; i < all_tables[t].n; i++) {
            const step_t *s = &all_tables[t].steps[i];
            sk_buf_t rq, out;
            kp_ctx_t ctx;
            sk_buf_init(&rq, 128);
            sk_buf_init(&out, 256);
            vec_parse(&rq, s->req);
            int is_apiversions = rq.len >= 2 && sk_load_i16(rq.data) == KP_API_ApiVersions;
            for (size_t len = 0; len < rq.len; len++) {
                if (is_apiversions && len >= 8) continue;
                uint8_t *frame = frame_dup(&rq, len);
                kp_action_t a = handle(frame, len, &out, &ctx);
                ck_assert_msg(a == KP_CLOSE, "%s cut to %zu of %zu bytes: action %d", s->name, len,
                              rq.len, (int)a);
                ck_assert_msg(out.len == 3, "%s cut to %zu bytes: output written", s->name, len);
                ck_assert_ptr_null(ctx.fetch);
                free(frame);
                tried++;
            }
            sk_buf_release(&rq);
            sk_buf_release(&out);
        }
    ck_assert_uint_gt(tried, 1000);
    ck_assert_uint_eq(log_topic_count(g_b.log), 1);
    for (int32_t p = 0; p < 4; p++)
        ck_assert_int_eq(end_offset("t1", p), 0);
    static const char *const groups[] = {"grp", "g2", "jg", "other"};
    for (size_t g = 0; g < ARRAY_SIZE(groups); g++)
        for (int32_t p = 0; p < 5; p++)
            ck_assert_msg(offsets_get(g_b.offsets, groups[g], "t1", p) == NULL,
                          "%s t1-%d committed", groups[g], p);
}
END_TEST

static const step_t apiversions_trunc_steps[] = {
    RESP("ApiVersions v3 cut after the header", "0012 0003 00000001" CID "00", "00000001 002a @V"),
    RESP("ApiVersions v3 cut inside the first string", "0012 0003 00000002" CID "00 0b 'librd'",
         "00000002 002a @V"),
    RESP("ApiVersions v3 cut before the tags", "0012 0003 00000003" CID "00 c'librdkafka' c'2.0.2'",
         "00000003 002a @V"),
    CLOSE("ApiVersions v3 cut before the header tags", "0012 0003 00000004" CID),
};

START_TEST(test_apiversions_truncated)
{
    run_steps(apiversions_trunc_steps, ARRAY_SIZE(apiversions_trunc_steps));
}
END_TEST

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/*
 * Deterministic mutations of every request vector (bytes overwritten, cut or
 * extended).  Whatever the handler makes of them, it must not crash (run
 * this under ASan/UBSan) and must keep the framing contract: a response is a
 * whole frame whose size matches and whose correlation id is the request's;
 * anything else writes nothing.
 */
START_TEST(test_mutations)
{
    mk_topic("t1", 4);
    size_t responded = 0, closed = 0;
    for (size_t t = 0; t < ARRAY_SIZE(all_tables); t++)
        for (size_t i = 0; i < all_tables[t].n; i++) {
            const step_t *s = &all_tables[t].steps[i];
            sk_buf_t rq, out;
            kp_ctx_t ctx;
            sk_buf_init(&rq, 128);
            sk_buf_init(&out, 256);
            vec_parse(&rq, s->req);
            if (rq.len >= 2 && sk_load_i16(rq.data) == KP_API_CreateTopics) {
                /* mutated partition counts would create thousands of files */
                sk_buf_release(&rq);
                sk_buf_release(&out);
                continue;
            }
            for (int m = 0; m < 60; m++) {
                size_t len = rq.len;
                uint8_t *frame = malloc(len + 8);
                ck_assert_ptr_nonnull(frame);
                memcpy(frame, rq.data, len);
                int nflip = 1 + (int)(rng() % 3);
                for (int k = 0; k < nflip && len > 4; k++) {
                    size_t at =
                        4 + rng() % (len - 4); /* keep key and version: reach the handlers */
                    uint32_t r = rng();
                    frame[at] = (uint8_t)(r % 4 == 0   ? 0xff
                                          : r % 4 == 1 ? 0x00
                                          : r % 4 == 2 ? 0x7f
                                                       : r >> 8);
                }
                uint32_t shape = rng() % 8;
                if (shape == 0 && len > 0)
                    len = rng() % len;
                else if (shape == 1) {
                    for (int k = 0; k < 8; k++)
                        frame[len + (size_t)k] = (uint8_t)rng();
                    len += 1 + rng() % 8;
                }
                uint8_t *exact = malloc(len ? len : 1);
                ck_assert_ptr_nonnull(exact);
                memcpy(exact, frame, len);
                uint8_t corr[4] = {0};
                if (len >= 8) memcpy(corr, exact + 4, 4);
                kp_action_t a = handle(exact, len, &out, &ctx);
                ck_assert_msg(a == KP_RESPOND || a == KP_NO_RESPONSE || a == KP_CLOSE,
                              "%s mutation %d: action %d", s->name, m, (int)a);
                ck_assert_ptr_null(ctx.fetch);
                if (a == KP_RESPOND) {
                    ck_assert_uint_ge(out.len, 3 + 8);
                    ck_assert_int_eq(sk_load_i32(out.data + 3), (int32_t)(out.len - 3 - 4));
                    ck_assert_msg(memcmp(out.data + 7, corr, 4) == 0,
                                  "%s mutation %d: correlation id", s->name, m);
                    responded++;
                } else {
                    ck_assert_uint_eq(out.len, 3);
                    closed += a == KP_CLOSE;
                }
                free(exact);
                free(frame);
            }
            sk_buf_release(&rq);
            sk_buf_release(&out);
        }
    ck_assert_uint_gt(responded, 100);
    ck_assert_uint_gt(closed, 100);
}
END_TEST

/* ---- suite --------------------------------------------------------------- */

static Suite *kafka_suite(void)
{
    Suite *s = suite_create("kafka");
    struct {
        const char *name;
        const TTest *tests[8];
    } cases[] = {
        {"codec", {test_crc32c_and_batch, test_api_table, test_frame_extract, test_primitives}},
        {"ApiVersions", {test_apiversions, test_apiversions_truncated}},
        {"Metadata", {test_metadata, test_metadata_no_autocreate}},
        {"Produce",
         {test_produce_versions, test_produce_acks0, test_produce_legacy_versions,
          test_produce_errors}},
        {"Fetch", {test_fetch_versions, test_fetch_edges}},
        {"ListOffsets", {test_listoffsets}},
        {"FindCoordinator", {test_findcoordinator}},
        {"Offsets",
         {test_offsetcommit_versions, test_offsetfetch_versions, test_offset_errors,
          test_offset_commit_group}},
        {"CreateTopics", {test_createtopics}},
        {"bad input",
         {test_unsupported, test_oversized_counts, test_truncated_requests, test_mutations}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        for (size_t k = 0; k < ARRAY_SIZE(cases[i].tests) && cases[i].tests[k]; k++)
            tcase_add_test(tc, cases[i].tests[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    if (!getenv("SOUK_TEST_LOG")) sk_log_set_level(SK_LOG_FATAL);
    SRunner *sr = srunner_create(kafka_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
