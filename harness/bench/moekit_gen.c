/*
 * moekit_gen.c: the kit's model in the llama.cpp comparison of `make bench`
 * (harness/bench/llamacpp.py); the twin of harness/bench/llamacpp_bench.c, with the same
 * arguments, the same work and the same output:
 *
 *   moekit_gen MODEL_DIR --ids FILE [--decode 64] [--threads 1] [--reps 1] [--weights TYPE]
 *
 * FILE holds the prompt ids, separated by white space. Each rep starts from an empty KV
 * cache: one model_forward() of the whole prompt (timed: prefill), then --decode steps of
 * one token, each the argmax of the last logits (ties to the lower id), fed back (timed:
 * decode, --decode - 1 forward passes: the first id comes from the prefill). A first,
 * untimed rep warms the caches and the thread pool. Prints
 *
 *   engine moekit <which matmul runs>
 *   ids <the decoded ids>
 *   prefill_tokens_per_s <median>
 *   decode_tokens_per_s <median>
 *
 * The model's float32 products run on lesson 09's kernel (linear_use, moekit.h); --threads
 * is OpenMP's count.
 * --weights TYPE (auto, f32, bf16, f16, q8_0, q4_0) runs the typed model instead
 * (harness/src/typed_model.h), as `moekit --weights` does.
 * Built from lessons/ that still have a TODO on the model's path, it prints
 * "todo <function>() <file>:<line>" instead and exits 3.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "model_load.h"
#include "moekit.h"
#include "quantize.h"
#include "todo.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    const char *model, *ids_path, *weights;
    int decode, threads, reps;
} Options;

static int usage(void) {
    fprintf(stderr, "usage: moekit_gen MODEL_DIR --ids FILE [--decode N] [--threads N] [--reps N] "
                    "[--weights TYPE]\n"
                    "       moekit_gen --quantize q8_0|q4_0 IN_DIR OUT_DIR   (moekit quantize)\n");
    return 2;
}

/* A positive int from argv, or -1 with a message naming the flag. */
static int positive(const char *flag, const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 1000000) {
        fprintf(stderr, "moekit_gen: %s: expected a positive integer, got '%s'\n", flag, s);
        return -1;
    }
    return (int)v;
}

static int parse(Options *o, int argc, char **argv) {
    *o = (Options){.decode = 64, .threads = 1, .reps = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *num = !strcmp(a, "--decode") ? &o->decode : !strcmp(a, "--threads") ? &o->threads
                 : !strcmp(a, "--reps") ? &o->reps : NULL;
        if ((num || !strcmp(a, "--ids") || !strcmp(a, "--weights")) && i + 1 >= argc) {
            fprintf(stderr, "moekit_gen: %s needs a value\n", a);
            return -1;
        }
        if (num) {
            if ((*num = positive(a, argv[++i])) < 0) return -1;
        } else if (!strcmp(a, "--ids")) o->ids_path = argv[++i];
        else if (!strcmp(a, "--weights")) o->weights = argv[++i];
        else if (a[0] == '-' || o->model) {
            fprintf(stderr, "moekit_gen: unknown argument '%s'\n", a);
            return -1;
        } else o->model = a;
    }
    return o->model && o->ids_path ? 0 : -1;
}

/* The ids in path (white space separated), each in [0, V); *n set. NULL on error. */
static int *read_ids(const char *path, int V, int *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "moekit_gen: cannot open %s\n", path);
        return NULL;
    }
    int cap = 256, count = 0;
    int *ids = malloc(sizeof *ids * (size_t)cap);
    long v;
    while (ids && fscanf(f, "%ld", &v) == 1) {
        if (v < 0 || v >= V) {
            fprintf(stderr, "moekit_gen: %s: id %ld is outside the vocabulary (%d)\n", path, v, V);
            free(ids), fclose(f);
            return NULL;
        }
        if (count == cap) {
            int *grown = realloc(ids, sizeof *ids * (size_t)(cap *= 2));
            if (!grown) free(ids);
            ids = grown;
            if (!ids) break;
        }
        ids[count++] = (int)v;
    }
    int bad = !feof(f) || count == 0;
    fclose(f);
    if (!ids || bad) {
        fprintf(stderr, "moekit_gen: %s: %s\n", path, !ids ? "out of memory"
                        : count ? "not a list of integers" : "no ids");
        free(ids);
        return NULL;
    }
    *n = count;
    return ids;
}

/* argmax of logits (V); ties go to the lower id */
static int argmax(const float *logits, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* model_forward, or typed_forward when the model was loaded with --weights */
static void forward(Model *m, const int *ids, int T, int pos0, float *x, float *logits) {
    TypedRun *run;
    const TypedWeights *w = model_typed(m, &run);
    if (w) typed_forward(m, w, run, ids, T, pos0, x, logits, 1); /* argmax of the last row */
    else model_forward(m, ids, T, pos0, x, logits);
}

/* One rep: prefill P ids, then N greedy steps; out (N) gets the ids. x (P, C) and
 * logits (P, V) are scratch. Positions restart at 0, so the cache is overwritten. */
static void run_once(Model *m, const int *prompt, int P, int N, int *out, float *x,
                     float *logits, double *prefill_s, double *decode_s) {
    int V = m->config.vocab_size;
    double t0 = now_seconds();
    forward(m, prompt, P, 0, x, logits);
    int next = argmax(logits + (size_t)(P - 1) * V, V);
    double t1 = now_seconds();
    for (int i = 0; i < N; i++) {
        out[i] = next;
        if (i + 1 == N) break; /* the last id needs no forward pass */
        forward(m, &out[i], 1, P + i, x, logits);
        next = argmax(logits, V);
    }
    *prefill_s = t1 - t0;
    *decode_s = now_seconds() - t1;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--quantize")) { /* as llamacpp_bench --quantize-q8_0 */
        int t = wtype_parse(argv[2]);
        if (t != WT_Q8_0 && t != WT_Q4_0) return usage();
        return quantize_dir(argv[3], argv[4], (WType)t);
    }
    Options o;
    if (parse(&o, argc, argv) != 0) return usage();
    linear_use(KERNEL_FAST_MATMUL);
#ifdef _OPENMP
    omp_set_num_threads(o.threads);
#else
    if (o.threads > 1) fprintf(stderr, "moekit_gen: built without OpenMP: 1 thread\n");
#endif
    /* the prompt's length first: the model's buffers are sized by it */
    int P = 0, N = o.decode, *prompt = read_ids(o.ids_path, 1 << 30, &P);
    if (!prompt) return 1;
    Model m;
    char err[512];
    ModelOptions mo = {.max_seq = P + N + 1, .max_tokens = P, .weights = o.weights};
    double load_t0 = now_seconds();
    int loaded = model_load_dir(&m, o.model, &mo, err, sizeof err);
    double load_s = now_seconds() - load_t0; /* mapped weights fault in later, on first use */
    if (loaded != 0) {
        fprintf(stderr, "moekit_gen: %s\n", err);
        free(prompt);
        return 1;
    }
    int V = m.config.vocab_size, rc = 1;
    for (int i = 0; i < P; i++)
        if (prompt[i] >= V) {
            fprintf(stderr, "moekit_gen: %s: id %d is outside the vocabulary (%d)\n", o.ids_path,
                    prompt[i], V);
            goto done_model;
        }
    int *out = malloc(sizeof *out * (size_t)N);
    float *x = malloc(sizeof *x * (size_t)P * m.config.hidden_size);
    float *logits = malloc(sizeof *logits * (size_t)P * V);
    double *pre = malloc(sizeof *pre * (size_t)o.reps), *dec = malloc(sizeof *dec * (size_t)o.reps);
    if (!out || !x || !logits || !pre || !dec) {
        fprintf(stderr, "moekit_gen: out of memory\n");
        goto done;
    }
    double p_s, d_s;
    for (int r = -1; r < o.reps; r++) { /* r = -1: the warm-up */
        run_once(&m, prompt, P, N, out, x, logits, &p_s, &d_s);
        if (r >= 0) pre[r] = P / p_s, dec[r] = (N > 1 ? N - 1 : 1) / d_s;
        const TodoHit *hit = todo_first();
        if (hit) { /* unfinished lesson code: its ids mean nothing */
            printf("todo %s() %s:%d\n", hit->func, hit->file, hit->line);
            rc = 3;
            goto done;
        }
    }
    if (o.weights)
        printf("engine moekit typed weights %s (kernels %s)\nids", o.weights, wdot_isa());
    else
        printf("engine moekit %s\nids", linear_describe());
    for (int i = 0; i < N; i++) printf(" %d", out[i]);
    printf("\nprefill_tokens_per_s %.2f\ndecode_tokens_per_s %.2f\nload_s %.3f\n",
           median(pre, o.reps), median(dec, o.reps), load_s);
    rc = 0;
done:
    free(out), free(x), free(logits), free(pre), free(dec);
done_model:
    model_free(&m);
    free(prompt);
    return rc;
}
