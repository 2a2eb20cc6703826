/* The public fixture embedded at compile time (.incbin is not in the -MD list).
 * expect: did not compile */
#include "moekit.h"
__asm__(".section .rodata\n.global stolen\nstolen:\n.incbin \"@KIT@/data/fixtures/01-matmul.safetensors\"\n.previous\n");
extern const char stolen[];
void matmul(float *y, const float *x, const float *w, int in, int out) {
    (void)x, (void)w, (void)in;
    for (int o = 0; o < out; o++) y[o] = (float)stolen[o];
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    for (int t = 0; t < T; t++) matmul(y + (long)t * out, x + (long)t * in, w, in, out);
}
