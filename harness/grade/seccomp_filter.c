/*
 * seccomp_filter.c: writes the system-call filter the grader puts on a test's process.
 *
 *   seccomp_filter OUT.bpf
 *
 * The bubblewrap sandbox (grade.sh) decides what a submission can see; this filter decides
 * what it can do. Lesson code computes: it reads and writes memory, and at most starts
 * threads (OpenMP). So a test's process is killed (SIGSYS, "Bad system call") on the first
 * call that no lesson needs and an attack does:
 *   - a new process or program: fork, vfork, clone without CLONE_THREAD, execve;
 *   - writing the file system: open for writing or creating, unlink, rename, mkdir, link,
 *     chmod, chown, truncate, mknod;
 *   - another process's memory: ptrace, process_vm_readv/writev;
 *   - leaving the session or the namespaces: setsid, setpgid, unshare, setns, mount, chroot;
 *   - the network, and typing into a terminal (ioctl TIOCSTI);
 *   - kernel interfaces with a record of exploits: bpf, perf_event_open, keyctl, userfaultfd.
 * An open for reading goes to the runner, which opens it if the test needs it and names it
 * otherwise (harness/test/opens.h). clone3 fails with ENOSYS instead, so that glibc's pthread_create falls back to clone,
 * whose flags the filter can read. The runner installs the filter in each test's child
 * (check --seccomp FILE), after the fork and before the student's code runs; the grader
 * uses it for the plain build (the sanitizers' runtimes fork a symbolizer and clone a
 * tracer). Built with libseccomp, the library behind the filters of Docker and systemd.
 */
#define _GNU_SOURCE /* CLONE_THREAD */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *const KILLED[] = {
    "fork", "vfork", "execve", "execveat",
    "creat", "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat",
    "rmdir", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat",
    "chown", "fchown", "lchown", "fchownat", "truncate", "ftruncate", "mknod", "mknodat",
    "ptrace", "process_vm_readv", "process_vm_writev",
    "setsid", "setpgid", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
    "personality", "kexec_load", "init_module", "finit_module", "open_by_handle_at",
};

/* open and openat with any of these flags: writing or creating a file */
static const int WRITE_FLAGS[] = {O_WRONLY, O_RDWR, O_CREAT, O_TRUNC};

static int add_rules(scmp_filter_ctx f) {
    int rc = 0;
    for (size_t i = 0; i < sizeof KILLED / sizeof *KILLED; i++) {
        int nr = seccomp_syscall_resolve_name(KILLED[i]);
        if (nr != __NR_SCMP_ERROR) rc |= seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, nr, 0);
    }
    scmp_datum_t w = 0; /* all of WRITE_FLAGS: an open with none of them only reads */
    for (size_t i = 0; i < sizeof WRITE_FLAGS / sizeof *WRITE_FLAGS; i++) {
        scmp_datum_t m = (scmp_datum_t)WRITE_FLAGS[i];
        w |= m;
        rc |= seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(open), 1,
                               SCMP_A1(SCMP_CMP_MASKED_EQ, m, m));
        rc |= seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(openat), 1,
                               SCMP_A2(SCMP_CMP_MASKED_EQ, m, m));
    }
    rc |= seccomp_rule_add(f, SCMP_ACT_NOTIFY, SCMP_SYS(open), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, w, 0));
    rc |= seccomp_rule_add(f, SCMP_ACT_NOTIFY, SCMP_SYS(openat), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, w, 0));
    rc |= seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
    rc |= seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(ioctl), 1,
                           SCMP_A1(SCMP_CMP_EQ, TIOCSTI, 0));
    rc |= seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    rc |= seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seccomp_filter OUT.bpf\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "wb");
    if (!out) return perror(argv[1]), 2;
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    int rc = !f || add_rules(f) != 0 || seccomp_export_bpf(f, fileno(out)) != 0;
    if (f) seccomp_release(f);
    if (fclose(out) != 0 || rc) {
        fprintf(stderr, "seccomp_filter: cannot write the filter to %s\n", argv[1]);
        return 2;
    }
    return 0;
}
