/*
 * rdkloop.h - librdkafka on a libevent loop (internal to libevents: the
 * outbox relay and the consumer share it).
 *
 * librdkafka runs its own threads for the network; what reaches the
 * application (delivery reports, messages, rebalances, errors, logs) is put
 * on a queue.  rd_kafka_queue_io_event_enable() makes librdkafka write a
 * byte to a file descriptor whenever an element is put on that queue while
 * it was empty (at most once per "non-polling period").  ev_rdk_watch_t
 * owns a non-blocking pipe for that and a libevent read event on its read
 * end, so the loop wakes exactly when there is work: no busy polling.
 *
 * The contract for the callback, which both users follow: drain the pipe
 * (ev_rdk_watch_drain()), then serve the queue until it is empty (or, after
 * a budget, re-activate the event with ev_rdk_watch_again() so that other
 * events get a turn).  Leaving elements on the queue without re-activating
 * would lose the wake-up, since the byte is only written on the
 * empty -> non-empty transition.
 */
#ifndef EV_RDKLOOP_H
#define EV_RDKLOOP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

typedef struct ev_rdk_watch_s {
    int rfd, wfd;
    struct event *ev;
    rd_kafka_queue_t *q; /* owned reference */
} ev_rdk_watch_t;

/*
 * Starts watching q (the watch takes over the caller's reference to q):
 * creates the pipe, enables the IO event on q and adds a persistent read
 * event calling cb(fd, what, arg) on base.  Returns 0, or -1 with err set
 * (q is then destroyed).
 */
int ev_rdk_watch_start(ev_rdk_watch_t *w, struct event_base *base, rd_kafka_queue_t *q,
                       event_callback_fn cb, void *arg, char *err, size_t errsz);
/* Reads the pipe until it is empty (call first thing in the callback). */
void ev_rdk_watch_drain(ev_rdk_watch_t *w);
/* Runs the callback again on the next loop iteration. */
void ev_rdk_watch_again(ev_rdk_watch_t *w);
/* Disables the IO event (librdkafka stops writing), frees the event, closes
 * the pipe and drops the queue reference.  Call before rd_kafka_destroy().
 * Safe on a zeroed or already stopped watch. */
void ev_rdk_watch_stop(ev_rdk_watch_t *w);

/* rd_kafka_conf_set() with the property name in the error. */
int ev_rdk_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err, size_t errsz);
/* Applies "name", "value", ... pairs (NULL-terminated; props may be NULL). */
int ev_rdk_set_pairs(rd_kafka_conf_t *conf, const char *const *props, char *err, size_t errsz);

/* Remembers when each error code was last logged, so that an outage that
 * repeats the same error on every reconnect logs it once per `every_ms`. */
typedef struct ev_rdk_ratelimit_s {
    struct {
        int err;
        int64_t at_ms;
    } slot[8];
} ev_rdk_ratelimit_t;
/* 1 if err should be logged now (and records that), 0 to stay quiet. */
int ev_rdk_ratelimit(ev_rdk_ratelimit_t *rl, int err, int64_t every_ms);

/* A log_cb that writes librdkafka's log lines through sk_log (facility
 * "rdkafka").  Used with log.queue=true so that it runs on the loop thread.
 * librdkafka's "FAIL" lines (a broker connection failed) go to debug: the
 * error_cb reports the same, rate-limited. */
void ev_rdk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
