/*
 * hiredis_pipeline PORT - 10,000 pipelined commands through hiredis (the
 * services' client): all are written first, then every reply is read and
 * checked.  Exits 0 when every reply is what Redis would answer.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 10000

static int fail(const char *what, int i, const redisReply *r)
{
    fprintf(stderr, "hiredis_pipeline: command %d (%s): unexpected reply type %d '%s'\n", i, what,
            r ? r->type : -1, r && r->str ? r->str : "");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hiredis_pipeline PORT\n");
        return 2;
    }
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", atoi(argv[1]), tv);
    if (!c || c->err) {
        fprintf(stderr, "hiredis_pipeline: connect: %s\n", c ? c->errstr : "out of memory");
        return 1;
    }
    redisSetTimeout(c, tv);
    /* 4 kinds, N / 4 each, interleaved: SET, GET, INCR, DEL of a missing key. */
    for (int i = 0; i < N; i++) {
        char key[32], val[32];
        snprintf(key, sizeof key, "pipe:%d", i / 4);
        snprintf(val, sizeof val, "value-%d", i / 4);
        switch (i % 4) {
        case 0: redisAppendCommand(c, "SET %s %s EX 600", key, val); break;
        case 1: redisAppendCommand(c, "GET %s", key); break;
        case 2: redisAppendCommand(c, "INCR counter"); break;
        case 3: redisAppendCommand(c, "DEL nosuch:%d", i); break;
        }
    }
    int rc = 0;
    long long incr = 0;
    for (int i = 0; i < N && rc == 0; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "hiredis_pipeline: reply %d: %s\n", i, c->errstr);
            return 1;
        }
        char val[32];
        snprintf(val, sizeof val, "value-%d", i / 4);
        switch (i % 4) {
        case 0:
            if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK")) rc = fail("SET", i, r);
            break;
        case 1:
            if (r->type != REDIS_REPLY_STRING || strcmp(r->str, val)) rc = fail("GET", i, r);
            break;
        case 2:
            if (r->type != REDIS_REPLY_INTEGER || r->integer != ++incr) rc = fail("INCR", i, r);
            break;
        case 3:
            if (r->type != REDIS_REPLY_INTEGER || r->integer != 0) rc = fail("DEL", i, r);
            break;
        }
        freeReplyObject(r);
    }
    if (rc == 0) printf("hiredis_pipeline: %d pipelined commands, every reply as expected\n", N);
    redisFree(c);
    return rc;
}
