/*
 * rdk_member - one member of a consumer group: librdkafka's high-level
 * consumer (rd_kafka_subscribe), as a service instance would run it.
 *
 *   rdk_member BOOTSTRAP GROUP TOPIC OUT_FILE STATE_FILE MAX_SECONDS [NAME]
 *
 * Settings: session.timeout.ms $RDK_SESSION_MS (default 6000),
 * heartbeat.interval.ms 500, max.poll.interval.ms 30000, auto commit off,
 * auto.offset.reset=earliest, the default assignors (range,roundrobin).
 *
 * OUT_FILE gets one line per event, flushed at once (so that a kill -9 loses
 * nothing that happened before it); T is CLOCK_MONOTONIC in microseconds,
 * comparable between the members on one machine:
 *   C <partition> <offset> <key> <T>          consumed
 *   K <partition> <offset> <key> <T>          its offset committed (synchronous
 *                                             rd_kafka_commit_message, written
 *                                             only after the commit succeeded)
 *   F <partition> <offset> <key> <T> <error>  the commit failed
 * So a message is recorded as committed only after the broker stored it.
 *
 * STATE_FILE is replaced (write + rename) on every rebalance_cb call:
 *   line 1: the number of rebalance_cb calls so far
 *   line 2: the assigned partitions, space-separated (empty when revoked)
 *   line 3: "assigned" or "revoked"
 *
 * SIGTERM or SIGINT: rd_kafka_consumer_close() (which revokes and leaves the
 * group), rd_kafka_destroy(), exit 0.  The run stops by itself after
 * MAX_SECONDS (exit 0 too), and alarm() kills it 60 s later if closing hangs.
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "rdk_util.h"

static volatile sig_atomic_t stop;
static FILE *out;
static const char *state_path;
static int rebalances;

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void write_state(const rd_kafka_topic_partition_list_t *parts, const char *what)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", state_path);
    FILE *f = fopen(tmp, "w");
    if (!f) rdk_die("%s: %s", tmp, strerror(errno));
    fprintf(f, "%d\n", rebalances);
    for (int i = 0; parts && i < parts->cnt; i++) fprintf(f, "%s%d", i ? " " : "", (int)parts->elems[i].partition);
    fprintf(f, "\n%s\n", what);
    if (fclose(f) != 0 || rename(tmp, state_path) != 0) rdk_die("%s: %s", state_path, strerror(errno));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    (void)opaque;
    rebalances++;
    char list[1024] = "";
    size_t n = 0;
    for (int i = 0; i < parts->cnt && n < sizeof list - 16; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%d", i ? "," : "", (int)parts->elems[i].partition);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rdk_note("rebalance %d: assigned [%s] (member %s)", rebalances, list, rd_kafka_memberid(rk));
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
        if (e) rdk_die("rd_kafka_assign: %s", rd_kafka_err2str(e));
        write_state(parts, "assigned");
    } else {
        rdk_note("rebalance %d: revoked [%s] (%s)", rebalances, list, rd_kafka_err2name(err));
        rd_kafka_assign(rk, NULL);
        write_state(NULL, "revoked");
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    /* Transport errors come and go (a broker restart); a fatal one ends the run. */
    rdk_note("client error: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        rdk_die("fatal client error: %s", why);
    }
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc > 8) {
        fprintf(stderr, "usage: rdk_member BOOTSTRAP GROUP TOPIC OUT_FILE STATE_FILE MAX_SECONDS [NAME]\n");
        return 2;
    }
    const char *bootstrap = argv[1], *group = argv[2], *topic = argv[3];
    state_path = argv[5];
    int max_seconds = atoi(argv[6]);
    static char prog[128];
    snprintf(prog, sizeof prog, "rdk_member %s", argc > 7 ? argv[7] : "");
    rdk_prog = prog;
    if (max_seconds <= 0) rdk_die("MAX_SECONDS must be positive");
    alarm((unsigned)max_seconds + 60);

    out = fopen(argv[4], "a");
    if (!out) rdk_die("%s: %s", argv[4], strerror(errno));
    rebalances = 0;
    write_state(NULL, "starting");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    const char *session = getenv("RDK_SESSION_MS");
    rd_kafka_conf_t *conf = rdk_conf_new(bootstrap);
    rdk_set(conf, "client.id", argc > 7 ? argv[7] : "rdk_member");
    rdk_set(conf, "group.id", group);
    rdk_set(conf, "session.timeout.ms", session && *session ? session : "6000");
    rdk_set(conf, "heartbeat.interval.ms", "500");
    rdk_set(conf, "max.poll.interval.ms", "30000");
    rdk_set(conf, "enable.auto.commit", "false");
    rdk_set(conf, "enable.auto.offset.store", "false");
    rdk_set(conf, "auto.offset.reset", "earliest");
    rdk_set(conf, "reconnect.backoff.max.ms", "1000");
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_t *rk = rdk_new(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(rk);

    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) rdk_die("subscribe %s: %s", topic, rd_kafka_err2str(err));
    rdk_note("subscribed to %s in group %s", topic, group);

    int64_t end = rdk_now_ms() + (int64_t)max_seconds * 1000;
    long consumed = 0, committed = 0, failed = 0;
    while (!stop && rdk_now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                rdk_note("consumer error: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        int p = (int)m->partition;
        long long off = (long long)m->offset;
        int klen = m->key ? (int)m->key_len : 0;
        const char *key = m->key ? (const char *)m->key : "";
        fprintf(out, "C %d %lld %.*s %lld\n", p, off, klen, key, now_us());
        fflush(out);
        consumed++;
        rd_kafka_resp_err_t ce = rd_kafka_commit_message(rk, m, 0 /* synchronous */);
        if (ce) {
            failed++;
            rdk_note("commit of %d@%lld failed: %s", p, off, rd_kafka_err2name(ce));
            fprintf(out, "F %d %lld %.*s %lld %s\n", p, off, klen, key, now_us(), rd_kafka_err2name(ce));
        } else {
            committed++;
            fprintf(out, "K %d %lld %.*s %lld\n", p, off, klen, key, now_us());
        }
        fflush(out);
        rd_kafka_message_destroy(m);
    }
    rdk_note("%s: consumed %ld, committed %ld, commit failures %ld; closing", stop ? "signalled" : "time is up",
             consumed, committed, failed);
    err = rd_kafka_consumer_close(rk);
    if (err) rdk_note("rd_kafka_consumer_close: %s", rd_kafka_err2str(err));
    rd_kafka_destroy(rk);
    fclose(out);
    rdk_note("closed");
    return 0;
}
