#include "batch.h"

#include "sk_buf.h"
#include "sk_crc32c.h"

const char *batch_err2str(batch_err_t e)
{
    switch (e) {
    case BATCH_OK: return "ok";
    case BATCH_SHORT: return "batch shorter than its header or batchLength";
    case BATCH_BAD_LENGTH: return "batchLength out of range";
    case BATCH_BAD_MAGIC: return "unsupported magic (only record batch v2 is accepted)";
    case BATCH_BAD_CRC: return "CRC-32C mismatch";
    case BATCH_BAD_COUNT: return "recordsCount or lastOffsetDelta out of range";
    case BATCH_BAD_CODEC: return "unknown compression codec";
    }
    return "unknown";
}

batch_err_t batch_hdr_parse(const uint8_t *p, size_t avail, batch_hdr_t *h)
{
    if (avail < BATCH_LOG_OVERHEAD) return BATCH_SHORT;
    h->base_offset = sk_load_i64(p);
    h->batch_length = sk_load_i32(p + 8);
    if (h->batch_length < BATCH_HEADER_LEN - BATCH_LOG_OVERHEAD || h->batch_length > BATCH_MAX_LEN)
        return BATCH_BAD_LENGTH;
    if (avail < BATCH_HEADER_LEN) return BATCH_SHORT;
    h->magic = (int8_t)p[16];
    if (h->magic != 2) return BATCH_BAD_MAGIC;
    h->crc = (uint32_t)sk_load_i32(p + 17);
    h->attributes = sk_load_i16(p + 21);
    h->last_offset_delta = sk_load_i32(p + 23);
    h->base_timestamp = sk_load_i64(p + 27);
    h->max_timestamp = sk_load_i64(p + 35);
    h->records_count = sk_load_i32(p + 57);
    if (h->last_offset_delta < 0 || h->records_count < 1) return BATCH_BAD_COUNT;
    if ((h->attributes & 7) > 4) return BATCH_BAD_CODEC;
    return BATCH_OK;
}

batch_err_t batch_validate(const uint8_t *p, size_t avail, batch_hdr_t *h)
{
    batch_err_t e = batch_hdr_parse(p, avail, h);
    if (e != BATCH_OK) return e;
    if (batch_size(h) > avail) return BATCH_SHORT;
    uint32_t crc = sk_crc32c(0, p + 21, batch_size(h) - 21);
    return crc == h->crc ? BATCH_OK : BATCH_BAD_CRC;
}

batch_err_t batch_validate_all(const uint8_t *p, size_t len, int *nbatches, size_t *bad_at)
{
    size_t pos = 0;
    int n = 0;
    batch_hdr_t h;
    if (len == 0) {
        *bad_at = 0;
        return BATCH_SHORT;
    }
    while (pos < len) {
        batch_err_t e = batch_validate(p + pos, len - pos, &h);
        if (e != BATCH_OK) {
            *bad_at = pos;
            return e;
        }
        pos += batch_size(&h);
        n++;
    }
    *nbatches = n;
    return BATCH_OK;
}

void batch_set_base_offset(uint8_t *p, int64_t base_offset)
{
    sk_store_i64(p, base_offset);
}

int batch_find_timestamp(const uint8_t *p, size_t len, int64_t ts, int64_t *offset, int64_t *rec_ts)
{
    batch_hdr_t h;
    if (batch_hdr_parse(p, len, &h) != BATCH_OK || batch_size(&h) > len) return -1;
    if (h.attributes & 7) return -1; /* compressed: we never decompress */
    sk_cur_t c;
    sk_cur_init(&c, p + BATCH_HEADER_LEN, batch_size(&h) - BATCH_HEADER_LEN);
    for (int32_t i = 0; i < h.records_count; i++) {
        int64_t rlen = sk_cur_varint(&c);
        if (c.err || rlen < 0 || (uint64_t)rlen > sk_cur_left(&c)) return -1;
        size_t end = c.pos + (size_t)rlen;
        (void)sk_cur_i8(&c); /* attributes */
        int64_t tsd = sk_cur_varint(&c);
        int64_t od = sk_cur_varint(&c);
        if (c.err) return -1;
        /* The deltas are the producer's: a sum past int64 is malformed. */
        int64_t rts, roff;
        if (__builtin_add_overflow(h.base_timestamp, tsd, &rts) ||
            __builtin_add_overflow(h.base_offset, od, &roff))
            return -1;
        if (rts >= ts) {
            *offset = roff;
            *rec_ts = rts;
            return 1;
        }
        c.pos = end;
    }
    return 0;
}
