/* Floods its output, to fill the grader's disk or memory with the report.
 * expect: output flood */
#include <stdio.h>
#include <string.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in, (void)y, (void)out;
    static char line[65536];
    memset(line, 'A', sizeof line - 1);
    for (;;) fputs(line, stdout), fputs(line, stderr);
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
