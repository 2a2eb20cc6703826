/* Sends the test's inputs out over the network (to get the answers back).
 * expect: forbidden call */
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s >= 0) close(s);
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
