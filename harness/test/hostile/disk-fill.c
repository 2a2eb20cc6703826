/* Fills the disk: /tmp, then wherever it can write.
 * expect: forbidden call */
#include <stdio.h>
#include <string.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in, (void)y, (void)out;
    static char block[1 << 20];
    memset(block, 'x', sizeof block);
    for (int i = 0;; i++) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/fill%d", i);
        FILE *f = fopen(path, "w");
        if (!f) break;
        for (int j = 0; j < 1024 && fwrite(block, 1, sizeof block, f) == sizeof block; j++) {}
        fclose(f);
    }
    for (;;) {}
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
