/*
 * load.h - souk load: the load generator and invariant checker of the
 * booking saga (load.c).
 */
#ifndef SOUK_LOAD_H
#define SOUK_LOAD_H

/*
 * Creates users and catalogs through HTTP as the admin, runs --bookings
 * bookings (closed loop at --concurrency, or open loop at --rate per
 * second), pays them (--pay auto|card), waits until every booking is
 * terminal, then checks the saga's invariants from the services' own APIs.
 * Returns 0 when every invariant held, 1 when one failed or bookings did
 * not finish, 2 on a usage or setup error.
 */
int cmd_load(int argc, char **argv);

#endif
