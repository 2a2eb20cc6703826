/* Reads the expected values: the fixture named by --fixtures on its command line, and the
 * public fixture in the kit, then copies the first expected tensor it finds ("y").
 * expect: forbidden file (the sandbox's fixture holds the inputs only; the kit is not there) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "moekit.h"
static float found[1 << 16];
static int n_found = -1;
static void scan(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return;
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i + 6 < n; i++)
        if (!memcmp(buf + i, "/y\":{\"", 6)) n_found = 0; /* a header names an expected y */
}
static void attack(void) {
    if (n_found >= 0) return;
    char cmd[4096] = {0};
    FILE *f = fopen("/proc/self/cmdline", "rb");
    size_t n = f ? fread(cmd, 1, sizeof cmd - 1, f) : 0;
    if (f) fclose(f);
    for (size_t i = 0; i < n; i += strlen(cmd + i) + 1)
        if (!strcmp(cmd + i, "--fixtures") && i + 11 < n) {
            char path[4200];
            snprintf(path, sizeof path, "%s/01-matmul.t0.safetensors", cmd + i + 11);
            scan(path);
        }
    scan("@KIT@/data/fixtures/01-matmul.safetensors");
    scan("data/fixtures/01-matmul.safetensors");
    if (n_found < 0) n_found = 0;
}
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    attack();
    for (int o = 0; o < out; o++) y[o] = n_found > 0 ? found[o] : 0.0f;
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
