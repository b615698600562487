/*
 * batch_builder.h - builds Kafka record batches v2 for the unit tests.
 *
 * The bytes are written field by field from the layout documented in
 * broker/log/batch.h (not with any broker code other than sk_buf and
 * sk_crc32c), so the tests check the broker against the format rather than
 * against itself.  Records carry no headers and are uncompressed, whatever
 * codec the attributes claim.
 */
#ifndef SOUK_TEST_BATCH_BUILDER_H
#define SOUK_TEST_BATCH_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "sk_buf.h"

typedef struct bb_spec_s {
    int64_t base_offset; /* as a producer sends it; the broker rewrites it */
    int16_t attributes;  /* compression codec in the low 3 bits */
    int64_t base_ts;     /* baseTimestamp */
    int64_t ts_step;     /* record i has timestamp base_ts + i * ts_step */
    int32_t nrecs;       /* records in the batch, >= 1 */
    size_t value_len;    /* bytes of each record's value */
} bb_spec_t;

/* Appends one valid batch to b and returns its position in b. */
size_t bb_add(sk_buf_t *b, const bb_spec_t *spec);
/* The same with explicit timestamp deltas (ts_deltas[0 .. nrecs)); the
 * batch's maxTimestamp is the largest record timestamp. */
size_t bb_add_ts(sk_buf_t *b, const bb_spec_t *spec, const int64_t *ts_deltas);
/* Recomputes the CRC-32C of the batch at p (after a test edited it). */
void bb_fix_crc(uint8_t *p);
/* Total size of the batch at p: 12 + batchLength. */
size_t bb_size(const uint8_t *p);

#endif
