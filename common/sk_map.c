#include "sk_map.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sk_alloc.h"

static uint64_t hash_seed;

uint64_t sk_hash(const void *p, size_t n)
{
    if (!hash_seed) hash_seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ hash_seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void sk_map_init(sk_map_t *m)
{
    m->nslots = 16;
    m->count = 0;
    m->slots = sk_calloc(m->nslots, sizeof *m->slots);
}

void sk_map_release(sk_map_t *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        sk_map_entry_t *e = m->slots[i];
        while (e) {
            sk_map_entry_t *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->slots);
    m->slots = NULL;
    m->nslots = m->count = 0;
}

static sk_map_entry_t **find_slot(const sk_map_t *m, const void *key, size_t klen, uint64_t h)
{
    sk_map_entry_t **pp = &m->slots[h & (m->nslots - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0))
        pp = &(*pp)->next;
    return pp;
}

void *sk_map_get(const sk_map_t *m, const void *key, size_t klen)
{
    sk_map_entry_t *e = *find_slot(m, key, klen, sk_hash(key, klen));
    return e ? e->value : NULL;
}

static void grow(sk_map_t *m)
{
    size_t n = m->nslots * 2;
    sk_map_entry_t **slots = sk_calloc(n, sizeof *slots);
    for (size_t i = 0; i < m->nslots; i++) {
        sk_map_entry_t *e = m->slots[i];
        while (e) {
            sk_map_entry_t *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

void *sk_map_put(sk_map_t *m, const void *key, size_t klen, void *value)
{
    uint64_t h = sk_hash(key, klen);
    sk_map_entry_t **pp = find_slot(m, key, klen, h);
    if (*pp) {
        void *old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    sk_map_entry_t *e = sk_malloc(sizeof *e + klen + 1);
    e->next = NULL;
    e->hash = h;
    e->value = value;
    e->klen = klen;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    *pp = e;
    if (++m->count > m->nslots) grow(m);
    return NULL;
}

void *sk_map_del(sk_map_t *m, const void *key, size_t klen)
{
    sk_map_entry_t **pp = find_slot(m, key, klen, sk_hash(key, klen));
    sk_map_entry_t *e = *pp;
    if (!e) return NULL;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

sk_map_entry_t *sk_map_next(const sk_map_t *m, const sk_map_entry_t *prev)
{
    size_t i = 0;
    if (prev) {
        if (prev->next) return prev->next;
        i = (prev->hash & (m->nslots - 1)) + 1;
    }
    for (; i < m->nslots; i++)
        if (m->slots[i]) return m->slots[i];
    return NULL;
}
