#include "group.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_log.h"
#include "sk_map.h"

typedef struct proto_s {
    char *name;
    uint8_t *md;
    size_t len;
} proto_t;

typedef struct member_s {
    char *id, *client_id, *client_host;
    int32_t session_timeout, rebalance_timeout;
    int32_t nprotocols;
    proto_t *protocols;
    uint8_t *assignment;
    size_t assignment_len;
    int64_t last_seen;
    int joined; /* has (re)joined in the current rebalance */
    void *join_waiter, *sync_waiter;
    struct member_s *next;
} member_t;

typedef struct pending_s {
    char *id;
    int64_t deadline;
    struct pending_s *next;
} pending_t;

typedef struct group_s {
    char *id;
    grp_state_t state;
    int32_t generation;
    char *protocol_type, *protocol_name, *leader;
    member_t *members; /* in join order */
    int32_t nmembers;
    pending_t *pending; /* ids handed out with MEMBER_ID_REQUIRED */
    int64_t rebalance_deadline, delay_until;
} group_t;

struct grp_coord_s {
    grp_config_t cfg;
    grp_callbacks_t cb;
    sk_map_t groups;
    uint64_t next_id, nonce;
};

const char *grp_state_name(grp_state_t s)
{
    static const char *const names[] = {"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"};
    return s <= GRP_DEAD ? names[s] : "Unknown";
}

grp_coord_t *grp_coord_new(const grp_config_t *cfg, const grp_callbacks_t *cb)
{
    grp_coord_t *c = sk_calloc(1, sizeof *c);
    c->cfg = *cfg;
    c->cb = *cb;
    sk_map_init(&c->groups);
    c->nonce = (uint64_t)sk_wall_ms() * 2654435761u;
    return c;
}

static void member_free(member_t *m)
{
    for (int32_t i = 0; i < m->nprotocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].md);
    }
    free(m->protocols);
    free(m->assignment);
    free(m->id);
    free(m->client_id);
    free(m->client_host);
    free(m);
}

static void group_free(group_t *g)
{
    while (g->members) {
        member_t *m = g->members;
        g->members = m->next;
        member_free(m);
    }
    while (g->pending) {
        pending_t *p = g->pending;
        g->pending = p->next;
        free(p->id);
        free(p);
    }
    free(g->id);
    free(g->protocol_type);
    free(g->protocol_name);
    free(g->leader);
    free(g);
}

void grp_coord_free(grp_coord_t *c)
{
    if (!c) return;
    for (sk_map_entry_t *e = sk_map_next(&c->groups, NULL); e; e = sk_map_next(&c->groups, e)) group_free(e->value);
    sk_map_release(&c->groups);
    free(c);
}

static group_t *group_find(grp_coord_t *c, const char *id)
{
    return sk_map_get(&c->groups, id, strlen(id));
}

static member_t *member_find(group_t *g, const char *id)
{
    for (member_t *m = g->members; m; m = m->next)
        if (strcmp(m->id, id) == 0) return m;
    return NULL;
}

static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? sk_strdup(src) : NULL;
}

/* ---- answers ------------------------------------------------------------- */

static void join_error(grp_coord_t *c, void *waiter, int16_t err, const char *member_id)
{
    grp_join_reply_t r = {err, -1, NULL, "", member_id ? member_id : "", 0, NULL};
    c->cb.join_reply(c->cb.opaque, waiter, &r);
}

static void sync_answer(grp_coord_t *c, void *waiter, int16_t err, const uint8_t *p, size_t len)
{
    grp_bytes_t b = {p, len};
    c->cb.sync_reply(c->cb.opaque, waiter, err, b);
}

/* Fails every held SyncGroup (a new rebalance began or the group emptied). */
static void fail_syncs(grp_coord_t *c, group_t *g, int16_t err)
{
    for (member_t *m = g->members; m; m = m->next) {
        if (!m->sync_waiter) continue;
        void *w = m->sync_waiter;
        m->sync_waiter = NULL;
        sync_answer(c, w, err, NULL, 0);
    }
}

/* ---- rebalancing --------------------------------------------------------- */

static int member_supports(const member_t *m, const char *proto)
{
    for (int32_t i = 0; i < m->nprotocols; i++)
        if (strcmp(m->protocols[i].name, proto) == 0) return 1;
    return 0;
}

/* The protocol every member supports with the most first-choice votes. */
static const char *choose_protocol(group_t *g)
{
    member_t *first = g->members;
    const char *best = NULL;
    int best_votes = -1;
    for (int32_t i = 0; i < first->nprotocols; i++) {
        const char *cand = first->protocols[i].name;
        int all = 1;
        for (member_t *m = g->members; m && all; m = m->next) all = member_supports(m, cand);
        if (!all) continue;
        int votes = 0;
        for (member_t *m = g->members; m; m = m->next) {
            for (int32_t k = 0; k < m->nprotocols; k++) {
                const char *p = m->protocols[k].name;
                int common = 1;
                for (member_t *o = g->members; o && common; o = o->next) common = member_supports(o, p);
                if (!common) continue;
                if (strcmp(p, cand) == 0) votes++;
                break; /* only the member's first common choice votes */
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

static void prepare_rebalance(grp_coord_t *c, group_t *g, int64_t now, const char *why)
{
    if (g->state == GRP_COMPLETING_REBALANCE) fail_syncs(c, g, GRP_ERR_REBALANCE_IN_PROGRESS);
    int from_empty = g->state == GRP_EMPTY;
    int32_t timeout = 0;
    for (member_t *m = g->members; m; m = m->next) {
        m->joined = 0;
        if (m->rebalance_timeout > timeout) timeout = m->rebalance_timeout;
    }
    g->state = GRP_PREPARING_REBALANCE;
    g->rebalance_deadline = now + timeout;
    g->delay_until = from_empty ? now + c->cfg.initial_rebalance_delay_ms : now;
    if (g->delay_until > g->rebalance_deadline) g->delay_until = g->rebalance_deadline;
    sk_info("group", "group %s: preparing rebalance (generation %d): %s", g->id, (int)g->generation, why);
}

static void go_empty(group_t *g)
{
    g->state = GRP_EMPTY;
    g->generation++;
    set_str(&g->protocol_name, NULL);
    set_str(&g->leader, NULL);
}

static void remove_member(grp_coord_t *c, group_t *g, member_t *m, int64_t now, const char *why);

/* Ends the join phase: members that did not rejoin are dropped, a new
 * generation starts, and every held JoinGroup is answered. */
static void complete_join(grp_coord_t *c, group_t *g, int64_t now)
{
    member_t **pp = &g->members;
    while (*pp) {
        member_t *m = *pp;
        if (m->joined) {
            pp = &m->next;
            continue;
        }
        sk_info("group", "group %s: member %s did not rejoin within the rebalance timeout; removed", g->id, m->id);
        *pp = m->next;
        g->nmembers--;
        if (m->sync_waiter) sync_answer(c, m->sync_waiter, GRP_ERR_UNKNOWN_MEMBER_ID, NULL, 0);
        member_free(m);
    }
    if (!g->members) {
        go_empty(g);
        sk_info("group", "group %s: no members left; Empty at generation %d", g->id, (int)g->generation);
        return;
    }
    g->generation++;
    set_str(&g->protocol_name, choose_protocol(g));
    if (!g->leader || !member_find(g, g->leader)) set_str(&g->leader, g->members->id);
    g->state = GRP_COMPLETING_REBALANCE;
    sk_info("group", "group %s: generation %d with %d members, protocol %s, leader %s", g->id, (int)g->generation,
            (int)g->nmembers, g->protocol_name, g->leader);

    grp_join_member_t *list = sk_calloc((size_t)g->nmembers, sizeof *list);
    int32_t n = 0;
    for (member_t *m = g->members; m; m = m->next) {
        list[n].member_id = m->id;
        for (int32_t i = 0; i < m->nprotocols; i++)
            if (strcmp(m->protocols[i].name, g->protocol_name) == 0)
                list[n].metadata = (grp_bytes_t){m->protocols[i].md, m->protocols[i].len};
        n++;
    }
    /* Answer a snapshot of the waiters: a callback may not change the group,
     * but be defensive about the list anyway. */
    for (member_t *m = g->members; m; m = m->next) {
        m->last_seen = now;
        m->joined = 0;
        void *w = m->join_waiter;
        m->join_waiter = NULL;
        if (!w) continue;
        int leader = strcmp(m->id, g->leader) == 0;
        grp_join_reply_t r = {GRP_ERR_NONE, g->generation, g->protocol_name, g->leader, m->id,
                              leader ? n : 0, leader ? list : NULL};
        c->cb.join_reply(c->cb.opaque, w, &r);
    }
    free(list);
}

static void maybe_complete_join(grp_coord_t *c, group_t *g, int64_t now)
{
    if (g->state != GRP_PREPARING_REBALANCE) return;
    if (now >= g->rebalance_deadline) {
        complete_join(c, g, now);
        return;
    }
    if (now < g->delay_until) return;
    for (member_t *m = g->members; m; m = m->next)
        if (!m->joined) return;
    complete_join(c, g, now);
}

static void remove_member(grp_coord_t *c, group_t *g, member_t *m, int64_t now, const char *why)
{
    member_t **pp = &g->members;
    while (*pp && *pp != m) pp = &(*pp)->next;
    if (!*pp) return;
    *pp = m->next;
    g->nmembers--;
    sk_info("group", "group %s: member %s %s", g->id, m->id, why);
    if (m->join_waiter) join_error(c, m->join_waiter, GRP_ERR_UNKNOWN_MEMBER_ID, m->id);
    if (m->sync_waiter) sync_answer(c, m->sync_waiter, GRP_ERR_UNKNOWN_MEMBER_ID, NULL, 0);
    member_free(m);
    switch (g->state) {
    case GRP_STABLE:
    case GRP_COMPLETING_REBALANCE:
        if (g->members) {
            prepare_rebalance(c, g, now, "a member left");
        } else {
            fail_syncs(c, g, GRP_ERR_REBALANCE_IN_PROGRESS);
            go_empty(g);
        }
        break;
    case GRP_PREPARING_REBALANCE:
        if (!g->members) {
            go_empty(g);
            break;
        }
        maybe_complete_join(c, g, now);
        break;
    default:
        break;
    }
}

/* ---- JoinGroup ----------------------------------------------------------- */

/* Whether m's protocols fit the group (type and at least one protocol that
 * every other member supports). */
static int protocols_compatible(group_t *g, const grp_join_req_t *req, const char *self)
{
    if (g->nmembers == 0 || (g->nmembers == 1 && self && member_find(g, self))) return 1;
    if (g->protocol_type && strcmp(g->protocol_type, req->protocol_type) != 0) return 0;
    for (int32_t i = 0; i < req->nprotocols; i++) {
        int all = 1;
        for (member_t *m = g->members; m && all; m = m->next)
            if (!self || strcmp(m->id, self) != 0) all = member_supports(m, req->protocols[i].name);
        if (all) return 1;
    }
    return 0;
}

static char *new_member_id(grp_coord_t *c, const char *client_id)
{
    char buf[512];
    uint64_t x = (c->nonce ^ (++c->next_id * 0x9e3779b97f4a7c15ull));
    snprintf(buf, sizeof buf, "%.200s-%016" PRIx64 "-%" PRIu64, client_id && *client_id ? client_id : "member", x,
             c->next_id);
    return sk_strdup(buf);
}

void grp_join(grp_coord_t *c, const grp_join_req_t *req, void *waiter, int64_t now)
{
    if (!req->group_id || !*req->group_id) return join_error(c, waiter, GRP_ERR_INVALID_GROUP_ID, req->member_id);
    if (req->session_timeout_ms < c->cfg.min_session_timeout_ms ||
        req->session_timeout_ms > c->cfg.max_session_timeout_ms)
        return join_error(c, waiter, GRP_ERR_INVALID_SESSION_TIMEOUT, req->member_id);
    if (!req->protocol_type || !*req->protocol_type || req->nprotocols <= 0)
        return join_error(c, waiter, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL, req->member_id);
    size_t mdbytes = 0;
    for (int32_t i = 0; i < req->nprotocols; i++) mdbytes += req->protocols[i].metadata.len;
    if (mdbytes > c->cfg.max_metadata_bytes) {
        sk_warn("group", "group %s: JoinGroup refused: %zu bytes of member metadata (limit %zu)", req->group_id,
                mdbytes, c->cfg.max_metadata_bytes);
        return join_error(c, waiter, GRP_ERR_INVALID_REQUEST, req->member_id);
    }

    const char *mid = req->member_id ? req->member_id : "";
    group_t *g = group_find(c, req->group_id);
    if (!g && *mid) return join_error(c, waiter, GRP_ERR_UNKNOWN_MEMBER_ID, mid); /* no group to be in */
    if (!g) {
        g = sk_calloc(1, sizeof *g);
        g->id = sk_strdup(req->group_id);
        sk_map_put(&c->groups, g->id, strlen(g->id), g);
    }
    if (!protocols_compatible(g, req, *mid ? mid : NULL))
        return join_error(c, waiter, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL, mid);

    member_t *m = NULL;
    if (!*mid) {
        char *id = new_member_id(c, req->client_id);
        if (req->require_known_member_id) {
            pending_t *p = sk_calloc(1, sizeof *p);
            p->id = id;
            p->deadline = now + req->session_timeout_ms;
            p->next = g->pending;
            g->pending = p;
            join_error(c, waiter, GRP_ERR_MEMBER_ID_REQUIRED, id);
            return;
        }
        m = sk_calloc(1, sizeof *m);
        m->id = id;
    } else {
        m = member_find(g, mid);
        if (!m) {
            pending_t **pp = &g->pending;
            while (*pp && strcmp((*pp)->id, mid) != 0) pp = &(*pp)->next;
            if (!*pp) return join_error(c, waiter, GRP_ERR_UNKNOWN_MEMBER_ID, mid);
            pending_t *p = *pp;
            *pp = p->next;
            m = sk_calloc(1, sizeof *m);
            m->id = p->id;
            free(p);
        }
    }
    int is_new = m->client_id == NULL;
    if (is_new) {
        /* append, keeping join order */
        member_t **tail = &g->members;
        while (*tail) tail = &(*tail)->next;
        *tail = m;
        g->nmembers++;
    }
    set_str(&m->client_id, req->client_id ? req->client_id : "");
    set_str(&m->client_host, req->client_host ? req->client_host : "");
    set_str(&g->protocol_type, req->protocol_type);
    m->session_timeout = req->session_timeout_ms;
    m->rebalance_timeout = req->rebalance_timeout_ms > 0 ? req->rebalance_timeout_ms : req->session_timeout_ms;
    for (int32_t i = 0; i < m->nprotocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].md);
    }
    free(m->protocols);
    m->nprotocols = req->nprotocols;
    m->protocols = sk_calloc((size_t)req->nprotocols, sizeof *m->protocols);
    for (int32_t i = 0; i < req->nprotocols; i++) {
        m->protocols[i].name = sk_strdup(req->protocols[i].name);
        m->protocols[i].md = sk_memdup(req->protocols[i].metadata.p, req->protocols[i].metadata.len);
        m->protocols[i].len = req->protocols[i].metadata.len;
    }
    m->last_seen = now;
    if (m->join_waiter && m->join_waiter != waiter)
        join_error(c, m->join_waiter, GRP_ERR_REBALANCE_IN_PROGRESS, m->id);

    switch (g->state) {
    case GRP_EMPTY:
    case GRP_STABLE:
    case GRP_COMPLETING_REBALANCE:
    case GRP_DEAD:
        prepare_rebalance(c, g, now, is_new ? "a member joined" : "a member rejoined");
        break;
    case GRP_PREPARING_REBALANCE:
        if (now < g->delay_until) {
            int64_t d = now + c->cfg.initial_rebalance_delay_ms;
            g->delay_until = d < g->rebalance_deadline ? d : g->rebalance_deadline;
        }
        if (m->rebalance_timeout > 0 && now + m->rebalance_timeout > g->rebalance_deadline && is_new)
            g->rebalance_deadline = now + m->rebalance_timeout;
        break;
    }
    m->join_waiter = waiter;
    m->joined = 1;
    maybe_complete_join(c, g, now);
}

/* ---- SyncGroup, Heartbeat, LeaveGroup, OffsetCommit ---------------------- */

void grp_sync(grp_coord_t *c, const char *group_id, int32_t generation, const char *member_id, int32_t nassign,
              const grp_assignment_t *assign, void *waiter, int64_t now)
{
    group_t *g = group_find(c, group_id);
    member_t *m = g ? member_find(g, member_id) : NULL;
    if (!m) return sync_answer(c, waiter, GRP_ERR_UNKNOWN_MEMBER_ID, NULL, 0);
    if (generation != g->generation) return sync_answer(c, waiter, GRP_ERR_ILLEGAL_GENERATION, NULL, 0);
    m->last_seen = now;
    switch (g->state) {
    case GRP_PREPARING_REBALANCE:
        return sync_answer(c, waiter, GRP_ERR_REBALANCE_IN_PROGRESS, NULL, 0);
    case GRP_STABLE:
        return sync_answer(c, waiter, GRP_ERR_NONE, m->assignment, m->assignment_len);
    case GRP_COMPLETING_REBALANCE:
        break;
    default:
        return sync_answer(c, waiter, GRP_ERR_UNKNOWN_MEMBER_ID, NULL, 0);
    }
    if (m->sync_waiter && m->sync_waiter != waiter) {
        void *old = m->sync_waiter;
        m->sync_waiter = NULL;
        sync_answer(c, old, GRP_ERR_REBALANCE_IN_PROGRESS, NULL, 0);
    }
    if (strcmp(m->id, g->leader) != 0) {
        m->sync_waiter = waiter; /* until the leader's assignment arrives */
        return;
    }
    for (member_t *o = g->members; o; o = o->next) {
        free(o->assignment);
        o->assignment = NULL;
        o->assignment_len = 0;
        for (int32_t i = 0; i < nassign; i++) {
            if (strcmp(assign[i].member_id, o->id) != 0) continue;
            o->assignment = sk_memdup(assign[i].assignment.p, assign[i].assignment.len);
            o->assignment_len = assign[i].assignment.len;
        }
    }
    g->state = GRP_STABLE;
    sk_info("group", "group %s: generation %d is stable", g->id, (int)g->generation);
    m->sync_waiter = waiter;
    for (member_t *o = g->members; o; o = o->next) {
        void *w = o->sync_waiter;
        if (!w) continue;
        o->sync_waiter = NULL;
        o->last_seen = now;
        sync_answer(c, w, GRP_ERR_NONE, o->assignment, o->assignment_len);
    }
}

int16_t grp_heartbeat(grp_coord_t *c, const char *group_id, int32_t generation, const char *member_id, int64_t now)
{
    group_t *g = group_find(c, group_id);
    member_t *m = g ? member_find(g, member_id) : NULL;
    if (!m) return GRP_ERR_UNKNOWN_MEMBER_ID;
    m->last_seen = now;
    if (generation != g->generation) return GRP_ERR_ILLEGAL_GENERATION;
    if (g->state == GRP_PREPARING_REBALANCE) return GRP_ERR_REBALANCE_IN_PROGRESS;
    return GRP_ERR_NONE;
}

int16_t grp_leave(grp_coord_t *c, const char *group_id, const char *member_id, int64_t now)
{
    group_t *g = group_find(c, group_id);
    member_t *m = g ? member_find(g, member_id) : NULL;
    if (!m) return GRP_ERR_UNKNOWN_MEMBER_ID;
    remove_member(c, g, m, now, "left the group");
    return GRP_ERR_NONE;
}

int16_t grp_commit_check(grp_coord_t *c, const char *group_id, int32_t generation, const char *member_id,
                         int64_t now)
{
    group_t *g = group_find(c, group_id);
    if (!g || g->state == GRP_EMPTY) {
        if (generation < 0) return GRP_ERR_NONE; /* a simple consumer: offsets only */
        return g ? GRP_ERR_UNKNOWN_MEMBER_ID : GRP_ERR_ILLEGAL_GENERATION;
    }
    member_t *m = member_find(g, member_id);
    if (!m) return GRP_ERR_UNKNOWN_MEMBER_ID;
    if (generation != g->generation) return GRP_ERR_ILLEGAL_GENERATION;
    if (g->state == GRP_COMPLETING_REBALANCE) return GRP_ERR_REBALANCE_IN_PROGRESS;
    m->last_seen = now;
    return GRP_ERR_NONE;
}

void grp_waiter_cancel(grp_coord_t *c, void *waiter)
{
    for (sk_map_entry_t *e = sk_map_next(&c->groups, NULL); e; e = sk_map_next(&c->groups, e)) {
        group_t *g = e->value;
        for (member_t *m = g->members; m; m = m->next) {
            if (m->join_waiter == waiter) m->join_waiter = NULL;
            if (m->sync_waiter == waiter) m->sync_waiter = NULL;
        }
    }
}

void grp_tick(grp_coord_t *c, int64_t now)
{
    for (sk_map_entry_t *e = sk_map_next(&c->groups, NULL); e; e = sk_map_next(&c->groups, e)) {
        group_t *g = e->value;
        pending_t **pp = &g->pending;
        while (*pp) {
            pending_t *p = *pp;
            if (now < p->deadline) {
                pp = &p->next;
                continue;
            }
            *pp = p->next;
            free(p->id);
            free(p);
        }
        /* A member with a held request is alive; the others must heartbeat.
         * A removal may end the join phase (complete_join frees the members
         * that did not rejoin), so the scan starts over after each one. */
        member_t *m = g->members;
        while (m) {
            if (!m->join_waiter && !m->sync_waiter && now - m->last_seen > m->session_timeout) {
                char why[96];
                snprintf(why, sizeof why, "expired: no heartbeat for %d ms", (int)m->session_timeout);
                remove_member(c, g, m, now, why);
                m = g->members;
                continue;
            }
            m = m->next;
        }
        maybe_complete_join(c, g, now);
    }
}

/* ---- views --------------------------------------------------------------- */

static void fill_info(group_t *g, grp_info_t *gi)
{
    gi->group_id = g->id;
    gi->state = g->state;
    gi->protocol_type = g->protocol_type ? g->protocol_type : "";
    gi->protocol_name = g->protocol_name && g->state != GRP_PREPARING_REBALANCE ? g->protocol_name : "";
    gi->generation = g->generation;
    gi->leader = g->leader ? g->leader : "";
    gi->nmembers = g->nmembers;
    gi->members = NULL;
}

void grp_each(grp_coord_t *c, grp_each_fn fn, void *opaque)
{
    for (sk_map_entry_t *e = sk_map_next(&c->groups, NULL); e; e = sk_map_next(&c->groups, e)) {
        grp_info_t gi;
        fill_info(e->value, &gi);
        fn(opaque, &gi);
    }
}

int grp_describe(grp_coord_t *c, const char *group_id, grp_each_fn fn, void *opaque)
{
    group_t *g = group_find(c, group_id);
    if (!g) return -1;
    grp_info_t gi;
    fill_info(g, &gi);
    grp_member_info_t *list = sk_calloc((size_t)g->nmembers + 1, sizeof *list);
    int32_t n = 0;
    for (member_t *m = g->members; m; m = m->next, n++) {
        list[n].member_id = m->id;
        list[n].client_id = m->client_id;
        list[n].client_host = m->client_host;
        for (int32_t i = 0; i < m->nprotocols; i++)
            if (g->protocol_name && strcmp(m->protocols[i].name, g->protocol_name) == 0)
                list[n].metadata = (grp_bytes_t){m->protocols[i].md, m->protocols[i].len};
        list[n].assignment = (grp_bytes_t){m->assignment, m->assignment_len};
    }
    gi.members = list;
    fn(opaque, &gi);
    free(list);
    return 0;
}
