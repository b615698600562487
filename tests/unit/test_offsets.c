/*
 * test_offsets.c - broker/group/offsets.h: committed consumer offsets, their
 * durability across reopen, and recovery from a torn or corrupt file.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ut.h"
#include "offsets.h"
#include "sk_clock.h"
#include "sk_fs.h"

static char root[512]; /* per run, made and removed by the parent */
static char dir[640];  /* per test */
static char path[768]; /* dir/consumer-offsets.dat */
static char errstr[256];

static void root_setup(void)
{
    ut_mkdtemp(root, sizeof root, "offsets");
}

static void root_teardown(void)
{
    sk_rm_rf(root);
}

static void dir_setup(void)
{
    snprintf(dir, sizeof dir, "%s/t-XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/consumer-offsets.dat", dir);
    errstr[0] = '\0';
}

static void dir_teardown(void)
{
    sk_rm_rf(dir);
}

static offsets_t *open_store(void)
{
    offsets_t *o = offsets_open(dir, errstr, sizeof errstr);
    ck_assert_msg(o != NULL, "offsets_open: %s", errstr);
    return o;
}

static void commit(offsets_t *o, const char *group, const char *topic, int32_t part, int64_t offset,
                   int32_t epoch, const char *md)
{
    int rc = offsets_commit(o, group, topic, part, offset, epoch, md, errstr, sizeof errstr);
    ck_assert_msg(rc == 0, "commit: %s", errstr);
}

/* Checks one stored commit; md may be NULL (a null string). */
static void expect(offsets_t *o, const char *group, const char *topic, int32_t part, int64_t offset,
                   int32_t epoch, const char *md)
{
    const offset_commit_t *c = offsets_get(o, group, topic, part);
    ck_assert_msg(c != NULL, "%s/%s/%d missing", group, topic, (int)part);
    ck_assert_int_eq(c->offset, offset);
    ck_assert_int_eq(c->leader_epoch, epoch);
    if (md) {
        ck_assert_ptr_nonnull(c->metadata);
        ck_assert_str_eq(c->metadata, md);
    } else {
        ck_assert_ptr_null(c->metadata);
    }
}

static off_t file_size(void)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

START_TEST(test_offsets_commit_get)
{
    offsets_t *o = open_store();
    ck_assert_ptr_null(offsets_get(o, "g", "t", 0));

    int64_t before = sk_wall_ms();
    commit(o, "g", "t", 0, 42, 3, "meta");
    int64_t after = sk_wall_ms();
    expect(o, "g", "t", 0, 42, 3, "meta");
    const offset_commit_t *c = offsets_get(o, "g", "t", 0);
    /* The wall clock may be stepped; a minute of slack keeps this exact enough. */
    ck_assert_int_ge(c->commit_ms, before - 60000);
    ck_assert_int_le(c->commit_ms, after + 60000);

    /* Other partitions, topics and groups are separate keys. */
    ck_assert_ptr_null(offsets_get(o, "g", "t", 1));
    ck_assert_ptr_null(offsets_get(o, "g", "u", 0));
    ck_assert_ptr_null(offsets_get(o, "h", "t", 0));
    /* The key is not a plain concatenation: "ab"+"c" differs from "a"+"bc". */
    commit(o, "ab", "c", 0, 1, -1, NULL);
    commit(o, "a", "bc", 0, 2, -1, NULL);
    expect(o, "ab", "c", 0, 1, -1, NULL);
    expect(o, "a", "bc", 0, 2, -1, NULL);
    commit(o, "g", "t", -1, 7, 0, "");
    expect(o, "g", "t", -1, 7, 0, "");
    expect(o, "g", "t", 0, 42, 3, "meta");

    /* Extreme values. */
    commit(o, "g", "t", INT32_MAX, INT64_MAX, INT32_MIN, NULL);
    expect(o, "g", "t", INT32_MAX, INT64_MAX, INT32_MIN, NULL);
    commit(o, "g", "t", 2, -1, -1, NULL);
    expect(o, "g", "t", 2, -1, -1, NULL);
    ck_assert_int_eq(offsets_flush(o), 0);
    ck_assert_int_eq(offsets_flush(o), 0); /* nothing new */
    offsets_close(o);
}
END_TEST

START_TEST(test_offsets_last_commit_wins)
{
    offsets_t *o = open_store();
    commit(o, "g", "t", 0, 5, 1, "first");
    commit(o, "g", "t", 0, 9, 2, "second");
    expect(o, "g", "t", 0, 9, 2, "second");
    /* Offsets may move backwards (a reset); the last commit still wins. */
    commit(o, "g", "t", 0, 3, 2, NULL);
    expect(o, "g", "t", 0, 3, 2, NULL);
    offsets_close(o);

    o = open_store();
    expect(o, "g", "t", 0, 3, 2, NULL);
    commit(o, "g", "t", 0, 11, 2, "after reopen");
    offsets_close(o);
    o = open_store();
    expect(o, "g", "t", 0, 11, 2, "after reopen");
    offsets_close(o);
}
END_TEST

START_TEST(test_offsets_null_metadata)
{
    offsets_t *o = open_store();
    commit(o, "g", "null", 0, 1, 0, NULL);
    commit(o, "g", "empty", 0, 2, 0, "");
    commit(o, "g", "text", 0, 3, 0, "{\"consumer\":\"c-1\"}");
    expect(o, "g", "null", 0, 1, 0, NULL);
    expect(o, "g", "empty", 0, 2, 0, "");
    offsets_close(o);

    /* Null and empty stay distinct across a reopen. */
    o = open_store();
    expect(o, "g", "null", 0, 1, 0, NULL);
    expect(o, "g", "empty", 0, 2, 0, "");
    expect(o, "g", "text", 0, 3, 0, "{\"consumer\":\"c-1\"}");
    offsets_close(o);
}
END_TEST

START_TEST(test_offsets_survive_reopen)
{
    char group[32], topic[32], md[32];
    offsets_t *o = open_store();
    for (int g = 0; g < 3; g++)
        for (int t = 0; t < 4; t++)
            for (int p = 0; p < 5; p++) {
                snprintf(group, sizeof group, "group-%d", g);
                snprintf(topic, sizeof topic, "topic.%d", t);
                snprintf(md, sizeof md, "m%d", g * 100 + t * 10 + p);
                commit(o, group, topic, p, g * 1000 + t * 100 + p, p, p % 2 ? md : NULL);
            }
    int64_t ms = offsets_get(o, "group-2", "topic.3", 4)->commit_ms;
    offsets_close(o);

    o = open_store();
    for (int g = 0; g < 3; g++)
        for (int t = 0; t < 4; t++)
            for (int p = 0; p < 5; p++) {
                snprintf(group, sizeof group, "group-%d", g);
                snprintf(topic, sizeof topic, "topic.%d", t);
                snprintf(md, sizeof md, "m%d", g * 100 + t * 10 + p);
                expect(o, group, topic, p, g * 1000 + t * 100 + p, p, p % 2 ? md : NULL);
            }
    ck_assert_int_eq(offsets_get(o, "group-2", "topic.3", 4)->commit_ms, ms);
    offsets_close(o);
}
END_TEST

START_TEST(test_offsets_torn_last_record)
{
    offsets_t *o = open_store();
    commit(o, "g", "t", 0, 10, 0, NULL);
    commit(o, "g", "t", 1, 20, 0, NULL);
    off_t good = file_size();
    commit(o, "g", "t", 0, 30, 0, "torn"); /* will be cut */
    offsets_close(o);

    for (off_t cut = 1; cut < file_size() - good; cut += 7) {
        ck_assert_int_eq(truncate(path, file_size() - cut), 0);
        o = open_store();
        /* The torn record is ignored: the previous commit for its key holds. */
        expect(o, "g", "t", 0, 10, 0, NULL);
        expect(o, "g", "t", 1, 20, 0, NULL);
        offsets_close(o);
        /* ... and cut off the file, so that later commits are readable. */
        ck_assert_int_eq(file_size(), good);
        o = open_store();
        commit(o, "g", "t", 0, 30, 0, "torn");
        offsets_close(o);
    }

    /* A commit after recovery survives the next reopen. */
    ck_assert_int_eq(truncate(path, file_size() - 3), 0);
    o = open_store();
    commit(o, "g", "t", 2, 99, 0, "new");
    offsets_close(o);
    o = open_store();
    expect(o, "g", "t", 0, 10, 0, NULL);
    expect(o, "g", "t", 2, 99, 0, "new");
    offsets_close(o);
}
END_TEST

START_TEST(test_offsets_corrupt_record)
{
    offsets_t *o = open_store();
    commit(o, "g", "t", 0, 1, 0, NULL);
    off_t first = file_size();
    commit(o, "g", "t", 1, 2, 0, NULL);
    commit(o, "g", "t", 2, 3, 0, NULL);
    offsets_close(o);

    /* A flipped bit in the second record's payload: loading stops there. */
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t c;
    ck_assert_int_eq(pread(fd, &c, 1, first + 12), 1);
    c ^= 0x04;
    ck_assert_int_eq(pwrite(fd, &c, 1, first + 12), 1);
    close(fd);

    o = open_store();
    expect(o, "g", "t", 0, 1, 0, NULL);
    ck_assert_ptr_null(offsets_get(o, "g", "t", 1));
    ck_assert_ptr_null(offsets_get(o, "g", "t", 2));
    offsets_close(o);
    ck_assert_int_eq(file_size(), first);

    /* An absurd record length is corruption too, not an allocation. */
    fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    static const uint8_t huge[12] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3, 4};
    ck_assert_int_eq(sk_write_all(fd, huge, sizeof huge), 0);
    close(fd);
    o = open_store();
    expect(o, "g", "t", 0, 1, 0, NULL);
    offsets_close(o);
    ck_assert_int_eq(file_size(), first);
}
END_TEST

typedef struct seen_s {
    int n;
    int mask; /* bit per expected (topic, partition) */
} seen_t;

static void each_cb(void *opaque, const char *topic, int32_t partition, const offset_commit_t *c)
{
    seen_t *s = opaque;
    s->n++;
    int bit = -1;
    static const struct {
        const char *topic;
        int32_t partition;
        int64_t offset;
    } want[] = {{"a", 0, 100}, {"a", 1, 101}, {"b", 0, 200}};
    for (int i = 0; i < 3; i++)
        if (strcmp(topic, want[i].topic) == 0 && partition == want[i].partition) bit = i;
    ck_assert_msg(bit >= 0, "unexpected %s/%d", topic, (int)partition);
    ck_assert_int_eq(c->offset, want[bit].offset);
    ck_assert_msg(!(s->mask & (1 << bit)), "%s/%d visited twice", topic, (int)partition);
    s->mask |= 1 << bit;
}

START_TEST(test_offsets_each)
{
    offsets_t *o = open_store();
    commit(o, "g", "a", 0, 1, 0, NULL);
    commit(o, "g", "a", 0, 100, 0, NULL); /* replaced: visited once */
    commit(o, "g", "a", 1, 101, 0, NULL);
    commit(o, "g", "b", 0, 200, 0, "x");
    commit(o, "other", "a", 0, 999, 0, NULL);
    commit(o, "gg", "a", 2, 999, 0, NULL);

    for (int pass = 0; pass < 2; pass++) {
        seen_t s = {0, 0};
        offsets_each(o, "g", each_cb, &s);
        ck_assert_int_eq(s.n, 3);
        ck_assert_int_eq(s.mask, 7);
        seen_t none = {0, 0};
        offsets_each(o, "nobody", each_cb, &none);
        ck_assert_int_eq(none.n, 0);
        offsets_close(o);
        o = open_store();
    }
    offsets_close(o);
}
END_TEST

START_TEST(test_offsets_compaction)
{
    /* Many commits to few keys: the file is rewritten to the live records
     * once it passes 1 MiB, and the values survive. */
    offsets_t *o = open_store();
    for (int i = 0; i < 40000; i++)
        commit(o, "group", "topic", i % 4, i, 0, "md");
    ck_assert_int_le(file_size(), (1 << 20) + 100); /* 40000 records would be 2 MB */
    offsets_close(o);
    char tmp[sizeof path + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0);

    o = open_store();
    for (int p = 0; p < 4; p++)
        expect(o, "group", "topic", p, 40000 - 4 + p, 0, "md");
    commit(o, "group", "topic", 0, 123456, 0, NULL);
    offsets_close(o);
    o = open_store();
    expect(o, "group", "topic", 0, 123456, 0, NULL);
    expect(o, "group", "topic", 3, 39999, 0, "md");
    offsets_close(o);
}
END_TEST

START_TEST(test_offsets_open_errors)
{
    char missing[sizeof dir + 16];
    snprintf(missing, sizeof missing, "%s/no/such/dir", dir);
    errstr[0] = '\0';
    ck_assert_ptr_null(offsets_open(missing, errstr, sizeof errstr));
    ck_assert_uint_gt(strlen(errstr), 0);
    offsets_close(NULL); /* harmless */
}
END_TEST

static Suite *offsets_suite(void)
{
    Suite *s = suite_create("offsets");
    TCase *tc = tcase_create("offsets");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_offsets_commit_get);
    tcase_add_test(tc, test_offsets_last_commit_wins);
    tcase_add_test(tc, test_offsets_null_metadata);
    tcase_add_test(tc, test_offsets_survive_reopen);
    tcase_add_test(tc, test_offsets_torn_last_record);
    tcase_add_test(tc, test_offsets_corrupt_record);
    tcase_add_test(tc, test_offsets_each);
    tcase_add_test(tc, test_offsets_compaction);
    tcase_add_test(tc, test_offsets_open_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(offsets_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
