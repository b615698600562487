/*
 * batch.h - Kafka record batch v2 (magic 2): pure functions over bytes.
 *
 * A batch is stored exactly as the producer sent it; the broker only rewrites
 * baseOffset (outside the CRC) and never decompresses.  Layout, big-endian:
 *
 *   0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 |
 *   16 magic i8 | 17 crc u32 | 21 attributes i16 | 23 lastOffsetDelta i32 |
 *   27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 |
 *   51 producerEpoch i16 | 53 baseSequence i32 | 57 recordsCount i32 | 61 records
 *
 * CRC-32C covers bytes 21 .. 12 + batchLength.
 */
#ifndef SOUK_BATCH_H
#define SOUK_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_HEADER_LEN 61
#define BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define BATCH_MAX_LEN (1 << 30)

typedef enum {
    BATCH_OK = 0,
    BATCH_SHORT,       /* fewer bytes than the header or batchLength says */
    BATCH_BAD_LENGTH,  /* batchLength below the header size or absurd */
    BATCH_BAD_MAGIC,   /* magic != 2 */
    BATCH_BAD_CRC,     /* CRC-32C mismatch */
    BATCH_BAD_COUNT,   /* recordsCount < 1 or lastOffsetDelta < 0 */
    BATCH_BAD_CODEC,   /* compression codec > 4 */
} batch_err_t;

const char *batch_err2str(batch_err_t e);

typedef struct batch_hdr_s {
    int64_t base_offset;
    int32_t batch_length; /* bytes after the batchLength field */
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int32_t records_count;
} batch_hdr_t;

/* Total bytes of the batch at p, i.e. 12 + batchLength. */
static inline size_t batch_size(const batch_hdr_t *h)
{
    return BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
}

/* Decodes the header at p (needs BATCH_HEADER_LEN bytes, else BATCH_SHORT)
 * and checks length, magic, counts and codec; not the CRC. */
batch_err_t batch_hdr_parse(const uint8_t *p, size_t avail, batch_hdr_t *h);

/* Validates the whole batch at p, CRC included; avail bytes are readable. */
batch_err_t batch_validate(const uint8_t *p, size_t avail, batch_hdr_t *h);

/* Validates that p[0..len) is a sequence of one or more whole, valid batches.
 * On error, *bad_at is the byte position of the offending batch. */
batch_err_t batch_validate_all(const uint8_t *p, size_t len, int *nbatches, size_t *bad_at);

/* Overwrites baseOffset of the batch at p. */
void batch_set_base_offset(uint8_t *p, int64_t base_offset);

/*
 * Finds, in an uncompressed batch, the offset of the first record whose
 * timestamp is >= ts.  Returns 1 and sets *offset and *rec_ts when found, 0 when
 * no record qualifies, -1 if the batch is compressed or malformed (the caller
 * then falls back to the batch's base offset).
 */
int batch_find_timestamp(const uint8_t *p, size_t len, int64_t ts, int64_t *offset, int64_t *rec_ts);

#endif
