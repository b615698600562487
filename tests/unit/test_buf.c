/*
 * test_buf.c - common/sk_buf.h: the growable buffer, the big-endian writers
 * and loads, and the bounds-checked cursor with its sticky error.
 *
 * The varint vectors are Kafka's (protobuf's) encodings, so a codec built on
 * these functions reads what real clients write.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_buf.h"

/* ---- the buffer ---------------------------------------------------------- */

START_TEST(test_buf_init_add)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    ck_assert_ptr_nonnull(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");

    sk_buf_adds(&b, "hello");
    sk_buf_addc(&b, ' ');
    sk_buf_add(&b, "world!!", 5);
    ck_assert_uint_eq(b.len, 11);
    ck_assert_str_eq(b.data, "hello world");
    ck_assert_uint_ge(b.cap, b.len);
    /* Adding nothing keeps the content and the terminator. */
    sk_buf_add(&b, "", 0);
    ck_assert_str_eq(b.data, "hello world");
    sk_buf_release(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
}
END_TEST

START_TEST(test_buf_static_init)
{
    /* SK_BUF_INIT (data NULL) must be usable without sk_buf_init. */
    sk_buf_t b = SK_BUF_INIT;
    sk_buf_addf(&b, "%d-%s", 42, "x");
    ck_assert_str_eq(b.data, "42-x");
    sk_buf_release(&b);

    sk_buf_t c = SK_BUF_INIT;
    sk_buf_release(&c); /* releasing an untouched buffer is harmless */
    ck_assert_uint_eq(c.len, 0);
}
END_TEST

START_TEST(test_buf_binary_safe)
{
    sk_buf_t b;
    sk_buf_init(&b, 4);
    static const char bytes[] = {'a', '\0', 'b', '\0', '\xff'};
    sk_buf_add(&b, bytes, sizeof bytes);
    ck_assert_uint_eq(b.len, sizeof bytes);
    ck_assert_mem_eq(b.data, bytes, sizeof bytes);
    ck_assert_int_eq(b.data[b.len], '\0');
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_buf_grow)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    sk_buf_adds(&b, "keep");
    sk_buf_grow(&b, 10000);
    ck_assert_uint_ge(b.cap, b.len + 10000);
    ck_assert_str_eq(b.data, "keep");
    size_t cap = b.cap;
    char *data = b.data;
    sk_buf_grow(&b, 10); /* already room: no reallocation */
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_ptr_eq(b.data, data);

    /* Many small appends: contents survive every reallocation. */
    sk_buf_reset(&b);
    for (int i = 0; i < 100000; i++)
        sk_buf_addc(&b, (char)('a' + i % 26));
    ck_assert_uint_eq(b.len, 100000);
    for (size_t i = 0; i < b.len; i++)
        ck_assert_int_eq(b.data[i], 'a' + (int)(i % 26));
    ck_assert_int_eq(b.data[b.len], '\0');
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_buf_reset)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    sk_buf_adds(&b, "some text");
    size_t cap = b.cap;
    sk_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    ck_assert_uint_eq(b.cap, cap);
    sk_buf_adds(&b, "again");
    ck_assert_str_eq(b.data, "again");
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_buf_addf)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    sk_buf_addf(&b, "%s=%d", "n", -7);
    sk_buf_addf(&b, ";%05.1f", 3.14159);
    ck_assert_str_eq(b.data, "n=-7;003.1");

    /* Longer than the first guess of room: formatted in a second pass. */
    char big[3001];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sk_buf_reset(&b);
    sk_buf_adds(&b, "<");
    sk_buf_addf(&b, "%s|%s", big, big);
    sk_buf_adds(&b, ">");
    ck_assert_uint_eq(b.len, 1 + 3000 + 1 + 3000 + 1);
    ck_assert_int_eq(b.data[0], '<');
    ck_assert_int_eq(b.data[3001], '|');
    ck_assert_int_eq(b.data[6001], 'z');
    ck_assert_int_eq(b.data[6002], '>');
    ck_assert_uint_eq(strlen(b.data), b.len);

    /* Exactly filling the capacity keeps the terminator in bounds. */
    sk_buf_t c;
    sk_buf_init(&c, 0);
    sk_buf_grow(&c, 1);
    size_t cap = c.cap;
    char fill[256];
    memset(fill, 'q', cap);
    fill[cap] = '\0';
    sk_buf_addf(&c, "%s", fill);
    ck_assert_uint_eq(c.len, cap);
    ck_assert_uint_eq(strlen(c.data), cap);
    sk_buf_release(&c);
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_buf_detach)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    sk_buf_adds(&b, "owned");
    size_t len = 0;
    char *p = sk_buf_detach(&b, &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(p, "owned");
    /* b is re-initialised and independent of p. */
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    sk_buf_adds(&b, "new");
    ck_assert_str_eq(p, "owned");
    free(p);

    /* Detaching an empty buffer still gives a string the caller frees. */
    sk_buf_release(&b);
    p = sk_buf_detach(&b, NULL);
    ck_assert_str_eq(p, "");
    free(p);
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_buf_json_str)
{
    static const char in[] = "a\"b\\c\n\r\t\x01\x1f\x7f\0\xc3\xa9/";
    sk_buf_t b;
    sk_buf_init(&b, 0);
    sk_buf_add_json_str(&b, in, sizeof in - 1);
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\\u007f\\u0000\xc3\xa9/\"");

    sk_buf_reset(&b);
    sk_buf_add_json_str(&b, "", 0);
    ck_assert_str_eq(b.data, "\"\"");

    /* Appends after existing content, and n bounds the input. */
    sk_buf_reset(&b);
    sk_buf_adds(&b, "{\"k\":");
    sk_buf_add_json_str(&b, "value-not-this", 5);
    sk_buf_addc(&b, '}');
    ck_assert_str_eq(b.data, "{\"k\":\"value\"}");

    /* Invalid UTF-8 (a stray continuation byte, a truncated sequence, an
     * overlong encoding, a surrogate) becomes U+FFFD; valid 2-, 3- and
     * 4-byte sequences pass through. */
    static const char bad[] = "\x80|\xc3|\xc0\xaf|\xed\xa0\x80|\xe2\x82\xac|\xf0\x9f\x98\x80|\xff";
    sk_buf_reset(&b);
    sk_buf_add_json_str(&b, bad, sizeof bad - 1);
    ck_assert_str_eq(b.data, "\"\\ufffd|\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\xe2\x82\xac|\xf0\x9f\x98\x80|\\ufffd\"");
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_buf_reserve_put)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    sk_buf_adds(&b, "ab");
    size_t pos = sk_buf_reserve(&b, 12);
    ck_assert_uint_eq(pos, 2);
    ck_assert_uint_eq(b.len, 14);
    for (size_t i = 2; i < 14; i++)
        ck_assert_int_eq(b.data[i], 0);
    sk_buf_adds(&b, "z");
    sk_buf_put_i32(&b, pos, 0x01020304);
    sk_buf_put_i64(&b, pos + 4, INT64_C(0x1122334455667788));
    static const uint8_t want[] = {'a',  'b',  1,    2,    3,    4,    0x11, 0x22,
                                   0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 'z'};
    ck_assert_uint_eq(b.len, sizeof want);
    ck_assert_mem_eq(b.data, want, sizeof want);
    sk_buf_release(&b);
}
END_TEST

/* ---- big-endian writers and loads ---------------------------------------- */

START_TEST(test_buf_big_endian)
{
    sk_buf_t b;
    sk_buf_init(&b, 0);
    sk_buf_add_i8(&b, -1);
    sk_buf_add_i8(&b, 0x7f);
    sk_buf_add_i16(&b, 0x1234);
    sk_buf_add_i16(&b, -2);
    sk_buf_add_i32(&b, 0x01020304);
    sk_buf_add_i32(&b, INT32_MIN);
    sk_buf_add_i64(&b, INT64_C(0x0102030405060708));
    sk_buf_add_i64(&b, -1);
    static const uint8_t want[] = {0xff, 0x7f, 0x12, 0x34, 0xff, 0xfe, 1,    2,    3,    4,
                                   0x80, 0,    0,    0,    1,    2,    3,    4,    5,    6,
                                   7,    8,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ck_assert_uint_eq(b.len, sizeof want);
    ck_assert_mem_eq(b.data, want, sizeof want);

    ck_assert_int_eq(sk_load_i16(want + 2), 0x1234);
    ck_assert_int_eq(sk_load_i16(want + 4), -2);
    ck_assert_int_eq(sk_load_i32(want + 6), 0x01020304);
    ck_assert_int_eq(sk_load_i32(want + 10), INT32_MIN);
    ck_assert(sk_load_i64(want + 14) == INT64_C(0x0102030405060708));
    ck_assert(sk_load_i64(want + 22) == -1);

    uint8_t x[8];
    sk_store_i32(x, -123456789);
    ck_assert_int_eq(sk_load_i32(x), -123456789);
    sk_store_i64(x, INT64_MIN);
    ck_assert(sk_load_i64(x) == INT64_MIN);
    ck_assert_uint_eq(x[0], 0x80);
    sk_store_i64(x, INT64_MAX);
    ck_assert(sk_load_i64(x) == INT64_MAX);
    sk_buf_release(&b);
}
END_TEST

/* ---- the cursor ---------------------------------------------------------- */

START_TEST(test_cur_reads)
{
    static const uint8_t in[] = {0xfe, 0x80, 0x01, 0xde, 0xad, 0xbe, 0xef, 0,   0,
                                 0,    0,    0,    0,    1,    0,    'x',  'y', 'z'};
    sk_cur_t c;
    sk_cur_init(&c, in, sizeof in);
    ck_assert_uint_eq(sk_cur_left(&c), sizeof in);
    ck_assert_int_eq(sk_cur_i8(&c), -2);
    ck_assert_int_eq(sk_cur_i16(&c), (int16_t)0x8001);
    ck_assert_int_eq(sk_cur_i32(&c), (int32_t)0xdeadbeef);
    ck_assert(sk_cur_i64(&c) == 256);
    ck_assert_uint_eq(sk_cur_left(&c), 3);
    const uint8_t *p = sk_cur_bytes(&c, 2);
    ck_assert_ptr_eq(p, in + 15);
    sk_cur_skip(&c, 1);
    ck_assert_uint_eq(sk_cur_left(&c), 0);
    ck_assert_int_eq(c.err, 0);
    /* Zero bytes at the very end is not a short read. */
    ck_assert_ptr_nonnull(sk_cur_bytes(&c, 0));
    ck_assert_int_eq(c.err, 0);
}
END_TEST

START_TEST(test_cur_sticky_error)
{
    static const uint8_t in[] = {1, 2, 3, 4, 5, 6};
    sk_cur_t c;
    sk_cur_init(&c, in, sizeof in);
    ck_assert_int_eq(sk_cur_i16(&c), 0x0102);
    /* 4 bytes left: an i64 is short. */
    ck_assert(sk_cur_i64(&c) == 0);
    ck_assert_int_ne(c.err, 0);
    ck_assert_uint_eq(sk_cur_left(&c), 0);
    /* Every later read returns zero, although 4 bytes would be there. */
    ck_assert_int_eq(sk_cur_i8(&c), 0);
    ck_assert_int_eq(sk_cur_i16(&c), 0);
    ck_assert_int_eq(sk_cur_i32(&c), 0);
    ck_assert(sk_cur_uvarint(&c) == 0);
    ck_assert(sk_cur_varint(&c) == 0);
    ck_assert_ptr_null(sk_cur_bytes(&c, 0));
    ck_assert_ptr_null(sk_cur_bytes(&c, 1));
    ck_assert_int_ne(c.err, 0);
}
END_TEST

START_TEST(test_cur_short_each_width)
{
    static const uint8_t in[8] = {0};
    for (size_t avail = 0; avail < 8; avail++) {
        sk_cur_t c;
        sk_cur_init(&c, in, avail);
        if (avail < 1)
            ck_assert_int_eq(sk_cur_i8(&c), 0);
        else if (avail < 2)
            ck_assert_int_eq(sk_cur_i16(&c), 0);
        else if (avail < 4)
            ck_assert_int_eq(sk_cur_i32(&c), 0);
        else
            ck_assert(sk_cur_i64(&c) == 0);
        ck_assert_int_ne(c.err, 0);
    }
    /* Skipping past the end and asking for more bytes than remain. */
    sk_cur_t c;
    sk_cur_init(&c, in, 8);
    sk_cur_skip(&c, 9);
    ck_assert_int_ne(c.err, 0);
    sk_cur_init(&c, in, 8);
    ck_assert_ptr_null(sk_cur_bytes(&c, SIZE_MAX));
    ck_assert_int_ne(c.err, 0);
}
END_TEST

/* ---- varints ------------------------------------------------------------- */

typedef struct {
    uint64_t v;
    uint8_t n;
    uint8_t bytes[10];
} uvarint_vec_t;

static const uvarint_vec_t uvarint_vecs[] = {
    {0, 1, {0x00}},
    {1, 1, {0x01}},
    {127, 1, {0x7f}},
    {128, 2, {0x80, 0x01}},
    {300, 2, {0xac, 0x02}},
    {16383, 2, {0xff, 0x7f}},
    {16384, 3, {0x80, 0x80, 0x01}},
    {UINT32_MAX, 5, {0xff, 0xff, 0xff, 0xff, 0x0f}},
    {UINT64_C(1) << 63, 10, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
    {UINT64_MAX, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
};

typedef struct {
    int64_t v;
    uint8_t n;
    uint8_t bytes[10];
} varint_vec_t;

static const varint_vec_t varint_vecs[] = {
    {0, 1, {0x00}},
    {-1, 1, {0x01}},
    {1, 1, {0x02}},
    {-2, 1, {0x03}},
    {63, 1, {0x7e}},
    {-64, 1, {0x7f}},
    {64, 2, {0x80, 0x01}},
    {-65, 2, {0x81, 0x01}},
    {150, 2, {0xac, 0x02}},
    {INT32_MAX, 5, {0xfe, 0xff, 0xff, 0xff, 0x0f}},
    {INT32_MIN, 5, {0xff, 0xff, 0xff, 0xff, 0x0f}},
    {INT64_MAX, 10, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    {INT64_MIN, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
};

START_TEST(test_uvarint_vectors)
{
    const uvarint_vec_t *t = &uvarint_vecs[_i];
    sk_buf_t b;
    sk_buf_init(&b, 0);
    sk_buf_add_uvarint(&b, t->v);
    ck_assert_uint_eq(b.len, t->n);
    ck_assert_mem_eq(b.data, t->bytes, t->n);

    sk_cur_t c;
    sk_cur_init(&c, t->bytes, t->n);
    ck_assert(sk_cur_uvarint(&c) == t->v);
    ck_assert_int_eq(c.err, 0);
    ck_assert_uint_eq(c.pos, t->n);
    /* Any prefix of the encoding is a short read. */
    for (size_t k = 0; k < t->n; k++) {
        sk_cur_init(&c, t->bytes, k);
        ck_assert(sk_cur_uvarint(&c) == 0);
        ck_assert_int_ne(c.err, 0);
    }
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_varint_vectors)
{
    const varint_vec_t *t = &varint_vecs[_i];
    sk_buf_t b;
    sk_buf_init(&b, 0);
    sk_buf_add_varint(&b, t->v);
    ck_assert_uint_eq(b.len, t->n);
    ck_assert_mem_eq(b.data, t->bytes, t->n);

    sk_cur_t c;
    sk_cur_init(&c, t->bytes, t->n);
    ck_assert(sk_cur_varint(&c) == t->v);
    ck_assert_int_eq(c.err, 0);
    ck_assert_uint_eq(c.pos, t->n);
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_varint_round_trip)
{
    /* Every power of two and its neighbours, both signs, written back to back
     * and read back in order. */
    sk_buf_t b;
    sk_buf_init(&b, 0);
    for (int s = 0; s < 64; s++) {
        uint64_t u = UINT64_C(1) << s;
        sk_buf_add_uvarint(&b, u - 1);
        sk_buf_add_uvarint(&b, u);
        sk_buf_add_uvarint(&b, u + 1);
        int64_t v = (int64_t)(u >> 1);
        sk_buf_add_varint(&b, v);
        sk_buf_add_varint(&b, -v);
        sk_buf_add_varint(&b, v - 1);
        sk_buf_add_varint(&b, -v - 1);
    }
    sk_buf_add_varint(&b, INT64_MIN);
    sk_buf_add_varint(&b, INT64_MAX);
    sk_buf_add_uvarint(&b, UINT64_MAX);

    sk_cur_t c;
    sk_cur_init(&c, b.data, b.len);
    for (int s = 0; s < 64; s++) {
        uint64_t u = UINT64_C(1) << s;
        ck_assert(sk_cur_uvarint(&c) == u - 1);
        ck_assert(sk_cur_uvarint(&c) == u);
        ck_assert(sk_cur_uvarint(&c) == u + 1);
        int64_t v = (int64_t)(u >> 1);
        ck_assert(sk_cur_varint(&c) == v);
        ck_assert(sk_cur_varint(&c) == -v);
        ck_assert(sk_cur_varint(&c) == v - 1);
        ck_assert(sk_cur_varint(&c) == -v - 1);
    }
    ck_assert(sk_cur_varint(&c) == INT64_MIN);
    ck_assert(sk_cur_varint(&c) == INT64_MAX);
    ck_assert(sk_cur_uvarint(&c) == UINT64_MAX);
    ck_assert_int_eq(c.err, 0);
    ck_assert_uint_eq(sk_cur_left(&c), 0);
    sk_buf_release(&b);
}
END_TEST

START_TEST(test_varint_malformed)
{
    sk_cur_t c;
    /* 11 bytes: ten continuation bytes and a terminator. */
    static const uint8_t overlong[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                         0x80, 0x80, 0x80, 0x80, 0x00};
    sk_cur_init(&c, overlong, sizeof overlong);
    ck_assert(sk_cur_uvarint(&c) == 0);
    ck_assert_int_ne(c.err, 0);
    ck_assert_int_eq(sk_cur_i8(&c), 0); /* sticky */

    sk_cur_init(&c, overlong, sizeof overlong);
    ck_assert(sk_cur_varint(&c) == 0);
    ck_assert_int_ne(c.err, 0);

    /* Ten bytes whose last one carries bits beyond 64. */
    static const uint8_t too_big[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    sk_cur_init(&c, too_big, sizeof too_big);
    ck_assert(sk_cur_uvarint(&c) == 0);
    ck_assert_int_ne(c.err, 0);

    /* A lone continuation byte. */
    static const uint8_t torn[1] = {0x80};
    sk_cur_init(&c, torn, sizeof torn);
    ck_assert(sk_cur_varint(&c) == 0);
    ck_assert_int_ne(c.err, 0);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buffer");
    tcase_add_test(tc, test_buf_init_add);
    tcase_add_test(tc, test_buf_static_init);
    tcase_add_test(tc, test_buf_binary_safe);
    tcase_add_test(tc, test_buf_grow);
    tcase_add_test(tc, test_buf_reset);
    tcase_add_test(tc, test_buf_addf);
    tcase_add_test(tc, test_buf_detach);
    tcase_add_test(tc, test_buf_json_str);
    tcase_add_test(tc, test_buf_reserve_put);
    tcase_add_test(tc, test_buf_big_endian);
    suite_add_tcase(s, tc);

    tc = tcase_create("cursor");
    tcase_add_test(tc, test_cur_reads);
    tcase_add_test(tc, test_cur_sticky_error);
    tcase_add_test(tc, test_cur_short_each_width);
    suite_add_tcase(s, tc);

    tc = tcase_create("varint");
    tcase_add_loop_test(tc, test_uvarint_vectors, 0,
                        (int)(sizeof uvarint_vecs / sizeof uvarint_vecs[0]));
    tcase_add_loop_test(tc, test_varint_vectors, 0,
                        (int)(sizeof varint_vecs / sizeof varint_vecs[0]));
    tcase_add_test(tc, test_varint_round_trip);
    tcase_add_test(tc, test_varint_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(buf_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
