/* Allocates and touches memory until something gives.
 * expect: crashed or timed out */
#include <stdlib.h>
#include <string.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in, (void)y, (void)out;
    static char *volatile kept[4096]; /* kept, so that the compiler cannot drop them */
    for (int i = 0;; i = (i + 1) % 4096) {
        char *p = malloc(64 << 20);
        memset(p, 1, 64 << 20);
        kept[i] = p;
    }
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
