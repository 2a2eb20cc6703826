/* A process that outlives its test: it forks, leaves the session, and waits for the
 * grader to finish, to rewrite the grades then.
 * expect: forbidden call */
#include <stdio.h>
#include <unistd.h>
#include "moekit.h"
static void attack(void) {
    if (fork() == 0) {
        setsid();
        if (fork() == 0) {
            sleep(30);
            FILE *f = fopen("@KIT@/build/grade/grades.csv", "w");
            if (f) fputs("everyone,100\n", f), fclose(f);
        }
        _exit(0);
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
