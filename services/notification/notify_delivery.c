/*
 * notify_delivery.c - the delivery outbox: sends PENDING notifications.
 *
 * A libevent timer ("the tick") runs when a handler queued something
 * (notify_kick), when a transfer finished, at the next row's due time, and
 * at least every --deliver-interval-ms.  Each tick, in short transactions:
 *
 *   1. WAITING rows whose catalog wait is over are rendered without the
 *      title (notify_promote);
 *   2. up to --deliver-batch due PENDING rows (fewer when SMTP transfers
 *      are in flight: at most --smtp-concurrency at once) become SENDING;
 *   3. each is sent: with --smtp-url through libcurl's multi interface,
 *      driven by this loop (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION +
 *      curl_multi_socket_action, the hiperfifo pattern), so the loop never
 *      waits for a mail server; without it, written as <id>.eml into
 *      <data-dir>/outbox/ (tmp file, fsync, rename: a reader never sees
 *      half a message);
 *   4. the outcome is recorded: SENT - with a notification.sent event
 *      (topic `notification`) emitted into the outbox in the same
 *      transaction, only when the row really moved SENDING -> SENT - or
 *      attempts + 1 and PENDING again
 *      after --smtp-backoff-ms * 2^(attempts-1) (at most
 *      --smtp-backoff-max-ms), or FAILED after --max-send-attempts or on a
 *      permanent refusal (an SMTP 5xx answer).
 *
 * At-least-once on the SMTP hop: a crash after the server accepted a
 * message and before SENT is committed leaves the row SENDING, and the
 * next start puts it back to PENDING, so that one message goes again - with
 * the same bytes, including the Message-ID derived from the event id, so a
 * receiver can drop it.  A graceful shutdown waits (drain "smtp") for the
 * transfers in flight; those still running when it times out are aborted
 * and go back to PENDING.
 */
#include "notify_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "sk_alloc.h"
#include "sk_clock.h"
#include "sk_fs.h"
#include "sk_log.h"

typedef struct transfer_s transfer_t;
typedef struct sock_s sock_t;

struct notify_s {
    svc_t *svc;
    const notify_conf_t *conf;
    char *from_addr;  /* bare address of --mail-from (SMTP MAIL FROM) */
    char *outbox_dir; /* <data-dir>/outbox (file mode) */
    int curl_ready;   /* curl_global_init() done */
    struct event *tick;
    CURLM *multi; /* SMTP mode */
    struct event *curl_timer;
    transfer_t *transfers; /* in flight */
    int inflight;
    sock_t *socks;
    int stopping; /* shutdown began: pick nothing more */
};

/* One SMTP transfer. */
struct transfer_s {
    transfer_t *prev, *next;
    notify_t *n;
    CURL *easy;
    char *id, *type;
    sk_buf_t msg;
    size_t off;
    struct curl_slist *rcpt;
    int64_t started_ms;
    char errbuf[CURL_ERROR_SIZE];
};

/* The libevent event of one socket libcurl watches. */
struct sock_s {
    sock_t *prev, *next;
    struct event *ev;
};

/* A PENDING row picked for sending. */
typedef struct picked_s {
    char *id, *type, *event_id, *to_addr, *to_name, *subject, *text, *html;
    int64_t created_at;
} picked_t;

static void picked_release(picked_t *p)
{
    free(p->id);
    free(p->type);
    free(p->event_id);
    free(p->to_addr);
    free(p->to_name);
    free(p->subject);
    free(p->text);
    free(p->html);
}

static notify_t *notify_of(svc_t *svc)
{
    return svc_data(svc);
}

static int smtp_mode(const notify_t *n)
{
    return n->conf->smtp_url && *n->conf->smtp_url;
}

static void schedule(notify_t *n, int64_t delay_ms)
{
    if (!n->tick || n->stopping) return;
    if (delay_ms < 0) delay_ms = 0;
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
    evtimer_add(n->tick, &tv);
}

void notify_kick(svc_t *svc)
{
    notify_t *n = notify_of(svc);
    if (n && n->tick && !n->stopping) event_active(n->tick, EV_TIMEOUT, 0);
}

/* ---- recording outcomes ------------------------------------------------------ */

static int64_t backoff_ms(const notify_conf_t *c, int64_t attempts)
{
    int64_t d = c->smtp_backoff_ms;
    for (int64_t i = 1; i < attempts && d < c->smtp_backoff_max_ms; i++)
        d *= 2;
    return d < c->smtp_backoff_max_ms ? d : c->smtp_backoff_max_ms;
}

/*
 * Emits notification.sent for notification id (just marked SENT at sent_ms)
 * into the outbox, inside the caller's transaction on svc_db().  Correlated
 * with the notified event's flow when its correlation id was stored.
 * Returns 0 or -1 (logged; the caller rolls back).
 */
static int emit_sent(notify_t *n, const char *id, int64_t sent_ms)
{
    sqlite3 *db = svc_db(n->svc);
    char err[256] = "", when[SK_RFC3339_LEN];
    sqlite3_stmt *st =
        sto_query(db,
                  "SELECT event_id, user_id, type, to_addr, booking_id, correlation_id"
                  " FROM notifications WHERE id = ?",
                  "t", id);
    if (!st) return -1;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sto_done(st);
        sk_error("notification", "notification %s: row vanished before notification.sent", id);
        return -1;
    }
    const char *event_id = sto_col_text(st, 0), *user_id = sto_col_text(st, 1),
               *type = sto_col_text(st, 2), *to = sto_col_text(st, 3),
               *booking_id = sto_col_text(st, 4);
    char *correlation_id = sto_col_dup(st, 5);
    cJSON *data = cJSON_CreateObject();
    if (!data) abort(); /* out of memory */
    cJSON_AddStringToObject(data, "notificationId", id);
    cJSON_AddStringToObject(data, "eventId", event_id ? event_id : "");
    cJSON_AddStringToObject(data, "userId", user_id ? user_id : "");
    cJSON_AddStringToObject(data, "type", type ? type : "");
    cJSON_AddStringToObject(data, "to", to ? to : "");
    if (booking_id)
        cJSON_AddStringToObject(data, "bookingId", booking_id);
    else
        cJSON_AddNullToObject(data, "bookingId");
    cJSON_AddStringToObject(data, "sentAt", sk_rfc3339_ms(sent_ms, when));
    sto_done(st);
    int rc = svc_emit(n->svc, "notification.sent", correlation_id, data, err, sizeof err);
    if (rc < 0) sk_error("notification", "notification %s: notification.sent: %s", id, err);
    free(correlation_id);
    return rc < 0 ? -1 : 0;
}

/*
 * One attempt of notification id ended: ok, or failed with why (permanent:
 * no point retrying).  Runs inside a transaction the caller holds; returns
 * 0 or -1 (the caller rolls back: the row stays SENDING, and the next start
 * puts it back to PENDING).
 */
static int apply_outcome(notify_t *n, const char *id, const char *type, int ok, const char *why,
                         int permanent)
{
    sqlite3 *db = svc_db(n->svc);
    int64_t now = sk_wall_ms(), attempts = 0;
    const char *labels[] = {"type", type, NULL};
    const char *state = "SENT";

    if (sto_query_i64(db, &attempts,
                      "SELECT attempts FROM notifications WHERE id = ? AND state = 'SENDING'", "t",
                      id) != 1)
        return -1;
    attempts++;
    if (ok) {
        int changed =
            sto_exec(db,
                     "UPDATE notifications SET state = 'SENT', attempts = ?, sent_at = ?, "
                     "last_error = NULL"
                     " WHERE id = ? AND state = 'SENDING'",
                     "IIt", attempts, now, id);
        if (changed < 0) return -1;
        /* Only the transition to SENT announces the email: a row marked
         * SENT already changes nothing and emits nothing. */
        if (changed == 1 && emit_sent(n, id, now) < 0) return -1;
    } else {
        int final = permanent || attempts >= n->conf->max_send_attempts;
        state = final ? "FAILED" : "PENDING";
        if (sto_exec(db,
                     "UPDATE notifications SET state = ?, attempts = ?, next_attempt_at = ?, "
                     "last_error = ?"
                     " WHERE id = ? AND state = 'SENDING'",
                     "tIItt", state, attempts, final ? now : now + backoff_ms(n->conf, attempts),
                     why, id) < 0)
            return -1;
    }

    if (ok) {
        svc_metric_counter_add(n->svc, "notifications_sent_total", labels, 1);
        sk_info("notification", "notification %s (%s) sent (attempt %lld)", id, type,
                (long long)attempts);
    } else {
        svc_metric_counter_add(n->svc, "notification_send_errors_total", labels, 1);
        if (strcmp(state, "FAILED") == 0) {
            svc_metric_counter_add(n->svc, "notifications_failed_total", labels, 1);
            sk_error("notification", "notification %s (%s) FAILED after %lld attempts: %s", id,
                     type, (long long)attempts, why);
        } else {
            sk_warn("notification",
                    "notification %s (%s) attempt %lld failed, retrying in %lld ms: %s", id, type,
                    (long long)attempts, (long long)backoff_ms(n->conf, attempts), why);
        }
    }
    return 0;
}

/* apply_outcome() in its own transaction (callbacks never run inside one). */
static void record_outcome(notify_t *n, const char *id, const char *type, int ok, const char *why,
                           int permanent)
{
    sqlite3 *db = svc_db(n->svc);
    if (sto_begin(db) < 0 || apply_outcome(n, id, type, ok, why, permanent) < 0 ||
        svc_commit(n->svc) < 0) {
        sk_error("notification", "notification %s: cannot record the outcome: %s", id,
                 sqlite3_errmsg(db));
        sto_rollback(db);
    }
}

/* ---- file mode ---------------------------------------------------------------- */

/* Writes the message as <outbox>/<id>.eml atomically.  Returns 0 or -1 (why). */
static int write_eml(notify_t *n, const char *id, const sk_buf_t *msg, char *why, size_t whysz)
{
    sk_buf_t tmp = SK_BUF_INIT, final = SK_BUF_INIT;
    sk_buf_init(&tmp, 256);
    sk_buf_init(&final, 256);
    sk_buf_addf(&tmp, "%s/.%s.eml.tmp", n->outbox_dir, id);
    sk_buf_addf(&final, "%s/%s.eml", n->outbox_dir, id);
    int rc = -1;
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, whysz, "open %s: %s", tmp.data, strerror(errno));
        goto out;
    }
    if (sk_write_all(fd, msg->data, msg->len) < 0 || fsync(fd) < 0) {
        snprintf(why, whysz, "write %s: %s", tmp.data, strerror(errno));
        close(fd);
        unlink(tmp.data);
        goto out;
    }
    close(fd);
    if (rename(tmp.data, final.data) < 0) {
        snprintf(why, whysz, "rename to %s: %s", final.data, strerror(errno));
        unlink(tmp.data);
        goto out;
    }
    rc = 0; /* the caller syncs the directory once per batch */
out:
    sk_buf_release(&tmp);
    sk_buf_release(&final);
    return rc;
}

/* ---- SMTP mode: libcurl multi on the libevent loop ------------------------------ */

static void transfer_free(notify_t *n, transfer_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        n->transfers = t->next;
    if (t->next) t->next->prev = t->prev;
    n->inflight--;
    if (t->easy) curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->rcpt);
    sk_buf_release(&t->msg);
    free(t->id);
    free(t->type);
    free(t);
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    transfer_t *t = arg;
    size_t want = size * nitems, left = t->msg.len - t->off;
    size_t k = want < left ? want : left;
    memcpy(buf, t->msg.data + t->off, k);
    t->off += k;
    return k;
}

/* Finished transfers: record each outcome, then look for more work. */
static void check_done(notify_t *n)
{
    CURLMsg *m;
    int left, any = 0;
    while ((m = curl_multi_info_read(n->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result;
        transfer_t *t = NULL;
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        curl_multi_remove_handle(n->multi, e);
        if (!t) continue;
        char why[CURL_ERROR_SIZE + 64];
        if (res != CURLE_OK)
            snprintf(why, sizeof why, "%s%s%s", curl_easy_strerror(res), t->errbuf[0] ? ": " : "",
                     t->errbuf);
        record_outcome(n, t->id, t->type, res == CURLE_OK, res == CURLE_OK ? NULL : why,
                       res != CURLE_OK && code >= 500 && code < 600);
        svc_metric_observe(n->svc, "notification_send_seconds", NULL,
                           (double)(sk_mono_ms() - t->started_ms) / 1000.0);
        transfer_free(n, t);
        any = 1;
    }
    if (any) schedule(n, 0);
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    notify_t *n = arg;
    int running = 0;
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(n->multi, fd, action, &running);
    check_done(n);
    if (running <= 0 && evtimer_pending(n->curl_timer, NULL)) evtimer_del(n->curl_timer);
}

static void on_curl_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    notify_t *n = arg;
    int running = 0;
    curl_multi_socket_action(n->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(n);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
    (void)multi;
    notify_t *n = arg;
    if (timeout_ms < 0) {
        evtimer_del(n->curl_timer);
        return 0;
    }
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    evtimer_add(n->curl_timer, &tv);
    return 0;
}

static void sock_free(notify_t *n, sock_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        n->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    event_free(s->ev);
    free(s);
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
    (void)e;
    notify_t *n = arg;
    sock_t *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(n->multi, fd, NULL);
            sock_free(n, s);
        }
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (!s) {
        s = sk_calloc(1, sizeof *s);
        s->next = n->socks;
        if (n->socks) n->socks->prev = s;
        n->socks = s;
        curl_multi_assign(n->multi, fd, s);
    } else {
        event_free(s->ev);
    }
    s->ev = event_new(svc_base(n->svc), fd, kind, on_sock_event, n);
    if (!s->ev) abort(); /* out of memory */
    event_add(s->ev, NULL);
    return 0;
}

/* Starts the SMTP transfer of one picked row; takes msg.  On a setup
 * failure the attempt is recorded as failed. */
static void smtp_start(notify_t *n, const picked_t *p, sk_buf_t *msg)
{
    const notify_conf_t *c = n->conf;
    transfer_t *t = sk_calloc(1, sizeof *t);
    t->n = n;
    t->id = sk_strdup(p->id);
    t->type = sk_strdup(p->type);
    t->msg = *msg;
    *msg = (sk_buf_t)SK_BUF_INIT;
    t->started_ms = sk_mono_ms();
    t->next = n->transfers;
    if (n->transfers) n->transfers->prev = t;
    n->transfers = t;
    n->inflight++;

    sk_buf_t rcpt = SK_BUF_INIT, from = SK_BUF_INIT;
    sk_buf_init(&rcpt, 64);
    sk_buf_init(&from, 64);
    sk_buf_addf(&rcpt, "<%s>", p->to_addr);
    sk_buf_addf(&from, "<%s>", n->from_addr);
    t->rcpt = curl_slist_append(NULL, rcpt.data);
    t->easy = curl_easy_init();
    int ok = t->easy && t->rcpt;
    if (ok) {
        CURL *e = t->easy;
        ok = curl_easy_setopt(e, CURLOPT_URL, c->smtp_url) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps") == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_MAIL_FROM, from.data) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_MAIL_RCPT, t->rcpt) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_READDATA, t) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->msg.len) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->smtp_timeout_ms) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                              (long)(c->smtp_timeout_ms < 5000 ? c->smtp_timeout_ms : 5000)) ==
                 CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)t) == CURLE_OK;
        if (ok && c->smtp_user && *c->smtp_user)
            ok = curl_easy_setopt(e, CURLOPT_USERNAME, c->smtp_user) == CURLE_OK &&
                 curl_easy_setopt(e, CURLOPT_PASSWORD, c->smtp_password ? c->smtp_password : "") ==
                     CURLE_OK;
        if (ok) ok = curl_multi_add_handle(n->multi, e) == CURLM_OK;
    }
    sk_buf_release(&rcpt);
    sk_buf_release(&from);
    if (!ok) {
        record_outcome(n, t->id, t->type, 0, "could not set up the SMTP transfer", 0);
        transfer_free(n, t);
    }
}

/* ---- the tick ------------------------------------------------------------------ */

/* Moves up to max due PENDING rows to SENDING (one transaction) and copies
 * them into *out.  Returns how many, or -1. */
static int pick(notify_t *n, int max, int64_t now, picked_t **out)
{
    sqlite3 *db = svc_db(n->svc);
    picked_t *rows = NULL;
    int k = 0, step;
    *out = NULL;
    if (sto_begin(db) < 0) goto fail;
    sqlite3_stmt *st =
        sto_query(db,
                  "SELECT id, type, event_id, to_addr, to_name, subject, text, html, created_at"
                  " FROM notifications WHERE state = 'PENDING' AND next_attempt_at <= ?"
                  " ORDER BY next_attempt_at, id LIMIT ?",
                  "Ii", now, max);
    if (!st) goto fail;
    rows = sk_calloc((size_t)max, sizeof *rows);
    while (k < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
        picked_t *p = &rows[k++];
        const char *cols[8];
        for (int i = 0; i < 8; i++)
            cols[i] = sto_col_text(st, i);
        p->id = sk_strdup(cols[0] ? cols[0] : "");
        p->type = sk_strdup(cols[1] ? cols[1] : "");
        p->event_id = sk_strdup(cols[2] ? cols[2] : "");
        p->to_addr = cols[3] ? sk_strdup(cols[3]) : NULL;
        p->to_name = cols[4] ? sk_strdup(cols[4]) : NULL;
        p->subject = cols[5] ? sk_strdup(cols[5]) : NULL;
        p->text = cols[6] ? sk_strdup(cols[6]) : NULL;
        p->html = cols[7] ? sk_strdup(cols[7]) : NULL;
        p->created_at = sqlite3_column_int64(st, 8);
    }
    sto_done(st);
    for (int i = 0; i < k; i++)
        if (sto_exec(
                db, "UPDATE notifications SET state = 'SENDING' WHERE id = ? AND state = 'PENDING'",
                "t", rows[i].id) < 0)
            goto fail;
    if (sto_commit(db) < 0) goto fail;
    *out = rows;
    return k;
fail:
    sk_error("notification", "picking due notifications: %s", sqlite3_errmsg(db));
    sto_rollback(db);
    for (int i = 0; i < k; i++)
        picked_release(&rows[i]);
    free(rows);
    return -1;
}

/* The message of a picked row; -1 (why) when it cannot be built. */
static int build(notify_t *n, const picked_t *p, sk_buf_t *msg, char *why, size_t whysz)
{
    mail_msg_t m = {
        .from = n->conf->mail_from,
        .to_name = p->to_name,
        .to_addr = p->to_addr,
        .subject = p->subject,
        .text = p->text,
        .html = p->html,
        .date_ms = p->created_at,
        .event_id = p->event_id,
    };
    return mail_message_build(&m, msg, why, whysz);
}

/* SMTP: each picked row becomes a transfer (outcomes come as they end). */
static void send_smtp(notify_t *n, picked_t *rows, int k)
{
    for (int i = 0; i < k; i++) {
        sk_buf_t msg = SK_BUF_INIT;
        char why[256] = "";
        sk_buf_init(&msg, 4096);
        if (build(n, &rows[i], &msg, why, sizeof why) < 0)
            record_outcome(n, rows[i].id, rows[i].type, 0, why, 1);
        else
            smtp_start(n, &rows[i], &msg);
        sk_buf_release(&msg);
    }
}

/* Files: write the batch, sync the directory once, record every outcome in
 * one transaction. */
static void send_files(notify_t *n, picked_t *rows, int k)
{
    sqlite3 *db = svc_db(n->svc);
    typedef struct {
        int ok, permanent;
        char why[256];
    } result_t;
    result_t *res = sk_calloc((size_t)k, sizeof *res);
    int written = 0;
    for (int i = 0; i < k; i++) {
        sk_buf_t msg = SK_BUF_INIT;
        sk_buf_init(&msg, 4096);
        if (build(n, &rows[i], &msg, res[i].why, sizeof res[i].why) < 0) {
            res[i].permanent = 1;
        } else if (write_eml(n, rows[i].id, &msg, res[i].why, sizeof res[i].why) == 0) {
            res[i].ok = 1;
            written++;
        }
        sk_buf_release(&msg);
    }
    if (written && sk_fsync_dir(n->outbox_dir) < 0)
        sk_warn("notification", "fsync %s: %s", n->outbox_dir, strerror(errno));
    int rc = sto_begin(db);
    for (int i = 0; i < k && rc == 0; i++)
        rc = apply_outcome(n, rows[i].id, rows[i].type, res[i].ok, res[i].ok ? NULL : res[i].why,
                           res[i].permanent);
    if (rc < 0 || svc_commit(n->svc) < 0) {
        sk_error("notification", "cannot record the outcome of %d notifications: %s", k,
                 sqlite3_errmsg(db));
        sto_rollback(db);
    }
    free(res);
}

/* When the next row is due (PENDING or WAITING), relative to now; capped at
 * the interval. */
static int64_t next_delay(notify_t *n, int64_t now)
{
    int64_t when, delay = n->conf->deliver_interval_ms;
    int r = sto_query_i64(
        svc_db(n->svc), &when,
        "SELECT next_attempt_at FROM notifications WHERE state IN ('PENDING', 'WAITING')"
        " ORDER BY next_attempt_at LIMIT 1",
        "");
    if (r == 1 && when - now < delay) delay = when - now;
    return delay < 0 ? 0 : delay;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    notify_t *n = arg;
    sqlite3 *db = svc_db(n->svc);
    int64_t now = sk_wall_ms();
    char err[256] = "";
    int trouble = 0;

    if (n->stopping || svc_shutting_down(n->svc)) return;
    if (sto_in_txn(db)) { /* not expected: callbacks do not nest in a transaction */
        schedule(n, 50);
        return;
    }

    /* 1. the catalog wait is over for some WAITING rows */
    if (sto_begin(db) == 0) {
        if (notify_promote(db, n->conf->catalog_wait_ms, NULL, NULL, NULL, now, err, sizeof err) <
                0 ||
            sto_commit(db) < 0) {
            sk_error("notification", "rendering waiting notifications: %s",
                     err[0] ? err : sqlite3_errmsg(db));
            sto_rollback(db);
            trouble = 1;
        }
    } else {
        trouble = 1;
    }

    /* 2. pick what is due, 3. send it */
    int max = (int)n->conf->deliver_batch;
    if (smtp_mode(n) && n->conf->smtp_concurrency - n->inflight < max)
        max = (int)n->conf->smtp_concurrency - n->inflight;
    int k = 0;
    if (max > 0) {
        picked_t *rows = NULL;
        k = pick(n, max, now, &rows);
        if (k < 0) trouble = 1;
        if (k > 0 && smtp_mode(n))
            send_smtp(n, rows, k);
        else if (k > 0)
            send_files(n, rows, k);
        for (int i = 0; i < k; i++)
            picked_release(&rows[i]);
        free(rows);
    }

    /* 4. when to look again: at once after a full batch; when the next row
     * is due; at the interval when the slots are busy (a finished transfer
     * kicks) or something went wrong. */
    if (trouble || max <= 0)
        schedule(n, n->conf->deliver_interval_ms);
    else if (k == max)
        schedule(n, 0);
    else
        schedule(n, next_delay(n, sk_wall_ms()));
}

/* ---- metrics, drain, hooks -------------------------------------------------------- */

static void collect(svc_t *svc, void *arg)
{
    (void)arg;
    static const char *const states[] = {"WAITING", "PENDING", "SENDING", "SENT", "FAILED", NULL};
    for (size_t i = 0; states[i]; i++) {
        int64_t count = 0;
        if (sto_query_i64(svc_db(svc), &count, "SELECT COUNT(*) FROM notifications WHERE state = ?",
                          "t", states[i]) < 0)
            continue;
        const char *labels[] = {"state", states[i], NULL};
        svc_metric_gauge_set(svc, "notifications", labels, (double)count);
    }
}

static size_t drain(svc_t *svc, void *arg)
{
    (void)arg;
    notify_t *n = notify_of(svc);
    n->stopping = 1;
    if (n->tick) evtimer_del(n->tick);
    return (size_t)n->inflight;
}

int notify_init(svc_t *svc, char *err, size_t errsz)
{
    notify_t *n = sk_calloc(1, sizeof *n);
    n->svc = svc;
    n->conf = (const notify_conf_t *)svc_desc(svc)->conf;
    svc_set_data(svc, n);

    char *from_name = NULL;
    if (mail_addr_split(n->conf->mail_from, &from_name, &n->from_addr, err, errsz) < 0) {
        sk_errf(err, errsz, "--mail-from %s: expected \"Name <user@host>\" or user@host",
                n->conf->mail_from);
        return -1;
    }
    free(from_name);
    if (smtp_mode(n)) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            sk_errf(err, errsz, "curl_global_init failed");
            return -1;
        }
        n->curl_ready = 1;
    } else {
        sk_buf_t dir = SK_BUF_INIT;
        sk_buf_init(&dir, 256);
        sk_buf_addf(&dir, "%s/outbox", svc_conf(svc)->data_dir);
        n->outbox_dir = sk_buf_detach(&dir, NULL);
        if (sk_mkdir_p(n->outbox_dir, 0755) < 0) {
            sk_errf(err, errsz, "cannot create %s: %s", n->outbox_dir, strerror(errno));
            return -1;
        }
    }
    svc_metric_help(svc, "notifications", "notifications by delivery state");
    svc_metric_help(svc, "notifications_sent_total",
                    "emails delivered (SMTP accepted or .eml written), by type");
    svc_metric_help(svc, "notifications_failed_total", "emails given up on (FAILED), by type");
    svc_metric_help(svc, "notification_send_errors_total", "failed delivery attempts, by type");
    svc_metric_help(svc, "notification_send_seconds", "duration of one SMTP transfer");
    svc_metrics_add_collector(svc, collect, NULL);
    svc_add_drain(svc, "smtp", drain, NULL);
    sk_info("notification", "delivery: %s", smtp_mode(n) ? "SMTP" : "files in <data-dir>/outbox");
    return 0;
}

int notify_start_events(svc_t *svc, char *err, size_t errsz)
{
    notify_t *n = notify_of(svc);
    sqlite3 *db = svc_db(svc);
    struct event_base *base = svc_base(svc);

    /* Transfers cut short by a crash are sent again (at-least-once). */
    int reset =
        sto_exec(db, "UPDATE notifications SET state = 'PENDING' WHERE state = 'SENDING'", "");
    if (reset < 0) {
        sk_errf(err, errsz, "notifications: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (reset > 0)
        sk_warn("notification",
                "%d notifications were being sent when the service stopped; sending "
                "them again",
                reset);

    n->tick = evtimer_new(base, on_tick, n);
    if (!n->tick) {
        sk_errf(err, errsz, "evtimer_new failed");
        return -1;
    }
    if (smtp_mode(n)) {
        n->multi = curl_multi_init();
        n->curl_timer = evtimer_new(base, on_curl_timeout, n);
        if (!n->multi || !n->curl_timer) {
            sk_errf(err, errsz, "curl_multi_init failed");
            return -1;
        }
        curl_multi_setopt(n->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
        curl_multi_setopt(n->multi, CURLMOPT_SOCKETDATA, n);
        curl_multi_setopt(n->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
        curl_multi_setopt(n->multi, CURLMOPT_TIMERDATA, n);
    }
    schedule(n, 0);
    return 0;
}

void notify_stop_events(svc_t *svc)
{
    notify_t *n = notify_of(svc);
    if (!n) return;
    n->stopping = 1;
    /* Transfers still in flight (the drain timed out) are aborted; their
     * rows go back to PENDING for the next start. */
    while (n->transfers) {
        transfer_t *t = n->transfers;
        sk_warn("notification",
                "notification %s: transfer aborted by the shutdown; it is sent at the "
                "next start",
                t->id);
        curl_multi_remove_handle(n->multi, t->easy);
        transfer_free(n, t);
    }
    if (svc_db(svc))
        (void)sto_exec(svc_db(svc),
                       "UPDATE notifications SET state = 'PENDING' WHERE state = 'SENDING'", "");
    if (n->multi) {
        curl_multi_cleanup(n->multi);
        n->multi = NULL;
    }
    while (n->socks)
        sock_free(n, n->socks);
    if (n->curl_timer) {
        event_free(n->curl_timer);
        n->curl_timer = NULL;
    }
    if (n->tick) {
        event_free(n->tick);
        n->tick = NULL;
    }
}

void notify_fini(svc_t *svc)
{
    notify_t *n = notify_of(svc);
    if (!n) return;
    if (n->curl_ready) curl_global_cleanup();
    free(n->from_addr);
    free(n->outbox_dir);
    free(n);
    svc_set_data(svc, NULL);
}
