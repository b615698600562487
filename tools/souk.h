/*
 * souk.h - the `souk` command line: one function per subcommand, listed in
 * the table in souk.c.  Each gets argv from its own name on and returns the
 * process exit code (0 ok, 1 failure, 2 usage error).
 */
#ifndef SOUK_TOOLS_H
#define SOUK_TOOLS_H

int cmd_groups(int argc, char **argv);
int cmd_check(int argc, char **argv);

#endif
