/* Attaches to its parent with ptrace, to rewrite what the runner records.
 * expect: forbidden call */
#include <sys/ptrace.h>
#include <unistd.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    ptrace(PTRACE_ATTACH, getppid(), 0, 0);
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
