/*
 * offsets.h - committed consumer offsets, durable under the data dir.
 *
 * Stored in "<data dir>/consumer-offsets.dat", an append-only file of records
 *   u32 length | u32 CRC-32C of payload | payload
 * payload = i16 len + group | i16 len + topic | i32 partition | i64 offset |
 *           i32 leader epoch | i16 len (-1 null) + metadata | i64 commit time ms
 * Loading replays it (the last record for a key wins) and stops at the first
 * torn or corrupt record, truncating it with a log line.  When the file holds
 * more than twice the live records (and > 1 MiB) it is rewritten into a
 * temporary file that is fsynced and renamed over it.
 *
 * Single-threaded: the broker's event loop owns it.
 */
#ifndef SOUK_OFFSETS_H
#define SOUK_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct offsets_s offsets_t;

typedef struct offset_commit_s {
    int64_t offset;
    int32_t leader_epoch;
    char *metadata; /* NULL for a null string; owned by the store */
    int64_t commit_ms;
} offset_commit_t;

offsets_t *offsets_open(const char *dir, char *errstr, size_t errsz);
void offsets_close(offsets_t *o); /* fsyncs */

/* Records a commit (appended to the file before returning).  metadata may be
 * NULL.  Returns 0, or -1 with errstr on I/O failure. */
int offsets_commit(offsets_t *o, const char *group, const char *topic, int32_t partition, int64_t offset,
                   int32_t leader_epoch, const char *metadata, char *errstr, size_t errsz);
/* The stored commit or NULL (borrowed; valid until the next commit). */
const offset_commit_t *offsets_get(offsets_t *o, const char *group, const char *topic, int32_t partition);

/* Calls fn for each (topic, partition) committed by group. */
typedef void (*offsets_each_fn)(void *opaque, const char *topic, int32_t partition, const offset_commit_t *c);
void offsets_each(offsets_t *o, const char *group, offsets_each_fn fn, void *opaque);

/* Calls fn once for each group that has committed offsets. */
typedef void (*offsets_group_fn)(void *opaque, const char *group);
void offsets_groups(offsets_t *o, offsets_group_fn fn, void *opaque);

int offsets_flush(offsets_t *o); /* fsync if written since the last flush */

#endif
