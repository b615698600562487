/*
 * souk - the marketplace's command line.
 */
#include <stdio.h>
#include <string.h>

#include "sk_conf.h"
#include "sk_log.h"
#include "souk.h"
#include "load.h"
#include "up.h"

typedef struct command_s {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command_t;

static const command_t commands[] = {
    {"up", cmd_up, "start the broker, the services and the gateway, and supervise them"},
    {"status", cmd_status, "which processes a souk up runs: ports, readiness, consumer lag"},
    {"down", cmd_down, "stop a souk up (one started with --detach)"},
    {"demo", cmd_demo, "seed a running marketplace with demo users and catalogs"},
    {"groups", cmd_groups, "list consumer groups: state, members, their partitions, and lag per partition"},
    {"load", cmd_load, "run bookings through the saga under load and check its invariants"},
    {"check", cmd_check, "ask souk-analytics whether every invariant holds; exit 1 on any violation"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: souk COMMAND [options]\n\nCommands:\n");
    for (const command_t *c = commands; c->name; c++) fprintf(out, "  %-10s %s\n", c->name, c->help);
    fprintf(out, "\n'souk COMMAND --help' describes each command's options.\n");
}

int main(int argc, char **argv)
{
    sk_log_set_service("souk");
    sk_log_set_level(SK_LOG_WARN);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("souk %s\n", SOUK_VERSION);
        return 0;
    }
    for (const command_t *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "souk: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
