/*
 * evstats.c - per event type counters (see evstats.h).
 */
#include "evstats.h"

#include <stdlib.h>
#include <string.h>

#include "sk_alloc.h"

typedef struct stats_entry_s {
    ev_type_stats_t st;
    char name[]; /* what st.type points to */
} stats_entry_t;

void ev_stats_init(ev_stats_t *s)
{
    sk_map_init(&s->types);
}

void ev_stats_release(ev_stats_t *s)
{
    for (sk_map_entry_t *it = sk_map_next(&s->types, NULL); it; it = sk_map_next(&s->types, it))
        free(it->value);
    sk_map_release(&s->types);
}

ev_type_stats_t *ev_stats_get(ev_stats_t *s, const char *type)
{
    if (!type) type = EV_STATS_NO_TYPE;
    size_t n = strlen(type);
    stats_entry_t *e = sk_map_get(&s->types, type, n);
    if (e) return &e->st;
    if (sk_map_count(&s->types) >= EV_STATS_MAX_TYPES && strcmp(type, EV_STATS_OTHER) != 0)
        return ev_stats_get(s, EV_STATS_OTHER);
    e = sk_calloc(1, sizeof *e + n + 1);
    memcpy(e->name, type, n + 1);
    e->st.type = e->name;
    sk_map_put(&s->types, type, n, e);
    return &e->st;
}

void ev_stats_foreach(const ev_stats_t *s, ev_type_stats_fn fn, void *opaque)
{
    for (sk_map_entry_t *it = sk_map_next(&s->types, NULL); it; it = sk_map_next(&s->types, it)) {
        const stats_entry_t *e = it->value;
        fn(opaque, &e->st);
    }
}
