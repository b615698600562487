/*
 * store.h - the key store: byte-string keys to byte-string values, each with
 * an optional deadline (absolute, milliseconds since the epoch).
 *
 * Layout.  One allocation per key, {chain link, lengths, heap index, key
 * bytes, value bytes}, in a chained hash table that doubles and halves
 * incrementally (each operation moves a bucket or two, as Redis's dict does),
 * so no single command pays for a whole rehash.  Keys with a deadline are
 * also in a binary min-heap of {deadline, entry}; the heap is the only place
 * the deadline is kept.
 *
 * Expiry.  Lazy: every look-up of a key whose deadline has passed deletes it
 * first.  Active: kv_store_expire_cycle() pops due deadlines off the heap
 * until a time budget is spent (the heap makes this exact: it never samples,
 * so a due key is found on the next cycle however many keys there are).
 * Either way the expire callback sees the key and its value just before the
 * key is freed.  The clock is the caller's, so tests can use a fake one.
 *
 * Iteration.  kv_store_scan() uses Redis's reverse-binary cursor: a full
 * iteration returns every key that was present from start to end at least
 * once, even when the table resizes in between; it may return a key twice.
 *
 * Not thread-safe; the broker calls it from its event loop only.  Pointers to
 * entries stay valid until the next call that changes the store.
 */
#ifndef SOUK_KV_STORE_H
#define SOUK_KV_STORE_H

#include <stddef.h>
#include <stdint.h>

#define KV_NO_DEADLINE (-1LL) /* no TTL */
#define KV_KEEP_DEADLINE (-2LL) /* kv_store_set: keep the current TTL */

typedef struct kv_store_s kv_store_t;

typedef struct kv_entry_s {
    struct kv_entry_s *next; /* hash chain */
    uint32_t klen, vlen;
    uint32_t hidx; /* position in the deadline heap; UINT32_MAX: no deadline */
    char data[];   /* key bytes, then value bytes (no terminators) */
} kv_entry_t;

static inline const char *kv_entry_key(const kv_entry_t *e)
{
    return e->data;
}
static inline const char *kv_entry_val(const kv_entry_t *e)
{
    return e->data + e->klen;
}

/* The clock: milliseconds since the epoch. */
typedef int64_t (*kv_clock_fn)(void *opaque);
/* Called once for every key that expires (lazily or by the cycle), before it
 * is freed.  It must not change the store. */
typedef void (*kv_expired_fn)(void *opaque, const kv_entry_t *e, int64_t deadline);

/* clock NULL: the wall clock.  Never returns NULL. */
kv_store_t *kv_store_new(kv_clock_fn clock, void *clock_opaque);
void kv_store_free(kv_store_t *s);
void kv_store_on_expired(kv_store_t *s, kv_expired_fn fn, void *opaque);
int64_t kv_store_now(const kv_store_t *s);

/* The live entry for key, or NULL.  Expires the key first if it is due. */
kv_entry_t *kv_store_get(kv_store_t *s, const void *key, size_t klen);
/* As kv_store_get, but never expires anything (AOF rewrite, loading). */
kv_entry_t *kv_store_peek(kv_store_t *s, const void *key, size_t klen);

/*
 * Creates or replaces key with val.  deadline: an absolute time in ms,
 * KV_NO_DEADLINE, or KV_KEEP_DEADLINE.  A deadline already in the past is
 * stored as given (the key expires at the next look-up or cycle).  *created
 * (may be NULL) tells whether the key is new.  Returns the entry.
 */
kv_entry_t *kv_store_set(kv_store_t *s, const void *key, size_t klen, const void *val, size_t vlen,
                         int64_t deadline, int *created);
/* Deletes key (no callback).  Returns 1 if it existed (and had not expired). */
int kv_store_del(kv_store_t *s, const void *key, size_t klen);
/* Sets (deadline >= 0) or removes (KV_NO_DEADLINE) the deadline of e. */
void kv_store_set_deadline(kv_store_t *s, kv_entry_t *e, int64_t deadline);
/* The deadline of e, or KV_NO_DEADLINE. */
int64_t kv_store_deadline(const kv_store_t *s, const kv_entry_t *e);
/* Removes every key (no callbacks). */
void kv_store_flush(kv_store_t *s);

size_t kv_store_count(const kv_store_t *s);
size_t kv_store_expires(const kv_store_t *s); /* keys with a deadline */
/* Key and value bytes of all keys (the size of the data itself). */
size_t kv_store_data_bytes(const kv_store_t *s);
/* Bytes the store holds (entries, table, heap), as malloc accounts them. */
size_t kv_store_memory(const kv_store_t *s);
/* Earliest deadline, or KV_NO_DEADLINE. */
int64_t kv_store_next_deadline(const kv_store_t *s);

/*
 * Expires due keys until none is due or budget_us microseconds have passed
 * (checked every 16 keys; budget_us <= 0 means no limit).  Returns how many
 * expired; *more (may be NULL) is set when due keys remain.
 */
size_t kv_store_expire_cycle(kv_store_t *s, int64_t budget_us, int *more);

/*
 * Visits the keys of one or a few buckets and returns the next cursor (0 when
 * the iteration is complete).  Entries that have expired but not yet been
 * deleted are visited too: the caller checks kv_store_deadline() if it cares.
 * fn must not change the store.
 */
typedef void (*kv_scan_fn)(void *opaque, const kv_entry_t *e);
uint64_t kv_store_scan(kv_store_t *s, uint64_t cursor, kv_scan_fn fn, void *opaque);

/* Moves buckets of an ongoing rehash for about budget_us; returns 1 while a
 * rehash is still in progress.  (Operations rehash a little on their own; a
 * timer calls this so an idle store finishes too.) */
int kv_store_rehash_step(kv_store_t *s, int64_t budget_us);

/* Glob matching as Redis's KEYS, SCAN MATCH and PSUBSCRIBE: * ? [abc] [^a]
 * [a-z] and \x.  Iterative, O(len(pat) * len(str)) at worst. */
int kv_glob_match(const char *pat, size_t plen, const char *str, size_t slen, int nocase);

#endif
