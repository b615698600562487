/*
 * rdk_compression - produces and consumes keyed messages through
 * souk-broker with each compression.codec librdkafka offers.
 *
 *   rdk_compression BOOTSTRAP TOPIC_PREFIX N [DATA_DIR]
 *
 * For each codec (none, gzip, snappy, lz4, zstd) it produces N keyed
 * messages with acks=all into topic "<TOPIC_PREFIX>-<codec>" and waits for
 * every delivery report (any failure is fatal), then consumes the topic from
 * the beginning with a new handle (the legacy partition consumer, no group)
 * and checks that every message arrived exactly once, with its key and value
 * intact, at the partition and offset its delivery report gave.  With
 * DATA_DIR it also reads the broker's segment files and checks that the
 * batches were stored with the codec's attribute bits, i.e. that librdkafka
 * really compressed them (librdkafka silently sends uncompressed batches when
 * the broker's Produce version range rules compression out).
 *
 * Exits 0 when all checks pass, 1 with a "FAIL:" line otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rdk_util.h"

#define MAX_VALUE 2048

typedef struct msg_state_s {
    int delivered, consumed;
    int32_t partition;
    int64_t offset;
} msg_state_t;

static msg_state_t *states;
static int nmsgs;
static int dr_errors;

/* Value of message i: a header naming codec and index, compressible text,
 * and eight bytes of binary (including NUL).  Returns its length. */
static size_t make_value(const char *codec, int i, char *buf)
{
    int n = snprintf(buf, MAX_VALUE, "codec=%s i=%d ", codec, i);
    int reps = i % 23;
    for (int r = 0; r < reps; r++)
        n += snprintf(buf + n, (size_t)(MAX_VALUE - n), "the quick brown fox %d jumps over the lazy dog. ", r);
    for (int j = 0; j < 8; j++) buf[n++] = (char)((i * 31 + j * 97) & 0xff);
    return (size_t)n;
}

static int key_index(const rd_kafka_message_t *m)
{
    char tmp[32];
    if (!m->key || m->key_len < 3 || m->key_len >= sizeof tmp) return -1;
    memcpy(tmp, m->key, m->key_len);
    tmp[m->key_len] = '\0';
    char *end;
    long v = strtol(tmp + 2, &end, 10);
    if (strncmp(tmp, "k-", 2) != 0 || *end || v < 0 || v >= nmsgs) return -1;
    return (int)v;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (dr_errors++ < 5) rdk_note("delivery failed: %s", rd_kafka_err2str(m->err));
        return;
    }
    int i = key_index(m);
    if (i < 0) rdk_die("delivery report for an unknown key");
    if (states[i].delivered++) rdk_die("two delivery reports for message %d", i);
    states[i].partition = m->partition;
    states[i].offset = m->offset;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    rdk_die("client error: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void produce_all(const char *bootstrap, const char *topic, const char *codec)
{
    rd_kafka_conf_t *conf = rdk_conf_new(bootstrap);
    rdk_set(conf, "compression.codec", codec);
    rdk_set(conf, "acks", "all");
    rdk_set(conf, "linger.ms", "20");
    rdk_set(conf, "message.timeout.ms", "60000");
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_t *rk = rdk_new(RD_KAFKA_PRODUCER, conf);
    char value[MAX_VALUE], key[32];
    int64_t deadline = rdk_now_ms() + 60000;
    for (int i = 0; i < nmsgs; i++) {
        size_t vlen = make_value(codec, i, value);
        int klen = snprintf(key, sizeof key, "k-%d", i);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, (size_t)klen), RD_KAFKA_V_VALUE(value, vlen),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!err) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) rdk_die("producev: %s", rd_kafka_err2str(err));
            if (rdk_now_ms() > deadline) rdk_die("local queue stayed full for 60 s");
            rd_kafka_poll(rk, 100);
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, 60000);
    if (err) rdk_die("flush: %s (%d messages still queued)", rd_kafka_err2str(err), rd_kafka_outq_len(rk));
    rd_kafka_destroy(rk);
    if (dr_errors) rdk_die("%s: %d messages failed", codec, dr_errors);
    for (int i = 0; i < nmsgs; i++) {
        if (states[i].delivered != 1) rdk_die("%s: message %d has no delivery report", codec, i);
        if (states[i].offset < 0) rdk_die("%s: message %d delivered without an offset", codec, i);
    }
}

static void consume_all(const char *bootstrap, const char *topic, const char *codec)
{
    rd_kafka_conf_t *conf = rdk_conf_new(bootstrap);
    rdk_set(conf, "enable.partition.eof", "true");
    rdk_set(conf, "check.crcs", "true");
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_t *rk = rdk_new(RD_KAFKA_CONSUMER, conf);
    int np = rdk_partition_count(rk, topic);
    if (np < 1 || np > 1024) rdk_die("%s has %d partitions", topic, np);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int *eof = calloc((size_t)np, sizeof *eof), neof = 0, got = 0;
    if (!eof) rdk_die("out of memory");
    for (int p = 0; p < np; p++)
        if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) < 0)
            rdk_die("consume_start %s [%d]: %s", topic, p, rd_kafka_err2str(rd_kafka_last_error()));
    char want[MAX_VALUE];
    int64_t deadline = rdk_now_ms() + 60000;
    while (neof < np) {
        if (rdk_now_ms() > deadline)
            rdk_die("%s: consumed %d of %d messages; %d of %d partitions at their end after 60 s", codec, got,
                    nmsgs, neof, np);
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 200);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < np && !eof[m->partition]++) neof++;
        } else if (m->err) {
            rdk_die("%s: consume %s [%d]: %s", codec, topic, (int)m->partition, rd_kafka_message_errstr(m));
        } else {
            int i = key_index(m);
            if (i < 0) rdk_die("%s: message with an unknown key at %d/%" PRId64, codec, (int)m->partition, m->offset);
            msg_state_t *s = &states[i];
            if (s->consumed++) rdk_die("%s: message %d consumed twice", codec, i);
            if (s->partition != m->partition || s->offset != m->offset)
                rdk_die("%s: message %d delivered to %d/%" PRId64 " but consumed at %d/%" PRId64, codec, i,
                        (int)s->partition, s->offset, (int)m->partition, m->offset);
            size_t wlen = make_value(codec, i, want);
            if (m->len != wlen || memcmp(m->payload, want, wlen) != 0)
                rdk_die("%s: message %d: value differs (%zu bytes, expected %zu)", codec, i, m->len, wlen);
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    for (int p = 0; p < np; p++) rd_kafka_consume_stop(rkt, p);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(eof);
    if (got != nmsgs) rdk_die("%s: consumed %d messages, expected %d", codec, got, nmsgs);
}

/* Reads every stored batch of the topic's partitions and checks its codec
 * bits: either the topic's codec or none (librdkafka sends a batch
 * uncompressed when compressing does not make it smaller, as for a batch of
 * one short message), with at least half of the records compressed.
 * Returns the number of batches. */
static int check_stored_codec(const char *data_dir, const char *topic, int codec_id, const char *codec)
{
    int batches = 0;
    long records = 0, compressed = 0;
    for (int p = 0;; p++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s-%d", data_dir, topic, p);
        DIR *d = opendir(dir);
        if (!d) {
            if (p == 0) rdk_die("%s: %s", dir, strerror(errno));
            break;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n < 5 || strcmp(de->d_name + n - 4, ".log") != 0) continue;
            char path[PATH_MAX + 256];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            FILE *f = fopen(path, "rb");
            if (!f) rdk_die("%s: %s", path, strerror(errno));
            unsigned char h[61]; /* the record batch v2 header */
            long pos = 0;
            while (fread(h, 1, sizeof h, f) == sizeof h) {
                uint32_t blen = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
                uint32_t count = (uint32_t)h[57] << 24 | (uint32_t)h[58] << 16 | (uint32_t)h[59] << 8 | h[60];
                int attrs = h[21] << 8 | h[22];
                if (blen < 49 || blen > (1u << 30)) rdk_die("%s: bad batchLength %u at byte %ld", path, blen, pos);
                if (h[16] != 2) rdk_die("%s: magic %d at byte %ld", path, h[16], pos);
                if ((attrs & 7) != codec_id && (attrs & 7) != 0)
                    rdk_die("%s: batch at byte %ld stored with codec %d, expected %d (%s)", path, pos, attrs & 7,
                            codec_id, codec);
                batches++;
                records += count;
                if ((attrs & 7) == codec_id) compressed += count;
                pos += 12 + (long)blen;
                if (fseek(f, pos, SEEK_SET) != 0) rdk_die("%s: seek: %s", path, strerror(errno));
            }
            fclose(f);
        }
        closedir(d);
    }
    if (records != nmsgs) rdk_die("%s: %ld records stored, expected %d", topic, records, nmsgs);
    if (compressed * 2 < records)
        rdk_die("%s: only %ld of %ld records were stored compressed with %s", topic, compressed, records, codec);
    return batches;
}

int main(int argc, char **argv)
{
    static const char *codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    rdk_prog = "rdk_compression";
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: rdk_compression BOOTSTRAP TOPIC_PREFIX N [DATA_DIR]\n");
        return 2;
    }
    const char *bootstrap = argv[1], *prefix = argv[2], *data_dir = argc > 4 ? argv[4] : NULL;
    nmsgs = atoi(argv[3]);
    if (nmsgs < 1 || nmsgs > 10000000) rdk_die("N must be 1..10000000");
    states = calloc((size_t)nmsgs, sizeof *states);
    if (!states) rdk_die("out of memory");
    for (int c = 0; c < 5; c++) {
        char topic[256];
        snprintf(topic, sizeof topic, "%s-%s", prefix, codecs[c]);
        memset(states, 0, (size_t)nmsgs * sizeof *states);
        dr_errors = 0;
        int64_t t0 = rdk_now_ms();
        produce_all(bootstrap, topic, codecs[c]);
        int64_t t1 = rdk_now_ms();
        consume_all(bootstrap, topic, codecs[c]);
        int64_t t2 = rdk_now_ms();
        int batches = data_dir ? check_stored_codec(data_dir, topic, c, codecs[c]) : -1;
        rdk_note("%-6s: %d messages produced (%" PRId64 " ms) and consumed (%" PRId64 " ms); %d stored batches",
                 codecs[c], nmsgs, t1 - t0, t2 - t1, batches);
    }
    free(states);
    printf("rdk_compression: OK\n");
    return 0;
}
