/*
 * kafka.h - the contract between the Kafka connection layer (server.c) and
 * the API handlers (handlers.c).
 *
 * server.c cuts frames, parses the request header, looks the API up in
 * kp_api_table and calls its handler with the body cursor; the handler writes
 * the response body (no size, no correlation id) to out and says what to do.
 */
#ifndef SOUK_KAFKA_H
#define SOUK_KAFKA_H

#include <stdint.h>

#include "broker.h"
#include "proto.h"

typedef enum {
    KP_RESPOND = 0, /* send out as the response */
    KP_NO_RESPONSE, /* e.g. Produce with acks=0 */
    KP_DEFER,       /* ctx->fetch holds a long poll; the server answers later */
    KP_CLOSE,       /* malformed request: log and close the connection */
} kp_action_t;

typedef struct kp_fetch_part_s {
    log_part_t *part; /* NULL: unknown topic or partition */
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
} kp_fetch_part_t;

typedef struct kp_fetch_topic_s {
    char *name;
    int32_t nparts;
    kp_fetch_part_t *parts;
} kp_fetch_topic_t;

/* A parsed Fetch request, kept while it waits for data. */
typedef struct kp_fetch_s {
    int16_t version;
    int32_t correlation_id;
    int32_t max_wait_ms, min_bytes, max_bytes;
    int32_t ntopics;
    kp_fetch_topic_t *topics;
    /* owned by server.c while deferred */
    void *conn;
    struct event *timer;
    struct kp_fetch_s *next, *prev;
} kp_fetch_t;

void kp_fetch_free(kp_fetch_t *f);
/* Writes the Fetch response body for f's current state; returns the record
 * bytes it holds. */
size_t kp_fetch_respond(broker_t *b, kp_fetch_t *f, sk_buf_t *out);
/* True when some partition of f has data past its fetch offset. */
int kp_fetch_has_data(const kp_fetch_t *f);

/*
 * A held JoinGroup or SyncGroup.  The group coordinator answers it through
 * kp_group_callbacks(), possibly before the handler returns: then `done` is
 * set and `body` holds the response body, which the handler sends at once.
 * Otherwise the server attaches its connection (conn != NULL) and the answer
 * is sent by kp_server_waiter_deliver() when it comes.
 */
typedef struct kp_waiter_s {
    int16_t api_key, api_version;
    int32_t correlation_id;
    void *conn;
    int done;
    sk_buf_t body;
} kp_waiter_t;

typedef struct kp_ctx_s {
    broker_t *b;
    const kp_hdr_t *hdr;
    const char *peer;   /* for log lines */
    int can_defer;      /* 0 when no server can answer later (fuzzing) */
    kp_fetch_t *fetch;  /* set by the Fetch handler with KP_DEFER */
    kp_waiter_t *waiter; /* set by JoinGroup/SyncGroup with KP_DEFER */
    char errstr[256];   /* why, with KP_CLOSE */
} kp_ctx_t;

typedef kp_action_t (*kp_handler_fn)(kp_ctx_t *ctx, sk_cur_t *body, sk_buf_t *out);

typedef struct kp_api_s {
    const char *name; /* Kafka's name, NULL for keys souk does not speak */
    int16_t min_ver, max_ver;
    int16_t flex_from; /* first flexible version (-1: none) */
    kp_handler_fn handler;
} kp_api_t;

extern const kp_api_t kp_api_table[KP_API__MAX];

/* For handlers: closes the connection over a request that does not parse. */
#define KP_MALFORMED(ctx, what)                                                                    \
    do {                                                                                           \
        snprintf((ctx)->errstr, sizeof (ctx)->errstr, "malformed %s v%d request: %s",             \
                 kp_api_table[(ctx)->hdr->api_key].name, (ctx)->hdr->api_version, what);           \
        return KP_CLOSE;                                                                           \
    } while (0)

/* The API entry for key, or NULL. */
const kp_api_t *kp_api_get(int16_t key);

/*
 * Handles one whole request frame (size prefix removed), writing the whole
 * response frame (size prefix and response header included) to out.  The
 * frame bytes may be modified (Produce rewrites baseOffset in place).  Used by
 * server.c and by the fuzz target.
 */
kp_action_t kp_handle_frame(kp_ctx_t *ctx, uint8_t *frame, size_t len, sk_buf_t *out);

/* Wraps a response body: size, correlation id, tagged fields if flexible. */
void kp_frame_begin(sk_buf_t *out, int32_t correlation_id, int flexible_header);
void kp_frame_end(sk_buf_t *out, size_t start);

/* server.c: called after an append so waiting fetches are answered. */
void kp_server_notify_append(broker_t *b);
/* server.c: sends a held response whose body is in w->body, frees w and lets
 * its connection go on. */
void kp_server_waiter_deliver(kp_waiter_t *w);

/* handlers_group.c: the coordinator of b, created on first use. */
struct grp_coord_s *kp_groups(broker_t *b);
void kp_waiter_free(kp_waiter_t *w);

/* handlers_group.c: the group API handlers, for the dispatch table. */
kp_action_t kp_handle_JoinGroup(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out);
kp_action_t kp_handle_SyncGroup(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out);
kp_action_t kp_handle_Heartbeat(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out);
kp_action_t kp_handle_LeaveGroup(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out);
kp_action_t kp_handle_ListGroups(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out);
kp_action_t kp_handle_DescribeGroups(kp_ctx_t *ctx, sk_cur_t *c, sk_buf_t *out);
/* handlers_group.c: whether an OffsetCommit may be stored (an ErrorCode). */
int16_t kp_group_commit_check(broker_t *b, kp_str_t group, int32_t generation, kp_str_t member);

#endif
