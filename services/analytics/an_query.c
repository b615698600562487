/*
 * an_query.c - the read side: search events and log lines (FTS5 + filters,
 * newest first, with the total count), one correlation id's timeline, and
 * the Elasticsearch bulk export.
 *
 * SQL is assembled from fixed clauses only ("AND e.type = ?"); every value
 * is bound.  Each combination of clauses is one cached statement.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_clock.h"
#include "sk_log.h"

#define TIMELINE_MAX 2000 /* events + log lines in one timeline at most */

/* ---- shared helpers ------------------------------------------------------------ */

char *an_fts_query(const char *q)
{
    if (!q) return NULL;
    sk_buf_t b = SK_BUF_INIT;
    sk_buf_init(&b, strlen(q) * 2 + 8);
    const char *p = q;
    int words = 0;
    while (*p) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *w = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        size_t n = (size_t)(p - w);
        int prefix = 0;
        while (n && w[n - 1] == '*') {
            prefix = 1;
            n--;
        }
        /* Only words with a letter or digit make a phrase FTS5 accepts. */
        int alnum = 0;
        for (size_t i = 0; i < n; i++)
            if (isalnum((unsigned char)w[i]) || (unsigned char)w[i] >= 0x80) alnum = 1;
        if (!alnum) continue;
        if (words++) sk_buf_addc(&b, ' ');
        sk_buf_addc(&b, '"');
        for (size_t i = 0; i < n; i++) {
            if (w[i] == '"') sk_buf_addc(&b, '"');
            sk_buf_addc(&b, w[i]);
        }
        sk_buf_addc(&b, '"');
        if (prefix) sk_buf_addc(&b, '*');
    }
    if (!words) {
        sk_buf_release(&b);
        return NULL;
    }
    return sk_buf_detach(&b, NULL);
}

static int parse_time(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    int digits = 1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p)) digits = 0;
    if (digits && strlen(s) <= 15) {
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    return ev_time_parse(s, out);
}

void an_query_range(svc_req_t *req, int64_t *from, int64_t *to)
{
    const char *f = svc_query(req, "from"), *t = svc_query(req, "to");
    *from = 0;
    *to = INT64_MAX;
    if (f && *f && parse_time(f, from) < 0)
        svc_req_field_error(req, "from", "expected RFC 3339 time or ms since the epoch");
    if (t && *t && parse_time(t, to) < 0) svc_req_field_error(req, "to", "expected RFC 3339 time or ms since the epoch");
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char t[SK_RFC3339_LEN];
    cJSON_AddStringToObject(o, name, sk_rfc3339_ms(ms, t));
}

/* The stored JSON text as an object (a record that stopped parsing - it
 * never does - becomes {"raw": text}). */
static cJSON *doc_json(const char *text)
{
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    if (!o) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "raw", text ? text : "");
    }
    return o;
}

/* Binds values in order; the statement's '?' follow the same order. */
typedef struct binds_s {
    int n;
    struct {
        int is_int;
        const char *s;
        int64_t i;
    } v[16];
} binds_t;

static void bind_s(binds_t *b, const char *s)
{
    b->v[b->n].is_int = 0;
    b->v[b->n++].s = s;
}

static void bind_i(binds_t *b, int64_t i)
{
    b->v[b->n].is_int = 1;
    b->v[b->n++].i = i;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql, const binds_t *b)
{
    sqlite3_stmt *st = sto_stmt(db, sql);
    if (!st) return NULL;
    for (int i = 0; i < b->n; i++) {
        int rc = b->v[i].is_int ? sto_bind_i64(st, i + 1, b->v[i].i) : sto_bind_text(st, i + 1, b->v[i].s);
        if (rc < 0) {
            sqlite3_reset(st);
            return NULL;
        }
    }
    return st;
}

/* Runs a COUNT(*) statement.  Returns 0 or -1. */
static int count_of(sqlite3 *db, const char *sql, const binds_t *b, int64_t *out)
{
    sqlite3_stmt *st = prepare(db, sql, b);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

static void db_error(svc_req_t *req, sqlite3 *db, const char *what)
{
    sk_error("query", "%s: %s", what, sqlite3_errmsg(db));
    if (sqlite3_errcode(db) == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "fts5"))
        svc_reply_problem(req, 400, NULL, "the search text is not understood");
    else
        svc_reply_problem(req, 500, NULL, NULL);
}

/* ---- GET /analytics/events ------------------------------------------------------- */

static const char *const time_field[] = {"time", NULL};

static cJSON *event_row(sqlite3_stmt *st)
{
    /* seq, doc, topic, part, off, valid */
    cJSON *o = doc_json(sto_col_text(st, 1));
    cJSON_AddStringToObject(o, "topic", sto_col_text(st, 2) ? sto_col_text(st, 2) : "");
    cJSON_AddNumberToObject(o, "partition", (double)sqlite3_column_int64(st, 3));
    cJSON_AddNumberToObject(o, "offset", (double)sqlite3_column_int64(st, 4));
    cJSON_AddBoolToObject(o, "valid", sqlite3_column_int(st, 5));
    return o;
}

/*
 * GET /analytics/events and /analytics/logs are one search over two
 * tables: a time range, an optional full-text match, up to three equality
 * filters from the query string, a count and a page, newest first.
 */
typedef struct search_filter_s {
    const char *param;    /* query parameter */
    const char *sql;      /* " AND e.source = ?" (each ? gets the value) */
    const char *sql_fts;  /* the same with a search text, or NULL: "+" keeps SQLite
                             from scanning that (much larger) index instead of
                             letting the FTS match drive the plan */
} search_filter_t;

typedef struct search_s {
    const char *what;    /* "events", "logs" (log lines and errors) */
    const char *from;    /* " FROM events e WHERE e.time_ms >= ? AND e.time_ms < ?" */
    const char *fts;     /* " AND e.seq IN (... MATCH ?)" */
    const char *columns; /* the SELECT list that row() reads */
    const char *alias;   /* "e": ORDER BY <alias>.time_ms, <alias>.seq */
    cJSON *(*row)(sqlite3_stmt *st);
    search_filter_t filters[3];
} search_t;

static void search(svc_t *svc, svc_req_t *req, const search_t *q)
{
    sqlite3 *db = svc_db(svc);
    svc_page_t pg;
    int64_t from, to;
    svc_query_page(req, time_field, 0, 1, &pg);
    an_query_range(req, &from, &to);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    char *fts = an_fts_query(svc_query(req, "q"));
    binds_t b = {0};
    sk_buf_t where = SK_BUF_INIT, sql = SK_BUF_INIT;
    char what[64];
    sk_buf_init(&where, 256);
    sk_buf_init(&sql, 512);
    sk_buf_adds(&where, q->from);
    bind_i(&b, from);
    bind_i(&b, to);
    if (fts) {
        sk_buf_adds(&where, q->fts);
        bind_s(&b, fts);
    }
    for (size_t i = 0; i < sizeof q->filters / sizeof q->filters[0] && q->filters[i].param; i++) {
        const search_filter_t *f = &q->filters[i];
        const char *v = nonempty(svc_query(req, f->param));
        if (!v) continue;
        const char *clause = fts && f->sql_fts ? f->sql_fts : f->sql;
        sk_buf_adds(&where, clause);
        for (const char *c = clause; *c; c++)
            if (*c == '?') bind_s(&b, v);
    }
    int64_t total = 0;
    sk_buf_addf(&sql, "SELECT count(*)%s", where.data);
    if (count_of(db, sql.data, &b, &total) < 0) {
        snprintf(what, sizeof what, "%s count", q->what);
        db_error(req, db, what);
        goto out;
    }
    sk_buf_reset(&sql);
    const char *dir = pg.desc ? "DESC" : "ASC";
    sk_buf_addf(&sql, "SELECT %s%s ORDER BY %s.time_ms %s, %s.seq %s LIMIT ? OFFSET ?", q->columns,
                where.data, q->alias, dir, q->alias, dir);
    bind_i(&b, pg.size);
    bind_i(&b, pg.page * pg.size);
    sqlite3_stmt *st = prepare(db, sql.data, &b);
    if (!st) {
        db_error(req, db, q->what);
        goto out;
    }
    cJSON *arr = cJSON_CreateArray();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) cJSON_AddItemToArray(arr, q->row(st));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(arr);
        db_error(req, db, q->what);
        goto out;
    }
    svc_reply_json(req, 200, svc_page_json(arr, &pg, total));
out:
    free(fts);
    sk_buf_release(&where);
    sk_buf_release(&sql);
}

void an_get_events(svc_t *svc, svc_req_t *req)
{
    static const search_t q = {
        "events",
        " FROM events e WHERE e.time_ms >= ? AND e.time_ms < ?",
        " AND e.seq IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)",
        "e.seq, e.doc, e.topic, e.part, e.off, e.valid",
        "e",
        event_row,
        {{"type", " AND e.type = ?", " AND +e.type = ?"},
         {"source", " AND e.source = ?", NULL},
         {"correlationId", " AND e.correlation_id = ?", NULL}},
    };
    search(svc, req, &q);
}

/* ---- GET /analytics/logs ------------------------------------------------------------ */

static cJSON *log_row(sqlite3_stmt *st)
{
    /* seq, line, topic, part, off */
    cJSON *o = doc_json(sto_col_text(st, 1));
    cJSON_AddStringToObject(o, "topic", sto_col_text(st, 2) ? sto_col_text(st, 2) : "");
    cJSON_AddNumberToObject(o, "partition", (double)sqlite3_column_int64(st, 3));
    cJSON_AddNumberToObject(o, "offset", (double)sqlite3_column_int64(st, 4));
    return o;
}

void an_get_logs(svc_t *svc, svc_req_t *req)
{
    static const search_t q = {
        "logs",
        " FROM logs l WHERE l.time_ms >= ? AND l.time_ms < ?",
        " AND l.seq IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ?)",
        "l.seq, l.line, l.topic, l.part, l.off",
        "l",
        log_row,
        {{"service", " AND l.service = ?", " AND +l.service = ?"},
         {"level", " AND l.level = ?", NULL},
         {"correlationId", " AND (l.correlation_id = ? OR l.request_id = ?)", NULL}},
    };
    search(svc, req, &q);
}

/* ---- GET /analytics/timeline/{correlationId} ------------------------------------------ */

/* A small set of strings (timelines are tens of ids). */
typedef struct strset_s {
    char **v;
    size_t n, cap;
} strset_t;

static int strset_add(strset_t *s, const char *x)
{
    if (!x || !*x) return 0;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], x)) return 0;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = sk_realloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = sk_strdup(x);
    return 1;
}

static void strset_release(strset_t *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
}

typedef struct step_s {
    int64_t time_ms, seq;
    int kind; /* 0 event, 1 log */
    int depth;
    char *id, *causation;
    cJSON *obj;
} step_t;

typedef struct steps_s {
    step_t *v;
    size_t n, cap;
} steps_t;

static step_t *steps_add(steps_t *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->v = sk_realloc(s->v, s->cap * sizeof *s->v);
    }
    step_t *x = &s->v[s->n++];
    memset(x, 0, sizeof *x);
    return x;
}

static int step_has(const steps_t *s, int kind, int64_t seq)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].kind == kind && s->v[i].seq == seq) return 1;
    return 0;
}

static int step_cmp(const void *a, const void *b)
{
    const step_t *x = a, *y = b;
    if (x->time_ms != y->time_ms) return x->time_ms < y->time_ms ? -1 : 1;
    if (x->kind != y->kind) return x->kind - y->kind;
    if (x->depth != y->depth) return x->depth - y->depth;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Adds the log line seq (if new); returns 0 or -1. */
static int add_log(sqlite3 *db, steps_t *steps, int64_t seq, strset_t *notif_refs)
{
    if (step_has(steps, 1, seq) || steps->n >= TIMELINE_MAX) return 0;
    sqlite3_stmt *st = sto_query(db, "SELECT line, time_ms, service, msg FROM logs WHERE seq = ?", "I", seq);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        step_t *x = steps_add(steps);
        x->kind = 1;
        x->seq = seq;
        x->time_ms = sqlite3_column_int64(st, 1);
        x->obj = doc_json(sto_col_text(st, 0));
        const char *service = sto_col_text(st, 2), *msg = sto_col_text(st, 3);
        int notif = notif_refs && service && !strcmp(service, "notification") && msg &&
                    strstr(msg, "queued notification");
        sqlite3_reset(st);
        if (notif) {
            sqlite3_stmt *r = sto_query(db, "SELECT ref FROM log_refs WHERE seq = ?", "I", seq);
            if (!r) return -1;
            while ((rc = sqlite3_step(r)) == SQLITE_ROW) strset_add(notif_refs, sto_col_text(r, 0));
            sqlite3_reset(r);
        }
        return 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Log lines that carry ref as correlation/request id or mention it. */
static int add_logs_for(sqlite3 *db, steps_t *steps, const char *ref, strset_t *notif_refs)
{
    static const char *const sql[] = {
        "SELECT seq FROM logs WHERE correlation_id = ? LIMIT 500",
        "SELECT seq FROM log_refs WHERE ref = ? LIMIT 500",
    };
    for (size_t q = 0; q < 2; q++) {
        sqlite3_stmt *st = sto_query(db, sql[q], "t", ref);
        if (!st) return -1;
        int64_t seqs[500];
        size_t n = 0;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < 500) seqs[n++] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        for (size_t i = 0; i < n; i++)
            if (add_log(db, steps, seqs[i], notif_refs) < 0) return -1;
    }
    return 0;
}

void an_get_timeline(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    const char *x = svc_req_param(req, "correlationId");
    steps_t steps = {0};
    strset_t refs = {0}, notif = {0};
    int rc;
    strset_add(&refs, x);

    sqlite3_stmt *st = sto_query(db,
                                 "SELECT seq, doc, time_ms, id, causation_id, correlation_id, agg_id FROM events"
                                 " WHERE seq IN (SELECT seq FROM events WHERE correlation_id = ?1"
                                 " UNION SELECT seq FROM events WHERE agg_id = ?1"
                                 " UNION SELECT seq FROM events WHERE id = ?1) LIMIT 2000",
                                 "t", x);
    if (!st) goto dberr;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        step_t *s = steps_add(&steps);
        s->kind = 0;
        s->seq = sqlite3_column_int64(st, 0);
        s->obj = doc_json(sto_col_text(st, 1));
        s->time_ms = sqlite3_column_int64(st, 2);
        s->id = sto_col_dup(st, 3);
        s->causation = sto_col_dup(st, 4);
        strset_add(&refs, sto_col_text(st, 3));
        strset_add(&refs, sto_col_text(st, 5));
        strset_add(&refs, sto_col_text(st, 6));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) goto dberr;

    /* Causal depth breaks ties between events of the same millisecond. */
    for (size_t i = 0; i < steps.n; i++) {
        int d = 0;
        const char *c = steps.v[i].causation;
        for (int guard = 0; c && guard < 64; guard++) {
            const char *next = NULL;
            for (size_t j = 0; j < steps.n; j++)
                if (steps.v[j].id && !strcmp(steps.v[j].id, c)) {
                    next = steps.v[j].causation;
                    d++;
                    break;
                }
            c = next;
        }
        steps.v[i].depth = d;
    }

    for (size_t i = 0; i < refs.n; i++)
        if (add_logs_for(db, &steps, refs.v[i], &notif) < 0) goto dberr;
    /* Second hop: the notification a terminal event queued, and its delivery. */
    for (size_t i = 0; i < notif.n; i++)
        if (add_logs_for(db, &steps, notif.v[i], NULL) < 0) goto dberr;

    if (steps.n == 0) {
        svc_reply_problem(req, 404, NULL, "nothing indexed for %s", x);
        goto out;
    }
    qsort(steps.v, steps.n, sizeof *steps.v, step_cmp);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "correlationId", x);
    int64_t first = steps.v[0].time_ms, prev = first;
    add_time(doc, "start", first);
    add_time(doc, "end", steps.v[steps.n - 1].time_ms);
    cJSON_AddNumberToObject(doc, "durationMs", (double)(steps.v[steps.n - 1].time_ms - first));
    cJSON_AddNumberToObject(doc, "count", (double)steps.n);
    cJSON *arr = cJSON_AddArrayToObject(doc, "steps");
    for (size_t i = 0; i < steps.n; i++) {
        step_t *s = &steps.v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", s->kind ? "log" : "event");
        add_time(o, "time", s->time_ms);
        cJSON_AddNumberToObject(o, "sinceStartMs", (double)(s->time_ms - first));
        cJSON_AddNumberToObject(o, "sincePreviousMs", (double)(s->time_ms - prev));
        prev = s->time_ms;
        const char *a = s->kind ? "service" : "source", *t = s->kind ? "msg" : "type";
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(s->obj, a);
        const cJSON *tv = cJSON_GetObjectItemCaseSensitive(s->obj, t);
        cJSON_AddStringToObject(o, "service", cJSON_IsString(av) ? av->valuestring : "");
        if (s->kind) {
            const cJSON *lv = cJSON_GetObjectItemCaseSensitive(s->obj, "level");
            cJSON_AddStringToObject(o, "level", cJSON_IsString(lv) ? lv->valuestring : "");
            cJSON_AddStringToObject(o, "msg", cJSON_IsString(tv) ? tv->valuestring : "");
            cJSON_AddItemToObject(o, "log", s->obj);
        } else {
            cJSON_AddStringToObject(o, "type", cJSON_IsString(tv) ? tv->valuestring : "");
            cJSON_AddItemToObject(o, "event", s->obj);
        }
        s->obj = NULL;
        cJSON_AddItemToArray(arr, o);
    }
    svc_reply_json(req, 200, doc);
    goto out;
dberr:
    db_error(req, db, "timeline");
out:
    for (size_t i = 0; i < steps.n; i++) {
        cJSON_Delete(steps.v[i].obj);
        free(steps.v[i].id);
        free(steps.v[i].causation);
    }
    free(steps.v);
    strset_release(&refs);
    strset_release(&notif);
}

/* ---- GET /analytics/export ----------------------------------------------------------- */

/*
 * NDJSON in Elasticsearch's bulk format, ready for POST /_bulk:
 *   {"index":{"_index":"souk-events","_id":"<event id>"}}
 *   <the event envelope as stored>
 * (with ?kind=logs: "souk-logs", _id "<topic>-<partition>-<offset>", the log
 * line).  The answer is built whole, in record order (seq), at most
 * --export-max-events documents; when more remain, the header
 * X-Export-Next carries "after=<seq>" for the next call (same from/to).
 * Streaming with chunked encoding would need the runtime to hand over the
 * connection; pages keep the memory bounded instead.
 */
void an_get_export(svc_t *svc, svc_req_t *req)
{
    sqlite3 *db = svc_db(svc);
    int64_t from, to, after = 0;
    an_query_range(req, &from, &to);
    svc_query_int(req, "after", 0, 0, INT64_MAX, &after);
    static const char *const kinds[] = {"events", "logs", NULL};
    int kind = svc_query_enum(req, "kind", kinds, 0);
    if (svc_req_has_errors(req)) {
        svc_reply_invalid(req);
        return;
    }
    int64_t max = an_of(svc)->conf->export_max;
    sqlite3_stmt *st =
        kind == 0 ? sto_query(db,
                              "SELECT seq, id, doc FROM events WHERE seq > ? AND time_ms >= ? AND time_ms < ?"
                              " ORDER BY seq LIMIT ?",
                              "IIII", after, from, to, max + 1)
                  : sto_query(db,
                              "SELECT seq, topic || '-' || part || '-' || off, line FROM logs"
                              " WHERE seq > ? AND time_ms >= ? AND time_ms < ? ORDER BY seq LIMIT ?",
                              "IIII", after, from, to, max + 1);
    if (!st) {
        db_error(req, db, "export");
        return;
    }
    sk_buf_t out = SK_BUF_INIT;
    sk_buf_init(&out, 1 << 16);
    int64_t n = 0, last = 0;
    int rc, more = 0;
    const char *index = kind == 0 ? "souk-events" : "souk-logs";
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == max) {
            more = 1;
            break;
        }
        const char *id = sto_col_text(st, 1), *docu = sto_col_text(st, 2);
        last = sqlite3_column_int64(st, 0);
        sk_buf_addf(&out, "{\"index\":{\"_index\":\"%s\",\"_id\":", index);
        sk_buf_add_json_str(&out, id ? id : "", id ? strlen(id) : 0);
        sk_buf_adds(&out, "}}\n");
        sk_buf_adds(&out, docu ? docu : "{}");
        sk_buf_addc(&out, '\n');
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        sk_buf_release(&out);
        db_error(req, db, "export");
        return;
    }
    if (more) {
        char next[64];
        snprintf(next, sizeof next, "after=%" PRId64, last);
        svc_req_set_header(req, "X-Export-Next", next);
    }
    char cnt[32];
    snprintf(cnt, sizeof cnt, "%" PRId64, n);
    svc_req_set_header(req, "X-Export-Count", cnt);
    svc_reply_raw(req, 200, "application/x-ndjson", out.data, out.len);
    sk_buf_release(&out);
}
