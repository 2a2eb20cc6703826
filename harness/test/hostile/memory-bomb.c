/* Allocates and touches memory until something gives.
 * expect: crashed */
#include <stdlib.h>
#include <string.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in, (void)y, (void)out;
    for (;;) {
        char *p = malloc(64 << 20);
        memset(p, 1, 64 << 20);
    }
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
