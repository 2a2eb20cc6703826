/*
 * model_test.c: Hugging Face checkpoints load and compute what the PyTorch reference
 * computed (data/models/<name>/expected.safetensors, written by export_models.py):
 *   - prefill logits within 1e-4 (max abs),
 *   - one-token-at-a-time decode through the KV cache equals those logits,
 *   - the same greedy continuation.
 * usage: model_test [--matmul fast] DIR...   Ends with "N passed, N failed".
 * --matmul fast: the model's products on lesson 09's kernel (linear_use), as in the CLI.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_load.h"

typedef struct {
    SafeTensors st;
    const int *ids, *greedy;
    int T, n_greedy;
    float *logits; /* (T, V) */
} Expected;

static int read_expected(Expected *e, const char *dir, int V, char *err, size_t errlen) {
    char path[512];
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (st_open(&e->st, path, err, errlen) != 0) return -1;
    const StTensor *ids = st_find(&e->st, "ids"), *greedy = st_find(&e->st, "greedy");
    const StTensor *logits = st_find(&e->st, "logits");
    if (!ids || !greedy || !logits || ids->dtype != ST_I32 || greedy->dtype != ST_I32 ||
        logits->numel != ids->numel * V || !st_is_aligned(ids, 4) || !st_is_aligned(greedy, 4)) {
        snprintf(err, errlen, "%s: needs aligned I32 'ids', 'greedy' and (T, %d) 'logits'", path, V);
        return -1;
    }
    e->ids = ids->data, e->greedy = greedy->data;
    e->T = (int)ids->numel, e->n_greedy = (int)greedy->numel;
    e->logits = malloc(sizeof(float) * (size_t)logits->numel);
    return e->logits ? st_to_f32(logits, e->logits) : -1;
}

static float max_abs_diff(const float *a, const float *b, long n) {
    float m = 0.0f;
    for (long i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN counts as the largest */
    }
    return m;
}

/* Greedy continuation after the prompt, one token at a time: lesson 08's sample() at
 * temperature 0 is the argmax. */
static int greedy_matches(Model *m, const Expected *e, float *x, float *row) {
    int V = m->config.vocab_size, next, ok = 1;
    Sampler greedy = {0};
    float *scratch = malloc(sizeof(float) * 3 * (size_t)V);
    if (!scratch) return 0;
    model_forward(m, e->ids, e->T, 0, x, row);   /* row holds all T rows here */
    next = sample(row + (size_t)(e->T - 1) * V, V, &greedy, scratch);
    for (int i = 0; i < e->n_greedy; i++) {
        if (next != e->greedy[i]) {
            printf("    greedy token %d: got %d, expected %d\n", i, next, e->greedy[i]);
            ok = 0;
            break;
        }
        model_forward(m, &next, 1, e->T + i, x, row);
        next = sample(row, V, &greedy, scratch);
    }
    free(scratch);
    return ok;
}

static int check_dir(const char *dir) {
    Model m;
    Expected e = {0};
    char err[1024];
    int ok = 0;
    if (model_load_dir(&m, dir, NULL, err, sizeof err) != 0) {
        printf("  FAIL    %s: %s\n", dir, err);
        return 0;
    }
    int V = m.config.vocab_size, C = m.config.hidden_size;
    if (read_expected(&e, dir, V, err, sizeof err) == 0 && e.T <= m.state.max_tokens) {
        float *x = malloc(sizeof(float) * (size_t)m.state.max_tokens * C);
        float *got = malloc(sizeof(float) * (size_t)m.state.max_tokens * V);
        float *dec = malloc(sizeof(float) * (size_t)e.T * V);
        model_forward(&m, e.ids, e.T, 0, x, got);
        float prefill = max_abs_diff(got, e.logits, (long)e.T * V);
        for (int t = 0; t < e.T; t++) model_forward(&m, e.ids + t, 1, t, x, dec + (size_t)t * V);
        float decode = max_abs_diff(dec, e.logits, (long)e.T * V);
        int greedy = greedy_matches(&m, &e, x, got);
        ok = prefill <= 1e-4f && decode <= 1e-4f && greedy;
        printf("  %-7s %s: prefill max abs %.2e, decode max abs %.2e (limit 1e-4), greedy %d ids %s\n",
               ok ? "ok" : "FAIL", dir, prefill, decode, e.n_greedy, greedy ? "match" : "differ");
        free(x), free(got), free(dec);
    } else {
        printf("  FAIL    %s: %s\n", dir, e.T > m.state.max_tokens ? "prompt too long" : err);
    }
    free(e.logits);
    st_close(&e.st);
    model_free(&m);
    return ok;
}

int main(int argc, char **argv) {
    int first = 1, passed = 0;
    if (argc > 2 && !strcmp(argv[1], "--matmul") && !strcmp(argv[2], "fast"))
        linear_use(KERNEL_FAST_MATMUL), first = 3;
    for (int i = first; i < argc; i++) passed += check_dir(argv[i]);
    printf("%d passed, %d failed\n", passed, argc - first - passed);
    return passed == argc - first && argc > first ? 0 : 1;
}
