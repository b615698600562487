/*
 * group.h - the consumer group coordinator, in Kafka's own terms.
 *
 * A group moves through Empty -> PreparingRebalance -> CompletingRebalance
 * -> Stable (and back to PreparingRebalance whenever a member joins, leaves
 * or expires).  JoinGroup responses are held until every known member has
 * rejoined or the rebalance timeout passes; SyncGroup responses of followers
 * are held until the leader sends the assignment.
 *
 * This module knows nothing of sockets or the wire format: a held request is
 * a `waiter` (an opaque pointer owned by the caller) and answers go through
 * the callbacks in grp_callbacks_t, possibly from inside the call that
 * completes a rebalance (for the waiter of that very call too).  Time is
 * passed in (monotonic ms) so that tests can drive it; grp_tick() must be
 * called periodically (every 100 ms is plenty) to expire sessions and end
 * rebalances whose timeout passed.
 *
 * A member's session is its heartbeats; a closed connection does not remove
 * it (grp_waiter_cancel only forgets the waiter), as in Kafka.
 */
#ifndef SOUK_GROUP_H
#define SOUK_GROUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct grp_coord_s grp_coord_t;

typedef enum {
    GRP_EMPTY = 0,
    GRP_PREPARING_REBALANCE,
    GRP_COMPLETING_REBALANCE,
    GRP_STABLE,
    GRP_DEAD,
} grp_state_t;

const char *grp_state_name(grp_state_t s); /* "Empty", "PreparingRebalance", ... */

/* Error results use Kafka's ErrorCode numbers (see kafka/proto.h). */
enum {
    GRP_ERR_NONE = 0,
    GRP_ERR_COORDINATOR_NOT_AVAILABLE = 15,
    GRP_ERR_ILLEGAL_GENERATION = 22,
    GRP_ERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    GRP_ERR_INVALID_GROUP_ID = 24,
    GRP_ERR_UNKNOWN_MEMBER_ID = 25,
    GRP_ERR_INVALID_SESSION_TIMEOUT = 26,
    GRP_ERR_REBALANCE_IN_PROGRESS = 27,
    GRP_ERR_INVALID_REQUEST = 42,
    GRP_ERR_MEMBER_ID_REQUIRED = 79,
};

typedef struct grp_bytes_s {
    const uint8_t *p;
    size_t len;
} grp_bytes_t;

typedef struct grp_protocol_s {
    const char *name; /* NUL-terminated */
    grp_bytes_t metadata;
} grp_protocol_t;

typedef struct grp_join_req_s {
    const char *group_id;
    const char *member_id; /* "" for a new member */
    const char *client_id, *client_host;
    int32_t session_timeout_ms, rebalance_timeout_ms;
    const char *protocol_type;
    int32_t nprotocols;
    const grp_protocol_t *protocols;
    int require_known_member_id; /* JoinGroup v4+: MEMBER_ID_REQUIRED flow */
} grp_join_req_t;

typedef struct grp_join_member_s {
    const char *member_id;
    grp_bytes_t metadata;
} grp_join_member_t;

/* Everything a JoinGroup response carries; valid only during the callback. */
typedef struct grp_join_reply_s {
    int16_t error;
    int32_t generation_id;
    const char *protocol_name; /* NULL when none */
    const char *leader;
    const char *member_id;
    int32_t nmembers; /* non-zero for the leader only */
    const grp_join_member_t *members;
} grp_join_reply_t;

typedef struct grp_callbacks_s {
    void (*join_reply)(void *opaque, void *waiter, const grp_join_reply_t *r);
    void (*sync_reply)(void *opaque, void *waiter, int16_t error, grp_bytes_t assignment);
    void *opaque;
} grp_callbacks_t;

typedef struct grp_config_s {
    int32_t min_session_timeout_ms, max_session_timeout_ms;
    int32_t initial_rebalance_delay_ms; /* wait for more members when leaving Empty */
    size_t max_metadata_bytes;          /* per member, all protocols together */
} grp_config_t;

grp_coord_t *grp_coord_new(const grp_config_t *cfg, const grp_callbacks_t *cb);
void grp_coord_free(grp_coord_t *c); /* answers nothing; waiters are dropped */

/* JoinGroup.  The answer comes through join_reply(waiter), now or later. */
void grp_join(grp_coord_t *c, const grp_join_req_t *req, void *waiter, int64_t now);

typedef struct grp_assignment_s {
    const char *member_id;
    grp_bytes_t assignment;
} grp_assignment_t;

/* SyncGroup.  The answer comes through sync_reply(waiter), now or later. */
void grp_sync(grp_coord_t *c, const char *group_id, int32_t generation, const char *member_id,
              int32_t nassign, const grp_assignment_t *assign, void *waiter, int64_t now);

/* Heartbeat and LeaveGroup answer at once with an error code. */
int16_t grp_heartbeat(grp_coord_t *c, const char *group_id, int32_t generation, const char *member_id,
                      int64_t now);
int16_t grp_leave(grp_coord_t *c, const char *group_id, const char *member_id, int64_t now);

/* Whether an OffsetCommit from (generation, member_id) may be stored. */
int16_t grp_commit_check(grp_coord_t *c, const char *group_id, int32_t generation, const char *member_id,
                         int64_t now);

/* The caller's connection went away: forget waiter (no answer is sent). */
void grp_waiter_cancel(grp_coord_t *c, void *waiter);

/* Expires silent members, ends overdue rebalances. */
void grp_tick(grp_coord_t *c, int64_t now);

/* Read-only views for ListGroups / DescribeGroups / tools. */
typedef struct grp_member_info_s {
    const char *member_id, *client_id, *client_host;
    grp_bytes_t metadata; /* of the chosen protocol */
    grp_bytes_t assignment;
} grp_member_info_t;

typedef struct grp_info_s {
    const char *group_id;
    grp_state_t state;
    const char *protocol_type; /* "" when Empty and never joined */
    const char *protocol_name; /* "" unless a generation is active */
    int32_t generation;
    const char *leader;
    int32_t nmembers;
    const grp_member_info_t *members;
} grp_info_t;

typedef void (*grp_each_fn)(void *opaque, const grp_info_t *g);
/* Calls fn for every group (members not filled in). */
void grp_each(grp_coord_t *c, grp_each_fn fn, void *opaque);
/* Calls fn once with the group and its members; returns 0, or -1 if there is
 * no such group. */
int grp_describe(grp_coord_t *c, const char *group_id, grp_each_fn fn, void *opaque);

#endif
