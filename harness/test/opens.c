/*
 * opens.c: the grader's watch on the files a test's process opens (opens.h).
 */
#define _GNU_SOURCE /* SCM_RIGHTS, syscall */
#include "opens.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------
 * handing the listener over (the child's side, then the runner's)
 * ---------------------------------------------------------------------------------- */

int opens_install(const void *filter, size_t len, int sock) {
    struct sock_fprog prog = {(unsigned short)(len / sizeof(struct sock_filter)),
                              (struct sock_filter *)filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (listener < 0) return -1;
    char byte = 'L', ctl[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec io = {&byte, 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &listener, sizeof(int));
    int rc = sendmsg(sock, &m, 0) == 1 ? 0 : -1;
    close(listener), close(sock);
    return rc;
}

int opens_receive(int sock) {
    char byte, ctl[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec io = {&byte, 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    int fd = -1;
    ssize_t got;
    while ((got = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
    struct cmsghdr *c = got == 1 ? CMSG_FIRSTHDR(&m) : NULL;
    if (c && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

/* ------------------------------------------------------------------------------------
 * which files: the runtime's, read-only (the filter kills an open for writing)
 * ---------------------------------------------------------------------------------- */

/* Lexical: "/a/./b/../c" is "/a/c" (the sandbox's /proc/self is a link, never followed
 * here). In place; path is absolute. */
static void normalize(char *path) {
    char *w = path;
    for (char *s = path; *s;) {
        while (*s == '/') s++;
        size_t n = strcspn(s, "/");
        if (n == 1 && s[0] == '.') {
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (w > path && *--w != '/') {}
        } else if (n) {
            *w++ = '/';
            memmove(w, s, n);
            w += n;
        }
        s += n;
    }
    if (w == path) *w++ = '/';
    *w = '\0';
}

static int under(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* opens_allow_dir's directory, or "" */
static char extra_dir[4096];

void opens_allow_dir(const char *dir) { snprintf(extra_dir, sizeof extra_dir, "%s", dir); }

int opens_allowed(const char *path) {
    if (extra_dir[0] && under(path, extra_dir)) return 1;
    static const char *const DIRS[] = {"/usr", "/lib", "/lib64", "/sys/devices/system/cpu"};
    static const char *const FILES[] = {"/etc/ld.so.cache", "/dev/null", "/dev/zero",
                                        "/dev/urandom", "/proc/self/maps", "/proc/self/status",
                                        "/proc/self/stat", "/proc/cpuinfo", "/proc/meminfo",
                                        "/proc/stat", "/sys/fs/cgroup/cpu.max"};
    for (size_t i = 0; i < sizeof DIRS / sizeof *DIRS; i++)
        if (under(path, DIRS[i])) return 1;
    for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++)
        if (!strcmp(path, FILES[i])) return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * one open, answered
 * ---------------------------------------------------------------------------------- */

/* The NUL-terminated string at addr in process pid, into buf; 0, or -1. */
static int read_string(int pid, unsigned long long addr, char *buf, size_t len) {
    char mem[64];
    snprintf(mem, sizeof mem, "/proc/%d/mem", pid);
    int fd = open(mem, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t have = 0;
    while (have + 1 < len && !memchr(buf, '\0', have)) {
        size_t page_left = 4096 - (size_t)((addr + have) % 4096), want = len - 1 - have;
        ssize_t got = pread(fd, buf + have, want < page_left ? want : page_left, (off_t)(addr + have));
        if (got <= 0) break;
        have += (size_t)got;
    }
    close(fd);
    buf[have < len ? have : len - 1] = '\0';
    return have ? 0 : -1;
}

/* The absolute path the open names: relative ones against the directory (dirfd) or the
 * working directory of pid. */
static void absolute(int pid, long long dirfd, const char *path, char *out, size_t len) {
    char link[64], dir[2048] = "/";
    if (path[0] != '/') {
        if (dirfd == AT_FDCWD) snprintf(link, sizeof link, "/proc/%d/cwd", pid);
        else snprintf(link, sizeof link, "/proc/%d/fd/%lld", pid, dirfd);
        ssize_t n = readlink(link, dir, sizeof dir - 1);
        dir[n > 0 ? n : 0] = '\0';
    }
    snprintf(out, len, "%s/%s", dir, path);
    normalize(out);
}

void opens_answer(int listener, char *why, size_t len) {
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    memset(&req, 0, sizeof req);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return;
    int at = req.data.nr == SYS_openat; /* open(path, ...) or openat(dirfd, path, ...) */
    char path[4096] = "", full[6200];
    int got = read_string((int)req.pid, req.data.args[at], path, sizeof path);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) != 0) return; /* it has gone */
    absolute((int)req.pid, at ? (long long)(int)req.data.args[0] : AT_FDCWD, path, full, sizeof full);
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    if (got == 0 && opens_allowed(full)) resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    else {
        resp.error = -EACCES;
        if (!why[0])
            snprintf(why, len, "forbidden file: the test opened %.300s, which it does not need "
                     "(the sandbox holds none of the kit, the fixtures or other work)", full);
    }
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}
