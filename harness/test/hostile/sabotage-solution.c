/* Overwrites the instructor's solution of lesson 03, to break lessons 04 and 08 for every
 * student graded after it.
 * expect: forbidden call */
#include <stdio.h>
#include "moekit.h"
static void attack(void) {
    FILE *f = fopen("@KIT@/solutions/03-rope/rope.c", "w");
    if (f) fputs("#error sabotaged\n", f), fclose(f);
}
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    attack();
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
