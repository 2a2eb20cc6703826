/*
 * llamacpp_bench.c: llama.cpp through its C API (llama.h), the baseline of `make bench`'s
 * llama.cpp part (harness/bench/llamacpp.py). Loads a GGUF, runs a prefill of the prompt
 * ids and a greedy decode, and prints the ids and the tokens/s of each phase:
 *
 *   llamacpp_bench MODEL.gguf --ids FILE [--decode 64] [--threads 1] [--reps 1]
 *                  [--backends DIR]
 *   llamacpp_bench --quantize-q8_0|--quantize-q4_0 IN.gguf OUT.gguf
 *
 * (The second form is llama.cpp's own quantizer,  llama_model_quantize(), to Q8_0 or Q4_0: the
 * bench compares its blocks with harness/pytorch/gguf_writer.py's.)
 *
 * FILE holds the prompt ids, separated by white space. Each rep starts from an empty KV
 * cache: one llama_decode() of the whole prompt (timed: prefill), then --decode steps of
 * one token, each the argmax of the last logits (ties to the lower id, as the kit's
 * sampler), fed back (timed: decode). A first, untimed rep warms the caches and the thread
 * pool. Prints, for harness/bench/moekit_gen.c's twin format:
 *
 *   engine llama.cpp <system info>
 *   ids <the decoded ids>
 *   prefill_tokens_per_s <median>
 *   decode_tokens_per_s <median>
 *
 * Built against the prebuilt libraries of the npm package node-llama-cpp (see
 * harness/bench/llamacpp_setup.sh): libllama, libggml, libggml-base, and the CPU backends
 * libggml-cpu-<isa>.so, which ggml loads from --backends DIR and picks for this CPU.
 * The KV cache is float32 (llama.cpp's default is f16) so that it holds what the kit's does.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ggml-backend.h"
#include "llama.h"

typedef struct {
    const char *model, *ids_path, *backends;
    int decode, threads, reps;
} Options;

/* llama.cpp's log: errors only, on stderr */
static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int usage(void) {
    fprintf(stderr, "usage: llamacpp_bench MODEL.gguf --ids FILE [--decode N] [--threads N] "
                    "[--reps N] [--backends DIR]\n"
                    "       llamacpp_bench --quantize-q8_0|--quantize-q4_0 IN.gguf OUT.gguf\n");
    return 2;
}

/* A positive int from argv, or -1 with a message naming the flag. */
static int positive(const char *flag, const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 1000000) {
        fprintf(stderr, "llamacpp_bench: %s: expected a positive integer, got '%s'\n", flag, s);
        return -1;
    }
    return (int)v;
}

static int parse(Options *o, int argc, char **argv) {
    *o = (Options){.decode = 64, .threads = 1, .reps = 1, .backends = NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *num = !strcmp(a, "--decode") ? &o->decode : !strcmp(a, "--threads") ? &o->threads
                 : !strcmp(a, "--reps") ? &o->reps : NULL;
        if ((num || !strcmp(a, "--ids") || !strcmp(a, "--backends")) && i + 1 >= argc) {
            fprintf(stderr, "llamacpp_bench: %s needs a value\n", a);
            return -1;
        }
        if (num) {
            if ((*num = positive(a, argv[++i])) < 0) return -1;
        } else if (!strcmp(a, "--ids")) o->ids_path = argv[++i];
        else if (!strcmp(a, "--backends")) o->backends = argv[++i];
        else if (a[0] == '-' || o->model) {
            fprintf(stderr, "llamacpp_bench: unknown argument '%s'\n", a);
            return -1;
        } else o->model = a;
    }
    if (!o->model || !o->ids_path) return -1;
    return 0;
}

/* The ids in path (white space separated), each in [0, V); *n set. NULL on error. */
static llama_token *read_ids(const char *path, int V, int *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "llamacpp_bench: cannot open %s\n", path);
        return NULL;
    }
    int cap = 256, count = 0;
    llama_token *ids = malloc(sizeof *ids * (size_t)cap);
    long v;
    while (ids && fscanf(f, "%ld", &v) == 1) {
        if (v < 0 || v >= V) {
            fprintf(stderr, "llamacpp_bench: %s: id %ld is outside the vocabulary (%d)\n", path, v, V);
            free(ids), fclose(f);
            return NULL;
        }
        if (count == cap) {
            llama_token *grown = realloc(ids, sizeof *ids * (size_t)(cap *= 2));
            if (!grown) free(ids);
            ids = grown;
            if (!ids) break;
        }
        ids[count++] = (llama_token)v;
    }
    int bad = !feof(f) || count == 0;
    fclose(f);
    if (!ids || bad) {
        fprintf(stderr, "llamacpp_bench: %s: %s\n", path, !ids ? "out of memory"
                        : count ? "not a list of integers" : "no ids");
        free(ids);
        return NULL;
    }
    *n = count;
    return ids;
}

/* argmax of logits (V); ties go to the lower id */
static llama_token argmax(const float *logits, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* One rep: prefill P ids, then N greedy steps; out (N) gets the ids. 0, or -1. */
static int run_once(struct llama_context *ctx, llama_token *prompt, int P, int N, int V,
                    llama_token *out, double *prefill_s, double *decode_s) {
    llama_memory_clear(llama_get_memory(ctx), true);
    double t0 = now_seconds();
    if (llama_decode(ctx, llama_batch_get_one(prompt, P)) != 0) return -1;
    llama_token next = argmax(llama_get_logits_ith(ctx, -1), V);
    double t1 = now_seconds();
    for (int i = 0; i < N; i++) {
        out[i] = next;
        if (i + 1 == N) break; /* the last id needs no forward pass */
        if (llama_decode(ctx, llama_batch_get_one(&out[i], 1)) != 0) return -1;
        next = argmax(llama_get_logits_ith(ctx, -1), V);
    }
    *prefill_s = t1 - t0;
    *decode_s = now_seconds() - t1;
    return 0;
}

/* The context: the prompt in one batch, float32 KV cache, o->threads for both phases. */
static struct llama_context *open_context(struct llama_model *model, int P, int N, int threads) {
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(P + N + 16);
    cp.n_batch = cp.n_ubatch = (uint32_t)P;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.no_perf = true;
    return llama_init_from_model(model, cp);
}

/* IN.gguf (f32) -> OUT.gguf with llama.cpp's quantizer: Q8_0 with its default tensor
 * rules; Q4_0 "pure" (its default rules would make the output matrix Q6_K), so that every
 * matrix is Q4_0 as gguf_writer.py writes it */
static int quantize(const char *in, const char *out, enum llama_ftype type) {
    llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = type;
    qp.pure = type == LLAMA_FTYPE_MOSTLY_Q4_0;
    qp.nthread = 1;
    if (llama_model_quantize(in, out, &qp) != 0) {
        fprintf(stderr, "llamacpp_bench: llama_model_quantize %s -> %s failed\n", in, out);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    Options o;
    if (argc == 4 && (!strcmp(argv[1], "--quantize-q8_0") || !strcmp(argv[1], "--quantize-q4_0"))) {
        llama_log_set(quiet_log, NULL);
        return quantize(argv[2], argv[3], !strcmp(argv[1], "--quantize-q8_0")
                                              ? LLAMA_FTYPE_MOSTLY_Q8_0 : LLAMA_FTYPE_MOSTLY_Q4_0);
    }
    if (parse(&o, argc, argv) != 0) return usage();
    llama_log_set(quiet_log, NULL);
    if (o.backends) ggml_backend_load_all_from_path(o.backends);
    else ggml_backend_load_all();
    llama_backend_init();

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    double load_t0 = now_seconds(); /* the model and its context: mapped, faulted in on use */
    struct llama_model *model = llama_model_load_from_file(o.model, mp);
    if (!model) {
        fprintf(stderr, "llamacpp_bench: %s: llama.cpp could not load it (see above)\n", o.model);
        return 1;
    }
    int V = llama_vocab_n_tokens(llama_model_get_vocab(model)), P = 0, N = o.decode;
    llama_token *prompt = read_ids(o.ids_path, V, &P);
    llama_token *out = malloc(sizeof *out * (size_t)N);
    double *pre = malloc(sizeof *pre * (size_t)o.reps), *dec = malloc(sizeof *dec * (size_t)o.reps);
    struct llama_context *ctx = prompt ? open_context(model, P, N, o.threads) : NULL;
    double load_s = now_seconds() - load_t0;
    int rc = 1;
    if (!prompt || !out || !pre || !dec || !ctx) {
        if (prompt) fprintf(stderr, "llamacpp_bench: %s: no context (out of memory?)\n", o.model);
        goto done;
    }
    double p_s, d_s;
    for (int r = -1; r < o.reps; r++) { /* r = -1: the warm-up */
        if (run_once(ctx, prompt, P, N, V, out, &p_s, &d_s) != 0) {
            fprintf(stderr, "llamacpp_bench: %s: llama_decode failed\n", o.model);
            goto done;
        }
        if (r >= 0) pre[r] = P / p_s, dec[r] = (N > 1 ? N - 1 : 1) / d_s;
    }
    printf("engine llama.cpp %s\nids", llama_print_system_info());
    for (int i = 0; i < N; i++) printf(" %d", out[i]);
    printf("\nprefill_tokens_per_s %.2f\ndecode_tokens_per_s %.2f\nload_s %.3f\n",
           median(pre, o.reps), median(dec, o.reps), load_s);
    rc = 0;
done:
    if (ctx) llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    free(prompt), free(out), free(pre), free(dec);
    return rc;
}
