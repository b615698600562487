/*
 * sk_log.h - one JSON object per line on stderr.
 *
 *   {"time":"2026-11-25T16:37:36.123Z","level":"info","service":"broker",
 *    "facility":"kafka","msg":"listening on 127.0.0.1:9092"}
 *
 * The level threshold and the service name are process-wide (set once in
 * main).  Messages below the threshold cost one comparison.  A sink may be
 * installed to receive every emitted line as well (log shipping); it must not
 * call sk_log itself.
 */
#ifndef SK_LOG_H
#define SK_LOG_H

#include <stddef.h>

typedef enum { SK_LOG_DEBUG = 0, SK_LOG_INFO, SK_LOG_WARN, SK_LOG_ERROR, SK_LOG_FATAL } sk_log_level_t;

void sk_log_set_service(const char *name); /* borrowed; must outlive logging */
void sk_log_set_level(sk_log_level_t level);
/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int sk_log_level_parse(const char *s);
int sk_log_enabled(sk_log_level_t level);

typedef void (*sk_log_sink_fn)(void *opaque, const char *line, size_t len);
void sk_log_set_sink(sk_log_sink_fn fn, void *opaque);

void sk_log(sk_log_level_t level, const char *facility, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Like sk_log, with extra members in the line's object: fields is NULL or the
 * text of one or more JSON object members without the braces, e.g.
 * "\"status\":200,\"path\":\"/x\"" (build it with sk_buf_add_json_str so
 * that it stays valid JSON).  They follow "msg" in the line.
 */
void sk_log_fields(sk_log_level_t level, const char *facility, const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define sk_debug(fac, ...)                                                                         \
    do {                                                                                           \
        if (sk_log_enabled(SK_LOG_DEBUG)) sk_log(SK_LOG_DEBUG, fac, __VA_ARGS__);                  \
    } while (0)
#define sk_info(fac, ...) sk_log(SK_LOG_INFO, fac, __VA_ARGS__)
#define sk_warn(fac, ...) sk_log(SK_LOG_WARN, fac, __VA_ARGS__)
#define sk_error(fac, ...) sk_log(SK_LOG_ERROR, fac, __VA_ARGS__)

#endif
