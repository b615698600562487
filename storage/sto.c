/*
 * sto.c - SQLite helpers: open + pragmas, migrations, statement cache, binds.
 *
 * The statement cache has to hang off a plain `sqlite3 *` (the handle the
 * rest of souk passes around), and SQLite 3.40 has no per-connection client
 * data, so connections opened here are registered in a small process-wide
 * map from the connection pointer to its cache.  The registry is the only
 * shared state; a mutex guards it because services may open connections from
 * more than one thread (an outbox relay, tests).  The cache itself belongs to
 * the connection's thread.
 */
#include "sto.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sk_alloc.h"
#include "sk_buf.h"
#include "sk_log.h"
#include "sk_map.h"

typedef struct sto_ckpt_s sto_ckpt_t;

typedef struct sto_cache_s {
    sqlite3 *db;
    sk_map_t stmts; /* SQL text -> sqlite3_stmt * */
    sto_ckpt_t *ckpt; /* sto_checkpoint_in_background(), or NULL */
} sto_cache_t;

static void ckpt_stop(sto_ckpt_t *k);

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static sk_map_t registry; /* sqlite3 * (pointer bytes) -> sto_cache_t * */
static int registry_ready;

static void registry_put(sqlite3 *db, sto_cache_t *c)
{
    pthread_mutex_lock(&registry_lock);
    if (!registry_ready) {
        sk_map_init(&registry);
        registry_ready = 1;
    }
    sk_map_put(&registry, &db, sizeof db, c);
    pthread_mutex_unlock(&registry_lock);
}

static sto_cache_t *registry_get(sqlite3 *db)
{
    sto_cache_t *c = NULL;
    pthread_mutex_lock(&registry_lock);
    if (registry_ready) c = sk_map_get(&registry, &db, sizeof db);
    pthread_mutex_unlock(&registry_lock);
    return c;
}

static sto_cache_t *registry_del(sqlite3 *db)
{
    sto_cache_t *c = NULL;
    pthread_mutex_lock(&registry_lock);
    if (registry_ready) c = sk_map_del(&registry, &db, sizeof db);
    pthread_mutex_unlock(&registry_lock);
    return c;
}

/* Runs a one-row pragma query and returns column 0 as an integer, or -1. */
static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto out;
    if (sqlite3_step(st) != SQLITE_ROW) goto out;
    *out = sqlite3_column_int64(st, 0);
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

int sto_schema_version(sqlite3 *db)
{
    int64_t v;
    if (!db || pragma_int(db, "PRAGMA user_version", &v) < 0) return -1;
    return (int)v;
}

int sto_exec_script(sqlite3 *db, const char *sql, char *err, size_t errsz)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sk_errf(err, errsz, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Applies migrations[from..n-1], one transaction each. */
static int migrate(sqlite3 *db, const char *path, const sto_migration_t *m, size_t n, int from,
                   char *err, size_t errsz)
{
    char emsg[512];
    for (size_t i = (size_t)from; i < n; i++) {
        const char *label = m[i].name ? m[i].name : "";
        char setv[64];
        /* user_version cannot be a bound parameter; the value is our own int. */
        snprintf(setv, sizeof setv, "PRAGMA user_version = %d", m[i].version);
        if (sto_begin(db) < 0) {
            sk_errf(err, errsz, "%s: migration %d (%s): begin: %s", path, m[i].version, label,
                   sqlite3_errmsg(db));
            return -1;
        }
        if (sto_exec_script(db, m[i].sql, emsg, sizeof emsg) < 0 ||
            sto_exec_script(db, setv, emsg, sizeof emsg) < 0) {
            sto_rollback(db);
            sk_errf(err, errsz, "%s: migration %d (%s) failed: %s", path, m[i].version, label, emsg);
            return -1;
        }
        if (sto_commit(db) < 0) {
            sk_errf(err, errsz, "%s: migration %d (%s): commit: %s", path, m[i].version, label,
                   sqlite3_errmsg(db));
            sto_rollback(db);
            return -1;
        }
        sk_info("sto", "%s: applied migration %d (%s)", path, m[i].version, label);
    }
    return 0;
}

int sto_open(const char *path, const sto_migration_t *migrations, size_t n, sqlite3 **out,
             char *err, size_t errsz)
{
    sqlite3 *db = NULL;
    char emsg[512];
    int64_t version = 0;
    int ret = -1;

    *out = NULL;
    if (!path || (n > 0 && !migrations)) {
        sk_errf(err, errsz, "sto_open: bad arguments");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (migrations[i].version != (int)i + 1 || !migrations[i].sql) {
            sk_errf(err, errsz, "%s: migration at index %zu must have version %zu and SQL", path, i,
                   i + 1);
            goto out;
        }
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        sk_errf(err, errsz, "%s: open: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, STO_BUSY_TIMEOUT_MS);

    /* Check the version before touching anything (a newer file stays as is). */
    if (pragma_int(db, "PRAGMA user_version", &version) < 0) {
        sk_errf(err, errsz, "%s: reading user_version: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    if (version < 0 || version > (int64_t)n) {
        sk_errf(err, errsz,
               "%s: schema version %lld is newer than this program knows (%zu); refusing to open",
               path, (long long)version, n);
        goto out;
    }

    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        sk_errf(err, errsz, "%s: journal_mode=WAL: %s", path, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        goto out;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    int mode_ok = mode && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0);
    if (!mode_ok) sk_errf(err, errsz, "%s: journal_mode is %s, not wal", path, mode ? mode : "?");
    sqlite3_finalize(st);
    if (!mode_ok) goto out;

    char pragmas[160];
    snprintf(pragmas, sizeof pragmas, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -%d;",
             STO_CACHE_KIB);
    if (sto_exec_script(db, pragmas, emsg, sizeof emsg) < 0) {
        sk_errf(err, errsz, "%s: pragmas: %s", path, emsg);
        goto out;
    }
    int64_t fk = 0;
    if (pragma_int(db, "PRAGMA foreign_keys", &fk) < 0 || fk != 1) {
        sk_errf(err, errsz, "%s: foreign keys cannot be enabled", path);
        goto out;
    }

    if (migrate(db, path, migrations, n, (int)version, err, errsz) < 0) goto out;

    sto_cache_t *c = sk_calloc(1, sizeof *c);
    c->db = db;
    sk_map_init(&c->stmts);
    registry_put(db, c);
    *out = db;
    db = NULL;
    ret = 0;
out:
    if (db) sqlite3_close(db);
    return ret;
}

void sto_close(sqlite3 *db)
{
    if (!db) return;
    sto_cache_t *c = registry_del(db);
    if (c) {
        if (c->ckpt) sqlite3_wal_hook(db, NULL, NULL);
        ckpt_stop(c->ckpt);
        for (sk_map_entry_t *it = sk_map_next(&c->stmts, NULL); it; it = sk_map_next(&c->stmts, it))
            sqlite3_finalize(it->value);
        sk_map_release(&c->stmts);
        free(c);
    }
    if (sqlite3_next_stmt(db, NULL))
        sk_error("sto",
                 "sto_close: statements still open (%s); the connection closes when they "
                 "are finalized",
                 sqlite3_sql(sqlite3_next_stmt(db, NULL)));
    sqlite3_close_v2(db);
}

/* ---- background checkpoints ------------------------------------------ */

struct sto_ckpt_s {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int due, stop;
    sqlite3 *db;  /* the thread's own connection */
    uint64_t runs;
    int copied;    /* WAL frames copied by the thread's last checkpoint (under mu) */
    int last_pages; /* the hook's previous count (loop thread only) */
};

/* The WAL hook of the service's connection: runs after each commit. */
static int ckpt_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    sto_ckpt_t *k = arg;
    int restarted = pages < k->last_pages;
    k->last_pages = pages;
    if (pages >= STO_CKPT_RESTART_PAGES) {
        /* copies what the thread has not; SQLITE_BUSY while the thread
         * checkpoints: the next commit tries again */
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    pthread_mutex_lock(&k->mu);
    if (restarted) k->copied = 0;
    if (!k->due && pages - k->copied >= STO_CKPT_PAGES) {
        k->due = 1;
        pthread_cond_signal(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    sto_ckpt_t *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        if (!k->due) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += STO_CKPT_IDLE_MS / 1000;
            ts.tv_nsec += (long)(STO_CKPT_IDLE_MS % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&k->cv, &k->mu, &ts);
            if (k->stop) break;
        }
        k->due = 0;
        pthread_mutex_unlock(&k->mu);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            sk_warn("sto", "background checkpoint: %s", sqlite3_errmsg(k->db));
        pthread_mutex_lock(&k->mu);
        if (log > 0) k->runs++;
        if (rc == SQLITE_OK && done > k->copied) k->copied = done;
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static void ckpt_stop(sto_ckpt_t *k)
{
    if (!k) return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    sqlite3_close_v2(k->db);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

int sto_checkpoint_in_background(sqlite3 *db, char *err, size_t errsz)
{
    sto_cache_t *c = registry_get(db);
    const char *path = db ? sqlite3_db_filename(db, "main") : NULL;
    if (!c || !path || !*path) {
        sk_errf(err, errsz, "background checkpoints need a database file opened with sto_open");
        return -1;
    }
    if (c->ckpt) return 0;
    sto_ckpt_t *k = sk_calloc(1, sizeof *k);
    char limit[80];
    snprintf(limit, sizeof limit, "PRAGMA journal_size_limit = %d", STO_CKPT_RESTART_PAGES * 4096);
    /* A connection opens the WAL when it first reads: without the SELECT,
     * its checkpoints would do nothing (log = -1). */
    if (sqlite3_open_v2(path, &k->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(k->db, "PRAGMA synchronous = NORMAL; SELECT 1 FROM sqlite_schema LIMIT 1", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, limit, NULL, NULL, NULL) != SQLITE_OK) {
        sk_errf(err, errsz, "%s: checkpoint connection: %s", path,
                k->db ? sqlite3_errmsg(k->db) : "out of memory");
        sqlite3_close_v2(k->db);
        free(k);
        return -1;
    }
    sqlite3_busy_timeout(k->db, STO_BUSY_TIMEOUT_MS);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    int rc = pthread_create(&k->thread, NULL, ckpt_main, k);
    if (rc != 0) {
        sk_errf(err, errsz, "checkpoint thread: %s", strerror(rc));
        sqlite3_close_v2(k->db);
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        free(k);
        return -1;
    }
    c->ckpt = k;
    sqlite3_wal_hook(db, ckpt_hook, k); /* replaces the automatic checkpoint */
    return 0;
}

uint64_t sto_checkpoints(sqlite3 *db)
{
    sto_cache_t *c = registry_get(db);
    uint64_t n = 0;
    if (c && c->ckpt) {
        pthread_mutex_lock(&c->ckpt->mu);
        n = c->ckpt->runs;
        pthread_mutex_unlock(&c->ckpt->mu);
    }
    return n;
}

/* ---- transactions --------------------------------------------------- */

static int exec_simple(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int sto_begin(sqlite3 *db)
{
    return exec_simple(db, "BEGIN IMMEDIATE");
}

int sto_commit(sqlite3 *db)
{
    return exec_simple(db, "COMMIT");
}

int sto_rollback(sqlite3 *db)
{
    if (sqlite3_get_autocommit(db)) return 0;
    return exec_simple(db, "ROLLBACK");
}

int sto_in_txn(sqlite3 *db)
{
    return !sqlite3_get_autocommit(db);
}

/* ---- statements ------------------------------------------------------ */

sqlite3_stmt *sto_stmt(sqlite3 *db, const char *sql)
{
    sto_cache_t *c = registry_get(db);
    if (!c) {
        sk_error("sto", "sto_stmt: connection was not opened with sto_open");
        return NULL;
    }
    size_t len = strlen(sql);
    sqlite3_stmt *st = sk_map_get(&c->stmts, sql, len);
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    const char *tail = NULL;
    if (sqlite3_prepare_v3(db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &st, &tail) != SQLITE_OK)
        return NULL;
    if (!st) return NULL; /* only whitespace or a comment */
    while (tail && (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r'))
        tail++;
    if (tail && *tail) {
        sk_error("sto", "sto_stmt: more than one statement (use sto_exec_script): %s", sql);
        sqlite3_finalize(st);
        return NULL;
    }
    sk_map_put(&c->stmts, sql, len, st);
    return st;
}

void sto_done(sqlite3_stmt *st)
{
    if (!st) return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int sto_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    if (!s) return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

int sto_bind_textn(sqlite3_stmt *st, int idx, const char *s, size_t n)
{
    if (!s) return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text64(st, idx, s, n, SQLITE_TRANSIENT, SQLITE_UTF8);
}

int sto_bind_blob(sqlite3_stmt *st, int idx, const void *p, size_t n)
{
    if (!p) return sqlite3_bind_null(st, idx);
    return sqlite3_bind_blob64(st, idx, p, n, SQLITE_TRANSIENT);
}

int sto_bind_i64(sqlite3_stmt *st, int idx, int64_t v)
{
    return sqlite3_bind_int64(st, idx, v);
}

int sto_bind_double(sqlite3_stmt *st, int idx, double v)
{
    return sqlite3_bind_double(st, idx, v);
}

int sto_bind_null(sqlite3_stmt *st, int idx)
{
    return sqlite3_bind_null(st, idx);
}

static int bind_va(sqlite3_stmt *st, const char *types, va_list ap)
{
    int nparams = sqlite3_bind_parameter_count(st);
    size_t ntypes = strlen(types);
    if (ntypes != (size_t)nparams) {
        sk_error("sto", "bind: %zu type letters \"%s\" for %d parameters in: %s", ntypes, types,
                 nparams, sqlite3_sql(st));
        return -1;
    }
    for (int i = 0; i < nparams; i++) {
        int idx = i + 1, rc;
        switch (types[i]) {
        case 'i':
            rc = sqlite3_bind_int(st, idx, va_arg(ap, int));
            break;
        case 'I':
            rc = sqlite3_bind_int64(st, idx, va_arg(ap, int64_t));
            break;
        case 'd':
            rc = sqlite3_bind_double(st, idx, va_arg(ap, double));
            break;
        case 'n':
            rc = sqlite3_bind_null(st, idx);
            break;
        case 't':
            rc = sto_bind_text(st, idx, va_arg(ap, const char *));
            break;
        case 'T': {
            const char *s = va_arg(ap, const char *);
            size_t n = va_arg(ap, size_t);
            rc = sto_bind_textn(st, idx, s, n);
            break;
        }
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            rc = sto_bind_blob(st, idx, p, n);
            break;
        }
        default:
            sk_error("sto", "bind: unknown type letter '%c' in \"%s\" for: %s", types[i], types,
                     sqlite3_sql(st));
            return -1;
        }
        if (rc != SQLITE_OK) return -1;
    }
    return 0;
}

int sto_bindv(sqlite3_stmt *st, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    int rc = bind_va(st, types, ap);
    va_end(ap);
    return rc;
}

/* sto_stmt + bind; on a bind failure the statement is left clean. */
static sqlite3_stmt *query_va(sqlite3 *db, const char *sql, const char *types, va_list ap)
{
    sqlite3_stmt *st = sto_stmt(db, sql);
    if (!st) return NULL;
    if (bind_va(st, types, ap) < 0) {
        sto_done(st);
        return NULL;
    }
    return st;
}

int sto_exec(sqlite3 *db, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = query_va(db, sql, types, ap);
    va_end(ap);
    if (!st) return -1;
    /* sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so
     * after DDL it would be stale: a statement that changed no row at all
     * leaves total_changes as it was. */
    sqlite3_int64 before = sqlite3_total_changes64(db);
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_DONE) {
        ret = sqlite3_total_changes64(db) == before ? 0 : sqlite3_changes(db);
    } else if (rc == SQLITE_ROW) {
        sk_error("sto", "sto_exec: statement returns rows (use sto_query): %s", sql);
    }
    /* On error, sqlite3_step (v2 interface) has already set errcode/errmsg;
     * resetting keeps them. */
    sto_done(st);
    return ret;
}

sqlite3_stmt *sto_query(sqlite3 *db, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = query_va(db, sql, types, ap);
    va_end(ap);
    return st;
}

int sto_query_i64(sqlite3 *db, int64_t *out, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = query_va(db, sql, types, ap);
    va_end(ap);
    if (!st) return -1;
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    }
    sto_done(st);
    return ret;
}

int sto_query_text(sqlite3 *db, char **out, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = query_va(db, sql, types, ap);
    va_end(ap);
    if (!st) return -1;
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) {
        const unsigned char *s = sqlite3_column_text(st, 0);
        if (!s && sqlite3_column_type(st, 0) != SQLITE_NULL) goto out; /* out of memory */
        *out = s ? sk_strndup((const char *)s, (size_t)sqlite3_column_bytes(st, 0)) : NULL;
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    }
out:
    sto_done(st);
    return ret;
}

const char *sto_col_text(sqlite3_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

char *sto_col_dup(sqlite3_stmt *st, int col)
{
    const char *s = sto_col_text(st, col);
    return s ? sk_strdup(s) : NULL;
}

int sto_is_constraint(sqlite3 *db)
{
    return (sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT;
}
