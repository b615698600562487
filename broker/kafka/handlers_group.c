/*
 * handlers_group.c - the consumer group APIs: JoinGroup, SyncGroup,
 * Heartbeat, LeaveGroup, ListGroups, DescribeGroups.  Wire decoding and
 * encoding only; the state machine is broker/group/group.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "kafka.h"
#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "sk_map.h"


/* A wire string as a C string (freed by the caller); NULL becomes "". */
static char *cstr(kp_str_t s)
{
    return sk_strndup(s.len > 0 ? s.p : "", s.len > 0 ? (size_t)s.len : 0);
}

void kp_waiter_free(kp_waiter_t *w)
{
    if (!w) return;
    sk_buf_release(&w->body);
    free(w);
}

static kp_waiter_t *waiter_new(const kp_hdr_t *h)
{
    kp_waiter_t *w = sk_calloc(1, sizeof *w);
    w->api_key = h->api_key;
    w->api_version = h->api_version;
    w->correlation_id = h->correlation_id;
    sk_buf_init(&w->body, 64);
    return w;
}

/* Completes w: now if its connection is attached, else for the handler. */
static void waiter_answered(kp_waiter_t *w)
{
    w->done = 1;
    if (w->conn) kp_server_waiter_deliver(w);
}

static void join_reply_cb(void *opaque, void *waiter, const grp_join_reply_t *r)
{
    (void)opaque;
    kp_waiter_t *w = waiter;
    sk_buf_t *out = &w->body;
    int16_t v = w->api_version;
    sk_buf_reset(out);
    if (v >= 2) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add_i16(out, r->error);
    sk_buf_add_i32(out, r->generation_id);
    kp_write_cstr(out, r->protocol_name ? r->protocol_name : "");
    kp_write_cstr(out, r->leader ? r->leader : "");
    kp_write_cstr(out, r->member_id ? r->member_id : "");
    sk_buf_add_i32(out, r->nmembers);
    for (int32_t i = 0; i < r->nmembers; i++) {
        kp_write_cstr(out, r->members[i].member_id);
        if (v >= 5) kp_write_cstr(out, NULL); /* group_instance_id */
        kp_write_bytes(out, r->members[i].metadata.p, (int32_t)r->members[i].metadata.len);
    }
    waiter_answered(w);
}

static void sync_reply_cb(void *opaque, void *waiter, int16_t error, grp_bytes_t assignment)
{
    (void)opaque;
    kp_waiter_t *w = waiter;
    sk_buf_t *out = &w->body;
    sk_buf_reset(out);
    if (w->api_version >= 1) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add_i16(out, error);
    kp_write_bytes(out, assignment.p, (int32_t)assignment.len);
    waiter_answered(w);
}

struct grp_coord_s *kp_groups(broker_t *b)
{
    if (!b->groups) {
        grp_config_t gc = {
            .min_session_timeout_ms = b->cfg.group_min_session_timeout_ms > 0 ? (int32_t)b->cfg.group_min_session_timeout_ms : 1000,
            .max_session_timeout_ms = b->cfg.group_max_session_timeout_ms > 0 ? (int32_t)b->cfg.group_max_session_timeout_ms : 1800000,
            .initial_rebalance_delay_ms = (int32_t)b->cfg.group_initial_rebalance_delay_ms,
            .max_metadata_bytes = 1 << 20,
        };
        grp_callbacks_t cb = {join_reply_cb, sync_reply_cb, b};
        b->groups = grp_coord_new(&gc, &cb);
    }
    return b->groups;
}

/* Sends w's answer now if it came during the call, else holds the
 * connection (or, where nothing can be held, gives up with err). */
static kp_action_t finish(kp_ctx_t *ctx, kp_waiter_t *w, sk_buf_t *out)
{
    if (w->done) {
        sk_buf_add(out, w->body.data, w->body.len);
        kp_waiter_free(w);
        return KP_RESPOND;
    }
    if (!ctx->can_defer) {
        grp_waiter_cancel(kp_groups(ctx->b), w);
        kp_waiter_free(w);
        snprintf(ctx->errstr, sizeof ctx->errstr, "cannot hold a response here");
        return KP_CLOSE;
    }
    ctx->waiter = w;
    return KP_DEFER;
}

kp_action_t kp_handle_JoinGroup(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    int16_t v = ctx->hdr->api_version;
    grp_join_req_t req;
    memset(&req, 0, sizeof req);
    kp_str_t group = kp_read_str(c);
    req.session_timeout_ms = sk_cur_i32(c);
    req.rebalance_timeout_ms = v >= 1 ? sk_cur_i32(c) : req.session_timeout_ms;
    kp_str_t member = kp_read_str(c);
    if (v >= 5) (void)kp_read_str(c); /* group_instance_id: static membership is not supported */
    kp_str_t ptype = kp_read_str(c);
    int32_t n = kp_read_arraylen(c, 6);
    if (c->err || n < 0) KP_MALFORMED(ctx, "header");
    grp_protocol_t *protos = sk_calloc((size_t)n + 1, sizeof *protos);
    for (int32_t i = 0; i < n && !c->err; i++) {
        kp_str_t name = kp_read_str(c);
        kp_str_t md = kp_read_bytes(c);
        protos[i].name = cstr(name);
        protos[i].metadata.p = (const uint8_t *)md.p;
        protos[i].metadata.len = md.len > 0 ? (size_t)md.len : 0;
    }
    kp_action_t a;
    char *gid = cstr(group), *mid = cstr(member), *pt = cstr(ptype), *client = cstr(ctx->hdr->client_id);
    if (c->err) {
        snprintf(ctx->errstr, sizeof ctx->errstr, "malformed JoinGroup v%d request: protocols", v);
        a = KP_CLOSE;
        goto out;
    }
    req.group_id = gid;
    req.member_id = mid;
    req.client_id = client;
    req.client_host = ctx->peer ? ctx->peer : "";
    req.protocol_type = pt;
    req.nprotocols = n;
    req.protocols = protos;
    req.require_known_member_id = v >= 4;
    kp_waiter_t *w = waiter_new(ctx->hdr);
    grp_join(kp_groups(ctx->b), &req, w, sk_mono_ms());
    a = finish(ctx, w, out);
out:
    for (int32_t i = 0; i < n; i++) free((char *)protos[i].name);
    free(protos);
    free(gid);
    free(mid);
    free(pt);
    free(client);
    return a;
}

kp_action_t kp_handle_SyncGroup(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    int16_t v = ctx->hdr->api_version;
    kp_str_t group = kp_read_str(c);
    int32_t generation = sk_cur_i32(c);
    kp_str_t member = kp_read_str(c);
    if (v >= 3) (void)kp_read_str(c); /* group_instance_id */
    int32_t n = kp_read_arraylen(c, 6);
    if (c->err || n < 0) KP_MALFORMED(ctx, "header");
    grp_assignment_t *as = sk_calloc((size_t)n + 1, sizeof *as);
    for (int32_t i = 0; i < n && !c->err; i++) {
        kp_str_t mid = kp_read_str(c);
        kp_str_t bytes = kp_read_bytes(c);
        as[i].member_id = cstr(mid);
        as[i].assignment.p = (const uint8_t *)bytes.p;
        as[i].assignment.len = bytes.len > 0 ? (size_t)bytes.len : 0;
    }
    kp_action_t a;
    char *gid = cstr(group), *mid = cstr(member);
    if (c->err) {
        snprintf(ctx->errstr, sizeof ctx->errstr, "malformed SyncGroup v%d request: assignments", v);
        a = KP_CLOSE;
    } else {
        kp_waiter_t *w = waiter_new(ctx->hdr);
        grp_sync(kp_groups(ctx->b), gid, generation, mid, n, as, w, sk_mono_ms());
        a = finish(ctx, w, out);
    }
    for (int32_t i = 0; i < n; i++) free((char *)as[i].member_id);
    free(as);
    free(gid);
    free(mid);
    return a;
}

kp_action_t kp_handle_Heartbeat(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    int16_t v = ctx->hdr->api_version;
    kp_str_t group = kp_read_str(c);
    int32_t generation = sk_cur_i32(c);
    kp_str_t member = kp_read_str(c);
    if (v >= 3) (void)kp_read_str(c); /* group_instance_id */
    if (c->err) KP_MALFORMED(ctx, "fields");
    char *gid = cstr(group), *mid = cstr(member);
    int16_t err = grp_heartbeat(kp_groups(ctx->b), gid, generation, mid, sk_mono_ms());
    free(gid);
    free(mid);
    if (v >= 1) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add_i16(out, err);
    return KP_RESPOND;
}

kp_action_t kp_handle_LeaveGroup(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    int16_t v = ctx->hdr->api_version;
    kp_str_t group = kp_read_str(c);
    kp_str_t member = kp_read_str(c);
    if (c->err) KP_MALFORMED(ctx, "fields");
    char *gid = cstr(group), *mid = cstr(member);
    int16_t err = grp_leave(kp_groups(ctx->b), gid, mid, sk_mono_ms());
    free(gid);
    free(mid);
    if (v >= 1) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add_i16(out, err);
    return KP_RESPOND;
}

typedef struct list_ctx_s {
    sk_buf_t *body;
    int32_t count;
    sk_map_t seen;
} list_ctx_t;

static void list_group_cb(void *opaque, const grp_info_t *g)
{
    list_ctx_t *l = opaque;
    sk_map_put(&l->seen, g->group_id, strlen(g->group_id), (void *)1);
    kp_write_cstr(l->body, g->group_id);
    kp_write_cstr(l->body, g->protocol_type);
    l->count++;
}

static void list_offsets_group_cb(void *opaque, const char *group)
{
    list_ctx_t *l = opaque;
    if (sk_map_get(&l->seen, group, strlen(group))) return;
    kp_write_cstr(l->body, group); /* offsets only: a simple consumer's group */
    kp_write_cstr(l->body, "");
    l->count++;
}

kp_action_t kp_handle_ListGroups(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    (void)c;
    sk_buf_t body;
    sk_buf_init(&body, 256);
    list_ctx_t l = {&body, 0, {0}};
    sk_map_init(&l.seen);
    grp_each(kp_groups(ctx->b), list_group_cb, &l);
    offsets_groups(ctx->b->offsets, list_offsets_group_cb, &l);
    if (ctx->hdr->api_version >= 1) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add_i16(out, 0);
    sk_buf_add_i32(out, l.count);
    sk_buf_add(out, body.data, body.len);
    sk_map_release(&l.seen);
    sk_buf_release(&body);
    return KP_RESPOND;
}

typedef struct describe_ctx_s {
    sk_buf_t *out;
    int16_t v;
} describe_ctx_t;

static void describe_cb(void *opaque, const grp_info_t *g)
{
    describe_ctx_t *d = opaque;
    sk_buf_t *out = d->out;
    sk_buf_add_i16(out, 0);
    kp_write_cstr(out, g->group_id);
    kp_write_cstr(out, grp_state_name(g->state));
    kp_write_cstr(out, g->protocol_type);
    kp_write_cstr(out, g->protocol_name);
    sk_buf_add_i32(out, g->nmembers);
    for (int32_t i = 0; i < g->nmembers; i++) {
        const grp_member_info_t *m = &g->members[i];
        kp_write_cstr(out, m->member_id);
        if (d->v >= 4) kp_write_cstr(out, NULL); /* group_instance_id */
        kp_write_cstr(out, m->client_id);
        kp_write_cstr(out, m->client_host);
        kp_write_bytes(out, m->metadata.p, (int32_t)m->metadata.len);
        kp_write_bytes(out, m->assignment.p, (int32_t)m->assignment.len);
    }
    if (d->v >= 3) sk_buf_add_i32(out, INT32_MIN); /* authorized_operations: not computed */
}

static void has_offsets_cb(void *opaque, const char *topic, int32_t partition, const offset_commit_t *oc)
{
    (void)topic;
    (void)partition;
    (void)oc;
    *(int *)opaque = 1;
}

kp_action_t kp_handle_DescribeGroups(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out)
{
    int16_t v = ctx->hdr->api_version;
    int32_t n = kp_read_arraylen(c, 2);
    if (c->err || n < 0) KP_MALFORMED(ctx, "groups");
    kp_str_t *names = sk_calloc((size_t)n + 1, sizeof *names);
    for (int32_t i = 0; i < n; i++) names[i] = kp_read_str(c);
    if (v >= 3) (void)kp_read_bool(c); /* include_authorized_operations */
    if (c->err) {
        free(names);
        KP_MALFORMED(ctx, "groups");
    }
    if (v >= 1) sk_buf_add_i32(out, 0); /* throttle_time_ms */
    sk_buf_add_i32(out, n);
    describe_ctx_t d = {out, v};
    for (int32_t i = 0; i < n; i++) {
        char *gid = cstr(names[i]);
        if (!*gid) {
            sk_buf_add_i16(out, KP_ERR_INVALID_GROUP_ID);
            kp_write_cstr(out, gid);
            kp_write_cstr(out, "");
            kp_write_cstr(out, "");
            kp_write_cstr(out, "");
            sk_buf_add_i32(out, 0);
            if (v >= 3) sk_buf_add_i32(out, INT32_MIN);
        } else if (grp_describe(kp_groups(ctx->b), gid, describe_cb, &d) < 0) {
            /* Unknown to the coordinator: Dead, as Kafka reports it (or Empty
             * when it only has committed offsets). */
            int has_offsets = 0;
            offsets_each(ctx->b->offsets, gid, has_offsets_cb, &has_offsets);
            grp_info_t gi = {gid, has_offsets ? GRP_EMPTY : GRP_DEAD, "", "", 0, "", 0, NULL};
            describe_cb(&d, &gi);
        }
        free(gid);
    }
    free(names);
    return KP_RESPOND;
}

int16_t kp_group_commit_check(broker_t *b, kp_str_t group, int32_t generation, kp_str_t member)
{
    char *gid = cstr(group), *mid = cstr(member);
    int16_t e = grp_commit_check(kp_groups(b), gid, generation, mid, sk_mono_ms());
    free(gid);
    free(mid);
    return e;
}
