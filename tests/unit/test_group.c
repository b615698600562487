/*
 * test_group.c - broker/group/group.c, the consumer group coordinator, driven
 * with a fake clock (every call takes `now`) and fake waiters: a waiter is the
 * address of a slot in waiters[], and every join_reply / sync_reply callback
 * is recorded (with copies of its strings and bytes) so that a test can check
 * who was answered, when, with what, and that nobody was answered twice or
 * after their waiter was cancelled.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"

/* ---- recording callbacks ------------------------------------------------- */

#define MAX_RECS 256
#define MAX_MEMBERS 8
#define ID_LEN 256

typedef struct rec_s {
    char kind; /* 'J' join_reply, 'S' sync_reply */
    void *waiter;
    int16_t error;
    /* JoinGroup */
    int32_t generation;
    char protocol[64]; /* "(null)" when NULL */
    char leader[ID_LEN], member_id[ID_LEN];
    int32_t nmembers;
    char members[MAX_MEMBERS][ID_LEN];
    uint8_t *md[MAX_MEMBERS];
    size_t md_len[MAX_MEMBERS];
    /* SyncGroup */
    uint8_t *assignment;
    size_t assignment_len;
} rec_t;

static rec_t recs[MAX_RECS];
static int nrecs;
static int waiters[32]; /* fake waiters: &waiters[i] */
#define W(i) ((void *)&waiters[i])

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "(null)");
}

static uint8_t *copy_bytes(const uint8_t *p, size_t len)
{
    uint8_t *d = malloc(len + 1);
    ck_assert_ptr_nonnull(d);
    if (len) memcpy(d, p, len);
    return d;
}

static void on_join(void *opaque, void *waiter, const grp_join_reply_t *r)
{
    ck_assert_ptr_eq(opaque, (void *)recs);
    ck_assert_int_lt(nrecs, MAX_RECS);
    rec_t *x = &recs[nrecs++];
    memset(x, 0, sizeof *x);
    x->kind = 'J';
    x->waiter = waiter;
    x->error = r->error;
    x->generation = r->generation_id;
    copy_str(x->protocol, sizeof x->protocol, r->protocol_name);
    copy_str(x->leader, sizeof x->leader, r->leader);
    copy_str(x->member_id, sizeof x->member_id, r->member_id);
    x->nmembers = r->nmembers;
    ck_assert_int_le(r->nmembers, MAX_MEMBERS);
    for (int32_t i = 0; i < r->nmembers; i++) {
        copy_str(x->members[i], ID_LEN, r->members[i].member_id);
        x->md[i] = copy_bytes(r->members[i].metadata.p, r->members[i].metadata.len);
        x->md_len[i] = r->members[i].metadata.len;
    }
}

static void on_sync(void *opaque, void *waiter, int16_t error, grp_bytes_t assignment)
{
    ck_assert_ptr_eq(opaque, (void *)recs);
    ck_assert_int_lt(nrecs, MAX_RECS);
    rec_t *x = &recs[nrecs++];
    memset(x, 0, sizeof *x);
    x->kind = 'S';
    x->waiter = waiter;
    x->error = error;
    x->assignment = copy_bytes(assignment.p, assignment.len);
    x->assignment_len = assignment.len;
}

static void recs_clear(void)
{
    for (int i = 0; i < nrecs; i++) {
        for (int k = 0; k < MAX_MEMBERS; k++) free(recs[i].md[k]);
        free(recs[i].assignment);
    }
    memset(recs, 0, sizeof recs);
    nrecs = 0;
}

/* Number of replies of kind for waiter w. */
static int count_for(char kind, void *w)
{
    int n = 0;
    for (int i = 0; i < nrecs; i++)
        if (recs[i].kind == kind && recs[i].waiter == w) n++;
    return n;
}

/* The only reply of kind for w (fails unless there is exactly one). */
static rec_t *reply(char kind, void *w)
{
    rec_t *found = NULL;
    for (int i = 0; i < nrecs; i++) {
        if (recs[i].kind != kind || recs[i].waiter != w) continue;
        ck_assert_msg(!found, "waiter %p got two %c replies", w, kind);
        found = &recs[i];
    }
    ck_assert_msg(found != NULL, "waiter %p got no %c reply", w, kind);
    return found;
}

/* ---- requests ------------------------------------------------------------ */

#define SESSION 10000
#define REBALANCE 30000
#define DELAY 500
#define MAX_MD 1024

static grp_coord_t *coord(void)
{
    recs_clear();
    grp_config_t cfg = {
        .min_session_timeout_ms = 1000,
        .max_session_timeout_ms = 300000,
        .initial_rebalance_delay_ms = DELAY,
        .max_metadata_bytes = MAX_MD,
    };
    grp_callbacks_t cb = {on_join, on_sync, recs};
    grp_coord_t *c = grp_coord_new(&cfg, &cb);
    ck_assert_ptr_nonnull(c);
    return c;
}

static void coord_free(grp_coord_t *c)
{
    grp_coord_free(c);
    recs_clear();
}

/* Protocol lists: each member's metadata names the member ("md-A") so the
 * leader's member list can be checked byte for byte. */
typedef struct join_s {
    const char *group, *member_id, *client_id, *type;
    int32_t session, rebalance;
    int require_known; /* JoinGroup v4+ */
    const char *protos[4];
    const char *md;
    size_t md_len; /* 0: strlen(md) */
} join_t;

static void do_join(grp_coord_t *c, const join_t *j, void *w, int64_t now)
{
    grp_protocol_t p[4];
    int32_t n = 0;
    size_t len = j->md_len ? j->md_len : strlen(j->md ? j->md : "");
    for (; n < 4 && j->protos[n]; n++) {
        p[n].name = j->protos[n];
        p[n].metadata.p = (const uint8_t *)(j->md ? j->md : "");
        p[n].metadata.len = len;
    }
    grp_join_req_t req = {
        .group_id = j->group ? j->group : "g",
        .member_id = j->member_id ? j->member_id : "",
        .client_id = j->client_id ? j->client_id : "client",
        .client_host = "/127.0.0.1",
        .session_timeout_ms = j->session ? j->session : SESSION,
        .rebalance_timeout_ms = j->rebalance ? j->rebalance : REBALANCE,
        .protocol_type = j->type ? j->type : "consumer",
        .nprotocols = n,
        .protocols = n ? p : NULL,
        .require_known_member_id = j->require_known,
    };
    grp_join(c, &req, w, now);
}

/* A plain JoinGroup of member_id ("" for new) with protocol "range". */
static void join_simple(grp_coord_t *c, const char *member_id, const char *md, void *w, int64_t now)
{
    join_t j = {.member_id = member_id, .md = md, .protos = {"range"}};
    do_join(c, &j, w, now);
}

static void sync_leader(grp_coord_t *c, int32_t gen, const char *leader, const char *m1, const char *a1,
                        const char *m2, const char *a2, void *w, int64_t now)
{
    grp_assignment_t as[2] = {
        {m1, {(const uint8_t *)a1, a1 ? strlen(a1) : 0}},
        {m2, {(const uint8_t *)a2, a2 ? strlen(a2) : 0}},
    };
    grp_sync(c, "g", gen, leader, m2 ? 2 : 1, as, w, now);
}

static void sync_follower(grp_coord_t *c, int32_t gen, const char *member, void *w, int64_t now)
{
    grp_sync(c, "g", gen, member, 0, NULL, w, now);
}

static void assert_bytes(const uint8_t *p, size_t len, const char *want)
{
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_msg(memcmp(p, want, len) == 0, "bytes differ from \"%s\"", want);
}

/* Group state through grp_describe. */
typedef struct seen_s {
    grp_state_t state;
    int32_t generation, nmembers;
    char protocol_type[32], protocol[32], leader[ID_LEN];
    char members[MAX_MEMBERS][ID_LEN];
    char assignment[MAX_MEMBERS][64];
} seen_t;

static void describe_cb(void *opaque, const grp_info_t *g)
{
    seen_t *s = opaque;
    s->state = g->state;
    s->generation = g->generation;
    s->nmembers = g->nmembers;
    copy_str(s->protocol_type, sizeof s->protocol_type, g->protocol_type);
    copy_str(s->protocol, sizeof s->protocol, g->protocol_name);
    copy_str(s->leader, sizeof s->leader, g->leader);
    for (int32_t i = 0; i < g->nmembers && i < MAX_MEMBERS; i++) {
        copy_str(s->members[i], ID_LEN, g->members[i].member_id);
        snprintf(s->assignment[i], sizeof s->assignment[i], "%.*s", (int)g->members[i].assignment.len,
                 g->members[i].assignment.p ? (const char *)g->members[i].assignment.p : "");
    }
}

static seen_t describe(grp_coord_t *c, const char *group)
{
    seen_t s;
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(grp_describe(c, group, describe_cb, &s), 0);
    return s;
}

/* Brings up a Stable generation 1 with members A (leader) and B, both
 * joined at t=0, rebalance at t=DELAY, synced at t=DELAY.  Copies the member
 * ids out.  Uses waiters 0..3 and clears the records afterwards. */
static void two_member_group(grp_coord_t *c, char *a, char *b)
{
    join_simple(c, "", "md-A", W(0), 0);
    join_simple(c, "", "md-B", W(1), 0);
    ck_assert_int_eq(nrecs, 0);
    grp_tick(c, DELAY);
    ck_assert_int_eq(nrecs, 2);
    rec_t *ra = reply('J', W(0)), *rb = reply('J', W(1));
    ck_assert_int_eq(ra->error, 0);
    ck_assert_int_eq(rb->error, 0);
    snprintf(a, ID_LEN, "%s", ra->member_id);
    snprintf(b, ID_LEN, "%s", rb->member_id);
    ck_assert_str_eq(ra->leader, a);
    sync_follower(c, 1, b, W(3), DELAY);
    sync_leader(c, 1, a, a, "as-A", b, "as-B", W(2), DELAY);
    ck_assert_int_eq(reply('S', W(2))->error, 0);
    ck_assert_int_eq(reply('S', W(3))->error, 0);
    ck_assert_int_eq(describe(c, "g").state, GRP_STABLE);
    recs_clear();
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(test_single_member)
{
    grp_coord_t *c = coord();
    join_simple(c, "", "md-A", W(0), 0);
    /* Held through the initial rebalance delay. */
    ck_assert_int_eq(nrecs, 0);
    ck_assert_int_eq(describe(c, "g").state, GRP_PREPARING_REBALANCE);
    grp_tick(c, DELAY - 1);
    ck_assert_int_eq(nrecs, 0);
    grp_tick(c, DELAY);
    ck_assert_int_eq(nrecs, 1);
    rec_t *r = reply('J', W(0));
    ck_assert_int_eq(r->error, 0);
    ck_assert_int_eq(r->generation, 1);
    ck_assert_str_eq(r->protocol, "range");
    ck_assert_str_ne(r->member_id, "");
    ck_assert_str_eq(r->leader, r->member_id);
    ck_assert_int_eq(r->nmembers, 1);
    ck_assert_str_eq(r->members[0], r->member_id);
    assert_bytes(r->md[0], r->md_len[0], "md-A");
    char a[ID_LEN];
    snprintf(a, sizeof a, "%s", r->member_id);
    ck_assert_int_eq(describe(c, "g").state, GRP_COMPLETING_REBALANCE);

    /* A heartbeat is fine while the assignment is being made. */
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, a, DELAY + 10), 0);
    sync_leader(c, 1, a, a, "as-A", NULL, NULL, W(1), DELAY + 20);
    r = reply('S', W(1));
    ck_assert_int_eq(r->error, 0);
    assert_bytes(r->assignment, r->assignment_len, "as-A");
    seen_t s = describe(c, "g");
    ck_assert_int_eq(s.state, GRP_STABLE);
    ck_assert_int_eq(s.generation, 1);
    ck_assert_int_eq(s.nmembers, 1);
    ck_assert_str_eq(s.protocol_type, "consumer");
    ck_assert_str_eq(s.protocol, "range");
    ck_assert_str_eq(s.leader, a);
    ck_assert_str_eq(s.assignment[0], "as-A");
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, a, DELAY + 30), 0);

    /* A repeated SyncGroup in Stable gets the stored assignment at once. */
    sync_follower(c, 1, a, W(2), DELAY + 40);
    assert_bytes(reply('S', W(2))->assignment, reply('S', W(2))->assignment_len, "as-A");
    ck_assert_int_eq(nrecs, 3);
    coord_free(c);
}
END_TEST

START_TEST(test_member_id_required)
{
    grp_coord_t *c = coord();
    join_t j = {.md = "md-A", .protos = {"range"}, .require_known = 1};
    do_join(c, &j, W(0), 0);
    rec_t *r = reply('J', W(0));
    ck_assert_int_eq(r->error, GRP_ERR_MEMBER_ID_REQUIRED);
    ck_assert_str_ne(r->member_id, "");
    ck_assert_int_eq(r->nmembers, 0);
    char id[ID_LEN];
    snprintf(id, sizeof id, "%s", r->member_id);
    /* The handed-out id is not a member yet. */
    ck_assert_int_eq(grp_heartbeat(c, "g", 0, id, 10), GRP_ERR_UNKNOWN_MEMBER_ID);

    /* A made-up id is refused. */
    j.member_id = "nobody-1234";
    do_join(c, &j, W(1), 20);
    ck_assert_int_eq(reply('J', W(1))->error, GRP_ERR_UNKNOWN_MEMBER_ID);

    /* The second JoinGroup with the handed-out id proceeds. */
    j.member_id = id;
    do_join(c, &j, W(2), 100);
    ck_assert_int_eq(count_for('J', W(2)), 0);
    grp_tick(c, 100 + DELAY);
    r = reply('J', W(2));
    ck_assert_int_eq(r->error, 0);
    ck_assert_int_eq(r->generation, 1);
    ck_assert_str_eq(r->member_id, id);
    ck_assert_str_eq(r->leader, id);
    ck_assert_int_eq(r->nmembers, 1);

    /* A handed-out id that is never used expires with the session timeout. */
    j.member_id = NULL;
    do_join(c, &j, W(3), 1000);
    r = reply('J', W(3));
    ck_assert_int_eq(r->error, GRP_ERR_MEMBER_ID_REQUIRED);
    char id2[ID_LEN];
    snprintf(id2, sizeof id2, "%s", r->member_id);
    ck_assert_str_ne(id2, id);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, id, 1000 + SESSION), 0); /* keep the first alive */
    grp_tick(c, 1000 + SESSION + 1);
    j.member_id = id2;
    do_join(c, &j, W(4), 1000 + SESSION + 2);
    ck_assert_int_eq(reply('J', W(4))->error, GRP_ERR_UNKNOWN_MEMBER_ID);
    coord_free(c);
}
END_TEST

START_TEST(test_two_members_initial)
{
    grp_coord_t *c = coord();
    join_simple(c, "", "md-A", W(0), 0);
    join_simple(c, "", "md-B", W(1), 300);
    /* The delay restarts with every new member while it runs. */
    grp_tick(c, DELAY);
    ck_assert_int_eq(nrecs, 0);
    grp_tick(c, 300 + DELAY - 1);
    ck_assert_int_eq(nrecs, 0);
    grp_tick(c, 300 + DELAY);
    ck_assert_int_eq(nrecs, 2);
    rec_t *ra = reply('J', W(0)), *rb = reply('J', W(1));
    ck_assert_int_eq(ra->error, 0);
    ck_assert_int_eq(rb->error, 0);
    ck_assert_int_eq(ra->generation, 1);
    ck_assert_int_eq(rb->generation, 1);
    ck_assert_str_ne(ra->member_id, rb->member_id);
    ck_assert_str_eq(ra->leader, ra->member_id); /* the first to join leads */
    ck_assert_str_eq(rb->leader, ra->member_id);
    /* The leader gets both members' metadata; the follower gets none. */
    ck_assert_int_eq(ra->nmembers, 2);
    ck_assert_int_eq(rb->nmembers, 0);
    for (int i = 0; i < 2; i++) {
        if (strcmp(ra->members[i], ra->member_id) == 0) assert_bytes(ra->md[i], ra->md_len[i], "md-A");
        else {
            ck_assert_str_eq(ra->members[i], rb->member_id);
            assert_bytes(ra->md[i], ra->md_len[i], "md-B");
        }
    }
    ck_assert_str_ne(ra->members[0], ra->members[1]);
    coord_free(c);
}
END_TEST

START_TEST(test_rejoin_waits_for_all)
{
    grp_coord_t *c = coord();
    char a[ID_LEN], b[ID_LEN];
    two_member_group(c, a, b);
    /* A rejoins: a rebalance starts, A is held until B rejoins too. */
    join_simple(c, a, "md-A2", W(4), 1000);
    ck_assert_int_eq(nrecs, 0);
    ck_assert_int_eq(describe(c, "g").state, GRP_PREPARING_REBALANCE);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, b, 1100), GRP_ERR_REBALANCE_IN_PROGRESS);
    grp_tick(c, 1200);
    ck_assert_int_eq(nrecs, 0);
    join_simple(c, b, "md-B2", W(5), 1300);
    ck_assert_int_eq(nrecs, 2);
    rec_t *ra = reply('J', W(4)), *rb = reply('J', W(5));
    ck_assert_int_eq(ra->generation, 2);
    ck_assert_int_eq(rb->generation, 2);
    ck_assert_str_eq(ra->member_id, a);
    ck_assert_str_eq(rb->member_id, b);
    ck_assert_str_eq(ra->leader, a); /* the leader stays */
    ck_assert_int_eq(ra->nmembers, 2);
    ck_assert_int_eq(rb->nmembers, 0);
    for (int i = 0; i < 2; i++)
        assert_bytes(ra->md[i], ra->md_len[i], strcmp(ra->members[i], a) == 0 ? "md-A2" : "md-B2");
    /* The old generation is gone. */
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, a, 1400), GRP_ERR_ILLEGAL_GENERATION);
    ck_assert_int_eq(grp_heartbeat(c, "g", 2, a, 1400), 0);
    coord_free(c);
}
END_TEST

START_TEST(test_sync_follower_waits)
{
    grp_coord_t *c = coord();
    join_simple(c, "", "md-A", W(0), 0);
    join_simple(c, "", "md-B", W(1), 0);
    grp_tick(c, DELAY);
    char a[ID_LEN], b[ID_LEN];
    snprintf(a, sizeof a, "%s", reply('J', W(0))->member_id);
    snprintf(b, sizeof b, "%s", reply('J', W(1))->member_id);
    recs_clear();

    /* The follower is held until the leader's assignment arrives. */
    sync_follower(c, 1, b, W(2), DELAY + 10);
    ck_assert_int_eq(nrecs, 0);
    grp_tick(c, DELAY + 1000);
    ck_assert_int_eq(nrecs, 0);
    /* Its session does not run out while it waits (the leader heartbeats). */
    for (int64_t t = DELAY + 1000; t <= DELAY + 2 * SESSION; t += 1000) {
        ck_assert_int_eq(grp_heartbeat(c, "g", 1, a, t), 0);
        grp_tick(c, t);
    }
    ck_assert_int_eq(nrecs, 0);
    ck_assert_int_eq(describe(c, "g").nmembers, 2);
    sync_leader(c, 1, a, b, "as-B", a, "as-A", W(3), DELAY + 2 * SESSION);
    ck_assert_int_eq(nrecs, 2);
    rec_t *ra = reply('S', W(3)), *rb = reply('S', W(2));
    ck_assert_int_eq(ra->error, 0);
    ck_assert_int_eq(rb->error, 0);
    assert_bytes(ra->assignment, ra->assignment_len, "as-A");
    assert_bytes(rb->assignment, rb->assignment_len, "as-B");
    ck_assert_int_eq(describe(c, "g").state, GRP_STABLE);

    /* SyncGroup errors: non-member, wrong generation. */
    sync_follower(c, 1, "stranger", W(4), DELAY + 2 * SESSION + 1);
    ck_assert_int_eq(reply('S', W(4))->error, GRP_ERR_UNKNOWN_MEMBER_ID);
    grp_sync(c, "nogroup", 1, b, 0, NULL, W(5), DELAY + 2 * SESSION + 1);
    ck_assert_int_eq(reply('S', W(5))->error, GRP_ERR_UNKNOWN_MEMBER_ID);
    sync_follower(c, 7, b, W(6), DELAY + 2 * SESSION + 1);
    ck_assert_int_eq(reply('S', W(6))->error, GRP_ERR_ILLEGAL_GENERATION);
    coord_free(c);
}
END_TEST

START_TEST(test_sync_during_rebalance)
{
    grp_coord_t *c = coord();
    char a[ID_LEN], b[ID_LEN];
    two_member_group(c, a, b);
    join_simple(c, a, "md-A", W(4), 1000); /* rebalance in progress */
    sync_follower(c, 1, b, W(5), 1010);
    ck_assert_int_eq(reply('S', W(5))->error, GRP_ERR_REBALANCE_IN_PROGRESS);
    join_simple(c, b, "md-B", W(6), 1020); /* generation 2, CompletingRebalance */
    ck_assert_int_eq(reply('J', W(6))->generation, 2);
    recs_clear();
    /* A held follower SyncGroup is failed when a new rebalance starts. */
    sync_follower(c, 2, b, W(7), 1030);
    ck_assert_int_eq(nrecs, 0);
    join_simple(c, "", "md-C", W(8), 1040);
    ck_assert_int_eq(reply('S', W(7))->error, GRP_ERR_REBALANCE_IN_PROGRESS);
    coord_free(c);
}
END_TEST

START_TEST(test_heartbeat_errors)
{
    grp_coord_t *c = coord();
    char a[ID_LEN], b[ID_LEN];
    two_member_group(c, a, b);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, a, 1000), 0);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, "stranger", 1000), GRP_ERR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(grp_heartbeat(c, "nogroup", 1, a, 1000), GRP_ERR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(grp_heartbeat(c, "g", 2, a, 1000), GRP_ERR_ILLEGAL_GENERATION);
    ck_assert_int_eq(grp_heartbeat(c, "g", 0, a, 1000), GRP_ERR_ILLEGAL_GENERATION);
    join_simple(c, "", "md-C", W(4), 1100); /* a new member: PreparingRebalance */
    ck_assert_int_eq(describe(c, "g").state, GRP_PREPARING_REBALANCE);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, a, 1200), GRP_ERR_REBALANCE_IN_PROGRESS);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, b, 1200), GRP_ERR_REBALANCE_IN_PROGRESS);
    coord_free(c);
}
END_TEST

START_TEST(test_leave_rebalances)
{
    grp_coord_t *c = coord();
    char a[ID_LEN], b[ID_LEN];
    two_member_group(c, a, b);
    ck_assert_int_eq(grp_leave(c, "g", "stranger", 1000), GRP_ERR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(grp_leave(c, "g", b, 1000), 0);
    ck_assert_int_eq(describe(c, "g").state, GRP_PREPARING_REBALANCE);
    ck_assert_int_eq(describe(c, "g").nmembers, 1);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, b, 1010), GRP_ERR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, a, 1010), GRP_ERR_REBALANCE_IN_PROGRESS);
    /* The remaining member rejoins and is answered at once (no initial
     * delay outside Empty). */
    join_simple(c, a, "md-A", W(4), 1020);
    rec_t *r = reply('J', W(4));
    ck_assert_int_eq(r->error, 0);
    ck_assert_int_eq(r->generation, 2);
    ck_assert_int_eq(r->nmembers, 1);
    ck_assert_str_eq(r->leader, a);

    /* The leader leaves: the next generation gets a new leader. */
    sync_leader(c, 2, a, a, "x", NULL, NULL, W(5), 1030);
    join_simple(c, "", "md-C", W(6), 1040);
    join_simple(c, a, "md-A", W(7), 1050);
    rec_t *rc = reply('J', W(6));
    ck_assert_int_eq(rc->generation, 3);
    char cc[ID_LEN];
    snprintf(cc, sizeof cc, "%s", rc->member_id);
    sync_follower(c, 3, cc, W(8), 1060);
    ck_assert_int_eq(grp_leave(c, "g", a, 1070), 0);
    ck_assert_int_eq(reply('S', W(8))->error, GRP_ERR_REBALANCE_IN_PROGRESS);
    join_simple(c, cc, "md-C", W(9), 1080);
    r = reply('J', W(9));
    ck_assert_int_eq(r->generation, 4);
    ck_assert_str_eq(r->leader, cc);

    /* The last member leaves: Empty. */
    ck_assert_int_eq(grp_leave(c, "g", cc, 1090), 0);
    ck_assert_int_eq(describe(c, "g").state, GRP_EMPTY);
    ck_assert_int_eq(describe(c, "g").nmembers, 0);
    coord_free(c);
}
END_TEST

START_TEST(test_session_expiry)
{
    grp_coord_t *c = coord();
    char a[ID_LEN], b[ID_LEN];
    two_member_group(c, a, b); /* both last seen at DELAY */
    int64_t t = DELAY;
    for (int i = 1; i <= 10; i++) ck_assert_int_eq(grp_heartbeat(c, "g", 1, a, t + i * 1000), 0);
    grp_tick(c, t + SESSION); /* exactly the session timeout: still there */
    ck_assert_int_eq(describe(c, "g").nmembers, 2);
    ck_assert_int_eq(describe(c, "g").state, GRP_STABLE);
    grp_tick(c, t + SESSION + 1);
    seen_t s = describe(c, "g");
    ck_assert_int_eq(s.nmembers, 1);
    ck_assert_str_eq(s.members[0], a);
    ck_assert_int_eq(s.state, GRP_PREPARING_REBALANCE);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, b, t + SESSION + 2), GRP_ERR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, a, t + SESSION + 2), GRP_ERR_REBALANCE_IN_PROGRESS);
    join_simple(c, a, "md-A", W(4), t + SESSION + 3);
    rec_t *r = reply('J', W(4));
    ck_assert_int_eq(r->generation, 2);
    ck_assert_int_eq(r->nmembers, 1);
    ck_assert_int_eq(nrecs, 1);

    /* The last member expiring leaves the group Empty. */
    sync_leader(c, 2, a, a, "x", NULL, NULL, W(5), t + SESSION + 4);
    grp_tick(c, t + 2 * SESSION + 5);
    s = describe(c, "g");
    ck_assert_int_eq(s.nmembers, 0);
    ck_assert_int_eq(s.state, GRP_EMPTY);
    coord_free(c);
}
END_TEST

START_TEST(test_rebalance_timeout_removes)
{
    grp_coord_t *c = coord();
    join_t ja = {.md = "md-A", .protos = {"range"}, .rebalance = 3000};
    join_t jb = {.md = "md-B", .protos = {"range"}, .rebalance = 3000};
    do_join(c, &ja, W(0), 0);
    do_join(c, &jb, W(1), 0);
    grp_tick(c, DELAY);
    char a[ID_LEN], b[ID_LEN];
    snprintf(a, sizeof a, "%s", reply('J', W(0))->member_id);
    snprintf(b, sizeof b, "%s", reply('J', W(1))->member_id);
    sync_follower(c, 1, b, W(3), DELAY);
    sync_leader(c, 1, a, a, "as-A", b, "as-B", W(2), DELAY);
    recs_clear();

    /* A rejoins at t=1000; B keeps heartbeating but never rejoins. */
    ja.member_id = a;
    do_join(c, &ja, W(4), 1000);
    for (int64_t t = 1100; t < 4000; t += 100) {
        ck_assert_int_eq(grp_heartbeat(c, "g", 1, b, t), GRP_ERR_REBALANCE_IN_PROGRESS);
        grp_tick(c, t);
        ck_assert_int_eq(nrecs, 0);
    }
    grp_tick(c, 3999);
    ck_assert_int_eq(nrecs, 0);
    grp_tick(c, 4000);
    rec_t *r = reply('J', W(4));
    ck_assert_int_eq(r->error, 0);
    ck_assert_int_eq(r->generation, 2);
    ck_assert_int_eq(r->nmembers, 1);
    ck_assert_str_eq(r->members[0], a);
    ck_assert_int_eq(describe(c, "g").nmembers, 1);
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, b, 4100), GRP_ERR_UNKNOWN_MEMBER_ID);
    coord_free(c);
}
END_TEST

/*
 * A member's session runs out in the very tick in which the rebalance
 * timeout passes while a third member has not rejoined: the expiry ends the
 * join phase, which drops the third member while grp_tick is walking the
 * member list (a use-after-free under ASan before the fix).
 */
START_TEST(test_expiry_and_rebalance_timeout_same_tick)
{
    grp_coord_t *c = coord();
    join_t j = {.md = "md", .protos = {"range"}, .rebalance = SESSION};
    do_join(c, &j, W(0), 0);
    do_join(c, &j, W(1), 0);
    do_join(c, &j, W(2), 0);
    grp_tick(c, DELAY);
    char a[ID_LEN], b[ID_LEN], cc[ID_LEN];
    snprintf(a, sizeof a, "%s", reply('J', W(0))->member_id);
    snprintf(b, sizeof b, "%s", reply('J', W(1))->member_id);
    snprintf(cc, sizeof cc, "%s", reply('J', W(2))->member_id);
    ck_assert_str_eq(reply('J', W(0))->leader, a);
    sync_leader(c, 1, a, a, "1", b, "2", W(3), DELAY);
    sync_follower(c, 1, b, W(4), DELAY);
    sync_follower(c, 1, cc, W(5), DELAY);
    ck_assert_int_eq(describe(c, "g").state, GRP_STABLE);
    recs_clear();

    ck_assert_int_eq(grp_heartbeat(c, "g", 1, b, 950), 0);    /* B: last seen 950 */
    j.member_id = a;
    do_join(c, &j, W(6), 1000);                                /* deadline 1000 + SESSION */
    ck_assert_int_eq(grp_heartbeat(c, "g", 1, cc, 1000 + SESSION - 100), GRP_ERR_REBALANCE_IN_PROGRESS);
    grp_tick(c, 1000 + SESSION);                               /* B expires, C is dropped */
    rec_t *r = reply('J', W(6));
    ck_assert_int_eq(r->error, 0);
    ck_assert_int_eq(r->generation, 2);
    ck_assert_int_eq(r->nmembers, 1);
    seen_t s = describe(c, "g");
    ck_assert_int_eq(s.nmembers, 1);
    ck_assert_str_eq(s.members[0], a);
    coord_free(c);
}
END_TEST

START_TEST(test_protocol_choice)
{
    grp_coord_t *c = coord();
    join_t ja = {.md = "md-A", .protos = {"range", "roundrobin"}};
    join_t jb = {.md = "md-B", .protos = {"roundrobin"}};
    do_join(c, &ja, W(0), 0);
    do_join(c, &jb, W(1), 0);
    grp_tick(c, DELAY);
    ck_assert_str_eq(reply('J', W(0))->protocol, "roundrobin");
    ck_assert_str_eq(reply('J', W(1))->protocol, "roundrobin");
    coord_free(c);

    /* Alone, A gets its first choice. */
    c = coord();
    do_join(c, &ja, W(0), 0);
    grp_tick(c, DELAY);
    ck_assert_str_eq(reply('J', W(0))->protocol, "range");
    coord_free(c);

    /* Most first-choice votes among the common ones wins. */
    c = coord();
    join_t j1 = {.md = "1", .protos = {"range", "roundrobin"}};
    join_t j2 = {.md = "2", .protos = {"roundrobin", "range"}};
    do_join(c, &j1, W(0), 0);
    do_join(c, &j2, W(1), 0);
    do_join(c, &j2, W(2), 0);
    grp_tick(c, DELAY);
    ck_assert_str_eq(reply('J', W(0))->protocol, "roundrobin");
    /* The leader's member list carries each member's metadata for the
     * chosen protocol. */
    ck_assert_int_eq(reply('J', W(0))->nmembers, 3);
    coord_free(c);
}
END_TEST

START_TEST(test_inconsistent_protocol)
{
    grp_coord_t *c = coord();
    join_t ja = {.md = "md-A", .protos = {"range"}};
    join_t jb = {.md = "md-B", .protos = {"roundrobin"}};
    do_join(c, &ja, W(0), 0);
    do_join(c, &jb, W(1), 10);
    ck_assert_int_eq(reply('J', W(1))->error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* A different protocol type. */
    join_t jt = {.md = "md-T", .protos = {"range"}, .type = "connect"};
    do_join(c, &jt, W(2), 20);
    ck_assert_int_eq(reply('J', W(2))->error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* An empty protocol list, an empty protocol type. */
    join_t je = {.md = "md-E"};
    do_join(c, &je, W(3), 30);
    ck_assert_int_eq(reply('J', W(3))->error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    je.type = "";
    je.protos[0] = "range";
    do_join(c, &je, W(4), 40);
    ck_assert_int_eq(reply('J', W(4))->error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* Also for a brand-new group. */
    je.group = "other";
    do_join(c, &je, W(5), 50);
    ck_assert_int_eq(reply('J', W(5))->error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    join_t jn = {.group = "other2", .md = "x"};
    do_join(c, &jn, W(6), 50);
    ck_assert_int_eq(reply('J', W(6))->error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* The refused ones did not join: A alone completes the rebalance. */
    ck_assert_int_eq(count_for('J', W(0)), 0);
    grp_tick(c, DELAY);
    rec_t *r = reply('J', W(0));
    ck_assert_int_eq(r->error, 0);
    ck_assert_int_eq(r->nmembers, 1);
    ck_assert_int_eq(describe(c, "g").nmembers, 1);
    coord_free(c);
}
END_TEST

START_TEST(test_metadata_limit)
{
    grp_coord_t *c = coord();
    static char big[MAX_MD + 2];
    memset(big, 'm', sizeof big - 1);
    /* Two protocols of MAX_MD/2 bytes each: exactly at the limit. */
    join_t j = {.md = big, .md_len = MAX_MD / 2, .protos = {"range", "roundrobin"}};
    do_join(c, &j, W(0), 0);
    ck_assert_int_eq(count_for('J', W(0)), 0);
    /* One byte more. */
    j.md_len = MAX_MD / 2 + 1;
    do_join(c, &j, W(1), 0);
    ck_assert_int_eq(reply('J', W(1))->error, GRP_ERR_INVALID_REQUEST);
    join_t j1 = {.md = big, .md_len = MAX_MD + 1, .protos = {"range"}};
    do_join(c, &j1, W(2), 0);
    ck_assert_int_eq(reply('J', W(2))->error, GRP_ERR_INVALID_REQUEST);
    grp_tick(c, DELAY);
    rec_t *r = reply('J', W(0));
    ck_assert_int_eq(r->nmembers, 1);
    ck_assert_uint_eq(r->md_len[0], MAX_MD / 2);
    coord_free(c);
}
END_TEST

START_TEST(test_session_timeout_bounds)
{
    grp_coord_t *c = coord();
    join_t j = {.md = "x", .protos = {"range"}, .session = 999};
    do_join(c, &j, W(0), 0);
    ck_assert_int_eq(reply('J', W(0))->error, GRP_ERR_INVALID_SESSION_TIMEOUT);
    j.session = 300001;
    do_join(c, &j, W(1), 0);
    ck_assert_int_eq(reply('J', W(1))->error, GRP_ERR_INVALID_SESSION_TIMEOUT);
    j.session = -1;
    do_join(c, &j, W(2), 0);
    ck_assert_int_eq(reply('J', W(2))->error, GRP_ERR_INVALID_SESSION_TIMEOUT);
    j.session = 1000;
    do_join(c, &j, W(3), 0);
    ck_assert_int_eq(count_for('J', W(3)), 0); /* accepted, held */
    join_t jg = {.group = "", .md = "x", .protos = {"range"}};
    do_join(c, &jg, W(4), 0);
    ck_assert_int_eq(reply('J', W(4))->error, GRP_ERR_INVALID_GROUP_ID);
    coord_free(c);
}
END_TEST

START_TEST(test_commit_check)
{
    grp_coord_t *c = coord();
    /* A simple consumer: no group, or an Empty one. */
    ck_assert_int_eq(grp_commit_check(c, "g", -1, "", 0), 0);
    char a[ID_LEN], b[ID_LEN];
    two_member_group(c, a, b);
    /* Stable: members of the current generation only. */
    ck_assert_int_eq(grp_commit_check(c, "g", 1, a, 1000), 0);
    ck_assert_int_eq(grp_commit_check(c, "g", 1, b, 1000), 0);
    ck_assert_int_eq(grp_commit_check(c, "g", -1, "", 1000), GRP_ERR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(grp_commit_check(c, "g", 1, "stranger", 1000), GRP_ERR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(grp_commit_check(c, "g", 2, a, 1000), GRP_ERR_ILLEGAL_GENERATION);
    ck_assert_int_eq(grp_commit_check(c, "g", 0, a, 1000), GRP_ERR_ILLEGAL_GENERATION);
    /* PreparingRebalance: the current generation may still commit. */
    join_simple(c, a, "md-A", W(4), 1100);
    ck_assert_int_eq(grp_commit_check(c, "g", 1, b, 1200), 0);
    /* CompletingRebalance: 27. */
    join_simple(c, b, "md-B", W(5), 1300);
    ck_assert_int_eq(describe(c, "g").state, GRP_COMPLETING_REBALANCE);
    ck_assert_int_eq(grp_commit_check(c, "g", 2, a, 1400), GRP_ERR_REBALANCE_IN_PROGRESS);
    ck_assert_int_eq(grp_commit_check(c, "g", 1, a, 1400), GRP_ERR_ILLEGAL_GENERATION);
    /* Everyone leaves: Empty again, simple commits are fine. */
    ck_assert_int_eq(grp_leave(c, "g", a, 1500), 0);
    ck_assert_int_eq(grp_leave(c, "g", b, 1500), 0);
    ck_assert_int_eq(describe(c, "g").state, GRP_EMPTY);
    ck_assert_int_eq(grp_commit_check(c, "g", -1, "", 1600), 0);
    ck_assert_int_eq(grp_commit_check(c, "g", 2, a, 1600), GRP_ERR_UNKNOWN_MEMBER_ID);
    /* No such group at all: a simple consumer's commit is fine. */
    ck_assert_int_eq(grp_commit_check(c, "nogroup", -1, "", 1600), 0);
    coord_free(c);
}
END_TEST

START_TEST(test_waiter_cancel)
{
    grp_coord_t *c = coord();
    join_simple(c, "", "md-A", W(0), 0);
    join_simple(c, "", "md-B", W(1), 100);
    grp_waiter_cancel(c, W(1)); /* B's connection closed */
    grp_tick(c, 100 + DELAY);
    ck_assert_int_eq(count_for('J', W(1)), 0);
    rec_t *r = reply('J', W(0));
    ck_assert_int_eq(r->error, 0);
    /* B is still a member (the session decides, not the connection). */
    ck_assert_int_eq(r->nmembers, 2);
    char a[ID_LEN], b[ID_LEN];
    snprintf(a, sizeof a, "%s", r->member_id);
    snprintf(b, sizeof b, "%s", strcmp(r->members[0], a) == 0 ? r->members[1] : r->members[0]);
    ck_assert_int_eq(nrecs, 1);

    /* A held follower SyncGroup, cancelled, then the leader syncs. */
    sync_follower(c, 1, b, W(2), 700);
    grp_waiter_cancel(c, W(2));
    sync_leader(c, 1, a, a, "as-A", b, "as-B", W(3), 800);
    ck_assert_int_eq(count_for('S', W(2)), 0);
    ck_assert_int_eq(reply('S', W(3))->error, 0);
    ck_assert_int_eq(nrecs, 2);

    /* A cancelled JoinGroup waiter is not answered by a session expiry
     * either; and with no held request the member's session runs. */
    join_simple(c, a, "md-A", W(4), 900);
    grp_waiter_cancel(c, W(4));
    grp_waiter_cancel(c, W(30)); /* unknown waiter: nothing happens */
    grp_tick(c, 900 + SESSION + 1);
    ck_assert_int_eq(count_for('J', W(4)), 0);
    ck_assert_int_eq(nrecs, 2);
    coord_free(c);
}
END_TEST

START_TEST(test_describe_and_each)
{
    grp_coord_t *c = coord();
    seen_t s;
    ck_assert_int_eq(grp_describe(c, "g", describe_cb, &s), -1);
    char a[ID_LEN], b[ID_LEN];
    two_member_group(c, a, b);
    s = describe(c, "g");
    ck_assert_int_eq(s.nmembers, 2);
    ck_assert_str_eq(s.leader, a);
    ck_assert_str_eq(s.protocol, "range");
    for (int i = 0; i < 2; i++)
        ck_assert_str_eq(s.assignment[i], strcmp(s.members[i], a) == 0 ? "as-A" : "as-B");
    ck_assert_str_eq(grp_state_name(GRP_STABLE), "Stable");
    ck_assert_str_eq(grp_state_name(GRP_PREPARING_REBALANCE), "PreparingRebalance");
    ck_assert_str_eq(grp_state_name(GRP_COMPLETING_REBALANCE), "CompletingRebalance");
    ck_assert_str_eq(grp_state_name(GRP_EMPTY), "Empty");
    ck_assert_str_eq(grp_state_name(GRP_DEAD), "Dead");
    coord_free(c);
}
END_TEST

static Suite *group_suite(void)
{
    Suite *s = suite_create("group");
    TCase *tc = tcase_create("group");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_single_member);
    tcase_add_test(tc, test_member_id_required);
    tcase_add_test(tc, test_two_members_initial);
    tcase_add_test(tc, test_rejoin_waits_for_all);
    tcase_add_test(tc, test_sync_follower_waits);
    tcase_add_test(tc, test_sync_during_rebalance);
    tcase_add_test(tc, test_heartbeat_errors);
    tcase_add_test(tc, test_leave_rebalances);
    tcase_add_test(tc, test_session_expiry);
    tcase_add_test(tc, test_rebalance_timeout_removes);
    tcase_add_test(tc, test_expiry_and_rebalance_timeout_same_tick);
    tcase_add_test(tc, test_protocol_choice);
    tcase_add_test(tc, test_inconsistent_protocol);
    tcase_add_test(tc, test_metadata_limit);
    tcase_add_test(tc, test_session_timeout_bounds);
    tcase_add_test(tc, test_commit_check);
    tcase_add_test(tc, test_waiter_cancel);
    tcase_add_test(tc, test_describe_and_each);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(group_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
