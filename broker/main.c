/*
 * souk-broker: the append-only log (Kafka protocol) of the souk marketplace.
 */
#include <event2/event.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "group/group.h"
#include "kafka/kafka.h"
#include "kafka/server.h"
#include "kv/server.h"
#include "sk_clock.h"
#include "sk_conf.h"
#include "sk_log.h"

#define DAY_MS (24LL * 3600 * 1000)

static const sk_conf_entry_t broker_conf[] = {
    {"data-dir", SK_CONF_STR, offsetof(broker_config_t, data_dir), "./data/broker", 0, 0,
     "where topics, committed offsets and the key store live"},
    {"kafka-listen", SK_CONF_STR, offsetof(broker_config_t, kafka_listen), "127.0.0.1:9092", 0, 0,
     "address for the Kafka protocol (IP:PORT; port 0 picks a free one)"},
    {"advertised-listener", SK_CONF_STR, offsetof(broker_config_t, advertised_listener), "", 0, 0,
     "HOST:PORT that clients are told to connect to (default: the listen address)"},
    {"partitions", SK_CONF_INT, offsetof(broker_config_t, partitions), "4", 1, 10000,
     "partitions of an auto-created topic"},
    {"auto-create-topics", SK_CONF_BOOL, offsetof(broker_config_t, auto_create_topics), "true", 0, 1,
     "create a topic when a client asks for its metadata and allows it"},
    {"segment-bytes", SK_CONF_SIZE, offsetof(broker_config_t, segment_bytes), "64m", 4096, 1LL << 31,
     "roll a partition's segment file when it would grow past this"},
    {"segment-ms", SK_CONF_INT, offsetof(broker_config_t, segment_ms), "604800000", -1, INT64_MAX,
     "roll a segment once it is this old (-1: never), so time retention can delete it"},
    {"retention-ms", SK_CONF_INT, offsetof(broker_config_t, retention_ms), "604800000", -1, INT64_MAX,
     "delete whole segments whose newest record is older than this (-1: keep forever)"},
    {"retention-bytes", SK_CONF_SIZE, offsetof(broker_config_t, retention_bytes), "-1", -1, INT64_MAX,
     "delete the oldest segments while a partition stays above this size (-1: no limit)"},
    {"retention-check-ms", SK_CONF_INT, offsetof(broker_config_t, retention_check_ms), "300000", 10, DAY_MS,
     "how often retention runs"},
    {"index-interval-bytes", SK_CONF_SIZE, offsetof(broker_config_t, index_interval_bytes), "4k", 1, 1 << 30,
     "bytes of log between two entries of the sparse offset index"},
    {"flush-ms", SK_CONF_INT, offsetof(broker_config_t, flush_ms), "1000", 0, DAY_MS,
     "fsync written data at most this often; 0 fsyncs before answering acks=all produce and commits"},
    {"max-request-bytes", SK_CONF_SIZE, offsetof(broker_config_t, max_request_bytes), "64m", 1024, 1LL << 30,
     "largest Kafka request accepted; a larger one closes its connection"},
    {"group-min-session-timeout-ms", SK_CONF_INT, offsetof(broker_config_t, group_min_session_timeout_ms), "1000", 1,
     3600000, "smallest session.timeout.ms a consumer group member may ask for"},
    {"group-max-session-timeout-ms", SK_CONF_INT, offsetof(broker_config_t, group_max_session_timeout_ms), "1800000",
     1, 86400000, "largest session.timeout.ms a consumer group member may ask for"},
    {"group-initial-rebalance-delay-ms", SK_CONF_INT, offsetof(broker_config_t, group_initial_rebalance_delay_ms),
     "500", 0, 300000, "how long a new group waits for more members before its first rebalance"},
    {"log-level", SK_CONF_STR, offsetof(broker_config_t, log_level), "info", 0, 0,
     "debug, info, warn or error"},
    {"trace-requests", SK_CONF_STR, offsetof(broker_config_t, trace_requests), "", 0, 0,
     "debugging: write every request frame to this directory (for fuzzing seeds)"},
    {"kv-listen", SK_CONF_STR, offsetof(broker_config_t, kv_listen), "127.0.0.1:6379", 0, 0,
     "address of the key store (Redis protocol, RESP2; IP:PORT, port 0 picks one; empty: no key store)"},
    {"kv-password", SK_CONF_STR, offsetof(broker_config_t, kv_password), "", 0, 0,
     "password that key-store clients must give with AUTH (empty: none)"},
    {"kv-fsync", SK_CONF_STR, offsetof(broker_config_t, kv_fsync), "everysec", 0, 0,
     "when the key store's append-only file is fsynced: always (before replying), everysec or no"},
    {"kv-maxmemory", SK_CONF_SIZE, offsetof(broker_config_t, kv_maxmemory), "256m", 0, INT64_MAX,
     "memory the key store may use; past it writes fail with -OOM (noeviction; 0: no limit)"},
    {"kv-aof-rewrite-min-size", SK_CONF_SIZE, offsetof(broker_config_t, kv_aof_rewrite_min_size), "64m", 0,
     INT64_MAX, "the append-only file is rewritten when it is past twice the live data and this size"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sk_conf_prog_t broker_prog = {
    "souk-broker",
    "souk's log broker: topics and partitions over the Kafka wire protocol (kcat and\n"
    "librdkafka work unchanged), with committed consumer offsets.",
    NULL, 0};

typedef struct app_s {
    broker_t b;
    kp_server_t *srv;
    struct event *flush_ev, *retention_ev, *group_ev, *sigterm_ev, *sigint_ev, *drain_ev;
    int64_t drain_deadline;
} app_t;

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    log_flush_dirty(a->b.log);
    offsets_flush(a->b.offsets);
}

static void retention_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    log_retention_run(a->b.log, sk_wall_ms());
}

static void group_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    grp_tick(kp_groups(&a->b), sk_mono_ms());
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    if (kp_server_pending_output(a->srv) + kv_server_pending_output(a->b.kv) == 0 ||
        sk_mono_ms() >= a->drain_deadline)
        event_base_loopbreak(a->b.base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    app_t *a = arg;
    if (a->b.shutting_down) return;
    a->b.shutting_down = 1;
    sk_info("broker", "received %s: finishing requests in flight, then flushing to disk",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    kp_server_stop_accepting(a->srv);
    kv_server_stop_accepting(a->b.kv);
    a->drain_deadline = sk_mono_ms() + 3000;
    a->drain_ev = event_new(a->b.base, -1, EV_PERSIST, drain_cb, a);
    struct timeval tv = {0, 20000};
    event_add(a->drain_ev, &tv);
}

static struct event *add_timer(app_t *a, int64_t ms, event_callback_fn fn)
{
    struct event *ev = event_new(a->b.base, -1, EV_PERSIST, fn, a);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(ev, &tv);
    return ev;
}

int main(int argc, char **argv)
{
    app_t a;
    char err[512];
    int rc = 1;
    memset(&a, 0, sizeof a);
    sk_log_set_service("broker");
    switch (sk_conf_load(&broker_prog, broker_conf, &a.b.cfg, argc, argv, NULL, NULL, err, sizeof err)) {
    case SK_CONF_EXIT:
        sk_conf_release(broker_conf, &a.b.cfg);
        return 0;
    case SK_CONF_ERROR:
        fprintf(stderr, "souk-broker: %s\n", err);
        sk_conf_release(broker_conf, &a.b.cfg);
        return 2;
    }
    int lvl = sk_log_level_parse(a.b.cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "souk-broker: --log-level must be debug, info, warn or error\n");
        sk_conf_release(broker_conf, &a.b.cfg);
        return 2;
    }
    sk_log_set_level((sk_log_level_t)lvl);
    signal(SIGPIPE, SIG_IGN);
    a.b.node_id = 1;

    log_config_t lc = {
        .dir = a.b.cfg.data_dir,
        .default_partitions = (int32_t)a.b.cfg.partitions,
        .segment_bytes = a.b.cfg.segment_bytes,
        .segment_ms = a.b.cfg.segment_ms,
        .retention_ms = a.b.cfg.retention_ms,
        .retention_bytes = a.b.cfg.retention_bytes,
        .index_interval_bytes = a.b.cfg.index_interval_bytes,
    };
    a.b.log = log_open(&lc, err, sizeof err);
    if (!a.b.log) {
        sk_error("broker", "%s", err);
        goto out;
    }
    a.b.offsets = offsets_open(a.b.cfg.data_dir, err, sizeof err);
    if (!a.b.offsets) {
        sk_error("broker", "%s", err);
        goto out;
    }
    a.b.base = event_base_new();
    if (!a.b.base) {
        sk_error("broker", "cannot create the event loop");
        goto out;
    }
    a.srv = kp_server_new(&a.b, err, sizeof err);
    if (!a.srv) {
        sk_error("broker", "%s", err);
        goto out;
    }
    if (*a.b.cfg.kv_listen) {
        a.b.kv = kv_server_new(&a.b, err, sizeof err);
        if (!a.b.kv) {
            sk_error("broker", "key store: %s", err);
            goto out;
        }
    }
    if (a.b.cfg.flush_ms > 0) a.flush_ev = add_timer(&a, a.b.cfg.flush_ms, flush_cb);
    a.retention_ev = add_timer(&a, a.b.cfg.retention_check_ms, retention_cb);
    a.group_ev = add_timer(&a, 100, group_tick_cb);
    a.sigterm_ev = evsignal_new(a.b.base, SIGTERM, signal_cb, &a);
    a.sigint_ev = evsignal_new(a.b.base, SIGINT, signal_cb, &a);
    event_add(a.sigterm_ev, NULL);
    event_add(a.sigint_ev, NULL);
    log_retention_run(a.b.log, sk_wall_ms());

    const char *kv_addr = a.b.kv ? kv_server_address(a.b.kv) : "off";
    sk_info("broker", "listening: kafka=%s advertised=%s:%d kv=%s data-dir=%s flush-ms=%lld",
            kp_server_address(a.srv), a.b.adv_host, a.b.adv_port, kv_addr, a.b.cfg.data_dir,
            (long long)a.b.cfg.flush_ms);
    printf("souk-broker %s: Kafka protocol on %s (advertised as %s:%d), key store (RESP) on %s, data in %s\n",
           SOUK_VERSION, kp_server_address(a.srv), a.b.adv_host, a.b.adv_port, kv_addr, a.b.cfg.data_dir);
    fflush(stdout);

    event_base_dispatch(a.b.base);
    rc = 0;
    sk_info("broker", "stopped cleanly");
out:
    kp_server_free(a.srv);
    kv_server_free(a.b.kv); /* writes and fsyncs the AOF; before the log closes */
    if (a.flush_ev) event_free(a.flush_ev);
    if (a.retention_ev) event_free(a.retention_ev);
    if (a.group_ev) event_free(a.group_ev);
    grp_coord_free(a.b.groups);
    if (a.sigterm_ev) event_free(a.sigterm_ev);
    if (a.sigint_ev) event_free(a.sigint_ev);
    if (a.drain_ev) event_free(a.drain_ev);
    offsets_close(a.b.offsets);
    log_close(a.b.log);
    if (a.b.base) event_base_free(a.b.base);
    free(a.b.adv_host);
    sk_conf_release(broker_conf, &a.b.cfg);
    return rc;
}
