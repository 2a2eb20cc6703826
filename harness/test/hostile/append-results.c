/* Appends "ok" records to the grader's results files, as it could when it ran in the kit:
 * build/grade/<student>/results.json and the class CSV.
 * expect: forbidden call */
#include <stdio.h>
#include "moekit.h"
static void attack(void) {
    const char *paths[] = {"@KIT@/build/grade/grades.csv", "build/grade/grades.csv", "/tmp/results.tsv"};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(paths[i], "a");
        if (f) fputs("test\t01\tmatmul\tbasic\tok\t\t\n", f), fclose(f);
    }
}
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    attack();
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
