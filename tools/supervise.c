/*
 * supervise.c - start, watch, restart and stop souk's processes.
 *
 * Everything runs on one libevent loop: a child's output pipe is an event,
 * SIGCHLD/SIGTERM/SIGINT are signal events, a readiness probe is a
 * bufferevent connecting to the child, restarts and deadlines are timers.
 * Nothing here blocks.
 */
#include "supervise.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_net.h"

extern char **environ;

#define PROBE_INTERVAL_MS 200
#define PROBE_TIMEOUT_S 2
#define LINE_MAX_BYTES (64 * 1024)

typedef enum {
    C_IDLE,     /* not started yet */
    C_STARTING, /* running, not ready yet */
    C_READY,
    C_BACKOFF,  /* exited; restart timer armed */
    C_STOPPING, /* SIGTERM sent */
    C_STOPPED   /* exited for good */
} child_state_t;

static const char *const state_names[] = {"idle",    "starting", "ready",
                                          "backoff", "stopping", "stopped"};

typedef enum { P_INIT, P_STARTING, P_UP, P_STOPPING, P_DONE } phase_t;

typedef struct child_s {
    sup_t *sup;
    char *name;
    char **argv;
    char **envp; /* the whole environment of the child */
    int stage;
    sup_probe_t probe;
    char *host;
    int port;
    char *ready_file;
    char *state_extra;

    child_state_t state;
    pid_t pid;
    int ever_ready;
    int restarts;
    int64_t started_ms;
    int64_t backoff_ms;

    int out_fd;
    struct event *out_ev;
    sk_buf_t part; /* a line not finished yet */

    struct event *restart_ev;
    struct event *probe_ev;
    struct bufferevent *probe_bev;
} child_t;

struct sup_s {
    struct event_base *base;
    FILE *out;
    int json_logs;
    char *state_path;
    int64_t start_timeout_ms, stop_timeout_ms;
    int64_t backoff_min_ms, backoff_max_ms, backoff_reset_ms;
    int width; /* of the name column */

    child_t **kids;
    size_t nkids;

    phase_t phase;
    sup_result_t result;
    int cur_stage;
    int killed;
    struct event *sig_ev[3];
    struct event *stage_ev; /* start deadline of the current stage */
    struct event *stop_ev;  /* SIGKILL deadline */
};

static void child_probe_schedule(child_t *c);
static void stop_next(sup_t *s);
static void begin_stop(sup_t *s, sup_result_t result);

/* ---- output ------------------------------------------------------------- */

static void out_json_line(sup_t *s, const char *level, const char *process, const char *msg,
                          size_t len)
{
    char now[SK_RFC3339_LEN];
    sk_buf_t b = SK_BUF_INIT;
    sk_buf_init(&b, len + 128);
    sk_buf_addf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"service\":\"souk\",\"facility\":\"up\"",
                sk_rfc3339_ms(sk_wall_ms(), now), level);
    if (process) {
        sk_buf_adds(&b, ",\"process\":");
        sk_buf_add_json_str(&b, process, strlen(process));
    }
    sk_buf_adds(&b, ",\"msg\":");
    sk_buf_add_json_str(&b, msg, len);
    sk_buf_adds(&b, "}\n");
    fwrite(b.data, 1, b.len, s->out);
    sk_buf_release(&b);
}

/* One line of a child's output (without its newline). */
static void emit_line(sup_t *s, const char *name, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (s->json_logs) {
        if (len >= 2 && line[0] == '{' && line[len - 1] == '}') {
            fwrite(line, 1, len, s->out);
            fputc('\n', s->out);
        } else {
            out_json_line(s, "info", name, line, len);
        }
    } else {
        fprintf(s->out, "%-*s | %.*s\n", s->width, name, (int)len, line);
    }
    fflush(s->out);
}

void sup_log(sup_t *s, const char *level, const char *fmt, ...)
{
    sk_buf_t b = SK_BUF_INIT;
    va_list ap;
    sk_buf_init(&b, 128);
    va_start(ap, fmt);
    sk_buf_vaddf(&b, fmt, ap);
    va_end(ap);
    if (s->json_logs) {
        out_json_line(s, level, NULL, b.data, b.len);
        fflush(s->out);
    } else {
        emit_line(s, "souk", b.data, b.len);
    }
    sk_buf_release(&b);
}

/* ---- the state file ----------------------------------------------------- */

static void format_addr(const char *host, int port, char *out, size_t outsz)
{
    snprintf(out, outsz, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

static void state_write(sup_t *s)
{
    if (!s->state_path) return;
    sk_buf_t tmp = SK_BUF_INIT, b = SK_BUF_INIT;
    sk_buf_init(&tmp, 0);
    sk_buf_init(&b, 1024);
    sk_buf_addf(&tmp, "%s.tmp", s->state_path);
    sk_buf_addf(&b, "# souk up: supervisor pid %ld; name pid address key=value...\n",
                (long)getpid());
    for (size_t i = 0; i < s->nkids; i++) {
        child_t *c = s->kids[i];
        char addr[300];
        format_addr(c->host, c->port, addr, sizeof addr);
        sk_buf_addf(&b, "%s %ld %s state=%s restarts=%d%s%s\n", c->name, (long)c->pid, addr,
                    state_names[c->state], c->restarts, c->state_extra ? " " : "",
                    c->state_extra ? c->state_extra : "");
    }
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len || close(fd) < 0 ||
        rename(tmp.data, s->state_path) < 0) {
        sup_log(s, "warn", "cannot write %s: %s", s->state_path, strerror(errno));
        if (fd >= 0) unlink(tmp.data);
    }
    sk_buf_release(&tmp);
    sk_buf_release(&b);
}

/* ---- a child's output pipe ---------------------------------------------- */

static void pipe_close(child_t *c)
{
    if (c->out_fd < 0) return;
    if (c->part.len > 0) emit_line(c->sup, c->name, c->part.data, c->part.len);
    sk_buf_reset(&c->part);
    event_free(c->out_ev);
    c->out_ev = NULL;
    close(c->out_fd);
    c->out_fd = -1;
}

/* Reads what the pipe holds; returns 1 at EOF or error, else 0. */
static int pipe_read(child_t *c)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(c->out_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        if (n <= 0) return 1;
        const char *p = buf, *end = buf + n;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                sk_buf_add(&c->part, p, (size_t)(end - p));
                if (c->part.len >= LINE_MAX_BYTES) {
                    emit_line(c->sup, c->name, c->part.data, c->part.len);
                    sk_buf_reset(&c->part);
                }
                break;
            }
            if (c->part.len) {
                sk_buf_add(&c->part, p, (size_t)(nl - p));
                emit_line(c->sup, c->name, c->part.data, c->part.len);
                sk_buf_reset(&c->part);
            } else {
                emit_line(c->sup, c->name, p, (size_t)(nl - p));
            }
            p = nl + 1;
        }
    }
}

static void pipe_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    child_t *c = arg;
    if (pipe_read(c)) pipe_close(c);
}

/* ---- starting a child --------------------------------------------------- */

static void child_spawn(child_t *c)
{
    sup_t *s = c->sup;
    int p[2], devnull;
    if (c->out_fd >= 0) { /* the previous run's pipe, if still open */
        pipe_read(c);
        pipe_close(c);
    }
    if (pipe2(p, O_CLOEXEC) < 0 || (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        sup_log(s, "error", "cannot start %s: %s", c->name, strerror(errno));
        goto fail;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        sup_log(s, "error", "cannot start %s: fork: %s", c->name, strerror(errno));
        close(p[0]);
        close(p[1]);
        close(devnull);
        goto fail;
    }
    if (pid == 0) {
        /* The child: only async-signal-safe calls until exec. */
        sigset_t none;
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        dup2(devnull, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(c->argv[0], c->argv, c->envp);
        static const char msg[] = "souk up: exec failed\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(127);
    }
    setpgid(pid, pid); /* also here, so that it holds before either side runs on */
    close(p[1]);
    close(devnull);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    c->out_fd = p[0];
    c->out_ev = event_new(s->base, p[0], EV_READ | EV_PERSIST, pipe_cb, c);
    event_add(c->out_ev, NULL);
    c->pid = pid;
    c->state = C_STARTING;
    c->started_ms = sk_mono_ms();
    if (c->restarts == 0)
        sup_log(s, "info", "starting %s (pid %ld)", c->name, (long)pid);
    else
        sup_log(s, "info", "restarting %s (pid %ld, restart %d)", c->name, (long)pid, c->restarts);
    state_write(s);
    child_probe_schedule(c);
    return;
fail:
    /* Treated like an exit: the backoff timer tries again. */
    c->state = C_BACKOFF;
    {
        struct timeval tv = {(time_t)(c->backoff_ms / 1000),
                             (suseconds_t)(c->backoff_ms % 1000) * 1000};
        event_add(c->restart_ev, &tv);
    }
}

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    child_t *c = arg;
    if (c->state != C_BACKOFF || c->sup->phase >= P_STOPPING) return;
    c->restarts++;
    child_spawn(c);
}

/* ---- readiness ---------------------------------------------------------- */

static void probe_end(child_t *c)
{
    if (c->probe_bev) {
        bufferevent_free(c->probe_bev);
        c->probe_bev = NULL;
    }
}

static void stage_check(sup_t *s);

static void child_ready(child_t *c)
{
    sup_t *s = c->sup;
    probe_end(c);
    if (c->ready_file && access(c->ready_file, F_OK) != 0) { /* not yet */
        child_probe_schedule(c);
        return;
    }
    c->state = C_READY;
    double secs = (double)(sk_mono_ms() - c->started_ms) / 1000.0;
    if (c->ever_ready)
        sup_log(s, "info", "%s is ready again (%.1f s)", c->name, secs);
    else
        sup_log(s, "info", "%s is ready (%.1f s)", c->name, secs);
    c->ever_ready = 1;
    state_write(s);
    stage_check(s);
}

static void probe_failed(child_t *c)
{
    probe_end(c);
    child_probe_schedule(c);
}

static void probe_read_cb(struct bufferevent *bev, void *arg)
{
    child_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (n < 12) return;
    char line[13];
    evbuffer_copyout(in, line, 12);
    line[12] = '\0';
    /* "HTTP/1.1 200" */
    if (!strncmp(line, "HTTP/1.", 7) && !strncmp(line + 8, " 200", 4))
        child_ready(c);
    else
        probe_failed(c);
}

static void probe_event_cb(struct bufferevent *bev, short what, void *arg)
{
    child_t *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->probe == SUP_PROBE_TCP) {
            child_ready(c);
            return;
        }
        char req[400], addr[300];
        format_addr(c->host, c->port, addr, sizeof addr);
        snprintf(req, sizeof req, "GET /ready HTTP/1.0\r\nHost: %s\r\nUser-Agent: souk-up\r\n\r\n",
                 addr);
        bufferevent_write(bev, req, strlen(req));
        bufferevent_enable(bev, EV_READ);
        return;
    }
    probe_failed(c); /* error, EOF before a status line, or timeout */
}

static void probe_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    child_t *c = arg;
    struct sockaddr_storage ss;
    socklen_t sl;
    char addr[300];
    if (c->state != C_STARTING || c->probe_bev) return;
    format_addr(c->host, c->port, addr, sizeof addr);
    if (sk_net_parse_listen(addr, &ss, &sl) < 0) { /* checked by the caller; never here */
        child_probe_schedule(c);
        return;
    }
    c->probe_bev = bufferevent_socket_new(c->sup->base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct timeval tv = {PROBE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->probe_bev, &tv, &tv);
    bufferevent_setcb(c->probe_bev, probe_read_cb, NULL, probe_event_cb, c);
    if (bufferevent_socket_connect(c->probe_bev, (struct sockaddr *)&ss, (int)sl) < 0)
        probe_failed(c);
}

static void child_probe_schedule(child_t *c)
{
    if (c->state != C_STARTING) return;
    struct timeval tv = {0, PROBE_INTERVAL_MS * 1000};
    event_add(c->probe_ev, &tv);
}

/* ---- exits -------------------------------------------------------------- */

static void describe_status(int st, char *out, size_t outsz)
{
    if (WIFEXITED(st))
        snprintf(out, outsz, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(out, outsz, "was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(out, outsz, "ended (wait status %d)", st);
}

static void child_exited(child_t *c, int st)
{
    sup_t *s = c->sup;
    char how[128];
    int64_t ran = sk_mono_ms() - c->started_ms;
    describe_status(st, how, sizeof how);
    probe_end(c);
    event_del(c->probe_ev);
    pid_t pid = c->pid;
    c->pid = 0;
    if (pipe_read(c)) pipe_close(c); /* show its last words before the verdict */

    if (s->phase >= P_STOPPING) {
        c->state = C_STOPPED;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            sup_log(s, "info", "%s stopped", c->name);
        else
            sup_log(s, "warn", "%s (pid %ld) %s", c->name, (long)pid, how);
        state_write(s);
        stop_next(s);
        return;
    }
    if (s->phase == P_STARTING && !c->ever_ready && WIFEXITED(st) && WEXITSTATUS(st) == 2) {
        c->state = C_STOPPED;
        sup_log(s, "error", "%s (pid %ld) %s: its configuration was refused (see its lines above)",
                c->name, (long)pid, how);
        state_write(s);
        begin_stop(s, SUP_FAILED);
        return;
    }
    if (ran >= s->backoff_reset_ms) c->backoff_ms = s->backoff_min_ms;
    int64_t delay = c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > s->backoff_max_ms ? s->backoff_max_ms : c->backoff_ms * 2;
    c->state = C_BACKOFF;
    sup_log(s, "warn", "%s (pid %ld) %s after %.1f s; restarting in %.1f s", c->name, (long)pid,
            how, (double)ran / 1000.0, (double)delay / 1000.0);
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    event_add(c->restart_ev, &tv);
    state_write(s);
}

static void sigchld_cb(sup_t *s)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (size_t i = 0; i < s->nkids; i++)
            if (s->kids[i]->pid == pid) {
                child_exited(s->kids[i], st);
                break;
            }
    }
}

/* ---- stages ------------------------------------------------------------- */

static void stage_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sup_t *s = arg;
    if (s->phase != P_STARTING) return;
    for (size_t i = 0; i < s->nkids; i++) {
        child_t *c = s->kids[i];
        if (c->stage == s->cur_stage && c->state != C_READY)
            sup_log(s, "error", "%s was not ready within %lld s (%s:%d%s)", c->name,
                    (long long)(s->start_timeout_ms / 1000), c->host, c->port,
                    c->ready_file && access(c->ready_file, F_OK) != 0 ? ", no key file yet" : "");
    }
    begin_stop(s, SUP_FAILED);
}

/* Starts the lowest stage >= from that has children; returns 0 if none. */
static int stage_start(sup_t *s, int from)
{
    int next = -1;
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i]->stage >= from && (next < 0 || s->kids[i]->stage < next))
            next = s->kids[i]->stage;
    if (next < 0) return 0;
    s->cur_stage = next;
    struct timeval tv = {(time_t)(s->start_timeout_ms / 1000),
                         (suseconds_t)(s->start_timeout_ms % 1000) * 1000};
    event_add(s->stage_ev, &tv);
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i]->stage == next && s->kids[i]->state == C_IDLE) child_spawn(s->kids[i]);
    return 1;
}

static void stage_check(sup_t *s)
{
    if (s->phase != P_STARTING) return;
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i]->stage == s->cur_stage && s->kids[i]->state != C_READY) return;
    event_del(s->stage_ev);
    if (stage_start(s, s->cur_stage + 1)) return;
    s->phase = P_UP;
    s->result = SUP_UP;
    event_base_loopbreak(s->base);
}

/* ---- stopping ----------------------------------------------------------- */

static int running(const child_t *c)
{
    return c->pid > 0;
}

static void stop_next(sup_t *s)
{
    if (s->phase != P_STOPPING) return;
    int top = -1;
    for (size_t i = 0; i < s->nkids; i++)
        if (running(s->kids[i]) && s->kids[i]->stage > top) top = s->kids[i]->stage;
    if (top < 0) {
        event_del(s->stop_ev);
        s->phase = P_DONE;
        event_base_loopbreak(s->base);
        return;
    }
    for (size_t i = 0; i < s->nkids; i++) {
        child_t *c = s->kids[i];
        if (c->stage != top || !running(c) || c->state == C_STOPPING) continue;
        sup_log(s, "info", "stopping %s (pid %ld)", c->name, (long)c->pid);
        c->state = C_STOPPING;
        kill(c->pid, SIGTERM);
    }
    state_write(s);
}

static void kill_all(sup_t *s, const char *why)
{
    for (size_t i = 0; i < s->nkids; i++) {
        child_t *c = s->kids[i];
        if (!running(c)) continue;
        sup_log(s, "warn", "%s: killing %s (pid %ld)", why, c->name, (long)c->pid);
        kill(c->pid, SIGKILL);
        s->killed = 1;
    }
}

static void stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sup_t *s = arg;
    kill_all(s, "not stopped in time");
}

static void begin_stop(sup_t *s, sup_result_t result)
{
    if (s->phase >= P_STOPPING) return;
    s->result = result;
    s->phase = P_STOPPING;
    event_del(s->stage_ev);
    for (size_t i = 0; i < s->nkids; i++) {
        child_t *c = s->kids[i];
        event_del(c->restart_ev);
        event_del(c->probe_ev);
        probe_end(c);
        if (!running(c)) c->state = C_STOPPED;
    }
    struct timeval tv = {(time_t)(s->stop_timeout_ms / 1000),
                         (suseconds_t)(s->stop_timeout_ms % 1000) * 1000};
    event_add(s->stop_ev, &tv);
    stop_next(s);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    sup_t *s = arg;
    if (sig == SIGCHLD) {
        sigchld_cb(s);
        return;
    }
    if (s->phase >= P_STOPPING) {
        kill_all(s, "second signal");
        return;
    }
    sup_log(s, "info", "%s: stopping everything (again to kill at once)",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    begin_stop(s, SUP_INTERRUPTED);
}

/* ---- the supervisor ----------------------------------------------------- */

sup_t *sup_new(const sup_opts_t *o, char *err, size_t errsz)
{
    sup_t *s = sk_calloc(1, sizeof *s);
    static const int sigs[3] = {SIGTERM, SIGINT, SIGCHLD};
    s->out = o->out ? o->out : stdout;
    s->json_logs = o->json_logs;
    s->state_path = o->state_path ? sk_strdup(o->state_path) : NULL;
    s->start_timeout_ms = o->start_timeout_ms;
    s->stop_timeout_ms = o->stop_timeout_ms;
    s->backoff_min_ms = o->backoff_min_ms;
    s->backoff_max_ms = o->backoff_max_ms;
    s->backoff_reset_ms = o->backoff_reset_ms;
    s->width = 4; /* "souk" */
    s->base = event_base_new();
    if (!s->base) {
        sk_errf(err, errsz, "cannot create the event loop");
        goto fail;
    }
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 3; i++) {
        s->sig_ev[i] = evsignal_new(s->base, sigs[i], signal_cb, s);
        if (!s->sig_ev[i] || event_add(s->sig_ev[i], NULL) < 0) {
            sk_errf(err, errsz, "cannot watch signal %d", sigs[i]);
            goto fail;
        }
    }
    s->stage_ev = evtimer_new(s->base, stage_timeout_cb, s);
    s->stop_ev = evtimer_new(s->base, stop_timeout_cb, s);
    return s;
fail:
    sup_free(s);
    return NULL;
}

static char **strv_dup(char *const *v, size_t *n)
{
    size_t k = 0;
    while (v && v[k])
        k++;
    char **d = sk_calloc(k + 1, sizeof *d);
    for (size_t i = 0; i < k; i++)
        d[i] = sk_strdup(v[i]);
    if (n) *n = k;
    return d;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* environ with the spec's variables replacing any of the same name. */
static char **env_build(char *const *add)
{
    size_t nadd = 0, nenv = 0, k = 0;
    while (add && add[nadd])
        nadd++;
    while (environ[nenv])
        nenv++;
    char **e = sk_calloc(nenv + nadd + 1, sizeof *e);
    for (size_t i = 0; i < nenv; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int replaced = 0;
        for (size_t j = 0; j < nadd && !replaced; j++)
            replaced = !strncmp(add[j], environ[i], nl) && add[j][nl] == '=';
        if (!replaced) e[k++] = sk_strdup(environ[i]);
    }
    for (size_t j = 0; j < nadd; j++)
        e[k++] = sk_strdup(add[j]);
    return e;
}

void sup_add(sup_t *s, const sup_spec_t *sp)
{
    child_t *c = sk_calloc(1, sizeof *c);
    c->sup = s;
    c->name = sk_strdup(sp->name);
    c->argv = strv_dup(sp->argv, NULL);
    c->envp = env_build(sp->env);
    c->stage = sp->stage;
    c->probe = sp->probe;
    c->host = sk_strdup(sp->host);
    c->port = sp->port;
    c->ready_file = sp->ready_file ? sk_strdup(sp->ready_file) : NULL;
    c->state_extra = sp->state_extra ? sk_strdup(sp->state_extra) : NULL;
    c->backoff_ms = s->backoff_min_ms;
    c->out_fd = -1;
    sk_buf_init(&c->part, 0);
    c->restart_ev = evtimer_new(s->base, restart_cb, c);
    c->probe_ev = evtimer_new(s->base, probe_cb, c);
    int w = (int)strlen(c->name);
    if (w > s->width) s->width = w;
    s->kids = sk_realloc(s->kids, (s->nkids + 1) * sizeof *s->kids);
    s->kids[s->nkids++] = c;
}

sup_result_t sup_start(sup_t *s)
{
    s->phase = P_STARTING;
    if (!stage_start(s, 0)) {
        s->phase = P_UP;
        return SUP_UP;
    }
    event_base_loop(s->base, 0);
    if (s->phase == P_UP) return SUP_UP;
    if (s->phase != P_DONE) event_base_loop(s->base, 0); /* finish stopping */
    return s->result;
}

int sup_run(sup_t *s)
{
    if (s->phase == P_UP) event_base_loop(s->base, 0);
    return s->killed ? 1 : 0;
}

void sup_free(sup_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nkids; i++) {
        child_t *c = s->kids[i];
        probe_end(c);
        pipe_close(c);
        if (c->restart_ev) event_free(c->restart_ev);
        if (c->probe_ev) event_free(c->probe_ev);
        sk_buf_release(&c->part);
        strv_free(c->argv);
        strv_free(c->envp);
        free(c->name);
        free(c->host);
        free(c->ready_file);
        free(c->state_extra);
        free(c);
    }
    free(s->kids);
    for (int i = 0; i < 3; i++)
        if (s->sig_ev[i]) event_free(s->sig_ev[i]);
    if (s->stage_ev) event_free(s->stage_ev);
    if (s->stop_ev) event_free(s->stop_ev);
    if (s->base) event_base_free(s->base);
    free(s->state_path);
    free(s);
}

/* ---- reading the state file --------------------------------------------- */

int sup_state_read(const char *path, sup_state_entry_t **out, long *sup_pid)
{
    FILE *f = fopen(path, "re");
    char line[1024];
    size_t n = 0;
    *out = NULL;
    if (sup_pid) *sup_pid = 0;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#') {
            const char *p = strstr(line, "supervisor pid ");
            if (p && sup_pid) *sup_pid = strtol(p + 15, NULL, 10);
            continue;
        }
        sup_state_entry_t e;
        int used = 0;
        memset(&e, 0, sizeof e);
        if (sscanf(line, "%63s %ld %299s %n", e.name, &e.pid, e.addr, &used) < 3) continue;
        /* key=value words */
        const char *p = line + used;
        while (*p) {
            size_t wl = strcspn(p, " ");
            if (!strncmp(p, "state=", 6) && wl - 6 < sizeof e.state) {
                memcpy(e.state, p + 6, wl - 6);
                e.state[wl - 6] = '\0';
            } else if (!strncmp(p, "restarts=", 9)) {
                e.restarts = atoi(p + 9);
            } else {
                size_t el = strlen(e.extra);
                if (el + wl + 2 < sizeof e.extra) {
                    if (el) e.extra[el++] = ' ';
                    memcpy(e.extra + el, p, wl);
                    e.extra[el + wl] = '\0';
                }
            }
            p += wl;
            while (*p == ' ')
                p++;
        }
        *out = sk_realloc(*out, (n + 1) * sizeof **out);
        (*out)[n++] = e;
    }
    fclose(f);
    return (int)n;
}
