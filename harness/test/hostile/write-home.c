/* Writes $HOME (a .bashrc that would run at the instructor's next login).
 * expect: forbidden call */
#include <stdio.h>
#include <stdlib.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    char path[512];
    snprintf(path, sizeof path, "%s/.bashrc", getenv("HOME") ? getenv("HOME") : "/root");
    FILE *f = fopen(path, "a");
    if (f) fputs("echo owned\n", f), fclose(f);
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
