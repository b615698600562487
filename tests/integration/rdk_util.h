/*
 * rdk_util.h - small helpers shared by the librdkafka integration test
 * programs (rdk_*.c).  Header-only: every function is static.
 *
 * Set RDK_DEBUG to a list of librdkafka debug contexts (e.g. "msg,protocol")
 * to see what the client does.
 *
 * The programs print "<prog>: ..." lines on stderr and exit 1 on the first
 * failed check (die()), so the calling script sees a clear message.
 */
#ifndef SOUK_RDK_UTIL_H
#define SOUK_RDK_UTIL_H

#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *rdk_prog = "rdk";

static inline void rdk_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void rdk_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: FAIL: ", rdk_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static inline void rdk_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void rdk_note(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", rdk_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static inline int64_t rdk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sets one property or dies. */
static inline void rdk_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK)
        rdk_die("config %s=%s: %s", name, value, err);
}

/* A new configuration for the broker at bootstrap, with the settings every
 * test program shares. */
static inline rd_kafka_conf_t *rdk_conf_new(const char *bootstrap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rdk_set(conf, "bootstrap.servers", bootstrap);
    rdk_set(conf, "client.id", rdk_prog);
    rdk_set(conf, "broker.address.family", "v4");
    /* RDK_DEBUG=msg,protocol,... turns on librdkafka's debug contexts. */
    const char *dbg = getenv("RDK_DEBUG");
    if (dbg && *dbg) rdk_set(conf, "debug", dbg);
    return conf;
}

/* Creates a handle (taking conf) or dies. */
static inline rd_kafka_t *rdk_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) rdk_die("rd_kafka_new: %s", err);
    return rk;
}

/* Number of partitions of topic, from a metadata request (dies on error). */
static inline int rdk_partition_count(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (err) rdk_die("metadata for %s: %s", topic, rd_kafka_err2str(err));
    if (md->topic_cnt != 1 || md->topics[0].err)
        rdk_die("metadata for %s: %s", topic,
                md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "no topic returned");
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

#endif
