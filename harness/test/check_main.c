/*
 * check_main.c: the test runner behind `make check`.
 *
 *   check [--lesson 03|rope|03-rope] [--fixtures DIR] [--tree lessons|solutions]
 *         [--timeout SECONDS] [--no-fork] [--list]
 *
 * Every test runs in a child process with a time limit, so a crash or an endless loop
 * in one lesson costs that test only. One line per test; the full story only for the
 * first failure of each lesson. Ends with "N passed, N failed"; exit 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_internal.h"

typedef struct {
    const char *fixtures; /* directory of NN-name.safetensors */
    const char *tree;     /* where the lesson sources are: shown in messages */
    const char *only;     /* one lesson, or NULL for all */
    int timeout;
    int fork_tests;
} Options;

typedef struct {
    int passed, total, todo;
    int diagnosed; /* a named mistake has been shown for this lesson */
} LessonResult;

static const char *STATUS_WORD[] = {"ok", "FAIL", "todo", "ERROR"};

/* ------------------------------------------------------------------------------------
 * running one test in a child process
 * ---------------------------------------------------------------------------------- */

static TestStatus run_here(TestCtx *ctx, const TestDef *t) {
    TestStatus st;
    if (setjmp(ctx->bail) == 0) st = t->run(ctx);
    else st = TEST_ERROR;
    ctx_free_all(ctx);
    return st;
}

/* Collects the child's output (its report, printed after the status line) and returns
 * how it ended; *why says how it died when it did not exit normally. */
static TestStatus wait_child(pid_t pid, int fd, char **report, const char **why) {
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap + 1);
    ssize_t got;
    while (buf && (got = read(fd, buf + len, cap - len)) != 0) {
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) break;
        len += (size_t)got;
        if (len == cap && len < (1u << 20)) buf = realloc(buf, (cap *= 2) + 1);
        else if (len == cap) break; /* 1 MiB of output is enough of a story */
    }
    if (buf) buf[len] = '\0';
    *report = buf;
    close(fd);
    int wstatus;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {}
    *why = NULL;
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) <= TEST_ERROR)
        return (TestStatus)WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGALRM) *why = "timed out (an endless loop?)";
    else if (WIFSIGNALED(wstatus)) *why = strsignal(WTERMSIG(wstatus));
    else *why = "exited with an unexpected status (a sanitizer report, or exit() in lesson code)";
    return TEST_FAIL;
}

static TestStatus run_forked(TestCtx *ctx, const TestDef *t, const Options *o,
                             char **report, const char **why) {
    int fds[2];
    fflush(stdout);
    if (pipe(fds) != 0) {
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
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        alarm((unsigned)o->timeout);
        TestStatus st = run_here(ctx, t);
        fflush(stdout);
        exit((int)st);
    }
    close(fds[1]);
    return wait_child(pid, fds[0], report, why);
}

/* ------------------------------------------------------------------------------------
 * one lesson
 * ---------------------------------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void print_status(TestStatus st, const char *why, const TestDef *t, const char *title) {
    if (why) printf("  %-7s %s, case \"%s\": %s\n", "CRASH", t->func, title, why);
    else printf("  %-7s %s, case \"%s\"\n", STATUS_WORD[st], t->func, title);
}

/* Prints the child's report indented under the status line. */
static void print_report(const char *report) {
    const char *line = report;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        printf("          %.*s\n", len, line);
        line = nl ? nl + 1 : NULL;
    }
}

static void run_test(TestCtx *ctx, const TestDef *t, const Options *o, LessonResult *r) {
    const char *why = NULL;
    char *report = NULL;
    /* the full story for the first thing to go wrong in a lesson; after that, only a named
     * mistake, until one has been shown (a small case may fail without matching one) */
    ctx->verbose = r->passed == r->total ? REPORT_FULL
                   : r->diagnosed        ? REPORT_NONE
                                         : REPORT_DIAGNOSIS;
    TestStatus st = o->fork_tests ? run_forked(ctx, t, o, &report, &why) : run_here(ctx, t);
    print_status(st, why, t, ctx->title);
    if (why && ctx->verbose == REPORT_FULL && !report) printf("          (it printed nothing)\n");
    print_report(report);
    if (report && strstr(report, "looks like:")) r->diagnosed = 1;
    free(report);
    r->total++;
    if (st == TEST_PASS && !why) r->passed++;
    if (st == TEST_TODO) r->todo++;
}

/* The case ids, in order, from the "cases" metadata entry (space-separated). */
static int split_cases(char *list, char **ids, int max) {
    int n = 0;
    for (char *tok = strtok(list, " "); tok && n < max; tok = strtok(NULL, " ")) ids[n++] = tok;
    return n;
}

static LessonResult run_lesson(const LessonDef *L, const Options *o, TestCtx *ctx) {
    LessonResult r = {0, 0, 0, 0};
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s-%s.safetensors", o->fixtures, L->id, L->name);
    printf("\nlesson %s %s   (%s/%s-%s/%s)\n", L->id, L->name, o->tree, L->id, L->name, L->file);
    SafeTensors fx;
    if (st_open(&fx, path, err, sizeof err) != 0) {
        printf("  ERROR   cannot read the fixtures: %s\n", err);
        r.total = 1;
        return r;
    }
    const char *list = st_meta(&fx, "cases");
    char *cases_buf = strdup(list ? list : "");
    char *ids[256];
    int n_cases = split_cases(cases_buf, ids, 256);
    ctx->lesson = L;
    ctx->fx = &fx;
    ctx->fixture_path = path;
    for (const TestDef *t = L->tests; t->func; t++) {
        for (int c = 0; c < n_cases; c++) {
            if (!starts_with(ids[c], t->prefix)) continue;
            char key[300];
            snprintf(key, sizeof key, "%s/title", ids[c]);
            ctx->case_id = ids[c];
            ctx->title = st_meta(&fx, key) ? st_meta(&fx, key) : ids[c];
            run_test(ctx, t, o, &r);
        }
    }
    if (r.total == 0) printf("  ERROR   %s has no cases for this lesson\n", path), r.total = 1;
    free(cases_buf);
    st_close(&fx);
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

static void print_requires_note(const LessonDef *L, const LessonResult *results) {
    for (int i = 0; LESSONS[i] && LESSONS[i] != L; i++) {
        const LessonDef *dep = LESSONS[i];
        if (!strstr(L->requires, dep->id)) continue;
        const LessonResult *r = &results[i];
        if (r->total && r->passed < r->total)
            printf("  note: lesson %s calls your lesson %s %s, which does not pass yet: "
                   "finish lesson %s first.\n", L->id, dep->id, dep->name, dep->id);
    }
}

static void print_bar(int passed, int total) {
    int width = 20, filled = total ? passed * width / total : 0;
    putchar('[');
    for (int i = 0; i < width; i++) putchar(i < filled ? '#' : '-');
    putchar(']');
}

static void print_progress(const LessonResult *results, int n_run) {
    if (n_run < 2) return;
    printf("\nprogress\n");
    int marked = 0;
    for (int i = 0; LESSONS[i]; i++) {
        const LessonResult *r = &results[i];
        if (!r->total) continue;
        int current = !marked && r->passed < r->total;
        marked |= current;
        printf("%s %s %-10s ", current ? ">" : " ", LESSONS[i]->id, LESSONS[i]->name);
        print_bar(r->passed, r->total);
        printf(" %2d/%-2d %s\n", r->passed, r->total,
               r->passed == r->total ? "done"
               : current             ? "<- you are here"
                                     : "");
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: check [--lesson 03|rope|03-rope] [--fixtures DIR] [--tree lessons|solutions]\n"
               "             [--timeout SECONDS] [--no-fork] [--list]\n");
}

static void list_lessons(void) {
    for (int i = 0; LESSONS[i]; i++) {
        printf("%s-%s\n", LESSONS[i]->id, LESSONS[i]->name);
        for (const TestDef *t = LESSONS[i]->tests; t->func; t++)
            printf("    %s (cases %s*)\n", t->func, t->prefix);
    }
}

static int parse_args(int argc, char **argv, Options *o) {
    *o = (Options){"data/fixtures", "lessons", NULL, 10, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--no-fork")) o->fork_tests = 0;
        else if (!strcmp(a, "--list")) return list_lessons(), 0;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), 0;
        else if (!has_value) return fprintf(stderr, "check: %s needs a value\n", a), usage(stderr), -1;
        else if (!strcmp(a, "--lesson")) o->only = argv[++i];
        else if (!strcmp(a, "--fixtures")) o->fixtures = argv[++i];
        else if (!strcmp(a, "--tree")) o->tree = argv[++i];
        else if (!strcmp(a, "--timeout")) o->timeout = atoi(argv[++i]);
        else return fprintf(stderr, "check: unknown option '%s'\n", a), usage(stderr), -1;
    }
    if (o->timeout <= 0) return fprintf(stderr, "check: --timeout needs a positive number of seconds\n"), -1;
    if (o->only && o->only[0] == '\0') o->only = NULL;
    return 1;
}

int main(int argc, char **argv) {
    Options o;
    int go = parse_args(argc, argv, &o);
    if (go <= 0) return go < 0 ? 2 : 0;
    static TestCtx ctx; /* static: it holds a large buffer table */
    LessonResult results[64] = {{0}};
    int n_run = 0, passed = 0, total = 0;
    for (int i = 0; LESSONS[i]; i++) {
        if (o.only && !lesson_matches(LESSONS[i], o.only)) continue;
        results[i] = run_lesson(LESSONS[i], &o, &ctx);
        if (results[i].passed < results[i].total) print_requires_note(LESSONS[i], results);
        passed += results[i].passed;
        total += results[i].total;
        n_run++;
    }
    if (!n_run) {
        fprintf(stderr, "check: no lesson called '%s' (try --list)\n", o.only);
        return 2;
    }
    print_progress(results, n_run);
    printf("\n%d passed, %d failed\n", passed, total - passed);
    return passed == total ? 0 : 1;
}
