/* The same from a constructor: it runs in the test runner itself, before main and before
 * the system-call filter, and holds the runner's output open.
 * expect: process before main (the sandbox ends it with the test) */
#include <stdio.h>
#include <unistd.h>
#include "moekit.h"
__attribute__((constructor)) static void attack(void) {
    if (fork() == 0) {
        setsid();
        sleep(60);
        FILE *f = fopen("@KIT@/build/grade/grades.csv", "w");
        if (f) fputs("everyone,100\n", f), fclose(f);
        _exit(0);
    }
}
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
