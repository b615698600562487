/*
 * sk_fs.h - small file-system helpers with errno-style results.
 * All return 0 on success and -1 with errno set on failure.
 */
#ifndef SK_FS_H
#define SK_FS_H

#include <stddef.h>
#include <sys/types.h>

int sk_mkdir_p(const char *path, mode_t mode);
int sk_fsync_dir(const char *path);
/* write()/pread() until done or error (EINTR retried); pread returns bytes read (short at EOF). */
int sk_write_all(int fd, const void *p, size_t n);
ssize_t sk_pread_all(int fd, void *p, size_t n, off_t off);
/* Removes a directory tree (for tests and topic deletion). */
int sk_rm_rf(const char *path);

#endif
