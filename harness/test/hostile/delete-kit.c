/* Deletes files of the kit and of the grader.
 * expect: forbidden call */
#include <unistd.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    unlink("@KIT@/README.md");
    unlink("@KIT@/data/fixtures/01-matmul.safetensors");
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
