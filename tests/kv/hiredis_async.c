/*
 * hiredis_async PORT - hiredis's asynchronous API on a libevent loop
 * (hiredis/adapters/libevent.h), as a service would use it: 1,000 SETs
 * with a TTL and GETs issued from callbacks, a key that expires while the
 * loop runs (checked with PTTL and then GET), and a clean disconnect.
 */
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1000

static struct event_base *base;
static int done_gets, errors, expired_checked;

static void got_reply(redisAsyncContext *c, void *r, void *priv);

static void check_expired(redisAsyncContext *c, void *reply, void *priv)
{
    (void)priv;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_NIL) {
        fprintf(stderr, "hiredis_async: the short-lived key did not expire\n");
        errors++;
    }
    expired_checked = 1;
    redisAsyncDisconnect(c);
}

static void later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    redisAsyncCommand(arg, check_expired, NULL, "GET short");
}

static void got_reply(redisAsyncContext *c, void *reply, void *priv)
{
    redisReply *r = reply;
    long i = (long)(intptr_t)priv;
    char want[32];
    snprintf(want, sizeof want, "v%ld", i);
    if (!r || r->type != REDIS_REPLY_STRING || strcmp(r->str, want)) {
        fprintf(stderr, "hiredis_async: GET k%ld: unexpected reply\n", i);
        errors++;
    }
    if (++done_gets == N) {
        /* Everything answered: now a key that expires in 200 ms. */
        redisAsyncCommand(c, NULL, NULL, "SET short x PX 200");
        struct timeval tv = {0, 500000};
        event_base_once(base, -1, EV_TIMEOUT, later, c, &tv);
    }
}

static void set_done(redisAsyncContext *c, void *reply, void *priv)
{
    redisReply *r = reply;
    long i = (long)(intptr_t)priv;
    if (!r || r->type != REDIS_REPLY_STATUS) {
        fprintf(stderr, "hiredis_async: SET k%ld failed\n", i);
        errors++;
        return;
    }
    redisAsyncCommand(c, got_reply, (void *)(intptr_t)i, "GET k%ld", i);
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) {
        fprintf(stderr, "hiredis_async: disconnected: %s\n", c->errstr);
        errors++;
    }
    event_base_loopbreak(base);
}

static void on_connect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) {
        fprintf(stderr, "hiredis_async: connect: %s\n", c->errstr);
        errors++;
        event_base_loopbreak(base);
    }
}

static void give_up(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fprintf(stderr, "hiredis_async: timed out\n");
    errors++;
    event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hiredis_async PORT\n");
        return 2;
    }
    base = event_base_new();
    redisAsyncContext *c = redisAsyncConnect("127.0.0.1", atoi(argv[1]));
    if (!c || c->err) {
        fprintf(stderr, "hiredis_async: %s\n", c ? c->errstr : "out of memory");
        return 1;
    }
    redisLibeventAttach(c, base);
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    for (long i = 0; i < N; i++) redisAsyncCommand(c, set_done, (void *)(intptr_t)i, "SET k%ld v%ld EX 60", i, i);
    struct timeval limit = {20, 0};
    event_base_once(base, -1, EV_TIMEOUT, give_up, NULL, &limit);
    event_base_dispatch(base);
    event_base_free(base);
    if (errors || done_gets != N || !expired_checked) {
        fprintf(stderr, "hiredis_async: %d errors, %d of %d GETs, expiry %s\n", errors, done_gets, N,
                expired_checked ? "checked" : "not checked");
        return 1;
    }
    printf("hiredis_async: %d SET+GET pairs and an expiry on a libevent loop\n", N);
    return 0;
}
