/*
 * aof.h - the key store's append-only file, "<data dir>/kv.aof".
 *
 * Records are RESP multibulk requests, so the file is readable with `cat -v`
 * and loaded with the same parser as the network.  Every record states a
 * key's whole state after a change, never a delta:
 *
 *   SET key value [PXAT deadline-ms]   the key now holds value (and deadline)
 *   DEL key                            the key is gone (deleted or expired)
 *   FLUSHALL                           every key is gone
 *
 * INCR is written as the SET of its result, EXPIRE as a SET with PXAT, and
 * deadlines are absolute, so replaying the file at any later time gives the
 * same keys and deadlines; keys whose deadline passed while the broker was
 * down are loaded and then expire (and are announced) right after start.
 * Because each record is a constant function of one key's state, replaying a
 * record twice, or after a newer snapshot of that key, changes nothing; the
 * rewrite relies on this.
 *
 * Writing.  Records are buffered in memory by kv_aof_add_*() and written with
 * one write() by kv_aof_flush(), which the server calls once per event-loop
 * pass, before any reply of that pass is sent.  Policy "always" fdatasyncs in
 * kv_aof_flush() too (so nothing acknowledged is lost, even on power loss);
 * "everysec" asks a background thread to fdatasync once a second (a slow
 * disk never stalls the loop); "no" leaves it to the kernel.  A process crash
 * (kill -9) loses nothing under any policy once kv_aof_flush() has run.
 *
 * Rewrite.  When the file grows past twice the live data (and past min_size),
 * or on BGREWRITEAOF, the file is rewritten incrementally on the event loop,
 * not in a fork()ed child: kv_aof_rewrite_step() walks the table with the
 * SCAN cursor within a time budget, writing one SET per key to
 * "kv.aof.rewrite", then copies the records that were appended to the live
 * file since the rewrite began, fsyncs, and renames over "kv.aof".  This
 * costs no copy-on-write memory (the broker's RSS stays flat, which matters
 * next to the log's page cache), needs no fork() of a process with open
 * segments, sockets and a thread, and keeps each loop pass short.  It is
 * correct because the cursor visits every key present throughout the walk
 * and every later change is in the copied tail as a constant record.
 *
 * Loading.  kv_aof_open() replays the file into the store.  A torn last
 * record (the broker died mid-write) is cut off with a warning; so is a tail
 * of zero bytes (a file system that extended the file but lost the data).
 * Anything else that does not parse is an error: the broker refuses to start
 * rather than silently dropping keys.
 */
#ifndef SOUK_KV_AOF_H
#define SOUK_KV_AOF_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef enum { KV_FSYNC_NO = 0, KV_FSYNC_EVERYSEC, KV_FSYNC_ALWAYS } kv_fsync_t;

/* "no", "everysec", "always"; returns -1 if unknown. */
int kv_fsync_parse(const char *s);
const char *kv_fsync_name(kv_fsync_t f);

typedef struct kv_aof_s kv_aof_t;

typedef struct kv_aof_stats_s {
    int64_t size;            /* bytes in the file, including unwritten buffer */
    int64_t base_size;       /* size right after the last load or rewrite */
    int rewriting;
    int64_t rewrites;
    int last_write_ok;       /* 0 after a failed write or fsync, until one succeeds */
    char last_error[128];
    size_t buffered;         /* bytes waiting for kv_aof_flush */
} kv_aof_stats_t;

/*
 * Opens (creating) dir/kv.aof and loads it into st (which should be empty).
 * min_rewrite_size: no automatic rewrite below this size.  Returns NULL with
 * errstr on failure (unreadable, or corrupt before the last record).
 */
kv_aof_t *kv_aof_open(const char *dir, kv_fsync_t policy, int64_t min_rewrite_size, kv_store_t *st,
                      char *errstr, size_t errsz);
/* Flushes, fsyncs and closes; abandons a rewrite in progress.  a may be NULL. */
void kv_aof_close(kv_aof_t *a);

void kv_aof_set_policy(kv_aof_t *a, kv_fsync_t policy);
kv_fsync_t kv_aof_policy(const kv_aof_t *a);

/* Buffer one record (see above).  deadline: absolute ms or KV_NO_DEADLINE. */
void kv_aof_add_set(kv_aof_t *a, const void *key, size_t klen, const void *val, size_t vlen, int64_t deadline);
void kv_aof_add_del(kv_aof_t *a, const void *key, size_t klen);
void kv_aof_add_flushall(kv_aof_t *a);

/* Writes the buffer (and fdatasyncs under "always").  Returns 0, or -1 after
 * logging; the buffer is kept and retried on the next call. */
int kv_aof_flush(kv_aof_t *a);
/* Once a second: the everysec fsync, and starting a rewrite when due. */
void kv_aof_tick(kv_aof_t *a, kv_store_t *st);
/* Fsyncs now, in the caller's thread. */
int kv_aof_fsync(kv_aof_t *a);

/* Starts a rewrite (BGREWRITEAOF).  Returns 0, or -1 if one is running. */
int kv_aof_rewrite_start(kv_aof_t *a, kv_store_t *st);
/* Does about budget_us of rewrite work; returns 1 while a rewrite remains. */
int kv_aof_rewrite_step(kv_aof_t *a, kv_store_t *st, int64_t budget_us);

void kv_aof_stats(const kv_aof_t *a, kv_aof_stats_t *out);

#endif
