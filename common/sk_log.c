#include "sk_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sk_buf.h"
#include "sk_clock.h"

static const char *log_service = "souk";
static sk_log_level_t log_level = SK_LOG_INFO;
static sk_log_sink_fn log_sink;
static void *log_sink_opaque;

static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

void sk_log_set_service(const char *name)
{
    log_service = name;
}

void sk_log_set_level(sk_log_level_t level)
{
    log_level = level;
}

int sk_log_level_parse(const char *s)
{
    for (int i = 0; i <= SK_LOG_ERROR; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

int sk_log_enabled(sk_log_level_t level)
{
    return level >= log_level;
}

void sk_log_set_sink(sk_log_sink_fn fn, void *opaque)
{
    log_sink = fn;
    log_sink_opaque = opaque;
}

static void log_line(sk_log_level_t level, const char *facility, const char *fields, const char *fmt,
                     va_list ap) __attribute__((format(printf, 4, 0)));

void sk_log(sk_log_level_t level, const char *facility, const char *fmt, ...)
{
    if (level < log_level) return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, facility, NULL, fmt, ap);
    va_end(ap);
}

void sk_log_fields(sk_log_level_t level, const char *facility, const char *fields, const char *fmt, ...)
{
    if (level < log_level) return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, facility, fields, fmt, ap);
    va_end(ap);
}

static void log_line(sk_log_level_t level, const char *facility, const char *fields, const char *fmt,
                     va_list ap)
{
    char ts[SK_RFC3339_LEN], msg[2048];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof msg) n = sizeof msg - 1;

    sk_buf_t b;
    sk_buf_init(&b, 256 + (size_t)n + (fields ? strlen(fields) : 0));
    sk_buf_addf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"service\":", sk_rfc3339_ms(sk_wall_ms(), ts),
                level_names[level]);
    sk_buf_add_json_str(&b, log_service, strlen(log_service));
    sk_buf_adds(&b, ",\"facility\":");
    sk_buf_add_json_str(&b, facility, strlen(facility));
    sk_buf_adds(&b, ",\"msg\":");
    sk_buf_add_json_str(&b, msg, (size_t)n);
    if (fields && *fields) {
        sk_buf_addc(&b, ',');
        sk_buf_adds(&b, fields);
    }
    sk_buf_adds(&b, "}\n");
    /* One write() per line so that lines from several processes sharing a
     * terminal or pipe do not interleave. */
    ssize_t w = write(STDERR_FILENO, b.data, b.len);
    (void)w;
    if (log_sink) log_sink(log_sink_opaque, b.data, b.len - 1);
    sk_buf_release(&b);
}
