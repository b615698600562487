/*
 * grp_raw - consumer group requests written byte by byte over a plain TCP
 * socket, for the inputs a real client never sends.
 *
 *   grp_raw HOST PORT GROUP [bad|abandon|hold]
 *
 * bad (the default):
 * Member A joins GROUP with JoinGroup v5 (MEMBER_ID_REQUIRED, then the
 * rejoin with the handed-out id), syncs (SyncGroup v3) and so makes the group
 * Stable.  Then, from a second connection:
 *   - JoinGroup with protocol type "bogus" (the group's is "consumer")  -> 23
 *   - JoinGroup with an empty protocol list                             -> 23
 *   - JoinGroup with an empty protocol type                             -> 23
 *   - JoinGroup whose member metadata is 1 MiB + 1 bytes                -> 42
 *   - SyncGroup from a member the group does not know                   -> 25
 *   - Heartbeat from a member the group does not know                   -> 25
 *   - JoinGroup with a session timeout of 1 ms                          -> 26
 * and, each on a connection of its own, malformed requests (a truncated
 * JoinGroup, a protocol count of 2^31-1) after which the broker closes that
 * connection.  Member A's generation must be untouched by all of it
 * (Heartbeat 0), and A leaves (LeaveGroup v1 -> 0).
 *
 * abandon: member A's JoinGroup is held (initial rebalance delay) and A's
 * connection closes; member B joins.  The generation completes with both (a
 * closed connection does not remove a member), A is the leader and never
 * syncs, so B's SyncGroup is held until A's session (2 s) expires and is
 * then answered REBALANCE_IN_PROGRESS; B rejoins and leads generation + 1
 * alone.  (The broker must not answer A's cancelled request.)
 *
 * hold: sends a JoinGroup that the broker holds (start it with a long
 * --group-initial-rebalance-delay-ms) and waits up to 60 s for the answer or
 * the connection to close; prints which.  The test stops the broker
 * meanwhile.
 *
 * Prints one line per check; exits 0 if all pass, 1 otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    printf("%s: ", ok ? "ok" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!ok) failures++;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    printf("FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    exit(1);
}

/* ---- a growable request buffer ------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("out of memory");
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void put_i16(buf_t *b, int16_t v)
{
    uint16_t x = htons((uint16_t)v);
    put(b, &x, 2);
}
static void put_i32(buf_t *b, int32_t v)
{
    uint32_t x = htonl((uint32_t)v);
    put(b, &x, 4);
}
static void put_str(buf_t *b, const char *s) /* NULL: a null string */
{
    if (!s) return put_i16(b, -1);
    put_i16(b, (int16_t)strlen(s));
    put(b, s, strlen(s));
}
static void put_bytes(buf_t *b, const void *d, size_t n)
{
    put_i32(b, (int32_t)n);
    put(b, d, n);
}

static int32_t corr = 100;

/* Starts a request: size placeholder and header v1. */
static void begin(buf_t *b, int16_t key, int16_t ver)
{
    b->len = 0;
    put_i32(b, 0);
    put_i16(b, key);
    put_i16(b, ver);
    put_i32(b, ++corr);
    put_str(b, "grp_raw");
}

/* ---- the connection ----------------------------------------------------- */

static const char *host;
static int port;

static int conn_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die("bad host %s", host);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect %s:%d: %s", host, port, strerror(errno));
    struct timeval tv = {15, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_req(int fd, buf_t *b)
{
    uint32_t n = htonl((uint32_t)(b->len - 4));
    memcpy(b->p, &n, 4);
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(fd, b->p + off, b->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write: %s", strerror(errno));
        off += (size_t)w;
    }
}

/* Reads n bytes; returns 0, or -1 on EOF/timeout/error. */
static int read_full(int fd, void *d, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r = read(fd, (uint8_t *)d + off, n - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        off += (size_t)r;
    }
    return 0;
}

typedef struct {
    uint8_t *p;
    size_t len, pos;
    int err;
} resp_t;

/* Reads one response frame and checks its correlation id. */
static resp_t recv_resp(int fd)
{
    resp_t r = {0};
    uint32_t n;
    if (read_full(fd, &n, 4) < 0) die("no response to request %d (connection closed or timed out)", corr);
    n = ntohl(n);
    if (n < 4 || n > (64u << 20)) die("response size %u", n);
    r.p = malloc(n);
    if (!r.p) die("out of memory");
    r.len = n;
    if (read_full(fd, r.p, n) < 0) die("short response");
    uint32_t c;
    memcpy(&c, r.p, 4);
    if ((int32_t)ntohl(c) != corr) die("correlation id %d, expected %d", (int32_t)ntohl(c), corr);
    r.pos = 4;
    return r;
}

static int32_t get_i32(resp_t *r)
{
    if (r->pos + 4 > r->len) {
        r->err = 1;
        return 0;
    }
    uint32_t x;
    memcpy(&x, r->p + r->pos, 4);
    r->pos += 4;
    return (int32_t)ntohl(x);
}
static int16_t get_i16(resp_t *r)
{
    if (r->pos + 2 > r->len) {
        r->err = 1;
        return 0;
    }
    uint16_t x;
    memcpy(&x, r->p + r->pos, 2);
    r->pos += 2;
    return (int16_t)ntohs(x);
}
/* A string into out (truncated to outsz); -1 length gives "". */
static void get_str(resp_t *r, char *out, size_t outsz)
{
    int16_t n = get_i16(r);
    out[0] = '\0';
    if (n < 0) return;
    if (r->pos + (size_t)n > r->len) {
        r->err = 1;
        return;
    }
    snprintf(out, outsz, "%.*s", (int)n, (const char *)r->p + r->pos);
    r->pos += (size_t)n;
}
static int32_t get_bytes(resp_t *r, char *out, size_t outsz)
{
    int32_t n = get_i32(r);
    if (out) out[0] = '\0';
    if (n < 0) return n;
    if (r->pos + (size_t)n > r->len) {
        r->err = 1;
        return 0;
    }
    if (out) snprintf(out, outsz, "%.*s", (int)n, (const char *)r->p + r->pos);
    r->pos += (size_t)n;
    return n;
}

/* ---- the group APIs ----------------------------------------------------- */

typedef struct {
    int16_t error;
    int32_t generation;
    char protocol[64], leader[256], member_id[256];
    int32_t nmembers;
} join_resp_t;

static const char *group;

/* JoinGroup v5 with nprotos protocols (name "range") of metadata md/mdlen. */
static void join_send(int fd, const char *member_id, const char *ptype, int nprotos, const void *md, size_t mdlen,
                      int32_t session_ms)
{
    buf_t b = {0};
    begin(&b, 11, 5);
    put_str(&b, group);
    put_i32(&b, session_ms);
    put_i32(&b, 10000); /* rebalance timeout */
    put_str(&b, member_id);
    put_str(&b, NULL); /* group_instance_id */
    put_str(&b, ptype);
    put_i32(&b, nprotos);
    for (int i = 0; i < nprotos; i++) {
        put_str(&b, i == 0 ? "range" : "roundrobin");
        put_bytes(&b, md, mdlen);
    }
    send_req(fd, &b);
    free(b.p);
}

static join_resp_t join_recv(int fd)
{
    resp_t r = recv_resp(fd);
    join_resp_t j;
    memset(&j, 0, sizeof j);
    (void)get_i32(&r); /* throttle */
    j.error = get_i16(&r);
    j.generation = get_i32(&r);
    get_str(&r, j.protocol, sizeof j.protocol);
    get_str(&r, j.leader, sizeof j.leader);
    get_str(&r, j.member_id, sizeof j.member_id);
    j.nmembers = get_i32(&r);
    for (int32_t i = 0; i < j.nmembers && !r.err; i++) {
        char tmp[256];
        get_str(&r, tmp, sizeof tmp);
        get_str(&r, tmp, sizeof tmp);
        get_bytes(&r, NULL, 0);
    }
    if (r.err || r.pos != r.len) die("JoinGroup v5 response does not parse (%zu of %zu bytes)", r.pos, r.len);
    free(r.p);
    return j;
}

static join_resp_t join(int fd, const char *member_id, const char *ptype, int nprotos, const void *md, size_t mdlen,
                        int32_t session_ms)
{
    join_send(fd, member_id, ptype, nprotos, md, mdlen, session_ms);
    return join_recv(fd);
}

/* JoinGroup v5 as a new member: MEMBER_ID_REQUIRED, then sends the join with
 * the handed-out id (copied to mid) without reading its answer. */
static void join_new_send(int fd, char *mid, size_t midsz, int32_t session_ms)
{
    join_resp_t j = join(fd, "", "consumer", 1, "meta", 4, session_ms);
    if (j.error != 79 || !j.member_id[0]) die("JoinGroup v5 without a member id: error %d, expected 79", j.error);
    snprintf(mid, midsz, "%s", j.member_id);
    join_send(fd, mid, "consumer", 1, "meta", 4, session_ms);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SyncGroup v3; assignment_for: NULL for a follower's empty list. */
static int16_t sync_group(int fd, int32_t generation, const char *member_id, const char *assignment_for,
                          const char *assignment, char *got, size_t gotsz)
{
    buf_t b = {0};
    begin(&b, 14, 3);
    put_str(&b, group);
    put_i32(&b, generation);
    put_str(&b, member_id);
    put_str(&b, NULL);
    if (assignment_for) {
        put_i32(&b, 1);
        put_str(&b, assignment_for);
        put_bytes(&b, assignment, strlen(assignment));
    } else {
        put_i32(&b, 0);
    }
    send_req(fd, &b);
    free(b.p);
    resp_t r = recv_resp(fd);
    (void)get_i32(&r);
    int16_t err = get_i16(&r);
    get_bytes(&r, got, gotsz);
    if (r.err || r.pos != r.len) die("SyncGroup v3 response does not parse");
    free(r.p);
    return err;
}

static int16_t heartbeat(int fd, int32_t generation, const char *member_id)
{
    buf_t b = {0};
    begin(&b, 12, 3);
    put_str(&b, group);
    put_i32(&b, generation);
    put_str(&b, member_id);
    put_str(&b, NULL);
    send_req(fd, &b);
    free(b.p);
    resp_t r = recv_resp(fd);
    (void)get_i32(&r);
    int16_t err = get_i16(&r);
    if (r.err || r.pos != r.len) die("Heartbeat v3 response does not parse");
    free(r.p);
    return err;
}

static int16_t leave(int fd, const char *member_id)
{
    buf_t b = {0};
    begin(&b, 13, 1);
    put_str(&b, group);
    put_str(&b, member_id);
    send_req(fd, &b);
    free(b.p);
    resp_t r = recv_resp(fd);
    (void)get_i32(&r);
    int16_t err = get_i16(&r);
    if (r.err || r.pos != r.len) die("LeaveGroup v1 response does not parse");
    free(r.p);
    return err;
}

/* Sends b on a fresh connection and expects the broker to close it without
 * an answer. */
static void expect_close(buf_t *b, const char *what)
{
    int fd = conn_open();
    send_req(fd, b);
    uint8_t x[4];
    check(read_full(fd, x, 4) < 0, "%s: the broker closed the connection without answering", what);
    close(fd);
}

static int abandon(void)
{
    char a_id[256], b_id[256], got[256];
    int a = conn_open();
    join_new_send(a, a_id, sizeof a_id, 2000); /* held: the initial delay */
    usleep(100 * 1000);
    close(a);
    printf("member A (%s) closed its connection while its JoinGroup was held\n", a_id);

    int b = conn_open();
    join_new_send(b, b_id, sizeof b_id, 10000);
    join_resp_t j = join_recv(b);
    check(j.error == 0 && !strcmp(j.leader, a_id) && j.nmembers == 0,
          "B's JoinGroup: error %d, generation %d, leader is A: %d, %d member(s) listed (B is a follower)", j.error,
          j.generation, !strcmp(j.leader, a_id), j.nmembers);
    int32_t gen = j.generation;
    int64_t t0 = mono_ms();
    int16_t e = sync_group(b, gen, b_id, NULL, NULL, got, sizeof got);
    int64_t waited = mono_ms() - t0;
    check(e == 27 && waited >= 1000, "B's SyncGroup, held until A's session expired: error %d (27) after %lld ms", e,
          (long long)waited);
    j = join(b, b_id, "consumer", 1, "meta", 4, 10000);
    check(j.error == 0 && j.generation == gen + 1 && !strcmp(j.leader, b_id) && j.nmembers == 1,
          "B rejoins: error %d, generation %d (%d), leader is B: %d, %d member(s)", j.error, j.generation, gen + 1,
          !strcmp(j.leader, b_id), j.nmembers);
    e = sync_group(b, j.generation, b_id, b_id, "assign-B", got, sizeof got);
    check(e == 0 && !strcmp(got, "assign-B"), "B's SyncGroup as the leader: error %d, assignment \"%s\"", e, got);
    e = leave(b, b_id);
    check(e == 0, "B leaves: error %d", e);
    close(b);
    printf("%s: %d check(s) failed\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}

static int hold(void)
{
    char id[256];
    int fd = conn_open();
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    join_new_send(fd, id, sizeof id, 10000);
    printf("holding: JoinGroup of %s sent\n", id);
    fflush(stdout);
    uint8_t x[4];
    if (read_full(fd, x, 4) < 0) printf("closed: the broker closed the connection\n");
    else printf("answered: the broker answered the held JoinGroup\n");
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: grp_raw HOST PORT GROUP [bad|abandon|hold]\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    group = argv[3];
    const char *mode = argc > 4 ? argv[4] : "bad";
    if (!strcmp(mode, "abandon")) return abandon();
    if (!strcmp(mode, "hold")) return hold();
    if (strcmp(mode, "bad") != 0) die("unknown mode %s", mode);

    /* Member A: MEMBER_ID_REQUIRED, rejoin, sync. */
    int a = conn_open();
    join_resp_t j = join(a, "", "consumer", 1, "meta-A", 6, 10000);
    check(j.error == 79 && j.member_id[0], "JoinGroup v5 without a member id: error %d (79), member id \"%s\"",
          j.error, j.member_id);
    char mid[256];
    snprintf(mid, sizeof mid, "%s", j.member_id);
    j = join(a, mid, "consumer", 1, "meta-A", 6, 10000);
    check(j.error == 0 && j.generation >= 1 && !strcmp(j.leader, mid) && !strcmp(j.member_id, mid) &&
              j.nmembers == 1 && !strcmp(j.protocol, "range"),
          "JoinGroup v5 with the id: error %d, generation %d, protocol %s, leader is self: %d, %d member(s)", j.error,
          j.generation, j.protocol, !strcmp(j.leader, mid), j.nmembers);
    int32_t gen = j.generation;
    char got[256];
    int16_t e = sync_group(a, gen, mid, mid, "assign-A", got, sizeof got);
    check(e == 0 && !strcmp(got, "assign-A"), "SyncGroup v3 by the leader: error %d, assignment \"%s\"", e, got);

    /* Bad input from another connection. */
    int b = conn_open();
    j = join(b, "", "bogus", 1, "meta-B", 6, 10000);
    check(j.error == 23, "JoinGroup with protocol type \"bogus\" (group's is \"consumer\"): error %d (23)", j.error);
    j = join(b, "", "consumer", 0, NULL, 0, 10000);
    check(j.error == 23, "JoinGroup with an empty protocol list: error %d (23)", j.error);
    j = join(b, "", "", 1, "meta-B", 6, 10000);
    check(j.error == 23, "JoinGroup with an empty protocol type: error %d (23)", j.error);
    size_t big = (1u << 20) + 1;
    char *md = calloc(1, big);
    if (!md) die("out of memory");
    j = join(b, "", "consumer", 1, md, big, 10000);
    check(j.error == 42, "JoinGroup with %zu bytes of member metadata: error %d (42)", big, j.error);
    free(md);
    e = sync_group(b, gen, "nobody-1", NULL, NULL, got, sizeof got);
    check(e == 25, "SyncGroup from a non-member: error %d (25)", e);
    e = sync_group(b, gen, "nobody-2", "nobody-2", "x", got, sizeof got);
    check(e == 25, "SyncGroup with assignments from a non-member: error %d (25)", e);
    e = heartbeat(b, gen, "nobody-1");
    check(e == 25, "Heartbeat from a non-member: error %d (25)", e);
    j = join(b, "", "consumer", 1, "meta-B", 6, 1);
    check(j.error == 26, "JoinGroup with session timeout 1 ms: error %d (26)", j.error);
    close(b);

    /* Malformed requests: the connection is closed, nothing else happens. */
    buf_t m = {0};
    begin(&m, 11, 5);
    put_str(&m, group);
    put_i32(&m, 10000); /* ... and nothing more */
    expect_close(&m, "truncated JoinGroup v5");
    begin(&m, 11, 5);
    put_str(&m, group);
    put_i32(&m, 10000);
    put_i32(&m, 10000);
    put_str(&m, "");
    put_str(&m, NULL);
    put_str(&m, "consumer");
    put_i32(&m, INT32_MAX); /* protocol count */
    put_str(&m, "range");
    expect_close(&m, "JoinGroup v5 with 2^31-1 protocols");
    begin(&m, 14, 3);
    put_str(&m, group);
    put_i32(&m, gen);
    put_str(&m, mid);
    put_str(&m, NULL);
    put_i32(&m, -5); /* assignment count */
    expect_close(&m, "SyncGroup v3 with a negative assignment count");
    free(m.p);

    /* A's generation is untouched; it leaves cleanly. */
    e = heartbeat(a, gen, mid);
    check(e == 0, "Heartbeat of member A after the bad requests: error %d (0)", e);
    e = sync_group(a, gen, mid, NULL, NULL, got, sizeof got);
    check(e == 0 && !strcmp(got, "assign-A"), "SyncGroup again in Stable: error %d, assignment \"%s\"", e, got);
    e = leave(a, mid);
    check(e == 0, "LeaveGroup v1 of member A: error %d (0)", e);
    e = heartbeat(a, gen, mid);
    check(e == 25, "Heartbeat after leaving: error %d (25)", e);
    close(a);

    printf("%s: %d check(s) failed\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
