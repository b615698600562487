/*
 * log.h - souk-broker's append-only log: topics, partitions, segments.
 *
 * On disk, under the data dir, each partition is a folder "<topic>-<n>/" of
 * segments.  A segment is "<base offset, 20 digits>.log", the record batches
 * back to back exactly as producers sent them (only baseOffset rewritten), and
 * "<base offset>.index", a sparse index of 16-byte big-endian entries
 * {u32 offset - base, u32 byte position, i64 max timestamp of the batches
 * before that position}, one per --index-interval-bytes of log.  The index
 * serves both offset and timestamp look-ups.
 *
 * Recovery (log_open): the last segment of every partition is read in full and
 * each batch checked (length, magic, CRC-32C); the log is truncated at the
 * first torn or corrupt batch, and its index rebuilt.  Older segments keep
 * their index if it is consistent and are re-indexed if it is missing or
 * damaged.  Every truncation and rebuild is logged.
 *
 * Durability: appends go to the page cache at once (so they survive a process
 * crash); log_flush_dirty() fsyncs partitions written since the last flush.
 * Whether to call it after each append or on a timer is the caller's policy.
 *
 * Single-threaded: all calls from the broker's event loop thread.
 */
#ifndef SOUK_LOG_H
#define SOUK_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "sk_buf.h"

typedef struct log_s log_t;
typedef struct log_topic_s log_topic_t;
typedef struct log_part_s log_part_t;

typedef struct log_config_s {
    const char *dir;            /* data dir; created if missing */
    int32_t default_partitions; /* for auto-created topics */
    int64_t segment_bytes;      /* roll when a segment would exceed this */
    int64_t segment_ms;         /* roll a segment older than this (-1: never) */
    int64_t retention_ms;       /* delete segments older than this (-1: keep) */
    int64_t retention_bytes;    /* per partition (-1: unlimited) */
    int64_t index_interval_bytes;
} log_config_t;

/* Results of log operations; the Kafka layer maps them to error codes. */
typedef enum {
    LOG_OK = 0,
    LOG_ERR_IO = -1,           /* a system call failed; detail in errstr */
    LOG_ERR_CORRUPT = -2,      /* a batch failed validation; nothing appended */
    LOG_ERR_CODEC = -3,        /* unknown compression codec */
    LOG_ERR_OUT_OF_RANGE = -4, /* offset below log start or above log end */
    LOG_ERR_INVALID_TOPIC = -5,
    LOG_ERR_EXISTS = -6,
    LOG_ERR_INVALID_PARTITIONS = -7,
    LOG_ERR_TOO_LARGE = -8, /* a batch larger than a segment may hold */
} log_err_t;

/* Opens (creating if needed) and recovers every partition under cfg->dir.
 * cfg is copied.  Returns NULL with errstr set on failure. */
log_t *log_open(const log_config_t *cfg, char *errstr, size_t errsz);
/* Fsyncs everything and frees. */
void log_close(log_t *l);

/* Kafka's rule: [a-zA-Z0-9._-], 1..249 chars, not "." or "..". */
int log_topic_name_valid(const char *name, size_t len);

log_topic_t *log_topic_find(log_t *l, const char *name, size_t len);
/* Creates a topic with n partitions (n <= 0 means the default).  Returns
 * LOG_OK and *out, or LOG_ERR_INVALID_TOPIC / LOG_ERR_EXISTS /
 * LOG_ERR_INVALID_PARTITIONS / LOG_ERR_IO. */
log_err_t log_topic_create(log_t *l, const char *name, size_t len, int32_t n, log_topic_t **out,
                           char *errstr, size_t errsz);
/* Topics in name order; index 0 .. log_topic_count()-1. */
size_t log_topic_count(const log_t *l);
log_topic_t *log_topic_at(log_t *l, size_t i);
const char *log_topic_name(const log_topic_t *t);
int32_t log_topic_partitions(const log_topic_t *t);
/* NULL if idx is out of range. */
log_part_t *log_topic_part(log_topic_t *t, int32_t idx);

int64_t log_part_start_offset(const log_part_t *p);
int64_t log_part_end_offset(const log_part_t *p); /* next offset; the high watermark */
int64_t log_part_size(const log_part_t *p);       /* bytes in all segments */
const char *log_part_topic(const log_part_t *p);
int32_t log_part_index(const log_part_t *p);

/*
 * Appends the batches in records[0..len) (already checked with
 * batch_validate_all) in order, rewriting each baseOffset in place.
 * *base_offset receives the first batch's offset.
 */
log_err_t log_part_append(log_part_t *p, uint8_t *records, size_t len, int64_t *base_offset,
                          char *errstr, size_t errsz);

/*
 * Appends the whole batches starting at the batch that contains offset,
 * up to max_bytes in total but always at least one whole batch, to out.
 * offset == end offset appends nothing and returns LOG_OK.
 */
log_err_t log_part_read(log_part_t *p, int64_t offset, size_t max_bytes, sk_buf_t *out);

/* Offset of the first record with timestamp >= ts and that timestamp, or
 * offset -1 if there is none. */
void log_part_offset_for_time(log_part_t *p, int64_t ts, int64_t *offset, int64_t *found_ts);

/* Fsyncs every partition written since the last call.  Returns 0 or -1. */
int log_flush_dirty(log_t *l);
/* Fsyncs one partition if dirty. */
int log_part_flush(log_part_t *p);

/* Applies retention at wall time now_ms: deletes whole old segments (never
 * the active one) and advances the log start offset.  Returns how many
 * segments were deleted. */
int log_retention_run(log_t *l, int64_t now_ms);

#endif
