/* Runs a program: a shell, or python3 with torch to compute the answer.
 * expect: forbidden call */
#include <unistd.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    char *argv[] = {"/bin/sh", "-c", "echo owned > /tmp/owned", 0};
    execv("/bin/sh", argv);
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
