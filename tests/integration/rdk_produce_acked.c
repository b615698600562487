/*
 * rdk_produce_acked - produces keyed messages with acks=all as fast as the
 * broker takes them and records every acknowledged key, for crash tests.
 *
 *   rdk_produce_acked BOOTSTRAP TOPIC ACKED_FILE MAX_SECONDS
 *
 * Message i has key "k<i>" and a value that repeats the key.  As soon as a
 * delivery report says a message was acknowledged, its key goes to
 * ACKED_FILE, one per line (the file is flushed after every poll, so it is
 * current while the program runs).  The program stops producing after
 * MAX_SECONDS or at the first failed delivery (the broker was killed), waits
 * for the outstanding messages to be acknowledged or to fail
 * (message.timeout.ms is 5 s), and exits 0.  It exits 1 only when it could
 * not run at all (bad arguments, a failed write of ACKED_FILE, a flush that
 * never ends).  The last stderr line gives the counts.
 */
#include <inttypes.h>

#include "rdk_util.h"

#define MAX_IN_FLIGHT 20000

static FILE *acked_file;
static int64_t n_acked, n_failed;
static rd_kafka_resp_err_t first_err;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (!n_failed++) first_err = m->err;
        return;
    }
    n_acked++;
    if (fwrite(m->key, 1, m->key_len, acked_file) != m->key_len || fputc('\n', acked_file) == EOF)
        rdk_die("cannot write the acked file");
}

static void poll_and_flush(rd_kafka_t *rk, int ms)
{
    rd_kafka_poll(rk, ms);
    if (fflush(acked_file) != 0) rdk_die("cannot write the acked file");
}

/* Broker-down errors are expected once the broker is killed: log them only. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    rdk_note("client error (expected after the broker dies): %s: %s",
             rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

int main(int argc, char **argv)
{
    rdk_prog = "rdk_produce_acked";
    if (argc != 5) {
        fprintf(stderr, "usage: rdk_produce_acked BOOTSTRAP TOPIC ACKED_FILE MAX_SECONDS\n");
        return 2;
    }
    const char *topic = argv[2];
    int max_s = atoi(argv[4]);
    if (max_s < 1) rdk_die("MAX_SECONDS must be >= 1");
    acked_file = fopen(argv[3], "w");
    if (!acked_file) rdk_die("%s: cannot create", argv[3]);

    rd_kafka_conf_t *conf = rdk_conf_new(argv[1]);
    rdk_set(conf, "acks", "all");
    rdk_set(conf, "linger.ms", "2");
    rdk_set(conf, "message.timeout.ms", "5000");
    rdk_set(conf, "reconnect.backoff.max.ms", "500");
    rdk_set(conf, "log_level", "3"); /* connection refused is expected: keep stderr short */
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_t *rk = rdk_new(RD_KAFKA_PRODUCER, conf);

    char key[32], value[256];
    int64_t i = 0, t0 = rdk_now_ms(), end = t0 + (int64_t)max_s * 1000;
    while (!n_failed && rdk_now_ms() < end) {
        if (i - n_acked - n_failed >= MAX_IN_FLIGHT) {
            poll_and_flush(rk, 5);
            continue;
        }
        int klen = snprintf(key, sizeof key, "k%" PRId64, i);
        int vlen = snprintf(value, sizeof value, "value of %s: %s %s %s %s", key,
                            "0123456789abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "<>?!@#$%^&*()",
                            key);
        rd_kafka_resp_err_t err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, (size_t)klen),
                                                    RD_KAFKA_V_VALUE(value, (size_t)vlen),
                                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            poll_and_flush(rk, 5);
            continue;
        }
        if (err) rdk_die("producev: %s", rd_kafka_err2str(err));
        i++;
        if (i % 256 == 0) poll_and_flush(rk, 0);
    }
    int64_t t_stop = rdk_now_ms();
    rdk_note("stopped producing after %" PRId64 " ms (%s); waiting for %" PRId64 " outstanding messages",
             t_stop - t0, n_failed ? "a delivery failed" : "time is up", i - n_acked - n_failed);
    /* Every message is acknowledged or fails within message.timeout.ms. */
    int64_t flush_end = t_stop + 30000;
    while (rd_kafka_outq_len(rk) > 0 && rdk_now_ms() < flush_end) poll_and_flush(rk, 100);
    poll_and_flush(rk, 0);
    if (rd_kafka_outq_len(rk) > 0) rdk_die("%d messages still queued 30 s after stopping", rd_kafka_outq_len(rk));
    rd_kafka_destroy(rk);
    if (fclose(acked_file) != 0) rdk_die("cannot write the acked file");
    rdk_note("produced %" PRId64 ", acknowledged %" PRId64 ", failed %" PRId64 "%s%s", i, n_acked, n_failed,
             n_failed ? "; first error: " : "", n_failed ? rd_kafka_err2str(first_err) : "");
    if (n_acked + n_failed != i) rdk_die("%" PRId64 " messages without a delivery report", i - n_acked - n_failed);
    return 0;
}
