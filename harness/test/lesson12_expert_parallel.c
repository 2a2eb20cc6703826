/* Lesson 12 tests: the MoE layer over P MPI ranks. The student's code runs in another
 * program, check-mpi (harness/test/mpi/ep_worker.c, built with mpicc), which the runner
 * starts once, before the lesson's first test, as `mpirun -np 4 check-mpi FIXTURE DIR`:
 * one job runs every case, each on as many ranks as it asks for, and writes what its
 * ranks produced to DIR/CASE.bin (one mpirun per case cost a second each). Each test then
 * reads its case's file back, observes it, and judges it (check.h, "run first, judge
 * after"): the exchange's counts and displacements per rank, the rows dropped, and the
 * layer's output, which must be lesson 07's whatever P is.
 *
 * Without MPI (no mpirun on PATH, or check-mpi not built) the lesson is skipped with the
 * install line. Under the grader, the runner in the sandbox starts the job the same way,
 * before its first fork, so the ranks run without the tests' system-call filter (but in the
 * sandbox, as its user, under its limits); each test reads its file through the filter
 * (opens_allow_dir), and the judge reads the tape: it starts no job. */
#define _XOPEN_SOURCE 700 /* P_tmpdir, mkdtemp */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_internal.h"
#include "diagnoses.h"
#include "ep_record.h"
#include "opens.h"
#include "routing_check.h"
#include "tape.h"

#define INSTALL "sudo apt-get install -y openmpi-bin libopenmpi-dev"
/* the job's ranks: the most any case asks for (the worker stops on a case that wants more) */
#define EP_WORLD "4"
/* seconds for the whole job, every case: Open MPI's --timeout ends ranks that wait on each
 * other forever */
#define EP_LIMIT "10"

/* ------------------------------------------------------------------------------------
 * finding and starting the MPI side
 * ---------------------------------------------------------------------------------- */

/* check-mpi, next to this program: into path. 0, or -1 when it is not there. */
static int worker_path(char *path, size_t len) {
    ssize_t n = readlink("/proc/self/exe", path, len - 16);
    if (n <= 0) return -1;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, 16, "check-mpi");
    return access(path, X_OK);
}

/* 1 when `name` is an executable file in a directory of PATH. */
static int on_path(const char *name) {
    const char *p = getenv("PATH");
    char dir[4096];
    while (p && *p) {
        size_t n = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, p, name);
        if (n && access(dir, X_OK) == 0) return 1;
        p += n + (p[n] == ':');
    }
    return 0;
}

/* The job, started by the runner before the tests (its test children inherit this). */
static struct {
    int started;
    char dir[4096];  /* DIR: the cases' files, probe.bin and job.txt (what mpirun printed) */
    pid_t mpirun;    /* while it runs, else 0 */
    int ended_well;  /* mpirun exited 0 */
    EpRecord probe;  /* check-mpi --probe's record: todo, the lesson is not started */
    pid_t owner;     /* the runner, which removes dir at its exit (not its test children) */
    int sandboxed;   /* in the grader's sandbox (ROLE_RUN) */
    char problem[300]; /* why there is no job, when it could not start */
} JOB;

/* Starts argv[0] ARGS... with stdout and stderr to out: its pid, or -1. */
static pid_t start_program(char *const argv[], const char *out) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(out, "w", stdout);
        if (!f || dup2(STDOUT_FILENO, STDERR_FILENO) < 0) _exit(127);
        /* none of the runner's descriptors (under the grader, 3 is the tape) reaches the
         * ranks, whatever mpirun passes on */
        for (int fd = 3; fd < 1024; fd++) close(fd);
        /* no leak check in the ranks, even when the caller's ASAN_OPTIONS asks for one:
         * Open MPI's own allocations live to the end (the last option wins) */
        char asan[2048];
        snprintf(asan, sizeof asan, "%s:detect_leaks=0",
                 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "");
        setenv("ASAN_OPTIONS", asan, 1);
        /* the sandbox has no /sys: hwloc's complaint, once per process, is noise */
        if (JOB.sandboxed) setenv("HWLOC_HIDE_ERRORS", "1", 1);
        execvp(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    return pid;
}

/* pid's exit status, once it has ended; -1 when it did not exit. */
static int exit_status(pid_t pid) {
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void remove_job(void) {
    if (getpid() != JOB.owner) return;
    DIR *d = opendir(JOB.dir);
    struct dirent *e;
    char path[4400];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') snprintf(path, sizeof path, "%s/%s", JOB.dir, e->d_name), unlink(path);
    if (d) closedir(d);
    rmdir(JOB.dir);
}

/* The probe (the first functions still a TODO: the lesson is not started, no need for
 * mpirun), then, unless it says so, the job over every case of fixture, left running. */
static void start_job(const char *worker, const char *fixture) {
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    JOB.started = 1;
    snprintf(JOB.dir, sizeof JOB.dir, "%.4000s/moekit-ep-XXXXXX", tmp);
    if (!mkdtemp(JOB.dir)) { /* each test says so */
        snprintf(JOB.problem, sizeof JOB.problem, "cannot create a directory in %.200s for the "
                 "MPI job's output (TMPDIR?)", tmp);
        return;
    }
    JOB.owner = getpid();
    atexit(remove_job);
    char probe[4200], log[4200];
    snprintf(probe, sizeof probe, "%s/probe.bin", JOB.dir);
    snprintf(log, sizeof log, "%s/job.txt", JOB.dir);
    char *probe_argv[] = {(char *)worker, "--probe", probe, NULL};
    FILE *f = exit_status(start_program(probe_argv, log)) == 0 ? fopen(probe, "rb") : NULL;
    int untouched = f && fread(&JOB.probe, sizeof JOB.probe, 1, f) == 1 && JOB.probe.todo;
    if (f) fclose(f);
    if (untouched) return;
    memset(&JOB.probe, 0, sizeof JOB.probe);
    /* shared memory between the ranks of this one machine: no network transport to probe */
    char *argv[32] = {"mpirun", "--oversubscribe", "--timeout", EP_LIMIT, "--mca", "pml", "ob1",
                      "--mca", "btl", "self,vader"};
    int n = 10;
    if (geteuid() == 0) /* Open MPI refuses root without it (a container, CI) */
        argv[n++] = "--allow-run-as-root";
    /* the sandbox's /dev/shm is 1 MiB: the ranks' shared segments go to its /tmp; and no
     * reading of another rank's memory (process_vm_readv), which a sandbox may refuse */
    char *sandbox[] = {"--mca", "btl_vader_backing_directory", (char *)tmp,
                       "--mca", "btl_vader_single_copy_mechanism", "none"};
    for (size_t i = 0; JOB.sandboxed && i < sizeof sandbox / sizeof *sandbox; i++) argv[n++] = sandbox[i];
    char *job[] = {"-np", EP_WORLD, (char *)worker, (char *)fixture, JOB.dir, NULL};
    memcpy(argv + n, job, sizeof job);
    JOB.mpirun = start_program(argv, log);
}

/* NULL, or why lesson 12 cannot run here; worker gets check-mpi's path. */
static const char *why_not(char *worker, size_t len) {
    static char why[4400];
    if (!on_path("mpirun"))
        return "needs MPI (mpirun is not on PATH): " INSTALL;
    if (worker_path(worker, len) != 0) {
        snprintf(why, sizeof why, "%.4000s was not built: lesson 12 did not compile (make "
                 "said why), or mpicc was missing when make ran (" INSTALL ")", worker);
        return why;
    }
    return NULL;
}

/* lessons.c's lesson_start: the job, in the background. */
void ep_start(const char *fixture);
void ep_start(const char *fixture) {
    char worker[4096];
    if (!JOB.started && !why_not(worker, sizeof worker)) start_job(worker, fixture);
}

/* lessons.c's lesson_unavailable: the job (started now if it was not), ended. The judge
 * and the stripping need none: they never read the files (run_case). */
const char *ep_unavailable(const char *fixture, int role);
const char *ep_unavailable(const char *fixture, int role) {
    char worker[4096];
    if (role == ROLE_JUDGE || role == ROLE_STRIP) return NULL;
    const char *why = why_not(worker, sizeof worker);
    if (why || !fixture) return why;
    JOB.sandboxed = role == ROLE_RUN;
    if (!JOB.started) start_job(worker, fixture);
    if (JOB.sandboxed && JOB.dir[0]) opens_allow_dir(JOB.dir);
    if (JOB.mpirun > 0) JOB.ended_well = exit_status(JOB.mpirun) == 0, JOB.mpirun = 0;
    return NULL;
}

/* What mpirun printed, under the test's report (the first failure's story). */
static void print_job_log(void) {
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/job.txt", JOB.dir);
    FILE *f = fopen(path, "r");
    for (int n = 0; f && n < 60 && fgets(line, sizeof line, f); n++) fputs(line, stdout);
    if (f) fclose(f);
}

/* What the ranks produced, read back from the worker's file. */
typedef struct {
    EpRecord rec;
    float *out;             /* (T, C) */
    int *counts[4];         /* send_counts, send_displs, recv_counts, recv_displs (P, P) */
    int *dropped;           /* (P) */
} EpRun;

static const char *ARRAY_NAMES[4] = {"send_counts", "send_displs", "recv_counts", "recv_displs"};

/* The counts always (-1 without them); out and dropped when the layer got that far (1:
 * all of it, 0: the counts only). */
static int read_run(const char *path, EpRun *r, long n_out, int P) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int ok = fread(&r->rec, sizeof r->rec, 1, f) == 1 && r->rec.magic == EP_RECORD_MAGIC;
    for (int a = 0; a < 4 && ok; a++)
        ok = fread(r->counts[a], sizeof(int), (size_t)P * P, f) == (size_t)P * P;
    int all = ok && fread(r->out, sizeof(float), (size_t)n_out, f) == (size_t)n_out &&
              fread(r->dropped, sizeof(int), (size_t)P, f) == (size_t)P;
    fclose(f);
    return ok ? all : -1;
}

/* A rank's TODO() on the tape, for the judge (student_todo's record): text is the worker's
 * "func() is not written yet: TODO at file:line\n  what", or a note without them. */
static void record_todo(TestCtx *ctx, const char *text) {
    char func[128] = "ep_moe_forward", file[256] = "", what[512] = "";
    int line = 0;
    if (sscanf(text, "%127[^(]() is not written yet: TODO at %255[^:]:%d\n  %511[^\n]", func,
               file, &line, what) != 4)
        snprintf(func, sizeof func, "ep_moe_forward"), snprintf(what, sizeof what, "%s", text);
    tape_todo(ctx->tape, func, file, line, what);
}

/* The case's file from the job; the buffers keep NaN / UNWRITTEN_INT where the job did
 * not get as far as writing them. 1 when a rank hit a TODO() (reported), -1 when the job
 * did not write it (reported), else 0. */
static int run_case(TestCtx *ctx, EpRun *r, int T, int C, int P) {
    r->out = out_buffer(ctx, (long)T * C);
    for (int a = 0; a < 4; a++) r->counts[a] = out_ints(ctx, (long)P * P);
    r->dropped = out_ints(ctx, P);
    memset(&r->rec, 0, sizeof r->rec);
    student_begin(ctx);
    /* the judge: what the sandbox observed comes from the tape (observe); the stripping:
     * the solutions, whose outputs are not needed, only the names the test reads */
    if (ctx->role == ROLE_JUDGE || ctx->role == ROLE_STRIP) return student_todo(ctx);
    if (JOB.problem[0]) return printf("%s\n", JOB.problem), -1;
    if (JOB.probe.todo) r->rec = JOB.probe;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.bin", JOB.dir, ctx->case_id);
    int got = r->rec.todo ? 1 : read_run(path, r, (long)T * C, P);
    /* the job ended early in this case (a crash, a time limit): what mpirun said */
    if (got < 1 && !JOB.ended_well) {
        printf("the MPI job (mpirun -np " EP_WORLD ", every case) did not end well: %s\n",
               got < 0 ? "it wrote nothing for this case (it ended here or in an earlier one)"
                       : "it ended in this case, after the counts");
        if (ctx_verbose(ctx)) printf("what it printed:\n"), print_job_log();
    }
    if (r->rec.todo && ctx->role == ROLE_RUN) record_todo(ctx, r->rec.todo_text);
    else if (r->rec.todo && ctx_verbose(ctx)) printf("%s\n", r->rec.todo_text);
    return got >= 0 ? r->rec.todo : -1;
}

/* ------------------------------------------------------------------------------------
 * the tests
 * ---------------------------------------------------------------------------------- */

static void observe_run(TestCtx *ctx, EpRun *r, int T, int C, int P) {
    observe(ctx, "out", r->out, (long)T * C);
    for (int a = 0; a < 4; a++) observe_ints(ctx, ARRAY_NAMES[a], r->counts[a], (long)P * P);
    observe_ints(ctx, "dropped", r->dropped, P);
}

/* got equals the fixture's variant <name>~<mistake>: the mistake's catalogue entry. */
static int looks_like(TestCtx *ctx, const char *name, const int *got, long n, const char *mistake) {
    char key[128];
    snprintf(key, sizeof key, "%s~%s", name, mistake);
    const int *variant = fx_ints_opt(ctx, key, n); /* read after observe(), like want_ints */
    const Diagnosis *d = diagnosis_find(mistake);
    if (!variant || !d || memcmp(variant, got, sizeof(int) * (size_t)n) != 0) return 0;
    printf("looks like: %s\n%s\nsee lessons/%s/README.md, \"%s\"\n", d->looks_like, d->fix,
           d->lesson, d->section);
    return 1;
}

static TestStatus test_exchange(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), C = fx_int(ctx, "hidden_size"), P = fx_int(ctx, "ranks");
    EpRun r;
    int ran = run_case(ctx, &r, T, C, P);
    if (ran) return ran > 0 ? TEST_TODO : TEST_FAIL;
    observe_run(ctx, &r, T, C, P);
    /* row r of each (P, P) table is rank r's array */
    for (int a = 0; a < 4; a++) {
        const int *want = want_ints(ctx, ARRAY_NAMES[a], (long)P * P);
        if (memcmp(want, r.counts[a], sizeof(int) * (size_t)P * P) == 0) continue;
        TestStatus st = expect_equal_ints(ctx, ARRAY_NAMES[a], r.counts[a], want, (long)P * P,
                                          "element [src * P + dst]: rank src's array, entry dst");
        if (ctx_diagnose(ctx, st)) looks_like(ctx, ARRAY_NAMES[a], r.counts[a], (long)P * P,
                                              "ep_counts_as_displs");
        return st;
    }
    return expect_equal_ints(ctx, "dropped", r.dropped, want_ints(ctx, "dropped", P), P,
                             "rows each rank's experts refused (capacity)");
}

static TestStatus test_forward(TestCtx *ctx) {
    int T = fx_int(ctx, "T"), C = fx_int(ctx, "hidden_size"), P = fx_int(ctx, "ranks");
    EpRun r;
    int ran = run_case(ctx, &r, T, C, P);
    if (ran) return ran > 0 ? TEST_TODO : TEST_FAIL;
    observe_run(ctx, &r, T, C, P);
    Layout l = {2, {"token", "hidden"}, {T, C}};
    char what[64];
    snprintf(what, sizeof what, "ep_moe_forward over %d rank%s", P, P > 1 ? "s" : "");
    return expect_close(ctx, "out", r.out, &l, 1e-5f, 1e-4f, what);
}

static const TestDef TESTS[] = {
    {"ep exchange", "ep_", test_exchange},
    {"ep_moe_forward", "ep_", test_forward},
    {0},
};

const LessonDef LESSON_12 = {"12", "expert-parallel", "expert_parallel.c", "01050607", TESTS};
