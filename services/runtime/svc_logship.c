/*
 * svc_logship.c - log shipping: every JSON log line a service writes to
 * stderr is also produced to the `logs` topic (--log-topic), for analytics.
 *
 * It must never slow the service down or stop it: lines go to a librdkafka
 * producer of their own (not the outbox: a log line is not worth a SQLite
 * write), which batches them (linger.ms) in a bounded queue.  When the
 * queue is full - the broker is away, or the service logs faster than it
 * can ship - the line is dropped and counted (logs_dropped_total); a line
 * that cannot be delivered within --log-ship-timeout-ms is dropped too.
 * stderr logging goes on regardless.  Delivery is at most once.
 *
 * The sink runs on whatever thread logs; rd_kafka_produce() is thread-safe
 * and the counters are atomic.  Delivery reports are served by a timer on
 * the loop (rd_kafka_poll(rk, 0)).  librdkafka's own log lines reach sk_log
 * through the loop (log.queue), never from inside the sink.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "rdkloop.h"
#include "sk_alloc.h"
#include "sk_log.h"
#include "svc_internal.h"

struct svc_logship_s {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    struct event *poll_ev;
    ev_rdk_watch_t logq;
    const char *key; /* the service name */
    atomic_ullong shipped, dropped;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    svc_logship_t *ls = opaque;
    if (m->err)
        atomic_fetch_add(&ls->dropped, 1);
    else
        atomic_fetch_add(&ls->shipped, 1);
}

/* The sink: never blocks, never logs. */
static void sink(void *opaque, const char *line, size_t len)
{
    svc_logship_t *ls = opaque;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if (!len) return;
    if (rd_kafka_produce(ls->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)line, len,
                         ls->key, strlen(ls->key), NULL) != 0)
        atomic_fetch_add(&ls->dropped, 1);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    svc_logship_t *ls = arg;
    rd_kafka_poll(ls->rk, 0);
}

/* librdkafka's log lines, on the loop (log.queue=true). */
static void logq_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    svc_logship_t *ls = arg;
    ev_rdk_watch_drain(&ls->logq);
    rd_kafka_event_t *e;
    while ((e = rd_kafka_queue_poll(ls->logq.q, 0))) {
        const char *fac, *buf;
        int level;
        if (rd_kafka_event_type(e) == RD_KAFKA_EVENT_LOG &&
            rd_kafka_event_log(e, &fac, &buf, &level) == 0)
            ev_rdk_log_cb(ls->rk, level, fac, buf);
        rd_kafka_event_destroy(e);
    }
}

static void collect(svc_t *svc, void *arg)
{
    svc_logship_t *ls = arg;
    svc_metric_counter_set(svc, "logs_shipped_total", NULL, (double)atomic_load(&ls->shipped));
    svc_metric_counter_set(svc, "logs_dropped_total", NULL, (double)atomic_load(&ls->dropped));
}

int svc_logship_start(svc_t *svc, char *err, size_t errsz)
{
    const char *topic = svc->conf->log_topic;
    if (!topic || !*topic) return 0;
    if (!ev_topic_name_valid(topic)) {
        snprintf(err, errsz, "--log-topic '%s' is not a valid topic name", topic);
        return -1;
    }
    svc_logship_t *ls = sk_calloc(1, sizeof *ls);
    svc->logship = ls;
    ls->key = svc->desc->name;
    char n[32];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    snprintf(n, sizeof n, "%lld", (long long)svc->conf->log_ship_timeout_ms);
    if (ev_rdk_set(kc, "bootstrap.servers", svc->conf->brokers, err, errsz) < 0 ||
        ev_rdk_set(kc, "client.id", svc->desc->name, err, errsz) < 0 ||
        ev_rdk_set(kc, "linger.ms", "100", err, errsz) < 0 ||
        ev_rdk_set(kc, "acks", "1", err, errsz) < 0 ||
        ev_rdk_set(kc, "queue.buffering.max.messages", "20000", err, errsz) < 0 ||
        ev_rdk_set(kc, "queue.buffering.max.kbytes", "16384", err, errsz) < 0 ||
        ev_rdk_set(kc, "message.timeout.ms", n, err, errsz) < 0 ||
        ev_rdk_set(kc, "compression.codec", "lz4", err, errsz) < 0 ||
        ev_rdk_set(kc, "log.queue", "true", err, errsz) < 0) {
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
    rd_kafka_conf_set_opaque(kc, ls);
    char rerr[512];
    ls->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, rerr, sizeof rerr);
    if (!ls->rk) {
        rd_kafka_conf_destroy(kc);
        snprintf(err, errsz, "log shipping: %s", rerr);
        return -1;
    }
    rd_kafka_queue_t *lq = rd_kafka_queue_new(ls->rk);
    if (rd_kafka_set_log_queue(ls->rk, lq) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_queue_destroy(lq);
        snprintf(err, errsz, "log shipping: cannot route librdkafka's logs to the loop");
        return -1;
    }
    if (ev_rdk_watch_start(&ls->logq, svc->base, lq, logq_cb, ls, err, errsz) < 0) return -1;
    ls->topic = rd_kafka_topic_new(ls->rk, topic, NULL);
    if (!ls->topic) {
        snprintf(err, errsz, "log shipping: cannot use topic %s", topic);
        return -1;
    }
    ls->poll_ev = event_new(svc->base, -1, EV_PERSIST, poll_cb, ls);
    struct timeval tv = {0, 200 * 1000};
    event_add(ls->poll_ev, &tv);
    svc_metric_help(svc, "logs_shipped_total", "log lines delivered to the logs topic");
    svc_metric_help(svc, "logs_dropped_total",
                    "log lines dropped (queue full or not deliverable in time); stderr has them all");
    svc_metrics_add_collector(svc, collect, ls);
    sk_log_set_sink(sink, ls);
    sk_info("svc", "shipping log lines to topic %s", topic);
    return 0;
}

void svc_logship_stop(svc_t *svc)
{
    svc_logship_t *ls = svc->logship;
    if (!ls) return;
    sk_log_set_sink(NULL, NULL);
    svc->logship = NULL;
    if (ls->rk) rd_kafka_flush(ls->rk, 1000); /* best effort: the last lines of a clean stop */
    if (ls->poll_ev) event_free(ls->poll_ev);
    ev_rdk_watch_stop(&ls->logq);
    if (ls->topic) rd_kafka_topic_destroy(ls->topic);
    if (ls->rk) {
        rd_kafka_purge(ls->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(ls->rk);
    }
    free(ls);
}
