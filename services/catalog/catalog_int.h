/*
 * catalog_int.h - what the catalog's files share: the route table
 * (catalog_http.c) and the event handler table (catalog_events.c).
 */
#ifndef CATALOG_INT_H
#define CATALOG_INT_H

#include "svc.h"

#define CAT_LOG "catalog" /* log facility */

extern const svc_route_t catalog_routes[];
extern const ev_handler_t catalog_handlers[];

/* A new random (v4) uuid, lower case, into out. */
void cat_uuid(char out[37]);

#endif
