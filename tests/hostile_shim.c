/* A hostile environment for one process, preloaded (LD_PRELOAD) by tests/test_hostile.py and
 * benchmarks/hostile.py. Each behaviour is switched on by an environment variable:
 *
 *   HOSTILE_NO_LINKS=1        link/linkat fail with EPERM (a file system without hard links: vfat, exFAT)
 *   HOSTILE_NO_TMPFILE=1      open(O_TMPFILE) fails with EOPNOTSUPP (likewise)
 *   HOSTILE_FAIL_RENAME=TEXT  rename* to a path containing TEXT fails with EIO (a failed final rename)
 *   HOSTILE_NO_CHMOD=1        chmod/fchmod/fchmodat fail with EPERM (vfat through FUSE)
 *   HOSTILE_SLOW_FSYNC=PATH   the first fsync creates the file PATH, then takes 3 s (a slow disk: a
 *                             window for a signal while a file is synced)
 *   HOSTILE_EXIV2_CRASH=TEXT  fopen of a path containing TEXT, called from libexiv2, raises SIGSEGV
 *                             (a crash inside the native metadata library)
 *
 * Build: gcc -shared -fPIC -O1 -o hostile_shim.so hostile_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int on(const char *name) { const char *v = getenv(name); return v && *v && strcmp(v, "0"); }

static int matches(const char *name, const char *path) {
    const char *v = getenv(name);
    return v && *v && path && strstr(path, v);
}

#define REAL(ret, fn, ...) static ret (*real_##fn)(__VA_ARGS__); \
    if (!real_##fn) real_##fn = dlsym(RTLD_NEXT, #fn)

int link(const char *a, const char *b) {
    REAL(int, link, const char *, const char *);
    if (on("HOSTILE_NO_LINKS")) { errno = EPERM; return -1; }
    return real_link(a, b);
}

int linkat(int fa, const char *a, int fb, const char *b, int flags) {
    REAL(int, linkat, int, const char *, int, const char *, int);
    if (on("HOSTILE_NO_LINKS")) { errno = EPERM; return -1; }
    return real_linkat(fa, a, fb, b, flags);
}

int rename(const char *a, const char *b) {
    REAL(int, rename, const char *, const char *);
    if (matches("HOSTILE_FAIL_RENAME", b)) { errno = EIO; return -1; }
    return real_rename(a, b);
}

int renameat(int fa, const char *a, int fb, const char *b) {
    REAL(int, renameat, int, const char *, int, const char *);
    if (matches("HOSTILE_FAIL_RENAME", b)) { errno = EIO; return -1; }
    return real_renameat(fa, a, fb, b);
}

int renameat2(int fa, const char *a, int fb, const char *b, unsigned int flags) {
    REAL(int, renameat2, int, const char *, int, const char *, unsigned int);
    if (matches("HOSTILE_FAIL_RENAME", b)) { errno = EIO; return -1; }
    return real_renameat2(fa, a, fb, b, flags);
}

int chmod(const char *p, mode_t m) {
    REAL(int, chmod, const char *, mode_t);
    if (on("HOSTILE_NO_CHMOD")) { errno = EPERM; return -1; }
    return real_chmod(p, m);
}

int fchmod(int fd, mode_t m) {
    REAL(int, fchmod, int, mode_t);
    if (on("HOSTILE_NO_CHMOD")) { errno = EPERM; return -1; }
    return real_fchmod(fd, m);
}

int fchmodat(int d, const char *p, mode_t m, int flags) {
    REAL(int, fchmodat, int, const char *, mode_t, int);
    if (on("HOSTILE_NO_CHMOD")) { errno = EPERM; return -1; }
    return real_fchmodat(d, p, m, flags);
}

static int tmpfile_refused(int flags) {
#ifdef O_TMPFILE
    return on("HOSTILE_NO_TMPFILE") && (flags & O_TMPFILE) == O_TMPFILE;
#else
    return 0;
#endif
}

int open(const char *p, int flags, ...) {
    REAL(int, open, const char *, int, ...);
    va_list ap; va_start(ap, flags); mode_t m = va_arg(ap, int); va_end(ap);
    if (tmpfile_refused(flags)) { errno = EOPNOTSUPP; return -1; }
    return real_open(p, flags, m);
}

int open64(const char *p, int flags, ...) {
    REAL(int, open64, const char *, int, ...);
    va_list ap; va_start(ap, flags); mode_t m = va_arg(ap, int); va_end(ap);
    if (tmpfile_refused(flags)) { errno = EOPNOTSUPP; return -1; }
    return real_open64(p, flags, m);
}

int openat(int d, const char *p, int flags, ...) {
    REAL(int, openat, int, const char *, int, ...);
    va_list ap; va_start(ap, flags); mode_t m = va_arg(ap, int); va_end(ap);
    if (tmpfile_refused(flags)) { errno = EOPNOTSUPP; return -1; }
    return real_openat(d, p, flags, m);
}

int openat64(int d, const char *p, int flags, ...) {
    REAL(int, openat64, int, const char *, int, ...);
    va_list ap; va_start(ap, flags); mode_t m = va_arg(ap, int); va_end(ap);
    if (tmpfile_refused(flags)) { errno = EOPNOTSUPP; return -1; }
    return real_openat64(d, p, flags, m);
}

static void crash_if_exiv2(const char *path, void *caller) {
    Dl_info info;
    if (matches("HOSTILE_EXIV2_CRASH", path) && dladdr(caller, &info) && info.dli_fname
            && strstr(info.dli_fname, "exiv2"))
        raise(SIGSEGV);
}

FILE *fopen(const char *p, const char *m) {
    REAL(FILE *, fopen, const char *, const char *);
    crash_if_exiv2(p, __builtin_return_address(0));
    return real_fopen(p, m);
}

FILE *fopen64(const char *p, const char *m) {
    REAL(FILE *, fopen64, const char *, const char *);
    crash_if_exiv2(p, __builtin_return_address(0));
    return real_fopen64(p, m);
}

int fsync(int fd) {
    REAL(int, fsync, int);
    static int done;
    const char *mark = getenv("HOSTILE_SLOW_FSYNC");
    if (mark && *mark && !done) {
        done = 1;
        REAL(FILE *, fopen, const char *, const char *);
        FILE *f = real_fopen(mark, "w");
        if (f) fclose(f);
        sleep(3);
    }
    return real_fsync(fd);
}
