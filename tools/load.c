/*
 * souk load - a load generator for the booking saga that also checks the
 * saga's invariants afterwards.
 *
 * Phases, each driven through one libevent loop with pools of keep-alive
 * evhttp client connections (one pool per service, or all to the gateway):
 *
 *   setup     sign in as the admin; register and sign in --users users;
 *             create as many catalogs (at most 50 tickets each) as the
 *             bookings need, fewer with --oversell; in --mode ticket, read
 *             their tickets.
 *   bookings  POST /bookings ({catalogId} or {ticketId}, an Idempotency-Key
 *             each, so a POST retried after a connection error is the same
 *             booking): closed loop (--concurrency sagas between POST and a
 *             terminal status) or open loop (--rate per second).  --pay card
 *             pays each booking (POST /payments/{id}/pay, retried while the
 *             payment does not exist yet); --pay auto leaves it to
 *             souk-payment --auto-pay.  Terminal states are found by polling
 *             the admin's list of each catalog that has open bookings
 *             (GET /bookings?catalogId=, every --poll-ms), which costs a
 *             few requests per tick instead of one per booking; or, with
 *             --brokers, from the booking topic: a consumer outside any
 *             group, assigned every partition at its end before the first
 *             POST, reads booking.confirmed/failed/expired/cancelled (the
 *             lists are then polled every second only, as a backstop).
 *   verify    reads back every catalog's bookings and tickets, every
 *             booking's payment and every user's notifications, and checks
 *             the invariants, retrying the ones that settle asynchronously
 *             (a release, a refund, an email) for up to --settle-s.
 *
 * POST->CONFIRMED latency is reported twice: from the booking's own
 * updatedAt (the commit of the CONFIRMED transition, millisecond wall
 * clock, exact on one machine), and as seen by the poller (an upper bound:
 * up to --poll-ms plus one list request later).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "envelope.h"
#include "http_client.h"
#include "load.h"
#include "rdkloop.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_conf.h"
#include "sk_map.h"

/* ---- configuration ------------------------------------------------------------- */

typedef struct load_cfg_s {
    char *gateway, *auth_url, *catalog_url, *booking_url, *payment_url, *notification_url;
    char *admin_email, *admin_password, *admin_credentials;
    int64_t bookings, concurrency, rate, users, tickets_per_catalog, price;
    char *pay, *mode, *oversell, *check_emails, *json, *cpu_pids, *brokers;
    int64_t decline_percent, timeout_s, settle_s, poll_ms, pay_retry_ms, connections;
    int64_t request_timeout_s, projection_wait_s;
    int progress;
} load_cfg_t;

static const sk_conf_entry_t load_conf[] = {
    {"gateway", SK_CONF_STR, offsetof(load_cfg_t, gateway), "", 0, 0,
     "send everything through souk-gateway at this URL (e.g. http://127.0.0.1:8082)"},
    {"auth-url", SK_CONF_STR, offsetof(load_cfg_t, auth_url), "http://127.0.0.1:8081", 0, 0,
     "souk-auth's URL (without --gateway)"},
    {"catalog-url", SK_CONF_STR, offsetof(load_cfg_t, catalog_url), "http://127.0.0.1:8085", 0, 0,
     "souk-catalog's URL"},
    {"booking-url", SK_CONF_STR, offsetof(load_cfg_t, booking_url), "http://127.0.0.1:8084", 0, 0,
     "souk-booking's URL"},
    {"payment-url", SK_CONF_STR, offsetof(load_cfg_t, payment_url), "http://127.0.0.1:8087", 0, 0,
     "souk-payment's URL"},
    {"notification-url", SK_CONF_STR, offsetof(load_cfg_t, notification_url),
     "http://127.0.0.1:8086", 0, 0, "souk-notification's URL"},
    {"admin-email", SK_CONF_STR, offsetof(load_cfg_t, admin_email), "", 0, 0,
     "the admin to create catalogs and read lists as (default: --admin-credentials)"},
    {"admin-password", SK_CONF_STR, offsetof(load_cfg_t, admin_password), "", 0, 0,
     "that admin's password"},
    {"admin-credentials", SK_CONF_STR, offsetof(load_cfg_t, admin_credentials),
     "./data/admin-credentials", 0, 0, "a file of email=... and password=... lines (souk up's)"},
    {"bookings", SK_CONF_INT, offsetof(load_cfg_t, bookings), "1000", 1, 10000000,
     "how many bookings to make"},
    {"concurrency", SK_CONF_INT, offsetof(load_cfg_t, concurrency), "16", 1, 100000,
     "closed loop: how many bookings are between their POST and a terminal status at once"},
    {"rate", SK_CONF_INT, offsetof(load_cfg_t, rate), "0", 0, 1000000,
     "open loop: start this many bookings per second whatever the answers (0: closed loop)"},
    {"users", SK_CONF_INT, offsetof(load_cfg_t, users), "0", 0, 100000,
     "how many users book (0: --concurrency, at most --bookings)"},
    {"tickets-per-catalog", SK_CONF_INT, offsetof(load_cfg_t, tickets_per_catalog), "50", 1, 50,
     "tickets of each catalog made (the catalog allows at most 50)"},
    {"price", SK_CONF_INT, offsetof(load_cfg_t, price), "2500", 0, 100000000,
     "each catalog's price in cents (EUR)"},
    {"mode", SK_CONF_STR, offsetof(load_cfg_t, mode), "any", 0, 0,
     "any: book {catalogId} (any ticket); ticket: book {ticketId}, specific tickets"},
    {"oversell", SK_CONF_STR, offsetof(load_cfg_t, oversell), "0", 0, 0,
     "book this fraction more than there are tickets (0.2: 1.2 bookings per ticket), which must "
     "then fail"},
    {"pay", SK_CONF_STR, offsetof(load_cfg_t, pay), "auto", 0, 0,
     "auto: souk-payment runs with --auto-pay; card: POST /payments/{id}/pay for each booking; "
     "none: never pay (holds expire)"},
    {"decline-percent", SK_CONF_INT, offsetof(load_cfg_t, decline_percent), "0", 0, 100,
     "--pay card: pay this percentage of bookings with the declined card 4000 0000 0000 0002"},
    {"timeout-s", SK_CONF_INT, offsetof(load_cfg_t, timeout_s), "120", 1, 86400,
     "how long the bookings may take, from the first POST until every booking is terminal"},
    {"settle-s", SK_CONF_INT, offsetof(load_cfg_t, settle_s), "30", 0, 3600,
     "how long the checks wait for releases, refunds and emails to settle"},
    {"poll-ms", SK_CONF_INT, offsetof(load_cfg_t, poll_ms), "10", 1, 10000,
     "how often each catalog with open bookings is polled for terminal statuses (with "
     "--brokers: at least 1000, a backstop)"},
    {"brokers", SK_CONF_STR, offsetof(load_cfg_t, brokers), "", 0, 0,
     "Kafka bootstrap address (souk-broker's, e.g. 127.0.0.1:9092): learn terminal statuses "
     "from the booking topic's events instead of polling the lists"},
    {"pay-retry-ms", SK_CONF_INT, offsetof(load_cfg_t, pay_retry_ms), "20", 1, 10000,
     "--pay card: the delay before paying again after 409 payment-not-ready"},
    {"connections", SK_CONF_INT, offsetof(load_cfg_t, connections), "0", 0, 4096,
     "keep-alive connections per service (0: --concurrency + 4, at least 16; 64 with --rate)"},
    {"request-timeout-s", SK_CONF_INT, offsetof(load_cfg_t, request_timeout_s), "30", 1, 3600,
     "how long one HTTP request may take"},
    {"projection-wait-s", SK_CONF_INT, offsetof(load_cfg_t, projection_wait_s), "30", 0, 3600,
     "how long a POST answered 404 is retried (souk-booking learns new catalogs from events)"},
    {"check-emails", SK_CONF_STR, offsetof(load_cfg_t, check_emails), "auto", 0, 0,
     "check that every terminal booking has its email: yes, no, or auto (when "
     "souk-notification answers)"},
    {"json", SK_CONF_STR, offsetof(load_cfg_t, json), "", 0, 0,
     "also write the figures and the verdict as a JSON object to this file"},
    {"cpu-pids", SK_CONF_STR, offsetof(load_cfg_t, cpu_pids), "", 0, 0,
     "NAME=PID,...: report the CPU time these processes spend while the bookings run "
     "(from /proc/PID/stat)"},
    {"progress", SK_CONF_BOOL, offsetof(load_cfg_t, progress), "1", 0, 0,
     "a progress bar on stderr when it is a terminal"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const sk_conf_prog_t load_prog = {
    "souk load",
    "Creates users and catalogs, runs bookings through the saga (closed loop at\n"
    "--concurrency, or open loop at --rate), waits until every booking is terminal and\n"
    "checks the invariants from the services' own APIs: no ticket sold twice, CONFIRMED\n"
    "bookings = SOLD tickets = succeeded payments - refunds, every terminal booking\n"
    "emailed once.  Exits 0 when they hold, 1 when not, 2 on a usage or setup error.",
    NULL, 0};

/* ---- the model ------------------------------------------------------------------ */

enum { ST_UNKNOWN = -1, ST_PENDING, ST_AWAITING, ST_CONFIRMED, ST_FAILED, ST_EXPIRED, ST_CANCELLED, ST_N };
static const char *const st_names[ST_N] = {"PENDING", "AWAITING_PAYMENT", "CONFIRMED",
                                           "FAILED",  "EXPIRED",          "CANCELLED"};
static const char *const st_mail[ST_N] = {NULL, NULL, "booking.confirmed", "booking.failed",
                                          "booking.expired", "booking.cancelled"};

enum { PAY_NONE, PAY_PENDING, PAY_SUCCEEDED, PAY_FAILED, PAY_REFUNDED, PAY_CANCELLED, PAY_OTHER, PAY_N };
static const char *const pay_names[PAY_N] = {"none",     "PENDING",   "SUCCEEDED", "FAILED",
                                             "REFUNDED", "CANCELLED", "other"};

/* Where a booking is, as the load generator sees it. */
enum { BK_WAITING, BK_POSTING, BK_OPEN, BK_DONE, BK_REJECTED, BK_ERROR };

typedef struct ld_user_s {
    char *email, *id, *token;
} ld_user_t;

typedef struct ld_cat_s {
    char *id;
    int ntickets;
    char **tickets;  /* --mode ticket: the ticket ids, in the catalog's order */
    int open;        /* accepted bookings not yet seen terminal */
    int polling;     /* a list request is in flight */
    int seen_total;  /* totalElements of the last list */
} ld_cat_t;

typedef struct ld_booking_s {
    int idx, user, cat, ticket; /* ticket: index into cats[cat].tickets, -1 any */
    char key[48];               /* Idempotency-Key */
    char *id;                   /* from the 202 */
    int state;                  /* BK_* */
    int status;                 /* ST_*, from the lists */
    char *ticket_id, *reason;
    int64_t t_post_us, t_post_wall_ms, t_accepted_us, t_seen_us, updated_ms;
    int paying, pay_decided;
    int in_final_scan; /* rounds: seen in the last full scan of its catalog */
    int pay;           /* PAY_*, -1 not read yet */
    int mails, mails_sent, refund_mails;
} ld_booking_t;

typedef struct ld_pool_s {
    const char *name;
    char url[400], host[256], prefix[256], hosthdr[300];
    int port;
    struct evhttp_connection **conns;
    int *load;
    int n;
    int64_t calls; /* requests sent (each retry counts) */
} ld_pool_t;

typedef struct ld_s ld_t;
/* status 0: no answer (connection refused, reset, timed out) after retries.
 * json: the parsed body or NULL (borrowed: freed after the callback). */
typedef void (*ld_cb_t)(ld_t *ld, void *arg, int status, const cJSON *json);

typedef struct ld_call_s {
    ld_t *ld;
    ld_pool_t *pool;
    int conn;
    enum evhttp_cmd_type method;
    char *path, *token, *body, *idem;
    int retries;
    ld_cb_t cb;
    void *arg;
} ld_call_t;

struct ld_s {
    load_cfg_t *cfg;
    struct event_base *base;
    ld_pool_t pools[5];
    ld_pool_t *auth, *catalog, *booking, *payment, *notification;
    int outstanding; /* calls in flight or waiting to be retried */
    int pay_mode;    /* 0 auto, 1 card, 2 none */
    int by_ticket;
    int check_emails;
    double oversell;
    char run[16];
    int tty;

    char *admin_token;
    ld_user_t *users;
    int nusers;
    ld_cat_t *cats;
    int ncats, ntickets;
    int setup_errors;

    ld_booking_t *bk;
    int nbk;
    sk_map_t by_id;
    int next_launch, in_flight, finished, accepted;
    int rejected, errors, retried404, transport_retries, pay_calls, pay_errors;
    int64_t t_start_us, t_first_post_us, t_last_post_us, t_last_done_us, deadline_us;
    char first_error[600];
    int phase_bookings; /* the ticker polls and launches */
    /* --brokers: terminal statuses from the booking topic */
    rd_kafka_t *wk;
    ev_rdk_watch_t watch;
    sk_map_t early;     /* booking id -> ld_early_t: its event came before its 202 */
    int64_t watch_events;
    struct event *tick_ev, *launch_ev;
    int64_t last_progress_us;

    /* a batch: issue(i) for i in [0, n) with at most max in flight */
    int batch_next, batch_n, batch_inflight, batch_max;
    void (*batch_issue)(ld_t *ld, int i);

    /* verification */
    sk_map_t tickets; /* ticket id -> ld_tkt_t */
    int foreign, tickets_read_errors, pay_read_errors, mail_read_errors, list_errors;
};

typedef struct ld_tkt_s {
    char *id, *status, *booking_id;
} ld_tkt_t;

static int64_t now_us(void)
{
    return sk_mono_us();
}

static int status_of(const char *s)
{
    for (int i = 0; s && i < ST_N; i++)
        if (!strcmp(s, st_names[i])) return i;
    return ST_UNKNOWN;
}

static int pay_of(const char *s)
{
    for (int i = 1; s && i < PAY_OTHER; i++)
        if (!strcmp(s, pay_names[i])) return i;
    return PAY_OTHER;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t jint(const cJSON *o, const char *name, int64_t dflt)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

static void set_str(char **dst, const char *s)
{
    if (s && *dst && !strcmp(*dst, s)) return;
    free(*dst);
    *dst = s ? sk_strdup(s) : NULL;
}

/* "2026-11-25T16:37:36.123Z" -> ms since the epoch, or -1. */
static int64_t parse_time_ms(const char *s)
{
    struct tm tm;
    int ms = 0, n = 0;
    memset(&tm, 0, sizeof tm);
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) ms = ms * 10 + (*p - '0');
        for (; digits < 3; digits++)
            ms *= 10;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    return (int64_t)t * 1000 + ms;
}

static void note_error(ld_t *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(ld_t *ld, const char *fmt, ...)
{
    if (ld->first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->first_error, sizeof ld->first_error, fmt, ap);
    va_end(ap);
}

/* ---- HTTP: keep-alive pools over evhttp ------------------------------------------ */

static int pool_init(ld_t *ld, ld_pool_t *p, const char *name, const char *url, int nconns,
                     int timeout_s, char *err, size_t errsz)
{
    p->name = name;
    snprintf(p->url, sizeof p->url, "%s", url);
    if (hc_url_parse(url, p->host, sizeof p->host, &p->port, p->prefix, sizeof p->prefix) < 0) {
        sk_errf(err, errsz, "%s: not an http://HOST:PORT URL: '%s'", name, url);
        return -1;
    }
    if (strchr(p->host, ':'))
        snprintf(p->hosthdr, sizeof p->hosthdr, "[%s]:%d", p->host, p->port);
    else
        snprintf(p->hosthdr, sizeof p->hosthdr, "%s:%d", p->host, p->port);
    p->n = nconns;
    p->conns = sk_calloc((size_t)nconns, sizeof *p->conns);
    p->load = sk_calloc((size_t)nconns, sizeof *p->load);
    for (int i = 0; i < nconns; i++) {
        p->conns[i] = evhttp_connection_base_new(ld->base, NULL, p->host, (unsigned short)p->port);
        if (!p->conns[i]) {
            sk_errf(err, errsz, "%s: cannot make an HTTP connection to %s", name, url);
            return -1;
        }
        evhttp_connection_set_timeout(p->conns[i], timeout_s);
        evhttp_connection_set_retries(p->conns[i], 0);
    }
    return 0;
}

static void pool_release(ld_pool_t *p)
{
    for (int i = 0; p->conns && i < p->n; i++)
        if (p->conns[i]) evhttp_connection_free(p->conns[i]);
    free(p->conns);
    free(p->load);
    p->conns = NULL;
    p->load = NULL;
}

static void call_free(ld_call_t *c)
{
    free(c->path);
    free(c->token);
    free(c->body);
    free(c->idem);
    free(c);
}

static void call_send(ld_call_t *c);

static void call_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    call_send(arg);
}

/* Finishes a call: its callback, then the bookkeeping. */
static void call_finish(ld_call_t *c, int status, const char *body, size_t len)
{
    ld_t *ld = c->ld;
    cJSON *json = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    c->cb(ld, c->arg, status, json);
    cJSON_Delete(json);
    call_free(c);
    ld->outstanding--;
}

static void call_failed(ld_call_t *c)
{
    if (c->retries > 0) {
        c->retries--;
        c->ld->transport_retries++;
        struct timeval tv = {0, 100000};
        if (event_base_once(c->ld->base, -1, EV_TIMEOUT, call_retry_cb, c, &tv) == 0) return;
    }
    call_finish(c, 0, NULL, 0);
}

static void call_done(struct evhttp_request *req, void *arg)
{
    ld_call_t *c = arg;
    c->pool->load[c->conn]--;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (status <= 0) {
        call_failed(c);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = in ? evbuffer_get_length(in) : 0;
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    call_finish(c, status, body, len);
}

static void call_send(ld_call_t *c)
{
    ld_pool_t *p = c->pool;
    int best = 0;
    for (int i = 1; i < p->n; i++)
        if (p->load[i] < p->load[best]) best = i;
    c->conn = best;
    struct evhttp_request *req = evhttp_request_new(call_done, c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", p->hosthdr);
    evhttp_add_header(h, "Accept", "application/json");
    if (c->token) {
        sk_buf_t a = SK_BUF_INIT;
        sk_buf_init(&a, 600);
        sk_buf_addf(&a, "Bearer %s", c->token);
        evhttp_add_header(h, "Authorization", a.data);
        sk_buf_release(&a);
    }
    if (c->idem) evhttp_add_header(h, "Idempotency-Key", c->idem);
    if (c->body) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), c->body, strlen(c->body));
    }
    sk_buf_t uri = SK_BUF_INIT;
    sk_buf_init(&uri, 256);
    sk_buf_addf(&uri, "%s%s", p->prefix, c->path);
    p->load[best]++;
    p->calls++;
    int rc = evhttp_make_request(p->conns[best], req, c->method, uri.data);
    sk_buf_release(&uri);
    if (rc < 0) { /* libevent freed req */
        p->load[best]--;
        call_failed(c);
    }
}

/*
 * Sends METHOD pool.url + path; token (may be NULL) as a bearer token, body
 * (may be NULL) as JSON, idem (may be NULL) as the Idempotency-Key.  When
 * no answer comes (connection refused, reset, timed out) it is sent again
 * up to retries times, 100 ms apart; then cb gets status 0.  All strings
 * are copied.
 */
static void ld_http(ld_t *ld, ld_pool_t *pool, enum evhttp_cmd_type method, const char *path,
                    const char *token, const char *body, const char *idem, int retries, ld_cb_t cb,
                    void *arg)
{
    ld_call_t *c = sk_calloc(1, sizeof *c);
    c->ld = ld;
    c->pool = pool;
    c->method = method;
    c->path = sk_strdup(path);
    c->token = token ? sk_strdup(token) : NULL;
    c->body = body ? sk_strdup(body) : NULL;
    c->idem = idem ? sk_strdup(idem) : NULL;
    c->retries = retries;
    c->cb = cb;
    c->arg = arg;
    ld->outstanding++;
    call_send(c);
}

static void ld_http_json(ld_t *ld, ld_pool_t *pool, const char *path, const char *token,
                         cJSON *body, const char *idem, int retries, ld_cb_t cb, void *arg)
{
    char *b = cJSON_PrintUnformatted(body);
    if (!b) abort();
    ld_http(ld, pool, EVHTTP_REQ_POST, path, token, b, idem, retries, cb, arg);
    cJSON_free(b);
    cJSON_Delete(body);
}

/* Runs the loop until nothing is outstanding (or, when until is set, until
 * until(ld) is true) or the deadline (mono us, 0: none) passes.  The ticker
 * keeps the loop from blocking forever. */
static void ld_run(ld_t *ld, int (*until)(ld_t *), int64_t deadline_us)
{
    for (;;) {
        if (until ? until(ld) : ld->outstanding == 0) return;
        if (deadline_us && now_us() >= deadline_us) return;
        event_base_loop(ld->base, EVLOOP_ONCE);
    }
}

static void sleep_loop(ld_t *ld, int ms)
{
    int64_t until = now_us() + (int64_t)ms * 1000;
    while (now_us() < until)
        event_base_loop(ld->base, EVLOOP_ONCE);
}

/* A batch of n similar requests with at most max in flight. */
static void batch_more(ld_t *ld)
{
    while (ld->batch_inflight < ld->batch_max && ld->batch_next < ld->batch_n) {
        ld->batch_inflight++;
        ld->batch_issue(ld, ld->batch_next++);
    }
}

static void batch_done(ld_t *ld)
{
    ld->batch_inflight--;
    batch_more(ld);
}

static void run_batch(ld_t *ld, int n, int max, void (*issue)(ld_t *, int))
{
    ld->batch_next = 0;
    ld->batch_n = n;
    ld->batch_inflight = 0;
    ld->batch_max = max < 1 ? 1 : max;
    ld->batch_issue = issue;
    batch_more(ld);
    ld_run(ld, NULL, 0);
}

/* ---- setup: admin, users, catalogs ----------------------------------------------- */

static int read_credentials(const char *path, char *email, size_t esz, char *pw, size_t psz,
                            char *err, size_t errsz)
{
    char line[256];
    FILE *f = fopen(path, "re");
    email[0] = pw[0] = '\0';
    if (!f) {
        sk_errf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!strncmp(line, "email=", 6))
            snprintf(email, esz, "%s", line + 6);
        else if (!strncmp(line, "password=", 9))
            snprintf(pw, psz, "%s", line + 9);
    }
    fclose(f);
    if (!*email || !*pw) {
        sk_errf(err, errsz, "%s lacks an email= or password= line", path);
        return -1;
    }
    return 0;
}

static void problem_note(ld_t *ld, const char *what, int status, const cJSON *json)
{
    const char *detail = jstr(json, "detail");
    if (!detail) detail = jstr(json, "title");
    note_error(ld, "%s -> %d%s%s", what, status, detail ? " " : " (no answer)", detail ? detail : "");
}

typedef struct login_ctx_s {
    char **token;
    const char *who;
} login_ctx_t;

static void on_login(ld_t *ld, void *arg, int status, const cJSON *json)
{
    login_ctx_t *lc = arg;
    const char *t = jstr(json, "accessToken");
    if (status == 200 && t) {
        *lc->token = sk_strdup(t);
    } else {
        ld->setup_errors++;
        problem_note(ld, lc->who, status, json);
    }
}

static void login(ld_t *ld, const char *email, const char *password, char **token, login_ctx_t *lc)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "email", email);
    cJSON_AddStringToObject(b, "password", password);
    lc->token = token;
    lc->who = "POST /auth/login";
    ld_http_json(ld, ld->auth, "/auth/login", NULL, b, NULL, 3, on_login, lc);
}

#define USER_PASSWORD "load-pw-1234567890"

static void on_user_login(ld_t *ld, void *arg, int status, const cJSON *json)
{
    ld_user_t *u = arg;
    const char *t = jstr(json, "accessToken");
    if (status == 200 && t)
        u->token = sk_strdup(t);
    else {
        ld->setup_errors++;
        problem_note(ld, "POST /auth/login (a load user)", status, json);
    }
    batch_done(ld);
}

static void on_register(ld_t *ld, void *arg, int status, const cJSON *json)
{
    ld_user_t *u = arg;
    const char *id = jstr(json, "userId");
    if ((status == 201 || status == 200) && id) {
        u->id = sk_strdup(id);
    } else if (status != 409) { /* 409: a retried register that had worked */
        ld->setup_errors++;
        problem_note(ld, "POST /auth/register", status, json);
        batch_done(ld);
        return;
    }
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "email", u->email);
    cJSON_AddStringToObject(b, "password", USER_PASSWORD);
    ld_http_json(ld, ld->auth, "/auth/login", NULL, b, NULL, 3, on_user_login, u);
}

static void issue_user(ld_t *ld, int i)
{
    ld_user_t *u = &ld->users[i];
    char email[128], name[64];
    snprintf(email, sizeof email, "load-%s-%d@souk.test", ld->run, i);
    snprintf(name, sizeof name, "Load User %d", i);
    u->email = sk_strdup(email);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "email", email);
    cJSON_AddStringToObject(b, "password", USER_PASSWORD);
    cJSON_AddStringToObject(b, "fullName", name);
    ld_http_json(ld, ld->auth, "/auth/register", NULL, b, NULL, 3, on_register, u);
}

static void on_catalog(ld_t *ld, void *arg, int status, const cJSON *json)
{
    ld_cat_t *c = arg;
    const char *id = jstr(json, "catalogId");
    if (status == 201 && id)
        c->id = sk_strdup(id);
    else {
        ld->setup_errors++;
        problem_note(ld, "POST /catalogs", status, json);
    }
    batch_done(ld);
}

static void issue_catalog(ld_t *ld, int i)
{
    ld_cat_t *c = &ld->cats[i];
    char title[128], date[SK_RFC3339_LEN];
    snprintf(title, sizeof title, "Load test %s #%d", ld->run, i + 1);
    /* 30 days ahead, on the hour */
    int64_t when = (sk_wall_ms() / 3600000 + 30 * 24) * 3600000;
    sk_rfc3339_ms(when, date);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "title", title);
    cJSON_AddStringToObject(b, "description", "made by souk load");
    cJSON_AddNumberToObject(b, "price", (double)ld->cfg->price);
    cJSON_AddStringToObject(b, "currency", "EUR");
    cJSON_AddStringToObject(b, "dateOfEvent", date);
    cJSON_AddNumberToObject(b, "numberOfTickets", c->ntickets);
    /* not retried: a second POST would make a second catalog */
    ld_http_json(ld, ld->catalog, "/catalogs", ld->admin_token, b, NULL, 0, on_catalog, c);
}

static void on_tickets_setup(ld_t *ld, void *arg, int status, const cJSON *json)
{
    ld_cat_t *c = arg;
    int n = cJSON_IsArray(json) ? cJSON_GetArraySize(json) : -1;
    if (status != 200 || n != c->ntickets) {
        ld->setup_errors++;
        problem_note(ld, "GET /catalogs/{id}/tickets", status, json);
    } else {
        c->tickets = sk_calloc((size_t)n, sizeof *c->tickets);
        int i = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, json) {
            const char *id = jstr(t, "ticketId");
            c->tickets[i++] = sk_strdup(id ? id : "");
        }
    }
    batch_done(ld);
}

static void issue_tickets_setup(ld_t *ld, int i)
{
    char path[1024];
    snprintf(path, sizeof path, "/catalogs/%s/tickets", ld->cats[i].id);
    ld_http(ld, ld->catalog, EVHTTP_REQ_GET, path, ld->admin_token, NULL, NULL, 3,
            on_tickets_setup, &ld->cats[i]);
}

/* ---- the bookings ------------------------------------------------------------------ */

static void launch_more(ld_t *ld);
static void booking_post(ld_t *ld, ld_booking_t *b);

static void booking_finish(ld_t *ld, ld_booking_t *b, int state)
{
    if (b->state == BK_OPEN) ld->cats[b->cat].open--;
    b->state = state;
    ld->in_flight--;
    ld->finished++;
    ld->t_last_done_us = now_us();
    if (!ld->cfg->rate) launch_more(ld);
}

static void pay_send(ld_t *ld, ld_booking_t *b);

/* The loop's context for timers that only know a booking. */
typedef struct bk_timer_s {
    ld_t *ld;
    ld_booking_t *b;
} bk_timer_t;

static void pay_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bk_timer_t *t = arg;
    ld_t *ld = t->ld;
    ld_booking_t *b = t->b;
    free(t);
    ld->outstanding--;
    if (b->state == BK_OPEN && !b->pay_decided)
        pay_send(ld, b);
    else
        b->paying = 0;
}

static void after_ms(ld_t *ld, ld_booking_t *b, int ms, event_callback_fn fn)
{
    bk_timer_t *t = sk_malloc(sizeof *t);
    t->ld = ld;
    t->b = b;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    ld->outstanding++;
    if (event_base_once(ld->base, -1, EV_TIMEOUT, fn, t, &tv) < 0) abort(); /* no memory */
}

static void on_pay(ld_t *ld, void *arg, int status, const cJSON *json)
{
    ld_booking_t *b = arg;
    const char *type = jstr(json, "type");
    int not_ready = status == 404 ||
                    (status == 409 && type && strstr(type, "payment-not-ready") != NULL);
    if (status == 200) {
        b->pay_decided = 1;
        b->paying = 0;
    } else if (not_ready && b->state == BK_OPEN && now_us() < ld->deadline_us) {
        after_ms(ld, b, (int)ld->cfg->pay_retry_ms, pay_timer_cb);
    } else if (status == 409 || status == 404) {
        b->paying = 0; /* booking-ended, payment-cancelled, or it ended meanwhile */
    } else {
        b->paying = 0;
        ld->pay_errors++;
        problem_note(ld, "POST /payments/{id}/pay", status, json);
    }
}

static void pay_send(ld_t *ld, ld_booking_t *b)
{
    char path[1024];
    int year = 0;
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm)) year = tm.tm_year + 1900;
    int declined = (b->idx % 100) < ld->cfg->decline_percent;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "card", declined ? "4000 0000 0000 0002" : "4242 4242 4242 4242");
    cJSON_AddNumberToObject(body, "expMonth", 12);
    cJSON_AddNumberToObject(body, "expYear", year + 2);
    cJSON_AddStringToObject(body, "cvc", "123");
    snprintf(path, sizeof path, "/payments/%s/pay", b->id);
    ld->pay_calls++;
    ld_http_json(ld, ld->payment, path, ld->users[b->user].token, body, NULL, 3, on_pay, b);
}

static void post_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bk_timer_t *t = arg;
    ld_t *ld = t->ld;
    ld_booking_t *b = t->b;
    free(t);
    ld->outstanding--;
    booking_post(ld, b);
}

static void watch_accepted(ld_t *ld, ld_booking_t *b);

static void on_posted(ld_t *ld, void *arg, int status, const cJSON *json)
{
    ld_booking_t *b = arg;
    const char *id = jstr(json, "bookingId");
    if (status == 202 && id) {
        b->t_accepted_us = now_us();
        b->id = sk_strdup(id);
        b->status = status_of(jstr(json, "status"));
        sk_map_put(&ld->by_id, b->id, strlen(b->id), b);
        b->state = BK_OPEN;
        ld->accepted++;
        ld->cats[b->cat].open++;
        watch_accepted(ld, b);
        if (ld->pay_mode == 1 && b->state == BK_OPEN) {
            b->paying = 1;
            pay_send(ld, b);
        }
        return;
    }
    if (status == 404 && now_us() < ld->t_start_us + ld->cfg->projection_wait_s * 1000000) {
        /* souk-booking has not consumed catalog.created yet */
        ld->retried404++;
        after_ms(ld, b, 50, post_timer_cb);
        return;
    }
    if (status >= 400 && status < 500) {
        ld->rejected++;
        booking_finish(ld, b, BK_REJECTED);
        if (status != 409) problem_note(ld, "POST /bookings", status, json);
        return;
    }
    ld->errors++;
    problem_note(ld, "POST /bookings", status, json);
    booking_finish(ld, b, BK_ERROR);
}

static void booking_post(ld_t *ld, ld_booking_t *b)
{
    ld_cat_t *c = &ld->cats[b->cat];
    cJSON *body = cJSON_CreateObject();
    if (b->ticket >= 0)
        cJSON_AddStringToObject(body, "ticketId", c->tickets[b->ticket]);
    else
        cJSON_AddStringToObject(body, "catalogId", c->id);
    b->t_post_us = now_us();
    b->t_post_wall_ms = sk_wall_ms();
    if (!ld->t_first_post_us) ld->t_first_post_us = b->t_post_us;
    ld->t_last_post_us = b->t_post_us;
    ld_http_json(ld, ld->booking, "/bookings", ld->users[b->user].token, body, b->key, 3,
                 on_posted, b);
}

static void booking_start(ld_t *ld, ld_booking_t *b)
{
    b->state = BK_POSTING;
    ld->in_flight++;
    booking_post(ld, b);
}

static void launch_more(ld_t *ld)
{
    while (ld->next_launch < ld->nbk && ld->in_flight < ld->cfg->concurrency)
        booking_start(ld, &ld->bk[ld->next_launch++]);
}

/* Open loop: booking i starts at t_start + i / rate; a backlog of more than
 * 100,000 open bookings holds the schedule back. */
static void launch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ld_t *ld = arg;
    int64_t now = now_us();
    while (ld->next_launch < ld->nbk && ld->in_flight < 100000) {
        int64_t due = ld->t_start_us + (int64_t)ld->next_launch * 1000000 / ld->cfg->rate;
        if (due > now) {
            struct timeval tv = {(due - now) / 1000000, (due - now) % 1000000};
            evtimer_add(ld->launch_ev, &tv);
            return;
        }
        booking_start(ld, &ld->bk[ld->next_launch++]);
    }
    if (ld->next_launch < ld->nbk) {
        struct timeval tv = {0, 1000};
        evtimer_add(ld->launch_ev, &tv);
    }
}

/* One page of the admin's list of a catalog's bookings. */
typedef struct list_ctx_s {
    int cat, page, final;
} list_ctx_t;

static void list_catalog(ld_t *ld, int cat, int page, int final);

static void on_list(ld_t *ld, void *arg, int status, const cJSON *json)
{
    list_ctx_t lc = *(list_ctx_t *)arg;
    free(arg);
    ld_cat_t *c = &ld->cats[lc.cat];
    const cJSON *content = json ? cJSON_GetObjectItemCaseSensitive(json, "content") : NULL;
    if (status != 200 || !cJSON_IsArray(content)) {
        ld->list_errors++;
        problem_note(ld, "GET /bookings?catalogId=", status, json);
        c->polling = 0;
        return;
    }
    int64_t now = now_us();
    int64_t total = jint(json, "totalElements", 0);
    c->seen_total = (int)total;
    const cJSON *it;
    cJSON_ArrayForEach(it, content) {
        const char *id = jstr(it, "bookingId");
        ld_booking_t *b = id ? sk_map_get(&ld->by_id, id, strlen(id)) : NULL;
        if (!b) {
            if (lc.final) ld->foreign++;
            continue;
        }
        int st = status_of(jstr(it, "status"));
        if (lc.final) b->in_final_scan = 1;
        /* a list answered before an event that was read first is older */
        if (st == ST_UNKNOWN || (!lc.final && b->state != BK_OPEN)) continue;
        b->status = st;
        set_str(&b->ticket_id, jstr(it, "ticketId"));
        set_str(&b->reason, jstr(it, "reason"));
        if (st >= ST_CONFIRMED && b->state == BK_OPEN) {
            b->updated_ms = parse_time_ms(jstr(it, "updatedAt"));
            b->t_seen_us = now;
            booking_finish(ld, b, BK_DONE);
        }
    }
    if ((int64_t)(lc.page + 1) * 100 < total)
        list_catalog(ld, lc.cat, lc.page + 1, lc.final);
    else
        c->polling = 0;
}

static void list_catalog(ld_t *ld, int cat, int page, int final)
{
    char path[1024];
    list_ctx_t *lc = sk_malloc(sizeof *lc);
    lc->cat = cat;
    lc->page = page;
    lc->final = final;
    ld->cats[cat].polling = 1;
    snprintf(path, sizeof path, "/bookings?catalogId=%s&size=100&page=%d&sort=createdAt,asc",
             ld->cats[cat].id, page);
    ld_http(ld, ld->booking, EVHTTP_REQ_GET, path, ld->admin_token, NULL, NULL, 3, on_list, lc);
}

/* ---- --brokers: terminal statuses from the booking topic -------------------------- */

/* Events of bookings not (yet) known kept at most: other clients' bookings
 * pass by too. */
#define EARLY_MAX 100000

/* A terminal event for a booking whose 202 has not been read yet. */
typedef struct ld_early_s {
    int status;
    int64_t time_ms, seen_us;
    char *ticket_id, *reason;
} ld_early_t;

/* b reached status (a terminal one) at time_ms, by the event seen at seen_us. */
static void watch_finish(ld_t *ld, ld_booking_t *b, int status, int64_t time_ms, int64_t seen_us,
                         const char *ticket_id, const char *reason)
{
    if (b->state != BK_OPEN) return;
    b->status = status;
    if (ticket_id) set_str(&b->ticket_id, ticket_id);
    if (reason) set_str(&b->reason, reason);
    b->updated_ms = time_ms;
    b->t_seen_us = seen_us;
    booking_finish(ld, b, BK_DONE);
}

/* on_posted: a booking just accepted may have ended already. */
static void watch_accepted(ld_t *ld, ld_booking_t *b)
{
    ld_early_t *e = ld->wk ? sk_map_del(&ld->early, b->id, strlen(b->id)) : NULL;
    if (!e) return;
    watch_finish(ld, b, e->status, e->time_ms, e->seen_us, e->ticket_id, e->reason);
    free(e->ticket_id);
    free(e->reason);
    free(e);
}

static void watch_record(ld_t *ld, const rd_kafka_message_t *m, int64_t now)
{
    char err[256];
    ev_event_t *ev = NULL;
    if (m->err || !m->payload || ev_parse(m->payload, m->len, &ev, err, sizeof err) < 0) return;
    int st = ST_UNKNOWN;
    for (int k = ST_CONFIRMED; k < ST_N; k++)
        if (!strcmp(ev->type, st_mail[k])) st = k;
    const char *id = st == ST_UNKNOWN ? NULL : jstr(ev->data, "bookingId");
    if (id) {
        ld->watch_events++;
        const char *ticket = jstr(ev->data, "ticketId"), *reason = jstr(ev->data, "reason");
        ld_booking_t *b = sk_map_get(&ld->by_id, id, strlen(id));
        if (b) {
            watch_finish(ld, b, st, ev->time_ms, now, ticket, reason);
        } else if ((ld->phase_bookings || ld->in_flight > 0) && sk_map_count(&ld->early) < EARLY_MAX &&
                   !sk_map_get(&ld->early, id, strlen(id))) {
            /* maybe ours, its 202 still on the way; a CANCELLED after a
             * CONFIRMED keeps the first */
            ld_early_t *e = sk_calloc(1, sizeof *e);
            e->status = st;
            e->time_ms = ev->time_ms;
            e->seen_us = now;
            if (ticket) e->ticket_id = sk_strdup(ticket);
            if (reason) e->reason = sk_strdup(reason);
            sk_map_put(&ld->early, id, strlen(id), e);
        }
    }
    ev_free(ev);
}

static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ld_t *ld = arg;
    ev_rdk_watch_drain(&ld->watch);
    int64_t now = now_us();
    rd_kafka_message_t *m;
    int n = 0;
    while (n < 2000 && (m = rd_kafka_consumer_poll(ld->wk, 0)) != NULL) {
        watch_record(ld, m, now);
        rd_kafka_message_destroy(m);
        n++;
    }
    if (n >= 2000) ev_rdk_watch_again(&ld->watch);
}

/* Assigns every partition of the booking topic at its end (known before the
 * first POST, so no event of this run can be missed).  Returns 0, or -1 with
 * err set. */
static int watch_start(ld_t *ld, const char *brokers, char *err, size_t errsz)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_topic_t *rkt = NULL;
    if (ev_rdk_set(conf, "bootstrap.servers", brokers, err, errsz) < 0 ||
        ev_rdk_set(conf, "client.id", "souk-load", err, errsz) < 0 ||
        ev_rdk_set(conf, "group.id", "souk-load-watch", err, errsz) < 0 || /* never joined: assign() */
        ev_rdk_set(conf, "enable.auto.commit", "false", err, errsz) < 0 ||
        ev_rdk_set(conf, "fetch.wait.max.ms", "100", err, errsz) < 0 ||
        ev_rdk_set(conf, "log.connection.close", "false", err, errsz) < 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    ld->wk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!ld->wk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errsz, "librdkafka: %s", why);
        return -1;
    }
    rd_kafka_poll_set_consumer(ld->wk);
    rkt = rd_kafka_topic_new(ld->wk, "booking", NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(ld->wk, 0, rkt, &md, 5000);
    if (e || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        snprintf(err, errsz, "%s: no topic \"booking\": %s", brokers,
                 rd_kafka_err2str(e ? e : md->topic_cnt == 1 && md->topics[0].err ? md->topics[0].err
                                                                                   : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto fail;
    }
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo, hi;
        e = rd_kafka_query_watermark_offsets(ld->wk, "booking", p, &lo, &hi, 5000);
        if (e) {
            snprintf(err, errsz, "booking[%" PRId32 "]: end offset: %s", p, rd_kafka_err2str(e));
            goto fail;
        }
        rd_kafka_topic_partition_list_add(parts, "booking", p)->offset = hi;
    }
    if ((e = rd_kafka_assign(ld->wk, parts))) {
        snprintf(err, errsz, "assign: %s", rd_kafka_err2str(e));
        goto fail;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    sk_map_init(&ld->early);
    return ev_rdk_watch_start(&ld->watch, ld->base, rd_kafka_queue_get_consumer(ld->wk), watch_cb, ld, err,
                              errsz);
fail:
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(ld->wk);
    ld->wk = NULL;
    return -1;
}

static void watch_stop(ld_t *ld)
{
    if (!ld->wk) return;
    ev_rdk_watch_stop(&ld->watch);
    rd_kafka_consumer_close(ld->wk);
    rd_kafka_destroy(ld->wk);
    ld->wk = NULL;
    sk_map_entry_t *it;
    for (it = sk_map_next(&ld->early, NULL); it; it = sk_map_next(&ld->early, it)) {
        ld_early_t *e = it->value;
        free(e->ticket_id);
        free(e->reason);
        free(e);
    }
    sk_map_release(&ld->early);
}

static void progress(ld_t *ld, int last)
{
    if (!ld->tty || !ld->cfg->progress) return;
    int64_t now = now_us();
    if (!last && now - ld->last_progress_us < 200000) return;
    ld->last_progress_us = now;
    int width = 30, n = ld->nbk;
    int fill = n ? (int)((int64_t)ld->finished * width / n) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double secs = ld->t_first_post_us ? (double)(now - ld->t_first_post_us) / 1e6 : 0;
    fprintf(stderr, "\r[%s] %d/%d terminal, %d posted, %d open, %.0f/s, %.1f s   ", bar,
            ld->finished, n, ld->next_launch, ld->in_flight,
            secs > 0 ? ld->finished / secs : 0.0, secs);
    if (last) fputc('\n', stderr);
    fflush(stderr);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ld_t *ld = arg;
    if (ld->phase_bookings) {
        for (int k = 0; k < ld->ncats; k++)
            if (ld->cats[k].open > 0 && !ld->cats[k].polling) list_catalog(ld, k, 0, 0);
        progress(ld, 0);
    }
}

static int all_finished(ld_t *ld)
{
    return ld->finished >= ld->nbk;
}

/* ---- verification ----------------------------------------------------------------- */

static int no_polling(ld_t *ld)
{
    if (ld->outstanding) return 0;
    for (int k = 0; k < ld->ncats; k++)
        if (ld->cats[k].polling) return 0;
    return 1;
}

static void on_tickets(ld_t *ld, void *arg, int status, const cJSON *json)
{
    (void)arg;
    if (status != 200 || !cJSON_IsArray(json)) {
        ld->tickets_read_errors++;
        problem_note(ld, "GET /catalogs/{id}/tickets", status, json);
        batch_done(ld);
        return;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, json) {
        const char *id = jstr(t, "ticketId");
        if (!id) continue;
        ld_tkt_t *k = sk_map_get(&ld->tickets, id, strlen(id));
        if (!k) {
            k = sk_calloc(1, sizeof *k);
            k->id = sk_strdup(id);
            sk_map_put(&ld->tickets, id, strlen(id), k);
        }
        set_str(&k->status, jstr(t, "status"));
        set_str(&k->booking_id, jstr(t, "bookingId"));
    }
    batch_done(ld);
}

static void issue_tickets(ld_t *ld, int i)
{
    char path[1024];
    snprintf(path, sizeof path, "/catalogs/%s/tickets", ld->cats[i].id);
    ld_http(ld, ld->catalog, EVHTTP_REQ_GET, path, ld->admin_token, NULL, NULL, 3, on_tickets,
            NULL);
}

/* Bookings whose payment is read in this round. */
static ld_booking_t **pay_todo;

static void on_payment(ld_t *ld, void *arg, int status, const cJSON *json)
{
    ld_booking_t *b = arg;
    if (status == 200)
        b->pay = pay_of(jstr(json, "status"));
    else if (status == 404)
        b->pay = PAY_NONE;
    else {
        ld->pay_read_errors++;
        problem_note(ld, "GET /payments/{id}", status, json);
    }
    batch_done(ld);
}

static void issue_payment(ld_t *ld, int i)
{
    char path[1024];
    snprintf(path, sizeof path, "/payments/%s", pay_todo[i]->id);
    ld_http(ld, ld->payment, EVHTTP_REQ_GET, path, ld->admin_token, NULL, NULL, 3, on_payment,
            pay_todo[i]);
}

typedef struct mail_ctx_s {
    int user, page;
} mail_ctx_t;

static void mail_page(ld_t *ld, int user, int page);

static void on_mails(ld_t *ld, void *arg, int status, const cJSON *json)
{
    mail_ctx_t mc = *(mail_ctx_t *)arg;
    free(arg);
    const cJSON *content = json ? cJSON_GetObjectItemCaseSensitive(json, "content") : NULL;
    if (status != 200 || !cJSON_IsArray(content)) {
        ld->mail_read_errors++;
        problem_note(ld, "GET /notifications/my", status, json);
        if (mc.page == 0) batch_done(ld);
        return;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, content) {
        const char *bid = jstr(it, "bookingId"), *type = jstr(it, "type");
        ld_booking_t *b = bid ? sk_map_get(&ld->by_id, bid, strlen(bid)) : NULL;
        if (!b || !type) continue;
        const char *state = jstr(it, "state");
        if (!strcmp(type, "payment.refunded")) {
            b->refund_mails++;
        } else if (b->status >= ST_CONFIRMED && !strcmp(type, st_mail[b->status])) {
            b->mails++;
            if (state && !strcmp(state, "SENT")) b->mails_sent++;
        }
    }
    if (mc.page == 0) {
        int64_t pages = jint(json, "totalPages", 1);
        for (int p = 1; p < pages && p < 100000; p++)
            mail_page(ld, mc.user, p);
        batch_done(ld);
    }
}

static void mail_page(ld_t *ld, int user, int page)
{
    char path[1024];
    mail_ctx_t *mc = sk_malloc(sizeof *mc);
    mc->user = user;
    mc->page = page;
    snprintf(path, sizeof path, "/notifications/my?size=100&page=%d", page);
    ld_http(ld, ld->notification, EVHTTP_REQ_GET, path, ld->users[user].token, NULL, NULL, 3,
            on_mails, mc);
}

static void issue_mails(ld_t *ld, int user)
{
    mail_page(ld, user, 0);
}

/* The result of one round of checks. */
typedef struct verdict_s {
    int count[ST_N], not_terminal, unseen, confirmed_no_ticket, dup_tickets;
    int sold, reserved, available, sold_mismatch, sold_bad_booking;
    int pay[PAY_N], pay_bad_confirmed, pay_bad_other;
    int mail_missing, mail_dup, mail_unsent, refund_mail_missing;
    int failures, transient;
    char ex_dup[200], ex_sold[300], ex_pay[300], ex_mail[300], ex_open[200];
} verdict_t;

static void example(char *buf, size_t sz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void example(char *buf, size_t sz, const char *fmt, ...)
{
    if (buf[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sz, fmt, ap);
    va_end(ap);
}

static void check(ld_t *ld, verdict_t *v)
{
    memset(v, 0, sizeof *v);
    sk_map_t confirmed_tickets; /* ticket id -> booking */
    sk_map_init(&confirmed_tickets);
    char **tids = sk_calloc((size_t)ld->nbk + 1, sizeof *tids);
    int ntids = 0;
    for (int i = 0; i < ld->nbk; i++) {
        ld_booking_t *b = &ld->bk[i];
        if (!b->id) continue;
        if (!b->in_final_scan) v->unseen++;
        if (b->status < ST_CONFIRMED) {
            v->not_terminal++;
            example(v->ex_open, sizeof v->ex_open, "%s is %s", b->id,
                    b->status >= 0 ? st_names[b->status] : "unknown");
            continue;
        }
        v->count[b->status]++;
        if (b->status == ST_CONFIRMED) {
            if (!b->ticket_id) {
                v->confirmed_no_ticket++;
                continue;
            }
            tids[ntids++] = b->ticket_id;
            ld_booking_t *other = sk_map_put(&confirmed_tickets, b->ticket_id, strlen(b->ticket_id), b);
            if (other) {
                v->dup_tickets++;
                example(v->ex_dup, sizeof v->ex_dup, "ticket %s: bookings %s and %s", b->ticket_id,
                        other->id, b->id);
            }
        }
    }
    /* tickets */
    for (sk_map_entry_t *e = sk_map_next(&ld->tickets, NULL); e; e = sk_map_next(&ld->tickets, e)) {
        ld_tkt_t *t = e->value;
        const char *s = t->status ? t->status : "";
        if (!strcmp(s, "SOLD")) {
            v->sold++;
            ld_booking_t *b = sk_map_get(&confirmed_tickets, t->id, strlen(t->id));
            if (!b) {
                v->sold_mismatch++;
                example(v->ex_sold, sizeof v->ex_sold, "ticket %s is SOLD (bookingId %s) but no "
                        "CONFIRMED booking holds it", t->id, t->booking_id ? t->booking_id : "?");
            } else if (t->booking_id && strcmp(t->booking_id, b->id) != 0) {
                v->sold_bad_booking++;
                example(v->ex_sold, sizeof v->ex_sold, "ticket %s is SOLD to booking %s, but "
                        "CONFIRMED booking %s holds it", t->id, t->booking_id, b->id);
            }
        } else if (!strcmp(s, "RESERVED")) {
            v->reserved++;
            example(v->ex_sold, sizeof v->ex_sold, "ticket %s is still RESERVED (bookingId %s)",
                    t->id, t->booking_id ? t->booking_id : "?");
        } else if (!strcmp(s, "AVAILABLE")) {
            v->available++;
        }
    }
    for (int i = 0; i < ntids; i++) {
        ld_tkt_t *t = sk_map_get(&ld->tickets, tids[i], strlen(tids[i]));
        if (!t || !t->status || strcmp(t->status, "SOLD") != 0) {
            v->sold_mismatch++;
            example(v->ex_sold, sizeof v->ex_sold, "CONFIRMED booking's ticket %s is %s", tids[i],
                    t && t->status ? t->status : "unknown");
        }
    }
    /* payments */
    for (int i = 0; i < ld->nbk; i++) {
        ld_booking_t *b = &ld->bk[i];
        if (!b->id || b->status < ST_CONFIRMED) continue;
        if (b->pay < 0) {
            v->pay_bad_other++;
            example(v->ex_pay, sizeof v->ex_pay, "payment of %s could not be read", b->id);
            continue;
        }
        v->pay[b->pay]++;
        if (b->status == ST_CONFIRMED && b->pay != PAY_SUCCEEDED) {
            v->pay_bad_confirmed++;
            example(v->ex_pay, sizeof v->ex_pay, "CONFIRMED booking %s has payment %s", b->id,
                    pay_names[b->pay]);
        } else if (b->status != ST_CONFIRMED && b->pay == PAY_SUCCEEDED) {
            v->pay_bad_other++;
            example(v->ex_pay, sizeof v->ex_pay, "%s booking %s has a SUCCEEDED payment (no refund)",
                    st_names[b->status], b->id);
        }
        /* emails */
        if (ld->check_emails) {
            if (b->mails == 0) {
                v->mail_missing++;
                example(v->ex_mail, sizeof v->ex_mail, "%s booking %s (user %s) has no %s "
                        "notification", st_names[b->status], b->id, ld->users[b->user].email,
                        st_mail[b->status]);
            } else if (b->mails > 1) {
                v->mail_dup++;
                example(v->ex_mail, sizeof v->ex_mail, "booking %s has %d %s notifications", b->id,
                        b->mails, st_mail[b->status]);
            } else if (b->mails_sent < 1) {
                v->mail_unsent++;
                example(v->ex_mail, sizeof v->ex_mail, "the %s notification of %s is not SENT",
                        st_mail[b->status], b->id);
            }
            if (b->pay == PAY_REFUNDED && b->refund_mails != 1) v->refund_mail_missing++;
        }
    }
    sk_map_release(&confirmed_tickets);
    free(tids);
    v->transient = v->reserved + v->pay_bad_other + v->mail_missing + v->mail_unsent +
                   v->refund_mail_missing + v->sold_mismatch;
    v->failures = v->not_terminal + v->unseen + v->confirmed_no_ticket + v->dup_tickets +
                  v->sold_mismatch + v->sold_bad_booking + v->reserved + v->pay_bad_confirmed +
                  v->pay_bad_other + v->mail_missing + v->mail_dup + v->mail_unsent +
                  v->refund_mail_missing + (ld->foreign ? 1 : 0) +
                  (v->count[ST_CONFIRMED] != v->pay[PAY_SUCCEEDED] ? 1 : 0);
}

/* One round of reading back: lists, tickets, payments, notifications. */
static void read_back(ld_t *ld, int round)
{
    int conc = ld->booking->n < 32 ? ld->booking->n : 32;
    ld->foreign = 0;
    ld->tickets_read_errors = ld->pay_read_errors = ld->mail_read_errors = ld->list_errors = 0;
    for (int i = 0; i < ld->nbk; i++)
        ld->bk[i].in_final_scan = 0;
    for (int k = 0; k < ld->ncats; k++)
        list_catalog(ld, k, 0, 1);
    ld_run(ld, no_polling, 0);
    run_batch(ld, ld->ncats, conc, issue_tickets);
    /* payments: all at first, then those not yet consistent */
    int n = 0;
    pay_todo = sk_calloc((size_t)ld->nbk + 1, sizeof *pay_todo);
    for (int i = 0; i < ld->nbk; i++) {
        ld_booking_t *b = &ld->bk[i];
        if (!b->id) continue;
        int ok = b->pay >= 0 && ((b->status == ST_CONFIRMED && b->pay == PAY_SUCCEEDED) ||
                                 (b->status > ST_CONFIRMED && b->pay != PAY_SUCCEEDED &&
                                  b->pay != PAY_PENDING));
        if (round == 0 || !ok) pay_todo[n++] = b;
    }
    run_batch(ld, n, conc, issue_payment);
    free(pay_todo);
    pay_todo = NULL;
    if (ld->check_emails) {
        for (int i = 0; i < ld->nbk; i++)
            ld->bk[i].mails = ld->bk[i].mails_sent = ld->bk[i].refund_mails = 0;
        run_batch(ld, ld->nusers, conc, issue_mails);
    }
}

/* ---- figures ------------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct dist_s {
    int n;
    double p50, p95, p99, max, mean;
} dist_t;

static dist_t dist_of(int64_t *v, int n, double unit)
{
    dist_t d = {0};
    d.n = n;
    if (n == 0) return d;
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)v[i];
    int i50 = (int)((n * 50 + 99) / 100) - 1, i95 = (int)((n * 95 + 99) / 100) - 1,
        i99 = (int)((n * 99 + 99) / 100) - 1;
    d.p50 = (double)v[i50 < 0 ? 0 : i50] / unit;
    d.p95 = (double)v[i95 < 0 ? 0 : i95] / unit;
    d.p99 = (double)v[i99 < 0 ? 0 : i99] / unit;
    d.max = (double)v[n - 1] / unit;
    d.mean = sum / n / unit;
    return d;
}

static void print_dist(const char *what, const dist_t *d)
{
    if (!d->n) {
        printf("  %-44s -\n", what);
        return;
    }
    printf("  %-44s p50 %7.1f  p95 %7.1f  p99 %7.1f  max %7.1f  mean %7.1f ms  (n=%d)\n", what,
           d->p50, d->p95, d->p99, d->max, d->mean, d->n);
}

static cJSON *dist_json(const dist_t *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", d->n);
    cJSON_AddNumberToObject(o, "p50", d->p50);
    cJSON_AddNumberToObject(o, "p95", d->p95);
    cJSON_AddNumberToObject(o, "p99", d->p99);
    cJSON_AddNumberToObject(o, "max", d->max);
    cJSON_AddNumberToObject(o, "mean", d->mean);
    return o;
}

static void line(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  %-4s ", ok ? "ok" : "FAIL");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

static void report_checks(ld_t *ld, const verdict_t *v)
{
    int term = v->count[ST_CONFIRMED] + v->count[ST_FAILED] + v->count[ST_EXPIRED] +
               v->count[ST_CANCELLED];
    printf("invariants:\n");
    line(!v->not_terminal && !v->unseen, "every accepted booking is terminal: %d of %d%s%s", term,
         ld->accepted, v->ex_open[0] ? "; e.g. " : "", v->ex_open);
    line(!ld->foreign, "the catalogs hold no booking but those made here (%d other)", ld->foreign);
    line(!v->dup_tickets && !v->confirmed_no_ticket,
         "no ticket sold twice: %d CONFIRMED bookings hold %d distinct tickets%s%s",
         v->count[ST_CONFIRMED], v->count[ST_CONFIRMED] - v->dup_tickets - v->confirmed_no_ticket,
         v->ex_dup[0] ? "; e.g. " : "", v->ex_dup);
    line(!v->sold_mismatch && !v->sold_bad_booking && v->sold == v->count[ST_CONFIRMED],
         "SOLD tickets = CONFIRMED bookings: %d = %d, each SOLD ticket sold to its booking%s%s",
         v->sold, v->count[ST_CONFIRMED], v->ex_sold[0] && !v->reserved ? "; e.g. " : "",
         v->ex_sold[0] && !v->reserved ? v->ex_sold : "");
    line(!v->reserved, "no ticket left RESERVED (%d RESERVED, %d AVAILABLE of %d)%s%s", v->reserved,
         v->available, ld->ntickets, v->reserved ? "; e.g. " : "", v->reserved ? v->ex_sold : "");
    int succeeded = v->pay[PAY_SUCCEEDED] + v->pay[PAY_REFUNDED];
    line(v->count[ST_CONFIRMED] == succeeded - v->pay[PAY_REFUNDED],
         "CONFIRMED = succeeded payments - refunds: %d = %d - %d", v->count[ST_CONFIRMED],
         succeeded, v->pay[PAY_REFUNDED]);
    line(!v->pay_bad_confirmed && !v->pay_bad_other,
         "each CONFIRMED booking paid, no other booking charged (payments: %d SUCCEEDED, %d "
         "REFUNDED, %d FAILED, %d CANCELLED, %d PENDING, %d none)%s%s",
         v->pay[PAY_SUCCEEDED], v->pay[PAY_REFUNDED], v->pay[PAY_FAILED], v->pay[PAY_CANCELLED],
         v->pay[PAY_PENDING], v->pay[PAY_NONE], v->ex_pay[0] ? "; e.g. " : "", v->ex_pay);
    if (ld->check_emails)
        line(!v->mail_missing && !v->mail_dup && !v->mail_unsent && !v->refund_mail_missing,
             "every terminal booking emailed once: %d missing, %d twice, %d not SENT, %d refunds "
             "without their email%s%s",
             v->mail_missing, v->mail_dup, v->mail_unsent, v->refund_mail_missing,
             v->ex_mail[0] ? "; e.g. " : "", v->ex_mail);
    else
        printf("  -    emails not checked (--check-emails=no, or souk-notification at %s does not "
               "answer)\n",
               ld->notification->url);
}

/* ---- CPU of other processes (--cpu-pids) ------------------------------------------- */

typedef struct cpu_watch_s {
    char name[64];
    long pid;
    double t0, t1; /* seconds of user + system time */
} cpu_watch_t;

/* utime + stime of pid in seconds, or -1. */
static double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)(ut + st) / (double)(hz > 0 ? hz : 100);
}

/* Parses "name=pid,name=pid"; returns how many (at most max), -1 if malformed. */
static int cpu_parse(const char *list, cpu_watch_t *w, int max)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p || n >= max || (size_t)(eq - p) >= sizeof w[n].name) return -1;
        memcpy(w[n].name, p, (size_t)(eq - p));
        w[n].name[eq - p] = '\0';
        char *end;
        w[n].pid = strtol(eq + 1, &end, 10);
        if (end != p + len || w[n].pid <= 0) return -1;
        n++;
        p = comma ? comma + 1 : p + len;
    }
    return n;
}

/* ---- the command ------------------------------------------------------------------- */

static int probe(ld_pool_t *p)
{
    char err[256];
    hc_resp_t r;
    if (hc_request(p->url, "GET", "/health", NULL, NULL, 2000, &r, err, sizeof err) < 0) return 0;
    int ok = r.status == 200;
    hc_resp_release(&r);
    return ok;
}

static void make_run_id(char *out, size_t outsz)
{
    unsigned char r[4] = {0};
    FILE *f = fopen("/dev/urandom", "re");
    if (!f || fread(r, 1, sizeof r, f) != sizeof r) {
        int64_t t = sk_wall_ms() ^ ((int64_t)getpid() << 16);
        memcpy(r, &t, sizeof r);
    }
    if (f) fclose(f);
    snprintf(out, outsz, "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
}

static void write_json(ld_t *ld, const char *path, cJSON *o)
{
    char *s = cJSON_Print(o);
    FILE *f = s ? fopen(path, "we") : NULL;
    if (!f || fputs(s, f) < 0 || fputc('\n', f) < 0) fprintf(stderr, "souk load: cannot write %s\n", path);
    if (f) fclose(f);
    cJSON_free(s);
    (void)ld;
}

int cmd_load(int argc, char **argv)
{
    load_cfg_t cfg;
    ld_t ld;
    char err[600], email[256], password[256];
    int rc = 2;
    memset(&cfg, 0, sizeof cfg);
    memset(&ld, 0, sizeof ld);
    sk_map_init(&ld.by_id);
    sk_map_init(&ld.tickets);
    int64_t *lat_post = NULL, *lat_conf = NULL, *lat_seen = NULL;
    cpu_watch_t cpu[32];
    int ncpu = 0;
    double self_t0 = 0;
    cJSON *js = NULL;

    switch (sk_conf_load(&load_prog, load_conf, &cfg, argc, argv, NULL, NULL, err, sizeof err)) {
    case SK_CONF_EXIT:
        rc = 0;
        goto out;
    case SK_CONF_ERROR:
        fprintf(stderr, "souk load: %s\n", err);
        goto out;
    }
    ld.cfg = &cfg;
    if (!strcmp(cfg.pay, "auto"))
        ld.pay_mode = 0;
    else if (!strcmp(cfg.pay, "card"))
        ld.pay_mode = 1;
    else if (!strcmp(cfg.pay, "none"))
        ld.pay_mode = 2;
    else {
        fprintf(stderr, "souk load: --pay is auto, card or none, not '%s'\n", cfg.pay);
        goto out;
    }
    if (!strcmp(cfg.mode, "any") || !strcmp(cfg.mode, "ticket"))
        ld.by_ticket = !strcmp(cfg.mode, "ticket");
    else {
        fprintf(stderr, "souk load: --mode is any or ticket, not '%s'\n", cfg.mode);
        goto out;
    }
    char *end = NULL;
    ld.oversell = strtod(cfg.oversell, &end);
    if (!end || *end || end == cfg.oversell || ld.oversell < 0 || ld.oversell > 100) {
        fprintf(stderr, "souk load: --oversell is a fraction from 0 to 100, not '%s'\n",
                cfg.oversell);
        goto out;
    }
    int emails_flag; /* 1 yes, 0 no, -1 auto */
    if (!strcmp(cfg.check_emails, "auto"))
        emails_flag = -1;
    else if (!strcmp(cfg.check_emails, "yes") || !strcmp(cfg.check_emails, "on") ||
             !strcmp(cfg.check_emails, "1") || !strcmp(cfg.check_emails, "true"))
        emails_flag = 1;
    else if (!strcmp(cfg.check_emails, "no") || !strcmp(cfg.check_emails, "off") ||
             !strcmp(cfg.check_emails, "0") || !strcmp(cfg.check_emails, "false"))
        emails_flag = 0;
    else {
        fprintf(stderr, "souk load: --check-emails is yes, no or auto, not '%s'\n",
                cfg.check_emails);
        goto out;
    }
    if ((ncpu = cpu_parse(cfg.cpu_pids, cpu, 32)) < 0) {
        fprintf(stderr, "souk load: --cpu-pids is NAME=PID,... (at most 32), not '%s'\n",
                cfg.cpu_pids);
        goto out;
    }
    if (*cfg.admin_email) {
        snprintf(email, sizeof email, "%s", cfg.admin_email);
        snprintf(password, sizeof password, "%s", cfg.admin_password);
    } else if (read_credentials(cfg.admin_credentials, email, sizeof email, password,
                                sizeof password, err, sizeof err) < 0) {
        fprintf(stderr, "souk load: %s (give --admin-email/--admin-password or --admin-credentials)\n",
                err);
        goto out;
    }

    ld.base = event_base_new();
    if (!ld.base) {
        fprintf(stderr, "souk load: cannot make an event base\n");
        goto out;
    }
    int nconn = (int)cfg.connections;
    if (!nconn) nconn = cfg.rate ? 64 : (int)(cfg.concurrency + 4 < 16 ? 16 : cfg.concurrency + 4);
    const char *urls[5] = {cfg.auth_url, cfg.catalog_url, cfg.booking_url, cfg.payment_url,
                           cfg.notification_url};
    const char *names[5] = {"auth", "catalog", "booking", "payment", "notification"};
    for (int i = 0; i < 5; i++) {
        /* the setup and read-back pools need few connections */
        int n = i == 2 || i == 3 ? nconn : (nconn < 32 ? nconn : 32);
        if (pool_init(&ld, &ld.pools[i], names[i], *cfg.gateway ? cfg.gateway : urls[i], n,
                      (int)cfg.request_timeout_s, err, sizeof err) < 0) {
            fprintf(stderr, "souk load: %s\n", err);
            goto out;
        }
    }
    ld.auth = &ld.pools[0];
    ld.catalog = &ld.pools[1];
    ld.booking = &ld.pools[2];
    ld.payment = &ld.pools[3];
    ld.notification = &ld.pools[4];
    ld.check_emails = emails_flag == 1 || (emails_flag < 0 && probe(ld.notification));
    ld.tty = isatty(2);
    make_run_id(ld.run, sizeof ld.run);
    ld.tick_ev = event_new(ld.base, -1, EV_PERSIST, tick_cb, &ld);
    ld.launch_ev = evtimer_new(ld.base, launch_cb, &ld);
    if (*cfg.brokers) {
        if (watch_start(&ld, cfg.brokers, err, sizeof err) < 0) {
            fprintf(stderr, "souk load: --brokers: %s\n", err);
            goto out;
        }
        if (cfg.poll_ms < 1000) cfg.poll_ms = 1000;
    }
    struct timeval tick = {cfg.poll_ms / 1000, (cfg.poll_ms % 1000) * 1000};
    event_add(ld.tick_ev, &tick);

    /* -- setup -- */
    int64_t t_setup = now_us();
    ld.nbk = (int)cfg.bookings;
    ld.ntickets = (int)((double)ld.nbk / (1.0 + ld.oversell) + 0.999999);
    if (ld.ntickets < 1) ld.ntickets = 1;
    ld.ncats = (int)((ld.ntickets + cfg.tickets_per_catalog - 1) / cfg.tickets_per_catalog);
    ld.nusers = (int)(cfg.users ? cfg.users : cfg.concurrency);
    if (ld.nusers > ld.nbk) ld.nusers = ld.nbk;
    printf("souk load: run %s: %d bookings (%s), pay %s%s, %d users, %d catalogs, %d tickets%s\n",
           ld.run, ld.nbk, ld.by_ticket ? "by ticket" : "any ticket of a catalog", cfg.pay,
           ld.pay_mode == 1 && cfg.decline_percent ? " (some declined)" : "", ld.nusers, ld.ncats,
           ld.ntickets, ld.oversell > 0 ? " (oversold)" : "");
    if (cfg.rate)
        printf("  open loop: %" PRId64 " bookings/s offered\n", cfg.rate);
    else
        printf("  closed loop: %" PRId64 " bookings in flight\n", cfg.concurrency);
    printf("  %s\n", *cfg.gateway ? "through the gateway" : "to each service directly");
    fflush(stdout);

    login_ctx_t alc;
    login(&ld, email, password, &ld.admin_token, &alc);
    ld_run(&ld, NULL, 0);
    if (!ld.admin_token) {
        fprintf(stderr, "souk load: cannot sign in as %s at %s: %s\n", email, ld.auth->url,
                ld.first_error);
        goto out;
    }
    ld.users = sk_calloc((size_t)ld.nusers, sizeof *ld.users);
    run_batch(&ld, ld.nusers, 8, issue_user);
    ld.cats = sk_calloc((size_t)ld.ncats, sizeof *ld.cats);
    for (int k = 0; k < ld.ncats; k++) {
        int left = ld.ntickets - k * (int)cfg.tickets_per_catalog;
        ld.cats[k].ntickets = left < cfg.tickets_per_catalog ? left : (int)cfg.tickets_per_catalog;
    }
    run_batch(&ld, ld.ncats, 8, issue_catalog);
    if (!ld.setup_errors && ld.by_ticket) run_batch(&ld, ld.ncats, 8, issue_tickets_setup);
    if (ld.setup_errors) {
        fprintf(stderr, "souk load: setup failed (%d errors): %s\n", ld.setup_errors, ld.first_error);
        goto out;
    }
    printf("setup: %d users, %d catalogs in %.1f s\n", ld.nusers, ld.ncats,
           (double)(now_us() - t_setup) / 1e6);
    fflush(stdout);

    /* -- the bookings -- */
    ld.bk = sk_calloc((size_t)ld.nbk, sizeof *ld.bk);
    for (int i = 0; i < ld.nbk; i++) {
        ld_booking_t *b = &ld.bk[i];
        int slot = (int)((int64_t)i * ld.ntickets / ld.nbk); /* a ticket's place */
        b->idx = i;
        b->user = i % ld.nusers;
        b->cat = slot / (int)cfg.tickets_per_catalog;
        b->ticket = ld.by_ticket ? slot % (int)cfg.tickets_per_catalog : -1;
        b->status = ST_UNKNOWN;
        b->pay = -1;
        snprintf(b->key, sizeof b->key, "load-%s-%d", ld.run, i);
    }
    for (int i = 0; i < ncpu; i++)
        cpu[i].t0 = proc_cpu_s(cpu[i].pid);
    self_t0 = proc_cpu_s((long)getpid());
    ld.t_start_us = now_us();
    ld.deadline_us = ld.t_start_us + cfg.timeout_s * 1000000;
    ld.phase_bookings = 1;
    if (cfg.rate)
        launch_cb(-1, EV_TIMEOUT, &ld);
    else
        launch_more(&ld);
    ld_run(&ld, all_finished, ld.deadline_us);
    ld.phase_bookings = 0;
    for (int i = 0; i < ncpu; i++)
        cpu[i].t1 = proc_cpu_s(cpu[i].pid);
    double self_cpu = proc_cpu_s((long)getpid()) - self_t0;
    progress(&ld, 1);
    evtimer_del(ld.launch_ev);
    int timed_out = !all_finished(&ld);
    int64_t calls_booking = ld.booking->calls, calls_payment = ld.payment->calls;
    /* let the calls in flight (pays, polls) end */
    ld_run(&ld, NULL, now_us() + 10 * 1000000);

    /* -- figures -- */
    lat_post = sk_calloc((size_t)ld.nbk + 1, sizeof *lat_post);
    lat_conf = sk_calloc((size_t)ld.nbk + 1, sizeof *lat_conf);
    lat_seen = sk_calloc((size_t)ld.nbk + 1, sizeof *lat_seen);
    int npost = 0, nconf = 0, nseen = 0;
    int count[ST_N] = {0};
    for (int i = 0; i < ld.nbk; i++) {
        ld_booking_t *b = &ld.bk[i];
        if (b->id) lat_post[npost++] = b->t_accepted_us - b->t_post_us;
        if (b->state == BK_DONE) count[b->status]++;
        if (b->state == BK_DONE && b->status == ST_CONFIRMED) {
            int64_t l = b->updated_ms - b->t_post_wall_ms;
            if (b->updated_ms > 0) lat_conf[nconf++] = (l < 0 ? 0 : l) * 1000;
            lat_seen[nseen++] = b->t_seen_us - b->t_post_us;
        }
    }
    double elapsed = ld.t_last_done_us > ld.t_first_post_us
                         ? (double)(ld.t_last_done_us - ld.t_first_post_us) / 1e6
                         : 0;
    double posting = ld.t_last_post_us > ld.t_first_post_us
                         ? (double)(ld.t_last_post_us - ld.t_first_post_us) / 1e6
                         : 0;
    int terminal = count[ST_CONFIRMED] + count[ST_FAILED] + count[ST_EXPIRED] + count[ST_CANCELLED];
    dist_t dpost = dist_of(lat_post, npost, 1000.0), dconf = dist_of(lat_conf, nconf, 1000.0),
           dseen = dist_of(lat_seen, nseen, 1000.0);
    printf("bookings: %d accepted, %d rejected at POST (4xx), %d errors; %d terminal in %.2f s%s\n",
           ld.accepted, ld.rejected, ld.errors, terminal, elapsed,
           timed_out ? " (TIMED OUT)" : "");
    printf("  CONFIRMED %d  FAILED %d  EXPIRED %d  CANCELLED %d\n", count[ST_CONFIRMED],
           count[ST_FAILED], count[ST_EXPIRED], count[ST_CANCELLED]);
    printf("throughput: %.0f bookings/s (POST to terminal), %.0f confirmed/s", elapsed > 0 ? terminal / elapsed : 0.0,
           elapsed > 0 ? count[ST_CONFIRMED] / elapsed : 0.0);
    if (cfg.rate)
        printf("; offered %.0f/s (target %" PRId64 ")", posting > 0 ? (ld.nbk - 1) / posting : 0.0,
               cfg.rate);
    printf("\n");
    if (ld.retried404 || ld.transport_retries || ld.pay_errors)
        printf("  %d POSTs answered 404 while souk-booking learnt the catalogs (retried); %d requests "
               "resent after a connection error; %d pay errors\n",
               ld.retried404, ld.transport_retries, ld.pay_errors);
    printf("  requests while booking: %" PRId64 " to souk-booking (%d POST, the rest list polls), %" PRId64
           " to souk-payment (pay)\n",
           calls_booking, ld.accepted + ld.rejected + ld.errors + ld.retried404, calls_payment);
    printf("latency:\n");
    print_dist("POST /bookings answered (202)", &dpost);
    print_dist("POST -> CONFIRMED (booking's updatedAt)", &dconf);
    char seen_what[96];
    if (ld.wk) {
        snprintf(seen_what, sizeof seen_what, "POST -> CONFIRMED seen (booking topic)");
        print_dist(seen_what, &dseen);
        printf("  (updatedAt is the booking's commit of CONFIRMED, ms wall clock: exact on one machine,\n"
               "   here the time of its booking.confirmed event, written in that transaction; 'seen'\n"
               "   adds the outbox relay and one fetch: %" PRId64 " events read)\n",
               ld.watch_events);
    } else {
        snprintf(seen_what, sizeof seen_what, "POST -> CONFIRMED seen (polled every %" PRId64 " ms)",
                 cfg.poll_ms);
        print_dist(seen_what, &dseen);
        printf("  (updatedAt is the booking's commit of CONFIRMED, ms wall clock: exact on one machine;\n"
               "   'seen' adds up to %" PRId64 " ms of polling plus one list request)\n",
               cfg.poll_ms);
    }
    if (ncpu) {
        double wall = (double)(now_us() - ld.t_start_us) / 1e6, sum = 0;
        printf("CPU while the bookings ran (%.2f s), seconds and share of one core:\n ", wall);
        for (int i = 0; i < ncpu; i++) {
            double d = cpu[i].t0 >= 0 && cpu[i].t1 >= 0 ? cpu[i].t1 - cpu[i].t0 : -1;
            if (d >= 0) sum += d;
            if (d >= 0)
                printf(" %s %.2f (%.0f%%)", cpu[i].name, d, wall > 0 ? d * 100 / wall : 0);
            else
                printf(" %s ?", cpu[i].name);
        }
        printf("\n  total %.2f s = %.2f ms per booking; souk load itself %.2f s\n", sum,
               ld.nbk ? sum * 1000 / ld.nbk : 0, self_cpu);
    }
    if (ld.first_error[0]) printf("first error: %s\n", ld.first_error);
    fflush(stdout);

    /* -- invariants -- */
    verdict_t v;
    int64_t settle_deadline = now_us() + cfg.settle_s * 1000000;
    int round = 0;
    for (;; round++) {
        ld.first_error[0] = '\0';
        read_back(&ld, round);
        check(&ld, &v);
        if (!v.failures || !v.transient || v.failures > v.transient || now_us() >= settle_deadline)
            break;
        sleep_loop(&ld, 500);
    }
    if (round) printf("(checked %d times while releases, refunds and emails settled)\n", round + 1);
    report_checks(&ld, &v);
    int read_errors = ld.tickets_read_errors + ld.pay_read_errors + ld.mail_read_errors + ld.list_errors;
    if (read_errors)
        printf("  FAIL %d requests of the checks failed: %s\n", read_errors, ld.first_error);
    int ok = !v.failures && !read_errors && !timed_out && !ld.errors && !ld.pay_errors;
    if (ld.errors) printf("  FAIL %d bookings could not be made (5xx or no answer)\n", ld.errors);
    printf("result: %s\n", ok ? "ok" : "FAILED");
    fflush(stdout);

    if (*cfg.json) {
        js = cJSON_CreateObject();
        cJSON_AddStringToObject(js, "run", ld.run);
        cJSON_AddNumberToObject(js, "bookings", ld.nbk);
        cJSON_AddNumberToObject(js, "concurrency", cfg.rate ? 0 : (double)cfg.concurrency);
        cJSON_AddNumberToObject(js, "rate", (double)cfg.rate);
        cJSON_AddStringToObject(js, "pay", cfg.pay);
        cJSON_AddNumberToObject(js, "accepted", ld.accepted);
        cJSON_AddNumberToObject(js, "rejected", ld.rejected);
        cJSON_AddNumberToObject(js, "errors", ld.errors);
        for (int s = ST_CONFIRMED; s < ST_N; s++)
            cJSON_AddNumberToObject(js, st_names[s], count[s]);
        cJSON_AddNumberToObject(js, "elapsed_s", elapsed);
        cJSON_AddNumberToObject(js, "bookings_per_s", elapsed > 0 ? terminal / elapsed : 0);
        cJSON_AddNumberToObject(js, "confirmed_per_s", elapsed > 0 ? count[ST_CONFIRMED] / elapsed : 0);
        cJSON_AddNumberToObject(js, "offered_per_s", posting > 0 ? (ld.nbk - 1) / posting : 0);
        cJSON_AddNumberToObject(js, "poll_ms", (double)cfg.poll_ms);
        cJSON_AddItemToObject(js, "post_ms", dist_json(&dpost));
        cJSON_AddItemToObject(js, "confirm_ms", dist_json(&dconf));
        cJSON_AddItemToObject(js, "confirm_seen_ms", dist_json(&dseen));
        cJSON_AddBoolToObject(js, "emails_checked", ld.check_emails);
        cJSON *cj = cJSON_CreateObject();
        for (int i = 0; i < ncpu; i++)
            cJSON_AddNumberToObject(cj, cpu[i].name, cpu[i].t1 - cpu[i].t0);
        cJSON_AddNumberToObject(cj, "souk-load", self_cpu);
        cJSON_AddItemToObject(js, "cpu_s", cj);
        cJSON_AddBoolToObject(js, "ok", ok);
        write_json(&ld, cfg.json, js);
    }
    rc = ok ? 0 : 1;
out:
    cJSON_Delete(js);
    free(lat_post);
    free(lat_conf);
    free(lat_seen);
    if (ld.tick_ev) event_free(ld.tick_ev);
    if (ld.launch_ev) event_free(ld.launch_ev);
    for (int i = 0; i < 5; i++)
        pool_release(&ld.pools[i]);
    for (int i = 0; ld.bk && i < ld.nbk; i++) {
        free(ld.bk[i].id);
        free(ld.bk[i].ticket_id);
        free(ld.bk[i].reason);
    }
    free(ld.bk);
    for (int i = 0; ld.users && i < ld.nusers; i++) {
        free(ld.users[i].email);
        free(ld.users[i].id);
        free(ld.users[i].token);
    }
    free(ld.users);
    for (int k = 0; ld.cats && k < ld.ncats; k++) {
        for (int t = 0; ld.cats[k].tickets && t < ld.cats[k].ntickets; t++)
            free(ld.cats[k].tickets[t]);
        free(ld.cats[k].tickets);
        free(ld.cats[k].id);
    }
    free(ld.cats);
    for (sk_map_entry_t *e = sk_map_next(&ld.tickets, NULL); e; e = sk_map_next(&ld.tickets, e)) {
        ld_tkt_t *t = e->value;
        free(t->id);
        free(t->status);
        free(t->booking_id);
        free(t);
    }
    watch_stop(&ld);
    sk_map_release(&ld.tickets);
    sk_map_release(&ld.by_id);
    free(ld.admin_token);
    if (ld.base) event_base_free(ld.base);
    sk_conf_release(load_conf, &cfg);
    return rc;
}
