/*
 * sk_map.h - a hash map from byte-string keys to borrowed pointers.
 *
 * Keys are copied into the map; values are the caller's (the map never frees
 * them).  Iteration order is unspecified.  The hash is seeded per process so
 * that keys chosen by a client cannot force long chains.
 */
#ifndef SK_MAP_H
#define SK_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sk_map_entry_s {
    struct sk_map_entry_s *next;
    uint64_t hash;
    void *value;
    size_t klen;
    char key[]; /* NUL-terminated copy */
} sk_map_entry_t;

typedef struct sk_map_s {
    sk_map_entry_t **slots;
    size_t nslots; /* power of two */
    size_t count;
} sk_map_t;

void sk_map_init(sk_map_t *m);
void sk_map_release(sk_map_t *m); /* frees entries, not values */
void *sk_map_get(const sk_map_t *m, const void *key, size_t klen);
/* Inserts or replaces; returns the previous value or NULL. */
void *sk_map_put(sk_map_t *m, const void *key, size_t klen, void *value);
/* Removes; returns the value or NULL. */
void *sk_map_del(sk_map_t *m, const void *key, size_t klen);
static inline size_t sk_map_count(const sk_map_t *m)
{
    return m->count;
}

/* Iteration: for (it = sk_map_next(m, NULL); it; it = sk_map_next(m, it)).
 * The map must not be changed while iterating, except by sk_map_del of the
 * current entry's key after fetching the next one. */
sk_map_entry_t *sk_map_next(const sk_map_t *m, const sk_map_entry_t *prev);

uint64_t sk_hash(const void *p, size_t n);

#endif
