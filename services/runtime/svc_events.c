/*
 * svc_events.c - the runtime's messaging: the outbox relay, the consumer and
 * the key-store client of a service (libevents), wired to /ready, /metrics,
 * the shutdown drains and the request handlers' svc_emit()/svc_commit().
 *
 * A service declares what it consumes (svc_desc_t.handlers/raw_handlers,
 * use_kv); everything else is here, so that every service publishes,
 * consumes, retries and dead-letters the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_log.h"
#include "svc_internal.h"

struct svc_events_s {
    ev_relay_t *relay;
    ev_consumer_t *consumer;
    ev_kv_t *kv;
    int consumer_stopped;
    char *props_buf;     /* --rdkafka, split in place */
    const char **props;  /* "name", "value", ..., NULL */
};

/* --rdkafka "a=1,b=2" -> {"a", "1", "b", "2", NULL} (pointing into a copy).
 * Returns 0, or -1 for an entry without '=' or an empty name. */
static int split_props(svc_events_t *e, const char *spec, char *err, size_t errsz)
{
    size_t n = 0;
    e->props_buf = sk_strdup(spec);
    for (const char *p = spec; *p; p++) n += *p == ',';
    e->props = sk_calloc(2 * (n + 1) + 1, sizeof *e->props);
    size_t k = 0;
    for (char *tok = e->props_buf, *next; tok && *tok; tok = next) {
        next = strchr(tok, ',');
        if (next) *next++ = '\0';
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok) {
            snprintf(err, errsz, "--rdkafka: '%s' is not NAME=VALUE", tok);
            return -1;
        }
        *eq = '\0';
        e->props[k++] = tok;
        e->props[k++] = eq + 1;
    }
    e->props[k] = NULL;
    return 0;
}

ev_relay_t *svc_relay(const svc_t *svc)
{
    return svc->events ? svc->events->relay : NULL;
}

ev_kv_t *svc_kv(const svc_t *svc)
{
    return svc->events ? svc->events->kv : NULL;
}

/* ---- emitting ------------------------------------------------------------------- */

static int add_event(sqlite3 *db, ev_event_t *ev, char *err, size_t errsz)
{
    if (!ev) return -1;
    int rc = ev_outbox_add_event(db, ev, err, errsz);
    ev_free(ev);
    return rc;
}

int svc_emit(svc_t *svc, const char *type, const char *correlation_id, cJSON *data, char *err,
             size_t errsz)
{
    if (!svc->db) {
        cJSON_Delete(data);
        snprintf(err, errsz, "%s: the service has no database (no outbox)", type);
        return -1;
    }
    return add_event(svc->db, ev_new(type, svc->desc->name, correlation_id, NULL, data, err, errsz), err,
                     errsz);
}

int svc_emit_caused(svc_t *svc, sqlite3 *db, const ev_event_t *cause, const char *type, cJSON *data,
                    char *err, size_t errsz)
{
    return add_event(db, ev_new_caused(cause, type, svc->desc->name, data, err, errsz), err, errsz);
}

int svc_commit(svc_t *svc)
{
    if (sto_commit(svc->db) < 0) return -1;
    if (svc->events) ev_relay_kick(svc->events->relay);
    return 0;
}

/* ---- readiness, drains, metrics --------------------------------------------------- */

static int broker_check(svc_t *svc, void *arg, char *err, size_t errsz)
{
    (void)arg;
    if (ev_relay_broker_up(svc->events->relay)) return 0;
    snprintf(err, errsz, "no connection to the broker at %s yet", svc->conf->brokers);
    return -1;
}

static int kv_check(svc_t *svc, void *arg, char *err, size_t errsz)
{
    (void)arg;
    if (ev_kv_connected(svc->events->kv)) return 0;
    snprintf(err, errsz, "no connection to the key store at %s", svc->conf->kv);
    return -1;
}

/* Shutdown: the consumer stops taking records first (it would add outbox
 * rows), then the outbox is published until it is empty. */
static size_t outbox_drain(svc_t *svc, void *arg)
{
    (void)arg;
    svc_events_t *e = svc->events;
    if (e->consumer && !e->consumer_stopped) {
        ev_consumer_stop(e->consumer);
        e->consumer_stopped = 1;
    }
    int64_t n = ev_relay_pending(e->relay);
    /* Unreadable: nothing the drain can do; let the shutdown go on. */
    return n > 0 ? (size_t)n : 0;
}

static void type_stats(void *opaque, const ev_type_stats_t *st)
{
    svc_t *svc = opaque;
    const char *labels[] = {"type", st->type, NULL};
    if (st->produced) svc_metric_counter_set(svc, "events_produced_total", labels, (double)st->produced);
    if (st->consumed) svc_metric_counter_set(svc, "events_consumed_total", labels, (double)st->consumed);
    if (st->duplicates)
        svc_metric_counter_set(svc, "events_duplicate_total", labels, (double)st->duplicates);
    if (st->failed) svc_metric_counter_set(svc, "events_failed_total", labels, (double)st->failed);
    if (st->dlq) svc_metric_counter_set(svc, "events_dlq_total", labels, (double)st->dlq);
}

static void collect(svc_t *svc, void *arg)
{
    (void)arg;
    svc_events_t *e = svc->events;
    ev_relay_info_t ri;
    ev_relay_info(e->relay, &ri);
    svc_metric_gauge_set(svc, "outbox_depth", NULL, (double)ri.depth);
    svc_metric_gauge_set(svc, "broker_up", NULL, ri.broker_up);
    ev_relay_foreach_type(e->relay, type_stats, svc);
    if (e->consumer) {
        ev_consumer_info_t ci;
        ev_consumer_info(e->consumer, &ci);
        svc_metric_gauge_set(svc, "consumer_lag", NULL, (double)ci.lag);
        svc_metric_gauge_set(svc, "consumer_partitions_assigned", NULL, ci.assigned);
        svc_metric_gauge_set(svc, "consumer_partitions_retrying", NULL, ci.retrying);
        ev_consumer_foreach_type(e->consumer, type_stats, svc);
    }
    if (e->kv) svc_metric_gauge_set(svc, "kv_up", NULL, ev_kv_connected(e->kv));
}

static void set_help(svc_t *svc)
{
    static const char *const help[][2] = {
        {"events_produced_total", "events published from the outbox (delivery reported), by type"},
        {"events_consumed_total", "events whose handler's transaction committed, by type"},
        {"events_duplicate_total", "redelivered events skipped (already processed), by type"},
        {"events_failed_total", "failed deliveries (relay) and failed handler attempts, by type"},
        {"events_dlq_total", "records sent to <topic>.dlq, by type (\"\" when undecodable)"},
        {"outbox_depth", "rows in the outbox not yet published"},
        {"broker_up", "1 when the outbox relay has a connection to the broker"},
        {"consumer_lag", "records behind the high watermark on the assigned partitions"},
        {"consumer_partitions_assigned", "partitions assigned to this service's consumer"},
        {"consumer_partitions_retrying", "assigned partitions paused on a failing record"},
        {"kv_up", "1 when the key-store client is connected"},
    };
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
        svc_metric_help(svc, help[i][0], help[i][1]);
}

/* ---- start and stop ------------------------------------------------------------------ */

static void on_outcome(void *ctx, const ev_record_t *rec, const char *event_id, const char *type,
                       ev_outcome_t outcome, const char *err)
{
    (void)ctx;
    const char *id = event_id ? event_id : "-";
    const char *t = type ? type : "-";
    switch (outcome) {
    case EV_OUTCOME_APPLIED:
        sk_debug("events", "applied %s %s (%s/%d/%lld)", t, id, rec->topic, (int)rec->partition,
                 (long long)rec->offset);
        break;
    case EV_OUTCOME_DUPLICATE:
        sk_info("events", "duplicate %s %s skipped (%s/%d/%lld)", t, id, rec->topic, (int)rec->partition,
                (long long)rec->offset);
        break;
    case EV_OUTCOME_SKIPPED:
        sk_debug("events", "no handler for %s %s", t, id);
        break;
    case EV_OUTCOME_RETRY:
        sk_warn("events", "%s %s failed (attempt %d), will retry: %s", t, id, rec->attempt,
                err ? err : "");
        break;
    case EV_OUTCOME_DLQ:
        sk_error("events", "%s %s (%s/%d/%lld) sent to %s.dlq after %d attempts: %s", t, id, rec->topic,
                 (int)rec->partition, (long long)rec->offset, rec->topic, rec->attempt,
                 err ? err : "");
        break;
    }
}


int svc_events_start(svc_t *svc, char *err, size_t errsz)
{
    const svc_desc_t *d = svc->desc;
    int consumes = (d->handlers && d->handlers[0].type) || (d->raw_handlers && d->raw_handlers[0].topic);
    if (!svc->db) {
        if (consumes) {
            snprintf(err, errsz, "a service that consumes events needs a database (migrations)");
            return -1;
        }
        if (!d->use_kv) return 0;
    }
    svc_events_t *e = sk_calloc(1, sizeof *e);
    svc->events = e;
    /* librdkafka's statistics tell the relay whether a broker is up; once a
     * second keeps /ready close to the truth.  --rdkafka comes last and wins. */
    sk_buf_t spec = SK_BUF_INIT;
    sk_buf_init(&spec, 64);
    sk_buf_adds(&spec, "statistics.interval.ms=1000");
    if (*svc->conf->rdkafka) sk_buf_addf(&spec, ",%s", svc->conf->rdkafka);
    int bad = split_props(e, spec.data, err, errsz);
    sk_buf_release(&spec);
    if (bad < 0) return -1;
    if (svc->db) {
        ev_relay_conf_t rc = {
            .brokers = svc->conf->brokers,
            .client_id = d->name,
            .rdkafka_props = e->props,
        };
        e->relay = ev_relay_new(svc->base, svc->db, &rc, err, errsz);
        if (!e->relay) return -1;
        svc_add_ready_check(svc, "broker", broker_check, NULL);
        svc_add_drain(svc, "outbox", outbox_drain, NULL);
    }
    if (consumes) {
        ev_consumer_conf_t cc = {
            .brokers = svc->conf->brokers,
            .group = d->name,
            .handlers = d->handlers,
            .raw_handlers = d->raw_handlers,
            .ctx = svc,
            .max_attempts = (int)svc->conf->max_attempts,
            .relay = e->relay,
            .on_outcome = on_outcome,
            .rdkafka_props = e->props + 2, /* without statistics.interval.ms */
        };
        e->consumer = ev_consumer_new(svc->base, svc->db, &cc, err, errsz);
        if (!e->consumer) return -1;
    }
    if (d->use_kv) {
        ev_kv_conf_t kc = {.addr = svc->conf->kv};
        e->kv = ev_kv_new(svc->base, &kc, err, errsz);
        if (!e->kv) return -1;
        svc_add_ready_check(svc, "kv", kv_check, NULL);
    }
    if (e->relay) {
        set_help(svc);
        svc_metrics_add_collector(svc, collect, NULL);
    }
    sk_info("events", "messaging: outbox relay %s, consumer %s, key store %s",
            e->relay ? svc->conf->brokers : "off", e->consumer ? d->name : "off",
            e->kv ? svc->conf->kv : "off");
    return 0;
}

void svc_events_stop(svc_t *svc)
{
    svc_events_t *e = svc->events;
    if (!e) return;
    svc->events = NULL;
    if (e->consumer) {
        if (ev_consumer_close(e->consumer) < 0)
            sk_warn("events", "the final offset commit failed: those events will be skipped as duplicates");
        ev_consumer_free(e->consumer);
    }
    if (e->relay) {
        /* The drain normally emptied the outbox; whatever is left (broker
         * away, timeout) stays in the table for the next start. */
        int64_t left = ev_relay_pending(e->relay);
        if (left > 0) sk_warn("events", "%lld outbox rows not yet published; sent after the next start",
                              (long long)left);
        ev_relay_free(e->relay);
    }
    ev_kv_free(e->kv);
    free(e->props);
    free(e->props_buf);
    free(e);
}
