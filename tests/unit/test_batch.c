/*
 * test_batch.c - broker/log/batch.h: validation of record batches v2 built
 * byte by byte in the test, and the timestamp search used by ListOffsets.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_builder.h"
#include "sk_buf.h"

static const bb_spec_t spec5 = {
    .base_offset = 0, .attributes = 0, .base_ts = 1000, .ts_step = 10, .nrecs = 5, .value_len = 20};

/* A private, writable copy of one batch. */
static uint8_t *make_batch(const bb_spec_t *spec, size_t *len)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    bb_add(&b, spec);
    return (uint8_t *)sk_buf_detach(&b, len);
}

START_TEST(test_batch_valid)
{
    size_t len;
    bb_spec_t spec = spec5;
    spec.base_offset = 77;
    uint8_t *p = make_batch(&spec, &len);
    batch_hdr_t h;
    ck_assert_int_eq(batch_validate(p, len, &h), BATCH_OK);
    ck_assert(h.base_offset == 77);
    ck_assert_int_eq(h.batch_length, (int32_t)len - 12);
    ck_assert_uint_eq(batch_size(&h), len);
    ck_assert_int_eq(h.magic, 2);
    ck_assert_int_eq(h.attributes, 0);
    ck_assert_int_eq(h.last_offset_delta, 4);
    ck_assert(h.base_timestamp == 1000);
    ck_assert(h.max_timestamp == 1040);
    ck_assert_int_eq(h.records_count, 5);
    ck_assert_uint_eq(h.crc, (uint32_t)sk_load_i32(p + 17));
    /* More bytes available than the batch needs is fine. */
    uint8_t *more = calloc(1, len + 100);
    memcpy(more, p, len);
    ck_assert_int_eq(batch_validate(more, len + 100, &h), BATCH_OK);
    ck_assert_uint_eq(batch_size(&h), len);
    free(more);
    free(p);
}
END_TEST

START_TEST(test_batch_bit_flips)
{
    size_t len;
    uint8_t *p = make_batch(&spec5, &len);
    batch_hdr_t h;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1u << bit);
            batch_err_t e = batch_validate(p, len, &h);
            if (i < 8 || (i >= 12 && i < 16)) {
                /* baseOffset and partitionLeaderEpoch are outside the CRC:
                 * the broker rewrites baseOffset without recomputing it. */
                ck_assert_msg(e == BATCH_OK, "byte %zu bit %d: %s", i, bit, batch_err2str(e));
            } else if (i >= 17 && i < 21) {
                ck_assert_msg(e == BATCH_BAD_CRC, "crc byte %zu bit %d: %s", i, bit,
                              batch_err2str(e));
            } else if (i >= 21 && (i < 27 || (i >= 57 && i < 61))) {
                /* attributes, lastOffsetDelta, recordsCount: the header
                 * checks may notice before the CRC does. */
                ck_assert_msg(e == BATCH_BAD_CRC || e == BATCH_BAD_CODEC || e == BATCH_BAD_COUNT,
                              "byte %zu bit %d: %s", i, bit, batch_err2str(e));
            } else if (i >= 27) {
                ck_assert_msg(e == BATCH_BAD_CRC, "byte %zu bit %d: %s", i, bit, batch_err2str(e));
            } else {
                ck_assert_msg(e != BATCH_OK, "byte %zu bit %d accepted", i, bit);
            }
            p[i] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_int_eq(batch_validate(p, len, &h), BATCH_OK);
    free(p);
}
END_TEST

START_TEST(test_batch_bad_magic)
{
    size_t len;
    uint8_t *p = make_batch(&spec5, &len);
    batch_hdr_t h;
    static const int8_t magics[] = {0, 1, 3, -1};
    for (size_t i = 0; i < sizeof magics; i++) {
        p[16] = (uint8_t)magics[i];
        ck_assert_int_eq(batch_validate(p, len, &h), BATCH_BAD_MAGIC);
        ck_assert_int_eq(batch_hdr_parse(p, len, &h), BATCH_BAD_MAGIC);
    }
    free(p);
}
END_TEST

START_TEST(test_batch_truncated)
{
    size_t len;
    uint8_t *p = make_batch(&spec5, &len);
    batch_hdr_t h;
    for (size_t n = 0; n < len; n++) {
        /* A copy of exactly n bytes, so ASan sees any read past them. */
        uint8_t *q = malloc(n ? n : 1);
        memcpy(q, p, n);
        ck_assert_msg(batch_validate(q, n, &h) == BATCH_SHORT, "%zu of %zu bytes", n, len);
        free(q);
    }
    free(p);
}
END_TEST

START_TEST(test_batch_bad_length)
{
    size_t len;
    uint8_t *p = make_batch(&spec5, &len);
    batch_hdr_t h;
    static const int32_t lengths[] = {
        0, -1, INT32_MIN, BATCH_HEADER_LEN - BATCH_LOG_OVERHEAD - 1, BATCH_MAX_LEN + 1, INT32_MAX};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        sk_store_i32(p + 8, lengths[i]);
        ck_assert_msg(batch_validate(p, len, &h) == BATCH_BAD_LENGTH, "batchLength %d", lengths[i]);
    }
    /* Longer than the bytes at hand: short, not bad. */
    sk_store_i32(p + 8, (int32_t)len - 12 + 1);
    ck_assert_int_eq(batch_validate(p, len, &h), BATCH_SHORT);
    /* Shorter than the records, but at least a header: the CRC then covers
     * the wrong range. */
    sk_store_i32(p + 8, (int32_t)len - 12 - 1);
    ck_assert_int_eq(batch_validate(p, len, &h), BATCH_BAD_CRC);
    free(p);
}
END_TEST

START_TEST(test_batch_bad_count)
{
    size_t len;
    uint8_t *p = make_batch(&spec5, &len);
    batch_hdr_t h;
    sk_store_i32(p + 57, 0); /* recordsCount */
    bb_fix_crc(p);
    ck_assert_int_eq(batch_validate(p, len, &h), BATCH_BAD_COUNT);
    sk_store_i32(p + 57, 5);
    sk_store_i32(p + 23, -1); /* lastOffsetDelta */
    bb_fix_crc(p);
    ck_assert_int_eq(batch_validate(p, len, &h), BATCH_BAD_COUNT);
    free(p);
}
END_TEST

START_TEST(test_batch_codecs)
{
    size_t len;
    uint8_t *p = make_batch(&spec5, &len);
    batch_hdr_t h;
    /* none, gzip, snappy, lz4, zstd; with the timestamp-type and
     * transactional bits set too. */
    for (int16_t codec = 0; codec <= 4; codec++) {
        for (int16_t flags = 0; flags <= 0x30; flags += 0x08) {
            p[21] = (uint8_t)((codec | flags) >> 8);
            p[22] = (uint8_t)(codec | flags);
            bb_fix_crc(p);
            ck_assert_int_eq(batch_validate(p, len, &h), BATCH_OK);
            ck_assert_int_eq(h.attributes & 7, codec);
        }
    }
    for (int16_t codec = 5; codec <= 7; codec++) {
        p[22] = (uint8_t)codec;
        bb_fix_crc(p);
        ck_assert_int_eq(batch_validate(p, len, &h), BATCH_BAD_CODEC);
    }
    free(p);
}
END_TEST

START_TEST(test_batch_validate_all)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    bb_add(&b, &spec5);
    size_t first = b.len;
    bb_spec_t one = spec5;
    one.nrecs = 1;
    one.value_len = 300;
    bb_add(&b, &one);
    size_t two = b.len;

    int n = -1;
    size_t bad_at = 12345;
    ck_assert_int_eq(batch_validate_all((uint8_t *)b.data, two, &n, &bad_at), BATCH_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(batch_validate_all((uint8_t *)b.data, first, &n, &bad_at), BATCH_OK);
    ck_assert_int_eq(n, 1);

    /* Nothing at all is not a batch. */
    ck_assert_int_eq(batch_validate_all((uint8_t *)b.data, 0, &n, &bad_at), BATCH_SHORT);
    ck_assert_uint_eq(bad_at, 0);

    /* A trailing partial batch: every cut inside the second batch. */
    for (size_t cut = first + 1; cut < two; cut++) {
        bad_at = 0;
        ck_assert_int_eq(batch_validate_all((uint8_t *)b.data, cut, &n, &bad_at), BATCH_SHORT);
        ck_assert_uint_eq(bad_at, first);
    }
    /* A corrupt second batch is reported at its position. */
    b.data[two - 1] ^= 0x40;
    ck_assert_int_eq(batch_validate_all((uint8_t *)b.data, two, &n, &bad_at), BATCH_BAD_CRC);
    ck_assert_uint_eq(bad_at, first);
    b.data[two - 1] ^= 0x40;
    /* And a corrupt first one at 0. */
    b.data[16] = 1;
    ck_assert_int_eq(batch_validate_all((uint8_t *)b.data, two, &n, &bad_at), BATCH_BAD_MAGIC);
    ck_assert_uint_eq(bad_at, 0);
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_batch_set_base_offset)
{
    size_t len;
    uint8_t *p = make_batch(&spec5, &len);
    batch_hdr_t h;
    batch_set_base_offset(p, INT64_C(0x0102030405060708));
    static const uint8_t want[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ck_assert_mem_eq(p, want, 8);
    ck_assert_int_eq(batch_validate(p, len, &h), BATCH_OK); /* the CRC still holds */
    ck_assert(h.base_offset == INT64_C(0x0102030405060708));
    free(p);
}
END_TEST

START_TEST(test_batch_find_timestamp)
{
    size_t len;
    bb_spec_t spec = spec5;
    spec.base_offset = 100; /* record timestamps 1000, 1010, ..., 1040 */
    uint8_t *p = make_batch(&spec, &len);
    static const struct {
        int64_t ts, offset, rec_ts;
        int found;
    } cases[] = {
        {INT64_MIN, 100, 1000, 1}, {0, 100, 1000, 1},      {1000, 100, 1000, 1},
        {1001, 101, 1010, 1},      {1015, 102, 1020, 1},   {1040, 104, 1040, 1},
        {1041, -1, -1, 0},         {INT64_MAX, -1, -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t off = -1, ts = -1;
        int r = batch_find_timestamp(p, len, cases[i].ts, &off, &ts);
        ck_assert_msg(r == cases[i].found, "ts %lld: r %d", (long long)cases[i].ts, r);
        if (r == 1) {
            ck_assert(off == cases[i].offset);
            ck_assert(ts == cases[i].rec_ts);
        }
    }

    /* Compressed (gzip): never decompressed, the caller falls back. */
    p[22] = 1;
    bb_fix_crc(p);
    int64_t off = -1, ts = -1;
    ck_assert_int_eq(batch_find_timestamp(p, len, 0, &off, &ts), -1);
    free(p);
}
END_TEST

START_TEST(test_batch_find_timestamp_unordered)
{
    /* Record timestamps need not grow: the first record at or past the target
     * wins, in offset order.  Values of different sizes check the skipping. */
    static const int64_t deltas[] = {50, 0, 30, 80, 10};
    bb_spec_t spec = spec5;
    spec.base_offset = 10;
    spec.value_len = 200;
    sk_buf_t b;
    sk_buf_init(&b, 0);
    bb_add_ts(&b, &spec, deltas);
    int64_t off, ts;
    ck_assert_int_eq(batch_find_timestamp((uint8_t *)b.data, b.len, 1020, &off, &ts), 1);
    ck_assert(off == 10 && ts == 1050);
    ck_assert_int_eq(batch_find_timestamp((uint8_t *)b.data, b.len, 1060, &off, &ts), 1);
    ck_assert(off == 13 && ts == 1080);
    ck_assert_int_eq(batch_find_timestamp((uint8_t *)b.data, b.len, 1081, &off, &ts), 0);
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_batch_find_timestamp_malformed)
{
    size_t len;
    bb_spec_t spec = spec5;
    spec.nrecs = 1; /* one record of 28 bytes; its length varint is at byte 61 */
    uint8_t *p = make_batch(&spec, &len);
    int64_t off, ts;
    ck_assert_int_eq(batch_find_timestamp(p, len, 0, &off, &ts), 1);
    /* Truncated. */
    ck_assert_int_eq(batch_find_timestamp(p, len - 1, 0, &off, &ts), -1);
    ck_assert_int_eq(batch_find_timestamp(p, 30, 0, &off, &ts), -1);
    /* A record length running past the batch, and a negative one. */
    ck_assert_int_eq(p[BATCH_HEADER_LEN], 28 * 2);
    p[BATCH_HEADER_LEN] = 0x7e; /* 63 */
    ck_assert_int_eq(batch_find_timestamp(p, len, 0, &off, &ts), -1);
    p[BATCH_HEADER_LEN] = 0x01; /* -1 */
    ck_assert_int_eq(batch_find_timestamp(p, len, 0, &off, &ts), -1);
    free(p);
}
END_TEST

START_TEST(test_batch_find_timestamp_overflow)
{
    /* A producer controls baseTimestamp, the record timestamp deltas and the
     * offset deltas, and a valid CRC does not make them sane: sums that
     * overflow int64 make the batch malformed, not undefined behaviour. */
    static const int64_t deltas[] = {INT64_MAX};
    bb_spec_t spec = spec5;
    spec.nrecs = 1;
    spec.base_ts = 1;
    sk_buf_t b;
    sk_buf_init(&b, 0);
    bb_add_ts(&b, &spec, deltas); /* maxTimestamp wraps too; only the record matters */
    int64_t off, ts;
    ck_assert_int_eq(batch_find_timestamp((uint8_t *)b.data, b.len, 0, &off, &ts), -1);

    /* baseTimestamp near INT64_MIN, negative delta. */
    static const int64_t neg[] = {-10};
    spec.base_ts = INT64_MIN + 5;
    sk_buf_reset(&b);
    bb_add_ts(&b, &spec, neg);
    ck_assert_int_eq(batch_find_timestamp((uint8_t *)b.data, b.len, INT64_MIN, &off, &ts), -1);

    /* An offset past INT64_MAX. */
    spec.base_ts = 1000;
    spec.base_offset = INT64_MAX;
    spec.nrecs = 2;
    sk_buf_reset(&b);
    bb_add(&b, &spec);
    ck_assert_int_eq(batch_find_timestamp((uint8_t *)b.data, b.len, 1005, &off, &ts), -1);
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_batch_err2str)
{
    for (int e = BATCH_OK; e <= BATCH_BAD_CODEC; e++) {
        const char *s = batch_err2str((batch_err_t)e);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 0);
        for (int k = BATCH_OK; k < e; k++)
            ck_assert_str_ne(s, batch_err2str((batch_err_t)k));
    }
}
END_TEST

static Suite *batch_suite(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("validate");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_batch_valid);
    tcase_add_test(tc, test_batch_bit_flips);
    tcase_add_test(tc, test_batch_bad_magic);
    tcase_add_test(tc, test_batch_truncated);
    tcase_add_test(tc, test_batch_bad_length);
    tcase_add_test(tc, test_batch_bad_count);
    tcase_add_test(tc, test_batch_codecs);
    tcase_add_test(tc, test_batch_validate_all);
    tcase_add_test(tc, test_batch_set_base_offset);
    tcase_add_test(tc, test_batch_err2str);
    suite_add_tcase(s, tc);

    tc = tcase_create("find_timestamp");
    tcase_add_test(tc, test_batch_find_timestamp);
    tcase_add_test(tc, test_batch_find_timestamp_unordered);
    tcase_add_test(tc, test_batch_find_timestamp_malformed);
    tcase_add_test(tc, test_batch_find_timestamp_overflow);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(batch_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
