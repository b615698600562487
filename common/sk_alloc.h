/*
 * sk_alloc.h - checked allocation.
 *
 * Every allocation in souk goes through these wrappers.  They never return
 * NULL: on out-of-memory they log one line to stderr and abort(), as Redis'
 * zmalloc and git's xmalloc do.  A process that cannot allocate a few bytes
 * cannot keep any promise it made to a client, so dying loudly is the only
 * honest option.  Free with plain free().
 */
#ifndef SK_ALLOC_H
#define SK_ALLOC_H

#include <stddef.h>

void *sk_malloc(size_t size);
void *sk_calloc(size_t nmemb, size_t size);
void *sk_realloc(void *ptr, size_t size);
char *sk_strdup(const char *s);
char *sk_strndup(const char *s, size_t n);
/* Duplicate n bytes of arbitrary data (no terminator added). */
void *sk_memdup(const void *p, size_t n);

#endif
