/*
 * rdk_listgroups - the groups a broker reports through librdkafka's legacy
 * rd_kafka_list_groups() (ListGroups, then DescribeGroups).
 *
 *   rdk_listgroups BOOTSTRAP [GROUP]
 *
 * Prints, for every group (or only GROUP):
 *   group <id> state <state> type <protocol_type> protocol <protocol> members <n> err <error name>
 * and for each member:
 *   member <member_id> client <client_id> host <client_host> assigned <topic>:<p>,<p>... [<topic>:...]
 * decoding the member assignment as the "consumer" protocol's
 * MemberAssignment (version, [topic [partition]], user data).
 * Exits 1 if the call fails or an assignment does not parse.
 */
#include <arpa/inet.h>

#include "rdk_util.h"

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    int err;
} rd_t;

static int32_t rd_i32(rd_t *r)
{
    if (r->pos + 4 > r->len) return r->err = 1, 0;
    uint32_t x;
    memcpy(&x, r->p + r->pos, 4);
    r->pos += 4;
    return (int32_t)ntohl(x);
}
static int16_t rd_i16(rd_t *r)
{
    if (r->pos + 2 > r->len) return r->err = 1, 0;
    uint16_t x;
    memcpy(&x, r->p + r->pos, 2);
    r->pos += 2;
    return (int16_t)ntohs(x);
}

/* Prints " topic:p,p" for each topic of a consumer MemberAssignment. */
static void print_assignment(const void *data, int size)
{
    if (size <= 0) return;
    rd_t r = {data, (size_t)size, 0, 0};
    (void)rd_i16(&r); /* version */
    int32_t nt = rd_i32(&r);
    for (int32_t t = 0; t < nt && !r.err; t++) {
        int16_t tl = rd_i16(&r);
        if (tl < 0 || r.pos + (size_t)tl > r.len) {
            r.err = 1;
            break;
        }
        printf(" %.*s:", (int)tl, (const char *)r.p + r.pos);
        r.pos += (size_t)tl;
        int32_t np = rd_i32(&r);
        for (int32_t i = 0; i < np && !r.err; i++) printf("%s%d", i ? "," : "", (int)rd_i32(&r));
    }
    if (r.err) rdk_die("member assignment of %d bytes does not parse", size);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: rdk_listgroups BOOTSTRAP [GROUP]\n");
        return 2;
    }
    rdk_prog = "rdk_listgroups";
    rd_kafka_t *rk = rdk_new(RD_KAFKA_PRODUCER, rdk_conf_new(argv[1]));
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t err = rd_kafka_list_groups(rk, argc > 2 ? argv[2] : NULL, &gl, 15000);
    if (err) rdk_die("rd_kafka_list_groups: %s", rd_kafka_err2str(err));
    for (int i = 0; i < gl->group_cnt; i++) {
        const struct rd_kafka_group_info *g = &gl->groups[i];
        printf("group %s state %s type %s protocol %s members %d err %s\n", g->group, g->state,
               g->protocol_type && *g->protocol_type ? g->protocol_type : "-",
               g->protocol && *g->protocol ? g->protocol : "-", g->member_cnt, rd_kafka_err2name(g->err));
        for (int k = 0; k < g->member_cnt; k++) {
            const struct rd_kafka_group_member_info *m = &g->members[k];
            printf("member %s client %s host %s assigned", m->member_id, m->client_id, m->client_host);
            print_assignment(m->member_assignment, m->member_assignment_size);
            printf("\n");
        }
    }
    rd_kafka_group_list_destroy(gl);
    rd_kafka_destroy(rk);
    return 0;
}
