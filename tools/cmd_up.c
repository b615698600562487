/*
 * souk up / souk status / souk down - run the whole marketplace on one
 * machine under a supervisor (supervise.h), and look at or stop a detached
 * one.
 *
 * Files in the data dir:
 *   admin-credentials  "email=...\npassword=...\n", mode 0600, made on the
 *                      first start and reused (souk-auth creates the account)
 *   souk.pid           the supervisor's pid while it runs
 *   souk.state         its children: "name pid host:port key=value..."
 *   souk.log           the supervisor's output when detached
 *   broker/, auth/, ...  each process's own data dir
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_conf.h"
#include "sk_fs.h"
#include "sk_net.h"
#include "souk.h"
#include "supervise.h"
#include "up.h"

#ifndef SOUK_SOURCE_ROOT
#define SOUK_SOURCE_ROOT ""
#endif
#ifndef SOUK_SHARE_DIR
#define SOUK_SHARE_DIR "/usr/local/share/souk"
#endif

#define ADMIN_EMAIL "admin@souk.local"

/* ---- configuration ------------------------------------------------------ */

typedef struct up_cfg_s {
    char *data_dir;
    char *host;
    char *bin_dir;
    char *web_dir;
    int64_t hold_seconds;
    int auto_pay;
    char *smtp_url;
    int json_logs;
    int detach;
    char *log_level;
    int64_t start_timeout_s;
    int64_t stop_timeout_s;
    int64_t kafka_port, kv_port;
    int64_t auth_port, user_port, catalog_port, booking_port, payment_port, notification_port,
        analytics_port, gateway_port;
} up_cfg_t;

#define PORT_ENTRY(name, field, def, what)                                                         \
    {                                                                                              \
        name, SK_CONF_INT, offsetof(up_cfg_t, field), def, 1, 65535, what                          \
    }

static const sk_conf_entry_t up_conf[] = {
    {"data-dir", SK_CONF_STR, offsetof(up_cfg_t, data_dir), "./data", 0, 0,
     "where every process keeps its data (created); also the admin credentials, souk.pid, "
     "souk.state, souk.log"},
    {"host", SK_CONF_STR, offsetof(up_cfg_t, host), "127.0.0.1", 0, 0,
     "IP address every process listens on"},
    {"bin-dir", SK_CONF_STR, offsetof(up_cfg_t, bin_dir), "", 0, 0,
     "where souk-broker and the souk-<service> binaries are (default: next to souk, the build "
     "tree, PATH)"},
    {"web-dir", SK_CONF_STR, offsetof(up_cfg_t, web_dir), "", 0, 0,
     "the web UI files the gateway serves (default: the installed share dir or the source tree's "
     "web/)"},
    {"hold-seconds", SK_CONF_INT, offsetof(up_cfg_t, hold_seconds), "600", 1, 86400,
     "how long a booking holds its ticket waiting for payment (souk-booking --hold-seconds)"},
    {"auto-pay", SK_CONF_BOOL, offsetof(up_cfg_t, auto_pay), "false", 0, 0,
     "payments decide at once, without POST /payments/{id}/pay (souk-payment --auto-pay)"},
    {"smtp-url", SK_CONF_STR, offsetof(up_cfg_t, smtp_url), "", 0, 0,
     "SMTP server for the emails, e.g. smtp://127.0.0.1:2525 (default: .eml files in "
     "data/notification)"},
    {"json-logs", SK_CONF_BOOL, offsetof(up_cfg_t, json_logs), "false", 0, 0,
     "print the processes' log lines as JSON lines instead of prefixed with their name"},
    {"detach", SK_CONF_BOOL, offsetof(up_cfg_t, detach), "false", 0, 0,
     "run in the background once everything is ready (output to <data-dir>/souk.log; stop with "
     "souk down)"},
    {"log-level", SK_CONF_STR, offsetof(up_cfg_t, log_level), "info", 0, 0,
     "log level of every process: debug, info, warn or error"},
    {"start-timeout-s", SK_CONF_INT, offsetof(up_cfg_t, start_timeout_s), "60", 1, 3600,
     "how long each start stage (broker; auth; services; gateway) may take to be ready"},
    {"stop-timeout-s", SK_CONF_INT, offsetof(up_cfg_t, stop_timeout_s), "10", 1, 3600,
     "how long stopping may take before the remaining processes are killed"},
    PORT_ENTRY("kafka-port", kafka_port, "9092", "souk-broker's Kafka protocol port"),
    PORT_ENTRY("kv-port", kv_port, "6379", "souk-broker's key store (Redis protocol) port"),
    PORT_ENTRY("auth-port", auth_port, "8081", "souk-auth's HTTP port"),
    PORT_ENTRY("user-port", user_port, "8080", "souk-user's HTTP port"),
    PORT_ENTRY("catalog-port", catalog_port, "8085", "souk-catalog's HTTP port"),
    PORT_ENTRY("booking-port", booking_port, "8084", "souk-booking's HTTP port"),
    PORT_ENTRY("payment-port", payment_port, "8087", "souk-payment's HTTP port"),
    PORT_ENTRY("notification-port", notification_port, "8086", "souk-notification's HTTP port"),
    PORT_ENTRY("analytics-port", analytics_port, "8083", "souk-analytics's HTTP port"),
    PORT_ENTRY("gateway-port", gateway_port, "8082", "souk-gateway's HTTP port (the web UI)"),
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sk_conf_prog_t up_prog = {
    "souk up",
    "Starts souk-broker, the services and the gateway as child processes with one shared\n"
    "configuration, waits until each is ready, prints the URLs, then supervises them:\n"
    "a process that dies is restarted with backoff; Ctrl-C or SIGTERM stops everything\n"
    "in reverse order.  A binary that is not found is skipped with a warning.",
    NULL, 0};

/* The HTTP processes, in start order.  Stage 1 runs alone (it makes the key
 * pair the others need), stage 3 after every service is ready. */
typedef struct svc_def_s {
    const char *name;
    size_t port_off;
    int stage;
} svc_def_t;

static const svc_def_t svc_defs[] = {
    {"auth", offsetof(up_cfg_t, auth_port), 1},
    {"user", offsetof(up_cfg_t, user_port), 2},
    {"catalog", offsetof(up_cfg_t, catalog_port), 2},
    {"booking", offsetof(up_cfg_t, booking_port), 2},
    {"payment", offsetof(up_cfg_t, payment_port), 2},
    {"notification", offsetof(up_cfg_t, notification_port), 2},
    {"analytics", offsetof(up_cfg_t, analytics_port), 2},
    {"gateway", offsetof(up_cfg_t, gateway_port), 3},
};
#define NSVC (sizeof svc_defs / sizeof svc_defs[0])

static int svc_port(const up_cfg_t *cfg, const svc_def_t *d)
{
    return (int)*(const int64_t *)((const char *)cfg + d->port_off);
}

/* ---- small helpers ------------------------------------------------------ */

/* A NULL-terminated, growable vector of owned strings. */
typedef struct strv_s {
    char **v;
    size_t n;
} strv_t;

static void strv_push(strv_t *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void strv_push(strv_t *sv, const char *fmt, ...)
{
    sk_buf_t b = SK_BUF_INIT;
    va_list ap;
    sk_buf_init(&b, 64);
    va_start(ap, fmt);
    sk_buf_vaddf(&b, fmt, ap);
    va_end(ap);
    sv->v = sk_realloc(sv->v, (sv->n + 2) * sizeof *sv->v);
    sv->v[sv->n++] = sk_buf_detach(&b, NULL);
    sv->v[sv->n] = NULL;
}

static void strv_release(strv_t *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = 0;
}

static char *path_join(const char *a, const char *b)
{
    sk_buf_t p = SK_BUF_INIT;
    sk_buf_init(&p, strlen(a) + strlen(b) + 2);
    sk_buf_addf(&p, "%s/%s", a, b);
    return sk_buf_detach(&p, NULL);
}

static int is_exec(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory of the running executable (caller frees), or NULL. */
static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return NULL;
    buf[n] = '\0';
    return sk_strdup(dirname(buf));
}

/*
 * Finds souk-<name> ("broker" is souk-broker): in --bin-dir only if set;
 * else next to souk, then the build tree (../broker, ../services/<name>),
 * then PATH.  Returns the path (caller frees) or NULL.
 */
static char *find_bin(const up_cfg_t *cfg, const char *name)
{
    char prog[64], rel[128];
    char *p = NULL, *dir = NULL;
    snprintf(prog, sizeof prog, "souk-%s", name);
    if (*cfg->bin_dir) {
        p = path_join(cfg->bin_dir, prog);
        goto check;
    }
    dir = exe_dir();
    if (dir) {
        p = path_join(dir, prog);
        if (is_exec(p)) goto out;
        free(p);
        if (!strcmp(name, "broker"))
            snprintf(rel, sizeof rel, "../broker/%s", prog);
        else
            snprintf(rel, sizeof rel, "../services/%s/%s", name, prog);
        p = path_join(dir, rel);
        if (is_exec(p)) {
            char real[PATH_MAX];
            if (realpath(p, real)) {
                free(p);
                p = sk_strdup(real);
            }
            goto out;
        }
        free(p);
        p = NULL;
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t l = strcspn(path, ":");
        char d[PATH_MAX];
        snprintf(d, sizeof d, "%.*s", (int)l, l ? path : ".");
        p = path_join(d, prog);
        if (is_exec(p)) goto out;
        free(p);
        p = NULL;
        path += l;
        if (*path == ':') path++;
    }
    goto out;
check:
    if (!is_exec(p)) {
        free(p);
        p = NULL;
    }
out:
    free(dir);
    return p;
}

/* `bin --help` (stdout), or NULL if it cannot be run. */
static char *help_of(const char *bin)
{
    int p[2];
    sk_buf_t b = SK_BUF_INIT;
    if (pipe2(p, O_CLOEXEC) < 0) return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(p[1], 1);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 2);
        }
        execl(bin, bin, "--help", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    sk_buf_init(&b, 4096);
    for (;;) {
        sk_buf_grow(&b, 4096);
        ssize_t n = read(p[0], b.data + b.len, b.cap - b.len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
    }
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return sk_buf_detach(&b, NULL);
}

/* Whether a --help text lists --flag (as sk_conf prints it: "\n  --flag ..."). */
static int has_flag(const char *help, const char *flag)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\n  --%s", flag);
    for (const char *p = help; (p = strstr(p, pat)) != NULL; p++) {
        char c = p[strlen(pat)];
        if (c == ' ' || c == '[' || c == '\n' || c == '=') return 1;
    }
    return 0;
}

static char *pid_path(const char *data_dir)
{
    return path_join(data_dir, "souk.pid");
}

static char *state_path(const char *data_dir)
{
    return path_join(data_dir, "souk.state");
}

/* Whether pid is a running souk process. */
static int is_souk(long pid)
{
    char p[64], comm[64] = "";
    if (pid <= 0 || kill((pid_t)pid, 0) < 0) return 0;
    snprintf(p, sizeof p, "/proc/%ld/comm", pid);
    FILE *f = fopen(p, "re");
    if (!f) return 1; /* no /proc: trust the pid */
    if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    return !strcmp(comm, "souk");
}

/* The pid in <data-dir>/souk.pid if that process is a running souk, else 0. */
long up_running_pid(const char *data_dir)
{
    char *p = pid_path(data_dir), line[64];
    long pid = 0;
    FILE *f = fopen(p, "re");
    free(p);
    if (!f) return 0;
    if (fgets(line, sizeof line, f)) pid = strtol(line, NULL, 10);
    fclose(f);
    return is_souk(pid) ? pid : 0;
}

static int write_file_atomic(const char *path, const char *text, mode_t mode)
{
    char *tmp = NULL;
    sk_buf_t t = SK_BUF_INIT;
    sk_buf_init(&t, 0);
    sk_buf_addf(&t, "%s.tmp", path);
    tmp = sk_buf_detach(&t, NULL);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    int rc = -1;
    if (fd < 0) goto out;
    if (sk_write_all(fd, text, strlen(text)) < 0 || fchmod(fd, mode) < 0 || fsync(fd) < 0) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    return rc;
}

/* A password of n letters and digits from /dev/urandom (no modulo bias). */
static int random_password(char *out, size_t n)
{
    static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    const size_t na = sizeof alphabet - 1;
    unsigned char buf[64];
    size_t k = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    while (k < n) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got <= 0) {
            if (got < 0 && errno == EINTR) continue;
            close(fd);
            return -1;
        }
        for (ssize_t i = 0; i < got && k < n; i++)
            if (buf[i] < 256 - 256 % na) out[k++] = alphabet[buf[i] % na];
    }
    out[n] = '\0';
    close(fd);
    return 0;
}

/*
 * Reads <data-dir>/admin-credentials, or makes it (mode 0600) with a new
 * random password.  Returns 0, or -1 with a reason in err.
 */
int up_admin_credentials(const char *data_dir, int create, char *email, size_t emailsz,
                         char *password, size_t pwsz, int *created, char *err, size_t errsz)
{
    char *path = path_join(data_dir, "admin-credentials"), line[512];
    int rc = -1;
    *created = 0;
    email[0] = password[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f) {
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
            if (fchmod(fileno(f), 0600) == 0)
                fprintf(stderr, "souk: %s was readable by others; now mode 0600\n", path);
        }
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (!strncmp(line, "email=", 6))
                snprintf(email, emailsz, "%s", line + 6);
            else if (!strncmp(line, "password=", 9))
                snprintf(password, pwsz, "%s", line + 9);
        }
        fclose(f);
        if (!*email || !*password) {
            sk_errf(err, errsz, "%s lacks an email= or password= line", path);
            goto out;
        }
        rc = 0;
        goto out;
    }
    if (errno != ENOENT || !create) {
        sk_errf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    char pw[21];
    if (random_password(pw, 20) < 0) {
        sk_errf(err, errsz, "cannot read /dev/urandom: %s", strerror(errno));
        goto out;
    }
    sk_buf_t b = SK_BUF_INIT;
    sk_buf_init(&b, 128);
    sk_buf_addf(&b, "email=%s\npassword=%s\n", ADMIN_EMAIL, pw);
    int w = write_file_atomic(path, b.data, 0600);
    sk_buf_release(&b);
    if (w < 0) {
        sk_errf(err, errsz, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    snprintf(email, emailsz, "%s", ADMIN_EMAIL);
    snprintf(password, pwsz, "%s", pw);
    *created = 1;
    rc = 0;
out:
    free(path);
    return rc;
}

/* Whether host:port can be bound right now. */
static int port_free(const char *host, int port)
{
    char a[300];
    struct sockaddr_storage ss;
    socklen_t sl;
    snprintf(a, sizeof a, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (sk_net_parse_listen(a, &ss, &sl) < 0) return 0;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ok = bind(fd, (struct sockaddr *)&ss, sl) == 0;
    close(fd);
    return ok;
}

static void addr_of(const char *host, int port, char *out, size_t outsz)
{
    snprintf(out, outsz, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

/* The web UI directory to give the gateway, or NULL (caller frees). */
static char *find_web_dir(const up_cfg_t *cfg)
{
    if (*cfg->web_dir) return sk_strdup(cfg->web_dir);
    char *dir = exe_dir(), *cand[3] = {NULL, NULL, NULL}, *found = NULL;
    if (dir) cand[0] = path_join(dir, "../share/souk/web");
    cand[1] = path_join(SOUK_SHARE_DIR, "web");
    if (*SOUK_SOURCE_ROOT) cand[2] = path_join(SOUK_SOURCE_ROOT, "web");
    for (int i = 0; i < 3 && !found; i++) {
        char real[PATH_MAX];
        if (cand[i] && is_dir(cand[i]) && realpath(cand[i], real)) found = sk_strdup(real);
    }
    for (int i = 0; i < 3; i++)
        free(cand[i]);
    free(dir);
    return found;
}

/* ---- souk up ------------------------------------------------------------ */

typedef struct planned_s {
    const char *name;
    char *bin;
    int port;
} planned_t;

/* The banner shown once everything is ready: text, or one JSON line. */
static void banner(const up_cfg_t *cfg, const char *data_dir, const planned_t *plan, size_t nplan,
                   int creds_created, int json, sk_buf_t *out)
{
    char kafka[300], kv[300], url[400];
    const char *h = cfg->host;
    const char *uh = !strcmp(h, "0.0.0.0") ? "127.0.0.1" : h;
    char *creds = path_join(data_dir, "admin-credentials");
    int gw = -1, an = -1;
    addr_of(uh, (int)cfg->kafka_port, kafka, sizeof kafka);
    addr_of(uh, (int)cfg->kv_port, kv, sizeof kv);
    for (size_t i = 0; i < nplan; i++) {
        if (!strcmp(plan[i].name, "gateway")) gw = plan[i].port;
        if (!strcmp(plan[i].name, "analytics")) an = plan[i].port;
    }
    char redis_cli[400];
    if (!strcmp(uh, "127.0.0.1"))
        snprintf(redis_cli, sizeof redis_cli, "redis-cli -p %d", (int)cfg->kv_port);
    else
        snprintf(redis_cli, sizeof redis_cli, "redis-cli -h %s -p %d", uh, (int)cfg->kv_port);
    char ui[400] = "", dash[400] = "";
    if (gw > 0) snprintf(ui, sizeof ui, "http://%s:%d/", uh, gw);
    if (gw > 0 && an > 0) {
        snprintf(dash, sizeof dash, "http://%s:%d/analytics/dashboard/", uh, gw);
    } else if (an > 0) {
        snprintf(dash, sizeof dash, "http://%s:%d/", uh, an);
    }
    if (json) {
        cJSON *o = cJSON_CreateObject(), *svcs;
        char now[SK_RFC3339_LEN];
        cJSON_AddStringToObject(o, "time", sk_rfc3339_ms(sk_wall_ms(), now));
        cJSON_AddStringToObject(o, "level", "info");
        cJSON_AddStringToObject(o, "service", "souk");
        cJSON_AddStringToObject(o, "facility", "up");
        cJSON_AddStringToObject(o, "msg", "souk is up");
        cJSON_AddStringToObject(o, "dataDir", data_dir);
        if (*ui) cJSON_AddStringToObject(o, "ui", ui);
        if (*dash) cJSON_AddStringToObject(o, "dashboard", dash);
        svcs = cJSON_AddObjectToObject(o, "services");
        for (size_t i = 0; i < nplan; i++) {
            snprintf(url, sizeof url, "http://%s:%d", uh, plan[i].port);
            if (plan[i].port > 0) cJSON_AddStringToObject(svcs, plan[i].name, url);
        }
        cJSON_AddStringToObject(o, "broker", kafka);
        cJSON_AddStringToObject(o, "kv", kv);
        cJSON_AddStringToObject(o, "adminCredentials", creds);
        char *s = cJSON_PrintUnformatted(o);
        if (s) {
            sk_buf_addf(out, "%s\n", s);
            cJSON_free(s);
        }
        cJSON_Delete(o);
        free(creds);
        return;
    }
    sk_buf_addf(out, "\nsouk is up (data dir %s)\n\n", data_dir);
    if (*ui) sk_buf_addf(out, "  Web UI        %s\n", ui);
    if (*dash) sk_buf_addf(out, "  Dashboard     %s\n", dash);
    for (size_t i = 0; i < nplan; i++) {
        if (plan[i].port <= 0) continue;
        snprintf(url, sizeof url, "http://%s:%d", uh, plan[i].port);
        sk_buf_addf(out, "  %-13s %s\n", plan[i].name, url);
    }
    sk_buf_addf(out, "  Broker        %-22s kcat -b %s -L\n", kafka, kafka);
    sk_buf_addf(out, "  Key store     %-22s %s\n", kv, redis_cli);
    sk_buf_addf(out, "  Admin         %s (%s; mode 0600)%s\n", ADMIN_EMAIL, creds,
                creds_created ? " - new" : "");
    sk_buf_addf(
        out,
        "\n  souk status --data-dir %s   shows what runs; souk demo seeds catalogs and users.\n",
        data_dir);
    if (cfg->detach)
        sk_buf_addf(out, "  souk down --data-dir %s stops everything.\n\n", data_dir);
    else
        sk_buf_addf(out, "  Ctrl-C stops everything.\n\n");
    free(creds);
}

/*
 * Turns the process into a daemon: fork, setsid, fork; the original
 * process waits for a status byte and the banner on a pipe (written by
 * up_detach_done()) and exits with it.  Returns the pipe's write end in
 * the daemon, or -1 on failure (in the original process).
 */
static int daemonize(const char *log_path)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid > 0) {
        /* The original process. */
        char buf[4096];
        int st, status = -1;
        close(p[1]);
        waitpid(pid, &st, 0);
        for (;;) {
            ssize_t n = read(p[0], buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            size_t off = 0;
            if (status < 0) {
                status = buf[0] == '0' ? 0 : 1;
                off = 1;
            }
            fwrite(buf + off, 1, (size_t)n - off, stdout);
        }
        fflush(stdout);
        if (status != 0) fprintf(stderr, "souk up: the start failed; see %s\n", log_path);
        _exit(status == 0 ? 0 : 1);
    }
    close(p[0]);
    if (setsid() < 0) _exit(1);
    pid = fork();
    if (pid < 0) _exit(1);
    if (pid > 0) _exit(0);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (devnull < 0 || log < 0) _exit(1);
    dup2(devnull, 0);
    dup2(log, 1);
    dup2(log, 2);
    close(devnull);
    close(log);
    if (chdir("/") < 0) _exit(1);
    return p[1];
}

int cmd_up(int argc, char **argv)
{
    up_cfg_t cfg;
    char err[512], email[256], password[256], data_dir[PATH_MAX];
    int rc = 1, creds_created = 0, notify_fd = -1, pid_written = 0;
    planned_t plan[NSVC + 1];
    size_t nplan = 0;
    sup_t *sup = NULL;
    char *pidp = NULL, *statep = NULL, *pem = NULL, *web = NULL, *logp = NULL;
    sk_buf_t text = SK_BUF_INIT;
    memset(&cfg, 0, sizeof cfg);
    memset(plan, 0, sizeof plan);
    sk_buf_init(&text, 1024);

    switch (sk_conf_load(&up_prog, up_conf, &cfg, argc, argv, NULL, NULL, err, sizeof err)) {
    case SK_CONF_EXIT:
        rc = 0;
        goto out;
    case SK_CONF_ERROR:
        fprintf(stderr, "souk up: %s\n", err);
        rc = 2;
        goto out;
    }
    {
        struct sockaddr_storage ss;
        socklen_t sl;
        char a[300];
        addr_of(cfg.host, 1, a, sizeof a);
        if (sk_net_parse_listen(a, &ss, &sl) < 0) {
            fprintf(stderr, "souk up: --host must be an IP address, not '%s'\n", cfg.host);
            rc = 2;
            goto out;
        }
    }

    /* The data dir, as an absolute path (the daemon changes directory). */
    if (sk_mkdir_p(cfg.data_dir, 0700) < 0 || !realpath(cfg.data_dir, data_dir)) {
        fprintf(stderr, "souk up: cannot create %s: %s\n", cfg.data_dir, strerror(errno));
        goto out;
    }
    long other = up_running_pid(data_dir);
    if (other) {
        fprintf(stderr,
                "souk up: already running for %s (pid %ld); 'souk down --data-dir %s' stops it\n",
                data_dir, other, data_dir);
        goto out;
    }
    pidp = pid_path(data_dir);
    statep = state_path(data_dir);
    logp = path_join(data_dir, "souk.log");

    /* Which binaries there are; every port must be free. */
    plan[nplan].name = "broker";
    plan[nplan].bin = find_bin(&cfg, "broker");
    plan[nplan].port = -1;
    if (!plan[nplan].bin) {
        fprintf(stderr,
                "souk up: souk-broker not found (--bin-dir, next to souk, the build tree, PATH)\n");
        goto out;
    }
    nplan++;
    for (size_t i = 0; i < NSVC; i++) {
        char *bin = find_bin(&cfg, svc_defs[i].name);
        if (!bin) {
            if (!strcmp(svc_defs[i].name, "auth")) {
                fprintf(stderr, "souk up: souk-auth not found; nothing can sign in without it\n");
                goto out;
            }
            fprintf(stderr, "souk up: warning: souk-%s not found; starting without it\n",
                    svc_defs[i].name);
            continue;
        }
        plan[nplan].name = svc_defs[i].name;
        plan[nplan].bin = bin;
        plan[nplan].port = svc_port(&cfg, &svc_defs[i]);
        nplan++;
    }
    {
        int ports[NSVC + 2], np = 0;
        ports[np++] = (int)cfg.kafka_port;
        ports[np++] = (int)cfg.kv_port;
        for (size_t i = 1; i < nplan; i++)
            ports[np++] = plan[i].port;
        for (int i = 0; i < np; i++) {
            for (int j = 0; j < i; j++)
                if (ports[i] == ports[j]) {
                    fprintf(stderr, "souk up: port %d is given to two processes\n", ports[i]);
                    rc = 2;
                    goto out;
                }
            if (!port_free(cfg.host, ports[i])) {
                fprintf(stderr,
                        "souk up: %s:%d is in use (another souk up, or another program); "
                        "choose other ports with --<name>-port\n",
                        cfg.host, ports[i]);
                goto out;
            }
        }
    }

    if (up_admin_credentials(data_dir, 1, email, sizeof email, password, sizeof password,
                             &creds_created, err, sizeof err) < 0) {
        fprintf(stderr, "souk up: %s\n", err);
        goto out;
    }

    if (cfg.detach) {
        printf("souk up: starting in the background (log: %s)\n", logp);
        fflush(stdout);
        notify_fd = daemonize(logp);
        if (notify_fd < 0) {
            fprintf(stderr, "souk up: cannot detach: %s\n", strerror(errno));
            goto out;
        }
    }
    {
        char pidtext[32];
        snprintf(pidtext, sizeof pidtext, "%ld\n", (long)getpid());
        if (write_file_atomic(pidp, pidtext, 0644) < 0) {
            fprintf(stderr, "souk up: cannot write %s: %s\n", pidp, strerror(errno));
            goto out;
        }
        pid_written = 1;
    }

    sup_opts_t so = {
        .out = stdout,
        .json_logs = cfg.json_logs,
        .state_path = statep,
        .start_timeout_ms = cfg.start_timeout_s * 1000,
        .stop_timeout_ms = cfg.stop_timeout_s * 1000,
        .backoff_min_ms = 1000,
        .backoff_max_ms = 30000,
        .backoff_reset_ms = 60000,
    };
    sup = sup_new(&so, err, sizeof err);
    if (!sup) {
        fprintf(stderr, "souk up: %s\n", err);
        goto out;
    }

    char kafka[300], kv[300];
    addr_of(cfg.host, (int)cfg.kafka_port, kafka, sizeof kafka);
    addr_of(cfg.host, (int)cfg.kv_port, kv, sizeof kv);
    char *auth_dir = path_join(data_dir, "auth");
    pem = path_join(auth_dir, "jwt-public.pem");
    free(auth_dir);
    /* Half the stop budget for each service's own drain, so that the ones
     * after it (and the broker) still get their turn. */
    int64_t svc_drain_ms = cfg.stop_timeout_s * 1000 / 2;

    for (size_t i = 0; i < nplan; i++) {
        strv_t av = {NULL, 0}, env = {NULL, 0};
        char *dir = path_join(data_dir, plan[i].name);
        char extra[400] = "";
        sup_spec_t sp = {.name = plan[i].name, .host = cfg.host};
        strv_push(&av, "%s", plan[i].bin);
        if (i == 0) { /* the broker */
            strv_push(&av, "--data-dir");
            strv_push(&av, "%s", dir);
            strv_push(&av, "--kafka-listen");
            strv_push(&av, "%s", kafka);
            strv_push(&av, "--kv-listen");
            strv_push(&av, "%s", kv);
            strv_push(&av, "--log-level");
            strv_push(&av, "%s", cfg.log_level);
            sp.stage = 0;
            sp.probe = SUP_PROBE_TCP;
            sp.port = (int)cfg.kafka_port;
            snprintf(extra, sizeof extra, "kv=%s", kv);
            sp.state_extra = extra;
        } else {
            const svc_def_t *d = NULL;
            for (size_t k = 0; k < NSVC; k++)
                if (!strcmp(svc_defs[k].name, plan[i].name)) d = &svc_defs[k];
            char *help = help_of(plan[i].bin);
            char http[300];
            addr_of(cfg.host, plan[i].port, http, sizeof http);
            strv_push(&av, "--http");
            strv_push(&av, "%s", http);
            strv_push(&av, "--data-dir");
            strv_push(&av, "%s", dir);
            strv_push(&av, "--brokers");
            strv_push(&av, "%s", kafka);
            strv_push(&av, "--kv");
            strv_push(&av, "%s", kv);
            strv_push(&av, "--log-level");
            strv_push(&av, "%s", cfg.log_level);
            if (strcmp(plan[i].name, "auth") != 0) {
                strv_push(&av, "--jwt-public-key");
                strv_push(&av, "%s", pem);
            }
            if (help && has_flag(help, "shutdown-timeout-ms")) {
                strv_push(&av, "--shutdown-timeout-ms");
                strv_push(&av, "%lld", (long long)svc_drain_ms);
            }
            if (help && has_flag(help, "log-ship-timeout-ms")) {
                strv_push(&av, "--log-ship-timeout-ms");
                strv_push(&av, "%lld", (long long)(svc_drain_ms < 100 ? 100 : svc_drain_ms));
            }
            if (!strcmp(plan[i].name, "auth")) {
                strv_push(&env, "SOUK_ADMIN_EMAIL=%s", email);
                strv_push(&env, "SOUK_ADMIN_PASSWORD=%s", password);
                sp.ready_file = pem;
            } else {
                /* The admin's password is auth's business only. */
                strv_push(&env, "SOUK_ADMIN_EMAIL=");
                strv_push(&env, "SOUK_ADMIN_PASSWORD=");
            }
            if (!strcmp(plan[i].name, "booking")) {
                strv_push(&av, "--hold-seconds");
                strv_push(&av, "%lld", (long long)cfg.hold_seconds);
            }
            if (!strcmp(plan[i].name, "payment") && cfg.auto_pay) strv_push(&av, "--auto-pay");
            if (!strcmp(plan[i].name, "notification") && *cfg.smtp_url) {
                strv_push(&av, "--smtp-url");
                strv_push(&av, "%s", cfg.smtp_url);
            }
            if (!strcmp(plan[i].name, "gateway")) {
                for (size_t k = 1; k < nplan; k++) {
                    char flag[64], a[300];
                    if (!strcmp(plan[k].name, "gateway")) continue;
                    snprintf(flag, sizeof flag, "%s-url", plan[k].name);
                    if (!help || !has_flag(help, flag)) continue;
                    addr_of(cfg.host, plan[k].port, a, sizeof a);
                    strv_push(&av, "--%s", flag);
                    strv_push(&av, "%s", a);
                }
                /* Services that are not there: their routes answer 503. */
                for (size_t k = 0; k < NSVC; k++) {
                    char flag[64], a[300];
                    int present = 0;
                    for (size_t j = 1; j < nplan; j++)
                        present |= !strcmp(plan[j].name, svc_defs[k].name);
                    if (present) continue;
                    snprintf(flag, sizeof flag, "%s-url", svc_defs[k].name);
                    if (!help || !has_flag(help, flag)) continue;
                    addr_of(cfg.host, svc_port(&cfg, &svc_defs[k]), a, sizeof a);
                    strv_push(&av, "--%s", flag);
                    strv_push(&av, "%s", a);
                }
                web = find_web_dir(&cfg);
                if (web && help && has_flag(help, "web-dir")) {
                    strv_push(&av, "--web-dir");
                    strv_push(&av, "%s", web);
                } else if (!web) {
                    sup_log(sup, "warn",
                            "no web UI files found (--web-dir): the gateway serves the APIs only");
                }
            }
            if (!strcmp(plan[i].name, "analytics")) {
                /* The dashboard's files and its sign-in (passed to auth). */
                char a[300];
                if (help && has_flag(help, "auth-url")) {
                    for (size_t k = 0; k < nplan; k++)
                        if (!strcmp(plan[k].name, "auth")) {
                            addr_of(cfg.host, plan[k].port, a, sizeof a);
                            strv_push(&av, "--auth-url");
                            strv_push(&av, "%s", a);
                        }
                }
                char *dash = find_web_dir(&cfg);
                if (dash && help && has_flag(help, "web-dir")) {
                    strv_push(&av, "--web-dir");
                    strv_push(&av, "%s/dashboard", dash);
                }
                free(dash);
            }
            free(help);
            sp.stage = d ? d->stage : 2;
            sp.probe = SUP_PROBE_HTTP;
            sp.port = plan[i].port;
        }
        sp.argv = av.v;
        sp.env = env.v;
        sup_add(sup, &sp);
        strv_release(&av);
        strv_release(&env);
        free(dir);
    }
    if (creds_created)
        sup_log(sup, "info", "made the admin account's credentials: %s/admin-credentials",
                data_dir);

    sup_result_t r = sup_start(sup);
    if (r != SUP_UP) {
        if (notify_fd >= 0) {
            (void)!write(notify_fd, "1", 1);
            close(notify_fd);
            notify_fd = -1;
        }
        sup_log(sup, "error",
                r == SUP_INTERRUPTED ? "interrupted while starting; everything is stopped"
                                     : "the start failed; everything is stopped");
        rc = r == SUP_INTERRUPTED ? 0 : 1;
        goto out;
    }
    banner(&cfg, data_dir, plan + 1, nplan - 1, creds_created, cfg.json_logs, &text);
    fwrite(text.data, 1, text.len, stdout);
    fflush(stdout);
    if (notify_fd >= 0) {
        sk_buf_t t2 = SK_BUF_INIT;
        sk_buf_init(&t2, 1024);
        sk_buf_adds(&t2, "0");
        banner(&cfg, data_dir, plan + 1, nplan - 1, creds_created, 0, &t2);
        (void)sk_write_all(notify_fd, t2.data, t2.len);
        sk_buf_release(&t2);
        close(notify_fd);
        notify_fd = -1;
    }
    int killed = sup_run(sup);
    sup_log(sup, killed ? "warn" : "info",
            killed ? "stopped (some processes had to be killed)" : "everything stopped");
    rc = 0;
out:
    if (notify_fd >= 0) {
        (void)!write(notify_fd, "1", 1);
        close(notify_fd);
    }
    sup_free(sup);
    if (pid_written) {
        if (up_running_pid(data_dir) == (long)getpid()) unlink(pidp);
        unlink(statep);
    }
    for (size_t i = 0; i < nplan; i++)
        free(plan[i].bin);
    free(pidp);
    free(statep);
    free(logp);
    free(pem);
    free(web);
    sk_buf_release(&text);
    sk_conf_release(up_conf, &cfg);
    return rc;
}

/* ---- souk status -------------------------------------------------------- */

typedef struct status_cfg_s {
    char *data_dir;
    int json;
    int64_t timeout_ms;
} status_cfg_t;

static const sk_conf_entry_t status_conf[] = {
    {"data-dir", SK_CONF_STR, offsetof(status_cfg_t, data_dir), "./data", 0, 0,
     "the data dir souk up runs with"},
    {"json", SK_CONF_BOOL, offsetof(status_cfg_t, json), "false", 0, 0,
     "print one JSON document instead of a table"},
    {"timeout-ms", SK_CONF_INT, offsetof(status_cfg_t, timeout_ms), "2000", 100, 60000,
     "how long each readiness and metrics request may take"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sk_conf_prog_t status_prog = {
    "souk status",
    "Shows the processes a souk up runs (from <data-dir>/souk.state): pid, address,\n"
    "readiness (a TCP connect to the broker, GET /ready of the services), restarts and\n"
    "the consumer lag each service reports in GET /metrics.  Exits 0 when everything is\n"
    "ready, 1 otherwise.",
    NULL, 0};

/* Sum of the consumer_lag samples in a Prometheus text body; -1 if none. */
static double parse_lag(const char *body)
{
    double sum = -1;
    for (const char *p = body; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 12 && !strncmp(p, "consumer_lag", 12) && (p[12] == ' ' || p[12] == '{')) {
            const char *v = p + len;
            while (v > p && v[-1] != ' ')
                v--;
            char num[64];
            size_t vl = (size_t)(p + len - v);
            if (vl > 0 && vl < sizeof num) {
                memcpy(num, v, vl);
                num[vl] = '\0';
                char *end;
                double d = strtod(num, &end);
                if (end != num) sum = (sum < 0 ? 0 : sum) + d;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return sum;
}

int cmd_status(int argc, char **argv)
{
    status_cfg_t cfg;
    char err[512], data_dir[PATH_MAX];
    int rc = 1;
    sup_state_entry_t *ents = NULL;
    char *statep = NULL;
    cJSON *doc = NULL;
    memset(&cfg, 0, sizeof cfg);
    switch (
        sk_conf_load(&status_prog, status_conf, &cfg, argc, argv, NULL, NULL, err, sizeof err)) {
    case SK_CONF_EXIT:
        rc = 0;
        goto out;
    case SK_CONF_ERROR:
        fprintf(stderr, "souk status: %s\n", err);
        rc = 2;
        goto out;
    }
    if (!realpath(cfg.data_dir, data_dir)) snprintf(data_dir, sizeof data_dir, "%s", cfg.data_dir);
    long pid = up_running_pid(data_dir);
    statep = state_path(data_dir);
    int n = pid ? sup_state_read(statep, &ents, NULL) : 0;
    if (!pid || n < 0) {
        if (cfg.json) {
            printf("{\"running\":false,\"dataDir\":");
            sk_buf_t b = SK_BUF_INIT;
            sk_buf_init(&b, 0);
            sk_buf_add_json_str(&b, data_dir, strlen(data_dir));
            printf("%s,\"processes\":[]}\n", b.data);
            sk_buf_release(&b);
        } else {
            printf("souk up is not running for %s\n", data_dir);
        }
        goto out;
    }
    doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "running", 1);
    cJSON_AddNumberToObject(doc, "pid", (double)pid);
    cJSON_AddStringToObject(doc, "dataDir", data_dir);
    cJSON *arr = cJSON_AddArrayToObject(doc, "processes");
    if (!cfg.json) {
        printf("souk up is running (pid %ld) for %s\n\n", pid, data_dir);
        printf("%-13s %-8s %-22s %-9s %-6s %-9s %s\n", "NAME", "PID", "ADDRESS", "STATE", "READY",
               "RESTARTS", "CONSUMER LAG");
    }
    int all_ready = 1;
    for (int i = 0; i < n; i++) {
        sup_state_entry_t *e = &ents[i];
        int alive = e->pid > 0 && kill((pid_t)e->pid, 0) == 0;
        int ready = 0;
        double lag = -1;
        char host[256];
        int port;
        if (alive && sk_net_split_hostport(e->addr, host, sizeof host, &port) == 0) {
            if (!strcmp(e->name, "broker")) {
                ready = hc_tcp_probe(host, port, (int)cfg.timeout_ms) == 0;
            } else {
                char url[400];
                hc_resp_t r;
                snprintf(url, sizeof url, "http://%s", e->addr);
                if (hc_request(url, "GET", "/ready", NULL, NULL, (int)cfg.timeout_ms, &r, NULL,
                               0) == 0) {
                    ready = r.status == 200;
                    hc_resp_release(&r);
                }
                if (hc_request(url, "GET", "/metrics", NULL, NULL, (int)cfg.timeout_ms, &r, NULL,
                               0) == 0) {
                    if (r.status == 200) lag = parse_lag(r.body.data);
                    hc_resp_release(&r);
                }
            }
        }
        if (!ready) all_ready = 0;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", e->name);
        cJSON_AddNumberToObject(o, "pid", alive ? (double)e->pid : 0);
        cJSON_AddStringToObject(o, "address", e->addr);
        cJSON_AddStringToObject(o, "state", e->state);
        cJSON_AddBoolToObject(o, "running", alive);
        cJSON_AddBoolToObject(o, "ready", ready);
        cJSON_AddNumberToObject(o, "restarts", e->restarts);
        if (lag >= 0)
            cJSON_AddNumberToObject(o, "consumerLag", lag);
        else
            cJSON_AddNullToObject(o, "consumerLag");
        if (!strncmp(e->extra, "kv=", 3)) cJSON_AddStringToObject(o, "kv", e->extra + 3);
        cJSON_AddItemToArray(arr, o);
        if (!cfg.json) {
            char lagtext[32] = "-";
            if (lag >= 0) snprintf(lagtext, sizeof lagtext, "%.0f", lag);
            printf("%-13s %-8ld %-22s %-9s %-6s %-9d %s\n", e->name, alive ? e->pid : 0L, e->addr,
                   e->state, ready ? "yes" : "no", e->restarts, lagtext);
            if (!strncmp(e->extra, "kv=", 3))
                printf("%-13s %-8s %-22s %-9s %-6s\n", "  key store", "", e->extra + 3, "", "");
        }
    }
    cJSON_AddBoolToObject(doc, "ready", all_ready);
    if (cfg.json) {
        char *s = cJSON_PrintUnformatted(doc);
        if (s) {
            printf("%s\n", s);
            cJSON_free(s);
        }
    } else {
        printf("\n%s\n", all_ready ? "everything is ready" : "not everything is ready");
    }
    rc = all_ready ? 0 : 1;
out:
    cJSON_Delete(doc);
    free(ents);
    free(statep);
    sk_conf_release(status_conf, &cfg);
    return rc;
}

/* ---- souk down ---------------------------------------------------------- */

typedef struct down_cfg_s {
    char *data_dir;
    int64_t timeout_s;
} down_cfg_t;

static const sk_conf_entry_t down_conf[] = {
    {"data-dir", SK_CONF_STR, offsetof(down_cfg_t, data_dir), "./data", 0, 0,
     "the data dir souk up runs with"},
    {"timeout-s", SK_CONF_INT, offsetof(down_cfg_t, timeout_s), "30", 1, 3600,
     "how long to wait for everything to stop"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sk_conf_prog_t down_prog = {
    "souk down",
    "Stops the souk up running for the data dir (usually one started with --detach):\n"
    "sends it SIGTERM and waits until it and its processes have exited.",
    NULL, 0};

int cmd_down(int argc, char **argv)
{
    down_cfg_t cfg;
    char err[512], data_dir[PATH_MAX];
    int rc = 1, n = 0;
    sup_state_entry_t *ents = NULL;
    char *statep = NULL;
    memset(&cfg, 0, sizeof cfg);
    switch (sk_conf_load(&down_prog, down_conf, &cfg, argc, argv, NULL, NULL, err, sizeof err)) {
    case SK_CONF_EXIT:
        rc = 0;
        goto out;
    case SK_CONF_ERROR:
        fprintf(stderr, "souk down: %s\n", err);
        rc = 2;
        goto out;
    }
    if (!realpath(cfg.data_dir, data_dir)) snprintf(data_dir, sizeof data_dir, "%s", cfg.data_dir);
    long pid = up_running_pid(data_dir);
    if (!pid) {
        printf("souk up is not running for %s\n", data_dir);
        rc = 0;
        goto out;
    }
    statep = state_path(data_dir);
    n = sup_state_read(statep, &ents, NULL);
    if (kill((pid_t)pid, SIGTERM) < 0) {
        fprintf(stderr, "souk down: cannot signal pid %ld: %s\n", pid, strerror(errno));
        goto out;
    }
    printf("souk down: stopping souk up (pid %ld) for %s ...\n", pid, data_dir);
    fflush(stdout);
    int64_t t0 = sk_mono_ms(), deadline = t0 + cfg.timeout_s * 1000;
    int left = 1;
    while (sk_mono_ms() < deadline) {
        left = is_souk(pid);
        for (int i = 0; i < n && !left; i++)
            left = ents[i].pid > 0 && kill((pid_t)ents[i].pid, 0) == 0;
        if (!left) break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (left) {
        fprintf(stderr, "souk down: still running after %lld s (pid %ld); see %s/souk.log\n",
                (long long)cfg.timeout_s, pid, data_dir);
        goto out;
    }
    printf("souk down: stopped (the supervisor and %d processes) in %.1f s\n", n > 0 ? n : 0,
           (double)(sk_mono_ms() - t0) / 1000.0);
    rc = 0;
out:
    free(ents);
    free(statep);
    sk_conf_release(down_conf, &cfg);
    return rc;
}
