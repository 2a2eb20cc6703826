/*
 * check_main.c: the test runner behind `make check`.
 *
 *   check [--lesson 03|rope|03-rope] [--fixtures DIR] [--tree lessons|solutions]
 *         [--timeout SECONDS] [--full] [--seed N] [--no-fork] [--list] [--current]
 *         [--results FILE [--tag WORD] [--cases] [--max-timeouts N]]
 *
 * Every test runs in a child process with a time limit, so a crash or an endless loop
 * in one lesson costs that test only. One line per test; the full story only for the
 * first failure of each lesson; a test's line is `STATUS FUNC, case ID "TITLE"`. Run over
 * all lessons, a lesson that passes completely, or one not started yet (past the one to
 * work on), shrinks to one line unless --full; a progress table follows. An optional
 * lesson (after lesson 08) not started yet is neither counted nor pointed at: with lessons
 * 01-08 passing, the run says the core is done. --full also prints every comparison's max
 * error on a pass. A run of one lesson that passes names the next lesson, its README and
 * its goal. The property checks (check.h) draw their inputs from --seed N, or from a fresh
 * seed that the run prints. Ends with "N done, M todo, K failing" (tests: passed, still at
 * a TODO, failed); exit 1 unless every test is done.
 *
 * --current prints the lesson to work on ("03-rope", or "done") and nothing else.
 * --results appends one tab-separated record per test for the grader (make grade):
 *     TAG LESSON FUNC CASE STATUS WHY REPORT
 * STATUS is ok, FAIL, todo, ERROR, CRASH, TIMEOUT, MEMORY (an AddressSanitizer or
 * UndefinedBehaviorSanitizer report), LEAK (a LeakSanitizer report), UNCHECKED (a
 * sanitizer that could not run) or SKIP; WHY is one
 * line; REPORT what the test printed. Tabs, newlines and backslashes are escaped as \t,
 * \n and \\. With --cases the runner runs nothing and writes one record per case with
 * STATUS "expected": the list a grade is made of. --max-timeouts N: after N tests of a
 * lesson time out, its remaining tests are recorded as SKIP (an endless loop costs N
 * time limits, not one per test).
 *
 * The grader's two halves (check.h, "run first, judge after"; tape.h):
 *   check --strip DIR ...        built with the solutions: writes DIR/NN-name.tK.safetensors,
 *                                test K's fixture without the values it expects
 *   check --record-fd N ...      built with the student's code, in the sandbox, --fixtures
 *                                the stripped ones: writes the tape to descriptor N
 *                                (--test K: the lesson's K-th test only, 0 the first;
 *                                --seccomp FILE: that system-call filter on each test)
 *   check --judge TAPE ...       built with the solutions: the verdicts, from the tape and
 *                                the whole fixture; --results as above
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_internal.h"
#include "clock.h"
#include "file.h"
#include "moekit.h"
#include "opens.h"
#include "strip.h"
#include "tape.h"

/* A sanitizer that finds a problem in a test's child exits with this status, so that the
 * runner can tell its report from an ordinary test failure (status 1). */
#define SANITIZER_EXIT 66
/* A test's child that ran its test to the end exits with CHILD_DONE + its TestStatus. Any
 * other exit, 0 included, was the lesson code's own exit() or _exit() in the middle. */
#define CHILD_DONE 40

/* Read by the sanitizer runtimes at start-up when the runner is built with SANITIZE=1;
 * ASAN_OPTIONS / UBSAN_OPTIONS / LSAN_OPTIONS still override them.
 * intercept_tls_get_addr=0: clang 14's runtime on glibc 2.36 (Debian 12) can record a
 * garbage dynamic-TLS range (libomp's) in a test's forked child, and LeakSanitizer's
 * tracer then dies scanning it ("Tracer caught signal 11", the test an ERROR), depending
 * only on the memory layout (it came and went with a fixture file's size). The kit keeps
 * no heap pointer in dynamic TLS, so the leak check loses nothing by not tracking it. */
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);
const char *__asan_default_options(void) { return "exitcode=66:intercept_tls_get_addr=0"; }
const char *__ubsan_default_options(void) { return "exitcode=66:print_stacktrace=1"; }

typedef struct {
    const char *fixtures; /* directory of NN-name.safetensors */
    const char *tree;     /* where the lesson sources are: shown in messages */
    const char *only;     /* one lesson, or NULL for all */
    int timeout;
    int fork_tests;
    int full;             /* every test line, even for lessons that shrink to one; and the
                           * max error of every comparison, even on a pass */
    unsigned long seed;   /* the property checks' random inputs (--seed, or a fresh one) */
    int seed_given;
    int current;          /* --current */
    const char *results;  /* --results FILE, or NULL */
    const char *tag;      /* --tag: first field of every record */
    int cases_only;       /* --cases: record every case as "expected", run nothing */
    int max_timeouts;     /* --max-timeouts: then SKIP the lesson's other tests (0: never) */
    FILE *rec;            /* the open results file */
    int color;            /* stdout is a terminal that takes colour */
    Role role;            /* ROLE_CHECK unless one of the three below */
    int record_fd;        /* --record-fd: ROLE_RUN, the tape's descriptor */
    const char *judge;    /* --judge TAPE: ROLE_JUDGE */
    const char *strip;    /* --strip DIR: ROLE_STRIP */
    int only_test;        /* --test K: only the lesson's K-th test (0 = the first); -1 all */
    const char *seccomp;  /* --seccomp FILE: a BPF filter for each test's child */
    char *filter;         /* its bytes */
    size_t filter_len;
    FILE *tape;           /* ROLE_RUN: the open tape */
    Tape recorded;        /* ROLE_JUDGE: the tape, read */
} Options;

typedef struct {
    int passed, total, todo;
    int diagnosed; /* a named mistake has been shown for this lesson */
    int timeouts;
} LessonResult;

/* How a test's child ended, beyond the status it returned. */
/* END_TOOL: a sanitizer could not do its work here (LeakSanitizer under ptrace, say): no
 * verdict on the student's code. */
typedef enum { END_NORMAL, END_CRASH, END_TIMEOUT, END_TOOL, END_MEMORY, END_LEAK } Ending;

static const char *STATUS_WORD[] = {"ok", "FAIL", "todo", "ERROR"};
static const char *ENDING_WORD[] = {"", "CRASH", "CRASH", "ERROR", "MEMORY", "LEAK"};
static const char *RECORD_WORD[] = {"", "CRASH", "TIMEOUT", "UNCHECKED", "MEMORY", "LEAK"};

/* ------------------------------------------------------------------------------------
 * terminal colours (only on a terminal, and not with NO_COLOR set)
 * ---------------------------------------------------------------------------------- */

static const char *paint(const Options *o, const char *code) { return o->color ? code : ""; }
#define BOLD "\033[1m"
#define GREEN "\033[32m"
#define RED "\033[31m"
#define YELLOW "\033[33m"
#define RESET "\033[0m"

static int want_color(void) {
    const char *term = getenv("TERM");
    return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && term && strcmp(term, "dumb") != 0;
}

/* ------------------------------------------------------------------------------------
 * what a sanitizer said
 * ---------------------------------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The line of text that starts at s, without its newline: its length. */
static int line_len(const char *s) { return (int)strcspn(s, "\n"); }

/* 1 when the line that starts at s holds needle. */
static int line_has(const char *s, const char *needle) {
    int n = line_len(s), m = (int)strlen(needle);
    for (int i = 0; i + m <= n; i++)
        if (!strncmp(s + i, needle, (size_t)m)) return 1;
    return 0;
}

/* 1 when s[0 .. n) names a file in a lesson directory: "/NN-" or "NN-" at the start. */
static int in_lesson_dir(const char *s, int n) {
    for (int i = 0; i + 3 <= n; i++)
        if ((i == 0 || s[i - 1] == '/') && s[i] >= '0' && s[i] <= '9' && s[i + 1] >= '0' &&
            s[i + 1] <= '9' && s[i + 2] == '-')
            return 1;
    return 0;
}

/* "rmsnorm.c:25": the file name and line of s[0 .. n) = "path/rmsnorm.c:25[:13]". */
static void short_location(char *buf, size_t len, const char *s, int n) {
    const char *base = s;
    for (int i = 0; i < n; i++)
        if (s[i] == '/') base = s + i + 1;
    int m = (int)(s + n - base), colons = 0;
    for (int i = 0; i < m; i++)
        if (base[i] == ':' && ++colons == 2) m = i;
    snprintf(buf, len, "%.*s", m, base);
}

/* From the first stack frame ("#N 0x... in FUNC PATH:LINE:COL") in a lesson file: FUNC
 * and "file.c:LINE". 0 when no frame is in lesson code. */
static int lesson_frame(const char *report, char *where, size_t wlen, char *func, size_t flen) {
    for (const char *line = report; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *s = line + strspn(line, " ");
        int n = line_len(s);
        const char *in = strstr(s, " in ");
        if (*s != '#' || !in || in >= s + n) continue;
        const char *f = in + 4, *sp = strchr(f, ' ');
        if (!sp || sp >= s + n) continue;
        const char *loc = sp + 1;
        int loc_n = (int)(s + n - loc);
        if (*loc == '(' || !line_has(loc, ".c:") || !in_lesson_dir(loc, loc_n)) continue; /* a source line */
        short_location(where, wlen, loc, loc_n);
        snprintf(func, flen, "%.*s", (int)(sp - f), f);
        return 1;
    }
    return 0;
}

/* One line that says what the sanitizer found, and where in the lesson code. */
static Ending sanitizer_summary(const char *report, char *why, size_t len) {
    char where[160] = "", func[96] = "";
    if (!report) report = "";
    int have = lesson_frame(report, where, sizeof where, func, sizeof func);
    const char *ub = strstr(report, ": runtime error: ");
    const char *asan = strstr(report, "ERROR: AddressSanitizer: ");
    if (strstr(report, "LeakSanitizer has encountered a fatal error")) {
        snprintf(why, len, "LeakSanitizer cannot run here (under a debugger or strace?): "
                 "ASAN_OPTIONS=detect_leaks=0 turns it off");
        return END_TOOL;
    }
    if (strstr(report, "ERROR: LeakSanitizer:")) {
        if (have) snprintf(why, len, "LeakSanitizer: memory allocated in %s (%s) is never freed", func, where);
        else snprintf(why, len, "LeakSanitizer: memory that is allocated is never freed");
        return END_LEAK;
    }
    if (ub) { /* "path/rmsnorm.c:25:13: runtime error: index 13 out of bounds ..." */
        const char *line = ub;
        while (line > report && line[-1] != '\n') line--;
        const char *msg = ub + strlen(": runtime error: ");
        short_location(where, sizeof where, line, (int)(ub - line));
        snprintf(why, len, "UndefinedBehaviorSanitizer at %s: %.*s", where, line_len(msg), msg);
        return END_MEMORY;
    }
    if (asan) {
        const char *kind = asan + strlen("ERROR: AddressSanitizer: ");
        int n = (int)strcspn(kind, " \n");
        if (have) snprintf(why, len, "AddressSanitizer: %.*s in %s (%s)", n, kind, func, where);
        else snprintf(why, len, "AddressSanitizer: %.*s", n, kind);
        return END_MEMORY;
    }
    snprintf(why, len, "a sanitizer stopped it (its report is below)");
    return END_MEMORY;
}

/* ------------------------------------------------------------------------------------
 * running one test in a child process
 * ---------------------------------------------------------------------------------- */

/* BAIL_RECORDED: the sandbox has recorded all it can (the test read an expected value) */
static TestStatus run_here(TestCtx *ctx, const TestDef *t) {
    TestStatus st;
    /* a property check's draws: the same for a test and case in every role, for one seed */
    ctx->rng = ctx->seed;
    for (const char *p = t->func; *p; p++) ctx->rng = ctx->rng * 1099511628211ULL + (unsigned char)*p;
    for (const char *p = ctx->case_id; *p; p++) ctx->rng = ctx->rng * 1099511628211ULL + (unsigned char)*p;
    int bail = setjmp(ctx->bail);
    if (bail == 0) st = t->run(ctx);
    else st = bail == BAIL_RECORDED ? TEST_PASS : TEST_ERROR;
    ctx_free_all(ctx);
    return st;
}

/* In the grader's sandbox the runner is process 2 of a new PID namespace (1 is bubblewrap's
 * init), and nothing else should be running yet. A process that is, started before main:
 * from a constructor in the student's code, which runs before the filter. Written on the
 * tape for the judge to name; the sandbox ends it with the test. */
static void report_strangers(FILE *tape) {
    DIR *d = getpid() == 2 && getppid() == 1 ? opendir("/proc") : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid = strtol(e->d_name, NULL, 10);
        if (pid > 2) {
            char what[160];
            snprintf(what, sizeof what, "another process (pid %ld) was running before the tests "
                     "began: one started from a constructor (forbidden)", pid);
            tape_problem(tape, what);
            break;
        }
    }
    if (d) closedir(d);
}

/* The grader's system-call filter (harness/grade/seccomp_filter.c) on this process, from
 * here on: the test's child, before the student's code runs. Its listener for opens goes
 * to the runner over sock (opens.h). Exits 2 if it cannot. */
static void install_filter(const Options *o, int sock) {
    if (opens_install(o->filter, o->filter_len, sock) == 0) return;
    perror("check: --seccomp");
    exit(2);
}

/* clang's OpenMP runtime (libomp) creates a file in /dev/shm when it starts, which the
 * filter forbids: it starts here, in the runner, before the first test's fork (a forked
 * child keeps it). gcc's libgomp needs none of this. */
static void start_openmp(void) {
#ifdef _OPENMP
    int threads = 0;
#pragma omp parallel reduction(+ : threads)
    threads += 1;
    (void)threads;
#endif
}

static const char *signal_hint(int sig) {
    switch (sig) {
    case SIGSEGV:
    case SIGBUS:
        return " (a read or write outside a buffer? `make check SANITIZE=1` names the line)";
    case SIGFPE: return " (an integer division by zero?)";
    case SIGABRT: return " (an assert() failed, or free() of a pointer malloc did not give)";
    case SIGSYS: return " (a call the grader forbids: a new process or program, a file written, another process's memory, the network)";
    default: return "";
    }
}

/* The grader's watch on a test's opens (opens.h): its listener, or -1 without the filter,
 * and the first open it refused. */
typedef struct {
    int listener;
    char refused[700];
} Watch;

/* 1 when fd has something to read (or its end) within ms milliseconds. An open the child
 * waits on is answered meanwhile. */
static int readable(int fd, int ms, Watch *w) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {w->listener, POLLIN, 0}};
    if (poll(p, w->listener >= 0 ? 2 : 1, ms) <= 0) return 0;
    if (w->listener >= 0 && (p[1].revents & POLLIN))
        opens_answer(w->listener, w->refused, sizeof w->refused);
    return (p[0].revents & (POLLIN | POLLHUP)) != 0;
}

/* 1 when the child has ended (its status in *wstatus). */
static int ended(pid_t pid, int *wstatus) {
    pid_t done = waitpid(pid, wstatus, WNOHANG);
    return done == pid || (done < 0 && errno != EINTR);
}

/* Waits for the child until the deadline, then kills it (in the sandbox, with every
 * process it started: its process group). 1 when it had to be killed. */
static int reap(pid_t pid, int *wstatus, double deadline, const Options *o) {
    for (long nap_ns = 100000;; nap_ns = nap_ns < 10000000 ? nap_ns * 2 : nap_ns) {
        if (ended(pid, wstatus)) return 0;
        if (now_seconds() > deadline) break;
        nanosleep(&(struct timespec){0, nap_ns}, NULL); /* 0.1 ms, doubling up to 10 ms */
    }
    kill(o->role == ROLE_RUN ? -pid : pid, SIGKILL);
    while (waitpid(pid, wstatus, 0) < 0 && errno == EINTR) {}
    return 1;
}

/* Collects the child's output (its report, printed after the status line) and returns
 * how it ended; *ending and why say more when it did not end normally. Reading stops at
 * the pipe's end, once the child has ended (a process it started may hold the pipe
 * open), or at the child's time limit and two seconds more. */
static TestStatus wait_child(pid_t pid, int fd, Watch *w, const Options *o, char **report,
                             Ending *ending, char *why, size_t why_len) {
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap + 1);
    ssize_t got;
    double deadline = now_seconds() + o->timeout + 2;
    int wstatus, gone = 0;
    while (buf && now_seconds() < deadline) {
        if (!readable(fd, 50, w)) {
            if (gone) break; /* ended, and nothing more came */
            gone = ended(pid, &wstatus);
            continue;
        }
        if ((got = read(fd, buf + len, cap - len)) == 0) break;
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) break;
        len += (size_t)got;
        if (len == cap && len < (1u << 20)) {
            char *bigger = realloc(buf, (cap *= 2) + 1);
            if (!bigger) break;
            buf = bigger;
        } else if (len == cap) break; /* 1 MiB of output is enough of a story */
    }
    int flood = len == cap && cap >= (1u << 20);
    if (buf) buf[len] = '\0';
    *report = buf;
    close(fd);
    int killed = !gone && reap(pid, &wstatus, deadline, o);
    *ending = END_NORMAL;
    why[0] = '\0';
    if (killed) {
        *ending = END_TIMEOUT;
        snprintf(why, why_len, "timed out after %d s (and the alarm did not stop it)", o->timeout);
        return TEST_FAIL;
    }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) >= CHILD_DONE &&
        WEXITSTATUS(wstatus) <= CHILD_DONE + TEST_ERROR)
        return (TestStatus)(WEXITSTATUS(wstatus) - CHILD_DONE);
    if (flood && WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGPIPE) {
        *ending = END_CRASH;
        snprintf(why, why_len, "stopped after printing 1 MiB (an output flood?)");
    } else if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGALRM) {
        *ending = END_TIMEOUT;
        snprintf(why, why_len, "timed out after %d s (an endless loop?)", o->timeout);
    } else if (WIFSIGNALED(wstatus)) {
        *ending = END_CRASH;
        snprintf(why, why_len, "%s%s", strsignal(WTERMSIG(wstatus)), signal_hint(WTERMSIG(wstatus)));
    } else if (WEXITSTATUS(wstatus) == SANITIZER_EXIT) {
        *ending = sanitizer_summary(buf, why, why_len);
    } else {
        *ending = END_CRASH;
        snprintf(why, why_len, "exited with status %d before the test ended (exit() or _exit() in "
                 "lesson code?)", WEXITSTATUS(wstatus));
    }
    return TEST_FAIL;
}

static TestStatus run_forked(TestCtx *ctx, const TestDef *t, const Options *o, char **report,
                             Ending *ending, char *why, size_t why_len) {
    int fds[2], sv[2] = {-1, -1};
    fflush(NULL);
    if (pipe(fds) != 0 || (o->filter && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))) {
        perror("check: pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("check: fork");
        exit(2);
    }
    if (pid == 0) {
        close(fds[0]);
        if (o->rec) close(fileno(o->rec)); /* the records are the runner's to write */
        if (o->tape) fflush(o->tape);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        if (o->role == ROLE_RUN) setpgid(0, 0); /* one group: killed as a whole */
        alarm((unsigned)o->timeout);
        if (o->filter) close(sv[0]), install_filter(o, sv[1]);
        TestStatus st = run_here(ctx, t);
        fflush(NULL);
        /* under the filter, no exit handlers: libomp's unlinks its /dev/shm file */
        if (o->filter) _exit(CHILD_DONE + (int)st);
        exit(CHILD_DONE + (int)st);
    }
    close(fds[1]);
    Watch w = {-1, ""};
    if (o->filter) close(sv[1]), w.listener = opens_receive(sv[0]), close(sv[0]);
    TestStatus st = wait_child(pid, fds[0], &w, o, report, ending, why, why_len);
    if (w.refused[0] && o->tape) tape_problem(o->tape, w.refused);
    if (w.listener >= 0) close(w.listener);
    return st;
}

/* ------------------------------------------------------------------------------------
 * the grader's records: TAG LESSON FUNC CASE STATUS WHY REPORT, tab-separated, one line
 * ---------------------------------------------------------------------------------- */

static void put_field(FILE *f, const char *s, size_t max) {
    fputc('\t', f);
    for (size_t i = 0; s && s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') fputs("\\\\", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else fputc(c, f);
    }
}

static void write_record(const Options *o, const LessonDef *L, const char *func, const char *title,
                         const char *status, const char *why, const char *report) {
    if (!o->rec) return;
    fputs(o->tag, o->rec);
    put_field(o->rec, L->id, 16);
    put_field(o->rec, func, 200);
    put_field(o->rec, title, 300);
    put_field(o->rec, status, 16);
    put_field(o->rec, why, 500);
    put_field(o->rec, report, 16384);
    fputc('\n', o->rec);
    fflush(o->rec);
}

/* ------------------------------------------------------------------------------------
 * one lesson
 * ---------------------------------------------------------------------------------- */

/* "case ID \"TITLE\"": the id is what the lesson READMEs' case tables list (and the
 * prefix of the fixture's tensor names); the title, when there is one, says what it holds. */
static void print_case(FILE *out, const TestCtx *ctx) {
    if (strcmp(ctx->title, ctx->case_id) == 0) fprintf(out, "case %s", ctx->case_id);
    else fprintf(out, "case %s \"%s\"", ctx->case_id, ctx->title);
}

static void print_status(FILE *out, const Options *o, TestStatus st, Ending e, const char *why,
                         const TestDef *t, const TestCtx *ctx) {
    const char *word = e != END_NORMAL ? ENDING_WORD[e] : STATUS_WORD[st];
    const char *color = st == TEST_PASS && e == END_NORMAL ? GREEN : st == TEST_TODO ? "" : RED;
    fprintf(out, "  %s%-7s%s %s, ", paint(o, color), word, paint(o, RESET), t->func);
    print_case(out, ctx);
    if (e != END_NORMAL) fprintf(out, ": %s", why);
    fputc('\n', out);
}

/* A sanitizer's report, shortened to what helps: the error, the access, the stack frames
 * of the lesson and its test (not the runner's, libc's or the sanitizer's own), up to the
 * SUMMARY line (the shadow-memory map after it helps nobody here). Other reports as they
 * are. The result is malloc'd. */
static char *tidy_report(const char *report, Ending e) {
    if (!report) return NULL;
    size_t n = strlen(report);
    char *buf = malloc(n + 1), *w = buf;
    if (!buf) return NULL;
    if (e < END_MEMORY) return memcpy(buf, report, n + 1);
    for (const char *line = report; *line;) {
        int len = line_len(line);
        const char *s = line + strspn(line, " ");
        int blank = (int)strspn(line, " =") == len;
        int noise = *s == '#' && (line_has(s, "check_main.c") || line_has(s, "libc_start") ||
                                  line_has(s, " in _start ") || line_has(s, "sanitizer") ||
                                  line_has(s, "compiler-rt") || line_has(s, " in __interceptor_"));
        if (!blank && !noise) {
            memcpy(w, line, (size_t)len);
            w += len;
            *w++ = '\n';
        }
        if (starts_with(line, "SUMMARY: ")) break;
        line += len + (line[len] == '\n');
    }
    *w = '\0';
    return buf;
}

/* Prints the child's report indented under the status line. */
static void print_report(FILE *out, const char *report) {
    const char *line = report;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        fprintf(out, "          %.*s\n", len, line);
        line = nl ? nl + 1 : NULL;
    }
}

/* ------------------------------------------------------------------------------------
 * the judge: a test the sandbox did not run to its end is recorded as it ended there
 * ---------------------------------------------------------------------------------- */

static void record_as(FILE *out, TestCtx *ctx, const TestDef *t, const Options *o,
                      LessonResult *r, const char *status, const char *why, const char *report) {
    fprintf(out, "  %s%-7s%s %s, ", paint(o, RED), status, paint(o, RESET), t->func);
    print_case(out, ctx);
    fprintf(out, ": %s\n", why);
    if (ctx->verbose == REPORT_FULL && report && *report) print_report(out, report);
    write_record(o, ctx->lesson, t->func, ctx->title, status, why, report);
    r->total++;
    if (!strcmp(status, "TIMEOUT")) r->timeouts++;
}

/* 1 when the tape says the test did not end normally, or that something forbidden
 * happened (tape.h), or holds no record of it: the judge has nothing to compare, and
 * writes the record from the tape. */
static int judge_without_running(FILE *out, TestCtx *ctx, const TestDef *t, const Options *o,
                                 LessonResult *r) {
    static const char *ENDINGS[] = {"CRASH", "TIMEOUT", "MEMORY", "LEAK", "UNCHECKED", "SKIP"};
    const TapeSection *s = tape_find(&o->recorded, ctx->lesson->id, t->func, ctx->case_id);
    ctx->recorded = s;
    ctx->verbose = r->passed == r->total ? REPORT_FULL : REPORT_DIAGNOSIS;
    const char *why = o->recorded.problem ? o->recorded.problem
                      : !s ? "not run: the sandbox stopped before this case began"
                      : s->forged ? "forged records: the tape holds records of this test that "
                                    "its runner did not write (the code under test wrote to the "
                                    "grader's descriptor)"
                      : !s->ended ? "the test runner died during this case: killed by the code "
                                    "under test? (forbidden)"
                                  : NULL;
    if (why) {
        record_as(out, ctx, t, o, r, "CRASH", why, NULL);
        return 1;
    }
    for (size_t i = 0; i < sizeof ENDINGS / sizeof *ENDINGS; i++)
        if (!strcmp(s->ending, ENDINGS[i])) {
            record_as(out, ctx, t, o, r, ENDINGS[i], s->why, s->report);
            return 1;
        }
    return 0;
}

/* The judge's report, then what the student's code printed in the sandbox. */
static char *with_recorded_output(char *report, const TapeSection *s) {
    if (!s || !s->report || !*s->report) return report;
    size_t a = report ? strlen(report) : 0, b = strlen(s->report);
    char *both = malloc(a + b + 64);
    if (!both) return report;
    snprintf(both, a + b + 64, "%s%syour code printed:\n%s", report ? report : "",
             a && report[a - 1] != '\n' ? "\n" : "", s->report);
    free(report);
    return both;
}

static void run_test(FILE *out, TestCtx *ctx, const TestDef *t, const Options *o, LessonResult *r) {
    if (o->cases_only) {
        write_record(o, ctx->lesson, t->func, ctx->title, "expected", "", NULL);
        r->total++;
        return;
    }
    if (o->max_timeouts && r->timeouts >= o->max_timeouts) {
        char why[128];
        snprintf(why, sizeof why, "not run: %d test%s of this lesson timed out before it", r->timeouts,
                 r->timeouts > 1 ? "s" : "");
        fprintf(out, "  %-7s %s, ", "SKIP", t->func);
        print_case(out, ctx);
        fprintf(out, ": %s\n", why);
        write_record(o, ctx->lesson, t->func, ctx->title, "SKIP", why, NULL);
        r->total++;
        return;
    }
    if (o->role == ROLE_JUDGE && judge_without_running(out, ctx, t, o, r)) return;
    if (o->role == ROLE_RUN) tape_begin(o->tape, ctx->lesson->id, t->func, ctx->case_id);
    char why[600] = "";
    char *report = NULL;
    Ending e = END_NORMAL;
    /* the full story for the first thing to go wrong in a lesson; after that, only a named
     * mistake, until one has been shown (a small case may fail without matching one) */
    ctx->verbose = r->passed == r->total ? REPORT_FULL
                   : r->diagnosed        ? REPORT_NONE
                                         : REPORT_DIAGNOSIS;
    TestStatus st = o->fork_tests ? run_forked(ctx, t, o, &report, &e, why, sizeof why)
                                  : run_here(ctx, t);
    char *raw = report;
    report = tidy_report(raw, e);
    free(raw);
    if (o->role == ROLE_RUN) tape_end(o->tape, RECORD_WORD[e], why, report);
    if (o->role == ROLE_JUDGE) report = with_recorded_output(report, ctx->recorded);
    print_status(out, o, st, e, why, t, ctx);
    /* a crash has no story of its own but the one it printed: show it, if first */
    int show = ctx->verbose == REPORT_FULL || (e == END_NORMAL && report && *report);
    if (e != END_NORMAL && ctx->verbose == REPORT_FULL && !(report && *report))
        fprintf(out, "          (it printed nothing)\n");
    if (show) print_report(out, report);
    if (report && strstr(report, "looks like:")) r->diagnosed = 1;
    write_record(o, ctx->lesson, t->func, ctx->title,
                 e != END_NORMAL ? RECORD_WORD[e] : STATUS_WORD[st], why, report);
    free(report);
    r->total++;
    if (st == TEST_PASS && e == END_NORMAL) r->passed++;
    if (st == TEST_TODO && e == END_NORMAL) r->todo++;
    if (e == END_TIMEOUT) r->timeouts++;
}

/* The case ids, in order, from the "cases" metadata entry (space-separated). */
static int split_cases(char *list, char **ids, int max) {
    int n = 0;
    for (char *tok = strtok(list, " "); tok && n < max; tok = strtok(NULL, " ")) ids[n++] = tok;
    return n;
}

/* The lesson's fixture file; in the sandbox (ROLE_RUN), test k's own stripped copy. */
static void fixture_path(char *path, size_t len, const Options *o, const LessonDef *L, int k) {
    if (o->role == ROLE_RUN) snprintf(path, len, "%s/%s-%s.t%d.safetensors", o->fixtures, L->id, L->name, k);
    else snprintf(path, len, "%s/%s-%s.safetensors", o->fixtures, L->id, L->name);
}

/* The case ids of the file, into *buf (malloc'd) and ids. */
static int case_ids(const SafeTensors *fx, char **buf, char **ids, int max) {
    const char *list = st_meta(fx, "cases");
    *buf = strdup(list ? list : "");
    return *buf ? split_cases(*buf, ids, max) : 0;
}

/* ROLE_STRIP: runs test t on every case with the solutions, then writes its stripped
 * fixture. 0, or -1 (a message on stderr). */
static int strip_test(TestCtx *ctx, const TestDef *t, int k, char **ids, int n_cases,
                      const Options *o) {
    static NameSet inputs, expected;
    ctx->inputs = &inputs, ctx->expected = &expected;
    for (int c = 0; c < n_cases; c++) {
        if (!starts_with(ids[c], t->prefix)) continue;
        ctx->case_id = ctx->title = ids[c];
        ctx->verbose = REPORT_NONE;
        if (run_here(ctx, t) != TEST_PASS)
            fprintf(stderr, "check: the solution fails %s, case %s: its fixture is stripped anyway\n",
                    t->func, ids[c]);
    }
    char path[1024], err[600];
    snprintf(path, sizeof path, "%s/%s-%s.t%d.safetensors", o->strip, ctx->lesson->id,
             ctx->lesson->name, k);
    int rc = strip_write(ctx->fx, t->prefix, &inputs, &expected, path, err, sizeof err);
    if (rc) fprintf(stderr, "check: %s\n", err);
    nameset_free(&inputs), nameset_free(&expected);
    return rc;
}

/* Runs test t (the k-th of its lesson) on its cases. */
static void run_cases(FILE *out, TestCtx *ctx, const TestDef *t, char **ids, int n_cases,
                      const Options *o, LessonResult *r, int quick) {
    for (int c = 0; c < n_cases && !(quick && r->passed < r->total); c++) {
        if (!starts_with(ids[c], t->prefix)) continue;
        char key[300];
        snprintf(key, sizeof key, "%s/title", ids[c]);
        ctx->case_id = ids[c];
        ctx->title = st_meta(ctx->fx, key) ? st_meta(ctx->fx, key) : ids[c];
        run_test(out, ctx, t, o, r);
    }
}

/* quick: stop at the first test that does not pass (enough to know the lesson fails) */
static LessonResult run_lesson(FILE *out, const LessonDef *L, const Options *o, TestCtx *ctx,
                               int quick) {
    LessonResult r = {0, 0, 0, 0, 0};
    static char path[1024]; /* ctx->fixture_path, for the test's messages */
    char err[512];
    fprintf(out, "\n%slesson %s %s%s   (%s/%s-%s/%s)\n", paint(o, BOLD), L->id, L->name,
            paint(o, RESET), o->tree, L->id, L->name, L->file);
    ctx->lesson = L;
    ctx->role = o->role;
    ctx->full = o->full;
    ctx->seed = o->seed;
    ctx->tape = o->tape;
    ctx->fixture_path = path;
    /* (in the sandbox, the one test's own fixture is there) */
    fixture_path(path, sizeof path, o, L, o->only_test > 0 ? o->only_test : 0);
    const char *why = lesson_unavailable(L, o->cases_only ? NULL : path, (int)o->role);
    if (why) {
        fprintf(out, "  skip    %s\n", why);
        write_record(o, L, "(lesson)", "", "SKIP", why, NULL);
        return r;
    }
    int k = 0;
    for (const TestDef *t = L->tests; t->func && !(quick && r.passed < r.total); t++, k++) {
        if (o->only_test >= 0 && k != o->only_test) continue;
        SafeTensors fx;
        fixture_path(path, sizeof path, o, L, k);
        if (st_open(&fx, path, err, sizeof err) != 0) {
            fprintf(out, "  ERROR   cannot read the fixtures: %s\n", err);
            write_record(o, L, "(fixtures)", "", "ERROR", err, NULL);
            r.total++;
            break;
        }
        char *cases_buf, *ids[256];
        int n_cases = case_ids(&fx, &cases_buf, ids, 256);
        ctx->fx = &fx;
        if (o->role == ROLE_STRIP && strip_test(ctx, t, k, ids, n_cases, o) != 0) r.total++;
        else if (o->role != ROLE_STRIP) run_cases(out, ctx, t, ids, n_cases, o, &r, quick);
        free(cases_buf);
        st_close(&fx);
    }
    if (r.total == 0 && o->role != ROLE_STRIP) {
        fprintf(out, "  ERROR   %s has no cases for this lesson\n", path);
        write_record(o, L, "(fixtures)", "", "ERROR", "no cases for this lesson", NULL);
        r.total = 1;
    }
    return r;
}

/* ------------------------------------------------------------------------------------
 * choosing lessons, the progress table, main
 * ---------------------------------------------------------------------------------- */

/* "3", "03", "rope" and "03-rope" all name lesson 03. */
static int lesson_matches(const LessonDef *L, const char *want) {
    char full[64];
    snprintf(full, sizeof full, "%s-%s", L->id, L->name);
    if (!strcmp(want, L->id) || !strcmp(want, L->name) || !strcmp(want, full)) return 1;
    char *end;
    long n = strtol(want, &end, 10);
    return *want && *end == '\0' && n == atol(L->id);
}

static int done(const LessonResult *r) { return r->total && r->passed == r->total; }

/* 1 when lesson L's tests call lesson dep (L->requires is a run of two-digit ids). */
static int calls(const LessonDef *L, const LessonDef *dep) {
    for (const char *p = L->requires; p[0] && p[1]; p += 2)
        if (p[0] == dep->id[0] && p[1] == dep->id[1]) return 1;
    return 0;
}

/* One line when a lesson fails and lessons it calls do not pass either: name them, and
 * the first one to finish. */
static void print_requires_note(FILE *out, const LessonDef *L, const LessonResult *results) {
    char names[512] = "";
    const LessonDef *first = NULL;
    int n = 0;
    for (int i = 0; LESSONS[i] && LESSONS[i] != L; i++) {
        const LessonDef *dep = LESSONS[i];
        if (!calls(L, dep) || !results[i].total || done(&results[i])) continue;
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s %s", n ? ", " : "", dep->id, dep->name);
        if (!first) first = dep;
        n++;
    }
    if (!first) return;
    fprintf(out, "  note: lesson %s calls your lesson%s %s, which do%s not pass yet: finish lesson %s first.\n",
            L->id, n > 1 ? "s" : "", names, n > 1 ? "" : "es", first->id);
}

/* bold: the line is the current lesson's, in bold, which the bar's colour must not end */
static void print_bar(const Options *o, int passed, int total, int bold) {
    int width = 20, filled = total ? passed * width / total : 0;
    printf("[%s", paint(o, passed == total ? GREEN : YELLOW));
    for (int i = 0; i < width; i++) putchar(i < filled ? '#' : '-');
    printf("%s%s]", paint(o, RESET), bold ? paint(o, BOLD) : "");
}

/* The lesson to work on: the first that runs and does not pass (-1 when all pass).
 * --current (make hint, make watch) goes on to the optional lessons with it. */
static int current_lesson(const LessonResult *results) {
    for (int i = 0; LESSONS[i]; i++)
        if (results[i].total && !done(&results[i])) return i;
    return -1;
}

/* An optional lesson (after the core) whose every test is still todo: in a run over all
 * lessons it is neither "you are here" nor a failure. */
static int optional_untouched(const LessonResult *results, int i) {
    return i >= CORE_LESSONS && results[i].total && results[i].todo == results[i].total;
}

/* The lesson a run over all lessons points at: the current one, passing over optional
 * lessons not started (-1: every lesson passes, or the core does and the rest is optional). */
static int working_on(const LessonResult *results) {
    for (int i = 0; LESSONS[i]; i++)
        if (results[i].total && !done(&results[i]) && !optional_untouched(results, i)) return i;
    return -1;
}

static void print_progress(const Options *o, const LessonResult *results, int n_run) {
    if (n_run < 2) return;
    printf("\nprogress\n");
    int cur = working_on(results), width = 10;
    for (int i = 0; LESSONS[i]; i++)
        if ((int)strlen(LESSONS[i]->name) > width) width = (int)strlen(LESSONS[i]->name);
    for (int i = 0; LESSONS[i]; i++) {
        const LessonResult *r = &results[i];
        if (!r->total) continue;
        printf("%s%s %s %-*s ", i == cur ? paint(o, BOLD) : "", i == cur ? ">" : " ",
               LESSONS[i]->id, width, LESSONS[i]->name);
        print_bar(o, r->passed, r->total, i == cur);
        const char *note = done(r)                     ? " done"
                           : i == cur                    ? " <- you are here"
                           : optional_untouched(results, i) ? " optional"
                                                         : "";
        char count[32];
        snprintf(count, sizeof count, "%d", r->total);
        printf(" %2d/%s%*s%s%s\n", r->passed, count, *note && strlen(count) < 2 ? 2 - (int)strlen(count) : 0, "", note,
               i == cur ? paint(o, RESET) : "");
    }
}

/* What to do next, after a run over all lessons. */
static void print_next(const Options *o, const LessonResult *results, int n_run) {
    int cur = current_lesson(results);
    if (n_run == 1 && cur >= 0)
        printf("\nstuck? `make hint LESSON=%s` gives a hint, one more each time.\n", LESSONS[cur]->id);
    if (n_run < 2) return;
    if (cur < 0) {
        printf("\nEvery lesson passes. `make run SRC=%s` runs your model.\n", o->tree);
        return;
    }
    cur = working_on(results);
    if (cur < 0) {
        printf("\nThe core is done: lessons 01-%s pass, and `make run SRC=%s` runs your model.\n",
               LESSONS[CORE_LESSONS - 1]->id, o->tree);
        printf("optional, and not counted until you start one:\n");
        for (int i = CORE_LESSONS; LESSONS[i]; i++)
            if (optional_untouched(results, i))
                printf("  %s %-12s %s/%s-%s/README.md\n", LESSONS[i]->id, LESSONS[i]->name, o->tree,
                       LESSONS[i]->id, LESSONS[i]->name);
        return;
    }
    const LessonDef *L = LESSONS[cur];
    printf("\nnext: %s/%s-%s/%s, then `make check LESSON=%s` (stuck? `make hint LESSON=%s`)\n",
           o->tree, L->id, L->name, L->file, L->id, L->id);
}

/* The one-line goal of lesson L: the first sentence of its skeleton's header comment,
 * after "Lesson NN: " (" * Lesson 04: attention, the part of the block where ..."). */
static void lesson_goal(const Options *o, const LessonDef *L, char *goal, size_t len) {
    char path[1024], line[512];
    snprintf(path, sizeof path, "%s/%s-%s/%s", o->tree, L->id, L->name, L->file);
    goal[0] = '\0';
    FILE *f = fopen(path, "r");
    size_t used = 0;
    int on = 0;
    for (int n = 0; f && n < 20 && fgets(line, sizeof line, f); n++) {
        char *s = line + strspn(line, " /*"), *colon;
        s[strcspn(s, "\n")] = '\0';
        if (!on && strstr(s, "esson ") && (colon = strstr(s, ": "))) s = colon + 2, on = 1;
        else if (!on || !*s) {
            if (on) break;
            continue;
        }
        char *stop = strstr(s, ". ");
        if (stop) stop[1] = '\0';
        snprintf(goal + used, len - used, "%s%s", used ? " " : "", s);
        used = strlen(goal);
        if (stop || (used && goal[used - 1] == '.') || used + 2 >= len) break;
    }
    if (f) fclose(f);
}

/* After a pass of one lesson: the lesson after it, its README and its goal. */
static void print_after_pass(const Options *o, const LessonDef *L) {
    int i = 0;
    while (LESSONS[i] && LESSONS[i] != L) i++;
    const LessonDef *next = LESSONS[i] ? LESSONS[i + 1] : NULL;
    if (!next) {
        printf("\nlesson %s %s passes, and it is the last one. `make run SRC=%s` runs your model.\n",
               L->id, L->name, o->tree);
        return;
    }
    char goal[240], readme[1024];
    lesson_goal(o, next, goal, sizeof goal);
    /* the READMEs live in lessons/ (a solutions tree has only the code) */
    snprintf(readme, sizeof readme, "%s/%s-%s/README.md", o->tree, next->id, next->name);
    if (access(readme, R_OK) != 0) snprintf(readme, sizeof readme, "lessons/%s-%s/README.md", next->id, next->name);
    printf("\nlesson %s %s passes. next: lesson %s %s%s, %s\n", L->id, L->name, next->id,
           next->name, i + 1 >= CORE_LESSONS ? " (optional)" : "", readme);
    if (*goal) printf("  %s\n", goal);
}

/* make check (not the grader, nor --cases): lets each lesson it will run begin its slow
 * work now (lesson_start). */
static void start_lessons(const Options *o) {
    char path[1024];
    for (int i = 0; LESSONS[i] && o->role == ROLE_CHECK && !o->cases_only; i++)
        if (!o->only || lesson_matches(LESSONS[i], o->only))
            fixture_path(path, sizeof path, o, LESSONS[i], 0), lesson_start(LESSONS[i], path);
}

/* 1 when the run had a property check: its seed is worth printing. */
static int ran_property(const LessonResult *results) {
    for (int i = 0; LESSONS[i]; i++)
        for (const TestDef *t = LESSONS[i]->tests; results[i].total && t->func; t++)
            if (starts_with(t->func, PROPERTY)) return 1;
    return 0;
}

/* In the sandbox a test needs stdin, stdout, stderr and the tape: whatever else the
 * grader's caller left open is closed before any test runs. */
static void close_other_fds(int keep) {
    for (int fd = 3; fd < 4096; fd++)
        if (fd != keep) close(fd);
}

static void usage(FILE *f) {
    fprintf(f, "usage: check [--lesson 03|rope|03-rope] [--fixtures DIR] [--tree lessons|solutions]\n"
               "             [--timeout SECONDS] [--full] [--seed N] [--no-fork] [--list] [--current]\n"
               "             [--matmul naive|fast] [--results FILE [--tag WORD] [--cases] [--max-timeouts N]]\n"
               "             [--strip DIR | --record-fd N [--test K] [--seccomp FILE] | --judge TAPE]\n"
               "             (the last line: the grader's)\n");
}

static void list_lessons(void) {
    for (int i = 0; LESSONS[i]; i++) {
        printf("%s-%s\n", LESSONS[i]->id, LESSONS[i]->name);
        for (const TestDef *t = LESSONS[i]->tests; t->func; t++)
            printf("    %s (cases %s*)\n", t->func, t->prefix);
    }
}

/* A seed: 0 .. 2^32 - 1, so that it is short to type back. 0, or -1. */
static int parse_seed(const char *s, unsigned long *seed) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *s == '-' || *end || errno || v > 0xffffffffULL) return -1;
    *seed = (unsigned long)v;
    return 0;
}

/* Without --seed: a fresh one for make check; a fixed one for the grader's halves, which
 * must draw the same inputs (grade.sh may pass its own --seed to both). */
static unsigned long fresh_seed(const Options *o) {
    if (o->role != ROLE_CHECK) return 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long)((ts.tv_nsec ^ (ts.tv_sec << 20) ^ ((long)getpid() << 8)) & 0xffffffffL);
}

static int parse_args(int argc, char **argv, Options *o) {
    memset(o, 0, sizeof *o);
    o->fixtures = "data/fixtures", o->tree = "lessons", o->timeout = 10, o->fork_tests = 1;
    o->tag = "test", o->only_test = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--no-fork")) o->fork_tests = 0;
        else if (!strcmp(a, "--full")) o->full = 1;
        else if (!strcmp(a, "--current")) o->current = 1;
        else if (!strcmp(a, "--cases")) o->cases_only = 1;
        else if (!strcmp(a, "--list")) return list_lessons(), 0;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), 0;
        else if (!has_value) return fprintf(stderr, "check: %s needs a value\n", a), usage(stderr), -1;
        else if (!strcmp(a, "--lesson")) o->only = argv[++i];
        else if (!strcmp(a, "--fixtures")) o->fixtures = argv[++i];
        else if (!strcmp(a, "--tree")) o->tree = argv[++i];
        else if (!strcmp(a, "--timeout")) o->timeout = atoi(argv[++i]);
        else if (!strcmp(a, "--results")) o->results = argv[++i];
        else if (!strcmp(a, "--tag")) o->tag = argv[++i];
        else if (!strcmp(a, "--max-timeouts")) o->max_timeouts = atoi(argv[++i]);
        else if (!strcmp(a, "--record-fd")) o->record_fd = atoi(argv[++i]), o->role = ROLE_RUN;
        else if (!strcmp(a, "--judge")) o->judge = argv[++i], o->role = ROLE_JUDGE;
        else if (!strcmp(a, "--strip")) o->strip = argv[++i], o->role = ROLE_STRIP;
        else if (!strcmp(a, "--test")) o->only_test = atoi(argv[++i]);
        else if (!strcmp(a, "--seccomp")) o->seccomp = argv[++i];
        else if (!strcmp(a, "--matmul")) { /* the kernel of lessons 04-10's linear() */
            const char *k = argv[++i];
            if (strcmp(k, "naive") && strcmp(k, "fast"))
                return fprintf(stderr, "check: --matmul '%s': naive (lesson 01) or fast (lesson 09)\n", k), -1;
            linear_use(strcmp(k, "fast") ? KERNEL_MATMUL : KERNEL_FAST_MATMUL);
        }
        else if (!strcmp(a, "--seed")) {
            if (parse_seed(argv[++i], &o->seed) != 0)
                return fprintf(stderr, "check: --seed '%s' is not a whole number from 0 to 4294967295\n", argv[i]), -1;
            o->seed_given = 1;
        }
        else return fprintf(stderr, "check: unknown option '%s'\n", a), usage(stderr), -1;
    }
    if (o->timeout <= 0) return fprintf(stderr, "check: --timeout needs a positive number of seconds\n"), -1;
    if (!o->seed_given) o->seed = fresh_seed(o);
    if (o->only && o->only[0] == '\0') o->only = NULL;
    if (o->current) o->only = NULL, o->results = NULL;
    if (o->cases_only && !o->results)
        return fprintf(stderr, "check: --cases writes its list to the --results file: name one\n"), -1;
    return 1;
}

/* A run over all lessons shows a lesson that passes completely, or one not started that
 * comes after the lesson to work on, as one line: the progress table has the rest. */
static void print_lesson(FILE *out, char *text, const LessonDef *L, const LessonResult *r,
                         int is_current, const Options *o) {
    int whole = is_current || o->full || !r->total || (!done(r) && r->todo < r->total);
    if (whole || !text) {
        if (text) fputs(text, out);
        return;
    }
    char *end = strchr(text + 1, '\n'); /* the lesson's title line, after a blank one */
    fwrite(text, 1, end ? (size_t)(end - text + 1) : strlen(text), out);
    if (done(r)) fprintf(out, "  %sok%s      all %d tests pass\n", paint(o, GREEN), paint(o, RESET), r->total);
    else fprintf(out, "  todo    %d tests, not started yet\n", r->total);
    (void)L;
}

int main(int argc, char **argv) {
    Options o;
    int go = parse_args(argc, argv, &o);
    if (go <= 0) return go < 0 ? 2 : 0;
    o.color = want_color();
    if (o.results && !(o.rec = fopen(o.results, "a"))) {
        fprintf(stderr, "check: cannot write %s: %s\n", o.results, strerror(errno));
        return 2;
    }
    if (o.role == ROLE_RUN) close_other_fds(o.record_fd);
    if (o.role == ROLE_RUN && !(o.tape = fdopen(o.record_fd, "w"))) {
        fprintf(stderr, "check: --record-fd %d: %s\n", o.record_fd, strerror(errno));
        return 2;
    }
    if (o.role == ROLE_RUN) report_strangers(o.tape);
    char err[600];
    if (o.seccomp && !(o.filter = read_file(o.seccomp, 1 << 20, &o.filter_len, err, sizeof err))) {
        fprintf(stderr, "check: --seccomp: %s\n", err);
        return 2;
    }
    if (o.filter) start_openmp();
    if (o.role == ROLE_JUDGE && tape_read(&o.recorded, o.judge, err, sizeof err) != 0) {
        fprintf(stderr, "check: --judge: %s\n", err);
        return 2;
    }
    static TestCtx ctx; /* static: it holds a large buffer table */
    LessonResult results[64] = {{0}};
    int n_run = 0, passed = 0, total = 0, todo = 0;
    /* all lessons, one test per child: a lesson's lines are kept until it is known whether
     * it shrinks to one line */
    int shrink = !o.only && o.fork_tests && !o.full;
    int silent = o.current || o.cases_only || o.role == ROLE_STRIP || o.role == ROLE_RUN;
    FILE *devnull = silent ? fopen("/dev/null", "w") : NULL;
    if (silent && !devnull) return perror("check: /dev/null"), 2;
    start_lessons(&o);
    if (o.role == ROLE_STRIP && !freopen("/dev/null", "w", stdout)) return 2; /* diagnoses */
    for (int i = 0; LESSONS[i]; i++) {
        if (o.only && !lesson_matches(LESSONS[i], o.only)) continue;
        char *text = NULL;
        size_t text_len = 0;
        FILE *out = devnull ? devnull : shrink ? open_memstream(&text, &text_len) : stdout;
        if (!out) out = stdout;
        results[i] = run_lesson(out, LESSONS[i], &o, &ctx, 0);
        if (!done(&results[i])) print_requires_note(out, LESSONS[i], results);
        if (out != stdout && out != devnull) {
            fclose(out);
            print_lesson(stdout, text, LESSONS[i], &results[i], working_on(results) == i, &o);
            free(text);
        }
        n_run++;
    }
    /* an optional lesson not started counts in a run over all lessons only when asked for */
    for (int i = 0; LESSONS[i]; i++)
        if (o.only || !optional_untouched(results, i)) {
            passed += results[i].passed;
            total += results[i].total;
            todo += results[i].todo;
        }
    if (!n_run) {
        fprintf(stderr, "check: no lesson called '%s' (try --list)\n", o.only);
        return 2;
    }
    if (o.cases_only || o.role == ROLE_STRIP || o.role == ROLE_RUN) {
        int failed = o.role == ROLE_STRIP && passed < total; /* a stripped file not written */
        fclose(devnull);
        if (o.rec) fclose(o.rec);
        if (o.tape) fclose(o.tape);
        free(o.filter);
        return failed ? 2 : 0;
    }
    if (o.current) {
        int cur = current_lesson(results);
        if (cur < 0) printf("done\n");
        else printf("%s-%s\n", LESSONS[cur]->id, LESSONS[cur]->name);
        fclose(devnull);
        return 0;
    }
    /* One lesson that fails: do the lessons it calls pass? Run them quietly, up to their
     * first failure and with a short time limit, to say so. */
    if (o.only && n_run == 1 && passed < total && !o.rec && o.fork_tests) {
        FILE *quiet = fopen("/dev/null", "w");
        Options q = o;
        q.timeout = o.timeout < 2 ? o.timeout : 2;
        const LessonDef *L = NULL;
        for (int i = 0; LESSONS[i]; i++)
            if (results[i].total) L = LESSONS[i];
        for (int i = 0; quiet && LESSONS[i] && LESSONS[i] != L; i++)
            if (calls(L, LESSONS[i])) results[i] = run_lesson(quiet, LESSONS[i], &q, &ctx, 1);
        if (quiet) fclose(quiet);
        print_requires_note(stdout, L, results);
    }
    print_progress(&o, results, n_run);
    print_next(&o, results, n_run);
    if (o.only && n_run == 1 && total && passed == total && o.role == ROLE_CHECK)
        for (int i = 0; LESSONS[i]; i++)
            if (results[i].total) print_after_pass(&o, LESSONS[i]);
    if (ran_property(results))
        printf("\nproperty checks drew their inputs with seed %lu: `make check%s%s SEED=%lu` draws the "
               "same again\n", o.seed, o.only ? " LESSON=" : "", o.only ? o.only : "", o.seed);
    if (o.rec) fclose(o.rec);
    tape_free(&o.recorded);
    printf("\n%d done, %d todo, %d failing\n", passed, todo, total - passed - todo);
    return passed == total ? 0 : 1;
}
