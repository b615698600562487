/*
 * broker.h - the souk-broker process context, shared by its modules.
 *
 * One broker_t per process, owned by main.c and passed to every module (no
 * globals).  The event loop is single-threaded: every field is touched only
 * from it.
 */
#ifndef SOUK_BROKER_H
#define SOUK_BROKER_H

#include <stdint.h>

#include "log/log.h"
#include "group/offsets.h"

struct event_base;
struct event;
struct kp_fetch_s;
struct kv_server_s;
struct grp_coord_s;

typedef struct broker_config_s {
    char *data_dir;
    char *kafka_listen;
    char *advertised_listener;
    int64_t partitions;
    int64_t segment_bytes;
    int64_t segment_ms;
    int64_t retention_ms;
    int64_t retention_bytes;
    int64_t retention_check_ms;
    int64_t index_interval_bytes;
    int64_t flush_ms;
    int64_t max_request_bytes;
    int auto_create_topics;
    char *log_level;
    char *trace_requests;
    int64_t group_min_session_timeout_ms;
    int64_t group_max_session_timeout_ms;
    int64_t group_initial_rebalance_delay_ms;
    /* The key store (kv/server.h). */
    char *kv_listen;   /* "" disables it */
    char *kv_password; /* "" means no AUTH */
    char *kv_fsync;    /* always | everysec | no */
    int64_t kv_maxmemory;
    int64_t kv_aof_rewrite_min_size;
} broker_config_t;

typedef struct broker_s {
    broker_config_t cfg;
    log_t *log;
    offsets_t *offsets;
    struct event_base *base; /* NULL when handlers run without a server (fuzzing) */
    char *adv_host;
    int adv_port;
    int32_t node_id;
    /* Fetches waiting for data (long polling); see kafka/server.c. */
    struct kp_fetch_s *fetch_waiters;
    struct event *wake_ev;
    /* Consumer groups; created on first use (see kp_groups()). */
    struct grp_coord_s *groups;
    /* The key store; NULL when --kv-listen is empty. */
    struct kv_server_s *kv;
    int shutting_down;
} broker_t;

#endif
