/*
 * sk_conf.h - one table per program describes every setting.
 *
 * Each entry names a setting, its type, where it lives in the program's config
 * struct, its default, its bounds and a line of help.  sk_conf_load() fills
 * the struct from, in increasing priority: the defaults, the environment twin
 * of each setting (--data-dir -> SOUK_DATA_DIR), and the command line
 * (--name value, --name=value; a bool also takes --name and --no-name).
 * --help prints the table; --version prints the version.
 *
 * Field types: SK_CONF_INT and SK_CONF_SIZE fill an int64_t (SIZE accepts
 * k, m, g suffixes, powers of 1024); SK_CONF_BOOL fills an int (0/1);
 * SK_CONF_STR fills a char * that the struct owns (free with
 * sk_conf_release()).
 */
#ifndef SK_CONF_H
#define SK_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { SK_CONF_INT, SK_CONF_SIZE, SK_CONF_BOOL, SK_CONF_STR } sk_conf_type_t;

typedef struct sk_conf_entry_s {
    const char *name; /* without the leading dashes; NULL ends the table */
    sk_conf_type_t type;
    size_t offset; /* offsetof(config struct, field) */
    const char *def; /* default as text; NULL for an empty string setting */
    int64_t min, max; /* bounds for INT and SIZE (inclusive) */
    const char *help;
} sk_conf_entry_t;

typedef struct sk_conf_prog_s {
    const char *name;    /* "souk-broker" */
    const char *summary; /* one line under the usage */
    const char *usage_args; /* after "[options]", e.g. "[GROUP]"; may be NULL */
    int max_positional;  /* how many positional arguments are allowed */
} sk_conf_prog_t;

enum { SK_CONF_OK = 0, SK_CONF_EXIT = 1, SK_CONF_ERROR = -1 };

/*
 * Fills cfg.  Returns SK_CONF_OK; SK_CONF_EXIT after printing --help or
 * --version to stdout (the caller exits 0); SK_CONF_ERROR with a message in
 * err (the caller prints it and exits 2).  Positional arguments are stored in
 * positional[] (borrowed from argv) and counted in *npositional; both may be
 * NULL when max_positional is 0.
 */
int sk_conf_load(const sk_conf_prog_t *prog, const sk_conf_entry_t *table, void *cfg, int argc,
                 char **argv, const char **positional, int *npositional, char *err, size_t errsz);
void sk_conf_release(const sk_conf_entry_t *table, void *cfg);
void sk_conf_print_help(const sk_conf_prog_t *prog, const sk_conf_entry_t *table, FILE *out);
/* "SOUK_DATA_DIR" for "data-dir"; out must hold strlen(name) + 6 bytes. */
void sk_conf_env_name(const char *name, char *out, size_t outsz);
/* Parses a size such as "64m" into *out; returns 0 or -1. */
int sk_conf_parse_size(const char *s, int64_t *out);

#define SOUK_VERSION "0.1.0"

#endif
