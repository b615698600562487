/*
 * rdkloop.c - librdkafka queues wired into libevent (see rdkloop.h).
 */
#include "rdkloop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sk_clock.h"
#include "sk_log.h"

int ev_rdk_watch_start(ev_rdk_watch_t *w, struct event_base *base, rd_kafka_queue_t *q,
                       event_callback_fn cb, void *arg, char *err, size_t errsz)
{
    int fds[2];
    memset(w, 0, sizeof *w);
    w->rfd = w->wfd = -1;
    w->q = q;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errsz, "pipe: %s", strerror(errno));
        goto fail;
    }
    w->rfd = fds[0];
    w->wfd = fds[1];
    w->ev = event_new(base, w->rfd, EV_READ | EV_PERSIST, cb, arg);
    if (!w->ev || event_add(w->ev, NULL) < 0) {
        snprintf(err, errsz, "cannot add the librdkafka queue event to the loop");
        goto fail;
    }
    rd_kafka_queue_io_event_enable(q, w->wfd, "1", 1);
    /* Anything queued before the IO event was enabled wrote no byte. */
    event_active(w->ev, EV_READ, 0);
    return 0;
fail:
    ev_rdk_watch_stop(w);
    return -1;
}

void ev_rdk_watch_drain(ev_rdk_watch_t *w)
{
    char buf[256];
    while (w->rfd >= 0 && read(w->rfd, buf, sizeof buf) > 0) {
    }
}

void ev_rdk_watch_again(ev_rdk_watch_t *w)
{
    if (w->ev) event_active(w->ev, EV_READ, 0);
}

void ev_rdk_watch_stop(ev_rdk_watch_t *w)
{
    if (w->q) {
        rd_kafka_queue_io_event_enable(w->q, -1, NULL, 0);
        rd_kafka_queue_destroy(w->q);
        w->q = NULL;
    }
    if (w->ev) {
        event_free(w->ev);
        w->ev = NULL;
    }
    if (w->rfd >= 0) close(w->rfd);
    if (w->wfd >= 0) close(w->wfd);
    w->rfd = w->wfd = -1;
}

int ev_rdk_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err, size_t errsz)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(err, errsz, "librdkafka property %s=%s: %s", name, value, why);
        return -1;
    }
    return 0;
}

int ev_rdk_set_pairs(rd_kafka_conf_t *conf, const char *const *props, char *err, size_t errsz)
{
    for (size_t i = 0; props && props[i]; i += 2) {
        if (!props[i + 1]) {
            snprintf(err, errsz, "librdkafka property %s has no value", props[i]);
            return -1;
        }
        if (ev_rdk_set(conf, props[i], props[i + 1], err, errsz) < 0) return -1;
    }
    return 0;
}

int ev_rdk_ratelimit(ev_rdk_ratelimit_t *rl, int err, int64_t every_ms)
{
    int64_t now = sk_mono_ms();
    size_t oldest = 0, n = sizeof rl->slot / sizeof rl->slot[0];
    for (size_t i = 0; i < n; i++) {
        if (rl->slot[i].at_ms && rl->slot[i].err == err) {
            if (now - rl->slot[i].at_ms < every_ms) return 0;
            rl->slot[i].at_ms = now;
            return 1;
        }
        if (rl->slot[i].at_ms < rl->slot[oldest].at_ms) oldest = i;
    }
    rl->slot[oldest].err = err;
    rl->slot[oldest].at_ms = now;
    return 1;
}

void ev_rdk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug.  librdkafka
     * is chatty at 6 (notice of every reconnect); those stay at debug. */
    sk_log_level_t l = level <= 3 ? SK_LOG_ERROR : level == 4 ? SK_LOG_WARN : level == 5 ? SK_LOG_INFO : SK_LOG_DEBUG;
    if (!strcmp(fac, "FAIL")) l = SK_LOG_DEBUG;
    if (!sk_log_enabled(l)) return;
    sk_log(l, "rdkafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}
