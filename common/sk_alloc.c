#include "sk_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sk_oom(size_t size)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n",
            size);
    abort();
}

void *sk_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) sk_oom(size);
    return p;
}

void *sk_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p) sk_oom(nmemb * size);
    return p;
}

void *sk_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p) sk_oom(size);
    return p;
}

char *sk_strdup(const char *s)
{
    return sk_strndup(s, strlen(s));
}

char *sk_strndup(const char *s, size_t n)
{
    char *p = sk_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *sk_memdup(const void *src, size_t n)
{
    void *p = sk_malloc(n);
    if (n) memcpy(p, src, n);
    return p;
}
