#include "store.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_map.h"

#define NO_HEAP UINT32_MAX
#define TABLE_MIN 16
/* A hash table is resized when count/size leaves [1/8, 1]. */
#define REHASH_EMPTY_VISITS 10

typedef struct table_s {
    kv_entry_t **b;
    size_t size; /* power of two, or 0 */
    size_t used;
} table_t;

typedef struct heap_item_s {
    int64_t at;
    kv_entry_t *e;
} heap_item_t;

struct kv_store_s {
    table_t t[2];
    ssize_t rehash; /* next bucket of t[0] to move; -1: not rehashing */
    heap_item_t *heap;
    size_t nheap, heap_cap;
    size_t entry_bytes; /* malloc'ed bytes of all entries */
    size_t data_bytes;  /* key and value bytes of all entries */
    kv_clock_fn clock;
    void *clock_opaque;
    kv_expired_fn on_expired;
    void *expired_opaque;
};

/* glibc keeps one size word before each chunk. */
#define MALLOC_OVERHEAD 8

static size_t entry_alloc_size(const kv_entry_t *e)
{
    return malloc_usable_size((void *)e) + MALLOC_OVERHEAD;
}

static int64_t wall_clock(void *opaque)
{
    (void)opaque;
    return sk_wall_ms();
}

kv_store_t *kv_store_new(kv_clock_fn clock, void *clock_opaque)
{
    kv_store_t *s = sk_calloc(1, sizeof *s);
    s->clock = clock ? clock : wall_clock;
    s->clock_opaque = clock_opaque;
    s->rehash = -1;
    s->t[0].size = TABLE_MIN;
    s->t[0].b = sk_calloc(TABLE_MIN, sizeof *s->t[0].b);
    return s;
}

void kv_store_on_expired(kv_store_t *s, kv_expired_fn fn, void *opaque)
{
    s->on_expired = fn;
    s->expired_opaque = opaque;
}

int64_t kv_store_now(const kv_store_t *s)
{
    return s->clock(s->clock_opaque);
}

static void free_tables(kv_store_t *s)
{
    for (int i = 0; i < 2; i++) {
        for (size_t k = 0; k < s->t[i].size; k++) {
            kv_entry_t *e = s->t[i].b[k];
            while (e) {
                kv_entry_t *n = e->next;
                free(e);
                e = n;
            }
        }
        free(s->t[i].b);
        memset(&s->t[i], 0, sizeof s->t[i]);
    }
}

void kv_store_free(kv_store_t *s)
{
    if (!s) return;
    free_tables(s);
    free(s->heap);
    free(s);
}

void kv_store_flush(kv_store_t *s)
{
    free_tables(s);
    free(s->heap);
    s->heap = NULL;
    s->nheap = s->heap_cap = 0;
    s->entry_bytes = 0;
    s->data_bytes = 0;
    s->rehash = -1;
    s->t[0].size = TABLE_MIN;
    s->t[0].b = sk_calloc(TABLE_MIN, sizeof *s->t[0].b);
}

size_t kv_store_count(const kv_store_t *s)
{
    return s->t[0].used + s->t[1].used;
}

size_t kv_store_expires(const kv_store_t *s)
{
    return s->nheap;
}

size_t kv_store_data_bytes(const kv_store_t *s)
{
    return s->data_bytes;
}

size_t kv_store_memory(const kv_store_t *s)
{
    return s->entry_bytes + (s->t[0].size + s->t[1].size) * sizeof(kv_entry_t *) +
           s->heap_cap * sizeof(heap_item_t) + sizeof *s;
}

/* ---- the deadline heap ---------------------------------------------------- */

static void heap_place(kv_store_t *s, size_t i, heap_item_t it)
{
    s->heap[i] = it;
    it.e->hidx = (uint32_t)i;
}

static void heap_up(kv_store_t *s, size_t i)
{
    heap_item_t it = s->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent].at <= it.at) break;
        heap_place(s, i, s->heap[parent]);
        i = parent;
    }
    heap_place(s, i, it);
}

static void heap_down(kv_store_t *s, size_t i)
{
    heap_item_t it = s->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        int64_t best = it.at;
        if (l < s->nheap && s->heap[l].at < best) {
            m = l;
            best = s->heap[l].at;
        }
        if (l + 1 < s->nheap && s->heap[l + 1].at < best) m = l + 1;
        if (m == i) break;
        heap_place(s, i, s->heap[m]);
        i = m;
    }
    heap_place(s, i, it);
}

static void heap_remove(kv_store_t *s, kv_entry_t *e)
{
    size_t i = e->hidx;
    e->hidx = NO_HEAP;
    s->nheap--;
    if (i == s->nheap) return;
    heap_item_t last = s->heap[s->nheap];
    heap_place(s, i, last);
    if (i > 0 && s->heap[(i - 1) / 2].at > last.at) heap_up(s, i);
    else heap_down(s, i);
}

static void heap_set(kv_store_t *s, kv_entry_t *e, int64_t at)
{
    if (e->hidx != NO_HEAP) {
        size_t i = e->hidx;
        int64_t old = s->heap[i].at;
        s->heap[i].at = at;
        if (at < old) heap_up(s, i);
        else heap_down(s, i);
        return;
    }
    if (s->nheap == s->heap_cap) {
        s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 64;
        s->heap = sk_realloc(s->heap, s->heap_cap * sizeof *s->heap);
    }
    s->heap[s->nheap] = (heap_item_t){at, e};
    e->hidx = (uint32_t)s->nheap;
    s->nheap++;
    heap_up(s, s->nheap - 1);
}

/* Gives back heap memory after a mass expiry. */
static void heap_maybe_shrink(kv_store_t *s)
{
    if (s->heap_cap > 1024 && s->nheap < s->heap_cap / 8) {
        s->heap_cap /= 2;
        s->heap = sk_realloc(s->heap, s->heap_cap * sizeof *s->heap);
    }
}

int64_t kv_store_deadline(const kv_store_t *s, const kv_entry_t *e)
{
    return e->hidx == NO_HEAP ? KV_NO_DEADLINE : s->heap[e->hidx].at;
}

int64_t kv_store_next_deadline(const kv_store_t *s)
{
    return s->nheap ? s->heap[0].at : KV_NO_DEADLINE;
}

void kv_store_set_deadline(kv_store_t *s, kv_entry_t *e, int64_t deadline)
{
    if (deadline < 0) {
        if (e->hidx != NO_HEAP) heap_remove(s, e);
        heap_maybe_shrink(s);
    } else {
        heap_set(s, e, deadline);
    }
}

/* ---- the hash table --------------------------------------------------------- */

static uint64_t hash_key(const void *key, size_t klen)
{
    return sk_hash(key, klen);
}

static int rehashing(const kv_store_t *s)
{
    return s->rehash >= 0;
}

/* Moves up to n buckets from t[0] to t[1]. */
static void rehash_buckets(kv_store_t *s, size_t n)
{
    size_t empty = n * REHASH_EMPTY_VISITS;
    while (n-- && s->t[0].used > 0) {
        while (s->t[0].b[s->rehash] == NULL) {
            s->rehash++;
            if (--empty == 0) return;
        }
        kv_entry_t *e = s->t[0].b[s->rehash];
        while (e) {
            kv_entry_t *next = e->next;
            size_t idx = hash_key(e->data, e->klen) & (s->t[1].size - 1);
            e->next = s->t[1].b[idx];
            s->t[1].b[idx] = e;
            s->t[0].used--;
            s->t[1].used++;
            e = next;
        }
        s->t[0].b[s->rehash] = NULL;
        s->rehash++;
    }
    if (s->t[0].used == 0) {
        free(s->t[0].b);
        s->t[0] = s->t[1];
        memset(&s->t[1], 0, sizeof s->t[1]);
        s->rehash = -1;
    }
}

static void resize_to(kv_store_t *s, size_t size)
{
    if (rehashing(s) || size == s->t[0].size) return;
    s->t[1].size = size;
    s->t[1].used = 0;
    s->t[1].b = sk_calloc(size, sizeof *s->t[1].b);
    s->rehash = 0;
}

static void maybe_resize(kv_store_t *s)
{
    if (rehashing(s)) return;
    size_t used = s->t[0].used, size = s->t[0].size;
    if (used >= size) resize_to(s, size * 2);
    else if (size > TABLE_MIN && used < size / 8) {
        size_t target = TABLE_MIN;
        while (target < used * 2) target *= 2;
        resize_to(s, target);
    }
}

int kv_store_rehash_step(kv_store_t *s, int64_t budget_us)
{
    if (!rehashing(s)) maybe_resize(s);
    if (!rehashing(s)) return 0;
    int64_t start = sk_mono_us();
    while (rehashing(s)) {
        rehash_buckets(s, 100);
        if (sk_mono_us() - start >= budget_us) break;
    }
    return rehashing(s);
}

/* Finds key; *slot receives the link that points at it and *tab its table
 * (for unlinking); both may be NULL. */
static kv_entry_t *find_in(kv_store_t *s, const void *key, size_t klen, kv_entry_t ***slot, table_t **tab)
{
    uint64_t h = hash_key(key, klen);
    for (int i = 0; i < 2; i++) {
        table_t *t = &s->t[i];
        if (t->size == 0) break;
        size_t idx = h & (t->size - 1);
        if (i == 0 && rehashing(s) && idx < (size_t)s->rehash) continue; /* already moved */
        kv_entry_t **link = &t->b[idx];
        for (kv_entry_t *e = *link; e; link = &e->next, e = e->next) {
            if (e->klen == klen && memcmp(e->data, key, klen) == 0) {
                if (slot) *slot = link;
                if (tab) *tab = t;
                return e;
            }
        }
        if (!rehashing(s)) break;
    }
    return NULL;
}

typedef struct where_s {
    kv_entry_t **link;
    table_t *t;
} where_t;

static kv_entry_t *find(kv_store_t *s, const void *key, size_t klen, where_t *w)
{
    return find_in(s, key, klen, w ? &w->link : NULL, w ? &w->t : NULL);
}

static void unlink_free(kv_store_t *s, where_t *w, kv_entry_t *e)
{
    table_t *t = w->t;
    kv_entry_t **link = w->link;
    *link = e->next;
    t->used--;
    if (e->hidx != NO_HEAP) heap_remove(s, e);
    s->entry_bytes -= entry_alloc_size(e);
    s->data_bytes -= e->klen + e->vlen;
    free(e);
}

/* Deletes e after telling the expire callback. */
static void expire_now(kv_store_t *s, where_t *w, kv_entry_t *e)
{
    int64_t at = s->heap[e->hidx].at;
    if (s->on_expired) s->on_expired(s->expired_opaque, e, at);
    unlink_free(s, w, e);
}

kv_entry_t *kv_store_peek(kv_store_t *s, const void *key, size_t klen)
{
    return find(s, key, klen, NULL);
}

kv_entry_t *kv_store_get(kv_store_t *s, const void *key, size_t klen)
{
    where_t w;
    if (rehashing(s)) rehash_buckets(s, 1);
    kv_entry_t *e = find(s, key, klen, &w);
    if (e && e->hidx != NO_HEAP && s->heap[e->hidx].at <= kv_store_now(s)) {
        expire_now(s, &w, e);
        return NULL;
    }
    return e;
}

kv_entry_t *kv_store_set(kv_store_t *s, const void *key, size_t klen, const void *val, size_t vlen,
                         int64_t deadline, int *created)
{
    where_t w;
    if (rehashing(s)) rehash_buckets(s, 1);
    kv_entry_t *e = find(s, key, klen, &w);
    size_t need = sizeof(kv_entry_t) + klen + vlen;
    if (e) {
        if (created) *created = 0;
        if (deadline == KV_KEEP_DEADLINE) deadline = kv_store_deadline(s, e);
        size_t usable = malloc_usable_size(e);
        if (need > usable || need < usable / 2) {
            s->entry_bytes -= entry_alloc_size(e);
            kv_entry_t *n = sk_realloc(e, need);
            if (n != e) {
                *w.link = n;
                if (n->hidx != NO_HEAP) s->heap[n->hidx].e = n;
                e = n;
            }
            s->entry_bytes += entry_alloc_size(e);
        }
        s->data_bytes = s->data_bytes - e->vlen + vlen;
        e->vlen = (uint32_t)vlen;
        if (vlen) memcpy(e->data + klen, val, vlen);
    } else {
        if (created) *created = 1;
        if (deadline == KV_KEEP_DEADLINE) deadline = KV_NO_DEADLINE;
        e = sk_malloc(need);
        e->klen = (uint32_t)klen;
        e->vlen = (uint32_t)vlen;
        e->hidx = NO_HEAP;
        memcpy(e->data, key, klen);
        if (vlen) memcpy(e->data + klen, val, vlen);
        table_t *t = rehashing(s) ? &s->t[1] : &s->t[0];
        size_t idx = hash_key(key, klen) & (t->size - 1);
        e->next = t->b[idx];
        t->b[idx] = e;
        t->used++;
        s->entry_bytes += entry_alloc_size(e);
        s->data_bytes += klen + vlen;
        maybe_resize(s);
    }
    kv_store_set_deadline(s, e, deadline);
    return e;
}

int kv_store_del(kv_store_t *s, const void *key, size_t klen)
{
    where_t w;
    if (rehashing(s)) rehash_buckets(s, 1);
    kv_entry_t *e = find(s, key, klen, &w);
    if (!e) return 0;
    int live = e->hidx == NO_HEAP || s->heap[e->hidx].at > kv_store_now(s);
    if (!live) {
        expire_now(s, &w, e);
    } else {
        unlink_free(s, &w, e);
    }
    heap_maybe_shrink(s);
    maybe_resize(s);
    return live;
}

size_t kv_store_expire_cycle(kv_store_t *s, int64_t budget_us, int *more)
{
    size_t n = 0;
    int64_t start = budget_us > 0 ? sk_mono_us() : 0, now = kv_store_now(s);
    if (more) *more = 0;
    while (s->nheap && s->heap[0].at <= now) {
        if (budget_us > 0 && (n & 15) == 15 && sk_mono_us() - start >= budget_us) {
            if (more) *more = 1;
            break;
        }
        kv_entry_t *e = s->heap[0].e;
        where_t w;
        kv_entry_t *f = find(s, e->data, e->klen, &w);
        if (f != e) abort(); /* the heap and the table disagree: memory is corrupt */
        expire_now(s, &w, e);
        n++;
    }
    heap_maybe_shrink(s);
    maybe_resize(s);
    return n;
}

/* ---- SCAN ----------------------------------------------------------------- */

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
    return (v >> 32) | (v << 32);
}

/* Increments the reversed bits of v above mask (the high bits of the cursor
 * count first, so a resize never makes the iteration skip a bucket). */
static uint64_t cursor_next(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = rev64(v);
    v++;
    return rev64(v);
}

static void scan_bucket(const table_t *t, size_t idx, kv_scan_fn fn, void *opaque)
{
    for (kv_entry_t *e = t->b[idx]; e; e = e->next) fn(opaque, e);
}

uint64_t kv_store_scan(kv_store_t *s, uint64_t v, kv_scan_fn fn, void *opaque)
{
    if (kv_store_count(s) == 0) return 0;
    if (!rehashing(s)) {
        uint64_t m0 = s->t[0].size - 1;
        scan_bucket(&s->t[0], v & m0, fn, opaque);
        return cursor_next(v, m0);
    }
    /* t0: the smaller table, t1: the larger; visit the small bucket and every
     * bucket of the large one that it expands to. */
    const table_t *t0 = &s->t[0], *t1 = &s->t[1];
    if (t0->size > t1->size) {
        const table_t *x = t0;
        t0 = t1;
        t1 = x;
    }
    uint64_t m0 = t0->size - 1, m1 = t1->size - 1;
    /* Buckets of t[0] below s->rehash are empty (moved), which is fine. */
    scan_bucket(t0, v & m0, fn, opaque);
    do {
        scan_bucket(t1, v & m1, fn, opaque);
        v = cursor_next(v, m1);
    } while (v & (m0 ^ m1));
    return v;
}

/* ---- glob ----------------------------------------------------------------- */

static unsigned char fold(unsigned char c, int nocase)
{
    return nocase && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Does the one-character token at p[i] (? [class] \x or a literal) match c?
 * *next receives the index after the token. */
static int token_match(const char *p, size_t n, size_t i, unsigned char c, int nocase, size_t *next)
{
    c = fold(c, nocase);
    if (p[i] == '?') {
        *next = i + 1;
        return 1;
    }
    if (p[i] == '[') {
        size_t j = i + 1;
        int neg = 0, hit = 0;
        if (j < n && p[j] == '^') {
            neg = 1;
            j++;
        }
        while (j < n && p[j] != ']') {
            if (p[j] == '\\' && j + 1 < n) {
                if (fold((unsigned char)p[j + 1], nocase) == c) hit = 1;
                j += 2;
            } else if (j + 2 < n && p[j + 1] == '-') {
                unsigned char lo = fold((unsigned char)p[j], nocase), hi = fold((unsigned char)p[j + 2], nocase);
                if (lo > hi) {
                    unsigned char x = lo;
                    lo = hi;
                    hi = x;
                }
                if (c >= lo && c <= hi) hit = 1;
                j += 3;
            } else {
                if (fold((unsigned char)p[j], nocase) == c) hit = 1;
                j++;
            }
        }
        *next = j < n ? j + 1 : n; /* an unterminated class ends the pattern */
        return neg ? !hit : hit;
    }
    if (p[i] == '\\' && i + 1 < n) {
        *next = i + 2;
        return fold((unsigned char)p[i + 1], nocase) == c;
    }
    *next = i + 1;
    return fold((unsigned char)p[i], nocase) == c;
}

int kv_glob_match(const char *pat, size_t plen, const char *str, size_t slen, int nocase)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, resume = 0;
    while (si < slen) {
        if (pi < plen && pat[pi] == '*') {
            while (pi < plen && pat[pi] == '*') pi++;
            if (pi == plen) return 1;
            star = pi;
            resume = si;
            continue;
        }
        size_t next;
        if (pi < plen && token_match(pat, plen, pi, (unsigned char)str[si], nocase, &next)) {
            pi = next;
            si++;
            continue;
        }
        if (star == SIZE_MAX) return 0;
        /* Let the last star swallow one more character and retry. */
        pi = star;
        si = ++resume;
    }
    while (pi < plen && pat[pi] == '*') pi++;
    return pi == plen;
}
