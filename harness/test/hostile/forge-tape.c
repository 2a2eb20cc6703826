/* Forges the record: finds the runner's --record-fd (or --results) on its command line and
 * writes a finished, passing section for every case of lesson 01, with made-up outputs.
 * expect: forged records (the judge compares the outputs anyway: zeros are not the answer) */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "moekit.h"
static void attack(void) {
    static const char *tests[] = {"matmul", "matmul_tokens"};
    static const char *cases[] = {"basic", "single", "wide", "tall", "big", "case0", "case1"};
    char line[4096];
    for (int t = 0; t < 2; t++)
        for (int c = 0; c < 7; c++) {
            int n = snprintf(line, sizeof line, "T 01\t%s\t%s\nO y F 1\n\0\0\0\0E \t\t\n", tests[t], cases[c]);
            if (write(3, line, (size_t)n) < 0) return;
        }
    FILE *f = fopen("/proc/self/cmdline", "r");
    if (f) fclose(f);
}
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    attack();
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
