/*
 * handlers.c - one handler per Kafka API, in Kafka's own names and field
 * names, with each field gated on the version that introduced it.
 *
 * Field layouts follow the Kafka protocol guide.  Every handler reads its
 * whole request first (checking cur->err once), then writes the response.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "kafka.h"
#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "sk_map.h"

#define MAX_COMMIT_METADATA 4096
#define CLUSTER_ID "souk-cluster"


/* Finds a topic by wire name. */
static log_topic_t *topic_find(broker_t *b, kp_str_t name)
{
    if (name.len <= 0) return NULL;
    return log_topic_find(b->log, name.p, (size_t)name.len);
}

static kp_err_t log_err_to_kp(log_err_t e)
{
    switch (e) {
    case LOG_OK: return KP_ERR_NONE;
    case LOG_ERR_CORRUPT: return KP_ERR_CORRUPT_MESSAGE;
    case LOG_ERR_CODEC: return KP_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    case LOG_ERR_OUT_OF_RANGE: return KP_ERR_OFFSET_OUT_OF_RANGE;
    case LOG_ERR_INVALID_TOPIC: return KP_ERR_INVALID_TOPIC_EXCEPTION;
    case LOG_ERR_EXISTS: return KP_ERR_TOPIC_ALREADY_EXISTS;
    case LOG_ERR_INVALID_PARTITIONS: return KP_ERR_INVALID_PARTITIONS;
    case LOG_ERR_TOO_LARGE: return KP_ERR_MESSAGE_TOO_LARGE;
    case LOG_ERR_IO: return KP_ERR_KAFKA_STORAGE_ERROR;
    }
    return KP_ERR_UNKNOWN_SERVER_ERROR;
}

/* ---- ApiVersions --------------------------------------------------------- */

static void write_api_versions(sk_buf_t *out, int16_t version, kp_err_t err)
{
    int n = 0;
    for (int k = 0; k < KP_API__MAX; k++) n += kp_api_table[k].name != NULL;
    sk_buf_add_i16(out, (int16_t)err);
    if (version >= 3) sk_buf_add_uvarint(out, (uint64_t)n + 1);
    else sk_buf_add_i32(out, n);
    for (int k = 0; k < KP_API__MAX; k++) {
        const kp_api_t *a = &kp_api_table[k];
        if (!a->name) continue;
        sk_buf_add_i16(out, (int16_t)k);
        sk_buf_add_i16(out, a->min_ver);
        sk_buf_add_i16(out, a->max_ver);
        if (version >= 3) sk_buf_add_uvarint(out, 0);
    }
    if (version >= 1) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    if (version >= 3) sk_buf_add_uvarint(out, 0);
}

static kp_action_t kp_handle_ApiVersions(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    int16_t v = ctx->hdr->api_version;
    if (v >= 3) {
        kp_str_t name = kp_read_compact_str(c);
        kp_str_t ver = kp_read_compact_str(c);
        kp_skip_tags(c);
        (void)name;
        (void)ver;
        if (c->err) {
            /* Kafka answers INVALID_REQUEST; librdkafka then retries with v0. */
            write_api_versions(out, 0, KP_ERR_INVALID_REQUEST);
            return KP_RESPOND;
        }
    }
    write_api_versions(out, v, KP_ERR_NONE);
    return KP_RESPOND;
}

/* ---- Metadata ------------------------------------------------------------ */

static void write_topic_metadata(broker_t *b, sk_buf_t *out, int16_t v, kp_err_t err, kp_str_t name,
                                 log_topic_t *t)
{
    sk_buf_add_i16(out, (int16_t)err);
    if (t) kp_write_cstr(out, log_topic_name(t));
    else kp_write_kstr(out, name);
    if (v >= 1) kp_write_bool(out, 0); /* is_internal */
    int32_t n = t ? log_topic_partitions(t) : 0;
    sk_buf_add_i32(out, n);
    for (int32_t i = 0; i < n; i++) {
        sk_buf_add_i16(out, KP_ERR_NONE);
        sk_buf_add_i32(out, i);          /* partition_index */
        sk_buf_add_i32(out, b->node_id); /* leader_id */
        sk_buf_add_i32(out, 1);          /* replica_nodes */
        sk_buf_add_i32(out, b->node_id);
        sk_buf_add_i32(out, 1); /* isr_nodes */
        sk_buf_add_i32(out, b->node_id);
    }
}

/* Looks a topic up and, when allowed, creates it.  Returns its error. */
static kp_err_t topic_lookup_or_create(broker_t *b, kp_str_t name, int allow_create, log_topic_t **t)
{
    *t = topic_find(b, name);
    if (*t) return KP_ERR_NONE;
    if (name.len < 0 || !log_topic_name_valid(name.p, (size_t)name.len)) return KP_ERR_INVALID_TOPIC_EXCEPTION;
    if (!allow_create || !b->cfg.auto_create_topics) return KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    char err[256];
    log_err_t e = log_topic_create(b->log, name.p, (size_t)name.len, (int32_t)b->cfg.partitions, t, err, sizeof err);
    if (e != LOG_OK) {
        sk_error("kafka", "auto-creating topic %.*s failed: %s", (int)name.len, name.p, err);
        return log_err_to_kp(e);
    }
    return KP_ERR_NONE;
}

static kp_action_t kp_handle_Metadata(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    broker_t *b = ctx->b;
    int16_t v = ctx->hdr->api_version;
    int32_t n = kp_read_arraylen(c, 2);
    kp_str_t *names = NULL;
    if (n > 0) {
        names = sk_calloc((size_t)n, sizeof *names);
        for (int32_t i = 0; i < n; i++) names[i] = kp_read_str(c);
    }
    int allow_create = v >= 4 ? kp_read_bool(c) : 1;
    if (c->err) {
        free(names);
        KP_MALFORMED(ctx, "topics");
    }
    int all = (v == 0 && n == 0) || n < 0;

    if (v >= 3) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add_i32(out, 1);             /* brokers */
    sk_buf_add_i32(out, b->node_id);
    kp_write_cstr(out, b->adv_host);
    sk_buf_add_i32(out, b->adv_port);
    if (v >= 1) kp_write_cstr(out, NULL); /* rack */
    if (v >= 2) kp_write_cstr(out, CLUSTER_ID);
    if (v >= 1) sk_buf_add_i32(out, b->node_id); /* controller_id */
    if (all) {
        size_t nt = log_topic_count(b->log);
        sk_buf_add_i32(out, (int32_t)nt);
        for (size_t i = 0; i < nt; i++) {
            log_topic_t *t = log_topic_at(b->log, i);
            write_topic_metadata(b, out, v, KP_ERR_NONE, (kp_str_t){NULL, -1}, t);
        }
    } else {
        sk_buf_add_i32(out, n);
        for (int32_t i = 0; i < n; i++) {
            log_topic_t *t;
            kp_err_t e = topic_lookup_or_create(b, names[i], allow_create, &t);
            write_topic_metadata(b, out, v, e, names[i], t);
        }
    }
    free(names);
    return KP_RESPOND;
}

/* ---- Produce ------------------------------------------------------------- */

typedef struct produce_part_s {
    int32_t index;
    kp_err_t err;
    int64_t base_offset;
    int64_t log_start;
} produce_part_t;

static kp_action_t kp_handle_Produce(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    broker_t *b = ctx->b;
    int16_t v = ctx->hdr->api_version;
    if (v >= 3) (void)kp_read_str(c); /* transactional_id */
    int16_t acks = sk_cur_i16(c);
    (void)sk_cur_i32(c); /* timeout_ms */
    int32_t ntopics = kp_read_arraylen(c, 6);
    if (c->err || ntopics < 0) KP_MALFORMED(ctx, "header");

    /* Parse everything first: a malformed request appends nothing. */
    kp_str_t *names = sk_calloc((size_t)ntopics + 1, sizeof *names);
    int32_t *nparts = sk_calloc((size_t)ntopics + 1, sizeof *nparts);
    produce_part_t **parts = sk_calloc((size_t)ntopics + 1, sizeof *parts);
    kp_str_t **records = sk_calloc((size_t)ntopics + 1, sizeof *records);
    kp_action_t action = KP_RESPOND;
    int32_t parsed = 0;
    for (int32_t i = 0; i < ntopics && !c->err; i++, parsed++) {
        names[i] = kp_read_str(c);
        nparts[i] = kp_read_arraylen(c, 8);
        if (c->err || nparts[i] < 0) {
            c->err = 1;
            break;
        }
        parts[i] = sk_calloc((size_t)nparts[i] + 1, sizeof **parts);
        records[i] = sk_calloc((size_t)nparts[i] + 1, sizeof **records);
        for (int32_t k = 0; k < nparts[i]; k++) {
            parts[i][k].index = sk_cur_i32(c);
            records[i][k] = kp_read_bytes(c);
        }
    }
    if (c->err) {
        snprintf(ctx->errstr, sizeof ctx->errstr, "malformed Produce v%d request: topic data", v);
        action = KP_CLOSE;
        goto out;
    }

    for (int32_t i = 0; i < ntopics; i++) {
        log_topic_t *t = topic_find(b, names[i]);
        for (int32_t k = 0; k < nparts[i]; k++) {
            produce_part_t *pp = &parts[i][k];
            kp_str_t rec = records[i][k];
            pp->base_offset = -1;
            pp->log_start = -1;
            log_part_t *p = t ? log_topic_part(t, pp->index) : NULL;
            if (v < 3) pp->err = KP_ERR_UNSUPPORTED_VERSION; /* MessageSet v0/v1: not stored */
            else if (acks != 0 && acks != 1 && acks != -1) pp->err = KP_ERR_INVALID_REQUIRED_ACKS;
            else if (!t && (names[i].len < 0 || !log_topic_name_valid(names[i].p, (size_t)names[i].len)))
                pp->err = KP_ERR_INVALID_TOPIC_EXCEPTION;
            else if (!p) pp->err = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (rec.len <= 0) pp->err = KP_ERR_CORRUPT_MESSAGE;
            else {
                int nb;
                size_t bad_at;
                batch_err_t be = batch_validate_all((const uint8_t *)rec.p, (size_t)rec.len, &nb, &bad_at);
                if (be != BATCH_OK) {
                    pp->err = be == BATCH_BAD_CODEC ? KP_ERR_UNSUPPORTED_COMPRESSION_TYPE : KP_ERR_CORRUPT_MESSAGE;
                    sk_warn("kafka", "%s: rejected produce to %s-%d: %s at byte %zu", ctx->peer,
                            log_topic_name(t), (int)pp->index, batch_err2str(be), bad_at);
                } else {
                    char err[256];
                    log_err_t le = log_part_append(p, (uint8_t *)rec.p, (size_t)rec.len, &pp->base_offset,
                                                   err, sizeof err);
                    pp->err = log_err_to_kp(le);
                    if (le != LOG_OK) sk_error("kafka", "append to %s-%d failed: %s", log_topic_name(t),
                                               (int)pp->index, err);
                    else if (acks == -1 && b->cfg.flush_ms == 0 && log_part_flush(p) < 0)
                        pp->err = KP_ERR_KAFKA_STORAGE_ERROR;
                }
            }
            if (p) pp->log_start = log_part_start_offset(p);
        }
    }
    kp_server_notify_append(b);
    if (acks == 0) {
        action = KP_NO_RESPONSE;
        goto out;
    }
    sk_buf_add_i32(out, ntopics);
    for (int32_t i = 0; i < ntopics; i++) {
        kp_write_kstr(out, names[i]);
        sk_buf_add_i32(out, nparts[i]);
        for (int32_t k = 0; k < nparts[i]; k++) {
            produce_part_t *pp = &parts[i][k];
            sk_buf_add_i32(out, pp->index);
            sk_buf_add_i16(out, (int16_t)pp->err);
            sk_buf_add_i64(out, pp->base_offset);
            if (v >= 2) sk_buf_add_i64(out, -1); /* log_append_time_ms: CreateTime is kept */
            if (v >= 5) sk_buf_add_i64(out, pp->log_start);
        }
    }
    if (v >= 1) sk_buf_add_i32(out, 0); /* throttle_time_ms */
out:
    for (int32_t i = 0; i < parsed + (c->err ? 1 : 0) && i < ntopics; i++) {
        free(parts[i]);
        free(records[i]);
    }
    free(names);
    free(nparts);
    free(parts);
    free(records);
    return action;
}

/* ---- Fetch --------------------------------------------------------------- */

void kp_fetch_free(kp_fetch_t *f)
{
    if (!f) return;
    for (int32_t i = 0; i < f->ntopics; i++) {
        free(f->topics[i].name);
        free(f->topics[i].parts);
    }
    free(f->topics);
    free(f);
}

int kp_fetch_has_data(const kp_fetch_t *f)
{
    for (int32_t i = 0; i < f->ntopics; i++)
        for (int32_t k = 0; k < f->topics[i].nparts; k++) {
            const kp_fetch_part_t *fp = &f->topics[i].parts[k];
            if (fp->part && log_part_end_offset(fp->part) > fp->fetch_offset) return 1;
        }
    return 0;
}

size_t kp_fetch_respond(broker_t *b, kp_fetch_t *f, sk_buf_t *out)
{
    (void)b;
    int16_t v = f->version;
    size_t total = 0;
    size_t budget = f->max_bytes > 0 ? (size_t)f->max_bytes : 0;
    sk_buf_add_i32(out, 0); /* throttle_time_ms */
    if (v >= 7) {
        sk_buf_add_i16(out, KP_ERR_NONE);
        sk_buf_add_i32(out, 0); /* session_id: no fetch sessions */
    }
    sk_buf_add_i32(out, f->ntopics);
    for (int32_t i = 0; i < f->ntopics; i++) {
        kp_fetch_topic_t *ft = &f->topics[i];
        kp_write_cstr(out, ft->name);
        sk_buf_add_i32(out, ft->nparts);
        for (int32_t k = 0; k < ft->nparts; k++) {
            kp_fetch_part_t *fp = &ft->parts[k];
            kp_err_t err = KP_ERR_NONE;
            int64_t hw = -1, ls = -1;
            if (!fp->part) err = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            else {
                hw = log_part_end_offset(fp->part);
                ls = log_part_start_offset(fp->part);
                if (fp->fetch_offset < ls || fp->fetch_offset > hw) err = KP_ERR_OFFSET_OUT_OF_RANGE;
            }
            sk_buf_add_i32(out, fp->partition);
            size_t err_at = out->len;
            sk_buf_add_i16(out, (int16_t)err);
            sk_buf_add_i64(out, hw);
            sk_buf_add_i64(out, hw); /* last_stable_offset: no transactions */
            if (v >= 5) sk_buf_add_i64(out, ls);
            sk_buf_add_i32(out, 0); /* aborted_transactions: empty */
            if (v >= 11) sk_buf_add_i32(out, -1); /* preferred_read_replica */
            size_t len_at = sk_buf_reserve(out, 4);
            size_t before = out->len;
            if (err == KP_ERR_NONE && fp->fetch_offset < hw) {
                /* KIP-74: the first batch goes out even when larger than the limits. */
                size_t want = fp->max_bytes > 0 ? (size_t)fp->max_bytes : 0;
                if (want > budget) want = budget; /* the response's max_bytes binds too */
                if (total == 0 || budget > 0) {
                    if (log_part_read(fp->part, fp->fetch_offset, want, out) != LOG_OK) {
                        out->len = before;
                        out->data[err_at] = 0;
                        out->data[err_at + 1] = KP_ERR_KAFKA_STORAGE_ERROR;
                    } else if (total > 0 && out->len - before > budget) {
                        out->len = before; /* only the response's first batch may exceed max_bytes */
                        out->data[out->len] = '\0';
                    }
                }
            }
            size_t got = out->len - before;
            sk_buf_put_i32(out, len_at, (int32_t)got);
            total += got;
            budget = budget > got ? budget - got : 0;
        }
    }
    return total;
}

static kp_action_t kp_handle_Fetch(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    broker_t *b = ctx->b;
    int16_t v = ctx->hdr->api_version;
    kp_fetch_t *f = sk_calloc(1, sizeof *f);
    f->version = v;
    f->correlation_id = ctx->hdr->correlation_id;
    (void)sk_cur_i32(c); /* replica_id */
    f->max_wait_ms = sk_cur_i32(c);
    f->min_bytes = sk_cur_i32(c);
    f->max_bytes = sk_cur_i32(c);
    (void)sk_cur_i8(c); /* isolation_level: there are no transactions */
    if (v >= 7) {
        (void)sk_cur_i32(c); /* session_id */
        (void)sk_cur_i32(c); /* session_epoch */
    }
    f->ntopics = kp_read_arraylen(c, 6);
    if (c->err || f->ntopics < 0) {
        kp_fetch_free(f);
        KP_MALFORMED(ctx, "header");
    }
    f->topics = sk_calloc((size_t)f->ntopics + 1, sizeof *f->topics);
    for (int32_t i = 0; i < f->ntopics && !c->err; i++) {
        kp_fetch_topic_t *ft = &f->topics[i];
        kp_str_t name = kp_read_str(c);
        int32_t np = kp_read_arraylen(c, 16);
        if (c->err || np < 0 || name.len < 0) {
            c->err = 1;
            break;
        }
        ft->name = sk_strndup(name.p, (size_t)name.len);
        ft->parts = sk_calloc((size_t)np + 1, sizeof *ft->parts);
        ft->nparts = np;
        log_topic_t *t = topic_find(b, name);
        for (int32_t k = 0; k < np; k++) {
            kp_fetch_part_t *fp = &ft->parts[k];
            fp->partition = sk_cur_i32(c);
            if (v >= 9) (void)sk_cur_i32(c); /* current_leader_epoch */
            fp->fetch_offset = sk_cur_i64(c);
            if (v >= 5) (void)sk_cur_i64(c); /* log_start_offset (followers only) */
            fp->max_bytes = sk_cur_i32(c);
            fp->part = t ? log_topic_part(t, fp->partition) : NULL;
        }
    }
    if (v >= 7) {
        int32_t nf = kp_read_arraylen(c, 6); /* forgotten_topics_data */
        for (int32_t i = 0; i < nf && !c->err; i++) {
            (void)kp_read_str(c);
            int32_t np = kp_read_arraylen(c, 4);
            sk_cur_skip(c, (size_t)(np > 0 ? np : 0) * 4);
        }
    }
    if (v >= 11) (void)kp_read_str(c); /* rack_id */
    if (c->err) {
        kp_fetch_free(f);
        KP_MALFORMED(ctx, "topics");
    }
    size_t start = out->len;
    size_t got = kp_fetch_respond(b, f, out);
    int error_now = 0;
    for (int32_t i = 0; i < f->ntopics && !error_now; i++)
        for (int32_t k = 0; k < f->topics[i].nparts; k++) {
            kp_fetch_part_t *fp = &f->topics[i].parts[k];
            if (!fp->part || fp->fetch_offset > log_part_end_offset(fp->part) ||
                fp->fetch_offset < log_part_start_offset(fp->part))
                error_now = 1;
        }
    if (ctx->can_defer && !error_now && f->max_wait_ms > 0 && (int64_t)got < (int64_t)(f->min_bytes > 0 ? f->min_bytes : 1)) {
        out->len = start; /* answered later, when data arrives or max_wait_ms passes */
        ctx->fetch = f;
        return KP_DEFER;
    }
    kp_fetch_free(f);
    return KP_RESPOND;
}

/* ---- ListOffsets --------------------------------------------------------- */

static kp_action_t kp_handle_ListOffsets(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    broker_t *b = ctx->b;
    int16_t v = ctx->hdr->api_version;
    (void)sk_cur_i32(c); /* replica_id */
    if (v >= 2) (void)sk_cur_i8(c); /* isolation_level */
    int32_t nt = kp_read_arraylen(c, 6);
    if (c->err || nt < 0) KP_MALFORMED(ctx, "header");
    sk_buf_t body;
    sk_buf_init(&body, 256);
    sk_buf_add_i32(&body, nt);
    for (int32_t i = 0; i < nt && !c->err; i++) {
        kp_str_t name = kp_read_str(c);
        int32_t np = kp_read_arraylen(c, 12);
        if (np < 0) c->err = 1;
        if (c->err) break;
        log_topic_t *t = topic_find(b, name);
        kp_write_kstr(&body, name);
        sk_buf_add_i32(&body, np);
        for (int32_t k = 0; k < np; k++) {
            int32_t idx = sk_cur_i32(c);
            int64_t ts = sk_cur_i64(c);
            log_part_t *p = t ? log_topic_part(t, idx) : NULL;
            int64_t off = -1, found_ts = -1;
            kp_err_t err = KP_ERR_NONE;
            if (!p) err = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (ts == -1) off = log_part_end_offset(p);
            else if (ts == -2) off = log_part_start_offset(p);
            else if (ts < 0) err = KP_ERR_INVALID_REQUEST;
            else log_part_offset_for_time(p, ts, &off, &found_ts);
            sk_buf_add_i32(&body, idx);
            sk_buf_add_i16(&body, (int16_t)err);
            sk_buf_add_i64(&body, found_ts);
            sk_buf_add_i64(&body, off);
        }
    }
    if (c->err) {
        sk_buf_release(&body);
        KP_MALFORMED(ctx, "topics");
    }
    if (v >= 2) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add(out, body.data, body.len);
    sk_buf_release(&body);
    return KP_RESPOND;
}

/* ---- FindCoordinator ----------------------------------------------------- */

static kp_action_t kp_handle_FindCoordinator(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    broker_t *b = ctx->b;
    int16_t v = ctx->hdr->api_version;
    kp_str_t key = kp_read_str(c);
    int8_t key_type = v >= 1 ? sk_cur_i8(c) : 0;
    if (c->err) KP_MALFORMED(ctx, "key");
    (void)key;
    /* One node: this broker coordinates every group.  Transactions are not
     * supported. */
    kp_err_t err = key_type == 0 ? KP_ERR_NONE : KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (v >= 1) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add_i16(out, (int16_t)err);
    if (v >= 1) kp_write_cstr(out, err ? "transactions are not supported by souk-broker" : NULL);
    sk_buf_add_i32(out, err ? -1 : b->node_id);
    kp_write_cstr(out, err ? "" : b->adv_host);
    sk_buf_add_i32(out, err ? -1 : b->adv_port);
    return KP_RESPOND;
}

/* ---- OffsetCommit / OffsetFetch ------------------------------------------ */

static kp_action_t kp_handle_OffsetCommit(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    broker_t *b = ctx->b;
    int16_t v = ctx->hdr->api_version;
    kp_str_t group = kp_read_str(c);
    int32_t generation = sk_cur_i32(c);
    kp_str_t member = kp_read_str(c);
    if (v >= 7) (void)kp_read_str(c); /* group_instance_id */
    if (v >= 2 && v <= 4) (void)sk_cur_i64(c); /* retention_time_ms */
    int32_t nt = kp_read_arraylen(c, 6);
    if (c->err || nt < 0) KP_MALFORMED(ctx, "header");
    /* Parse the topics once without acting: a malformed request commits
     * nothing (the loop below commits as it reads). */
    sk_cur_t probe = *c;
    for (int32_t i = 0; i < nt && !probe.err; i++) {
        kp_str_t name = kp_read_str(&probe);
        int32_t np = kp_read_arraylen(&probe, 14);
        if (np < 0 || name.len < 0) probe.err = 1;
        for (int32_t k = 0; k < np && !probe.err; k++) {
            (void)sk_cur_i32(&probe); /* partition_index */
            (void)sk_cur_i64(&probe); /* committed_offset */
            if (v >= 6) (void)sk_cur_i32(&probe); /* committed_leader_epoch */
            (void)kp_read_str(&probe); /* committed_metadata */
        }
    }
    if (probe.err) KP_MALFORMED(ctx, "topics");
    kp_err_t gerr = KP_ERR_NONE;
    if (group.len <= 0) gerr = KP_ERR_INVALID_GROUP_ID;
    else gerr = (kp_err_t)kp_group_commit_check(b, group, generation, member);
    char *gname = group.len > 0 ? sk_strndup(group.p, (size_t)group.len) : NULL;
    sk_buf_t body;
    sk_buf_init(&body, 128);
    sk_buf_add_i32(&body, nt);
    int wrote = 0;
    for (int32_t i = 0; i < nt && !c->err; i++) {
        kp_str_t name = kp_read_str(c);
        int32_t np = kp_read_arraylen(c, 14);
        if (np < 0 || name.len < 0) c->err = 1;
        if (c->err) break;
        log_topic_t *t = topic_find(b, name);
        char *tname = sk_strndup(name.p, (size_t)name.len);
        kp_write_kstr(&body, name);
        sk_buf_add_i32(&body, np);
        for (int32_t k = 0; k < np && !c->err; k++) {
            int32_t idx = sk_cur_i32(c);
            int64_t off = sk_cur_i64(c);
            int32_t epoch = v >= 6 ? sk_cur_i32(c) : -1;
            kp_str_t md = kp_read_str(c);
            if (c->err) break;
            kp_err_t err = gerr;
            if (!err && (!t || !log_topic_part(t, idx))) err = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (!err && md.len > MAX_COMMIT_METADATA) err = KP_ERR_OFFSET_METADATA_TOO_LARGE;
            if (!err) {
                char *mds = md.len >= 0 ? sk_strndup(md.p, (size_t)md.len) : NULL;
                char e[256];
                if (offsets_commit(b->offsets, gname, tname, idx, off, epoch, mds, e, sizeof e) < 0) {
                    sk_error("kafka", "commit for group %s failed: %s", gname, e);
                    err = KP_ERR_UNKNOWN_SERVER_ERROR;
                } else {
                    wrote = 1;
                }
                free(mds);
            }
            sk_buf_add_i32(&body, idx);
            sk_buf_add_i16(&body, (int16_t)err);
        }
        free(tname);
    }
    free(gname);
    if (c->err) {
        sk_buf_release(&body);
        KP_MALFORMED(ctx, "topics");
    }
    if (wrote && b->cfg.flush_ms == 0) offsets_flush(b->offsets);
    if (v >= 3) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add(out, body.data, body.len);
    sk_buf_release(&body);
    return KP_RESPOND;
}

static void write_offset_fetch_part(sk_buf_t *out, int16_t v, int32_t idx, const offset_commit_t *oc, kp_err_t err)
{
    sk_buf_add_i32(out, idx);
    sk_buf_add_i64(out, oc ? oc->offset : -1);
    if (v >= 5) sk_buf_add_i32(out, oc ? oc->leader_epoch : -1);
    kp_write_cstr(out, oc && oc->metadata ? oc->metadata : "");
    sk_buf_add_i16(out, (int16_t)err);
}

typedef struct of_all_s {
    sk_buf_t *out;
    int16_t v;
    const char *topic; /* the topic being collected */
    int32_t count;
} of_all_t;

static void of_collect_topics(void *opaque, const char *topic, int32_t partition, const offset_commit_t *oc)
{
    (void)partition;
    (void)oc;
    sk_map_t *m = opaque;
    sk_map_put(m, topic, strlen(topic), (void *)1);
}

static void of_count(void *opaque, const char *topic, int32_t partition, const offset_commit_t *oc)
{
    (void)partition;
    (void)oc;
    of_all_t *a = opaque;
    if (strcmp(topic, a->topic) == 0) a->count++;
}

static void of_write(void *opaque, const char *topic, int32_t partition, const offset_commit_t *oc)
{
    of_all_t *a = opaque;
    if (strcmp(topic, a->topic) == 0) write_offset_fetch_part(a->out, a->v, partition, oc, KP_ERR_NONE);
}

static kp_action_t kp_handle_OffsetFetch(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    broker_t *b = ctx->b;
    int16_t v = ctx->hdr->api_version;
    kp_str_t group = kp_read_str(c);
    int32_t nt = kp_read_arraylen(c, 6);
    if (c->err || (nt < 0 && v < 2)) KP_MALFORMED(ctx, "header");
    kp_err_t gerr = group.len <= 0 ? KP_ERR_INVALID_GROUP_ID : KP_ERR_NONE;
    char *gname = sk_strndup(group.p ? group.p : "", group.len > 0 ? (size_t)group.len : 0);
    sk_buf_t body;
    sk_buf_init(&body, 128);
    if (nt < 0) {
        /* null topics: every partition this group has committed */
        sk_map_t topics;
        sk_map_init(&topics);
        offsets_each(b->offsets, gname, of_collect_topics, &topics);
        sk_buf_add_i32(&body, (int32_t)sk_map_count(&topics));
        for (sk_map_entry_t *e = sk_map_next(&topics, NULL); e; e = sk_map_next(&topics, e)) {
            of_all_t a = {&body, v, e->key, 0};
            kp_write_cstr(&body, e->key);
            offsets_each(b->offsets, gname, of_count, &a);
            sk_buf_add_i32(&body, a.count);
            offsets_each(b->offsets, gname, of_write, &a);
        }
        sk_map_release(&topics);
    } else {
        sk_buf_add_i32(&body, nt);
        for (int32_t i = 0; i < nt && !c->err; i++) {
            kp_str_t name = kp_read_str(c);
            int32_t np = kp_read_arraylen(c, 4);
            if (np < 0 || name.len < 0) c->err = 1;
            if (c->err) break;
            char *tname = sk_strndup(name.p, (size_t)name.len);
            kp_write_kstr(&body, name);
            sk_buf_add_i32(&body, np);
            for (int32_t k = 0; k < np && !c->err; k++) {
                int32_t idx = sk_cur_i32(c);
                const offset_commit_t *oc = gerr ? NULL : offsets_get(b->offsets, gname, tname, idx);
                write_offset_fetch_part(&body, v, idx, oc, gerr);
            }
            free(tname);
        }
    }
    free(gname);
    if (c->err) {
        sk_buf_release(&body);
        KP_MALFORMED(ctx, "topics");
    }
    if (v >= 3) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add(out, body.data, body.len);
    if (v >= 2) sk_buf_add_i16(out, (int16_t)gerr);
    sk_buf_release(&body);
    return KP_RESPOND;
}

/* ---- CreateTopics -------------------------------------------------------- */

static kp_action_t kp_handle_CreateTopics(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    broker_t *b = ctx->b;
    int32_t nt = kp_read_arraylen(c, 14);
    if (c->err || nt < 0) KP_MALFORMED(ctx, "topics");
    typedef struct {
        kp_str_t name;
        int32_t n;
        int16_t rf;
        int32_t nassign;
    } req_t;
    req_t *reqs = sk_calloc((size_t)nt + 1, sizeof *reqs);
    for (int32_t i = 0; i < nt && !c->err; i++) {
        reqs[i].name = kp_read_str(c);
        reqs[i].n = sk_cur_i32(c);
        reqs[i].rf = sk_cur_i16(c);
        reqs[i].nassign = kp_read_arraylen(c, 8);
        for (int32_t k = 0; k < reqs[i].nassign && !c->err; k++) {
            (void)sk_cur_i32(c);
            int32_t nb = kp_read_arraylen(c, 4);
            sk_cur_skip(c, (size_t)(nb > 0 ? nb : 0) * 4);
        }
        int32_t ncfg = kp_read_arraylen(c, 4);
        for (int32_t k = 0; k < ncfg && !c->err; k++) {
            (void)kp_read_str(c);
            (void)kp_read_str(c);
        }
    }
    (void)sk_cur_i32(c); /* timeout_ms */
    int validate_only = kp_read_bool(c);
    if (c->err) {
        free(reqs);
        KP_MALFORMED(ctx, "topics");
    }
    sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add_i32(out, nt);
    for (int32_t i = 0; i < nt; i++) {
        req_t *r = &reqs[i];
        kp_err_t err = KP_ERR_NONE;
        char msg[256] = "";
        int32_t n = r->n == -1 && r->nassign > 0 ? r->nassign : r->n;
        if (r->name.len < 0 || !log_topic_name_valid(r->name.p, (size_t)r->name.len)) {
            err = KP_ERR_INVALID_TOPIC_EXCEPTION;
            snprintf(msg, sizeof msg, "topic names are 1-249 characters of [a-zA-Z0-9._-], not '.' or '..'");
        } else if (topic_find(b, r->name)) {
            err = KP_ERR_TOPIC_ALREADY_EXISTS;
            snprintf(msg, sizeof msg, "topic '%.*s' already exists", (int)r->name.len, r->name.p);
        } else if (n == 0 || n < -1 || n > 10000) {
            err = KP_ERR_INVALID_PARTITIONS;
            snprintf(msg, sizeof msg, "number of partitions must be 1..10000 (or -1 for the default)");
        } else if (r->rf != -1 && r->rf != 1) {
            err = KP_ERR_INVALID_REPLICATION_FACTOR;
            snprintf(msg, sizeof msg, "souk-broker is a single node: replication factor must be 1 or -1");
        } else if (!validate_only) {
            log_topic_t *t;
            log_err_t le = log_topic_create(b->log, r->name.p, (size_t)r->name.len, n, &t, msg, sizeof msg);
            err = log_err_to_kp(le);
        }
        kp_write_kstr(out, r->name);
        sk_buf_add_i16(out, (int16_t)err);
        kp_write_cstr(out, err ? msg : NULL);
    }
    free(reqs);
    return KP_RESPOND;
}

/* ---- dispatch ------------------------------------------------------------ */

const kp_api_t kp_api_table[KP_API__MAX] = {
    [KP_API_Produce] = {"Produce", 0, 7, 9, kp_handle_Produce},
    [KP_API_Fetch] = {"Fetch", 4, 11, 12, kp_handle_Fetch},
    [KP_API_ListOffsets] = {"ListOffsets", 1, 2, 6, kp_handle_ListOffsets},
    [KP_API_Metadata] = {"Metadata", 0, 4, 9, kp_handle_Metadata},
    [KP_API_OffsetCommit] = {"OffsetCommit", 2, 7, 8, kp_handle_OffsetCommit},
    [KP_API_OffsetFetch] = {"OffsetFetch", 1, 5, 6, kp_handle_OffsetFetch},
    [KP_API_FindCoordinator] = {"FindCoordinator", 0, 2, 3, kp_handle_FindCoordinator},
    [KP_API_JoinGroup] = {"JoinGroup", 0, 5, 6, kp_handle_JoinGroup},
    [KP_API_Heartbeat] = {"Heartbeat", 0, 3, 4, kp_handle_Heartbeat},
    [KP_API_LeaveGroup] = {"LeaveGroup", 0, 1, 4, kp_handle_LeaveGroup},
    [KP_API_SyncGroup] = {"SyncGroup", 0, 3, 4, kp_handle_SyncGroup},
    [KP_API_DescribeGroups] = {"DescribeGroups", 0, 4, 5, kp_handle_DescribeGroups},
    [KP_API_ListGroups] = {"ListGroups", 0, 2, 3, kp_handle_ListGroups},
    [KP_API_ApiVersions] = {"ApiVersions", 0, 3, 3, kp_handle_ApiVersions},
    [KP_API_CreateTopics] = {"CreateTopics", 2, 4, 5, kp_handle_CreateTopics},
};

const kp_api_t *kp_api_get(int16_t key)
{
    if (key < 0 || key >= KP_API__MAX || !kp_api_table[key].name) return NULL;
    return &kp_api_table[key];
}

void kp_frame_begin(sk_buf_t *out, int32_t correlation_id, int flexible_header)
{
    sk_buf_add_i32(out, 0); /* size, patched by kp_frame_end */
    sk_buf_add_i32(out, correlation_id);
    if (flexible_header) sk_buf_add_uvarint(out, 0);
}

void kp_frame_end(sk_buf_t *out, size_t start)
{
    sk_buf_put_i32(out, start, (int32_t)(out->len - start - 4));
}

kp_action_t kp_handle_frame(kp_ctx_t *ctx, uint8_t *frame, size_t len, sk_buf_t *out)
{
    sk_cur_t c;
    kp_hdr_t h;
    sk_cur_init(&c, frame, len);
    int16_t key = len >= 2 ? sk_load_i16(frame) : -1;
    const kp_api_t *api = kp_api_get(key);
    ctx->hdr = &h;
    if (kp_hdr_parse(&c, &h, api ? api->flex_from : -1) < 0) {
        snprintf(ctx->errstr, sizeof ctx->errstr, "malformed request header");
        return KP_CLOSE;
    }
    if (!api) {
        snprintf(ctx->errstr, sizeof ctx->errstr, "unsupported API key %d v%d", h.api_key, h.api_version);
        return KP_CLOSE;
    }
    size_t start = out->len;
    if (h.api_version < api->min_ver || h.api_version > api->max_ver) {
        if (key == KP_API_ApiVersions) {
            /* Answered in the v0 format with UNSUPPORTED_VERSION and our
             * ranges, so the client can retry with a version we speak. */
            kp_frame_begin(out, h.correlation_id, 0);
            write_api_versions(out, 0, KP_ERR_UNSUPPORTED_VERSION);
            kp_frame_end(out, start);
            return KP_RESPOND;
        }
        snprintf(ctx->errstr, sizeof ctx->errstr, "unsupported version %d of %s (souk-broker speaks %d-%d)",
                 h.api_version, api->name, api->min_ver, api->max_ver);
        return KP_CLOSE;
    }
    /* The response header is v1 (with tags) for flexible versions, except
     * ApiVersions whose response header is always v0. */
    int flex_resp = api->flex_from >= 0 && h.api_version >= api->flex_from && key != KP_API_ApiVersions;
    kp_frame_begin(out, h.correlation_id, flex_resp);
    kp_action_t a = api->handler(ctx, &c, out);
    if (a == KP_RESPOND) kp_frame_end(out, start);
    else out->len = start;
    return a;
}
