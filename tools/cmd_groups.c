/*
 * souk groups [GROUP] - what the broker's group coordinator knows, through
 * the Kafka protocol (ListGroups, DescribeGroups, OffsetFetch, ListOffsets),
 * so it works against souk-broker and against a real Kafka alike.
 */
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_conf.h"
#include "souk.h"

typedef struct groups_cfg_s {
    char *brokers;
    int64_t timeout_ms;
} groups_cfg_t;

static const sk_conf_entry_t groups_conf[] = {
    {"brokers", SK_CONF_STR, offsetof(groups_cfg_t, brokers), "127.0.0.1:9092", 0, 0, "Kafka bootstrap servers"},
    {"timeout-ms", SK_CONF_INT, offsetof(groups_cfg_t, timeout_ms), "10000", 100, 600000,
     "how long to wait for the broker"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sk_conf_prog_t groups_prog = {
    "souk groups",
    "Lists consumer groups with their state, members, the partitions each member\n"
    "holds, and per partition the committed offset, the log end offset and the lag.",
    "[GROUP]", 1};

/* One partition a member holds, from its ConsumerProtocol assignment. */
typedef struct owned_s {
    char *topic;
    int32_t partition;
    const char *member;
} owned_t;

/* Decodes a ConsumerProtocolAssignment: version i16, [topic, [partition]],
 * user_data.  Appends to *owned; returns the number of partitions or -1. */
static int decode_assignment(const void *p, size_t len, const char *member, owned_t **owned, size_t *n)
{
    sk_cur_t c;
    sk_cur_init(&c, p, len);
    if (len == 0) return 0;
    (void)sk_cur_i16(&c);
    int32_t nt = sk_cur_i32(&c);
    int count = 0;
    for (int32_t i = 0; i < nt && !c.err; i++) {
        int16_t tl = sk_cur_i16(&c);
        const uint8_t *t = sk_cur_bytes(&c, tl > 0 ? (size_t)tl : 0);
        int32_t np = sk_cur_i32(&c);
        if (np < 0 || (size_t)np > sk_cur_left(&c) / 4) c.err = 1;
        for (int32_t k = 0; k < np && !c.err; k++) {
            *owned = sk_realloc(*owned, (*n + 1) * sizeof **owned);
            (*owned)[*n].topic = sk_strndup((const char *)t, tl > 0 ? (size_t)tl : 0);
            (*owned)[*n].partition = sk_cur_i32(&c);
            (*owned)[*n].member = member;
            (*n)++;
            count++;
        }
    }
    return c.err ? -1 : count;
}

static const char *owner_of(owned_t *owned, size_t n, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (owned[i].partition == partition && !strcmp(owned[i].topic, topic)) return owned[i].member;
    return "-";
}

/* Prints the committed offsets of one group with their lag. */
static int print_lag(groups_cfg_t *cfg, const char *group, owned_t *owned, size_t nowned)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof err);
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "souk groups: %s\n", err);
        return -1;
    }
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, (int)cfg->timeout_ms);
    if (e) {
        fprintf(stderr, "souk groups: metadata: %s\n", rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return -1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(64);
    for (int i = 0; i < md->topic_cnt; i++)
        for (int k = 0; k < md->topics[i].partition_cnt; k++)
            rd_kafka_topic_partition_list_add(parts, md->topics[i].topic, md->topics[i].partitions[k].id);
    rd_kafka_metadata_destroy(md);
    int rc = 0;
    e = rd_kafka_committed(rk, parts, (int)cfg->timeout_ms);
    if (e) {
        fprintf(stderr, "souk groups: committed offsets: %s\n", rd_kafka_err2str(e));
        rc = -1;
        goto out;
    }
    int shown = 0;
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        const char *owner = owner_of(owned, nowned, p->topic, p->partition);
        if (p->offset < 0 && !strcmp(owner, "-")) continue; /* neither committed nor assigned */
        int64_t lo = -1, hi = -1;
        rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, &lo, &hi, (int)cfg->timeout_ms);
        if (!shown++) printf("    %-28s %9s %12s %12s %10s  %s\n", "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "OWNER");
        char committed[32], lag[32];
        if (p->offset >= 0) {
            snprintf(committed, sizeof committed, "%lld", (long long)p->offset);
            snprintf(lag, sizeof lag, "%lld", (long long)(hi >= p->offset ? hi - p->offset : 0));
        } else {
            snprintf(committed, sizeof committed, "-");
            snprintf(lag, sizeof lag, "-");
        }
        printf("    %-28s %9d %12s %12lld %10s  %s\n", p->topic, (int)p->partition, committed, (long long)hi, lag, owner);
    }
    if (!shown) printf("    (no committed offsets)\n");
out:
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return rc;
}

int cmd_groups(int argc, char **argv)
{
    groups_cfg_t cfg = {0};
    const char *pos[1];
    int npos = 0, rc = 1;
    char err[512];
    switch (sk_conf_load(&groups_prog, groups_conf, &cfg, argc, argv, pos, &npos, err, sizeof err)) {
    case SK_CONF_EXIT: rc = 0; goto out_conf;
    case SK_CONF_ERROR:
        fprintf(stderr, "souk groups: %s\n", err);
        rc = 2;
        goto out_conf;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg.brokers, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "souk groups: %s\n", err);
        rd_kafka_conf_destroy(conf);
        rc = 2;
        goto out_conf;
    }
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "souk groups: %s\n", err);
        goto out_conf;
    }
    const struct rd_kafka_group_list *list = NULL;
    rd_kafka_resp_err_t e = rd_kafka_list_groups(rk, npos ? pos[0] : NULL, &list, (int)cfg.timeout_ms);
    if (e) {
        fprintf(stderr, "souk groups: cannot list groups at %s: %s\n", cfg.brokers, rd_kafka_err2str(e));
        goto out_rk;
    }
    rc = 0;
    if (list->group_cnt == 0 && npos) {
        printf("group %s: not found\n", pos[0]);
        rc = 1;
    } else if (list->group_cnt == 0) {
        printf("no consumer groups\n");
    }
    for (int i = 0; i < list->group_cnt; i++) {
        const struct rd_kafka_group_info *g = &list->groups[i];
        if (g->err && !strcmp(g->state, "Dead")) {
            printf("group %s: not found\n", g->group);
            rc = 1;
            continue;
        }
        printf("group %s  state=%s  protocol=%s%s%s  members=%d\n", g->group, g->state,
               *g->protocol_type ? g->protocol_type : "-", *g->protocol ? "/" : "", g->protocol, g->member_cnt);
        owned_t *owned = NULL;
        size_t nowned = 0;
        for (int m = 0; m < g->member_cnt; m++) {
            const struct rd_kafka_group_member_info *mi = &g->members[m];
            size_t before = nowned;
            int n = decode_assignment(mi->member_assignment, (size_t)mi->member_assignment_size, mi->member_id,
                                      &owned, &nowned);
            sk_buf_t b;
            sk_buf_init(&b, 64);
            for (size_t k = before; k < nowned; k++)
                sk_buf_addf(&b, "%s%s-%d", k > before ? " " : "", owned[k].topic, (int)owned[k].partition);
            printf("  member %s  client=%s host=%s  partitions: %s\n", mi->member_id, mi->client_id, mi->client_host,
                   n < 0 ? "(undecodable assignment)" : b.len ? b.data : "(none)");
            sk_buf_release(&b);
        }
        if (print_lag(&cfg, g->group, owned, nowned) < 0) rc = 1;
        for (size_t k = 0; k < nowned; k++) free(owned[k].topic);
        free(owned);
    }
    rd_kafka_group_list_destroy(list);
out_rk:
    rd_kafka_destroy(rk);
out_conf:
    sk_conf_release(groups_conf, &cfg);
    return rc;
}
