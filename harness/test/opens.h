/*
 * opens.h: the grader's watch on the files a test's process opens.
 *
 * In `make grade`, the sandbox (bubblewrap) holds none of the kit, the fixtures' expected
 * values or other students' work, so a test that goes looking for them finds nothing. The
 * watch names the attempt. The system-call filter (harness/grade/seccomp_filter.c) sends
 * every open for reading to the runner, which answers it (seccomp's user notification,
 * SECCOMP_RET_USER_NOTIF, seccomp_unotify(2)): a file the test needs is opened as asked,
 * any other is refused with EACCES and named on the tape ("forbidden file").
 *
 * The watch reports; it is not the barrier. The path it reads is the student's memory,
 * which another thread can change after the check (seccomp_unotify(2), "Design goals"):
 * what keeps a file out of reach is that the sandbox does not hold it.
 *
 *   child, after fork:    opens_install(filter, len, sock)   the filter, its listener to sock
 *   runner (the parent):  listener = opens_receive(sock)     then, on each poll wake-up,
 *                         opens_answer(listener, why, len)   why: the first refusal
 */
#ifndef MOEKIT_OPENS_H
#define MOEKIT_OPENS_H

#include <stddef.h>

/* Installs the BPF filter (len bytes) with a listener, sends the listener over the unix
 * socket sock and closes both: the student's code never holds it. 0, or -1 (errno set). */
int opens_install(const void *filter, size_t len, int sock);
/* The listener the child sent over sock, or -1. */
int opens_receive(int sock);
/* Answers one pending open: allowed, or refused (EACCES) with its story in why (kept when
 * why already holds one). */
void opens_answer(int listener, char *why, size_t len);
/* 1 when a test may open path (absolute, normalized): the runtime's files, and what is
 * under opens_allow_dir's directory; nothing else. */
int opens_allowed(const char *path);
/* The runner, before its first fork: the tests may also read what is under dir (absolute,
 * normalized; one directory: lesson 12's MPI job writes its cases' files there). */
void opens_allow_dir(const char *dir);

#endif
