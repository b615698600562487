/*
 * evstats.h - per event type counters of the outbox relay and the consumer,
 * for the runtime's /metrics.
 *
 * The relay and the consumer each keep one table; the runtime reads it with
 * ev_relay_foreach_type() / ev_consumer_foreach_type(), which call back once
 * per type seen so far, in no particular order.  Counters only grow (they are
 * Prometheus counters) and live as long as the relay or consumer.
 *
 * Everything here runs on the event loop's thread: there is no locking.
 */
#ifndef EV_EVSTATS_H
#define EV_EVSTATS_H

#include <stdint.h>

#include "sk_map.h"

/* The label used for records whose type is unknown (an undecodable record,
 * an outbox row whose value has no "type"). */
#define EV_STATS_NO_TYPE ""

typedef struct ev_type_stats_s {
    const char *type;    /* borrowed from the table; EV_STATS_NO_TYPE if unknown */
    uint64_t produced;   /* relay: rows whose delivery report said "delivered" */
    uint64_t consumed;   /* consumer: events whose handler's transaction committed */
    uint64_t duplicates; /* consumer: redelivered events skipped (already processed) */
    uint64_t skipped;    /* consumer: valid events of a type without a handler */
    uint64_t failed;     /* relay: failed delivery reports; consumer: failed handler attempts */
    uint64_t dlq;        /* consumer: records sent to <topic>.dlq (undecodable or failing) */
} ev_type_stats_t;

/* Called once per type; st is only valid during the call. */
typedef void (*ev_type_stats_fn)(void *opaque, const ev_type_stats_t *st);

/* ---- the table (used by outbox.c and consumer.c) ------------------------ */

/* At most this many distinct types are tracked; later ones count under
 * EV_STATS_OTHER so that a stream of garbage types cannot grow the table. */
#define EV_STATS_MAX_TYPES 256
#define EV_STATS_OTHER "other"

typedef struct ev_stats_s {
    sk_map_t types; /* type -> ev_type_stats_t * (owned) */
} ev_stats_t;

void ev_stats_init(ev_stats_t *s);
void ev_stats_release(ev_stats_t *s);
/* The counters of type (NULL counts as EV_STATS_NO_TYPE), created at zero
 * on first use.  Never NULL; valid until ev_stats_release(). */
ev_type_stats_t *ev_stats_get(ev_stats_t *s, const char *type);
void ev_stats_foreach(const ev_stats_t *s, ev_type_stats_fn fn, void *opaque);

#endif
