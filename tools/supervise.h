/*
 * supervise.h - the process supervisor behind `souk up`.
 *
 * A supervisor runs a set of child processes on one libevent loop:
 *
 *   - it starts them stage by stage: every process of stage N is started
 *     together, and stage N + 1 only when all of stage N answer their
 *     readiness probe (a TCP connect, or GET /ready = 200, plus an optional
 *     file that must exist), each stage within start_timeout_ms;
 *   - each child's stdout and stderr go to one pipe; its lines are written
 *     to opts.out prefixed with its name ("catalog      | ..."), or passed
 *     through as JSON lines (a line that is not JSON is wrapped in one);
 *   - a child that exits while the supervisor is not stopping is restarted
 *     after a backoff (backoff_min_ms doubling up to backoff_max_ms; back to
 *     the minimum once a run lasted backoff_reset_ms), and probed again;
 *   - SIGTERM or SIGINT stops everything in reverse stage order: SIGTERM to
 *     the highest stage, wait until it exited, then the next; whatever still
 *     runs stop_timeout_ms after the first SIGTERM gets SIGKILL.  A second
 *     signal sends SIGKILL at once;
 *   - state_path (if set) is rewritten atomically whenever a child starts,
 *     exits or becomes ready: a comment line, then one line per child
 *     "name pid host:port key=value..." (pid 0 while it is not running;
 *     keys: state=starting|ready|backoff|stopping|stopped, restarts=N, and
 *     the spec's state_extra).
 *
 * Children run in their own process group (a terminal's Ctrl-C reaches only
 * the supervisor, which then stops them in order) and get SIGTERM if the
 * supervisor dies (PR_SET_PDEATHSIG).  One supervisor per process: it owns
 * SIGCHLD, SIGTERM and SIGINT while it exists.
 */
#ifndef SOUK_SUPERVISE_H
#define SOUK_SUPERVISE_H

#include <stdint.h>
#include <stdio.h>

typedef struct sup_s sup_t;

typedef enum { SUP_PROBE_TCP, SUP_PROBE_HTTP } sup_probe_t;

typedef struct sup_spec_s {
    const char *name;  /* "catalog": the line prefix and the state-file name */
    char *const *argv; /* argv[0] is the binary's path; NULL-terminated */
    char *const *env;  /* "NAME=value" added to this child's environment only;
                          NULL-terminated, or NULL */
    int stage;         /* >= 0; see above */
    sup_probe_t probe;
    const char *host; /* where readiness is probed: an IP literal */
    int port;
    const char *ready_file;  /* must exist as well before the child is ready; may be NULL */
    const char *state_extra; /* appended to its state-file line; may be NULL */
} sup_spec_t;

typedef struct sup_opts_s {
    FILE *out; /* where every line goes; NULL: stdout */
    int json_logs;
    const char *state_path;   /* may be NULL */
    int64_t start_timeout_ms; /* per stage */
    int64_t stop_timeout_ms;
    int64_t backoff_min_ms, backoff_max_ms, backoff_reset_ms;
} sup_opts_t;

typedef enum {
    SUP_UP = 0,          /* every child is ready; call sup_run() */
    SUP_INTERRUPTED = 1, /* SIGTERM/SIGINT during the start; everything was stopped */
    SUP_FAILED = 2       /* a stage was not ready in time, or a child failed at
                            once with exit status 2; everything was stopped */
} sup_result_t;

/* Strings in opts are copied.  Returns NULL (with a reason in err) if the
 * event loop or the signal events cannot be set up. */
sup_t *sup_new(const sup_opts_t *opts, char *err, size_t errsz);
/* Adds a child (not started yet); every string of spec is copied. */
void sup_add(sup_t *s, const sup_spec_t *spec);
/* Starts the children and runs the loop until they are all ready, or until
 * the start fails or is interrupted (then every child has been stopped). */
sup_result_t sup_start(sup_t *s);
/* After SUP_UP: supervises until SIGTERM/SIGINT, then stops everything.
 * Returns 0 if every child exited by itself after SIGTERM, 1 if some had to
 * be killed. */
int sup_run(sup_t *s);
/* A line from the supervisor itself, formatted like the children's. */
void sup_log(sup_t *s, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees everything; children must have been stopped (sup_start() not
 * SUP_UP, or sup_run() returned). */
void sup_free(sup_t *s);

/* One line of a state file, as sup_state_read() returns it. */
typedef struct sup_state_entry_s {
    char name[64];
    long pid;       /* 0: not running */
    char addr[300]; /* host:port */
    char state[16]; /* starting, ready, backoff, stopping, stopped */
    int restarts;
    char extra[300]; /* the other key=value words, e.g. "kv=127.0.0.1:6379" */
} sup_state_entry_t;

/*
 * Reads a state file written by a supervisor.  Returns the number of
 * entries, with the array in *out (the caller frees it; NULL when 0), or -1
 * with errno set if the file cannot be read.  *sup_pid (may be NULL) gets the
 * supervisor's pid from the comment line, 0 if there is none.
 */
int sup_state_read(const char *path, sup_state_entry_t **out, long *sup_pid);

#endif
