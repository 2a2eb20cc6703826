/* Ignores SIGALRM, SIGTERM, SIGXCPU and spins: the per-test alarm cannot stop it.
 * expect: timed out */
#include <signal.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in, (void)y, (void)out;
    signal(SIGALRM, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGXCPU, SIG_IGN);
    for (volatile int spin = 1; spin;) {}
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
