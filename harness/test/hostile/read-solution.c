/* Reads the instructor's solution and other students' work at run time, where the kit
 * and the grader's folders were.
 * expect: forbidden file (nothing of the kit is in the sandbox) */
#include <stdio.h>
#include "moekit.h"
static int seen;
static void attack(void) {
    const char *paths[] = {"@KIT@/solutions/01-matmul/matmul.c", "@KIT@/build/grade/grades.csv",
                           "/etc/passwd", "/root/.bash_history", "/home"};
    for (int i = 0; i < 5; i++) {
        FILE *f = fopen(paths[i], "r");
        if (f) seen++, fclose(f);
    }
}
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    attack();
    for (int o = 0; o < out; o++) y[o] = (float)seen;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
