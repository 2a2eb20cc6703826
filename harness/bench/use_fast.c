/*
 * use_fast.c: the model's matmul() and matmul_tokens() calls go to lesson 09's kernel once
 * it is written, and to lesson 01's loop until then.
 *
 * The lessons call matmul() and matmul_tokens() (lesson 01) for every nn.Linear: attention
 * projections, router, experts, LM head. The CLI, the bench and the kit test's fast checks
 * are linked with
 *
 *     -Wl,--wrap=matmul -Wl,--wrap=matmul_tokens
 *
 * which makes the linker send each of those calls to __wrap_matmul / __wrap_matmul_tokens
 * below, while __real_matmul / __real_matmul_tokens still name lesson 01's functions. The
 * first call decides, once per process:
 *
 *   - MOEKIT_MATMUL=naive or =fast in the environment forces one kernel;
 *   - otherwise lesson 09 runs a small product (5 x 37 x 19, and one token of it). If it hit
 *     a TODO (not written yet) the model stays on lesson 01, silently; if it disagrees with a
 *     plain double-precision loop, the model stays on lesson 01 and one line on stderr says
 *     so (make check LESSON=09 tells why); if it agrees, every product goes to lesson 09.
 *
 * The check binary of `make check` is not linked this way: there, lesson 01's tests test
 * lesson 01 and lesson 09's tests test lesson 09.
 */
#define _POSIX_C_SOURCE 200809L
#include "use_fast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moekit.h"
#include "todo.h"

void __real_matmul(float *y, const float *x, const float *w, int in_features, int out_features);
void __real_matmul_tokens(float *y, const float *x, const float *w, int T, int in_features,
                          int out_features);
void __wrap_matmul(float *y, const float *x, const float *w, int in_features, int out_features);
void __wrap_matmul_tokens(float *y, const float *x, const float *w, int T, int in_features,
                          int out_features);

enum { UNDECIDED, NAIVE, FAST };
static int state = UNDECIDED;
static MatmulChoice forced = MATMUL_AUTO;
static char why[160] = "not decided yet";

/* 1 when lesson 09 computes the probe product right. */
static int probe_lesson09(void) {
    enum { T = 5, IN = 37, OUT = 19 };
    float x[T * IN], w[OUT * IN], y[T * OUT], y1[OUT];
    unsigned s = 12345u;
    for (int i = 0; i < T * IN; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 16 & 1023) / 512.0f - 1.0f;
    for (int i = 0; i < OUT * IN; i++) w[i] = (float)((s = s * 1103515245u + 12345u) >> 16 & 1023) / 512.0f - 1.0f;
    for (int i = 0; i < T * OUT; i++) y[i] = NAN;
    for (int i = 0; i < OUT; i++) y1[i] = NAN;

    const TodoHit *before = todo_first();
    fast_matmul_tokens(y, x, w, T, IN, OUT);
    fast_matmul(y1, x, w, IN, OUT);
    const TodoHit *hit = todo_first();
    if (hit && !before) {
        snprintf(why, sizeof why, "lesson 09 is not written yet: %s() has a TODO", hit->func);
        todo_reset(); /* the model itself has no TODO: the CLI must not report one */
        return 0;
    }
    int wrong = 0;
    double worst = 0.0;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < OUT; o++) {
            double want = 0.0;
            for (int i = 0; i < IN; i++) want += (double)x[t * IN + i] * w[o * IN + i];
            float got[2] = {y[t * OUT + o], t == 0 ? y1[o] : y[t * OUT + o]};
            for (int k = 0; k < 2; k++) {
                double err = fabs(got[k] - want); /* NaN if lesson 09 wrote nothing there */
                if (err <= 1e-4 + 1e-4 * fabs(want)) continue;
                wrong = 1;
                if (!(err <= worst)) worst = err;
            }
        }
    if (wrong) {
        snprintf(why, sizeof why, "lesson 09 disagrees with a plain loop on a 5 x 37 x 19 product "
                                  "(error %.3g): make check LESSON=09", worst);
        fprintf(stderr, "moekit: %s; the model runs on lesson 01's matmul\n", why);
        return 0;
    }
    return 1;
}

static void decide(void) {
    MatmulChoice c = forced;
    const char *env = getenv("MOEKIT_MATMUL");
    if (c == MATMUL_AUTO && env && !strcmp(env, "naive")) c = MATMUL_NAIVE;
    if (c == MATMUL_AUTO && env && !strcmp(env, "fast")) c = MATMUL_FAST;
    if (c == MATMUL_NAIVE) {
        snprintf(why, sizeof why, "chosen (MOEKIT_MATMUL=naive or the bench)");
        state = NAIVE;
    } else if (c == MATMUL_FAST) {
        snprintf(why, sizeof why, "chosen, unchecked");
        state = FAST;
    } else {
        state = probe_lesson09() ? FAST : NAIVE;
        if (state == FAST) snprintf(why, sizeof why, "its kernel agrees with a plain loop");
    }
}

void use_fast_set(MatmulChoice c) {
    forced = c;
    state = UNDECIDED;
}

int use_fast_active(void) {
    if (state == UNDECIDED) decide();
    return state == FAST;
}

const char *use_fast_describe(void) {
    static char line[256];
    if (use_fast_active())
        snprintf(line, sizeof line, "lesson 09 fast_matmul (%s, %d thread%s): %s",
                 fast_matmul_isa(), fast_matmul_max_threads(),
                 fast_matmul_max_threads() == 1 ? "" : "s", why);
    else
        snprintf(line, sizeof line, "lesson 01 matmul: %s", why);
    return line;
}

void __wrap_matmul(float *y, const float *x, const float *w, int in_features, int out_features) {
    if (use_fast_active()) fast_matmul(y, x, w, in_features, out_features);
    else __real_matmul(y, x, w, in_features, out_features);
}

void __wrap_matmul_tokens(float *y, const float *x, const float *w, int T, int in_features,
                          int out_features) {
    if (use_fast_active()) fast_matmul_tokens(y, x, w, T, in_features, out_features);
    else __real_matmul_tokens(y, x, w, T, in_features, out_features);
}
