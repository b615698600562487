/*
 * ut.h - small helpers shared by the unit tests.
 */
#ifndef SOUK_UT_H
#define SOUK_UT_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* Makes a fresh directory "$TMPDIR/souk-test-NAME-XXXXXX" (TMPDIR defaults
 * to /tmp) into buf, failing the test if it cannot.  Remove it with
 * sk_rm_rf(). */
static inline void ut_mkdtemp(char *buf, size_t n, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, n, "%s/souk-test-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

#endif
