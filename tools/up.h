/*
 * up.h - souk up and the commands around it (cmd_up.c, cmd_demo.c).
 */
#ifndef SOUK_UP_H
#define SOUK_UP_H

#include <stddef.h>

int cmd_up(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/*
 * Reads <data_dir>/admin-credentials ("email=...\npassword=...\n"), or,
 * when it does not exist and create is set, makes it (mode 0600) for
 * admin@souk.local with a random password.  *created tells which.  Returns
 * 0, or -1 with a reason in err.
 */
int up_admin_credentials(const char *data_dir, int create, char *email, size_t emailsz,
                         char *password, size_t pwsz, int *created, char *err, size_t errsz);

/*
 * The running `souk up` of data_dir: the pid in <data_dir>/souk.pid if that
 * process is alive and is souk, else 0.
 */
long up_running_pid(const char *data_dir);

#endif
