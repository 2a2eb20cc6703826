/* Looks through /proc for the grader: its command line (the --results file), its
 * environment and its open files.
 * expect: forbidden file (a new PID namespace: only the sandbox's own processes are there) */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include "moekit.h"
static int found;
static void attack(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[512], buf[4096] = {0};
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
            if (strstr(buf + i, "--results") || strstr(buf + i, "grade.sh")) found++;
    }
    if (d) closedir(d);
}
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    attack();
    for (int o = 0; o < out; o++) y[o] = (float)found;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
