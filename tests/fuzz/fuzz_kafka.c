/*
 * fuzz_kafka.c - libFuzzer target for the Kafka request path.
 *
 * The input is what one client connection sends: size-prefixed request
 * frames back to back.  Each whole frame is cut with kp_frame_try_extract()
 * exactly as server.c does, copied into a mutable buffer (Produce rewrites
 * baseOffset in place) and handed to kp_handle_frame() against a real
 * broker_t (log + committed offsets on disk, no event loop).  The input ends
 * at the first KP_CLOSE, KP_FRAME_ERROR or incomplete frame.
 *
 * Held responses: when the input's length is even, handlers may hold a
 * response (can_defer 1), as with a real server.  A held Fetch is answered at
 * once with what is there (as when max_wait_ms passes).  A held JoinGroup or
 * SyncGroup waiter is parked and later frames are handled as if they came
 * from other connections, so several members can join one group; parked
 * waiters the coordinator completes are answered after each frame, and those
 * still held at the end of the input are cancelled as a closed connection's
 * are.  When the length is odd, can_defer is 0 and handlers must cope.
 *
 * Oracles besides the sanitizers: a KP_RESPOND answer is exactly one frame
 * whose size prefix matches its length and whose correlation id is the
 * request's; any other action leaves the output untouched; KP_DEFER only
 * comes with can_defer and exactly one of ctx.fetch / ctx.waiter.
 *
 * State: the broker is shared by all inputs of a run, so one input may create
 * a topic that a later one produces to.  Every RESTART_EVERY inputs the broker
 * is closed and re-opened on the same data dir (so log and offsets recovery
 * run over what the inputs wrote); every RESET_EVERY inputs the data dir is
 * deleted and the broker re-created; every RETENTION_EVERY inputs retention
 * runs with a small byte limit.  The group coordinator (b->groups, made on
 * first use) is ticked after every frame, as main.c's timer does, and freed
 * every GROUPS_RESET_EVERY inputs (groups are not persisted: this is what a
 * restart does to them): members of JoinGroup v0-v3 join without a round
 * trip and live for their session timeout (up to 30 min), so without this
 * thousands pile up and DescribeGroups and grp_tick slow the fuzzer down.
 *
 * CreateTopics lets a client ask for 10000 partitions (two files each), which
 * would turn the fuzzer into a mkdir/rm -rf benchmark: log_topic_create is
 * wrapped (-Wl,--wrap, see meson.build) so that a creation taking the broker
 * past MAX_LIVE_PARTITIONS fails with LOG_ERR_IO, as it would on a full disk
 * -- a path the handlers must take anyway.  Topics "seed" and "fuzz" (2
 * partitions each) exist after every (re)start so that single-frame
 * Produce/Fetch seeds reach the log.
 *
 * CRCs: a mutated record batch almost never has a valid CRC-32C, which would
 * stop the fuzzer at batch_validate_all().  So, before a Produce frame is
 * handled, every batch whose partitionLeaderEpoch (not covered by the CRC and
 * ignored by souk) is >= 0 gets its CRC recomputed; a negative epoch keeps
 * the CRC as sent, so the mismatch path stays reachable.
 *
 * Environment: FUZZ_DATA_DIR (default /dev/shm if present, else $TMPDIR or
 * /tmp) is where the temporary data dir is made; FUZZ_LOG_LEVEL (debug, info,
 * warn, error; default debug) keeps the log formatting in the fuzzed path --
 * run with -close_fd_mask=2 to silence it; FUZZ_TRACE=1 prints each frame's
 * API, version and outcome (for checking seeds).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "group.h"
#include "kafka.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_crc32c.h"
#include "sk_fs.h"
#include "sk_log.h"

#define MAX_FRAME (1u << 20)
#define RESET_EVERY 5000
#define RESTART_EVERY 1000
#define RETENTION_EVERY 500
#define GROUPS_RESET_EVERY 100
#define MAX_LIVE_PARTITIONS 256
#define MAX_PARKED 32 /* held JoinGroup/SyncGroup responses ("connections") */

static broker_t fz_broker;
static char fz_dir[4096];
static unsigned long fz_iter;
static int fz_trace;
static kp_waiter_t *fz_parked[MAX_PARKED];
static size_t fz_nparked;

static void fz_die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_kafka: %s: %s\n", what, err);
    abort();
}

/* Opens the broker on a new temporary data dir (fresh) or, to run recovery,
 * on the current one. */
static void fz_broker_start(int fresh)
{
    broker_t *b = &fz_broker;
    char err[512];
    if (fresh) {
        const char *base = getenv("FUZZ_DATA_DIR");
        struct stat st;
        if (!base || !*base)
            base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : NULL;
        if (!base) base = getenv("TMPDIR");
        if (!base || !*base) base = "/tmp";
        snprintf(fz_dir, sizeof fz_dir, "%s/souk-fuzz-kafka-XXXXXX", base);
        if (!mkdtemp(fz_dir)) fz_die("mkdtemp", fz_dir);
    }

    memset(b, 0, sizeof *b);
    /* main.c's defaults, except small segments (rolls happen) and 2
     * partitions per auto-created topic. */
    b->cfg.data_dir = fz_dir;
    b->cfg.kafka_listen = (char *)"127.0.0.1:9092";
    b->cfg.advertised_listener = (char *)"";
    b->cfg.partitions = 2;
    b->cfg.segment_bytes = 64 << 10;
    b->cfg.segment_ms = 604800000;
    b->cfg.retention_ms = 3600 * 1000;
    b->cfg.retention_bytes = 256 << 10;
    b->cfg.retention_check_ms = 300000;
    b->cfg.index_interval_bytes = 4096;
    b->cfg.flush_ms = 1000;
    b->cfg.max_request_bytes = MAX_FRAME;
    b->cfg.auto_create_topics = 1;
    b->cfg.log_level = (char *)"debug";
    b->cfg.trace_requests = (char *)"";
    b->node_id = 1;
    b->adv_host = (char *)"127.0.0.1";
    b->adv_port = 9092;
    b->base = NULL;

    log_config_t lc = {
        .dir = fz_dir,
        .default_partitions = (int32_t)b->cfg.partitions,
        .segment_bytes = b->cfg.segment_bytes,
        .segment_ms = b->cfg.segment_ms,
        .retention_ms = b->cfg.retention_ms,
        .retention_bytes = b->cfg.retention_bytes,
        .index_interval_bytes = b->cfg.index_interval_bytes,
    };
    b->log = log_open(&lc, err, sizeof err);
    if (!b->log) fz_die("log_open", err);
    b->offsets = offsets_open(fz_dir, err, sizeof err);
    if (!b->offsets) fz_die("offsets_open", err);
    static const char *const topics[] = {"seed", "fuzz"};
    for (size_t i = 0; i < sizeof topics / sizeof *topics && fresh; i++) {
        log_topic_t *t;
        if (log_topic_create(b->log, topics[i], strlen(topics[i]), 2, &t, err, sizeof err) !=
            LOG_OK)
            fz_die("log_topic_create", err);
    }
}

/* Closes the broker; with remove, deletes its data dir too. */
static void fz_broker_close(int remove)
{
    if (!fz_broker.log) return;
    grp_coord_free(fz_broker.groups); /* created on first use by the group handlers */
    fz_broker.groups = NULL;
    offsets_close(fz_broker.offsets);
    log_close(fz_broker.log);
    fz_broker.offsets = NULL;
    fz_broker.log = NULL;
    if (remove) sk_rm_rf(fz_dir);
}

static void fz_broker_stop(void)
{
    fz_broker_close(1);
}

static size_t fz_live_partitions(log_t *l)
{
    size_t n = 0, nt = log_topic_count(l);
    for (size_t i = 0; i < nt; i++)
        n += (size_t)log_topic_partitions(log_topic_at(l, i));
    return n;
}

log_err_t __real_log_topic_create(log_t *l, const char *name, size_t len, int32_t n,
                                  log_topic_t **out, char *errstr, size_t errsz);
log_err_t __wrap_log_topic_create(log_t *l, const char *name, size_t len, int32_t n,
                                  log_topic_t **out, char *errstr, size_t errsz);

/* log_topic_create, refusing to go past MAX_LIVE_PARTITIONS (see above). */
log_err_t __wrap_log_topic_create(log_t *l, const char *name, size_t len, int32_t n,
                                  log_topic_t **out, char *errstr, size_t errsz)
{
    if (n > 0 && n <= 10000 && fz_live_partitions(l) + (size_t)n > MAX_LIVE_PARTITIONS) {
        snprintf(errstr, errsz, "fuzz: partition budget exhausted");
        return LOG_ERR_IO;
    }
    return __real_log_topic_create(l, name, len, n, out, errstr, errsz);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *lvl = getenv("FUZZ_LOG_LEVEL");
    int l = sk_log_level_parse(lvl && *lvl ? lvl : "debug");
    sk_log_set_service("fuzz");
    sk_log_set_level(l < 0 ? SK_LOG_DEBUG : (sk_log_level_t)l);
    fz_trace = getenv("FUZZ_TRACE") != NULL;
    fz_broker_start(1);
    atexit(fz_broker_stop);
    return 0;
}

/* Checks that out holds exactly one response frame, for correlation_id. */
static void fz_check_frame(const sk_buf_t *out, int32_t correlation_id)
{
    if (out->len < 8 || (size_t)sk_load_i32(out->data) != out->len - 4 ||
        sk_load_i32(out->data + 4) != correlation_id)
        __builtin_trap();
}

/* Answers the parked waiters the coordinator has completed, as
 * kp_server_waiter_deliver() would; with close_all, cancels the others as
 * conn_free() does. */
static void fz_reap_waiters(int close_all)
{
    size_t keep = 0;
    for (size_t i = 0; i < fz_nparked; i++) {
        kp_waiter_t *w = fz_parked[i];
        if (w->done) {
            sk_buf_t out;
            sk_buf_init(&out, w->body.len + 16);
            kp_frame_begin(&out, w->correlation_id, 0);
            sk_buf_add(&out, w->body.data, w->body.len);
            kp_frame_end(&out, 0);
            fz_check_frame(&out, w->correlation_id);
            sk_buf_release(&out);
            kp_waiter_free(w);
        } else if (close_all) {
            grp_waiter_cancel(kp_groups(&fz_broker), w);
            kp_waiter_free(w);
        } else {
            fz_parked[keep++] = w;
        }
    }
    fz_nparked = keep;
}

/* What server.c does with a KP_DEFER, minus the waiting. */
static void fz_deferred(kp_ctx_t *ctx)
{
    if (!ctx->can_defer || !ctx->fetch == !ctx->waiter) __builtin_trap();
    if (ctx->fetch) { /* answered as when max_wait_ms passes */
        kp_fetch_t *f = ctx->fetch;
        sk_buf_t out;
        sk_buf_init(&out, 256);
        kp_frame_begin(&out, f->correlation_id, 0);
        kp_fetch_respond(ctx->b, f, &out);
        kp_frame_end(&out, 0);
        fz_check_frame(&out, f->correlation_id);
        sk_buf_release(&out);
        kp_fetch_free(f);
        return;
    }
    kp_waiter_t *w = ctx->waiter;
    if (w->done || w->conn) __builtin_trap();
    if (fz_nparked == MAX_PARKED) { /* too many connections: this one closes */
        grp_waiter_cancel(kp_groups(ctx->b), w);
        kp_waiter_free(w);
        return;
    }
    fz_parked[fz_nparked++] = w;
}

/* Recomputes the CRC-32C of each batch in records[0..len) whose
 * partitionLeaderEpoch is >= 0 (see the file comment). */
static void fz_fix_batch_crcs(uint8_t *p, size_t len)
{
    size_t pos = 0;
    while (len - pos >= 61) {
        int32_t blen = sk_load_i32(p + pos + 8);
        if (blen < 49 || (size_t)blen > len - pos - 12) return;
        if (sk_load_i32(p + pos + 12) >= 0) {
            uint32_t crc = sk_crc32c(0, p + pos + 21, (size_t)blen + 12 - 21);
            sk_store_i32(p + pos + 17, (int32_t)crc);
        }
        pos += 12 + (size_t)blen;
    }
}

/* Walks a Produce request (v0-v8 layout; souk speaks up to v7) far enough to
 * find each partition's records and fixes their CRCs.  Stops quietly at
 * anything malformed: the handler is what reports it. */
static void fz_fix_produce(uint8_t *frame, size_t len)
{
    sk_cur_t c;
    sk_cur_init(&c, frame, len);
    if (sk_cur_i16(&c) != KP_API_Produce) return;
    int16_t v = sk_cur_i16(&c);
    (void)sk_cur_i32(&c);
    (void)kp_read_str(&c); /* client_id */
    if (v >= 3) (void)kp_read_str(&c);
    (void)sk_cur_i16(&c);
    (void)sk_cur_i32(&c);
    int32_t nt = kp_read_arraylen(&c, 6);
    for (int32_t i = 0; i < nt && !c.err; i++) {
        (void)kp_read_str(&c);
        int32_t np = kp_read_arraylen(&c, 8);
        for (int32_t k = 0; k < np && !c.err; k++) {
            (void)sk_cur_i32(&c);
            kp_str_t rec = kp_read_bytes(&c);
            if (!c.err && rec.len > 0) fz_fix_batch_crcs((uint8_t *)rec.p, (size_t)rec.len);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    broker_t *b = &fz_broker;
    sk_buf_t out;
    sk_buf_init(&out, 4096);
    size_t pos = 0;
    int can_defer = (size & 1) == 0;
    for (;;) {
        size_t flen = 0;
        kp_frame_result_t r = kp_frame_try_extract(data + pos, size - pos, MAX_FRAME, &flen);
        if (r != KP_FRAME_OK) break; /* KP_FRAME_AGAIN at the end, or KP_FRAME_ERROR */
        size_t blen = flen - 4;
        uint8_t *frame = sk_malloc(blen); /* exact size (>= 10): ASan sees overreads */
        memcpy(frame, data + pos + 4, blen);
        pos += flen;
        fz_fix_produce(frame, blen);

        kp_ctx_t ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.b = b;
        ctx.peer = "fuzz";
        ctx.can_defer = can_defer;
        sk_buf_reset(&out);
        kp_action_t a = kp_handle_frame(&ctx, frame, blen, &out);
        switch (a) {
        case KP_RESPOND:
            fz_check_frame(&out, sk_load_i32(frame + 4));
            break;
        case KP_NO_RESPONSE:
        case KP_CLOSE:
            if (out.len != 0) __builtin_trap();
            break;
        case KP_DEFER:
            if (out.len != 0) __builtin_trap();
            fz_deferred(&ctx);
            break;
        }
        if (fz_trace)
            fprintf(stderr, "fuzz_kafka: api %d v%d: %s%s%s (%zu response bytes)\n",
                    sk_load_i16(frame), blen >= 4 ? sk_load_i16(frame + 2) : -1,
                    a == KP_RESPOND       ? "respond"
                    : a == KP_NO_RESPONSE ? "no response"
                    : a == KP_DEFER       ? "defer"
                                          : "close",
                    a == KP_CLOSE ? ": " : "", a == KP_CLOSE ? ctx.errstr : "", out.len);
        free(frame);
        if (b->groups) grp_tick(b->groups, sk_mono_ms());
        fz_reap_waiters(0);
        if (a == KP_CLOSE) break;
    }
    sk_buf_release(&out);
    fz_reap_waiters(1); /* the connections close */

    fz_iter++;
    if (fz_iter % RESET_EVERY == 0) {
        fz_broker_close(1);
        fz_broker_start(1);
    } else if (fz_iter % RESTART_EVERY == 0) {
        fz_broker_close(0); /* a restart: recovery reads what the inputs wrote */
        fz_broker_start(0);
    } else if (fz_iter % RETENTION_EVERY == 0) {
        log_retention_run(b->log, sk_wall_ms());
    }
    if (fz_iter % GROUPS_RESET_EVERY == 0) { /* nothing is parked between inputs */
        grp_coord_free(b->groups);
        b->groups = NULL;
    }

    return 0;
}
