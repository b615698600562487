/*
 * kbench - throughput of a Kafka-protocol broker through librdkafka.
 *
 *   kbench produce BOOTSTRAP TOPIC [COUNT [VALUE_BYTES]]
 *   kbench consume BOOTSTRAP TOPIC [COUNT]
 *
 * produce sends COUNT (default 1000000) messages of VALUE_BYTES (default
 * 128) with acks=all, batched for throughput, waits for every delivery
 * report and fails if any message was not delivered.  consume assign()s every
 * partition of TOPIC from the beginning and reads, with the batch API
 * (rd_kafka_consume_batch_queue), until COUNT messages have arrived (or 30 s
 * pass without one).  Each prints one line:
 *
 *   produce: 1000000 msgs 128 B in 1.234 s: 810372 msgs/s 103.73 MB/s
 *
 * MB/s counts value bytes only (10^6 bytes per MB).  Exit status 0 on success.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 10000 /* messages per rd_kafka_consume_batch_queue() */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kbench: %s=%s: %s\n", k, v, err);
        return -1;
    }
    return 0;
}

static void report(const char *what, long n, size_t vlen, double secs)
{
    printf("%s: %ld msgs %zu B in %.3f s: %.0f msgs/s %.2f MB/s\n", what, n, vlen, secs,
           (double)n / secs, (double)n * (double)vlen / secs / 1e6);
    fflush(stdout);
}

typedef struct {
    long delivered, failed;
    rd_kafka_resp_err_t first_err;
} dr_state_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    dr_state_t *st = opaque;
    if (m->err) {
        if (!st->failed) st->first_err = m->err;
        st->failed++;
    } else {
        st->delivered++;
    }
}

static int do_produce(const char *bootstrap, const char *topic, long count, size_t vlen)
{
    char err[512];
    dr_state_t st = {0, 0, RD_KAFKA_RESP_ERR_NO_ERROR};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", bootstrap) || conf_set(conf, "acks", "all") ||
        conf_set(conf, "linger.ms", "10") || conf_set(conf, "batch.size", "1048576") ||
        conf_set(conf, "batch.num.messages", "100000") ||
        conf_set(conf, "queue.buffering.max.messages", "2000000") ||
        conf_set(conf, "queue.buffering.max.kbytes", "1048576") ||
        conf_set(conf, "compression.codec", "none") ||
        conf_set(conf, "enable.idempotence", "false") ||
        conf_set(conf, "message.max.bytes", "2000000")) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kbench: %s\n", err);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char *value = malloc(vlen ? vlen : 1);
    if (!value) abort();
    for (size_t i = 0; i < vlen; i++)
        value[i] = (char)('a' + i % 26);

    /* Metadata first, so that topic auto-creation is not timed. */
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);

    double t0 = now_s();
    for (long i = 0; i < count; i++) {
        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value, vlen, NULL,
                                0, NULL) == -1) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "kbench: produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
                goto out;
            }
            rd_kafka_poll(rk, 10);
        }
        if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
    }
    while (st.delivered + st.failed < count)
        rd_kafka_poll(rk, 50);
    double secs = now_s() - t0;
    if (st.failed) {
        fprintf(stderr, "kbench: %ld of %ld messages failed (first: %s)\n", st.failed, count,
                rd_kafka_err2str(st.first_err));
    } else {
        report("produce", count, vlen, secs);
    }
out:
    rd_kafka_flush(rk, 10000);
    free(value);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return st.failed || st.delivered != count ? 1 : 0;
}

/* Whether partition id is in the comma-separated list (NULL: all). */
static int part_selected(const char *list, int id)
{
    if (!list) return 1;
    for (const char *p = list; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return 0;
        if (v == id) return 1;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* count 0: consume what the selected partitions hold now (from their
 * watermarks).  parts: comma-separated partition ids, NULL for all. */
static int do_consume(const char *bootstrap, const char *topic, long count, const char *parts)
{
    char err[512];
    int rc = 1;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* 1 MiB per partition: measured faster than 8 MiB, whose response
     * buffers cost librdkafka fresh pages (page faults) on every fetch. */
    if (conf_set(conf, "bootstrap.servers", bootstrap) || conf_set(conf, "group.id", "kbench") ||
        conf_set(conf, "enable.auto.commit", "false") ||
        conf_set(conf, "enable.partition.eof", "false") ||
        conf_set(conf, "fetch.max.bytes", "52428800") ||
        conf_set(conf, "max.partition.fetch.bytes", "1048576") ||
        conf_set(conf, "fetch.wait.max.ms", "100") ||
        conf_set(conf, "queued.min.messages", "1000000") ||
        conf_set(conf, "queued.max.messages.kbytes", "1048576") ||
        conf_set(conf, "check.crcs", "false")) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kbench: %s\n", err);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "kbench: metadata for %s: %s\n", topic,
                rd_kafka_err2str(e               ? e
                                 : md->topic_cnt ? md->topics[0].err
                                                 : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        if (md) rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return 1;
    }
    int nparts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    long have = 0;
    for (int i = 0; i < nparts; i++) {
        int32_t id = md->topics[0].partitions[i].id;
        if (!part_selected(parts, id)) continue;
        rd_kafka_topic_partition_list_add(l, topic, id)->offset = RD_KAFKA_OFFSET_BEGINNING;
        int64_t lo = 0, hi = 0;
        if (count == 0 && rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, 10000) == 0) have += hi - lo;
    }
    if (count == 0) count = have;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);

    long got = 0;
    size_t bytes = 0, vlen = 0;
    int idle = 0;
    rd_kafka_message_t *msgs[BATCH];
    double t0 = now_s();
    if ((e = rd_kafka_assign(rk, l))) {
        fprintf(stderr, "kbench: assign: %s\n", rd_kafka_err2str(e));
        goto out;
    }
    /* Messages in batches from the consumer queue: one queue lock and no
     * clock read per message, so the client costs less than the broker. */
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    while (got < count) {
        ssize_t k = rd_kafka_consume_batch_queue(q, 100, msgs, BATCH);
        if (k < 0) {
            fprintf(stderr, "kbench: consume: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
            break;
        }
        if (k == 0 && ++idle >= 300) {
            fprintf(stderr, "kbench: consume: only %ld of %ld messages after 30 s idle\n", got,
                    count);
            break;
        }
        if (k > 0) idle = 0;
        for (ssize_t i = 0; i < k; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) {
                fprintf(stderr, "kbench: consume: %s\n", rd_kafka_message_errstr(m));
            } else {
                got++;
                bytes += m->len;
                vlen = m->len;
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_queue_destroy(q);
    if (got < count) goto out;
    double secs = now_s() - t0;
    printf("consume: %ld msgs %zu B in %.3f s: %.0f msgs/s %.2f MB/s\n", got, vlen, secs,
           (double)got / secs, (double)bytes / secs / 1e6);
    fflush(stdout);
    rc = 0;
out:
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "produce") && strcmp(argv[1], "consume"))) {
        fprintf(stderr, "usage: kbench produce BOOTSTRAP TOPIC [COUNT [VALUE_BYTES]]\n"
                        "       kbench consume BOOTSTRAP TOPIC [COUNT [PARTITIONS]]\n"
                        "(consume: COUNT 0 = what the partitions hold; PARTITIONS e.g. 0,2)\n");
        return 2;
    }
    long count = argc > 4 ? strtol(argv[4], NULL, 10) : 1000000;
    size_t vlen = argc > 5 ? (size_t)strtoul(argv[5], NULL, 10) : 128;
    if (count < 0 || (count == 0 && !strcmp(argv[1], "produce"))) {
        fprintf(stderr, "kbench: COUNT must be positive\n");
        return 2;
    }
    if (!strcmp(argv[1], "produce")) return do_produce(argv[2], argv[3], count, vlen);
    return do_consume(argv[2], argv[3], count, argc > 5 ? argv[5] : NULL);
}
