#include "batch_builder.h"

#include <stdio.h>
#include <stdlib.h>

#include "sk_alloc.h"
#include "sk_crc32c.h"

size_t bb_add_ts(sk_buf_t *b, const bb_spec_t *spec, const int64_t *ts_deltas)
{
    size_t start = b->len;
    int64_t max_delta = ts_deltas[0];
    for (int32_t i = 1; i < spec->nrecs; i++)
        if (ts_deltas[i] > max_delta) max_delta = ts_deltas[i];

    sk_buf_add_i64(b, spec->base_offset);
    sk_buf_add_i32(b, 0);  /* batchLength, fixed below */
    sk_buf_add_i32(b, -1); /* partitionLeaderEpoch */
    sk_buf_add_i8(b, 2);   /* magic */
    sk_buf_add_i32(b, 0);  /* crc, fixed below */
    sk_buf_add_i16(b, spec->attributes);
    sk_buf_add_i32(b, spec->nrecs - 1); /* lastOffsetDelta */
    sk_buf_add_i64(b, spec->base_ts);
    sk_buf_add_i64(
        b, (int64_t)((uint64_t)spec->base_ts + (uint64_t)max_delta)); /* wraps if a test asks */
    sk_buf_add_i64(b, -1);                                            /* producerId */
    sk_buf_add_i16(b, -1);                                            /* producerEpoch */
    sk_buf_add_i32(b, -1);                                            /* baseSequence */
    sk_buf_add_i32(b, spec->nrecs);

    sk_buf_t rec;
    sk_buf_init(&rec, 64 + spec->value_len);
    for (int32_t i = 0; i < spec->nrecs; i++) {
        char key[24];
        int klen = snprintf(key, sizeof key, "k%d", (int)i);
        sk_buf_reset(&rec);
        sk_buf_add_i8(&rec, 0); /* record attributes */
        sk_buf_add_varint(&rec, ts_deltas[i]);
        sk_buf_add_varint(&rec, i); /* offsetDelta */
        sk_buf_add_varint(&rec, klen);
        sk_buf_add(&rec, key, (size_t)klen);
        sk_buf_add_varint(&rec, (int64_t)spec->value_len);
        for (size_t j = 0; j < spec->value_len; j++)
            sk_buf_addc(&rec, (char)((uint64_t)spec->base_ts + (uint64_t)i * 31 + j));
        sk_buf_add_varint(&rec, 0); /* headerCount */
        sk_buf_add_varint(b, (int64_t)rec.len);
        sk_buf_add(b, rec.data, rec.len);
    }
    sk_buf_release(&rec);

    sk_buf_put_i32(b, start + 8, (int32_t)(b->len - start - 12));
    bb_fix_crc((uint8_t *)b->data + start);
    return start;
}

size_t bb_add(sk_buf_t *b, const bb_spec_t *spec)
{
    int64_t *deltas = sk_calloc(spec->nrecs > 0 ? (size_t)spec->nrecs : 1, sizeof *deltas);
    for (int32_t i = 0; i < spec->nrecs; i++)
        deltas[i] = i * spec->ts_step;
    size_t pos = bb_add_ts(b, spec, deltas);
    free(deltas);
    return pos;
}

void bb_fix_crc(uint8_t *p)
{
    size_t n = bb_size(p);
    sk_store_i32(p + 17, (int32_t)sk_crc32c(0, p + 21, n - 21));
}

size_t bb_size(const uint8_t *p)
{
    return 12 + (size_t)sk_load_i32(p + 8);
}
