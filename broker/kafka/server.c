#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "group.h"
#include "kafka.h"
#include "sk_alloc.h"
#include "sk_fs.h"
#include "sk_log.h"
#include "sk_net.h"

#define OUTPUT_HIGH_WATER (16u << 20)
#define OUTPUT_LOW_WATER (1u << 20)

typedef struct kp_conn_s {
    kp_server_t *srv;
    struct bufferevent *bev;
    struct event *resume_ev;
    kp_fetch_t *pending; /* a deferred Fetch holds the connection */
    kp_waiter_t *waiter; /* so does a held JoinGroup or SyncGroup */
    char peer[INET6_ADDRSTRLEN + 8];
    struct kp_conn_s *next, *prev;
} kp_conn_t;

struct kp_server_s {
    broker_t *b;
    struct evconnlistener *listener;
    kp_conn_t *conns;
    char address[INET6_ADDRSTRLEN + 8];
    uint64_t trace_seq;
};

static void conn_process(kp_conn_t *c);

static void conn_free(kp_conn_t *c)
{
    kp_server_t *s = c->srv;
    broker_t *b = s->b;
    if (c->pending) {
        kp_fetch_t *f = c->pending;
        if (f->prev) f->prev->next = f->next;
        else b->fetch_waiters = f->next;
        if (f->next) f->next->prev = f->prev;
        if (f->timer) event_free(f->timer);
        kp_fetch_free(f);
    }
    if (c->waiter) {
        grp_waiter_cancel(kp_groups(b), c->waiter);
        kp_waiter_free(c->waiter);
    }
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->resume_ev) event_free(c->resume_ev);
    bufferevent_free(c->bev);
    free(c);
}

static void free_detached(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* Queues a response frame without copying it again. */
static void conn_send(kp_conn_t *c, sk_buf_t *out)
{
    if (out->len == 0) return;
    size_t n;
    char *d = sk_buf_detach(out, &n);
    evbuffer_add_reference(bufferevent_get_output(c->bev), d, n, free_detached, NULL);
}

/* Answers a waiting fetch with what is there now and lets its connection go on. */
static void fetch_complete(broker_t *b, kp_fetch_t *f)
{
    kp_conn_t *c = f->conn;
    if (f->prev) f->prev->next = f->next;
    else b->fetch_waiters = f->next;
    if (f->next) f->next->prev = f->prev;
    if (f->timer) event_free(f->timer);
    f->timer = NULL;
    sk_buf_t out;
    sk_buf_init(&out, 4096);
    kp_frame_begin(&out, f->correlation_id, 0);
    kp_fetch_respond(b, f, &out);
    kp_frame_end(&out, 0);
    conn_send(c, &out);
    sk_buf_release(&out);
    c->pending = NULL;
    kp_fetch_free(f);
    event_active(c->resume_ev, EV_TIMEOUT, 0);
}

void kp_server_waiter_deliver(kp_waiter_t *w)
{
    kp_conn_t *c = w->conn;
    sk_buf_t out;
    sk_buf_init(&out, w->body.len + 16);
    kp_frame_begin(&out, w->correlation_id, 0);
    sk_buf_add(&out, w->body.data, w->body.len);
    kp_frame_end(&out, 0);
    conn_send(c, &out);
    sk_buf_release(&out);
    c->waiter = NULL;
    kp_waiter_free(w);
    event_active(c->resume_ev, EV_TIMEOUT, 0);
}

static void fetch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kp_fetch_t *f = arg;
    kp_conn_t *c = f->conn;
    fetch_complete(c->srv->b, f);
}

/* Runs once per loop pass after appends: answers fetches that now have data. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    broker_t *b = arg;
    kp_fetch_t *f = b->fetch_waiters;
    while (f) {
        kp_fetch_t *next = f->next;
        if (kp_fetch_has_data(f)) fetch_complete(b, f);
        f = next;
    }
}

void kp_server_notify_append(broker_t *b)
{
    if (b->base && b->wake_ev && b->fetch_waiters) event_active(b->wake_ev, EV_TIMEOUT, 0);
}

static void trace_frame(kp_server_t *s, const uint8_t *frame, size_t len)
{
    char path[PATH_MAX];
    int16_t key = len >= 2 ? sk_load_i16(frame) : -1, ver = len >= 4 ? sk_load_i16(frame + 2) : -1;
    snprintf(path, sizeof path, "%s/%06llu-api%d-v%d.bin", s->b->cfg.trace_requests,
             (unsigned long long)s->trace_seq++, key, ver);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (sk_write_all(fd, frame, len) < 0) sk_warn("kafka", "trace %s: %s", path, strerror(errno));
    close(fd);
}

/* Cuts and answers every whole frame in the input, in order, until a
 * response must wait or the client stops reading. */
static void conn_process(kp_conn_t *c)
{
    kp_server_t *s = c->srv;
    broker_t *b = s->b;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *outq = bufferevent_get_output(c->bev);
    sk_buf_t out;
    sk_buf_init(&out, 0);
    while (!c->pending && !c->waiter) {
        if (evbuffer_get_length(outq) > OUTPUT_HIGH_WATER) break; /* resumed by write_cb */
        size_t avail = evbuffer_get_length(in), flen = 0;
        uint8_t head[4];
        if (avail < 4) break;
        evbuffer_copyout(in, head, 4);
        kp_frame_result_t r = kp_frame_try_extract(head, 4, (size_t)b->cfg.max_request_bytes, &flen);
        if (r == KP_FRAME_ERROR) {
            sk_warn("kafka", "%s: closing connection: request size %lld outside 10..%lld bytes", c->peer,
                    (long long)sk_load_i32(head), (long long)b->cfg.max_request_bytes);
            sk_buf_release(&out);
            conn_free(c);
            return;
        }
        if (avail < flen) break;
        uint8_t *frame = evbuffer_pullup(in, (ssize_t)flen);
        if (b->cfg.trace_requests && *b->cfg.trace_requests) trace_frame(s, frame + 4, flen - 4);
        kp_ctx_t ctx = {.b = b, .peer = c->peer, .can_defer = !b->shutting_down};
        kp_action_t a = kp_handle_frame(&ctx, frame + 4, flen - 4, &out);
        evbuffer_drain(in, flen);
        switch (a) {
        case KP_RESPOND:
            conn_send(c, &out);
            break;
        case KP_NO_RESPONSE:
            break;
        case KP_DEFER: {
            if (ctx.waiter) {
                ctx.waiter->conn = c;
                c->waiter = ctx.waiter;
                break;
            }
            kp_fetch_t *f = ctx.fetch;
            f->conn = c;
            f->next = b->fetch_waiters;
            if (f->next) f->next->prev = f;
            f->prev = NULL;
            b->fetch_waiters = f;
            c->pending = f;
            f->timer = evtimer_new(b->base, fetch_timeout_cb, f);
            struct timeval tv = {f->max_wait_ms / 1000, (f->max_wait_ms % 1000) * 1000};
            evtimer_add(f->timer, &tv);
            break;
        }
        case KP_CLOSE:
            sk_warn("kafka", "%s: closing connection: %s", c->peer, ctx.errstr);
            sk_buf_release(&out);
            conn_free(c);
            return;
        }
    }
    sk_buf_release(&out);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    kp_conn_t *c = arg;
    if (!c->pending && !c->waiter && evbuffer_get_length(bufferevent_get_input(c->bev)) >= 4) conn_process(c);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_process(arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    kp_conn_t *c = arg;
    if (what & BEV_EVENT_ERROR) sk_debug("kafka", "%s: connection error: %s", c->peer, strerror(errno));
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) conn_free(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)salen;
    kp_server_t *s = arg;
    kp_conn_t *c = sk_calloc(1, sizeof *c);
    c->srv = s;
    sk_net_format(sa, c->peer, sizeof c->peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->bev = bufferevent_socket_new(s->b->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->resume_ev = event_new(s->b->base, -1, 0, resume_cb, c);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUTPUT_LOW_WATER, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = s->conns;
    if (c->next) c->next->prev = c;
    s->conns = c;
    sk_debug("kafka", "%s: connected", c->peer);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    /* EMFILE and the like: log and keep the listener; the loop retries. */
    sk_error("kafka", "accept failed: %s", strerror(errno));
}

kp_server_t *kp_server_new(broker_t *b, char *errstr, size_t errsz)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (sk_net_parse_listen(b->cfg.kafka_listen, &ss, &sslen) < 0) {
        snprintf(errstr, errsz, "--kafka-listen '%s' is not HOST:PORT (an IP address and a port)", b->cfg.kafka_listen);
        return NULL;
    }
    kp_server_t *s = sk_calloc(1, sizeof *s);
    s->b = b;
    s->listener = evconnlistener_new_bind(b->base, accept_cb, s,
                                          LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128,
                                          (struct sockaddr *)&ss, (int)sslen);
    if (!s->listener) {
        snprintf(errstr, errsz, "cannot listen on %s: %s", b->cfg.kafka_listen, strerror(errno));
        free(s);
        return NULL;
    }
    evconnlistener_set_error_cb(s->listener, accept_error_cb);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&bound, &blen);
    sk_net_format((struct sockaddr *)&bound, s->address, sizeof s->address);

    char host[256];
    int port;
    if (b->cfg.advertised_listener && *b->cfg.advertised_listener) {
        if (sk_net_split_hostport(b->cfg.advertised_listener, host, sizeof host, &port) < 0 || port == 0) {
            snprintf(errstr, errsz, "--advertised-listener '%s' is not HOST:PORT", b->cfg.advertised_listener);
            kp_server_free(s);
            return NULL;
        }
    } else {
        sk_net_split_hostport(s->address, host, sizeof host, &port);
        /* A wildcard address is not connectable: advertise loopback. */
        if (!strcmp(host, "0.0.0.0")) snprintf(host, sizeof host, "127.0.0.1");
        else if (!strcmp(host, "::")) snprintf(host, sizeof host, "::1");
    }
    b->adv_host = sk_strdup(host);
    b->adv_port = port;
    b->wake_ev = event_new(b->base, -1, 0, wake_cb, b);
    return s;
}

const char *kp_server_address(const kp_server_t *s)
{
    return s->address;
}

void kp_server_stop_accepting(kp_server_t *s)
{
    if (s->listener) evconnlistener_free(s->listener);
    s->listener = NULL;
    while (s->b->fetch_waiters) fetch_complete(s->b, s->b->fetch_waiters);
}

size_t kp_server_pending_output(const kp_server_t *s)
{
    size_t n = 0;
    for (kp_conn_t *c = s->conns; c; c = c->next) n += evbuffer_get_length(bufferevent_get_output(c->bev));
    return n;
}

void kp_server_free(kp_server_t *s)
{
    if (!s) return;
    if (s->listener) evconnlistener_free(s->listener);
    while (s->conns) conn_free(s->conns);
    if (s->b->wake_ev) event_free(s->b->wake_ev);
    s->b->wake_ev = NULL;
    free(s);
}
