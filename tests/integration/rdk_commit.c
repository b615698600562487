/*
 * rdk_commit - committed consumer offsets through souk-broker, with a
 * librdkafka consumer that has a group.id but assigns its partitions itself
 * (rd_kafka_assign(), no subscribe: no group membership), with
 * enable.auto.commit=false.
 *
 *   rdk_commit first  BOOTSTRAP TOPIC GROUP OFFSETS_FILE
 *   rdk_commit second BOOTSTRAP TOPIC GROUP OFFSETS_FILE
 *
 * first: the group must have no committed offsets yet (rd_kafka_committed()
 * says so, and assigning RD_KAFKA_OFFSET_STORED starts at offset 0 through
 * auto.offset.reset=earliest).  It consumes part of every partition, a
 * different fraction for each (so a mixed-up partition shows), commits
 * synchronously with rd_kafka_commit(), checks rd_kafka_committed() returns
 * the same offsets, and writes "partition committed_offset high_watermark"
 * lines to OFFSETS_FILE.
 *
 * second (typically after a broker restart): rd_kafka_committed() must return
 * the offsets in OFFSETS_FILE; assigning RD_KAFKA_OFFSET_STORED must resume
 * each partition exactly at its committed offset and deliver every later
 * message once, in order, up to the high watermark.  It commits nothing.
 *
 * Exits 0 when all checks pass, 1 with a "FAIL:" line otherwise.
 */
#include <inttypes.h>

#include "rdk_util.h"

#define MAX_PARTS 64

static const char *topic;

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    rdk_die("client error: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static rd_kafka_t *consumer_new(const char *bootstrap, const char *group)
{
    rd_kafka_conf_t *conf = rdk_conf_new(bootstrap);
    rdk_set(conf, "group.id", group);
    rdk_set(conf, "enable.auto.commit", "false");
    rdk_set(conf, "enable.auto.offset.store", "false");
    rdk_set(conf, "auto.offset.reset", "earliest");
    rdk_set(conf, "enable.partition.eof", "true");
    rdk_set(conf, "check.crcs", "true");
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_t *rk = rdk_new(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static rd_kafka_topic_partition_list_t *all_partitions(int np, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = offset;
    return l;
}

/* Fills committed[p] from rd_kafka_committed() (RD_KAFKA_OFFSET_INVALID when
 * the group has no commit for p). */
static void get_committed(rd_kafka_t *rk, int np, int64_t *committed)
{
    rd_kafka_topic_partition_list_t *l = all_partitions(np, RD_KAFKA_OFFSET_INVALID);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, 10000);
    if (err) rdk_die("rd_kafka_committed: %s", rd_kafka_err2str(err));
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &l->elems[i];
        if (tp->err) rdk_die("rd_kafka_committed [%d]: %s", (int)tp->partition, rd_kafka_err2str(tp->err));
        if (tp->partition < 0 || tp->partition >= np) rdk_die("rd_kafka_committed: partition %d", (int)tp->partition);
        committed[tp->partition] = tp->offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void get_watermarks(rd_kafka_t *rk, int np, int64_t *hw)
{
    for (int p = 0; p < np; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        if (err) rdk_die("watermarks of %s [%d]: %s", topic, p, rd_kafka_err2str(err));
        if (lo != 0) rdk_die("%s [%d]: log start offset %" PRId64 ", expected 0", topic, p, lo);
        hw[p] = hi;
    }
}

/*
 * Assigns every partition at RD_KAFKA_OFFSET_STORED and consumes.  first[p]
 * must be the offset of the first message of partition p (or hw[p] when it
 * has none left); consumption continues without gaps until every partition
 * has reached stop[p] (<= hw[p]).  Messages at or past stop[p] that were
 * already fetched are ignored.
 */
static void consume_range(rd_kafka_t *rk, int np, const int64_t *first, const int64_t *stop, const int64_t *hw)
{
    int64_t next[MAX_PARTS];
    int done = 0, eof[MAX_PARTS] = {0};
    rd_kafka_topic_partition_list_t *l = all_partitions(np, RD_KAFKA_OFFSET_STORED);
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) rdk_die("rd_kafka_assign: %s", rd_kafka_err2str(err));
    for (int p = 0; p < np; p++) {
        next[p] = -1;
        if (stop[p] <= first[p]) done++;
    }
    int64_t deadline = rdk_now_ms() + 60000;
    while (done < np) {
        if (rdk_now_ms() > deadline) rdk_die("%d of %d partitions consumed after 60 s", done, np);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        int p = m->partition;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p >= 0 && p < np && m->offset != hw[p])
                rdk_die("[%d]: end of partition at %" PRId64 ", high watermark is %" PRId64, p, m->offset, hw[p]);
            if (p >= 0 && p < np && !eof[p]++ && next[p] < 0 && first[p] != hw[p])
                rdk_die("[%d]: at the end (%" PRId64 ") without a message; expected the first at %" PRId64, p,
                        hw[p], first[p]);
        } else if (m->err) {
            rdk_die("consume [%d]: %s", p, rd_kafka_message_errstr(m));
        } else {
            if (p < 0 || p >= np) rdk_die("message from partition %d", p);
            if (next[p] < 0) {
                if (m->offset != first[p])
                    rdk_die("[%d]: first message at offset %" PRId64 ", expected %" PRId64, p, m->offset, first[p]);
                next[p] = m->offset;
            }
            if (m->offset < stop[p]) {
                if (m->offset != next[p])
                    rdk_die("[%d]: offset %" PRId64 " after %" PRId64, p, m->offset, next[p] - 1);
                next[p]++;
                if (next[p] == stop[p]) done++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    err = rd_kafka_assign(rk, NULL);
    if (err) rdk_die("rd_kafka_assign(NULL): %s", rd_kafka_err2str(err));
}

static void close_consumer(rd_kafka_t *rk)
{
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk);
    if (err) rdk_die("rd_kafka_consumer_close: %s", rd_kafka_err2str(err));
    rd_kafka_destroy(rk);
}

static int run_first(const char *bootstrap, const char *group, const char *path)
{
    rd_kafka_t *rk = consumer_new(bootstrap, group);
    int np = rdk_partition_count(rk, topic);
    if (np < 1 || np > MAX_PARTS) rdk_die("%s has %d partitions", topic, np);
    int64_t committed[MAX_PARTS], hw[MAX_PARTS], zero[MAX_PARTS], target[MAX_PARTS];
    get_watermarks(rk, np, hw);
    get_committed(rk, np, committed);
    for (int p = 0; p < np; p++) {
        if (committed[p] != RD_KAFKA_OFFSET_INVALID)
            rdk_die("group %s already has offset %" PRId64 " committed for [%d]", group, committed[p], p);
        if (hw[p] < 2) rdk_die("[%d] has %" PRId64 " messages; the test needs at least 2", p, hw[p]);
        zero[p] = 0;
        target[p] = hw[p] * (p + 1) / (np + 1);
        if (target[p] < 1) target[p] = 1;
    }
    consume_range(rk, np, zero, target, hw);

    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = target[p];
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, l, 0 /* synchronous */);
    if (err) rdk_die("rd_kafka_commit: %s", rd_kafka_err2str(err));
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].err)
            rdk_die("rd_kafka_commit [%d]: %s", (int)l->elems[i].partition, rd_kafka_err2str(l->elems[i].err));
    rd_kafka_topic_partition_list_destroy(l);

    get_committed(rk, np, committed);
    FILE *f = fopen(path, "w");
    if (!f) rdk_die("%s: cannot write", path);
    for (int p = 0; p < np; p++) {
        if (committed[p] != target[p])
            rdk_die("[%d]: committed %" PRId64 " but rd_kafka_committed() returns %" PRId64, p, target[p],
                    committed[p]);
        fprintf(f, "%d %" PRId64 " %" PRId64 "\n", p, target[p], hw[p]);
        rdk_note("group %s [%d]: consumed 0..%" PRId64 " of %" PRId64 ", committed %" PRId64, group, p,
                 target[p] - 1, hw[p], target[p]);
    }
    if (fclose(f) != 0) rdk_die("%s: write error", path);
    close_consumer(rk);
    return 0;
}

static int run_second(const char *bootstrap, const char *group, const char *path)
{
    int64_t want[MAX_PARTS], hw_then[MAX_PARTS], committed[MAX_PARTS], hw[MAX_PARTS];
    int np = 0;
    FILE *f = fopen(path, "r");
    if (!f) rdk_die("%s: cannot read", path);
    int p;
    int64_t off, hwv;
    while (np < MAX_PARTS && fscanf(f, "%d %" SCNd64 " %" SCNd64, &p, &off, &hwv) == 3) {
        if (p != np) rdk_die("%s: partitions out of order", path);
        want[np] = off;
        hw_then[np] = hwv;
        np++;
    }
    fclose(f);
    if (np == 0) rdk_die("%s: no offsets", path);

    rd_kafka_t *rk = consumer_new(bootstrap, group);
    int n = rdk_partition_count(rk, topic);
    if (n != np) rdk_die("%s has %d partitions, %d before", topic, n, np);
    get_watermarks(rk, np, hw);
    get_committed(rk, np, committed);
    for (p = 0; p < np; p++) {
        if (committed[p] != want[p])
            rdk_die("group %s [%d]: committed offset is %" PRId64 ", expected %" PRId64, group, p, committed[p],
                    want[p]);
        if (hw[p] < hw_then[p])
            rdk_die("[%d]: high watermark went back from %" PRId64 " to %" PRId64, p, hw_then[p], hw[p]);
    }
    consume_range(rk, np, want, hw, hw);
    for (p = 0; p < np; p++)
        rdk_note("group %s [%d]: resumed at committed offset %" PRId64 ", consumed to %" PRId64, group, p, want[p],
                 hw[p]);
    close_consumer(rk);
    return 0;
}

int main(int argc, char **argv)
{
    rdk_prog = "rdk_commit";
    if (argc != 6) {
        fprintf(stderr, "usage: rdk_commit first|second BOOTSTRAP TOPIC GROUP OFFSETS_FILE\n");
        return 2;
    }
    topic = argv[3];
    int rc;
    if (!strcmp(argv[1], "first")) rc = run_first(argv[2], argv[4], argv[5]);
    else if (!strcmp(argv[1], "second")) rc = run_second(argv[2], argv[4], argv[5]);
    else rdk_die("unknown mode %s", argv[1]);
    if (rc == 0) printf("rdk_commit %s: OK\n", argv[1]);
    return rc;
}
