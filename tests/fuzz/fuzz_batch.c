/*
 * fuzz_batch.c - libFuzzer target for the record batch codec (log/batch.h),
 * the bytes a producer sends and recovery reads back from disk.
 *
 * Input: byte 0 is a control byte, bytes 1..8 a timestamp for
 * batch_find_timestamp(), the rest the batches.  When bit 0 of the control
 * byte is set, the CRC-32C of each batch that parses is recomputed first, so
 * that the fuzzer gets past the CRC check to the code behind it.
 *
 * Oracles: batch_validate_all() accepts exactly the sequences that
 * batch_validate() accepts batch by batch, and whatever it accepts, the
 * appender's walk (batch_hdr_parse + batch_size) covers byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "sk_buf.h"
#include "sk_crc32c.h"

static void fix_crcs(uint8_t *p, size_t len)
{
    size_t pos = 0;
    batch_hdr_t h;
    while (pos < len && batch_hdr_parse(p + pos, len - pos, &h) == BATCH_OK &&
           batch_size(&h) <= len - pos) {
        uint32_t crc = sk_crc32c(0, p + pos + 21, batch_size(&h) - 21);
        sk_store_i32(p + pos + 17, (int32_t)crc);
        pos += batch_size(&h);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9) return 0;
    uint8_t ctl = data[0];
    int64_t ts = sk_load_i64(data + 1);
    size_t len = size - 9;
    uint8_t *p = malloc(len ? len : 1); /* exact size: ASan sees overreads */
    if (!p) abort();
    memcpy(p, data + 9, len);
    if (ctl & 1) fix_crcs(p, len);

    int n = -1;
    size_t bad_at = 0;
    batch_err_t e = batch_validate_all(p, len, &n, &bad_at);

    /* Re-walk as the appender and the reader do. */
    size_t pos = 0;
    int walked = 0;
    batch_err_t e2 = len ? BATCH_OK : BATCH_SHORT;
    while (pos < len) {
        batch_hdr_t h;
        e2 = batch_validate(p + pos, len - pos, &h);
        if (e2 != BATCH_OK) break;
        if (batch_hdr_parse(p + pos, len - pos, &h) != BATCH_OK || batch_size(&h) > len - pos)
            __builtin_trap();
        int64_t off, rts;
        int r = batch_find_timestamp(p + pos, len - pos, ts, &off, &rts);
        if (r == 1 && rts < ts) __builtin_trap();
        batch_set_base_offset(p + pos, 42); /* outside the CRC: still valid */
        if (batch_validate(p + pos, len - pos, &h) != BATCH_OK || h.base_offset != 42)
            __builtin_trap();
        pos += batch_size(&h);
        walked++;
    }
    if (e != e2) __builtin_trap();
    if (e == BATCH_OK && (walked != n || pos != len)) __builtin_trap();
    if (e != BATCH_OK && bad_at != pos) __builtin_trap();

    /* And on the raw input, whatever it holds. */
    int64_t off, rts;
    (void)batch_find_timestamp(data + 9, len, ts, &off, &rts);
    free(p);
    return 0;
}
