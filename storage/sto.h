/*
 * sto.h - a service's SQLite file: open with the right pragmas, numbered
 * migrations, transactions and cached prepared statements.
 *
 * The handle every module takes is the plain `sqlite3 *` returned by
 * sto_open(); modules may call the sqlite3 API on it directly.  What sto
 * adds is:
 *
 *   - sto_open(): WAL journal, synchronous=NORMAL, foreign_keys=ON, a page
 *     cache of STO_CACHE_KIB, a busy timeout of STO_BUSY_TIMEOUT_MS,
 *     extended result codes, then the service's migrations (see
 *     sto_migration_t).
 *   - sto_begin/commit/rollback: BEGIN IMMEDIATE transactions (the write lock
 *     is taken up front, so a transaction never fails half way with BUSY on
 *     its first write).
 *   - sto_stmt(): one cache of prepared statements per connection, keyed by
 *     the SQL text, so a handler writes its SQL inline and pays for the
 *     parse once per process.
 *   - sto_exec()/sto_query(): bind every parameter from a type-letter string
 *     (SQL is never built by concatenation; see STYLE.md).
 *
 * Errors: functions returning int return -1 (or NULL) on failure; the
 * reason is then in sqlite3_errmsg(db) / sqlite3_extended_errcode(db),
 * except where a function takes an err buffer.  Nothing here logs a failed
 * statement: a UNIQUE violation is often an expected outcome (409), and the
 * caller knows which.  Misuse (a type string that does not match the
 * statement's parameters) is logged at error level, since it is a bug.
 *
 * Threads: a connection and its statement cache belong to one thread at a
 * time (the service's event loop).  Different connections may be used from
 * different threads.
 */
#ifndef STO_H
#define STO_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define STO_BUSY_TIMEOUT_MS 5000
/* SQLite's page cache per connection (its default is 2 MiB).  Pages not in
 * it are read from the kernel's page cache, which every process shares; the
 * saga benchmark runs as fast with 512 KiB and each service keeps ~1.5 MiB
 * less (docs/benchmarks-saga.md). */
#define STO_CACHE_KIB 512

/*
 * One schema migration.  A service declares a static array of them:
 *
 *   static const sto_migration_t migrations[] = {
 *       {1, "users", "CREATE TABLE users (id TEXT PRIMARY KEY, ...);"},
 *       {2, "users.bio", "ALTER TABLE users ADD COLUMN bio TEXT;"},
 *   };
 *
 * migrations[i].version must be i + 1 (checked).  Migrations are append-only:
 * never edit one that has shipped; add the next number.  The script may hold
 * several statements; it runs inside the migration's transaction, with
 * foreign keys on, so it must not contain BEGIN/COMMIT or pragmas that are
 * no-ops inside a transaction (foreign_keys, journal_mode).
 */
typedef struct sto_migration_s {
    int version;      /* 1, 2, 3, ... */
    const char *name; /* short label for logs and errors; may be NULL */
    const char *sql;  /* one or more statements */
} sto_migration_t;

/*
 * Opens (creating if needed) the SQLite database at path (":memory:" works,
 * for tests) and brings its schema up to date: for every migration whose
 * version is above the file's `PRAGMA user_version`, in order, run it and set
 * user_version to its number in one BEGIN IMMEDIATE transaction.  A failing
 * migration is rolled back, the version stays at the last good one, and the
 * open fails.  A database whose user_version is above n (written by a newer
 * program) is refused, untouched.  Reopening an up-to-date database runs
 * nothing.  migrations may be NULL when n == 0.
 *
 * On success returns 0 and *out owns the connection: close it with
 * sto_close().  On failure returns -1, *out is NULL, and err (if not NULL)
 * holds a one-line reason (the path, the migration and SQLite's message).
 */
int sto_open(const char *path, const sto_migration_t *migrations, size_t n, sqlite3 **out,
             char *err, size_t errsz);

/* Finalizes the connection's cached statements and closes it.  NULL is a
 * no-op.  Statements the caller prepared itself must be finalized first.
 * Use this, not sqlite3_close(), on connections from sto_open(). */
void sto_close(sqlite3 *db);

/*
 * Checkpoints mostly on a thread of their own.  By default SQLite
 * checkpoints the WAL inside the COMMIT that takes it past 1000 pages: that
 * commit fsyncs the WAL, copies ~1000 pages into the database file and
 * fsyncs it, which stalls the caller's event loop for milliseconds (more on
 * a slow disk).  After this call:
 *
 *   - every STO_CKPT_PAGES new WAL frames, a commit wakes a thread with its
 *     own connection to the same file, which runs a PASSIVE checkpoint: it
 *     copies the frames to the database and fsyncs, neither waiting for
 *     nor blocking db's transactions (the thread also checkpoints every
 *     STO_CKPT_IDLE_MS);
 *   - the WAL only starts over when a write transaction begins with every
 *     frame copied, which a busy writer never sees after a checkpoint that
 *     ran beside it.  So when the WAL reaches STO_CKPT_RESTART_PAGES, the
 *     committing connection runs the PASSIVE checkpoint itself: it copies
 *     only what the thread has not copied yet, and the next write
 *     transaction restarts the WAL (if the thread holds the checkpoint lock
 *     at that moment, the next commit tries again).  That is one stall per
 *     STO_CKPT_RESTART_PAGES frames instead of one per 1000, and a smaller
 *     one;
 *   - journal_size_limit keeps the -wal file at most that size after a
 *     restart.
 *
 * sto_close(db) stops the thread.  Durability is unchanged: the WAL is the
 * commit point either way.  Returns 0, or -1 with err set (db then
 * checkpoints as before).  Not for ":memory:".
 */
#define STO_CKPT_PAGES 1000
#define STO_CKPT_RESTART_PAGES 4000
#define STO_CKPT_IDLE_MS 1000
int sto_checkpoint_in_background(sqlite3 *db, char *err, size_t errsz);
/* Checkpoints the background thread ran (tests, metrics); 0 without one. */
uint64_t sto_checkpoints(sqlite3 *db);

/* The schema version recorded in the file (PRAGMA user_version), or -1. */
int sto_schema_version(sqlite3 *db);

/* Runs a multi-statement script with no parameters (DDL, fixed SQL).  On
 * failure returns -1 and err (if not NULL) holds SQLite's message.  Never
 * pass it text that came from outside the program. */
int sto_exec_script(sqlite3 *db, const char *sql, char *err, size_t errsz);

/*
 * Transactions.  sto_begin() issues BEGIN IMMEDIATE (waits up to the busy
 * timeout for the write lock).  sto_commit() commits; if it fails the
 * transaction is still open and the caller must sto_rollback().
 * sto_rollback() is a no-op (returning 0) outside a transaction, so it is
 * safe at an `out:` label.  All return 0 or -1 (reason in sqlite3_errmsg).
 * Transactions do not nest: sto_begin() inside one fails.
 */
int sto_begin(sqlite3 *db);
int sto_commit(sqlite3 *db);
int sto_rollback(sqlite3 *db);
/* 1 inside an open transaction, else 0. */
int sto_in_txn(sqlite3 *db);

/*
 * The connection's cached prepared statement for sql (the cache key is the
 * text, so pass the same literal each time), prepared on first use, and
 * returned reset with its bindings cleared.  Returns NULL if sql does not
 * prepare (reason in sqlite3_errmsg), holds more than one statement, or if
 * db did not come from sto_open() (both logged: they are bugs).
 *
 * The statement is borrowed: never finalize it.  It stays valid until
 * sto_close(); the next sto_stmt()/sto_exec()/sto_query() with the same SQL
 * resets it, so do not interleave two uses of one SQL text.  When finished
 * stepping before SQLITE_DONE, call sqlite3_reset() (or sto_done()) so the
 * statement does not keep a read snapshot open.
 */
sqlite3_stmt *sto_stmt(sqlite3 *db, const char *sql);

/* sqlite3_reset() + sqlite3_clear_bindings(); NULL is a no-op. */
void sto_done(sqlite3_stmt *st);

/*
 * Bind helpers (1-based idx, like sqlite3_bind_*).  Text and blobs are
 * copied (SQLITE_TRANSIENT), so the caller's buffer need not outlive the
 * call.  sto_bind_text() binds NULL for s == NULL.  Return SQLite's code
 * (SQLITE_OK on success).
 */
int sto_bind_text(sqlite3_stmt *st, int idx, const char *s);
int sto_bind_textn(sqlite3_stmt *st, int idx, const char *s, size_t n);
int sto_bind_blob(sqlite3_stmt *st, int idx, const void *p, size_t n);
int sto_bind_i64(sqlite3_stmt *st, int idx, int64_t v);
int sto_bind_double(sqlite3_stmt *st, int idx, double v);
int sto_bind_null(sqlite3_stmt *st, int idx);

/*
 * Binds the variadic arguments to st's parameters 1..strlen(types), one
 * letter per parameter:
 *
 *   'i'  int                       'I'  int64_t
 *   'd'  double                    'n'  NULL (takes no argument)
 *   't'  const char * (NUL-terminated; NULL pointer binds NULL)
 *   'T'  const char *, size_t      (text of that length; NULL binds NULL)
 *   'b'  const void *, size_t      (blob; a NULL pointer binds NULL)
 *
 * The number of letters must equal sqlite3_bind_parameter_count(st);
 * anything else (or an unknown letter) is a bug: logged, returns -1.
 * Pass int64 arguments as int64_t (a plain int literal for 'I' is undefined
 * behaviour in a variadic call).  Returns 0 or -1.
 */
int sto_bindv(sqlite3_stmt *st, const char *types, ...);

/*
 * Runs one statement that returns no rows (INSERT/UPDATE/DELETE/DDL) with
 * bound parameters (types as for sto_bindv; "" for none), through the cache.
 * Returns the number of rows it changed (sqlite3_changes) - so a guarded
 * transition `UPDATE ... WHERE status = 'PENDING'` returning 0 means "not in
 * that state" - or -1 on error (reason in sqlite3_errmsg / errcode; see
 * sto_is_constraint()).  A statement that does return rows is an error.
 */
int sto_exec(sqlite3 *db, const char *sql, const char *types, ...);

/*
 * Prepares (through the cache) and binds a query; the caller steps it with
 * sqlite3_step() and reads columns, then calls sto_done() (or steps to
 * SQLITE_DONE).  Returns the borrowed statement, or NULL on error.
 *
 *   sqlite3_stmt *st = sto_query(db, "SELECT id, email FROM users WHERE role = ?", "t", role);
 *   if (!st) goto out;
 *   while ((rc = sqlite3_step(st)) == SQLITE_ROW) ...
 *   if (rc != SQLITE_DONE) goto out;   // error
 */
sqlite3_stmt *sto_query(sqlite3 *db, const char *sql, const char *types, ...);

/*
 * Single-value queries: run sql and read column 0 of the first row.
 * Return 1 with *out set when there is a row, 0 when there is none (*out
 * untouched), -1 on error.  sto_query_text() stores a copy the caller frees
 * (NULL if the column is NULL).
 */
int sto_query_i64(sqlite3 *db, int64_t *out, const char *sql, const char *types, ...);
int sto_query_text(sqlite3 *db, char **out, const char *sql, const char *types, ...);

/* Column helper: the text of column col, or NULL when it is SQL NULL.
 * Borrowed until the next step/reset of st. */
const char *sto_col_text(sqlite3_stmt *st, int col);
/* The same as a copy the caller frees (NULL for SQL NULL). */
char *sto_col_dup(sqlite3_stmt *st, int col);

/* 1 when the last error on db was a constraint violation (UNIQUE, CHECK,
 * FOREIGN KEY, NOT NULL, PRIMARY KEY), else 0. */
int sto_is_constraint(sqlite3 *db);

#endif
