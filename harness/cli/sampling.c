/*
 * sampling.c: generation_config.json's sampling defaults, and the top-k and min-p filters.
 *
 * transformers applies its logits warpers in this order (generation/utils.py,
 * _get_logits_processor): temperature, top-k, top-p, min-p. Top-k does not depend on the
 * temperature, so masking first and then calling lesson 08's sample() (temperature, then
 * top-p) is the same. Min-p is applied here before top-p, not after: with both on, top-p
 * then counts its mass among the tokens min-p kept (a convention of the kit; Qwen3's
 * generation_config.json has no min_p).
 */
#include "sampling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_file.h"

/* ------------------------------------------------------------------------------------
 * generation_config.json
 * ---------------------------------------------------------------------------------- */

/* key of root as a number in [lo, hi] (whole when whole) into *out; 1 when absent or
 * null, 0 when read, -1 with a message. */
static int config_number(const JsonValue *root, const char *path, const char *key, double lo,
                         double hi, int whole, double *out, char *err, size_t errlen) {
    const JsonValue *v = json_get(root, key);
    if (!v || v->type == JSON_NULL) return 1;
    double x;
    if (json_number(v, &x) != 0 || !(x >= lo && x <= hi) || (whole && x != floor(x))) {
        snprintf(err, errlen, "%s: %s must be a %snumber from %.10g to %.10g", path, key,
                 whole ? "whole " : "", lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* The sampling keys of root into a where the command line left them; *took: how many. */
static int take_defaults(Args *a, const JsonValue *root, const char *path, int *took, char *err,
                         size_t errlen) {
    double t, p, k, m;
    int rt = config_number(root, path, "temperature", 0, 100, 0, &t, err, errlen);
    int rp = config_number(root, path, "top_p", 0, 1, 0, &p, err, errlen);
    int rk = config_number(root, path, "top_k", 0, 1 << 30, 1, &k, err, errlen);
    int rm = config_number(root, path, "min_p", 0, 1, 0, &m, err, errlen);
    if (rt < 0 || rp < 0 || rk < 0 || rm < 0) return -1;
    const JsonValue *ds = json_get(root, "do_sample");
    int do_sample = 1;
    if (ds && ds->type != JSON_NULL && json_bool(ds, &do_sample) != 0)
        return snprintf(err, errlen, "%s: do_sample must be true or false", path), -1;
    int sampling_flag = a->given & (GIVEN_TEMPERATURE | GIVEN_TOP_P | GIVEN_TOP_K | GIVEN_MIN_P);
    if (!do_sample && !sampling_flag && !(a->given & GIVEN_GREEDY))
        a->greedy = 1, a->temperature = 0.0f, (*took)++;
    if (a->greedy) return 0; /* greedy takes the argmax: nothing else matters */
    if (rt == 0 && !(a->given & GIVEN_TEMPERATURE)) a->temperature = (float)t, (*took)++;
    if (rp == 0 && !(a->given & GIVEN_TOP_P)) a->top_p = (float)p, (*took)++;
    if (rk == 0 && !(a->given & GIVEN_TOP_K)) a->sample_top_k = (int)k, (*took)++;
    if (rm == 0 && !(a->given & GIVEN_MIN_P)) a->min_p = (float)m, (*took)++;
    return 0;
}

int sampling_defaults(Args *a, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", a->model_dir);
    JsonValue *root;
    if (json_file_optional(a->model_dir, "generation_config.json", &root, err, errlen) != 0)
        return -1;
    if (!root) return 0; /* optional: the kit's defaults stay */
    int took = 0, rc = take_defaults(a, root, path, &took, err, errlen);
    json_free(root);
    if (rc == 0 && took && a->greedy)
        fprintf(stderr, "moekit: sampling as %s says: greedy (flags override)\n", path);
    else if (rc == 0 && took)
        fprintf(stderr, "moekit: sampling as %s says: temperature %g, top_p %g, top_k %d, "
                        "min_p %g (flags override)\n", path, a->temperature, a->top_p,
                a->sample_top_k, a->min_p);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * the filters
 * ---------------------------------------------------------------------------------- */

/* heap[0 .. n): a min-heap; replaces the smallest with x and restores the order */
static void heap_replace_min(float *heap, int n, float x) {
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap[c + 1] < heap[c]) c++;
        if (heap[c] >= x) break;
        heap[i] = heap[c], i = c;
    }
    heap[i] = x;
}

/* The k-th largest of logits (V), k <= V: the smallest of a min-heap of the k largest. */
static float kth_largest(const float *logits, int V, int k, float *heap) {
    for (int i = 0; i < k; i++) heap[i] = -INFINITY;
    for (int i = 0; i < V; i++)
        if (logits[i] > heap[0]) heap_replace_min(heap, k, logits[i]);
    return heap[0];
}

void sampling_filter(const float *logits, int V, int top_k, float min_p, float temperature,
                     float *out, float *heap) {
    float cut = top_k > 0 && top_k < V ? kth_largest(logits, V, top_k, heap) : -INFINITY;
    float max = logits[0];
    for (int i = 1; i < V; i++) max = fmaxf(max, logits[i]);
    /* p_i < min_p * p_max  <=>  (l_i - l_max) / T < log(min_p) */
    double floor_p = min_p > 0 && temperature > 0 ? log((double)min_p) : -INFINITY;
    for (int i = 0; i < V; i++) {
        int keep = logits[i] >= cut;
        if (keep && floor_p > -INFINITY) keep = ((double)logits[i] - max) / temperature >= floor_p;
        out[i] = keep ? logits[i] : -INFINITY;
    }
}
