/*
 * test_crc32c.c - common/sk_crc32c.h: CRC-32C against published check values
 * (RFC 3720 appendix B.4 and the "123456789" check), incremental use, and the
 * hardware path against the portable one.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_crc32c.h"

/* A fixed xorshift generator: the same "random" bytes on every run. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next() >> 24);
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static const struct {
    const char *name;
    crc_fn fn;
} impls[] = {{"sk_crc32c", sk_crc32c}, {"sk_crc32c_sw", sk_crc32c_sw}};

START_TEST(test_crc_check_values)
{
    crc_fn crc = impls[_i].fn;
    uint8_t buf[32];

    ck_assert_uint_eq(crc(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc(0, "", 0), 0);
    ck_assert_uint_eq(crc(0, "a", 1), 0xC1D04330u);

    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(crc(0, buf, sizeof buf), 0x8A9136AAu);
    memset(buf, 0xff, sizeof buf);
    ck_assert_uint_eq(crc(0, buf, sizeof buf), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    ck_assert_uint_eq(crc(0, buf, sizeof buf), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    ck_assert_uint_eq(crc(0, buf, sizeof buf), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_crc_incremental)
{
    crc_fn crc = impls[_i].fn;
    uint8_t buf[1031];
    rng_state = 0x9e3779b97f4a7c15ull;
    rng_fill(buf, sizeof buf);
    uint32_t whole = crc(0, buf, sizeof buf);
    /* Split at every point: two calls give the one-shot value. */
    for (size_t k = 0; k <= sizeof buf; k++)
        ck_assert_uint_eq(crc(crc(0, buf, k), buf + k, sizeof buf - k), whole);
    /* Byte by byte. */
    uint32_t c = 0;
    for (size_t k = 0; k < sizeof buf; k++)
        c = crc(c, buf + k, 1);
    ck_assert_uint_eq(c, whole);
    /* "123456789" in three pieces. */
    ck_assert_uint_eq(crc(crc(crc(0, "123", 3), "45", 2), "6789", 4), 0xE3069283u);
}
END_TEST

START_TEST(test_crc_hw_matches_sw)
{
    enum { MAX = 4096, ALIGN = 16 };
    uint8_t *buf = malloc(MAX + ALIGN);
    ck_assert_ptr_nonnull(buf);
    rng_state = 0x0123456789abcdefull;
    rng_fill(buf, MAX + ALIGN);
    /* Every length from 0 to MAX, at every misalignment 0..7. */
    for (size_t len = 0; len <= MAX; len++) {
        size_t start = len % 8;
        uint32_t hw = sk_crc32c(0, buf + start, len);
        uint32_t sw = sk_crc32c_sw(0, buf + start, len);
        ck_assert_msg(hw == sw, "len %zu start %zu: hw %08x sw %08x", len, start, hw, sw);
    }
    /* Random lengths, starts and running values. */
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)(rng_next() % (MAX + 1));
        size_t start = (size_t)(rng_next() % ALIGN);
        uint32_t seed = (uint32_t)rng_next();
        ck_assert_uint_eq(sk_crc32c(seed, buf + start, len), sk_crc32c_sw(seed, buf + start, len));
    }
    free(buf);
}
END_TEST

static Suite *crc32c_suite(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("crc32c");
    tcase_set_timeout(tc, 60);
    int n = (int)(sizeof impls / sizeof impls[0]);
    tcase_add_loop_test(tc, test_crc_check_values, 0, n);
    tcase_add_loop_test(tc, test_crc_incremental, 0, n);
    tcase_add_test(tc, test_crc_hw_matches_sw);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crc32c_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
